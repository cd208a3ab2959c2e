"""Review of the host lookup timeout, nginx host checks and private caching."""

from __future__ import annotations

import functools
import os
import pathlib
import socket
import threading
import time
import typing as t

import pytest
from flask import Blueprint
from flask import Flask
from werkzeug.routing import BuildError

from flask_download import FlaskDownload
from flask_download import make_download_blueprint
from flask_download import nginx_secure_url_for
from flask_download import send_download
from flask_download import UpstreamError

http_module = pytest.importorskip("flask_download.http._resolver")

NGINX_SECRET = "n" * 32


def _free_slots() -> int:
    return int(http_module._lookups._value)


# -- host lookups ------------------------------------------------------------------


def test_a_lookup_thread_that_cannot_start_gives_its_slot_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread limit reached (``can't start new thread``) was a 500, and
    kept a lookup slot for ever: after MAX_LOOKUPS of them, every host name
    was refused."""
    before = _free_slots()

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    for _ in range(http_module.MAX_LOOKUPS + 1):
        with pytest.raises(UpstreamError) as info:
            http_module._resolve("localhost", 80, 5.0)
        assert "lookup" in info.value.detail
    assert _free_slots() == before
    monkeypatch.undo()
    assert http_module._resolve("localhost", 80, 5.0)


def test_an_interrupted_thread_start_gives_the_slot_back_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """KeyboardInterrupt while the thread starts: the slot comes back
    whether the thread ran or not, and never twice."""
    before = _free_slots()
    real_start = threading.Thread.start
    ran: list[threading.Thread] = []

    def start_then_interrupt(self: threading.Thread) -> None:
        real_start(self)
        ran.append(self)
        raise KeyboardInterrupt

    def interrupt(self: threading.Thread) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", interrupt)
    with pytest.raises(KeyboardInterrupt):
        http_module._resolve("localhost", 80, 5.0)
    assert _free_slots() == before
    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    errors: list[t.Any] = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    with pytest.raises(KeyboardInterrupt):
        http_module._resolve("localhost", 80, 5.0)
    for thread in ran:
        thread.join(10)
    assert errors == []  # no "released too many times" in the thread
    assert _free_slots() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_starts_with_every_lookup_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gunicorn --preload: a lookup stuck in the parent when the workers are
    forked has no thread in them to give its slot back."""
    import warnings

    release = threading.Event()
    real = socket.getaddrinfo

    def resolver(host: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if host == "stuck.example":
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "no answer")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    before = _free_slots()
    try:
        with pytest.raises(http_module.UpstreamTimeout):
            http_module._resolve("stuck.example", 80, 0.05)
        assert _free_slots() == before - 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork + threads
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0 if _free_slots() == http_module.MAX_LOOKUPS else 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
    # The stuck lookup ends and gives its slot back: wait for it, so that a
    # later test counting the slots does not see it come back under its feet.
    deadline = time.monotonic() + 10
    while _free_slots() < before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _free_slots() == before


# -- nginx secure links: endpoints as url_for takes them --------------------------


def _nginx_app(tmp_path: pathlib.Path) -> Flask:
    (tmp_path / "a.txt").write_bytes(b"a")
    app = Flask(__name__)
    app.config.update(
        DOWNLOAD_NGINX_SECURE_LINK_SECRET=NGINX_SECRET, DOWNLOAD_ROOT=str(tmp_path)
    )
    FlaskDownload(app)
    bp = Blueprint("files", __name__, url_prefix="/files")

    @bp.route("/<path:name>")
    def file(name: str) -> t.Any:
        return send_download(name, root=str(tmp_path))

    @bp.route("/link/<path:name>")
    def link(name: str) -> str:
        return nginx_secure_url_for(".file", name=name)

    app.register_blueprint(bp)
    return app


def test_nginx_secure_url_for_takes_a_blueprint_relative_endpoint(
    tmp_path: pathlib.Path,
) -> None:
    """``".file"`` inside the blueprint's request, as url_for takes it: the
    host check looked the name up as it was (KeyError, a 500)."""
    app = _nginx_app(tmp_path)
    app.add_url_rule("/top/<path:name>", "top", lambda name: name)
    with app.test_client() as client:
        rv = client.get("/files/link/a.txt")
        assert rv.status_code == 200
        assert rv.text.startswith("/files/a.txt?md5=")
    with app.test_request_context("/"):
        # Outside the blueprint: url_for's "." means the app's endpoint.
        assert nginx_secure_url_for(".top", name="b").startswith("/top/b?md5=")


def test_nginx_secure_url_for_an_unknown_endpoint_is_a_build_error(
    tmp_path: pathlib.Path,
) -> None:
    """As url_for says it (and app.url_build_error_handlers see it), not a
    KeyError from the host check."""
    app = _nginx_app(tmp_path)
    with app.test_request_context("/"), pytest.raises(BuildError):
        nginx_secure_url_for("nothing", name="a")


# -- blueprints: private caching ---------------------------------------------------


def _checked(view: t.Any) -> t.Any:
    @functools.wraps(view)
    def wrapper(**kwargs: t.Any) -> t.Any:
        return view(**kwargs)

    return wrapper


def test_a_cache_control_option_of_none_still_answers_private(
    tmp_path: pathlib.Path,
) -> None:
    """``options={"cache_control": None}`` (the default value, as a settings
    lookup gives it) is no chosen Cache-Control: the files stay private."""
    (tmp_path / "a.txt").write_bytes(b"a")
    app = Flask(__name__)
    app.config["DOWNLOAD_CACHE_MAX_AGE"] = 60
    app.register_blueprint(
        make_download_blueprint(
            "dl",
            root=str(tmp_path),
            options={"cache_control": None},
            decorators=[_checked],
        )
    )
    with app.test_client().get("/a.txt") as rv:
        assert rv.status_code == 200
        assert rv.headers["Cache-Control"] == "private, max-age=60"


# -- send_download: the documented headers -----------------------------------------


def test_send_download_docstring_says_the_fallback_is_private() -> None:
    doc = send_download.__doc__ or ""
    assert "private, max-age=N" in " ".join(doc.split())
