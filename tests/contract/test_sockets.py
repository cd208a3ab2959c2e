"""DESIGN §3: sockets close on every path, also when the upstream is hostile."""

from __future__ import annotations

import collections.abc as cabc
import gc
import http.client
import socketserver
import sys
import threading
import typing as t

import pytest
from flask import Flask

from flask_download import HTTPDownloadView

from .conftest import Live

BAD: dict[str, bytes] = {
    "cl-two": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nab",
    "cl-mismatch": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\nabc",
    "cl-list": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n"
    b"Connection: close\r\n\r\nab",
    "cl-signed": b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n"
    b"Connection: close\r\n\r\nab",
    "cr-missing": b"HTTP/1.1 206 Partial Content\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nab",
    "range-on-200": b"HTTP/1.1 200 OK\r\nContent-Range: bytes 0-1/2\r\n"
    b"Content-Length: 2\r\nConnection: close\r\n\r\nab",
    "te-cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n"
    b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "server-error": b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nConnection: close"
    b"\r\n\r\nab",
    "not-found": b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close"
    b"\r\n\r\nab",
    "garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close"
    b"\r\n\r\nab",
}


class _Upstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request_line = self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        name = request_line.split(b" ")[1].decode().strip("/")
        self.wfile.write(BAD[name])


@pytest.fixture(scope="module")
def upstream_port() -> cabc.Iterator[int]:
    server = _Upstream(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.parametrize("name", sorted(BAD))
def test_upstream_socket_closed_on_every_answer(
    app: Flask,
    upstream_port: int,
    serve: t.Callable[[t.Any], Live],
    name: str,
) -> None:
    app.add_url_rule(
        "/p",
        view_func=HTTPDownloadView.as_view(
            "p",
            url=f"http://127.0.0.1:{upstream_port}/{name}",
            allowed_hosts=["127.0.0.1"],
            timeout=5,
        ),
    )
    leaks: list[str] = []
    previous = sys.unraisablehook

    def hook(unraisable: t.Any) -> None:
        leaks.append(repr(unraisable.exc_value))

    gc.collect()
    sys.unraisablehook = hook
    try:
        live = serve(app)
        for _ in range(3):
            try:
                status, _, _ = live.get("/p")
            except http.client.IncompleteRead:
                status = 200  # cut short mid-body: the upstream was truncated
            assert status != 500
        live.stop()
        gc.collect()
    finally:
        sys.unraisablehook = previous
    sockets = [leak for leak in leaks if "socket" in leak]
    assert not sockets, sockets
