"""Attacks on ZIP archives (issue 15): the raw-socket ``sendfile`` path.

:class:`~flask_download.archive.ArchiveResponse` writes member data straight
to the server's socket between the chunks it yields. That is only correct
while the server writes each chunk before asking for the next one; WSGI
middleware that holds the body back (Werkzeug's ``ProfilerMiddleware``,
anything that buffers, compresses or rewrites it) must never see the bytes
overtake the headers or the chunks it holds.
"""

from __future__ import annotations

import collections.abc as cabc
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import time
import typing as t
import unicodedata
import uuid
import zipfile
import zlib

import pytest
from conftest import free_port
from conftest import wait_for_port
from flask import Flask
from werkzeug.middleware.profiler import ProfilerMiddleware

from flask_download import ArchiveFile
from flask_download import PathFile
from flask_download import VirtualFile
from flask_download import ZipDownloadView
from flask_download.archive import safe_member_name

from .conftest import build_request
from .conftest import pipelined
from .conftest import raw_request
from .conftest import start_server
from .conftest import stop_server

MEMBERS = {"a.bin": 300_000, "b.bin": 5, "c.bin": 200_000}


class KnownCRC(PathFile):
    """A local file whose CRC-32 is known: its data goes out with sendfile."""

    @property
    def crc32(self) -> int | None:  # type: ignore[override]
        with open(self.path, "rb") as handle:  # type: ignore[arg-type]
            return zlib.crc32(handle.read())


def _write_members(root: pathlib.Path) -> None:
    for i, (name, size) in enumerate(MEMBERS.items()):
        (root / name).write_bytes(bytes((j * 7 + i) % 251 for j in range(size)))


def _members(root: str) -> list[t.Any]:
    return [KnownCRC(os.path.join(root, name)) for name in MEMBERS]


def _buffering(app: t.Any) -> t.Any:
    """Middleware that reads the whole body before the server writes any."""

    def middleware(environ: t.Any, start_response: t.Any) -> t.Any:
        iterable = app(environ, start_response)
        try:
            body = b"".join(iterable)
        finally:
            getattr(iterable, "close", lambda: None)()
        return [body]

    return middleware


