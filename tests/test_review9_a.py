"""Review round 9 (a): errors before the first byte, app.response_class.

Each test names the finding it pins.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import http.client
import io
import pathlib
import pickle
import typing as t
import urllib.parse

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from flask import Response
from flask import session

from flask_download import download_finished
from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.exceptions import FileNotFound
from flask_download.exceptions import StorageUnavailable
from flask_download.exceptions import UpstreamError

#: Two ranges: a multipart/byteranges body, which starts with a part header.
MULTIPART = {"Range": "bytes=0-0,2-3"}


class _FailingHandle(io.RawIOBase):
    """An open file whose every read fails (a store's lazy open())."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def readinto(self, buffer: t.Any) -> int:
        raise self.error


class FailingRead(DownloadFile):
    """Seekable, sized; opened fine, its first read fails with ``error``."""

    name = "report.txt"
    size = 10
    seekable = True
    etag = "v1"

    def __init__(self, error: Exception, at_open: bool = False) -> None:
        self.error = error
        self.at_open = at_open

    def open(self) -> t.IO[bytes]:
        if self.at_open:
            raise self.error
        return t.cast(t.IO[bytes], _FailingHandle(self.error))


class FailingView(DownloadView):
    error: Exception = StorageUnavailable("down")
    at_open = False
    cache_max_age = 3600

    def get_file(self) -> DownloadFile:
        session["visited"] = "yes"  # a session change the answer must carry
        return FailingRead(self.error, self.at_open)


def create_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "review 9"
    FlaskDownload(app)
    app.add_url_rule("/down", view_func=FailingView.as_view("down"))
    app.add_url_rule(
        "/gone", view_func=FailingView.as_view("gone", error=FileNotFound("gone"))
    )
    app.add_url_rule(
        "/gone-at-open",
        view_func=FailingView.as_view(
            "gone_at_open", error=FileNotFound("gone"), at_open=True
        ),
    )
    app.add_url_rule(
        "/upstream",
        view_func=FailingView.as_view("upstream", error=UpstreamError("cut")),
    )

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "custom 404", 404

    @app.errorhandler(503)
    def unavailable(error: Exception) -> tuple[str, int]:
        return "try again soon", 503

    @app.errorhandler(502)
    def bad_gateway(error: Exception) -> tuple[str, int]:
        raise RuntimeError("a bug in the 502 handler")

    @app.errorhandler(500)
    def internal(error: Exception) -> tuple[str, int]:
        return "our fault", 500

    @app.after_request
    def mark(response: Response) -> Response:
        response.headers["X-After"] = "yes"
        return response

    return app


@pytest.fixture
def app() -> Flask:
    return create_app()


# -- a multipart body starts with its part header, not with the file -----------


def test_multipart_store_down_at_first_read_is_the_apps_503(app: Flask) -> None:
    """The first chunk of a multipart/byteranges body is the first part's
    header, made in Python: reading only it before the status line let a
    store that failed at its first read escape as the server's 500."""
    with app.test_client().get("/down", headers=MULTIPART) as rv:
        assert rv.status_code == 503
        assert rv.get_data() == b"try again soon"
        assert "Content-Range" not in rv.headers


def test_multipart_key_deleted_at_first_read_is_404(app: Flask) -> None:
    with app.test_client().get("/gone", headers=MULTIPART) as rv:
        assert rv.status_code == 404
        assert rv.get_data() == b"custom 404"
        assert "multipart" not in rv.headers["Content-Type"]


# -- the error answer is made as Flask makes a view's ------------------------------


def test_error_answer_goes_through_after_request_and_keeps_the_session(
    app: Flask,
) -> None:
    """A 503 at the first read lost the session's Set-Cookie and the
    after_request headers (the 500 path had them: handle_exception runs
    finalize_request)."""
    with app.test_client().get("/down") as rv:
        assert rv.status_code == 503
        assert rv.headers["X-After"] == "yes"
        assert "session=" in rv.headers.get("Set-Cookie", "")


def test_an_error_handler_that_fails_is_the_apps_500(app: Flask) -> None:
    """The 502 handler raising went past Flask to the server's 500 page."""
    with app.test_client().get("/upstream") as rv:
        assert rv.status_code == 500
        assert rv.get_data() == b"our fault"


@pytest.mark.parametrize("path", ["/gone", "/gone-at-open"], ids=["read", "open"])
def test_file_gone_before_the_first_byte_uses_the_apps_404_handler(
    app: Flask, path: str
) -> None:
    """An empty text/plain 404 answered, the app's 404 page never ran, and
    the download's Cache-Control (public, an hour) stayed on it."""
    with app.test_client().get(path) as rv:
        assert rv.status_code == 404
        assert rv.get_data() == b"custom 404"
        assert "max-age" not in rv.headers.get("Cache-Control", "")
        assert "ETag" not in rv.headers
        assert "Content-Disposition" not in rv.headers


# -- on real servers -----------------------------------------------------------------


def fetch(base: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def server(request: pytest.FixtureRequest) -> cabc.Iterator[str]:
    if request.param == "werkzeug":
        with running_werkzeug(create_app()) as base:
            yield base
    else:
        with running_gunicorn("tests.test_review9_a:create_app()") as base:
            yield base


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/down", MULTIPART, (503, b"try again soon")),
        ("/gone", MULTIPART, (404, b"custom 404")),
        ("/gone", {}, (404, b"custom 404")),
        ("/upstream", {}, (500, b"our fault")),
    ],
    ids=["multipart-503", "multipart-404", "404-handler", "failing-handler"],
)
def test_on_a_real_server(
    server: str, path: str, headers: dict[str, str], expected: tuple[int, bytes]
) -> None:
    assert fetch(server, path, headers) == expected


