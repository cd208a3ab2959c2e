"""Tests that kill mutants of the security-critical code which the rest of
the suite let survive (mutation testing, fifth session): each pins one
behaviour that no other test would notice losing."""

from __future__ import annotations

import collections.abc as cabc
import os
import pathlib
import socket
import socketserver
import threading
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask import Response

from flask_download import FileNotFound
from flask_download.paths import open_confined


def _read(root: str | os.PathLike[str], untrusted: str) -> tuple[bytes, str]:
    opened = open_confined(root, untrusted)
    try:
        return os.pread(opened.fd, 1 << 20, 0), opened.path
    finally:
        os.close(opened.fd)


# -- paths.open_confined ------------------------------------------------------


def test_absolute_link_to_the_root_itself_is_followed(
    download_root: pathlib.Path,
) -> None:
    """A link whose absolute target is the root (not something below it)
    stays inside: the walk starts again from the root."""
    (download_root / "top").symlink_to(download_root, target_is_directory=True)
    (download_root / "sub" / "home").symlink_to(
        os.fspath(download_root) + "/", target_is_directory=True
    )
    content, path = _read(download_root, "top/hello.txt")
    assert path == os.path.realpath(download_root / "hello.txt")
    assert content == (download_root / "hello.txt").read_bytes()
    content, path = _read(download_root, "sub/home/sub/nested.txt")
    assert path == os.path.realpath(download_root / "sub" / "nested.txt")


