"""Client keys confined to a storage prefix, through filesystem wrappers."""

from __future__ import annotations

import functools
import ntpath
import os
import posixpath
import sys
import typing as t

from ..exceptions import ConfigurationError
from ..exceptions import FileNotFound
from ..paths import ConfinedPath
from ..paths import split_key
from ..paths import split_relative

if t.TYPE_CHECKING:
    from fsspec import AbstractFileSystem


def _is_local(fs: AbstractFileSystem) -> bool:
    return _local_path(fs, "") is not None


#: Most filesystem wrappers :func:`_local_path` looks through.
_MAX_WRAPPERS = 32


def _on_local_disk(
    fs: AbstractFileSystem, key: str
) -> tuple[AbstractFileSystem, str] | None:
    """The ``LocalFileSystem`` under ``fs`` and ``key`` as it is handed to
    it, or ``None`` when ``fs`` does not keep its files on the local disk.

    Done the way fsspec does it: each ``DirFileSystem`` joins its folder to
    the key (nested ones in turn, outermost first), and a caching wrapper
    (``simplecache::``, ``filecache::``, ``blockcache::``) or an
    ``AsyncFileSystemWrapper`` hands the key to the filesystem it wraps.
    """
    local, folder, caching, _ = _wrapper_classes()
    for _ in range(_MAX_WRAPPERS):
        if isinstance(fs, local):
            return fs, key
        if isinstance(fs, folder):
            key = fs._join(key)
            fs = fs.fs
        elif isinstance(fs, caching):
            fs = fs.fs
        elif _is_async_wrapper(fs):
            fs = fs.sync_fs
        else:
            return None
    return None


@functools.cache
def _wrapper_classes() -> tuple[type[t.Any], type[t.Any], type[t.Any], type[t.Any]]:
    """fsspec's ``LocalFileSystem``, ``DirFileSystem``, ``CachingFileSystem``
    and ``MemoryFileSystem``, imported once (on first use: fsspec is an
    extra). Import statements each time cost about 2 µs a key, on every
    request of a storage view."""
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem
    from fsspec.implementations.memory import MemoryFileSystem

    return LocalFileSystem, DirFileSystem, CachingFileSystem, MemoryFileSystem


def _local_path(fs: AbstractFileSystem, key: str) -> str | None:
    """The local path fsspec reads for ``key`` of ``fs``, or ``None`` when
    ``fs`` does not keep its files on the local disk.

    The ``LocalFileSystem`` under the wrappers (:func:`_on_local_disk`)
    makes the key absolute. ``key`` ``""`` is the folder keys are relative
    to (the working directory for a bare ``LocalFileSystem``). A local file
    is then opened by the one confined opener, never through the wrapper: a
    cache of the local disk would follow symbolic links out of the folder.
    """
    found = _on_local_disk(fs, key)
    if found is None:
        return None
    local, key = found
    return t.cast(str, local._strip_protocol(key or "."))


def _local_folder(fs: AbstractFileSystem, prefix: str) -> str | None:
    """The folder keys below ``prefix`` of ``fs`` are joined to on the local
    disk, as written (before fsspec makes it absolute against the working
    directory: ``""`` for a bare ``LocalFileSystem``), or ``None`` when
    ``fs`` does not keep its files on the local disk.
    """
    found = _on_local_disk(fs, prefix)
    if found is None:
        return None
    key = found[1]
    for protocol in ("file://", "local://", "file:", "local:"):
        if key.startswith(protocol):
            key = key[len(protocol) :]
            break
    # fsspec expands "~" (the home folder) as os.path.expanduser.
    return os.path.expanduser(key) if key.startswith("~") else key


def _is_absolute(folder: str) -> bool:
    if folder.startswith("/"):
        return True
    return os.name == "nt" and ntpath.isabs(folder)  # C:/srv, //server/share


def _is_root(folder: str) -> bool:
    if os.name == "nt":
        if folder[:1] == "/" and folder[2:3] == ":":
            folder = folder[1:]  # "file:///C:/" is "C:/", as fsspec reads it
        drive, rest = ntpath.splitdrive(ntpath.normpath(folder))
        if drive[:2] == "\\\\" and drive[2:3] not in ("?", "."):
            # A UNC share (//server/share): a folder of its own, maybe made
            # for the downloads, not the root of the machine's disk.
            return False
        return rest in ("", "\\", "/")
    return posixpath.normpath(folder) in ("/", "//")


