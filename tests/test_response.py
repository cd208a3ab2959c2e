from __future__ import annotations

import collections.abc as cabc
import datetime
import http.client
import os
import pathlib
import re
import typing as t
import urllib.parse

import pytest
from conftest import SAMPLE_FILES
from conftest import serving
from flask import Flask
from werkzeug.http import http_date
from werkzeug.serving import make_server

from flask_download import content_disposition
from flask_download import DownloadFile
from flask_download import DownloadResponse
from flask_download import FileNotFound
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.response import _download
from flask_download.response import representation
from flask_download.response import validator_headers

DATA = SAMPLE_FILES["data.bin"]
SIZE = len(DATA)
HELLO = SAMPLE_FILES["hello.txt"]


# -- helpers ----------------------------------------------------------------


def route(app: Flask, view: type[t.Any], rule: str = "/d", **attrs: t.Any) -> t.Any:
    """Register ``view`` at ``rule`` with ``attrs`` and return a test client."""
    name = f"view{len(list(app.url_map.iter_rules()))}"
    app.add_url_rule(rule, view_func=view.as_view(name, **attrs))
    return app.test_client()


@pytest.fixture
def files_client(app: Flask) -> t.Any:
    """A client with ``/files/<path>`` (attachment) and ``/inline/<path>``."""
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    app.add_url_rule(
        "/inline/<path:path>",
        view_func=PathDownloadView.as_view("inline", attachment=False),
    )
    return app.test_client()


def virtual(app: Flask, content: t.Any = b"x", **attrs: t.Any) -> t.Any:
    return route(app, VirtualDownloadView, content=content, **attrs)


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf"""\s*;\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*""")


def parse_disposition(value: str) -> tuple[str, list[tuple[str, str]]]:
    """Strictly parse a Content-Disposition value into (type, [(name, value)]).

    Fails the test if any part of the value is not a well-formed parameter.
    """
    match = re.match(rf"\s*({_TOKEN})", value)
    assert match is not None, value
    kind, pos = match.group(1), match.end()
    params = []
    while pos < len(value):
        param = _PARAM.match(value, pos)
        assert param is not None, f"unparseable at {value[pos:]!r} in {value!r}"
        name, raw = param.group(1).lower(), param.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.append((name, raw))
        pos = param.end()
    return kind.lower(), params


def filenames(value: str) -> tuple[str | None, str | None]:
    """Return (filename, decoded filename*) after checking each occurs at most once."""
    _, params = parse_disposition(value)
    names = [v for k, v in params if k == "filename"]
    starred = [v for k, v in params if k == "filename*"]
    assert len(names) <= 1, value
    assert len(starred) <= 1, value
    decoded = None
    if starred:
        charset, _, rest = starred[0].partition("'")
        assert charset.lower() == "utf-8", value
        _, _, encoded = rest.partition("'")
        decoded = urllib.parse.unquote(encoded, encoding="utf-8", errors="strict")
    return (names[0] if names else None), decoded


def etag_of(client: t.Any, url: str) -> str:
    with client.get(url) as rv:
        return rv.headers["ETag"]


def mtime_of(path: pathlib.Path) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)


# -- Content-Type ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"basename": "a.txt"}, "text/plain; charset=utf-8"),
        ({"basename": "a.html"}, "text/html; charset=utf-8"),
        ({"basename": "a.csv"}, "text/csv; charset=utf-8"),
        ({"basename": "a.png"}, "image/png"),
        ({"basename": "a.pdf"}, "application/pdf"),
        ({"basename": "a.json"}, "application/json"),
        ({"basename": "a.zip"}, "application/zip"),
        ({"basename": "a.unknown-ext"}, "application/octet-stream"),
        ({"basename": "no-extension"}, "application/octet-stream"),
        ({}, "application/octet-stream"),
        ({"basename": "a.bin", "mimetype": "text/plain"}, "text/plain; charset=utf-8"),
        ({"basename": "a.txt", "mimetype": "image/png"}, "image/png"),
        (
            {"basename": "a.txt", "mimetype": "application/octet-stream"},
            "application/octet-stream",
        ),
        ({"mimetype": "application/pdf"}, "application/pdf"),
        (
            {"basename": "a.txt", "charset": "iso-8859-1"},
            "text/plain; charset=iso-8859-1",
        ),
        ({"basename": "a.png", "charset": "iso-8859-1"}, "image/png"),
    ],
    ids=[
        "guessed-txt",
        "guessed-html",
        "guessed-csv",
        "guessed-png",
        "guessed-pdf",
        "guessed-json",
        "guessed-zip",
        "unknown-extension",
        "no-extension",
        "no-name",
        "mimetype-wins-text",
        "mimetype-wins-binary",
        "mimetype-octet-stream",
        "mimetype-no-name",
        "charset-override",
        "charset-ignored-for-binary",
    ],
)
def test_content_type(app: Flask, attrs: dict[str, str], expected: str) -> None:
    client = virtual(app, **attrs)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == expected


@pytest.mark.parametrize(
    "name", ["data.bin", "archive.tar.gz", "hello.txt", "page.html"], ids=str
)
def test_charset_only_for_text_types(files_client: t.Any, name: str) -> None:
    with files_client.get(f"/files/{name}") as rv:
        content_type = rv.headers["Content-Type"]
    if content_type.startswith("text/"):
        assert content_type.endswith("; charset=utf-8")
    else:
        assert "charset" not in content_type


# -- Content-Encoding --------------------------------------------------------


def test_guessed_encoding_not_sent_for_attachment(files_client: t.Any) -> None:
    with files_client.get("/files/archive.tar.gz") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "application/gzip"
        assert "Content-Encoding" not in rv.headers
        assert rv.data == SAMPLE_FILES["archive.tar.gz"]


def test_guessed_encoding_sent_for_inline(files_client: t.Any) -> None:
    with files_client.get("/inline/archive.tar.gz") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Encoding"] == "gzip"
        assert rv.headers["Content-Type"] == "application/x-tar"


@pytest.mark.parametrize("attachment", [True, False], ids=["attachment", "inline"])
@pytest.mark.parametrize(
    "basename", ["report.txt", "archive.tar.gz", None], ids=["txt", "tar.gz", "no-name"]
)
def test_explicit_encoding_always_sent(
    app: Flask, attachment: bool, basename: str | None
) -> None:
    client = virtual(app, basename=basename, encoding="br", attachment=attachment)
    with client.get("/d") as rv:
        assert rv.headers["Content-Encoding"] == "br"


def test_no_encoding_for_plain_file(files_client: t.Any) -> None:
    with files_client.get("/inline/hello.txt") as rv:
        assert "Content-Encoding" not in rv.headers


# -- Content-Disposition -----------------------------------------------------


@pytest.mark.parametrize("attachment", [True, False], ids=["attachment", "inline"])
def test_disposition_carries_name(app: Flask, attachment: bool) -> None:
    client = virtual(app, basename="report.txt", attachment=attachment)
    with client.get("/d") as rv:
        kind, params = parse_disposition(rv.headers["Content-Disposition"])
    assert kind == ("attachment" if attachment else "inline")
    assert params == [("filename", "report.txt")]


def test_disposition_from_path_file_name(files_client: t.Any) -> None:
    with files_client.get("/files/sub/nested.txt") as rv:
        assert rv.headers["Content-Disposition"] == 'attachment; filename="nested.txt"'


def test_disposition_escapes_quote_and_backslash(app: Flask) -> None:
    name = 'we"ird;name\\.txt'
    client = route(app, PathDownloadView, path=name)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        value = rv.headers["Content-Disposition"]
        assert rv.data == SAMPLE_FILES[name]
    assert value == 'attachment; filename="we\\"ird;name\\\\.txt"'
    assert filenames(value) == (name, None)


def test_disposition_non_ascii_path_file(files_client: t.Any) -> None:
    with files_client.get("/files/%C3%A9t%C3%A9.txt") as rv:
        assert rv.status_code == 200
        value = rv.headers["Content-Disposition"]
    fallback, starred = filenames(value)
    assert starred == "été.txt"
    assert "filename*=UTF-8''%C3%A9t%C3%A9.txt" in value
    assert fallback is not None
    assert fallback.isascii()
    assert fallback.endswith(".txt")
    assert fallback != ".txt"


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("日本.txt", ".txt"),
        ("日本語のファイル.tar.gz", ".gz"),
        ("日本", ""),
        ("файл.pdf", ".pdf"),
        ("é", ""),
        ("😀.png", ".png"),
        (".日本", ""),
        ("日本.", ""),
    ],
    ids=[
        "cjk-txt",
        "cjk-targz",
        "cjk-no-ext",
        "cyrillic",
        "one-letter",
        "emoji",
        "dot-cjk",
        "cjk-dot",
    ],
)
def test_disposition_ascii_fallback_never_empty(name: str, ext: str) -> None:
    fallback, starred = filenames(content_disposition(name, True))
    assert starred == name
    assert fallback is not None
    assert fallback.isascii()
    assert fallback.strip(". ") != ""
    assert fallback.endswith(ext)
    assert "\\" not in fallback
    assert '"' not in fallback


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a\tb.txt", "ab.txt"),
        ("a\rb.txt", "ab.txt"),
        ("a\nb.txt", "ab.txt"),
        ("a\r\nSet-Cookie: x=y.txt", "aSet-Cookie: x=y.txt"),
        ("a\x00b.txt", "ab.txt"),
        ("a\x1bb.txt", "ab.txt"),
        ("a\x7fb.txt", "ab.txt"),
        ("a\x85b.txt", "ab.txt"),
        ("a\x9fb.txt", "ab.txt"),
    ],
    ids=["tab", "cr", "lf", "crlf-header", "nul", "esc", "del", "c1-nel", "c1-apc"],
)
def test_disposition_deletes_control_characters(name: str, expected: str) -> None:
    value = content_disposition(name, True)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
    assert filenames(value) == (expected, None)


