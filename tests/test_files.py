from __future__ import annotations

import collections.abc as cabc
import datetime
import hashlib
import io
import os
import pathlib
import socket
import time
import types
import typing as t

import pytest
from conftest import running_werkzeug
from conftest import SAMPLE_FILES
from flask import Flask
from flask import request

from flask_download import DownloadError
from flask_download import DownloadFile
from flask_download import FileNotFound
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.files import read_slice

UTC = datetime.timezone.utc
DIGITS = b"0123456789"


def assert_aware_utc(value: datetime.datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == datetime.timedelta(0)


# -- DownloadFile ------------------------------------------------------------


def test_download_file_knows_nothing_by_default() -> None:
    file = DownloadFile()
    assert file.name is None
    assert file.size is None
    assert file.modified_time is None
    assert file.etag is None
    assert file.url is None
    assert file.seekable is False


def test_download_file_open_not_implemented() -> None:
    with pytest.raises(NotImplementedError):
        DownloadFile().open()


def test_download_file_chunks_reads_open() -> None:
    class Custom(DownloadFile):
        seekable = True
        size = len(DIGITS)

        def open(self) -> t.IO[bytes]:
            return io.BytesIO(DIGITS)

    assert list(Custom().chunks(4)) == [b"0123", b"4567", b"89"]
    assert list(Custom().chunks(4, 3, 9)) == [b"3456", b"78"]


def test_download_file_is_a_context_manager() -> None:
    closed = []

    class Custom(DownloadFile):
        def close(self) -> None:
            closed.append(True)

    with Custom() as file:
        assert isinstance(file, Custom)
    assert closed == [True]


def test_file_not_found_is_a_download_error() -> None:
    assert issubclass(FileNotFound, DownloadError)


# -- PathFile ----------------------------------------------------------------


def test_path_file_attributes(download_root: pathlib.Path) -> None:
    path = download_root / "data.bin"
    file = PathFile(path)
    assert file.name == "data.bin"
    assert file.size == len(SAMPLE_FILES["data.bin"])
    assert file.path is not None
    assert os.path.samefile(file.path, path)
    assert file.seekable is True
    assert file.url is None
    assert_aware_utc(file.modified_time)
    assert file.modified_time == datetime.datetime.fromtimestamp(
        path.stat().st_mtime, UTC
    )
    assert file.etag
    assert '"' not in file.etag
    assert not file.etag.startswith("W/")


def test_path_file_accepts_str(download_root: pathlib.Path) -> None:
    file = PathFile(os.fspath(download_root / "hello.txt"))
    assert file.name == "hello.txt"
    assert file.size == len(SAMPLE_FILES["hello.txt"])


def test_path_file_name_override(download_root: pathlib.Path) -> None:
    file = PathFile(download_root / "hello.txt", name="greeting.txt")
    assert file.name == "greeting.txt"


def test_path_file_non_ascii_name(download_root: pathlib.Path) -> None:
    file = PathFile(download_root / "été.txt")
    assert file.name == "été.txt"
    assert file.size == len("Un été à Paris\n".encode())


def test_path_file_etag_stable(download_root: pathlib.Path) -> None:
    path = download_root / "hello.txt"
    assert PathFile(path).etag == PathFile(path).etag


def test_path_file_etag_differs_between_files(download_root: pathlib.Path) -> None:
    assert PathFile(download_root / "hello.txt").etag != (
        PathFile(download_root / "page.html").etag
    )


@pytest.mark.parametrize(
    "content",
    [b"a different content\n", b"Hello, World!\n"],
    ids=["other-size", "same-size"],
)
def test_path_file_etag_changes_after_rewrite(
    download_root: pathlib.Path, content: bytes
) -> None:
    path = download_root / "hello.txt"
    before = PathFile(path)
    st = path.stat()
    path.write_bytes(content)
    # A rewrite a second later, as a real edit would be.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = PathFile(path)
    assert after.etag != before.etag
    assert after.modified_time != before.modified_time
    assert after.size == len(content)


def test_path_file_etag_changes_after_replace(download_root: pathlib.Path) -> None:
    path = download_root / "hello.txt"
    before = PathFile(path)
    st = path.stat()
    replacement = download_root / "replacement.tmp"
    replacement.write_bytes(SAMPLE_FILES["hello.txt"])
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    # Same size and mtime, but another file (inode) now.
    assert PathFile(path).etag != before.etag


def test_path_file_open_reads_content(download_root: pathlib.Path) -> None:
    with PathFile(download_root / "data.bin").open() as handle:
        assert handle.read() == SAMPLE_FILES["data.bin"]


@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [
        (0, None, SAMPLE_FILES["data.bin"]),
        (10, 20, SAMPLE_FILES["data.bin"][10:20]),
        (1000, None, SAMPLE_FILES["data.bin"][1000:]),
        (0, 1, SAMPLE_FILES["data.bin"][:1]),
    ],
    ids=["whole", "middle", "tail", "first-byte"],
)
def test_path_file_chunks(
    download_root: pathlib.Path, start: int, stop: int | None, expected: bytes
) -> None:
    file = PathFile(download_root / "data.bin")
    chunks = list(file.chunks(100, start, stop))
    assert b"".join(chunks) == expected
    assert all(0 < len(c) <= 100 for c in chunks)


