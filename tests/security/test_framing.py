"""A hostile upstream behind the HTTP proxy: framing, ranges, types, headers.

The upstream on 127.0.0.1 answers each path with canned raw bytes, so it can
send what no HTTP library would: ``Transfer-Encoding`` with
``Content-Length`` (response smuggling), lengths written with superscript
digits or 5,000 digits, ranges nobody asked for. The proxy app runs on
Werkzeug's threaded server and on gunicorn; every answer is read raw off
the socket. None of the upstream's framing may reach the client, every bad
answer is a clean 502 (never a 500, never a forged second response), and
the upstream connection is closed at once.
"""

from __future__ import annotations

import collections.abc as cabc
import gc
import gzip
import socket
import socketserver
import threading
import typing as t
from urllib.parse import quote

import pytest
from conftest import running_gunicorn
from conftest import serving
from flask import Flask
from flask import request

pytest.importorskip("urllib3", reason="HTTPDownloadView needs 'urllib3'")

from flask_download import DisallowedURL  # noqa: E402
from flask_download import FlaskDownload  # noqa: E402
from flask_download import HTTPDownloadView  # noqa: E402
from flask_download import HTTPFile  # noqa: E402
from flask_download import UpstreamError  # noqa: E402

from .conftest import build_request  # noqa: E402
from .conftest import raw_request  # noqa: E402
from .conftest import RawResponse  # noqa: E402
from .conftest import start_server  # noqa: E402
from .conftest import stop_server  # noqa: E402

