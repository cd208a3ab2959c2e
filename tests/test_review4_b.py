"""Review 4 (b): remote files, archive windows and SSRF after this round's fixes.

Found by a review of the changes to ``http.py`` (status whitelist, IDN
hosts, ``HTTPFile.chunks(start, stop)``) and ``archive/_reader.py``
(windowed reads of sliceable members): an upstream that answers a range
with no bytes made the archive ask again for ever; a 206 whose
``Content-Length`` is not its ``Content-Range`` was relayed (or read as
the range); a whole read after a slice gave nothing; a server that
answers every range with the whole file was read from its start for
every window; a host ending in an ideographic full stop missed
``allowed_hosts``.
"""

from __future__ import annotations

import collections.abc as cabc
import http.server
import io
import re
import typing as t
import zipfile

import pytest
from conftest import running_werkzeug
from conftest import serving
from flask import Flask

from flask_download import ArchiveFile
from flask_download import DisallowedURL
from flask_download import DownloadFile
from flask_download import HTTPDownloadView
from flask_download import HTTPFile
from flask_download import UpstreamError
from flask_download import ZipDownloadView
from flask_download.http import _pool
from flask_download.http import _vet

urllib3 = pytest.importorskip("urllib3", reason="HTTPFile needs 'urllib3'")

