"""ZIP archives over real servers, fetched and checked by real clients.

curl (whole, resumed), aria2c (four connections at once), Python's
``zipfile``, Info-ZIP ``unzip``, ``bsdtar`` (libarchive) and ``7z`` (p7zip),
against Werkzeug's threaded server and gunicorn.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import functools
import http.client
import http.server
import io
import os
import pathlib
import shutil
import socket
import subprocess
import time
import typing as t
import zipfile
import zlib

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from conftest import serving
from flask import Flask
from werkzeug.serving import make_server

from flask_download import ArchiveFile
from flask_download import download_finished
from flask_download import download_started
from flask_download import HTTPFile
from flask_download import PathFile
from flask_download import VirtualFile
from flask_download import ZipDownloadView
from flask_download.http import _pool

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")

MEMBER_SIZE = 16 * 1024 * 1024
MEMBER_NAMES = ["m0.bin", "docs/m1.bin", "données/m2 ü.bin", "m3.bin"]
# Over 4 GiB: Zip64 sizes for it and a Zip64 offset for the member after it.
SPARSE_SIZE = 2**32 + 5


def pattern(size: int, seed: int) -> bytes:
    block = bytes((i * 31 + seed + i // 251) % 256 for i in range(65536))
    return (block * (size // 65536 + 1))[:size]


def crc32_of_zeros(count: int) -> int:
    """The CRC-32 of ``count`` zero bytes, in O(log count) (zlib's
    ``crc32_combine`` method: the register update for zero input is linear
    over GF(2), so it is raised to the ``count``-th power by squaring)."""

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

    operator = [0xEDB88320] + [1 << i for i in range(31)]  # one zero bit
    for _ in range(3):
        operator = square(operator)  # eight zero bits
    register = 0xFFFFFFFF
    while count:
        if count & 1:
            register = times(operator, register)
        count >>= 1
        if count:
            operator = square(operator)
    return register ^ 0xFFFFFFFF


def test_crc32_of_zeros_matches_zlib() -> None:
    for count in (0, 1, 7, 1000, 65537):
        assert crc32_of_zeros(count) == zlib.crc32(bytes(count))


class KnownCRC(PathFile):
    """A PathFile whose CRC-32 was stored when it was written."""

    crcs: t.ClassVar[dict[str, int]] = {}

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        super().__init__(path, name)
        self.crc32 = self.crcs[self.path]


def wire_members(root: str, known_crc: bool) -> list[tuple[str, PathFile]]:
    kind = KnownCRC if known_crc else PathFile
    return [
        (name, kind(os.path.join(root, f"m{i}.bin")))
        for i, name in enumerate(MEMBER_NAMES)
    ]


def make_wire_app(root: str) -> Flask:
    """The app both servers run (gunicorn imports it by name)."""
    for i in range(len(MEMBER_NAMES)):
        path = os.path.join(root, f"m{i}.bin")
        with open(path, "rb") as handle:
            KnownCRC.crcs[path] = zlib.crc32(handle.read())
    sparse = os.path.join(root, "sparse.bin")
    KnownCRC.crcs[sparse] = crc32_of_zeros(SPARSE_SIZE)
    small = os.path.join(root, "after.txt")
    with open(small, "rb") as handle:
        KnownCRC.crcs[small] = zlib.crc32(handle.read())

    app = Flask("archive_wire")

    class Plain(ZipDownloadView):
        def get_members(self) -> t.Any:
            return wire_members(root, known_crc=False)

    class Known(ZipDownloadView):
        def get_members(self) -> t.Any:
            return wire_members(root, known_crc=True)

    class Big(ZipDownloadView):
        def get_members(self) -> t.Any:
            return [KnownCRC(sparse, "zeros.bin"), KnownCRC(small)]

    app.add_url_rule("/plain.zip", view_func=Plain.as_view("plain"))
    app.add_url_rule("/known.zip", view_func=Known.as_view("known"))
    app.add_url_rule("/big.zip", view_func=Big.as_view("big"))
    return app


@pytest.fixture(scope="module")
def wire_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("archive_wire")
    for i in range(len(MEMBER_NAMES)):
        (root / f"m{i}.bin").write_bytes(pattern(MEMBER_SIZE, i))
    with open(root / "sparse.bin", "wb") as handle:
        handle.truncate(SPARSE_SIZE)
    (root / "after.txt").write_bytes(b"after the big one\n" * 100)
    return root


@pytest.fixture(scope="module")
def expected(wire_root: pathlib.Path) -> bytes:
    """The archive, made in this process from the same files."""
    archive = ArchiveFile(wire_members(os.fspath(wire_root), known_crc=False))
    return b"".join(archive.chunks())


@pytest.fixture(scope="module")
def werkzeug_url(wire_root: pathlib.Path) -> cabc.Iterator[str]:
    with running_werkzeug(make_wire_app(os.fspath(wire_root))) as url:
        yield url


@pytest.fixture(scope="module")
def gunicorn_url(wire_root: pathlib.Path) -> cabc.Iterator[str]:
    app = f"tests.test_archive_wire:make_wire_app({os.fspath(wire_root)!r})"
    with running_gunicorn(app, "--worker-class=gthread", "--threads=4") as url:
        yield url


@pytest.fixture(params=["werkzeug", "gunicorn"], scope="module")
def server_url(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.getfixturevalue(f"{request.param}_url"))


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "120", *args], capture_output=True, check=False
    )


def headers_of(output: bytes) -> dict[str, str]:
    lines = output.decode("latin-1").split("\r\n")
    result = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        result[name.strip().lower()] = value.strip()
    return result


# -- whole archives -------------------------------------------------------------


@pytest.mark.parametrize("route", ["plain.zip", "known.zip"])
def test_curl_gets_the_exact_archive(
    server_url: str, route: str, expected: bytes, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "a.zip"
    done = curl("-D", "-", "-o", os.fspath(out), f"{server_url}/{route}")
    assert done.returncode == 0, done.stderr
    headers = headers_of(done.stdout)
    assert headers["content-type"] == "application/zip"
    assert headers["content-length"] == str(len(expected))
    assert out.read_bytes() == expected


@pytest.fixture(scope="module")
def downloaded(
    werkzeug_url: str, tmp_path_factory: pytest.TempPathFactory
) -> pathlib.Path:
    out = tmp_path_factory.mktemp("downloaded") / "archive.zip"
    done = curl("-o", os.fspath(out), f"{werkzeug_url}/plain.zip")
    assert done.returncode == 0, done.stderr
    return out


def test_python_zipfile_reads_every_member(downloaded: pathlib.Path) -> None:
    with zipfile.ZipFile(downloaded) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == MEMBER_NAMES
        for i, name in enumerate(MEMBER_NAMES):
            assert archive.read(name) == pattern(MEMBER_SIZE, i)


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which(args[0]) is None:
        pytest.skip(f"needs {args[0]}")
    return subprocess.run(args, capture_output=True, check=False, timeout=120)


def test_info_zip_unzip_tests_the_archive(downloaded: pathlib.Path) -> None:
    done = _run("unzip", "-t", os.fspath(downloaded))
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"No errors detected" in done.stdout


def test_bsdtar_extracts_the_archive(
    downloaded: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    done = _run("bsdtar", "-xf", os.fspath(downloaded), "-C", os.fspath(tmp_path))
    assert done.returncode == 0, done.stderr
    for i, name in enumerate(MEMBER_NAMES):
        assert (tmp_path / name).read_bytes() == pattern(MEMBER_SIZE, i)


def test_7z_tests_the_archive(downloaded: pathlib.Path) -> None:
    done = _run("7z", "t", os.fspath(downloaded))
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"Everything is Ok" in done.stdout


# -- resume and parallel downloads ---------------------------------------------


@pytest.mark.parametrize("route", ["plain.zip", "known.zip"])
def test_curl_resumes_bit_exact(
    server_url: str, route: str, expected: bytes, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "a.zip"
    # A download cut off in the middle of the second member's data.
    out.write_bytes(expected[: MEMBER_SIZE + 12_345_678 % MEMBER_SIZE])
    done = curl("-C", "-", "-D", "-", "-o", os.fspath(out), f"{server_url}/{route}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"HTTP/1.1 206")
    assert out.read_bytes() == expected


def test_aria2c_fetches_with_four_connections(
    server_url: str, expected: bytes, tmp_path: pathlib.Path
) -> None:
    if shutil.which("aria2c") is None:
        pytest.skip("needs aria2c")
    done = subprocess.run(
        [
            "aria2c",
            "-x4",
            "-s4",
            "-k1M",
            "--min-split-size=1M",
            "--allow-overwrite=true",
            "--file-allocation=none",
            "--console-log-level=warn",
            "--summary-interval=0",
            "-d",
            os.fspath(tmp_path),
            "-o",
            "a.zip",
            f"{server_url}/plain.zip",
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "a.zip").read_bytes() == expected


# -- Zip64 ------------------------------------------------------------------------


class HTTPRangeFile(io.RawIOBase):
    """A seekable file over HTTP ``Range`` requests: a client that reads only
    what it needs of a remote archive."""

    def __init__(self, url: str) -> None:
        host, _, self._path = url.removeprefix("http://").partition("/")
        self._path = "/" + self._path
        self._connection = http.client.HTTPConnection(host, timeout=60)
        self._connection.request("HEAD", self._path)
        response = self._connection.getresponse()
        response.read()
        self.size = int(response.headers["Content-Length"])
        self.requested = 0
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self.size}[whence]
        self._position = base + offset
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        stop = self.size if size is None or size < 0 else self._position + size
        stop = min(stop, self.size)
        if stop <= self._position:
            return b""
        self._connection.request(
            "GET", self._path, headers={"Range": f"bytes={self._position}-{stop - 1}"}
        )
        response = self._connection.getresponse()
        data = response.read()
        assert response.status == 206
        self.requested += len(data)
        self._position += len(data)
        return data

    def readinto(self, buffer: t.Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._connection.close()
        super().close()


def test_zip64_archive_read_remotely_by_zipfile(server_url: str) -> None:
    with HTTPRangeFile(f"{server_url}/big.zip") as remote:
        assert remote.size > 2**32
        with zipfile.ZipFile(remote) as archive:
            big, small = archive.infolist()
            assert (big.filename, big.file_size) == ("zeros.bin", SPARSE_SIZE)
            assert crc32_of_zeros(SPARSE_SIZE) == big.CRC
            assert small.header_offset > 2**32
            assert archive.read("after.txt") == b"after the big one\n" * 100
            with archive.open(big) as member:
                assert member.read(1 << 20) == bytes(1 << 20)
        # Only what zipfile asked for crossed the wire: not 4 GiB.
        assert remote.requested < 4 << 20


@pytest.fixture(scope="module")
def big_archive(
    werkzeug_url: str, tmp_path_factory: pytest.TempPathFactory
) -> pathlib.Path:
    """The >4 GiB archive as a sparse local file: every byte fetched by Range
    except the big member's data, which is zeros (the holes)."""
    out = tmp_path_factory.mktemp("big") / "big.zip"
    with HTTPRangeFile(f"{werkzeug_url}/big.zip") as remote:
        head = remote.read(30)
        name_length = int.from_bytes(head[26:28], "little")
        extra_length = int.from_bytes(head[28:30], "little")
        data_start = 30 + name_length + extra_length
        remote.seek(0)
        head = remote.read(data_start)
        remote.seek(data_start + SPARSE_SIZE)
        tail = remote.read()
        size = remote.size
    with open(out, "wb") as handle:
        handle.truncate(size)
        handle.write(head)
        handle.seek(data_start + SPARSE_SIZE)
        handle.write(tail)
    return out