def _url_path(url: str) -> str:
    """The folder of a local storage URL as written, with ``~`` expanded as
    fsspec expands it: that of its last part (``"simplecache::file:///srv"``
    -> ``"/srv"``, ``"file:/srv"`` -> ``"/srv"``, ``"file://~/files"`` ->
    the home folder's ``files``, ``"file://"`` -> ``""``)."""
    last = url.split("::")[-1]
    if "://" in last:
        path = last.partition("://")[2]
    else:
        # "file:/srv" (RFC 8089's short form); fsspec's protocols are
        # lowercase ("FILE:/srv" is a relative name to it).
        protocol, colon, rest = last.partition(":")
        path = rest if colon and protocol in ("file", "local") else last
    if os.name == "nt" and path[:1] == "/" and path[2:3] == ":":
        # "file:///C:/srv" is "C:/srv" to fsspec on Windows, not a folder
        # "/C:/srv" (which the working directory is never in).
        path = path[1:]
    return os.path.expanduser(path) if path.startswith("~") else path


def _holds_working_directory(folder: str) -> str | None:
    """The process's working directory if ``folder`` (absolute) is it or
    one of its parents, else ``None``: ``DirFileSystem(".")`` and
    ``DirFileSystem("..")`` are made absolute against it by fsspec, and
    would serve the project.

    Compared by path (symbolic links resolved, case folded on Windows), then
    by identity (device and inode), which also sees through names a path
    comparison misses: another case on a case-insensitive disk (macOS),
    a bind mount, a Windows short name.
    """
    try:
        cwd = os.path.realpath(os.getcwd())
        real = os.path.realpath(folder)
    except (OSError, ValueError):
        return None
    norm_cwd, norm_real = os.path.normcase(cwd), os.path.normcase(real)
    if norm_cwd == norm_real or norm_cwd.startswith(norm_real.rstrip(os.sep) + os.sep):
        return cwd
    try:
        target = os.stat(real)
    except (OSError, ValueError):
        return None  # no such folder (yet): it holds nothing
    current = cwd
    for _ in range(_MAX_PARENTS):
        try:
            if os.path.samestat(os.stat(current), target):
                return cwd
        except (OSError, ValueError):
            # One parent that cannot be looked at (no search permission on
            # its own parent): the ones above it still can.
            pass
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return None


#: Most parents of the working directory compared with a storage folder.
_MAX_PARENTS = 256


def _check_local_folder(
    fs: AbstractFileSystem,
    prefix: str,
    storage: t.Any = None,
    owner: str = "The storage",
) -> None:
    """Refuse to confine client paths or row keys to a local folder that is
    empty, relative or implicit (the working directory: the project, its
    instance config and database) or the root of the filesystem.

    :param fs: the filesystem and ``prefix`` from
        :func:`~flask_download.resolve_storage`.
    :param storage: the setting they came from: for a URL, its path as
        written must be absolute too (fsspec makes ``"file://"``,
        ``"file://."`` or ``"file://srv"`` absolute against the working
        directory).
    :param owner: who has the storage, for the message.
    :raises ConfigurationError: such a folder, on the local disk.
    """
    folder = _local_folder(fs, prefix)
    if folder is None:
        return  # not the local disk
    if isinstance(storage, str):
        written = _url_path(storage)
        if not _is_absolute(written) or _is_root(written):
            folder = written
    problem = _folder_problem(folder)
    if problem is not None:
        raise _folder_error(owner, _shown(storage, fs), problem)


def _folder_problem(folder: str) -> str | None:
    # What is wrong with a local folder client paths are confined to.
    if not _is_absolute(folder):
        problem = (
            "no folder"
            if not folder or folder in (".", "./")
            else f"the relative folder {folder!r}"
        )
        return (
            f"{problem}: client paths would be read relative to the process's"
            " working directory (usually the project, with its instance"
            " config, its database and its source)"
        )
    if _is_root(folder):
        return (
            f"the folder {folder!r}, the root of the filesystem: every file of"
            " the machine would be served"
        )
    return None


def _shown(storage: t.Any, fs: AbstractFileSystem | None) -> str:
    if isinstance(storage, str):
        return f"URL {storage!r}"
    return type(fs if fs is not None else storage).__name__


def _folder_error(
    owner: str, shown: str, what: str, advice: str | None = None
) -> ConfigurationError:
    if advice is None:
        advice = (
            "Give the folder to serve as an absolute path:"
            " storage='file:///srv/files', or"
            " DirFileSystem('/srv/files', fs=LocalFileSystem())"
            " (from fsspec.implementations.dirfs)."
        )
    return ConfigurationError(
        f"{owner}: client-supplied paths (and row keys) would be confined to"
        f" the local storage {shown}, which has {what}. {advice}"
    )


