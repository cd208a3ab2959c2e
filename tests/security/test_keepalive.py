"""Response framing on kept-alive connections (issue 11, grown/shrunk files).

A body that ends before the bytes its ``Content-Length`` announced (a local
file that shrank while it was sent, a stream that stopped or failed early)
must end the connection. gunicorn does not compare what it wrote with
``Content-Length``: on a kept-alive connection the client would read the
next (pipelined) response as the rest of the short body. Each test sends
two pipelined requests on one socket and reads until the server closes it.
"""

from __future__ import annotations

import collections.abc as cabc
import io
import os
import pathlib
import re
import socket
import subprocess
import sys
import textwrap
import threading
import typing as t
import uuid

import pytest
from conftest import free_port
from conftest import wait_for_port
from flask import Flask

from flask_download import DownloadFile
from flask_download import HTTPDownloadView
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualFile
from flask_download.files import read_slice
from flask_download.views import VirtualDownloadView

from .conftest import pipelined
from .conftest import start_server
from .conftest import stop_server

SIZE = 300_000
KEPT = 1_000
STATUS_LINE = re.compile(rb"HTTP/1\.[01] \d{3} ")


def _no_file_wrapper(app: t.Any) -> t.Any:
    """Hide the server's ``wsgi.file_wrapper``: the body is streamed by
    Python. The environ is copied (gunicorn reads its own afterwards) and
    ``start_response`` is the server's own."""

    def middleware(environ: t.Any, start_response: t.Any) -> t.Any:
        copied = {k: v for k, v in environ.items() if k != "wsgi.file_wrapper"}
        return app(copied, start_response)

    return middleware


def make_keepalive_app(root: str) -> Flask:
    """The routes under test; also imported by the gunicorn processes."""
    app = Flask("keepalive_app")
    app.config["DOWNLOAD_ROOT"] = root

    class Shrinking(PathDownloadView):
        """A fresh file of SIZE bytes, cut to KEPT once its size is read."""

        def get_file(self) -> DownloadFile:
            path = os.path.join(root, f"shrink-{uuid.uuid4().hex}.bin")
            with open(path, "wb") as handle:
                handle.write(b"s" * SIZE)
            file = PathFile(path)  # opened and fstat-ed here
            os.truncate(path, KEPT)
            os.unlink(path)  # the open descriptor keeps it
            return file

    def short_chunks() -> cabc.Iterator[bytes]:
        yield b"v" * KEPT

    def failing_chunks() -> cabc.Iterator[bytes]:
        yield b"v" * KEPT
        raise OSError("the source broke off")

    class ShortStream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(short_chunks(), name="v.bin", size=SIZE)

    class FailingStream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(failing_chunks(), name="v.bin", size=SIZE)

    class BrokenUpstream(HTTPDownloadView):
        """Relays an upstream that sends KEPT of the SIZE bytes it announced."""

        allowed_hosts = ("127.0.0.1",)
        timeout = 5.0

        def get_url(self) -> str:
            return f"http://127.0.0.1:{self.kwargs['port']}/"

    app.add_url_rule("/shrink", view_func=Shrinking.as_view("shrink"))
    app.add_url_rule(
        "/upstream/<int:port>", view_func=BrokenUpstream.as_view("upstream")
    )
    app.add_url_rule("/short", view_func=ShortStream.as_view("short"))
    app.add_url_rule("/failing", view_func=FailingStream.as_view("failing"))
    app.add_url_rule("/ok", view_func=PathDownloadView.as_view("ok", path="ok.bin"))
    plain = app.wsgi_app
    streamed = _no_file_wrapper(plain)

    def dispatch(environ: t.Any, start_response: t.Any) -> t.Any:
        wanted = streamed if environ.get("QUERY_STRING") == "stream" else plain
        return wanted(environ, start_response)

    app.wsgi_app = dispatch  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def keepalive_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("keepalive")
    (root / "ok.bin").write_bytes(bytes(range(256)) * 40)
    return root


