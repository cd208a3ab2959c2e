"""Audit 5 of streaming ZIP archives (DESIGN.md §8).

Remote members whose server advertises byte ranges but answers one with the
whole file, and what the archive promises about sizes, Zip64, names and
ranges, checked with Python's ``zipfile`` and, where installed, ``unzip``,
``bsdtar`` and ``7z``.
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import logging
import os
import pathlib
import shutil
import subprocess
import threading
import time
import typing as t
import unicodedata
import zipfile

import pytest
from conftest import running_werkzeug
from conftest import serving
from flask import Flask
from test_archive_remote_ranges import CountingUpstream
from test_archive_remote_ranges import data_offset
from test_archive_remote_ranges import Handler
from test_archive_remote_ranges import synthetic
from test_archive_remote_ranges import Upstream

from flask_download import archive as archive_module
from flask_download import ArchiveFile
from flask_download import DownloadFile
from flask_download import HTTPFile
from flask_download import VirtualFile
from flask_download import ZipDownloadView
from flask_download.archive._format import LIMIT32
from flask_download.http import _pool

pytest.importorskip("urllib3", reason="HTTPFile needs 'urllib3'")

MiB = 1 << 20


def forget_range_answers() -> None:
    # How members' servers answered ranges is remembered for the process.
    answers = getattr(archive_module, "_RANGE_ANSWERS", None)
    if answers is not None:
        answers.clear()


@pytest.fixture(scope="module")
def server() -> cabc.Iterator[Upstream]:
    with serving(CountingUpstream(("127.0.0.1", 0), Handler)) as upstream:
        yield upstream
    _pool().clear()


@pytest.fixture
def upstream(server: Upstream) -> cabc.Iterator[Upstream]:
    server.files = {}
    server.ranges = "honour"
    server.log = []
    server.idle = threading.Event()
    server.idle.set()
    forget_range_answers()
    yield server
    forget_range_answers()
    _pool().clear()


def remote_members(server: Upstream) -> list[HTTPFile]:
    port = server.server_address[1]
    return [
        HTTPFile(f"http://127.0.0.1:{port}{path}", allowed_hosts=["127.0.0.1"])
        for path in sorted(server.files)
    ]


def remote_app(server: Upstream) -> Flask:
    app = Flask(__name__)

    class Zip(ZipDownloadView):
        def get_members(self) -> list[HTTPFile]:
            return remote_members(server)

    app.add_url_rule("/zip", view_func=Zip.as_view("zip"))
    return app


def archive_bytes(server: Upstream) -> bytes:
    """The whole archive, made while the server takes ranges (no range is
    asked for the whole)."""
    with remote_app(server).test_client().get("/zip") as rv:
        assert rv.status_code == 200
        return rv.data


def gets(server: Upstream, path: str) -> list[tuple[str | None, int]]:
    """``(Range, body bytes written)`` of every re-asked GET of ``path``
    (the first GET of each member, its headers only, is left out)."""
    assert server.idle.wait(10)
    return [(e[1], e[3]) for e in server.log if e[0] == path and e[2] is not None]


# -- 1. a sliceable member whose server answers a range with the whole file --


def test_a_range_past_the_budget_in_a_member_that_ignores_ranges_is_cut_short(
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A member advertises ``Accept-Ranges`` (so the range plan counts it as
    free) but answers a range with the whole file: the archive would read
    12 MiB and drop them to send 1,000 bytes. It asks one byte at the
    member's start first, sees the whole file come, and cuts the body short
    (never a wrong byte) instead of reading beyond its budget."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {"/big": (16 * MiB, "b1")}
    archive = archive_bytes(upstream)
    start = data_offset(archive, 0) + 12 * MiB
    upstream.ranges = "ignore"
    upstream.log = []
    headers = {"Range": f"bytes={start}-{start + 999}"}
    with (
        caplog.at_level(logging.WARNING, logger="flask_download"),
        remote_app(upstream).test_client().get("/zip", headers=headers) as rv,
    ):
        assert rv.status_code == 206
        assert rv.headers["Content-Length"] == "1000"
        body = rv.data
    assert len(body) < 1000
    assert body == archive[start : start + len(body)]
    # Only the one-byte question was asked: no request for the range
    # itself, which the server would have answered from byte 0.
    assert [asked for asked, _ in gets(upstream, "/big")] == ["bytes=0-0"]
    assert "answered one with the whole file" in caplog.text
    assert "cut short" in caplog.text


def test_a_member_that_ignored_a_range_makes_the_next_range_a_200(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once its server has shown it sends the whole file for a range, the
    member counts as one that cannot seek: the next request's plan sees
    the cost before the body starts, and sends the whole archive (200,
    right bytes) instead of a 206 it would have to cut short."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {"/big": (16 * MiB, "b1")}
    archive = archive_bytes(upstream)
    start = data_offset(archive, 0) + 12 * MiB
    upstream.ranges = "ignore"
    headers = {"Range": f"bytes={start}-{start + 999}"}
    client = remote_app(upstream).test_client()
    with client.get("/zip", headers=headers) as rv:
        assert len(rv.data) < 1000  # cut short (see above)
    zipped = ArchiveFile(remote_members(upstream))
    try:
        assert zipped.range_too_costly([(start, start + 1000)])
    finally:
        zipped.close()
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == archive


def test_a_refusal_is_forgotten_after_a_while(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One whole file for a range (a CDN's cache miss) does not keep the
    member's ranges costly for the life of the process: after
    ``REFUSAL_MEMORY`` seconds the server is asked again, and a server that
    now takes ranges gets a 206 again."""
    from flask_download.archive import _cache

    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {"/big": (16 * MiB, "b1")}
    archive = archive_bytes(upstream)
    start = data_offset(archive, 0) + 12 * MiB
    upstream.ranges = "ignore"
    headers = {"Range": f"bytes={start}-{start + 999}"}
    client = remote_app(upstream).test_client()
    with client.get("/zip", headers=headers) as rv:
        assert len(rv.data) < 1000  # cut short, and remembered
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 200  # still remembered
    upstream.ranges = "honour"
    now = time.monotonic()
    monkeypatch.setattr(_cache, "_clock", lambda: now + _cache.REFUSAL_MEMORY + 1)
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == archive[start : start + 1000]


