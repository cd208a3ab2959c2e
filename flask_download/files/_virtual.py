"""VirtualFile: content made in Python, and its text-encoding helpers."""

from __future__ import annotations

import codecs
import collections.abc as cabc
import contextlib
import datetime
import functools
import hashlib
import io
import typing as t

from .._grammar import valid_opaque_tag
from ..conditional import as_utc
from ..exceptions import ConfigurationError
from ._base import as_index
from ._base import checked_size
from ._base import DEFAULT_CHUNK_SIZE
from ._base import DownloadFile
from ._base import read_slice
from ._streams import _is_seekable
from ._streams import _seek
from ._streams import _Unclosed


class VirtualFile(DownloadFile):
    """Content made in Python.

    Text is sent as bytes: a ``str`` or an :class:`io.StringIO` (read from
    its current position) is encoded with ``charset`` when the wrapper is
    made, so ``Content-Length`` counts bytes and a ``text/*`` response
    announces that charset, whatever the view says. A text-mode file and
    ``str`` chunks of an iterator are encoded as they are streamed, with
    ``charset`` if given, else the charset the response announces (the
    view's ``charset``, else UTF-8).

    :param content: ``str``, ``bytes``, a binary or text file-like object,
        or an iterator of ``bytes`` / ``str`` chunks. ``str``, ``bytes`` and
        ``StringIO`` support ``Range`` and get a strong ETag from a hash of
        the bytes; a seekable binary file-like object supports ``Range``;
        an iterator and a text-mode file are streamed as they come (no
        ``Range``, no ETag unless given, no ``Content-Length`` unless
        ``size`` is given).
    :param name: the client-side name.
    :param size: the size in bytes, if known (computed for ``str``/``bytes``,
        ``StringIO`` and seekable binary file-like objects): an ``int`` or an
        integer-like such as ``numpy.int64`` (not ``bool``, not ``float``).
    :param modified_time: the last modification, sent as ``Last-Modified``.
        A naive datetime is taken as UTC.
    :param etag: a strong entity tag, bare: ``abc`` is sent as
        ``ETag: "abc"``. One pair of surrounding quotes is taken off
        (``'"abc"'`` is ``abc``).
    :param charset: the encoding of text content (default UTF-8), also
        announced for ``text/*`` types (the wrapper's
        :attr:`~flask_download.DownloadFile.charset`).
    :raises ConfigurationError: ``charset`` is not a known encoding,
        ``etag`` cannot be sent in a header (a weak ``W/`` tag, quotes
        inside, spaces or control characters), or ``size`` is negative.
    :raises TypeError: ``content`` is none of the kinds above (``None``, an
        ``int``...), ``size`` is not an integer, ``modified_time`` is not a
        :class:`~datetime.datetime`, ``etag`` is not a ``str``; or an iterator yields a
        chunk that is neither ``bytes``-like nor ``str`` (raised when the
        body gets there: the response ends short and the connection closes).
    :raises UnicodeEncodeError: a ``str`` or ``StringIO`` has a character
        ``charset`` cannot encode (streamed text fails when it gets there).
    """

    def __init__(
        self,
        content: str
        | bytes
        | t.IO[bytes]
        | cabc.Iterable[bytes]
        | cabc.Iterable[str]
        | cabc.Iterable[bytes | str],
        name: str | None = None,
        size: int | None = None,
        modified_time: datetime.datetime | None = None,
        etag: str | None = None,
        charset: str | None = None,
    ) -> None:
        size = _check_virtual_arguments(content, size, modified_time)
        self.name = name
        self.modified_time = None if modified_time is None else as_utc(modified_time)
        if etag is not None:
            etag = _bare_etag(etag)
        self._bytes: bytes | None = None
        self._stream: t.IO[bytes] | None = None
        self._iterable: cabc.Iterable[bytes | str] | None = None
        self._text_stream: t.IO[str] | None = None
        self._encoding = _text_encoding(charset)
        if charset is not None:
            self.charset = charset
        if isinstance(content, io.StringIO):
            # In memory already: encode it whole, so its byte size is known
            # and ranges work (its own offsets count characters).
            content = content.read()
        if isinstance(content, str):
            self._mark_text()
            content = content.encode(self._encoding)
        if isinstance(content, (bytes, bytearray, memoryview)):
            self._bytes = bytes(content)
            self.size = len(self._bytes)
            self.seekable = True
            self.etag = (
                etag
                if etag is not None
                else hashlib.blake2b(self._bytes, digest_size=16).hexdigest()
            )
            return
        self.etag = etag
        if isinstance(content, _TEXT_STREAMS):
            # A text-mode file: encoded as it is read, with the charset the
            # response announces unless one was given. Its size in bytes is
            # unknown (newline translation, the file's own encoding).
            self._text_stream = t.cast(t.IO[str], content)
            self._streams_text = True
            self.size = size
            return
        if hasattr(content, "read"):
            stream = t.cast(t.IO[bytes], content)
            self._stream = stream
            self.seekable = _is_seekable(stream)
            self._start = 0
            if self.seekable:
                start: t.Any = None
                try:
                    start = stream.tell()
                    if not isinstance(start, int):
                        raise TypeError("tell() gave no position")
                    if size is None:
                        # (A seek() that returns None, as some wrappers'
                        # do, still moved: where it went is asked.) A stream
                        # left past its end has nothing left, not less.
                        size = max(_seek(stream, 0, io.SEEK_END) - start, 0)
                    stream.seek(start)
                    self._start = start
                except (OSError, ValueError, TypeError):
                    # It says it can seek but cannot (procfs files): streamed
                    # as it comes, from where it was (never from its end).
                    self.seekable = False
                    if start is not None:
                        with contextlib.suppress(Exception):
                            stream.seek(start)
            self.size = size
            return
        self._iterable = content
        self._streams_text = True
        self.size = size

    def _mark_text(self) -> None:
        # These bytes are in this encoding: the response announces it, over
        # a charset the view would otherwise give.
        self.charset = self._encoding
        self.encoded_text = True

    def open(self) -> t.IO[bytes]:
        if self._bytes is not None:
            return io.BytesIO(self._bytes)
        if self._stream is not None and self.seekable:
            self._stream.seek(self._start)
            return t.cast(t.IO[bytes], _Unclosed(self._stream, self._start))
        raise TypeError("This VirtualFile streams an iterator; read it with 'chunks'.")

    def chunks(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        start: int = 0,
        stop: int | None = None,
    ) -> cabc.Iterator[bytes]:
        # Integer-likes (numpy.int64) as ints: range() and slices take them,
        # but the arithmetic of a stream's offsets would not.
        chunk_size = as_index(chunk_size, "chunk_size")
        start = as_index(start, "start")
        if stop is not None:
            stop = as_index(stop, "stop")
        if self._bytes is not None:
            end = len(self._bytes) if stop is None else stop
            view = memoryview(self._bytes)
            for offset in range(start, end, chunk_size):
                yield bytes(view[offset : min(offset + chunk_size, end)])
        elif self._stream is not None:
            if self.seekable:
                # Offsets are relative to where the content starts: read
                # through open(), which accounts for that start.
                yield from super().chunks(chunk_size, start, stop)
                return
            if start:
                raise ValueError("Cannot read a range of a stream that can't seek.")
            yield from read_slice(self._stream, chunk_size, 0, stop)
        elif self._text_stream is not None:
            yield from _encode_chunks(
                iter(functools.partial(self._text_stream.read, chunk_size), ""),
                self.charset or "utf-8",
            )
        else:
            assert self._iterable is not None
            yield from _encode_chunks(self._iterable, self.charset or "utf-8")

    def close(self) -> None:
        target: object = self._stream if self._stream is not None else self._iterable
        if self._text_stream is not None:
            target = self._text_stream
        close = getattr(target, "close", None)
        if close is not None:
            close()


