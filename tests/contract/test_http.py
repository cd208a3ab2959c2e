"""DESIGN §3: HTTP behaviour of every download response."""

from __future__ import annotations

import email.message
import email.parser
import gc
import http.client
import io
import os
import pathlib
import re
import typing as t

import pytest
from flask import Flask

from flask_download import DownloadFile
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile

from .conftest import check_handles_close
from .conftest import Live


def _virtual(app: Flask, content: t.Any = b"x", **attrs: t.Any) -> t.Any:
    app.add_url_rule(
        "/v", view_func=VirtualDownloadView.as_view("v", content=content, **attrs)
    )
    return app.test_client()


def _path(app: Flask, path: str = "data.bin", **attrs: t.Any) -> t.Any:
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path=path, **attrs))
    return app.test_client()


# -- Content-Type --------------------------------------------------------------


@pytest.mark.parametrize(
    ("basename", "expected"),
    [
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.csv", "text/csv; charset=utf-8"),
        ("a.html", "text/html; charset=utf-8"),
        ("a.png", "image/png"),
        ("a.pdf", "application/pdf"),
        ("a.unknownext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_content_type_guessed(app: Flask, basename: str, expected: str) -> None:
    with _virtual(app, b"x", basename=basename).get("/v") as rv:
        assert rv.headers["Content-Type"] == expected


def test_content_type_from_mimetype_attribute(app: Flask) -> None:
    client = _virtual(app, b"x", basename="a.txt", mimetype="application/pdf")
    with client.get("/v") as rv:
        assert rv.headers["Content-Type"] == "application/pdf"


def test_charset_only_for_text(app: Flask) -> None:
    client = _virtual(app, b"x", basename="a.bin", mimetype="text/x-log")
    with client.get("/v") as rv:
        assert rv.headers["Content-Type"] == "text/x-log; charset=utf-8"


# -- Content-Encoding ----------------------------------------------------------


def test_guessed_encoding_not_sent_for_attachment(app: Flask) -> None:
    with _path(app, "archive.tar.gz").get("/p") as rv:
        assert "Content-Encoding" not in rv.headers
        assert rv.headers["Content-Type"] == "application/gzip"


def test_guessed_encoding_sent_inline(app: Flask) -> None:
    with _path(app, "archive.tar.gz", attachment=False).get("/p") as rv:
        assert rv.headers["Content-Encoding"] == "gzip"
        assert rv.headers["Content-Type"] == "application/x-tar"


def test_explicit_encoding_always_sent(app: Flask) -> None:
    with _path(app, "archive.tar.gz", encoding="gzip").get("/p") as rv:
        assert rv.headers["Content-Encoding"] == "gzip"


def test_get_encoding_override_sent(app: Flask) -> None:
    class Br(VirtualDownloadView):
        content = b"x"
        basename = "a.bin"

        def get_encoding(self) -> str | None:
            return "br"

    app.add_url_rule("/b", view_func=Br.as_view("b"))
    with app.test_client().get("/b") as rv:
        assert rv.headers["Content-Encoding"] == "br"


# -- Content-Disposition -------------------------------------------------------


@pytest.mark.parametrize(
    ("attachment", "kind"), [(True, "attachment"), (False, "inline")]
)
def test_disposition_kind_with_name(app: Flask, attachment: bool, kind: str) -> None:
    client = _virtual(app, b"x", basename="r.bin", attachment=attachment)
    with client.get("/v") as rv:
        assert rv.headers["Content-Disposition"] == f'{kind}; filename="r.bin"'


def test_disposition_without_name(app: Flask) -> None:
    client = _virtual(app, b"x")
    with client.get("/v") as rv:
        assert rv.headers["Content-Disposition"] == "attachment"


def test_disposition_escapes_quote_and_backslash(app: Flask) -> None:
    with _virtual(app, b"x", basename='a"b\\c;d.txt').get("/v") as rv:
        assert rv.headers["Content-Disposition"] == (
            'attachment; filename="a\\"b\\\\c;d.txt"'
        )


def test_disposition_non_ascii(app: Flask) -> None:
    with _virtual(app, b"x", basename="été 2024.pdf").get("/v") as rv:
        value = rv.headers["Content-Disposition"]
    assert value.startswith("attachment; ")
    assert "filename*=UTF-8''%C3%A9t%C3%A9%202024.pdf" in value
    fallback = re.search(r'filename="([^"]*)"', value)
    assert fallback is not None
    assert fallback.group(1).endswith(".pdf")
    assert fallback.group(1) != ".pdf"
    assert fallback.group(1).isascii()


@pytest.mark.parametrize(
    "name", ["日本語.txt", "€", "Ω", "名"], ids=["cjk-ext", "euro", "omega", "one-cjk"]
)
def test_disposition_fallback_never_empty(app: Flask, name: str) -> None:
    with _virtual(app, b"x", basename=name).get("/v") as rv:
        value = rv.headers["Content-Disposition"]
    fallback = re.search(r'filename="([^"]*)"', value)
    assert fallback is not None and fallback.group(1)
    if "." in name:
        assert fallback.group(1).endswith(".txt")
    assert "filename*=UTF-8''" in value


@pytest.mark.parametrize(
    "name",
    [
        "a\r\nSet-Cookie: x=1.txt",
        "a\nX-Injected: 1.txt",
        "a\x00b.txt",
        "a\tb.txt",
        "a\x7fb.txt",
        "a\x85b.txt",
        "a\x1bb.txt",
        "a\u2028b.txt",
    ],
    ids=["crlf", "lf", "nul", "tab", "del", "c1-nel", "esc", "line-sep"],
)
def test_disposition_control_characters_deleted(
    app: Flask, serve: t.Callable[[t.Any], Live], name: str
) -> None:
    _virtual(app, b"x", basename=name)
    live = serve(app)
    status, headers, body = live.get("/v")
    assert status == 200
    assert body == b"x"
    value = headers["Content-Disposition"]
    assert not re.search(r"[\x00-\x1f\x7f\x80-\x9f]", value)
    assert headers.get("Set-Cookie") is None
    assert headers.get("X-Injected") is None
    assert value.count("filename=") == 1


@pytest.mark.parametrize(
    "name",
    ['x"; filename="evil.exe', "x.txt; filename*=UTF-8''evil.exe", "\\", '"', ""],
    ids=["quote-param", "star-param", "backslash", "quote", "empty"],
)
def test_disposition_name_cannot_add_parameter(app: Flask, name: str) -> None:
    with _virtual(app, b"x", basename=name).get("/v") as rv:
        assert rv.status_code == 200
        value = rv.headers["Content-Disposition"]
    message = email.message.Message()
    message["Content-Disposition"] = value
    params = dict(message.get_params(header="Content-Disposition") or [])
    assert set(params) <= {"attachment", "filename", "filename*"}
    if name:
        # The whole name is one parameter's value, not two parameters.
        assert params["filename"] in (name, name.replace('"', "_"))


# -- Content-Length, nosniff, CSP, Cache-Control -------------------------------


def test_content_length_and_nosniff(app: Flask) -> None:
    with _path(app).get("/p") as rv:
        assert rv.headers["Content-Length"] == "1024"
        assert rv.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "basename", ["p.html", "p.xhtml", "p.svg", "p.xml"], ids=lambda n: n
)
def test_inline_active_types_are_sandboxed(app: Flask, basename: str) -> None:
    client = _virtual(app, b"<x/>", basename=basename, attachment=False)
    with client.get("/v") as rv:
        assert rv.headers["Content-Security-Policy"] == "sandbox"


def test_inline_plain_text_not_sandboxed(app: Flask) -> None:
    client = _virtual(app, b"<x/>", basename="p.txt", attachment=False)
    with client.get("/v") as rv:
        assert "Content-Security-Policy" not in rv.headers


def test_content_security_policy_attribute(app: Flask) -> None:
    app.add_url_rule(
        "/none",
        view_func=VirtualDownloadView.as_view(
            "none",
            content=b"<p>",
            basename="p.html",
            attachment=False,
            content_security_policy=None,
        ),
    )
    app.add_url_rule(
        "/custom",
        view_func=VirtualDownloadView.as_view(
            "custom",
            content=b"<p>",
            basename="p.html",
            attachment=False,
            content_security_policy="default-src 'none'",
        ),
    )
    client = app.test_client()
    with client.get("/none") as rv:
        assert "Content-Security-Policy" not in rv.headers
    with client.get("/custom") as rv:
        assert rv.headers["Content-Security-Policy"] == "default-src 'none'"


# -- validators and preconditions ----------------------------------------------


def test_last_modified_and_strong_etag(app: Flask) -> None:
    with _path(app).get("/p") as rv:
        assert rv.headers["Last-Modified"].endswith("GMT")
        etag = rv.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")


def _validators(client: t.Any) -> tuple[str, str]:
    with client.get("/p") as rv:
        return rv.headers["ETag"], rv.headers["Last-Modified"]


def test_if_none_match_304_headers(app: Flask) -> None:
    client = _path(app)
    etag, modified = _validators(client)
    for value in (etag, f'"other", {etag}', "*", "W/" + etag):
        with client.get("/p", headers={"If-None-Match": value}) as rv:
            assert rv.status_code == 304, value
            assert rv.data == b""
            assert rv.headers["ETag"] == etag
            assert rv.headers["Last-Modified"] == modified
            assert "Cache-Control" in rv.headers
            assert "Content-Disposition" not in rv.headers


def test_if_modified_since_304(app: Flask) -> None:
    client = _path(app)
    _, modified = _validators(client)
    with client.get("/p", headers={"If-Modified-Since": modified}) as rv:
        assert rv.status_code == 304
    older = "Thu, 01 Jan 1998 00:00:00 GMT"
    with client.get("/p", headers={"If-Modified-Since": older}) as rv:
        assert rv.status_code == 200


def test_if_none_match_beats_if_modified_since(app: Flask) -> None:
    client = _path(app)
    _, modified = _validators(client)
    headers = {"If-None-Match": '"nope"', "If-Modified-Since": modified}
    with client.get("/p", headers=headers) as rv:
        assert rv.status_code == 200


def test_if_match_failure_412_no_body(app: Flask) -> None:
    client = _path(app)
    with client.get("/p", headers={"If-Match": '"nope"'}) as rv:
        assert rv.status_code == 412
        assert rv.data == b""


def test_if_match_weak_never_matches(app: Flask) -> None:
    client = _path(app)
    etag, _ = _validators(client)
    with client.get("/p", headers={"If-Match": "W/" + etag}) as rv:
        assert rv.status_code == 412
    with client.get("/p", headers={"If-Match": etag}) as rv:
        assert rv.status_code == 200
    with client.get("/p", headers={"If-Match": "*"}) as rv:
        assert rv.status_code == 200


def test_if_unmodified_since_412(app: Flask) -> None:
    client = _path(app)
    old = "Thu, 01 Jan 1998 00:00:00 GMT"
    with client.get("/p", headers={"If-Unmodified-Since": old}) as rv:
        assert rv.status_code == 412
        assert rv.data == b""


def test_if_match_goes_before_if_unmodified_since(app: Flask) -> None:
    client = _path(app)
    etag, _ = _validators(client)
    old = "Thu, 01 Jan 1998 00:00:00 GMT"
    # RFC 9110 §13.2.2: If-Match present -> If-Unmodified-Since is ignored.
    with client.get("/p", headers={"If-Match": etag, "If-Unmodified-Since": old}) as rv:
        assert rv.status_code == 200


def test_412_before_304(app: Flask) -> None:
    client = _path(app)
    etag, _ = _validators(client)
    headers = {"If-Match": '"nope"', "If-None-Match": etag}
    with client.get("/p", headers=headers) as rv:
        assert rv.status_code == 412


def test_if_none_match_on_head(app: Flask) -> None:
    client = _path(app)
    etag, _ = _validators(client)
    with client.head("/p", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "Mon, 99 Foo 2020 99:99:99 GMT",
        "Fri, 31 Dec 99999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
        "1" * 5000,
        "",
        "Thu, 01 Jan 1970 00:00:00 GMT\x00",
        "-1",
    ],
    ids=[
        "garbage",
        "bad-fields",
        "far-future",
        "year-1",
        "long",
        "empty",
        "nul",
        "neg",
    ],
)
@pytest.mark.parametrize("header", ["If-Modified-Since", "If-Unmodified-Since"])
def test_bad_dates_are_ignored(app: Flask, header: str, value: str) -> None:
    with _path(app).get("/p", headers={header: value}) as rv:
        assert rv.status_code in (200, 304, 412)
        unparseable = ("garbage", "Mon, 99 Foo 2020 99:99:99 GMT", "1" * 5000, "")
        if header == "If-Unmodified-Since" and value in unparseable:
            assert rv.status_code == 200


# -- ranges --------------------------------------------------------------------

DATA = bytes(range(256)) * 4


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=0-9", 0, 10),
        ("bytes=1000-", 1000, 1024),
        ("bytes=-24", 1000, 1024),
        ("bytes=1000-5000", 1000, 1024),
        ("bytes=-5000", 0, 1024),
        ("bytes=1023-1023", 1023, 1024),
    ],
)
def test_single_range(app: Flask, header: str, start: int, stop: int) -> None:
    with _path(app).get("/p", headers={"Range": header}) as rv:
        assert rv.status_code == 206
        assert rv.data == DATA[start:stop]
        assert rv.headers["Content-Range"] == f"bytes {start}-{stop - 1}/1024"
        assert rv.headers["Content-Length"] == str(stop - start)
        assert rv.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_416(app: Flask, header: str) -> None:
    with _path(app).get("/p", headers={"Range": header}) as rv:
        assert rv.status_code == 416
        assert rv.headers["Content-Range"] == "bytes */1024"


