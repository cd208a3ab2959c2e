"""Audit of DESIGN §8 (streaming ZIP archives): names, times, ETags, bodies
cut short without a Content-Length, every byte range, independent readers.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import http.client
import io
import os
import pathlib
import shutil
import subprocess
import time
import typing as t
import urllib.parse
import zipfile
import zlib

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask

from flask_download import ArchiveFile
from flask_download import download_finished
from flask_download import DownloadFile
from flask_download import PathFile
from flask_download import VirtualFile
from flask_download import ZipDownloadView
from flask_download.archive import _CRC_CACHE

UTC = datetime.timezone.utc
WHEN = datetime.datetime(2021, 6, 7, 8, 9, 10, tzinfo=UTC)


def _zip_app(members: cabc.Callable[[], cabc.Iterable[t.Any]], **attrs: t.Any) -> Flask:
    class View(ZipDownloadView):
        def get_members(self) -> cabc.Iterable[t.Any]:
            return members()

    app = Flask(__name__)
    app.add_url_rule("/z", view_func=View.as_view("z", **attrs))
    return app


def _names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return archive.namelist()


# -- names ---------------------------------------------------------------------


def test_undecodable_file_names_are_served(tmp_path: pathlib.Path) -> None:
    """A file whose name is not UTF-8 on disk (its str holds lone
    surrogates, os.fsdecode's surrogateescape) is a member like any other,
    its undecodable bytes shown as U+FFFD: never a 500."""
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
    with open(raw, "wb") as handle:
        handle.write(b"latin-1 named")
    path = os.fsdecode(raw)
    app = _zip_app(
        lambda: [
            PathFile(path),
            ("d\udcc3\udca9j\u00e0.txt", VirtualFile(b"escaped UTF-8")),
            ("x\udcffy/z.txt", VirtualFile(b"in a folder")),
        ]
    )
    response = app.test_client().get("/z")
    assert response.status_code == 200
    assert _names(response.data) == ["caf\ufffd.txt", "déjà.txt", "x\ufffdy/z.txt"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.read("caf\ufffd.txt") == b"latin-1 named"
        assert all(info.flag_bits & 0x800 for info in archive.infolist())


def test_members_of_a_folder_numbered_once_stay_together() -> None:
    """A folder whose name a file took is numbered once: all its files go to
    the same ``name (2)`` folder, not one numbered folder each."""
    archive = ArchiveFile(
        [
            ("report", VirtualFile(b"file")),
            ("report/a.txt", VirtualFile(b"a")),
            ("report/b.txt", VirtualFile(b"b")),
            ("Report/sub/c.txt", VirtualFile(b"c")),
            ("report/a.txt", VirtualFile(b"a again")),
        ]
    )
    names = _names(b"".join(archive.chunks()))
    assert names == [
        "report",
        "report (2)/a.txt",
        "report (2)/b.txt",
        "report (2)/sub/c.txt",
        "report (2)/a (2).txt",
    ]


def test_member_names_may_be_paths(tmp_path: pathlib.Path) -> None:
    """``(path.relative_to(root), wrapper)`` names a member as a string does."""
    archive = ArchiveFile(
        [
            (pathlib.PurePosixPath("docs/a.txt"), VirtualFile(b"a")),
            (pathlib.PureWindowsPath("C:\\docs\\b.txt"), VirtualFile(b"b")),
        ]
    )
    assert _names(b"".join(archive.chunks())) == ["docs/a.txt", "docs/b.txt"]


@pytest.mark.parametrize(
    "member", ["a.txt", pathlib.Path("a.txt"), ("a.txt", b"bytes"), 42]
)
def test_a_member_that_is_not_a_wrapper_is_a_clear_type_error(member: t.Any) -> None:
    """Not a wrapper: a TypeError that says what a member is (not an
    AttributeError from deep inside), and the wrappers before it closed."""
    closed: list[str] = []

    class Tracked(VirtualFile):
        def close(self) -> None:
            closed.append("first")
            super().close()

    with pytest.raises(TypeError, match="DownloadFile"):
        ArchiveFile([Tracked(b"x", name="first.txt"), member])
    assert closed


# -- times ---------------------------------------------------------------------


class _NaiveTimed(DownloadFile):
    """A wrapper of one's own giving a naive modification time."""

    seekable = True

    def __init__(self, name: str, content: bytes, moment: datetime.datetime) -> None:
        self.name = name
        self.size = len(content)
        self.modified_time = moment
        self._content = content

    def open(self) -> t.IO[bytes]:
        return io.BytesIO(self._content)


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> cabc.Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
def test_naive_member_times_mean_utc() -> None:
    """A naive ``modified_time`` means UTC, as everywhere in the library:
    the entry times do not depend on the server's time zone, and a naive
    member next to an aware one is no 500."""
    naive = datetime.datetime(2020, 1, 2, 12, 30, 0)
    app = _zip_app(
        lambda: [
            _NaiveTimed("naive.txt", b"n", naive),
            (
                "aware.txt",
                VirtualFile(b"a", modified_time=WHEN - datetime.timedelta(days=900)),
            ),
        ]
    )
    response = app.test_client().get("/z")
    assert response.status_code == 200
    assert response.headers["Last-Modified"] == "Thu, 02 Jan 2020 12:30:00 GMT"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        info = archive.getinfo("naive.txt")
        assert info.date_time == (2020, 1, 2, 12, 30, 0)
        # The extended timestamp (UTC seconds) agrees.
        extra = info.extra
        at = extra.index(b"UT")
        seconds = int.from_bytes(extra[at + 5 : at + 9], "little", signed=True)
        assert seconds == int(naive.replace(tzinfo=UTC).timestamp())


# -- ETag --------------------------------------------------------------------------


def test_etag_changes_when_only_a_member_time_changes() -> None:
    """Entry times are archive bytes: a member whose ETag stays the same
    while its modification time changes (a content hash, a store's ETag)
    changes the archive's strong ETag, so that If-Range never splices two
    different archives."""
    moments = iter([WHEN, WHEN + datetime.timedelta(days=1)])
    app = _zip_app(
        lambda: [("same.txt", VirtualFile(b"same bytes", modified_time=next(moments)))]
    )
    client = app.test_client()
    first = client.get("/z")
    second = client.get(
        "/z", headers={"Range": "bytes=10-", "If-Range": first.headers["ETag"]}
    )
    # The bytes differ (entry times), so the old ETag no longer matches:
    # the whole new archive, not a 206 spliced onto the old one.
    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
    assert first.data != second.data


def test_etag_changes_with_the_crc_a_wrapper_gives() -> None:
    archives = [
        ArchiveFile([("f", VirtualFile(b"abc", etag="fixed", size=3))]),
        ArchiveFile([("f", _with_crc(VirtualFile(b"abc", etag="fixed", size=3), 1))]),
    ]
    bodies = [b"".join(a.chunks()) for a in archives]
    assert bodies[0] != bodies[1]
    assert archives[0].etag != archives[1].etag


def _with_crc(file: VirtualFile, crc: int) -> VirtualFile:
    file.crc32 = crc
    return file


class _Tagged(DownloadFile):
    seekable = True

    def __init__(self, etag: str) -> None:
        self.name = None
        self.size = 1
        self.etag = etag

    def open(self) -> t.IO[bytes]:
        return io.BytesIO(b"x")


def test_member_etags_cannot_pass_for_other_members() -> None:
    """The ETag digest keeps each member's fields apart: a member ETag that
    spells out another member's line is not the same archive."""
    one = ArchiveFile([("a", _Tagged("x\n" + b"b".hex() + ":1:etag:y"))])
    two = ArchiveFile([("a", _Tagged("x")), ("b", _Tagged("y"))])
    assert one.etag is not None
    assert one.etag != two.etag


# -- ranges --------------------------------------------------------------------


class _Forward(DownloadFile):
    """A member that cannot seek (read from its start each time), with or
    without a CRC-32 of its own."""

    seekable = False

    def __init__(self, name: str, data: bytes, crc: bool) -> None:
        self.name = name
        self.size = len(data)
        self.etag = f"fwd-{zlib.crc32(data):08x}"
        self.crc32 = zlib.crc32(data) if crc else None
        self._data = data

    def chunks(
        self, chunk_size: int = 65536, start: int = 0, stop: int | None = None
    ) -> cabc.Iterator[bytes]:
        for i in range(0, len(self._data), 5):
            yield self._data[i : i + 5]


def _mixed(root: pathlib.Path) -> list[t.Any]:
    return [
        PathFile(root / "p.bin"),
        PathFile(root / "empty.bin"),
        ("virtual.txt", VirtualFile(b"hello world", modified_time=WHEN)),
        _Forward("forward.bin", b"0123456789abcdefghij", crc=False),
        _Forward("forward-crc.bin", b"zyxwvutsrqponmlkjihg", crc=True),
        ("crc.txt", _with_crc(VirtualFile(b"abc"), zlib.crc32(b"abc"))),
    ]


@pytest.fixture
def mixed_root(tmp_path: pathlib.Path) -> pathlib.Path:
    (tmp_path / "p.bin").write_bytes(bytes(range(37)))
    (tmp_path / "empty.bin").write_bytes(b"")
    return tmp_path


def test_every_byte_range_equals_the_slice(mixed_root: pathlib.Path) -> None:
    """Any range of an archive of mixed members (local, empty, virtual, not
    seekable, CRC-32 given or not, none read before) is the same slice of the
    whole archive."""
    whole = b"".join(ArchiveFile(_mixed(mixed_root)).chunks())
    size = len(whole)
    # Every start, against ends near it, at record boundaries and the end.
    for start in range(size):
        for stop in {start + 1, start + 4, start + 9, start + 23, start + 70, size}:
            if stop > size:
                continue
            _CRC_CACHE.clear()
            archive = ArchiveFile(_mixed(mixed_root))
            try:
                assert b"".join(archive.chunks(7, start, stop)) == whole[start:stop], (
                    start,
                    stop,
                )
            finally:
                archive.close()


def test_multipart_and_if_range_over_http(mixed_root: pathlib.Path) -> None:
    app = _zip_app(lambda: _mixed(mixed_root))
    client = app.test_client()
    whole = client.get("/z")
    etag = whole.headers["ETag"]
    size = len(whole.data)
    part = client.get("/z", headers={"Range": "bytes=0-9,100-140,-30"})
    assert part.status_code == 206
    assert part.mimetype == "multipart/byteranges"
    for first, last in [(0, 9), (100, 140), (size - 30, size - 1)]:
        assert f"bytes {first}-{last}/{size}".encode() in part.data
        assert whole.data[first : last + 1] in part.data
    resumed = client.get("/z", headers={"Range": "bytes=50-", "If-Range": etag})
    assert resumed.status_code == 206
    assert resumed.data == whole.data[50:]


# -- bodies cut short without a Content-Length ------------------------------------


class _Breaks(DownloadFile):
    """A member of unknown size whose source fails after a few bytes."""

    seekable = False
    name = "breaks.bin"

    def chunks(
        self, chunk_size: int = 65536, start: int = 0, stop: int | None = None
    ) -> cabc.Iterator[bytes]:
        yield b"x" * 5000
        raise OSError("the disk went away")


class _BrokenCompressed(ZipDownloadView):
    compress = True

    def get_members(self) -> cabc.Iterable[t.Any]:
        return [
            ("first.txt", VirtualFile(b"a" * 100)),
            _Breaks(),
            ("z", VirtualFile(b"z")),
        ]


class _BrokenStored(_BrokenCompressed):
    compress = False


class _WholeCompressed(_BrokenCompressed):
    def get_members(self) -> cabc.Iterable[t.Any]:
        return [("first.txt", VirtualFile(b"a" * 100)), ("z", VirtualFile(b"z"))]


def make_broken_app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/compressed.zip", view_func=_BrokenCompressed.as_view("c"))
    app.add_url_rule("/stored.zip", view_func=_BrokenStored.as_view("s"))
    app.add_url_rule("/whole.zip", view_func=_WholeCompressed.as_view("w"))
    return app


@pytest.fixture(params=["werkzeug", "gunicorn"], scope="module")
def broken_url(request: pytest.FixtureRequest) -> cabc.Iterator[str]:
    if request.param == "werkzeug":
        with running_werkzeug(make_broken_app()) as url:
            yield url
    else:
        with running_gunicorn("tests.test_audit4_archive:make_broken_app()") as url:
            yield url


def _get(url: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    connection.request("GET", parts.path)
    return connection.getresponse(), connection


@pytest.mark.parametrize("path", ["/compressed.zip", "/stored.zip"])
def test_a_streamed_archive_cut_short_never_looks_complete(
    broken_url: str, path: str
) -> None:
    """No Content-Length (deflated, or a member of unknown size) and a member
    fails mid-body: the chunked body must not end with its last chunk, or
    the client takes an archive without its central directory for a whole
    download. The connection is dropped instead (curl: exit 18)."""
    response, connection = _get(broken_url + path)
    try:
        assert response.status == 200
        assert response.getheader("Content-Length") is None
        assert response.getheader("Transfer-Encoding") == "chunked"
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        connection.close()


def test_a_whole_streamed_archive_still_ends_cleanly(broken_url: str) -> None:
    response, connection = _get(broken_url + "/whole.zip")
    try:
        assert response.status == 200
        assert _names(response.read()) == ["first.txt", "z"]
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/compressed.zip", "/stored.zip"])
def test_a_streamed_archive_cut_short_is_not_reported_complete(path: str) -> None:
    """``download_finished`` says ``completed=False`` for it (a broken
    member is no finished download), once."""
    finished: list[tuple[int, bool]] = []

    def record(sender: t.Any, **extra: t.Any) -> None:
        finished.append((extra["bytes_sent"], extra["completed"]))

    client = make_broken_app().test_client()
    with download_finished.connected_to(record):
        response = client.get(path, buffered=False)
        with pytest.raises(Exception, match="cut short"):
            list(response.response)
        response.close()
    assert len(finished) == 1
    assert finished[0][1] is False


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_reports_a_cut_short_compressed_archive(
    broken_url: str, tmp_path: pathlib.Path
) -> None:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            os.fspath(tmp_path / "a.zip"),
            broken_url + "/compressed.zip",
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 18, result.stderr  # partial file


# -- independent readers ---------------------------------------------------------------


def _edge_members(root: pathlib.Path) -> list[t.Any]:
    raw = os.path.join(os.fsencode(root), b"na\xefve.txt")
    with open(raw, "wb") as handle:
        handle.write(b"non-UTF-8 name on disk")
    moments = [
        datetime.datetime(1970, 1, 1, tzinfo=UTC),
        datetime.datetime(1979, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
        datetime.datetime(2107, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime.datetime(2150, 1, 1, tzinfo=UTC),
    ]
    members: list[t.Any] = [
        (f"times/{i}.txt", VirtualFile(b"t" * i, modified_time=m))
        for i, m in enumerate(moments)
    ]
    members += [
        PathFile(os.fsdecode(raw)),
        ("empty", VirtualFile(b"")),
        ("folder", VirtualFile(b"a file named like a folder")),
        ("folder/inside.txt", VirtualFile(b"1")),
        ("FOLDER/also.txt", VirtualFile(b"2")),
        ("../../evil.txt", VirtualFile(b"3")),
        ("C:\\Windows\\evil.txt", VirtualFile(b"4")),
        ("ünï/cödé.txt", VirtualFile("ünïcödé")),
    ]
    return members


@pytest.fixture
def edge_zip(tmp_path: pathlib.Path) -> pathlib.Path:
    app = _zip_app(lambda: _edge_members(tmp_path))
    with running_werkzeug(app) as base:
        response, connection = _get(base + "/z")
        try:
            assert response.status == 200
            body = response.read()
            assert len(body) == int(response.getheader("Content-Length") or -1)
        finally:
            connection.close()
    target = tmp_path / "edge.zip"
    target.write_bytes(body)
    return target


def test_python_reads_the_edge_archive(edge_zip: pathlib.Path) -> None:
    names = _names(edge_zip.read_bytes())
    assert "na\ufffdve.txt" in names
    assert "folder (2)/inside.txt" in names and "folder (2)/also.txt" in names
    assert "evil.txt" in names and "Windows/evil.txt" in names


@pytest.mark.parametrize(
    "command",
    [["unzip", "-tq"], ["7z", "t"], ["bsdtar", "-tf"]],
    ids=["unzip", "7z", "bsdtar"],
)
def test_independent_readers_accept_the_edge_archive(
    edge_zip: pathlib.Path, command: list[str]
) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"needs {command[0]}")
    result = subprocess.run(
        [*command, os.fspath(edge_zip)], capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
