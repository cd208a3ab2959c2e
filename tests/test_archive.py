"""Streaming ZIP archives: ArchiveFile and ZipDownloadView."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import gc
import http.server
import io
import os
import pathlib
import struct
import threading
import tracemalloc
import typing as t
import zipfile
import zlib

import pytest
from flask import Flask
from flask import request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.http import http_date

from flask_download import ArchiveFile
from flask_download import DownloadFile
from flask_download import FileNotFound
from flask_download import FlaskDownload
from flask_download import http as http_module
from flask_download import HTTPFile
from flask_download import ObjectDownloadView
from flask_download import PathFile
from flask_download import send_download
from flask_download import VirtualFile
from flask_download import ZipDownloadView
from flask_download.archive import safe_member_name
from flask_download.http import _client as http_client
from flask_download.http import _file as http_file
from flask_download.http import _pool
from flask_download.sqlalchemy import ColumnFile
from flask_download.sqlalchemy import FileColumn

UTC = datetime.timezone.utc
OLD = datetime.datetime(2021, 3, 4, 5, 6, 8, tzinfo=UTC)
NEW = datetime.datetime(2024, 7, 8, 9, 10, 12, tzinfo=UTC)


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset, so a misplaced range shows."""
    block = bytes((i * 31 + seed + i // 251) % 256 for i in range(4096))
    return (block * (size // 4096 + 1))[:size]


def unzip(data: bytes) -> dict[str, bytes]:
    """Every member of ``data``, with the CRC-32s checked by ``zipfile``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


class CountingFile(VirtualFile):
    """A seekable VirtualFile that counts opens, bytes read and closes."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.opens = 0
        self.closes = 0
        self.bytes_read = 0
        self.open_handles = 0

    def open(self) -> t.IO[bytes]:
        self.opens += 1
        self.open_handles += 1
        return t.cast(t.IO[bytes], _CountingReader(super().open(), self))

    def close(self) -> None:
        self.closes += 1
        super().close()


class _CountingReader(io.RawIOBase):
    def __init__(self, handle: t.IO[bytes], owner: CountingFile) -> None:
        self._handle = handle
        self._owner = owner

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def readinto(self, buffer: t.Any) -> int:
        data = self._handle.read(len(buffer))
        self._owner.bytes_read += len(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._owner.open_handles -= 1
            self._handle.close()
        super().close()


def counting_members(
    sizes: cabc.Sequence[int], crc: bool = False
) -> list[CountingFile]:
    members = []
    for i, size in enumerate(sizes):
        content = pattern(size, i)
        member = CountingFile(content, name=f"m{i}.bin", modified_time=OLD)
        if crc:
            member.crc32 = zlib.crc32(content)
        members.append(member)
    return members


def make_app(get_members: cabc.Callable[[], t.Any], **attrs: t.Any) -> Flask:
    app = Flask("archive_app")
    app.config["TESTING"] = True

    class Zip(ZipDownloadView):
        def get_members(self) -> t.Any:
            return get_members()

    app.add_url_rule("/zip", view_func=Zip.as_view("zip", **attrs))
    return app


# -- the archive --------------------------------------------------------------


def test_stored_archive_round_trips_through_zipfile() -> None:
    members = [
        VirtualFile(b"hello", name="a.txt", modified_time=OLD),
        ("docs/résumé.txt", VirtualFile("é" * 3000, modified_time=NEW)),
        VirtualFile(b"", name="empty"),
    ]
    archive = ArchiveFile(members)
    data = b"".join(archive.chunks())
    assert len(data) == archive.size
    assert unzip(data) == {
        "a.txt": b"hello",
        "docs/résumé.txt": "é".encode() * 3000,
        "empty": b"",
    }
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        assert all(info.compress_type == zipfile.ZIP_STORED for info in infos)
        assert all(info.flag_bits & 0x800 for info in infos)  # UTF-8 names
        assert infos[0].date_time == (2021, 3, 4, 5, 6, 8)
        assert infos[2].date_time == (1980, 1, 1, 0, 0, 0)


def test_extended_timestamp_holds_the_utc_time() -> None:
    archive = ArchiveFile([VirtualFile(b"x", name="a", modified_time=NEW)])
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.chunks()))) as z:
        extra = z.infolist()[0].extra
    tag = extra.index(b"UT\x05\x00")
    assert extra[tag + 4] == 1
    assert int.from_bytes(extra[tag + 5 : tag + 9], "little") == NEW.timestamp()


def test_size_etag_and_last_modified_come_from_metadata_only() -> None:
    members = counting_members([10, 20, 30])
    members[1].modified_time = NEW
    archive = ArchiveFile(members)
    assert archive.size == len(
        b"".join(ArchiveFile(counting_members([10, 20, 30])).chunks())
    )
    assert archive.modified_time == NEW
    assert archive.etag is not None
    assert archive.mimetype == "application/zip"
    assert all(m.opens == 0 for m in members)


@pytest.mark.parametrize(
    ("change", "same"),
    [
        (lambda ms: None, True),
        (lambda ms: setattr(ms[0], "etag", "other"), False),
        (lambda ms: setattr(ms[1], "size", 12), False),
        (lambda ms: ms.reverse(), False),
    ],
    ids=["unchanged", "member-etag", "member-size", "order"],
)
def test_etag_follows_every_member(
    change: cabc.Callable[[list[t.Any]], None], same: bool
) -> None:
    def members() -> list[t.Any]:
        return [VirtualFile(b"a" * 10, name="a"), VirtualFile(b"b" * 11, name="b")]

    changed = members()
    change(changed)
    assert (ArchiveFile(members()).etag == ArchiveFile(changed).etag) is same


def test_etag_of_renamed_member_differs() -> None:
    file = VirtualFile(b"a", name="a")
    assert ArchiveFile([("x", file)]).etag != ArchiveFile([("y", file)]).etag


def test_member_without_validator_gives_no_etag() -> None:
    class Opaque(DownloadFile):
        seekable = True
        size = 1

        def open(self) -> t.IO[bytes]:
            return io.BytesIO(b"x")

    assert ArchiveFile([Opaque()]).etag is None
    known = Opaque()
    known.crc32 = zlib.crc32(b"x")
    assert ArchiveFile([known]).etag is not None


def test_empty_archive_is_valid() -> None:
    archive = ArchiveFile([])
    data = b"".join(archive.chunks())
    assert archive.size == len(data) == 22
    assert unzip(data) == {}


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("/etc/passwd", "etc/passwd"),
        ("../../evil.sh", "evil.sh"),
        ("a/../../b", "a/b"),
        ("C:\\Windows\\x.dll", "Windows/x.dll"),
        ("c:evil", "evil"),
        ("dir\\sub\\f.txt", "dir/sub/f.txt"),
        ("a//./b", "a/b"),
        ("bad\x00\r\n\tname\x7f\x85.txt", "badname.txt"),
        ("\u202etxt.exe", "txt.exe"),
        ("trailing. . ", "trailing"),
        ("CON", "_CON"),
        ("dir/nul.txt", "dir/_nul.txt"),
        ("COM\u00b9.log", "_COM\u00b9.log"),
        ("conin$", "_conin$"),
        ("aux:stream", "aux_stream"),
        ("C:C:\\Windows\\System32\\evil.dll", "Windows/System32/evil.dll"),
        ("a:C:foo.txt", "foo.txt"),
        ("ab:cd.txt", "ab_cd.txt"),
        ("..\u00a5..\u00a5evil.dll", ".._.._evil.dll"),
        ("..\u20a9..\u20a9x", ".._.._x"),
        ("\u00a5100.txt", "_100.txt"),
        ("price \u00a5100.txt", "price \u00a5100.txt"),
        ("..\u2216x", "x"),
        ("lpt\u00b3 .txt", "_lpt\u00b3 .txt"),
        ("..", "file"),
        ("", "file"),
        (None, "file"),
        ("ok/名前.txt", "ok/名前.txt"),
    ],
    ids=lambda value: repr(value),
)
def test_member_names_are_made_safe(name: str | None, safe: str) -> None:
    assert safe_member_name(name) == safe
    archive = ArchiveFile(
        [(name or "", VirtualFile(b"x"))] if name else [VirtualFile(b"x")]
    )
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.chunks()))) as z:
        assert z.namelist() == [safe]


