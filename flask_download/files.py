"""File wrappers: what a download view serves.

A wrapper tells what it knows about its source (:attr:`~DownloadFile.name`,
:attr:`~DownloadFile.size`, :attr:`~DownloadFile.modified_time`,
:attr:`~DownloadFile.etag`, :attr:`~DownloadFile.url`) and ``None`` for the
rest, and reads the bytes as an iterator of chunks.
"""

from __future__ import annotations

import codecs
import collections.abc as cabc
import contextlib
import datetime
import functools
import hashlib
import io
import operator
import os
import stat
import threading
import time
import typing as t

from ._grammar import valid_opaque_tag
from .conditional import as_utc
from .exceptions import ConfigurationError
from .exceptions import FileNotFound
from .paths import ConfinedPath
from .paths import open_confined
from .paths import open_path
from .paths import split_relative

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
    #: send the file with ``sendfile`` and offload rules match it.
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


_T = t.TypeVar("_T")


class _Forwarded(t.Generic[_T]):
    """An attribute of a :class:`_ForwardingFile`: its own value when it has
    one (``_overrides``), else the target wrapper's."""

    def __set_name__(self, owner: type[t.Any], name: str) -> None:
        self.name = name

    @t.overload
    def __get__(self, instance: None, owner: type[t.Any]) -> _Forwarded[_T]: ...
    @t.overload
    def __get__(self, instance: _ForwardingFile, owner: type[t.Any]) -> _T: ...
    def __get__(
        self, instance: _ForwardingFile | None, owner: type[t.Any]
    ) -> _T | _Forwarded[_T]:
        if instance is None:
            return self
        overrides = instance._overrides
        if self.name in overrides:
            return t.cast(_T, overrides[self.name])
        return t.cast(_T, getattr(instance._target(), self.name))

    def __set__(self, instance: _ForwardingFile, value: _T) -> None:
        if self.name in instance._overrides or not instance._writes_through:
            instance._overrides[self.name] = value
        else:
            setattr(instance._target(), self.name, value)


class _ForwardingFile(DownloadFile):
    """A wrapper that stands for another (:meth:`_target`): every attribute
    and method is the target's, but for the values in ``_overrides``.

    With ``_writes_through``, setting an attribute it has no value of its
    own for sets the target's (a response announcing the charset of
    streamed text tells the file that encodes it); else the value becomes
    its own.
    """

    _writes_through = False

    name = _Forwarded[str | None]()
    size = _Forwarded[int | None]()
    modified_time = _Forwarded[datetime.datetime | None]()
    etag = _Forwarded[str | None]()
    url = _Forwarded[str | None]()
    path = _Forwarded[str | None]()
    real_path = _Forwarded[str | None]()
    mimetype = _Forwarded[str | None]()
    encoding = _Forwarded[str | None]()
    charset = _Forwarded[str | None]()
    encoded_text = _Forwarded[bool]()
    crc32 = _Forwarded[int | None]()
    seekable = _Forwarded[bool]()
    sliceable = _Forwarded[bool]()
    _streams_text = _Forwarded[bool]()

    _overrides: dict[str, t.Any]

    def _target(self) -> DownloadFile:
        raise NotImplementedError

    def open(self) -> t.IO[bytes]:
        return self._target().open()

    def chunks(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        start: int = 0,
        stop: int | None = None,
    ) -> cabc.Iterator[bytes]:
        return self._target().chunks(chunk_size, start, stop)

    def unchanged_check(self, handle: t.IO[bytes]) -> cabc.Callable[[], bool] | None:
        return self._target().unchanged_check(handle)


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


@functools.lru_cache(maxsize=1024)
def _utc(timestamp: float) -> datetime.datetime | None:
    """An mtime as an aware UTC datetime, or ``None`` when it tells nothing.

    0 and negative mtimes (reproducible builds, archives extracted without
    times, clock errors) and those out of :class:`~datetime.datetime`'s
    range (year 10000, ``±1e13`` s) give ``None``: no ``Last-Modified``
    rather than a wrong one or a 500. Cached: the same mtime gives the same
    (immutable) datetime, whose HTTP-date is cached in turn.
    """
    if not timestamp > 0:  # also NaN
        return None
    try:
        return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _stat_etag(st: os.stat_result, modified: datetime.datetime | None) -> str:
    # A strong entity tag from a file's stat (``modified`` is _utc of its
    # mtime), reading nothing. It changes when the content is replaced or
    # rewritten: a new inode, size or mtime. When the mtime tells nothing
    # (every file of a reproducible build has the same one) the change
    # time, which no one can set back, stands in for it.
    # The change time is in both: a rewrite in place that puts the mtime
    # back (cp -p, rsync -t, reproducible builds) still changes it.
    if modified is None:
        return f"c{st.st_ctime_ns:x}-{st.st_size:x}-{st.st_ino:x}"
    return f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}-{st.st_ctime_ns:x}"


