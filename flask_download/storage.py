"""Files in fsspec filesystems: local disk, memory, S3 and any other store.

:class:`StorageFile` wraps one key of an fsspec filesystem, :func:`resolve_storage`
turns a ``storage`` setting (a filesystem or a URL such as
``s3://bucket/prefix``) into a filesystem and a prefix, and
:func:`storage_key` confines a client-supplied path to that prefix.
:class:`StorageDownloadView` serves them, or redirects to a presigned URL.

``fsspec`` (extra ``Flask-Download[storage]``) and, for S3, ``s3fs``
(extra ``Flask-Download[s3]``) are imported only when a storage is used.
"""

from __future__ import annotations

import asyncio
import collections.abc as cabc
import datetime
import functools
import hashlib
import io
import logging
import posixpath
import sys
import typing as t

from flask import current_app
from flask import has_app_context
from flask import request
from flask import Response

from ._compat import require
from ._grammar import valid_opaque_tag
from .conditional import as_utc
from .exceptions import ConfigurationError
from .exceptions import DownloadError
from .exceptions import FileNotFound
from .exceptions import StorageUnavailable
from .files import DownloadFile
from .files import PathFile
from .files import SizedReader
from .paths import ConfinedPath
from .paths import split_key
from .paths import split_relative
from .response import representation
from .views import DownloadView

if t.TYPE_CHECKING:
    from flask.typing import RouteCallable
    from fsspec import AbstractFileSystem

_logger = logging.getLogger("flask_download")

#: Largest block fetched from a remote store in one request while streaming.
MAX_FETCH_SIZE = 8 * 1024 * 1024


#: The extra that installs a URL protocol's filesystem, where it is not
#: ``storage`` (fsspec alone); each of them includes fsspec.
_PROTOCOL_EXTRAS = {"s3": "s3", "s3a": "s3"}


def _import_fsspec(extra: str = "storage") -> t.Any:
    return require("fsspec", extra, "S3 storages" if extra == "s3" else "Storages")


def _protocols(url: str) -> list[str]:
    # "simplecache::s3://bucket/key" chains filesystems: each one is needed.
    # A part without "://" is a bare protocol, but the last one is a path.
    *chained, last = url.split("::")
    protocols = [part.partition("://")[0].lower() for part in chained]
    protocols.append(last.partition("://")[0].lower() if "://" in last else "file")
    return protocols


def _url_extra(url: str) -> str:
    """The extra to install for a storage URL: ``s3`` for ``s3://``..."""
    for protocol in _protocols(url):
        if protocol in _PROTOCOL_EXTRAS:
            return _PROTOCOL_EXTRAS[protocol]
    return "storage"


def _missing_backend(url: str, error: ImportError) -> ImportError:
    extra = _url_extra(url)
    hint = (
        f"pip install 'Flask-Download[{extra}]'"
        if extra != "storage"
        else "for S3: pip install 'Flask-Download[s3]'"
    )
    return ImportError(
        f"The storage URL {url!r} needs a package that is not installed: {error}"
        f" ({hint})."
    )


def _check_storage_url(storage: t.Any) -> None:
    """Check that a storage URL's packages are installed, before any request.

    Nothing else is checked, and no filesystem is made: filesystem options
    (fsspec's configuration, environment variables) may still change until
    the first request. Anything but a non-empty string passes.

    :raises ImportError: ``fsspec`` or the URL's filesystem is not
        installed; the message names the extra (``s3://``: ``[s3]``).
    """
    if not isinstance(storage, str) or not storage:
        return
    fsspec = _import_fsspec(_url_extra(storage))
    for protocol in _protocols(storage):
        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError as e:
            raise _missing_backend(storage, e) from e
        except ValueError:
            pass  # an unknown protocol: resolve_storage says so when used