def _rewriting(app: t.Any) -> t.Any:
    """Middleware that rewrites the headers and passes the chunks on."""

    def middleware(environ: t.Any, start_response: t.Any) -> t.Any:
        def wrapped(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
            headers = [*headers, ("X-Rewritten", "1")]
            return start_response(status, headers, exc_info)

        return app(environ, wrapped)

    return middleware


def make_attack_app(root: str) -> t.Any:
    """The app both servers run: one archive, plain and behind middleware."""
    app = Flask("archive_attacks")

    class Zip(ZipDownloadView):
        def get_members(self) -> t.Any:
            return _members(root)

    class Shrinking(ZipDownloadView):
        """A member cut to 1,000 bytes after the layout announced 200,000."""

        def get_members(self) -> t.Any:
            return [KnownCRC(os.path.join(root, "a.bin")), KnownCRC(self._path)]

        def get_file(self) -> t.Any:
            self._path = os.path.join(root, f"shrink-{uuid.uuid4().hex}.bin")
            with open(self._path, "wb") as handle:
                handle.write(b"s" * 200_000)
            archive = super().get_file()
            os.truncate(self._path, 1000)
            return archive

    app.add_url_rule("/a.zip", view_func=Zip.as_view("zip"))
    app.add_url_rule("/shrink.zip", view_func=Shrinking.as_view("shrink"))
    plain = app.wsgi_app
    profiled = ProfilerMiddleware(plain, stream=io.StringIO())
    buffered = _buffering(plain)
    rewritten = _rewriting(plain)

    def dispatch(environ: t.Any, start_response: t.Any) -> t.Any:
        kind = environ.get("QUERY_STRING", "")
        wrapped = {"profiled": profiled, "buffered": buffered}.get(kind)
        if kind == "rewritten":
            wrapped = rewritten
        return (wrapped or plain)(environ, start_response)

    app.wsgi_app = dispatch  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def attack_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("archive_attacks")
    _write_members(root)
    return root


@pytest.fixture(scope="module")
def expected(attack_root: pathlib.Path) -> bytes:
    archive = ArchiveFile(_members(os.fspath(attack_root)), name="a.zip")
    return b"".join(archive.chunks())


@pytest.fixture(scope="module")
def werkzeug_port(attack_root: pathlib.Path) -> cabc.Iterator[int]:
    live = start_server(make_attack_app(os.fspath(attack_root)))
    try:
        yield live.port
    finally:
        stop_server(live)


@pytest.fixture(scope="module")
def gunicorn_port(
    attack_root: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> cabc.Iterator[int]:
    pytest.importorskip("gunicorn")
    here = pathlib.Path(__file__).parent
    app_dir = tmp_path_factory.mktemp("archive_attacks_gunicorn")
    (app_dir / "archive_attack_app.py").write_text(
        textwrap.dedent(
            f"""
            from tests.security.test_archive_attacks import make_attack_app
            app = make_attack_app({os.fspath(attack_root)!r})
            """
        )
    )
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.fspath(app_dir), os.fspath(here.parent.parent), os.fspath(here.parent)]
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=1",
            "--worker-class=gthread",
            "--threads=2",
            f"--bind=127.0.0.1:{port}",
            f"--access-logfile={app_dir / 'access.log'}",
            "--access-logformat=%(U)s?%(q)s %(b)s",
            "archive_attack_app:app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port(port, proc):
            pytest.fail("gunicorn did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["werkzeug", "gunicorn"])
def port(request: pytest.FixtureRequest) -> int:
    return t.cast(int, request.getfixturevalue(f"{request.param}_port"))


@pytest.mark.parametrize("middleware", ["", "profiled", "buffered", "rewritten"])
def test_sendfile_never_overtakes_middleware(
    port: int, middleware: str, expected: bytes
) -> None:
    target = f"/a.zip?{middleware}" if middleware else "/a.zip"
    response = raw_request(port, build_request(target))
    assert response.status == 200, response
    assert response.body == expected
    with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(MEMBERS)


# -- member names ---------------------------------------------------------------

HOSTILE_NAMES = [
    "../../escape.txt",
    "/etc/escape.txt",
    "C:\\Windows\\escape.txt",
    "..\\..\\escape.txt",
    # Fullwidth and compatibility forms that NFKC or Windows "best fit"
    # turn into "../" (WorstFit).
    "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fescape.txt",
    "\u2025\uff0fescape.txt",
    "..\u2215..\u2215escape.txt",
    "\ufe68..\ufe68escape.txt",
    "a\u202egpj.exe",
    "a\u061cb.txt",
    "CON",
    "nul.txt",
    "x" * 70_000 + ".txt",
    ("deep" * 60 + "/") * 100 + "leaf.txt",
]


def _hostile_archive(tmp_path: pathlib.Path) -> pathlib.Path:
    archive = ArchiveFile(
        [(name, VirtualFile(f"{i}\n".encode())) for i, name in enumerate(HOSTILE_NAMES)]
    )
    path = tmp_path / "hostile.zip"
    path.write_bytes(b"".join(archive.chunks()))
    return path


@pytest.mark.parametrize(
    "name",
    HOSTILE_NAMES,
    ids=[f"name{i}" for i in range(len(HOSTILE_NAMES))],
)
def test_member_names_are_relative_plain_and_short(name: str) -> None:
    cleaned = safe_member_name(name)
    assert not cleaned.startswith("/")
    segments = cleaned.split("/")
    assert ".." not in segments and "." not in segments
    for segment in segments:
        assert segment and len(segment.encode()) <= 255
        assert ":" not in segment and "\\" not in segment
        # No character that NFKC folds into path punctuation is left.
        for char in segment:
            if not char.isascii():
                folded = unicodedata.normalize("NFKC", char)
                assert not set(folded) <= set("/\\.:"), repr(char)
            assert unicodedata.category(char) not in ("Cc", "Cf"), repr(char)
    assert len(cleaned.encode()) <= 4096


def test_duplicates_differing_by_composition_are_numbered() -> None:
    archive = ArchiveFile(
        [
            ("e\u0301t\u00e9.txt", VirtualFile(b"1")),
            ("\u00e9t\u00e9.txt", VirtualFile(b"2")),
            ("\u00c9T\u00c9.TXT", VirtualFile(b"3")),
        ]
    )
    data = b"".join(archive.chunks())
    with zipfile.ZipFile(io.BytesIO(data)) as opened:
        names = opened.namelist()
    keys = {unicodedata.normalize("NFC", n).casefold() for n in names}
    assert len(keys) == 3, names


@pytest.mark.parametrize(
    "command",
    [
        ["python"],
        ["unzip", "-o", "-q", "{zip}", "-d", "{dest}"],
        ["bsdtar", "-xf", "{zip}", "-C", "{dest}"],
        ["7z", "x", "-y", "-o{dest}", "{zip}"],
    ],
    ids=["zipfile", "unzip", "bsdtar", "7z"],
)
def test_hostile_names_extract_inside_the_folder(
    command: list[str], tmp_path: pathlib.Path
) -> None:
    archive = _hostile_archive(tmp_path)
    dest = tmp_path / "out" / "inside"
    dest.mkdir(parents=True)
    if command == ["python"]:
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(dest)
    else:
        if shutil.which(command[0]) is None:
            pytest.skip(f"needs {command[0]}")
        args = [a.format(zip=archive, dest=dest) for a in command]
        done = subprocess.run(args, capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
    outside = [
        p
        for p in (tmp_path / "out").rglob("*")
        if not p.is_relative_to(dest) and p != dest
    ]
    assert outside == []
    extracted = sorted(p for p in dest.rglob("*") if p.is_file())
    assert len(extracted) == len(HOSTILE_NAMES)
    contents = sorted(int(p.read_bytes()) for p in extracted)
    assert contents == list(range(len(HOSTILE_NAMES)))


def test_a_body_cut_short_closes_the_connection(gunicorn_port: int) -> None:
    """A member that shrank ends the body before its Content-Length: the
    connection must close there, never carry the next (pipelined) response
    as if it were the rest of this body."""
    received = pipelined(gunicorn_port, "/shrink.zip", second="/a.zip")
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    assert len(body) < length  # cut short...
    assert b"HTTP/1.1 200" not in body  # ...and nothing after it


def test_gunicorn_still_sends_members_with_sendfile(
    gunicorn_port: int, tmp_path_factory: pytest.TempPathFactory, expected: bytes
) -> None:
    """Without middleware, member data bypasses gunicorn's count (sendfile);
    behind the profiler, gunicorn writes (and counts) every byte."""
    for query in ("plain", "profiled"):
        target = "/a.zip" if query == "plain" else "/a.zip?profiled"
        response = raw_request(gunicorn_port, build_request(target))
        assert response.body == expected
    log = next(tmp_path_factory.getbasetemp().glob("archive_attacks_gunicorn*"))
    deadline = time.monotonic() + 5
    counts: dict[str, int] = {}
    while time.monotonic() < deadline and len(counts) < 2:
        for line in (log / "access.log").read_text().splitlines():
            target, _, count = line.rpartition(" ")
            counts[target] = int(count) if count.isdigit() else 0
        time.sleep(0.05)
    assert counts["/a.zip?profiled"] == len(expected)
    assert counts["/a.zip?"] < sum(MEMBERS.values()) // 10
