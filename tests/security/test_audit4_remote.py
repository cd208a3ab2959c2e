"""The remote view (audit 4): answers that are no file, and hosts in disguise.

A scripted upstream on 127.0.0.1 sends exactly the bytes each test gives it
(a final ``101``, a ``Transfer-Encoding`` http.client does not de-chunk, a
``304`` nobody asked for...); the application runs on Werkzeug's threaded
server and is read raw, so what the client would see on the wire is checked.
"""

from __future__ import annotations

import collections.abc as cabc
import socket
import socketserver
import threading
import typing as t
from urllib.parse import quote

import pytest
from flask import Flask
from flask import request

pytest.importorskip("urllib3", reason="HTTPDownloadView needs 'urllib3'")

from flask_download import HTTPDownloadView  # noqa: E402
from flask_download import HTTPFile  # noqa: E402
from flask_download import UpstreamError  # noqa: E402
from flask_download.http import _pool  # noqa: E402
from flask_download.http import is_public_address  # noqa: E402

from .conftest import build_request  # noqa: E402
from .conftest import LiveServer  # noqa: E402
from .conftest import raw_request  # noqa: E402
from .conftest import RawResponse  # noqa: E402
from .conftest import start_server  # noqa: E402
from .conftest import stop_server  # noqa: E402


