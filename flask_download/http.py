"""Remote files: stream a URL through the application, safely.

:class:`HTTPFile` fetches a URL with a pooled ``urllib3`` client (extra
``Flask-Download[http]``) and relays the body as it arrives on the wire:
never decompressed, in chunks. :class:`HTTPDownloadView` passes the
client's ``Range`` and conditional headers upstream and relays the answer
(200, 206, 304, 412, 416).

Server-side request forgery is refused: only ``http`` and ``https`` URLs
without user info; the host is resolved here and every address must be
public (not private, loopback, link-local, shared, reserved, multicast or
unspecified, IPv4 embedded in IPv6 included) unless that exact host is in
``allowed_hosts``; the connection goes to the vetted address (no second DNS
lookup to rebind); redirects are followed here, at most
:data:`MAX_REDIRECTS`, each hop checked again, and never shown to the client.
"""

from __future__ import annotations

import collections.abc as cabc
import ipaddress
import logging
import posixpath
import socket
import threading
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
from .conditional import parse_http_date
from .exceptions import ConfigurationError
from .exceptions import DisallowedURL
from .exceptions import FileNotFound
from .exceptions import UpstreamError
from .exceptions import UpstreamTimeout
from .files import DEFAULT_CHUNK_SIZE
from .files import DownloadFile
from .response import DownloadResponse
from .settings import DEFAULTS
from .settings import get_settings
from .views import DownloadView

if t.TYPE_CHECKING:
    import urllib3
    from urllib3.response import BaseHTTPResponse

_logger = logging.getLogger("flask_download")

#: Most redirects followed for one download.
MAX_REDIRECTS = 5
#: Timeout of :class:`HTTPFile` used outside an application, in seconds.
DEFAULT_TIMEOUT: float = DEFAULTS["DOWNLOAD_HTTP_TIMEOUT"]

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

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally reachable (safe to fetch from).

    Private, loopback, link-local, shared (CGNAT), reserved, unspecified and
    multicast addresses are not; an IPv6 address embedding an IPv4 one
    (mapped, 6to4, Teredo, NAT64) is judged by that IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


class _Target(t.NamedTuple):
    url: str
    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query sent in the request line
    host_header: str


def _host_allowed(host: str, allowed_hosts: cabc.Collection[str]) -> bool:
    for allowed in allowed_hosts:
        allowed = allowed.lower().rstrip(".")
        if host == allowed:
            return True
        # ".example.com" allows example.com and its subdomains (as Django's
        # ALLOWED_HOSTS does).
        if allowed.startswith(".") and (host == allowed[1:] or host.endswith(allowed)):
            return True
    return False


