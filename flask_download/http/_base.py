"""Limits, header lists and the log lines shared by the proxy's parts."""

from __future__ import annotations

import logging

from flask import current_app
from flask import has_app_context

from ..exceptions import DisallowedURL
from ..exceptions import UpstreamError
from ..settings import DEFAULTS

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
