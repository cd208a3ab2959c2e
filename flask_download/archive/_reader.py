"""Reading a stored archive's bytes at any offset, members opened one at a time."""

from __future__ import annotations

import bisect
import collections.abc as cabc
import logging
import socket
import typing as t
import zlib

from ..exceptions import DownloadError
from ..exceptions import FileNotFound
from ..files import DEFAULT_CHUNK_SIZE
from ..files import DownloadFile
from ..files import read_slice
from ..files import SizedReader
from ..response._bodies import _reads_its_file
from ._format import CENTRAL_CRC
from ._format import DESCRIPTOR_CRC
from ._format import Entry
from ._format import STORED

if t.TYPE_CHECKING:
    from . import ArchiveFile

logger = logging.getLogger("flask_download")


class Truncated(DownloadError):
    """A member vanished, shrank or changed: the body must end here.

    Raised out of :meth:`ArchiveFile.chunks` when the archive has no known
    size (so that the server drops the connection rather than end the body
    as if it were whole); else the body just ends short of its size.
    """


#: The largest window a sliceable member is asked for in (see _Forward).
MAX_WINDOW = 64 << 20


class WasteBudget:
    """What a range read may read of members without sending it: ``limit``
    bytes plus eight times the bytes sent so far (the bound
    :meth:`ArchiveFile.range_too_costly` checked before the body started).

    The plan counts a :attr:`~flask_download.DownloadFile.sliceable` member
    as free; one whose server then answers a range with the whole file
    (RFC 9110 §14.2 allows it) costs what it drops, and the body is cut
    short rather than read on without bound.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0
        self.wasted = 0
        #: Members (by ``id``) whose server answered a range with just it.
        self.honoured: set[int] = set()
        #: Members (by ``id``) whose server answered a range with the whole
        #: file: what to tell when the range is cut short (see overspent).
        self.refused: dict[int, cabc.Callable[[str], None]] = {}

    def room(self) -> int:
        return self.limit + 8 * self.sent - self.wasted

    def spend(self, count: int, file: DownloadFile) -> None:
        """Count ``count`` bytes read and dropped, before reading them.

        :raises Truncated: more than the budget allows.
        """
        if count > self.room():
            logger.error(
                "Archive member %r would need %d bytes read and dropped (its"
                " server does not take ranges, or a CRC-32 is unknown): more"
                " than the range may cost; the archive was cut short.",
                file,
                count,
            )
            self.overspent()
            raise Truncated
        self.wasted += count

    def overspent(self) -> None:
        """The range costs more than its budget: only bytes dropped for
        members whose server answered a range with the whole file could make
        it (the plan counted everything else). Every such member is told, to
        count as one that cannot seek from then on (a member that refused
        within the budget used it up as much as the one that went over)."""
        for tell in list(self.refused.values()):
            tell("too costly")


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


class _Forward:
    """A member that cannot seek, read from its start: ``read(n)`` returns at
    most ``n`` bytes, ``b""`` at its end. Closing it closes the member (its
    connection, say), which reads it again if asked again.

    A :attr:`~flask_download.DownloadFile.sliceable` member is read from
    ``start`` instead, in windows: the first is the first read's size (a
    short range asks for just its bytes), each next one twice the last, so
    a long read makes few requests and a read that stops early leaves at
    most as many bytes unread as it took. With a :class:`WasteBudget`, a
    window deeper than the budget allows to drop is asked only once the
    server took a range (a one-byte one at the start, if need be): one that
    sends the whole file instead has its bytes before the window dropped
    where they cannot be counted.
    """

    def __init__(
        self,
        file: DownloadFile,
        start: int = 0,
        budget: WasteBudget | None = None,
        answered: cabc.Callable[[str], None] | None = None,
    ) -> None:
        self._file = file
        self._budget = budget
        # Told how the member's server answered a range: "honoured" (with
        # just it), "refused" (with the whole file), "too costly" (refused,
        # and the bytes before the range are more than the budget allows).
        self._answered = answered
        self._pending = memoryview(b"")
        self._position = start
        self._window = 0
        # Where the current window started: one that gives no byte at all
        # ends the member (asking the same bytes again would never end).
        self._window_start = -1
        self._chunks: cabc.Iterator[bytes] | None = None
        if not start:
            self._chunks = file.chunks(DEFAULT_CHUNK_SIZE)

    def read(self, size: int) -> bytes:
        while not self._pending:
            chunk = None if self._chunks is None else next(self._chunks, None)
            if chunk is None and not self._next_window(size):
                return b""
            if chunk is not None:
                if self._fresh:
                    self._fresh = False
                    self._window_answered()
                self._pending = memoryview(chunk)
        data = bytes(self._pending[:size])
        self._pending = self._pending[size:]
        self._position += len(data)
        return data

    def _next_window(self, size: int) -> bool:
        # Ask for the next window of a sliceable member; False at its end
        # (or for a member read whole, whose single stream has ended).
        end = self._file.size
        if self._chunks is not None and not self._window:
            return False
        if end is None or self._position >= end:
            return False
        if self._window_start == self._position:
            return False  # the last window gave nothing: the member shrank
        self._close_chunks()
        self._window_start = self._position
        budget = self._budget
        if (
            budget is not None
            and self._file.sliceable
            and id(self._file) not in budget.honoured
            and self._position > budget.room()
        ):
            # A server that sends the whole file for a range has the bytes
            # before it read and dropped, where nothing can stop it: first
            # ask for one byte at the start, for which that costs nothing.
            for _ in self._file.chunks(DEFAULT_CHUNK_SIZE, 0, 1):
                pass
            self._note_answer()
        if not self._file.sliceable:
            # It took no range after all (a server that answered the whole
            # file): read once from its start, the bytes before dropped,
            # rather than the whole file again for every window.
            if budget is not None:
                budget.spend(self._position, self._file)  # refused: told
            self._window = 0
            self._chunks = _skipped(
                self._file.chunks(DEFAULT_CHUNK_SIZE), self._position
            )
            return True
        self._window = min(max(2 * self._window, size, 1), MAX_WINDOW)
        stop = min(self._position + self._window, end)
        self._chunks = self._file.chunks(DEFAULT_CHUNK_SIZE, self._position, stop)
        self._fresh = True
        return True

    def _window_answered(self) -> None:
        # The first bytes of a window: was it answered with just its range?
        self._note_answer()
        budget = self._budget
        if not self._file.sliceable and budget is not None:
            # The whole file: the bytes before the window were read and
            # dropped by the wrapper already.
            budget.wasted += self._window_start
            if budget.room() < 0:
                budget.overspent()

    _noted = False
    _fresh = False

    def _note_answer(self) -> None:
        honoured = self._file.sliceable
        budget = self._budget
        if budget is not None:
            if honoured:
                budget.honoured.add(id(self._file))
            elif self._answered is not None:
                budget.refused[id(self._file)] = self._answered
        if not self._noted:
            self._noted = True
            self._tell("honoured" if honoured else "refused")

    def _tell(self, answer: str) -> None:
        if self._answered is not None:
            self._answered(answer)

    def _close_chunks(self) -> None:
        chunks, self._chunks = self._chunks, None
        close = getattr(chunks, "close", None)
        if close is not None:
            close()

    def close(self) -> None:
        self._pending = memoryview(b"")
        try:
            self._close_chunks()
        finally:
            self._file.close()


def _skipped(chunks: cabc.Iterator[bytes], count: int) -> cabc.Iterator[bytes]:
    """``chunks`` without their first ``count`` bytes."""
    try:
        for data in chunks:
            if count:
                dropped = min(count, len(data))
                data, count = data[dropped:], count - dropped
            if data:
                yield data
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class ArchiveReader(SizedReader):
    """A seekable read-only view of a stored archive with a fixed layout.

    The archive is a sequence of parts (a member's local header, its data,
    its data descriptor, the central records, the end records) whose
    offsets are known: a read at any position finds its part by bisection,
    computes headers, and reads only the member bytes it covers (a member
    that cannot seek is read from its start, the bytes before the offset
    dropped as they come). The member being read stays open while reads
    continue in it, and is closed when a read moves to another one.
    """

    def __init__(self, archive: ArchiveFile, waste_limit: int | None = None) -> None:
        super().__init__(t.cast(int, archive.size))
        self._archive = archive
        self._entries = archive._entries
        self._broken = False
        # Member bytes read and not sent, bounded when a range plan was
        # checked (see WasteBudget); unbounded for other readers.
        self._budget = None if waste_limit is None else WasteBudget(waste_limit)
        # The open member: its index, handle, position, and the CRC-32 of
        # its bytes so far (None once a read skipped some).
        self._index = -1
        self._handle: t.IO[bytes] | None = None
        self._offset = 0
        self._crc: int | None = 0
        self._unchanged: cabc.Callable[[], bool] | None = None

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(DEFAULT_CHUNK_SIZE), b""))

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._read(size, sendfile=False)

    def _read(self, size: int, sendfile: bool) -> bytes:
        # Parts are joined up to ``size`` (the headers, descriptors and
        # central records of small members are a few dozen bytes each: one
        # write each would cost a system call per part). With ``sendfile``,
        # stop where the data of a member sendfile can send begins.
        position = self._position
        parts: list[bytes] = []
        wanted = size
        while wanted > 0 and not self._broken and position < self._size:
            if sendfile and parts and self._sendable_at(position) is not None:
                break
            try:
                data = self._read_part(position, wanted)
            except Truncated:
                self._broken = True
                self._close_member()
                break
            parts.append(data)
            position += len(data)
            wanted -= len(data)
            if self._budget is not None:
                self._budget.sent += len(data)
        self._position = position
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_part(self, position: int, size: int) -> bytes:
        archive = self._archive
        if position >= archive._end_offset:
            start = position - archive._end_offset
            return archive._end[start : start + size]
        if position >= archive._directory_offset:
            index = bisect.bisect_right(archive._records, position) - 1
            entry = self._entries[index]
            assert entry.size is not None
            start = position - archive._records[index]
            crc = self._crc_if_needed(index, start, size, CENTRAL_CRC)
            record = entry.central_record(
                crc, entry.size, entry.size, entry.offset, STORED
            )
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
        crc = self._crc_if_needed(index, start, size, DESCRIPTOR_CRC)
        descriptor = entry.descriptor(crc, entry.size, entry.size)
        return descriptor[start : start + size]

    def _crc_if_needed(
        self, index: int, start: int, size: int, field: tuple[int, int]
    ) -> int:
        # The CRC-32 of member ``index`` if bytes [start, start + size) of a
        # record cover its ``field``; else 0, in bytes that are not sent.
        first, stop = field
        if start < stop and start + size > first:
            return self._crc_of(index)
        return 0

    def _read_member(self, index: int, offset: int, size: int) -> bytes:
        entry = self._entries[index]
        seekable = entry.file.seekable
        sliceable = self._archive._slices(index)
        if (
            index != self._index
            or self._handle is None
            or (offset < self._offset and not seekable)
        ):
            self._open_member(index, offset)
        elif offset > self._offset + DEFAULT_CHUNK_SIZE and not seekable and sliceable:
            # Far ahead in a member that can start anywhere: asked from
            # there rather than read up to it.
            self._open_member(index, offset)
        if offset != self._offset:
            if seekable:
                t.cast(t.IO[bytes], self._handle).seek(offset)
                # Bytes skipped: no CRC-32 from this pass, unless it starts over.
                self._crc = 0 if offset == 0 else None
                self._offset = offset
            else:
                # A stream is read up to the offset and the bytes dropped
                # (one chunk in memory); its CRC-32 keeps count of them.
                if self._budget is not None and not self._archive._slices(index):
                    self._budget.spend(offset - self._offset, entry.file)
                while self._offset < offset:
                    self._take(min(DEFAULT_CHUNK_SIZE, offset - self._offset))
        return self._take(size)

    def _open_member(self, index: int, offset: int = 0) -> None:
        # A member that can only stream starts at ``offset`` if it is
        # sliceable (the bytes before it are not read), else at 0.
        self._close_member()
        file = self._entries[index].file
        start = 0
        try:
            if file.seekable:
                handle = file.open()
                self._unchanged = file.unchanged_check(handle)
            else:
                start = offset if self._archive._slices(index) else 0
                if self._budget is not None and self._archive._honours(index):
                    self._budget.honoured.add(id(file))
                handle = t.cast(
                    t.IO[bytes],
                    _Forward(
                        file,
                        start,
                        self._budget,
                        lambda answer: self._archive._range_answered(index, answer),
                    ),
                )
        except (FileNotFound, OSError) as e:
            logger.error(
                "Archive member %r could not be opened (%s); the archive"
                " was cut short.",
                file,
                e,
            )
            raise Truncated from e
        self._handle = handle
        self._index = index
        self._offset = start
        # Bytes not read: no CRC-32 from this pass.
        self._crc = 0 if start == 0 else None

    def _take(self, size: int) -> bytes:
        # Up to ``size`` bytes of the open member from ``_offset``, counted
        # in its CRC-32 when this pass has read it from its start.
        index = self._index
        entry = self._entries[index]
        try:
            data = t.cast(t.IO[bytes], self._handle).read(size)
        except Truncated:
            raise  # said why already
        except (DownloadError, OSError) as e:
            logger.error(
                "Archive member %r failed to read (%s); the archive was cut short.",
                entry.file,
                e,
            )
            raise Truncated from e
        if not data or (self._unchanged is not None and not self._unchanged()):
            logger.error(
                "Archive member %r shrank, vanished or changed while it was"
                " sent; the archive was cut short.",
                entry.file,
            )
            raise Truncated
        self._offset += len(data)
        if self._crc is not None:
            self._crc = zlib.crc32(data, self._crc)
            if self._offset == entry.size:
                if entry.crc is None:
                    self._archive._remember_crc(index, self._crc)
                elif self._crc != entry.crc:
                    # The CRC-32 the wrapper gave (a column, say) is not
                    # that of its bytes: the records would carry a wrong
                    # one, and the archive would look whole but fail to
                    # extract. Its last bytes are not sent.
                    logger.error(
                        "Archive member %r has a CRC-32 of %08x, not the"
                        " %08x its wrapper gives; the archive was cut short.",
                        entry.file,
                        self._crc,
                        entry.crc,
                    )
                    raise Truncated
        return data

    def _crc_of(self, index: int) -> int:
        entry = self._entries[index]
        crc = entry.crc if entry.crc is not None else self._archive._crcs.get(index)
        if crc is not None:
            return crc
        if index == self._index and self._handle is not None and self._crc is not None:
            # The open member was read from its start: read on to its end
            # (dropping the bytes) rather than read it all again.
            assert entry.size is not None
            if self._budget is not None:
                self._budget.spend(entry.size - self._offset, entry.file)
            while self._offset < entry.size:
                self._take(min(DEFAULT_CHUNK_SIZE, entry.size - self._offset))
            return self._archive._crcs[index]
        self._close_member()  # one member open at a time
        if self._budget is not None:
            self._budget.spend(t.cast(int, entry.size), entry.file)
        try:
            return self._archive.crc32_of(index)
        except (FileNotFound, OSError) as e:
            raise Truncated from e

    def send_whole(
        self,
        sock: socket.socket,
        chunk_size: int,
        on_sent: cabc.Callable[[int], None],
        written: cabc.Callable[[int], bool],
    ) -> cabc.Iterator[bytes]:
        """The whole archive, for a server that writes every chunk yielded
        to ``sock`` before asking for the next: the data of local members
        whose CRC-32 is known is sent with ``sendfile`` (zero-copy), the rest
        is yielded.

        :param on_sent: called with the number of bytes sent directly.
        :param written: tells whether the server has written exactly the
            given number of yielded bytes; checked before each ``sendfile``.
            Once it says no (middleware holds the body back), the rest is
            yielded too.
        """
        self.seek(0)
        yielded = 0
        direct = True
        while True:
            index = self._sendable_at(self._position) if direct else None
            if index is not None and not written(yielded):
                direct = False
                index = None
            if index is not None:
                sent = self._sendfile(sock, index)
                if sent is not None:
                    on_sent(sent)
                    self._position += sent
                    continue
            data = self._read(chunk_size, sendfile=direct)
            if not data:
                return
            yielded += len(data)
            yield data

    def _sendable_at(self, position: int) -> int | None:
        # The member whose data starts at ``position``, if sendfile can send
        # it whole: a local file whose CRC-32 is known without reading it
        # (else reading it once in Python, CRC-32 included, costs less).
        archive = self._archive
        if self._broken or position >= archive._directory_offset:
            return None
        index = bisect.bisect_right(archive._starts, position) - 1
        entry = self._entries[index]
        if (
            position != entry.offset + len(entry.header)
            or not entry.size
            or entry.file.path is None
            or (entry.crc is None and index not in archive._crcs)
        ):
            return None
        return index

    def _sendfile(self, sock: socket.socket, index: int) -> int | None:
        entry = self._entries[index]
        assert entry.size is not None
        self._close_member()
        try:
            handle = entry.file.open()
        except (FileNotFound, OSError) as e:
            logger.error(
                "Archive member %r could not be opened (%s); the archive"
                " was cut short.",
                entry.file,
                e,
            )
            self._broken = True
            return 0
        with handle:
            try:
                handle.fileno()
            except (AttributeError, OSError, ValueError):
                return None  # not a descriptor after all: Python reads it
            if not _reads_its_file(handle):
                # A subclass's open() that transforms the file's bytes
                # (decompressing, decrypting) may still give its descriptor:
                # the member's bytes are what the stream reads.
                return None
            unchanged = entry.file.unchanged_check(handle)
            try:
                sent = sock.sendfile(handle, 0, entry.size)
            except ValueError:
                return None  # a non-blocking socket: nothing was sent
            if sent != entry.size or (unchanged is not None and not unchanged()):
                logger.error(
                    "Archive member %r shrank, vanished or changed while it"
                    " was sent; the archive was cut short.",
                    entry.file,
                )
                self._broken = True
        return sent

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
