"""The HTTP proxy view under SSRF attack, with a hostile upstream.

``/proxy?url=`` takes the URL from the client (the dangerous pattern) and
allows public addresses only; ``/proxy-allowlist`` allows
``allowed.example`` only; ``/proxy-local`` allows ``127.0.0.1`` (where the
hostile upstream listens) and nothing else. Refused URLs are 403 and the
upstream never sees a request; what the upstream sends back is relayed
without its hop-by-hop, cookie and offload headers, and never decompressed.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t
from urllib.parse import quote

import pytest

from .conftest import GZIP_BOMB
from .conftest import LiveServer
from .conftest import RawResponse
from .conftest import require


@pytest.fixture(autouse=True)
def _proxy(live: LiveServer) -> None:
    require(live, "proxy")


@pytest.fixture
def up(upstream: t.Any) -> int:
    """The upstream's port."""
    return int(upstream.server_address[1])


def _proxy_get(
    live: LiveServer,
    route: str,
    url: str,
    headers: cabc.Sequence[tuple[str, str]] = (),
) -> RawResponse:
    return live.request(f"{route}?url={quote(url, safe='')}", headers)


#: URLs that reach loopback, private or metadata addresses in disguise.
#: ``{p}`` is the upstream's port.
SSRF = {
    "loopback": "http://127.0.0.1:{p}/secret",
    "localhost": "http://localhost:{p}/secret",
    "localhost-upper": "HTTP://LOCALHOST:{p}/secret",
    "localhost-trailing-dot": "http://localhost.:{p}/secret",
    "decimal": "http://2130706433:{p}/secret",
    "octal": "http://0177.0.0.1:{p}/secret",
    "octal-whole": "http://017700000001:{p}/secret",
    "hex": "http://0x7f000001:{p}/secret",
    "hex-dotted": "http://0x7f.1:{p}/secret",
    "short": "http://127.1:{p}/secret",
    "zero": "http://0:{p}/secret",
    "unspecified": "http://0.0.0.0:{p}/secret",
    "ipv6-loopback": "http://[::1]:{p}/secret",
    "ipv6-mapped": "http://[::ffff:127.0.0.1]:{p}/secret",
    "ipv6-mapped-hex": "http://[::ffff:7f00:1]:{p}/secret",
    "ipv6-unspecified": "http://[::]:{p}/secret",
    "ipv6-nat64": "http://[64:ff9b::7f00:1]:{p}/secret",
    "ipv6-6to4": "http://[2002:7f00:1::1]:{p}/secret",
    "ipv6-unique-local": "http://[fd00::1]:{p}/secret",
    "ipv6-link-local": "http://[fe80::1]:{p}/secret",
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "private-10": "http://10.0.0.1/",
    "private-192": "http://192.168.0.1/",
    "cgnat": "http://100.64.0.1/",
    "multicast": "http://224.0.0.1/",
    "userinfo": "http://allowed.example@127.0.0.1:{p}/secret",
    "userinfo-empty": "http://@127.0.0.1:{p}/secret",
    "file": "file:///etc/passwd",
    "gopher": "gopher://127.0.0.1:{p}/_GET%20/secret",
    "ftp": "ftp://127.0.0.1:{p}/secret",
    "dict": "dict://127.0.0.1:{p}/",
    "scheme-relative": "//127.0.0.1:{p}/secret",
    "no-host": "http:///secret",
    "one-slash": "http:/127.0.0.1:{p}/secret",
    "javascript": "javascript:alert(1)",
    "tab-in-host": "http://127.0.0.1\t:{p}/secret",
    "crlf-in-url": "http://127.0.0.1:{p}/secret\r\nX-Injected: 1",
    "bad-port": "http://127.0.0.1:99999/secret",
    "empty": "",
}
#: Attempts to get around an allowlist of ``allowed.example``.
ALLOWLIST = {
    "userinfo": "http://allowed.example@127.0.0.1:{p}/secret",
    "userinfo-port": "http://allowed.example:80@127.0.0.1:{p}/secret",
    "suffix": "http://allowed.example.127.0.0.1.nip.io:{p}/secret",
    "prefix": "http://evil-allowed.example:{p}/secret",
    "in-path": "http://127.0.0.1:{p}/allowed.example",
    "in-query": "http://127.0.0.1:{p}/secret?allowed.example",
    "in-fragment": "http://127.0.0.1:{p}/secret#allowed.example",
    "backslash": "http://127.0.0.1:{p}\\@allowed.example/secret",
    "encoded-nul": "http://allowed.example%00.127.0.0.1:{p}/secret",
    "loopback": "http://127.0.0.1:{p}/secret",
}