def test_duplicate_names_are_numbered() -> None:
    names = [
        "a.txt",
        "a.txt",
        "A.TXT",
        "a (2).txt",
        "x.tar.gz",
        "x.tar.gz",
        "noext",
        "noext",
    ]
    archive = ArchiveFile([(n, VirtualFile(b"x")) for n in names])
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.chunks()))) as z:
        assert z.namelist() == [
            "a.txt",
            "a (2).txt",
            "A (3).TXT",
            "a (2) (2).txt",
            "x.tar.gz",
            "x (2).tar.gz",
            "noext",
            "noext (2)",
        ]


def test_file_and_directory_names_never_clash() -> None:
    names = ["a", "a/b.txt", "c/d.txt", "c"]
    archive = ArchiveFile([(n, VirtualFile(b"x")) for n in names])
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.chunks()))) as z:
        assert z.namelist() == ["a", "a (2)/b.txt", "c/d.txt", "c (2)"]


def test_compressed_archive_deflates_and_has_no_size() -> None:
    content = b"abc" * 100_000
    archive = ArchiveFile(
        [VirtualFile(content, name="a"), VirtualFile(iter([b"x", "y"]), name="b")],
        compress=True,
    )
    assert archive.size is None
    assert not archive.seekable
    data = b"".join(archive.chunks())
    assert len(data) < len(content) // 10
    assert unzip(data) == {"a": content, "b": b"xy"}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}


def test_member_of_unknown_size_streams_without_content_length() -> None:
    archive = ArchiveFile(
        [VirtualFile(b"abc", name="a"), VirtualFile(iter([b"12", b"34"]), name="b")]
    )
    assert archive.size is None
    assert unzip(b"".join(archive.chunks())) == {"a": b"abc", "b": b"1234"}


class StreamedFile(DownloadFile):
    """A member that cannot seek, of known size, counting what it streams."""

    def __init__(self, content: bytes, name: str, chunk: int = 10_000) -> None:
        self.name = name
        self.size = len(content)
        self.etag = f"s{zlib.crc32(content)}"
        self.modified_time = OLD
        self._content = content
        self._chunk = chunk
        self.passes = 0
        self.bytes_read = 0
        self.open_streams = 0
        self.closes = 0

    def chunks(
        self, chunk_size: int = 65536, start: int = 0, stop: int | None = None
    ) -> cabc.Iterator[bytes]:
        self.passes += 1
        self.open_streams += 1
        try:
            for offset in range(0, len(self._content), self._chunk):
                data = self._content[offset : offset + self._chunk]
                self.bytes_read += len(data)
                yield data
        finally:
            self.open_streams -= 1

    def close(self) -> None:
        self.closes += 1


STREAMED = pattern(50_000, 3)


def streamed_members() -> list[t.Any]:
    return [
        VirtualFile(b"abc", name="a"),
        StreamedFile(b"1234", "b", chunk=2),
        StreamedFile(STREAMED, "c"),
    ]


