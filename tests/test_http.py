from __future__ import annotations

import collections.abc as cabc
import gzip
import http.server
import socket
import threading
import time
import typing as t

import pytest
from flask import Flask

pytest.importorskip("urllib3", reason="HTTPDownloadView needs 'urllib3'")

from flask_download import DisallowedURL  # noqa: E402
from flask_download import DownloadFile  # noqa: E402
from flask_download import FlaskDownload  # noqa: E402
from flask_download import HTTPDownloadView  # noqa: E402
from flask_download import HTTPFile  # noqa: E402
from flask_download import VirtualFile  # noqa: E402
from flask_download.http import _pool  # noqa: E402
from flask_download.http import is_public_address  # noqa: E402

CONTENT = bytes(range(256)) * 64  # 16 KiB
ETAG = '"v1-abc"'
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
GZIPPED = gzip.compress(b"hello gzip " * 100)
BIG_CHUNK = b"x" * 65536
WEAK_ETAG = 'W/"w1"'


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    #: Request headers of each request, by path.
    seen: dict[str, dict[str, str]]
    #: Set when a client dropped the connection during /big.
    hung_up: threading.Event

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # client hang-ups are expected here


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.seen[path] = dict(self.headers.items())
        name = path.strip("/").replace("-", "_").replace(".", "_")
        route = getattr(self, "route_" + name, None)
        if route is None:
            self.send(404, b"no such thing")
            return
        route()

    def route_file_bin(self) -> None:
        common = {
            "Content_Type": "application/octet-stream",
            "ETag": ETAG,
            "Last_Modified": LAST_MODIFIED,
            "Accept_Ranges": "bytes",
            "Set_Cookie": "session=upstream-secret",
            "X_Accel_Redirect": "/internal/secret",
            "X_Sendfile": "/etc/passwd",
            "Keep_Alive": "timeout=5",
            "X_Internal": "upstream-only",
        }
        if self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.end_headers()
            return
        range_header = self.headers.get("Range")
        if range_header and range_header.startswith("bytes="):
            first, _, last = range_header[6:].partition("-")
            start, stop = int(first), min(int(last or len(CONTENT) - 1) + 1, 10**9)
            if start >= len(CONTENT):
                self.send(416, Content_Range=f"bytes */{len(CONTENT)}")
                return
            stop = min(stop, len(CONTENT))
            self.send(
                206,
                CONTENT[start:stop],
                Content_Range=f"bytes {start}-{stop - 1}/{len(CONTENT)}",
                **common,
            )
            return
        self.send(200, CONTENT, **common)

    def route_tagged(self) -> None:
        if self.headers.get("If-None-Match") == WEAK_ETAG:
            self.send_response(304)
            self.send_header("ETag", WEAK_ETAG)
            self.send_header("Vary", "Accept-Encoding")
            self.end_headers()
            return
        if "If-Match" in self.headers:
            # A weak tag never matches If-Match (RFC 9110 §13.1.1).
            self.send(412)
            return
        self.send(200, b"tagged", ETag=WEAK_ETAG, Content_Type="text/plain")

    def route_page_gz(self) -> None:
        self.send(200, GZIPPED, Content_Type="text/plain", Content_Encoding="gzip")

    def route_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in (b"one,", b"two,", b"three"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    def route_error(self) -> None:
        self.send(500, b"Traceback: secret internals")

    def route_forbidden(self) -> None:
        self.send(403, b"nope")

    def route_gone(self) -> None:
        self.send(410, b"gone")

    def route_slow(self) -> None:
        # Far longer than the timeouts asked for (0.2 s), so that a loaded
        # machine cannot take one for the other.
        time.sleep(5)
        self.send(200, b"late")

    def route_bad_headers(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", "2")
        self.send_header("ETag", '"a\x00b\x0bc"')
        self.send_header("Last-Modified", "\x7f\x80\xff")
        self.send_header("Accept-Ranges", "bytes\x01")
        self.send_header("Vary", "Origin")
        self.end_headers()
        self.wfile.write(b"ok")

    def route_bad_coding(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Content-Encoding", "gzip\x01")
        self.end_headers()
        self.wfile.write(b"ok")

    def route_drip_head(self) -> None:
        # The status line, then a header byte every 0.1 s for 6 s.
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        try:
            for _ in range(60):
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
        self.close_connection = True

    def route_continue_forever(self) -> None:
        try:
            for _ in range(60):
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
        self.close_connection = True

    def route_drip(self) -> None:
        # Headers at once, then a byte every 0.1 s: each read within any
        # timeout, the body never done.
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            self.close_connection = True

    def route_redirect(self) -> None:
        target = self.path.partition("?to=")[2]
        self.send(302, b"", Location=target, Set_Cookie="redirect=1")

    def route_relative(self) -> None:
        self.send(301, b"", Location="file.bin")

    def route_loop(self) -> None:
        self.send(302, b"", Location="/loop")

    def route_big(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(BIG_CHUNK) * 2000))
        self.end_headers()
        try:
            for _ in range(2000):
                self.wfile.write(BIG_CHUNK)
                self.wfile.flush()
        except OSError:
            self.server.hung_up.set()
            self.close_connection = True


class Running(t.NamedTuple):
    url: str
    server: Upstream


@pytest.fixture(scope="module")
def upstream() -> cabc.Iterator[Running]:
    """A real HTTP/1.1 server on 127.0.0.1, in a thread, for this module."""
    server = Upstream(("127.0.0.1", 0), Handler)
    server.seen = {}
    server.hung_up = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(f"http://127.0.0.1:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        # Pooled keep-alive connections to the stopped server.
        _pool().clear()


def make_app(**view_attrs: t.Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    view_attrs.setdefault("allowed_hosts", ["127.0.0.1"])
    view_attrs.setdefault("timeout", 5.0)
    app.add_url_rule("/dl", view_func=HTTPDownloadView.as_view("dl", **view_attrs))
    return app


def fetch(
    url: str, headers: dict[str, str] | None = None, **view_attrs: t.Any
) -> t.Any:
    """GET the view for ``url``; the closed response, its body read."""
    client = make_app(url=url, **view_attrs).test_client()
    with client.get("/dl", headers=headers or {}) as rv:
        rv.get_data()
    return rv


def test_relays_the_body_and_validators(upstream: Running) -> None:
    rv = fetch(upstream.url + "/file.bin")
    assert rv.status_code == 200
    assert rv.get_data() == CONTENT
    assert rv.headers["Content-Type"] == "application/octet-stream"
    assert rv.headers["Content-Length"] == str(len(CONTENT))
    assert rv.headers["ETag"] == ETAG
    assert rv.headers["Last-Modified"] == LAST_MODIFIED
    assert rv.headers["Accept-Ranges"] == "bytes"
    assert rv.headers["Content-Disposition"] == 'attachment; filename="file.bin"'
    assert rv.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "header",
    ["Set-Cookie", "X-Accel-Redirect", "X-Sendfile", "Keep-Alive", "X-Internal"],
)
def test_upstream_only_headers_are_dropped(upstream: Running, header: str) -> None:
    rv = fetch(upstream.url + "/file.bin")
    assert rv.status_code == 200
    assert header not in rv.headers


def test_range_is_asked_upstream_and_206_relayed(upstream: Running) -> None:
    rv = fetch(upstream.url + "/file.bin", {"Range": "bytes=10-19"})
    assert rv.status_code == 206
    assert rv.get_data() == CONTENT[10:20]
    assert rv.headers["Content-Range"] == f"bytes 10-19/{len(CONTENT)}"
    assert rv.headers["Content-Length"] == "10"
    assert upstream.server.seen["/file.bin"]["Range"] == "bytes=10-19"


def test_unsatisfiable_range_relays_416(upstream: Running) -> None:
    rv = fetch(upstream.url + "/file.bin", {"Range": "bytes=999999-"})
    assert rv.status_code == 416
    assert rv.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert rv.get_data() == b""
    # An empty body claims no type (as the engine's own 416).
    assert "Content-Type" not in rv.headers


def test_if_none_match_relays_304(upstream: Running) -> None:
    rv = fetch(upstream.url + "/file.bin", {"If-None-Match": ETAG})
    assert rv.status_code == 304
    assert rv.get_data() == b""
    assert rv.headers["ETag"] == ETAG
    assert rv.headers["Last-Modified"] == LAST_MODIFIED
    assert "Content-Disposition" not in rv.headers
    assert upstream.server.seen["/file.bin"]["If-None-Match"] == ETAG


def test_head_is_sent_upstream_as_head(upstream: Running) -> None:
    client = make_app(url=upstream.url + "/file.bin").test_client()
    with client.head("/dl") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b""
        assert rv.headers["Content-Length"] == str(len(CONTENT))
        assert rv.headers["ETag"] == ETAG


def test_head_with_range_is_not_ranged_upstream(upstream: Running) -> None:
    """Issue 13: RFC 9110 §14.2, HEAD has no range handling; Range and
    If-Range stay here, and the client gets the 200's headers."""
    client = make_app(url=upstream.url + "/file.bin").test_client()
    headers = {"Range": "bytes=10-19", "If-Range": ETAG}
    with client.head("/dl", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b""
        assert rv.headers["Content-Length"] == str(len(CONTENT))
        assert "Content-Range" not in rv.headers
    seen = upstream.server.seen["/file.bin"]
    assert "Range" not in seen
    assert "If-Range" not in seen


def test_cookie_and_authorization_are_not_forwarded(upstream: Running) -> None:
    rv = fetch(
        upstream.url + "/file.bin",
        {
            "Cookie": "session=client-secret",
            "Authorization": "Bearer client-token",
            "If-Modified-Since": LAST_MODIFIED,
            "X-Custom": "client",
        },
    )
    assert rv.status_code == 200
    sent = {k.lower(): v for k, v in upstream.server.seen["/file.bin"].items()}
    assert "cookie" not in sent
    assert "authorization" not in sent
    assert "x-custom" not in sent
    assert sent["if-modified-since"] == LAST_MODIFIED
    assert sent["host"] == upstream.url.removeprefix("http://")


class TokenView(HTTPDownloadView):
    """The documented bearer-token pattern (#12)."""

    def get_request_headers(self) -> dict[str, str]:
        return {**super().get_request_headers(), "Authorization": "Bearer app-token"}


def test_get_request_headers_sends_the_apps_token(upstream: Running) -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/dl",
        view_func=TokenView.as_view(
            "dl",
            url=upstream.url + "/file.bin",
            allowed_hosts="127.0.0.1",
            request_headers={"X-Api-Version": "2"},
        ),
    )
    headers = {"Authorization": "Bearer client-token", "Range": "bytes=0-9"}
    with app.test_client().get("/dl", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.get_data() == CONTENT[:10]
    sent = {k.lower(): v for k, v in upstream.server.seen["/file.bin"].items()}
    assert sent["authorization"] == "Bearer app-token"
    assert sent["x-api-version"] == "2"
    assert sent["range"] == "bytes=0-9"


def test_http_file_sends_the_callers_credentials(upstream: Running) -> None:
    headers = {"Authorization": "Bearer t", "Cookie": "c=1", "Host": "evil"}
    with HTTPFile(
        upstream.url + "/file.bin", headers=headers, allowed_hosts="127.0.0.1"
    ) as file:
        assert file.status == 200
    sent = {k.lower(): v for k, v in upstream.server.seen["/file.bin"].items()}
    assert sent["authorization"] == "Bearer t"
    assert sent["cookie"] == "c=1"
    assert sent["host"] == upstream.url.removeprefix("http://")


def test_gzip_body_is_relayed_compressed(upstream: Running) -> None:
    rv = fetch(upstream.url + "/page.gz", {"Accept-Encoding": "gzip"})
    assert rv.status_code == 200
    assert rv.get_data() == GZIPPED
    assert rv.headers["Content-Encoding"] == "gzip"
    assert rv.headers["Content-Length"] == str(len(GZIPPED))
    assert upstream.server.seen["/page.gz"]["Accept-Encoding"] == "gzip"


def test_chunked_upstream_streams_without_length(upstream: Running) -> None:
    rv = fetch(upstream.url + "/chunked")
    assert rv.status_code == 200
    assert rv.get_data() == b"one,two,three"
    assert "Content-Length" not in rv.headers
    assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/nowhere", 404),
        ("/gone", 404),
        ("/error", 502),
        ("/forbidden", 502),
        ("/loop", 502),
    ],
    ids=["404", "410", "5xx", "403", "redirect-loop"],
)
def test_upstream_errors_are_mapped(upstream: Running, path: str, status: int) -> None:
    rv = fetch(upstream.url + path)
    assert rv.status_code == status
    assert b"secret internals" not in rv.get_data()


def test_timeout_gives_504(upstream: Running) -> None:
    started = time.monotonic()
    rv = fetch(upstream.url + "/slow", timeout=0.2)
    assert rv.status_code == 504
    assert time.monotonic() - started < 4


def test_timeout_defaults_to_the_config(upstream: Running) -> None:
    app = Flask(__name__)
    app.config.update(
        DOWNLOAD_HTTP_TIMEOUT=0.2, DOWNLOAD_HTTP_ALLOWED_HOSTS=["127.0.0.1"]
    )
    FlaskDownload(app)
    app.add_url_rule(
        "/dl", view_func=HTTPDownloadView.as_view("dl", url=upstream.url + "/slow")
    )
    with app.test_client().get("/dl") as rv:
        assert rv.status_code == 504


def test_connection_refused_gives_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rv = fetch(f"http://127.0.0.1:{port}/file.bin")
    assert rv.status_code == 502


def test_redirects_are_followed_not_relayed(upstream: Running) -> None:
    rv = fetch(f"{upstream.url}/redirect?to={upstream.url}/file.bin")
    assert rv.status_code == 200
    assert rv.get_data() == CONTENT
    assert "Location" not in rv.headers
    assert "Set-Cookie" not in rv.headers


def test_relative_redirect_is_followed(upstream: Running) -> None:
    rv = fetch(upstream.url + "/relative")
    assert rv.status_code == 200
    assert rv.get_data() == CONTENT


def test_redirect_to_a_refused_host_is_checked(upstream: Running) -> None:
    port = upstream.url.rpartition(":")[2]
    upstream.server.seen.pop("/file.bin", None)
    rv = fetch(f"{upstream.url}/redirect?to=http://localhost:{port}/file.bin")
    assert rv.status_code == 403
    assert "/file.bin" not in upstream.server.seen


def test_private_address_is_refused_by_default(upstream: Running) -> None:
    upstream.server.seen.pop("/file.bin", None)
    rv = fetch(upstream.url + "/file.bin", allowed_hosts=None)
    assert rv.status_code == 403
    assert "/file.bin" not in upstream.server.seen


def test_allowed_hosts_default_to_the_config(upstream: Running) -> None:
    app = Flask(__name__)
    app.config["DOWNLOAD_HTTP_ALLOWED_HOSTS"] = ["127.0.0.1"]
    app.add_url_rule(
        "/dl", view_func=HTTPDownloadView.as_view("dl", url=upstream.url + "/file.bin")
    )
    with app.test_client().get("/dl") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == CONTENT


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:{port}/file.bin",
        "http://2130706433:{port}/file.bin",
        "http://0177.0.0.1:{port}/file.bin",
        "http://[::ffff:127.0.0.1]:{port}/file.bin",
        "http://127.0.0.1@localhost:{port}/file.bin",
        "http://user:pw@127.0.0.1:{port}/file.bin",
        "ftp://127.0.0.1:{port}/file.bin",
        "file:///etc/passwd",
        "http://127.0.0.1:{port}/file.bin\r\nX-Injected: 1",
    ],
    ids=[
        "unlisted-name",
        "decimal-ipv4",
        "octal-ipv4",
        "ipv4-mapped-ipv6",
        "userinfo-trick",
        "userinfo",
        "ftp",
        "file",
        "crlf",
    ],
)
def test_unsafe_urls_are_refused(upstream: Running, url: str) -> None:
    port = upstream.url.rpartition(":")[2]
    url = url.format(port=port)
    upstream.server.seen.pop("/file.bin", None)
    rv = fetch(url)
    assert rv.status_code == 403
    assert "/file.bin" not in upstream.server.seen


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:a9fe:a9fe::", False),
        # Issue #12: IPv4 hidden in IPv6 forms ipaddress calls global.
        ("64:ff9b:1::a9fe:a9fe", False),
        ("::169.254.169.254", False),
        ("::10.0.0.1", False),
        ("::ffff:0:169.254.169.254", False),
        ("fec0::1", False),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),
        ("fe80::1%eth0", False),
        ("2606:4700::1111%1", False),
        ("3fff::1", False),
        ("192.0.2.1", False),
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::5db8:d822", True),
        ("2002:5db8:d822::1", True),
        ("not-an-ip", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_listed_host_may_be_private(upstream: Running) -> None:
    port = upstream.url.rpartition(":")[2]
    rv = fetch(f"http://localhost:{port}/file.bin", allowed_hosts=["localhost"])
    assert rv.status_code == 200
    assert rv.get_data() == CONTENT


def test_http_file_outside_a_view(upstream: Running) -> None:
    with HTTPFile(upstream.url + "/file.bin", allowed_hosts=["127.0.0.1"]) as file:
        assert file.size == len(CONTENT)
        assert file.etag == "v1-abc"
        assert file.name == "file.bin"
        assert file.mimetype == "application/octet-stream"
        assert b"".join(file.chunks(4096)) == CONTENT


def test_http_file_refuses_private_hosts_by_default(upstream: Running) -> None:
    with pytest.raises(DisallowedURL):
        HTTPFile(upstream.url + "/file.bin")


def test_client_hang_up_releases_the_upstream_connection(upstream: Running) -> None:
    upstream.server.hung_up.clear()
    client = make_app(url=upstream.url + "/big").test_client()
    rv = client.get("/dl", buffered=False)
    try:
        assert rv.status_code == 200
        first = next(iter(rv.response))
        assert first.startswith(b"x")
    finally:
        rv.close()
    # The upstream sees the connection closed instead of sending 125 MiB.
    assert upstream.server.hung_up.wait(5)
    # And the pool still works.
    again = fetch(upstream.url + "/file.bin")
    assert again.get_data() == CONTENT


def test_missing_url_is_a_configuration_error() -> None:
    app = make_app(url=None)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ValueError, match="'url'"):
        app.test_client().get("/dl")


