"""DESIGN §8: streaming ZIP archives."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import http.client
import io
import pathlib
import subprocess
import typing as t
import zipfile

import pytest
from flask import Flask

from flask_download import ArchiveFile
from flask_download import DownloadFile
from flask_download import FileNotFound
from flask_download import PathFile
from flask_download import VirtualFile
from flask_download import ZipDownloadView

from .conftest import Live

UTC = datetime.timezone.utc
WHEN = datetime.datetime(2021, 6, 7, 8, 9, 10, tzinfo=UTC)


def _zip_view(
    app: Flask,
    members: t.Callable[[], cabc.Iterable[t.Any]],
    rule: str = "/z",
    **attrs: t.Any,
) -> t.Any:
    class View(ZipDownloadView):
        def get_members(self) -> cabc.Iterable[t.Any]:
            return members()

    app.add_url_rule(rule, view_func=View.as_view(rule.strip("/") or "z", **attrs))
    return app.test_client()


def _members(root: pathlib.Path) -> list[t.Any]:
    return [
        PathFile(root / "hello.txt"),
        ("docs/data.bin", PathFile(root / "data.bin")),
        ("virtual.txt", VirtualFile(b"virtual", modified_time=WHEN)),
        PathFile(root / "été.txt"),
    ]


def test_stored_archive_headers_and_content(
    app: Flask, download_root: pathlib.Path
) -> None:
    client = _zip_view(app, lambda: _members(download_root))
    with client.get("/z") as rv:
        assert rv.status_code == 200
        assert rv.mimetype == "application/zip"
        assert (
            rv.headers["Content-Disposition"] == 'attachment; filename="download.zip"'
        )
        assert int(rv.headers["Content-Length"]) == len(rv.data)
        assert rv.headers["ETag"].startswith('"')
        assert rv.headers["Accept-Ranges"] == "bytes"
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [
            "hello.txt",
            "docs/data.bin",
            "virtual.txt",
            "été.txt",
        ]
        assert archive.read("docs/data.bin") == bytes(range(256)) * 4
        info = archive.getinfo("été.txt")
        assert info.flag_bits & 0x800
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
        assert archive.getinfo("virtual.txt").date_time == (2021, 6, 7, 8, 9, 10)


def test_last_modified_newest_member(app: Flask) -> None:
    newer = WHEN + datetime.timedelta(days=3)
    client = _zip_view(
        app,
        lambda: [
            ("a", VirtualFile(b"a", modified_time=WHEN)),
            ("b", VirtualFile(b"b", modified_time=newer)),
        ],
    )
    with client.get("/z") as rv:
        assert rv.headers["Last-Modified"] == "Thu, 10 Jun 2021 08:09:10 GMT"


def test_etag_changes_with_members(app: Flask) -> None:
    content = {"a": b"one"}
    client = _zip_view(app, lambda: [("a", VirtualFile(content["a"]))])
    with client.get("/z") as rv:
        first = rv.headers["ETag"]
    content["a"] = b"two"
    with client.get("/z") as rv:
        second = rv.headers["ETag"]
    with client.get("/z", headers={"If-None-Match": second}) as rv:
        assert rv.status_code == 304
    assert first != second


def test_archive_ranges(app: Flask, download_root: pathlib.Path) -> None:
    client = _zip_view(app, lambda: _members(download_root))
    with client.get("/z") as rv:
        whole = rv.data
        etag = rv.headers["ETag"]
    for start, stop in [(0, 10), (100, 700), (len(whole) - 30, len(whole))]:
        header = {"Range": f"bytes={start}-{stop - 1}", "If-Range": etag}
        with client.get("/z", headers=header) as rv:
            assert rv.status_code == 206
            assert rv.data == whole[start:stop]
    with client.get("/z", headers={"Range": "bytes=0-1,50-60"}) as rv:
        assert rv.status_code == 206
        assert rv.mimetype == "multipart/byteranges"


def test_crc_from_wrapper_skips_reading(app: Flask) -> None:
    reads: list[str] = []

    class Counted(VirtualFile):
        def chunks(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            reads.append(self.name or "")
            return super().chunks(*args, **kwargs)

    import zlib

    big = b"x" * 200_000
    small = b"tail"
    first = Counted(big, name="big.bin")
    first.crc32 = zlib.crc32(big)  # type: ignore[misc]
    client = _zip_view(app, lambda: [first, Counted(small, name="small.bin")])
    with client.get("/z") as rv:
        size = int(rv.headers["Content-Length"])
        whole = rv.data
    reads.clear()
    with client.get("/z", headers={"Range": f"bytes={size - 40}-"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[size - 40 :]
    # The central directory needs small.bin's CRC (read it) but never big.bin's.
    assert "big.bin" not in reads


def test_compressed_archive(app: Flask, download_root: pathlib.Path) -> None:
    class View(ZipDownloadView):
        def get_file(self) -> DownloadFile:
            return ArchiveFile(_members(download_root), compress=True)

    app.add_url_rule("/c", view_func=View.as_view("c"))
    with app.test_client().get("/c", headers={"Range": "bytes=0-9"}) as rv:
        assert rv.status_code == 200
        assert "Content-Length" not in rv.headers
        assert rv.headers.get("Accept-Ranges") in (None, "none")
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("hello.txt") == b"Hello, world!\n"
        assert archive.getinfo("docs/data.bin").compress_type == zipfile.ZIP_DEFLATED


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x.txt", "abs/x.txt"),
        ("C:\\win\\x.txt", "win/x.txt"),
        ("a\\b.txt", "a/b.txt"),
        ("a/./b//c.txt", "a/b/c.txt"),
        ("bad\x00\r\nname.txt", "badname.txt"),
    ],
)
def test_names_made_safe(app: Flask, given: str, expected: str) -> None:
    client = _zip_view(app, lambda: [(given, VirtualFile(b"x"))])
    with client.get("/z") as rv:
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = archive.namelist()
    assert name == expected
    assert ".." not in name.split("/")
    assert not name.startswith("/")


def test_duplicate_names_numbered(app: Flask) -> None:
    client = _zip_view(
        app,
        lambda: [
            ("r.txt", VirtualFile(b"1")),
            ("r.txt", VirtualFile(b"2")),
            ("r.txt", VirtualFile(b"3")),
        ],
    )
    with client.get("/z") as rv:
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["r.txt", "r (2).txt", "r (3).txt"]
        assert archive.read("r (3).txt") == b"3"


def test_empty_archive_valid(app: Flask) -> None:
    client = _zip_view(app, list)
    with client.get("/z") as rv:
        assert rv.status_code == 200
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == []


def test_get_members_file_not_found_404(app: Flask) -> None:
    def missing() -> list[t.Any]:
        raise FileNotFound("no such folder")

    client = _zip_view(app, missing)
    with client.get("/z") as rv:
        assert rv.status_code == 404


def test_missing_member_404(app: Flask, download_root: pathlib.Path) -> None:
    client = _zip_view(app, lambda: [PathFile(download_root / "none.txt")])
    with client.get("/z") as rv:
        assert rv.status_code == 404


def test_basename_override(app: Flask) -> None:
    client = _zip_view(app, lambda: [("a", VirtualFile(b"a"))], basename="mine.zip")
    with client.get("/z") as rv:
        assert 'filename="mine.zip"' in rv.headers["Content-Disposition"]


class _Zeros(io.RawIOBase):
    """A seekable stream of ``size`` zero bytes that records reads."""

    def __init__(self, size: int, reads: list[int]) -> None:
        self._size = size
        self._pos = 0
        self._reads = reads

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: t.Any) -> int:
        count = max(0, min(len(buffer), self._size - self._pos))
        buffer[:count] = bytes(count)
        self._pos += count
        self._reads.append(count)
        return count


class _Huge(DownloadFile):
    """5 GiB of zeros that records what is read."""

    size = 5 * 1024**3
    seekable = True
    crc32 = 0x12345678
    modified_time = WHEN
    etag = "huge-v1"

    def __init__(self) -> None:
        self.name = "huge.bin"
        self.reads: list[int] = []

    def open(self) -> t.IO[bytes]:
        return io.BufferedReader(_Zeros(self.size, self.reads))


def test_zip64_and_tail_range_reads_no_member(app: Flask) -> None:
    huge = _Huge()
    client = _zip_view(app, lambda: [huge, ("small.txt", VirtualFile(b"small"))])
    with client.head("/z") as rv:
        size = int(rv.headers["Content-Length"])
    assert size > huge.size
    with client.get("/z", headers={"Range": "bytes=-400"}) as rv:
        assert rv.status_code == 206
        tail = rv.data
    assert len(tail) == 400
    # Zip64 end of central directory record and locator, then the classic end.
    assert b"PK\x06\x06" in tail
    assert b"PK\x06\x07" in tail
    assert tail.rfind(b"PK\x05\x06") > tail.rfind(b"PK\x06\x07")
    # Only the member bytes inside the range were read, not its 5 GiB.
    assert sum(huge.reads) <= 400


def test_unzip_extracts_on_real_server(
    app: Flask,
    serve: t.Callable[[t.Any], Live],
    download_root: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    _zip_view(app, lambda: _members(download_root))
    status, headers, body = serve(app).get("/z")
    assert status == 200
    assert len(body) == int(headers["Content-Length"])
    target = tmp_path / "out.zip"
    target.write_bytes(body)
    done = subprocess.run(
        ["unzip", "-t", str(target)], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_etag_changes_with_member_name(app: Flask) -> None:
    names = {"n": "a.txt"}
    client = _zip_view(app, lambda: [(names["n"], VirtualFile(b"same"))])
    with client.get("/z") as rv:
        first = rv.headers["ETag"]
    names["n"] = "b.txt"
    with client.get("/z") as rv:
        assert rv.headers["ETag"] != first


def test_entries_carry_utc_extended_timestamp(app: Flask) -> None:
    client = _zip_view(app, lambda: [("a", VirtualFile(b"a", modified_time=WHEN))])
    with client.get("/z") as rv:
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        extra = archive.getinfo("a").extra
    # Extended timestamp (0x5455): flags, then the modification time (UTC).
    position = 0
    found = None
    while position + 4 <= len(extra):
        tag = int.from_bytes(extra[position : position + 2], "little")
        size = int.from_bytes(extra[position + 2 : position + 4], "little")
        body = extra[position + 4 : position + 4 + size]
        if tag == 0x5455:
            found = int.from_bytes(body[1:5], "little")
        position += 4 + size
    assert found == int(WHEN.timestamp())


def test_members_opened_one_at_a_time(app: Flask) -> None:
    state = {"open": 0, "max": 0, "opened": 0}

    class Tracked(io.BytesIO):
        def close(self) -> None:
            if not self.closed:
                state["open"] -= 1
            super().close()

    class Member(DownloadFile):
        seekable = True

        def __init__(self, i: int) -> None:
            self.name = f"m{i}.bin"
            self.data = bytes([i]) * 1000
            self.size = len(self.data)

        def open(self) -> t.IO[bytes]:
            state["open"] += 1
            state["opened"] += 1
            state["max"] = max(state["max"], state["open"])
            return Tracked(self.data)

    client = _zip_view(app, lambda: [Member(i) for i in range(20)])
    with client.get("/z") as rv:
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("m7.bin") == bytes([7]) * 1000
    assert state["opened"] >= 20
    assert state["max"] == 1
    assert state["open"] == 0


@pytest.mark.parametrize(
    "change",
    [
        "grow",
        "shrink",
    ],
)
def test_member_changing_while_sent_keeps_framing(
    app: Flask,
    serve: t.Callable[[t.Any], Live],
    tmp_path: pathlib.Path,
    change: str,
) -> None:
    target = tmp_path / "member.bin"
    target.write_bytes(b"m" * 50_000)

    def members() -> list[t.Any]:
        file = PathFile(target)
        assert file.size == 50_000
        if change == "grow":
            with open(target, "ab") as handle:
                handle.write(b"EXTRA" * 2000)
        else:
            with open(target, "r+b") as handle:
                handle.truncate(1000)
        return [file, ("after.txt", VirtualFile(b"after"))]

    _zip_view(app, members)
    live = serve(app)
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        conn.request("GET", "/z")
        response = conn.getresponse()
        length = int(response.headers["Content-Length"])
        try:
            body = response.read()
        except http.client.IncompleteRead as exc:
            body = exc.partial
    finally:
        conn.close()
    assert len(body) <= length
    assert b"EXTRA" not in body
    if change == "grow":
        assert len(body) == length
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert archive.read("member.bin") == b"m" * 50_000


def test_members_of_every_kind(
    app: Flask,
    serve: t.Callable[[t.Any], Live],
    download_root: pathlib.Path,
    download_storage: t.Any,
) -> None:
    from flask_download import HTTPFile
    from flask_download import StorageFile

    upstream = Flask("upstream")

    @upstream.get("/r.txt")
    def remote() -> str:
        return "remote bytes"

    port = serve(upstream).port
    download_storage.pipe("/b/s.txt", b"storage bytes")

    def members() -> list[t.Any]:
        return [
            PathFile(download_root / "hello.txt"),
            StorageFile(download_storage, "/b/s.txt"),
            ("v.txt", VirtualFile("virtual bytes")),
            HTTPFile(f"http://127.0.0.1:{port}/r.txt", allowed_hosts=["127.0.0.1"]),
        ]

    client = _zip_view(app, members)
    with client.get("/z") as rv:
        assert rv.status_code == 200
        data = rv.data
        if "Content-Length" in rv.headers:
            assert int(rv.headers["Content-Length"]) == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.read("hello.txt") == b"Hello, world!\n"
        assert archive.read("s.txt") == b"storage bytes"
        assert archive.read("v.txt") == b"virtual bytes"
        assert archive.read("r.txt") == b"remote bytes"


def test_signed_max_age_default(app_factory: t.Callable[..., Flask]) -> None:
    import time
    import urllib.parse

    from flask_download import signed_url_for

    app = app_factory(SECRET_KEY="k", DOWNLOAD_SIGNED_MAX_AGE=120)
    app.add_url_rule("/z", view_func=ZipDownloadView.as_view("z", signed=True))
    with app.test_request_context():
        url = signed_url_for("z")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert time.time() + 110 <= int(query["expires"]) <= time.time() + 130


def test_zip_view_without_extension() -> None:
    plain = Flask(__name__)
    _zip_view(plain, lambda: [("a.txt", VirtualFile(b"a"))])
    with plain.test_client().get("/z") as rv:
        assert rv.status_code == 200
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("a.txt") == b"a"


def test_member_of_unknown_size(app: Flask) -> None:
    client = _zip_view(
        app,
        lambda: [
            ("known.txt", VirtualFile(b"known")),
            ("stream.txt", VirtualFile(iter([b"str", b"eam"]))),
        ],
    )
    # The size is unknown before the stream is read: no length, no ranges.
    with client.get("/z", headers={"Range": "bytes=0-9"}) as rv:
        assert rv.status_code == 200
        assert "Content-Length" not in rv.headers
        assert "Accept-Ranges" not in rv.headers
        data = rv.data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("stream.txt") == b"stream"
        assert archive.read("known.txt") == b"known"


def test_head_and_304_read_no_member(app: Flask) -> None:
    opened: list[str] = []

    class Member(DownloadFile):
        seekable = True
        modified_time = WHEN

        def __init__(self, i: int) -> None:
            self.name = f"m{i}.bin"
            self.size = 1000
            self.etag = f"v{i}"

        def open(self) -> t.IO[bytes]:
            opened.append(self.name or "")
            return io.BytesIO(b"x" * 1000)

    client = _zip_view(app, lambda: [Member(i) for i in range(3)])
    with client.head("/z") as rv:
        assert rv.status_code == 200
        etag = rv.headers["ETag"]
        assert int(rv.headers["Content-Length"]) > 3000
    with client.get("/z", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
    assert opened == []


def test_range_reads_each_needed_member_once(app: Flask) -> None:
    opened: list[str] = []

    class Member(DownloadFile):
        seekable = True

        def __init__(self, i: int) -> None:
            self.name = f"m{i}.bin"
            self.size = 20_000
            self.etag = f"v{i}"
            self.data = bytes([i]) * 20_000

        def open(self) -> t.IO[bytes]:
            opened.append(self.name or "")
            return io.BytesIO(self.data)

    client = _zip_view(app, lambda: [Member(i) for i in range(4)])
    with client.get("/z") as rv:
        whole = rv.data
    opened.clear()
    # The central directory holds every CRC: each member read once, at most.
    with client.get("/z", headers={"Range": "bytes=-100"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[-100:]
    assert sorted(opened) == sorted(set(opened))
    assert len(opened) <= 4
    opened.clear()
    # A range inside the first member's data needs no other member.
    with client.get("/z", headers={"Range": "bytes=200-300"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[200:301]
    assert set(opened) <= {"m0.bin"}