@functools.lru_cache(maxsize=32)
def _resolve_url(url: str) -> tuple[AbstractFileSystem, str]:
    fsspec = _import_fsspec(_url_extra(url))
    try:
        fs, prefix = fsspec.core.url_to_fs(url)
    except ImportError as e:
        raise _missing_backend(url, e) from e
    except ValueError as e:
        raise ConfigurationError(f"Invalid storage URL {url!r}: {e}") from e
    prefix = str(prefix).rstrip("/")
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.implementations.dirfs import DirFileSystem

    inner = fs
    while isinstance(inner, CachingFileSystem):
        inner = inner.fs
    if isinstance(inner, DirFileSystem) and prefix == str(inner.path).rstrip("/"):
        # "dir::file:///srv/x" (also behind a cache): fsspec gives the folder
        # as the path too, which the DirFileSystem would join to itself; its
        # keys start at its root.
        prefix = ""
    return fs, prefix


def resolve_storage(storage: t.Any) -> tuple[AbstractFileSystem, str]:
    """Turn a ``storage`` setting into ``(filesystem, prefix)``.

    :param storage: an fsspec filesystem instance (prefix ``""``: the whole
        filesystem; wrap it in ``fsspec.implementations.dirfs.DirFileSystem``
        to confine it to a folder), or an fsspec URL such as
        ``"s3://bucket/prefix"``, ``"memory://"`` or ``"file:///srv/files"``
        (the filesystem is made once per URL and reused). Options of a URL's
        filesystem come from fsspec's configuration, for example the
        ``FSSPEC_S3_ENDPOINT_URL`` environment variable; pass an instance
        for anything more.
    :return: the filesystem and the prefix (without a trailing ``/``) that
        keys are confined to.
    :raises ConfigurationError: ``storage`` is neither.
    :raises ImportError: ``fsspec`` (or the URL's backend) is not installed;
        the message names the extra.
    """
    if isinstance(storage, str):
        if not storage:
            raise ConfigurationError("The storage URL is empty.")
        return _resolve_url(storage)
    fsspec = _import_fsspec()
    if isinstance(storage, fsspec.AbstractFileSystem):
        return storage, ""
    raise ConfigurationError(
        "'storage' must be an fsspec filesystem or a URL such as"
        f" 's3://bucket/prefix' or 'memory://', not {storage!r}."
    )


def _is_local(fs: AbstractFileSystem) -> bool:
    return _local_path(fs, "") is not None


#: Most filesystem wrappers :func:`_local_path` looks through.
_MAX_WRAPPERS = 32


def _local_path(fs: AbstractFileSystem, key: str) -> str | None:
    """The local path fsspec reads for ``key`` of ``fs``, or ``None`` when
    ``fs`` does not keep its files on the local disk.

    Done the way fsspec does it: each ``DirFileSystem`` joins its folder to
    the key (nested ones in turn, outermost first), a caching wrapper
    (``simplecache::``, ``filecache::``, ``blockcache::``) or an
    ``AsyncFileSystemWrapper`` hands the key to the filesystem it wraps, and
    the ``LocalFileSystem`` underneath makes it absolute. ``key`` ``""`` is
    the folder keys are relative to (the working directory for a bare
    ``LocalFileSystem``). A local file is then opened by the one confined
    opener, never through the wrapper: a cache of the local disk would
    follow symbolic links out of the folder.
    """
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    for _ in range(_MAX_WRAPPERS):
        if isinstance(fs, LocalFileSystem):
            return t.cast(str, fs._strip_protocol(key or "."))
        if isinstance(fs, DirFileSystem):
            key = fs._join(key)
            fs = fs.fs
        elif isinstance(fs, CachingFileSystem):
            fs = fs.fs
        elif _is_async_wrapper(fs):
            fs = fs.sync_fs
        else:
            return None
    return None


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
    :class:`StorageFile` opens it with the confined opener, so no symbolic
    link leads out of the prefix. Keys of other stores are also checked
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
    """
    root = _local_path(fs, prefix)
    if root is not None:
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
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.implementations.dirfs import DirFileSystem

    for _ in range(_MAX_WRAPPERS):
        if not isinstance(fs, (DirFileSystem, CachingFileSystem)):
            break
        fs = fs.fs
    return fs


def _selects_another_object(fs: AbstractFileSystem, segments: list[str]) -> bool:
    """Whether a store would read part of these key segments as something
    else than the object's name (a version, a query, a fragment)."""
    from fsspec.implementations.memory import MemoryFileSystem

    inner = _innermost(fs)
    if _is_s3(inner) or isinstance(inner, MemoryFileSystem):
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
    from fsspec.implementations.cached import CachingFileSystem
    from fsspec.implementations.dirfs import DirFileSystem

    if prefix.strip("/"):
        return False
    for _ in range(_MAX_WRAPPERS):
        if isinstance(fs, DirFileSystem):
            if str(fs.path).strip("/"):
                return False
            fs = fs.fs
        elif isinstance(fs, CachingFileSystem):
            fs = fs.fs
        else:
            break
    return _is_s3(fs)