@pytest.fixture(scope="module")
def broken_upstream() -> cabc.Iterator[int]:
    """An upstream on 127.0.0.1 that announces SIZE bytes, sends KEPT and
    closes; its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        break
                    head += data
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                    b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                    % SIZE
                    + b"u" * KEPT
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def _gunicorn(root: pathlib.Path, worker: str, app_dir: pathlib.Path) -> t.Any:
    here = pathlib.Path(__file__).parent
    (app_dir / "keepalive_app.py").write_text(
        textwrap.dedent(
            f"""
            from tests.security.test_keepalive import make_keepalive_app
            app = make_keepalive_app({os.fspath(root)!r})
            """
        )
    )
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.fspath(app_dir), os.fspath(here.parent.parent), os.fspath(here.parent)]
    )
    # A short keep-alive: a test reading a kept-alive connection to its end
    # waits for it (the cut-short bodies close theirs at once, whatever it is).
    args = [f"--worker-class={worker}", "--keep-alive=1"]
    if worker == "gthread":
        args.append("--threads=2")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=1",
            *args,
            f"--bind=127.0.0.1:{port}",
            "keepalive_app:app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not wait_for_port(port, proc):
        proc.terminate()
        proc.wait(timeout=10)
        pytest.fail("gunicorn did not start")
    return proc, port


@pytest.fixture(scope="module", params=["werkzeug", "gthread", "sync"])
def server_port(
    request: pytest.FixtureRequest,
    keepalive_root: pathlib.Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> cabc.Iterator[tuple[str, int]]:
    if request.param == "werkzeug":
        live = start_server(make_keepalive_app(os.fspath(keepalive_root)))
        try:
            yield "werkzeug", live.port
        finally:
            stop_server(live)
        return
    pytest.importorskip("gunicorn")
    app_dir = tmp_path_factory.mktemp(f"keepalive_{request.param}")
    proc, port = _gunicorn(keepalive_root, request.param, app_dir)
    try:
        yield request.param, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# (target, Range header, status): the sendfile path on gunicorn (whole and
# one range), the Python streaming path (whole, one range, several ranges),
# and wrappers whose stream stops or fails early.
CASES = [
    pytest.param("/shrink", "", 200, id="sendfile"),
    pytest.param("/shrink", "bytes=10-", 206, id="sendfile-range"),
    pytest.param("/shrink?stream", "", 200, id="streamed"),
    pytest.param("/shrink?stream", "bytes=10-", 206, id="streamed-range"),
    pytest.param("/shrink", "bytes=0-9,500-", 206, id="multipart"),
    pytest.param("/short", "", 200, id="generator-stops"),
    pytest.param("/failing", "", 200, id="generator-raises"),
]


def _check_cut_short(received: bytes, status: int) -> None:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head
    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    assert match is not None, head
    assert len(body) < int(match.group(1))  # cut short, never padded...
    assert STATUS_LINE.search(body) is None  # ...and nothing after it


@pytest.mark.parametrize(("target", "range_header", "status"), CASES)
def test_a_short_body_closes_the_connection(
    server_port: tuple[str, int], target: str, range_header: str, status: int
) -> None:
    """The short body is the last thing on the connection: the pipelined
    second response is never glued to it."""
    _, port = server_port
    _check_cut_short(pipelined(port, target, range_header), status)


def test_an_upstream_that_broke_off_closes_the_connection(
    server_port: tuple[str, int], broken_upstream: int
) -> None:
    """An ``HTTPDownloadView`` whose upstream sent less than it announced."""
    _, port = server_port
    _check_cut_short(pipelined(port, f"/upstream/{broken_upstream}"), 200)


def test_a_complete_body_keeps_the_connection(
    server_port: tuple[str, int], keepalive_root: pathlib.Path
) -> None:
    """Bodies sent in full (sendfile and streamed) leave keep-alive alone:
    gunicorn's gthread worker answers both pipelined requests on one
    connection (the sync worker and Werkzeug's server close after one)."""
    name, port = server_port
    content = (keepalive_root / "ok.bin").read_bytes()
    for target in ("/ok", "/ok?stream"):
        received = pipelined(port, target)
        responses = STATUS_LINE.findall(received)
        assert len(responses) == (2 if name == "gthread" else 1), received[:300]
        head, _, body = received.partition(b"\r\n\r\n")
        assert body.startswith(content)


@pytest.mark.parametrize(
    ("data", "start", "stop", "missing"),
    [
        (b"x" * 10, 2, 8, 0),  # complete
        (b"x" * 10, 2, 20, 10),  # the stream ends 10 bytes early
        (b"x" * 10, 0, None, 0),  # no stop: nothing announced
        (b"", 0, 5, 5),
    ],
)
def test_read_slice_returns_what_it_could_not_yield(
    data: bytes, start: int, stop: int | None, missing: int
) -> None:
    """What the response uses to tell a short body, without counting."""
    chunks = read_slice(io.BytesIO(data), 4, start, stop)
    received = b""
    while True:
        try:
            received += next(chunks)
        except StopIteration as done:
            assert done.value == missing
            break
    assert len(received) == (
        len(data) - start if stop is None else stop - start - missing
    )