class _Pipe(io.RawIOBase):
    """A stream that cannot seek, as a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        return self._data.readinto(buffer)


@pytest.mark.parametrize(
    "one_shot",
    [lambda: iter([b"12", b"34"]), lambda: io.BufferedReader(_Pipe(b"1234"))],
    ids=["iterator", "stream"],
)
def test_a_member_read_once_makes_the_archive_streamed_whole(
    one_shot: cabc.Callable[[], t.Any],
) -> None:
    """Review: several ranges could need a one-shot member twice (its bytes,
    then its CRC-32); the second read found it empty and the body ended
    short of its Content-Length."""
    members = [
        VirtualFile(b"abc", name="a"),
        VirtualFile(one_shot(), name="b", size=4, etag="b1"),
    ]
    archive = ArchiveFile(members)
    assert archive.size is not None  # the layout is known...
    assert not archive.seekable  # ...but ranges are not answered
    app = make_app(
        lambda: [
            VirtualFile(b"abc", name="a"),
            VirtualFile(one_shot(), name="b", size=4, etag="b1"),
        ]
    )
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
        assert "Accept-Ranges" not in rv.headers
    with client.get("/zip", headers={"Range": "bytes=10-20,40-"}) as rv:
        assert rv.status_code == 200
        assert rv.data == whole
        assert unzip(whole) == {"a": b"abc", "b": b"1234"}


def test_members_that_cannot_seek_but_know_their_size_answer_ranges() -> None:
    whole = b"".join(ArchiveFile(streamed_members()).chunks())
    assert unzip(whole) == {"a": b"abc", "b": b"1234", "c": STREAMED}
    for start in range(0, len(whole), 89):
        for length in (1, 60, 30_000):
            archive = ArchiveFile(streamed_members())
            assert archive.seekable
            assert archive.size == len(whole)
            stop = min(start + length, len(whole))
            got = b"".join(archive.chunks(start=start, stop=stop))
            assert got == whole[start:stop], (start, length)


def test_stream_read_in_part_is_read_on_for_its_crc_not_again() -> None:
    # Several ranges (multipart): some bytes of a member, then its CRC-32.
    whole = b"".join(ArchiveFile(streamed_members()).chunks())
    b_data = whole.index(b"1234")
    c_data = whole.index(STREAMED)
    c_descriptor = c_data + len(STREAMED)
    members = streamed_members()
    with ArchiveFile(members).open() as handle:
        for start, length in (
            (b_data + 1, 1),
            (b_data + 4, 16),  # b's data descriptor; b can be read only once
            (c_data + 20_000, 10),
            (c_descriptor + 4, 4),  # c's CRC-32
        ):
            handle.seek(start)
            assert handle.read(length) == whole[start : start + length]
    assert members[2].passes == 1
    assert members[2].bytes_read == len(STREAMED)


def test_range_in_a_stream_reads_it_from_its_start_up_to_the_range() -> None:
    members = [StreamedFile(pattern(1_000_000, i), f"m{i}") for i in range(2)]
    archive = ArchiveFile(members)
    whole = b"".join(
        ArchiveFile(
            [StreamedFile(pattern(1_000_000, i), f"m{i}") for i in range(2)]
        ).chunks()
    )
    start = whole.index(pattern(1_000_000, 1)) + 500_000
    got = b"".join(archive.chunks(start=start, stop=start + 100))
    assert got == whole[start : start + 100]
    assert members[0].bytes_read == 0
    # From its start to the chunk holding the range's end, in one pass.
    assert members[1].bytes_read == 510_000
    assert members[1].passes == 1
    assert [m.open_streams for m in members] == [0, 0]


def test_range_deep_in_a_large_stream_keeps_memory_flat() -> None:
    content = bytes(20_000_000)
    member = StreamedFile(content, "big", chunk=65536)
    archive = ArchiveFile([member])
    assert archive.size is not None
    tracemalloc.start()
    try:
        tail = b"".join(archive.chunks(start=archive.size - 1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = b"".join(ArchiveFile([StreamedFile(content, "big")]).chunks())
    assert tail == whole[-1000:]
    assert member.passes == 1  # the CRC-32 counted the bytes skipped
    assert peak < 2_000_000


def test_view_answers_ranges_of_streamed_members() -> None:
    app = make_app(streamed_members)
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
        etag = rv.headers["ETag"]
        assert rv.headers["Accept-Ranges"] == "bytes"
    with client.get("/zip", headers={"Range": "bytes=100-"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[100:]
    with client.get("/zip", headers={"Range": "bytes=100-", "If-Range": etag}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[100:]
    with client.get("/zip", headers={"Range": "bytes=100-", "If-Range": '"old"'}) as rv:
        assert rv.status_code == 200
        assert rv.data == whole


def test_streamed_member_without_validator_never_splices_on_if_range() -> None:
    def members() -> list[t.Any]:
        member = StreamedFile(b"x" * 300, "x")
        member.etag = member.modified_time = None
        return [member]

    app = make_app(members)
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
        assert "ETag" not in rv.headers
        assert "Last-Modified" not in rv.headers
    with client.get("/zip", headers={"Range": "bytes=10-"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[10:]
    for if_range in ('"anything"', http_date(NEW)):
        headers = {"Range": "bytes=10-", "If-Range": if_range}
        with client.get("/zip", headers=headers) as rv:
            assert rv.status_code == 200
            assert rv.data == whole


def test_reader_reads_each_member_once_and_one_at_a_time() -> None:
    members = counting_members([100_000, 5, 70_000])
    archive = ArchiveFile(members)
    opened_together = []

    def watch() -> None:
        opened_together.append(sum(m.open_handles for m in members))

    data = b""
    with archive.open() as handle:
        while chunk := handle.read(8192):
            watch()
            data += chunk
    assert unzip(data) == {
        f"m{i}.bin": pattern(s, i) for i, s in enumerate([100_000, 5, 70_000])
    }
    assert [m.opens for m in members] == [1, 1, 1]
    assert [m.bytes_read for m in members] == [100_000, 5, 70_000]
    assert max(opened_together) == 1
    assert all(m.open_handles == 0 for m in members)
    archive.close()
    assert [m.closes for m in members] == [1, 1, 1]


@pytest.mark.parametrize("crc", [True, False], ids=["crc-known", "crc-computed"])
def test_every_range_matches_the_whole(crc: bool) -> None:
    sizes = [3000, 0, 10_000, 1]
    whole = b"".join(ArchiveFile(counting_members(sizes)).chunks())
    archive = ArchiveFile(counting_members(sizes, crc=crc))
    for start in range(0, len(whole), 97):
        for length in (1, 50, 4000):
            with archive.open() as handle:
                handle.seek(start)
                got = b""
                while len(got) < length and (chunk := handle.read(length - len(got))):
                    got += chunk
            assert got == whole[start : start + length], (start, length)


def test_range_in_member_data_reads_only_what_it_covers() -> None:
    members = counting_members([1_000_000, 1_000_000], crc=False)
    archive = ArchiveFile(members)
    start = members[0].size + 2000  # type: ignore[operator]
    data = b"".join(archive.chunks(start=start, stop=start + 65536))
    whole = b"".join(ArchiveFile(counting_members([1_000_000, 1_000_000])).chunks())
    assert data == whole[start : start + 65536]
    assert members[0].bytes_read == 0
    assert members[1].bytes_read == 65536


@pytest.mark.parametrize("crc", [True, False], ids=["crc-known", "crc-computed"])
def test_range_over_the_central_directory(crc: bool) -> None:
    members = counting_members([200_000, 300_000], crc=crc)
    archive = ArchiveFile(members)
    assert archive.size is not None
    tail = b"".join(archive.chunks(start=archive.size - 100))
    whole = b"".join(ArchiveFile(counting_members([200_000, 300_000])).chunks())
    assert tail == whole[-100:]
    # The last 100 bytes hold the CRC-32 of the last member only (and the end
    # of the first record): a known CRC-32 spares reading it, else it is read
    # once.
    assert [m.bytes_read for m in members] == ([0, 0] if crc else [0, 300_000])
    members = counting_members([200_000, 300_000], crc=crc)
    start = central_records(whole)[0][0]
    directory = b"".join(ArchiveFile(members).chunks(start=start))
    assert directory == whole[start:]
    assert [m.bytes_read for m in members] == ([0, 0] if crc else [200_000, 300_000])


def central_records(data: bytes) -> list[tuple[int, int]]:
    """``(start, stop)`` of each central directory record of ``data``."""
    size, offset = struct.unpack("<II", data[-10:-2])  # the end record's
    records = []
    position = offset
    while position < offset + size:
        lengths = struct.unpack("<HHH", data[position + 28 : position + 34])
        records.append((position, position + 46 + sum(lengths)))
        position = records[-1][1]
    return records


def test_record_bytes_other_than_the_crc_read_no_member() -> None:
    sizes = [200_000, 300_000]
    whole = b"".join(ArchiveFile(counting_members(sizes)).chunks())
    records = central_records(whole)
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        # Each data descriptor: signature, CRC-32, two 4-byte sizes.
        descriptors = [
            info.header_offset + len(info.FileHeader()) + info.file_size
            for info in z.infolist()
        ]
    assert whole[descriptors[0] : descriptors[0] + 4] == b"PK\x07\x08"
    # The end records, and them with the last central record's tail.
    spans = [(records[-1][1], len(whole)), (records[-1][0] + 20, len(whole))]
    for descriptor in descriptors:
        spans += [(descriptor, descriptor + 4), (descriptor + 8, descriptor + 16)]
    for start, stop in records:
        # Before the CRC-32 (offset 16) and after it.
        spans += [(start, start + 16), (start + 20, stop)]
    for start, stop in spans:
        members = counting_members(sizes)
        got = b"".join(ArchiveFile(members).chunks(start=start, stop=stop))
        assert got == whole[start:stop], (start, stop)
        assert [m.bytes_read for m in members] == [0, 0], (start, stop)
    # One byte of a CRC-32 field reads that member, and it only.
    for index, start in enumerate((descriptors[0] + 7, records[0][0] + 16)):
        members = counting_members(sizes)
        got = b"".join(ArchiveFile(members).chunks(start=start, stop=start + 1))
        assert got == whole[start : start + 1]
        assert [m.bytes_read for m in members] == [200_000, 0], index


def test_wrong_crc_given_is_trusted_over_reading() -> None:
    # The CRC-32 a wrapper gives fills the records without reading it; a
    # read of the whole member that finds another one ends the archive short
    # (tests/test_audit7_archive.py) rather than send a wrong CRC-32.
    member = CountingFile(b"abc", name="a")
    member.crc32 = 1234
    archive = ArchiveFile([member])
    assert archive.size is not None
    tail = b"".join(archive.chunks(start=archive.size - 22 - 47))
    assert tail[16:20] == (1234).to_bytes(4, "little")
    assert member.bytes_read == 0
    data = b"".join(ArchiveFile([member]).chunks())
    assert len(data) < archive.size


# -- the view ------------------------------------------------------------------


def test_view_sends_a_stored_archive_with_exact_length() -> None:
    app = make_app(lambda: [VirtualFile(b"one", name="1.txt", modified_time=NEW)])
    with app.test_client().get("/zip") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "application/zip"
        assert (
            rv.headers["Content-Disposition"] == 'attachment; filename="download.zip"'
        )
        assert rv.headers["Accept-Ranges"] == "bytes"
        assert rv.headers["Last-Modified"] == http_date(NEW)
        assert rv.headers["ETag"].startswith('"')
        assert int(rv.headers["Content-Length"]) == len(rv.data)
        assert unzip(rv.data) == {"1.txt": b"one"}


def test_view_basename_names_the_archive() -> None:
    app = make_app(lambda: [], basename="reports.zip")
    with app.test_client().get("/zip") as rv:
        assert 'filename="reports.zip"' in rv.headers["Content-Disposition"]
        assert unzip(rv.data) == {}


def test_get_members_file_not_found_is_404() -> None:
    def missing() -> t.Any:
        raise FileNotFound("no such folder")

    with make_app(missing).test_client().get("/zip") as rv:
        assert rv.status_code == 404


def test_missing_path_member_is_404(tmp_path: pathlib.Path) -> None:
    app = make_app(lambda: [PathFile(tmp_path / "nope")])
    with app.test_client().get("/zip") as rv:
        assert rv.status_code == 404


def test_head_reads_no_member() -> None:
    members = counting_members([1000, 2000])
    app = make_app(lambda: members)
    with app.test_client().head("/zip") as rv:
        assert rv.status_code == 200
        assert (
            int(rv.headers["Content-Length"])
            == ArchiveFile(counting_members([1000, 2000])).size
        )
        assert rv.data == b""
    assert [m.opens for m in members] == [0, 0]
    assert [m.closes for m in members] == [1, 1]


def test_if_none_match_gives_304_without_reading() -> None:
    app = make_app(lambda: counting_members([1000]))
    client = app.test_client()
    with client.get("/zip") as rv:
        etag = rv.headers["ETag"]
    members = counting_members([1000])
    app2 = make_app(lambda: members)
    with app2.test_client().get("/zip", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.data == b""
    assert members[0].opens == 0
    assert members[0].closes == 1


def test_if_match_mismatch_gives_412() -> None:
    app = make_app(lambda: counting_members([10]))
    with app.test_client().get("/zip", headers={"If-Match": '"nope"'}) as rv:
        assert rv.status_code == 412


def test_single_range_gives_206() -> None:
    app = make_app(lambda: counting_members([5000, 7000], crc=True))
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
        etag = rv.headers["ETag"]
    with client.get("/zip", headers={"Range": "bytes=100-4999"}) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Range"] == f"bytes 100-4999/{len(whole)}"
        assert rv.data == whole[100:5000]
    with client.get("/zip", headers={"Range": "bytes=100-", "If-Range": etag}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[100:]
    with client.get("/zip", headers={"Range": "bytes=100-", "If-Range": '"old"'}) as rv:
        assert rv.status_code == 200
        assert rv.data == whole


def test_multipart_ranges() -> None:
    app = make_app(lambda: counting_members([5000, 7000], crc=True))
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
    with client.get("/zip", headers={"Range": "bytes=0-9,6000-6009,-5"}) as rv:
        assert rv.status_code == 206
        assert rv.mimetype == "multipart/byteranges"
        body = rv.data
    for start, stop in ((0, 10), (6000, 6010), (len(whole) - 5, len(whole))):
        assert f"bytes {start}-{stop - 1}/{len(whole)}".encode() in body
        assert whole[start:stop] in body


def test_compressed_view_has_no_length_and_ignores_range() -> None:
    app = make_app(lambda: counting_members([50_000]), compress=True)
    with app.test_client().get("/zip", headers={"Range": "bytes=0-9"}) as rv:
        assert rv.status_code == 200
        assert "Content-Length" not in rv.headers
        assert "Accept-Ranges" not in rv.headers
        assert unzip(rv.data) == {"m0.bin": pattern(50_000, 0)}


def test_view_closes_every_member() -> None:
    members = counting_members([100, 200])
    app = make_app(lambda: members)
    with app.test_client().get("/zip") as rv:
        assert unzip(rv.data)
    assert [m.closes for m in members] == [1, 1]
    assert [m.open_handles for m in members] == [0, 0]


# -- remote members ----------------------------------------------------------------


class _Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    #: path -> (body, ETag); changed by tests between requests.
    files: dict[str, tuple[bytes, str]]
    #: (method, path, If-Match) of every request, in order.
    requests: list[tuple[str, str, str | None]]

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # a member's first answer is dropped unread: expected


class _UpstreamHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Upstream

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def do_GET(self) -> None:
        body, etag = self.server.files[self.path]
        if_match = self.headers.get("If-Match")
        self.server.requests.append((self.command, self.path, if_match))
        if if_match is not None and if_match != f'"{etag}"':
            # RFC 9110 §13.1.1: the file changed.
            body = b""
            self.send_response(412)
        else:
            self.send_response(200)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Last-Modified", http_date(OLD))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            try:
                self.wfile.write(body)
            except OSError:
                self.close_connection = True

    do_HEAD = do_GET


@pytest.fixture(scope="module")
def upstream() -> cabc.Iterator[_Upstream]:
    pytest.importorskip("urllib3", reason="HTTPFile needs 'urllib3'")
    server = _Upstream(("127.0.0.1", 0), _UpstreamHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        _pool().clear()  # keep-alive connections to the stopped server


REMOTE = [pattern(30_000 + i, i) for i in range(5)]


@pytest.fixture
def remote(upstream: _Upstream) -> cabc.Iterator[_Upstream]:
    upstream.files = {f"/f{i}": (body, f"v{i}") for i, body in enumerate(REMOTE)}
    upstream.requests = []
    yield upstream
    _pool().clear()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many upstream answers are held now, and the most at once."""
    count = {"open": 0, "peak": 0}
    real_open, real_close = http_module._open, http_module._close

    def opening(*args: t.Any, **kwargs: t.Any) -> t.Any:
        response = real_open(*args, **kwargs)
        count["open"] += 1
        count["peak"] = max(count["peak"], count["open"])
        return response

    def closing(response: t.Any, *, reuse: bool) -> None:
        count["open"] -= 1
        real_close(response, reuse=reuse)

    monkeypatch.setattr(http_client, "_open", opening)
    # _close is looked up by the client (redirects) and by HTTPFile.
    monkeypatch.setattr(http_client, "_close", closing)
    monkeypatch.setattr(http_file, "_close", closing)
    return count