def _storage_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the store failed", not "the code is wrong"."""
    errors: list[type[BaseException]] = [OSError, asyncio.TimeoutError]
    try:
        import botocore.exceptions  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        errors += [
            botocore.exceptions.BotoCoreError,
            botocore.exceptions.ClientError,
        ]
    try:
        import aiohttp
    except ImportError:
        pass
    else:
        errors.append(aiohttp.ClientError)
    return tuple(errors)


_ERRORS: tuple[type[BaseException], ...] | None = None


def _is_refused_name(error: BaseException) -> bool:
    """Whether botocore refused the request's parameters before sending it."""
    botocore = sys.modules.get("botocore.exceptions")
    refused = getattr(botocore, "ParamValidationError", None)
    return refused is not None and isinstance(error, refused)


def _translate(
    fs: AbstractFileSystem, key: str, error: BaseException, action: str
) -> DownloadError | None:
    """Map a store error to FileNotFound / StorageUnavailable (``None``: a bug)."""
    global _ERRORS
    if isinstance(error, DownloadError):
        return error
    if isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return FileNotFound(f"No file at {key!r} in the storage.")
    if _ERRORS is None:
        _ERRORS = _storage_errors()
    if not isinstance(error, _ERRORS):
        return None
    if _is_refused_name(error):
        # botocore refused the name before asking (a client-supplied bucket
        # such as "Bad_Name!"): no object can have it. Not an outage: no 503
        # and no error line in the log for each such URL.
        return FileNotFound(f"No file at {key!r} in the storage: {error}.")
    if _is_local(fs):
        # Like PathFile: an unreadable local file is a missing file.
        return FileNotFound(f"Cannot read {key!r}: {error}.")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    detail = (
        f"Storage {protocol}:// unavailable while {action} {key!r}:"
        f" {type(error).__name__}: {error}".replace("\n", " ")
    )
    logger = current_app.logger if has_app_context() else _logger
    logger.error("%s", detail)
    return StorageUnavailable(detail)


# Metadata keys of modification times, best first, as fsspec backends name them
# (s3fs, adlfs, gcsfs, local, memory...).
_MTIME_KEYS = ("LastModified", "last_modified", "mtime", "updated", "modified")
_CTIME_KEYS = ("created", "creation_time", "timeCreated")


def _to_datetime(value: t.Any) -> datetime.datetime | None:
    try:
        if isinstance(value, datetime.datetime):
            moment = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        elif isinstance(value, str):
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return as_utc(moment)


def _modified_time(info: cabc.Mapping[str, t.Any]) -> datetime.datetime | None:
    for key in (*_MTIME_KEYS, *_CTIME_KEYS):
        moment = _to_datetime(info.get(key))
        if moment is not None:
            return moment
    return None


def _store_etag(info: cabc.Mapping[str, t.Any]) -> str | None:
    for key in ("ETag", "etag", "e_tag"):
        value = info.get(key)
        if not isinstance(value, str) or value.startswith("W/"):
            continue
        value = value.strip().strip('"')
        if not value:
            continue
        if valid_opaque_tag(value):
            return value
        # A tag with characters a header may not carry: keep it as a hash.
        return hashlib.blake2b(value.encode(), digest_size=16).hexdigest()
    return None


