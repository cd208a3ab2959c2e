"""Review 4 (c): a sceptical pass over the last fixes.

Covers ``HTTPFile.chunks(start, stop)`` and the archive's windowed reads of
a sliceable remote member (every range of a small archive, against an
upstream that honours ranges, one that ignores them and one that answers
short; no wrong byte, no connection kept out of the pool), the check of
the range a 206 answers, and ``VirtualFile`` sizing of a stream.

Found: a binary stream left past its end (``BytesIO`` after ``seek(10)`` on
three bytes) was announced with a negative ``Content-Length``; a 206 whose
``Content-Range`` spells the asked range with leading zeros (valid, RFC
9110 §14.4: ``1*DIGIT``) was refused as another range.
"""

from __future__ import annotations

import collections.abc as cabc
import http.server
import io
import itertools
import re
import typing as t
import zipfile

import pytest
from conftest import running_werkzeug
from conftest import serving
from flask import Flask

from flask_download import ArchiveFile
from flask_download import HTTPFile
from flask_download import send_download
from flask_download import VirtualFile
from flask_download.http import _pool

urllib3 = pytest.importorskip("urllib3", reason="HTTPFile needs 'urllib3'")

SIZE = 150_000
DATA = bytes((i * 13 + i // 251) % 256 for i in range(SIZE))
ETAG = '"r4c"'


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    #: How a ``Range`` is answered: "honour", "ignore" (200, the whole
    #: file), "short" (206, chunked, half the bytes), "zeros" (206 whose
    #: Content-Range has leading zeros).
    ranges = "honour"
    #: Connections accepted.
    accepted = 0

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # answers dropped unread: expected


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body never wait for an ACK
    server: Upstream

    def setup(self) -> None:
        super().setup()
        self.server.accepted += 1

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range") or "")
        chunked = False
        if match and server.ranges != "ignore":
            start, stop = int(match[1]), min(int(match[2]) + 1, SIZE)
            body = DATA[start:stop]
            self.send_response(206)
            if server.ranges == "zeros":
                spelled = f"bytes 00{start}-00{stop - 1}/0{SIZE}"
            else:
                spelled = f"bytes {start}-{stop - 1}/{SIZE}"
            self.send_header("Content-Range", spelled)
            if server.ranges == "short":
                body, chunked = body[: len(body) // 2], True
        else:
            body = DATA
            self.send_response(200)
        self.send_header("ETag", ETAG)
        self.send_header("Accept-Ranges", "bytes")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if chunked:
                if body:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)
        except OSError:
            self.close_connection = True


@pytest.fixture(scope="module")
def server() -> cabc.Iterator[Upstream]:
    with serving(Upstream(("127.0.0.1", 0), Handler)) as upstream:
        yield upstream
    _pool().clear()


@pytest.fixture
def upstream(server: Upstream) -> cabc.Iterator[Upstream]:
    server.ranges = "honour"
    yield server
    _pool().clear()


def make_archive(server: Upstream) -> ArchiveFile:
    url = f"http://127.0.0.1:{server.server_address[1]}/file.bin"
    return ArchiveFile(
        [
            ("a.txt", VirtualFile(b"hello " * 9)),
            ("remote.bin", HTTPFile(url, allowed_hosts=["127.0.0.1"])),
            ("c.txt", VirtualFile(b"c" * 70_000)),
        ]
    )


def whole_archive(server: Upstream) -> bytes:
    archive = make_archive(server)
    try:
        data = b"".join(archive.chunks())
    finally:
        archive.close()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("remote.bin") == DATA
    return data


def connections_checked_out() -> int:
    """Connections of the module's pool not back in it (held or leaked)."""
    manager = _pool()
    out = 0
    for key in list(manager.pools.keys()):
        pool = manager.pools.get(key)
        if pool is not None and pool.pool is not None:
            out += pool.pool.maxsize - pool.pool.qsize()
    return out


def read_range(server: Upstream, start: int, stop: int, how: str) -> bytes:
    archive = make_archive(server)
    try:
        if how == "chunks":
            return b"".join(archive.chunks(1 << 16, start, stop))
        parts = []
        with archive.open() as handle:
            handle.seek(start)
            wanted = stop - start
            while wanted > 0:
                data = handle.read(min(wanted, 10_000))
                if not data:
                    break
                parts.append(data)
                wanted -= len(data)
        return b"".join(parts)
    finally:
        archive.close()


def boundaries(archive: bytes) -> list[int]:
    """Offsets where a range's start or end is most likely to go wrong."""
    data = archive.index(DATA[:64])
    end = data + SIZE
    points = {0, 1, data - 1, data, data + 1, data + 65_535, data + 65_536}
    points |= {data + 65_537, data + 131_072, end - 1, end, end + 1, end + 16}
    points |= {(data + end) // 2, len(archive) - 1, len(archive)}
    return sorted(p for p in points if 0 <= p <= len(archive))


# -- every range of an archive with a sliceable remote member ------------------------


@pytest.mark.parametrize("ranges", ["honour", "ignore", "zeros"])
def test_every_range_of_the_archive_is_exact(upstream: Upstream, ranges: str) -> None:
    archive = whole_archive(upstream)
    upstream.ranges = ranges
    for start, stop in itertools.combinations(boundaries(archive), 2):
        for how in ("chunks", "reader"):
            got = read_range(upstream, start, stop, how)
            assert got == archive[start:stop], (ranges, how, start, stop)
            assert connections_checked_out() == 0, (ranges, how, start, stop)


def test_every_range_answered_short_is_cut_never_wrong(
    upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    archive = whole_archive(upstream)
    upstream.ranges = "short"
    cut = 0
    for start, stop in itertools.combinations(boundaries(archive), 2):
        for how in ("chunks", "reader"):
            got = read_range(upstream, start, stop, how)
            assert archive[start:stop].startswith(got), (how, start, stop)
            cut += len(got) < stop - start
            assert connections_checked_out() == 0, (how, start, stop)
    assert cut  # the ranges deep in the member cannot be whole


def test_windows_reuse_connections(upstream: Upstream) -> None:
    archive = whole_archive(upstream)
    data = archive.index(DATA[:64])
    before = upstream.accepted
    # Windows of 10 000, 20 000, 40 000 and 80 000 bytes, one connection.
    got = read_range(upstream, data + 100, data + 140_000, "reader")
    assert got == archive[data + 100 : data + 140_000]
    # The wrapper's own GET (dropped unread) and the windows' connection.
    assert upstream.accepted - before <= 2


def test_a_206_spelled_with_leading_zeros_is_the_range_asked(
    upstream: Upstream,
) -> None:
    whole_archive(upstream)
    upstream.ranges = "zeros"
    url = f"http://127.0.0.1:{upstream.server_address[1]}/file.bin"
    remote = HTTPFile(url, allowed_hosts=["127.0.0.1"])
    try:
        assert remote.sliceable
        assert b"".join(remote.chunks(1 << 16, 1000, 5000)) == DATA[1000:5000]
    finally:
        remote.close()


# -- a stream left past its end ------------------------------------------------------


def past_its_end() -> io.BytesIO:
    stream = io.BytesIO(b"abc")
    stream.seek(10)
    return stream


def test_a_stream_left_past_its_end_has_no_bytes_left() -> None:
    file = VirtualFile(past_its_end(), name="x.bin")
    assert file.size == 0
    assert b"".join(file.chunks()) == b""


def test_a_stream_left_past_its_end_is_an_empty_download_on_a_real_server() -> None:
    app = Flask(__name__)

    @app.route("/past")
    def past() -> t.Any:
        return send_download(past_its_end(), basename="x.bin")

    pool = urllib3.PoolManager(retries=False, timeout=30)
    with running_werkzeug(app) as base:
        rv = pool.request("GET", base + "/past")
        ranged = pool.request("GET", base + "/past", headers={"Range": "bytes=0-1"})
    assert rv.status == 200
    assert rv.headers["Content-Length"] == "0"
    assert rv.data == b""
    # Nothing to take a range of.
    assert ranged.status == 416
    assert ranged.headers["Content-Range"] == "bytes */0"
