"""What this process remembers about archive members: CRC-32s and range answers."""

from __future__ import annotations

import collections
import threading
import time

from ..files import DownloadFile
from ..files import PathFile
from ..http import HTTPFile
from ..storage import _store_etag
from ..storage import StorageFile


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
class _RangeAnswers(_CrcCache):
    """:data:`_RANGE_ANSWERS`: a whole file given for a range (0) is
    forgotten after :data:`REFUSAL_MEMORY` seconds, so that one such answer
    (a CDN's cache miss, say) does not keep the member's ranges costly for
    as long as the process runs; the next range asks the server again."""

    def __init__(self, size: int, memory: float) -> None:
        super().__init__(size)
        self.memory = memory
        self._refused_at: dict[tuple[str, ...], float] = {}

    def get(self, key: tuple[str, ...]) -> int | None:
        answer = super().get(key)
        if answer == 0:
            since = self._refused_at.get(key)
            if since is None or _clock() - since >= self.memory:
                return None
        return answer

    def put(self, key: tuple[str, ...], crc: int) -> None:
        with self._lock:
            if crc == 0:
                self._refused_at[key] = _clock()
            else:
                self._refused_at.pop(key, None)
            # Bounded with the answers (entries of dropped keys go too).
            while len(self._refused_at) > self.size:
                self._refused_at.pop(next(iter(self._refused_at)))
        super().put(key, crc)

    def clear(self) -> None:
        with self._lock:
            self._refused_at.clear()
        super().clear()


_clock = time.monotonic

#: Seconds a member's server that answered a range with the whole file is
#: read from its start before it is asked for ranges again.
REFUSAL_MEMORY = 600.0
_RANGE_ANSWERS = _RangeAnswers(4096, REFUSAL_MEMORY)


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