@pytest.mark.parametrize("url", SSRF.values(), ids=SSRF.keys())
def test_ssrf_forms_are_refused_without_a_request(
    live: LiveServer, upstream: t.Any, up: int, url: str
) -> None:
    before = len(upstream.requests)
    response = _proxy_get(live, "/proxy", url.format(p=up))
    assert response.status == 403, response
    assert len(upstream.requests) == before, "the upstream was contacted"


@pytest.mark.parametrize("url", ALLOWLIST.values(), ids=ALLOWLIST.keys())
def test_allowlist_bypasses_are_refused_without_a_request(
    live: LiveServer, upstream: t.Any, up: int, url: str
) -> None:
    before = len(upstream.requests)
    response = _proxy_get(live, "/proxy-allowlist", url.format(p=up))
    assert response.status == 403, response
    assert len(upstream.requests) == before, "the upstream was contacted"


@pytest.mark.parametrize(
    "location",
    [
        "http://localhost:{p}/secret",
        "http://[::1]:{p}/secret",
        "http://2130706433:{p}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://allowed.example@localhost:{p}/secret",
        "file:///etc/passwd",
        "//localhost:{p}/secret",
    ],
    ids=[
        "localhost",
        "ipv6",
        "decimal",
        "metadata",
        "userinfo",
        "file",
        "scheme-relative",
    ],
)
def test_redirects_to_internal_hosts_are_refused(
    live: LiveServer, up: int, location: str
) -> None:
    url = f"http://127.0.0.1:{up}/redirect?" + quote(location.format(p=up), safe="")
    response = _proxy_get(live, "/proxy-local", url)
    assert response.status == 403, response


def test_the_allowed_upstream_is_relayed(live: LiveServer, up: int) -> None:
    """The control: the refusals above are not a broken view."""
    response = _proxy_get(live, "/proxy-local", f"http://127.0.0.1:{up}/plain")
    assert response.status == 200
    assert response.body == b"upstream\n"


def test_hop_by_hop_cookie_and_offload_headers_are_dropped(
    live: LiveServer, up: int
) -> None:
    response = _proxy_get(live, "/proxy-local", f"http://127.0.0.1:{up}/hop")
    assert response.status == 200
    names = {name.lower() for name, _ in response.headers}
    for dropped in (
        "x-hop",
        "keep-alive",
        "proxy-authenticate",
        "set-cookie",
        "x-accel-redirect",
        "x-accel-buffering",
        "x-sendfile",
        "x-injected",
    ):
        assert dropped not in names
    assert response.header("Connection") == "close"  # ours, not "close, X-Hop"


def test_client_credentials_are_never_forwarded(
    live: LiveServer, upstream: t.Any, up: int
) -> None:
    response = _proxy_get(
        live,
        "/proxy-local",
        f"http://127.0.0.1:{up}/echo",
        [
            ("Cookie", "session=CLIENT-COOKIE"),
            ("Authorization", "Bearer CLIENT-TOKEN"),
            ("Proxy-Authorization", "Basic CLIENT-PROXY"),
            ("X-Forwarded-For", "CLIENT-XFF"),
            ("Range", "bytes=0-"),
        ],
    )
    assert response.status in (200, 206)
    received = upstream.requests[-1]
    for leaked in (b"CLIENT-COOKIE", b"CLIENT-TOKEN", b"CLIENT-PROXY", b"CLIENT-XFF"):
        assert leaked not in received
        assert leaked not in response.body
    assert b"Range: bytes=0-" in received  # forwarded headers still are


