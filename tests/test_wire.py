"""The wire format, checked with curl against real WSGI servers.

The test client hides what servers do with ``wsgi.file_wrapper`` and how a
real HTTP client reads headers; these tests run the app in wsgiref (a
``read()``-based file wrapper) and in gunicorn (``sendfile``).
"""

from __future__ import annotations

import collections.abc as cabc
import io
import os
import pathlib
import shutil
import socket
import subprocess
import typing as t
from wsgiref.simple_server import make_server

import pytest
from conftest import QuietWSGIRefHandler
from conftest import running_gunicorn
from conftest import running_werkzeug
from conftest import serving
from flask import Flask

from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download import VirtualDownloadView
from flask_download.pytest_plugin import write_sample_files

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")

BIG_SIZE = 3 * 1024 * 1024 + 17


def _big_content() -> bytes:
    return bytes((i * 7 + i // 256) % 256 for i in range(256 * 1024)) * 12 + b"x" * 17


@pytest.fixture(scope="module")
def wire_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    base = tmp_path_factory.mktemp("wire")
    root = write_sample_files(base / "root")
    (root / "text-mode.txt").write_text("Un été à Paris\n" * 3, encoding="utf-8")
    (root / "big.bin").write_bytes(_big_content())
    (base / "secret.txt").write_bytes(b"TOP SECRET")
    return root


def _make_app(root: str) -> Flask:
    app = Flask("wire_app")
    app.config["DOWNLOAD_ROOT"] = root
    FlaskDownload(app)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    _add_text_views(app, root)
    return app


# Text sources (issue 13): each must reach the server as bytes in the
# announced charset, with a Content-Length that counts bytes.
TEXT = "Un été à Paris\n" * 3


def _add_text_views(app: Flask, root: str) -> None:
    def text_mode_file() -> t.Any:
        return open(os.path.join(root, "text-mode.txt"), encoding="utf-8")

    views = {
        "demo": (lambda: io.StringIO("Hello world!\n"), None),
        "stringio": (lambda: io.StringIO(TEXT), None),
        "latin": (lambda: io.StringIO(TEXT), "latin-1"),
        "str": (lambda: TEXT, None),
        "chunks": (lambda: iter(TEXT.splitlines(keepends=True)), None),
        "textmode": (text_mode_file, None),
    }

    @app.route("/text/send")
    def send_text() -> t.Any:
        return send_download(io.StringIO(TEXT), download_name="t.txt")

    for name, (content, charset) in views.items():
        app.add_url_rule(
            f"/text/{name}",
            view_func=VirtualDownloadView.as_view(
                f"text_{name}", content=content, basename="t.txt", charset=charset
            ),
        )


@pytest.fixture(scope="module")
def wsgiref_url(wire_root: pathlib.Path) -> cabc.Iterator[str]:
    server = make_server(
        "127.0.0.1",
        0,
        _make_app(os.fspath(wire_root)),
        handler_class=QuietWSGIRefHandler,
    )
    with serving(server):
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module")
def gunicorn_url(wire_root: pathlib.Path) -> cabc.Iterator[str]:
    with running_gunicorn(
        f"tests.test_wire:_make_app({os.fspath(wire_root)!r})"
    ) as url:
        yield url


def curl(url: str, *args: str) -> tuple[str, dict[str, str], bytes]:
    """Fetch ``url`` with curl; return status line, headers and body."""
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-D", "-", *args, url],
        capture_output=True,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


@pytest.fixture(scope="module")
def werkzeug_url(wire_root: pathlib.Path) -> cabc.Iterator[str]:
    with running_werkzeug(_make_app(os.fspath(wire_root))) as url:
        yield url


@pytest.fixture(params=["wsgiref", "gunicorn"], scope="module")
def server_url(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.getfixturevalue(f"{request.param}_url"))


def test_whole_file_bytes_and_headers(server_url: str) -> None:
    status, headers, body = curl(f"{server_url}/files/big.bin")
    assert " 200 " in status
    assert body == _big_content()
    assert headers["content-length"] == str(BIG_SIZE)
    assert headers["accept-ranges"] == "bytes"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-disposition"] == 'attachment; filename="big.bin"'


@pytest.mark.parametrize(
    ("spec", "start", "stop"),
    [
        ("0-9", 0, 10),
        ("1048576-2097151", 1048576, 2097152),
        ("-10", BIG_SIZE - 10, BIG_SIZE),
        ("3000000-", 3000000, BIG_SIZE),
    ],
    ids=["head", "middle", "suffix", "open"],
)
def test_single_range_is_exact(
    server_url: str, spec: str, start: int, stop: int
) -> None:
    """The server's file wrapper sends exactly the range, whatever it is."""
    status, headers, body = curl(
        f"{server_url}/files/big.bin", "-H", f"Range: bytes={spec}"
    )
    assert " 206 " in status
    assert body == _big_content()[start:stop]
    assert headers["content-range"] == f"bytes {start}-{stop - 1}/{BIG_SIZE}"
    assert headers["content-length"] == str(stop - start)


def test_multipart_ranges_over_the_wire(server_url: str) -> None:
    status, headers, body = curl(
        f"{server_url}/files/big.bin", "-H", "Range: bytes=0-4,100-104"
    )
    assert " 206 " in status
    assert headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert int(headers["content-length"]) == len(body)
    content = _big_content()
    assert content[0:5] in body and content[100:105] in body
    assert f"Content-Range: bytes 100-104/{BIG_SIZE}".encode() in body


def test_revalidation_with_curl(server_url: str) -> None:
    _, headers, _ = curl(f"{server_url}/files/hello.txt")
    status, again, body = curl(
        f"{server_url}/files/hello.txt", "-H", f"If-None-Match: {headers['etag']}"
    )
    assert " 304 " in status
    assert body == b""
    assert again["etag"] == headers["etag"]
    assert again["last-modified"] == headers["last-modified"]
    assert "content-disposition" not in again


def test_head_sends_headers_only(server_url: str) -> None:
    host, _, port = server_url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"HEAD /files/hello.txt HTTP/1.0\r\nHost: x\r\n\r\n")
        received = b""
        while data := sock.recv(65536):
            received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0]
    assert b"Content-Length: 14" in head
    assert body == b""