def test_absolute_link_into_a_sibling_one_character_longer_is_refused(
    download_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """``<root>X/hello.txt`` is not below ``<root>``, even though cutting the
    root's length plus one off it leaves ``/hello.txt``, a file in the root."""
    sibling = tmp_path / (download_root.name + "X")
    sibling.mkdir()
    (sibling / "hello.txt").write_bytes(b"sibling")
    (download_root / "jump.txt").symlink_to(sibling / "hello.txt")
    with pytest.raises(FileNotFound):
        open_confined(download_root, "jump.txt")


# -- storage.storage_key ------------------------------------------------------


def _s3() -> t.Any:
    s3fs = pytest.importorskip("s3fs")
    return s3fs.S3FileSystem(anon=True, skip_instance_cache=True)


def test_a_client_bucket_cannot_be_an_arn_under_a_slash_prefix() -> None:
    """A prefix of only slashes names no bucket: the client's first segment
    is still the bucket, and may not be an ARN."""
    from flask_download.storage import storage_key

    fs = _s3()
    arn = "arn:aws:s3:us-east-1:123456789012:accesspoint/attacker"
    for prefix in ("", "/", "//"):
        with pytest.raises(FileNotFound):
            storage_key(fs, prefix, f"{arn}/a.txt")
    assert storage_key(fs, "/", "bucket/a.txt") == "//bucket/a.txt"


def test_a_client_bucket_alone_cannot_be_an_arn() -> None:
    from flask_download.storage import storage_key

    with pytest.raises(FileNotFound):
        storage_key(_s3(), "", "arn:aws:s3:us-east-1:123456789012:accesspoint")


@pytest.mark.parametrize(
    "protocol", ["http", "https", "gs", "gcs", "abfs", "abfss", "az", "adl"]
)
def test_every_querying_protocol_refuses_queries_and_fragments(protocol: str) -> None:
    """A store known by any one of these protocols (alone) reads ``?`` or
    ``#`` in a key as a query, a fragment, a generation or a version."""
    from fsspec.spec import AbstractFileSystem

    from flask_download.storage import storage_key

    class Store(AbstractFileSystem):  # type: ignore[misc]
        pass

    Store.protocol = protocol
    fs = Store(skip_instance_cache=True)
    for key in ("a.txt?generation=1", "a.txt#frag"):
        with pytest.raises(FileNotFound):
            storage_key(fs, "bucket", key)
    assert storage_key(fs, "bucket", "a b.txt") == "bucket/a b.txt"


# -- http: is_public_address, _vet, _follow, _check_framing ---------------------


def test_local_use_nat64_judges_the_ipv4_at_the_96_bit_position() -> None:
    """In ``64:ff9b:1::/48`` the operator picks the prefix length: the last
    32 bits (a /96 prefix) are one candidate, here 10.0.0.1, while the
    /48, /56 and /64 positions read public addresses (8.8.8.x)."""
    from flask_download.http import is_public_address

    assert not is_public_address("64:ff9b:1:808:8:808:a00:1")
    assert is_public_address("64:ff9b:1:808:8:808:808:808")


class _Upstream(socketserver.ThreadingTCPServer):
    """Answers every request with ``answer`` (raw bytes), and counts them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _UpstreamHandler(socketserver.BaseRequestHandler):
    server: _Upstream

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        self.server.requests.append(head)
        self.request.sendall(self.server.answer)


@pytest.fixture
def upstream() -> cabc.Iterator[cabc.Callable[[bytes], _Upstream]]:
    pytest.importorskip("urllib3")
    servers: list[_Upstream] = []

    def start(answer: bytes) -> _Upstream:
        server = _Upstream(answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    from flask_download.http import _pool

    _pool().clear()


def test_a_space_in_the_url_is_refused_before_any_request(
    upstream: cabc.Callable[[bytes], _Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    from flask_download import DisallowedURL
    from flask_download import HTTPFile

    server = upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    for url in (
        f"http://127.0.0.1:{server.port}/a b.txt",
        f"http://127.0.0.1:{server.port}/a.txt?q= ",
    ):
        caplog.clear()
        with pytest.raises(DisallowedURL):
            HTTPFile(url, allowed_hosts=["127.0.0.1"], timeout=5)
        assert "contains spaces or control characters" in caplog.text
    assert server.requests == []


def test_a_dotted_entry_allows_the_domain_itself(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``.example.test`` allows ``example.test`` as well as its subdomains:
    the host passes the list and is then judged by its addresses."""
    from flask_download import DisallowedURL
    from flask_download import HTTPFile

    pytest.importorskip("urllib3")
    real = socket.getaddrinfo

    def loopback(host: t.Any, port: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback)
    for host in ("example.test", "www.example.test"):
        caplog.clear()
        with pytest.raises(DisallowedURL):
            HTTPFile(f"http://{host}:9/f.txt", allowed_hosts=[".example.test"])
        assert "resolves to the non-public address 127.0.0.1" in caplog.text
    caplog.clear()
    with pytest.raises(DisallowedURL):
        HTTPFile("http://badexample.test:9/f.txt", allowed_hosts=[".example.test"])
    assert "is not in the allowed hosts" in caplog.text


def test_credentials_are_dropped_when_only_the_scheme_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``https://h:8443`` redirecting to ``http://h:8443`` is another origin:
    the app's credentials would cross the network in clear. No real server
    speaks both on one port, so the hops are recorded at the opener."""
    from flask_download import HTTPFile
    from flask_download.http import _addresses
    from flask_download.http import _client

    pytest.importorskip("urllib3")
    sent: list[tuple[str, dict[str, str]]] = []

    class Redirect:
        status = 302
        headers = {"Location": "http://files.example.test:8443/f.txt"}

        def close(self) -> None:
            pass

        def release_conn(self) -> None:
            pass

    class Stop(Exception):
        pass

    def fake_open(target: t.Any, method: str, headers: t.Any, timeout: float) -> t.Any:
        sent.append((target.url, dict(headers)))
        if len(sent) == 1:
            return Redirect()
        raise Stop

    def fake_resolve(host: str, port: int, timeout: t.Any) -> t.Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port))]

    monkeypatch.setattr(_client, "_open", fake_open)
    monkeypatch.setattr(_addresses, "_resolve", fake_resolve)
    with pytest.raises(Stop):
        HTTPFile(
            "https://files.example.test:8443/f.txt",
            headers={"Authorization": "Bearer app-secret", "Cookie": "s=1"},
            allowed_hosts=None,
            timeout=5,
        )
    assert sent[0][1]["Authorization"] == "Bearer app-secret"
    assert sent[1][0] == "http://files.example.test:8443/f.txt"
    assert "Authorization" not in sent[1][1]
    assert "Cookie" not in sent[1][1]


def test_a_content_range_ending_at_the_complete_length_is_a_502(
    upstream: cabc.Callable[[bytes], _Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    """``bytes 0-10/10``: the last byte of a 10-byte file is byte 9."""
    from flask_download import HTTPFile
    from flask_download import UpstreamError

    server = upstream(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-10/10\r\n"
        b"Content-Length: 11\r\nConnection: close\r\n\r\n0123456789X"
    )
    with pytest.raises(UpstreamError):
        HTTPFile(
            f"http://127.0.0.1:{server.port}/f.txt",
            headers={"Range": "bytes=0-10"},
            allowed_hosts=["127.0.0.1"],
            timeout=5,
        )
    assert "sent an invalid Content-Range 'bytes 0-10/10'" in caplog.text


def test_a_redirect_without_location_is_not_fetched_again(
    upstream: cabc.Callable[[bytes], _Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    from flask_download import HTTPFile
    from flask_download import UpstreamError

    server = upstream(
        b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    with pytest.raises(UpstreamError):
        HTTPFile(
            f"http://127.0.0.1:{server.port}/f.txt",
            allowed_hosts=["127.0.0.1"],
            timeout=5,
        )
    assert "redirects" not in caplog.text
    assert len(server.requests) == 1


# -- signing.check_signature ----------------------------------------------------


@pytest.fixture
def signed_app() -> Flask:
    from flask_download import signature_required

    app = Flask(__name__)
    app.config["SECRET_KEY"] = "mutants-secret"

    @app.route("/doc/<int:id>")
    @signature_required
    def doc(id: int) -> Response:
        response = Response(f"doc {id}")
        if clock_during_view:
            clock[0] = clock_during_view[0]
        return response

    return app


clock: list[float] = [0.0]
clock_during_view: list[float] = []


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> cabc.Iterator[list[float]]:
    import flask_download.signing

    clock[0] = 1_800_000_000.0
    clock_during_view.clear()
    monkeypatch.setattr(flask_download.signing, "_now", lambda: clock[0])
    yield clock
    clock_during_view.clear()


def _sign(app: Flask, **values: t.Any) -> str:
    from flask_download import signed_url_for

    with app.test_request_context():
        return signed_url_for("doc", **values)


def test_a_link_still_opens_at_its_expiry_second(
    signed_app: Flask, frozen_clock: list[float]
) -> None:
    url = _sign(signed_app, id=1, expires_in=60)
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    frozen_clock[0] = float(expires)
    with signed_app.test_client().get(url) as rv:
        assert rv.status_code == 200
        assert rv.headers["Cache-Control"] == "private, max-age=0"
    frozen_clock[0] = expires + 0.5
    with signed_app.test_client().get(url) as rv:
        assert rv.status_code == 410


def test_max_age_is_never_negative_when_the_link_expires_during_the_view(
    signed_app: Flask, frozen_clock: list[float]
) -> None:
    """The view ran past the link's expiry: the answer may be cached for
    0 seconds, never a negative max-age (which caches read as they like)."""
    url = _sign(signed_app, id=1, expires_in=60)
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    clock_during_view.append(expires + 30.0)
    with signed_app.test_client().get(url) as rv:
        assert rv.status_code == 200
        assert rv.headers["Cache-Control"] == "private, max-age=0"


# -- edge: nginx secure_link ----------------------------------------------------

NGINX_SECRET = "n" * 40


def test_an_nginx_link_still_opens_during_its_expiry_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nginx refuses a link once ``expires < ngx_time()``: during the
    expiry second itself it still opens."""
    from flask_download import nginx_secure_link
    from flask_download import SignatureExpired
    from flask_download.edge import _nginx
    from flask_download.edge import verify_nginx_secure_link

    stamp = 1_800_000_000
    link = nginx_secure_link("/f.txt", secret=NGINX_SECRET, expires=stamp)
    query = parse_qs(urlsplit(link).query)
    md5, expires = query["md5"][0], query["expires"][0]
    monkeypatch.setattr(_nginx, "_now", lambda: stamp + 0.9)
    assert (
        verify_nginx_secure_link("/f.txt", md5, expires, secret=NGINX_SECRET) == stamp
    )
    monkeypatch.setattr(_nginx, "_now", lambda: stamp + 1.0)
    with pytest.raises(SignatureExpired):
        verify_nginx_secure_link("/f.txt", md5, expires, secret=NGINX_SECRET)


@pytest.mark.parametrize("bad", ["\x7f", "\x1f", "$", '"', "\\"])
def test_an_nginx_secret_with_del_or_a_character_nginx_reads_is_refused(
    bad: str,
) -> None:
    from flask_download import ConfigurationError
    from flask_download import nginx_secure_link
    from flask_download.edge import validate_nginx_secret

    secret = NGINX_SECRET + bad
    with pytest.raises(ConfigurationError):
        validate_nginx_secret(secret)
    with pytest.raises(ConfigurationError):
        nginx_secure_link("/f.txt", secret=secret, expires=1_800_000_000)


def test_an_nginx_link_cannot_be_made_or_checked_for_a_tenant_subdomain() -> None:
    """nginx's hash covers the path only: a route taking a subdomain
    variable would open one tenant's file with a link for another."""
    from flask_download import ConfigurationError
    from flask_download import nginx_secure_link_required
    from flask_download.edge import nginx_secure_url_for

    app = Flask(__name__, subdomain_matching=True)
    app.testing = True
    app.config["SERVER_NAME"] = "example.test"
    app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = NGINX_SECRET

    @app.route("/files/<name>", subdomain="<tenant>")
    @nginx_secure_link_required
    def files(tenant: str, name: str) -> str:
        return f"{tenant}:{name}"

    with app.test_request_context(), pytest.raises(ConfigurationError, match="host"):
        nginx_secure_url_for("files", tenant="a", name="x.txt")
    with pytest.raises(ConfigurationError, match="host"):
        app.test_client().get(
            "/files/x.txt?md5=AAAAAAAAAAAAAAAAAAAAAA&expires=1800000000",
            base_url="http://a.example.test",
        )


# -- response: names and the sandbox ------------------------------------------


def test_a_long_name_keeps_an_extension_of_32_characters_dot_included() -> None:
    from flask_download.response import content_disposition

    value = content_disposition("a" * 300 + "." + "b" * 40)
    name = value.partition('filename="')[2].rstrip('"')
    assert len(name) == 255
    assert name.endswith("a." + "b" * 31)


def test_a_non_ascii_name_ending_in_a_dot_falls_back_without_it() -> None:
    from flask_download.response import content_disposition

    assert content_disposition("réport.") == (
        "attachment; filename=\"report\"; filename*=UTF-8''r%C3%A9port."
    )


def test_text_rdf_is_active_and_sandboxed_inline() -> None:
    """Firefox shows ``text/rdf`` as an XML document, scripts included."""
    from flask_download import FlaskDownload
    from flask_download import VirtualDownloadView
    from flask_download import VirtualFile
    from flask_download.response import is_active_type

    assert is_active_type("text/rdf")
    assert is_active_type(" TEXT/RDF ; charset=utf-8")

    class Rdf(VirtualDownloadView):
        def get_file(self) -> VirtualFile:
            file = VirtualFile(b"<rdf/>", name="x.rdf")
            file.mimetype = "text/rdf"
            return file

    app = Flask(__name__)
    FlaskDownload(app)
    app.add_url_rule("/rdf", view_func=Rdf.as_view("rdf", attachment=False))
    with app.test_client().get("/rdf") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Security-Policy"] == "sandbox"


def test_a_remote_html_attachment_carries_no_sandbox(
    upstream: cabc.Callable[[bytes], _Upstream],
) -> None:
    """Only inline active content is sandboxed: an attachment is saved, not
    shown, and an upstream's own policy is not relayed onto it either."""
    from flask_download import HTTPDownloadView

    body = b"<script>alert(1)</script>"
    server = upstream(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
        b"Content-Security-Policy: default-src *\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )

    class Remote(HTTPDownloadView):
        url = f"http://127.0.0.1:{server.port}/page.html"
        allowed_hosts = ("127.0.0.1",)
        timeout = 5.0

    app = Flask(__name__)
    app.add_url_rule("/saved", view_func=Remote.as_view("saved"))
    app.add_url_rule("/shown", view_func=Remote.as_view("shown", attachment=False))
    client = app.test_client()
    with client.get("/saved") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"].startswith("text/html")
        assert "Content-Security-Policy" not in rv.headers
        assert rv.data == body
    with client.get("/shown") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Security-Policy"] == "sandbox"


# -- ranges ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["bytes=0-1", "bytes=5-", "bytes=-1", "bytes=0-0,2-3"]
)
def test_a_negative_size_means_no_ranges(header: str) -> None:
    """A size below zero is no size: the whole representation (``None``),
    never a 416 computed against it."""
    from flask_download.ranges import evaluate_range

    assert (
        evaluate_range(
            range_header=header,
            if_range=None,
            size=-1,
            etag=None,
            last_modified=None,
            max_ranges=5,
        )
        is None
    )


# -- archive member names -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        # U+2069 POP DIRECTIONAL ISOLATE, the last of the bidi isolates.
        ("a\u2069b.txt", "ab.txt"),
        # U+29F8 BIG SOLIDUS: "/" by Windows best fit.
        ("..\u29f8x.txt", "x.txt"),
        ("dir\u29f8x.txt", "dir/x.txt"),
        # FULLWIDTH COLON: ":" by NFKC, so "_" as any other colon.
        ("ab\uff1ac.txt", "ab_c.txt"),
        ("C\uff1a\uff3cx.txt", "x.txt"),
        # "¥" is "\" on Japanese Windows, which drops the trailing space of
        # ".. ": that is a ".." part.
        ("a/.. \u00a5evil.txt", "a/.. _evil.txt"),
        ("a/. \u00a5evil.txt", "a/. _evil.txt"),
        # An extension of more than half the segment limit is not kept.
        ("a" * 100 + "." + "b" * 150, ("a" * 100 + "." + "b" * 150)[:240]),
        # A cut landing after a space (or a dot) drops it: Windows would.
        ("a" * 239 + " " + "b" * 10, "a" * 239),
        ("a" * 239 + "." + "b" * 10 + "." + "c" * 200, "a" * 239),
    ],
    ids=[
        "pdi",
        "big-solidus-dotdot",
        "big-solidus",
        "fullwidth-colon",
        "fullwidth-drive",
        "yen-dotdot-space",
        "yen-dot-space",
        "long-extension",
        "cut-at-space",
        "cut-at-dot",
    ],
)
def test_member_names_made_safe(name: str, safe: str) -> None:
    from flask_download.archive import safe_member_name

    assert safe_member_name(name) == safe