def test_path_file_empty(download_root: pathlib.Path) -> None:
    path = download_root / "empty.txt"
    path.write_bytes(b"")
    file = PathFile(path)
    assert file.size == 0
    assert list(file.chunks(10)) == []


@pytest.mark.parametrize(
    "relative",
    ["missing.txt", "sub", ".", "sub/missing/deeper.txt", "hello.txt/x"],
    ids=["missing", "directory", "root-directory", "missing-parent", "under-file"],
)
def test_path_file_not_found(download_root: pathlib.Path, relative: str) -> None:
    with pytest.raises(FileNotFound):
        PathFile(download_root / relative)


def test_path_file_nul_in_path_is_not_found(download_root: pathlib.Path) -> None:
    with pytest.raises(FileNotFound):
        PathFile(os.fspath(download_root) + "/hello.txt\x00.bin")


def test_path_file_deleted_before_open(download_root: pathlib.Path) -> None:
    """Issue #11: the first open hands over the descriptor opened (and
    described) by the wrapper; only a second open looks the name up again."""
    path = download_root / "hello.txt"
    content = path.read_bytes()
    file = PathFile(path)
    path.unlink()
    with file.open() as handle:
        assert handle.read() == content
    with pytest.raises(FileNotFound):
        file.open()


# -- VirtualFile: str and bytes ----------------------------------------------


def test_virtual_str_is_utf8() -> None:
    file = VirtualFile("été", name="a.txt")
    assert file.name == "a.txt"
    assert file.size == len("été".encode())
    assert file.size == 5
    assert file.seekable is True
    assert b"".join(file.chunks()) == "été".encode()


def test_virtual_bytes() -> None:
    file = VirtualFile(DIGITS)
    assert file.name is None
    assert file.size == 10
    assert file.seekable is True
    assert file.modified_time is None
    assert file.url is None
    with file.open() as handle:
        assert handle.read() == DIGITS


def test_virtual_empty_bytes() -> None:
    file = VirtualFile(b"")
    assert file.size == 0
    assert list(file.chunks()) == []
    assert file.etag


def test_virtual_etag_from_content() -> None:
    etag = VirtualFile(b"same").etag
    assert etag
    assert '"' not in etag
    assert VirtualFile(b"same").etag == etag
    assert VirtualFile("same").etag == etag
    assert VirtualFile(b"other").etag != etag


def test_virtual_etag_given() -> None:
    assert VirtualFile(b"x", etag="v1").etag == "v1"


@pytest.mark.parametrize(
    ("given", "bare"),
    [
        ("v1", "v1"),
        ('"v1"', "v1"),
        ("", ""),
        ('""', ""),
        ("W/v1", "W/v1"),  # no quotes: "W/v1" is a strong tag like any other
        ("a!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "a!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
        ("caf\xe9", "caf\xe9"),  # obs-text: RFC 9110 etagc allows it
    ],
    ids=["bare", "quoted", "empty", "quoted-empty", "w-slash", "punctuation", "latin1"],
)
def test_virtual_etag_is_stored_bare(given: str, bare: str) -> None:
    """Review: an etag given in quotes was sent as ``""abc""``."""
    for content in (b"x", iter([b"x"])):
        assert VirtualFile(content, etag=given).etag == bare


@pytest.mark.parametrize(
    "given",
    ['W/"v1"', '"a"b"', 'a"b', '"', '"v1', "a b", "a\r\nX-Injected: 1", "a\tb"]
    + ["\x7f", "\x00", "tag\u20ac"],
    ids=[
        "weak",
        "inner-quote",
        "quote",
        "lone-quote",
        "unbalanced",
        "space",
        "crlf",
        "tab",
        "del",
        "nul",
        "beyond-latin1",
    ],
)
def test_virtual_etag_that_is_not_an_opaque_tag_is_refused(given: str) -> None:
    """Review: such etags went out as invalid headers (or a 500 at response
    time); refused when the wrapper is made, saying what to pass."""
    for content in (b"x", iter([b"x"])):
        with pytest.raises(ValueError, match="pass the tag bare") as info:
            VirtualFile(content, etag=given)
        assert isinstance(info.value, DownloadError)


def test_virtual_etag_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="etag must be a str"):
        VirtualFile(b"x", etag=5)  # type: ignore[arg-type]


