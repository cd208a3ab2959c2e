"""Symlink swap races against every source that reaches the local disk (#11).

A child process flips names inside the root as fast as it can:

- ``x`` between a regular file and a symbolic link to ``../secret.txt``;
- ``d`` between a directory holding ``f.txt`` and a symbolic link to
  ``../outside`` (whose ``f.txt`` is a secret too).

Meanwhile client threads request both names through each source (the path
view, a ``FileColumn`` row, a ``file://`` storage, a ``DirFileSystem`` over
the local disk) under Werkzeug's threaded server and under gunicorn
(``sendfile``). Every answer must be a 404 or the inside file, whole; not one
byte of a secret, never a 5xx. A check made on a name and an ``open()`` of
the same name later loses this race within a second or two; the confined
opener serves the descriptor it checked, so it cannot.

Each test is bounded: it runs for about a second (at least 150 requests,
at most 5 seconds).
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import time
import typing as t
import uuid

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask

from flask_download import FlaskDownload
from flask_download import PathDownloadView

#: What the secrets outside the root hold; no answer may carry it.
SECRET = b"SECRET-race-0b9c" * 64
#: What the inside files hold.
INSIDE = b"inside, served whole\n" * 32
#: The part of the secret a leak would show, even a short one.
MARKER = b"SECRET-"

MIN_REQUESTS = 150
MIN_SECONDS = 0.8
MAX_SECONDS = 5.0
CLIENTS = 4

# The flipper. Linux's renameat2(RENAME_EXCHANGE) swaps two names atomically
# in one system call, so the names flip every few microseconds: ``x`` with a
# link to the secret, ``d`` with a link to the outside directory (the other
# halves wait in ``spare``, next to the root). Elsewhere, renames.
FLIPPER = textwrap.dedent(
    """
    import ctypes, os, sys
    root, spare = sys.argv[1], sys.argv[2]
    pairs = [
        (os.path.join(root, "x").encode(), os.path.join(spare, "x").encode()),
        (os.path.join(root, "d").encode(), os.path.join(spare, "d").encode()),
    ]
    os.symlink("../secret.txt", os.path.join(spare, "x"))
    os.symlink("../outside", os.path.join(spare, "d"))
    libc = ctypes.CDLL(None, use_errno=True)
    exchange = getattr(libc, "renameat2", None)
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    if exchange is not None and exchange(
        AT_FDCWD, pairs[0][0], AT_FDCWD, pairs[0][1], RENAME_EXCHANGE
    ) == 0:
        while True:
            for a, b in pairs:
                exchange(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
    held = os.path.join(spare, "held").encode()
    while True:  # no renameat2: three renames per flip
        for a, b in pairs:
            os.rename(a, held)
            os.rename(b, a)
            os.rename(held, b)
    """
)


def make_race_app(base: str) -> Flask:
    """The app under attack: one route per source, all on ``base/root``."""
    import sqlalchemy as sa
    import sqlalchemy.orm as orm
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    from flask_download import ObjectDownloadView
    from flask_download import StorageDownloadView
    from flask_download.sqlalchemy import FileColumn

    root = os.path.join(base, "root")
    app = Flask("race_app", root_path=base)
    app.config["DOWNLOAD_ROOT"] = root
    FlaskDownload(app)

    class Base(orm.DeclarativeBase):
        pass

    class Document(Base):
        __tablename__ = "document"
        id = sa.Column(sa.Integer, primary_key=True)
        file = sa.Column(FileColumn())

    engine = sa.create_engine(f"sqlite:///{base}/race-{os.getpid()}.db")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        session.merge(Document(id=1, file="x"))
        session.merge(Document(id=2, file="d/f.txt"))
        session.commit()

    class RowView(ObjectDownloadView):
        model = Document
        session = orm.sessionmaker(engine)

    app.add_url_rule("/path/<path:path>", view_func=PathDownloadView.as_view("path"))
    app.add_url_rule("/row/<int:id>", view_func=RowView.as_view("row"))
    app.add_url_rule(
        "/file/<path:path>",
        view_func=StorageDownloadView.as_view("file", storage=f"file://{root}"),
    )
    app.add_url_rule(
        "/dirfs/<path:path>",
        view_func=StorageDownloadView.as_view(
            "dirfs", storage=DirFileSystem(root, fs=LocalFileSystem())
        ),
    )
    app.extensions["race_engine"] = engine
    return app


#: ``(route to x, route to d/f.txt)`` of each source.
SOURCES = {
    "path-view": ("/path/x", "/path/d/f.txt"),
    "file-column": ("/row/1", "/row/2"),
    "file-storage": ("/file/x", "/file/d/f.txt"),
    "dirfs-storage": ("/dirfs/x", "/dirfs/d/f.txt"),
}


@pytest.fixture(scope="module")
def race_base(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    pytest.importorskip("fsspec")
    pytest.importorskip("sqlalchemy")
    base = tmp_path_factory.mktemp("races")
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "f.txt").write_bytes(SECRET)
    (base / "spare").mkdir()
    root = base / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f.txt").write_bytes(INSIDE)
    (root / "x").write_bytes(INSIDE)
    return base


@pytest.fixture(scope="module")
def werkzeug_port(race_base: pathlib.Path) -> cabc.Iterator[int]:
    app = make_race_app(os.fspath(race_base))
    try:
        with running_werkzeug(app) as url:
            yield int(url.rpartition(":")[2])
    finally:
        app.extensions["race_engine"].dispose()


@pytest.fixture(scope="module")
def gunicorn_port(race_base: pathlib.Path) -> cabc.Iterator[int]:
    app = f"tests.security.test_races:make_race_app({os.fspath(race_base)!r})"
    with running_gunicorn(app, "--workers=2") as url:
        port = int(url.rpartition(":")[2])
        # Until both workers booted (imported the app): warm them up.
        for _ in range(8):
            _hammer(port, ("/path/x",), requests=2)
        yield port


@pytest.fixture(params=["werkzeug", "gunicorn"])
def port(request: pytest.FixtureRequest) -> int:
    return t.cast(int, request.getfixturevalue(f"{request.param}_port"))


@pytest.fixture
def flipper(race_base: pathlib.Path) -> cabc.Iterator[None]:
    """The attacker: a child process flipping ``x`` and ``d`` until stopped."""
    root, spare = race_base / "root", race_base / "spare"
    proc = subprocess.Popen(
        [sys.executable, "-c", FLIPPER, os.fspath(root), os.fspath(spare)]
    )
    try:
        time.sleep(0.1)
        assert proc.poll() is None, "the flipper died"
        yield
    finally:
        proc.kill()
        proc.wait(timeout=10)
        # Put the inside halves back in the root for the next test.
        for name in ("x", "d"):
            if (root / name).is_symlink():
                os.replace(root / name, spare / "held")
                os.replace(spare / name, root / name)
                os.replace(spare / "held", spare / name)
            (spare / name).unlink()
        (spare / "held").unlink(missing_ok=True)


def _hammer(
    port: int, targets: tuple[str, ...], requests: int = 0
) -> list[tuple[str, int, bytes]]:
    """Request ``targets`` in turn from several threads; every answer.

    :param requests: stop after that many; 0: run for the time bounds.
    """
    answers: list[tuple[str, int, bytes]] = []
    lock = threading.Lock()
    started = time.monotonic()

    def client(offset: int) -> None:
        i = offset
        while True:
            elapsed = time.monotonic() - started
            with lock:
                done = len(answers)
            if requests:
                if done >= requests:
                    return
            elif elapsed > MAX_SECONDS or (
                done >= MIN_REQUESTS and elapsed > MIN_SECONDS
            ):
                return
            target = targets[i % len(targets)]
            i += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", target)
                response = conn.getresponse()
                body = response.read()
                status = response.status
            except (http.client.HTTPException, OSError) as e:
                # A body cut short is a 200 whose length did not match.
                status, body = -1, repr(e).encode()
            finally:
                conn.close()
            with lock:
                answers.append((target, status, body))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_symlink_swaps_never_leak(
    port: int, flipper: None, source: tuple[str, str]
) -> None:
    answers = _hammer(port, source)
    assert len(answers) >= MIN_REQUESTS // 3, "too few requests to mean anything"
    leaks = [(target, status) for target, status, body in answers if MARKER in body]
    assert not leaks, f"{len(leaks)} of {len(answers)} answers leaked: {leaks[:5]}"
    errors = [(target, status) for target, status, _ in answers if status >= 500]
    assert not errors, f"{len(errors)} server errors: {errors[:5]}"
    odd = [
        (target, status, body[:60])
        for target, status, body in answers
        if not (status == 404 or (status == 200 and body == INSIDE))
    ]
    assert not odd, f"{len(odd)} answers neither 404 nor the inside file: {odd[:5]}"
    # The race was real: both outcomes happened.
    statuses = {status for _, status, _ in answers}
    assert 200 in statuses, statuses


# -- files that grow or shrink while they are sent -----------------------------

GROW_SIZE = 16 * 1024 * 1024


def _pattern(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


def _download_while(
    port: int, target: str, change: cabc.Callable[[], None]
) -> tuple[int, bytes]:
    """GET ``target``; after the first 64 KiB of body, ``change()``, then
    read to the end. The client stalls meanwhile, so the server is still
    sending when the file changes. Returns (Content-Length, body)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
        )
        while len(body) < 64 * 1024:
            body += sock.recv(65536)
        change()
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            body += chunk
    return length, body


