"""Review 6 (a): the proxy's forwarded ranges and request headers, and the
config-key warning of ``init_app``."""

from __future__ import annotations

import collections.abc as cabc
import http.server
import pathlib
import sys
import threading
import typing as t

import pytest
from flask import Flask

from flask_download import FlaskDownload
from flask_download.ranges import evaluate_range
from flask_download.ranges import forwardable_range
from flask_download.ranges import UNSATISFIABLE

# -- the config-key warning points at the application's line -----------------


def _app(tmp_path: pathlib.Path) -> Flask:
    app = Flask(__name__, root_path=str(tmp_path))
    app.config.update(TESTING=True, DOWNLOAD_HTTP_PROXY="http://proxy:3128")
    return app


def test_group_key_warning_points_at_the_init_app_line(tmp_path: pathlib.Path) -> None:
    # The app-factory form: the warning named the caller of the factory
    # (here pytest's frame), not the init_app line.
    download = FlaskDownload()
    app = _app(tmp_path)
    with pytest.warns(UserWarning, match="DOWNLOAD_HTTP_PROXY") as record:
        line = sys._getframe().f_lineno + 1
        download.init_app(app)
    (warning,) = record
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_group_key_warning_points_at_the_constructor_line(
    tmp_path: pathlib.Path,
) -> None:
    app = _app(tmp_path)
    with pytest.warns(UserWarning, match="DOWNLOAD_HTTP_PROXY") as record:
        line = sys._getframe().f_lineno + 1
        FlaskDownload(app)
    (warning,) = record
    assert (warning.filename, warning.lineno) == (__file__, line)


# -- the view's request headers replace the client's, whatever their case ----


class _Seen(http.server.ThreadingHTTPServer):
    daemon_threads = True
    seen: list[list[tuple[str, str]]]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 10 bytes and records the request's header
    lines as they came, duplicates included."""

    protocol_version = "HTTP/1.1"
    server: _Seen

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(list(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", "10")
        self.end_headers()
        self.wfile.write(b"0123456789")


@pytest.fixture
def recorder() -> cabc.Iterator[tuple[str, _Seen]]:
    server = _Seen(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/f.bin", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        from flask_download.http import _pool

        _pool().clear()


def _values(lines: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in lines if key.lower() == name]


def test_view_request_headers_replace_the_clients_in_any_case(
    recorder: tuple[str, _Seen],
) -> None:
    pytest.importorskip("urllib3")
    from flask_download import HTTPDownloadView

    url, server = recorder
    app = Flask(__name__)
    app.add_url_rule(
        "/dl",
        view_func=HTTPDownloadView.as_view(
            "dl",
            url=url,
            allowed_hosts=["127.0.0.1"],
            # The documented "which win": a gzip body the view asked not to
            # get, or the client's range beside the view's own.
            request_headers={"accept-encoding": "identity", "range": "bytes=0-3"},
        ),
    )
    headers = {"Accept-Encoding": "gzip", "Range": "bytes=5-9"}
    with app.test_client().get("/dl", headers=headers) as rv:
        assert rv.status_code == 200
    (lines,) = server.seen
    assert _values(lines, "accept-encoding") == ["identity"]
    assert _values(lines, "range") == ["bytes=0-3"]


def test_http_file_sends_one_user_agent(recorder: tuple[str, _Seen]) -> None:
    pytest.importorskip("urllib3")
    from flask_download import HTTPFile

    url, server = recorder
    with HTTPFile(url, headers={"user-agent": "mine/1"}, allowed_hosts="127.0.0.1"):
        pass
    (lines,) = server.seen
    assert _values(lines, "user-agent") == ["mine/1"]


# -- forwarded ranges are answered with exactly those ranges ------------------


@pytest.mark.parametrize(
    "header",
    [
        "bytes= 0-1",
        "bytes=\t0-1 ,\t5-6",
        "bytes=0-0,,2-2",
        "bytes=2-2,0-0",
        "bytes=0-0,2-2",
        "bytes=007-009,0000-0001",
        "bytes=0-0,99999999999999999999999-",
        "bytes=100000000000000000000-100000000000000000001",
        "bytes=-5",
        "bytes=-0",
    ],
)
def test_a_forwarded_range_is_one_the_engine_answers_as_it_is(header: str) -> None:
    assert forwardable_range(header, 50)
    specs = [s.strip(" \t") for s in header.partition("=")[2].split(",")]
    specs = [s for s in specs if s]
    for size in (1, 2, 3, 8, 10, 10**19):
        decision = evaluate_range(
            range_header=header,
            if_range=None,
            size=size,
            etag=None,
            last_modified=None,
            max_ranges=50,
        )
        assert decision is not None
        if decision is UNSATISFIABLE:
            continue
        # Never coalesced: as many ranges as the satisfiable specs.
        satisfiable = [
            s
            for s in specs
            if (s.startswith("-") and int(s[1:]))
            or (not s.startswith("-") and int(s.partition("-")[0]) < size)
        ]
        assert len(decision) == len(satisfiable)


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-0,1-1",  # touching: coalesced
        "bytes=0-0,1-1,",
        "bytes=1-1,0-0",
        "bytes=0-00000000000000000000000001,1-1",
        "bytes=99999999999999999999999-,100000000000000000000000-",
        "bytes=0-1,x",
        "bytes 0-1",
        "bytes =0-1",
        "bytes=,",
        "bytes=0-0,-1",
    ],
)
def test_ranges_the_engine_may_merge_or_ignore_stay_here(header: str) -> None:
    assert not forwardable_range(header, 50)