@pytest.mark.parametrize(
    "name",
    [
        "a\r\nSet-Cookie: session=evil",
        "a\nX-Injected: 1.txt",
        "é\r\nX-Injected: 1.txt",
        "\x00\x85\x7f",
    ],
    ids=["crlf-ascii", "lf-ascii", "crlf-non-ascii", "only-controls"],
)
def test_control_characters_in_name_over_http(app: Flask, name: str) -> None:
    client = virtual(app, basename=name)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert "Set-Cookie" not in rv.headers
        assert "X-Injected" not in rv.headers
        value = rv.headers["Content-Disposition"]
        assert rv.data == b"x"
    assert "\r" not in value
    assert "\n" not in value
    filenames(value)


@pytest.mark.parametrize(
    "name",
    [
        "x\"; filename*=UTF-8''evil.exe",
        "é\"; filename*=UTF-8''evil.exe",
        "x; filename=evil.exe",
        'x\\"; filename="evil.exe',
        'x"; filename="evil.exe"; a="',
    ],
    ids=["ascii-star", "non-ascii-star", "unquoted", "backslash-quote", "ascii-plain"],
)
@pytest.mark.parametrize("attachment", [True, False], ids=["attachment", "inline"])
def test_name_cannot_add_parameter(app: Flask, name: str, attachment: bool) -> None:
    client = virtual(app, basename=name, attachment=attachment)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        value = rv.headers["Content-Disposition"]
    _, params = parse_disposition(value)
    assert [k for k, _ in params if k == "filename"] == ["filename"]
    assert len([k for k, _ in params if k == "filename*"]) <= 1
    assert {k for k, _ in params} <= {"filename", "filename*"}
    fallback, starred = filenames(value)
    if name.isascii():
        assert fallback == name
        assert starred is None
    else:
        assert starred == name
    assert fallback != "evil.exe"
    assert starred != "evil.exe"


@pytest.mark.parametrize("name", ["", ".", "..", " ", "\x00", "\r\n"], ids=repr)
@pytest.mark.parametrize("attachment", [True, False], ids=["attachment", "inline"])
def test_disposition_without_usable_name(name: str, attachment: bool) -> None:
    expected = "attachment" if attachment else "inline"
    assert content_disposition(name, attachment) == expected


def test_disposition_none_name() -> None:
    assert content_disposition(None, True) == "attachment"
    assert content_disposition(None, False) == "inline"


@pytest.mark.parametrize("name", ["", ".", ".."], ids=["empty", "dot", "dotdot"])
def test_empty_basename_over_http_gives_no_filename(app: Flask, name: str) -> None:
    client = virtual(app, basename=name)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Disposition"] == "attachment"


def test_no_name_over_http(app: Flask) -> None:
    client = virtual(app)
    with client.get("/d") as rv:
        assert rv.headers["Content-Disposition"] == "attachment"


@pytest.mark.parametrize(
    ("stem", "ext"),
    [("a" * 10_000, ".txt"), ("é" * 10_000, ".txt"), ("日" * 5_000, ".pdf")],
    ids=["ascii", "latin", "cjk"],
)
def test_very_long_names_are_capped(app: Flask, stem: str, ext: str) -> None:
    client = virtual(app, basename=stem + ext)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        value = rv.headers["Content-Disposition"]
    assert len(value) < 4096
    fallback, starred = filenames(value)
    assert fallback is not None
    assert len(fallback) <= 255
    assert fallback.endswith(ext)
    if starred is not None:
        assert len(starred) <= 255
        assert starred.endswith(ext)


@pytest.mark.parametrize(
    ("name", "attachment", "expected"),
    [
        ("a.txt", True, 'attachment; filename="a.txt"'),
        ("a.txt", False, 'inline; filename="a.txt"'),
        ("a b.txt", True, 'attachment; filename="a b.txt"'),
        ('a"b.txt', True, 'attachment; filename="a\\"b.txt"'),
        ("a\\b.txt", True, 'attachment; filename="a\\\\b.txt"'),
        ("a;b=c.txt", True, 'attachment; filename="a;b=c.txt"'),
        ("a%20b.txt", True, 'attachment; filename="a%20b.txt"'),
    ],
    ids=["plain", "inline", "space", "quote", "backslash", "semicolon", "percent"],
)
def test_content_disposition_ascii(name: str, attachment: bool, expected: str) -> None:
    assert content_disposition(name, attachment) == expected


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("été.txt", "%C3%A9t%C3%A9.txt"),
        ("a b é.txt", "a%20b%20%C3%A9.txt"),
        ("é'%.txt", "%C3%A9%27%25.txt"),
        ('é"\\;.txt', "%C3%A9%22%5C%3B.txt"),
    ],
    ids=["accents", "space", "quote-percent", "specials"],
)
def test_content_disposition_rfc8187(name: str, encoded: str) -> None:
    value = content_disposition(name, False)
    assert value.startswith("inline; ")
    assert f"filename*=UTF-8''{encoded}" in value
    fallback, starred = filenames(value)
    assert starred == name
    assert fallback is not None
    assert fallback.endswith(".txt")
    # RFC 8187 §3.2.1: only attr-char goes unencoded.
    assert re.fullmatch(r"[A-Za-z0-9!#$&+.^_`|~%-]+", encoded)


# -- Content-Length, nosniff, validators -------------------------------------


@pytest.mark.parametrize("name", sorted(n for n in SAMPLE_FILES if "\\" not in n))
def test_content_length_and_body(files_client: t.Any, name: str) -> None:
    url = "/files/" + urllib.parse.quote(name)
    with files_client.get(url) as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == str(len(SAMPLE_FILES[name]))
        assert rv.data == SAMPLE_FILES[name]


def test_content_length_of_str_is_utf8_size(app: Flask) -> None:
    client = virtual(app, content="été", basename="a.txt")
    with client.get("/d") as rv:
        assert rv.headers["Content-Length"] == "5"
        assert rv.data == "été".encode()


def test_no_content_length_for_iterator(app: Flask) -> None:
    client = virtual(app, content=lambda: iter([b"ab", "cd"]), basename="a.bin")
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert "Content-Length" not in rv.headers
        assert "Accept-Ranges" not in rv.headers
        assert "ETag" not in rv.headers
        assert rv.data == b"abcd"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Range": "bytes=0-9"}, 206),
        ({"Range": "bytes=0-0,10-20"}, 206),
        ({"Range": "bytes=5000-"}, 416),
    ],
    ids=["200", "206", "206-multipart", "416"],
)
def test_nosniff_on_every_download(
    files_client: t.Any, headers: dict[str, str], status: int
) -> None:
    with files_client.get("/files/data.bin", headers=headers) as rv:
        assert rv.status_code == status
        assert rv.headers["X-Content-Type-Options"] == "nosniff"


def test_nosniff_on_virtual_download(app: Flask) -> None:
    client = virtual(app, content="<script>", basename="a.txt")
    with client.get("/d") as rv:
        assert rv.headers["X-Content-Type-Options"] == "nosniff"


def test_last_modified_and_strong_etag(
    files_client: t.Any, download_root: pathlib.Path
) -> None:
    with files_client.get("/files/hello.txt") as rv:
        assert rv.headers["Last-Modified"] == http_date(
            mtime_of(download_root / "hello.txt")
        )
        etag = rv.headers["ETag"]
        assert rv.headers["Accept-Ranges"] == "bytes"
    assert re.fullmatch(r'"[\x21\x23-\x7e]+"', etag)
    assert not etag.startswith("W/")


def test_virtual_etag_and_last_modified(app: Flask) -> None:
    client = virtual(app, content=b"same")
    with client.get("/d") as rv:
        etag = rv.headers["ETag"]
        assert "Last-Modified" not in rv.headers
    assert re.fullmatch(r'"[\x21\x23-\x7e]+"', etag)
    with client.get("/d") as rv:
        assert rv.headers["ETag"] == etag


# -- preconditions -----------------------------------------------------------

URL = "/files/hello.txt"


