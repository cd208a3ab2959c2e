"""Streaming ZIP archives: many files as one resumable download.

An :class:`ArchiveFile` lays out a ZIP archive from what its members' wrappers
know (names, sizes, times) without reading a byte of them, so that a stored
archive has an exact size, validators, and byte ranges before the body starts.
Member data is read only when a body needs it, one member open at a time.

The layout is fixed by the members' metadata alone: every entry has a data
descriptor (flag bit 3), so a local header never depends on the CRC-32 of its
data. Only the data descriptor and the central directory record of a member
need its CRC-32, taken from :attr:`~flask_download.DownloadFile.crc32` when the
wrapper knows it, else computed by reading the member once.
"""

from __future__ import annotations

import array
import bisect
import collections.abc as cabc
import datetime
import hashlib
import io
import logging
import re
import struct
import typing as t
import zlib

from .exceptions import DownloadError
from .exceptions import FileNotFound
from .files import DEFAULT_CHUNK_SIZE
from .files import DownloadFile
from .files import read_slice
from .views import DownloadView

_logger = logging.getLogger("flask_download")

#: A member of an archive: a wrapper, or ``(name in the archive, wrapper)``.
Member: t.TypeAlias = "DownloadFile | tuple[str, DownloadFile]"

# APPNOTE.TXT 4.3.7, 4.3.9, 4.3.12, 4.3.14, 4.3.15, 4.3.16.
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_DESCRIPTOR = struct.Struct("<IIII")
_DESCRIPTOR64 = struct.Struct("<IIQQ")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_LOCAL_SIG = 0x04034B50
_DESCRIPTOR_SIG = 0x08074B50
_CENTRAL_SIG = 0x02014B50
_END_SIG = 0x06054B50
_END64_SIG = 0x06064B50
_LOCATOR64_SIG = 0x07064B50

# Fields at or above these values overflow and move to Zip64 records
# (APPNOTE 4.4.8: 0xFFFFFFFF marks a value found in the Zip64 extra field).
_LIMIT32 = 0xFFFFFFFF
_LIMIT16 = 0xFFFF
# Bit 3: CRC-32 and sizes follow the data in a data descriptor; bit 11: the
# name is UTF-8 (APPNOTE 4.4.4 and appendix D).
_FLAGS = 0x0008 | 0x0800
_STORED = 0
_DEFLATED = 8
# "Version made by": Unix (3), so that the external attributes hold a mode;
# spec version 4.5 (Zip64).
_MADE_BY = (3 << 8) | 45
# -rw-r--r--, a regular file, in the high 16 bits of the external attributes.
_EXTERNAL_ATTR = 0o100644 << 16
_ZIP64_TAG = 0x0001
# Info-ZIP extended timestamp (0x5455): flags (bit 0: mtime), mtime as a
# signed 32-bit count of seconds since the epoch, UTC.
_EXTENDED_TIME = struct.Struct("<HHBi")
# DOS time: 1980-01-01 00:00 for a member without a modification time.
_DOS_EPOCH = (0x0000, 0x0021)
# Deflate output may exceed its input slightly: entries whose size is this
# close to 4 GiB (or unknown) get Zip64 sizes when compressed.
_DEFLATE_MARGIN = 1.05

# Deleted from names: C0 controls, DEL, C1 controls, and the Unicode bidi
# controls that make "exe.txt" display as "txt.exe".
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_WINDOWS_DEVICE = re.compile(
    r"^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\..*)?$", re.IGNORECASE
)
_DOUBLE_EXTENSION = re.compile(r"(\.tar)?\.[^.]+$", re.IGNORECASE)


def safe_member_name(name: str | None) -> str:
    """Make a name safe to extract anywhere: a relative path with ``/`` separators.

    Backslashes become ``/``; control characters are deleted; drive letters
    (``C:``), leading ``/``, ``.``, ``..`` and empty segments are dropped;
    trailing dots and spaces are removed from each segment (Windows drops
    them); Windows device names (``CON``, ``nul.txt``) get a leading ``_``.
    A name with nothing left becomes ``"file"``.
    """
    cleaned = _UNSAFE_CHARS.sub("", name or "").replace("\\", "/")
    segments = []
    for segment in cleaned.split("/"):
        segment = _DRIVE.sub("", segment).rstrip(" .")
        if not segment:
            continue  # "", "." and ".." (and "..." and " ") all end up here
        if _WINDOWS_DEVICE.match(segment):
            segment = f"_{segment}"
        segments.append(segment)
    return "/".join(segments) or "file"