def test_non_ascii_name_over_the_wire(server_url: str) -> None:
    _, headers, body = curl(f"{server_url}/files/%C3%A9t%C3%A9.txt")
    assert body == "Un été à Paris\n".encode()
    assert headers["content-disposition"] == (
        "attachment; filename=\"ete.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt"
    )


def test_traversal_over_the_wire(server_url: str) -> None:
    status, _, body = curl(f"{server_url}/files/../secret.txt", "--path-as-is")
    assert " 404 " in status
    assert b"TOP SECRET" not in body


@pytest.fixture(params=["werkzeug", "gunicorn"], scope="module")
def text_server_url(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.getfixturevalue(f"{request.param}_url"))


@pytest.mark.parametrize(
    ("name", "expected", "charset", "sized"),
    [
        ("demo", b"Hello world!\n", "utf-8", True),
        ("stringio", TEXT.encode(), "utf-8", True),
        ("latin", TEXT.encode("latin-1"), "latin-1", True),
        ("str", TEXT.encode(), "utf-8", True),
        ("chunks", TEXT.encode(), "utf-8", False),
        ("textmode", TEXT.encode(), "utf-8", False),
        ("send", TEXT.encode(), "utf-8", True),
    ],
    ids=["demo", "stringio", "latin", "str", "chunks", "textmode", "send"],
)
def test_text_sources_reach_the_client_as_bytes(
    text_server_url: str, name: str, expected: bytes, charset: str, sized: bool
) -> None:
    """Issue 13: text is encoded with the announced charset; Content-Length
    counts bytes (the test client hides a server refusing str)."""
    status, headers, body = curl(f"{text_server_url}/text/{name}")
    assert " 200 " in status
    assert body == expected
    assert headers["content-type"] == f"text/plain; charset={charset}"
    if sized:
        assert headers["content-length"] == str(len(expected))


def test_text_range_counts_bytes(text_server_url: str) -> None:
    status, headers, body = curl(f"{text_server_url}/text/stringio", "-r", "3-4")
    assert " 206 " in status
    assert body == "é".encode()
    assert headers["content-range"] == f"bytes 3-4/{len(TEXT.encode())}"


