"""The archive's response, which sends local members with ``sendfile`` where it can."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from ..response import DownloadResponse
from ..response import gunicorn_response
from ._file import ArchiveFile
from ._reader import ArchiveReader

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def server_writes(
    environ: WSGIEnvironment, start_response: t.Any
) -> tuple[t.Any, cabc.Callable[[int], bool] | None]:
    """The server's client socket, and a check that the server has written
    exactly ``n`` body bytes to it, unframed, after the headers.

    Writing to the socket directly is only safe when the server iterates
    the body itself and writes each chunk before asking for the next: any
    WSGI middleware that buffers, compresses or reframes the body (or just
    wraps ``start_response``) would see member bytes overtake the headers
    or the chunks it holds. So the socket is used only when the
    ``start_response`` the application got is the server's own, and each
    ``sendfile`` first checks how far the server got. ``(None, None)``
    when that cannot be told: the body is then streamed by Python.
    """
    sock = environ.get("gunicorn.socket")
    server_response = gunicorn_response(start_response)
    if sock is not None and getattr(server_response, "sock", None) is sock:
        # gunicorn counts the body bytes it wrote (``sent``).
        server: t.Any = server_response

        def gunicorn_written(count: int) -> bool:
            return bool(
                server.headers_sent and not server.chunked and server.sent == count
            )

        return sock, gunicorn_written
    sock = environ.get("werkzeug.socket")
    code = getattr(start_response, "__code__", None)
    if (
        sock is not None
        and code is not None
        and getattr(start_response, "__module__", None) == "werkzeug.serving"
        and start_response.__qualname__.endswith("run_wsgi.<locals>.start_response")
        and "headers_sent" in code.co_freevars
    ):
        # Werkzeug's development server keeps no count: the check is that
        # its own write() has sent the headers (it writes every chunk at
        # once, unframed when Content-Length is set).
        cells = dict(
            zip(code.co_freevars, start_response.__closure__ or (), strict=True)
        )
        headers_sent = cells["headers_sent"]

        def werkzeug_written(count: int) -> bool:
            return count > 0 and bool(headers_sent.cell_contents)

        return sock, werkzeug_written
    return None, None


class ArchiveResponse(DownloadResponse):
    """A :class:`~flask_download.DownloadResponse` that sends local members
    of a whole stored :class:`~flask_download.ArchiveFile` with ``sendfile``.

    ZIP headers come from Python; the data of each local member whose
    CRC-32 is known is written by the kernel straight from the file to the
    client's socket, on servers that expose it (gunicorn's
    ``gunicorn.socket``, Werkzeug's ``werkzeug.socket``) and write each
    chunk before asking for the next. Ranges, other servers and other
    members are streamed by Python.

    Only when the server iterates the body itself: the ``start_response``
    the application got must be the server's own, and before each member
    the server must have written every chunk yielded so far (see
    :func:`!server_writes`). Behind WSGI middleware that buffers or rewrites
    the body, Python streams the archive instead. Bytes sent this way
    bypass the server's own count (gunicorn's access log ``%(b)s`` shows
    only the Python-written part); set
    :attr:`ZipDownloadView.sendfile <flask_download.ZipDownloadView.sendfile>` to
    ``False`` to turn it off.
    """

    #: Send local members with ``sendfile`` where the server allows it.
    sendfile: bool = True
    _socket: t.Any = None
    _written: cabc.Callable[[int], bool] | None = None

    def get_app_iter(self, environ: WSGIEnvironment) -> cabc.Iterable[bytes]:
        file = self.file
        if (
            self.sendfile
            and isinstance(file, ArchiveFile)
            and file.seekable
            and self._segments == [(0, file.size)]
        ):
            # The start_response kept by DownloadResponse tells whether the
            # server itself iterates the body: only then do bytes written
            # to its socket land where they belong.
            self._socket, self._written = server_writes(environ, self._start_response)
        return super().get_app_iter(environ)

    def _iter_body(self) -> cabc.Iterator[bytes]:
        expected = self.content_length
        total = 0
        for chunk in self._body_parts():
            total += len(chunk)
            yield chunk
        total += self._direct
        if expected is not None and total < expected:
            self._cut_short()

    def _body_parts(self) -> cabc.Iterator[bytes]:
        handle = self._handle
        written = self._written
        if (
            self._socket is None
            or written is None
            or not isinstance(handle, ArchiveReader)
        ):
            yield from super()._iter_body()
            return
        yield from handle.send_whole(
            self._socket, self.chunk_size, self._count, written
        )

    _direct = 0

    def _count(self, sent: int) -> None:
        self._direct += sent
        if self._delivery is not None:
            self._delivery.bytes_sent += sent