def _check_virtual_arguments(
    content: object, size: object, modified_time: object
) -> int | None:
    """Refuse what :class:`VirtualFile` cannot send, when it is made: found
    later, it would fail after the status line went out (a broken body) or
    put a bad ``Content-Length`` (``-1``, ``True``) on the wire.

    :return: ``size`` as an ``int`` (an integer-like such as ``numpy.int64``
        converted), or ``None``.
    """
    if not (
        isinstance(content, (str, bytes, bytearray, memoryview, cabc.Iterable))
        or hasattr(content, "read")
    ):
        raise TypeError(
            "VirtualFile content must be str, bytes, a file-like object or an"
            f" iterator of bytes or str chunks, not {type(content).__name__}."
        )
    checked = None if size is None else checked_size(size, "VirtualFile size")
    if modified_time is not None and not isinstance(modified_time, datetime.datetime):
        raise TypeError(
            "VirtualFile modified_time must be a datetime (aware, or naive in"
            f" UTC) or None, not {type(modified_time).__name__}."
        )
    return checked


def _text_encoding(charset: str | None) -> str:
    if charset is None:
        return "utf-8"
    try:
        codecs.lookup(charset)
    except (LookupError, TypeError, ValueError):
        raise ConfigurationError(
            f"VirtualFile charset must be a known text encoding such as 'utf-8',"
            f" not {charset!r}."
        ) from None
    return charset


