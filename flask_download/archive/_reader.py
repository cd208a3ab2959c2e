"""Reading a stored archive's bytes at any offset, members opened one at a time."""

from __future__ import annotations

import bisect
import collections.abc as cabc
import io
import logging
import typing as t
import zlib

from ..exceptions import DownloadError
from ..exceptions import FileNotFound
from ..files import DEFAULT_CHUNK_SIZE
from ..files import read_slice
from ._format import Entry
from ._format import STORED

if t.TYPE_CHECKING:
    from . import ArchiveFile

logger = logging.getLogger("flask_download")


class Truncated(Exception):
    """A member vanished, shrank or changed: the body must end here."""


def member_chunks(entry: Entry, chunk_size: int) -> cabc.Iterator[bytes]:
    """The bytes of a member, whole; ``Truncated`` if it vanishes or changes."""
    file = entry.file
    limit = entry.size
    try:
        if file.seekable:
            with file.open() as handle:
                unchanged = file.unchanged_check(handle)
                yield from read_slice(handle, chunk_size, 0, limit, unchanged)
        else:
            for data in file.chunks(chunk_size):
                if limit is not None:
                    data = data[:limit]
                    limit -= len(data)
                if data:
                    yield data
                if limit == 0:
                    break
    except (DownloadError, OSError) as e:
        logger.error(
            "Archive member %r could not be read (%s); the archive was cut short.",
            file,
            e,
        )
        raise Truncated from e


class ArchiveReader(io.RawIOBase):
    """A seekable read-only view of a stored archive with a fixed layout.

    Each read returns bytes of one part only (a header, a member's data, a
    descriptor, a central record, the end records), so that a range reads
    only the member bytes it covers. The member being read stays open while
    reads continue in it, and is closed when a read moves elsewhere.
    """

    def __init__(self, archive: ArchiveFile) -> None:
        self._archive = archive
        self._entries = archive._entries
        self._size = t.cast(int, archive.size)
        self._position = 0
        self._broken = False
        # The open member: its index, handle, position, and the CRC-32 of
        # its bytes so far (None once a read skipped some).
        self._index = -1
        self._handle: t.IO[bytes] | None = None
        self._offset = 0
        self._crc: int | None = 0
        self._unchanged: cabc.Callable[[], bool] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
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

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(DEFAULT_CHUNK_SIZE), b""))

    def read(self, size: int | None = -1) -> bytes:
        position = self._position
        if size is None or size < 0:
            return self.readall()
        if self._broken or position >= self._size or size == 0:
            return b""
        try:
            data = self._read_part(position, size)
        except Truncated:
            self._broken = True
            self._close_member()
            return b""
        self._position = position + len(data)
        return data

    def _read_part(self, position: int, size: int) -> bytes:
        archive = self._archive
        if position >= archive._end_offset:
            start = position - archive._end_offset
            return archive._end[start : start + size]
        if position >= archive._directory_offset:
            index = bisect.bisect_right(archive._records, position) - 1
            entry = self._entries[index]
            assert entry.size is not None
            record = entry.central_record(
                self._crc_of(index), entry.size, entry.size, entry.offset, STORED
            )
            start = position - archive._records[index]
            return record[start : start + size]
        index = bisect.bisect_right(archive._starts, position) - 1
        entry = self._entries[index]
        assert entry.size is not None
        start = position - entry.offset
        header = entry.header
        if start < len(header):
            return header[start : start + size]
        start -= len(header)
        if start < entry.size:
            return self._read_member(index, start, min(size, entry.size - start))
        start -= entry.size
        descriptor = entry.descriptor(self._crc_of(index), entry.size, entry.size)
        return descriptor[start : start + size]

    def _read_member(self, index: int, offset: int, size: int) -> bytes:
        entry = self._entries[index]
        handle = self._handle
        if index != self._index or handle is None:
            self._close_member()
            try:
                handle = self._handle = entry.file.open()
                self._unchanged = entry.file.unchanged_check(handle)
            except (FileNotFound, OSError) as e:
                logger.error(
                    "Archive member %r could not be opened (%s); the archive"
                    " was cut short.",
                    entry.file,
                    e,
                )
                raise Truncated from e
            self._index = index
            self._offset = 0
            self._crc = 0
        if offset != self._offset:
            handle.seek(offset)
            self._crc = None  # bytes skipped: no CRC-32 from this pass
        try:
            data = handle.read(size)
        except OSError as e:
            logger.error("Archive member %r failed to read (%s).", entry.file, e)
            raise Truncated from e
        if not data or (self._unchanged is not None and not self._unchanged()):
            logger.error(
                "Archive member %r shrank, vanished or changed while it was"
                " sent; the archive was cut short.",
                entry.file,
            )
            raise Truncated
        self._offset = offset + len(data)
        if self._crc is not None and entry.crc is None:
            self._crc = zlib.crc32(data, self._crc)
            if self._offset == entry.size:
                self._archive._crcs[index] = self._crc
        return data

    def _crc_of(self, index: int) -> int:
        if index == self._index and self._entries[index].crc is None:
            # Its data may have been read whole just now.
            crc = self._archive._crcs.get(index)
            if crc is not None:
                return crc
        if self._entries[index].crc is None and index not in self._archive._crcs:
            self._close_member()  # one member open at a time
        try:
            return self._archive.crc32_of(index)
        except (FileNotFound, OSError) as e:
            raise Truncated from e

    def _close_member(self) -> None:
        handle, self._handle = self._handle, None
        self._index = -1
        self._unchanged = None
        if handle is not None:
            handle.close()

    def close(self) -> None:
        if not self.closed:
            self._close_member()
        super().close()
