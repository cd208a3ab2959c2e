"""benchmarks/profile_wire.py: how py-spy samples are split into parts."""

from __future__ import annotations

import importlib
import pathlib
import sys
import typing as t

import pytest

BENCHMARKS = pathlib.Path(__file__).parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def profile_wire() -> object:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("profile_wire")
    finally:
        sys.path.remove(str(BENCHMARKS))


WORKER = (
    "Arbiter.run (gunicorn/arbiter.py:247);SyncWorker.run (gunicorn/workers/"
    "sync.py:126);SyncWorker.run_for_one (gunicorn/workers/sync.py:80)"
)
HANDLE = WORKER + (
    ";SyncWorker.accept (gunicorn/workers/sync.py:40)"
    ";SyncWorker.handle (gunicorn/workers/sync.py:135)"
    ";SyncWorker.handle_request (gunicorn/workers/sync.py:180)"
)
FLASK = (
    HANDLE + ";Flask.__call__ (flask/app.py:1536);Flask.wsgi_app (flask/app.py:1511)"
)
VIEW = FLASK + (
    ";Flask.dispatch_request (flask/app.py:902)"
    ";DownloadView.as_view.<locals>.view (flask_download/views/_base.py:512)"
)


def test_samples_go_to_their_deepest_named_part(
    profile_wire: t.Any, tmp_path: pathlib.Path
) -> None:
    raw = tmp_path / "p.raw"
    raw.write_text(
        "\n".join(
            [
                f"{WORKER};SyncWorker.accept (gunicorn/workers/sync.py:40) 10",
                f"{HANDLE};Parser.__next__ (gunicorn/http/parser.py:40) 20",
                f"{HANDLE};Response.write_file (gunicorn/http/wsgi.py:563)"
                ";Response.send_headers (gunicorn/http/wsgi.py:400) 5",
                f"{HANDLE};Response.write_file (gunicorn/http/wsgi.py:563) 15",
                f"{FLASK};RequestContext.push (flask/ctx.py:360) 10",
                f"{VIEW};open_confined (flask_download/paths.py:10) 5",
                f"{VIEW};PathDownloadView.get_file (flask_download/views/_ready.py:91)"
                ";open_confined (flask_download/paths.py:10) 25",
                # A sample without its outer frames is left out.
                "open_confined (flask_download/paths.py:10) 50",
                "",
            ]
        )
    )
    shares = profile_wire.split(str(raw))
    assert sum(shares.values()) == pytest.approx(1.0)
    by_start = {part.split(" (")[0]: share for part, share in shares.items()}
    assert by_start["gunicorn: worker loop"] == pytest.approx(10 / 90)
    assert by_start[
        "gunicorn: parse the request, build the environ, close the socket"
    ] == pytest.approx(20 / 90)
    assert by_start["gunicorn: status line and headers"] == pytest.approx(5 / 90)
    assert by_start["gunicorn: body"] == pytest.approx(15 / 90)
    assert by_start["Flask and Werkzeug around the view"] == pytest.approx(10 / 90)
    assert by_start["the view"] == pytest.approx(5 / 90)
    assert by_start["file lookup"] == pytest.approx(25 / 90)
