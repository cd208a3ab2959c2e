"""Audit 4: HTTP exactness of download responses and ``send_download``.

Each test names the finding it guards against.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import http.client
import io
import os
import typing as t
import urllib.parse

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from flask import send_file

from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import send_download
from flask_download.conditional import evaluate_preconditions
from flask_download.ranges import evaluate_range
from flask_download.response import content_disposition

# -- file names cut to length ---------------------------------------------------


def _filename(disposition: str) -> str:
    """The ``filename`` parameter of an ASCII-only Content-Disposition."""
    _, _, quoted = disposition.partition("filename=")
    assert quoted.startswith('"') and quoted.endswith('"'), disposition
    return quoted[1:-1].replace('\\"', '"').replace("\\\\", "\\")


@pytest.mark.parametrize(
    "name",
    [
        "report.html." + "x" * 300,
        "report.exe." + "y" * 40 + "z" * 260,
        "a" * 200 + ".svg." + "b" * 60,
    ],
    ids=["html", "exe", "svg-long-stem"],
)
def test_a_cut_name_never_promotes_an_inner_extension(name: str) -> None:
    """A name longer than 255 characters whose last "extension" is long
    lost that extension: ``report.html.xxx...`` went out as ``report.html``,
    a name of another type than the one served (octet-stream, guessed from
    the whole name), which a browser saves and opens as HTML."""
    sent = _filename(content_disposition(name))
    assert len(sent) <= 255
    real_extension = os.path.splitext(name)[1]
    sent_extension = os.path.splitext(sent)[1]
    assert sent_extension != "", sent
    assert real_extension.startswith(sent_extension), sent
    assert sent_extension not in (".html", ".exe", ".svg")


def test_a_cut_non_ascii_name_keeps_its_last_extension_in_both_parameters() -> None:
    name = "報告.html." + "x" * 300
    value = content_disposition(name, attachment=False)
    fallback = _filename(value.split("; filename*=")[0])
    encoded = value.split("filename*=UTF-8''")[1]
    decoded = urllib.parse.unquote(encoded)
    for sent in (fallback, decoded):
        assert not sent.endswith(".html")
        assert os.path.splitext(sent)[1] == "." + "x" * 31
    assert len(decoded) <= 255


def test_a_cut_name_keeps_a_short_extension(app: Flask) -> None:
    name = "y" * 400 + ".pdf"
    app.add_url_rule("/x", "x", lambda: send_download(b"%PDF", download_name=name))
    with app.test_client().get("/x") as rv:
        sent = _filename(rv.headers["Content-Disposition"])
    assert sent == "y" * 251 + ".pdf"


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("\u0430\u0440\u0445\u0438\u0432.tar.gz", ".tar.gz"),
        ("\u5831\u544a..tar.bz2", ".tar.bz2"),
        ("\u5831\u544a.exe.txt", ".exe.txt"),
    ],
    ids=["cyrillic-tar-gz", "cjk-double-dot", "cjk-exe-txt"],
)
def test_the_ascii_fallback_keeps_an_inner_extension(name: str, extension: str) -> None:
    """The stem of ``архив.tar.gz`` folds to ``.tar``: its dot was stripped
    and the fallback went out as ``tar-1a2b3c4d.gz``, no longer a tarball's
    name for a client that reads only ``filename``."""
    value = content_disposition(name)
    fallback = _filename(value.split("; filename*=")[0])
    assert fallback.endswith(extension)
    stem = fallback[: -len(extension)]
    assert len(stem) == 8 and all(c in "0123456789abcdef" for c in stem)
    assert urllib.parse.unquote(value.split("filename*=UTF-8''")[1]) == name


# -- active types --------------------------------------------------------------


@pytest.mark.parametrize("attachment", [False, True], ids=["inline", "attachment"])
def test_inline_text_rdf_is_sandboxed(app: Flask, attachment: bool) -> None:
    """Firefox shows ``text/rdf`` as an XML document, in which an XHTML
    ``<script>`` runs: a stored type of ``text/rdf`` (what the uploader's
    browser claimed) went out inline without the sandbox."""
    page = (
        b"<x xmlns:h='http://www.w3.org/1999/xhtml'>"
        b"<h:script>alert(document.domain)</h:script></x>"
    )
    app.add_url_rule(
        "/x",
        "x",
        lambda: send_download(
            page, download_name="upload", mimetype="text/rdf", attachment=attachment
        ),
    )
    with app.test_client().get("/x") as rv:
        assert rv.headers["Content-Type"].startswith("text/rdf")
        assert rv.headers["X-Content-Type-Options"] == "nosniff"
        if attachment:
            assert "Content-Security-Policy" not in rv.headers
        else:
            assert rv.headers["Content-Security-Policy"] == "sandbox"


# -- guessed content codings --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "coding"),
    [
        ("log.txt.xz", "text/plain; charset=utf-8", "xz"),
        ("log.txt.bz2", "text/plain; charset=utf-8", "bzip2"),
        ("log.txt.Z", "text/plain; charset=utf-8", "compress"),
    ],
    ids=["xz", "bzip2", "compress"],
)
def test_every_guessed_coding_is_sent_inline_as_the_contract_says(
    app: Flask, name: str, content_type: str, coding: str
) -> None:
    """DESIGN §3: a guessed encoding is sent for inline responses, whatever
    it is (even codings browsers do not decode); an attachment of the same
    name goes out as the compressed file it is."""
    app.add_url_rule(
        "/x",
        "x",
        lambda: send_download(b"\xfd7zXZ", download_name=name, attachment=False),
    )
    app.add_url_rule("/a", "a", lambda: send_download(b"\xfd7zXZ", download_name=name))
    with app.test_client().get("/x") as rv:
        assert rv.headers["Content-Type"] == content_type
        assert rv.headers["Content-Encoding"] == coding
        assert rv.headers["Content-Disposition"] == f'inline; filename="{name}"'
    with app.test_client().get("/a") as rv:
        assert "Content-Encoding" not in rv.headers
        assert rv.headers["Content-Type"] != content_type


@pytest.mark.parametrize(
    ("name", "content_type", "coding"),
    [
        ("page.html.gz", "text/html; charset=utf-8", "gzip"),
        ("page.txt.br", "text/plain; charset=utf-8", "br"),
        ("drawing.svgz", "image/svg+xml", "gzip"),
    ],
)
def test_inline_guessed_codings_browsers_decode_are_still_sent(
    app: Flask, name: str, content_type: str, coding: str
) -> None:
    app.add_url_rule(
        "/x",
        "x",
        lambda: send_download(b"\x1f\x8b", download_name=name, attachment=False),
    )
    with app.test_client().get("/x") as rv:
        assert rv.headers["Content-Type"] == content_type
        assert rv.headers["Content-Encoding"] == coding


# -- file-like objects that cannot be sized ------------------------------------


class _UnsizableStream(io.BytesIO):
    """Says it can seek, cannot seek to its end (as files of /proc do)."""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            raise OSError(22, "Invalid argument")
        return super().seek(offset, whence)


def test_a_file_like_that_cannot_be_sized_is_streamed_and_closed(app: Flask) -> None:
    """send_download takes ownership of a file-like object: one that says it
    can seek but cannot (files of /proc) is streamed with no size (it was a
    500 that left it open), and closed with the response."""
    streams: list[_UnsizableStream] = []

    def view() -> t.Any:
        stream = _UnsizableStream(b"status")
        streams.append(stream)
        return send_download(stream, download_name="status.txt")

    app.add_url_rule("/x", "x", view)
    with app.test_client().get("/x") as rv:
        assert rv.status_code == 200
        assert rv.data == b"status"
        assert "Accept-Ranges" not in rv.headers
    assert len(streams) == 1
    assert streams[0].closed


def test_a_file_like_given_with_root_is_closed_with_the_type_error(
    app: Flask,
) -> None:
    """``send_download(stream, root=...)`` is a TypeError (root= takes a
    path); the docstring promises that a file-like source is closed before
    any argument error is raised, and this one was left open."""
    stream = io.BytesIO(b"data")
    with app.test_request_context(), pytest.raises(TypeError, match="root"):
        send_download(stream, root="root")
    assert stream.closed


# -- entity tags a custom wrapper gives ----------------------------------------


class _Tagged(DownloadFile):
    """A user's wrapper with an entity tag of its own making."""

    def __init__(self, etag: t.Any) -> None:
        super().__init__()
        self.name = "data.bin"
        self.size = 10
        self.seekable = True
        self.etag = etag

    def open(self) -> t.IO[bytes]:
        return io.BytesIO(b"0123456789")


