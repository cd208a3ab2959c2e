"""The one confined opener for the local disk, and checks of client paths.

Every source that reads a local file named by a client (a URL path, a key
stored in a row, a key of a local or ``DirFileSystem`` storage) goes
through :func:`open_confined`. It never checks a name and opens it later:
it walks the path one segment at a time, each segment opened relative to
the descriptor of the directory before it with ``O_NOFOLLOW``, so the
descriptor it returns is the file that was checked. A symbolic link met on
the way is read (``readlink``) and followed only while its target stays
inside the root, the way ``openat2(RESOLVE_IN_ROOT)`` and nginx's
``disable_symlinks`` resolve; a link swapped in at any moment can point
outside, but the walk never crosses it. Size, modification time and entity
tag are then taken with ``fstat`` from that descriptor.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import errno
import functools
import os
import re
import stat
import threading
import typing as t
from urllib.parse import unquote

from .exceptions import FileNotFound

# A Windows drive ("C:") anywhere a segment starts: refused everywhere so
# that the same URL behaves alike whatever the server's OS.
_DRIVE = re.compile(r"^[a-z]:", re.IGNORECASE)
# Windows device names. Windows reserves them with any extension ("nul.txt",
# "con.tar.gz"), before a stream (":"), with trailing spaces or dots
# ("CON ", "nul."), and spells COM/LPT ports with superscript digits too.
_DEVICE_NAMES = frozenset(
    [
        "con",
        "prn",
        "aux",
        "nul",
        "conin$",
        "conout$",
        *(f"{port}{digit}" for port in ("com", "lpt") for digit in "0123456789¹²³"),
    ]
)
# C0 controls (NUL, TAB, CR, LF...), DEL and C1 controls (U+0080-U+009F,
# such as NEL, "%C2%85"): no file name a client asks for holds one.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Percent-escapes of "/", "\" and "%" itself (a double encoding).
_ESCAPE = re.compile("%[0-9a-f]{2}", re.IGNORECASE)

#: Most symbolic links followed while opening one path (Linux's MAXSYMLINKS).
MAX_SYMLINKS = 40


def is_windows_device(segment: str) -> bool:
    """Whether Windows takes ``segment`` for a device (``CON``, ``COM¹``...)."""
    stem = segment.split(".", 1)[0].split(":", 1)[0].rstrip(" .")
    return stem.lower() in _DEVICE_NAMES


def _refused_segment(segment: str) -> bool:
    return segment == ".." or bool(_DRIVE.match(segment)) or is_windows_device(segment)


def split_relative(untrusted: str) -> list[str]:
    """Split a client-supplied relative path into safe segments.

    Refuses (with :exc:`~flask_download.FileNotFound`, so views answer 404) empty paths,
    absolute paths, backslashes, C0 and C1 control characters (NUL
    included), ``..`` segments, Windows drives and Windows device names in
    every spelling Windows accepts (``CON``, ``nul.txt``, ``COM¹``,
    ``CONIN$``, ``"CON "``), and a path ending in ``/`` or ``/.`` (it names a
    directory). Other ``.`` and empty segments are dropped.

    This is a syntactic check: symbolic links are the opener's business
    (:func:`open_confined`).

    :raises FileNotFound: the path could leave its root.
    """
    # The checks of a path seen lately are not made again: the same URLs
    # come back (short ones only, so the cache stays small). A fresh list
    # each time: callers may change it.
    if len(untrusted) <= _CACHED_PATH_LENGTH:
        return list(_split_cached(untrusted))
    return _split(untrusted)


#: Longest path whose checked segments :func:`split_relative` keeps.
_CACHED_PATH_LENGTH = 512


@functools.lru_cache(maxsize=1024)
def _split_cached(untrusted: str) -> tuple[str, ...]:
    # Refused paths raise, and lru_cache keeps no exception: only checked
    # segments are remembered.
    return tuple(_split(untrusted))


def _split(untrusted: str) -> list[str]:
    if not untrusted or "\\" in untrusted or untrusted.startswith("/"):
        raise FileNotFound(f"Refused path {untrusted!r}.")
    if _CONTROL.search(untrusted):
        raise FileNotFound(f"Refused path {untrusted!r}.")
    raw = untrusted.split("/")
    if raw[-1] in ("", "."):
        # "file.txt/" or "file.txt/." names a directory (POSIX: ENOTDIR for
        # a file), and no directory is ever served: one URL per file.
        raise FileNotFound(f"Refused path {untrusted!r}.")
    segments = [s for s in raw if s not in ("", ".")]
    if not segments or any(_refused_segment(s) for s in segments):
        raise FileNotFound(f"Refused path {untrusted!r}.")
    return segments


def split_key(untrusted: str) -> list[str]:
    """Split a client-supplied key of a remote store into safe segments.

    Like :func:`split_relative`, and each segment is also checked after
    percent-decoding it (repeatedly, as long as escapes remain): a store
    that decodes keys once more (an HTTP store, a URL-built API) can never
    see a ``..`` or ``.`` segment, a ``/`` or ``\\`` inside a segment, or a
    control character that the first check did not. Escapes that do not
    decode as UTF-8 (``%ff``, overlong forms such as ``%c0%ae``) are
    refused too.

    :raises FileNotFound: the key could leave its prefix.
    """
    segments = split_relative(untrusted)
    for segment in segments:
        decoded = segment
        while "%" in decoded and _ESCAPE.search(decoded):
            try:
                decoded = unquote(decoded, errors="strict")
            except UnicodeDecodeError:
                # Escapes that are not UTF-8 ("%ff", the overlong "%c0%ae"
                # some decoders read as "."): a store decoding them again
                # could see anything.
                raise FileNotFound(f"Refused key {untrusted!r}.") from None
            if (
                decoded in ("", ".", "..")
                or "/" in decoded
                or "\\" in decoded
                or _CONTROL.search(decoded)
                or _refused_segment(decoded)
            ):
                raise FileNotFound(f"Refused key {untrusted!r}.")
    return segments


class ConfinedPath(str):
    """A path string that remembers it must stay inside ``root``.

    :meth:`PathDownloadView.get_path() <flask_download.PathDownloadView.get_path>`
    returns one for a URL path, so that ``PathFile(view.get_path())`` in a
    subclass still opens it with :func:`open_confined` instead of following
    whatever the name points to by then (passing ``root=`` along with it is
    fine when it names the same root; another root refuses it).
    """

    root: str
    segments: tuple[str, ...]

    def __new__(cls, root: str, segments: cabc.Sequence[str]) -> ConfinedPath:
        # os.path.join(root, *segments), for checked relative segments.
        joined = os.sep.join(segments)
        path = root + joined if root.endswith(os.sep) else root + os.sep + joined
        self = super().__new__(cls, path)
        self.root = root
        self.segments = tuple(segments)
        return self


class Opened(t.NamedTuple):
    """A regular file opened by :func:`open_confined` or :func:`open_path`."""

    #: The open descriptor, read-only; the caller closes it.
    fd: int
    #: ``os.fstat(fd)``.
    stat: os.stat_result
    #: The path the file was reached by: for a confined open, the real
    #: (symlink-free) path below the real root, as walked.
    path: str
    #: For a confined open, the real path of the root it was walked from.
    root: str = ""


# O_NONBLOCK: opening a FIFO planted under the root must not hang the
# worker (it is refused after fstat). O_NOCTTY: a terminal never becomes
# the process's controlling terminal.
_FILE_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# Directories are only walked through: O_PATH (Linux) needs no read
# permission and reads nothing; elsewhere O_RDONLY.
_DIR_FLAGS = (
    getattr(os, "O_PATH", os.O_RDONLY)
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_OPEN_FILE = _FILE_FLAGS | _NOFOLLOW
_OPEN_DIR = _DIR_FLAGS | _NOFOLLOW
#: Whether this platform can walk a path relative to directory descriptors
#: (Linux, macOS, the BSDs). Elsewhere :func:`open_confined` checks the
#: real path, then compares the opened file with it (best effort).
HAS_DIR_FD = os.open in os.supports_dir_fd and bool(_NOFOLLOW)
# errno values of an O_NOFOLLOW open that met a symbolic link: ELOOP (Linux,
# macOS), EMLINK (FreeBSD), ENOTDIR (a link where O_DIRECTORY wants a
# directory, and O_PATH|O_NOFOLLOW on Linux).
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK, errno.ENOTDIR})


# root as given -> ((real path, absolute path), identity) of the directory
# it named when last looked at, oldest first. A root that is itself a
# symbolic link ("current" -> a release) is followed on every open, and its
# real path resolved again once it names another directory: identity is
# (st_dev, st_ino, st_ctime_ns), so an inode number reused by a new
# directory is not taken for the old one.
_root_cache: collections.OrderedDict[
    str, tuple[tuple[str, str], tuple[int, int, int]]
] = collections.OrderedDict()
_root_lock = threading.Lock()
_ROOT_CACHE_SIZE = 256


def _identity_of(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


def _roots(root: str) -> tuple[str, str]:
    # The real root, and the absolute root as configured (an absolute link
    # target may spell it either way). Trusted.
    cached = _root_cache.get(root)
    if cached is not None:
        return cached[0]
    absolute = os.path.abspath(root)
    return os.path.realpath(absolute), absolute


def _current(root: str, st: os.stat_result) -> tuple[str, str]:
    """The real and absolute paths of ``root``, whose directory (followed
    through links) has the stat ``st`` now; resolved again only when that
    is another directory than last time."""
    identity = _identity_of(st)
    cached = _root_cache.get(root)
    if cached is not None and cached[1] == identity:
        return cached[0]
    absolute = cached[0][1] if cached is not None else os.path.abspath(root)
    real = os.path.realpath(absolute)
    if _identity_of(os.stat(real)) != identity:
        # Swapped again between the look and realpath.
        raise OSError(errno.EAGAIN, "the directory changed while it was resolved")
    with _root_lock:
        # Oldest first out, not least recently used: no lock per request
        # on a hit (a root pushed out by 256 others is resolved again).
        _root_cache[root] = ((real, absolute), identity)
        _root_cache.move_to_end(root)
        while len(_root_cache) > _ROOT_CACHE_SIZE:
            _root_cache.popitem(last=False)
    return real, absolute


def _open_root(root: str) -> tuple[int, tuple[str, str]]:
    """Open the trusted ``root`` (following its own links) and return its
    descriptor with its real and absolute paths, as they are now."""
    cached = _root_cache.get(root)
    if cached is not None:
        # The common case: the same directory as last time.
        fd = os.open(cached[0][1], _DIR_FLAGS)
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if (st.st_dev, st.st_ino, st.st_ctime_ns) == cached[1]:
            return fd, cached[0]
        os.close(fd)
    for attempt in (1, 2):
        fd = os.open(os.path.abspath(root), _DIR_FLAGS)
        try:
            return fd, _current(root, os.fstat(fd))
        except OSError as e:
            os.close(fd)
            if e.errno != errno.EAGAIN or attempt == 2:
                raise
        except BaseException:
            os.close(fd)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def resolved_dir(path: str) -> str:
    """The real path of the trusted directory ``path`` as it is now: one
    ``stat`` when it names the same directory as last time (links in
    ``path`` followed anew, as :func:`open_confined` does for its root)."""
    for attempt in (1, 2):
        try:
            return _current(path, os.stat(path))[0]
        except OSError as e:
            if e.errno != errno.EAGAIN or attempt == 2:
                # Missing: no file is inside it, whatever its spelling.
                return os.path.abspath(path)
    raise AssertionError("unreachable")  # pragma: no cover


def _below(target: str, roots: tuple[str, ...]) -> list[str] | None:
    # The segments of an absolute link target below one of the root spellings.
    for base in roots:
        base = base.rstrip(os.sep)
        if target == base:
            return []
        if target.startswith(base + os.sep):
            return target[len(base) + 1 :].split(os.sep)
    return None


def _refuse(untrusted: str | cabc.Sequence[str], reason: str) -> t.NoReturn:
    raise FileNotFound(f"Refused {_shown(untrusted)!r}: {reason}.")


def open_confined(
    root: str | os.PathLike[str], untrusted: str | cabc.Sequence[str]
) -> Opened:
    """Open a client-supplied relative path as a regular file inside ``root``.

    The path is checked with :func:`split_relative`, then opened segment
    by segment relative to the root's descriptor, each with
    ``O_NOFOLLOW``: a symbolic link is followed only by reading it and
    going on inside the root (at most :data:`MAX_SYMLINKS` of them), so no
    link swapped in between two system calls can lead the walk out. The
    last segment is opened without blocking and must be a regular file
    (FIFOs, devices, sockets and directories are refused).

    :param root: a trusted directory (never from the client).
    :param untrusted: a relative path from the client, or its segments
        (already checked with :func:`split_relative`).
    :return: the open descriptor (the caller closes it), its ``fstat`` and
        its real path.
    :raises FileNotFound: the path is refused, leaves the root, is missing,
        unreadable or not a regular file, or changed while it was walked.
    """
    segments = (
        split_relative(untrusted) if isinstance(untrusted, str) else list(untrusted)
    )
    # A root given as bytes (or a bytes PathLike) is spelled as a str, the
    # way os.fsdecode reads file names, so paths joined to it never mix.
    root = os.fsdecode(root)
    if not HAS_DIR_FD:  # pragma: no cover - Windows
        return _open_checked(_roots(root), segments, _shown(untrusted))
    try:
        root_fd, roots = _open_root(root)
    except OSError as e:
        _refuse(untrusted, f"the root cannot be opened ({e.strerror})")
    # The directories walked so far, the root first; names[i] is the name
    # of fds[i + 1] in fds[i].
    fds = [root_fd]
    names: list[str] = []
    segments.reverse()  # a stack: the next segment is last
    links = 0
    try:
        while segments:
            segment = segments.pop()
            if segment in ("", "."):
                continue
            if segment == "..":
                # Only from a link's target (or unchecked segments): never
                # above the root.
                if not names:
                    _refuse(untrusted, "a link leads out of the root")
                os.close(fds.pop())
                names.pop()
                continue
            if os.sep in segment:
                # One name per open: os.open would follow links in the
                # other components of "a/b" (only from unchecked segments).
                _refuse(untrusted, "a segment holds a separator")
            last = not segments
            try:
                fd = os.open(segment, _OPEN_FILE if last else _OPEN_DIR, dir_fd=fds[-1])
            except OSError as e:
                if e.errno not in _LINK_ERRNOS:
                    _refuse(untrusted, e.strerror or "cannot open")
                try:
                    target = os.readlink(segment, dir_fd=fds[-1])
                except OSError:
                    _refuse(untrusted, e.strerror or "not a directory")  # no link
                links += 1
                if links > MAX_SYMLINKS:
                    _refuse(untrusted, "too many levels of symbolic links")
                if os.path.isabs(target):
                    below = _below(target, roots)
                    if below is None:
                        _refuse(untrusted, "a link leads out of the root")
                    # Start again from the root.
                    while len(fds) > 1:
                        os.close(fds.pop())
                    names.clear()
                    parts = below
                else:
                    parts = target.split(os.sep)
                segments.extend(reversed(parts))
                continue
            if last:
                path = os.path.join(roots[0], *names, segment)
                return _regular(fd, path, untrusted, roots[0])
            fds.append(fd)
            names.append(segment)
        _refuse(untrusted, "a directory")
    except ValueError as e:  # NUL, or a name the file system cannot encode
        _refuse(untrusted, str(e))
    finally:
        for fd in fds:
            os.close(fd)


def _shown(untrusted: str | cabc.Sequence[str]) -> str:
    return untrusted if isinstance(untrusted, str) else "/".join(untrusted)


def _regular(
    fd: int, path: str, shown: str | cabc.Sequence[str], root: str = ""
) -> Opened:
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            _refuse(shown, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return Opened(fd, st, path, root)


def open_path(path: str | os.PathLike[str]) -> Opened:
    """Open a trusted path (symbolic links followed) as a regular file.

    :param path: a path from the developer, never from a client.
    :raises FileNotFound: missing, unreadable or not a regular file.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, _FILE_FLAGS)
    except (OSError, ValueError) as e:
        raise FileNotFound(f"No file at {path!r}.") from e
    return _regular(fd, path, path)


