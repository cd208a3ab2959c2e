"""Review 5 (c) of streaming ZIP archives: the read budget held while the
body is sent and what it remembers of members whose server ignores ranges,
duplicate names as Windows unzippers see them, and the Zip64 layout after an
entry of 0xFFFFFFFF bytes read both ways.
"""

from __future__ import annotations

import collections.abc as cabc
import threading
import zipfile

import pytest
from conftest import serving
from test_archive_remote_ranges import CountingUpstream
from test_archive_remote_ranges import data_offset
from test_archive_remote_ranges import Handler
from test_archive_remote_ranges import Upstream
from test_audit5_archive import archive_bytes
from test_audit5_archive import forget_range_answers
from test_audit5_archive import gets
from test_audit5_archive import remote_app
from test_audit5_archive import zero_archive

from flask_download import ArchiveFile
from flask_download import VirtualFile
from flask_download.archive._format import LIMIT32
from flask_download.http import _pool

pytest.importorskip("urllib3", reason="HTTPFile needs 'urllib3'")

MiB = 1 << 20


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


def ranges_header(spans: list[tuple[int, int]]) -> str:
    return "bytes=" + ",".join(f"{start}-{start + count - 1}" for start, count in spans)


def test_members_whose_refusals_together_cut_a_range_all_count_as_unseekable(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two members advertise ranges and send the whole file: the first
    refusal fits the budget, the second does not, and the body is cut
    short. Both members dropped bytes the plan had not counted: both are
    remembered, so the same request is next answered whole (200, right
    bytes) instead of a 206 cut short again at every request (only the
    member that went over was remembered: the other one still counted as
    free, and its refusal used the budget up each time)."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {f"/p{i}": (2 * MiB, f"p{i}") for i in range(2)}
    archive = archive_bytes(upstream)
    spans = [(data_offset(archive, i) + 700_000, 100) for i in range(2)]
    upstream.ranges = "ignore"
    headers = {"Range": ranges_header(spans)}
    client = remote_app(upstream).test_client()
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        assert len(rv.data) < int(rv.headers["Content-Length"])
    upstream.log = []
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == archive


def test_a_member_that_refused_two_ranges_of_one_request_is_remembered(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ranges in one member whose server sends the whole file: the
    first is read within the budget, the second would read on past it,
    and the body is cut short there. The member is remembered as one that
    cannot seek, so the next request gets the whole archive (200)."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1 * MiB)
    upstream.files = {"/m": (3 * MiB, "m1")}
    archive = archive_bytes(upstream)
    base = data_offset(archive, 0)
    spans = [(base + 500_000, 100), (base + 2_500_000, 100)]
    upstream.ranges = "ignore"
    headers = {"Range": ranges_header(spans)}
    client = remote_app(upstream).test_client()
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        body = rv.data
        assert len(body) < int(rv.headers["Content-Length"])
    first = spans[0][0]
    assert archive[first : first + 100] in body
    upstream.log = []
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.data == archive
    # Read once, from its start: no range asked of the server again.
    assert [asked for asked, _ in gets(upstream, "/m")] == [None]


@pytest.mark.parametrize(
    ("first", "second", "numbered"),
    [
        ("a_b.txt", "a?b.txt", "a?b (2).txt"),
        ("a?b.txt", "a*b.txt", "a*b (2).txt"),
        ("x<y>.txt", 'X|Y".TXT', 'X|Y" (2).TXT'),
        ("dir?/a.txt", "dir_/a.txt", "dir_/a (2).txt"),
    ],
)
def test_names_windows_unzippers_extract_alike_are_numbered(
    first: str, second: str, numbered: str
) -> None:
    """``< > " | ? *`` are kept in names (see safe_member_name) and Windows
    unzippers (7-Zip, Python's zipfile) extract them as ``_``: two names
    equal but for them would overwrite each other there, so the second is
    numbered, as for names equal but for case."""
    archive = ArchiveFile([(first, VirtualFile(b"1")), (second, VirtualFile(b"2"))])
    try:
        stored = [entry.name.decode() for entry in archive._entries]
    finally:
        archive.close()
    assert stored == [first, numbered]
    sanitize = zipfile.ZipFile._sanitize_windows_name  # type: ignore[attr-defined]
    extracted = [sanitize(name, "/").upper() for name in stored]
    assert extracted[0] != extracted[1]


def test_streamed_and_seekable_archives_agree_after_an_entry_of_4_gib_minus_1() -> None:
    """The records after an entry of exactly 0xFFFFFFFF bytes carry both
    sizes (for Info-ZIP): the archive streamed from start to end (as a
    deflated or unsized one is) lays them out byte for byte as the seekable
    reader that answers ranges does, and ends at the same size."""
    sizes = [LIMIT32, 10]
    readable = zero_archive(sizes)
    streamed = zero_archive(sizes)
    try:
        holes = []
        for entry in readable._entries:
            assert entry.size is not None
            if entry.size > MiB:
                start = entry.offset + len(entry.header)
                holes.append((start, start + entry.size))
        parts: dict[int, bytes] = {}
        position = 0
        for chunk in streamed._stream(64 * MiB):
            end = position + len(chunk)
            if not any(a <= position and end <= b for a, b in holes):
                parts[position] = chunk
            position = end
        assert position == readable.size
        assert [e.full_sizes for e in readable._entries] == [False, True, True]
        with readable.open() as reader:
            for start, chunk in parts.items():
                reader.seek(start)
                assert reader.read(len(chunk)) == chunk, start
    finally:
        readable.close()
        streamed.close()
