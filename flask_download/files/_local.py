"""A caller's open binary file on the local disk, sent by its descriptor."""

from __future__ import annotations

import io
import os
import stat
import typing as t

from ._base import DownloadFile

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
