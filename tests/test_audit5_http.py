"""Audit 5: the remote view (``HTTPDownloadView``, ``HTTPFile``) on real servers.

A scripted upstream on 127.0.0.1 answers each path with exactly the bytes a
test gives it (or a function writing them on the socket), and records the
head of every request; the application runs on Werkzeug's threaded server
or gunicorn and is read raw off the socket. Each test names the finding it
guards against.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import socket
import socketserver
import threading
import typing as t
import urllib.parse

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from conftest import serving
from flask import Flask
from flask import request

pytest.importorskip("urllib3", reason="HTTPDownloadView needs 'urllib3'")

from flask_download import ConfigurationError  # noqa: E402
from flask_download import DisallowedURL  # noqa: E402
from flask_download import HTTPDownloadView  # noqa: E402
from flask_download import HTTPFile  # noqa: E402
from flask_download.http import _pool  # noqa: E402

Answer = bytes | cabc.Callable[[socket.socket, bytes], None]


class Scripted(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        #: The answer to each request path (bytes, or a function given the
        #: socket and the request head).
        self.answers: dict[str, Answer] = {}
        #: The head of every request received, in order.
        self.requests: list[bytes] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # hang-ups are what some tests are about

    def heads(self, path: str) -> list[bytes]:
        """The request heads received for ``path``."""
        return [
            h for h in self.requests if h.split(b" ", 2)[1].startswith(path.encode())
        ]


class _Handler(socketserver.BaseRequestHandler):
    server: Scripted

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
            path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        )
        if callable(answer):
            answer(self.request, head)
        else:
            self.request.sendall(answer)


@pytest.fixture(scope="module")
def scripted() -> cabc.Iterator[Scripted]:
    with serving(Scripted()) as server:
        try:
            yield server
        finally:
            _pool().clear()


def make_app(port: int, **view_attrs: t.Any) -> Flask:
    """``/p?path=/x`` relays the scripted upstream's ``/x`` (on ``port``)."""
    app = Flask(__name__)

    class Relay(HTTPDownloadView):
        allowed_hosts = ("127.0.0.1",)
        timeout = 5.0

        def get_url(self) -> str:
            return f"http://127.0.0.1:{port}{request.args['path']}"

    app.add_url_rule("/p", view_func=Relay.as_view("p", **view_attrs))
    return app


def gunicorn_app(port: int) -> Flask:
    """The app for gunicorn (``test_audit5_http:gunicorn_app(port)``)."""
    return make_app(port, timeout=1.0)


class Raw(t.NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def raw(
    base: str,
    target: str,
    method: str = "GET",
    headers: cabc.Sequence[tuple[str, str]] = (),
) -> Raw:
    """Send one request with ``Connection: close``; read until the server closes."""
    port = int(base.rpartition(":")[2])
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    pairs = [tuple(line.split(": ", 1)) for line in header_lines]
    return Raw(int(status_line.split()[1]), pairs, body, received)  # type: ignore[arg-type]


def path_of(scripted: Scripted, answer: Answer) -> str:
    """A new upstream path answered with ``answer``."""
    path = f"/answer-{len(scripted.answers)}"
    scripted.answers[path] = answer
    return path


def by_method(head_answer: bytes, get_answer: bytes) -> Answer:
    def answer(sock: socket.socket, head: bytes) -> None:
        sock.sendall(head_answer if head.startswith(b"HEAD ") else get_answer)

    return answer


OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: 5\r\n"
    b'ETag: "v1"\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n'
    b"Connection: close\r\n\r\nhello"
)


# -- HEAD of an upstream that answers GET only --------------------------------


