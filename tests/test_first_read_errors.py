"""A source that fails before its first byte gets its own status, not the
server's 500 page.

Werkzeug and gunicorn send the status line with the first body bytes, after
the application returned: an error raised by ``open()`` or by the first read
(a store down since ``info()``, a key deleted, an upstream that broke off)
used to reach the server, which answered its own 500 page. The response now
reads the first chunk before it answers, and an error then goes through the
application's error handlers like one raised in the view.
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import typing as t
import urllib.parse

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from flask import got_request_exception
from fsspec.implementations.memory import MemoryFileSystem

from flask_download import download_finished
from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import StorageDownloadView
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.exceptions import StorageUnavailable
from flask_download.exceptions import UpstreamError

#: What the sources were asked to do, and whether they were closed.
EVENTS: list[str] = []


class FailingOpen(DownloadFile):
    """A seekable file whose ``open()`` finds the store down."""

    name = "report.csv"
    size = 10
    seekable = True

    def open(self) -> t.IO[bytes]:
        EVENTS.append("open")
        raise StorageUnavailable("the store went away")

    def close(self) -> None:
        EVENTS.append("close")


class FailingOpenView(DownloadView):
    def get_file(self) -> DownloadFile:
        return FailingOpen()


class BrokenStore(MemoryFileSystem):
    """A memory store whose reads fail the way ``failure`` says."""

    cachable = False
    failure: type[BaseException] = ConnectionError

    def cat_file(self, path: str, *args: t.Any, **kwargs: t.Any) -> bytes:
        EVENTS.append("read")
        raise self.failure("no route to the store")


class DeletedStore(BrokenStore):
    failure = FileNotFoundError


def first_chunk_fails(kind: str) -> cabc.Iterator[bytes]:
    EVENTS.append("read")
    if kind == "upstream":
        raise UpstreamError("the origin broke off")
    raise TypeError("a bug in the generator")
    yield b""  # pragma: no cover


class StreamView(VirtualDownloadView):
    kind = "upstream"

    def get_file(self) -> DownloadFile:
        return VirtualFile(first_chunk_fails(self.kind), name="feed.txt", size=12)


class NthChunkFails(VirtualDownloadView):
    def get_file(self) -> DownloadFile:
        def chunks() -> cabc.Iterator[bytes]:
            yield b"hello "
            raise UpstreamError("the origin broke off")

        return VirtualFile(chunks(), name="feed.txt", size=12)


def create_app() -> Flask:
    app = Flask(__name__)
    FlaskDownload(app)
    broken = BrokenStore()
    broken.pipe("/first-read/broken.csv", b"0123456789")
    deleted = DeletedStore()
    deleted.pipe("/first-read/deleted.csv", b"0123456789")
    app.add_url_rule("/open", view_func=FailingOpenView.as_view("open"))
    app.add_url_rule(
        "/store/<path:path>",
        view_func=StorageDownloadView.as_view("store", storage=broken),
    )
    app.add_url_rule(
        "/deleted/<path:path>",
        view_func=StorageDownloadView.as_view("deleted", storage=deleted),
    )
    app.add_url_rule("/upstream", view_func=StreamView.as_view("upstream"))
    app.add_url_rule("/bug", view_func=StreamView.as_view("bug", kind="bug"))
    app.add_url_rule("/later", view_func=NthChunkFails.as_view("later"))

    @app.errorhandler(503)
    def unavailable(error: Exception) -> tuple[str, int]:
        return "try again soon", 503

    @app.errorhandler(500)
    def internal(error: Exception) -> tuple[str, int]:
        return "our fault", 500

    return app


@pytest.fixture(autouse=True)
def clear_events() -> None:
    EVENTS.clear()


@pytest.fixture
def app() -> Flask:
    return create_app()


def test_open_failure_goes_to_the_apps_handler(app: Flask) -> None:
    response = app.test_client().get("/open")
    assert response.status_code == 503
    assert response.get_data() == b"try again soon"
    assert "Content-Disposition" not in response.headers
    assert EVENTS == ["open", "close"]


def test_store_down_at_first_read_is_503(app: Flask) -> None:
    response = app.test_client().get("/store/first-read/broken.csv")
    assert response.status_code == 503
    assert response.get_data() == b"try again soon"
    assert "Content-Disposition" not in response.headers
    assert "read" in EVENTS


def test_key_deleted_before_first_read_is_404(app: Flask) -> None:
    response = app.test_client().get("/deleted/first-read/deleted.csv")
    assert response.status_code == 404
    assert "Content-Disposition" not in response.headers


def test_upstream_failure_at_first_chunk_is_502(app: Flask) -> None:
    response = app.test_client().get("/upstream")
    assert response.status_code == 502
    assert "Content-Disposition" not in response.headers
    assert EVENTS == ["read"]


def test_a_bug_at_first_read_is_logged_like_a_view_error(app: Flask) -> None:
    heard: list[BaseException] = []

    def listen(sender: Flask, exception: BaseException, **extra: t.Any) -> None:
        heard.append(exception)

    with got_request_exception.connected_to(listen, app):
        response = app.test_client().get("/bug")
    assert response.status_code == 500
    assert response.get_data() == b"our fault"
    assert [type(e) for e in heard] == [TypeError]


def test_a_bug_at_first_read_propagates_when_testing(app: Flask) -> None:
    app.testing = True
    with pytest.raises(TypeError, match="a bug in the generator"):
        app.test_client().get("/bug")


def test_head_never_reads(app: Flask) -> None:
    response = app.test_client().head("/store/first-read/broken.csv")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "10"
    assert EVENTS == []


def test_failure_after_the_first_chunk_cuts_the_body_short(app: Flask) -> None:
    with pytest.raises(UpstreamError):
        app.test_client().get("/later").get_data()


def test_download_finished_says_incomplete(app: Flask) -> None:
    finished: list[dict[str, t.Any]] = []

    def listen(sender: Flask, **extra: t.Any) -> None:
        finished.append(extra)

    with download_finished.connected_to(listen, app):
        response = app.test_client().get("/store/first-read/broken.csv")
    assert response.status_code == 503
    assert [(f["bytes_sent"], f["completed"]) for f in finished] == [(0, False)]


# -- on real servers: the status line is the error's ------------------------------


def fetch(base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


EXPECTED = {
    "/open": (503, b"try again soon"),
    "/store/first-read/broken.csv": (503, b"try again soon"),
    "/deleted/first-read/deleted.csv": (404, None),
    "/upstream": (502, None),
    "/bug": (500, b"our fault"),
}


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def server(request: pytest.FixtureRequest) -> cabc.Iterator[str]:
    if request.param == "werkzeug":
        with running_werkzeug(create_app()) as base:
            yield base
    else:
        with running_gunicorn("tests.test_first_read_errors:create_app()") as base:
            yield base


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_on_a_real_server(server: str, path: str) -> None:
    status, headers, body = fetch(server, path)
    expected_status, expected_body = EXPECTED[path]
    assert status == expected_status
    if expected_body is not None:
        assert body == expected_body
    assert int(headers["Content-Length"]) == len(body)
    assert "Content-Disposition" not in headers
