"""Storage settings turned into a filesystem and a prefix (fsspec, extras)."""

from __future__ import annotations

import functools
import typing as t

from .._compat import require
from ..exceptions import ConfigurationError

if t.TYPE_CHECKING:
    from fsspec import AbstractFileSystem


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

    :param storage: an fsspec filesystem instance (prefix ``""``: keys are
        the filesystem's own, the first segment is the bucket on S3; a
        ``LocalFileSystem`` reads a relative key relative to the process's
        working directory, so client paths are refused on it: wrap it in
        ``fsspec.implementations.dirfs.DirFileSystem`` to confine it to a
        folder), or an fsspec URL such as
        ``"s3://bucket/prefix"``, ``"memory://"`` or ``"file:///srv/files"``
        (the filesystem is made once per URL and reused). Options of a URL's
        filesystem come from fsspec's configuration, for example the
        ``FSSPEC_S3_ENDPOINT_URL`` environment variable; pass an instance
        for anything more. A local URL confines client paths only with an
        absolute folder other than ``/`` (``"file:///srv/files"``; not
        ``"file://"``, ``"file://."`` or ``"file:///"``, whose prefix is the
        working directory or ``""``): views, blueprints and ``FileColumn``
        refuse the others (see :class:`~flask_download.StorageDownloadView`).
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