def remote_members(server: _Upstream) -> cabc.Iterator[HTTPFile]:
    port = server.server_address[1]
    for i in range(len(REMOTE)):
        url = f"http://127.0.0.1:{port}/f{i}"
        yield HTTPFile(url, allowed_hosts=["127.0.0.1"], timeout=5)


def test_remote_members_hold_one_connection_at_a_time(
    remote: _Upstream, connections: dict[str, int]
) -> None:
    app = make_app(lambda: remote_members(remote))
    with app.test_client().get("/zip") as rv:
        assert rv.status_code == 200
        assert int(rv.headers["Content-Length"]) == len(rv.data)
        assert unzip(rv.data) == {f"f{i}": body for i, body in enumerate(REMOTE)}
    assert connections == {"open": 0, "peak": 1}
    # Headers first (the connection let go at once), then the body, asked
    # for again on the condition that it is the same file.
    assert remote.requests == [("GET", f"/f{i}", None) for i in range(len(REMOTE))] + [
        ("GET", f"/f{i}", f'"v{i}"') for i in range(len(REMOTE))
    ]


def test_head_of_remote_members_reads_no_body(
    remote: _Upstream, connections: dict[str, int]
) -> None:
    app = make_app(lambda: remote_members(remote))
    client = app.test_client()
    with client.head("/zip") as rv:
        assert rv.status_code == 200
        assert rv.data == b""
        size = int(rv.headers["Content-Length"])
    with client.get("/zip") as rv:
        assert len(rv.data) == size
    assert connections == {"open": 0, "peak": 1}
    # HEAD: one request a member for its headers; no body asked for.
    assert remote.requests[: len(REMOTE)] == [
        ("GET", f"/f{i}", None) for i in range(len(REMOTE))
    ]
    assert len(remote.requests) == 3 * len(REMOTE)