class _Names:
    """Hands out archive names, numbering duplicates: ``name (2).ext``.

    Names are compared case-insensitively (two names differing by case
    would overwrite each other on Windows and macOS), and a file never takes
    the name of a directory of another member, nor the other way round.
    """

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._dirs: set[str] = set()

    def add(self, name: str) -> str:
        segments = name.split("/")
        for i in range(len(segments) - 1):
            # A directory whose path is a file's name already: number it.
            prefix = segments[: i + 1]
            if "/".join(prefix).casefold() in self._files:
                segments[i] = self._free(segments[:i], segments[i], self._files)
        leaf = self._free(segments[:-1], segments[-1], self._files | self._dirs)
        segments[-1] = leaf
        for i in range(len(segments) - 1):
            self._dirs.add("/".join(segments[: i + 1]).casefold())
        result = "/".join(segments)
        self._files.add(result.casefold())
        return result

    @staticmethod
    def _free(parents: list[str], segment: str, taken: set[str]) -> str:
        base = "/".join([*parents, ""])
        if (base + segment).casefold() not in taken:
            return segment
        match = _DOUBLE_EXTENSION.search(segment)
        if match is not None and match.start() > 0:
            stem, extension = segment[: match.start()], match.group()
        else:
            stem, extension = segment, ""
        number = 2
        while True:
            candidate = f"{stem} ({number}){extension}"
            if (base + candidate).casefold() not in taken:
                return candidate
            number += 1