SIZE = 300_000
DATA = bytes((i * 7 + i // 256) % 256 for i in range(SIZE))
ETAG = '"r4b"'


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    #: How a ``Range`` is answered: "honour", "ignore" (200, whole file),
    #: "empty" (206, chunked, no byte), "short" (206, chunked, half the
    #: bytes), "length" (206 whose Content-Length is half the range).
    ranges = "honour"
    #: The status of a plain GET (200, 203...).
    status = 200
    #: (Range, If-None-Match, body bytes written) of every GET.
    log: list[list[t.Any]]
    #: Most requests answered; past it, 503 (a test that loops ends).
    limit = 40

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # answers dropped unread: expected


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        server = self.server
        asked = self.headers.get("Range")
        entry = [asked, self.headers.get("If-None-Match"), 0]
        server.log.append(entry)
        if len(server.log) > server.limit:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == ETAG:
            self.send_response(304)
            self.send_header("ETag", ETAG)
            self.end_headers()
            return
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", asked or "")
        chunked = False
        if match and server.ranges != "ignore":
            start, stop = int(match[1]), min(int(match[2]) + 1, SIZE)
            body = DATA[start:stop]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{SIZE}")
            if server.ranges == "empty":
                body, chunked = b"", True
            elif server.ranges == "short":
                body, chunked = body[: len(body) // 2], True
            elif server.ranges == "length":
                body = body[: len(body) // 2]
        else:
            body = DATA
            self.send_response(server.status)
        self.send_header("ETag", ETAG)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        try:
            if chunked:
                if body:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)
            entry[2] = len(body)
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
    server.status = 200
    server.log = []
    yield server
    _pool().clear()


def url_of(server: Upstream) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/file.bin"


def remote(server: Upstream) -> HTTPFile:
    return HTTPFile(url_of(server), allowed_hosts=["127.0.0.1"])


def archive_bytes(server: Upstream) -> bytes:
    archive = ArchiveFile([remote(server)])
    try:
        data = b"".join(archive.chunks())
    finally:
        archive.close()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("file.bin") == DATA
    return data


def data_start(archive: bytes) -> int:
    """Where the one member's data starts in ``archive``."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        offset = zf.infolist()[0].header_offset
    name_length = int.from_bytes(archive[offset + 26 : offset + 28], "little")
    extra_length = int.from_bytes(archive[offset + 28 : offset + 30], "little")
    return offset + 30 + name_length + extra_length


def read_span(server: Upstream, start: int, length: int, piece: int = 0) -> bytes:
    """``length`` bytes at ``start`` of an archive of the remote file, read
    as a range request reads them (in reads of ``piece`` bytes)."""
    archive = ArchiveFile([remote(server)])
    try:
        with archive.open() as handle:
            handle.seek(start)
            if not piece:
                return handle.read(length)
            parts = []
            while length > 0:
                data = handle.read(min(piece, length))
                if not data:
                    break
                parts.append(data)
                length -= len(data)
            return b"".join(parts)
    finally:
        archive.close()


def range_gets(server: Upstream) -> list[str]:
    return [entry[0] for entry in server.log if entry[0] is not None]


# -- windows of a sliceable member ------------------------------------------------


def test_a_range_answered_with_no_bytes_is_asked_once(upstream: Upstream) -> None:
    # A 206 with the asked Content-Range and an empty (chunked) body: the
    # archive asked again with ever larger windows, for ever (here until
    # the upstream's limit of 40 requests).
    archive = archive_bytes(upstream)
    upstream.log = []
    start = data_start(archive) + SIZE - 200
    upstream.ranges = "empty"
    assert read_span(upstream, start, 100) == b""
    assert len(range_gets(upstream)) == 1


def test_a_range_answered_short_is_an_upstream_error(upstream: Upstream) -> None:
    # Half the range, in a chunked body: chunks(start, stop) gave fewer
    # bytes than asked without a word.
    file = remote(upstream)
    upstream.ranges = "short"
    try:
        with pytest.raises(UpstreamError):
            b"".join(file.chunks(1 << 16, 1000, 3000))
    finally:
        file.close()


def test_a_sliceable_member_that_yields_nothing_ends_the_read() -> None:
    # A wrapper of one's own that says it slices but gives no byte.
    calls: list[tuple[int, int | None]] = []

    class Empty(DownloadFile):
        name = "empty.bin"
        size = 1000
        etag = "e"
        sliceable = True

        def chunks(
            self, chunk_size: int = 65536, start: int = 0, stop: int | None = None
        ) -> cabc.Iterator[bytes]:
            calls.append((start, stop))
            if len(calls) > 40:
                raise AssertionError("asked again and again")
            return iter(())

    archive = ArchiveFile([Empty()])
    with archive.open() as handle:
        handle.seek(200)
        assert handle.read(10) == b""
    assert len(calls) == 1


def test_whole_read_after_a_slice_is_the_whole_file(upstream: Upstream) -> None:
    file = remote(upstream)
    try:
        assert b"".join(file.chunks(1 << 16, 1000, 1100)) == DATA[1000:1100]
        # Was b"": the range's answer, read out, taken for the whole file.
        assert b"".join(file.chunks(1 << 16)) == DATA
    finally:
        file.close()


def test_a_slice_left_half_read_does_not_pass_for_the_whole_file(
    upstream: Upstream,
) -> None:
    file = remote(upstream)
    try:
        chunks = file.chunks(1000, 5000, 9000)
        assert next(chunks) == DATA[5000:6000]
        chunks.close()
        assert b"".join(file.chunks(1 << 16)) == DATA
    finally:
        file.close()


def test_slices_reuse_the_connection(upstream: Upstream) -> None:
    file = remote(upstream)
    try:
        for start in (10, 5000, 200_000):
            assert (
                b"".join(file.chunks(1 << 16, start, start + 50))
                == DATA[start : start + 50]
            )
    finally:
        file.close()
    pool = _pool().connection_from_host("127.0.0.1", upstream.server_address[1])
    # One connection for the four requests (the first one's included).
    assert pool.num_connections == 1


def test_a_server_that_answers_ranges_with_the_whole_file_is_read_once(
    upstream: Upstream,
) -> None:
    # Every window was asked again and answered from the file's start: a
    # long read deep in a member read the bytes before it once per window.
    archive = archive_bytes(upstream)
    upstream.log = []
    upstream.ranges = "ignore"
    start = data_start(archive) + SIZE - 120_000
    length = 100_000
    data = read_span(upstream, start, length, piece=8192)
    assert data == archive[start : start + length]
    # One range asked; once answered with the whole file, the member is
    # read on from one more whole answer.
    assert len(range_gets(upstream)) == 1, upstream.log
    assert len(upstream.log) == 3  # headers, the range, the whole file


def test_a_server_that_ignores_ranges_on_a_real_server(upstream: Upstream) -> None:
    app = Flask(__name__)

    class Remote(ZipDownloadView):
        def get_members(self) -> list[HTTPFile]:
            return [remote(upstream)]

    app.add_url_rule("/zip", view_func=Remote.as_view("zip"))
    archive = archive_bytes(upstream)
    start = data_start(archive) + SIZE - 120_000
    upstream.log = []
    upstream.ranges = "ignore"
    pool = urllib3.PoolManager(retries=False, timeout=30)
    with running_werkzeug(app) as base:
        rv = pool.request("GET", base + "/zip", headers={"Range": f"bytes={start}-"})
    assert rv.status == 206
    assert rv.data == archive[start:]
    assert sum(entry[2] for entry in upstream.log) <= 3 * SIZE, upstream.log


# -- relaying upstream answers -----------------------------------------------------


def view_app(server: Upstream) -> Flask:
    app = Flask(__name__)
    app.add_url_rule(
        "/remote",
        view_func=HTTPDownloadView.as_view(
            "remote", url=url_of(server), allowed_hosts=["127.0.0.1"]
        ),
    )
    return app


def test_a_206_whose_length_is_not_its_range_is_a_502(upstream: Upstream) -> None:
    # Content-Range "bytes 0-999/N" with Content-Length 500 was relayed as
    # it came: a 206 that says 1,000 bytes and frames 500.
    upstream.ranges = "length"
    pool = urllib3.PoolManager(retries=False, timeout=30)
    with running_werkzeug(view_app(upstream)) as base:
        rv = pool.request("GET", base + "/remote", headers={"Range": "bytes=0-999"})
    assert rv.status == 502


def test_a_206_whose_length_is_not_its_range_ends_an_archive_member(
    upstream: Upstream,
) -> None:
    archive = archive_bytes(upstream)
    upstream.log = []
    upstream.ranges = "length"
    start = data_start(archive) + SIZE - 200
    assert read_span(upstream, start, 100) == b""
    assert len(range_gets(upstream)) == 1


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_legitimate_answers_are_still_relayed_on_a_real_server(
    upstream: Upstream, method: str
) -> None:
    pool = urllib3.PoolManager(retries=False, timeout=30)
    with running_werkzeug(view_app(upstream)) as base:
        url = base + "/remote"
        ranged = pool.request(method, url, headers={"Range": "bytes=10-19"})
        fresh = pool.request(method, url, headers={"If-None-Match": ETAG})
        upstream.status = 203
        other = pool.request(method, url)
    if method == "GET":
        assert ranged.status == 206
        assert ranged.headers["Content-Range"] == f"bytes 10-19/{SIZE}"
        assert ranged.data == DATA[10:20]
    else:  # RFC 9110 §14.2: no range on HEAD
        assert ranged.status == 200
        assert ranged.headers["Content-Length"] == str(SIZE)
    assert fresh.status == 304
    assert fresh.headers["ETag"] == ETAG
    assert other.status == 203
    assert other.headers["Content-Length"] == str(SIZE)
    assert other.data == (DATA if method == "GET" else b"")


# -- SSRF: internationalised host names ---------------------------------------------


@pytest.mark.parametrize("dot", ["\u3002", "\uff0e", "\uff61"])
def test_a_host_ending_in_a_wide_full_stop_matches_allowed_hosts(
    upstream: Upstream, dot: str
) -> None:
    # "localhost。" is "localhost." (IDNA reads these as dots), which is
    # "localhost" as a plain trailing dot already was.
    port = upstream.server_address[1]
    target = _vet(f"http://localhost{dot}:{port}/file.bin", ["localhost"])
    assert target.host == "localhost"
    assert target.host_header == f"localhost:{port}"
    target = _vet(f"http://localhost:{port}/file.bin", [f"localhost{dot}"])
    assert target.host == "localhost"


@pytest.mark.parametrize(
    "host",
    [
        "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # full-width
        "\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11",  # 127.0.0.1
        "LOCALHOST\u3002",
        "local\u00adhost",  # a soft hyphen, mapped to nothing
    ],
)
def test_idn_spellings_of_a_private_host_are_still_refused(host: str) -> None:
    with pytest.raises(DisallowedURL):
        _vet(f"http://{host}/", None)
    with pytest.raises(DisallowedURL):
        _vet(f"http://{host}/", ["example.com", ".example.org"])