class StorageFile(DownloadFile):
    """A file (a key) in an fsspec filesystem.

    Size, modification time and ETag come from one ``fs.info()`` call made
    when the wrapper is made; the content is never read to learn them. The
    ETag is the store's own (S3's, quotes stripped) when it has one, else
    derived from the size and modification time. The file is seekable:
    ``Range`` requests become ranged reads on the store (``fs.cat_file``
    with a start and an end), fetched in blocks that start at the chunk
    size and double while the read goes on (up to
    :data:`~flask_download.storage.MAX_FETCH_SIZE`), so a small range costs
    one small request and a whole file a few large ones. Files of the local
    filesystem are opened directly, so servers can ``sendfile`` them.

    :param fs: an fsspec filesystem, or a storage URL such as
        ``"s3://bucket/prefix"`` or ``"memory://"`` resolved as a view's
        ``storage`` is (see :func:`~flask_download.resolve_storage`).
    :param path: the key of the file in ``fs``; with a URL, relative to its
        prefix unless it starts with ``/``. It is used as given: confine
        client input with :func:`~flask_download.storage.storage_key` first.
    :param name: the client-side name; defaults to the key's last part.
    :raises FileNotFound: there is no file at ``path`` (or it is a directory).
    :raises StorageUnavailable: the store failed (answered with 503).
    :raises TypeError: ``fs`` is neither a filesystem nor a URL.
    :raises ImportError: ``fsspec`` (or the URL's filesystem) is not
        installed; the message names the extra.
    """

    seekable = True

    def __init__(
        self, fs: AbstractFileSystem | str, path: str, name: str | None = None
    ) -> None:
        if isinstance(fs, str):
            # A URL, as the views take it: the key is below its prefix.
            fs, prefix = resolve_storage(fs)
            if prefix and not path.startswith("/"):
                path = f"{prefix}/{path}"
        elif not isinstance(fs, _import_fsspec().AbstractFileSystem):
            raise TypeError(
                "StorageFile takes an fsspec filesystem (such as"
                " fsspec.filesystem('s3')) or a storage URL (such as"
                f" 's3://bucket/prefix'), not {fs!r}."
            )
        #: The filesystem.
        self.fs = fs
        #: The key of the file in :attr:`fs`.
        self.key = path
        self._local: PathFile | None = None
        local = path if isinstance(path, ConfinedPath) else _local_path(fs, path)
        if local is not None:
            self._open_local(fs, path, local, name)
            return
        try:
            info = fs.info(path)
        except Exception as e:
            error = _translate(fs, path, e, "reading the metadata of")
            if error is None:
                raise
            raise error from e
        if info.get("type", "file") != "file":
            raise FileNotFound(f"{path!r} is not a file in the storage.")
        #: The metadata the store returned (``fs.info(path)``; for the local
        #: disk, from ``fstat`` of the open file).
        self.info: dict[str, t.Any] = dict(info)
        self.name = posixpath.basename(path.rstrip("/")) if name is None else name
        size = info.get("size")
        self.size = size if isinstance(size, int) and size >= 0 else None
        if self.size is None:
            raise FileNotFound(f"{path!r} has no known size in the storage.")
        self.modified_time = _modified_time(info)
        self.etag = _store_etag(info)
        if self.etag is None and self.modified_time is not None:
            mtime_ns = int(self.modified_time.timestamp() * 1_000_000_000)
            self.etag = f"{mtime_ns:x}-{self.size:x}"
            if isinstance(info.get("ino"), int):
                self.etag += f"-{info['ino']:x}"
        name_in_store = info.get("name")
        self.url = fs.unstrip_protocol(
            name_in_store if isinstance(name_in_store, str) else path
        )

    def _open_local(
        self, fs: AbstractFileSystem, key: str, local: str, name: str | None
    ) -> None:
        # The local disk: opened once, by the one confined opener for a
        # client key (a ConfinedPath from storage_key), as is for a trusted
        # one (its path from _local_path); what the headers say comes from
        # fstat of that descriptor.
        file = PathFile(local)
        self._local = file
        self.path = file.path
        self.real_path = file.real_path
        self.size = file.size
        self.modified_time = file.modified_time
        self.etag = file.etag
        self.name = file.name if name is None else name
        # What LocalFileSystem.info() tells, from fstat of the open file.
        st = file._stat
        self.info = {
            "name": file.path,
            "size": st.st_size,
            "type": "file",
            "created": st.st_ctime,
            "islink": False,
            "mode": st.st_mode,
            "uid": st.st_uid,
            "gid": st.st_gid,
            "mtime": st.st_mtime,
            "ino": st.st_ino,
            "nlink": st.st_nlink,
        }
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(fs, LocalFileSystem):
            self.url = fs.unstrip_protocol(file.path)
        elif isinstance(key, ConfinedPath):
            # The key in the wrapping filesystem: below the folder it keeps
            # its files in.
            folder = _local_path(fs, "") or ""
            self.url = fs.unstrip_protocol(posixpath.relpath(key, folder))
        else:
            self.url = fs.unstrip_protocol(key)

    def open(self) -> t.IO[bytes]:
        if self._local is not None:
            return self._local.open()
        assert self.size is not None
        # On S3 every ranged read is conditional on the ETag info() gave: a
        # key overwritten during the download fails the next read (the body
        # is cut short) instead of sending new bytes after old ones.
        pin = None
        target = _s3_target(self.fs, self.key)
        if target is not None:
            raw = self.info.get("ETag")
            if isinstance(raw, str) and raw.strip('" ') and not raw.startswith("W/"):
                pin = target + (raw.strip('" '),)
        return t.cast(t.IO[bytes], _RangeReader(self.fs, self.key, self.size, pin))

    def unchanged_check(self, handle: t.IO[bytes]) -> cabc.Callable[[], bool] | None:
        if self._local is not None:
            return self._local.unchanged_check(handle)
        return None

    def close(self) -> None:
        if self._local is not None:
            self._local.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url!r}>"