#: Protocols of URLs that are the local disk, maybe behind a folder or a
#: cache: resolved when a view is made, to check their folder then.
_LOCAL_PROTOCOLS = frozenset(
    ("file", "local", "dir", "simplecache", "filecache", "blockcache", "cached")
)


def check_storage_folder(storage: t.Any, owner: str) -> None:
    """Check, when a view, blueprint or column is made, that client paths
    or row keys of ``storage`` may be confined to it (see
    :func:`_check_local_folder`).

    An fsspec filesystem is checked as it is. A URL is only when every
    filesystem it chains is the local disk or a wrapper of it, by its path
    as written (no filesystem is made before the first request); others
    are checked at their first use. Anything else passes:
    :func:`~flask_download.resolve_storage` says what is wrong with it
    when used. Here a folder may not be the working directory or hold it
    either (``DirFileSystem(".")`` is that folder, made absolute).

    :raises ConfigurationError: an empty URL; a local folder that is empty, relative,
        implicit or the root, or the working directory or one of its
        parents.
    """
    from ._resolve import _protocols

    if isinstance(storage, str):
        if not storage:
            # An unset environment variable, say: fail now, not on each request.
            raise ConfigurationError(
                f"{owner}: the storage URL is empty: set it to an fsspec URL"
                " such as 's3://bucket/prefix', or to a filesystem instance."
            )
        if not set(_protocols(storage)) <= _LOCAL_PROTOCOLS:
            return
        # Judged as written, not resolved: the filesystem is made at the
        # first request (with fsspec's configuration as it is then), and
        # fsspec would make a relative folder absolute.
        folder: str | None = _url_path(storage)
        fs = None
    else:
        fsspec = sys.modules.get("fsspec")
        if fsspec is None or not isinstance(storage, fsspec.AbstractFileSystem):
            return
        fs = storage
        folder = _local_folder(fs, "")
    if folder is None:
        return  # not the local disk
    problem = _folder_problem(folder)
    if problem is not None:
        raise _folder_error(owner, _shown(storage, fs), problem)
    cwd = _holds_working_directory(folder)
    if cwd is not None:
        # An absolute folder that is the working directory or holds it:
        # also what DirFileSystem(".") or DirFileSystem("..") becomes, as
        # fsspec makes a relative folder absolute when the object is made.
        # Its own advice: "an absolute path" may be what was given.
        raise _folder_error(
            owner,
            _shown(storage, fs),
            f"the folder {folder!r}, which is (or holds) the process's working"
            f" directory {cwd!r}: everything in it would be served (usually"
            " the project: its source, its instance config, its database)",
            "Serve a folder that holds only the files to serve, outside the"
            " application (such as /srv/files next to /srv/app), not a parent"
            " of it; a relative DirFileSystem folder ('.', '..') is taken"
            " against the working directory. If the working directory is not"
            " the project, start the process from another one (gunicorn"
            " --chdir, systemd WorkingDirectory=).",
        )


def _is_async_wrapper(fs: AbstractFileSystem) -> bool:
    # fsspec's AsyncFileSystemWrapper (2024.12 and later), if imported at all.
    module = sys.modules.get("fsspec.implementations.asyn_wrapper")
    wrapper = getattr(module, "AsyncFileSystemWrapper", None)
    return wrapper is not None and isinstance(fs, wrapper)


