"""Fixtures for the contract tests: public names only, real servers."""

from __future__ import annotations

import collections.abc as cabc
import gc
import http.client
import threading
import typing as t
import warnings

import pytest
from werkzeug.serving import make_server
from werkzeug.serving import WSGIRequestHandler


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: t.Any) -> None:
        pass


class Live:
    """A Werkzeug threaded server running ``app`` on 127.0.0.1."""

    def __init__(self, app: t.Any) -> None:
        self.server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_Quiet
        )
        self.port: int = self.server.server_address[1]
        # A short poll interval: shutdown() waits for it.
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.02,), daemon=True
        )
        self.thread.start()

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            return response.status, response.headers, body
        finally:
            conn.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def serve() -> cabc.Iterator[cabc.Callable[[t.Any], Live]]:
    """Start real servers for the test; all are stopped at its end."""
    started: list[Live] = []

    def start(app: t.Any) -> Live:
        live = Live(app)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def check_handles_close(client: t.Any, url: str) -> None:
    """Answer ``url`` on every path (200, 304, 412, 416, 206, multipart, HEAD,
    a body dropped half read) with ``ResourceWarning`` an error."""
    with client.get(url) as rv:
        etag = rv.headers["ETag"]
    cases: list[dict[str, str]] = [
        {},
        {"If-None-Match": etag},
        {"If-Match": '"nope"'},
        {"Range": "bytes=5000-"},
        {"Range": "bytes=0-1"},
        {"Range": "bytes=0-1,5-6"},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for headers in cases:
            with client.get(url, headers=headers) as rv:
                rv.get_data()
            with client.head(url, headers=headers):
                pass
        rv = client.get(url, buffered=False)
        next(iter(rv.response))
        rv.close()
        gc.collect()