def _s3_target(fs: AbstractFileSystem, key: str) -> tuple[t.Any, str] | None:
    """The s3fs filesystem and its key that conditional reads of ``key`` go
    to: through DirFileSystem folders; ``None`` when ``fs`` is no S3 store
    with its own event loop, or a caching wrapper (whose reads come from
    its cache, never to be bypassed).
    """
    from fsspec.implementations.dirfs import DirFileSystem

    for _ in range(_MAX_WRAPPERS):
        if not isinstance(fs, DirFileSystem):
            break
        key = fs._join(key)
        fs = fs.fs
    s3fs = sys.modules.get("s3fs")
    if s3fs is None or not isinstance(fs, s3fs.S3FileSystem):
        return None
    if getattr(fs, "loop", None) is None:
        return None  # made for async use: no loop to run a read on
    return fs, key


def _precondition_failed(error: BaseException | None) -> bool:
    """Whether S3 answered 412 (``If-Match`` failed) behind ``error``."""
    for _ in range(_MAX_WRAPPERS):
        if error is None:
            return False
        answer = getattr(error, "response", None)
        if isinstance(answer, dict):
            code = answer.get("Error", {}).get("Code")
            status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                return True
        error = error.__cause__ or error.__context__
    return False


def _s3_range(fs: t.Any, key: str, etag: str, start: int, stop: int) -> bytes:
    """Bytes ``[start, stop)`` of an S3 object, only if its ETag is still
    ``etag`` (``If-Match``; s3fs's ``cat_file`` cannot send it).

    :raises OSError: the object changed (412), or another store error.
    """
    from fsspec.asyn import sync

    bucket, name, version = fs.split_path(key)

    async def read() -> bytes:
        extra = {"VersionId": version} if version else {}
        answer = await fs._call_s3(
            "get_object",
            Bucket=bucket,
            Key=name,
            Range=f"bytes={start}-{stop - 1}",
            IfMatch=f'"{etag}"',
            **extra,
        )
        body = answer["Body"]
        try:
            return t.cast(bytes, await body.read())
        finally:
            body.close()

    # As cat_file does: the request and the body's read are tried again
    # together on a dropped connection (a 412 is never tried again).
    from s3fs.core import _error_wrapper

    return t.cast(bytes, sync(fs.loop, _error_wrapper, read, retries=fs.retries))


