"""The archive file: a ZIP layout made from its members' metadata, read as needed."""

from __future__ import annotations

import array
import bisect
import collections.abc as cabc
import datetime
import hashlib
import logging
import os
import typing as t
import zlib

from ..conditional import as_utc
from ..files import DEFAULT_CHUNK_SIZE
from ..files import DownloadFile
from ..files import PathFile
from ..files import read_slice
from ..files import VirtualFile
from ..http import HTTPFile
from ..storage import StorageFile
from ._cache import _CRC_CACHE
from ._cache import _crc_key
from ._cache import _RANGE_ANSWERS
from ._format import CENTRAL_CRC
from ._format import DEFLATED
from ._format import DESCRIPTOR_CRC
from ._format import end_records
from ._format import Entry
from ._format import LIMIT32
from ._format import Names
from ._format import safe_member_name
from ._format import STORED
from ._reader import ArchiveReader
from ._reader import member_chunks
from ._reader import Truncated

logger = logging.getLogger("flask_download")


def _overlaps(start: int, stop: int, record: int, field: tuple[int, int]) -> bool:
    # Whether [start, stop) holds a byte of the field at ``field`` in a
    # record that starts at ``record``.
    return start < record + field[1] and record + field[0] < stop


#: A member of an archive: a wrapper, or ``(name in the archive, wrapper)``
#: (the name a string or a path).
Member: t.TypeAlias = "DownloadFile | tuple[str | os.PathLike[str], DownloadFile]"


