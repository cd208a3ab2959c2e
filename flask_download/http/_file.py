"""HTTPFile: a remote file, streamed as it arrives."""

from __future__ import annotations

import collections.abc as cabc
import posixpath
import time
import typing as t
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import has_app_context
from werkzeug.datastructures import Headers

from ..conditional import parse_http_date
from ..exceptions import FileNotFound
from ..files import DEFAULT_CHUNK_SIZE
from ..files import DownloadFile
from ..response import cache_directives
from ..response import valid_media_type
from ..settings import check_allowed_hosts
from ..settings import get_settings
from ._addresses import check_allowed_ports
from ._base import _CONDITIONS
from ._base import _fail
from ._base import _FILE_STATUSES
from ._base import _HEAD_REFUSED
from ._base import _USER_AGENT
from ._base import DEFAULT_TIMEOUT
from ._base import MAX_REDIRECTS
from ._base import MIN_RATE
from ._base import RELAYED_RESPONSE_HEADERS
from ._client import _close
from ._client import _follow
from ._client import _import_urllib3
from ._framing import _check_framing
from ._framing import _CONTENT_RANGE
from ._framing import _content_size
from ._framing import _FRAMING
from ._framing import _relayable
from ._framing import _SINGLE_VALIDATORS

if t.TYPE_CHECKING:
    from urllib3.response import BaseHTTPResponse


#: ``allowed_hosts`` lists found valid, as tuples: an HTTPFile is made for
#: each request (and each resumed read) with the view's or the settings'
#: list, which is checked once, not on every request.
_CHECKED_HOSTS: set[tuple[str, ...]] = set()
#: Most lists remembered (lists made per request are checked each time).
_MAX_CHECKED_HOSTS = 64


def _check_hosts_once(allowed_hosts: cabc.Collection[str]) -> None:
    """:func:`~flask_download.settings.check_allowed_hosts`, once per list.

    :raises ConfigurationError: an entry that can never match.
    """
    hosts = (allowed_hosts,) if isinstance(allowed_hosts, str) else allowed_hosts
    try:
        key: tuple[str, ...] | None = tuple(hosts)
        known = key in _CHECKED_HOSTS
    except TypeError:
        key, known = None, False  # an unhashable entry: the check says what
    if known:
        return
    check_allowed_hosts(allowed_hosts, "allowed_hosts")
    if key is not None and len(_CHECKED_HOSTS) < _MAX_CHECKED_HOSTS:
        _CHECKED_HOSTS.add(key)


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
        if allowed_hosts:
            # An entry that can never match (a port, a scheme, several names
            # in one string) is refused, not silently a 403 for every URL.
            _check_hosts_once(allowed_hosts)  # raises
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