def storage_key(fs: AbstractFileSystem, prefix: str, untrusted: str) -> str:
    """Join a client-supplied path to ``prefix``, refusing any way out of it.

    The path goes through :func:`~flask_download.paths.split_relative`
    (``..``, absolute paths, backslashes, control characters, ...), so the
    key always starts with ``prefix``. On the local disk (a
    ``LocalFileSystem``, ``file://`` URLs, a ``DirFileSystem`` over the
    local disk) the key is a :class:`~flask_download.paths.ConfinedPath`:
    :class:`~flask_download.StorageFile` opens it with the confined opener, so no
    symbolic link leads out of the prefix. Keys of other stores are also checked
    after percent-decoding each segment
    (:func:`~flask_download.paths.split_key`), so a store that decodes
    them again cannot be led out of the prefix either. Nor can a key pick
    another object than the one it names: s3fs reads ``key?versionId=...``
    as a version of ``key`` (an overwritten or deleted one), so no key of
    an S3 (or memory) store may hold ``?versionId=``; other remote stores
    read ``?`` or ``#`` as a version, a generation, a query or a fragment
    (gcsfs, adlfs, HTTP), so their keys may hold neither. Where the
    client's key starts with the bucket (an S3 filesystem given whole), that
    bucket may not be an ARN (an access point of any account, an Object
    Lambda, an Outpost: another endpoint).

    :param fs: the filesystem (from :func:`~flask_download.resolve_storage`).
    :param prefix: a trusted prefix (from :func:`~flask_download.resolve_storage`).
    :param untrusted: a relative path from the client.
    :raises FileNotFound: the path is refused (views answer 404).
    :raises ConfigurationError: ``fs`` keeps its files on the local disk
        and ``prefix`` (with the folders of the wrappers) is empty,
        relative or the root: a bare ``LocalFileSystem`` would read keys
        relative to the working directory. Give an absolute folder
        (``file:///srv/files``, or a ``DirFileSystem``).
    """
    root = _local_path(fs, prefix)
    if root is not None:
        _check_local_folder(fs, prefix, owner="storage_key()")
        return ConfinedPath(root, split_relative(untrusted))
    segments = split_key(untrusted)
    if _selects_another_object(fs, segments):
        raise FileNotFound(f"Refused key {untrusted!r}.")
    if ":" in segments[0] and _client_picks_bucket(fs, prefix):
        # A bucket name has no ":"; an ARN in its place sends the request
        # (signed with the app's credentials) to an access point of any
        # account, an Object Lambda or an Outpost: somewhere else than S3.
        raise FileNotFound(f"Refused key {untrusted!r}.")
    return "/".join([prefix, *segments]) if prefix else "/".join(segments)


def _innermost(fs: AbstractFileSystem) -> AbstractFileSystem:
    # The store behind DirFileSystem folders and caching wrappers.
    _, folder, caching, _ = _wrapper_classes()
    for _ in range(_MAX_WRAPPERS):
        if not isinstance(fs, (folder, caching)):
            break
        fs = fs.fs
    return fs


def _selects_another_object(fs: AbstractFileSystem, segments: list[str]) -> bool:
    """Whether a store would read part of these key segments as something
    else than the object's name (a version, a query, a fragment)."""
    inner = _innermost(fs)
    if _is_s3(inner) or isinstance(inner, _wrapper_classes()[3]):
        # s3fs splits "?versionId=" off every key (version_aware or not);
        # "?" and "#" alone are characters of the name. Memory stores keep
        # every character, and are refused the same keys as S3, so that
        # tests on them show what production does.
        return any("?versionid=" in segment.lower() for segment in segments)
    protocols = (
        inner.protocol if isinstance(inner.protocol, tuple) else (inner.protocol,)
    )
    if _QUERYING_PROTOCOLS.isdisjoint(protocols):
        return False  # SFTP, FTP, SMB, archives...: "C# notes?.pdf" is a name
    return any("?" in segment or "#" in segment for segment in segments)


# Stores that read "?" or "#" in a key as a query, a fragment, a generation
# or a version (HTTP URLs, gcsfs, adlfs) rather than as characters of a name.
_QUERYING_PROTOCOLS = frozenset(
    ("http", "https", "gs", "gcs", "abfs", "abfss", "az", "adl")
)


def _client_picks_bucket(fs: AbstractFileSystem, prefix: str) -> bool:
    """Whether a client key starts with the bucket of an S3 store (the
    storage is the whole filesystem, no prefix or folder before the key)."""
    if prefix.strip("/"):
        return False
    _, folder, caching, _ = _wrapper_classes()
    for _ in range(_MAX_WRAPPERS):
        if isinstance(fs, folder):
            if str(fs.path).strip("/"):
                return False
            fs = fs.fs
        elif isinstance(fs, caching):
            fs = fs.fs
        else:
            break
    return _is_s3(fs)


def _is_s3(fs: AbstractFileSystem) -> bool:
    # A DirFileSystem passes sign()'s options on to the store it wraps; a
    # caching wrapper (simplecache::s3://...) hands sign() itself over.
    fs = _innermost(fs)
    # s3fs's sign() passes the response-* overrides and the client method on
    # to botocore; another filesystem speaking S3 may not take them.
    # An S3FileSystem exists only once s3fs is imported: no import attempt
    # (none is cached when it fails) on each request where it is missing.
    s3fs = sys.modules.get("s3fs")
    return s3fs is not None and isinstance(fs, s3fs.S3FileSystem)