class ArchiveFile(DownloadFile):
    """A ZIP archive of other files, streamed as it is read.

    Members are wrappers of any source: :class:`~flask_download.PathFile`,
    :class:`~flask_download.VirtualFile`, :class:`~flask_download.StorageFile`,
    :class:`~flask_download.HTTPFile`, rows' files. Their names in the
    archive are made safe for extraction (see
    :func:`~flask_download.archive.safe_member_name`) and duplicates are
    numbered (``name (2).ext``).

    Stored (``compress=False``, the default), an archive whose members all
    know their size has an exact :attr:`~DownloadFile.size`, and a strong
    :attr:`~DownloadFile.etag` made from every member's name, size and
    validator; any byte range of it can be read by reading only the
    members' bytes it covers (a member that cannot seek, such as an
    :class:`~flask_download.HTTPFile`, is read from its start, the bytes
    before the range dropped as they come; a wrapper of your own that cannot
    seek must give its bytes again at each ``chunks()`` call, and a
    :class:`~flask_download.VirtualFile` of a stream or an iterator, which
    can be read once, makes the archive streamed whole), plus, for the
    CRC-32 field of a member's data descriptor and central directory record,
    its CRC-32: :attr:`DownloadFile.crc32`, or one read of the member.
    Deflated (``compress=True``), the size is unknown: no
    ``Content-Length`` and no ``Range``.

    Making the archive reads no member's data. Members are opened one at a
    time while the body is sent, and closed with the archive; a local file's
    descriptor and a remote file's connection are let go as soon as the
    member's size and times are known, and opened again (checked unchanged)
    when its bytes are read.

    :param members: wrappers, or ``(name, wrapper)`` pairs to name a member
        differently in the archive (a path such as ``"reports/2024.pdf"``, or
        a :class:`pathlib.PurePath`, makes folders).
    :param name: the archive's client-side name.
    :param compress: deflate the members (smaller, but no size and no ranges).
    :param compresslevel: the zlib level when compressing (0-9).
    """

    mimetype = "application/zip"
    #: The archive's ``modified_time`` is its newest member's: adding,
    #: removing or replacing members with older files leaves it as it is, so
    #: ``If-Range`` never takes it for a validator (only the ETag).
    weak_modified_time = True

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
        entries: list[Entry] = []
        names = Names()
        offset = 0
        # Deflated: no size and no ranges, even with no member to deflate.
        sizes_known = not compress
        # An entry of exactly 0xFFFFFFFF bytes came before (see
        # Entry.central_record).
        after_marker = False
        current: DownloadFile | None = None
        try:
            for member in members:
                member_name: str | os.PathLike[str] | None
                if isinstance(member, tuple):
                    member_name, current = member
                else:
                    member_name, current = None, member
                if not isinstance(current, DownloadFile):
                    kind = type(current).__name__
                    current = None  # nothing of ours to close
                    raise TypeError(
                        "Archive members are DownloadFile wrappers or"
                        f" (name, wrapper) pairs, not {kind!r}."
                    )
                if member_name is None:
                    # No name given (or a pair's None): the wrapper's own.
                    member_name = file_name(current)
                if member_name is not None and not isinstance(member_name, str):
                    # A path (``path.relative_to(root)``) names it too.
                    member_name = os.fsdecode(member_name)
                entry = Entry(
                    current, names.add(safe_member_name(member_name)), offset, compress
                )
                entry.full_sizes = after_marker
                after_marker = after_marker or (entry.size == LIMIT32 and not compress)
                entries.append(entry)
                current = None
                _release(entry.file)
                if entry.size is None or compress:
                    sizes_known = False
                else:
                    offset += len(entry.header) + entry.size + entry.descriptor_length
        except BaseException:
            # A member that failed (FileNotFound: 404) and every other one
            # made so far: nothing stays open.
            closing = [entry.file for entry in entries]
            if current is not None:
                closing.append(current)
            if isinstance(members, cabc.Sequence):
                closing += [m[-1] if isinstance(m, tuple) and m else m for m in members]
            close_members = getattr(members, "close", None)
            if close_members is not None:
                close_members()  # a generator: its own cleanup runs now
            seen: set[int] = set()
            for file in closing:
                if isinstance(file, DownloadFile) and id(file) not in seen:
                    seen.add(id(file))
                    file.close()
            raise
        self.members: list[DownloadFile] = [entry.file for entry in entries]
        self._entries = entries
        # CRC-32s read before, of the same files (same place, size and
        # strong validator), in any archive of this process.
        self._crc_keys = [_crc_key(entry.file) for entry in entries]
        for index, key in enumerate(self._crc_keys):
            crc = None if key is None else _CRC_CACHE.get(key)
            if crc is not None:
                self._crcs[index] = crc
        # A fixed layout is enough for ranges: a member that cannot seek is
        # read from its start when a range needs its bytes or its CRC-32.
        # It may be needed again (several ranges), so not a VirtualFile of a
        # stream or an iterator, which can be read once.
        self.seekable = sizes_known and not any(
            isinstance(entry.file, VirtualFile) and not entry.file.seekable
            for entry in entries
        )
        if sizes_known:
            # Where each local header and central record starts.
            self._starts = array.array("q", (e.offset for e in entries))
            self._directory_offset = offset
            self._records = array.array("q")
            for entry in entries:
                self._records.append(offset)
                offset += entry.central_length()
            self._end_offset = offset
            self._end = end_records(
                len(entries), offset - self._directory_offset, self._directory_offset
            )
            self.size = offset + len(self._end)
        times = [e.file.modified_time for e in entries]
        if times and None not in times:
            # Naive times (a wrapper of your own) mean UTC, as everywhere.
            self.modified_time = max(
                as_utc(moment) for moment in t.cast(list[datetime.datetime], times)
            )
        self.etag = self._make_etag()

    def _make_etag(self) -> str | None:
        digest = hashlib.blake2b(digest_size=16)
        # Deflated bytes depend on the zlib version and level; stored ones not.
        compression = f"deflate/{self.compresslevel}/{zlib.ZLIB_RUNTIME_VERSION}"
        digest.update(f"zip/2 {compression if self.compress else 'stored'}".encode())
        if any(entry.full_sizes for entry in self._entries):
            # Records laid out differently from earlier versions (both sizes
            # after an entry of 0xFFFFFFFF bytes): no If-Range may splice.
            digest.update(b" full-sizes")
        for entry in self._entries:
            file = entry.file
            if file.etag is not None:
                validator = f"etag:{file.etag}"
            elif file.modified_time is not None:
                validator = f"mtime:{as_utc(file.modified_time).timestamp()!r}"
            elif entry.crc is not None:
                validator = f"crc:{entry.crc}"
            else:
                return None  # a member that can't tell when it changes
            # Every byte of the layout that depends on the member: its name,
            # size, entry times (a member's ETag may stay the same when only
            # its modification time changes) and the CRC-32 its wrapper
            # gives. Fields are length-prefixed: no validator can pass for
            # another member's fields.
            fields = (
                entry.name.hex(),
                str(entry.size),
                f"{entry.dos_time}/{entry.dos_date}/{entry.extended_time.hex()}",
                str(entry.crc),
                validator,
            )
            digest.update("".join(f"{len(f)}:{f};" for f in fields).encode())
        return digest.hexdigest()

    # -- reading --------------------------------------------------------------

    def open(self) -> t.IO[bytes]:
        """A seekable stream of the archive that reads members as needed.

        :raises TypeError: the archive has no fixed layout (compressed, or a
            member of unknown size); read it with :meth:`chunks`.
        """
        if not self.seekable:
            raise TypeError("This archive is streamed; read it with 'chunks'.")
        return t.cast(t.IO[bytes], ArchiveReader(self, self._waste_limit))

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
        method = DEFLATED if self.compress else STORED
        offset = 0
        directory: list[bytes] = []
        after_marker = False  # see Entry.central_record
        for index, entry in enumerate(self._entries):
            entry.offset = offset
            entry.full_sizes = entry.full_sizes or after_marker
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
                for data in member_chunks(entry, chunk_size):
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
            except Truncated:
                self._broke_off()
                return
            finally:
                entry.file.close()
            if deflate is None:
                compressed = size
            if entry.size is not None and size != entry.size:
                # A member whose size was announced must have exactly it.
                logger.error(
                    "Archive member %r changed size while it was sent;"
                    " the archive was cut short.",
                    entry.file,
                )
                self._broke_off()
                return
            if not entry.zip64 and compressed >= LIMIT32:
                logger.error(
                    "Archive member %r is over 4 GiB but announced a smaller"
                    " size; the archive was cut short.",
                    entry.file,
                )
                self._broke_off()
                return
            self._remember_crc(index, crc)
            after_marker = after_marker or LIMIT32 in (size, compressed)
            yield entry.descriptor(crc, compressed, size)
            directory.append(
                entry.central_record(crc, compressed, size, offset, method)
            )
            offset += len(entry.header) + compressed + entry.descriptor_length
        directory_size = 0
        for record in directory:
            directory_size += len(record)
            yield record
        yield end_records(len(directory), directory_size, offset)

    def _broke_off(self) -> None:
        """The streamed archive ends early (a member failed, vanished or
        changed size): with a known size the body is short of its
        ``Content-Length`` and the client sees it. Without one (deflated, or
        a member of unknown size), only an error tells: the body's end
        (chunked encoding's last chunk) would make an archive without its
        central directory look complete. So the error is raised, for the
        server to drop the connection instead.

        :raises Truncated: the archive's size is unknown.
        """
        if self.size is None:
            raise Truncated(
                f"{self!r} was cut short: a member failed while it was sent."
            )

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
            try:
                for data in member_chunks(entry, DEFAULT_CHUNK_SIZE):
                    crc = zlib.crc32(data, crc)
                    size += len(data)
            finally:
                if not entry.file.seekable:
                    entry.file.close()  # its connection: one member open at a time
            if size != entry.size:
                logger.error(
                    "Archive member %r has %d bytes, not the %s announced; the"
                    " archive was cut short.",
                    entry.file,
                    size,
                    entry.size,
                )
                raise Truncated
            self._remember_crc(index, crc)
        return crc

    def _slices(self, index: int) -> bool:
        # Whether member ``index`` is read from where a range needs it: it
        # says it can be, and its server has not shown otherwise (see
        # _range_answered).
        if not self._entries[index].file.sliceable:
            return False
        key = self._crc_keys[index]
        return key is None or _RANGE_ANSWERS.get(key) != 0

    def _honours(self, index: int) -> bool:
        # Whether member ``index``'s server took a range before.
        key = self._crc_keys[index]
        return key is not None and _RANGE_ANSWERS.get(key) == 1

    def _range_answered(self, index: int, answer: str) -> None:
        # How member ``index``'s server answered a range (see _Forward).
        file = self._entries[index].file
        if answer == "refused":
            logger.warning(
                "Archive member %r advertises byte ranges but answered one"
                " with the whole file; it is read from its start.",
                file,
            )
            return
        key = self._crc_keys[index]
        if key is not None:
            _RANGE_ANSWERS.put(key, int(answer == "honoured"))

    def _remember_crc(self, index: int, crc: int) -> None:
        self._crcs[index] = crc
        key = self._crc_keys[index]
        if key is not None:
            _CRC_CACHE.put(key, crc)

    #: Member bytes a range request may read without sending them (for
    #: CRC-32s, or to reach the range in a member that cannot seek), beyond
    #: eight times the bytes it asks for; a request that would read more
    #: gets the whole archive (200) instead, so that a few bytes asked never
    #: make the server read gigabytes (see :meth:`range_too_costly`).
    wasted_read_budget: int = 64 << 20
    # Set once range_too_costly() let a range plan through: readers made
    # from then on hold to it (an unbounded reader for others, such as
    # zipfile reading the archive through open()).
    _waste_limit: int | None = None

    def range_too_costly(self, spans: cabc.Sequence[tuple[int, int]]) -> bool:
        """Whether answering ``spans`` would read too much that it does not
        send (:attr:`wasted_read_budget`); the views then send the whole
        archive.

        The allowance of eight times the bytes asked counts only bytes sent
        before each wasted read: a resume (the data first, the central
        directory's CRC-32s last) gets it, a request that asks for one CRC
        byte and then much data does not.

        CRC-32s read once are remembered for the process (for the same
        file: see ``_crc_key()``), so a client that downloaded the archive
        can resume it cheaply afterwards.

        A :attr:`~flask_download.DownloadFile.sliceable` member counts as
        free, as its server is asked for just the bytes needed. Once this
        returned ``False``, readers of the archive hold to the same bound
        while the body is sent: a server that advertises byte ranges but
        answers one with the whole file makes the archive read that member
        from its start only within the budget, else the body is cut short
        (never a wrong byte; ranges deeper than the budget are first checked
        with a one-byte range at the member's start). The members whose
        server sent the whole file are then remembered, for the process, as
        ones that cannot seek, and later requests get the whole archive
        instead.
        """
        ordered = sorted(spans)
        wasted = 0
        done = 0  # bytes of the spans wholly before the current read
        next_span = 0
        for position, cost in self._wasted_reads(ordered):
            wasted += cost
            while next_span < len(ordered) and ordered[next_span][1] <= position:
                start, stop = ordered[next_span]
                done += stop - start
                next_span += 1
            sent = done
            if next_span < len(ordered) and ordered[next_span][0] < position:
                sent += position - ordered[next_span][0]  # the span it is in
            if wasted > self.wasted_read_budget + 8 * sent:
                return True
        self._waste_limit = self.wasted_read_budget
        return False

    def _wasted_reads(
        self, spans: cabc.Sequence[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        # The member bytes reading the sorted ``spans`` reads and does not
        # send, as (position in the archive where the read happens, bytes):
        # whole members read only for their CRC-32 (not known yet, data not
        # covered by the spans), and the bytes before a span in a member
        # that cannot seek.
        if not self.seekable:
            return []
        entries = self._entries
        needed: dict[int, int] = {}  # member -> first position needing its CRC
        covered: set[int] = set()
        reads: list[tuple[int, int]] = []
        for start, stop in spans:
            # Members whose header, data or descriptor the span touches.
            first = max(bisect.bisect_right(self._starts, start) - 1, 0)
            for index in range(first, bisect.bisect_left(self._starts, stop)):
                entry = entries[index]
                assert entry.size is not None
                data = entry.offset + len(entry.header)
                descriptor = data + entry.size
                if start <= data and descriptor <= stop:
                    covered.add(index)  # read anyway, its CRC-32 on the way
                elif data < start < descriptor and not (
                    entry.file.seekable or self._slices(index)
                ):
                    reads.append((start, start - data))  # read, dropped
                if _overlaps(start, stop, descriptor, DESCRIPTOR_CRC):
                    needed.setdefault(index, max(start, descriptor))
            # Members whose central record the span touches.
            first = max(bisect.bisect_right(self._records, start) - 1, 0)
            for index in range(first, bisect.bisect_left(self._records, stop)):
                record = self._records[index]
                if _overlaps(start, stop, record, CENTRAL_CRC):
                    needed.setdefault(index, max(start, record))
        for index, position in needed.items():
            entry = entries[index]
            if index not in covered and entry.crc is None and index not in self._crcs:
                reads.append((position, t.cast(int, entry.size)))
        reads.sort()
        return reads

    def close(self) -> None:
        """Close every member's wrapper."""
        for file in self.members:
            try:
                file.close()
            except Exception:  # one failing close must not keep others open
                logger.exception("Closing archive member %r failed.", file)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({len(self.members)} members)>"


def _release(file: DownloadFile) -> None:
    """Let go of the descriptor or connection a member holds from its
    construction, once its size and times are known.

    A :class:`~flask_download.PathFile` (also behind a local
    :class:`~flask_download.StorageFile` or a ``FileColumn`` value) opens
    its file when it is made and opens it again, checked to be the same
    unchanged file, when it is read after :meth:`~DownloadFile.close`. An
    :class:`~flask_download.HTTPFile` has its answer's headers when it is
    made: its connection is closed, and the body asked for again (``If-Match``
    on its ETag) when it is read. An archive of thousands of files thus
    holds no descriptor or connection but the one of the member being sent,
    and ``HEAD`` reads no member's body. Other wrappers keep what they hold.
    """
    target = file
    resolved = getattr(file, "_file", None)  # a FileColumn value, resolved
    if hasattr(file, "resolve") and isinstance(resolved, DownloadFile):
        target = resolved
    if isinstance(target, (PathFile, StorageFile)):
        file.close()
    elif isinstance(file, HTTPFile):
        file._release()


def file_name(file: DownloadFile) -> str | None:
    """The name a wrapper gets in an archive when none is given: its ``name``."""
    return file.name