def test_range_of_remote_members_asks_for_the_members_it_covers(
    remote: _Upstream, connections: dict[str, int]
) -> None:
    app = make_app(lambda: remote_members(remote))
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
        etag = rv.headers["ETag"]
    start = whole.index(REMOTE[2]) + 1000
    remote.requests = []
    headers = {"Range": f"bytes={start}-{start + 99}", "If-Range": etag}
    with client.get("/zip", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[start : start + 100]
    assert remote.requests[len(REMOTE) :] == [("GET", "/f2", '"v2"')]
    assert connections["open"] == 0


def test_remote_member_changed_before_its_body_cuts_the_archive_short(
    remote: _Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    def members() -> cabc.Iterator[HTTPFile]:
        for i, member in enumerate(remote_members(remote)):
            if i == 1:
                # Changed between its headers and its body.
                remote.files["/f1"] = (b"?" * len(REMOTE[1]), "v1-new")
            yield member

    app = make_app(members)
    with app.test_client().get("/zip") as rv:
        size = int(rv.headers["Content-Length"])
        data = rv.data
    assert len(data) < size
    assert REMOTE[0] in data
    assert b"?" * 1000 not in data
    assert "changed since its headers were read" in caplog.text


# -- rows ------------------------------------------------------------------------


class _Base(DeclarativeBase):
    pass


class Report(_Base):
    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str]
    stored: Mapped[ColumnFile | None] = mapped_column(FileColumn())
    content: Mapped[bytes | None]
    crc32: Mapped[int | None]


class SelectedReports(ZipDownloadView, ObjectDownloadView):
    """The recipe of docs/archives.rst: a ZIP of the rows picked by ``?id=``."""

    model = Report
    file_field = "stored"
    basename_field = "filename"
    crc32_field = "crc32"
    basename = "reports.zip"

    def get_members(self) -> list[DownloadFile]:
        ids = request.args.getlist("id", type=int)
        query = self.get_query().where(Report.id.in_(ids)).order_by(Report.id)
        rows = self.get_session().scalars(query)
        return [self.file_from_object(row) for row in rows]


@pytest.fixture
def rows_app(tmp_path: pathlib.Path) -> cabc.Iterator[Flask]:
    root = tmp_path / "files"
    root.mkdir()
    app = Flask("rows_app")
    app.config.update(
        TESTING=True,
        DOWNLOAD_ROOT=str(root),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'db.sqlite'}",
    )
    db = SQLAlchemy(model_class=_Base)
    db.init_app(app)
    app.add_url_rule("/reports.zip", view_func=SelectedReports.as_view("reports"))
    app.add_url_rule(
        "/blobs.zip",
        view_func=SelectedReports.as_view("blobs", file_field="content"),
    )
    with app.app_context():
        db.create_all()
        for i in range(1, 4):
            content = pattern(50_000 + i, i)
            (root / f"r{i}.bin").write_bytes(content)
            db.session.add(
                Report(
                    id=i,
                    filename=f"report {i}.bin",
                    stored=ColumnFile(f"r{i}.bin"),
                    content=content,
                    crc32=zlib.crc32(content) if i != 3 else None,
                )
            )
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("url", ["/reports.zip", "/blobs.zip"])
def test_zip_of_selected_rows(rows_app: Flask, url: str) -> None:
    with rows_app.test_client().get(f"{url}?id=1&id=3&id=99") as rv:
        assert rv.status_code == 200
        assert 'filename="reports.zip"' in rv.headers["Content-Disposition"]
        assert unzip(rv.data) == {
            "report 1.bin": pattern(50_001, 1),
            "report 3.bin": pattern(50_003, 3),
        }