class _RangeReader(SizedReader):
    """A seekable read-only stream over a remote key, made of ranged reads.

    A read after a seek fetches exactly what was asked; each following
    sequential read fetches twice as much as the previous one, up to
    :data:`~flask_download.storage.MAX_FETCH_SIZE`, and serves later reads
    from that block.
    """

    def __init__(
        self,
        fs: AbstractFileSystem,
        key: str,
        size: int,
        if_match: tuple[t.Any, str, str] | None = None,
    ) -> None:
        super().__init__(size)
        self._fs = fs
        self._key = key
        # The s3fs store, its key and the ETag every read must still have
        # (see StorageFile.open).
        self._if_match = if_match
        self._block = b""
        self._block_start = 0
        self._fetch_size = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        previous = self._position
        offset = super().seek(offset, whence)
        if offset != previous:
            # A new range: its first read fetches only what it asks for.
            self._fetch_size = 0
        return offset

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._size - self._position
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        offset = self._position - self._block_start
        if not 0 <= offset < len(self._block):
            self._fetch(size)
            offset = 0
        data = self._block[offset : offset + size]
        self._position += len(data)
        return data

    def _fetch(self, size: int) -> None:
        length = min(max(size, self._fetch_size * 2), MAX_FETCH_SIZE)
        length = max(length, size)
        start = self._position
        stop = min(start + length, self._size)
        try:
            if self._if_match is not None:
                block = _s3_range(*self._if_match, start, stop)
            else:
                block = self._fs.cat_file(self._key, start=start, end=stop)
        except Exception as e:
            if self._if_match is not None and _precondition_failed(e):
                # The object changed since info(): end the body here, as
                # when it shrank (never a 500 before the first byte).
                logger = current_app.logger if has_app_context() else _logger
                logger.warning(
                    "%r changed while it was read (its ETag is no longer %r):"
                    " the body was cut short.",
                    self._key,
                    self._if_match[2],
                )
                block = b""
            else:
                error = _translate(self._fs, self._key, e, "reading")
                if error is None:
                    raise
                raise error from e
        if not block:
            # The object shrank since its size was read: end the body early.
            self._size = start
        self._block, self._block_start = bytes(block), start
        self._fetch_size = stop - start

    def close(self) -> None:
        self._block = b""
        super().close()


