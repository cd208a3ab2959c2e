"""Review round 10 (a): the error answer made after the download's
after_request, app.response_class.

Each test names the finding it pins.
"""

from __future__ import annotations

import pickle
import threading
import typing as t

import pytest
from flask import after_this_request
from flask import Flask
from flask import Response
from flask import session
from werkzeug.exceptions import NotFound

from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import send_download
from flask_download.exceptions import FileNotFound
from flask_download.exceptions import StorageUnavailable


class Gone(DownloadFile):
    """Found by the view, gone (or its store down) when opened."""

    name = "report.txt"
    size = 10
    seekable = True

    def __init__(self, error: Exception) -> None:
        self.error = error

    def open(self) -> t.IO[bytes]:
        raise self.error


class GoneView(DownloadView):
    error: Exception = FileNotFound("gone")

    def get_file(self) -> DownloadFile:
        return Gone(self.error)


def create_app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "review 10"
    FlaskDownload(app)
    app.add_url_rule("/gone", view_func=GoneView.as_view("gone"))
    app.add_url_rule(
        "/down",
        view_func=GoneView.as_view("down", error=StorageUnavailable("down")),
    )
    app.add_url_rule(
        "/bug", view_func=GoneView.as_view("bug", error=RuntimeError("a bug"))
    )

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "custom 404", 404

    @app.errorhandler(500)
    def internal(error: Exception) -> tuple[str, int]:
        return "our fault", 500

    return app


@pytest.fixture
def app() -> Flask:
    return create_app()


# -- after_request functions already ran for the download ---------------------


@pytest.mark.parametrize("path", ["/gone", "/down"])
def test_after_this_request_runs_once(app: Flask, path: str) -> None:
    """A function given to after_this_request ran for the download, then
    again for the error answer: the usual clean-up (remove a temporary
    file) failed the second time and a 404 became the app's 500."""
    calls: list[int] = []

    @app.before_request
    def register() -> None:
        @after_this_request
        def clean_up(response: Response) -> Response:
            calls.append(response.status_code)
            if len(calls) > 1:
                raise FileNotFoundError("removed already")
            return response

    with app.test_client().get(path) as rv:
        assert rv.status_code == (404 if path == "/gone" else 503)
    assert len(calls) == 1


def test_after_this_request_once_on_the_500_path() -> None:
    app = create_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    calls: list[int] = []

    @app.before_request
    def register() -> None:
        @after_this_request
        def clean_up(response: Response) -> Response:
            calls.append(response.status_code)
            return response

    with app.test_client().get("/bug") as rv:
        assert (rv.status_code, rv.get_data()) == (500, b"our fault")
    assert len(calls) == 1


@pytest.mark.parametrize("path", ["/gone", "/down", "/bug"])
def test_a_cookie_set_once_by_after_request_reaches_the_client(path: str) -> None:
    """Flask-Login's remember cookie: its after_request pops a flag from the
    session and sets the cookie on the response it is given. That was the
    download, which never went out; the second run for the error answer
    found no flag: the user logged in with "remember me" lost the cookie."""
    app = create_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.before_request
    def log_in() -> None:
        session["_remember"] = "set"

    @app.after_request
    def remember(response: Response) -> Response:
        if session.pop("_remember", None) == "set":
            response.set_cookie("remember_token", "42")
        return response

    with app.test_client().get(path) as rv:
        assert rv.status_code == {"/gone": 404, "/down": 503, "/bug": 500}[path]
        cookies = rv.headers.getlist("Set-Cookie")
        assert any(c.startswith("remember_token=42") for c in cookies), cookies
        assert sum(c.startswith("session=") for c in cookies) == 1, cookies


# -- an error handler's answer that fails before its first byte ---------------------


def placeholder_app() -> Flask:
    app = create_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.errorhandler(404)
    def placeholder(error: Exception) -> Response:
        # A 404 page that sends a placeholder image, gone too.
        return send_download(Gone(FileNotFound("placeholder gone")))

    return app


@pytest.mark.parametrize("path", ["/gone", "/down"])
def test_a_404_handler_whose_download_is_gone_is_the_apps_500(path: str) -> None:
    """A file gone at its first byte became NotFound, answered by the app's
    404 handler; a handler that answers with a download of a file gone too
    raised NotFound again, and again: RecursionError out of the app (the
    server's 500 page, a thousand-frame log)."""
    app = placeholder_app()
    if path == "/down":

        @app.errorhandler(503)
        def unavailable(error: Exception) -> Response:
            return send_download(Gone(StorageUnavailable("down too")))

    with app.test_client().get(path) as rv:
        assert (rv.status_code, rv.get_data()) == (500, b"our fault")


def test_a_500_handler_whose_download_fails_ends_at_the_server() -> None:
    app = placeholder_app()

    @app.errorhandler(500)
    def internal(error: Exception) -> Response:
        return send_download(Gone(FileNotFound("gone as well")))

    with pytest.raises(NotFound):
        app.test_client().get("/bug")


# -- pickling the mixed class ---------------------------------------------------------


class Locked(Response):
    """An app class with an attribute pickle refuses, left out of its state
    by __getstate__ and made again by __setstate__."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()

    def __getstate__(self) -> dict[str, t.Any]:
        state = self.__dict__.copy()
        del state["lock"]
        return state

    def __setstate__(self, state: dict[str, t.Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.Lock()


def test_mixed_response_pickles_with_the_app_classs_getstate() -> None:
    """The mixed class pickled its __dict__ as it is, past the app class's
    __getstate__: 'cannot pickle _thread.lock'."""
    app = Flask(__name__)
    app.response_class = Locked
    FlaskDownload(app)
    with app.test_request_context("/"):
        response = send_download(b"hello", basename="a.bin")
        try:
            again = pickle.loads(pickle.dumps(response))
        finally:
            response.close()
        assert type(again) is type(response)
        assert isinstance(again.lock, type(response.lock))
        assert b"".join(again.iter_encoded()) == b"hello"
        again.close()