def _tagged_app(app: Flask, etag: t.Any) -> Flask:
    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return _Tagged(etag)

    app.add_url_rule("/t", view_func=View.as_view("t"))
    return app


@pytest.mark.parametrize(
    "etag",
    ['a"b', "a b", "caf\u20ac", 'W/"weak"', b"bytes", 42],
    ids=["inner-quote", "space", "beyond-latin-1", "weak", "bytes", "int"],
)
def test_a_wrapper_etag_that_cannot_be_sent_is_no_validator(
    app: Flask, etag: t.Any
) -> None:
    """A custom wrapper's tag went out as it was: ``ETag: "a"b"``, a
    malformed header (or one a server cannot encode)."""
    client = _tagged_app(app, etag).test_client()
    with client.get("/t") as rv:
        assert rv.status_code == 200
        assert "ETag" not in rv.headers
        assert rv.data == b"0123456789"
    # Not matched either: a tag the client was never sent fails If-Match.
    with client.get("/t", headers={"If-Match": f'"{etag}"'}) as rv:
        assert rv.status_code == 412


def test_a_wrapper_etag_with_a_line_break_is_no_500_on_a_real_server(
    app: Flask,
) -> None:
    _tagged_app(app, "abc\r\nX-Injected: 1")
    with running_werkzeug(app) as url:
        conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc)
        try:
            conn.request("GET", "/t")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
    assert response.status == 200
    assert response.getheader("ETag") is None
    assert response.getheader("X-Injected") is None
    assert body == b"0123456789"