def test_crc32_field_fills_the_wrappers(rows_app: Flask) -> None:
    with rows_app.test_request_context("/reports.zip?id=1&id=2&id=3"):
        members = SelectedReports().get_members()
        assert [m.crc32 for m in members] == [
            zlib.crc32(pattern(50_001, 1)),
            zlib.crc32(pattern(50_002, 2)),
            None,
        ]
        for member in members:
            member.close()


def test_range_of_central_directory_reads_no_row_file_with_crc32(
    rows_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = rows_app.test_client()
    with client.get("/reports.zip?id=1&id=2") as rv:
        whole = rv.data
    opened: list[str] = []
    original = PathFile.open

    def spy(self: PathFile) -> t.IO[bytes]:
        opened.append(self.path)
        return original(self)

    monkeypatch.setattr(PathFile, "open", spy)
    with client.get("/reports.zip?id=1&id=2", headers={"Range": "bytes=-100"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[-100:]
    assert opened == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_local_members_hold_no_descriptor_but_the_one_being_read(
    tmp_path: pathlib.Path,
) -> None:
    paths = []
    for i in range(300):
        paths.append(tmp_path / f"f{i}.txt")
        paths[-1].write_bytes(b"%d" % i)

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    # Garbage of earlier tests holding a descriptor (in a reference cycle)
    # is closed now, not when the collector happens to run below.
    gc.collect()
    before = open_fds()
    archive = ArchiveFile(PathFile(path) for path in paths)
    assert open_fds() == before
    most = 0
    data = b""
    with archive.open() as handle:
        while chunk := handle.read(100):
            most = max(most, open_fds() - before)
            data += chunk
    archive.close()
    assert open_fds() == before
    assert most == 1
    assert unzip(data) == {f"f{i}.txt": b"%d" % i for i in range(300)}


def test_archives_are_never_offloaded(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"alpha")
    app = make_app(lambda: (PathFile(tmp_path / n) for n in ["a.txt"]))
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(tmp_path), "destination_url": "/protected/"}
        ],
    )
    FlaskDownload(app)
    with app.test_client().get("/zip") as rv:
        assert rv.status_code == 200
        assert "X-Accel-Redirect" not in rv.headers
        assert unzip(rv.data) == {"a.txt": b"alpha"}


