"""Review 12: download views read ahead in the view (DownloadResponse.read_ahead).

A response read ahead holds its open file in a cycle (its body closes it):
one Flask drops instead of sending must still be closed when the request
ends, not at the garbage collector's next full pass.
"""

from __future__ import annotations

import collections.abc as cabc
import gc
import os
import pathlib
import typing as t

import pytest
from flask import Flask
from flask import Response

from flask_download import download_finished
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import send_download


@pytest.fixture
def no_gc() -> cabc.Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _open_count(path: pathlib.Path) -> int:
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                found += 1
        except OSError:
            pass
    return found


def _app(tmp_path: pathlib.Path) -> tuple[Flask, pathlib.Path]:
    target = tmp_path / "report.bin"
    target.write_bytes(b"r" * 200_000)
    app = Flask(__name__)
    FlaskDownload(app)
    app.add_url_rule(
        "/f/<path:path>", view_func=PathDownloadView.as_view("f", root=str(tmp_path))
    )
    app.add_url_rule(
        "/send", "send", lambda: send_download("report.bin", root=str(tmp_path))
    )
    return app, target


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("url", ["/f/report.bin", "/send"])
def test_a_response_after_request_replaced_is_closed(
    tmp_path: pathlib.Path, url: str
) -> None:
    app, target = _app(tmp_path)
    finished: list[object] = []

    def on_finished(sender: t.Any, **extra: t.Any) -> None:
        finished.append(extra)

    @app.after_request
    def replace(response: Response) -> Response:
        return Response("maintenance", status=503)

    with download_finished.connected_to(on_finished, app):
        response = app.test_client().get(url)
        assert response.status_code == 503
        assert _open_count(target) == 0
        assert len(finished) == 1


@pytest.mark.usefixtures("no_gc")
def test_a_response_dropped_for_an_after_request_error_is_closed(
    tmp_path: pathlib.Path,
) -> None:
    app, target = _app(tmp_path)

    @app.after_request
    def fail(response: Response) -> Response:
        if response.status_code == 200:
            raise RuntimeError("after_request bug on the download")
        return response

    response = app.test_client().get("/f/report.bin")
    assert response.status_code == 500
    assert _open_count(target) == 0


@pytest.mark.usefixtures("no_gc")
def test_a_view_answer_made_twice_closes_the_first(tmp_path: pathlib.Path) -> None:
    app, target = _app(tmp_path)

    def twice() -> t.Any:
        send_download("report.bin", root=str(tmp_path))  # made, then dropped
        return send_download("report.bin", root=str(tmp_path))

    app.add_url_rule("/twice", "twice", twice)
    response = app.test_client().get("/twice")
    assert response.get_data() == target.read_bytes()
    response.close()
    assert _open_count(target) == 0


def test_the_answer_sent_is_not_closed_early(tmp_path: pathlib.Path) -> None:
    app, target = _app(tmp_path)

    @app.after_request
    def touch(response: Response) -> Response:
        response.headers["X-Seen"] = "1"
        return response

    response = app.test_client().get("/f/report.bin")
    assert response.headers["X-Seen"] == "1"
    assert response.get_data() == target.read_bytes()