def _open_checked(
    roots: tuple[str, str], segments: list[str], shown: str
) -> Opened:  # pragma: no cover - platforms without dir_fd (Windows)
    # Best effort: resolve, check, open, then make sure the opened file is
    # the one the resolved name designates (and not a link put there since).
    try:
        real = os.path.realpath(os.path.join(roots[0], *segments))
    except (OSError, ValueError):  # EINVAL, ELOOP... while links change
        _refuse(shown, "it changed while it was resolved")
    if not _below(real, roots[:1]):
        _refuse(shown, "it leaves the root")
    opened = open_path(real)
    try:
        if not os.path.samestat(opened.stat, os.lstat(real)):
            _refuse(shown, "it changed while it was opened")
    except OSError:
        os.close(opened.fd)
        _refuse(shown, "it changed while it was opened")
    except BaseException:
        os.close(opened.fd)
        raise
    return opened


def real_path(file: object) -> str | None:
    """The real path of a wrapper's local file, for offload rules.

    A wrapper that reached its file through :func:`open_confined` knows the
    path it walked (``real_path``); any other local wrapper's ``path`` is
    trusted and resolved with :func:`os.path.realpath`.
    """
    known = getattr(file, "real_path", None)
    if isinstance(known, str):
        return known
    path = getattr(file, "path", None)
    return None if path is None else os.path.realpath(path)