def test_virtual_quoted_etag_is_sent_and_matched_once_quoted(app: Flask) -> None:
    """Review: ``etag='"abc"'`` gave ``ETag: ""abc""``, which no
    ``If-None-Match`` could match."""

    class Tagged(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"data", name="d.bin", etag='"abc"')

    app.add_url_rule("/tagged", view_func=Tagged.as_view("tagged"))
    client = app.test_client()
    with client.get("/tagged") as rv:
        assert rv.headers["ETag"] == '"abc"'
    with client.get("/tagged", headers={"If-None-Match": '"abc"'}) as rv:
        assert rv.status_code == 304


@pytest.mark.parametrize(
    ("chunk_size", "start", "stop", "expected"),
    [
        (4, 0, None, [b"0123", b"4567", b"89"]),
        (3, 2, 8, [b"234", b"567"]),
        (100, 5, None, [b"56789"]),
        (1, 8, 10, [b"8", b"9"]),
        (4, 3, 3, []),
    ],
    ids=["whole", "slice", "tail", "one-byte-chunks", "empty-slice"],
)
def test_virtual_bytes_chunks(
    chunk_size: int, start: int, stop: int | None, expected: list[bytes]
) -> None:
    assert list(VirtualFile(DIGITS).chunks(chunk_size, start, stop)) == expected


# -- VirtualFile: file-like --------------------------------------------------


def test_virtual_seekable_file_like() -> None:
    file = VirtualFile(io.BytesIO(DIGITS), name="d.bin")
    assert file.size == 10
    assert file.seekable is True
    assert file.etag is None
    assert list(file.chunks(4)) == [b"0123", b"4567", b"89"]
    assert list(file.chunks(4, 2, 7)) == [b"2345", b"6"]


def test_virtual_file_like_size_given() -> None:
    assert VirtualFile(io.BytesIO(DIGITS), size=10).size == 10


def test_virtual_file_like_open_can_be_read_twice() -> None:
    file = VirtualFile(io.BytesIO(DIGITS))
    with file.open() as handle:
        assert handle.read() == DIGITS
    with file.open() as handle:
        handle.seek(5)
        assert handle.read() == DIGITS[5:]


