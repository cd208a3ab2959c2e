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

from ..exceptions import ConfigurationError as ConfigurationError
from ..exceptions import DisallowedURL as DisallowedURL
from ..exceptions import FileNotFound as FileNotFound
from ..exceptions import UpstreamError as UpstreamError
from ..exceptions import UpstreamTimeout as UpstreamTimeout
from . import _base
from ._addresses import _vet as _vet
from ._addresses import check_allowed_ports as check_allowed_ports
from ._addresses import is_public_address as is_public_address
from ._client import _close as _close
from ._client import _open as _open
from ._client import _pool as _pool
from ._client import HEAD_DEADLINE_FACTOR as HEAD_DEADLINE_FACTOR
from ._file import HTTPFile as HTTPFile
from ._resolver import _resolve as _resolve
from ._resolver import MAX_LOOKUPS as MAX_LOOKUPS
from ._view import HTTPDownloadView as HTTPDownloadView

# The documented limits, named here again: autodoc reads their "#:" comments
# from this file (the values are _base's).

#: Most redirects followed for one download.
MAX_REDIRECTS = _base.MAX_REDIRECTS
#: Timeout of :class:`~flask_download.HTTPFile` used outside an application,
#: in seconds.
DEFAULT_TIMEOUT: float = _base.DEFAULT_TIMEOUT
#: Slowest upstream body relayed, in bytes a second, measured over each span
#: of the timeout: a slower one is cut off (it would hold a worker for ever
#: while each of its socket reads stays within the timeout).
MIN_RATE = _base.MIN_RATE
#: Client request headers passed upstream; nothing else is (never ``Cookie``
#: or ``Authorization``).
FORWARDED_REQUEST_HEADERS = _base.FORWARDED_REQUEST_HEADERS
#: Upstream response headers relayed to the client; nothing else is (no
#: hop-by-hop headers, ``Set-Cookie``, ``X-Accel-*`` or ``X-Sendfile``).
RELAYED_RESPONSE_HEADERS = _base.RELAYED_RESPONSE_HEADERS
