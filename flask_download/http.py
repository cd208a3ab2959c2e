"""Remote files: stream a URL through the application, safely.

:class:`HTTPFile` fetches a URL with a pooled ``urllib3`` client (extra
``Flask-Download[http]``) and relays the body as it arrives on the wire:
never decompressed, in chunks. :class:`HTTPDownloadView` passes the
client's ``Range`` and conditional headers upstream and relays the answer
(200, 206, 304, 412, 416).

Server-side request forgery is refused: only ``http`` and ``https`` URLs
without user info; the host is resolved here and every address must be
globally routable (see :func:`is_public_address`: IPv4 embedded in IPv6 is
judged as IPv4) unless that exact host is in ``allowed_hosts``; the
connection goes to the vetted address (no second DNS lookup to rebind);
redirects are followed here, at most :data:`MAX_REDIRECTS`, each hop checked
again, and never shown to the client.

Ports are not restricted by default (as with ``requests`` or urllib3): the
address check is the boundary, and a public address's ports are reachable
from anywhere. ``allowed_ports`` restricts them (SafeCurl's default is 80,
443 and 8080), for each hop; worth setting when the client picks the URL, or
when an ``allowed_hosts`` entry is a private host running other services
(entries never name ports).

The upstream's framing is never relayed: ``Content-Length`` only when it
sent exactly one valid length and no ``Transfer-Encoding``; a range the
client did not ask for, a malformed length or ``Content-Range``, or a
``Transfer-Encoding`` other than ``chunked``, is a 502 and the upstream
connection is closed at once. So is an answer that is no file: a final
1xx (a ``101`` relayed would switch the client's connection), 204, 205, a
3xx that is not followed, or a 304, 412 or 416 to conditions or a range
that were not sent. The headers the upstream's ``Connection`` names are
this hop's and never relayed (RFC 9110 §7.6.1), and two different ``ETag``
(or ``Last-Modified``) headers are no validator at all.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import ipaddress
import logging
import os
import posixpath
import re
import socket
import threading
import time
import traceback
import typing as t
from urllib.parse import unquote
from urllib.parse import urljoin
from urllib.parse import urlsplit

from flask import current_app
from flask import has_app_context
from flask import request
from flask import Response
from werkzeug.datastructures import Headers

from ._compat import require
from ._grammar import ETAGC
from ._grammar import TOKEN
from .conditional import parse_http_date
from .exceptions import ConfigurationError
from .exceptions import DisallowedURL
from .exceptions import FileNotFound
from .exceptions import UpstreamError
from .exceptions import UpstreamTimeout
from .files import as_index
from .files import DEFAULT_CHUNK_SIZE
from .files import DownloadFile
from .ranges import forwardable_range
from .response import cache_directives
from .response import DownloadResponse
from .response import no_less_private
from .response import set_content_security_policy
from .response import valid_media_type
from .settings import check_allowed_hosts
from .settings import DEFAULTS
from .settings import get_settings
from .views import DownloadView

if t.TYPE_CHECKING:
    import urllib3
    from flask.typing import RouteCallable
    from urllib3.response import BaseHTTPResponse

_logger = logging.getLogger("flask_download")

#: Most redirects followed for one download.
MAX_REDIRECTS = 5
#: Timeout of :class:`HTTPFile` used outside an application, in seconds.
DEFAULT_TIMEOUT: float = DEFAULTS["DOWNLOAD_HTTP_TIMEOUT"]
#: Slowest upstream body relayed, in bytes a second, measured over each span
#: of the timeout: a slower one is cut off (it would hold a worker for ever
#: while each of its socket reads stays within the timeout).
MIN_RATE = 1024

#: Client request headers passed upstream; nothing else is (never ``Cookie``
#: or ``Authorization``).
FORWARDED_REQUEST_HEADERS = (
    "Range",
    "If-Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Accept-Encoding",
)
_RANGE_HEADERS = ("Range", "If-Range")
#: Upstream response headers relayed to the client; nothing else is (no
#: hop-by-hop headers, ``Set-Cookie``, ``X-Accel-*`` or ``X-Sendfile``).
RELAYED_RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "Content-Encoding",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "Vary",
)
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
# Final statuses whose body is the file (206 only when a range was asked:
# _check_framing); 304, 412 and 416 only answer the request's conditions.
_FILE_STATUSES = frozenset((200, 203, 206))
# Request headers that may make an upstream answer 304 or 412.
_CONDITIONS = frozenset(
    ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
)
# Request headers dropped when a redirect leaves the first origin.
_CREDENTIALS = frozenset(("authorization", "cookie", "proxy-authorization"))
# Answers to a HEAD that the GET may not share: the server does not do HEAD
# (405, 501), or the URL is signed for GET alone (403 from S3 or GCS).
_HEAD_REFUSED = frozenset((403, 405, 501))
_USER_AGENT = "Flask-Download"


def _log(level: int, message: str) -> None:
    logger = current_app.logger if has_app_context() else _logger
    logger.log(level, "%s", message)


def _refuse(message: str) -> DisallowedURL:
    _log(logging.WARNING, f"Download refused: {message}")
    return DisallowedURL(message)


def _fail(message: str) -> UpstreamError:
    _log(logging.ERROR, f"Upstream error: {message}")
    return UpstreamError(message)


# -- SSRF checks ----------------------------------------------------------------

# IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates): never
# fetched, whatever ``ipaddress`` thinks of them (its ``is_global`` changed
# between Python versions).
_SPECIAL_IPV4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network" (RFC 791)
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # shared address space, CGNAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (RFC 3927)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "192.0.2.0/24",  # documentation (RFC 5737)
        "192.31.196.0/24",  # AS112-v4 (RFC 7535)
        "192.52.193.0/24",  # AMT (RFC 7450)
        "192.88.99.0/24",  # 6to4 relay anycast (RFC 7526)
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # AS112 direct delegation (RFC 7534)
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast address
    )
)
# Global unicast (RFC 4291 §2.4): nothing outside it is fetched, unless it
# embeds an IPv4 address (below).
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# IANA IPv6 Special-Purpose Address Registry, inside 2000::/3.
_SPECIAL_IPV6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (Teredo is judged by its IPv4)
        "2001:db8::/32",  # documentation (RFC 3849)
        "2620:4f:8000::/48",  # AS112 direct delegation (RFC 7534)
        "3fff::/20",  # documentation (RFC 9637)
    )
)
# Prefixes that carry an IPv4 address in their last 32 bits: IPv4-compatible
# (RFC 4291 §2.5.5.1, "::" and "::1" included), IPv4-mapped (§2.5.5.2), SIIT
# (RFC 2765) and the NAT64 well-known prefix (RFC 6052).
_IPV4_IN_LAST_32 = tuple(
    ipaddress.IPv6Network(n)
    for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
_TEREDO = ipaddress.IPv6Network("2001::/32")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
# RFC 8215 local-use NAT64: the operator picks the prefix length, so the IPv4
# address may sit at any RFC 6052 §2.2 position; every candidate is judged.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _rfc6052_ipv4(packed: bytes, prefix_length: int) -> ipaddress.IPv4Address:
    # RFC 6052 §2.2: the IPv4 bits follow the prefix, skipping bits 64-71.
    start = prefix_length // 8
    if start >= 12:
        return ipaddress.IPv4Address(packed[12:16])
    head = packed[start:8]
    return ipaddress.IPv4Address(head + packed[9 : 9 + 4 - len(head)])


def _embedded_ipv4s(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses ``address`` stands for; empty if none."""
    if any(address in net for net in _IPV4_IN_LAST_32):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _LOCAL_NAT64:
        return [_rfc6052_ipv4(address.packed, n) for n in (48, 56, 64, 96)]
    if address in _SIX_TO_FOUR:
        return [t.cast(ipaddress.IPv4Address, address.sixtofour)]
    if address in _TEREDO:
        server, client = t.cast(
            "tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]", address.teredo
        )
        return [server, client]
    return []


