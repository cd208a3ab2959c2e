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
