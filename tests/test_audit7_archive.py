"""Contract audit 7e: DESIGN §8 (streaming ZIP archives), read literally.

- A CRC-32 a wrapper gives (``DownloadFile.crc32``, a column, say) that is
  not that of the bytes read never goes out in a whole-looking archive: a
  read of the member from its start checks it, and the body ends short.
- A ``PathFile`` subclass whose ``open()`` transforms the bytes
  (decrypting, decompressing) is read through its stream in an archive
  too, never sent from its descriptor with ``sendfile`` (Werkzeug's and
  gunicorn's sockets).
- A ``(None, wrapper)`` pair is named by the wrapper, as a bare wrapper is.
- A member's ``size`` is checked as a download of it alone checks it
  (``True``, ``4.0``, ``-1`` refused, not a 1-byte member or a
  ``struct.error``).
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import io
import os
import pathlib
import shutil
import subprocess
import time
import typing as t
import zipfile
import zlib

import fsspec
import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask

from flask_download import ArchiveFile
from flask_download import ConfigurationError
from flask_download import download_finished
from flask_download import DownloadFile
from flask_download import PathFile
from flask_download import StorageFile
from flask_download import VirtualFile
from flask_download import ZipDownloadView

#: What the transforming member's file holds once decoded: large enough that
#: the archive's body is several chunks.
PLAIN = bytes(range(256)) * 1024 + b"tail of the plain bytes"
KEY = 0x5A


def xor(data: bytes) -> bytes:
    return bytes(byte ^ KEY for byte in data)


class _Decoding(io.RawIOBase):
    """A reader that decodes the file it wraps, keeping its ``fileno()``
    (as ``gzip.GzipFile`` and many decrypting readers do) and a ``"rb"``
    mode."""

    mode = "rb"

    def __init__(self, raw: t.IO[bytes]) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buffer: t.Any) -> int:
        data = xor(self._raw.read(len(buffer)))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


class Decoded(PathFile):
    """A PathFile whose ``open()`` gives the decoded bytes of its file; its
    CRC-32 is that of the decoded bytes when ``crc`` (kept with the file)."""

    def __init__(self, path: str, crc: bool) -> None:
        super().__init__(path)
        if crc:
            self.crc32 = zlib.crc32(PLAIN)

    def open(self) -> t.IO[bytes]:
        return t.cast(t.IO[bytes], _Decoding(super().open()))


def make_decoding_app(root: str) -> Flask:
    """``/z/crc`` and ``/z/read``: a ZIP of the decoded file, with its
    CRC-32 given or read (gunicorn imports this by name)."""
    app = Flask("audit7e")

    class DecodedZip(ZipDownloadView):
        def get_members(self) -> list[t.Any]:
            crc = self.kwargs["how"] == "crc"
            path = os.path.join(root, "secret.xor")
            return [("plain.bin", Decoded(path, crc)), VirtualFile(b"x", name="x")]

    app.add_url_rule("/z/<how>", view_func=DecodedZip.as_view("z"))
    return app


@pytest.fixture(scope="module")
def decoding_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("audit7e")
    (root / "secret.xor").write_bytes(xor(PLAIN))
    return root


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def decoding_server(
    request: pytest.FixtureRequest, decoding_root: pathlib.Path
) -> cabc.Iterator[str]:
    if request.param == "werkzeug":
        with running_werkzeug(make_decoding_app(os.fspath(decoding_root))) as url:
            yield url
        return
    app = f"test_audit7_archive:make_decoding_app({os.fspath(decoding_root)!r})"
    with running_gunicorn(app) as url:
        yield url


def fetch(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        length = int(response.headers["Content-Length"])
        body = response.read()
        assert len(body) == length
        return response.status, body
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["crc", "read"])
def test_a_transforming_pathfile_member_is_never_sent_from_its_descriptor(
    decoding_server: str, how: str
) -> None:
    # "read": the first download reads the member for its CRC-32, which the
    # process then remembers; the next ones know it as with "crc". Either
    # way, the server's socket is there for sendfile: the member's bytes
    # are still the decoded ones.
    for _ in range(3):
        status, body = fetch(decoding_server, f"/z/{how}")
        assert status == 200
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert archive.testzip() is None
            assert archive.read("plain.bin") == PLAIN
            assert archive.read("x") == b"x"


# -- a CRC-32 given that is not the member's ----------------------------------

STALE_CRC = zlib.crc32(b"what the file held when its CRC-32 was stored")
CONTENT = b"the bytes the member has now " * 4000


def stale_member(kind: str, tmp_path: pathlib.Path) -> DownloadFile:
    """A wrapper of ``CONTENT`` whose ``crc32`` is another file's (a column
    not updated when the file was replaced, say)."""
    member: DownloadFile
    if kind == "path":
        (tmp_path / "m.bin").write_bytes(CONTENT)
        member = PathFile(tmp_path / "m.bin")
    elif kind == "storage":
        fs = fsspec.filesystem("memory")
        fs.pipe("/audit7e/m.bin", CONTENT)
        member = StorageFile(fs, "/audit7e/m.bin")
    else:
        member = VirtualFile(CONTENT, name="m.bin")
    member.crc32 = STALE_CRC
    return member


def stale_app(tmp_path: pathlib.Path, kind: str) -> Flask:
    app = Flask("audit7e_stale")

    class StaleZip(ZipDownloadView):
        def get_members(self) -> list[t.Any]:
            return [
                VirtualFile(b"first", name="first.txt"),
                stale_member(kind, tmp_path),
                VirtualFile(b"last", name="last.txt"),
            ]

    app.add_url_rule("/z", view_func=StaleZip.as_view("z"))
    return app


@pytest.mark.parametrize("kind", ["path", "storage", "virtual"])
@pytest.mark.parametrize("headers", [{}, {"Range": "bytes=0-"}])
def test_a_crc32_given_that_is_not_the_members_cuts_the_archive_short(
    tmp_path: pathlib.Path, kind: str, headers: dict[str, str]
) -> None:
    app = stale_app(tmp_path, kind)
    finished: list[tuple[int, bool]] = []

    def receiver(sender: t.Any, bytes_sent: int, completed: bool, **kw: t.Any) -> None:
        finished.append((bytes_sent, completed))

    client = app.test_client()
    with (
        download_finished.connected_to(receiver, app),
        client.get("/z", headers=headers) as rv,
    ):
        assert rv.status_code in (200, 206)
        body = rv.get_data()
        length = int(rv.headers["Content-Length"])
    # Never an archive of the announced length with a wrong CRC-32 in it:
    # the body ends before the member's last bytes.
    assert len(body) < length
    assert finished == [(len(body), False)]


def test_a_crc32_given_that_is_not_the_members_fails_on_the_wire(
    tmp_path: pathlib.Path,
) -> None:
    with running_werkzeug(stale_app(tmp_path, "virtual")) as url:
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", "/z")
            response = conn.getresponse()
            assert response.status == 200
            with pytest.raises(http.client.IncompleteRead):
                response.read()
        finally:
            conn.close()


def test_a_right_crc32_given_is_used_and_checked(tmp_path: pathlib.Path) -> None:
    member = VirtualFile(CONTENT, name="m.bin")
    member.crc32 = zlib.crc32(CONTENT)
    archive = ArchiveFile([member, VirtualFile(b"last", name="last.txt")])
    body = b"".join(archive.chunks())
    assert len(body) == archive.size
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.testzip() is None
        assert z.read("m.bin") == CONTENT


# -- names ---------------------------------------------------------------------


def test_a_pair_named_none_takes_the_wrappers_name() -> None:
    archive = ArchiveFile(
        [
            (None, VirtualFile(b"one", name="report.pdf")),  # type: ignore[list-item]
            ("given/name.txt", VirtualFile(b"two", name="ignored.txt")),
            VirtualFile(b"three", name="report.pdf"),
        ]
    )
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.chunks()))) as z:
        assert z.namelist() == ["report.pdf", "given/name.txt", "report (2).pdf"]
        assert z.read("report.pdf") == b"one"


@pytest.mark.skipif(shutil.which("zipinfo") is None, reason="needs zipinfo")
def test_names_as_design_lists_them_read_by_info_zip(tmp_path: pathlib.Path) -> None:
    given = [
        "dir\\sub\\a.txt",  # backslash -> /
        "/abs.txt",  # no leading /
        "C:\\drive.txt",  # no drive letter
        "./x/../y/./b.txt",  # no . or .. segments
        "e//mpty.txt",  # no empty segments
        "c\x00o\x1bn\ttr\x7fol\x85.txt",  # no control characters
        "dup.txt",
        "dup.txt",  # duplicates -> "name (2).ext"
        "été/ünï.txt",  # UTF-8
    ]
    expected = [
        "dir/sub/a.txt",
        "abs.txt",
        "drive.txt",
        "x/y/b.txt",
        "e/mpty.txt",
        "control.txt",
        "dup.txt",
        "dup (2).txt",
        "été/ünï.txt",
    ]
    archive = ArchiveFile([(n, VirtualFile(b"x")) for n in given])
    path = tmp_path / "names.zip"
    path.write_bytes(b"".join(archive.chunks()))
    listed = subprocess.run(
        ["zipinfo", "-1", os.fspath(path)],
        capture_output=True,
        check=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    ).stdout.decode("utf-8")
    assert listed.splitlines() == expected
    with zipfile.ZipFile(path) as z:
        assert all(info.flag_bits & 0x800 for info in z.infolist())
        assert z.namelist() == expected


# -- member sizes ----------------------------------------------------------------


class Sized(DownloadFile):
    """A wrapper of one's own with whatever ``size`` it says."""

    seekable = True

    def __init__(self, size: t.Any) -> None:
        self.size = size
        self.name = "f.bin"
        self.closed = False

    def open(self) -> t.IO[bytes]:
        return io.BytesIO(b"abc")

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("size", "error"),
    [(True, TypeError), (3.0, TypeError), ("3", TypeError), (-1, ConfigurationError)],
)
def test_member_sizes_are_checked_as_for_a_download_alone(
    size: t.Any, error: type[Exception]
) -> None:
    member = Sized(size)
    with pytest.raises(error, match=r"Sized\.size"):
        ArchiveFile([member])
    assert member.closed