def _dos_time(moment: datetime.datetime | None) -> tuple[int, int]:
    """DOS time and date of ``moment`` (UTC), clamped to 1980-2107."""
    if moment is None:
        return _DOS_EPOCH
    moment = moment.astimezone(datetime.timezone.utc)
    if moment.year < 1980:
        return _DOS_EPOCH
    if moment.year > 2107:
        return (23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    return time, date


def _extended_time(moment: datetime.datetime | None) -> bytes:
    """The extended timestamp extra field, or nothing if it can't hold ``moment``."""
    if moment is None:
        return b""
    seconds = int(moment.timestamp())
    if not 0 <= seconds < 2**31:
        return b""
    return _EXTENDED_TIME.pack(0x5455, 5, 1, seconds)


class _Entry:
    """One member's place in the archive and the bytes around its data."""

    __slots__ = (
        "crc",
        "dos_date",
        "dos_time",
        "extended_time",
        "file",
        "header",
        "name",
        "offset",
        "size",
        "zip64",
    )

    def __init__(
        self, file: DownloadFile, name: str, offset: int, compress: bool
    ) -> None:
        self.file = file
        self.name = name.encode("utf-8")
        self.offset = offset
        self.size = file.size
        crc = file.crc32
        self.crc: int | None = None if crc is None else int(crc) & 0xFFFFFFFF
        modified = file.modified_time
        self.dos_time, self.dos_date = _dos_time(modified)
        self.extended_time = _extended_time(modified)
        size = self.size
        if size is None:
            self.zip64 = True  # it may turn out big: 8-byte descriptor sizes
        elif compress:
            self.zip64 = size * _DEFLATE_MARGIN >= _LIMIT32
        else:
            self.zip64 = size >= _LIMIT32
        self.header = self._local_header(compress)

    def _local_header(self, compress: bool) -> bytes:
        # Sizes go in the local header when known and stored (streaming
        # unzippers use them); the CRC-32 never does (it is in the data
        # descriptor), so that no header depends on reading the data.
        known = 0 if compress or self.size is None else self.size
        extra = self.extended_time
        if self.zip64:
            extra = struct.pack("<HHQQ", _ZIP64_TAG, 16, known, known) + extra
            known = _LIMIT32
        return (
            _LOCAL.pack(
                _LOCAL_SIG,
                45 if self.zip64 else 20,
                _FLAGS,
                _DEFLATED if compress else _STORED,
                self.dos_time,
                self.dos_date,
                0,
                known,
                known,
                len(self.name),
                len(extra),
            )
            + self.name
            + extra
        )

    @property
    def descriptor_length(self) -> int:
        return _DESCRIPTOR64.size if self.zip64 else _DESCRIPTOR.size

    def descriptor(self, crc: int, compressed: int, size: int) -> bytes:
        if self.zip64:
            return _DESCRIPTOR64.pack(_DESCRIPTOR_SIG, crc, compressed, size)
        return _DESCRIPTOR.pack(_DESCRIPTOR_SIG, crc, compressed, size)

    def central_record(
        self, crc: int, compressed: int, size: int, offset: int, method: int
    ) -> bytes:
        extra = b""
        fields: list[int] = []
        if self.zip64 or size >= _LIMIT32 or compressed >= _LIMIT32:
            # APPNOTE 4.5.3: only the overflowing fields, in this order.
            if size >= _LIMIT32:
                fields.append(size)
                size = _LIMIT32
            if compressed >= _LIMIT32:
                fields.append(compressed)
                compressed = _LIMIT32
        if offset >= _LIMIT32:
            fields.append(offset)
            offset = _LIMIT32
        if fields:
            extra = struct.pack(
                f"<HH{len(fields)}Q", _ZIP64_TAG, 8 * len(fields), *fields
            )
        extra += self.extended_time
        needs = 45 if self.zip64 or fields else 20
        return (
            _CENTRAL.pack(
                _CENTRAL_SIG,
                _MADE_BY,
                needs,
                _FLAGS,
                method,
                self.dos_time,
                self.dos_date,
                crc,
                compressed,
                size,
                len(self.name),
                len(extra),
                0,
                0,
                0,
                _EXTERNAL_ATTR,
                offset,
            )
            + self.name
            + extra
        )

    def central_length(self) -> int:
        # The length of central_record() for a stored entry of known size,
        # without knowing its CRC-32.
        assert self.size is not None
        overflow = (self.size >= _LIMIT32) * 2 + (self.offset >= _LIMIT32)
        zip64 = 4 + 8 * overflow if overflow else 0
        return _CENTRAL.size + len(self.name) + zip64 + len(self.extended_time)


def _end_records(count: int, directory_size: int, directory_offset: int) -> bytes:
    """The end of central directory record, after a Zip64 one if needed."""
    records = b""
    if count >= _LIMIT16 or directory_size >= _LIMIT32 or directory_offset >= _LIMIT32:
        end64_offset = directory_offset + directory_size
        records = _END64.pack(
            _END64_SIG,
            _END64.size - 12,
            _MADE_BY,
            45,
            0,
            0,
            count,
            count,
            directory_size,
            directory_offset,
        ) + _LOCATOR64.pack(_LOCATOR64_SIG, 0, end64_offset, 1)
    return records + _END.pack(
        _END_SIG,
        0,
        0,
        min(count, _LIMIT16),
        min(count, _LIMIT16),
        min(directory_size, _LIMIT32),
        min(directory_offset, _LIMIT32),
        0,
    )


class _Truncated(Exception):
    """A member vanished, shrank or changed: the body must end here."""


class ArchiveFile(DownloadFile):
    """A ZIP archive of other files, streamed as it is read.

    Members are wrappers of any source: :class:`~flask_download.PathFile`,
    :class:`~flask_download.VirtualFile`, :class:`~flask_download.StorageFile`,
    :class:`~flask_download.HTTPFile`, rows' files. Their names in the
    archive are made safe for extraction (see :func:`safe_member_name`) and
    duplicates are numbered (``name (2).ext``).

    Stored (``compress=False``, the default), an archive whose members all
    know their size has an exact :attr:`size`, and a strong :attr:`etag`
    made from every member's name, size and validator; when every member is
    seekable too, any byte range of it can be read by reading only the
    members' bytes it covers (plus, for the data descriptor and central
    directory record of a member, its CRC-32: :attr:`DownloadFile.crc32`, or
    one read of the member). Deflated (``compress=True``), the size is
    unknown: no ``Content-Length`` and no ``Range``.

    Making the archive reads no member. Members are opened one at a time
    while the body is sent, and closed with the archive.

    :param members: wrappers, or ``(name, wrapper)`` pairs to name a member
        differently in the archive (a path such as ``"reports/2024.pdf"``
        makes folders).
    :param name: the archive's client-side name.
    :param compress: deflate the members (smaller, but no size and no ranges).
    :param compresslevel: the zlib level when compressing (0-9).
    """

    mimetype = "application/zip"

    def __init__(
        self,
        members: cabc.Iterable[Member],
        name: str | None = "download.zip",
        compress: bool = False,
        compresslevel: int = 6,
    ) -> None:
        self.name = name
        self.compress = compress
        self.compresslevel = compresslevel
        self._crcs: dict[int, int] = {}
        entries: list[_Entry] = []
        names = _Names()
        offset = 0
        sizes_known = True
        try:
            for member in members:
                member_name: str | None
                if isinstance(member, tuple):
                    member_name, file = member
                else:
                    member_name, file = file_name(member), member
                entry = _Entry(
                    file, names.add(safe_member_name(member_name)), offset, compress
                )
                entries.append(entry)
                if entry.size is None or compress:
                    sizes_known = False
                else:
                    offset += len(entry.header) + entry.size + entry.descriptor_length
        except BaseException:
            for entry in entries:
                entry.file.close()
            raise
        self.members: list[DownloadFile] = [entry.file for entry in entries]
        self._entries = entries
        self.seekable = sizes_known and all(e.file.seekable for e in entries)
        if sizes_known:
            # Where each local header and central record starts.
            self._starts = array.array("q", (e.offset for e in entries))
            self._directory_offset = offset
            self._records = array.array("q")
            for entry in entries:
                self._records.append(offset)
                offset += entry.central_length()
            self._end_offset = offset
            self._end = _end_records(
                len(entries), offset - self._directory_offset, self._directory_offset
            )
            self.size = offset + len(self._end)
        times = [e.file.modified_time for e in entries]
        if times and None not in times:
            self.modified_time = max(t.cast(list[datetime.datetime], times))
        self.etag = self._make_etag()

    def _make_etag(self) -> str | None:
        digest = hashlib.blake2b(digest_size=16)
        digest.update(
            b"zip/1 deflate/%d" % self.compresslevel if self.compress else b"zip/1"
        )
        for entry in self._entries:
            file = entry.file
            if file.etag is not None:
                validator = f"etag:{file.etag}"
            elif file.modified_time is not None:
                validator = f"mtime:{file.modified_time.timestamp()!r}"
            elif entry.crc is not None:
                validator = f"crc:{entry.crc}"
            else:
                return None  # a member that can't tell when it changes
            line = f"{entry.name.hex()}:{entry.size}:{validator}\n"
            digest.update(line.encode())
        return digest.hexdigest()

    # -- reading --------------------------------------------------------------

    def open(self) -> t.IO[bytes]:
        """A seekable stream of the archive that reads members as needed.

        :raises TypeError: the archive has no fixed layout (compressed, or a
            member of unknown size); read it with :meth:`chunks`.
        """
        if not self.seekable:
            raise TypeError("This archive is streamed; read it with 'chunks'.")
        return t.cast(t.IO[bytes], _ArchiveReader(self))

    def chunks(
        self,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        start: int = 0,
        stop: int | None = None,
    ) -> cabc.Iterator[bytes]:
        if self.seekable:
            with self.open() as handle:
                yield from read_slice(handle, chunk_size, start, stop)
            return
        if start:
            raise ValueError("Cannot read a range of an archive that is streamed.")
        yield from self._stream(chunk_size)

    def _stream(self, chunk_size: int) -> cabc.Iterator[bytes]:
        """The archive from start to end, members read in turn (no layout)."""
        method = _DEFLATED if self.compress else _STORED
        offset = 0
        directory: list[bytes] = []
        for index, entry in enumerate(self._entries):
            entry.offset = offset
            yield entry.header
            crc = 0
            size = 0
            compressed = 0
            deflate = (
                zlib.compressobj(self.compresslevel, zlib.DEFLATED, -15)
                if self.compress
                else None
            )
            try:
                for data in _member_chunks(entry, chunk_size):
                    crc = zlib.crc32(data, crc)
                    size += len(data)
                    if deflate is not None:
                        data = deflate.compress(data)
                        if not data:
                            continue
                    compressed += len(data)
                    yield data
                if deflate is not None:
                    data = deflate.flush()
                    compressed += len(data)
                    yield data
            except _Truncated:
                return
            finally:
                entry.file.close()
            if deflate is None:
                compressed = size
            if entry.size is not None and size != entry.size:
                # A member whose size was announced must have exactly it.
                _logger.error(
                    "Archive member %r changed size while it was sent;"
                    " the archive was cut short.",
                    entry.file,
                )
                return
            if not entry.zip64 and compressed >= _LIMIT32:
                _logger.error(
                    "Archive member %r is over 4 GiB but announced a smaller"
                    " size; the archive was cut short.",
                    entry.file,
                )
                return
            self._crcs[index] = crc
            yield entry.descriptor(crc, compressed, size)
            directory.append(
                entry.central_record(crc, compressed, size, offset, method)
            )
            offset += len(entry.header) + compressed + entry.descriptor_length
        directory_size = 0
        for record in directory:
            directory_size += len(record)
            yield record
        yield _end_records(len(directory), directory_size, offset)

    def crc32_of(self, index: int) -> int:
        """The CRC-32 of member ``index``: given by its wrapper, else read once.

        :raises FileNotFound: the member is gone or changed.
        """
        entry = self._entries[index]
        if entry.crc is not None:
            return entry.crc
        crc = self._crcs.get(index)
        if crc is None:
            crc = 0
            size = 0
            for data in _member_chunks(entry, DEFAULT_CHUNK_SIZE):
                crc = zlib.crc32(data, crc)
                size += len(data)
            if size != entry.size:
                raise _Truncated
            self._crcs[index] = crc
        return crc

    def close(self) -> None:
        """Close every member's wrapper."""
        for file in self.members:
            try:
                file.close()
            except Exception:  # one failing close must not keep others open
                _logger.exception("Closing archive member %r failed.", file)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({len(self.members)} members)>"


def file_name(file: DownloadFile) -> str | None:
    """The name a wrapper gets in an archive when none is given: its ``name``."""
    return file.name


def _member_chunks(entry: _Entry, chunk_size: int) -> cabc.Iterator[bytes]:
    """The bytes of a member, whole; ``_Truncated`` if it vanishes or changes."""
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
        _logger.error(
            "Archive member %r could not be read (%s); the archive was cut short.",
            file,
            e,
        )
        raise _Truncated from e


class _ArchiveReader(io.RawIOBase):
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
        except _Truncated:
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
                self._crc_of(index), entry.size, entry.size, entry.offset, _STORED
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
                _logger.error(
                    "Archive member %r could not be opened (%s); the archive"
                    " was cut short.",
                    entry.file,
                    e,
                )
                raise _Truncated from e
            self._index = index
            self._offset = 0
            self._crc = 0
        if offset != self._offset:
            handle.seek(offset)
            self._crc = None  # bytes skipped: no CRC-32 from this pass
        try:
            data = handle.read(size)
        except OSError as e:
            _logger.error("Archive member %r failed to read (%s).", entry.file, e)
            raise _Truncated from e
        if not data or (self._unchanged is not None and not self._unchanged()):
            _logger.error(
                "Archive member %r shrank, vanished or changed while it was"
                " sent; the archive was cut short.",
                entry.file,
            )
            raise _Truncated
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
            raise _Truncated from e

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


class ZipDownloadView(DownloadView):
    """Serve many files as one ZIP archive, streamed as it is made.

    Override :meth:`get_members` to return the files (any wrappers, or
    ``(name, wrapper)`` pairs)::

        class ReportsZip(ZipDownloadView):
            basename = "reports.zip"

            def get_members(self):
                folder = REPORTS / str(self.kwargs["year"])
                return [PathFile(path) for path in sorted(folder.iterdir())]

    Stored archives (the default) get ``Content-Length``, a strong ``ETag``,
    ``Last-Modified`` (the newest member), 304/412 and ``Range`` like any
    download; ``HEAD`` reads no member. :exc:`~flask_download.FileNotFound`
    from :meth:`get_members` answers 404; an empty list is an empty archive.
    Archives are never offloaded to the web server (it has no file to send).
    """

    #: The archive's client-side name.
    basename: str | None = "download.zip"
    #: Deflate the members: smaller, but no ``Content-Length`` and no ``Range``.
    compress: bool = False

    def get_members(self) -> cabc.Iterable[Member]:
        """Return the files of the archive, made for this request.

        :raises FileNotFound: answered with 404.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement 'get_members' and return"
            " DownloadFile wrappers or (name, wrapper) pairs."
        )

    def get_file(self) -> DownloadFile:
        return ArchiveFile(
            self.get_members(),
            name=self.get_basename() or "download.zip",
            compress=self.compress,
        )

    def _find_offload(self, file: DownloadFile) -> t.Any:
        # The web server has no file to send: an archive is made by Python.
        return None