def test_if_none_match_returns_304(files_client: t.Any) -> None:
    etag = etag_of(files_client, URL)
    with files_client.get(URL, headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.headers["ETag"] == etag
        assert "Last-Modified" in rv.headers
        assert "Cache-Control" in rv.headers
        assert "Content-Disposition" not in rv.headers
        assert rv.data == b""


def test_if_none_match_weak_comparison_returns_304(files_client: t.Any) -> None:
    etag = etag_of(files_client, URL)
    with files_client.get(URL, headers={"If-None-Match": f'"nope", W/{etag}'}) as rv:
        assert rv.status_code == 304
        assert rv.data == b""


def test_if_none_match_star_returns_304(files_client: t.Any) -> None:
    with files_client.get(URL, headers={"If-None-Match": "*"}) as rv:
        assert rv.status_code == 304


def test_if_none_match_mismatch_returns_200(files_client: t.Any) -> None:
    with files_client.get(URL, headers={"If-None-Match": '"other"'}) as rv:
        assert rv.status_code == 200
        assert rv.data == HELLO


def _date(path: pathlib.Path, delta: int) -> str:
    return http_date(mtime_of(path) + datetime.timedelta(seconds=delta))


@pytest.mark.parametrize(
    ("delta", "status"),
    [(0, 304), (1, 304), (3600, 304), (-1, 200), (-3600, 200)],
    ids=["equal", "later", "much-later", "earlier", "much-earlier"],
)
def test_if_modified_since(
    files_client: t.Any, download_root: pathlib.Path, delta: int, status: int
) -> None:
    since = _date(download_root / "hello.txt", delta)
    with files_client.get(URL, headers={"If-Modified-Since": since}) as rv:
        assert rv.status_code == status
        assert rv.data == (HELLO if status == 200 else b"")


def test_if_modified_since_ignored_when_if_none_match_present(
    files_client: t.Any, download_root: pathlib.Path
) -> None:
    since = _date(download_root / "hello.txt", 3600)
    headers = {"If-None-Match": '"other"', "If-Modified-Since": since}
    with files_client.get(URL, headers=headers) as rv:
        assert rv.status_code == 200


def test_if_match_mismatch_returns_412(files_client: t.Any) -> None:
    with files_client.get(URL, headers={"If-Match": '"other"'}) as rv:
        assert rv.status_code == 412
        assert rv.data == b""
        assert "Content-Disposition" not in rv.headers


def test_if_match_matching_returns_200(files_client: t.Any) -> None:
    etag = etag_of(files_client, URL)
    with files_client.get(URL, headers={"If-Match": f'"x", {etag}'}) as rv:
        assert rv.status_code == 200
        assert rv.data == HELLO


def test_if_match_weak_never_matches(files_client: t.Any) -> None:
    etag = etag_of(files_client, URL)
    with files_client.get(URL, headers={"If-Match": f"W/{etag}"}) as rv:
        assert rv.status_code == 412


def test_if_match_star_returns_200(files_client: t.Any) -> None:
    with files_client.get(URL, headers={"If-Match": "*"}) as rv:
        assert rv.status_code == 200
        assert rv.data == HELLO


@pytest.mark.parametrize(
    ("delta", "status"),
    [(-1, 412), (-3600, 412), (0, 200), (3600, 200)],
    ids=["earlier", "much-earlier", "equal", "later"],
)
def test_if_unmodified_since(
    files_client: t.Any, download_root: pathlib.Path, delta: int, status: int
) -> None:
    since = _date(download_root / "hello.txt", delta)
    with files_client.get(URL, headers={"If-Unmodified-Since": since}) as rv:
        assert rv.status_code == status
        assert rv.data == (HELLO if status == 200 else b"")


@pytest.mark.parametrize(
    "header", ["If-Modified-Since", "If-Unmodified-Since", "If-Range"]
)
@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "",
        "   ",
        "Sun, 06 Nov 999999999999 08:49:37 GMT",
        "Mon, 99 Foo 2020 99:99:99 GMT",
        "Sun, 06 Nov 1994 08:49:37 +9999",
        "99999999999999999999",
        "\x00",
    ],
    ids=[
        "garbage",
        "empty",
        "blank",
        "year-999999999999",
        "out-of-range-fields",
        "huge-offset",
        "huge-number",
        "nul",
    ],
)
def test_unparseable_dates_are_ignored(
    files_client: t.Any, header: str, value: str
) -> None:
    headers = {header: value}
    if header == "If-Range":
        headers["Range"] = "bytes=0-1"
    with files_client.get(URL, headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == HELLO


@pytest.mark.parametrize("match_last", [False, True], ids=["no-match", "match-last"])
def test_huge_if_none_match_list(files_client: t.Any, match_last: bool) -> None:
    etag = etag_of(files_client, URL)
    tags = [f'"tag-{i}"' for i in range(100_000)]
    if match_last:
        tags[-1] = etag
    with files_client.get(URL, headers={"If-None-Match": ", ".join(tags)}) as rv:
        assert rv.status_code == (304 if match_last else 200)


def test_precondition_order_if_match_before_if_none_match(files_client: t.Any) -> None:
    etag = etag_of(files_client, URL)
    headers = {"If-Match": '"other"', "If-None-Match": etag}
    with files_client.get(URL, headers=headers) as rv:
        assert rv.status_code == 412


def test_head_304(files_client: t.Any) -> None:
    etag = etag_of(files_client, URL)
    with files_client.head(URL, headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304


# -- regressions against Werkzeug's make_conditional -------------------------


def test_range_with_matching_if_none_match_returns_304(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: it answers 206 to a Range
    request whose If-None-Match matches, instead of 304."""
    etag = etag_of(files_client, URL)
    headers = {"Range": "bytes=0-4", "If-None-Match": etag}
    with files_client.get(URL, headers=headers) as rv:
        assert rv.status_code == 304
        assert rv.data == b""
        assert "Content-Range" not in rv.headers


def test_range_with_failing_if_match_returns_412(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: it ignores If-Match and
    answers 206 to a Range request whose If-Match fails."""
    headers = {"Range": "bytes=0-4", "If-Match": '"other"'}
    with files_client.get(URL, headers=headers) as rv:
        assert rv.status_code == 412
        assert "Content-Range" not in rv.headers


def test_precondition_failed_has_no_body(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: its 412 keeps the entity
    body of the file."""
    with files_client.get(URL, headers={"If-Match": '"other"'}) as rv:
        assert rv.status_code == 412
        assert rv.data == b""
        assert rv.headers.get("Content-Length", "0") == "0"


def test_if_match_star_passes(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: it has no If-Match
    evaluation, so ``If-Match: *`` is not checked against an existing file."""
    headers = {"If-Match": "*", "Range": "bytes=0-4"}
    with files_client.get(URL, headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == HELLO[:5]


def test_if_unmodified_since_honoured(
    files_client: t.Any, download_root: pathlib.Path
) -> None:
    """Werkzeug make_conditional gets this wrong: it ignores
    If-Unmodified-Since and sends the changed file."""
    since = _date(download_root / "hello.txt", -3600)
    headers = {"If-Unmodified-Since": since, "Range": "bytes=0-4"}
    with files_client.get(URL, headers=headers) as rv:
        assert rv.status_code == 412
        assert rv.data == b""


def test_zero_length_suffix_range_returns_416(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: ``bytes=-0`` is an
    unsatisfiable suffix range (RFC 9110 §14.1.1), not a request for the
    whole file."""
    with files_client.get("/files/data.bin", headers={"Range": "bytes=-0"}) as rv:
        assert rv.status_code == 416
        assert rv.headers["Content-Range"] == f"bytes */{SIZE}"
        assert rv.data == b""


def test_weak_if_range_does_not_satisfy(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: If-Range needs a strong
    validator (RFC 9110 §13.1.5), so a weak ETag sends the full file."""
    etag = etag_of(files_client, "/files/data.bin")
    headers = {"Range": "bytes=0-9", "If-Range": f"W/{etag}"}
    with files_client.get("/files/data.bin", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


def parse_multipart(rv: t.Any) -> list[tuple[str, str, bytes]]:
    """Return (Content-Type, Content-Range, body) of each byteranges part."""
    match = re.fullmatch(
        r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})",
        rv.headers["Content-Type"],
    )
    assert match is not None, rv.headers["Content-Type"]
    delimiter = b"--" + match.group(1).encode()
    preamble, *parts, epilogue = rv.data.split(delimiter)
    assert preamble in (b"", b"\r\n")
    assert epilogue in (b"--", b"--\r\n")
    result = []
    for part in parts:
        assert part.startswith(b"\r\n")
        assert part.endswith(b"\r\n")
        head, sep, body = part[2:-2].partition(b"\r\n\r\n")
        assert sep
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        assert set(fields) == {b"Content-Type", b"Content-Range"}
        result.append(
            (fields[b"Content-Type"].decode(), fields[b"Content-Range"].decode(), body)
        )
    return result


def test_multiple_ranges_return_multipart(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: it refuses several ranges
    (416 / whole file) instead of answering multipart/byteranges."""
    headers = {"Range": "bytes=0-9,100-109,-6"}
    with files_client.get("/files/data.bin", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
        assert "Content-Range" not in rv.headers
        assert rv.headers["Content-Length"] == str(len(rv.data))
        parts = parse_multipart(rv)
    assert [(ct, cr) for ct, cr, _ in parts] == [
        ("application/octet-stream", f"bytes 0-9/{SIZE}"),
        ("application/octet-stream", f"bytes 100-109/{SIZE}"),
        ("application/octet-stream", f"bytes {SIZE - 6}-{SIZE - 1}/{SIZE}"),
    ]
    assert [body for _, _, body in parts] == [DATA[0:10], DATA[100:110], DATA[-6:]]


def test_unknown_range_unit_returns_200(files_client: t.Any) -> None:
    """Werkzeug make_conditional gets this wrong: an unknown range unit
    must be ignored (RFC 9110 §14.2), not answered with 416."""
    with files_client.get("/files/data.bin", headers={"Range": "items=0-9"}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


# -- Range -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=10-19", 10, 20),
        ("bytes=1000-5000", 1000, SIZE),
        ("bytes=-5", SIZE - 5, SIZE),
        ("bytes=-5000", 0, SIZE),
        ("bytes=5-", 5, SIZE),
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE),
        ("BYTES=0-0", 0, 1),
        ("bytes= 3-4 ", 3, 5),
    ],
    ids=[
        "first-ten",
        "middle",
        "last-clamped",
        "suffix",
        "suffix-larger-than-file",
        "open",
        "last-byte",
        "case-insensitive-unit",
        "whitespace",
    ],
)
def test_single_range(files_client: t.Any, header: str, start: int, stop: int) -> None:
    with files_client.get("/files/data.bin", headers={"Range": header}) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
        assert rv.headers["Content-Length"] == str(stop - start)
        assert rv.headers["Content-Type"] == "application/octet-stream"
        assert rv.headers["Accept-Ranges"] == "bytes"
        assert rv.data == DATA[start:stop]


@pytest.mark.parametrize(
    "header",
    [f"bytes={SIZE}-", "bytes=5000-6000", f"bytes={SIZE}-{SIZE + 10},2000-"],
    ids=["at-size", "beyond", "all-beyond"],
)
def test_unsatisfiable_range_returns_416(files_client: t.Any, header: str) -> None:
    with files_client.get("/files/data.bin", headers={"Range": header}) as rv:
        assert rv.status_code == 416
        assert rv.headers["Content-Range"] == f"bytes */{SIZE}"
        assert rv.data == b""


def test_range_on_virtual_bytes(app: Flask) -> None:
    client = virtual(app, content=b"0123456789", basename="d.bin")
    with client.get("/d", headers={"Range": "bytes=2-4"}) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Range"] == "bytes 2-4/10"
        assert rv.data == b"234"


def test_range_ignored_for_iterator(app: Flask) -> None:
    client = virtual(app, content=lambda: iter([b"0123", b"456789"]))
    with client.get("/d", headers={"Range": "bytes=2-4"}) as rv:
        assert rv.status_code == 200
        assert rv.data == b"0123456789"


def test_if_range_matching_etag_returns_206(files_client: t.Any) -> None:
    etag = etag_of(files_client, "/files/data.bin")
    headers = {"Range": "bytes=0-9", "If-Range": etag}
    with files_client.get("/files/data.bin", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == DATA[:10]


def test_if_range_mismatching_etag_returns_200(files_client: t.Any) -> None:
    headers = {"Range": "bytes=0-9", "If-Range": '"other"'}
    with files_client.get("/files/data.bin", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


@pytest.mark.parametrize(
    ("delta", "status"),
    [(0, 206), (-3600, 200), (3600, 200)],
    ids=["equal", "earlier", "later"],
)
def test_if_range_date(
    files_client: t.Any, download_root: pathlib.Path, delta: int, status: int
) -> None:
    # Modified long ago: a Last-Modified of this very second is no strong
    # validator (test_if_range_date_of_a_file_just_rewritten_is_weak).
    os.utime(download_root / "data.bin", (1_700_000_000, 1_700_000_000))
    headers = {
        "Range": "bytes=0-9",
        "If-Range": _date(download_root / "data.bin", delta),
    }
    with files_client.get("/files/data.bin", headers=headers) as rv:
        assert rv.status_code == status
        assert rv.data == (DATA[:10] if status == 206 else DATA)


def test_if_range_date_of_a_file_just_rewritten_is_weak(
    files_client: t.Any, download_root: pathlib.Path
) -> None:
    """RFC 9110 §13.1.5: a file rewritten within the second of its
    Last-Modified has two contents under one date; a range of the new one
    must not be spliced onto a copy of the old one."""
    path = download_root / "fresh.txt"
    path.write_bytes(b"0123456789")
    with files_client.get("/files/fresh.txt") as rv:
        last_modified = rv.headers["Last-Modified"]
    with path.open("r+b") as f:
        f.write(b"ABCDEFGHIJ")  # in place, same size, same second
    headers = {"Range": "bytes=0-1", "If-Range": last_modified}
    with files_client.get("/files/fresh.txt", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == b"ABCDEFGHIJ"
        assert "Content-Range" not in rv.headers


@pytest.mark.parametrize(
    "header",
    [
        "bytes=abc",
        "bytes=5-2",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=1-2-3",
        "bytes=0x10-0x20",
        "bytes=+1-2",
        "bytes=0-1;2-3",
        "=0-1",
        "",
        "bytes=0-1,junk",
    ],
    ids=[
        "letters",
        "reversed",
        "no-equals",
        "empty-set",
        "lone-dash",
        "three-numbers",
        "hex",
        "plus-sign",
        "semicolon",
        "no-unit",
        "empty",
        "one-bad-spec",
    ],
)
def test_malformed_range_returns_200(files_client: t.Any, header: str) -> None:
    with files_client.get("/files/data.bin", headers={"Range": header}) as rv:
        assert rv.status_code == 200
        assert "Content-Range" not in rv.headers
        assert rv.data == DATA


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-4,3-9", 0, 10),
        ("bytes=0-4,5-9", 0, 10),
        ("bytes=5-9,0-4", 0, 10),
        ("bytes=0-9,2-3", 0, 10),
        ("bytes=100-199,150-", 100, SIZE),
    ],
    ids=["overlapping", "adjacent", "unsorted-adjacent", "contained", "open-overlap"],
)
def test_overlapping_ranges_are_coalesced(
    files_client: t.Any, header: str, start: int, stop: int
) -> None:
    with files_client.get("/files/data.bin", headers={"Range": header}) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
        assert rv.data == DATA[start:stop]


def test_more_than_max_ranges_returns_whole_file(
    app_factory: cabc.Callable[..., Flask],
) -> None:
    client = route(
        app_factory(DOWNLOAD_MAX_RANGES=2), PathDownloadView, path="data.bin"
    )
    with client.get("/d", headers={"Range": "bytes=0-0,2-2"}) as rv:
        assert rv.status_code == 206
    with client.get("/d", headers={"Range": "bytes=0-0,2-2,4-4"}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


def test_default_max_ranges_is_50(files_client: t.Any) -> None:
    fifty = ",".join(f"{i * 10}-{i * 10}" for i in range(50))
    with files_client.get("/files/data.bin", headers={"Range": f"bytes={fifty}"}) as rv:
        assert rv.status_code == 206
        assert len(parse_multipart(rv)) == 50
    fifty_one = ",".join(f"{i * 10}-{i * 10}" for i in range(51))
    headers = {"Range": f"bytes={fifty_one}"}
    with files_client.get("/files/data.bin", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


@pytest.mark.parametrize(
    "header",
    ["bytes=0-,0-", "bytes=0-1023,0-1023", "bytes=-1024,0-", "bytes=0-600,500-1023"],
    ids=["open-twice", "whole-twice", "suffix-and-open", "overlap-exceeds"],
)
def test_ranges_adding_up_beyond_file_return_200(
    files_client: t.Any, header: str
) -> None:
    with files_client.get("/files/data.bin", headers={"Range": header}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


def test_thousand_ranges_refused_cheaply(files_client: t.Any) -> None:
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(1000))
    with files_client.get("/files/data.bin", headers={"Range": header}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


def test_multipart_part_type_follows_file(files_client: t.Any) -> None:
    with files_client.get("/files/hello.txt", headers={"Range": "bytes=0-1,5-6"}) as rv:
        assert rv.status_code == 206
        parts = parse_multipart(rv)
    assert [ct for ct, _, _ in parts] == ["text/plain; charset=utf-8"] * 2
    assert [body for _, _, body in parts] == [HELLO[0:2], HELLO[5:7]]


# -- streaming ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "content"),
    [("/files/data.bin", DATA), ("/virtual", DATA)],
    ids=["path", "virtual"],
)
def test_chunk_size_is_honoured(
    app_factory: cabc.Callable[..., Flask], url: str, content: bytes
) -> None:
    app = app_factory(DOWNLOAD_CHUNK_SIZE=100)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    route(app, VirtualDownloadView, "/virtual", content=DATA, basename="d.bin")
    client = app.test_client()
    with client.get(url, buffered=False) as rv:
        chunks = list(rv.response)
    assert b"".join(chunks) == content
    assert [len(c) for c in chunks] == [100] * (SIZE // 100) + [SIZE % 100]


def test_view_chunk_size_attribute(app: Flask) -> None:
    client = route(app, PathDownloadView, path="data.bin", chunk_size=256)
    with client.get("/d", buffered=False) as rv:
        chunks = list(rv.response)
    assert [len(c) for c in chunks] == [256] * 4


class CountingHandle:
    """A binary file handle that records where each read starts and its size."""

    def __init__(self, handle: t.BinaryIO) -> None:
        self.handle = handle
        self.reads: list[tuple[int, int]] = []

    def read(self, size: int = -1) -> bytes:
        position = self.handle.tell()
        data = self.handle.read(size)
        self.reads.append((position, len(data)))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()

    def fileno(self) -> int:
        return self.handle.fileno()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self.handle.close()

    @property
    def closed(self) -> bool:
        return self.handle.closed

    def __enter__(self) -> CountingHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RecordingPathFile(PathFile):
    """A PathFile that records every handle it opens."""

    opened: t.ClassVar[list[CountingHandle]] = []

    def open(self) -> t.Any:
        handle = CountingHandle(t.cast(t.BinaryIO, super().open()))
        self.opened.append(handle)
        return handle


class RecordingView(PathDownloadView):
    def get_file(self) -> DownloadFile:
        return RecordingPathFile(self.get_path())


class RecordingWrapper:
    """A ``wsgi.file_wrapper`` that records what it was given."""

    instances: t.ClassVar[list[RecordingWrapper]] = []

    def __init__(self, filelike: t.Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        self.closed = False
        self.position: int | None = None
        if hasattr(filelike, "fileno"):
            self.position = os.lseek(filelike.fileno(), 0, os.SEEK_CUR)
        self.instances.append(self)

    def __iter__(self) -> cabc.Iterator[bytes]:
        while data := self.filelike.read(self.blksize):
            yield data

    def close(self) -> None:
        self.closed = True
        self.filelike.close()


@pytest.fixture
def recording(
    app_factory: cabc.Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> t.Any:
    # CountingHandle reads the file's own bytes: let the engine send it from
    # its descriptor as it does a plain file (a stream of unknown type that
    # has a fileno() is read through instead: test_audit7_http.py).
    monkeypatch.setattr(_download, "_reads_its_file", lambda handle: True)
    RecordingWrapper.instances = []
    RecordingPathFile.opened = []
    app = app_factory(DOWNLOAD_CHUNK_SIZE=100)
    app.add_url_rule("/r/<path:path>", view_func=RecordingView.as_view("r"))
    return app.test_client()


def test_file_wrapper_used_for_whole_file(recording: t.Any) -> None:
    env = {"wsgi.file_wrapper": RecordingWrapper}
    with recording.get("/r/data.bin", environ_overrides=env) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA
    [wrapper] = RecordingWrapper.instances
    assert wrapper.blksize == 100
    assert wrapper.closed
    [handle] = RecordingPathFile.opened
    assert handle.closed
    assert sum(n for _, n in handle.reads) == SIZE


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=1000-1009", 1000, 1010),
        ("bytes=-24", SIZE - 24, SIZE),
        ("bytes=0-9", 0, 10),
    ],
    ids=["middle", "suffix", "head"],
)
@pytest.mark.parametrize(
    "server", ["Werkzeug/3.0", "gunicorn/23.0"], ids=["generic", "gunicorn"]
)
def test_file_wrapper_used_for_single_range(
    recording: t.Any,
    header: str,
    start: int,
    stop: int,
    server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small bodies are read on gunicorn (test_small_bodies_are_read_on_gunicorn);
    # these ranges stand for larger ones here, to check the sendfile path.
    monkeypatch.setattr(_download, "SMALL_BODY", 0)
    env = {"wsgi.file_wrapper": RecordingWrapper, "SERVER_SOFTWARE": server}
    with recording.get(
        "/r/data.bin", headers={"Range": header}, environ_overrides=env
    ) as rv:
        assert rv.status_code == 206
        assert rv.data == DATA[start:stop]
        assert rv.headers["Content-Length"] == str(stop - start)
    [wrapper] = RecordingWrapper.instances
    assert wrapper.closed
    [handle] = RecordingPathFile.opened
    assert handle.closed
    # Positioned at the range start: nothing read before it, nothing past it.
    assert handle.reads
    assert all(position >= start for position, _ in handle.reads)
    assert sum(n for _, n in handle.reads) == stop - start
    if server.startswith("gunicorn/"):
        assert callable(getattr(wrapper.filelike, "fileno", None))
        assert wrapper.position == start


def test_file_wrapper_not_used_for_multipart(recording: t.Any) -> None:
    env = {"wsgi.file_wrapper": RecordingWrapper}
    headers = {"Range": "bytes=0-1,10-11"}
    with recording.get("/r/data.bin", headers=headers, environ_overrides=env) as rv:
        assert rv.status_code == 206
        assert [b for _, _, b in parse_multipart(rv)] == [DATA[0:2], DATA[10:12]]
    assert RecordingWrapper.instances == []
    [handle] = RecordingPathFile.opened
    assert handle.closed


def test_file_wrapper_not_used_for_virtual_file(app: Flask) -> None:
    RecordingWrapper.instances = []
    client = virtual(app, content=DATA)
    env = {"wsgi.file_wrapper": RecordingWrapper}
    with client.get("/d", environ_overrides=env) as rv:
        assert rv.data == DATA
    assert RecordingWrapper.instances == []


@pytest.mark.filterwarnings("error::ResourceWarning")
@pytest.mark.parametrize("wrapped", [False, True], ids=["streamed", "file-wrapper"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Range": "bytes=100-999"}, {"Range": "bytes=0-9,200-999"}],
    ids=["whole", "range", "multipart"],
)
def test_file_closed_on_client_hang_up(
    recording: t.Any, wrapped: bool, headers: dict[str, str]
) -> None:
    env = {"wsgi.file_wrapper": RecordingWrapper} if wrapped else {}
    rv = recording.get(
        "/r/data.bin", headers=headers, environ_overrides=env, buffered=False
    )
    first = next(iter(rv.response))
    assert first
    [handle] = RecordingPathFile.opened
    assert not handle.closed
    rv.close()
    assert handle.closed


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("HEAD", {}, 200),
        ("HEAD", {"Range": "bytes=0-9"}, None),
        ("GET", {"If-None-Match": "*"}, 304),
        ("GET", {"If-Match": '"other"'}, 412),
        ("GET", {"Range": "bytes=9999-"}, 416),
    ],
    ids=["head", "head-range", "304", "412", "416"],
)
def test_file_not_opened_without_body(
    recording: t.Any, method: str, headers: dict[str, str], status: int | None
) -> None:
    with recording.open("/r/data.bin", method=method, headers=headers) as rv:
        if status is not None:
            assert rv.status_code == status
        assert rv.data == b""
    assert RecordingPathFile.opened == []


def test_head_has_same_headers_as_get(files_client: t.Any) -> None:
    with (
        files_client.get("/files/data.bin") as get,
        files_client.head("/files/data.bin") as head,
    ):
        assert head.status_code == 200
        assert head.data == b""
        for name in (
            "Content-Type",
            "Content-Length",
            "Content-Disposition",
            "ETag",
            "Last-Modified",
            "Accept-Ranges",
            "X-Content-Type-Options",
        ):
            assert head.headers[name] == get.headers[name]


class VanishingFile(DownloadFile):
    """A file whose source disappears between stat and open."""

    seekable = True
    size = 10
    name = "gone.bin"
    etag = "gone"

    def open(self) -> t.IO[bytes]:
        raise FileNotFound("deleted after the view stat-ed it")


class VanishingView(VirtualDownloadView):
    def get_file(self) -> DownloadFile:
        return VanishingFile()


class DeletedPathView(PathDownloadView):
    def get_file(self) -> DownloadFile:
        file = PathFile(self.get_path())
        os.remove(file.path)
        return file


@pytest.mark.parametrize("view", [VanishingView], ids=["open-raises"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Range": "bytes=0-4"}, {"Range": "bytes=0-1,3-4"}],
    ids=["whole", "range", "multipart"],
)
@pytest.mark.parametrize("wrapped", [False, True], ids=["streamed", "file-wrapper"])
def test_file_deleted_after_stat_returns_404(
    app: Flask, view: type[t.Any], headers: dict[str, str], wrapped: bool
) -> None:
    app.add_url_rule("/x/<path:path>", view_func=view.as_view("x"))
    client = app.test_client()
    env = {"wsgi.file_wrapper": RecordingWrapper} if wrapped else {}
    with client.get("/x/hello.txt", headers=headers, environ_overrides=env) as rv:
        assert rv.status_code == 404
        assert "Content-Disposition" not in rv.headers
        assert "Content-Range" not in rv.headers


@pytest.mark.parametrize(
    ("headers", "body"),
    [({}, b"Hello, world!\n"), ({"Range": "bytes=0-4"}, b"Hello")],
    ids=["whole", "range"],
)
@pytest.mark.parametrize("wrapped", [False, True], ids=["streamed", "file-wrapper"])
def test_path_deleted_after_open_is_still_served(
    app: Flask, headers: dict[str, str], body: bytes, wrapped: bool
) -> None:
    """Issue #11: the body comes from the descriptor the headers were made
    from, so a name unlinked after the view opened it changes nothing."""
    app.add_url_rule("/x/<path:path>", view_func=DeletedPathView.as_view("x"))
    client = app.test_client()
    env = {"wsgi.file_wrapper": RecordingWrapper} if wrapped else {}
    with client.get("/x/hello.txt", headers=headers, environ_overrides=env) as rv:
        assert rv.status_code in (200, 206)
        assert rv.data == body


def test_server_file_wrapper_is_returned_unwrapped(download_root: pathlib.Path) -> None:
    """gunicorn only uses sendfile when it gets its own FileWrapper back."""
    from werkzeug.test import EnvironBuilder

    class ServerWrapper:
        def __init__(self, filelike: t.Any, blksize: int) -> None:
            self.filelike = filelike

        def __iter__(self) -> t.Iterator[bytes]:
            return iter(lambda: self.filelike.read(8192), b"")

        def close(self) -> None:
            self.filelike.close()

    environ = EnvironBuilder("/").get_environ()
    environ["wsgi.file_wrapper"] = ServerWrapper
    response = DownloadResponse(PathFile(download_root / "data.bin"))
    app_iter = response(environ, lambda status, headers: None)
    assert isinstance(app_iter, ServerWrapper)
    assert app_iter.filelike.fileno() > 0
    assert b"".join(app_iter) == (download_root / "data.bin").read_bytes()
    app_iter.close()
    assert response._handle is None


# -- shared helpers -----------------------------------------------------------


class KnownFile(DownloadFile):
    name = "report.txt"
    mimetype = "text/csv"
    encoding = "gzip"
    charset = "latin-1"


@pytest.mark.parametrize(
    ("view_values", "expected"),
    [
        (
            {},
            (
                "report.txt",
                "text/csv; charset=latin-1",
                "gzip",
                'attachment; filename="report.txt"',
            ),
        ),
        (
            {"basename": "r.html", "mimetype": "text/html", "charset": "utf-16"},
            (
                "r.html",
                "text/html; charset=utf-16",
                "gzip",
                'attachment; filename="r.html"',
            ),
        ),
    ],
    ids=["file-values", "view-values-win"],
)
def test_representation_falls_back_to_the_file(
    view_values: dict[str, str], expected: tuple[str, str, str, str]
) -> None:
    values: dict[str, t.Any] = {
        "basename": None,
        "mimetype": None,
        "encoding": None,
        "charset": None,
        **view_values,
    }
    assert representation(KnownFile(), **values, attachment=True) == expected
    response = DownloadResponse(KnownFile(), **values)
    try:
        assert response.headers["Content-Type"] == expected[1]
        assert response.headers["Content-Encoding"] == expected[2]
        assert response.headers["Content-Disposition"] == expected[3]
    finally:
        response.close()


def test_validator_headers() -> None:
    modified = datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=datetime.timezone.utc)
    file = DownloadFile()
    assert validator_headers(file, None) == []
    file.etag, file.modified_time = "v1", modified
    assert validator_headers(file, "no-cache") == [
        ("Last-Modified", http_date(modified)),
        ("ETag", '"v1"'),
        ("Cache-Control", "no-cache"),
    ]


# -- text sources (issue 13) ---------------------------------------------------


def test_str_chunks_of_a_custom_wrapper_are_encoded(app: Flask) -> None:
    """Issue 13: no str reaches the server, whatever a wrapper yields."""

    class TextChunks(DownloadFile):
        name = "t.txt"
        charset = "latin-1"

        def chunks(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            yield "été"
            yield b"!"

    with app.test_request_context():
        response = DownloadResponse(TextChunks())
        assert response.headers["Content-Type"] == "text/plain; charset=latin-1"
        body = list(response.iter_encoded())
        response.close()
    assert body == ["été".encode("latin-1"), b"!"]
    with app.test_request_context():
        # The charset the response announces is the one the text goes out in.
        response = DownloadResponse(TextChunks(), charset="utf-16-le")
        assert response.headers["Content-Type"] == "text/plain; charset=utf-16-le"
        body = list(response.iter_encoded())
        response.close()
    assert body == ["été".encode("utf-16-le"), b"!"]


def test_encoded_text_announces_its_own_charset(app: Flask) -> None:
    """The bytes of a text VirtualFile are in its charset: a view charset
    cannot relabel them."""
    from flask_download import VirtualFile

    with app.test_request_context():
        response = DownloadResponse(
            VirtualFile("été", name="t.txt", charset="latin-1"), charset="utf-8"
        )
        assert response.headers["Content-Type"] == "text/plain; charset=latin-1"
        assert response.headers["Content-Length"] == "3"
        response.close()


def test_view_charset_encodes_virtual_text(app: Flask) -> None:
    app.add_url_rule(
        "/t",
        view_func=VirtualDownloadView.as_view(
            "t", content="été", basename="t.txt", charset="latin-1"
        ),
    )
    with app.test_client().get("/t") as rv:
        assert rv.headers["Content-Type"] == "text/plain; charset=latin-1"
        assert rv.data == "été".encode("latin-1")
        assert rv.headers["Content-Length"] == "3"


@pytest.mark.parametrize(
    ("name", "value", "sent"),
    [
        ("Content-Location", "/files/é.txt", "/files/%C3%A9.txt"),
        ("Location", "/files/ü", "/files/%C3%BC"),
    ],
    ids=["content-location", "location"],
)
def test_location_headers_added_by_the_app_are_still_encoded(
    app: Flask, name: str, value: str, sent: str
) -> None:
    """Issue 16: downloads skip Werkzeug's header copy, unless it has work."""
    app.add_url_rule("/p/<path:path>", view_func=PathDownloadView.as_view("p"))

    @app.after_request
    def add(response: t.Any) -> t.Any:
        response.headers[name] = value
        return response

    with serving(make_server("127.0.0.1", 0, app, threaded=True)) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", "/p/hello.txt")
            rv = conn.getresponse()
            assert rv.read() == b"Hello, world!\n"
        finally:
            conn.close()
    assert rv.status == 200
    assert rv.getheader(name) == sent
    assert rv.getheader("Content-Length") == "14"


def test_download_headers_reach_the_server_unchanged(app: Flask) -> None:
    app.add_url_rule("/p/<path:path>", view_func=PathDownloadView.as_view("p"))
    with app.test_request_context("/p/hello.txt"):
        response = app.full_dispatch_request()
        try:
            expected = response.headers.to_wsgi_list()
            _, status, headers = response.get_wsgi_response({"REQUEST_METHOD": "HEAD"})
        finally:
            response.close()
    assert status == "200 OK"
    assert headers == expected


@pytest.mark.parametrize("kind", ["chunks", "text-mode"])
def test_streamed_text_goes_out_in_the_view_charset(
    app: Flask, tmp_path: pathlib.Path, kind: str
) -> None:
    """Issue 13: text a wrapper encodes while streaming uses the charset the
    response announces, the view's when the wrapper was given none."""
    from flask_download import VirtualFile

    path = tmp_path / "t.txt"
    path.write_text("Un été\n", encoding="utf-8")

    class Streamed(VirtualDownloadView):
        charset = "latin-1"

        def get_file(self) -> DownloadFile:
            if kind == "chunks":
                return VirtualFile(iter(["Un ", "été\n"]), name="t.txt")
            return VirtualFile(path.open(encoding="utf-8"), name="t.txt")

    app.add_url_rule("/s", view_func=Streamed.as_view("s"))
    with app.test_client().get("/s") as rv:
        assert rv.headers["Content-Type"] == "text/plain; charset=latin-1"
        assert rv.data == "Un été\n".encode("latin-1")


@pytest.mark.parametrize("bad", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb"])
def test_header_values_with_newlines_are_refused(app: Flask, bad: str) -> None:
    """Issue 16: the headers are checked in one pass, as strictly as
    Werkzeug checks each one."""
    from flask_download import VirtualFile

    with app.test_request_context(), pytest.raises(ValueError, match="newline"):
        DownloadResponse(VirtualFile(b"x", name="x.bin", etag=bad))


def test_304_headers_over_the_wire(app: Flask, download_root: pathlib.Path) -> None:
    """Issue 16: a 304 goes out with its validators only, on a real server:
    no Content-Type, no Content-Length, Last-Modified kept; a header an
    application adds that a 304 may not carry is still removed."""
    app.add_url_rule("/p/<path:path>", view_func=PathDownloadView.as_view("p"))
    added: list[tuple[str, str]] = []

    @app.after_request
    def add(response: t.Any) -> t.Any:
        for name, value in added:
            response.headers[name] = value
        return response

    def get(path: str, etag: str | None = None) -> t.Any:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", path, headers={"If-None-Match": etag} if etag else {})
            rv = conn.getresponse()
            rv.read()
            return rv
        finally:
            conn.close()

    with serving(make_server("127.0.0.1", 0, app, threaded=True)) as server:
        first = get("/p/hello.txt")
        etag = first.getheader("ETag")
        plain = get("/p/hello.txt", etag)
        added[:] = [("X-Frame-Options", "DENY"), ("Content-Language", "en")]
        with_added = get("/p/hello.txt", etag)
    assert first.status == 200
    assert plain.status == 304
    names = {name.lower() for name, _ in plain.getheaders()}
    assert names >= {"etag", "last-modified", "cache-control"}
    assert not names & {"content-type", "content-length", "content-disposition"}
    assert plain.getheader("ETag") == etag
    assert plain.getheader("Last-Modified") == first.getheader("Last-Modified")
    assert with_added.status == 304
    assert with_added.getheader("X-Frame-Options") == "DENY"
    assert with_added.getheader("Content-Language") is None
    assert with_added.getheader("Last-Modified") == first.getheader("Last-Modified")


def test_changed_file_gets_new_validators_over_the_wire(
    app: Flask, download_root: pathlib.Path
) -> None:
    """Issue 16: nothing cached per name serves stale validators: a file
    rewritten with another size and mtime gets a new ETag and Last-Modified,
    and the old ETag no longer gives 304."""
    app.add_url_rule("/p/<path:path>", view_func=PathDownloadView.as_view("p"))
    path = download_root / "hello.txt"

    def get(etag: str | None = None) -> t.Any:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            headers = {"If-None-Match": etag} if etag else {}
            conn.request("GET", "/p/hello.txt", headers=headers)
            rv = conn.getresponse()
            return rv, rv.read()
        finally:
            conn.close()

    with serving(make_server("127.0.0.1", 0, app, threaded=True)) as server:
        before, _ = get()
        assert get(before.getheader("ETag"))[0].status == 304
        path.write_bytes(b"Hello again, world!\n")
        os.utime(path, (1_600_000_000, 1_600_000_000))  # not the samples' time
        after, body = get()
        revalidated, _ = get(before.getheader("ETag"))
    assert body == b"Hello again, world!\n"
    assert after.getheader("Content-Length") == "20"
    assert after.getheader("ETag") != before.getheader("ETag")
    assert after.getheader("Last-Modified") == http_date(1_600_000_000)
    assert after.getheader("Last-Modified") != before.getheader("Last-Modified")
    assert revalidated.status == 200


# -- the charset text is encoded with (review 13) ------------------------------


def _text_view(
    app: Flask, make: cabc.Callable[[], DownloadFile], **attrs: t.Any
) -> t.Any:
    class Text(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return make()

    return route(app, Text, **attrs)


@pytest.mark.parametrize("kind", ["chunks", "text-mode", "chunks-no-name"], ids=str)
@pytest.mark.parametrize(
    ("attrs", "charset"),
    [
        ({"mimetype": "text/plain; charset=latin-1"}, "latin-1"),
        ({"mimetype": 'text/plain; charset="latin-1"'}, "latin-1"),
        ({"mimetype": "text/plain; CHARSET=utf-16"}, "utf-16"),
        ({"mimetype": "application/json; charset=utf-16-le"}, "utf-16-le"),
        ({"mimetype": "text/plain; charset=latin-1", "charset": "utf-16"}, "latin-1"),
        ({"charset": "latin-1"}, "latin-1"),
    ],
    ids=[
        "mimetype-param",
        "mimetype-quoted",
        "mimetype-upper-name",
        "mimetype-non-text",
        "mimetype-param-wins",
        "charset-keyword",
    ],
)
def test_streamed_text_is_encoded_with_the_announced_charset(
    app: Flask, tmp_path: pathlib.Path, kind: str, attrs: dict[str, str], charset: str
) -> None:
    """Review 13: a charset given in ``mimetype`` is the one str chunks and
    text-mode files are encoded with, not only the one announced."""
    from flask_download import VirtualFile

    path = tmp_path / "t.txt"
    path.write_text("Un été\n", encoding="utf-8")

    def make() -> DownloadFile:
        if kind == "text-mode":
            return VirtualFile(path.open(encoding="utf-8"), name="t.txt")
        name = None if kind == "chunks-no-name" else "t.txt"
        return VirtualFile(iter(["Un ", "été\n"]), name=name)

    client = _text_view(app, make, **attrs)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        if "mimetype" in attrs or kind != "chunks-no-name":
            assert rv.mimetype_params["charset"] == charset
        else:  # application/octet-stream: no charset announced
            assert "charset" not in rv.mimetype_params
        assert rv.data == "Un été\n".encode(charset)


@pytest.mark.parametrize(
    ("content", "attrs", "charset"),
    [
        ("café", {"mimetype": "text/plain; charset=latin-1"}, "latin-1"),
        ("café", {"mimetype": "TEXT/PLAIN; Charset=latin-1"}, "latin-1"),
        ("café", {"mimetype": "application/xml; charset=latin-1"}, "latin-1"),
        (
            "café",
            {"basename": "a.bin", "mimetype": "text/csv; charset=utf-16"},
            "utf-16",
        ),
    ],
    ids=["text", "upper-case", "non-text-with-param", "csv"],
)
def test_text_content_is_encoded_in_the_charset_the_mimetype_names(
    app: Flask, content: str, attrs: dict[str, str], charset: str
) -> None:
    """VirtualDownloadView's ``content`` is encoded in the charset its
    ``mimetype`` names (the view makes the wrapper, and tells it)."""
    attrs = {"basename": "a.txt", **attrs}
    client = virtual(app, content=content, **attrs)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert rv.mimetype_params["charset"] == charset
        assert rv.data == content.encode(charset)
        assert rv.headers["Content-Length"] == str(len(content.encode(charset)))
        assert rv.data.decode(rv.mimetype_params["charset"]) == content


@pytest.mark.parametrize(
    "mimetype",
    ["text/plain; charset=latin-1", "TEXT/PLAIN; Charset=latin-1"],
)
def test_text_encoded_by_the_wrapper_is_announced_as_encoded(
    app: Flask, mimetype: str
) -> None:
    """Review 13: a VirtualFile made without a charset encodes a str in
    UTF-8 when it is made, and its size and ETag come from those bytes: a
    charset parameter of the view's ``mimetype`` cannot relabel them, so the
    header names the charset the bytes are in and Content-Length counts them."""
    client = _text_view(
        app, lambda: VirtualFile("café", name="a.txt"), mimetype=mimetype
    )
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert rv.mimetype_params["charset"] == "utf-8"
        assert rv.data == "café".encode()
        assert rv.headers["Content-Length"] == "5"


def test_stringio_is_announced_in_the_charset_it_was_encoded_with(app: Flask) -> None:
    import io

    from flask_download import VirtualFile

    def make() -> DownloadFile:
        return VirtualFile(io.StringIO("café"), name="a.txt", charset="latin-1")

    client = _text_view(app, make, mimetype="text/plain; charset=utf-16")
    with client.get("/d", headers={"Range": "bytes=3-3"}) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Type"] == "text/plain; charset=latin-1"
        assert rv.data == "é".encode("latin-1")
        assert rv.headers["Content-Range"] == "bytes 3-3/4"


def test_streamed_text_with_a_charset_of_its_own_announces_it(app: Flask) -> None:
    """A wrapper told its charset encodes with it: the view's cannot relabel
    the bytes."""
    from flask_download import VirtualFile

    def make() -> DownloadFile:
        return VirtualFile(iter(["été"]), name="t.txt", charset="latin-1")

    client = _text_view(app, make, mimetype="text/plain; charset=utf-8")
    with client.get("/d") as rv:
        assert rv.headers["Content-Type"] == "text/plain; charset=latin-1"
        assert rv.data == "été".encode("latin-1")


@pytest.mark.parametrize(
    "attrs",
    [
        {"mimetype": "text/plain; charset=no-such-charset"},
        {"charset": "no-such-charset"},
        {"charset": "base64"},
    ],
    ids=["mimetype-param", "charset-keyword", "not-a-text-encoding"],
)
def test_streamed_text_in_an_unknown_charset_goes_out_as_utf8(
    app: Flask, attrs: dict[str, str]
) -> None:
    """A charset no codec knows cannot encode anything: the text is sent in
    UTF-8 and the header says so, rather than failing mid-body."""
    from flask_download import VirtualFile

    client = _text_view(app, lambda: VirtualFile(iter(["été"]), name="t.txt"), **attrs)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert rv.data == "été".encode()


# -- text from a custom wrapper's open() (review 13) ---------------------------


class TextOpen(DownloadFile):
    """A subclass whose open() gives text: ``size`` counts characters."""

    seekable = True
    name = "t.txt"
    text = "café!"
    size = 5

    def open(self) -> t.Any:
        import io

        return io.StringIO(self.text)


class TextOpenSized(TextOpen):
    """The same, with ``size`` counting the UTF-8 bytes."""

    size = 6


def _custom(app: Flask, file_class: type[DownloadFile], **attrs: t.Any) -> t.Any:
    class View(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return file_class()

    return route(app, View, **attrs)


def test_text_stream_from_open_is_sent_as_bytes(app: Flask) -> None:
    """Review 13: the seekable path encodes too, and Content-Length counts
    the bytes sent, not the characters the wrapper's size counted."""
    client = _custom(app, TextOpen)
    with client.get("/d") as rv:
        body = list(rv.response)
        assert rv.status_code == 200
        assert all(type(chunk) is bytes for chunk in body)
        assert b"".join(body) == "café!".encode()
        assert rv.headers["Content-Length"] == "6"


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({}, "utf-8"),
        ({"charset": "latin-1"}, "latin-1"),
        ({"charset": "utf-16"}, "utf-16"),
    ],
    ids=["default", "latin-1", "utf-16"],
)
def test_text_stream_from_open_uses_the_response_charset(
    app: Flask, attrs: dict[str, str], expected: str
) -> None:
    client = _custom(app, TextOpen, **attrs)
    with client.get("/d") as rv:
        assert rv.mimetype_params["charset"] == expected
        assert rv.data == "café!".encode(expected)
        assert rv.headers["Content-Length"] == str(len(rv.data))


@pytest.mark.parametrize(
    ("header", "status", "body"),
    [
        ("bytes=3-4", 206, "é".encode()),
        ("bytes=-3", 206, "é!".encode()),
        ("bytes=0-0,3-5", 206, None),
    ],
    ids=["middle", "suffix", "multipart"],
)
def test_text_stream_from_open_ranges_count_bytes(
    app: Flask, header: str, status: int, body: bytes | None
) -> None:
    client = _custom(app, TextOpenSized)
    with client.get("/d", headers={"Range": header}) as rv:
        assert rv.status_code == status
        if body is not None:
            assert rv.data == body
            assert rv.headers["Content-Length"] == str(len(body))
        else:
            assert b"\r\n\r\nc\r\n" in rv.data
            assert "é!".encode() in rv.data
            assert rv.headers["Content-Length"] == str(len(rv.data))


def test_text_stream_of_a_wrong_size_is_sent_whole(app: Flask) -> None:
    """A size that does not count the bytes cannot place a range: the whole
    text goes out, with its true length (RFC 9110 §14.2 lets a server
    ignore Range)."""
    client = _custom(app, TextOpen)
    for header in ("bytes=1-2", "bytes=0-0,3-4"):
        with client.get("/d", headers={"Range": header}) as rv:
            assert rv.status_code == 200
            assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert "Content-Range" not in rv.headers
            assert rv.data == "café!".encode()
            assert rv.headers["Content-Length"] == "6"


def test_text_stream_is_never_handed_to_the_file_wrapper(
    app: Flask, download_root: pathlib.Path
) -> None:
    """Review 13: a wrapper with a local path whose open() gives text is
    streamed encoded by Python, not given to wsgi.file_wrapper."""
    path = download_root / "latin.txt"
    path.write_bytes("café\n".encode("latin-1"))
    handed: list[t.Any] = []

    class LocalText(DownloadFile):
        seekable = True
        name = "latin.txt"
        charset = "latin-1"

        def __init__(self) -> None:
            self.path = os.fspath(path)
            self.size = path.stat().st_size

        def open(self) -> t.Any:
            return open(self.path, encoding="latin-1")

    def file_wrapper(filelike: t.Any, block_size: int) -> t.Any:
        handed.append(filelike)
        return iter(lambda: filelike.read(block_size), b"")

    with app.test_request_context():
        response = DownloadResponse(LocalText())
        environ = {"REQUEST_METHOD": "GET", "wsgi.file_wrapper": file_wrapper}
        app_iter, status, headers = response.get_wsgi_response(environ)
        try:
            body = list(app_iter)
        finally:
            t.cast(t.Any, app_iter).close()
    assert handed == []
    assert status == "200 OK"
    assert all(type(chunk) is bytes for chunk in body)
    assert b"".join(body) == "café\n".encode("latin-1")
    assert ("Content-Type", "text/plain; charset=latin-1") in headers
    assert ("Content-Length", "5") in headers


def test_text_stream_from_open_read_directly(app: Flask) -> None:
    with app.test_request_context():
        response = DownloadResponse(TextOpenSized(), charset="latin-1")
        try:
            assert b"".join(response.iter_encoded()) == "café!".encode("latin-1")
        finally:
            response.close()


def test_str_chunks_of_a_stateful_encoding_are_encoded_once(app: Flask) -> None:
    """One encoder for the whole body: UTF-16 writes its byte order mark
    once, not once a chunk."""

    class TextChunks(DownloadFile):
        name = "t.txt"

        def chunks(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            yield "ab"
            yield "cd"

    with app.test_request_context():
        response = DownloadResponse(TextChunks(), charset="utf-16")
        body = b"".join(response.iter_encoded())
        response.close()
    assert body == "abcd".encode("utf-16")


# -- media types (review 13) ---------------------------------------------------


@pytest.mark.parametrize(
    ("mimetype", "charset", "expected"),
    [
        ("TEXT/PLAIN", None, "text/plain; charset=utf-8"),
        ("Text/Csv", "latin-1", "text/csv; charset=latin-1"),
        ("text/plain; x-charset=foo", None, "text/plain; x-charset=foo; charset=utf-8"),
        ("text/plain; format=flowed", None, "text/plain; format=flowed; charset=utf-8"),
        ("text/plain;charset=latin-1", "utf-16", "text/plain; charset=latin-1"),
        ("text/plain; CHARSET=latin-1", None, "text/plain; CHARSET=latin-1"),
        ('text/plain; charset="latin-1"', None, 'text/plain; charset="latin-1"'),
        ("TEXT/HTML; Level=1", None, "text/html; Level=1; charset=utf-8"),
        ("IMAGE/PNG", "latin-1", "image/png"),
        ("Application/Vnd.MS-Excel", None, "application/vnd.ms-excel"),
    ],
    ids=[
        "upper-case",
        "mixed-case-with-charset",
        "x-charset-is-not-charset",
        "other-parameter",
        "given-charset-wins",
        "charset-name-case",
        "quoted-charset",
        "upper-case-with-parameter",
        "binary-upper-case",
        "vendor-type",
    ],
)
def test_media_type_case_and_parameters(
    app: Flask, mimetype: str, charset: str | None, expected: str
) -> None:
    """Review 13: type and subtype are case-insensitive (RFC 9110 §8.3.1),
    and only a real charset parameter keeps the charset from being added."""
    client = virtual(app, basename="a.bin", mimetype=mimetype, charset=charset)
    with client.get("/d") as rv:
        assert rv.headers["Content-Type"] == expected


def test_row_values_in_upper_case_get_the_row_charset() -> None:
    """Review 13: what ObjectDownloadView sets on the wrapper from a row
    (``TEXT/CSV`` and a charset_field of ``latin-1``)."""
    file = DownloadFile()
    file.name, file.mimetype, file.charset = "r.csv", "TEXT/CSV", "latin-1"
    _, content_type, _, _ = representation(file, None, None, None, None, True)
    assert content_type == "text/csv; charset=latin-1"


# -- names that are not str (review 13) ----------------------------------------


class _BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no name")


@pytest.mark.parametrize(
    ("name", "disposition"),
    [
        (b"bytes.txt", 'attachment; filename="bytes.txt"'),
        (bytearray(b"array.txt"), 'attachment; filename="array.txt"'),
        (
            "été.txt".encode(),
            "attachment; filename=\"ete.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt",
        ),
        (123, 'attachment; filename="123"'),
        (pathlib.PurePosixPath("p.txt"), 'attachment; filename="p.txt"'),
        (_BadStr(), "attachment"),
    ],
    ids=["bytes", "bytearray", "utf8-bytes", "int", "path", "failing-str"],
)
@pytest.mark.parametrize("where", ["basename", "wrapper"])
def test_names_that_are_not_str_never_cause_a_500(
    app: Flask, name: t.Any, disposition: str, where: str
) -> None:
    """Review 13: a basename from a non-string column, or a wrapper's name,
    is made a str (bytes decoded as UTF-8) instead of failing."""
    from flask_download import VirtualFile

    class Named(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"x", name=name if where == "wrapper" else None)

    client = route(app, Named, basename=name if where == "basename" else None)
    with client.get("/d") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Disposition"] == disposition


def test_undecodable_bytes_name_gets_replacement_characters(app: Flask) -> None:
    client = virtual(app, basename=b"\xff.txt")
    with client.get("/d") as rv:
        assert rv.status_code == 200
        value = rv.headers["Content-Disposition"]
    assert value.endswith("filename*=UTF-8''%EF%BF%BD.txt")
    assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_text_the_charset_cannot_encode_fails_before_the_headers(app: Flask) -> None:
    """The text from open() is measured before anything is sent: a character
    the charset cannot encode fails there (and the stream is closed), not
    in the middle of a body whose headers are out."""
    import io

    streams: list[io.StringIO] = []

    class Euro(TextOpen):
        def open(self) -> t.Any:
            streams.append(io.StringIO("€uro"))
            return streams[-1]

    with app.test_request_context():
        response = DownloadResponse(Euro(), charset="latin-1")
        with pytest.raises(UnicodeEncodeError):
            response.get_wsgi_response({"REQUEST_METHOD": "GET"})
    assert streams[0].closed


def test_chunks_that_are_not_bytes_or_str_are_refused(app: Flask) -> None:
    class Numbers(DownloadFile):
        name = "n.bin"

        def chunks(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            yield bytearray(b"ab")
            yield memoryview(b"cd")
            yield 5

    with app.test_request_context():
        response = DownloadResponse(Numbers())
        body = response.iter_encoded()
        try:
            assert next(body) == b"ab"
            assert next(body) == b"cd"
            with pytest.raises(TypeError, match="'int'"):
                next(body)
        finally:
            response.close()