class StorageDownloadView(DownloadView):
    """Serve a file of an fsspec filesystem (S3, memory, local disk...).

    The file is :attr:`path` (a trusted key relative to the storage prefix,
    or absolute), or the URL variable named by :attr:`path_url_kwarg`
    (``<path:path>``) confined to the prefix: ``..`` (also once decoded
    again, for stores that decode keys), absolute paths, backslashes and
    control characters give 404, and so does a key the store would read
    as another object (``?versionId=`` on S3; see :func:`storage_key`), and
    on the local disk symbolic links leading out of the prefix. A missing
    key (or one S3 refuses as a name, such as an invalid bucket) gives 404;
    a store that cannot be reached gives 503 (see
    :class:`StorageUnavailable`) with a log line.

    With :attr:`redirect`, stores whose filesystem implements ``sign()``
    answer with a 302 to a URL valid :attr:`redirect_expires` seconds, so
    the bytes never go through the application; other stores stream as
    usual. On S3 the URL also carries the view's ``Content-Disposition``
    and ``Content-Type`` (``response-content-disposition`` and
    ``response-content-type``), so the browser saves the file under the
    name the view gives, non-ASCII names included.

    A presigned URL is only valid for the method it was signed for (S3,
    GCS and every S3-compatible store sign the method), so ``HEAD`` never
    gets the ``GET`` URL: on S3 it is redirected to a URL presigned for
    ``HEAD`` (:attr:`redirect_head`), elsewhere the application answers it
    from the store's metadata (size, ETag, modification time), as it
    would when streaming.
    """

    #: An fsspec filesystem, or a URL such as ``"s3://bucket/prefix"`` or
    #: ``"memory://"`` (see :func:`~flask_download.resolve_storage`).
    storage: t.Any = None
    #: A trusted key, relative to the storage prefix, or absolute (the
    #: store's whole key, such as ``"/srv/reports/a.txt"`` on the local
    #: disk). Never set it from client input: use the URL variable for that.
    path: str | None = None
    #: Name of the URL variable holding a client-supplied key.
    path_url_kwarg: str = "path"
    #: Answer with a 302 to a presigned URL when the store can make one.
    redirect: bool = False
    #: Lifetime of presigned URLs: seconds, or a :class:`~datetime.timedelta`.
    #: SigV4 (S3) allows at most 7 days. On a signed link
    #: (:attr:`~flask_download.DownloadMixin.signed`, ``signature_required``)
    #: it is cut to the time the link has left.
    redirect_expires: int | datetime.timedelta = 300
    #: With :attr:`redirect`, answer ``HEAD`` with a 302 to a URL presigned
    #: for ``HEAD`` when the store can make one (S3). ``False``: the
    #: application answers every ``HEAD`` from the store's metadata.
    redirect_head: bool = True

    @classmethod
    def as_view(
        cls, name: str, *class_args: t.Any, **class_kwargs: t.Any
    ) -> RouteCallable:
        """Make a view function (see :meth:`DownloadView.as_view`).

        :raises ConfigurationError: :attr:`redirect_expires` is not a
            positive number of seconds.
        :raises ImportError: :attr:`storage` is a URL whose packages are not
            installed; the message names the extra (``s3://``: ``[s3]``).
        """
        expires = class_kwargs.get("redirect_expires", cls.redirect_expires)
        _expiry_seconds(expires, cls.__name__)  # fail now, not per request
        view = super().as_view(name, *class_args, **class_kwargs)
        # A storage URL whose packages are missing: say which extra now, not
        # with a 500 on the first request.
        _check_storage_url(class_kwargs.get("storage", cls.storage))
        return view

    def get_storage(self) -> tuple[AbstractFileSystem, str]:
        """The filesystem and prefix, from :attr:`storage` (resolved once per
        view instance).

        :raises ConfigurationError: :attr:`storage` is not set or invalid.
        """
        resolved: tuple[AbstractFileSystem, str] | None = getattr(
            self, "_resolved_storage", None
        )
        if resolved is None:
            if self.storage is None:
                raise ConfigurationError(
                    f"{type(self).__name__} needs a 'storage': an fsspec filesystem"
                    " or a URL such as 's3://bucket/prefix', set as an attribute or"
                    " passed to as_view()."
                )
            resolved = self._resolved_storage = resolve_storage(self.storage)
        return resolved

    def get_path(self) -> str:
        """The key of the file to send, confined to the storage prefix.

        :raises FileNotFound: a URL path that leaves the prefix.
        :raises ConfigurationError: neither :attr:`path` nor the URL variable.
        """
        fs, prefix = self.get_storage()
        if self.path is not None:
            # Trusted: an absolute path is the store's own key (on the local
            # disk, a path from "/"); a relative one is below the prefix.
            key = str(self.path)
            if key.startswith("/") or not prefix:
                return key
            return f"{prefix}/{key}"
        untrusted = self.kwargs.get(self.path_url_kwarg)
        if untrusted is None:
            raise ConfigurationError(
                f"{type(self).__name__} needs a 'path' attribute or a"
                f" '<path:{self.path_url_kwarg}>' URL variable."
            )
        return storage_key(fs, prefix, str(untrusted))

    def get_file(self) -> DownloadFile:
        key = self.get_path()
        fs, _ = self.get_storage()
        return StorageFile(fs, key)

    def get_redirect_expires(self) -> int:
        """Lifetime of presigned URLs in seconds, from :attr:`redirect_expires`.

        :raises ConfigurationError: not a positive number of seconds, or
            more than 7 days (SigV4's limit) on S3.
        """
        return _expiry_seconds(self.redirect_expires, type(self).__name__)

    def get_redirect_url(self, file: DownloadFile, method: str = "GET") -> str | None:
        """A URL of ``file`` presigned for ``method``, or ``None``.

        ``None`` means the store cannot presign it (a filesystem without
        ``sign()``, or a ``HEAD`` on a store other than S3); the application
        then answers the request itself. For S3 the URL also makes the store
        answer with this view's ``Content-Disposition`` and ``Content-Type``.
        The URL is valid :meth:`get_redirect_expires` seconds, never past
        the expiry of the signed link the request came with. Override it to
        pass other options to another backend's ``sign()``.

        :param method: ``"GET"`` or ``"HEAD"``.
        :raises StorageUnavailable: signing failed (no credentials...).
        :raises ConfigurationError: :attr:`redirect_expires` is invalid.
        """
        if not isinstance(file, StorageFile):
            return None
        fs = file.fs
        expires = self.get_redirect_expires()
        link_left = _signed_link_left()
        if link_left is not None and link_left < expires:
            # A signed link grants access until its expiry: the URL it
            # redirects to must not grant more.
            expires = link_left
        params: dict[str, str] = {}
        if _is_s3(fs):
            if expires > _SIGV4_MAX_EXPIRES:
                raise ConfigurationError(
                    f"{type(self).__name__}.redirect_expires is {expires} seconds:"
                    " S3 presigned URLs (SigV4) are valid at most 7 days"
                    f" ({_SIGV4_MAX_EXPIRES} seconds)."
                )
            # Described as the streamed download would be.
            _, content_type, encoding, disposition = representation(
                file,
                self.get_basename(),
                self.get_mimetype(),
                self.get_encoding(),
                self.get_charset(),
                self.attachment,
            )
            params["ResponseContentDisposition"] = disposition
            params["ResponseContentType"] = content_type
            if encoding is not None:
                params["ResponseContentEncoding"] = encoding
            if method == "HEAD":
                # s3fs passes it to botocore's generate_presigned_url.
                params["client_method"] = "head_object"
        elif method != "GET":
            # fsspec's sign() has no method: its URLs are for GET only.
            return None
        try:
            return str(fs.sign(file.key, expiration=expires, **params))
        except NotImplementedError:
            return None
        except Exception as e:
            error = _translate(fs, file.key, e, "presigning")
            if error is None:
                raise
            raise error from e

    def file_response(self, file: DownloadFile) -> Response | None:
        """A 302 to a presigned URL (:attr:`redirect`), else ``None``: the
        file is streamed, or for ``HEAD`` described from its metadata."""
        if not self.redirect:
            return None
        method = request.method
        if method == "HEAD" and not self.redirect_head:
            return None
        if method not in ("GET", "HEAD"):
            return None
        url = self.get_redirect_url(file, method)
        if url is None:
            return None
        # The URL expires: no cache may keep the redirect.
        return Response(
            b"", status=302, headers={"Location": url, "Cache-Control": "no-store"}
        )


#: Longest lifetime of a SigV4 presigned URL: 7 days.
_SIGV4_MAX_EXPIRES = 7 * 24 * 3600


def _signed_link_left() -> int | None:
    """Whole seconds (at least 1) until the link of this request expires
    (:func:`~flask_download.signed_url_for`'s or
    :func:`~flask_download.nginx_secure_link`'s, checked by the app);
    ``None`` when no link was checked."""
    from .signing import _LINK_EXPIRES
    from .signing import _now

    expires = request.environ.get(_LINK_EXPIRES)
    if not isinstance(expires, int) or isinstance(expires, bool):
        return None
    return max(1, int(expires - _now()))


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


def _expiry_seconds(value: t.Any, owner: str) -> int:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
        if value == int(value):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{owner}.redirect_expires must be a positive whole number of seconds"
            f" or a timedelta, not {value!r}."
        )
    return value
