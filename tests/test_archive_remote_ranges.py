"""Remote archive members read from where a range needs them.

An :class:`~flask_download.HTTPFile` whose server takes byte ranges
(``Accept-Ranges: bytes``, a strong ETag, a known size) is ``sliceable``:
a range deep in such a member asks the server for those bytes (with
``If-Match``), instead of downloading the member from its start and
dropping what comes before.
"""

from __future__ import annotations

import collections.abc as cabc
import http.server
import io
import logging
import re
import shutil
import subprocess
import threading
import typing as t
import zipfile

import pytest
from conftest import running_werkzeug
from conftest import serving
from flask import Flask

from flask_download import DownloadFile
from flask_download import HTTPFile
from flask_download import ZipDownloadView
from flask_download.http import _pool

pytest.importorskip("urllib3", reason="HTTPFile needs 'urllib3'")

BLOCK = bytes((i * 31 + i // 251) % 256 for i in range(4096))


def synthetic(start: int, stop: int) -> bytes:
    """Bytes ``[start, stop)`` of an endless pattern that differs at every
    offset of a block, made without the bytes before ``start``."""
    if stop <= start:
        return b""
    first = start % len(BLOCK)
    count = (stop - start + first) // len(BLOCK) + 1
    return (BLOCK * count)[first : first + stop - start]


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    #: path -> (size, ETag).
    files: dict[str, tuple[int, str]]
    #: How the server answers a Range: "honour", "ignore" (200, whole
    #: file) or "wrong" (206 with another range than asked).
    ranges = "honour"
    #: [path, Range, If-Match, body bytes written] of every GET, in order.
    log: list[list[t.Any]]
    #: Set while no request is being answered.
    idle: threading.Event

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # an answer dropped unread (headers only): expected


class CountingUpstream(Upstream):
    """Counts the connections it accepted."""

    accepted = 0

    def process_request(self, request: t.Any, client_address: t.Any) -> None:
        self.accepted += 1
        super().process_request(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.idle.clear()
        try:
            self._answer()
        finally:
            self.server.idle.set()

    def _answer(self) -> None:
        size, etag = self.server.files[self.path]
        asked = self.headers.get("Range")
        if_match = self.headers.get("If-Match")
        entry = [self.path, asked, if_match, 0]
        self.server.log.append(entry)
        start, stop, status = 0, size, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", asked or "")
        if match and self.server.ranges != "ignore":
            start, stop, status = int(match[1]), int(match[2]) + 1, 206
            if self.server.ranges == "wrong":
                start += 1
        if if_match is not None and if_match != f'"{etag}"':
            start, stop, status = 0, 0, 412
        self.send_response(status)
        if status != 412:
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        written = 0
        try:
            for offset in range(start, stop, 1 << 16):
                data = synthetic(offset, min(offset + (1 << 16), stop))
                self.wfile.write(data)
                written += len(data)
                entry[3] = written
        except OSError:
            self.close_connection = True


@pytest.fixture(scope="module")
def server() -> cabc.Iterator[Upstream]:
    with serving(CountingUpstream(("127.0.0.1", 0), Handler)) as upstream:
        yield upstream
    _pool().clear()


SIZES = [300_000, 200_000, 250_000]


@pytest.fixture
def upstream(server: Upstream) -> cabc.Iterator[Upstream]:
    server.files = {f"/f{i}": (size, f"v{i}") for i, size in enumerate(SIZES)}
    server.ranges = "honour"
    server.log = []
    server.idle = threading.Event()
    server.idle.set()
    yield server
    _pool().clear()


def members(server: Upstream) -> list[HTTPFile]:
    port = server.server_address[1]
    return [
        HTTPFile(f"http://127.0.0.1:{port}{path}", allowed_hosts=["127.0.0.1"])
        for path in sorted(server.files)
    ]


def make_app(server: Upstream) -> Flask:
    app = Flask(__name__)

    class Zip(ZipDownloadView):
        def get_members(self) -> list[HTTPFile]:
            return members(server)

    app.add_url_rule("/zip", view_func=Zip.as_view("zip"))
    return app


def whole_archive(app: Flask) -> tuple[bytes, str]:
    with app.test_client().get("/zip") as rv:
        assert rv.status_code == 200
        data, etag = rv.data, rv.headers["ETag"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert [len(archive.read(name)) for name in archive.namelist()] == SIZES
    return data, etag


def data_offset(archive: bytes, index: int) -> int:
    """Where member ``index``'s data starts in ``archive``."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = zf.infolist()[index]
    name_length, extra_length = (
        int.from_bytes(
            archive[info.header_offset + 26 : info.header_offset + 28], "little"
        ),
        int.from_bytes(
            archive[info.header_offset + 28 : info.header_offset + 30], "little"
        ),
    )
    return info.header_offset + 30 + name_length + extra_length


def bodies(server: Upstream) -> list[tuple[t.Any, ...]]:
    """The GETs that read a body (not the first one of each member, whose
    connection is let go after its headers), once answered."""
    assert server.idle.wait(5)
    return [tuple(entry) for entry in server.log if entry[2] is not None]


def test_remote_member_is_sliceable_when_its_server_takes_ranges(
    upstream: Upstream,
) -> None:
    file, *others = members(upstream)
    for other in others:
        other.close()
    try:
        assert file.sliceable
        assert not file.seekable
        assert b"".join(file.chunks(1 << 16, 1000, 1100)) == synthetic(1000, 1100)
        assert b"".join(file.chunks(1 << 16, SIZES[0] - 10)) == synthetic(
            SIZES[0] - 10, SIZES[0]
        )
    finally:
        file.close()
    assert upstream.idle.wait(5)
    ranges = [entry[1] for entry in upstream.log if entry[0] == "/f0"]
    last = f"bytes={SIZES[0] - 10}-{SIZES[0] - 1}"
    assert ranges == [None, "bytes=1000-1099", last]


def test_a_range_deep_in_a_remote_member_reads_only_that_range(
    upstream: Upstream,
) -> None:
    app = make_app(upstream)
    archive, etag = whole_archive(app)
    start = data_offset(archive, 1) + 150_000
    upstream.log = []
    headers = {"Range": f"bytes={start}-{start + 99}", "If-Range": etag}
    with app.test_client().get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == archive[start : start + 100]
    # One body asked, for exactly the 100 bytes, on the same version.
    assert bodies(upstream) == [("/f1", "bytes=150000-150099", '"v1"', 100)]


def test_every_range_of_an_archive_of_remote_members_is_the_archive_slice(
    upstream: Upstream,
) -> None:
    app = make_app(upstream)
    archive, etag = whole_archive(app)
    client = app.test_client()
    size = len(archive)
    starts = [0, 29, 1000, 70_000, 299_990, 300_050, 450_000, 520_000, size - 200]
    for start in starts:
        for length in (1, 77, 5000, 70_000):
            stop = min(start + length, size)
            headers = {"Range": f"bytes={start}-{stop - 1}", "If-Range": etag}
            with client.get("/zip", headers=headers) as rv:
                assert rv.status_code == 206, (start, length)
                assert rv.data == archive[start:stop], (start, length)


def test_several_ranges_in_remote_members(upstream: Upstream) -> None:
    app = make_app(upstream)
    archive, etag = whole_archive(app)
    spans = [(1000, 1999), (400_000, 400_499), (600_000, 600_099)]
    header = "bytes=" + ",".join(f"{a}-{b}" for a, b in spans)
    with app.test_client().get("/zip", headers={"Range": header}) as rv:
        assert rv.status_code == 206
        body = rv.data
    for a, b in spans:
        assert f"Content-Range: bytes {a}-{b}/{len(archive)}".encode() in body
        assert archive[a : b + 1] in body


def test_a_server_that_ignores_the_range_still_gives_the_right_bytes(
    upstream: Upstream,
) -> None:
    app = make_app(upstream)
    archive, etag = whole_archive(app)
    upstream.ranges = "ignore"
    start = data_offset(archive, 2) + 200_000
    headers = {"Range": f"bytes={start}-{start + 999}", "If-Range": etag}
    with app.test_client().get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == archive[start : start + 1000]


def test_a_server_that_answers_another_range_cuts_the_archive_short(
    upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(upstream)
    archive, etag = whole_archive(app)
    upstream.ranges = "wrong"
    start = data_offset(archive, 1) + 100_000
    headers = {"Range": f"bytes={start}-{start + 999}", "If-Range": etag}
    client = app.test_client()
    with (
        caplog.at_level(logging.ERROR, logger="flask_download"),
        client.get("/zip", headers=headers) as rv,
    ):
        assert rv.status_code == 206
        assert len(rv.data) < 1000
    assert "another range" in caplog.text


def test_a_remote_member_changed_before_its_range_cuts_the_archive_short(
    upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    archive, etag = whole_archive(make_app(upstream))
    start = data_offset(archive, 1) + 100_000
    headers = {"Range": f"bytes={start}-{start + 999}", "If-Range": etag}
    app = Flask(__name__)

    class Changed(ZipDownloadView):
        def get_members(self) -> list[HTTPFile]:
            files = members(upstream)
            # Changed between its headers and its range.
            upstream.files["/f1"] = (SIZES[1], "v1-new")
            return files

    app.add_url_rule("/zip", view_func=Changed.as_view("changed"))
    client = app.test_client()
    with (
        caplog.at_level(logging.ERROR, logger="flask_download"),
        client.get("/zip", headers=headers) as rv,
    ):
        assert len(rv.data) < 1000
    assert "changed since its headers were read" in caplog.text
    assert bodies(upstream)[-1][:3] == ("/f1", "bytes=100000-100999", '"v1"')


def test_a_range_deep_in_a_huge_remote_member_is_not_too_costly(
    upstream: Upstream,
) -> None:
    # 100 MiB before the range: beyond the archive's wasted-read budget if
    # the member had to be read from its start, so the range would get the
    # whole archive (200). Asked upstream, it reads 100 bytes.
    huge = 100 << 20
    upstream.files = {"/huge": (huge, "h1")}
    app = make_app(upstream)
    with app.test_client().head("/zip") as rv:
        etag = rv.headers["ETag"]
        size = int(rv.headers["Content-Length"])
    start = size - 22 - 16 - 200  # in the member's data, before its descriptor
    upstream.log = []
    headers = {"Range": f"bytes={start}-{start + 99}", "If-Range": etag}
    with app.test_client().get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        body = rv.data
    # A range deeper than the archive may drop is first checked with one
    # byte at the member's start (a server that ignores ranges costs no
    # more than that), then asked for.
    probe, ranged = bodies(upstream)
    assert probe == ("/huge", "bytes=0-0", '"h1"', 1)
    (path, asked, if_match, written) = ranged
    assert (path, if_match, written) == ("/huge", '"h1"', 100)
    first = int(asked.split("=")[1].split("-")[0])
    assert body == synthetic(first, first + 100)


def test_a_remote_member_whose_server_takes_no_ranges_is_not_sliceable(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Handler.send_header

    def no_ranges(self: Handler, keyword: str, value: str) -> None:
        if keyword != "Accept-Ranges":
            original(self, keyword, value)

    monkeypatch.setattr(Handler, "send_header", no_ranges)
    file, *others = members(upstream)
    for other in others:
        other.close()
    try:
        assert not file.sliceable
        with pytest.raises(ValueError, match="cannot slice"):
            next(file.chunks(1 << 16, 10))
    finally:
        file.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_ranges_of_remote_members_on_a_real_server(upstream: Upstream) -> None:
    """curl against Werkzeug's threaded server: a closed range and a resume
    from deep in a remote member, each the archive's own bytes."""
    app = make_app(upstream)
    archive, etag = whole_archive(app)
    start = data_offset(archive, 0) + 250_000
    with running_werkzeug(app) as base:
        for spec, part in (
            (f"{start}-{start + 99}", archive[start : start + 100]),
            (f"{start}-", archive[start:]),
        ):
            done = subprocess.run(
                [
                    "curl",
                    "-sS",
                    "-i",
                    "-r",
                    spec,
                    "-H",
                    f"If-Range: {etag}",
                    base + "/zip",
                ],
                capture_output=True,
                check=True,
                timeout=30,
            )
            head, _, body = done.stdout.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 206")
            assert body == part
    asked = [entry[1] for entry in bodies(upstream) if entry[0] == "/f0" and entry[1]]
    # The closed range asks for its 100 bytes; the resume for the rest of
    # the member, in growing windows.
    assert asked[0] == "bytes=250000-250099"
    assert asked[1].startswith("bytes=250000-")


def test_forwarding_wrappers_tell_whether_their_file_is_sliceable() -> None:
    from flask_download.files import _ForwardingFile

    class Sliceable(DownloadFile):
        sliceable = True

    class Forwarding(_ForwardingFile):
        def __init__(self, target: DownloadFile) -> None:
            self._overrides = {}
            self._wrapped = target

        def _target(self) -> DownloadFile:
            return self._wrapped

    assert Forwarding(Sliceable()).sliceable
    assert not Forwarding(DownloadFile()).sliceable


def test_a_range_read_to_its_end_gives_its_connection_back(
    upstream: Upstream,
) -> None:
    """A window read exactly to its end goes back to the pool even when the
    archive stops reading there: ranges in a row share one connection."""
    app = make_app(upstream)
    archive, etag = whole_archive(app)
    client = app.test_client()
    start = data_offset(archive, 1) + 1000
    assert isinstance(upstream, CountingUpstream)
    _pool().clear()
    before = upstream.accepted
    for offset in range(0, 5000, 1000):
        first = start + offset
        headers = {"Range": f"bytes={first}-{first + 99}", "If-Range": etag}
        with client.get("/zip", headers=headers) as rv:
            assert rv.status_code == 206
            assert rv.data == archive[first : first + 100]
    # Each request: one connection for the members' headers (let go
    # unread, so closed) and the ranged body on a kept-alive one.
    assert upstream.accepted - before <= len(SIZES) * 5 + 1
