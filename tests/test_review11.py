"""Review round 11: the first-byte error answer (after_this_request, the
environ marker, carried cookies), the storage folder check.

Each test names the finding it pins.
"""

from __future__ import annotations

import os
import typing as t

import pytest
from flask import after_this_request
from flask import Flask
from flask import Response

from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import send_download
from flask_download.exceptions import FileNotFound


class Gone(DownloadFile):
    """Found by the view, gone when opened."""

    name = "report.txt"
    size = 10
    seekable = True

    def open(self) -> t.IO[bytes]:
        raise FileNotFound("gone")


class GoneView(DownloadView):
    def get_file(self) -> DownloadFile:
        return Gone()


def _app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "review 11"
    FlaskDownload(app)
    app.add_url_rule("/gone", view_func=GoneView.as_view("gone"))
    return app


def test_handler_after_this_request_runs_once_when_its_answer_fails() -> None:
    # Finding: a 404 handler that registers after_this_request and answers
    # with a download that fails too: its function ran for the handler's
    # answer (finalize_request) and again for the app's 500.
    app = _app()
    calls: list[int] = []

    @app.errorhandler(404)
    def not_found(error: Exception) -> Response:
        @after_this_request
        def cleanup(response: Response) -> Response:
            calls.append(response.status_code)
            return response

        return send_download(Gone())

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return "broken", 500

    response = app.test_client().get("/gone")
    assert response.status_code == 500
    assert response.get_data() == b"broken"
    assert len(calls) == 1


def test_error_answer_marker_does_not_outlive_the_answer() -> None:
    # Finding: the environ marker stayed set after the error answer, so a
    # middleware that calls the app again with the environ (a retry, an
    # internal forward with environ.copy()) got the server's 500 instead
    # of the app's 404 handler when the download failed again.
    app = _app()

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "no such report", 404

    inner = app.wsgi_app

    def twice(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
        first = inner(environ, lambda *a: None)
        b"".join(first)
        getattr(first, "close", lambda: None)()
        return inner(environ.copy(), start_response)

    app.wsgi_app = twice  # type: ignore[method-assign]
    response = app.test_client().get("/gone")
    assert response.status_code == 404
    assert response.get_data() == b"no such report"


def test_carried_cookie_with_another_path_is_kept() -> None:
    # Finding: the download's cookies were matched with the error answer's
    # by name only: a cookie of the same name for another path (another
    # cookie to the browser) was dropped.
    app = _app()

    @app.after_request
    def mark(response: Response) -> Response:
        if response.status_code != 404:
            response.set_cookie("seen", "download", path="/reports")
        else:
            response.set_cookie("seen", "page")
        return response

    response = app.test_client().get("/gone")
    assert response.status_code == 404
    cookies = response.headers.getlist("Set-Cookie")
    assert any(c.startswith("seen=download;") and "Path=/reports" in c for c in cookies)
    assert sum(c.startswith("seen=page;") for c in cookies) == 1


def test_carried_cookie_same_name_path_domain_not_doubled() -> None:
    # The error answer's own cookie wins over the download's with the same
    # name, path and domain (attribute names in any case).
    app = _app()

    @app.after_request
    def mark(response: Response) -> Response:
        if response.status_code != 404:
            response.headers.add(
                "Set-Cookie", "seen=download; path=/; Domain=.Example.com"
            )
        else:
            response.headers.add("Set-Cookie", "seen=page; Path=/; Domain=example.com")
        return response

    response = app.test_client().get("/gone")
    cookies = response.headers.getlist("Set-Cookie")
    assert [c for c in cookies if c.startswith("seen=")] == [
        "seen=page; Path=/; Domain=example.com"
    ]


def test_working_directory_parent_found_past_an_unreadable_parent(
    monkeypatch: t.Any, tmp_path: t.Any
) -> None:
    # Finding: one parent of the working directory that could not be
    # stat()ed ended the walk: the folder above it went unseen.
    from flask_download.storage import _keys

    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    real_stat = os.stat
    blocked = os.path.realpath(tmp_path / "a")

    def stat(path: t.Any, *args: t.Any, **kwargs: t.Any) -> os.stat_result:
        if os.fspath(path) == blocked:
            raise PermissionError(13, "denied", path)
        return real_stat(path, *args, **kwargs)

    # Seen by identity only (another name for tmp_path): a link.
    alias = tmp_path.parent / (tmp_path.name + "-alias")
    monkeypatch.setattr(_keys.os.path, "realpath", lambda p: os.path.abspath(p))
    os.symlink(tmp_path, alias)
    try:
        monkeypatch.setattr(_keys.os, "stat", stat)
        assert _keys._holds_working_directory(str(alias)) is not None
    finally:
        os.unlink(alias)


def test_bracketed_ipv6_network_is_called_a_network() -> None:
    # Finding: "[2001:db8::]/32" was not seen as a network (the brackets
    # were stripped from the ends only) and the message advised one address
    # of it, '[2001:db8::]'.
    from flask_download.exceptions import ConfigurationError
    from flask_download.settings import check_allowed_hosts

    with pytest.raises(ConfigurationError, match="is a network") as caught:
        check_allowed_hosts(["[2001:db8::]/32"], "allowed_hosts")
    assert "2001:db8::/32" in str(caught.value)
    with pytest.raises(ConfigurationError, match="is a network"):
        check_allowed_hosts(["2001:db8::/32"], "allowed_hosts")
