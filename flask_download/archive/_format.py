"""The bytes of a ZIP archive (APPNOTE.TXT 6.3): records, names, times."""

from __future__ import annotations

import datetime
import re
import struct
import typing as t
import unicodedata

from ..conditional import as_utc
from ..files import checked_size
from ..paths import is_windows_device

if t.TYPE_CHECKING:
    from ..files import DownloadFile

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
# Where the CRC-32 lies in a data descriptor (after its signature) and in a
# central directory record (after the signature and six 2-byte fields): a
# read of other bytes of these records needs no CRC-32.
DESCRIPTOR_CRC = (4, 8)
CENTRAL_CRC = (16, 20)

# Fields at or above these values overflow and move to Zip64 records
# (APPNOTE 4.4.8: 0xFFFFFFFF marks a value found in the Zip64 extra field).
LIMIT32 = 0xFFFFFFFF
_LIMIT16 = 0xFFFF
# Bit 3: CRC-32 and sizes follow the data in a data descriptor; bit 11: the
# name is UTF-8 (APPNOTE 4.4.4 and appendix D).
_FLAGS = 0x0008 | 0x0800
STORED = 0
DEFLATED = 8
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
_UNSAFE_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# Drives at the start of a segment, repeated ("C:C:\\x" is not left as "C:x").
_DRIVE = re.compile(r"^(?:[A-Za-z]:)+")
_DOUBLE_EXTENSION = re.compile(r"(\.tar)?\.[^.]+$", re.IGNORECASE)
# Characters that unzippers turn into path punctuation: by Unicode
# compatibility (NFKC: fullwidth "．．／", "‥", small "﹨"), or by the
# Windows "best fit" conversion to an ANSI code page done by tools that use
# the ANSI file APIs ("∕", "⧵"). Mapped first, so "．．／x" is cleaned as "../x".
_BEST_FIT = {
    "\u2044": "/",
    "\u2215": "/",
    "\u2216": "\\",
    "\u29f5": "\\",
    "\u29f8": "/",
    "\u29f9": "\\",
}
_PATH_PUNCTUATION = frozenset("/\\.:")
# Longest segment kept, in UTF-8 bytes: most file systems allow 255, and a
# numbered duplicate (" (12)") must still fit.
MAX_SEGMENT_BYTES = 240
# Longest name kept, in UTF-8 bytes (the ZIP format allows 65535); deeper
# folders are dropped from the front.
MAX_NAME_BYTES = 4096


def _unfold_lookalikes(name: str) -> str:
    if name.isascii():
        return name
    out = []
    for char in name:
        if char in _BEST_FIT:
            out.append(_BEST_FIT[char])
            continue
        if not char.isascii():
            folded = unicodedata.normalize("NFKC", char)
            if folded and set(folded) <= _PATH_PUNCTUATION:
                char = folded
        out.append(char)
    return unicodedata.normalize("NFC", "".join(out))


# The backslash of the Japanese and Korean Windows code pages (932, 949),
# shown as ¥ and ₩: "..¥x" extracts as "..\\x" there through the ANSI APIs.
_YEN_WON = re.compile("[\u00a5\u20a9]")


def _yen_won(segment: str) -> str:
    # Kept in ordinary names ("¥100.txt"); replaced where, read as a
    # backslash, they would make a "." or ".." part or an absolute path.
    if not _YEN_WON.search(segment):
        return segment
    parts = _YEN_WON.split(segment)
    if any(part.rstrip(" ") in ("", ".", "..") for part in parts):
        return _YEN_WON.sub("_", segment)
    return segment


def _shorten(segment: str, limit: int) -> str:
    """``segment`` cut to ``limit`` UTF-8 bytes, its extension kept."""
    if len(segment.encode("utf-8")) <= limit:
        return segment
    match = _DOUBLE_EXTENSION.search(segment)
    extension = match.group() if match is not None and match.start() > 0 else ""
    if len(extension.encode("utf-8")) > limit // 2:
        extension = ""
    stem = segment[: len(segment) - len(extension)]
    room = limit - len(extension.encode("utf-8"))
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .")
    return (stem or "file") + extension