def _vet(url: str, allowed_hosts: cabc.Collection[str] | None) -> _Target:
    """Check a URL and resolve its host to a vetted address.

    :raises DisallowedURL: the URL may not be fetched.
    :raises UpstreamError: the host name does not resolve.
    """
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
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse(f"{url!r} has no host.")
    if port is None:
        port = 443 if scheme == "https" else 80
    listed = allowed_hosts is not None and host in {
        h.lower().rstrip(".") for h in allowed_hosts
    }
    if allowed_hosts is not None and not (listed or _host_allowed(host, allowed_hosts)):
        raise _refuse(f"{host!r} is not in the allowed hosts.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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


# -- the pooled client ----------------------------------------------------------

_pool_lock = threading.Lock()
_pool_manager: urllib3.PoolManager | None = None


def _import_urllib3() -> t.Any:
    return require("urllib3", "http", "Remote files")


def _pool() -> urllib3.PoolManager:
    global _pool_manager
    if _pool_manager is None:
        urllib3 = _import_urllib3()
        with _pool_lock:
            if _pool_manager is None:
                _pool_manager = urllib3.PoolManager(num_pools=32, maxsize=8)
    return _pool_manager


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
        raise _fail(f"{target.url!r}: {type(e).__name__}: {e}") from None


def _close(response: BaseHTTPResponse, *, reuse: bool) -> None:
    if not reuse:
        # Unread bytes would poison a reused connection: drop it.
        response.close()
    response.release_conn()


class HTTPFile(DownloadFile):
    """A file at a remote ``http``/``https`` URL, streamed as it arrives.

    The request is sent when the wrapper is made (redirects followed here,
    each hop checked); the status and headers of the answer tell the size
    (``Content-Length``), ``modified_time``, a strong ``etag``,
    ``mimetype`` and ``encoding``. :meth:`chunks` relays the body exactly as
    sent (a gzip body stays gzip) and :meth:`close` releases the connection,
    also when the body was not read to its end.

    :param url: the URL to fetch. It is checked against SSRF (see the
        module) whatever its origin.
    :param name: the client-side name; defaults to the URL path's last part.
    :param headers: request headers to send (the view passes the client's
        ``Range`` and conditional headers).
    :param method: ``"GET"`` or ``"HEAD"``.
    :param allowed_hosts: host names that may be fetched; ``None`` allows
        any host with public addresses. A host listed exactly may also have
        private addresses. Default: ``DOWNLOAD_HTTP_ALLOWED_HOSTS`` in an
        application, else ``None``.
    :param timeout: connect and read timeout in seconds. Default:
        ``DOWNLOAD_HTTP_TIMEOUT`` in an application, else
        :data:`DEFAULT_TIMEOUT`.
    :param max_redirects: most redirects followed.
    :raises FileNotFound: the server answered 404 or 410.
    :raises DisallowedURL: the URL, or a redirect, may not be fetched (403).
    :raises UpstreamError: connection refused, a 5xx or other error (502).
    :raises UpstreamTimeout: the server did not answer in time (504).
    """

    seekable = False

    #: The status of the final answer (200, 206, 304, 412, 416...).
    status: int
    #: The relayed headers of the answer (see :data:`RELAYED_RESPONSE_HEADERS`).
    response_headers: Headers
    #: The URL the answer came from, after redirects.
    final_url: str

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
    ) -> None:
        if allowed_hosts is False or timeout is None:
            settings = get_settings() if has_app_context() else None
            if allowed_hosts is False:
                allowed_hosts = settings.http_allowed_hosts if settings else None
            if timeout is None:
                timeout = settings.http_timeout if settings else DEFAULT_TIMEOUT
        if method not in ("GET", "HEAD"):
            raise ValueError(f"HTTPFile fetches with GET or HEAD, not {method!r}.")
        self.url = url
        self._method = method
        self._done = False
        request_headers = {"User-Agent": _USER_AGENT, **(headers or {})}
        for header in ("Cookie", "Authorization", "Host"):
            # Never forwarded, even when a caller passes them by mistake.
            for key in [k for k in request_headers if k.lower() == header.lower()]:
                del request_headers[key]
        current = url
        for _ in range(max_redirects + 1):
            target = _vet(current, allowed_hosts)
            response = _open(target, method, request_headers, timeout)
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                break
            _close(response, reuse=False)
            current = urljoin(current, location)
        else:
            raise _fail(f"{url!r}: more than {max_redirects} redirects.")
        self._response: BaseHTTPResponse | None = response
        self.final_url = current
        status = self.status = response.status
        if status in (404, 410):
            self.close()
            raise FileNotFound(f"{current!r} answered {status}.")
        if status >= 400 and status not in (412, 416):
            self.close()
            raise _fail(f"{current!r} answered {status}.")
        upstream = response.headers
        relayed = Headers()
        for header in RELAYED_RESPONSE_HEADERS:
            for value in (
                upstream.getlist(header) if hasattr(upstream, "getlist") else ()
            ):
                relayed.add(header, value)
        self.response_headers = relayed
        if name is None:
            name = posixpath.basename(unquote(urlsplit(current).path)) or None
        self.name = name
        self.size = _content_size(status, relayed)
        self.modified_time = parse_http_date(relayed.get("Last-Modified"))
        etag = relayed.get("ETag")
        if etag and not etag.startswith("W/") and len(etag) > 1 and etag[0] == '"':
            self.etag = etag.strip('"')
        self.mimetype = relayed.get("Content-Type") or None
        self.encoding = relayed.get("Content-Encoding") or None
        if status in (304, 412, 416) or method == "HEAD":
            # No body to relay: the connection can go back to the pool.
            self.close()

    def chunks(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        start: int = 0,
        stop: int | None = None,
    ) -> cabc.Iterator[bytes]:
        """Relay the body as it arrives, never decompressed.

        ``start`` and ``stop`` are not supported (ranges are asked upstream).
        """
        if start or stop is not None:
            raise ValueError("HTTPFile relays ranges upstream; it cannot slice.")
        response = self._response
        if response is None:
            return
        urllib3 = _import_urllib3()
        try:
            while data := response.read(chunk_size, decode_content=False):
                yield data
        except urllib3.exceptions.HTTPError as e:
            # The headers are sent: all that can be done is to cut the body.
            raise _fail(f"{self.final_url!r} broke off: {e}") from None
        self._done = True

    def close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            _close(response, reuse=self._done or self._method == "HEAD")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url!r}>"