@pytest.mark.parametrize(
    "headers",
    [[], [("Accept-Encoding", "gzip")], [("Accept-Encoding", "identity")]],
    ids=["no-accept-encoding", "gzip", "identity"],
)
def test_gzip_bombs_are_relayed_compressed(
    live: LiveServer, up: int, headers: list[tuple[str, str]]
) -> None:
    response = _proxy_get(live, "/proxy-local", f"http://127.0.0.1:{up}/bomb", headers)
    assert response.status == 200
    assert response.body == GZIP_BOMB
    assert response.header("Content-Encoding") == "gzip"
    assert response.header("Content-Length") == str(len(GZIP_BOMB))


#: Addresses that hide a non-public destination, often an IPv4 one inside
#: IPv6 that ``ipaddress`` calls global (#12). Judged the same whether the
#: URL names them or a DNS name resolves to them.
HIDDEN = {
    "nat64-local-use-metadata": "64:ff9b:1::a9fe:a9fe",
    "nat64-metadata": "64:ff9b::a9fe:a9fe",
    "compatible-metadata": "::169.254.169.254",
    "compatible-private": "::10.0.0.1",
    "siit-metadata": "::ffff:0:169.254.169.254",
    "mapped-metadata": "::ffff:169.254.169.254",
    "6to4-metadata": "2002:a9fe:a9fe::1",
    "teredo-private-client": "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    "site-local": "fec0::1",
    "unique-local": "fd12:3456::1",
    "documentation-v6": "2001:db8::1",
    "benchmarking-v6": "2001:2::1",
    "orchid-v2": "2001:20::1",
    "discard-only": "100::1",
    "multicast-v6": "ff02::1",
    "documentation-v4": "192.0.2.1",
    "benchmarking-v4": "198.18.0.1",
    "ietf-protocol-v4": "192.0.0.8",
    "reserved-v4": "240.0.0.1",
    "broadcast": "255.255.255.255",
    "6to4-relay": "192.88.99.1",
}
#: Globally routable addresses, in every form that embeds them.
PUBLIC = {
    "ipv4": "93.184.216.34",
    "ipv6": "2606:4700::1111",
    "mapped": "::ffff:93.184.216.34",
    "nat64": "64:ff9b::5db8:d822",
    "6to4": "2002:5db8:d822::1",
}


class _Resolver:
    """A fake DNS (``evil.test`` -> the given address) that never connects."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, address: str) -> None:
        import socket

        import flask_download.http
        import flask_download.http._client

        real = socket.getaddrinfo
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        #: URLs the proxy tried to open (it must not, for hidden addresses).
        self.opened: list[str] = []

        def getaddrinfo(host: t.Any, port: t.Any, *args: t.Any, **kw: t.Any) -> t.Any:
            if host == "evil.test":
                sockaddr = (address, port or 80) + ((0, 0) if ":" in address else ())
                return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
            return real(host, port, *args, **kw)

        def never_open(target: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            self.opened.append(target.address)
            # A 404, not a 502: the live server's checks refuse any 5xx.
            raise flask_download.http.FileNotFound("not connecting out in tests")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(flask_download.http._client, "_open", never_open)


@pytest.mark.parametrize("address", HIDDEN.values(), ids=HIDDEN.keys())
@pytest.mark.parametrize("form", ["name", "literal"])
def test_hidden_non_public_addresses_are_refused(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, address: str, form: str
) -> None:
    resolver = _Resolver(monkeypatch, address)
    literal = f"[{address}]" if ":" in address else address
    host = "evil.test" if form == "name" else literal
    response = _proxy_get(live, "/proxy", f"http://{host}/latest/meta-data/")
    assert response.status == 403, response
    assert resolver.opened == []


@pytest.mark.parametrize("address", PUBLIC.values(), ids=PUBLIC.keys())
def test_public_addresses_are_fetched(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    """The control: the fake resolver is used, public addresses pass."""
    resolver = _Resolver(monkeypatch, address)
    response = _proxy_get(live, "/proxy", "http://evil.test/file")
    assert response.status == 404  # what the fake connection answers
    assert resolver.opened == [address]


def test_allowed_hosts_still_let_a_listed_private_host_in(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = _Resolver(monkeypatch, "64:ff9b:1::a9fe:a9fe")
    response = _proxy_get(live, "/proxy-allowlist", "http://evil.test/x")
    assert response.status == 403  # not listed
    assert resolver.opened == []