@pytest.mark.parametrize(
    "header",
    ["items=0-1", "bytes=abc", "bytes=5-1", "bytes 0-1", "bytes=--1", "bytes=0-1,,x"],
)
def test_malformed_or_unknown_range_ignored(app: Flask, header: str) -> None:
    with _path(app).get("/p", headers={"Range": header}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


def test_if_range_strong_etag(app: Flask) -> None:
    client = _path(app)
    etag, modified = _validators(client)
    with client.get("/p", headers={"Range": "bytes=0-1", "If-Range": etag}) as rv:
        assert rv.status_code == 206
    with client.get("/p", headers={"Range": "bytes=0-1", "If-Range": '"x"'}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA
    weak = {"Range": "bytes=0-1", "If-Range": "W/" + etag}
    with client.get("/p", headers=weak) as rv:
        assert rv.status_code == 200
    with client.get("/p", headers={"Range": "bytes=0-1", "If-Range": modified}) as rv:
        assert rv.status_code == 206
    old = "Thu, 01 Jan 1998 00:00:00 GMT"
    with client.get("/p", headers={"Range": "bytes=0-1", "If-Range": old}) as rv:
        assert rv.status_code == 200


def _parts(rv: t.Any) -> list[tuple[str, bytes]]:
    content_type = rv.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + rv.data
    message = email.parser.BytesParser().parsebytes(raw)
    out = []
    for part in message.get_payload():  # type: ignore[union-attr]
        payload = part.get_payload(decode=True)
        out.append((part["Content-Range"], payload))
    return out


def test_multiple_ranges_multipart(app: Flask) -> None:
    with _path(app).get("/p", headers={"Range": "bytes=0-1,10-12,-2"}) as rv:
        assert rv.status_code == 206
        assert int(rv.headers["Content-Length"]) == len(rv.data)
        parts = _parts(rv)
    assert parts == [
        ("bytes 0-1/1024", DATA[0:2]),
        ("bytes 10-12/1024", DATA[10:13]),
        ("bytes 1022-1023/1024", DATA[1022:]),
    ]


def test_overlapping_ranges_coalesced(app: Flask) -> None:
    with _path(app).get("/p", headers={"Range": "bytes=0-10,5-20,21-30"}) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Range"] == "bytes 0-30/1024"
        assert rv.data == DATA[:31]


def test_too_many_ranges_whole_file(app: Flask) -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(51))
    with _path(app).get("/p", headers={"Range": header}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


def test_max_ranges_config(app_factory: t.Callable[..., Flask]) -> None:
    app = app_factory(DOWNLOAD_MAX_RANGES=2)
    client = _path(app)
    with client.get("/p", headers={"Range": "bytes=0-1,10-11,20-21"}) as rv:
        assert rv.status_code == 200
    with client.get("/p", headers={"Range": "bytes=0-1,10-11"}) as rv:
        assert rv.status_code == 206


@pytest.mark.parametrize("header", ["bytes=0-,0-,0-", "bytes=0-1000,1-1001"])
def test_ranges_adding_up_past_file_whole_file(app: Flask, header: str) -> None:
    with _path(app).get("/p", headers={"Range": header}) as rv:
        assert rv.status_code == 200
        assert rv.data == DATA


def test_range_flood_real_server(app: Flask, serve: t.Callable[[t.Any], Live]) -> None:
    _path(app)
    live = serve(app)
    header = "bytes=" + ",".join("0-1023" for _ in range(2000))
    status, headers, body = live.get("/p", headers={"Range": header})
    assert status == 200
    assert body == DATA
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 1024, 2))
    status, headers, body = live.get("/p", headers={"Range": header})
    assert status == 200
    assert body == DATA


