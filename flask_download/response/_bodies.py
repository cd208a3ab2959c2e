"""Body adapters: a self-closing body, text read as bytes, file spans."""

from __future__ import annotations

import codecs
import collections.abc as cabc
import contextlib
import io
import os
import typing as t

from werkzeug.wsgi import ClosingIterator

from ..files import _Unclosed
from ..files import DEFAULT_CHUNK_SIZE


class _ClosingBody(ClosingIterator):
    """A response body that closes itself if the server drops it unclosed.

    PEP 3333 servers call ``close()``; Werkzeug's development server skips
    it when the client reset the connection (the request body's drain fails
    first), which would leave the file to the garbage collector and never
    send ``download_finished``.
    """

    _closed = False

    def close(self) -> None:
        self._closed = True
        super().close()

    def __del__(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self.close()


# Streams open() gives that are binary for sure, told apart from text ones
# without an isinstance() check against io.TextIOBase (an ABC).
_BINARY_STREAMS = frozenset((io.BufferedReader, io.BytesIO, io.FileIO))
_TEXT_STREAMS = (io.TextIOBase, codecs.StreamReader, codecs.StreamReaderWriter)


def _is_text_stream(handle: object) -> bool:
    """Whether ``handle`` reads ``str`` (``io.StringIO``, a text-mode file,
    or a caller's stream whose ``read`` gives ``str``)."""
    if isinstance(handle, _TEXT_STREAMS):
        return True
    if type(handle) is _Unclosed:
        # A caller's stream a VirtualFile took for binary (it is no
        # io.TextIOBase): read(0) reads nothing and tells which type read
        # gives. Asked before any header goes out, so that no str reaches
        # the server and Content-Length counts the bytes sent.
        try:
            return isinstance(handle.read(0), str)
        except Exception:
            return False
    return False


def _reads_its_file(handle: object) -> bool:
    """Whether ``handle`` reads the very bytes of the file its ``fileno()``
    names, which ``sendfile`` would send: an :class:`io.FileIO` or a buffered
    reader over one (what :meth:`PathFile.open` gives). A stream that a
    subclass's ``open()`` returns may transform them and still give the
    file's descriptor (a :class:`gzip.GzipFile`, a decrypting reader): its
    bytes are read through it, never sent from the descriptor."""
    kind = type(handle)
    if kind is io.BufferedReader or kind is io.BufferedRandom:
        return type(t.cast(io.BufferedReader, handle).raw) is io.FileIO
    return kind is io.FileIO


class _EncodedText(io.RawIOBase):
    """A text stream read as bytes: its characters encoded with ``encoding``.

    What :meth:`DownloadFile.open` returns is read as bytes, and ranges
    count bytes; a text stream's own offsets count characters (or are
    opaque cookies), so this view never seeks it but to its start: a seek
    forward reads and drops the bytes before the position. :meth:`length`
    tells how many bytes the text makes, for ``Content-Length``.
    """

    def __init__(self, stream: t.IO[str], encoding: str) -> None:
        self._stream = stream
        self._encoding = encoding
        self._restart()

    def _restart(self) -> None:
        self._encoder = codecs.getincrementalencoder(self._encoding)()
        self._pending = b""
        self._position = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        pending = self._pending
        while not self._ended and (size < 0 or len(pending) < size):
            # A character is one byte or more: reading as many characters
            # as bytes are missing is enough, but for the end of the text.
            text = self._stream.read(size - len(pending) if size >= 0 else -1)
            if text:
                pending += self._encoder.encode(text)
            else:
                self._ended = True
                pending += self._encoder.encode("", final=True)
        if 0 <= size < len(pending):
            data, self._pending = pending[:size], pending[size:]
        else:
            data, self._pending = pending, b""
        self._position += len(data)
        return data

    def readinto(self, buffer: t.Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < 0:
            raise io.UnsupportedOperation("only a position from the start")
        if offset < self._position:
            self._stream.seek(0)
            self._restart()
        while self._position < offset:
            if not self.read(min(offset - self._position, DEFAULT_CHUNK_SIZE)):
                break  # the text ends before the position
        return self._position

    def tell(self) -> int:
        return self._position

    def length(self) -> int | None:
        """The length of the whole text in bytes, read through once (the
        text stream is read again from its start afterwards); ``None`` when
        the text stream cannot go back to its start."""
        try:
            if not self._stream.seekable():
                return None
        except (AttributeError, OSError, ValueError):
            return None
        # A character the charset cannot encode raises here, before any
        # header is sent, rather than in the middle of the body.
        while self.read(DEFAULT_CHUNK_SIZE):
            pass
        length = self._position
        self._stream.seek(0)
        self._restart()
        return length

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class _FileSpan:
    """The bytes ``[start, stop)`` of an open file positioned at ``start``,
    for ``wsgi.file_wrapper``.

    Servers read it with ``read()``; closing it (the server closes its
    wrapper, which closes this) closes the file and the response. A span
    closed before its end was sent calls ``on_short`` first, so that the
    server closes the connection instead of keeping a desynchronised one.
    """

    def __init__(
        self,
        handle: t.IO[bytes],
        start: int,
        stop: int,
        on_close: cabc.Callable[[], None],
        on_short: cabc.Callable[[], None],
    ) -> None:
        self._handle = handle
        self._stop = stop
        self._remaining = stop - start
        self._on_close = on_close
        self._on_short = on_short

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        if size < 0 or size > self._remaining:
            size = self._remaining
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data

    def _ended_short(self) -> bool:
        # Read in chunks: the server stopped before the end (the file
        # ended early, or the client hung up and nothing more can be sent).
        return True

    def close(self) -> None:
        try:
            try:
                if self._remaining > 0 and self._ended_short():
                    self._on_short()
            finally:
                self._handle.close()
        finally:
            self._on_close()


class _SendfileSpan(_FileSpan):
    """A :class:`_FileSpan` that offers ``fileno()`` so the server can use
    ``sendfile`` from the current position: for whole files, and for ranges
    on servers that never send more than ``Content-Length``."""

    def fileno(self) -> int:
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        # socket.sendfile() falls back to seek() + read() without os.sendfile.
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def _ended_short(self) -> bool:
        # The server may have sent the span with sendfile, which stops at
        # the end of the file without a word and reads nothing through
        # this object: a file now shorter than the span's end was cut short.
        try:
            return os.fstat(self._handle.fileno()).st_size < self._stop
        except (OSError, ValueError):
            return True