def _isatap_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # RFC 5214 §6.1: interface identifier 0000:5efe or 0200:5efe (the "u"
    # bit set for a global IPv4 address; "g" taken either way), then IPv4.
    if (int(address) >> 32) & 0xFCFFFFFF != 0x00005EFE:
        return None
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def _public_ipv4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in net for net in _SPECIAL_IPV4)


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (safe to fetch from).

    IPv4: outside every special-purpose range (private, loopback,
    link-local, shared, documentation, benchmarking, multicast, reserved...).
    IPv6: inside ``2000::/3`` and outside its special-purpose ranges; an
    address that embeds an IPv4 one (mapped, compatible, SIIT, NAT64
    ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4, Teredo) is judged by that
    IPv4 address alone; an ISATAP address (interface identifier
    ``0:5efe:a.b.c.d``) must also embed a public IPv4 address. Anything
    unparseable, or with a zone (``%eth0``), is not public.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_ipv4(ip)
    if ip.scope_id is not None:
        return False  # zones belong to link-local and site-local addresses
    embedded = _embedded_ipv4s(ip)
    if embedded:
        return all(_public_ipv4(v4) for v4 in embedded)
    # A host with an ISATAP interface on that prefix sends it to the IPv4
    # address in its last 32 bits, inside its own network.
    isatap = _isatap_ipv4(ip)
    if isatap is not None and not _public_ipv4(isatap):
        return False
    return (
        ip in _GLOBAL_UNICAST
        and not any(ip in net for net in _SPECIAL_IPV6)
        and ip.is_global
    )


class _Target(t.NamedTuple):
    url: str
    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query sent in the request line
    host_header: str


def _allowed_form(entry: str) -> str:
    """An ``allowed_hosts`` entry as URL hosts are compared: lowercase, no
    trailing dot or brackets, an internationalised name in ASCII."""
    entry = entry.lower().rstrip(".").strip("[]")
    dot = "." if entry.startswith(".") else ""
    name = entry[len(dot) :]
    # IDNA reads the ideographic and full-width full stops as dots: one of
    # them at the end is a trailing dot too.
    return dot + (_ascii_host(name).rstrip(".") or name)


def _host_allowed(host: str, allowed_hosts: cabc.Collection[str]) -> bool:
    """Whether ``host`` (ASCII, lowercase) matches an entry of
    ``allowed_hosts`` (as :func:`_allowed_form` makes them)."""
    for allowed in allowed_hosts:
        if host == allowed:
            return True
        # ".example.com" allows example.com and its subdomains (as Django's
        # ALLOWED_HOSTS does).
        if allowed.startswith(".") and (host == allowed[1:] or host.endswith(allowed)):
            return True
    return False


def _ascii_host(host: str) -> str:
    """``host`` as resolved and sent (``Host``, SNI): an internationalised
    name in its ASCII (IDNA) form, as ``getaddrinfo`` looks it up; ``""``
    when it cannot be a host name (a zone ID or a percent-encoded name,
    an invalid label)."""
    if "%" in host:
        # "fe80::1%25eth0" picks an interface; "%31%32%37.0.0.1" is no name
        # a resolver knows.
        return ""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def check_allowed_ports(
    allowed_ports: cabc.Collection[int] | None, where: str
) -> frozenset[int] | None:
    """``allowed_ports`` as a set, checked: TCP port numbers (1 to 65535).

    :raises ConfigurationError: anything else (a string, a name, 0...).
    """
    if allowed_ports is None:
        return None
    if isinstance(allowed_ports, (str, bytes)) or not isinstance(
        allowed_ports, cabc.Iterable
    ):
        raise ConfigurationError(
            f"{where} must be a collection of port numbers, not {allowed_ports!r}."
        )
    ports = set()
    for port in allowed_ports:
        try:
            number = as_index(port, "port")  # numpy.int64 too, never a bool
        except TypeError:
            number = 0
        if not 0 < number < 65536:
            raise ConfigurationError(
                f"{where}: {port!r} is not a TCP port number (1 to 65535)."
            )
        ports.add(number)
    return frozenset(ports)


def _vet(
    url: str,
    allowed_hosts: cabc.Collection[str] | None,
    allowed_ports: cabc.Collection[int] | None = None,
    timeout: float | None = None,
) -> _Target:
    """Check a URL and resolve its host to a vetted address.

    :param timeout: the longest wait for the host name's addresses.
    :raises DisallowedURL: the URL may not be fetched.
    :raises UpstreamError: the host name does not resolve.
    :raises UpstreamTimeout: the name was not resolved within ``timeout``.
    """
    if isinstance(allowed_hosts, str):
        allowed_hosts = (allowed_hosts,)  # one host, not its letters
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise _refuse(f"{url!r} contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise _refuse(f"{url!r} is not a valid URL: {e}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse(f"{url!r}: only http and https URLs are fetched.")
    if "@" in parts.netloc:
        # "http://allowed.example@evil.example/" goes to evil.example.
        raise _refuse(f"{url!r}: URLs with user info are refused.")
    # The trailing dot stripped after the conversion too: IDNA reads the
    # ideographic and full-width full stops as dots.
    host = _ascii_host((parts.hostname or "").rstrip(".")).rstrip(".")
    if not host:
        raise _refuse(f"{url!r} has no valid host.")
    if port is None:
        port = 443 if scheme == "https" else 80
    elif port == 0:
        raise _refuse(f"{url!r} has no valid port.")
    if allowed_ports is not None and port not in allowed_ports:
        raise _refuse(f"{url!r}: port {port} is not in the allowed ports.")
    # An IPv6 entry may be written "[::1]"; the URL's host name is "::1".
    if allowed_hosts is not None:
        allowed_hosts = [_allowed_form(entry) for entry in allowed_hosts]
    listed = allowed_hosts is not None and host in allowed_hosts
    if allowed_hosts is not None and not (listed or _host_allowed(host, allowed_hosts)):
        raise _refuse(f"{host!r} is not in the allowed hosts.")
    try:
        infos = _resolve(host, port, timeout)
    except (OSError, UnicodeError) as e:
        raise _fail(f"cannot resolve {host!r}: {e}.") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise _fail(f"{host!r} has no address.")
    if not listed:
        # Every address must be public: a name with one private record among
        # public ones is a rebinding attempt as much as an all-private one.
        for address in addresses:
            if not is_public_address(address):
                raise _refuse(
                    f"{host!r} resolves to the non-public address {address};"
                    " add the host to allowed_hosts (DOWNLOAD_HTTP_ALLOWED_HOSTS)"
                    " to allow it."
                )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    default_port = port == (443 if scheme == "https" else 80)
    name = f"[{host}]" if ":" in host else host
    host_header = name if default_port else f"{name}:{port}"
    return _Target(url, scheme, host, port, addresses[0], target, host_header)


#: Most host name lookups under way at once (each in its own thread).
MAX_LOOKUPS = 8
_lookups = threading.BoundedSemaphore(MAX_LOOKUPS)


def _reset_lookups() -> None:
    # A forked worker (gunicorn --preload) has none of its parent's lookup
    # threads: the slots they held would never come back.
    global _lookups
    _lookups = threading.BoundedSemaphore(MAX_LOOKUPS)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lookups)