@pytest.mark.parametrize(
    "refusal",
    [b"403 Forbidden", b"405 Method Not Allowed", b"501 Not Implemented"],
    ids=["403-signed-for-get", "405", "501"],
)
def test_a_head_answers_as_the_get_when_the_upstream_refuses_head(
    scripted: Scripted, refusal: bytes
) -> None:
    """A HEAD went upstream as HEAD only: a presigned S3/GCS URL (signed
    for GET: 403 to HEAD) or a server without HEAD (405, 501) made the HEAD
    a 502 while the GET was a 200, against DESIGN §1 ("HEAD is answered
    like GET without a body, same headers as the 200")."""
    refused = (
        b"HTTP/1.1 " + refusal + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    path = path_of(scripted, by_method(refused, OK))
    with running_werkzeug(make_app(scripted.port)) as base:
        get = raw(base, f"/p?path={path}")
        head = raw(base, f"/p?path={path}", method="HEAD")
    assert get.status == 200 and get.body == b"hello"
    assert head.status == 200, head.raw
    assert head.body == b""
    for name in ("Content-Length", "Content-Type", "ETag", "Last-Modified"):
        assert head.get(name) == get.get(name), name
    methods = [h.split(b" ", 1)[0] for h in scripted.heads(path)]
    assert methods == [b"GET", b"HEAD", b"GET"]


def test_a_head_fallback_never_reads_the_body(scripted: Scripted) -> None:
    """The GET asked in place of a refused HEAD is cut after its head: the
    upstream sees its connection closed instead of sending the file."""
    done = threading.Event()
    outcome: list[str] = []

    def answer(sock: socket.socket, head: bytes) -> None:
        if head.startswith(b"HEAD "):
            sock.sendall(b"HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n")
            return
        block = b"x" * 65536
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2048 * 65536))
        try:
            for _ in range(2048):
                sock.sendall(block)
            outcome.append("sent all")
        except OSError:
            outcome.append("cut")
        done.set()

    path = path_of(scripted, answer)
    file = HTTPFile(
        f"http://127.0.0.1:{scripted.port}{path}",
        method="HEAD",
        allowed_hosts=["127.0.0.1"],
        timeout=5,
    )
    assert file.status == 200 and file.size == 2048 * 65536
    assert list(file.chunks()) == []
    assert done.wait(30)
    assert outcome == ["cut"]