@pytest.mark.parametrize(
    ("command", "shows"),
    [
        (["unzip", "-t", "{}", "after.txt"], b"No errors detected"),
        (["unzip", "-lv", "{}"], b"%d" % SPARSE_SIZE),
        (["7z", "t", "{}", "after.txt"], b"Everything is Ok"),
        (["7z", "l", "-slt", "{}"], b"Size = %d" % SPARSE_SIZE),
        (["bsdtar", "-tvf", "{}"], b"%d" % SPARSE_SIZE),
    ],
    ids=lambda c: " ".join(c) if isinstance(c, list) else "",
)
def test_unzippers_read_the_zip64_archive(
    big_archive: pathlib.Path, command: list[str], shows: bytes
) -> None:
    done = _run(*(os.fspath(big_archive) if a == "{}" else a for a in command))
    assert done.returncode == 0, done.stdout + done.stderr
    assert shows in done.stdout


def test_bsdtar_extracts_from_the_zip64_archive(big_archive: pathlib.Path) -> None:
    done = _run("bsdtar", "-xOf", os.fspath(big_archive), "after.txt")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"after the big one\n" * 100


# -- more than 65,535 entries -------------------------------------------------------


@pytest.fixture(scope="module")
def many_entries(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    members = [VirtualFile(b"%d\n" % (i % 10), name="same.txt") for i in range(65_600)]
    out = tmp_path_factory.mktemp("many") / "many.zip"
    archive = ArchiveFile(members)
    with open(out, "wb") as handle:
        for chunk in archive.chunks(1 << 20):
            handle.write(chunk)
    assert out.stat().st_size == archive.size
    return out


def test_many_entries_read_by_zipfile(many_entries: pathlib.Path) -> None:
    with zipfile.ZipFile(many_entries) as archive:
        infos = archive.infolist()
        assert len(infos) == 65_600
        assert infos[0].filename == "same.txt"
        assert infos[-1].filename == "same (65600).txt"
        assert archive.read(infos[-1]) == b"9\n"


@pytest.mark.parametrize(
    "command",
    [["unzip", "-tqq", "{}"], ["7z", "t", "{}"], ["bsdtar", "-tf", "{}"]],
    ids=lambda c: c[0],
)
def test_unzippers_read_many_entries(
    many_entries: pathlib.Path, command: list[str]
) -> None:
    done = _run(*(os.fspath(many_entries) if a == "{}" else a for a in command))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    if command[0] == "bsdtar":
        assert done.stdout.count(b"\n") == 65_600


# -- failures mid-stream ------------------------------------------------------


def _raw_get(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    return sock


def _read_all(sock: socket.socket) -> bytes:
    parts = []
    while data := sock.recv(1 << 20):
        parts.append(data)
    return b"".join(parts)


class _Counting(PathFile):
    """A PathFile that records its opens and closes, and keeps its handles."""

    events: t.ClassVar[list[str]] = []
    handles: t.ClassVar[list[t.IO[bytes]]] = []

    def open(self) -> t.IO[bytes]:
        self.events.append(f"open {os.path.basename(self.path)}")
        handle = super().open()
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        self.events.append(f"close {os.path.basename(self.path)}")
        super().close()


def _all_released(names: list[str]) -> bool:
    """The response is over: every wrapper closed by the archive at the end
    (the first close releases its descriptor when the archive is made),
    after it was last opened, and every handle closed."""
    events = _Counting.events
    for name in names:
        opens = [i for i, e in enumerate(events) if e == f"open {name}"]
        closes = [i for i, e in enumerate(events) if e == f"close {name}"]
        if len(closes) < 2 or (opens and closes[-1] < opens[-1]):
            return False
    return all(handle.closed for handle in _Counting.handles)


def _wait_released(names: list[str]) -> bool:
    for _ in range(200):
        if _all_released(names):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(params=["python", "sendfile"])
def local_server(
    tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> cabc.Iterator[tuple[int, pathlib.Path, Flask]]:
    """Werkzeug serving three 16 MiB files as a ZIP; with "sendfile" their
    CRC-32s are known, so their data goes out with sendfile."""
    crcs = {}
    for i in range(3):
        content = pattern(MEMBER_SIZE, i)
        (tmp_path / f"f{i}").write_bytes(content)
        crcs[i] = zlib.crc32(content)
    known = request.param == "sendfile"
    app = Flask("archive_local")

    class Files(ZipDownloadView):
        def get_members(self) -> t.Any:
            members = [_Counting(tmp_path / f"f{i}") for i in range(3)]
            for i, member in enumerate(members):
                member.crc32 = crcs[i] if known else None
            return members

    app.add_url_rule("/files.zip", view_func=Files.as_view("files"))
    _Counting.events = []
    _Counting.handles = []
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with serving(server):
        yield server.server_port, tmp_path, app


def test_member_vanishing_mid_stream_truncates_and_closes(
    local_server: tuple[int, pathlib.Path, Flask], caplog: pytest.LogCaptureFixture
) -> None:
    port, folder, _ = local_server
    with contextlib.closing(_raw_get(port, "/files.zip")) as sock:
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(headers_of(head.partition(b"\r\n\r\n")[0])["content-length"])
        (folder / "f2").unlink()  # the first member is being sent
        body = head.partition(b"\r\n\r\n")[2] + _read_all(sock)
    assert MEMBER_SIZE < len(body) < length
    assert _wait_released(["f0", "f1", "f2"]), _Counting.events
    assert "f2" in caplog.text and "cut short" in caplog.text


def test_client_hanging_up_closes_every_member(
    local_server: tuple[int, pathlib.Path, Flask],
) -> None:
    port, _, _ = local_server
    sock = _raw_get(port, "/files.zip")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.close()
    assert _wait_released(["f0", "f1", "f2"]), _Counting.events
    # The body stopped with the first member: the last one was never opened.
    assert "open f2" not in _Counting.events


def test_known_crc_members_go_through_sendfile(
    werkzeug_url: str, expected: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = socket.socket.sendfile

    def spy(
        self: socket.socket, file: t.Any, offset: int = 0, count: t.Any = None
    ) -> int:
        calls.append(count)
        return original(self, file, offset, count)

    monkeypatch.setattr(socket.socket, "sendfile", spy)
    done = curl(f"{werkzeug_url}/known.zip")
    assert done.stdout == expected
    assert calls == [MEMBER_SIZE] * 4
    calls.clear()
    # Unknown CRC-32s: read once by Python, which computes them on the way.
    from flask_download import archive

    archive._CRC_CACHE.clear()
    assert curl(f"{werkzeug_url}/plain.zip").stdout == expected
    assert calls == []
    # Remembered since (the same files): sendfile again.
    assert curl(f"{werkzeug_url}/plain.zip").stdout == expected
    assert calls == [MEMBER_SIZE] * 4


def test_signals_fire_once_per_archive_with_sendfile(
    werkzeug_url: str, expected: bytes
) -> None:
    started: list[t.Any] = []
    finished: list[tuple[int, bool]] = []

    def on_start(sender: t.Any, file: t.Any, **extra: t.Any) -> None:
        started.append(file)

    def on_finish(
        sender: t.Any, file: t.Any, bytes_sent: int, completed: bool, **extra: t.Any
    ) -> None:
        finished.append((bytes_sent, completed))

    with (
        download_started.connected_to(on_start),
        download_finished.connected_to(on_finish),
    ):
        assert curl(f"{werkzeug_url}/known.zip").stdout == expected
        for _ in range(100):
            if finished:
                break
            time.sleep(0.05)
    assert len(started) == 1
    assert isinstance(started[0], ArchiveFile)
    assert finished == [(len(expected), True)]


# -- streamed archives: deflated, and members of unknown size -------------------


@pytest.fixture(scope="module")
def streamed_archives(
    wire_root: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, pathlib.Path]:
    folder = tmp_path_factory.mktemp("streamed")
    text = b"line of text\n" * 50_000

    def members() -> list[t.Any]:
        return [
            VirtualFile(text, name="text.txt"),
            ("stream.bin", VirtualFile(iter([b"abc"] * 1000))),
            PathFile(wire_root / "m1.bin", name="binary.bin"),
        ]

    paths = {}
    for label, compress in (("deflated", True), ("unknown-size", False)):
        archive = ArchiveFile(members(), compress=compress)
        assert archive.size is None
        paths[label] = folder / f"{label}.zip"
        with open(paths[label], "wb") as handle:
            for chunk in archive.chunks():
                handle.write(chunk)
        archive.close()
    return paths


@pytest.mark.parametrize("label", ["deflated", "unknown-size"])
@pytest.mark.parametrize(
    "command",
    [["unzip", "-t", "{}"], ["7z", "t", "{}"], ["bsdtar", "-xOf", "{}", "text.txt"]],
    ids=lambda c: c[0],
)
def test_unzippers_read_streamed_archives(
    streamed_archives: dict[str, pathlib.Path], label: str, command: list[str]
) -> None:
    path = os.fspath(streamed_archives[label])
    done = _run(*(path if a == "{}" else a for a in command))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    if command[0] == "bsdtar":
        assert done.stdout == b"line of text\n" * 50_000
    with zipfile.ZipFile(path) as archive:
        assert archive.read("stream.bin") == b"abc" * 1000
        assert archive.read("binary.bin") == pattern(MEMBER_SIZE, 1)


# -- memory --------------------------------------------------------------------


def test_memory_stays_flat_while_5_gib_stream(tmp_path: pathlib.Path) -> None:
    """Five sparse 1 GiB members (CRC-32s given), streamed through Python:
    what Python allocates stays under a few chunks' worth."""
    import tracemalloc

    members = []
    for i in range(5):
        path = tmp_path / f"sparse-{i}.bin"
        with open(path, "wb") as handle:
            handle.truncate(1 << 30)
        member = PathFile(path)
        member.crc32 = crc32_of_zeros(1 << 30)
        members.append(member)
    archive = ArchiveFile(members)
    assert archive.size is not None and archive.size > 5 << 30
    total = 0
    tracemalloc.start()
    try:
        with archive.open() as handle:
            while chunk := handle.read(1 << 20):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        archive.close()
    assert total == archive.size
    assert peak < 4 << 20


def test_connection_is_reused_after_a_sendfile_archive(
    server_url: str, expected: bytes
) -> None:
    """The bytes sent around the server (sendfile) keep HTTP/1.1 framing
    intact: a second request on the same connection gets a clean answer."""
    host = server_url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=60)
    try:
        for path in ("/known.zip", "/known.zip", "/plain.zip"):
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200
            assert response.read() == expected
            if response.headers["Server"].startswith("gunicorn"):
                # Werkzeug's server closes after each response anyway.
                assert not response.will_close
    finally:
        connection.close()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


def test_remote_and_streamed_members_sent_whole_and_in_ranges(
    tmp_path: pathlib.Path,
) -> None:
    """A local member going out with sendfile, a remote one (asked for again
    when its bytes are needed) and content, whole and in ranges."""
    pytest.importorskip("urllib3", reason="HTTPFile needs 'urllib3'")
    local = pattern(300_000, 1)
    remote = pattern(200_000, 2)
    (tmp_path / "local.bin").write_bytes(local)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "remote.bin").write_bytes(remote)
    upstream = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(_QuietFiles, directory=str(tmp_path / "www")),
    )
    upstream.daemon_threads = True
    remote_url = f"http://127.0.0.1:{upstream.server_address[1]}/remote.bin"

    def members() -> list[t.Any]:
        member = PathFile(tmp_path / "local.bin")
        member.crc32 = zlib.crc32(local)
        return [
            member,
            HTTPFile(remote_url, allowed_hosts=["127.0.0.1"], timeout=10),
            ("it.txt", VirtualFile(b"x" * 100 + b"y" * 100)),
        ]

    app = Flask("archive_remote")

    class Mixed(ZipDownloadView):
        def get_members(self) -> t.Any:
            return members()

    app.add_url_rule("/mixed.zip", view_func=Mixed.as_view("mixed"))
    with serving(upstream), running_werkzeug(app) as base:
        archive = ArchiveFile(members())
        try:
            expected = b"".join(archive.chunks())
        finally:
            archive.close()
        with zipfile.ZipFile(io.BytesIO(expected)) as z:
            assert z.testzip() is None
            assert z.read("remote.bin") == remote
        whole = curl(f"{base}/mixed.zip")
        assert whole.stdout == expected
        start = expected.index(remote) + 150_000
        for spec, part in (
            (f"{start}-{start + 99}", expected[start : start + 100]),
            (f"{start}-", expected[start:]),
        ):
            ranged = curl("-i", "-r", spec, f"{base}/mixed.zip")
            head, _, body = ranged.stdout.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 206")
            assert body == part
    _pool().clear()