def test_a_quoted_wrapper_etag_is_sent_once_quoted(app: Flask) -> None:
    """``DownloadFile.etag`` is bare; a wrapper that quoted it anyway sent
    ``ETag: ""v1""``, which no client can send back to match."""
    client = _tagged_app(app, '"v1"').test_client()
    with client.get("/t") as rv:
        assert rv.headers["ETag"] == '"v1"'
    with client.get("/t", headers={"If-None-Match": '"v1"'}) as rv:
        assert rv.status_code == 304
        assert rv.headers["ETag"] == '"v1"'
    with client.get("/t", headers={"Range": "bytes=0-1", "If-Range": '"v1"'}) as rv:
        assert rv.status_code == 206
        assert rv.data == b"01"


def test_the_pure_functions_compare_the_tag_that_is_sent() -> None:
    common: dict[str, t.Any] = {
        "method": "GET",
        "if_modified_since": None,
        "if_unmodified_since": None,
        "last_modified": None,
    }
    assert (
        evaluate_preconditions(
            if_match='"v1"', if_none_match=None, etag='"v1"', **common
        )
        is None
    )
    assert (
        evaluate_preconditions(
            if_match='"a"b"', if_none_match=None, etag='a"b', **common
        )
        == 412
    )
    decision = evaluate_range(
        range_header="bytes=0-1",
        if_range='"v1"',
        size=10,
        etag='"v1"',
        last_modified=None,
        max_ranges=5,
    )
    assert decision == ((0, 2),)


# -- text streams that are not io.TextIOBase -----------------------------------


class _DuckText:
    """A caller's own text stream: read() gives str, it can seek (in
    characters, as io.StringIO does), and it is no io.TextIOBase."""

    def __init__(self, text: str) -> None:
        self._text = io.StringIO(text)

    def read(self, size: int = -1) -> str:
        return self._text.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._text.seek(offset, whence)

    def tell(self) -> int:
        return self._text.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._text.close()


DUCK_TEXT = "Un \u00e9t\u00e9 \u00e0 Paris \u2014 \u20ac\n" * 3


def make_audit_app() -> Flask:
    """The routes tested on real servers (gunicorn imports this)."""
    app = Flask(__name__)

    @app.route("/duck")
    def duck() -> t.Any:
        return send_download(_DuckText(DUCK_TEXT), download_name="duck.txt")

    @app.route("/duck-latin")
    def duck_latin() -> t.Any:
        return send_download(
            _DuckText("caf\u00e9"), download_name="duck.txt", charset="latin-1"
        )

    return app


@pytest.fixture(params=["werkzeug", "gunicorn"], scope="module")
def audit_url(request: pytest.FixtureRequest) -> cabc.Iterator[str]:
    if request.param == "werkzeug":
        with running_werkzeug(make_audit_app()) as url:
            yield url
    else:
        app = "tests.test_audit4_http:make_audit_app()"
        with running_gunicorn(app, "--worker-class=gthread", "--threads=2") as url:
            yield url


def _get(url: str, path: str, headers: dict[str, str] | None = None) -> t.Any:
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=0-9"}], ids=["", "range"])
def test_a_seekable_text_stream_of_another_kind_reaches_the_client_as_bytes(
    audit_url: str, headers: dict[str, str]
) -> None:
    """A seekable stream whose read() gives str but that is no
    io.TextIOBase was taken for bytes: the str reached the server (Werkzeug:
    "applications must write bytes", an empty body), under a Content-Length
    counting characters."""
    status, response_headers, body = _get(audit_url, "/duck", headers)
    assert status == 200  # a range of a size counted in characters is not served
    assert body == DUCK_TEXT.encode("utf-8")
    assert response_headers["Content-Length"] == str(len(body))
    assert response_headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_text_stream_of_another_kind_is_encoded_with_the_charset(
    audit_url: str,
) -> None:
    status, response_headers, body = _get(audit_url, "/duck-latin")
    assert status == 200
    assert body == "caf\u00e9".encode("latin-1")
    assert response_headers["Content-Type"] == "text/plain; charset=latin-1"
    assert response_headers["Content-Length"] == "4"


# -- send_file's keywords --------------------------------------------------------


def test_last_modified_may_be_a_date_as_in_send_file(
    app: Flask, download_root: t.Any
) -> None:
    """``send_file(last_modified=date(...))`` works (Werkzeug's http_date
    takes a day as its midnight); send_download refused it with a
    TypeError, so porting such a call was more than a rename."""
    day = datetime.date(2020, 5, 17)
    path = download_root / "hello.txt"
    app.add_url_rule("/flask", "flask", lambda: send_file(path, last_modified=day))
    app.add_url_rule("/ours", "ours", lambda: send_download(path, last_modified=day))
    client = app.test_client()
    with client.get("/flask") as theirs, client.get("/ours") as ours:
        assert ours.status_code == 200
        assert ours.headers["Last-Modified"] == theirs.headers["Last-Modified"]
        assert ours.headers["Last-Modified"] == "Sun, 17 May 2020 00:00:00 GMT"
    since = {"If-Modified-Since": "Sun, 17 May 2020 00:00:00 GMT"}
    with client.get("/ours", headers=since) as rv:
        assert rv.status_code == 304
