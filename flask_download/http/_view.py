"""HTTPDownloadView: the proxy view that relays the upstream's answer."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from flask import request
from flask import Response

from ..exceptions import ConfigurationError
from ..files import DownloadFile
from ..ranges import forwardable_range
from ..response import DownloadResponse
from ..response import no_less_private
from ..response import set_content_security_policy
from ..response import valid_media_type
from ..settings import check_allowed_hosts
from ..views import DownloadView
from ._addresses import check_allowed_ports
from ._base import _RANGE_HEADERS
from ._base import FORWARDED_REQUEST_HEADERS
from ._base import MAX_REDIRECTS
from ._base import RELAYED_RESPONSE_HEADERS
from ._client import _import_urllib3
from ._file import HTTPFile
from ._framing import _vary

if t.TYPE_CHECKING:
    from flask.typing import RouteCallable


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