def _bare_etag(etag: str) -> str:
    """``etag`` as a bare opaque tag, one pair of surrounding quotes taken off."""
    if not isinstance(etag, str):
        raise TypeError(
            f"VirtualFile etag must be a str (or None), not {type(etag).__name__}."
        )
    bare = etag[1:-1] if len(etag) >= 2 and etag[0] == etag[-1] == '"' else etag
    # RFC 9110 §8.8.3: what goes between the quotes of a strong entity tag.
    if not valid_opaque_tag(bare):
        raise ConfigurationError(
            f"VirtualFile etag {etag!r} cannot be sent: pass the tag bare, such"
            " as etag='abc' (sent as ETag: \"abc\"), in visible ASCII"
            " characters: no '\"' inside, no spaces, newlines or other control"
            " characters, and no 'W/' (a weak tag cannot be given)."
        )
    return bare


def _encode_chunks(
    chunks: cabc.Iterable[bytes | str], encoding: str
) -> cabc.Iterator[bytes]:
    """Yield non-empty ``bytes`` chunks, ``str`` ones encoded with ``encoding``.

    One incremental encoder for the whole stream: a stateful encoding (a
    byte order mark, ISO-2022 shifts) is written once, not once a chunk.

    :raises TypeError: a chunk is neither bytes-like nor ``str``.
    """
    encoder = None
    for chunk in chunks:
        if isinstance(chunk, str):
            if encoder is None:
                encoder = codecs.getincrementalencoder(encoding)()
            chunk = encoder.encode(chunk)
        elif not isinstance(chunk, (bytes, bytearray, memoryview)):
            # bytes(chunk) would make an int n into n zero bytes (iterating
            # over a bytes object yields ints), and a list of ints into bytes.
            raise _chunk_type_error(chunk)
        if chunk:
            yield bytes(chunk)
    if encoder is not None:
        tail = encoder.encode("", final=True)
        if tail:
            yield tail


def _chunk_type_error(chunk: object) -> TypeError:
    message = (
        f"A VirtualFile iterator yielded a chunk of type {type(chunk).__name__!r};"
        " chunks must be bytes, bytearray, memoryview or str."
    )
    if isinstance(chunk, int):
        message += (
            " (Iterating over a bytes object yields ints: pass the bytes"
            " object itself, or an iterator of bytes objects.)"
        )
    return TypeError(message)


# Streams that read str: encoded as they are read (codecs' readers are not
# io.TextIOBase).
_TEXT_STREAMS = (io.TextIOBase, codecs.StreamReader, codecs.StreamReaderWriter)