@pytest.fixture
def changing_file(race_base: pathlib.Path) -> cabc.Iterator[pathlib.Path]:
    path = race_base / "root" / f"changing-{uuid.uuid4().hex}.bin"
    path.write_bytes(_pattern(GROW_SIZE))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_a_growing_file_sends_exactly_the_announced_bytes(
    port: int, changing_file: pathlib.Path
) -> None:
    """Issue #11: a log being appended to is sent whole as announced, on
    Werkzeug (Python streaming) and gunicorn (sendfile) alike."""

    def grow() -> None:
        with changing_file.open("ab") as f:
            f.write(b"appended" * (GROW_SIZE // 8))

    length, body = _download_while(port, f"/path/{changing_file.name}", grow)
    assert length == GROW_SIZE
    assert len(body) == GROW_SIZE
    assert body == _pattern(GROW_SIZE)


def test_a_shrinking_file_is_cut_short_never_padded(
    port: int, changing_file: pathlib.Path
) -> None:
    def shrink() -> None:
        os.truncate(changing_file, GROW_SIZE // 4)

    length, body = _download_while(port, f"/path/{changing_file.name}", shrink)
    assert length == GROW_SIZE
    assert len(body) < GROW_SIZE
    assert body == _pattern(GROW_SIZE)[: len(body)]
