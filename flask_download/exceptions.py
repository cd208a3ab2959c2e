"""The exceptions Flask-Download raises, all derived from :class:`DownloadError`."""

from __future__ import annotations

from werkzeug.exceptions import BadGateway
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import GatewayTimeout
from werkzeug.exceptions import Gone
from werkzeug.exceptions import ServiceUnavailable


class DownloadError(Exception):
    """Base class of every error raised by Flask-Download."""


class FileNotFound(DownloadError):
    """The file a view was asked to serve does not exist (or may not be served).

    Views answer it with :meth:`DownloadMixin.file_not_found_response`
    (a 404 by default).
    """


class ConfigurationError(DownloadError, ValueError):
    """A view attribute or a ``DOWNLOAD_*`` setting is missing or has a bad value.

    Raised at start-up or on the first request, with a message that names the fix.
    """


class UpstreamError(DownloadError, BadGateway):
    """The remote server failed, refused the connection or answered an error.

    A :class:`werkzeug.exceptions.BadGateway`: Flask answers it with 502.
    The cause is in :attr:`detail` and in the log, never sent to the client.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(description="The remote server failed to send the file.")
        #: What went wrong, for logs.
        self.detail = detail
        # HTTPException.__init__ leaves args empty: pickling (multiprocessing,
        # task queues) would call __init__ without the detail.
        self.args = (detail,)


class UpstreamTimeout(DownloadError, GatewayTimeout):
    """The remote server did not answer in time (Flask answers 504)."""

    def __init__(self, detail: str) -> None:
        super().__init__(description="The remote server did not answer in time.")
        #: What went wrong, for logs.
        self.detail = detail
        # HTTPException.__init__ leaves args empty: pickling (multiprocessing,
        # task queues) would call __init__ without the detail.
        self.args = (detail,)


class DisallowedURL(DownloadError, Forbidden):
    """A URL (or a redirect) the download may not fetch (Flask answers 403).

    Raised for schemes other than ``http``/``https``, user info in the URL,
    hosts outside ``allowed_hosts``, and non-public addresses of hosts not
    listed in ``allowed_hosts``.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(description="The file's location is not allowed.")
        #: Why the URL was refused, for logs.
        self.detail = detail
        # HTTPException.__init__ leaves args empty: pickling (multiprocessing,
        # task queues) would call __init__ without the detail.
        self.args = (detail,)


class StorageUnavailable(DownloadError, ServiceUnavailable):
    """The storage could not be reached or refused to answer (an outage).

    It is a :class:`werkzeug.exceptions.ServiceUnavailable`, so Flask answers
    it with 503 wherever it is raised (register an error handler for 503 to
    change the page). The client sees a generic description; the cause is
    in :attr:`detail` and in the log line written when it was raised.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(
            description="The file storage is unavailable. Please try again later."
        )
        #: What went wrong, for logs (never sent to the client).
        self.detail = detail
        # HTTPException.__init__ leaves args empty: pickling (multiprocessing,
        # task queues) would call __init__ without the detail.
        self.args = (detail,)


class InvalidSignature(DownloadError, Forbidden):
    """A signed link's signature is missing or does not match (Flask answers 403).

    Raised by :func:`~flask_download.signing.check_signature` before the file
    is looked up, so it tells nothing about the file.
    """


class SignatureExpired(DownloadError, Gone):
    """A signed link is past its expiry (Flask answers 410)."""