def _content_size(status: int, headers: Headers) -> int | None:
    if status == 206:
        # RFC 9110 §14.4: "bytes first-last/complete-length".
        complete = headers.get("Content-Range", "").rpartition("/")[2]
        return int(complete) if complete.isdigit() else None
    length = headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


class HTTPDownloadView(DownloadView):
    """Stream a remote URL through the application.

    The client's ``Range``, ``If-Range``, ``If-Match``, ``If-None-Match``,
    ``If-Modified-Since``, ``If-Unmodified-Since`` and ``Accept-Encoding``
    go upstream and the upstream answer is relayed: 200, 206 (single or
    multipart), 304, 412 and 416, with ``Content-Type``, ``Content-Length``,
    ``Content-Range``, ``Content-Encoding``, ``Accept-Ranges``, ``ETag``,
    ``Last-Modified`` and ``Vary`` copied; ``Content-Disposition``,
    ``Cache-Control`` and ``X-Content-Type-Options`` are the view's. Upstream
    404/410 -> 404, other errors and refused connections -> 502, timeouts ->
    504, refused URLs -> 403, each with a log line.
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
        """The client's headers sent upstream (:data:`FORWARDED_REQUEST_HEADERS`).

        ``Range`` and ``If-Range`` go upstream with ``GET`` only: RFC 9110
        §14.2 defines range handling for ``GET`` alone, so a ``HEAD``
        mirrors the full 200.
        """
        ranged = request.method == "GET"
        return {
            name: value
            for name in FORWARDED_REQUEST_HEADERS
            if (ranged or name not in _RANGE_HEADERS)
            and (value := request.headers.get(name)) is not None
        }

    def get_file(self) -> DownloadFile:
        return HTTPFile(
            self.get_url(),
            headers=self.get_request_headers(),
            method="HEAD" if request.method == "HEAD" else "GET",
            allowed_hosts=self.get_allowed_hosts(),
            timeout=self.get_timeout(),
            max_redirects=self.max_redirects,
        )

    def file_response(self, file: DownloadFile) -> Response | None:
        """Relay an upstream 416 (with its ``Content-Range``); upstream
        decided the range."""
        if not isinstance(file, HTTPFile) or file.status != 416:
            return super().file_response(file)
        response = Response(b"", status=416)
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
            for name in ("ETag", "Last-Modified", "Vary"):
                if name in file.response_headers:
                    headers[name] = file.response_headers[name]
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
        # and validators are upstream's, not guessed.
        for name in RELAYED_RESPONSE_HEADERS:
            if name == "Content-Type" and "Content-Type" in upstream:
                if file.status == 206 or not self.get_mimetype():
                    h["Content-Type"] = upstream["Content-Type"]
                continue
            if name == "Content-Type":
                continue
            del h[name]
            for value in upstream.getlist(name):
                h.add(name, value)
        return response