def _decodable(name: str) -> str:
    """``name`` with no lone surrogate, which UTF-8 cannot encode.

    A name read from a file system that is not UTF-8 holds them
    (``os.fsdecode``'s ``surrogateescape``): its bytes are decoded as UTF-8
    where they are, the others become U+FFFD.
    """
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        raw = name.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def safe_member_name(name: str | None) -> str:
    """Make a name safe to extract anywhere: a relative path with ``/`` separators.

    Undecodable bytes (lone surrogates from a file system that is not
    UTF-8) become U+FFFD; backslashes become ``/``; control characters are
    deleted; drive letters (``C:``, repeated ones too), leading ``/``,
    ``.``, ``..`` and empty
    segments are dropped; any other ``:`` becomes ``_`` (on Windows it would
    name an alternate data stream); trailing dots and spaces are removed
    from each segment (Windows drops them); Windows device names (``CON``,
    ``nul.txt``, ``COM¹``, ``CONIN$``) get a leading ``_``; ``¥`` and ``₩``
    (the backslash of Japanese and Korean Windows code pages) become ``_``
    where, read as a backslash, they would make a ``..`` part or an
    absolute path.
    Characters that unzippers fold into path punctuation (fullwidth
    ``．．／``, ``∕``) are folded first; segments are cut to
    ``MAX_SEGMENT_BYTES`` (240) and the name to ``MAX_NAME_BYTES`` (4,096)
    UTF-8 bytes (extensions kept). A name with nothing left becomes ``"file"``.

    Other characters Windows does not allow in names (``< > " | ? *``) are
    kept: they cannot lead out of the folder extracted to, names made on
    other systems hold them, and Windows unzippers such as 7-Zip and
    Python's :mod:`zipfile` replace them when they extract.
    """
    cleaned = _UNSAFE_CHARS.sub("", _decodable(name or ""))
    cleaned = _unfold_lookalikes(cleaned).replace("\\", "/")
    segments = []
    for segment in cleaned.split("/"):
        # A colon left after the drives would name an alternate data stream
        # on Windows ("a:b.txt" writes stream "b.txt" of file "a").
        segment = _DRIVE.sub("", segment).replace(":", "_").rstrip(" .")
        if not segment:
            continue  # "", "." and ".." (and "..." and " ") all end up here
        segment = _yen_won(segment)
        if is_windows_device(segment):
            segment = f"_{segment}"
        segments.append(_shorten(segment, MAX_SEGMENT_BYTES))
    # Counted once, not joined again for each folder dropped: a hostile name
    # of many short segments costs linear time, not quadratic.
    lengths = [len(segment.encode("utf-8")) + 1 for segment in segments]
    total = sum(lengths) - 1
    first = 0
    while len(segments) - first > 1 and total > MAX_NAME_BYTES:
        total -= lengths[first]
        first += 1
    return "/".join(segments[first:]) or "file"


# Characters Windows does not allow in names, which unzippers there (7-Zip,
# Python's zipfile) extract as "_" (":" is one already, see safe_member_name).
_WINDOWS_REPLACED = str.maketrans(dict.fromkeys('<>"|?*', "_"))


def _key(name: str) -> str:
    # Names equal once case and Unicode composition are ignored are the
    # same file on Windows and macOS ("é" composed or not, "A" or "a").
    # Upper-cased first: Windows compares names upper-cased, and some
    # letters fold apart but upper-case alike (dotless "ı" and "i" are both
    # "I"); numbering one name too many is harmless, one too few overwrites.
    # Names Windows unzippers extract alike ("a?b" and "a_b") are one too.
    folded = unicodedata.normalize("NFC", name).upper().casefold()
    return folded.translate(_WINDOWS_REPLACED)


class Names:
    """Hands out archive names, numbering duplicates: ``name (2).ext``.

    Names are compared ignoring case and Unicode composition (two names
    differing by either would overwrite each other on Windows or macOS),
    and with the characters Windows unzippers replace (``< > " | ? *``) read
    as ``_``; a file never takes the name of a directory of another member,
    nor the other way round (the directory is numbered then, once: all its
    members stay together).
    """

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._dirs: set[str] = set()
        # The next number to try for a numbered name, so that many
        # duplicates cost linear time, not quadratic.
        self._next: dict[str, int] = {}
        # Directories numbered because a file had their name: the next
        # members of that directory go to the same numbered one.
        self._moved: dict[str, str] = {}

    def add(self, name: str) -> str:
        segments = name.split("/")
        # The keys of its folders are made one segment at a time ("/" neither
        # composes nor changes case: a path's key is its segments' keys
        # joined), so that a name of many folders costs linear time.
        folder = ""  # the key of the folders so far, with a trailing "/"
        for i in range(len(segments) - 1):
            key = folder + _key(segments[i])
            moved = self._moved.get(key)
            if moved is not None:
                segments[i] = moved
            elif key in self._files:
                # A directory whose path is a file's name already: number it.
                segments[i] = self._free(segments[:i], segments[i], dirs=False)
                self._moved[key] = segments[i]
            folder += _key(segments[i]) + "/"
        segments[-1] = self._free(segments[:-1], segments[-1], dirs=True)
        folder = ""
        for segment in segments[:-1]:
            folder += _key(segment)
            self._dirs.add(folder)
            folder += "/"
        result = "/".join(segments)
        self._files.add(_key(result))
        return result

    def _free(self, parents: list[str], segment: str, dirs: bool) -> str:
        base = "/".join([*parents, ""])

        def taken(candidate: str) -> bool:
            key = _key(base + candidate)
            return key in self._files or (dirs and key in self._dirs)

        if not taken(segment):
            return segment
        match = _DOUBLE_EXTENSION.search(segment)
        if match is not None and match.start() > 0:
            stem, extension = segment[: match.start()], match.group()
        else:
            stem, extension = segment, ""
        counter = _key(base + segment)
        number = self._next.get(counter, 2)
        while taken(candidate := f"{stem} ({number}){extension}"):
            number += 1
        self._next[counter] = number + 1
        return candidate