def test_an_integer_like_member_size_is_taken() -> None:
    class Count(int):
        pass

    archive = ArchiveFile([Sized(Count(3))])
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.chunks()))) as z:
        assert z.read("f.bin") == b"abc"


# -- compress=True -------------------------------------------------------------


@pytest.mark.parametrize(
    "members",
    [[], [VirtualFile(b"abc" * 1000, name="a.txt")]],
    ids=["empty", "one member"],
)
def test_a_compressed_archive_has_no_length_and_no_range_even_empty(
    members: list[DownloadFile],
) -> None:
    app = Flask("audit7e_compress")

    class Deflated(ZipDownloadView):
        compress = True

        def get_members(self) -> list[DownloadFile]:
            return members

    app.add_url_rule("/z", view_func=Deflated.as_view("z"))
    client = app.test_client()
    assert ArchiveFile(members, compress=True).size is None
    for headers in ({}, {"Range": "bytes=0-3"}):
        with client.get("/z", headers=headers) as rv:
            assert rv.status_code == 200
            assert "Content-Length" not in rv.headers
            assert "Accept-Ranges" not in rv.headers
            assert "Content-Range" not in rv.headers
            body = rv.get_data()
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            assert z.testzip() is None
            assert len(z.namelist()) == len(members)
    with client.head("/z") as rv:
        assert rv.status_code == 200
        assert "Content-Length" not in rv.headers