def _resolve(host: str, port: int, timeout: float | None) -> list[t.Any]:
    """``getaddrinfo`` for ``host``, given up after ``timeout`` seconds.

    ``getaddrinfo`` has no timeout of its own, and a name whose DNS server
    never answers (one a client may choose) would hold the worker for as
    long as the system resolver insists. The lookup runs in a thread of its
    own, at most :data:`MAX_LOOKUPS` at once, so the stuck ones cannot pile
    up either; an address literal needs no lookup.

    :raises UpstreamTimeout: no answer within ``timeout``.
    :raises UpstreamError: no thread could be started for the lookup.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        timeout = None  # nothing to look up: answered at once
    if timeout is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    slots = _lookups  # the one released is the one acquired
    found: list[t.Any] = []
    done = threading.Event()
    once = threading.Lock()

    def give_back() -> None:
        # Once, by the thread or by a start that failed (or was interrupted
        # after the thread ran): a lost slot would never come back.
        if once.acquire(blocking=False):
            slots.release()

    def look_up() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as e:  # handed to the waiting request
            found.append(e)
        finally:
            give_back()
            done.set()

    thread = threading.Thread(target=look_up, name="flask-download-dns", daemon=True)
    if not slots.acquire(timeout=timeout):
        raise _lookup_timeout(host, "too many lookups under way")
    try:
        thread.start()
    except RuntimeError as e:  # "can't start new thread": a thread limit
        give_back()
        raise _fail(
            f"cannot resolve {host!r}: no thread for the lookup: {e}."
        ) from None
    except BaseException:
        give_back()
        raise
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise _lookup_timeout(host, f"no answer within {timeout} s")
    result = found[0]
    if isinstance(result, BaseException):
        raise result
    return t.cast("list[t.Any]", result)


def _lookup_timeout(host: str, why: str) -> UpstreamTimeout:
    _log(logging.ERROR, f"Upstream timeout: cannot resolve {host!r}: {why}.")
    return UpstreamTimeout(f"cannot resolve {host!r}: {why}.")


# -- the pooled client ----------------------------------------------------------

_pool_lock = threading.Lock()
_pool_manager: urllib3.PoolManager | None = None


def _import_urllib3() -> t.Any:
    return require("urllib3", "http", "Remote files")


#: How many times the timeout an upstream has to send its whole response
#: head (status line, headers, 1xx answers), its TLS handshake included:
#: each read within the timeout is not enough, or a trickle of header bytes
#: would hold a worker for ever.
HEAD_DEADLINE_FACTOR = 3


def _pool() -> urllib3.PoolManager:
    global _pool_manager
    if _pool_manager is None:
        urllib3 = _import_urllib3()
        with _pool_lock:
            if _pool_manager is None:
                manager = urllib3.PoolManager(num_pools=32, maxsize=8)
                manager.pool_classes_by_scheme = _deadline_pools(urllib3)
                _pool_manager = manager
    return _pool_manager


def _deadline_pools(urllib3: t.Any) -> dict[str, type[t.Any]]:
    """urllib3's connection pools, whose connections must have the response
    head within :data:`HEAD_DEADLINE_FACTOR` times their timeout: past it,
    the socket is shut down and the request fails (a 502)."""
    from urllib3.connection import HTTPConnection
    from urllib3.connection import HTTPSConnection

    class _Deadline:
        _timer: threading.Timer | None = None
        _expired = False
        sock: socket.socket | None
        timeout: t.Any

        def _arm(self) -> None:
            if self._timer is None and isinstance(self.timeout, (int, float)):
                timer = threading.Timer(
                    HEAD_DEADLINE_FACTOR * self.timeout, self._expire
                )
                timer.daemon = True
                timer.start()
                self._timer = timer

        def _expire(self) -> None:
            self._expired = True
            _log(
                logging.ERROR,
                "Upstream sent no whole response head within"
                f" {HEAD_DEADLINE_FACTOR} x {self.timeout} s: cut off.",
            )
            sock = self.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

        def _disarm(self) -> None:
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()

        def connect(self) -> None:
            self._arm()
            super().connect()  # type: ignore[misc]

        def request(self, *args: t.Any, **kwargs: t.Any) -> None:
            self._arm()
            super().request(*args, **kwargs)  # type: ignore[misc]

        def getresponse(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
            except BaseException:
                self._disarm()
                self._timed_out()
                raise
            self._disarm()
            try:
                self._timed_out()
            except BaseException:
                response.close()  # what came before the cut is no answer
                raise
            return response

        def _timed_out(self) -> None:
            if self._expired:
                self._expired = False
                raise urllib3.exceptions.ReadTimeoutError(
                    None,
                    "",
                    f"no whole response head within {HEAD_DEADLINE_FACTOR} x"
                    f" {self.timeout} s",
                ) from None

        def close(self) -> None:
            self._disarm()
            super().close()  # type: ignore[misc]

    class _HTTP(_Deadline, HTTPConnection):
        pass

    class _HTTPS(_Deadline, HTTPSConnection):
        pass

    class _HTTPPool(urllib3.HTTPConnectionPool):  # type: ignore[misc]
        ConnectionCls = _HTTP

    class _HTTPSPool(urllib3.HTTPSConnectionPool):  # type: ignore[misc]
        ConnectionCls = _HTTPS

    return {"http": _HTTPPool, "https": _HTTPSPool}


def _open(
    target: _Target, method: str, headers: cabc.Mapping[str, str], timeout: float
) -> BaseHTTPResponse:
    u3 = _import_urllib3()
    exc = u3.exceptions
    pool_kwargs: dict[str, t.Any] = {}
    if target.scheme == "https":
        # Connect to the vetted address, but send SNI and check the
        # certificate for the name.
        pool_kwargs["server_hostname"] = target.host
    pool = _pool().connection_from_host(
        target.address, target.port, target.scheme, pool_kwargs=pool_kwargs
    )
    request_headers = {**headers, "Host": target.host_header}
    try:
        return pool.urlopen(
            method,
            target.target,
            headers=request_headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
            timeout=u3.Timeout(connect=timeout, read=timeout),
        )
    except exc.NewConnectionError as e:
        # Before TimeoutError: urllib3 makes it a ConnectTimeoutError subclass.
        raise _fail(f"cannot connect to {target.url!r}: {e}") from None
    except exc.TimeoutError as e:
        _log(logging.ERROR, f"Upstream timeout: {target.url!r}: {e}")
        raise UpstreamTimeout(f"{target.url!r}: {e}") from None
    except (exc.HTTPError, OSError) as e:
        # urllib3 may raise after http.client read the head (two different
        # Content-Length values): that response, and its socket, live on in
        # the traceback's frames. Clear them so the socket closes now, not
        # when the garbage collector finds the cycle.
        traceback.clear_frames(e.__traceback__)
        raise _fail(f"{target.url!r}: {type(e).__name__}: {e}") from None


def _follow(
    method: str,
    url: str,
    request_headers: dict[str, str],
    allowed_hosts: cabc.Collection[str] | None,
    timeout: float,
    max_redirects: int,
    allowed_ports: cabc.Collection[int] | None,
) -> tuple[BaseHTTPResponse, str]:
    """Send the request, following redirects (each hop vetted); the final
    answer, its body unread, and its URL. Credentials in ``request_headers``
    go to the first origin only."""
    request_headers = dict(request_headers)
    current = url
    origin = None
    for _ in range(max_redirects + 1):
        target = _vet(current, allowed_hosts, allowed_ports, timeout)
        hop_origin = (target.scheme, target.host, target.port)
        if origin is not None and hop_origin != origin:
            # Credentials the app set are for the first origin only (as
            # browsers and requests do): never hand them to another.
            for key in [k for k in request_headers if k.lower() in _CREDENTIALS]:
                del request_headers[key]
        origin = hop_origin
        response = _open(target, method, request_headers, timeout)
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            return response, current
        _close(response, reuse=False)
        current = urljoin(current, location)
    raise _fail(f"{url!r}: more than {max_redirects} redirects.")


def _close(response: BaseHTTPResponse, *, reuse: bool) -> None:
    if not reuse:
        # Unread bytes would poison a reused connection: drop it.
        response.close()
    else:
        # Nothing is left to read (a HEAD, a body read to its end); reading
        # that nothing lets http.client close a connection the server closed
        # (a HEAD answered 404 and "Connection: close"), rather than the
        # socket waiting in the pool for the garbage collector.
        response.drain_conn()
    response.release_conn()


class HTTPFile(DownloadFile):
    """A file at a remote ``http``/``https`` URL, streamed as it arrives.

    The request is sent when the wrapper is made (redirects followed here,
    each hop checked); the status and headers of the answer tell the size
    (``Content-Length``), ``modified_time``, a strong ``etag``,
    ``mimetype`` and ``encoding``. :meth:`chunks` relays the body exactly as
    sent (a gzip body stays gzip) and :meth:`close` releases the connection,
    also when the body was not read to its end. When the server takes byte
    ranges (``Accept-Ranges: bytes``, a strong ETag, a known size) the file
    is :attr:`~flask_download.DownloadFile.sliceable`: ``chunks(start=,
    stop=)`` asks for just those bytes (archives use it).

    :param url: the URL to fetch. It is checked against SSRF (see the
        module) whatever its origin.
    :param name: the client-side name; defaults to the URL path's last part.
    :param headers: request headers to send, as given (the view passes the
        client's ``Range`` and conditional headers, and the app's own);
        ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` are dropped
        when a redirect leads to another origin. Never put the client's
        credentials here.
    :param method: ``"GET"`` or ``"HEAD"``.
    :param allowed_hosts: host names that may be fetched (a string is one
        host; ``".example.com"`` also allows subdomains); ``None`` allows
        any host with public addresses. A host listed exactly may also have
        private addresses. Default: ``DOWNLOAD_HTTP_ALLOWED_HOSTS`` in an
        application, else ``None``.
    :param timeout: connect and read timeout in seconds. Default:
        ``DOWNLOAD_HTTP_TIMEOUT`` in an application, else
        :data:`~flask_download.http.DEFAULT_TIMEOUT`.
    :param max_redirects: most redirects followed.
    :param allowed_ports: the ports that may be connected to, the URL's and
        every redirect's (``{80, 443}``, say); ``None`` allows any port.
    :raises FileNotFound: the server answered 404 or 410.
    :raises DisallowedURL: the URL, or a redirect, may not be fetched (403).
    :raises UpstreamError: connection refused, a 5xx or other error, an
        answer that is no file (see the module) (502).
    :raises UpstreamTimeout: the server did not answer in time (504).
    :raises ImportError: ``urllib3`` is not installed (extra ``http``).
    """

    seekable = False

    #: The status of the final answer (200, 206, 304, 412, 416...).
    status: int
    #: The relayed headers of the answer (see :data:`RELAYED_RESPONSE_HEADERS`).
    response_headers: Headers
    #: The URL the answer came from, after redirects.
    final_url: str
    #: The directive names (lowercase) of the upstream's ``Cache-Control``:
    #: :class:`HTTPDownloadView` keeps its ``private`` and ``no-store``.
    cache_directives: frozenset[str] = frozenset()

    def __init__(
        self,
        url: str,
        name: str | None = None,
        *,
        headers: cabc.Mapping[str, str] | None = None,
        method: str = "GET",
        allowed_hosts: cabc.Collection[str] | None | t.Literal[False] = False,
        timeout: float | None = None,
        max_redirects: int = MAX_REDIRECTS,
        allowed_ports: cabc.Collection[int] | None = None,
    ) -> None:
        ports = check_allowed_ports(allowed_ports, "allowed_ports")
        if allowed_hosts and any(":" in host or "/" in host for host in allowed_hosts):
            check_allowed_hosts(allowed_hosts, "allowed_hosts")  # raises
        if allowed_hosts is False or timeout is None:
            settings = get_settings() if has_app_context() else None
            if allowed_hosts is False:
                allowed_hosts = settings.http_allowed_hosts if settings else None
            if timeout is None:
                timeout = settings.http_timeout if settings else DEFAULT_TIMEOUT
        if method not in ("GET", "HEAD"):
            raise ValueError(f"HTTPFile fetches with GET or HEAD, not {method!r}.")
        # A missing urllib3 is named (extra "http") before any DNS lookup, so
        # it is not hidden behind an unresolvable host's 502.
        _import_urllib3()
        self.url = url
        self._method = method
        self._done = False
        self._response: BaseHTTPResponse | None = None
        if isinstance(allowed_hosts, str):
            allowed_hosts = (allowed_hosts,)  # one host, not its letters
        # What _request_again sends once the connection was let go.
        self._again = (url, dict(headers or {}), allowed_hosts, timeout, max_redirects)
        self._allowed_ports = ports
        # The caller's headers are sent as given (the view puts only the
        # client's range and conditional headers there, plus what the app
        # chose); Host is always the URL's.
        request_headers = {"User-Agent": _USER_AGENT}
        for key, value in (headers or {}).items():
            if key.lower() == "user-agent":
                # The caller's, in whatever case: never two User-Agents.
                request_headers.pop("User-Agent", None)
            if key.lower() != "host":
                request_headers[key] = value
        self._asked_range = any(k.lower() == "range" for k in request_headers)
        self._asked_condition = any(k.lower() in _CONDITIONS for k in request_headers)
        fetch = (url, request_headers, allowed_hosts, timeout, max_redirects, ports)
        response, current = _follow(method, *fetch)
        if method == "HEAD" and response.status in _HEAD_REFUSED:
            # A server that does not do HEAD (405, 501), or a URL signed for
            # GET alone (S3 and GCS answer 403): the HEAD answers as the GET
            # would (DESIGN §1), from the GET's head; its body is never read
            # (the connection is dropped).
            _close(response, reuse=False)
            response, current = _follow("GET", *fetch)
            self._method = "GET"
        self._response = response
        self.final_url = current
        try:
            self._read_head(response, name)
        except BaseException:
            # Never leave the upstream socket to the garbage collector.
            self.close()
            raise
        if self.status in (304, 412, 416) or method == "HEAD":
            # No body to relay: the connection can go back to the pool.
            self.close()

    def _read_head(self, response: BaseHTTPResponse, name: str | None) -> None:
        current = self.final_url
        status = self.status = response.status
        if status in (404, 410):
            raise FileNotFound(f"{current!r} answered {status}.")
        if status >= 400 and status not in (412, 416):
            raise _fail(f"{current!r} answered {status}.")
        if not self._relayable_status(status):
            # A 1xx as the final answer (a 101 would tell the client, or a
            # proxy in front, that the connection switched protocols), a
            # 204 or 205, a redirect that is not followed, or a 304, 412 or
            # 416 nobody asked for: no file to relay.
            raise _fail(f"{current!r} answered {status}, which is not a file.")
        upstream = response.headers
        getlist = getattr(upstream, "getlist", lambda name: ())
        # RFC 9110 §7.6.1: the headers the upstream's Connection names are
        # for this hop only (the framing ones still say what the bytes are).
        hop_only = cache_directives(getlist("Connection"))
        relayed = Headers()
        for header in RELAYED_RESPONSE_HEADERS:
            if header.lower() in hop_only and header not in _FRAMING:
                continue
            for value in getlist(header):
                if _relayable(header, value):
                    relayed.add(header, value)
                elif header in _FRAMING:
                    # What the bytes are cannot be told: relaying them under
                    # another length or coding would corrupt the download.
                    raise _fail(f"{current!r} sent a malformed {header}.")
        for header in _SINGLE_VALIDATORS:
            # RFC 9110 §8.8: one ETag, one Last-Modified. Two that differ
            # name no version (a cache would pick either): none is relayed.
            values = relayed.getlist(header)
            if len(values) > 1:
                del relayed[header]
                if len(set(values)) == 1:
                    relayed[header] = values[0]
        _check_framing(current, status, upstream, relayed, self._asked_range)
        self.response_headers = relayed
        self.cache_directives = cache_directives(getlist("Cache-Control"))
        if name is None:
            name = posixpath.basename(unquote(urlsplit(current).path)) or None
        self.name = name
        self.size = _content_size(status, relayed)
        self.modified_time = parse_http_date(relayed.get("Last-Modified"))
        etag = relayed.get("ETag")
        if etag and not etag.startswith("W/") and len(etag) > 1 and etag[0] == '"':
            self.etag = etag.strip('"')
        # RFC 9110 §8.3: an invalid media type is as good as none (guessed).
        mimetype = relayed.get("Content-Type")
        self.mimetype = mimetype if valid_media_type(mimetype) else None
        self.encoding = relayed.get("Content-Encoding") or None
        # RFC 9110 §14.3: the server takes byte ranges of this file, and the
        # strong ETag lets a later range be asked on the same version only.
        accepted = relayed.get("Accept-Ranges", "").lower()
        self.sliceable = (
            status == 200
            and self.etag is not None
            and self.size is not None
            and "bytes" in (unit.strip() for unit in accepted.split(","))
        )

    def _relayable_status(self, status: int) -> bool:
        if status in (304, 412):
            return self._asked_condition
        if status == 416:
            return self._asked_range
        return status in _FILE_STATUSES

    def chunks(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        start: int = 0,
        stop: int | None = None,
    ) -> cabc.Iterator[bytes]:
        """Relay the body as it arrives, never decompressed.

        ``start`` and ``stop`` need a :attr:`sliceable` file: the bytes
        ``[start, stop)`` are asked for again with ``Range`` and ``If-Match``
        (a server that sends the whole file instead has the bytes before
        ``start`` dropped, and the file is no longer :attr:`sliceable`). A
        later read of the whole file asks for it again.

        :raises ValueError: ``start`` or ``stop`` on a file that is not
            sliceable (the view relays ranges upstream instead).
        :raises FileNotFound: the file changed since its headers were read.
        :raises UpstreamError: the answer is another range, or has fewer
            bytes than the range.
        """
        if not (start or stop is not None):
            response = self._response
            if response is None and self._released:
                response = self._response = self._request_again()[0]
            if response is not None:
                yield from self._relay(response, chunk_size)
            return
        if not self.sliceable:
            raise ValueError("HTTPFile relays ranges upstream; it cannot slice.")
        size = t.cast(int, self.size)
        stop = size if stop is None else min(stop, size)
        if start >= stop:
            return
        self.close()  # the whole answer, if still held
        # Whatever answers the range, the first answer is gone: a later read
        # of the whole file asks for it again.
        self._released = True
        response, status = self._request_again((start, stop))
        self._response = response
        if status != 206:
            # RFC 9110 §14.2: a server may send the whole file (200) instead.
            # It would do so for every later range too, each read from the
            # file's start: no more ranges are asked of it.
            self.sliceable = False
        skip = 0 if status == 206 else start
        sent = 0
        try:
            for data in self._relay(response, chunk_size, skip, stop - start):
                sent += len(data)
                yield data
            if sent != stop - start:
                # A body short of its Content-Range (a chunked one, or one
                # cut at a Content-Length that did not count the range).
                raise _fail(
                    f"{self.final_url!r} sent {sent} bytes of the range"
                    f" {start}-{stop - 1} ({stop - start} bytes)."
                )
        finally:
            if self._response is response:
                # Not left for a later chunks(), which would take the rest
                # of a range for the whole file; back to the pool if read.
                self.close()

    def _relay(
        self,
        response: BaseHTTPResponse,
        chunk_size: int,
        skip: int = 0,
        limit: int | None = None,
    ) -> cabc.Iterator[bytes]:
        # The body as it arrives; the first ``skip`` bytes dropped, at most
        # ``limit`` bytes yielded.
        urllib3 = _import_urllib3()
        # read1: what has arrived (up to chunk_size), at once; read() would
        # wait for a whole chunk, so a slow upstream relayed nothing for
        # minutes while each socket read stayed within the timeout.
        read = getattr(response, "read1", None) or response.read
        timeout = self._again[3]
        # Time spent waiting for the upstream only: a slow client (the
        # server writing each chunk) is not the upstream's doing.
        waited = 0.0
        received = 0
        try:
            while limit is None or limit > 0:
                started = time.monotonic()
                data = read(chunk_size, decode_content=False)
                waited += time.monotonic() - started
                if not data:
                    break
                received += len(data)
                if waited >= timeout:
                    # An upstream that sends a trickle (a byte now and then,
                    # each within the timeout) would hold the worker for
                    # ever: at least MIN_RATE bytes a second of waiting,
                    # over each timeout's span.
                    if received < MIN_RATE * waited:
                        raise _fail(
                            f"{self.final_url!r} sent {received} bytes in"
                            f" {waited:.0f} s (less than {MIN_RATE} bytes"
                            " a second): cut off."
                        )
                    waited, received = 0.0, 0
                if skip:
                    dropped = min(skip, len(data))
                    data, skip = data[dropped:], skip - dropped
                    if not data:
                        continue
                if limit is not None:
                    data = data[:limit]
                    limit -= len(data)
                yield data
        except urllib3.exceptions.HTTPError as e:
            # The headers are sent: all that can be done is to cut the body.
            raise _fail(f"{self.final_url!r} broke off: {e}") from None
        # Read to its end, the connection can serve another request; not a
        # body cut at ``limit`` (a server that sent more than the range).
        self._done = limit is None or getattr(response, "length_remaining", 1) == 0

    def close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            _close(response, reuse=self._done or self._method == "HEAD")

    _released = False

    def _release(self) -> None:
        # Let the connection go now that the headers are known (an archive
        # of many members holds one at a time): chunks() asks again.
        self._released = True
        self.close()

    def _request_again(
        self, span: tuple[int, int] | None = None
    ) -> tuple[BaseHTTPResponse, int]:
        """The GET again, for a wrapper whose connection was let go.

        ``If-Match`` on the ETag (else ``If-Unmodified-Since`` on the
        ``Last-Modified``) makes a changed file answer 412, not other bytes;
        the answer must have the first one's status, size and validators.

        :raises FileNotFound: the file is gone or changed.
        """
        url, headers, allowed_hosts, timeout, max_redirects = self._again
        replaced = {"if-match", "if-unmodified-since"}
        if span is not None:
            replaced.add("range")
        headers = {k: v for k, v in headers.items() if k.lower() not in replaced}
        if self.etag is not None:
            headers["If-Match"] = f'"{self.etag}"'
        elif "Last-Modified" in self.response_headers:
            headers["If-Unmodified-Since"] = self.response_headers["Last-Modified"]
        if span is not None:
            headers["Range"] = f"bytes={span[0]}-{span[1] - 1}"
        again = HTTPFile(
            url,
            self.name,
            headers=headers,
            allowed_hosts=allowed_hosts,
            timeout=timeout,
            max_redirects=max_redirects,
            allowed_ports=self._allowed_ports,
        )
        first = (self.size, self.etag, self.modified_time)
        # A range is answered with exactly it, or with the whole file.
        statuses = (self.status,) if span is None else (200, 206)
        if (
            again._response is None
            or again.status not in statuses
            or first != (again.size, again.etag, again.modified_time)
        ):
            again.close()
            raise FileNotFound(f"{self.url!r} changed since its headers were read.")
        if span is not None and again.status == 206:
            asked = f"bytes {span[0]}-{span[1] - 1}/{self.size}"
            # Compared as numbers: "bytes 0010-0019/100" is that range too.
            # (The answer passed _check_framing: one valid Content-Range.)
            answered = again.response_headers.get("Content-Range", "")
            match = _CONTENT_RANGE.fullmatch(answered)
            if match is None or (int(match[1]), int(match[2]) + 1) != span:
                again.close()
                raise _fail(f"{self.url!r} answered another range than {asked!r}.")
        response, again._response = again._response, None
        self._method = "GET"
        self._done = False
        return response, again.status

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url!r}>"


# RFC 9110 §8.6: Content-Length = 1*DIGIT; at most 19 digits keeps it in a
# signed 64-bit integer (and int() away from 5,000-digit strings).
_LENGTH = re.compile(r"[0-9]{1,19}")
# RFC 9110 §14.4: "bytes first-last/complete" or "bytes */complete" (416).
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/([0-9]{1,19})")
# RFC 9110 §8.4: Content-Encoding = #content-coding (a list of tokens).
_ENCODING_LIST = re.compile(rf"{TOKEN}(?:[ \t]*,[ \t]*{TOKEN})*")


def _check_framing(
    url: str,
    status: int,
    upstream: t.Any,
    relayed: Headers,
    asked_range: bool,
) -> None:
    """Refuse an answer whose framing or range cannot be relayed faithfully.

    The body is relayed as urllib3 reads it (de-chunked only when the one
    ``Transfer-Encoding`` is ``chunked``), so the client's framing must
    come from one valid ``Content-Length`` or from none:
    ``Transfer-Encoding`` with ``Content-Length`` is a smuggling attempt
    (RFC 9112 §6.3), and two lengths or a malformed one cannot be trusted.

    :raises UpstreamError: answered 502.
    """
    lengths = relayed.getlist("Content-Length")
    if "Transfer-Encoding" in upstream:
        codings = upstream.getlist("Transfer-Encoding")
        # http.client de-chunks a body whose first Transfer-Encoding is
        # exactly "chunked" and reads any other until the connection closes:
        # "gzip, chunked" would be relayed with its chunk framing and coding
        # as if they were the file's bytes.
        if len(codings) != 1 or codings[0].lower() != "chunked":
            shown = [coding[:64] for coding in codings[:4]]
            raise _fail(f"{url!r} sent the Transfer-Encoding {shown!r}.")
        if lengths:
            raise _fail(f"{url!r} sent both Transfer-Encoding and Content-Length.")
    elif len(lengths) > 1 or (lengths and not _LENGTH.fullmatch(lengths[0])):
        shown = [length[:64] for length in lengths[:4]]
        raise _fail(f"{url!r} sent an invalid Content-Length {shown!r}.")
    ranges = relayed.getlist("Content-Range")
    if (status == 206 or ranges) and not asked_range:
        # Nobody asked for part of the file: a 206 here would be taken for
        # the whole file (and skip the view's checks on the type).
        raise _fail(f"{url!r} answered a range that was not asked for.")
    if len(ranges) > 1:
        raise _fail(f"{url!r} sent {len(ranges)} Content-Range headers.")
    if ranges:
        value = ranges[0]
        match = None
        if status == 416:
            valid = _UNSATISFIED_RANGE.fullmatch(value) is not None
        else:
            match = _CONTENT_RANGE.fullmatch(value) if status == 206 else None
            valid = match is not None and _range_is_sane(*match.groups())
        if not valid:
            raise _fail(f"{url!r} sent an invalid Content-Range {value[:64]!r}.")
        # RFC 9110 §14.4: the body of a single part is the range; a length
        # that says otherwise leaves its bytes unknown.
        if (
            match is not None
            and lengths
            and int(lengths[0]) != int(match[2]) - int(match[1]) + 1
        ):
            raise _fail(
                f"{url!r} sent a Content-Length {lengths[0]!r} that is not"
                f" the length of its Content-Range {value[:64]!r}."
            )
    elif status == 206:
        content_type = relayed.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/byteranges"):
            raise _fail(f"{url!r} answered 206 without a Content-Range.")
    encodings = relayed.getlist("Content-Encoding")
    if encodings and not all(_ENCODING_LIST.fullmatch(e) for e in encodings):
        shown = [encoding[:64] for encoding in encodings[:4]]
        raise _fail(f"{url!r} sent an invalid Content-Encoding {shown!r}.")


def _range_is_sane(first: str, last: str, complete: str) -> bool:
    if int(first) > int(last):
        return False
    return complete == "*" or int(last) < int(complete)


def _content_size(status: int, headers: Headers) -> int | None:
    # The headers passed _check_framing: lengths are ASCII digits.
    if status == 206:
        # RFC 9110 §14.4: "bytes first-last/complete-length".
        complete = headers.get("Content-Range", "").rpartition("/")[2]
        return int(complete) if complete.isdigit() else None
    length = headers.get("Content-Length")
    return int(length) if length is not None else None


class HTTPDownloadView(DownloadView):
    """Stream a remote URL through the application.

    The client's ``Range``, ``If-Range``, ``If-Match``, ``If-None-Match``,
    ``If-Modified-Since``, ``If-Unmodified-Since`` and ``Accept-Encoding``
    go upstream and the upstream answer is relayed: 200, 206 (single or
    multipart), 304, 412 and 416, with ``Content-Type``, ``Content-Length``,
    ``Content-Range``, ``Content-Encoding``, ``Accept-Ranges``, ``ETag``,
    ``Last-Modified`` and ``Vary`` copied; ``Content-Disposition``,
    ``Cache-Control`` and ``X-Content-Type-Options`` are the view's, but an
    upstream ``Cache-Control: private`` or ``no-store`` is kept (and the
    view's ``public`` dropped): the upstream knows whether the file is one
    user's. A ``HEAD`` goes upstream as ``HEAD``; answered 403, 405 or 501
    (a URL signed for ``GET`` only, a server without ``HEAD``) it is asked
    again as a ``GET`` whose body is never read. Upstream
    404/410 -> 404, other errors, answers that are no file (see the module)
    and refused connections -> 502, timeouts -> 504, refused URLs -> 403,
    each with a log line.
    """

    #: The URL to fetch (or override :meth:`get_url`).
    url: str | None = None
    #: Hosts that may be fetched; ``None`` uses ``DOWNLOAD_HTTP_ALLOWED_HOSTS``
    #: (whose ``None`` allows any host with public addresses).
    allowed_hosts: cabc.Collection[str] | None = None
    #: Connect and read timeout in seconds; ``None`` uses ``DOWNLOAD_HTTP_TIMEOUT``.
    timeout: float | None = None
    #: Most redirects followed (each one checked like the URL).
    max_redirects: int = MAX_REDIRECTS
    #: Ports that may be connected to, the URL's and every redirect's
    #: (``{80, 443}``, say); ``None`` allows any port. Worth setting when the
    #: URL comes from the client: ``allowed_hosts`` entries never name ports.
    allowed_ports: cabc.Collection[int] | None = None
    #: Headers the application sends upstream with every request (an
    #: ``Authorization`` for a private upstream, say), on top of the client's
    #: forwarded ones; see :meth:`get_request_headers`.
    request_headers: cabc.Mapping[str, str] | None = None

    @classmethod
    def as_view(
        cls, name: str, *class_args: t.Any, **class_kwargs: t.Any
    ) -> RouteCallable:
        """Make a view function, checking :attr:`allowed_hosts` once.

        :raises TypeError: a keyword names no attribute of the class.
        :raises ConfigurationError: an ``allowed_hosts`` entry with a port or
            a scheme (they are never compared, so it would never match), an
            ``allowed_ports`` entry that is no port number.
        :raises ImportError: ``urllib3`` is not installed (extra ``http``).
        """
        view = super().as_view(name, *class_args, **class_kwargs)
        check_allowed_hosts(
            class_kwargs.get("allowed_hosts", cls.allowed_hosts),
            f"{cls.__name__}.allowed_hosts",
        )
        check_allowed_ports(
            class_kwargs.get("allowed_ports", cls.allowed_ports),
            f"{cls.__name__}.allowed_ports",
        )
        _import_urllib3()  # now, not with a 500 on the first request
        return view

    def get_url(self) -> str:
        """The URL to fetch: :attr:`url` by default.

        :raises ConfigurationError: no URL.
        """
        if not self.url:
            raise ConfigurationError(
                f"{type(self).__name__} needs a 'url' attribute or a 'get_url' method."
            )
        return self.url

    def get_allowed_hosts(self) -> cabc.Collection[str] | None:
        """:attr:`allowed_hosts`, else ``DOWNLOAD_HTTP_ALLOWED_HOSTS``."""
        if self.allowed_hosts is not None:
            if isinstance(self.allowed_hosts, str):
                return (self.allowed_hosts,)
            return self.allowed_hosts
        return self._settings().http_allowed_hosts

    def get_timeout(self) -> float:
        """:attr:`timeout`, else ``DOWNLOAD_HTTP_TIMEOUT``."""
        if self.timeout is not None:
            return float(self.timeout)
        return self._settings().http_timeout

    def get_request_headers(self) -> dict[str, str]:
        """The headers sent upstream.

        The client's :data:`~flask_download.http.FORWARDED_REQUEST_HEADERS`
        (never its ``Cookie`` or ``Authorization``), then
        :attr:`request_headers`, which win.
        ``Range`` and ``If-Range`` go upstream with ``GET`` only: RFC 9110
        §14.2 defines range handling for ``GET`` alone, so a ``HEAD``
        mirrors the full 200. Nor do ranges whose answer could be larger
        than the file, which the client gets whole (200): more than
        ``max_ranges``, malformed ones (the other views ignore them too), or
        several that overlap or touch, or a suffix among several (whether
        it overlaps depends on the size, which only the upstream knows; the
        other views merge such ranges, but the upstream may not); see
        :func:`~flask_download.ranges.forwardable_range`. The view's
        :attr:`request_headers` replace the client's of the same name, in
        any case. Override it to add headers computed per request, such as
        a token for a private upstream::

            def get_request_headers(self):
                return {**super().get_request_headers(),
                        "Authorization": f"Bearer {get_token()}"}

        Credentials (``Authorization``, ``Cookie``, ``Proxy-Authorization``)
        are dropped when a redirect leads to another scheme, host or port.
        """
        ranged = request.method == "GET"
        if ranged and "Range" in request.headers:
            # Ranges whose answer may be larger than the file (too many,
            # malformed, overlapping or touching) never go upstream: the
            # upstream's answer to them (a multipart body many times the
            # file) would be relayed as it is.
            ranged = forwardable_range(
                request.headers["Range"], self._setting("max_ranges")
            )
        # The view's headers win whatever their case: a client header the
        # view also sets ("range", "accept-encoding") is not sent beside it.
        own = {name.lower() for name in self.request_headers or ()}
        headers = {
            name: value
            for name in FORWARDED_REQUEST_HEADERS
            if (ranged or name not in _RANGE_HEADERS)
            and name.lower() not in own
            and (value := request.headers.get(name)) is not None
        }
        if self.request_headers:
            headers.update(self.request_headers)
        return headers

    def get_file(self) -> DownloadFile:
        return HTTPFile(
            self.get_url(),
            headers=self.get_request_headers(),
            method="HEAD" if request.method == "HEAD" else "GET",
            allowed_hosts=self.get_allowed_hosts(),
            timeout=self.get_timeout(),
            max_redirects=self.max_redirects,
            allowed_ports=self.allowed_ports,
        )

    def file_response(self, file: DownloadFile) -> Response | None:
        """Relay an upstream 416 (with its ``Content-Range``); upstream
        decided the range."""
        if not isinstance(file, HTTPFile) or file.status != 416:
            return super().file_response(file)
        response = Response(b"", status=416)
        # An empty body is no text/html (the engine's own 416 has no type).
        del response.headers["Content-Type"]
        if "Content-Range" in file.response_headers:
            response.headers["Content-Range"] = file.response_headers["Content-Range"]
        return response

    def evaluate_preconditions(self, file: DownloadFile) -> int | None:
        """Upstream's decision: its 304 or 412, else ``None`` (the request's
        conditional headers went upstream and are not evaluated again)."""
        if not isinstance(file, HTTPFile):
            return super().evaluate_preconditions(file)
        return file.status if file.status in (304, 412) else None

    def _validators(self, file: DownloadFile) -> dict[str, str]:
        # A relayed 304 carries upstream's validators (a weak ETag included)
        # and Vary (RFC 9110 §15.4.5).
        headers = super()._validators(file)
        if isinstance(file, HTTPFile):
            for name in ("ETag", "Last-Modified"):
                if name in file.response_headers:
                    headers[name] = file.response_headers[name]
            headers["Vary"] = _vary(file.response_headers)
            cache_control = no_less_private(
                headers.get("Cache-Control"), file.cache_directives
            )
            if cache_control is not None:
                headers["Cache-Control"] = cache_control
        return headers

    def download_response(self, *args: t.Any, **kwargs: t.Any) -> DownloadResponse:
        """A :class:`DownloadResponse` with the upstream status and headers."""
        file = kwargs.get("file") or self.file
        if not isinstance(file, HTTPFile):
            return super().download_response(*args, **kwargs)
        kwargs.setdefault("ranges", None)
        kwargs.setdefault("status", file.status)
        response = super().download_response(*args, **kwargs)
        h = response.headers
        upstream = file.response_headers
        # The bytes are relayed as they are: their encoding, length, range
        # and validators are upstream's, not guessed. The type is the view's
        # when it sets one (an upstream cannot turn an image view into an
        # HTML page), except for a multipart 206 body, whose framing it names
        # (on any other status that type is only the upstream's say-so).
        upstream_type = upstream.get("Content-Type")
        if upstream_type is not None and valid_media_type(upstream_type):
            multipart = file.status == 206 and upstream_type.lower().startswith(
                "multipart/byteranges"
            )
            if multipart or not kwargs.get("mimetype", self.get_mimetype()):
                h["Content-Type"] = upstream_type
        for name in RELAYED_RESPONSE_HEADERS:
            if name in ("Content-Type", "Vary"):
                continue
            del h[name]
            for value in upstream.getlist(name):
                h.add(name, value)
        h["Vary"] = _vary(upstream)
        cache_control = no_less_private(h.get("Cache-Control"), file.cache_directives)
        if cache_control is not None:
            h["Cache-Control"] = cache_control
        set_content_security_policy(
            h,
            kwargs.get("attachment", self.attachment),
            kwargs.get("content_security_policy", self.content_security_policy),
        )
        return response


# RFC 9110 §8.8.3 entity-tag; §14.3 Accept-Ranges and §12.5.5 Vary, lists
# of tokens (or "*").
_ENTITY_TAG = re.compile(f'(?:W/)?"{ETAGC}*"')
_TOKEN_LIST = re.compile(f"{TOKEN}(?:[ \t]*,[ \t]*{TOKEN})*|\\*")
# What no header value may hold (RFC 9110 §5.5): controls but HTAB, DEL.
_FIELD_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


# Validators a response has at most one of.
_SINGLE_VALIDATORS = ("ETag", "Last-Modified")
# Headers that say what the body's bytes are: refused (502) when malformed,
# where other headers are only left out.
_FRAMING = frozenset(("Content-Length", "Content-Range", "Content-Encoding"))


def _relayable(header: str, value: str) -> bool:
    """Whether an upstream header value may be relayed: well formed, and
    nothing a server would refuse (gunicorn answers 500 to a NUL)."""
    value = value.strip(" \t")
    if _FIELD_CONTROLS.search(value):
        return False
    if header == "ETag":
        return _ENTITY_TAG.fullmatch(value) is not None
    if header == "Last-Modified":
        return parse_http_date(value) is not None
    if header in ("Accept-Ranges", "Vary", "Content-Encoding"):
        return _TOKEN_LIST.fullmatch(value) is not None
    return True


def _vary(upstream: Headers) -> str:
    # RFC 9110 §12.5.5: Accept-Encoding goes upstream, so the answer varies
    # with it whatever the upstream says (a gzip body must not be cached for
    # a client that cannot read it).
    values = [v.strip() for value in upstream.getlist("Vary") for v in value.split(",")]
    values = [v for v in values if v]
    if "*" in values:
        return "*"
    if not any(v.lower() == "accept-encoding" for v in values):
        values.append("Accept-Encoding")
    return ", ".join(values)