#: What a smuggled second response says; it must never reach a client.
FORGED = (
    b"HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Type: text/html\r\n"
    b"Content-Length: 24\r\n\r\n<script>alert(1)</script>"
)
SCRIPT = b"<html><script>alert(document.domain)</script></html>"
GZIPPED = gzip.compress(b"compressed body " * 64)


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def _answer(status: bytes, headers: list[bytes], body: bytes) -> bytes:
    head = [b"HTTP/1.1 " + status, *headers, b"Connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


#: Path -> the raw answer of the upstream.
CANNED: dict[str, bytes] = {
    # RFC 9112 §6.3: both headers; urllib3 de-chunks, a relayed length of 5
    # would leave the rest (a forged response) on the client's connection.
    "/te-cl": _answer(
        b"200 OK",
        [
            b"Content-Type: text/plain",
            b"Transfer-Encoding: chunked",
            b"Content-Length: 5",
        ],
        _chunked(b"hello" + FORGED * 3),
    ),
    "/te-only": _answer(
        b"200 OK",
        [b"Content-Type: text/plain", b"Transfer-Encoding: chunked"],
        _chunked(b"streamed without a length"),
    ),
    "/cl-superscript": _answer(b"200 OK", [b"Content-Length: \xb2"], b"ab"),
    "/cl-huge": _answer(b"200 OK", [b"Content-Length: " + b"9" * 5000], b"ab"),
    "/cl-signed": _answer(b"200 OK", [b"Content-Length: +2"], b"ab"),
    "/cl-two": _answer(b"200 OK", [b"Content-Length: 2", b"Content-Length: 2"], b"ab"),
    "/cl-list": _answer(b"200 OK", [b"Content-Length: 2, 2"], b"ab"),
    "/cl-mismatch": _answer(
        b"200 OK", [b"Content-Length: 2", b"Content-Length: 3"], b"abc"
    ),
    "/cr-superscript": _answer(
        b"206 Partial Content",
        [b"Content-Range: bytes 0-1/\xb9", b"Content-Length: 2"],
        b"ab",
    ),
    "/cr-huge": _answer(
        b"206 Partial Content",
        [b"Content-Range: bytes 0-1/" + b"9" * 5000, b"Content-Length: 2"],
        b"ab",
    ),
    "/cr-backwards": _answer(
        b"206 Partial Content",
        [b"Content-Range: bytes 5-1/10", b"Content-Length: 2"],
        b"ab",
    ),
    "/cr-missing": _answer(b"206 Partial Content", [b"Content-Length: 2"], b"ab"),
    # A range nobody asked for, with an active type.
    "/html-206": _answer(
        b"206 Partial Content",
        [
            b"Content-Type: text/html",
            b"Content-Range: bytes 0-%d/1000" % (len(SCRIPT) - 1),
            b"Content-Length: %d" % len(SCRIPT),
        ],
        SCRIPT,
    ),
    "/range-on-200": _answer(
        b"200 OK",
        [b"Content-Range: bytes 0-1/2", b"Content-Length: 2"],
        b"ab",
    ),
    "/html": _answer(
        b"200 OK",
        [b"Content-Type: text/html", b"Content-Length: %d" % len(SCRIPT)],
        SCRIPT,
    ),
    "/bad-type": _answer(
        b"200 OK",
        [b"Content-Type: text/plain\xe2\x82\xac", b"Content-Length: 2"],
        b"ab",
    ),
    "/gzip": _answer(
        b"200 OK",
        [
            b"Content-Type: text/plain",
            b"Content-Encoding: gzip",
            b"Vary: Origin",
            b"Content-Length: %d" % len(GZIPPED),
        ],
        GZIPPED,
    ),
    "/plain": _answer(b"200 OK", [b"Content-Length: 9"], b"upstream\n"),
}
#: Answers the proxy must refuse with 502 (the client sent no Range).
BAD_FRAMING = [
    "/te-cl",
    "/cl-superscript",
    "/cl-huge",
    "/cl-signed",
    "/cl-two",
    "/cl-list",
    "/cl-mismatch",
    "/cr-missing",
    "/html-206",
    "/range-on-200",
]
#: Answers to a request with ``Range`` that the proxy must refuse with 502.
BAD_RANGES = ["/cr-superscript", "/cr-huge", "/cr-backwards", "/cr-missing"]


class _Hostile(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HostileHandler)
        #: The raw request heads received, in order.
        self.heads: list[bytes] = []
        #: Paths whose connection the client closed, each set when seen.
        self.closed: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def closed_event(self, path: str) -> threading.Event:
        with self.lock:
            return self.closed.setdefault(path, threading.Event())


class _HostileHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        server = t.cast(_Hostile, self.server)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                return
            head += chunk
        server.heads.append(head)
        path = head.split(b" ", 2)[1].decode("latin-1").partition("?")[0]
        if path.startswith("/redirect-to/"):
            location = path.removeprefix("/redirect-to/").replace("~", "/")
            answer = _answer(
                b"302 Found",
                [b"Location: " + location.encode(), b"Content-Length: 0"],
                b"",
            )
        else:
            answer = CANNED.get(path, _answer(b"404 Not Found", [], b""))
        sock.sendall(answer)
        # Wait for the client to close: the tests check that it does so at
        # once, not when the garbage collector gets round to it.
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        server.closed_event(path).set()


@pytest.fixture(scope="module")
def hostile() -> cabc.Iterator[_Hostile]:
    with serving(_Hostile()) as server:
        yield server


class _ClientURLView(HTTPDownloadView):
    # A str is one host (it used to allow every one-letter host).
    allowed_hosts = "127.0.0.1"
    timeout = 5.0

    def get_url(self) -> str:
        return request.args["url"]


def make_proxy_app() -> Flask:
    """The proxy under test (imported by the gunicorn worker too)."""
    app = Flask("framing_app")
    FlaskDownload(app)
    app.add_url_rule("/proxy", view_func=_ClientURLView.as_view("proxy"))
    app.add_url_rule(
        "/inline", view_func=_ClientURLView.as_view("inline", attachment=False)
    )
    app.add_url_rule(
        "/png",
        view_func=_ClientURLView.as_view("png", attachment=False, mimetype="image/png"),
    )
    app.add_url_rule(
        "/token",
        view_func=_ClientURLView.as_view(
            "token",
            allowed_hosts=("127.0.0.1", "localhost"),
            request_headers={"Authorization": "Bearer APP-TOKEN"},
        ),
    )
    return app


@pytest.fixture(scope="module")
def werkzeug_port() -> cabc.Iterator[int]:
    live = start_server(make_proxy_app())
    try:
        yield live.port
    finally:
        stop_server(live)


@pytest.fixture(scope="module")
def gunicorn_port() -> cabc.Iterator[int]:
    app = "tests.security.test_framing:make_proxy_app()"
    with running_gunicorn(app, "--threads=4") as url:
        yield int(url.rpartition(":")[2])


@pytest.fixture(params=["werkzeug", "gunicorn"])
def port(request: pytest.FixtureRequest) -> int:
    """The proxy's port, on each real server."""
    return int(request.getfixturevalue(f"{request.param}_port"))


def _get(
    port: int,
    route: str,
    upstream_url: str,
    headers: cabc.Sequence[tuple[str, str]] = (),
    *,
    keep_alive: bool = False,
) -> RawResponse:
    """GET the proxy raw; the answer is checked for what no answer may do."""
    target = f"{route}?url={quote(upstream_url, safe='')}"
    data = build_request(target, headers, host=f"127.0.0.1:{port}")
    if keep_alive:
        # A persistent connection, where a smuggled response would be read
        # as the answer to the next request.
        data = data.replace(b"Connection: close", b"Connection: keep-alive")
        data += build_request("/proxy?url=x", host=f"127.0.0.1:{port}")
    response = raw_request(port, data)
    raw = response.raw
    assert response.status, f"no answer: {raw[:300]!r}"
    assert b"X-Injected" not in raw, f"a forged response got through: {raw!r}"
    assert b"Traceback" not in raw
    assert response.status != 500, raw[:500]
    return response


def _url(hostile: _Hostile, path: str) -> str:
    return f"http://127.0.0.1:{hostile.server_address[1]}{path}"


@pytest.mark.parametrize("path", BAD_FRAMING)
def test_bad_upstream_framing_is_502(port: int, hostile: _Hostile, path: str) -> None:
    response = _get(port, "/proxy", _url(hostile, path))
    assert response.status == 502, response
    assert SCRIPT not in response.body


def test_smuggled_response_never_reaches_a_persistent_connection(
    port: int, hostile: _Hostile
) -> None:
    """TE + CL upstream: no forged response on the client's connection (#12)."""
    response = _get(port, "/proxy", _url(hostile, "/te-cl"), keep_alive=True)
    assert response.status == 502
    assert response.raw.count(b"HTTP/1.1 200") == 0


@pytest.mark.parametrize("path", BAD_RANGES)
def test_bad_upstream_content_range_is_502(
    port: int, hostile: _Hostile, path: str
) -> None:
    response = _get(port, "/proxy", _url(hostile, path), [("Range", "bytes=0-1")])
    assert response.status == 502, response


def test_chunked_upstream_is_streamed_without_its_framing(
    port: int, hostile: _Hostile
) -> None:
    response = _get(port, "/proxy", _url(hostile, "/te-only"))
    assert response.status == 200
    assert response.body == b"streamed without a length"
    assert response.header("Content-Length") is None


def test_unasked_206_with_html_is_not_shown_as_the_views_image(
    port: int, hostile: _Hostile
) -> None:
    """attachment=False, mimetype=image/png, no Range: upstream 206 HTML (#12)."""
    response = _get(port, "/png", _url(hostile, "/html-206"))
    assert response.status == 502
    assert SCRIPT not in response.raw


def test_the_views_mimetype_wins_over_the_upstreams(
    port: int, hostile: _Hostile
) -> None:
    response = _get(port, "/png", _url(hostile, "/html"))
    assert response.status == 200
    assert response.header("Content-Type") == "image/png"
    # Asked for, a range keeps the view's type too.
    ranged = _get(port, "/png", _url(hostile, "/html-206"), [("Range", "bytes=0-")])
    assert ranged.status == 206
    assert ranged.header("Content-Type") == "image/png"


def test_inline_upstream_html_is_sandboxed(port: int, hostile: _Hostile) -> None:
    response = _get(port, "/inline", _url(hostile, "/html"))
    assert response.status == 200
    assert response.header("Content-Type") == "text/html"
    assert response.header("Content-Security-Policy") == "sandbox"
    attachment = _get(port, "/proxy", _url(hostile, "/html"))
    assert attachment.header("Content-Security-Policy") is None


def test_invalid_upstream_media_type_is_not_relayed(
    port: int, hostile: _Hostile
) -> None:
    response = _get(port, "/proxy", _url(hostile, "/bad-type"))
    assert response.status == 200
    assert response.header("Content-Type") == "application/octet-stream"
    assert response.body == b"ab"


@pytest.mark.parametrize("accept", [None, "gzip", "identity"])
def test_vary_accept_encoding_is_always_sent(
    port: int, hostile: _Hostile, accept: str | None
) -> None:
    headers = [("Accept-Encoding", accept)] if accept else []
    response = _get(port, "/proxy", _url(hostile, "/gzip"), headers)
    assert response.status == 200
    assert response.header("Content-Encoding") == "gzip"
    assert response.header("Vary") == "Origin, Accept-Encoding"
    plain = _get(port, "/proxy", _url(hostile, "/plain"), headers)
    assert plain.header("Vary") == "Accept-Encoding"


def test_app_headers_reach_the_upstream_but_not_another_origin(
    werkzeug_port: int, hostile: _Hostile
) -> None:
    port = hostile.server_address[1]
    other = f"http:~~localhost:{port}~plain"  # "/" written "~" in the path
    before = len(hostile.heads)
    response = _get(
        werkzeug_port,
        "/token",
        _url(hostile, f"/redirect-to/{other}"),
        [("Authorization", "Bearer CLIENT-TOKEN"), ("Cookie", "s=CLIENT-COOKIE")],
    )
    assert response.status == 200
    assert response.body == b"upstream\n"
    first, second = hostile.heads[before:]
    assert b"Authorization: Bearer APP-TOKEN" in first
    for head in (first, second):
        assert b"CLIENT-TOKEN" not in head
        assert b"CLIENT-COOKIE" not in head
    # The redirect left the first origin: the app's token stays behind.
    assert b"APP-TOKEN" not in second


def test_a_str_allowed_hosts_is_one_host(
    werkzeug_port: int, monkeypatch: pytest.MonkeyPatch, hostile: _Hostile
) -> None:
    """allowed_hosts="127.0.0.1" used to allow every host named by one letter."""
    real = socket.getaddrinfo

    def fake(host: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return real("127.0.0.1" if host == "1" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    port = hostile.server_address[1]
    before = len(hostile.heads)
    refused = _get(werkzeug_port, "/proxy", f"http://1:{port}/plain")
    assert refused.status == 403
    assert len(hostile.heads) == before
    with HTTPFile(f"http://1:{port}/plain", allowed_hosts="1") as file:
        assert file.status == 200  # the string names the one host allowed
    with pytest.raises(DisallowedURL):
        HTTPFile(f"http://1:{port}/plain", allowed_hosts="127.0.0.1")


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/cl-superscript", {}),
        ("/cl-huge", {}),
        ("/te-cl", {}),
        ("/cl-mismatch", {}),
        ("/html-206", {}),
        ("/cr-superscript", {"Range": "bytes=0-1"}),
    ],
    ids=[
        "cl-superscript",
        "cl-huge",
        "te-cl",
        "cl-mismatch",
        "unasked-206",
        "cr-superscript",
    ],
)
def test_upstream_is_closed_at_once_on_errors(
    hostile: _Hostile, path: str, headers: dict[str, str]
) -> None:
    """No reliance on the garbage collector for the upstream socket (#12)."""
    event = hostile.closed_event(path)
    event.clear()
    gc.disable()
    try:
        # The exception stays alive, as while Flask handles it: its traceback
        # must not be what keeps the socket open.
        with pytest.raises(UpstreamError) as excinfo:
            HTTPFile(_url(hostile, path), headers=headers, allowed_hosts="127.0.0.1")
        assert event.wait(5), "the upstream connection was left open"
        del excinfo
    finally:
        gc.enable()
