"""Stream adapters: a seekable reader of a known size, a view of a caller's stream."""

from __future__ import annotations

import io
import typing as t

from ._base import as_index


def _seek(stream: t.IO[bytes], offset: int, whence: int) -> int:
    """``stream.seek(offset, whence)``: the new position, also from a
    ``seek`` that returns ``None`` (it is then asked with ``tell``)."""
    position = stream.seek(offset, whence)
    return position if isinstance(position, int) else stream.tell()


def _is_seekable(stream: t.IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class SizedReader(io.RawIOBase):
    """A seekable binary stream of a known size, read by :meth:`read`.

    Keeps the position; subclasses implement ``read`` from it (and may
    update ``_size`` when the source turns out shorter).
    """

    def __init__(self, size: int) -> None:
        self._size = as_index(size, "size")
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        offset = as_index(offset, "offset")
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence == io.SEEK_END:
            offset += self._size
        if offset < 0:
            raise ValueError("negative seek position")
        self._position = offset
        return offset

    def readinto(self, buffer: t.Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Unclosed(io.RawIOBase):
    """A view of a caller-owned stream whose ``close`` leaves the stream open.

    Offsets are relative to where the content starts in the stream.
    """

    def __init__(self, stream: t.IO[bytes], start: int) -> None:
        self._stream = stream
        self._start = start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._stream.read(-1 if size is None else size)

    def readinto(self, buffer: t.Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        offset = as_index(offset, "offset")
        if whence == io.SEEK_SET:
            offset += self._start
        return _seek(self._stream, offset, whence) - self._start

    def tell(self) -> int:
        return self._stream.tell() - self._start