# -- http: more ---------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "192.31.196.1",  # AS112-v4 (RFC 7535)
        "192.52.193.1",  # AMT (RFC 7450)
        "192.175.48.1",  # AS112 direct delegation (RFC 7534)
        "192.0.0.9",  # IETF protocol assignments (PCP anycast)
        "2620:4f:8000::1",  # AS112 direct delegation, IPv6
        "::ffff:192.31.196.1",  # the same, mapped
    ],
)
def test_special_ranges_python_calls_global_are_not_public(address: str) -> None:
    """The IANA registries mark these globally reachable, and
    ``ipaddress`` calls them global: they are anycast infrastructure, never
    a file server, so they are refused like the private ranges."""
    from flask_download.http import is_public_address

    assert not is_public_address(address)


def test_every_credential_header_stays_with_the_first_origin(
    upstream: cabc.Callable[[bytes], _Upstream],
) -> None:
    """A redirect to another port is another origin: ``Authorization``,
    ``Cookie`` and ``Proxy-Authorization`` are not sent there, other
    headers are."""
    from flask_download import HTTPFile

    second = upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    )
    first = upstream(
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/f.txt\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n" % second.port
    )
    file = HTTPFile(
        f"http://127.0.0.1:{first.port}/f.txt",
        headers={
            "Authorization": "Bearer app-secret",
            "Cookie": "session=app",
            "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
            "X-Trace": "kept",
        },
        allowed_hosts=["127.0.0.1"],
        timeout=5,
    )
    try:
        assert b"".join(file.chunks()) == b"ok"
    finally:
        file.close()
    (head1,) = first.requests
    (head2,) = second.requests
    for name in (b"authorization:", b"cookie:", b"proxy-authorization:"):
        assert name in head1.lower()
        assert name not in head2.lower()
    assert b"x-trace: kept" in head2.lower()


def test_a_content_range_ending_before_it_starts_is_a_502(
    upstream: cabc.Callable[[bytes], _Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    """``bytes 5-2/100`` with no ``Content-Length`` to contradict it."""
    from flask_download import HTTPFile
    from flask_download import UpstreamError

    server = upstream(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-2/100\r\n"
        b"Connection: close\r\n\r\nabcd"
    )
    with pytest.raises(UpstreamError):
        HTTPFile(
            f"http://127.0.0.1:{server.port}/f.txt",
            headers={"Range": "bytes=5-8"},
            allowed_hosts=["127.0.0.1"],
            timeout=5,
        )
    assert "sent an invalid Content-Range 'bytes 5-2/100'" in caplog.text