# -- what the view decides, what upstream decides --------------------------------


class RecordingVirtualFile(VirtualFile):
    """A local file that counts calls to :meth:`close`."""

    close_calls = 0

    def close(self) -> None:
        self.close_calls += 1
        super().close()


@pytest.mark.parametrize(
    ("conditional", "status"),
    [(False, 200), (True, 304)],
    ids=["download", "not-modified-decided-here"],
)
def test_subclass_serving_a_local_file_gets_it_once(
    conditional: bool, status: int
) -> None:
    files: list[RecordingVirtualFile] = []

    class Fallback(HTTPDownloadView):
        def get_file(self) -> DownloadFile:
            files.append(RecordingVirtualFile(b"local copy", name="copy.txt"))
            return files[-1]

    app = Flask(__name__)
    app.config["TESTING"] = True
    app.add_url_rule("/dl", view_func=Fallback.as_view("dl"))
    client = app.test_client()
    etag = f'"{RecordingVirtualFile(b"local copy").etag}"'
    headers = {"If-None-Match": etag} if conditional else {}
    with client.get("/dl", headers=headers) as rv:
        assert rv.status_code == status
        assert rv.get_data() == (b"" if conditional else b"local copy")
        assert rv.headers["ETag"] == etag
    assert len(files) == 1
    assert files[0].close_calls >= 1


