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

from ._file import _store_etag as _store_etag
from ._file import StorageFile as StorageFile
from ._keys import storage_key as storage_key
from ._reader import MAX_FETCH_SIZE as MAX_FETCH_SIZE
from ._resolve import _resolve_url as _resolve_url
from ._resolve import resolve_storage as resolve_storage
from ._view import StorageDownloadView as StorageDownloadView
