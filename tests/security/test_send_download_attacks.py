"""Attacks on :func:`~flask_download.send_download` (issue 13).

``send_download(name, root=...)`` must confine a client-supplied path as
:class:`~flask_download.PathDownloadView` does (the same opener), whether
the name comes from the URL path or from a query parameter (which no
router has looked at); a file-like source is closed on every path, also
when an argument is refused before the response exists.
"""

from __future__ import annotations

import collections.abc as cabc
import io
import pathlib
import socket
import threading
import time
import typing as t
from urllib.parse import quote

import pytest
from flask import Flask
from flask import request

from flask_download import send_download

from .conftest import build_request
from .conftest import LiveServer
from .conftest import make_layout
from .conftest import SECRET
from .conftest import start_server
from .conftest import stop_server
from .test_traversal import _target
from .test_traversal import DEVICES
from .test_traversal import TRAVERSALS


class Tracked(io.BytesIO):
    """A file-like source that records whether it was closed."""

    opened: t.ClassVar[list[Tracked]] = []

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        Tracked.opened.append(self)


def make_app(root: pathlib.Path) -> Flask:
    app = Flask("send_download_attacks")
    app.config["ROOT"] = root

    @app.route("/send/<path:name>")
    def by_path(name: str) -> t.Any:
        return send_download(name, root=root)

    @app.route("/query")
    def by_query() -> t.Any:
        return send_download(request.args.get("name", ""), root=root)

    @app.route("/stream")
    def stream() -> t.Any:
        source = Tracked(b"x" * 4 * 1024 * 1024)
        args: dict[str, t.Any] = {}
        if "etag" in request.args:
            args["etag"] = request.args["etag"]
        if "lm" in request.args:
            args["last_modified"] = float(request.args["lm"])
        return send_download(source, **args)

    @app.errorhandler(ValueError)
    def bad_argument(error: ValueError) -> t.Any:
        return "bad argument", 400

    return app


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> t.Any:
    return make_layout(tmp_path_factory.mktemp("send_download_attacks"))


@pytest.fixture(scope="module")
def live(layout: t.Any) -> cabc.Iterator[LiveServer]:
    server = start_server(make_app(layout.root))
    try:
        yield server
    finally:
        stop_server(server)


ATTACKS = {**TRAVERSALS, **DEVICES}


@pytest.mark.parametrize("suffix", ATTACKS.values(), ids=ATTACKS.keys())
def test_root_confines_path_names(live: LiveServer, layout: t.Any, suffix: str) -> None:
    response = live.request(_target("/send/", suffix, layout).replace(" ", "%20"))
    if response.status in (301, 302, 307, 308):
        response = live.follow(response)
    assert response.status == 404, response
    assert SECRET not in response.raw


@pytest.mark.parametrize("suffix", ATTACKS.values(), ids=ATTACKS.keys())
def test_root_confines_query_names(
    live: LiveServer, layout: t.Any, suffix: str
) -> None:
    # The query string reaches send_download without any routing: leading
    # "/", "\\" and "//" arrive as they are.
    name = _target("", suffix, layout)
    for value in (name, quote(name, safe=""), "/" + name, "\\" + name):
        response = live.request("/query?name=" + quote(value, safe=""))
        assert response.status == 404, (value, response)
        assert SECRET not in response.raw


def layout_root(live: LiveServer) -> pathlib.Path:
    return t.cast(pathlib.Path, live.server.app.config["ROOT"])


def test_root_serves_what_is_inside(live: LiveServer) -> None:
    response = live.request("/query?name=hello.txt")
    assert response.status == 200, response
    assert response.body == (layout_root(live) / "hello.txt").read_bytes()


@pytest.mark.parametrize(
    "query", ["etag=a%22b", "etag=a%0d%0aX:1", "lm=nan", "lm=1e300", "lm=-1e300"]
)
def test_file_like_closed_when_an_argument_is_refused(
    live: LiveServer, query: str
) -> None:
    before = len(Tracked.opened)
    response = live.request("/stream?" + query)
    assert response.status == 400, response
    assert len(Tracked.opened) == before + 1
    assert Tracked.opened[-1].closed


def test_file_like_closed_when_the_client_hangs_up(live: LiveServer) -> None:
    before = len(Tracked.opened)
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(build_request("/stream", host=live.host))
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(Tracked.opened) > before and Tracked.opened[-1].closed:
            break
        time.sleep(0.05)
    assert Tracked.opened[before].closed
    assert threading.active_count() < 50
