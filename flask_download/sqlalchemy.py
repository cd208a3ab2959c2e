"""SQLAlchemy helpers: files named by, or stored in, database rows.

- :class:`FileColumn` is a column type that stores a path (or a storage key)
  as a string and reads back as a :class:`ColumnFile` wrapper, confined to
  its root directory or storage prefix.
- :class:`BinaryFile` serves the bytes of a ``LargeBinary`` column.

This module needs SQLAlchemy (``pip install 'Flask-Download[sqlalchemy]'``);
``import flask_download`` does not import it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import typing as t

from flask import current_app

from .exceptions import ConfigurationError
from .exceptions import FileNotFound
from .files import _ForwardingFile
from .files import DownloadFile
from .files import PathFile
from .files import VirtualFile
from .paths import split_relative
from .settings import check_root
from .settings import get_settings
from .settings import join_root

try:
    import sqlalchemy as sa
    from sqlalchemy.engine import Dialect
    from sqlalchemy.types import TypeDecorator
except ImportError as e:  # pragma: no cover - depends on the environment
    # Typed imports (TypeDecorator is a base class here), so not _compat.require;
    # the same message.
    raise ImportError(
        "Model downloads need 'sqlalchemy': pip install 'Flask-Download[sqlalchemy]'."
    ) from e

__all__ = ["BinaryFile", "ColumnFile", "FileColumn"]


def resolve_root(root: str | os.PathLike[str] | None) -> str:
    """The directory stored paths are resolved in: ``root``, else ``DOWNLOAD_ROOT``.

    A relative ``root`` is taken relative to the application's ``root_path``
    (as :class:`~flask_download.PathDownloadView` does).

    :raises ConfigurationError: no root at all, or one that is not an
        existing directory.
    """
    if root is not None:
        return join_root(
            current_app.root_path,
            root,
            "the root of the FileColumn or the download view",
        )
    configured = get_settings().root
    if configured is None:
        raise ConfigurationError(
            "A stored file path needs a root directory and there is none: set"
            " DOWNLOAD_ROOT in the app config, or pass root=... (or storage=...)"
            " to the FileColumn or the download view."
        )
    return check_root(configured, "DOWNLOAD_ROOT")


def open_key(
    key: str,
    *,
    root: str | os.PathLike[str] | None = None,
    storage: t.Any = None,
    name: str | None = None,
) -> DownloadFile:
    """Return the wrapper of the file a stored key names.

    With ``storage`` (an fsspec filesystem or a URL such as
    ``s3://bucket/prefix``) the key is a path under the storage prefix;
    otherwise a path under ``root`` (else ``DOWNLOAD_ROOT``). Either way it
    never leaves them: ``..``, absolute paths, backslashes, control
    characters and Windows device names are refused, and a file on disk is
    opened with :func:`~flask_download.paths.open_confined` (no symbolic
    link leads out, even one swapped in while the request runs).

    :param key: the stored key, a relative path with ``/`` separators.
    :param name: the client-side name (default: the key's last part).
    :raises FileNotFound: the key is refused or names no file.
    :raises ConfigurationError: no root and no storage.
    """
    if storage is not None:
        return _storage_file(storage, key, name)
    return PathFile(key, name=name, root=resolve_root(root))


def _storage_file(storage: t.Any, key: str, name: str | None) -> DownloadFile:
    # Imported here: flask_download.storage imports fsspec only on use, and
    # local files never need it.
    from .storage import resolve_storage
    from .storage import storage_key
    from .storage import StorageFile
    from .storage._keys import _check_local_folder

    fs, prefix = resolve_storage(storage)
    # Row keys are never read relative to the working directory ("file://",
    # LocalFileSystem()) nor from "/": refused at first use for storages
    # only known then (a view's), as FileColumn refuses its own when made.
    _check_local_folder(fs, prefix, storage, "The storage of a FileColumn or view")
    return StorageFile(fs, storage_key(fs, prefix, key), name=name)


class ColumnFile(_ForwardingFile):
    """The value of a :class:`FileColumn`: a file named by a stored key.

    Reading a row never touches the file: the key is resolved (and the file
    looked up) on first use of :meth:`resolve` or of an attribute that needs
    it (``size``, ``modified_time``, ``etag``...). It can be returned from
    :meth:`~flask_download.DownloadMixin.get_file` as is.

    :param key: a relative path with ``/`` separators (never leaves its root).
    :param root: the directory the key is relative to; ``None`` uses
        ``DOWNLOAD_ROOT``.
    :param storage: an fsspec filesystem or URL the key lives in instead.
    """

    def __init__(
        self,
        key: str,
        root: str | os.PathLike[str] | None = None,
        storage: t.Any = None,
    ) -> None:
        self.key = key
        self.root = root
        self.storage = storage
        self._overrides: dict[str, t.Any] = {}
        self._file: DownloadFile | None = None
        self.name = key.rstrip("/").rsplit("/", 1)[-1] or None

    def resolve(
        self,
        root: str | os.PathLike[str] | None = None,
        storage: t.Any = None,
    ) -> DownloadFile:
        """Look the file up and return its wrapper (cached).

        The column's own ``root``/``storage`` win; the arguments are the
        fallbacks (a view's), then ``DOWNLOAD_ROOT``.

        :raises FileNotFound: the key is refused or names no file.
        """
        if self._file is None:
            if self.root is not None or self.storage is not None:
                root, storage = self.root, self.storage
            self._file = open_key(self.key, root=root, storage=storage, name=self.name)
        return self._file

    def _target(self) -> DownloadFile:
        return self.resolve()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __str__(self) -> str:
        return self.key

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnFile):
            return (self.key, self.root, self.storage) == (
                other.key,
                other.root,
                other.storage,
            )
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"<ColumnFile {self.key!r}>"


class FileColumn(TypeDecorator[ColumnFile]):
    """A column type that stores a file's path or storage key as a string.

    Assign a relative path (``str`` or ``os.PathLike``, or another
    :class:`ColumnFile`); read back a :class:`ColumnFile`, resolved under
    ``root`` (else ``DOWNLOAD_ROOT`` of the current app) or in ``storage``::

        class Document(db.Model):
            id: Mapped[int] = mapped_column(primary_key=True)
            file: Mapped[ColumnFile | None] = mapped_column(FileColumn("uploads"))

        doc = Document(file="2024/report.pdf")

    Absolute paths and paths with ``..`` are refused when stored (a
    :exc:`ValueError`, as SQLAlchemy reports bad values), and a key read
    from the database can never leave its root or prefix either.

    :param root: the directory keys are relative to; a relative ``root`` is
        relative to the application's ``root_path``. Never client input.
    :param storage: an fsspec filesystem, or a URL such as
        ``s3://bucket/prefix`` or ``memory://``, holding the files instead.
        On the local disk it needs an absolute folder other than ``/``
        (``"file:///srv/files"``, or a ``DirFileSystem``): not a bare
        ``LocalFileSystem()``, ``"file://"``, ``"file://."`` or
        ``"file:///"``, which would read keys relative to the working
        directory or from anywhere.
    :param length: the ``VARCHAR`` length (some databases need one).
    :raises ConfigurationError: ``root`` and ``storage`` together, an empty
        ``root`` or ``storage`` string, or such a local storage.
    """

    impl = sa.String
    cache_ok = True

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        storage: t.Any = None,
        length: int | None = None,
    ) -> None:
        super().__init__(length=length)
        if root is not None and storage is not None:
            raise ConfigurationError("FileColumn takes a root or a storage, not both.")
        if root is not None and not os.fspath(root):
            # As a view's root="": never the application's own directory.
            raise ConfigurationError(
                "FileColumn(root='') is an empty string: set it to the directory"
                " the keys are relative to, or to None (DOWNLOAD_ROOT)."
            )
        if storage is not None:
            from .storage._keys import check_storage_folder

            check_storage_folder(storage, "FileColumn")
        # Plain attributes named like the arguments: SQLAlchemy's statement
        # cache key includes them, so columns with different roots never
        # share a compiled result processor.
        self.root = None if root is None else os.fspath(root)
        self.storage = storage

    @property
    def python_type(self) -> type[t.Any]:
        return ColumnFile

    def process_bind_param(self, value: t.Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, ColumnFile):
            value = value.key
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(
                "A FileColumn stores a relative path (str), not"
                f" {type(value).__name__}."
            )
        key = os.fspath(value)
        try:
            return "/".join(split_relative(key.replace(os.sep, "/")))
        except FileNotFound:
            raise ValueError(
                f"A FileColumn stores a path relative to its root, not {key!r}:"
                " store e.g. os.path.relpath(path, root) without '..'."
            ) from None

    def process_result_value(
        self, value: str | None, dialect: Dialect
    ) -> ColumnFile | None:
        if value is None:
            return None
        return ColumnFile(value, root=self.root, storage=self.storage)


def _version_etag(version: object, size: int) -> str:
    # The version may be any value (an int, a datetime): hash it so that the
    # ETag holds only etagc characters (RFC 9110 §8.8.3).
    token = f"{type(version).__name__}:{version!s}:{size}".encode()
    return hashlib.blake2b(token, digest_size=16).hexdigest()


class BinaryFile(VirtualFile):
    """The content of a ``LargeBinary`` column, served from memory.

    The size is known and ``Range`` requests work. The ETag is a hash of
    ``version`` (a version counter or an ``updated_at`` column: cheap) when
    given, else of the content. The bytes are used as given, not copied.

    :param content: the column value; ``b""`` is a valid empty file.
    :param name: the client-side name.
    :param modified_time: sent as ``Last-Modified``; naive means UTC.
    :param version: a value that changes whenever the content does.
    :param etag: an explicit entity tag (bare), winning over ``version``.
    :raises FileNotFound: ``content`` is ``None`` (a NULL column: no file).
    """

    def __init__(
        self,
        content: bytes | bytearray | memoryview | None,
        name: str | None = None,
        modified_time: datetime.datetime | None = None,
        version: object = None,
        etag: str | None = None,
    ) -> None:
        if content is None:
            raise FileNotFound("The column holds no content (NULL).")
        if etag is None and version is not None:
            etag = _version_etag(version, len(content))
        # psycopg returns memoryview: one copy to bytes, then served as is.
        data = content if isinstance(content, bytes) else bytes(content)
        super().__init__(data, name=name, modified_time=modified_time, etag=etag)