def test_connection_kept_alive_after_an_error_answer() -> None:
    """A failure read ahead of the status line had gunicorn close the
    connection (the body's cut-short path ran) after the error's own, fully
    framed answer: every such 503 cost the client a new connection."""
    with running_gunicorn(
        "tests.test_review9_a:create_app()", "--worker-class=gthread", "--threads=2"
    ) as base:
        parts = urllib.parse.urlsplit(base)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request("GET", "/down")
            first = connection.getresponse()
            assert (first.status, first.read()) == (503, b"try again soon")
            assert first.getheader("Connection") == "keep-alive"
            sock = connection.sock
            assert sock is not None
            connection.request("GET", "/gone")
            second = connection.getresponse()
            assert (second.status, second.read()) == (404, b"custom 404")
            assert connection.sock is sock  # the same connection
        finally:
            connection.close()


# -- app.response_class --------------------------------------------------------------


class BodyFirst(Response):
    """An app's response class whose __init__ needs the body, positional, as
    send_file passes it."""

    def __init__(self, response: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(response, *args, **kwargs)
        self.headers["X-App-Class"] = "yes"


class Cached(Response):
    """A module-level app class: picklable, like a response cache needs."""


def app_with(response_class: type[Response]) -> Flask:
    app = Flask(__name__)
    app.response_class = response_class
    FlaskDownload(app)
    app.add_url_rule(
        "/view",
        view_func=VirtualDownloadView.as_view("view", content=b"hello", basename="a"),
    )

    @app.route("/send")
    def send() -> Response:
        return send_download(b"hello", basename="a")

    return app


@pytest.mark.parametrize("path", ["/view", "/send"])
def test_app_response_class_taking_the_body_positionally(path: str) -> None:
    """DownloadResponse called the app class's __init__ without the body:
    every download of such an app was a 500 (send_file works with it)."""
    with app_with(BodyFirst).test_client().get(path) as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"hello"
        assert rv.headers["X-App-Class"] == "yes"


def test_mixed_response_pickles() -> None:
    """The mixed class bears DownloadResponse's name: pickle found that class
    instead and refused the response (Flask-Caching pickles responses)."""
    app = app_with(Cached)
    with app.test_request_context("/send"):
        response = send_download(b"hello", basename="a.bin")
        try:
            again = pickle.loads(pickle.dumps(response))
        finally:
            response.close()
        assert type(again) is type(response)
        assert isinstance(again, Cached)
        assert b"".join(again.iter_encoded()) == b"hello"
        again.close()


class WithHeaders(VirtualDownloadView):
    """A view whose get() answers Flask's way: (response, headers)."""

    def get_file(self) -> DownloadFile:
        return VirtualFile(
            b"hello",
            name="a.txt",
            modified_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        )

    def get(self, **kwargs: t.Any) -> t.Any:
        return self.render_to_response(), {"X-Extra": "yes"}


def test_a_304_in_a_tuple_keeps_last_modified() -> None:
    """Only a bare response was made the app's class: in a (response,
    headers) tuple Flask swapped the 304's class and lost Last-Modified."""
    app = app_with(Cached)
    app.add_url_rule("/tuple", view_func=WithHeaders.as_view("tuple"))
    client = app.test_client()
    with client.get("/tuple") as rv:
        assert rv.get_data() == b"hello"
        etag = rv.headers["ETag"]
    with client.get("/tuple", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.headers["X-Extra"] == "yes"
        assert rv.headers["Last-Modified"] == "Wed, 01 Jan 2020 00:00:00 GMT"


class OffloadedWithHeaders(PathDownloadView):
    def get(self, **kwargs: t.Any) -> t.Any:
        return self.render_to_response(), {"X-Extra": "yes"}


def test_an_offloaded_download_in_a_tuple_sends_its_signals(
    tmp_path: pathlib.Path,
) -> None:
    """The offloaded response (AccelResponse) in a tuple became the app's
    plain class: download_started/finished never sent, the file never
    closed."""
    (tmp_path / "a.txt").write_bytes(b"hello")
    app = Flask(__name__)
    app.response_class = Cached
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": str(tmp_path), "destination_url": "/internal/"}
        ],
    )
    FlaskDownload(app)
    app.add_url_rule(
        "/off/<path:path>",
        view_func=OffloadedWithHeaders.as_view("off", root=str(tmp_path)),
    )
    finished: list[dict[str, t.Any]] = []

    def listen(sender: Flask, **extra: t.Any) -> None:
        finished.append(extra)

    with (
        download_finished.connected_to(listen, app),
        app.test_client().get("/off/a.txt") as rv,
    ):
        assert rv.headers["X-Accel-Redirect"] == "/internal/a.txt"
        assert rv.headers["X-Extra"] == "yes"
    assert [(f["bytes_sent"], f["completed"]) for f in finished] == [(None, True)]
