"""Download signals (blinker), to count and audit downloads without wrapping views.

Connect a receiver like any Flask signal::

    from flask_download import download_finished

    @download_finished.connect_via(app)
    def count(app, file, bytes_sent, completed, **extra):
        if completed:
            stats.incr(file.name)

Both signals are sent with the application as ``sender`` (connect with
``connect_via(app)`` to hear one app only); receivers should accept
``**extra`` so that new keyword arguments do not break them. They are sent
only for responses that deliver a file body, streamed or offloaded: never for
``HEAD``, 304, 412, 416, or a file that vanished before it was opened (404).

When no receiver is connected, a download costs nothing more than two
truthiness checks.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from blinker import Namespace
from flask import has_app_context
from flask import has_request_context

from ._context import app_object
from ._context import request_object

if t.TYPE_CHECKING:
    from flask import Flask

    from .files import DownloadFile

_signals = Namespace()

#: Headers that hand a download's body to the web server (nginx
#: ``X-Accel-Redirect``, Apache/lighttpd ``X-Sendfile``, lighttpd 1.4
#: ``X-LIGHTTPD-send-file``); a response with one has an empty body.
OFFLOAD_HEADERS = ("X-Accel-Redirect", "X-Sendfile", "X-LIGHTTPD-send-file")

#: Sent when the server asks for the body of a download, after the view
#: returned and still inside the request context (``flask.g`` and the
#: logged-in user are available), before any byte is sent.
#:
#: Arguments: ``sender`` (the app), ``file`` (the
#: :class:`~flask_download.DownloadFile`), ``request`` (the Flask request).
download_started = _signals.signal(
    "download-started",
    doc="Sent when the server asks for the body of a download.",
)

#: Sent when the response is closed: at the end of the body, or when the
#: client hung up. The request context is gone by then.
#:
#: Arguments: ``sender`` (the app), ``file``, ``bytes_sent`` (bytes of the
#: body handed to the server; the last of them may not have reached a client
#: that hung up; ``None`` for an offloaded response, whose bytes the web
#: server sends), ``completed`` (``True`` when the whole body was handed to
#: the server: it ran to its end or ``Content-Length`` bytes went out;
#: ``False`` when the client hung up before; always ``True`` for an
#: offloaded response).
download_finished = _signals.signal(
    "download-finished",
    doc="Sent when a download response is closed, with the bytes sent.",
)


def _context() -> tuple[Flask | None, t.Any]:
    app = app_object() if has_app_context() else None
    req = request_object() if has_request_context() else None
    return app, req


def _send(signal: t.Any, app: Flask | None, **kwargs: t.Any) -> None:
    if app is not None:
        # As Flask does: lets async receivers run (``app.ensure_sync``).
        kwargs["_async_wrapper"] = app.ensure_sync
    signal.send(app, **kwargs)


class _Delivery:
    """Counts the bytes of one download and sends :data:`download_finished`."""

    __slots__ = ("app", "bytes_sent", "completed", "file", "length")

    def __init__(self, app: Flask | None, file: DownloadFile) -> None:
        self.app = app
        self.file = file
        self.bytes_sent = 0
        self.completed = False
        #: The body's length, when known: complete once that much was sent
        #: (a server may stop iterating at ``Content-Length``).
        self.length: int | None = None

    def count(
        self, body: cabc.Iterable[bytes], length: int | None
    ) -> cabc.Iterator[bytes]:
        """Count what is read of ``body``; complete once it ran to its end."""
        self.length = length
        return self._counted(body)

    def _counted(self, body: cabc.Iterable[bytes]) -> cabc.Iterator[bytes]:
        for chunk in body:
            self.bytes_sent += len(chunk)
            yield chunk
        # A body that ended short of its length (a file that shrank, a store
        # or member that failed, ended quietly so that the server closes the
        # connection) is no complete download.
        self.completed = self.length is None or self.bytes_sent >= self.length

    def reader(self, filelike: t.Any, length: int) -> _CountingReader:
        """Wrap the file-like object given to ``wsgi.file_wrapper``."""
        self.length = length
        return _CountingReader(filelike, self)

    def finish(self) -> None:
        if self.length is not None and self.bytes_sent >= self.length:
            self.completed = True
        _send(
            download_finished,
            self.app,
            file=self.file,
            bytes_sent=self.bytes_sent,
            completed=self.completed,
        )


class _CountingReader:
    """A file-like object for ``wsgi.file_wrapper`` that counts what is read.

    It has no ``fileno()`` on purpose: a server that sends with ``sendfile``
    (gunicorn) cannot tell how many bytes went out, so while a
    :data:`download_finished` receiver is connected it reads the file in
    chunks instead.
    """

    __slots__ = ("_delivery", "_filelike")

    def __init__(self, filelike: t.Any, delivery: _Delivery) -> None:
        self._filelike = filelike
        self._delivery = delivery

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._filelike.read(size)
        self._delivery.bytes_sent += len(data)
        return data

    def close(self) -> None:
        self._filelike.close()


def _heard(signal: t.Any, sender: t.Any) -> bool:
    """Whether a receiver of ``signal`` is called when ``sender`` sends it.

    ``signal.receivers`` alone is not enough: blinker keeps a receiver
    disconnected from one sender (``disconnect(fn, sender=app)``), or
    connected to another app only, in it. Counting for nobody would turn
    ``sendfile`` off for every download. The exact look-up (blinker's public
    ``receivers_for``, which also skips dead weak receivers) runs only when
    some receiver is connected at all.
    """
    if not signal.receivers:
        return False
    return next(signal.receivers_for(sender), None) is not None


def _begin(file: DownloadFile) -> _Delivery | None:
    """Send :data:`download_started`; return a tracker if anyone awaits the end.

    Called when a body is about to be sent. Returns ``None`` (nothing to
    count) when no receiver of :data:`download_finished` hears this app.
    """
    app, req = _context()
    if _heard(download_started, app):
        _send(download_started, app, file=file, request=req)
    if not _heard(download_finished, app):
        return None
    return _Delivery(app, file)


def _offloaded(file: DownloadFile) -> None:
    """Send both signals for a body the web server sends (offload)."""
    app, req = _context()
    _send(download_started, app, file=file, request=req)
    _send(download_finished, app, file=file, bytes_sent=None, completed=True)