def test_a_head_fallback_sends_the_apps_credentials_to_the_first_origin_again(
    scripted: Scripted,
) -> None:
    """The HEAD's redirect to another origin dropped the app's token; the
    GET asked in its place starts again at the first origin, token and all,
    and drops it again at the redirect."""
    other = f"http://localhost:{scripted.port}"
    target = path_of(
        scripted, by_method(b"HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n", OK)
    )
    moved = (
        f"HTTP/1.1 302 Found\r\nLocation: {other}{target}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    start = path_of(scripted, moved)
    file = HTTPFile(
        f"http://127.0.0.1:{scripted.port}{start}",
        method="HEAD",
        headers={"Authorization": "Bearer app-token"},
        allowed_hosts=["127.0.0.1", "localhost"],
        timeout=5,
    )
    assert file.status == 200
    first = scripted.heads(start)
    second = scripted.heads(target)
    assert [h.split(b" ", 1)[0] for h in first] == [b"HEAD", b"GET"]
    assert all(b"app-token" in h for h in first)
    assert [h.split(b" ", 1)[0] for h in second] == [b"HEAD", b"GET"]
    assert not any(b"app-token" in h for h in second)


def test_a_head_the_upstream_does_not_have_is_still_a_404(scripted: Scripted) -> None:
    path = path_of(scripted, b"HTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n")
    with running_werkzeug(make_app(scripted.port)) as base:
        head = raw(base, f"/p?path={path}", method="HEAD")
    assert head.status == 404
    assert [h.split(b" ", 1)[0] for h in scripted.heads(path)] == [b"HEAD"]


# -- Cache-Control: the upstream's privacy is kept ------------------------------


def _cached(directives: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: 5\r\n"
        b'ETag: "v1"\r\nCache-Control: ' + directives + b"\r\n\r\nhello"
    )


@pytest.mark.parametrize(
    ("upstream", "view", "sent"),
    [
        (b"private, max-age=60", "public, max-age=3600", "private, max-age=3600"),
        (b"no-store", "max-age=3600", "no-store, max-age=3600"),
        (b"Private", None, "private, no-cache"),
        (b"no-store, private", "private", "no-store, private"),
        (b"public, max-age=60", "max-age=3600", "max-age=3600"),
        (b'no-cache="Set-Cookie", max-age=0', "max-age=3600", "max-age=3600"),
    ],
    ids=["private", "no-store", "default-view", "both", "public", "other"],
)
def test_an_upstream_private_file_stays_private(
    scripted: Scripted, upstream: bytes, view: str | None, sent: str
) -> None:
    """The upstream's ``Cache-Control: private`` or ``no-store`` was dropped
    for the view's ``max-age=3600``: a file the app fetched with one user's
    token went out storable by every shared cache, for the next user."""
    path = path_of(scripted, _cached(upstream))
    attrs = {} if view is None else {"cache_control": view}
    with running_werkzeug(make_app(scripted.port, **attrs)) as base:
        got = raw(base, f"/p?path={path}")
    assert got.status == 200 and got.body == b"hello"
    assert got.get_all("Cache-Control") == [sent]


def test_a_relayed_304_keeps_the_upstream_privacy(scripted: Scripted) -> None:
    """A 304 carries the Cache-Control the 200 would have had (RFC 9110
    §15.4.5): the upstream's ``private`` included."""
    not_modified = (
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nCache-Control: private\r\n\r\n'
    )
    path = path_of(scripted, by_method(not_modified, not_modified))
    app = make_app(scripted.port, cache_control="public, max-age=3600")
    with running_werkzeug(app) as base:
        got = raw(base, f"/p?path={path}", headers=[("If-None-Match", '"v1"')])
    assert got.status == 304
    assert got.get("ETag") == '"v1"'
    assert got.get_all("Cache-Control") == ["private, max-age=3600"]


# -- Connection-nominated headers are this hop's only ----------------------------


def test_headers_the_upstream_connection_names_are_not_relayed(
    scripted: Scripted,
) -> None:
    """RFC 9110 §7.6.1: a header the upstream's ``Connection`` names is for
    that connection only, and a proxy removes it before forwarding; the
    ones that frame the body (length, range, coding) still say what the
    relayed bytes are."""
    answer = (
        b"HTTP/1.1 200 OK\r\nConnection: close, ETag, last-modified\r\n"
        b"Connection: Vary, Content-Length\r\n"
        b'Content-Type: application/pdf\r\nContent-Length: 5\r\nETag: "v1"\r\n'
        b"Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nVary: Origin\r\n\r\nhello"
    )
    path = path_of(scripted, answer)
    with running_werkzeug(make_app(scripted.port)) as base:
        got = raw(base, f"/p?path={path}")
    assert got.status == 200 and got.body == b"hello"
    assert got.get("Content-Length") == "5"
    assert got.get("ETag") is None
    assert got.get("Last-Modified") is None
    assert got.get_all("Vary") == ["Accept-Encoding"]


# -- allowed_ports --------------------------------------------------------------


def test_a_port_outside_allowed_ports_is_refused_without_a_request(
    scripted: Scripted,
) -> None:
    """``allowed_hosts`` entries never name a port: with ``allowed_hosts =
    ["localhost"]`` (one local service), any other service on localhost
    was reachable. ``allowed_ports`` says which ports may be connected to."""
    path = path_of(scripted, OK)
    app = make_app(scripted.port, allowed_ports=[scripted.port + 1])
    before = len(scripted.requests)
    with running_werkzeug(app) as base:
        got = raw(base, f"/p?path={path}")
    assert got.status == 403
    assert len(scripted.requests) == before
    with running_werkzeug(
        make_app(scripted.port, allowed_ports=[scripted.port])
    ) as base:
        assert raw(base, f"/p?path={path}").body == b"hello"


def test_a_redirect_to_a_port_outside_allowed_ports_is_refused(
    scripted: Scripted,
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        other_port = other.getsockname()[1]
        moved = (
            f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{other_port}/x\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        path = path_of(scripted, moved)
        with pytest.raises(DisallowedURL):
            HTTPFile(
                f"http://127.0.0.1:{scripted.port}{path}",
                allowed_hosts=["127.0.0.1"],
                allowed_ports={scripted.port},
                timeout=5,
            )
        other.settimeout(0)
        with pytest.raises(BlockingIOError):
            other.accept()  # nobody connected to the other port


def test_default_ports_count_as_the_urls_port() -> None:
    """``https://host/`` is port 443 for ``allowed_ports``."""
    with pytest.raises(DisallowedURL):
        HTTPFile("https://[::1]/", allowed_hosts=["::1"], allowed_ports=[80])


@pytest.mark.parametrize("ports", ["443", [0], [65536], [True], ["80"], 443], ids=repr)
def test_allowed_ports_must_be_port_numbers(ports: t.Any) -> None:
    with pytest.raises(ConfigurationError):
        HTTPDownloadView.as_view("x", url="http://example.com/", allowed_ports=ports)
    with pytest.raises(ConfigurationError):
        HTTPFile("http://example.com/", allowed_ports=ports)


# -- real servers: hang-ups and broken bodies, on gunicorn too --------------------


def _big(hung_up: threading.Event) -> Answer:
    def answer(sock: socket.socket, head: bytes) -> None:
        block = b"x" * 65536
        sock.sendall(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(block) * 4096)
        )
        try:
            for _ in range(4096):
                sock.sendall(block)
        except OSError:
            hung_up.set()

    return answer


def test_a_client_hang_up_closes_the_upstream_connection_on_gunicorn(
    scripted: Scripted,
) -> None:
    """gunicorn closes the response when the client goes away; the upstream
    then sees its connection closed instead of sending 256 MiB."""
    hung_up = threading.Event()
    path = path_of(scripted, _big(hung_up))
    with running_gunicorn(f"test_audit5_http:gunicorn_app({scripted.port})") as base:
        port = int(base.rpartition(":")[2])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(f"GET /p?path={path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = b""
            while len(received) < 200_000:
                chunk = sock.recv(65536)
                assert chunk, received[:300]
                received += chunk
            assert received.startswith(b"HTTP/1.1 200 ")
        assert hung_up.wait(30), "the upstream connection was left open"


def _broken_chunked(sock: socket.socket, head: bytes) -> None:
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/pdf\r\n\r\n5\r\nhello\r\n"
    )
    sock.close()  # no last chunk: the body is cut


def _hanging_chunked(sock: socket.socket, head: bytes) -> None:
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/pdf\r\n\r\n5\r\nhello\r\n"
    )
    sock.settimeout(30)
    with contextlib.suppress(OSError):
        sock.recv(1)  # nothing more until the proxy gives up and closes


@pytest.mark.parametrize("server", ["werkzeug", "gunicorn"])
@pytest.mark.parametrize(
    "answer", [_broken_chunked, _hanging_chunked], ids=["broken", "hanging"]
)
def test_an_upstream_body_cut_short_never_ends_cleanly(
    scripted: Scripted, server: str, answer: Answer
) -> None:
    """An upstream that breaks off (or hangs, past the read timeout) in the
    middle of a body of unknown length: the client's chunked body must not
    get its last chunk, or the cut file would pass for the whole one."""
    path = path_of(scripted, answer)
    if server == "werkzeug":
        running = running_werkzeug(make_app(scripted.port, timeout=1.0))
    else:
        running = running_gunicorn(f"test_audit5_http:gunicorn_app({scripted.port})")
    with running as base:
        got = raw(base, f"/p?path={path}")
    assert got.status == 200
    assert got.get("Transfer-Encoding") == "chunked"
    assert b"hello" in got.body
    assert not got.body.endswith(b"0\r\n\r\n"), got.raw


def test_an_upstream_name_with_line_breaks_is_no_header(scripted: Scripted) -> None:
    """The name comes from the final URL's path, which a redirect chooses:
    encoded CR/LF in it never add a header."""
    target = "/" + urllib.parse.quote("a\r\nSet-Cookie: x=1\r\n.pdf", safe="")
    scripted.answers[target] = OK
    moved = f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n"
    path = path_of(scripted, moved.encode())
    with running_werkzeug(make_app(scripted.port)) as base:
        got = raw(base, f"/p?path={path}")
    assert got.status == 200 and got.body == b"hello"
    assert got.get("Set-Cookie") is None
    assert (
        got.get("Content-Disposition") == 'attachment; filename="aSet-Cookie: x=1.pdf"'
    )


# -- DNS rebinding -----------------------------------------------------------------


def test_the_connection_goes_to_the_address_that_was_vetted(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that answers one address to the check and another to the
    connection (DNS rebinding) is looked up once per hop: the request goes
    to the vetted address, whatever later lookups say, with the name in
    ``Host``."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: t.Any, port: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        # The first answer is the upstream; any later one an address where
        # nothing listens (a connection there would time out: a 504).
        address = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    path = path_of(scripted, OK)
    file = HTTPFile(
        f"http://rebind.test:{scripted.port}{path}",
        allowed_hosts=["rebind.test"],
        timeout=2,
    )
    try:
        assert b"".join(file.chunks()) == b"hello"
    finally:
        file.close()
    assert lookups == ["rebind.test"]
    (head,) = scripted.heads(path)
    assert f"\r\nHost: rebind.test:{scripted.port}\r\n".encode() in head


# -- validators the upstream sent twice ------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_two_different_validators_are_no_validator(
    scripted: Scripted, method: str
) -> None:
    """An upstream's two ``ETag`` (or ``Last-Modified``) headers were both
    relayed: a response with two versions, which a cache resolves either
    way, while ``HTTPFile.etag`` (used for ``If-Match``) was the first."""
    answer = (
        b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "a"\r\nETag: "b"\r\n'
        b"Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
        b"Last-Modified: Thu, 22 Oct 2015 07:28:00 GMT\r\n"
        b"Content-Type: application/pdf\r\n\r\nhello"
    )
    path = path_of(scripted, answer)
    with running_werkzeug(make_app(scripted.port)) as base:
        got = raw(base, f"/p?path={path}", method=method)
    assert got.status == 200
    assert got.get_all("ETag") == []
    assert got.get_all("Last-Modified") == []
    file = HTTPFile(
        f"http://127.0.0.1:{scripted.port}{path}", allowed_hosts=["127.0.0.1"]
    )
    file.close()
    assert file.etag is None and file.modified_time is None
    assert not file.sliceable


def test_a_validator_sent_twice_alike_is_relayed_once(scripted: Scripted) -> None:
    answer = (
        b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "a"\r\nETag: "a"\r\n'
        b"Content-Type: application/pdf\r\n\r\nhello"
    )
    path = path_of(scripted, answer)
    with running_werkzeug(make_app(scripted.port)) as base:
        got = raw(base, f"/p?path={path}")
    assert got.get_all("ETag") == ['"a"']