def test_head_with_range_mirrors_the_200(server_url: str) -> None:
    """Issue 13: RFC 9110 §14.2, a HEAD with Range gets the 200's headers."""
    status, headers, _ = curl(
        f"{server_url}/files/big.bin", "-I", "-H", "Range: bytes=2-4"
    )
    assert " 200 " in status
    assert headers["content-length"] == str(BIG_SIZE)
    assert "content-range" not in headers


# A custom wrapper whose open() gives text (review 13): on every server the
# body is bytes in the announced charset, never handed to wsgi.file_wrapper
# as a text handle, and Content-Length counts the bytes sent. (Imported here:
# this module is appended to, its head left alone.)

from flask_download import DownloadFile  # noqa: E402
from flask_download import DownloadView  # noqa: E402


class _TextFromOpen(DownloadFile):
    """``size`` counts characters, as a careless subclass would."""

    seekable = True
    name = "t.txt"

    def __init__(self, root: str) -> None:
        self.size = len(TEXT)

    def open(self) -> t.Any:
        return io.StringIO(TEXT)


class _LocalText(DownloadFile):
    """A local file (a ``sendfile`` candidate) opened in text mode."""

    seekable = True
    name = "t.txt"

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, "text-mode.txt")
        self.size = os.stat(self.path).st_size

    def open(self) -> t.Any:
        return open(self.path, encoding="utf-8")


class _TextOpenView(DownloadView):
    source: t.Any = None

    def __init__(self, root: str = "", **attrs: t.Any) -> None:
        super().__init__(**attrs)
        self.root = root

    def get_file(self) -> DownloadFile:
        return t.cast(DownloadFile, self.source(self.root))


def _make_text_open_app(root: str) -> Flask:
    app = Flask("wire_text_open")
    FlaskDownload(app)
    for name, source, charset in [
        ("stringio", _TextFromOpen, None),
        ("local", _LocalText, None),
        ("local-latin", _LocalText, "latin-1"),
    ]:
        app.add_url_rule(
            f"/open/{name}",
            view_func=_TextOpenView.as_view(
                f"open_{name}", root, source=source, charset=charset
            ),
        )
    return app


@pytest.fixture(params=["werkzeug", "gunicorn", "wsgiref"], scope="module")
def text_open_url(
    request: pytest.FixtureRequest, wire_root: pathlib.Path
) -> cabc.Iterator[str]:
    root = os.fspath(wire_root)
    if request.param == "gunicorn":
        with running_gunicorn(f"tests.test_wire:_make_text_open_app({root!r})") as url:
            yield url
    elif request.param == "werkzeug":
        with running_werkzeug(_make_text_open_app(root)) as url:
            yield url
    else:
        server = make_server(
            "127.0.0.1",
            0,
            _make_text_open_app(root),
            handler_class=QuietWSGIRefHandler,
        )
        with serving(server):
            yield f"http://127.0.0.1:{server.server_port}"


@pytest.mark.parametrize(
    ("name", "charset"),
    [("stringio", "utf-8"), ("local", "utf-8"), ("local-latin", "latin-1")],
    ids=["stringio", "local", "local-latin"],
)
def test_text_from_open_reaches_the_client_as_bytes(
    text_open_url: str, name: str, charset: str
) -> None:
    """Review 13: text from a custom wrapper's open() is encoded on the
    seekable path too, on servers with and without wsgi.file_wrapper."""
    status, headers, body = curl(f"{text_open_url}/open/{name}")
    assert " 200 " in status
    assert body == TEXT.encode(charset)
    assert headers["content-type"] == f"text/plain; charset={charset}"
    assert headers["content-length"] == str(len(body))


def test_text_from_open_range_counts_bytes(text_open_url: str) -> None:
    status, headers, body = curl(f"{text_open_url}/open/local", "-r", "3-4")
    assert " 206 " in status
    assert body == "é".encode()
    assert headers["content-range"] == f"bytes 3-4/{len(TEXT.encode())}"
    assert headers["content-length"] == "2"


def test_text_of_a_wrong_size_is_sent_whole(text_open_url: str) -> None:
    """A size in characters cannot place a byte range: 200, whole, exact."""
    status, headers, body = curl(f"{text_open_url}/open/stringio", "-r", "3-4")
    assert " 200 " in status
    assert body == TEXT.encode()
    assert headers["content-length"] == str(len(body))
    assert "content-range" not in headers