class OneWayStream:
    """A binary stream that can only be read forwards."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def test_virtual_non_seekable_file_like() -> None:
    file = VirtualFile(t.cast(t.IO[bytes], OneWayStream(DIGITS)))
    assert file.seekable is False
    assert file.size is None
    assert file.etag is None
    assert b"".join(file.chunks(3)) == DIGITS


def test_virtual_non_seekable_file_like_size_given() -> None:
    file = VirtualFile(t.cast(t.IO[bytes], OneWayStream(DIGITS)), size=10)
    assert file.size == 10
    assert file.seekable is False


@pytest.mark.parametrize(
    "make",
    [lambda: io.BytesIO(DIGITS), lambda: OneWayStream(DIGITS)],
    ids=["seekable", "one-way"],
)
def test_virtual_close_closes_file_like(make: cabc.Callable[[], t.Any]) -> None:
    stream = make()
    file = VirtualFile(stream)
    assert not stream.closed
    file.close()
    assert stream.closed


def test_virtual_close_with_context_manager() -> None:
    stream = io.BytesIO(DIGITS)
    with VirtualFile(stream):
        pass
    assert stream.closed


def test_virtual_close_of_bytes_is_harmless() -> None:
    file = VirtualFile(DIGITS)
    file.close()
    file.close()


# -- VirtualFile: iterators --------------------------------------------------


def test_virtual_iterator_of_bytes() -> None:
    file = VirtualFile(iter([b"ab", b"", b"cd"]))
    assert file.size is None
    assert file.etag is None
    assert file.seekable is False
    assert b"".join(file.chunks()) == b"abcd"


def test_virtual_iterator_of_str_and_bytes() -> None:
    file = VirtualFile(iter(["é", b"-", "日本"]))
    assert b"".join(file.chunks()) == "é-日本".encode()
    assert all(isinstance(c, bytes) for c in VirtualFile(iter(["a", "b"])).chunks())


def test_virtual_generator_streamed_lazily() -> None:
    produced = []

    def generate() -> cabc.Iterator[bytes]:
        for i in range(3):
            produced.append(i)
            yield b"x"

    chunks = VirtualFile(generate()).chunks()
    assert produced == []
    assert next(chunks) == b"x"
    assert produced == [0]


def test_virtual_iterator_size_and_etag_given() -> None:
    file = VirtualFile(iter([b"ab"]), size=2, etag="tag")
    assert file.size == 2
    assert file.etag == "tag"
    assert file.seekable is False


def test_virtual_iterator_cannot_open() -> None:
    file = VirtualFile(iter([b"ab"]))
    with pytest.raises(TypeError):
        file.open()


@pytest.mark.parametrize(
    ("chunks", "sent", "kind"),
    [
        ([*b"hi"], b"", "int"),
        ([b"ok", 10**12], b"ok", "int"),
        ([b"ok", [104, 105]], b"ok", "list"),
        ([b"ok", None], b"ok", "NoneType"),
    ],
    ids=["iterated-bytes", "huge-int", "list", "none"],
)
def test_virtual_iterator_chunk_that_is_not_bytes_or_str_is_a_type_error(
    chunks: list[t.Any], sent: bytes, kind: str
) -> None:
    """Review: ``bytes(chunk)`` made an int n into n zero bytes (a huge one
    into a huge allocation), and a list of ints into bytes."""
    received = []
    with pytest.raises(TypeError, match="bytes, bytearray, memoryview or str") as info:
        for chunk in VirtualFile(iter(chunks)).chunks():
            received.append(chunk)
    assert b"".join(received) == sent
    assert f"chunk of type {kind!r}" in str(info.value)


def test_virtual_iterator_of_ints_names_the_likely_mistake() -> None:
    with pytest.raises(TypeError, match="'int'.*pass the bytes object itself"):
        list(VirtualFile(iter(b"hi")).chunks())  # type: ignore[arg-type]


def test_virtual_iterator_of_bytes_likes() -> None:
    chunks: list[t.Any] = [b"a", bytearray(b"b"), memoryview(b"c"), "d", b""]
    received = list(VirtualFile(iter(chunks)).chunks())
    assert received == [b"a", b"b", b"c", b"d"]
    assert all(type(chunk) is bytes for chunk in received)


def test_virtual_iterator_type_error_ends_the_body_and_closes_the_iterator(
    app: Flask,
) -> None:
    """Review: the TypeError reaches the server mid-body (the response is
    cut short) and the iterator is closed."""
    closed: list[bool] = []

    def generate() -> cabc.Iterator[t.Any]:
        try:
            yield b"first"
            yield 7
            yield b"never"
        finally:
            closed.append(True)

    class Broken(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(generate(), name="b.bin")

    app.add_url_rule("/broken", view_func=Broken.as_view("broken"))
    with app.test_client().get("/broken", buffered=False) as rv:
        assert rv.status_code == 200
        body = iter(rv.response)
        assert next(body) == b"first"
        with pytest.raises(TypeError, match="chunk of type 'int'"):
            next(body)
    assert closed == [True]


def _broken_stream_app() -> Flask:
    app = Flask("broken_stream")

    def generate() -> cabc.Iterator[t.Any]:
        yield b"first chunk"
        yield 7

    class Broken(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            size = int(request.args["size"]) if "size" in request.args else None
            return VirtualFile(generate(), name="b.bin", size=size)

    app.add_url_rule("/broken", view_func=Broken.as_view("broken"))
    return app


@pytest.mark.parametrize("query", ["", "?size=100"], ids=["chunked", "sized"])
def test_virtual_iterator_type_error_closes_the_connection_on_a_server(
    query: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: a bad chunk mid-stream on a real server ends the body short
    and closes the connection (no hang, no body the client takes as whole:
    no last chunk, or fewer bytes than Content-Length)."""
    with running_werkzeug(_broken_stream_app()) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            # Keep-alive asked for: the server must still close.
            sock.sendall(f"GET /broken{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = b""
            while data := sock.recv(65536):
                received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if query:
        assert b"Content-Length: 100" in head
        assert body == b"first chunk"
    else:
        assert b"Transfer-Encoding: chunked" in head
        assert body == b"b\r\nfirst chunk\r\n"  # and no "0\r\n\r\n"


def test_virtual_close_closes_generator() -> None:
    finished = []

    def generate() -> cabc.Iterator[bytes]:
        try:
            yield b"a"
            yield b"b"
        finally:
            finished.append(True)

    gen = generate()
    file = VirtualFile(gen)
    assert next(file.chunks()) == b"a"
    file.close()
    assert finished == [True]


# -- VirtualFile: modified_time ----------------------------------------------


def test_virtual_naive_modified_time_is_utc() -> None:
    naive = datetime.datetime(2024, 5, 6, 7, 8, 9)
    file = VirtualFile(b"x", modified_time=naive)
    assert_aware_utc(file.modified_time)
    assert file.modified_time == naive.replace(tzinfo=UTC)


def test_virtual_aware_modified_time_kept() -> None:
    paris = datetime.timezone(datetime.timedelta(hours=2))
    aware = datetime.datetime(2024, 5, 6, 9, 8, 9, tzinfo=paris)
    file = VirtualFile(b"x", modified_time=aware)
    assert file.modified_time == aware
    assert file.modified_time == datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


# -- read_slice --------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk_size", "start", "stop", "expected"),
    [
        (4, 0, None, [b"0123", b"4567", b"89"]),
        (4, 3, 9, [b"3456", b"78"]),
        (4, 3, None, [b"3456", b"789"]),
        (100, 0, 10, [DIGITS]),
        (2, 9, 10, [b"9"]),
        (2, 4, 4, []),
        (4, 8, 20, [b"89"]),
    ],
    ids=["whole", "slice", "open-end", "big-chunk", "last-byte", "empty", "shrunk"],
)
def test_read_slice(
    chunk_size: int, start: int, stop: int | None, expected: list[bytes]
) -> None:
    assert list(read_slice(io.BytesIO(DIGITS), chunk_size, start, stop)) == expected


