"""Ranged reads of a remote key, pinned to its ETag with If-Match on S3."""

from __future__ import annotations

import io
import sys
import typing as t

from flask import current_app
from flask import has_app_context

from ..files import SizedReader
from ._errors import _logger
from ._errors import _translate
from ._keys import _MAX_WRAPPERS
from ._keys import _wrapper_classes

if t.TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: Largest block fetched from a remote store in one request while streaming.
MAX_FETCH_SIZE = 8 * 1024 * 1024


def _s3_target(fs: AbstractFileSystem, key: str) -> tuple[t.Any, str] | None:
    """The s3fs filesystem and its key that conditional reads of ``key`` go
    to: through DirFileSystem folders; ``None`` when ``fs`` is no S3 store
    with its own event loop, or a caching wrapper (whose reads come from
    its cache, never to be bypassed).
    """
    folder = _wrapper_classes()[1]
    for _ in range(_MAX_WRAPPERS):
        if not isinstance(fs, folder):
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