class Vanished(DownloadFile):
    """A wrapper that finds its file gone when asked for its size (as a
    ``FileColumn`` value resolves lazily)."""

    closes = 0

    @property  # type: ignore[override]
    def size(self) -> int:
        raise FileNotFound("the file is gone")

    def close(self) -> None:
        self.closes += 1


def test_missing_member_from_a_generator_closes_the_others() -> None:
    made = counting_members([10, 20])
    vanished = Vanished()
    after = counting_members([30])

    def members() -> cabc.Iterator[DownloadFile]:
        yield from made
        yield vanished
        yield from after

    with make_app(members).test_client().get("/zip") as rv:
        assert rv.status_code == 404
    assert [m.closes for m in made] == [1, 1]
    assert vanished.closes == 1
    assert [m.closes for m in after] == [0]  # never made use of


def test_missing_member_of_a_list_closes_every_member() -> None:
    made = counting_members([10])
    vanished = Vanished()
    after = counting_members([30])
    with make_app(lambda: [*made, vanished, *after]).test_client().get("/zip") as rv:
        assert rv.status_code == 404
    assert made[0].closes >= 1
    assert vanished.closes == 1
    assert after[0].closes == 1


def test_send_download_serves_an_archive() -> None:
    app = Flask("send_archive")

    @app.route("/bundle.zip")
    def bundle() -> t.Any:
        members = [VirtualFile(b"one", name="1.txt"), VirtualFile(b"two", name="2.txt")]
        return send_download(ArchiveFile(members, name="bundle.zip"))

    client = app.test_client()
    with client.get("/bundle.zip") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "application/zip"
        assert 'filename="bundle.zip"' in rv.headers["Content-Disposition"]
        assert unzip(rv.data) == {"1.txt": b"one", "2.txt": b"two"}
        whole = rv.data
    with client.get("/bundle.zip", headers={"Range": "bytes=10-"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[10:]


# -- CRC-32s remembered, and ranges that would read too much for them ---------


def test_crcs_read_once_are_remembered_for_the_same_files(
    tmp_path: pathlib.Path,
) -> None:
    sizes = [20_000, 30_000]
    paths = []
    for index, size in enumerate(sizes):
        paths.append(tmp_path / f"m{index}.bin")
        paths[-1].write_bytes(pattern(size, index))

    def archive() -> ArchiveFile:
        return ArchiveFile([PathFile(path) for path in paths])

    first = archive()
    assert first._crcs == {}
    whole = b"".join(first.chunks())
    first.close()
    # Another archive of the same files: their CRC-32s are known at once.
    again = archive()
    assert again._crcs == {
        0: zlib.crc32(pattern(20_000, 0)),
        1: zlib.crc32(pattern(30_000, 1)),
    }
    start = central_records(whole)[0][0]
    assert b"".join(again.chunks(start=start)) == whole[start:]
    again.close()
    # Rewritten in place, same size, its mtime put back (cp -p, rsync -t):
    # the ctime tells, and the CRC-32 is read again.
    stat = paths[1].stat()
    paths[1].write_bytes(pattern(30_000, 9))
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = archive()
    assert set(changed._crcs) == {0}
    changed.close()


def test_crcs_are_never_remembered_for_content_without_a_reliable_name() -> None:
    members = counting_members([20_000])
    for member in members:
        member.url = "test://same/place"  # a wrapper of one's own: not trusted
    b"".join(ArchiveFile(members).chunks())
    again = counting_members([20_000])
    for member in again:
        member.url = "test://same/place"
    assert ArchiveFile(again)._crcs == {}


def test_a_few_bytes_never_make_the_server_read_every_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside review: ``Range: bytes=-1500`` of 20 members of 100 MiB read
    2,000 MiB for their CRC-32s. A range that would read more than
    ``wasted_read_budget`` plus eight times its length for CRC-32s gets the
    whole archive (200); one whose reads are its own data gets its 206."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1000)
    sizes = [20_000, 30_000, 40_000]
    members: list[CountingFile] = []

    class Zip(ZipDownloadView):
        def get_members(self) -> list[CountingFile]:
            members[:] = counting_members(sizes)
            return members

    app = Flask(__name__)
    app.add_url_rule("/z", view_func=Zip.as_view("z"))
    client = app.test_client()
    with client.get("/z") as rv:
        whole = rv.get_data()
    with client.get("/z", headers={"Range": "bytes=-100"}) as rv:
        assert rv.status_code == 200
        assert rv.get_data() == whole
    # The data of the second member: read whole, its CRC-32 on the way.
    data = whole.index(pattern(sizes[1], 1))
    span = f"bytes={data}-{data + sizes[1] + 15}"  # with its descriptor
    with client.get("/z", headers={"Range": span}) as rv:
        assert rv.status_code == 206
        assert rv.get_data() == whole[data : data + sizes[1] + 16]
    assert [m.bytes_read for m in members] == [0, sizes[1], 0]
    # Within the budget: the CRC-32 of the small first member only.
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 25_000)
    first_crc = central_records(whole)[0][0] + 16
    with client.get(
        "/z", headers={"Range": f"bytes={first_crc}-{first_crc + 3}"}
    ) as rv:
        assert rv.status_code == 206
        assert rv.get_data() == whole[first_crc : first_crc + 4]
    assert [m.bytes_read for m in members] == [sizes[0], 0, 0]


def test_bytes_skipped_in_a_member_that_cannot_seek_count_against_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: 11 bytes at the end of a 50 MiB member that cannot seek read
    the 50 MiB before them, and only CRC-32 reads were counted."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1000)
    content = pattern(200_000, 7)

    def members() -> list[t.Any]:
        member = StreamedFile(content, "s")
        member.crc32 = zlib.crc32(content)  # no CRC-32 read is needed
        return [member]

    app = make_app(members)
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
    end = whole.index(content) + len(content)
    with client.get("/zip", headers={"Range": f"bytes={end - 11}-{end - 1}"}) as rv:
        assert rv.status_code == 200
        assert rv.data == whole
    start = whole.index(content)
    with client.get("/zip", headers={"Range": f"bytes={start}-{start + 99}"}) as rv:
        assert rv.status_code == 206
        assert rv.data == content[:100]


def test_storage_files_without_a_store_etag_are_not_remembered() -> None:
    """Review: a DirFileSystem's URL drops its folder and an mtime-made tag
    is whole seconds: two tenants' files could share a CRC-32 entry."""
    fsspec = pytest.importorskip("fsspec")
    from fsspec.implementations.dirfs import DirFileSystem

    from flask_download import StorageFile
    from flask_download.archive import _crc_key

    memory = fsspec.filesystem("memory", skip_instance_cache=True)
    memory.store = {}
    memory.pseudo_dirs = [""]
    memory.pipe("/home/alice/pin.txt", b"12345")
    alice = DirFileSystem("/home/alice", fs=memory)
    file = StorageFile(alice, "pin.txt")
    assert file.etag is not None  # made from its time and size
    assert _crc_key(file) is None


def test_the_allowance_counts_only_bytes_sent_before_the_wasted_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: one CRC byte of a large member, then all of another member's
    data, earned the allowance for that data: the server read the large
    member before sending anything, and the client could hang up. A resume
    (the data first, the central directory last) keeps its allowance."""
    monkeypatch.setattr(ArchiveFile, "wasted_read_budget", 1000)
    sizes = [300_000, 48_000]

    app = make_app(lambda: counting_members(sizes))
    client = app.test_client()
    with client.get("/zip") as rv:
        whole = rv.data
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        first, second = z.infolist()
        a_crc = first.header_offset + len(first.FileHeader()) + first.file_size + 4
        b_data = second.header_offset + len(second.FileHeader())
    spec = f"bytes={a_crc}-{a_crc + 3},{b_data}-{b_data + sizes[1] - 1}"
    with client.get("/zip", headers={"Range": spec}) as rv:
        assert rv.status_code == 200
    # A resume from the second member on: its data is sent before the
    # central directory needs the first member's CRC-32.
    with client.get("/zip", headers={"Range": f"bytes={b_data}-"}) as rv:
        assert rv.status_code == 206
        assert rv.data == whole[b_data:]


def test_an_archive_date_is_no_validator_for_if_range() -> None:
    """Final review: the archive's Last-Modified is its newest member's; a
    member replaced by an older file leaves it as it is, and an If-Range on
    it spliced two archives."""
    members = {"b": OLD}

    def make() -> list[t.Any]:
        return [
            VirtualFile(b"new", name="new.txt", modified_time=NEW),
            *(
                VirtualFile(name.encode() * 50, name=f"{name}.txt", modified_time=when)
                for name, when in members.items()
            ),
        ]

    client = make_app(make).test_client()
    with client.get("/zip") as rv:
        first = rv.data
        last_modified = rv.headers["Last-Modified"]
        etag = rv.headers["ETag"]
    members.clear()
    members["c"] = OLD - datetime.timedelta(days=1)
    half = len(first) // 2
    for if_range, status in ((last_modified, 200), (etag, 200)):
        headers = {"Range": f"bytes={half}-", "If-Range": if_range}
        with client.get("/zip", headers=headers) as rv:
            assert rv.headers["Last-Modified"] == last_modified  # unchanged
            assert rv.status_code == status
