"""PathFile: a regular file on the local disk, and the descriptors it holds."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import datetime
import functools
import hashlib
import io
import os
import stat
import threading
import time
import typing as t

from ..exceptions import ConfigurationError
from ..exceptions import FileNotFound
from ..paths import ConfinedPath
from ..paths import open_confined
from ..paths import open_path
from ..paths import split_relative
from ._base import DownloadFile


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
    # Hashed: the stat fields themselves would tell every client the file's
    # inode number and change time to the nanosecond (the information leak
    # of CVE-2003-1418). The same stat still gives the same tag in every
    # process, and any change gives another one.
    if modified is None:
        token = f"{st.st_ctime_ns:x}-{st.st_size:x}-{st.st_ino:x}"
        return "c" + hashlib.blake2b(token.encode(), digest_size=16).hexdigest()
    token = f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}-{st.st_ctime_ns:x}"
    return hashlib.blake2b(token.encode(), digest_size=16).hexdigest()


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
# Up to a quarter of a second in all: an appending writer descheduled on a
# loaded machine (CI saw 31 ms fall short) is waited for, a rewrite in place
# at the same size is still stopped soon.
_APPEND_PAUSES = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128)


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
