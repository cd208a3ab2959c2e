"""StorageFile: one key of an fsspec filesystem, with its metadata."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import hashlib
import posixpath
import typing as t

from .._grammar import valid_opaque_tag
from ..conditional import as_utc
from ..exceptions import FileNotFound
from ..files import DownloadFile
from ..files import PathFile
from ..paths import ConfinedPath
from ._errors import _translate
from ._keys import _local_path
from ._reader import _RangeReader
from ._reader import _s3_target
from ._resolve import _import_fsspec
from ._resolve import resolve_storage

if t.TYPE_CHECKING:
    from fsspec import AbstractFileSystem


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