def test_upstream_304_relays_weak_etag_and_vary(upstream: Running) -> None:
    rv = fetch(
        upstream.url + "/tagged",
        {"If-None-Match": WEAK_ETAG},
        cache_control="private, max-age=60",
    )
    assert rv.status_code == 304
    assert rv.get_data() == b""
    assert rv.headers["ETag"] == WEAK_ETAG
    assert rv.headers["Vary"] == "Accept-Encoding"
    assert rv.headers["Cache-Control"] == "private, max-age=60"


def test_upstream_412_is_relayed(upstream: Running) -> None:
    rv = fetch(upstream.url + "/tagged", {"If-Match": '"other"'})
    assert rv.status_code == 412
    assert rv.get_data() == b""
    assert upstream.server.seen["/tagged"]["If-Match"] == '"other"'


def test_upstream_200_is_not_evaluated_again(upstream: Running) -> None:
    """Upstream ignored the condition: its answer is relayed, not judged here."""
    rv = fetch(upstream.url + "/file.bin", {"If-Match": '"other"'})
    assert rv.status_code == 200
    assert rv.get_data() == CONTENT


def test_missing_urllib3_is_named_before_any_dns_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: an unresolvable host gave 502 instead of naming the extra."""
    import sys

    def no_lookup(*args: t.Any, **kwargs: t.Any) -> t.Any:
        raise AssertionError("the host was looked up before urllib3 was checked")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setitem(sys.modules, "urllib3", None)
    with pytest.raises(ImportError, match=r"Flask-Download\[http\]"):
        HTTPFile("http://no-such-host.invalid/x")
    with pytest.raises(ImportError, match=r"Flask-Download\[http\]"):
        HTTPDownloadView.as_view("remote", url="http://no-such-host.invalid/x")


def test_a_slow_body_is_relayed_as_it_arrives_then_cut_off(upstream: Running) -> None:
    """Outside review: read() waited for a whole chunk, so a trickling
    upstream relayed nothing while every socket read stayed within the
    timeout, and held the worker for as long as it liked."""
    from flask_download import http as http_module

    file = HTTPFile(upstream.url + "/drip", allowed_hosts=["127.0.0.1"], timeout=1.0)
    started = time.monotonic()
    relayed = []
    try:
        with pytest.raises(http_module.UpstreamError):
            for chunk in file.chunks():
                relayed.append((chunk, time.monotonic() - started))
    finally:
        file.close()
    # The first byte as soon as it came, not after a whole chunk (of the
    # 100 bytes). The upstream sends one every 0.1 s: a reader held up
    # (a loaded machine) finds the few that arrived meanwhile.
    first, when = relayed[0]
    assert first == b"x" * len(first) and 1 <= len(first) < 10, relayed
    assert when < 0.9, relayed
    # Cut off after about one timeout's span, not after the 10 s of trickle.
    assert 1.0 <= time.monotonic() - started < 4


def test_upstream_header_values_are_relayed_only_when_well_formed(
    upstream: Running,
) -> None:
    """Outside review: an upstream's ``ETag: "a\\x00b"`` was relayed as is
    (gunicorn answered 500) and a garbled Last-Modified went out too."""
    rv = fetch(upstream.url + "/bad_headers")
    assert rv.status_code == 200
    assert rv.get_data() == b"ok"
    for name in ("ETag", "Last-Modified", "Accept-Ranges"):
        assert name not in rv.headers, name
    assert rv.headers["Vary"] == "Origin, Accept-Encoding"


def test_a_slow_client_is_not_taken_for_a_slow_upstream(upstream: Running) -> None:
    """Review: the time the server spent writing to a slow client counted
    as upstream slowness, and cut the body off with a 502."""
    file = HTTPFile(upstream.url + "/tagged", allowed_hosts=["127.0.0.1"], timeout=0.2)
    body = []
    try:
        for chunk in file.chunks():
            body.append(chunk)
            time.sleep(0.3)  # the client reads slowly: 6 bytes in 0.3 s
    finally:
        file.close()
    assert b"".join(body) == b"tagged"


def test_a_malformed_content_encoding_is_refused_not_dropped(
    upstream: Running,
) -> None:
    """Review: dropped, the coding left gzip bytes labelled as plain."""
    rv = fetch(upstream.url + "/bad_coding")
    assert rv.status_code == 502


@pytest.mark.parametrize("path", ["/drip_head", "/continue_forever"])
def test_a_response_head_that_never_ends_is_cut_off(
    upstream: Running, path: str
) -> None:
    """Security review: a trickle of header bytes, or 100 Continue answers
    for ever, each within the timeout, held a worker for ever."""
    started = time.monotonic()
    rv = fetch(upstream.url + path, timeout=0.3)
    elapsed = time.monotonic() - started
    assert rv.status_code == 504
    assert 0.8 <= elapsed < 5  # three times the timeout, not 6 s