# -- hostile names cost linear time ----------------------------------------------
# Member names may come from uploads (a row's original file name): a name of
# many short folders must not cost the server quadratic time. The bounds are
# CPU seconds with a wide margin (the quadratic code took 20 times more).


def cpu_seconds(action: cabc.Callable[[], object]) -> float:
    start = time.process_time()
    action()
    return time.process_time() - start


def test_a_name_of_many_folders_is_cleaned_in_linear_time() -> None:
    name = "a/" * 200_000 + "x.txt"
    archive: list[ArchiveFile] = []
    spent = cpu_seconds(
        lambda: archive.append(ArchiveFile([(name, VirtualFile(b"x"))]))
    )
    assert spent < 5
    with zipfile.ZipFile(io.BytesIO(b"".join(archive[0].chunks()))) as z:
        (kept,) = z.namelist()
    # The deepest folders are kept, within 4,096 UTF-8 bytes.
    assert kept.endswith("a/a/x.txt")
    assert 4000 < len(kept.encode()) <= 4096


def test_many_members_with_names_of_many_folders_are_numbered_in_linear_time() -> None:
    deep = "é/" * 1300
    members = [(f"{deep}{i}.txt", VirtualFile(b"x")) for i in range(40)]
    members += [(f"{deep}0.txt", VirtualFile(b"y"))]  # numbered "0 (2).txt"
    archive: list[ArchiveFile] = []
    spent = cpu_seconds(lambda: archive.append(ArchiveFile(members)))
    assert spent < 3
    with zipfile.ZipFile(io.BytesIO(b"".join(archive[0].chunks()))) as z:
        names = z.namelist()
    assert len(set(names)) == 41
    assert names[-1] == f"{deep}0 (2).txt"