def test_a_refusal_within_the_budget_costs_each_request_at_most_the_budget(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member shallow enough is read from its start (right bytes) and is
    not held against later requests: its server may take the next range."""
    upstream.files = {"/m": (3 * MiB, "m1")}
    archive = archive_bytes(upstream)
    start = data_offset(archive, 0) + 2 * MiB
    upstream.ranges = "ignore"
    headers = {"Range": f"bytes={start}-{start + 99}"}
    client = remote_app(upstream).test_client()
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == archive[start : start + 100]
    upstream.ranges = "honour"
    upstream.log = []
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == archive[start : start + 100]
    assert gets(upstream, "/m") == [(f"bytes={2 * MiB}-{2 * MiB + 99}", 100)]


def test_ranges_in_several_members_that_ignore_ranges_share_one_budget(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each member alone is within the budget, together they are not: the
    bytes dropped across the members of one request are bounded."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {f"/p{i}": (2 * MiB, f"p{i}") for i in range(3)}
    archive = archive_bytes(upstream)
    spans = [(data_offset(archive, i) + 700_000, 100) for i in range(3)]
    upstream.ranges = "ignore"
    upstream.log = []
    header = "bytes=" + ",".join(f"{a}-{a + n - 1}" for a, n in spans)
    with (
        remote_app(upstream).test_client().get("/zip", headers={"Range": header}) as rv
    ):
        assert rv.status_code == 206
        body = rv.data
        assert len(body) < int(rv.headers["Content-Length"])
    (first, _), (second, _) = spans[0], spans[1]
    size = len(archive)
    assert archive[first : first + 100] in body
    # The body ends where the second part's data would start.
    part = f"Content-Range: bytes {second}-{second + 99}/{size}\r\n\r\n"
    assert body.endswith(part.encode())
    # The first member was read from its start (within the budget); the
    # second was asked one byte, and the body ended there.
    assert [asked for asked, _ in gets(upstream, "/p1")] == ["bytes=0-0"]
    assert gets(upstream, "/p2") == []


def test_a_cut_short_range_is_an_error_on_the_wire(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Werkzeug's threaded server the client sees the body end before
    its Content-Length, the connection closed: an error, not a short file."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {"/big": (16 * MiB, "b1")}
    archive = archive_bytes(upstream)
    start = data_offset(archive, 0) + 12 * MiB
    upstream.ranges = "ignore"
    with running_werkzeug(remote_app(upstream)) as base:
        host = base.removeprefix("http://")
        connection = http.client.HTTPConnection(host, timeout=60)
        try:
            connection.request(
                "GET", "/zip", headers={"Range": f"bytes={start}-{start + 999}"}
            )
            response = connection.getresponse()
            assert response.status == 206
            with pytest.raises(http.client.IncompleteRead) as caught:
                response.read()
            assert (
                caught.value.partial
                == archive[start : start + 1000][: len(caught.value.partial)]
            )
        finally:
            connection.close()


def test_a_member_that_took_a_range_is_not_asked_again(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-byte question is asked once per file version: a server that
    took a range is trusted with the next ones."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {"/big": (16 * MiB, "b1")}
    archive = archive_bytes(upstream)
    client = remote_app(upstream).test_client()
    upstream.log = []
    for deep in (12 * MiB, 13 * MiB):
        start = data_offset(archive, 0) + deep
        with client.get("/zip", headers={"Range": f"bytes={start}-{start + 99}"}) as rv:
            assert rv.status_code == 206
            assert rv.data == archive[start : start + 100]
            assert rv.data == synthetic(deep, deep + 100)
    asked = [asked for asked, _ in gets(upstream, "/big")]
    first = 12 * MiB
    second = 13 * MiB
    assert asked == [
        "bytes=0-0",
        f"bytes={first}-{first + 99}",
        f"bytes={second}-{second + 99}",
    ]


def test_reading_the_archive_through_open_has_no_budget(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``zipfile`` reading :meth:`ArchiveFile.open` (central directory
    first: every CRC-32 read before any data) is not a range request: it is
    never cut short."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1000)
    upstream.files = {f"/s{i}": (100_000, f"s{i}") for i in range(3)}
    zipped = ArchiveFile(remote_members(upstream))
    try:
        with zipped.open() as handle, zipfile.ZipFile(t.cast(t.Any, handle)) as zf:
            assert zf.testzip() is None
            assert [len(zf.read(n)) for n in zf.namelist()] == [100_000] * 3
    finally:
        zipped.close()


# -- 2. Zip64 boundaries --------------------------------------------------------


def crc32_of_zeros(count: int) -> int:
    """The CRC-32 of ``count`` zero bytes without making them (zlib's
    ``crc32_combine`` idea: the register update for zero input is linear over
    GF(2), raised to the ``count``-th power by squaring)."""

    def times(matrix: list[int], vector: int) -> int:
        total, i = 0, 0
        while vector:
            if vector & 1:
                total ^= matrix[i]
            vector >>= 1
            i += 1
        return total

    def square(matrix: list[int]) -> list[int]:
        return [times(matrix, column) for column in matrix]

    operator = [0xEDB88320] + [1 << i for i in range(31)]
    for _ in range(3):
        operator = square(operator)
    register = 0xFFFFFFFF
    while count:
        if count & 1:
            register = times(operator, register)
        count >>= 1
        if count:
            operator = square(operator)
    return register ^ 0xFFFFFFFF


class Zeros(DownloadFile):
    """``size`` zero bytes whose CRC-32 is known: an archive of it is laid
    out, and its records read, without making its bytes."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self.crc32 = crc32_of_zeros(size)

    def chunks(
        self, chunk_size: int = 1 << 16, start: int = 0, stop: int | None = None
    ) -> cabc.Iterator[bytes]:
        stop = t.cast(int, self.size) if stop is None else stop
        while start < stop:
            count = min(chunk_size, stop - start)
            start += count
            yield bytes(count)


def sparse_copy(archive: ArchiveFile, target: pathlib.Path) -> None:
    """Write ``archive`` to ``target``, its big members' data left as holes
    (zeros): only headers, small members and records are read."""
    holes = []
    for entry in archive._entries:
        assert entry.size is not None
        if entry.size > 1 << 20:
            start = entry.offset + len(entry.header)
            holes.append((start, start + entry.size))
    size = t.cast(int, archive.size)
    with archive.open() as reader, open(target, "wb") as out:
        out.truncate(size)
        position = 0
        for start, stop in [*holes, (size, size)]:
            reader.seek(position)
            out.seek(position)
            left = start - position
            while left > 0:
                data = reader.read(min(left, 1 << 20))
                assert data
                out.write(data)
                left -= len(data)
            position = stop


def zero_archive(sizes: list[int]) -> ArchiveFile:
    members: list[DownloadFile] = [
        Zeros(size, f"z{i}.bin") for i, size in enumerate(sizes)
    ]
    members.append(VirtualFile(b"after\n", name="after.txt"))
    return ArchiveFile(members)


ZIP64_EDGES = [
    [LIMIT32 - 1],
    [LIMIT32],
    [LIMIT32 + 1],
    [LIMIT32 - 100, 60],  # the second entry's header straddles 4 GiB
]


@pytest.mark.parametrize("sizes", ZIP64_EDGES, ids=lambda s: "+".join(map(str, s)))
def test_zip64_boundaries_read_by_zipfile(
    sizes: list[int], tmp_path: pathlib.Path
) -> None:
    archive = zero_archive(sizes)
    target = tmp_path / "edge.zip"
    try:
        sparse_copy(archive, target)
    finally:
        archive.close()
    assert target.stat().st_size == archive.size
    with zipfile.ZipFile(target) as zf:
        infos = zf.infolist()
        assert [i.file_size for i in infos] == [*sizes, 6]
        assert [i.CRC for i in infos[:-1]] == [crc32_of_zeros(s) for s in sizes]
        assert zf.read("after.txt") == b"after\n"


@pytest.mark.skipif(shutil.which("unzip") is None, reason="needs Info-ZIP unzip")
@pytest.mark.parametrize("sizes", ZIP64_EDGES, ids=lambda s: "+".join(map(str, s)))
@pytest.mark.parametrize("command", [["-t"], ["-lv"]], ids=["test", "list"])
def test_info_zip_reads_the_entry_after_one_of_exactly_4_gib_minus_1(
    sizes: list[int], command: list[str], tmp_path: pathlib.Path
) -> None:
    """Info-ZIP's unzip 6.0 takes a record's first Zip64 value for its size
    whenever the previous entry's size was exactly 0xFFFFFFFF (the Zip64
    marker, left in its state): an entry after one of that size whose Zip64
    field held only its offset was read at a wrong offset ("bad zipfile
    offset"). Such records now carry both sizes too."""
    archive = zero_archive(sizes)
    target = tmp_path / "edge.zip"
    try:
        sparse_copy(archive, target)
    finally:
        archive.close()
    done = subprocess.run(
        ["unzip", *command, os.fspath(target), "after.txt"],
        capture_output=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert b"warning" not in output, output
    assert b"bad zipfile offset" not in output, output


def test_the_layout_change_for_an_entry_of_4_gib_minus_1_changes_the_etag() -> None:
    """Bytes that differ from an earlier version's for the same members
    must not keep its ETag (an If-Range would splice the two)."""
    archive = zero_archive([LIMIT32])
    try:
        assert [e.full_sizes for e in archive._entries] == [False, True]
        with archive.open() as reader:
            reader.seek(archive._records[-1])
            record = reader.read(archive._end_offset - archive._records[-1])
        # Both sizes and the offset, the sizes marked as moved.
        assert record[20:28] == b"\xff" * 8
        assert len(record) == 46 + len(b"after.txt") + 4 + 24
        etag = archive.etag
        assert etag is not None
        archive._entries[-1].full_sizes = False
        assert archive._make_etag() != etag
    finally:
        archive.close()


# -- 3. names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "numbered"),
    [
        ("i.txt", "ı.txt", "ı (2).txt"),  # dotless i: "I" upper-cased
        ("I.txt", "ı.txt", "ı (2).txt"),
        ("Straße.txt", "STRASSE.txt", "STRASSE (2).txt"),
        ("Café.txt", "CAFE\u0301.TXT", "CAFE\u0301 (2).TXT"),
        ("dir/a.txt", "DIR/A.TXT", "DIR/A (2).TXT"),
    ],
)
def test_names_that_are_one_file_once_upper_cased_are_numbered(
    first: str, second: str, numbered: str
) -> None:
    archive = ArchiveFile([(first, VirtualFile(b"1")), (second, VirtualFile(b"2"))])
    try:
        stored = [entry.name.decode() for entry in archive._entries]
    finally:
        archive.close()
    assert stored[0] == first
    assert unicodedata.normalize("NFC", stored[1]) == unicodedata.normalize(
        "NFC", numbered
    )