class _Scripted(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        #: The raw answer to send (or a function sending it), by request path.
        self.answers: dict[str, bytes | cabc.Callable[[socket.socket], None]] = {}
        #: The head of every request received, in order.
        self.requests: list[bytes] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(socketserver.BaseRequestHandler):
    server: _Scripted

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        self.server.requests.append(head)
        path = head.split(b" ", 2)[1].decode("latin-1").partition("?")[0]
        answer = self.server.answers.get(
            path,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        if callable(answer):
            answer(self.request)
        else:
            self.request.sendall(answer)


@pytest.fixture(scope="module")
def scripted() -> cabc.Iterator[_Scripted]:
    server = _Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        _pool().clear()


@pytest.fixture(scope="module")
def live(scripted: _Scripted) -> cabc.Iterator[LiveServer]:
    app = Flask(__name__)

    class Scripted(HTTPDownloadView):
        """``/p?path=/x``: the scripted upstream's ``/x`` (127.0.0.1 allowed)."""

        allowed_hosts = ("127.0.0.1",)
        timeout = 5.0

        def get_url(self) -> str:
            return f"http://127.0.0.1:{scripted.port}{request.args['path']}"

    class Open(HTTPDownloadView):
        """``/open?url=``: any URL of the client, public addresses only."""

        timeout = 5.0

        def get_url(self) -> str:
            return request.args.get("url", "")

    app.add_url_rule("/p", view_func=Scripted.as_view("p"))
    app.add_url_rule("/open", view_func=Open.as_view("open"))
    server = start_server(app)
    try:
        yield server
    finally:
        stop_server(server)


def _relay(
    live: LiveServer,
    scripted: _Scripted,
    answer: bytes,
    headers: cabc.Sequence[tuple[str, str]] = (),
    method: str = "GET",
) -> RawResponse:
    """The application's answer, off the wire, when the upstream says ``answer``."""
    path = f"/answer-{len(scripted.answers)}"
    scripted.answers[path] = answer
    data = build_request(f"/p?path={path}", headers, method=method, host=live.host)
    return raw_request(live.port, data, method=method)


CLOSE = b"Connection: close\r\n"


# -- answers that are no file ---------------------------------------------------


@pytest.mark.parametrize("status", [b"101 Switching Protocols", b"103 Early Hints"])
def test_a_final_1xx_answer_is_a_502_never_relayed(
    live: LiveServer, scripted: _Scripted, status: bytes
) -> None:
    """A ``101`` relayed as the final status tells the client (or a proxy in
    front of the application) that the connection now speaks another
    protocol: what follows would be read as that protocol's bytes."""
    answer = (
        b"HTTP/1.1 " + status + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    for method in ("GET", "HEAD"):
        response = _relay(live, scripted, answer, method=method)
        assert response.status == 502, response
        assert response.header("Upgrade") is None
        assert b"/smuggled" not in response.raw


@pytest.mark.parametrize(
    "head",
    [
        b"204 No Content",
        b"205 Reset Content",
        b"226 IM Used",
        b"300 Multiple Choices",
        b"301 Moved Permanently",  # without a Location: not followed
        b"305 Use Proxy\r\nLocation: http://10.0.0.1/",
        b"399 Unknown",
    ],
)
def test_an_answer_that_is_no_file_is_a_502(
    live: LiveServer, scripted: _Scripted, head: bytes
) -> None:
    answer = (
        b"HTTP/1.1 " + head + b"\r\n" + CLOSE + b"Content-Type: text/html\r\n"
        b"Content-Length: 11\r\n\r\n<b>page</b>"
    )
    response = _relay(live, scripted, answer)
    assert response.status == 502, response
    assert b"<b>page</b>" not in response.body


@pytest.mark.parametrize(
    ("status", "asked"),
    [
        (b"304 Not Modified", ("If-None-Match", '"v1"')),
        (b"412 Precondition Failed", ("If-Match", '"v1"')),
        (b"416 Range Not Satisfiable", ("Range", "bytes=900-")),
    ],
    ids=["304", "412", "416"],
)
def test_a_conditional_answer_nobody_asked_for_is_a_502(
    live: LiveServer, scripted: _Scripted, status: bytes, asked: tuple[str, str]
) -> None:
    """Relayed when the client's condition went upstream; else it is no file
    (and ``HTTPFile`` outside the view would take it for an empty one)."""
    extra = b"Content-Range: bytes */5\r\n" if status.startswith(b"416") else b""
    answer = (
        b"HTTP/1.1 " + status + b"\r\n" + CLOSE + extra + b'ETag: "v1"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    assert _relay(live, scripted, answer).status == 502
    assert _relay(live, scripted, answer, [asked]).status == int(status[:3])

    path = "/unasked-" + status[:3].decode()
    scripted.answers[path] = answer
    with pytest.raises(UpstreamError):
        HTTPFile(f"http://127.0.0.1:{scripted.port}{path}", allowed_hosts=["127.0.0.1"])


@pytest.mark.parametrize(
    "codings",
    [
        [b"gzip, chunked"],
        [b"chunked, chunked"],
        [b"chunked", b"gzip"],
        [b"identity"],
        [b"chunked "],
    ],
    ids=["gzip-chunked", "chunked-twice", "two-headers", "identity", "space"],
)
def test_a_transfer_coding_other_than_chunked_is_a_502(
    live: LiveServer, scripted: _Scripted, codings: list[bytes]
) -> None:
    """http.client de-chunks only ``Transfer-Encoding: chunked``; any other
    list went out as the file, its chunk framing and coding included."""
    lines = b"".join(b"Transfer-Encoding: " + coding + b"\r\n" for coding in codings)
    answer = b"HTTP/1.1 200 OK\r\n" + CLOSE + lines + b"\r\n5\r\nhello\r\n0\r\n\r\n"
    response = _relay(live, scripted, answer)
    assert response.status == 502, response
    assert b"5\r\nhello" not in response.body


def test_a_chunked_body_is_relayed_de_chunked(
    live: LiveServer, scripted: _Scripted
) -> None:
    """The control: ``chunked`` (in any case) is the body's framing only."""
    answer = (
        b"HTTP/1.1 200 OK\r\n" + CLOSE + b"Transfer-Encoding: Chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    response = _relay(live, scripted, answer)
    assert response.status == 200, response
    assert response.body == b"hello"


def test_a_client_hang_up_closes_the_upstream_connection(
    live: LiveServer, scripted: _Scripted
) -> None:
    """On a real server: the client goes away after the first bytes, and the
    upstream sees its connection closed instead of sending 128 MiB."""
    hung_up = threading.Event()
    block = b"x" * 65536

    def big(sock: socket.socket) -> None:
        sock.sendall(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(block) * 2048)
        )
        try:
            for _ in range(2048):
                sock.sendall(block)
        except OSError:
            hung_up.set()

    scripted.answers["/big"] = big
    data = build_request("/p?path=/big", host=live.host)
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 ")
    assert hung_up.wait(30), "the upstream connection was left open"


# -- hosts in disguise -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[fe80::1%25eth0]:{p}/",
        "http://[fe80::1%25lo]:{p}/",
        "http://[::ffff:127.0.0.1%25lo]:{p}/",
        "http://[2001:4860:4860::8888%25eth0]:{p}/",
        "http://%31%32%37.0.0.1:{p}/",
        "http://local%68ost:{p}/",
        "http://8.8.8.8:0/",
        "http://" + "a" * 64 + ".\u00e9xample/",
    ],
    ids=[
        "zone-id",
        "zone-id-lo",
        "mapped-zone-id",
        "global-zone-id",
        "encoded-ipv4",
        "encoded-name",
        "port-zero",
        "idn-label-too-long",
    ],
)
def test_hosts_no_resolver_knows_are_refused_403(
    live: LiveServer, scripted: _Scripted, url: str
) -> None:
    """Refused as URLs (403), not looked up and failed on (502)."""
    before = len(scripted.requests)
    target = "/open?url=" + quote(url.format(p=scripted.port), safe="")
    response = raw_request(
        live.port, build_request(target, host=live.host), method="GET"
    )
    assert response.status == 403, response
    assert len(scripted.requests) == before


@pytest.fixture
def resolve_to_loopback(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name resolves to 127.0.0.1; returns the names looked up."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def fake(host: t.Any, port: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        looked_up.append(host)
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return looked_up


@pytest.mark.parametrize(
    ("host", "allowed", "ascii_host"),
    [
        ("bücher.example", "bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "bücher.example", "xn--bcher-kva.example"),
        ("bücher.example", "xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.", "Bücher.Example.", "xn--bcher-kva.example"),
        ("例え.テスト", "例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ],
)
def test_an_internationalised_host_is_looked_up_and_sent_in_ascii(
    scripted: _Scripted,
    resolve_to_loopback: list[str],
    host: str,
    allowed: str,
    ascii_host: str,
) -> None:
    """The ``Host`` header went out in Latin-1 bytes (``b\\xfccher``), or a
    500 for a name outside Latin-1; the allowlist matches either spelling."""
    scripted.answers["/idn"] = (
        b"HTTP/1.1 200 OK\r\n" + CLOSE + b"Content-Length: 2\r\n\r\nok"
    )
    url = f"http://{host}:{scripted.port}/idn"
    with HTTPFile(url, allowed_hosts=[allowed]) as file:
        assert b"".join(file.chunks()) == b"ok"
    assert resolve_to_loopback[0] == ascii_host
    head = scripted.requests[-1]
    assert f"\r\nHost: {ascii_host}:{scripted.port}\r\n".encode() in head, head


@pytest.mark.parametrize(
    ("address", "public"),
    [
        # ISATAP (RFC 5214): interface identifier [02]00:5efe, then IPv4.
        ("2001:4860::5efe:a00:1", False),
        ("2600::200:5efe:a9fe:a9fe", False),
        ("2600::100:5efe:7f00:1", False),
        ("2600::300:5efe:c0a8:1", False),
        ("2600::200:5efe:808:808", True),
        ("2600::5efe:0:0:1", True),  # not an ISATAP identifier
        ("2001:4860:4860::8888", True),
    ],
)
def test_isatap_addresses_must_embed_a_public_ipv4(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_only_a_206_may_replace_the_views_type_with_multipart(
    scripted: _Scripted,
) -> None:
    """A view that serves images stays an image view: an upstream 200 that
    calls itself ``multipart/byteranges`` no longer replaced its type."""
    app = Flask(__name__)
    app.add_url_rule(
        "/image",
        view_func=HTTPDownloadView.as_view(
            "image",
            url=f"http://127.0.0.1:{scripted.port}/fake-multipart",
            allowed_hosts=["127.0.0.1"],
            mimetype="image/png",
            attachment=False,
        ),
    )
    scripted.answers["/fake-multipart"] = (
        b"HTTP/1.1 200 OK\r\n" + CLOSE + b"Content-Type: multipart/byteranges;"
        b" boundary=x\r\nContent-Length: 5\r\n\r\nhello"
    )
    with app.test_client().get("/image") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "image/png"
        assert rv.get_data() == b"hello"