def _dos_time(moment: datetime.datetime | None) -> tuple[int, int]:
    """DOS time and date of ``moment`` (UTC), clamped to 1980-2107."""
    if moment is None:
        return _DOS_EPOCH
    moment = as_utc(moment)
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
    seconds = int(as_utc(moment).timestamp())
    if not 0 <= seconds < 2**31:
        return b""
    return _EXTENDED_TIME.pack(0x5455, 5, 1, seconds)


class Entry:
    """One member's place in the archive and the bytes around its data."""

    __slots__ = (
        "crc",
        "dos_date",
        "dos_time",
        "extended_time",
        "file",
        "full_sizes",
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
        # Both sizes in the Zip64 field of its central record whenever it
        # has one (see central_record); set by the archive.
        self.full_sizes = False
        self.name = name.encode("utf-8")
        self.offset = offset
        # Refused as for a download of the member alone (True, 4.0, -1).
        size = file.size
        self.size = (
            None if size is None else checked_size(size, f"{type(file).__name__}.size")
        )
        crc = file.crc32
        self.crc: int | None = None if crc is None else int(crc) & 0xFFFFFFFF
        modified = file.modified_time
        self.dos_time, self.dos_date = _dos_time(modified)
        self.extended_time = _extended_time(modified)
        size = self.size
        if size is None:
            self.zip64 = True  # it may turn out big: 8-byte descriptor sizes
        elif compress:
            self.zip64 = size * _DEFLATE_MARGIN >= LIMIT32
        else:
            self.zip64 = size >= LIMIT32
        self.header = self._local_header(compress)

    def _local_header(self, compress: bool) -> bytes:
        # Sizes go in the local header when known and stored (streaming
        # unzippers use them); the CRC-32 never does (it is in the data
        # descriptor), so that no header depends on reading the data.
        known = 0 if compress or self.size is None else self.size
        extra = self.extended_time
        if self.zip64:
            extra = struct.pack("<HHQQ", _ZIP64_TAG, 16, known, known) + extra
            known = LIMIT32
        return (
            _LOCAL.pack(
                _LOCAL_SIG,
                45 if self.zip64 else 20,
                _FLAGS,
                DEFLATED if compress else STORED,
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
        # Info-ZIP's unzip (6.0) takes the first Zip64 value of a record for
        # its size whenever the last local header it read had a size of
        # exactly 0xFFFFFFFF (the marker): after such an entry, a record
        # whose Zip64 field holds only its offset is misread. Those records
        # carry both sizes, marked as moved, before the offset.
        full = self.full_sizes and offset >= LIMIT32
        if full or self.zip64 or size >= LIMIT32 or compressed >= LIMIT32:
            # APPNOTE 4.5.3: only the overflowing fields, in this order.
            if full or size >= LIMIT32:
                fields.append(size)
                size = LIMIT32
            if full or compressed >= LIMIT32:
                fields.append(compressed)
                compressed = LIMIT32
        if offset >= LIMIT32:
            fields.append(offset)
            offset = LIMIT32
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
        full = self.full_sizes and self.offset >= LIMIT32
        overflow = (full or self.size >= LIMIT32) * 2 + (self.offset >= LIMIT32)
        zip64 = 4 + 8 * overflow if overflow else 0
        return _CENTRAL.size + len(self.name) + zip64 + len(self.extended_time)


def end_records(count: int, directory_size: int, directory_offset: int) -> bytes:
    """The end of central directory record, after a Zip64 one if needed."""
    records = b""
    if count >= _LIMIT16 or directory_size >= LIMIT32 or directory_offset >= LIMIT32:
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
        min(directory_size, LIMIT32),
        min(directory_offset, LIMIT32),
        0,
    )