# -- text sources --------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        lambda: iter(["é", "à"]),
        lambda: io.StringIO("éà"),
        lambda: "éà",
    ],
    ids=["str-chunks", "stringio", "str"],
)
def test_text_sources_encoded_on_real_server(
    app: Flask, serve: t.Callable[[t.Any], Live], content: t.Callable[[], t.Any]
) -> None:
    class Text(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(content(), name="t.txt")

    app.add_url_rule("/t", view_func=Text.as_view("t"))
    live = serve(app)
    status, headers, body = live.get("/t")
    assert status == 200
    assert body == "éà".encode()
    if headers.get("Content-Length") is not None:
        assert headers["Content-Length"] == str(len(body))


def test_text_mode_file_encoded(
    app: Flask, serve: t.Callable[[t.Any], Live], download_root: pathlib.Path
) -> None:
    class Text(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            handle = open(download_root / "été.txt", encoding="utf-8")  # noqa: SIM115
            return VirtualFile(handle, name="e.txt")

    app.add_url_rule("/t", view_func=Text.as_view("t"))
    live = serve(app)
    status, _, body = live.get("/t")
    assert status == 200
    assert body == "Un été à Paris\n".encode()


# -- growth, shrink, handles ---------------------------------------------------


def test_file_growing_while_sent_yields_announced_bytes(
    app: Flask, serve: t.Callable[[t.Any], Live], tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "grow.bin"
    target.write_bytes(b"a" * 100_000)

    class Grow(PathDownloadView):
        def get_file(self) -> DownloadFile:
            file = PathFile(target)
            size = file.size
            with open(target, "ab") as handle:
                handle.write(b"GROWN" * 1000)
            assert file.size in (size, size + 5000)
            return file

    app.add_url_rule("/g", view_func=Grow.as_view("g"))
    live = serve(app)
    status, headers, body = live.get("/g")
    assert status == 200
    assert len(body) == int(headers["Content-Length"])
    assert body[:100_000] == b"a" * 100_000


def test_file_shrinking_while_sent_is_cut_short(
    app: Flask, serve: t.Callable[[t.Any], Live], tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "shrink.bin"
    target.write_bytes(b"a" * 100_000)

    class Shrink(PathDownloadView):
        def get_file(self) -> DownloadFile:
            file = PathFile(target)
            assert file.size == 100_000
            with open(target, "r+b") as handle:
                handle.truncate(10_000)
            return file

    app.add_url_rule("/s", view_func=Shrink.as_view("s"))
    live = serve(app)
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        conn.request("GET", "/s")
        response = conn.getresponse()
        try:
            body = response.read()
        except http.client.IncompleteRead as exc:
            body = exc.partial
    finally:
        conn.close()
    assert len(body) <= 10_000
    assert set(body) <= {ord("a")}


def test_handles_closed_on_every_path(app: Flask) -> None:
    check_handles_close(_path(app), "/p")


def test_open_descriptors_do_not_leak(
    app: Flask, serve: t.Callable[[t.Any], Live]
) -> None:
    _path(app)
    live = serve(app)
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        pytest.skip("needs /proc")
    live.get("/p")
    before = len(os.listdir(fd_dir))
    for headers in (
        {},
        {"Range": "bytes=0-1"},
        {"Range": "bytes=5000-"},
        {"If-Match": '"x"'},
        {"Range": "bytes=0-1,4-5"},
    ):
        for _ in range(5):
            live.get("/p", headers=headers)
            live.get("/p", headers=headers, method="HEAD")
    gc.collect()
    assert len(os.listdir(fd_dir)) <= before + 2


def test_type_guessed_from_the_sent_name(app: Flask) -> None:
    with _path(app, "data.bin", basename="report.pdf").get("/p") as rv:
        assert rv.headers["Content-Type"] == "application/pdf"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'


def test_wrapper_mimetype_used_when_view_has_none(app: Flask) -> None:
    class Typed(DownloadFile):
        name = "blob"
        mimetype = "image/webp"
        size = 1
        seekable = True

        def open(self) -> t.IO[bytes]:
            return io.BytesIO(b"x")

    class View(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return Typed()

    app.add_url_rule("/t", view_func=View.as_view("t"))
    with app.test_client().get("/t") as rv:
        assert rv.headers["Content-Type"] == "image/webp"
        assert rv.data == b"x"


def test_charset_never_for_binary_types(app: Flask) -> None:
    client = _virtual(
        app, "text", basename="x.bin", mimetype="application/pdf", charset="latin-1"
    )
    with client.get("/v") as rv:
        assert rv.headers["Content-Type"] == "application/pdf"


def test_preconditions_before_range(app: Flask) -> None:
    client = _path(app)
    etag, modified = _validators(client)
    with client.get("/p", headers={"If-None-Match": etag, "Range": "bytes=0-1"}) as rv:
        assert rv.status_code == 304
    with client.get("/p", headers={"If-Match": '"x"', "Range": "bytes=0-1"}) as rv:
        assert rv.status_code == 412
    headers = {"If-Unmodified-Since": modified, "Range": "bytes=0-1"}
    with client.get("/p", headers=headers) as rv:
        assert rv.status_code == 206
    with client.get("/p", headers={"If-Match": etag, "Range": "bytes=0-1"}) as rv:
        assert rv.status_code == 206
    with client.get(
        "/p", headers={"If-None-Match": etag, "Range": "bytes=9999-"}
    ) as rv:
        assert rv.status_code == 304


def test_206_carries_the_200_validators(app: Flask) -> None:
    client = _path(app)
    with client.get("/p") as full:
        expected = {
            h: full.headers.get(h) for h in ("ETag", "Last-Modified", "Cache-Control")
        }
    with client.get("/p", headers={"Range": "bytes=0-1"}) as rv:
        assert rv.status_code == 206
        for name, value in expected.items():
            assert rv.headers.get(name) == value, name
        assert rv.headers["X-Content-Type-Options"] == "nosniff"


def test_412_and_416_on_head(app: Flask) -> None:
    client = _path(app)
    with client.head("/p", headers={"If-Match": '"x"'}) as rv:
        assert rv.status_code == 412
        assert rv.data == b""
    with client.head("/p", headers={"Range": "bytes=9999-"}) as rv:
        assert rv.status_code == 200


def test_if_range_on_unseekable_source_sends_whole(app: Flask) -> None:
    client = _virtual(app, lambda: iter([b"abc"]), basename="a.bin")
    with client.get("/v", headers={"Range": "bytes=0-0", "If-Range": '"x"'}) as rv:
        assert rv.status_code == 200
        assert rv.data == b"abc"


def test_multipart_parts_carry_the_type(app: Flask) -> None:
    with _path(app, "hello.txt").get("/p", headers={"Range": "bytes=0-1,5-6"}) as rv:
        assert rv.status_code == 206
        content_type = rv.headers["Content-Type"]
        raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + rv.data
    message = email.parser.BytesParser().parsebytes(raw)
    parts = message.get_payload()
    assert isinstance(parts, list) and len(parts) == 2
    for part in parts:
        assert part["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "name", ["é (1)'*,;=.txt", "ü[]{}<>@:?/.pdf", 'é"\\%.txt'], ids=["p1", "p2", "p3"]
)
def test_filename_star_uses_attr_chars_only(app: Flask, name: str) -> None:
    with _virtual(app, b"x", basename=name).get("/v") as rv:
        value = rv.headers["Content-Disposition"]
    match = re.search(r"filename\*=UTF-8''(\S*)", value)
    assert match is not None, value
    encoded = match.group(1)
    # RFC 8187 §3.2.1: attr-char or pct-encoded, nothing else.
    assert re.fullmatch(r"(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2})+", encoded), encoded
    from urllib.parse import unquote

    assert unquote(encoded, encoding="utf-8") == name


def test_fifty_ranges_still_multipart(app: Flask) -> None:
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(50))
    with _path(app).get("/p", headers={"Range": header}) as rv:
        assert rv.status_code == 206
        assert rv.mimetype == "multipart/byteranges"