class SeekTracker(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_from: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.read_from.append(self.tell())
        return super().read(size)


def test_read_slice_seeks_instead_of_reading_from_start() -> None:
    handle = SeekTracker(bytes(10_000))
    assert b"".join(read_slice(handle, 1000, 9_990, 10_000)) == bytes(10)
    assert handle.read_from == [9_990]


def test_read_slice_is_lazy() -> None:
    handle = SeekTracker(DIGITS)
    chunks = read_slice(handle, 2, 0, 10)
    assert handle.read_from == []
    assert next(chunks) == b"01"
    assert handle.read_from == [0]


def test_path_file_refuses_a_file_replaced_after_stat(tmp_path: pathlib.Path) -> None:
    """A replaced file is never sent under the old version's headers."""
    path = tmp_path / "doc.txt"
    path.write_bytes(b"version one")
    file = PathFile(path)
    replacement = tmp_path / "new.txt"
    replacement.write_bytes(b"version two, longer")
    os.replace(replacement, path)
    with file.open() as handle:
        assert handle.read() == b"version one"
    with pytest.raises(FileNotFound, match="changed"):
        file.open()


def test_path_file_does_not_open_a_fifo(tmp_path: pathlib.Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileNotFound):
        PathFile(fifo)


def test_virtual_file_range_of_a_stream_positioned_mid_way() -> None:
    """Offsets of chunks() count from where the content starts in the stream."""
    stream = io.BytesIO(b"HEADER:0123456789")
    stream.seek(7)
    file = VirtualFile(stream)
    assert file.size == 10
    assert b"".join(file.chunks(4, 2, 5)) == b"234"
    assert b"".join(file.chunks(4)) == b"0123456789"
    assert not stream.closed


# -- odd modification times (issue #11) ----------------------------------------

ODD_MTIMES = {
    "zero": 0,
    "negative": -86400,
    "year-10000": 253402300800,
    "plus-1e13": 10**13,
    "minus-1e13": -(10**13),
}


def _set_mtime(
    path: pathlib.Path, seconds: int, monkeypatch: pytest.MonkeyPatch | None = None
) -> None:
    """Give ``path`` that mtime; where the file system cannot store it, make
    ``fstat`` report it (what a file from another system would show)."""
    try:
        os.utime(path, ns=(seconds * 10**9, seconds * 10**9))
        stored = os.stat(path).st_mtime_ns == seconds * 10**9
    except (OSError, OverflowError):
        stored = False
    if stored:
        return
    if monkeypatch is None:
        pytest.skip(f"this file system cannot store mtime {seconds}")
    target = os.stat(path)
    real_fstat = os.fstat

    def fstat(fd: int) -> t.Any:
        st = real_fstat(fd)
        if not os.path.samestat(st, target):
            return st
        fields = {name: getattr(st, name) for name in dir(st) if name.startswith("st_")}
        fields.update(st_mtime=float(seconds), st_mtime_ns=seconds * 10**9)
        return types.SimpleNamespace(**fields)

    monkeypatch.setattr(os, "fstat", fstat)


@pytest.mark.parametrize("seconds", ODD_MTIMES.values(), ids=ODD_MTIMES.keys())
def test_path_file_with_an_odd_mtime_has_no_modified_time(
    tmp_path: pathlib.Path, seconds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "odd.bin"
    path.write_bytes(b"odd")
    _set_mtime(path, seconds, monkeypatch)
    with PathFile(path) as file:
        assert file.modified_time is None
        # The ETag stands on the change time, which no one can set (hashed:
        # no stat field shows through).
        st = os.stat(path)
        token = f"{st.st_ctime_ns:x}-{st.st_size:x}-{st.st_ino:x}".encode()
        assert file.etag == "c" + hashlib.blake2b(token, digest_size=16).hexdigest()


def test_path_file_etag_changes_with_content_when_mtime_is_pinned(
    tmp_path: pathlib.Path,
) -> None:
    """Reproducible builds pin every mtime to 0: the ETag must still change
    when the file is rewritten in place at the same size."""
    path = tmp_path / "build.bin"
    path.write_bytes(b"build 1")
    _set_mtime(path, 0)
    with PathFile(path) as first:
        etag = first.etag
    ctime_ns = os.stat(path).st_ctime_ns
    time.sleep(0.01)  # a later change time (ns clocks; coarse ones tick too)
    with open(path, "r+b") as f:
        f.write(b"build 2")
    _set_mtime(path, 0)
    with PathFile(path) as second:
        if os.stat(path).st_ctime_ns == ctime_ns:
            pytest.skip("the change time did not move (coarse clock)")
        assert second.etag != etag


def test_path_file_normal_mtime(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "normal.bin"
    path.write_bytes(b"normal")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    with PathFile(path) as file:
        assert file.modified_time == datetime.datetime.fromtimestamp(1_700_000_000, UTC)
        st = os.stat(path)
        token = (
            f"{1_700_000_000 * 10**9:x}-{st.st_size:x}-{st.st_ino:x}-{st.st_ctime_ns:x}"
        ).encode()
        assert file.etag == hashlib.blake2b(token, digest_size=16).hexdigest()


@pytest.mark.parametrize("seconds", ODD_MTIMES.values(), ids=ODD_MTIMES.keys())
def test_view_serves_a_file_with_an_odd_mtime_without_last_modified(
    app: t.Any,
    download_root: pathlib.Path,
    seconds: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flask_download import PathDownloadView

    _set_mtime(download_root / "hello.txt", seconds, monkeypatch)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("f"))
    client = app.test_client()
    with client.get("/files/hello.txt") as rv:
        assert rv.status_code == 200
        assert "Last-Modified" not in rv.headers
        assert rv.headers["ETag"].startswith('"c')
        etag = rv.headers["ETag"]
    headers = {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}
    with client.get("/files/hello.txt", headers=headers) as rv:
        assert rv.status_code == 200  # never "not modified since 1970"
    with client.get("/files/hello.txt", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304


# -- text sources (issue 13) ---------------------------------------------------


def test_stringio_is_encoded_and_sized_in_bytes() -> None:
    """Issue 13: a StringIO's size counts bytes, not characters."""
    file = VirtualFile(io.StringIO("Un été\n"))
    assert file.size == 9
    assert file.seekable
    assert file.charset == "utf-8"
    assert b"".join(file.chunks()) == "Un été\n".encode()
    assert b"".join(file.chunks(2, 3, 5)) == "é".encode()


def test_stringio_is_read_from_its_position() -> None:
    stream = io.StringIO("skip|été")
    stream.seek(5)
    file = VirtualFile(stream)
    assert b"".join(file.chunks()) == "été".encode()
    assert file.size == 5


@pytest.mark.parametrize(
    "make",
    [
        lambda: "Un été\n",
        lambda: io.StringIO("Un été\n"),
        lambda: iter(["Un ", "été", "\n"]),
    ],
    ids=["str", "stringio", "str-chunks"],
)
def test_text_is_encoded_with_the_given_charset(
    make: cabc.Callable[[], t.Any],
) -> None:
    file = VirtualFile(make(), charset="latin-1")
    assert b"".join(file.chunks()) == "Un été\n".encode("latin-1")
    assert file.charset == "latin-1"


def test_str_chunks_use_one_encoder_for_the_stream() -> None:
    """A stateful encoding writes its byte order mark once, not per chunk."""
    file = VirtualFile(iter(["ab", "", "cd"]), charset="utf-16")
    assert b"".join(file.chunks()) == "abcd".encode("utf-16")


def test_mixed_chunks_are_all_bytes() -> None:
    file = VirtualFile(iter([b"raw ", "été", b""]))
    chunks = list(file.chunks())
    assert all(type(chunk) is bytes and chunk for chunk in chunks)
    assert b"".join(chunks) == "raw été".encode()


def test_text_mode_file_is_streamed_encoded(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Un été\n" * 1000, encoding="utf-8")
    with open(path, encoding="utf-8") as handle:
        file = VirtualFile(handle, charset="latin-1")
        assert file.size is None
        assert not file.seekable
        assert file.charset == "latin-1"
        data = b"".join(file.chunks(100))
        file.close()
        assert handle.closed
    assert data == ("Un été\n" * 1000).encode("latin-1")


def test_unknown_charset_is_a_configuration_error() -> None:
    with pytest.raises(DownloadError, match="known text encoding"):
        VirtualFile("x", charset="no-such-codec")


def test_unencodable_str_fails_when_the_wrapper_is_made() -> None:
    with pytest.raises(UnicodeEncodeError):
        VirtualFile("日本", charset="latin-1")


def _restamp(path: pathlib.Path) -> None:
    # Same bytes, same size, a new mtime: a rewrite in place, or the first
    # half of an append (the kernel stamps the mtime before the size).
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_unchanged_check_waits_for_an_append_a_loaded_writer_finishes_late(
    tmp_path: pathlib.Path,
) -> None:
    """Issue #11: an append seen between its mtime stamp and its size update
    is not a rewrite, even when the writer needs a few milliseconds more."""
    import threading

    path = tmp_path / "log.txt"
    path.write_bytes(b"x" * 100)
    file = PathFile(path)
    handle = file.open()
    try:
        unchanged = file.unchanged_check(handle)
        assert unchanged is not None
        _restamp(path)

        def append() -> None:
            with path.open("ab") as f:
                f.write(b"more")

        timer = threading.Timer(0.005, append)
        timer.start()
        try:
            assert unchanged() is True
        finally:
            timer.join()
    finally:
        handle.close()
        file.close()


def test_unchanged_check_refuses_a_same_size_rewrite(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 100)
    file = PathFile(path)
    handle = file.open()
    try:
        unchanged = file.unchanged_check(handle)
        assert unchanged is not None
        assert unchanged() is True
        _restamp(path)
        assert unchanged() is False
    finally:
        handle.close()
        file.close()


def test_a_rewrite_that_puts_the_mtime_back_is_another_version(
    tmp_path: pathlib.Path,
) -> None:
    """Final review: ``cp -p`` or ``rsync -t`` onto a file (same size, mtime
    put back) kept its ETag and passed the checks of a second open; the
    ctime tells."""
    path = tmp_path / "build.bin"
    path.write_bytes(b"version 1")
    stat = path.stat()
    file = PathFile(path)
    try:
        with file.open():
            pass
        etag = file.etag
        time.sleep(0.01)
        path.write_bytes(b"version 2")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert path.stat().st_mtime_ns == stat.st_mtime_ns
        with pytest.raises(FileNotFound):
            file.open()  # opened again: another version, refused
    finally:
        file.close()
    with PathFile(path) as again:
        assert again.etag != etag
