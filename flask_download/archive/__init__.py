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
import collections
import collections.abc as cabc
import datetime
import hashlib
import logging
import os
import threading
import typing as t
import zlib

from ..conditional import as_utc
from ..files import DEFAULT_CHUNK_SIZE
from ..files import DownloadFile
from ..files import PathFile
from ..files import read_slice
from ..files import VirtualFile
from ..http import HTTPFile
from ..response import DownloadResponse
from ..response import gunicorn_response
from ..storage import _store_etag
from ..storage import StorageFile
from ..views import DownloadView
from ._format import CENTRAL_CRC
from ._format import DEFLATED
from ._format import DESCRIPTOR_CRC
from ._format import end_records
from ._format import Entry
from ._format import LIMIT32
from ._format import Names
from ._format import safe_member_name as safe_member_name
from ._format import STORED
from ._reader import ArchiveReader
from ._reader import member_chunks
from ._reader import Truncated

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

logger = logging.getLogger("flask_download")


class _CrcCache:
    """Numbers remembered about archive members in this process (their
    CRC-32s, how their servers answered ranges), least recently used
    dropped first (a few MiB at most)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[tuple[str, ...], int] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> int | None:
        with self._lock:
            crc = self._items.get(key)
            if crc is not None:
                self._items.move_to_end(key)
            return crc

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def put(self, key: tuple[str, ...], crc: int) -> None:
        with self._lock:
            self._items[key] = crc
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_CRC_CACHE = _CrcCache(16384)
# How the server of a sliceable member (same URL, size and ETag) answered a
# range: 1 with just it, 0 with the whole file when that cost more than the
# budget (the body was cut short). The latter counts as a member that cannot
# seek from then on, so that the next range's cost is known before its body
# starts (a 200 rather than a 206 cut short again); the former is not asked
# again whether it takes ranges (see _reader._Forward).
_RANGE_ANSWERS = _CrcCache(4096)


def _crc_key(file: DownloadFile) -> tuple[str, ...] | None:
    """What names ``file``'s content for the CRC-32 cache, or ``None`` when
    nothing does reliably (then its CRC-32 is never remembered).

    A local file: its path and its whole stat identity (device, inode,
    size, mtime and ctime, which no rewrite in place keeps). A file of a
    remote store: the store's identity (its fsspec token, which holds a
    ``DirFileSystem``'s folder), the key, the size and the ETag the store
    gave (not one made from an mtime). A remote URL: the URL, the size and
    the upstream's strong ETag. Other wrappers are never remembered.
    """
    if isinstance(file, StorageFile) and file._local is not None:
        file = file._local
    if isinstance(file, PathFile):
        st = file._stat
        return (
            "path",
            file.path,
            str(st.st_dev),
            str(st.st_ino),
            str(st.st_size),
            str(st.st_mtime_ns),
            str(st.st_ctime_ns),
        )
    if file.etag is None or file.size is None:
        return None
    if isinstance(file, StorageFile):
        token = getattr(file.fs, "_fs_token", None)
        if token is None or _store_etag(file.info) is None:
            return None
        return ("storage", str(token), file.key, str(file.size), file.etag)
    if isinstance(file, HTTPFile):
        return ("http", str(file.url), str(file.size), file.etag)
    return None


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
        sizes_known = True
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
                if not isinstance(member, tuple):
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


def server_writes(
    environ: WSGIEnvironment, start_response: t.Any
) -> tuple[t.Any, cabc.Callable[[int], bool] | None]:
    """The server's client socket, and a check that the server has written
    exactly ``n`` body bytes to it, unframed, after the headers.

    Writing to the socket directly is only safe when the server iterates
    the body itself and writes each chunk before asking for the next: any
    WSGI middleware that buffers, compresses or reframes the body (or just
    wraps ``start_response``) would see member bytes overtake the headers
    or the chunks it holds. So the socket is used only when the
    ``start_response`` the application got is the server's own, and each
    ``sendfile`` first checks how far the server got. ``(None, None)``
    when that cannot be told: the body is then streamed by Python.
    """
    sock = environ.get("gunicorn.socket")
    server_response = gunicorn_response(start_response)
    if sock is not None and getattr(server_response, "sock", None) is sock:
        # gunicorn counts the body bytes it wrote (``sent``).
        server: t.Any = server_response

        def gunicorn_written(count: int) -> bool:
            return bool(
                server.headers_sent and not server.chunked and server.sent == count
            )

        return sock, gunicorn_written
    sock = environ.get("werkzeug.socket")
    code = getattr(start_response, "__code__", None)
    if (
        sock is not None
        and code is not None
        and getattr(start_response, "__module__", None) == "werkzeug.serving"
        and start_response.__qualname__.endswith("run_wsgi.<locals>.start_response")
        and "headers_sent" in code.co_freevars
    ):
        # Werkzeug's development server keeps no count: the check is that
        # its own write() has sent the headers (it writes every chunk at
        # once, unframed when Content-Length is set).
        cells = dict(
            zip(code.co_freevars, start_response.__closure__ or (), strict=True)
        )
        headers_sent = cells["headers_sent"]

        def werkzeug_written(count: int) -> bool:
            return count > 0 and bool(headers_sent.cell_contents)

        return sock, werkzeug_written
    return None, None


def file_name(file: DownloadFile) -> str | None:
    """The name a wrapper gets in an archive when none is given: its ``name``."""
    return file.name


class ArchiveResponse(DownloadResponse):
    """A :class:`~flask_download.DownloadResponse` that sends local members
    of a whole stored :class:`ArchiveFile` with ``sendfile``.

    ZIP headers come from Python; the data of each local member whose
    CRC-32 is known is written by the kernel straight from the file to the
    client's socket, on servers that expose it (gunicorn's
    ``gunicorn.socket``, Werkzeug's ``werkzeug.socket``) and write each
    chunk before asking for the next. Ranges, other servers and other
    members are streamed by Python.

    Only when the server iterates the body itself: the ``start_response``
    the application got must be the server's own, and before each member
    the server must have written every chunk yielded so far (see
    :func:`!server_writes`). Behind WSGI middleware that buffers or rewrites
    the body, Python streams the archive instead. Bytes sent this way
    bypass the server's own count (gunicorn's access log ``%(b)s`` shows
    only the Python-written part); set
    :attr:`ZipDownloadView.sendfile <flask_download.ZipDownloadView.sendfile>` to
    ``False`` to turn it off.
    """

    #: Send local members with ``sendfile`` where the server allows it.
    sendfile: bool = True
    _socket: t.Any = None
    _written: cabc.Callable[[int], bool] | None = None

    def get_app_iter(self, environ: WSGIEnvironment) -> cabc.Iterable[bytes]:
        file = self.file
        if (
            self.sendfile
            and isinstance(file, ArchiveFile)
            and file.seekable
            and self._segments == [(0, file.size)]
        ):
            # The start_response kept by DownloadResponse tells whether the
            # server itself iterates the body: only then do bytes written
            # to its socket land where they belong.
            self._socket, self._written = server_writes(environ, self._start_response)
        return super().get_app_iter(environ)

    def _iter_body(self) -> cabc.Iterator[bytes]:
        expected = self.content_length
        total = 0
        for chunk in self._body_parts():
            total += len(chunk)
            yield chunk
        total += self._direct
        if expected is not None and total < expected:
            self._cut_short()

    def _body_parts(self) -> cabc.Iterator[bytes]:
        handle = self._handle
        written = self._written
        if (
            self._socket is None
            or written is None
            or not isinstance(handle, ArchiveReader)
        ):
            yield from super()._iter_body()
            return
        yield from handle.send_whole(
            self._socket, self.chunk_size, self._count, written
        )

    _direct = 0

    def _count(self, sent: int) -> None:
        self._direct += sent
        if self._delivery is not None:
            self._delivery.bytes_sent += sent


class ZipDownloadView(DownloadView):
    """Serve many files as one ZIP archive, streamed as it is made.

    Override :meth:`get_members` to return the files (any wrappers, or
    ``(name, wrapper)`` pairs)::

        class ReportsZip(ZipDownloadView):
            basename = "reports.zip"

            def get_members(self):
                folder = REPORTS / str(self.kwargs["year"])
                return (PathFile(path) for path in sorted(folder.iterdir()))

    Stored archives (the default) get ``Content-Length``, a strong ``ETag``,
    ``Last-Modified`` (the newest member), 304/412 and ``Range`` like any
    download; ``HEAD`` reads no member's data (a remote member's answer,
    asked for its size, is closed unread). :exc:`~flask_download.FileNotFound`
    from :meth:`get_members` answers 404; an empty list is an empty archive.
    Archives are never offloaded to the web server (it has no file to send).
    """

    #: The archive's client-side name.
    basename: str | None = "download.zip"
    #: Deflate the members: smaller, but no ``Content-Length`` and no ``Range``.
    compress: bool = False
    #: Send local members with ``sendfile`` where the server exposes its
    #: socket (see :class:`~flask_download.archive.ArchiveResponse`).
    sendfile: bool = True

    response_class: type[DownloadResponse] = ArchiveResponse

    def get_members(self) -> cabc.Iterable[Member]:
        """Return the files of the archive, made for this request.

        A generator is best: each member is looked at (size, times) as it
        comes, and a local file's descriptor or a remote file's connection
        is released at once, so that at most one is open whatever the
        number of files.

        :raises FileNotFound: answered with 404.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement 'get_members' and return"
            " DownloadFile wrappers or (name, wrapper) pairs."
        )

    def download_response(self, *args: t.Any, **kwargs: t.Any) -> DownloadResponse:
        """Build the archive's response as
        :meth:`DownloadMixin.download_response` does, and pass
        :attr:`sendfile` on to it.
        """
        response = super().download_response(*args, **kwargs)
        if isinstance(response, ArchiveResponse):
            response.sendfile = self.sendfile
        return response

    def get_file(self) -> DownloadFile:
        return ArchiveFile(
            self.get_members(),
            name=self.get_basename() or "download.zip",
            compress=self.compress,
        )

    def _find_offload(self, file: DownloadFile) -> t.Any:
        # The web server has no file to send: an archive is made by Python.
        return None