class PathFile(DownloadFile):
    """A regular file on the local disk.

    The file is opened when the wrapper is made, and what the headers say
    (size, modification time, ETag) comes from ``fstat`` of that open
    descriptor, which is also the one the body is read from: a name swapped
    for another file or a symbolic link afterwards changes nothing. A file
    that grows while it is sent yields the bytes announced; one that
    shrinks ends the body short. :meth:`close` releases the descriptor (the
    views do it on every path: body sent, ``HEAD``, 304, 412, 416).

    :param path: with ``root``, a relative path from the client, opened with
        :func:`~flask_download.paths.open_confined`: it never leaves
        ``root``, symbolic links included. Without ``root``, a trusted path
        (absolute, or relative to the working directory) opened as is:
        never pass client input without ``root``. A ``bytes`` path is
        decoded as the file system does (:func:`os.fsdecode`): :attr:`name`
        and :attr:`path` are ``str``.
    :param name: the client-side name; defaults to the last part of
        ``path`` as given (a link's own name, not its target's).
    :param root: the trusted directory a client path is confined to.
    :raises FileNotFound: ``path`` is refused, missing, not a regular file,
        or unreadable.
    :raises ConfigurationError: ``root`` is empty.
    """

    seekable = True

    path: str
    _fd: int | None = None
    _root: str = ""
    _real_root: str = ""

    def __init__(
        self,
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        name: str | None = None,
        *,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        if root is not None and not os.fsdecode(root):
            # os.path.join("", path) is the working directory's: never what
            # an empty MEDIA_ROOT (say) meant.
            raise ConfigurationError(
                "PathFile got an empty root: pass the directory the path must"
                " stay in, or root=None for a trusted path."
            )
        asked: str | None = None
        if isinstance(path, ConfinedPath) and (
            root is None or _same_root(root, path.root)
        ):
            # From PathDownloadView.get_path(): still a client path.
            root = path.root
            segments: cabc.Sequence[str] = path.segments
        elif root is not None:
            segments = split_relative(os.fsdecode(path))
        if root is not None:
            self._root = os.fsdecode(root)
            opened = open_confined(self._root, segments)
            self.real_path = opened.path
            self._real_root = opened.root
            # The name the file was asked by, not its target's: a link
            # "latest.pdf" -> "v2.pdf" downloads as "latest.pdf", as a
            # trusted path (and flask.send_from_directory) does.
            asked = segments[-1]
        else:
            # A bytes path (or bytes PathLike) is spelled as a str, the way
            # os.fsdecode reads file names: name and path are always str.
            opened = open_path(os.fsdecode(path))
        self._fd = _hold(opened.fd)
        st = self._stat = opened.stat
        self.path = opened.path
        self._identity = _identity(st)
        if name is None:
            name = os.path.basename(self.path) if asked is None else asked
        self.name = name
        self.size = st.st_size
        self.modified_time = modified = _utc(st.st_mtime)
        self.etag = _stat_etag(st, modified)

    def open(self) -> t.IO[bytes]:
        """A stream of the file, from its start.

        The first call hands over the descriptor opened by the wrapper;
        later calls open the path again (confined the same way) and make
        sure it is still the same, unchanged file.

        :raises FileNotFound: the file is gone or was replaced or modified.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            fd = self._open_again()
        else:
            _release()
        try:
            raw = io.FileIO(fd, "rb", closefd=True)
        except BaseException:
            os.close(fd)
            raise
        return io.BufferedReader(raw)

    def _open_again(self) -> int:
        if self.real_path is not None:
            # The path walked the first time, relative to the root as it
            # was then (a root that is a link may name another folder now:
            # then the file found is another one, and refused below).
            relative = os.path.relpath(self.real_path, self._real_root)
            opened = open_confined(self._root, relative.split(os.sep))
        else:
            opened = open_path(self.path)
        st = opened.stat
        if not _same_or_grown(st, self._identity) or (
            # Found by its name again at the same size: a rewrite in place
            # that put the mtime back (cp -p, rsync -t) still moved the ctime.
            st.st_size == self._stat.st_size
            and st.st_ctime_ns != self._stat.st_ctime_ns
        ):
            os.close(opened.fd)
            raise FileNotFound(f"{self.path!r} changed while it was served.")
        return opened.fd

    def unchanged_check(self, handle: t.IO[bytes]) -> cabc.Callable[[], bool] | None:
        try:
            fd = handle.fileno()
        except (AttributeError, OSError, ValueError):
            return None  # a stream of a subclass, not a descriptor
        identity = self._identity
        size = identity[3]

        def unchanged() -> bool:
            # The rule of _same_or_grown: a grown file (a log being appended
            # to) still holds the announced bytes; a shrunk or rewritten one
            # would mix versions.
            st = os.fstat(fd)
            if _same_or_grown(st, identity):
                return True
            if st.st_size != size:
                return False
            # Same size, new mtime: a rewrite in place, or an append caught
            # between the kernel stamping the write and extending the file
            # (the mtime is updated first). Look again for a little while
            # (the writer may not get the CPU at once on a loaded machine)
            # before stopping.
            for pause in _APPEND_PAUSES:
                time.sleep(pause)
                if os.fstat(fd).st_size > size:
                    return True
            return False

        return unchanged

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _release()
            os.close(fd)

    def __del__(self) -> None:
        # A wrapper dropped without close() (made only to read its size):
        # release the descriptor rather than leak it.
        fd, self._fd = self._fd, None
        if fd is not None:
            # Also at interpreter exit, when module globals may be gone.
            with contextlib.suppress(Exception):
                os.close(fd)
            with contextlib.suppress(Exception):
                _release()


def _same_root(given: str | os.PathLike[str], confined: str) -> bool:
    # Whether a root passed along with a ConfinedPath is the one it was
    # confined to, spelled either way (trailing slash, relative, bytes).
    given = os.path.abspath(os.fsdecode(given))
    return given == os.path.abspath(confined)


#: Most descriptors that :class:`PathFile` wrappers hold open between their
#: creation and their body. A request holds one; an archive of thousands of
#: members would hold thousands and run out. Past this many, a new wrapper
#: closes its descriptor after ``fstat`` and opens the file again for its
#: body, confined the same way and checked to be the same, unchanged file.
MAX_HELD_DESCRIPTORS = 256

_held = 0
_held_lock = threading.Lock()


def _hold(fd: int) -> int | None:
    global _held
    with _held_lock:
        if _held < MAX_HELD_DESCRIPTORS:
            _held += 1
            return fd
    os.close(fd)
    return None


def _release() -> None:
    global _held
    with _held_lock:
        _held -= 1


#: Pauses (seconds) while an unchanged-size file with a new mtime is watched
#: for the append that explains it: about 30 ms in all, paid only by a
#: file rewritten in place while it is sent.
_APPEND_PAUSES = (0.001, 0.002, 0.004, 0.008, 0.016)


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    # The file type, not the permission bits: a chmod while a file is sent
    # changes nothing in its bytes (nor does a chown, or a new atime).
    return (stat.S_IFMT(st.st_mode), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _same_or_grown(st: os.stat_result, identity: tuple[int, ...]) -> bool:
    """Whether ``st`` is the file ``identity`` described, or that file grown.

    A file appended to still holds the announced bytes (DESIGN: a growing
    file is sent as announced); one that shrank or was rewritten in place
    at the same size is another version.
    """
    kind, dev, ino, size, mtime_ns = identity
    if (stat.S_IFMT(st.st_mode), st.st_dev, st.st_ino) != (kind, dev, ino):
        return False
    # Not the ctime: unlinking or replacing the name of a file being sent
    # moves it, and that file is still the one announced.
    return st.st_size > size or (st.st_size == size and st.st_mtime_ns == mtime_ns)


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
    checked: int | None = None
    if size is not None:
        try:
            checked = as_index(size, "size")
        except TypeError:
            raise TypeError(
                "VirtualFile size must be a number of bytes (an int, or an"
                f" integer such as numpy.int64) or None, not {type(size).__name__}."
            ) from None
        if checked < 0:
            raise ConfigurationError(
                f"VirtualFile size must be a number of bytes >= 0, not {size!r}."
            )
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


def _seek(stream: t.IO[bytes], offset: int, whence: int) -> int:
    """``stream.seek(offset, whence)``: the new position, also from a
    ``seek`` that returns ``None`` (it is then asked with ``tell``)."""
    position = stream.seek(offset, whence)
    return position if isinstance(position, int) else stream.tell()


def _is_seekable(stream: t.IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class SizedReader(io.RawIOBase):
    """A seekable binary stream of a known size, read by :meth:`read`.

    Keeps the position; subclasses implement ``read`` from it (and may
    update ``_size`` when the source turns out shorter).
    """

    def __init__(self, size: int) -> None:
        self._size = as_index(size, "size")
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        offset = as_index(offset, "offset")
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence == io.SEEK_END:
            offset += self._size
        if offset < 0:
            raise ValueError("negative seek position")
        self._position = offset
        return offset

    def readinto(self, buffer: t.Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Unclosed(io.RawIOBase):
    """A view of a caller-owned stream whose ``close`` leaves the stream open.

    Offsets are relative to where the content starts in the stream.
    """

    def __init__(self, stream: t.IO[bytes], start: int) -> None:
        self._stream = stream
        self._start = start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._stream.read(-1 if size is None else size)

    def readinto(self, buffer: t.Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        offset = as_index(offset, "offset")
        if whence == io.SEEK_SET:
            offset += self._start
        return _seek(self._stream, offset, whence) - self._start

    def tell(self) -> int:
        return self._stream.tell() - self._start


#: The caller's file objects sent by their descriptor: these exact types over
#: an :class:`io.FileIO` read the bytes of the file itself. Others that have
#: a ``fileno()`` may read something else (a :class:`gzip.GzipFile` gives the
#: bytes its file decompresses to, a subclass may override ``read``).
_LOCAL_TYPES = (io.BufferedReader, io.BufferedRandom, io.FileIO)


def _local_file(content: object) -> _LocalFile | None:
    """A :class:`_LocalFile` for a caller's binary file on the local disk
    (``open(path, "rb")``), or ``None`` for any other object (sent by
    :class:`~flask_download.VirtualFile`)."""
    if type(content) not in _LOCAL_TYPES:
        return None
    raw = content if type(content) is io.FileIO else getattr(content, "raw", None)
    if type(raw) is not io.FileIO:
        return None
    stream = t.cast(io.IOBase, content)
    try:
        if not (stream.readable() and stream.seekable()):
            return None
        if stream.writable():
            # A file written to (a temporary file): its size on the disk
            # includes what is still buffered.
            stream.flush()
        start = stream.tell()
        fd = stream.fileno()
        st = os.fstat(fd)
    except (OSError, ValueError):
        # Closed, or not what it seems: VirtualFile says what is wrong.
        return None
    if not stat.S_ISREG(st.st_mode) or not st.st_size:
        # A pipe, a terminal, /dev/zero; or a size that tells nothing (procfs
        # files say 0 and have content; an empty file has nothing to send):
        # VirtualFile streams them as they come.
        return None
    return _LocalFile(stream, fd, start, max(st.st_size - start, 0), st)


class _LocalFile(DownloadFile):
    """A caller's binary file on the local disk, from its current position
    (``send_download(open(path, "rb"))``).

    As ``send_file`` does, the server's ``wsgi.file_wrapper`` (``sendfile``)
    sends it, whole or as one range (the response engine looks for
    :attr:`start`): its bytes are read by the descriptor, with offsets
    counted from where the file was when it was handed over.
    It has no :attr:`~flask_download.DownloadFile.path` (offload rules and
    ``max_age`` callables never see a path for a file object, as with
    ``send_file``), no ETag and no ``Last-Modified`` unless given.
    """

    seekable = True

    def __init__(
        self,
        stream: io.IOBase,
        fd: int,
        start: int,
        size: int,
        st: os.stat_result,
    ) -> None:
        self._source = stream
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)
        self.start = start
        self.size = size

    def open(self) -> t.IO[bytes]:
        # Closed by the view (``with open(...) as f: return send_download(f)``),
        # the descriptor number may already be another file's, opened since
        # (another request's): never read it. As send_file does, fail.
        if self._source.closed or not _same_file(self._fd, self._identity):
            raise ValueError(
                f"I/O operation on closed file: {self._source!r} was closed"
                " before its response was sent. send_download closes it with"
                " the response: do not close it (no 'with' block around it)."
            )
        return t.cast(t.IO[bytes], _FromOffset(self._fd, self.start))

    def close(self) -> None:
        self._source.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._source!r} from {self.start}>"


def _same_file(fd: int, identity: tuple[int, int]) -> bool:
    """Whether the descriptor ``fd`` is still open on the file ``identity``
    (its device and inode)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == identity


class _FromOffset(io.RawIOBase):
    """A file's descriptor read from ``start`` on: offsets count from
    ``start``, the descriptor's own position is the real one (what
    ``sendfile`` starts from). Closing it leaves the descriptor open: the
    caller's file object owns it. It is made at ``position`` (counted
    from ``start``)."""

    def __init__(self, fd: int, start: int, position: int = 0) -> None:
        self._fd = fd
        self._start = start
        os.lseek(fd, start + position, os.SEEK_SET)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return os.read(self._fd, size)

    def readinto(self, buffer: t.Any) -> int:
        data = os.read(self._fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            if offset < 0:
                raise ValueError(f"negative seek position {offset}")
            offset += self._start
        return os.lseek(self._fd, offset, whence) - self._start

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR) - self._start
