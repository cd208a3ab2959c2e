"""The base file wrapper, its chunk size, and reading a slice of a stream."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import operator
import typing as t

from ..exceptions import ConfigurationError

#: Default size of the chunks a body is read and sent in (``DOWNLOAD_CHUNK_SIZE``).
DEFAULT_CHUNK_SIZE = 64 * 1024


def as_index(value: t.Any, what: str) -> int:
    """``value`` as an ``int``, for a size, an offset or a chunk size.

    Accepts what :func:`operator.index` accepts (``int`` and integer-likes
    such as ``numpy.int64``), never a ``bool`` (``True`` is no number of
    bytes) nor a ``float``.

    :raises TypeError: ``value`` is not an integer.
    """
    if type(value) is int:
        return value
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise TypeError(f"{what} must be an int, not {type(value).__name__}.")


def checked_size(size: t.Any, what: str) -> int:
    """``size`` (not ``None``) as the number of bytes ``Content-Length`` says.

    A wrapper's ``-1`` ("unknown"), ``4.0`` or ``True`` would go out as
    ``Content-Length: -1`` (gunicorn then sends no byte at all), ``4.0`` or
    ``True``: refused before anything is sent. ``what`` names it in the
    message (``"VirtualFile size"``, ``"MyFile.size"``).

    :raises TypeError: not an integer (``None`` is the unknown size).
    :raises ConfigurationError: a negative size.
    """
    try:
        checked = as_index(size, what)
    except TypeError:
        raise TypeError(
            f"{what} must be a number of bytes (an int, or an integer such as"
            f" numpy.int64) or None, not {type(size).__name__}."
        ) from None
    if checked < 0:
        raise ConfigurationError(
            f"{what} must be a number of bytes >= 0, not {size!r}."
        )
    return checked


class DownloadFile:
    """Base class of every file wrapper; subclass it for your own sources.

    A subclass sets or computes the attributes it knows and implements
    :meth:`open` (seekable sources) or :meth:`chunks` (streams). A missing
    source raises :exc:`~flask_download.FileNotFound`, best from ``__init__``
    so that the view can answer 404 before anything else.
    """

    #: The file's own name (the view's ``basename`` wins over it).
    name: str | None = None
    #: Size in bytes, ``None`` when unknown (then no ``Content-Length`` is sent).
    size: int | None = None
    #: Last modification, an aware UTC :class:`~datetime.datetime`, or ``None``.
    modified_time: datetime.datetime | None = None
    #: A strong entity tag, bare (without quotes), or ``None``.
    etag: str | None = None
    #: A URL the file can also be fetched from, or ``None``.
    url: str | None = None
    #: Path of a regular file on the local disk, or ``None``. Lets servers
    #: send the file with ``sendfile`` (when :meth:`open` gives a plain file
    #: object, not a stream that transforms the bytes) and offload rules
    #: match it.
    path: str | None = None
    #: The real path of :attr:`path` as the confined opener walked it
    #: (:func:`~flask_download.paths.open_confined`), or ``None`` when the
    #: path is trusted. Offload rules match it instead of resolving
    #: :attr:`path` again.
    real_path: str | None = None
    #: Media type known by the source (the view's ``mimetype`` wins over it).
    mimetype: str | None = None
    #: ``Content-Encoding`` known by the source, such as ``"gzip"``.
    encoding: str | None = None
    #: Character set of a text file known by the source.
    charset: str | None = None
    #: Whether the bytes are text this wrapper encoded with :attr:`charset`
    #: (a ``str`` or text stream given to :class:`VirtualFile`): the response
    #: then announces that charset even when the view names another.
    encoded_text: bool = False
    #: The CRC-32 of the content, or ``None``. Optional: archives
    #: (:class:`~flask_download.ArchiveFile`) use it to answer ranges without
    #: reading the whole member (set it from a database column, say).
    crc32: int | None = None
    #: Whether :meth:`open` returns a seekable stream of exactly :attr:`size`
    #: bytes, so that ``Range`` requests can be answered.
    seekable: bool = False
    #: Whether :meth:`chunks` honours ``start`` and ``stop`` without reading
    #: the bytes before ``start``, for a source that is not :attr:`seekable`
    #: (:class:`~flask_download.HTTPFile` asks its server for the range).
    #: Archives use it to read only the part of a member a range needs.
    sliceable: bool = False
    # Text encoded as it is streamed (VirtualFile): the response may still
    # choose its charset, and sets ``charset`` when the view gives one.
    _streams_text: bool = False

    def open(self) -> t.IO[bytes]:
        """Open the content as a binary stream positioned at its start.

        The caller closes the stream.

        :raises FileNotFound: the source is gone.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot be opened; override 'open' or 'chunks'."
        )

    def chunks(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        start: int = 0,
        stop: int | None = None,
    ) -> cabc.Iterator[bytes]:
        """Yield the bytes ``[start, stop)`` in chunks of at most ``chunk_size``.

        The default implementation reads :meth:`open`; ``start`` and ``stop``
        are honoured only by seekable sources.
        """
        with self.open() as handle:
            yield from read_slice(handle, chunk_size, start, stop)

    def unchanged_check(self, handle: t.IO[bytes]) -> cabc.Callable[[], bool] | None:
        """Return a callable telling whether ``handle`` still holds the version
        the headers describe, or ``None`` when the source cannot tell.

        Checked after each chunk streamed by Python, so that a file rewritten
        in place mid-download ends the body short instead of mixing versions.
        """
        return None

    def close(self) -> None:
        """Release what the wrapper holds (an open stream, a connection).

        Called once the response is done with the file, on every path.
        """

    def __enter__(self) -> DownloadFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def read_slice(
    handle: t.IO[bytes],
    chunk_size: int,
    start: int = 0,
    stop: int | None = None,
    unchanged: cabc.Callable[[], bool] | None = None,
) -> cabc.Generator[bytes, None, int]:
    """Yield the bytes ``[start, stop)`` of an open stream, seeking to ``start``.

    Reads only what is sent: a range near the end of a large file costs one
    seek, not a read from byte 0.

    :param unchanged: called after each read; when it returns ``False`` the
        source changed under the reader and the body ends before that chunk
        (a short body the client detects, never two versions mixed).
    :return: (the generator's return value, seen by ``yield from``) how
        many bytes of the span were not yielded because the stream ended
        or changed early; 0 when the span was complete or had no ``stop``.
    """
    start = as_index(start, "start")
    if stop is not None:
        stop = as_index(stop, "stop")
    chunk_size = as_index(chunk_size, "chunk_size")
    if start:
        handle.seek(start)
    remaining = -1 if stop is None else stop - start
    while remaining:
        data = handle.read(chunk_size if remaining < 0 else min(chunk_size, remaining))
        if not data or (unchanged is not None and not unchanged()):
            # The file shrank or changed since its size was read: end the
            # body early rather than pad it or mix versions.
            return max(remaining, 0)
        if remaining > 0:
            remaining -= len(data)
        yield data
    return 0
