"""Small bodies from local files on gunicorn: read and written, not sendfile.

gunicorn sends a ``wsgi.file_wrapper`` body with ``sendfile`` when the
file-like has a ``fileno()``; for a body of one chunk (at most 64 KiB) that
path costs more than reading the bytes and writing them (about 60 µs of
worker CPU for 4 KiB, benchmarks/README.md). Such bodies still go through
the server's ``wsgi.file_wrapper`` (DESIGN §3), as a file-like without
``fileno()``; larger ones, and every body on other servers, keep it.
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import os
import pathlib
import random
import typing as t
import urllib.parse

import pytest
from conftest import running_gunicorn
from flask import Flask
from werkzeug.test import EnvironBuilder

from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import send_download
from flask_download.response import _download

SMALL = random.Random(1).randbytes(4096)
#: Larger than one chunk and than the limit: ranges of it cross the limit.
LARGE = random.Random(2).randbytes(200 * 1024)
LIMIT = _download.SMALL_BODY


class Recording:
    """A ``wsgi.file_wrapper`` keeping what it was given."""

    given: t.ClassVar[list[Recording]] = []

    def __init__(self, filelike: t.Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        self.reads: list[int] = []
        self.given.append(self)

    def __iter__(self) -> cabc.Iterator[bytes]:
        while data := self.filelike.read(self.blksize):
            self.reads.append(len(data))
            yield data

    def close(self) -> None:
        self.filelike.close()


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "small.bin").write_bytes(SMALL)
    (tmp_path / "large.bin").write_bytes(LARGE)
    (tmp_path / "empty.bin").write_bytes(b"")
    return tmp_path


def make_app(root: str, chunk_size: int | None = None) -> Flask:
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = root
    if chunk_size is not None:
        app.config["DOWNLOAD_CHUNK_SIZE"] = chunk_size
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))

    @app.get("/changing/<how>/<name>")
    def changing(how: str, name: str) -> t.Any:
        return send_download(ChangingFile(os.path.join(root, name), how))

    return app


class ChangingFile(PathFile):
    """A file that shrinks to half, or grows, once opened: after its size
    was announced and before its body is read."""

    def __init__(self, path: str, how: str) -> None:
        super().__init__(path)
        self.how = how

    def open(self) -> t.IO[bytes]:
        handle = super().open()
        if self.how == "shrink":
            os.truncate(self.path, self.size // 2)
        else:
            with open(self.path, "ab") as more:
                more.write(b"appended" * 1000)
        return handle


def served(
    app: Flask, path: str, server: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, Recording | None]:
    Recording.given = []
    env = {"wsgi.file_wrapper": Recording, "SERVER_SOFTWARE": server}
    with app.test_client().get(path, headers=headers, environ_overrides=env) as rv:
        status, data = rv.status_code, rv.data
    return status, data, (Recording.given[0] if Recording.given else None)


GUNICORN = "gunicorn/23.0.0"


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/f/small.bin", None, SMALL),
        ("/f/empty.bin", None, b""),
        ("/f/large.bin", {"Range": f"bytes=100-{100 + LIMIT - 1}"}, None),
        ("/f/large.bin", {"Range": "bytes=-10"}, LARGE[-10:]),
    ],
    ids=["4-KiB-file", "empty-file", "range-of-exactly-64-KiB", "10-byte-range"],
)
def test_small_bodies_are_read_on_gunicorn(
    root: pathlib.Path, path: str, headers: dict[str, str] | None, expected: bytes
) -> None:
    if expected is None:
        expected = LARGE[100 : 100 + LIMIT]
    status, data, wrapper = served(make_app(str(root)), path, GUNICORN, headers)
    assert status == (206 if headers else 200)
    assert data == expected
    # Still the server's file wrapper (DESIGN §3), but nothing to sendfile:
    # gunicorn reads it, in one read() of at most one chunk.
    assert wrapper is not None
    assert not hasattr(wrapper.filelike, "fileno")
    assert wrapper.reads == ([len(expected)] if expected else [])


@pytest.mark.parametrize(
    ("path", "headers", "server", "chunk_size"),
    [
        ("/f/large.bin", None, GUNICORN, None),
        ("/f/large.bin", {"Range": f"bytes=100-{100 + LIMIT}"}, GUNICORN, None),
        ("/f/large.bin", {"Range": "bytes=0-16383"}, GUNICORN, 8192),
        ("/f/small.bin", None, "uWSGI", None),
        ("/f/small.bin", None, "waitress", None),
    ],
    ids=[
        "large-file",
        "range-one-byte-past-64-KiB",
        "more-than-one-chunk",
        "uwsgi",
        "waitress",
    ],
)
def test_other_bodies_keep_sendfile(
    root: pathlib.Path,
    path: str,
    headers: dict[str, str] | None,
    server: str,
    chunk_size: int | None,
) -> None:
    status, data, wrapper = served(
        make_app(str(root), chunk_size), path, server, headers
    )
    assert status == (206 if headers else 200)
    assert data
    assert wrapper is not None
    assert callable(getattr(wrapper.filelike, "fileno", None))


def test_a_small_body_is_closed_with_its_file(root: pathlib.Path) -> None:
    app = make_app(str(root))
    Recording.given = []
    environ = EnvironBuilder(path="/f/small.bin").get_environ()
    environ["wsgi.file_wrapper"] = Recording
    environ["SERVER_SOFTWARE"] = GUNICORN
    body = app(environ, lambda status, headers, exc_info=None: None)
    [wrapper] = Recording.given
    handle = wrapper.filelike._handle
    assert not handle.closed
    assert b"".join(body) == SMALL
    t.cast(t.Any, body).close()
    assert handle.closed


# -- on a real gunicorn ------------------------------------------------------


@pytest.fixture(params=["sync", "gthread"])
def gunicorn_url(
    request: pytest.FixtureRequest, root: pathlib.Path
) -> cabc.Iterator[str]:
    options = ["--worker-class=gthread", "--threads=2", "--keep-alive=5"]
    app = f"test_small_bodies:make_app({os.fspath(root)!r})"
    with running_gunicorn(app, *(options if request.param == "gthread" else [])) as url:
        yield url


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def test_bodies_of_every_size_on_one_connection(gunicorn_url: str) -> None:
    """Small bodies (read) and large ones (sendfile) framed exactly, one
    after the other on one kept-alive connection (gthread)."""
    conn = _connection(gunicorn_url)
    try:
        cases = [
            ("/f/small.bin", {}, SMALL),
            ("/f/large.bin", {"Range": "bytes=5-20"}, LARGE[5:21]),
            ("/f/large.bin", {}, LARGE),
            ("/f/empty.bin", {}, b""),
            ("/f/large.bin", {"Range": f"bytes=0-{LIMIT - 1}"}, LARGE[:LIMIT]),
            ("/f/small.bin", {}, SMALL),
        ]
        for path, headers, expected in cases:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            assert response.status == (206 if headers else 200)
            assert response.read() == expected
            assert response.headers["Content-Length"] == str(len(expected))
    finally:
        conn.close()


def test_a_small_file_that_grows_sends_the_announced_bytes(
    gunicorn_url: str, root: pathlib.Path
) -> None:
    conn = _connection(gunicorn_url)
    try:
        for _ in range(2):  # the connection stays in step
            (root / "grows.bin").write_bytes(SMALL)
            conn.request("GET", "/changing/grow/grows.bin")
            response = conn.getresponse()
            assert response.headers["Content-Length"] == str(len(SMALL))
            assert response.read() == SMALL
    finally:
        conn.close()


def test_a_small_file_that_shrinks_is_cut_short(
    gunicorn_url: str, root: pathlib.Path
) -> None:
    """Fewer bytes than announced, never padded, and the connection closes
    (a kept-alive one would wait for bytes that never come)."""
    (root / "shrinks.bin").write_bytes(SMALL)
    conn = _connection(gunicorn_url)
    try:
        conn.request("GET", "/changing/shrink/shrinks.bin")
        response = conn.getresponse()
        assert response.headers["Content-Length"] == str(len(SMALL))
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert cut.value.partial == SMALL[: len(SMALL) // 2]
    finally:
        conn.close()
