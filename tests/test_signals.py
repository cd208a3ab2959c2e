from __future__ import annotations

import collections.abc as cabc
import contextlib
import os
import pathlib
import socket
import struct
import threading
import typing as t
from wsgiref.simple_server import make_server
from wsgiref.util import FileWrapper

import pytest
from conftest import QuietWSGIRefHandler
from conftest import SAMPLE_FILES
from flask import Flask
from flask import g
from flask import request

from flask_download import download_finished
from flask_download import download_started
from flask_download import DownloadFile
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.testing import assert_download_response

DATA = SAMPLE_FILES["data.bin"]
SIZE = len(DATA)


class Recorder:
    """Collects the signals an app sends."""

    def __init__(self) -> None:
        self.started: list[dict[str, t.Any]] = []
        self.finished: list[dict[str, t.Any]] = []
        self.done = threading.Event()

    def on_started(self, sender: t.Any, **kwargs: t.Any) -> None:
        self.started.append({"sender": sender, **kwargs})

    def on_finished(self, sender: t.Any, **kwargs: t.Any) -> None:
        self.finished.append({"sender": sender, **kwargs})
        self.done.set()

    @contextlib.contextmanager
    def connected(self, app: Flask) -> cabc.Iterator[Recorder]:
        with (
            download_started.connected_to(self.on_started, app),
            download_finished.connected_to(self.on_finished, app),
        ):
            yield self


@pytest.fixture
def recorder(app: Flask) -> cabc.Iterator[Recorder]:
    with Recorder().connected(app) as recorder:
        yield recorder


@pytest.fixture
def files_client(app: Flask) -> t.Any:
    app.add_url_rule(
        "/files/<path:path>",
        view_func=PathDownloadView.as_view("files", chunk_size=256),
    )
    return app.test_client()


def _chunks(count: int, size: int) -> cabc.Iterator[bytes]:
    for i in range(count):
        yield bytes([65 + i % 26]) * size


class StreamView(VirtualDownloadView):
    """Ten chunks of 100 bytes from a generator (no size, no Range)."""

    def get_file(self) -> DownloadFile:
        return VirtualFile(_chunks(10, 100), name="stream.txt")


# -- a whole body -------------------------------------------------------------


def test_streamed_download_sends_started_and_finished(
    app: Flask, files_client: t.Any, recorder: Recorder
) -> None:
    with files_client.get("/files/data.bin") as rv:
        assert_download_response(rv, content=DATA, basename="data.bin")
    [started] = recorder.started
    [finished] = recorder.finished
    assert started["sender"] is app
    assert started["file"].name == "data.bin"
    assert started["request"].path == "/files/data.bin"
    assert finished["sender"] is app
    assert finished["file"] is started["file"]
    assert finished["bytes_sent"] == SIZE
    assert finished["completed"] is True


def test_generator_body_counts_every_chunk(app: Flask, recorder: Recorder) -> None:
    app.add_url_rule("/stream", view_func=StreamView.as_view("stream"))
    with app.test_client().get("/stream") as rv:
        assert_download_response(rv, content=b"".join(_chunks(10, 100)))
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (1000, True)


def test_started_runs_inside_the_request_context(
    app: Flask, files_client: t.Any
) -> None:
    seen: list[tuple[str, str]] = []

    def receiver(sender: Flask, **kwargs: t.Any) -> None:
        seen.append((request.path, g.user))

    @app.before_request
    def login() -> None:
        g.user = "alice"

    with (
        download_started.connected_to(receiver, app),
        files_client.get("/files/hello.txt") as rv,
    ):
        assert_download_response(rv, content=SAMPLE_FILES["hello.txt"])
    assert seen == [("/files/hello.txt", "alice")]


def test_single_range_counts_the_range(files_client: t.Any, recorder: Recorder) -> None:
    with files_client.get("/files/data.bin", headers={"Range": "bytes=10-109"}) as rv:
        assert_download_response(rv, content=DATA[10:110], status=206)
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (100, True)


def test_multipart_ranges_count_the_whole_body(
    files_client: t.Any, recorder: Recorder
) -> None:
    with files_client.get(
        "/files/data.bin", headers={"Range": "bytes=0-9,50-59"}
    ) as rv:
        body = assert_download_response(rv, status=206)
    [finished] = recorder.finished
    assert finished["bytes_sent"] == len(body) == int(rv.headers["Content-Length"])
    assert finished["completed"] is True


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("HEAD", "/files/data.bin", {}, 200),
        ("GET", "/files/missing.bin", {}, 404),
        ("GET", "/files/data.bin", {"If-None-Match": "*"}, 304),
        ("GET", "/files/data.bin", {"If-Match": '"nope"'}, 412),
        ("GET", "/files/data.bin", {"Range": f"bytes={SIZE + 5}-"}, 416),
    ],
    ids=["head", "not-found", "not-modified", "precondition-failed", "unsatisfiable"],
)
def test_no_signal_without_a_body(
    files_client: t.Any,
    recorder: Recorder,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    with files_client.open(path, method=method, headers=headers) as rv:
        assert rv.status_code == status
    assert recorder.started == recorder.finished == []


def test_signals_of_another_app_are_not_heard(
    app_factory: cabc.Callable[..., Flask], files_client: t.Any
) -> None:
    other = Recorder()
    with other.connected(app_factory()), files_client.get("/files/hello.txt") as rv:
        assert_download_response(rv, content=SAMPLE_FILES["hello.txt"])
    assert other.started == other.finished == []


class TrackedFile(PathFile):
    """A PathFile that keeps the handles it opened."""

    handles: t.ClassVar[list[t.IO[bytes]]] = []

    def open(self) -> t.IO[bytes]:
        handle = super().open()
        self.handles.append(handle)
        return handle


def test_failing_receiver_closes_the_file(
    app: Flask, download_root: pathlib.Path
) -> None:
    def broken(sender: Flask, **kwargs: t.Any) -> None:
        raise RuntimeError("receiver failed")

    TrackedFile.handles = []
    app.add_url_rule(
        "/tracked",
        view_func=PathDownloadView.as_view(
            "tracked", get_file=lambda: TrackedFile(download_root / "data.bin")
        ),
    )
    with (
        download_started.connected_to(broken, app),
        pytest.raises(RuntimeError, match="receiver failed"),
    ):
        app.test_client().get("/tracked")
    [handle] = TrackedFile.handles
    assert handle.closed


# -- the client hangs up ------------------------------------------------------


def test_client_hang_up_mid_body_is_not_completed(
    files_client: t.Any, recorder: Recorder
) -> None:
    rv = files_client.get("/files/data.bin", buffered=False)
    chunks = iter(rv.response)
    assert next(chunks) == DATA[:256]
    assert recorder.finished == []
    rv.close()
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (256, False)
    assert len(recorder.started) == 1


def test_server_stopping_at_content_length_is_completed(
    files_client: t.Any, recorder: Recorder
) -> None:
    """A server may stop pulling once Content-Length bytes went out."""
    rv = files_client.get("/files/data.bin", buffered=False)
    chunks = iter(rv.response)
    body = b"".join(next(chunks) for _ in range(SIZE // 256))
    rv.close()
    assert body == DATA
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (SIZE, True)


def test_hang_up_right_after_the_headers(
    files_client: t.Any, recorder: Recorder
) -> None:
    # Werkzeug's client pulls the first chunk to learn the status: that much
    # was handed over.
    files_client.get("/files/data.bin", buffered=False).close()
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (256, False)


# -- wsgi.file_wrapper ----------------------------------------------------------


class RecordingWrapper(FileWrapper):
    """wsgiref's file wrapper, remembering what it was given."""

    given: t.ClassVar[list[t.Any]] = []

    def __init__(self, filelike: t.Any, blksize: int = 8192) -> None:
        self.given.append(filelike)
        super().__init__(filelike, blksize)


@pytest.fixture
def wrapper_environ() -> cabc.Iterator[dict[str, t.Any]]:
    RecordingWrapper.given = []
    yield {"wsgi.file_wrapper": RecordingWrapper}


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [({}, DATA, 200), ({"Range": "bytes=100-299"}, DATA[100:300], 206)],
    ids=["whole", "range"],
)
def test_file_wrapper_body_is_counted(
    files_client: t.Any,
    recorder: Recorder,
    wrapper_environ: dict[str, t.Any],
    headers: dict[str, str],
    content: bytes,
    status: int,
) -> None:
    with files_client.get(
        "/files/data.bin", headers=headers, environ_base=wrapper_environ
    ) as rv:
        assert_download_response(rv, content=content, status=status)
    assert len(RecordingWrapper.given) == 1
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (len(content), True)


def test_file_wrapper_hang_up_is_not_completed(
    files_client: t.Any, recorder: Recorder, wrapper_environ: dict[str, t.Any]
) -> None:
    rv = files_client.get(
        "/files/data.bin", buffered=False, environ_base=wrapper_environ
    )
    assert next(iter(rv.response)) == DATA[:256]
    rv.close()
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (256, False)


def test_file_wrapper_keeps_sendfile_without_receivers(
    files_client: t.Any, wrapper_environ: dict[str, t.Any]
) -> None:
    """Without a download_finished receiver the server gets the real file."""
    with files_client.get("/files/data.bin", environ_base=wrapper_environ) as rv:
        assert_download_response(rv, content=DATA)
    [filelike] = RecordingWrapper.given
    assert hasattr(filelike, "fileno")


def test_file_wrapper_keeps_sendfile_with_only_started(
    app: Flask, files_client: t.Any, wrapper_environ: dict[str, t.Any]
) -> None:
    """download_started alone needs no counting: the server gets the real file."""
    files: list[DownloadFile] = []
    with (
        download_started.connected_to(lambda s, file, **kw: files.append(file), app),
        files_client.get("/files/data.bin", environ_base=wrapper_environ) as rv,
    ):
        assert_download_response(rv, content=DATA)
    assert [f.name for f in files] == ["data.bin"]
    [filelike] = RecordingWrapper.given
    assert hasattr(filelike, "fileno")


def test_file_wrapper_reads_through_counter_with_receivers(
    files_client: t.Any, recorder: Recorder, wrapper_environ: dict[str, t.Any]
) -> None:
    with files_client.get("/files/data.bin", environ_base=wrapper_environ) as rv:
        assert_download_response(rv, content=DATA)
    [filelike] = RecordingWrapper.given
    assert not hasattr(filelike, "fileno")  # a sendfile server would not count


# -- offload --------------------------------------------------------------------


def test_offloaded_download_sends_both_signals(
    app: Flask, download_root: pathlib.Path, recorder: Recorder
) -> None:
    app.add_url_rule(
        "/accel/<path:path>",
        view_func=PathDownloadView.as_view(
            "accel",
            accel="nginx",
            accel_rules=[
                {"source_dir": os.fspath(download_root), "destination_url": "/int/"}
            ],
        ),
    )
    with app.test_client().get("/accel/data.bin") as rv:
        assert_download_response(rv, basename="data.bin", offload="/int/data.bin")
    [started] = recorder.started
    [finished] = recorder.finished
    assert started["file"].name == finished["file"].name == "data.bin"
    assert started["request"].path == "/accel/data.bin"
    assert finished["bytes_sent"] is None
    assert finished["completed"] is True


def test_offloaded_head_sends_no_signal(
    app: Flask, download_root: pathlib.Path, recorder: Recorder
) -> None:
    app.add_url_rule(
        "/accel/<path:path>",
        view_func=PathDownloadView.as_view(
            "accel",
            accel="apache",
            accel_rules=[{"source_dir": os.fspath(download_root)}],
        ),
    )
    with app.test_client().head("/accel/data.bin") as rv:
        assert "X-Sendfile" in rv.headers
    assert recorder.started == recorder.finished == []


# -- a real server, a real hang-up ----------------------------------------------

BIG_SIZE = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> cabc.Iterator[tuple[Flask, tuple[str, int]]]:
    root = tmp_path_factory.mktemp("signals")
    with open(root / "big.bin", "wb") as f:
        f.truncate(BIG_SIZE)  # sparse: costs no disk
    app = Flask("signals_server")
    app.config["DOWNLOAD_ROOT"] = os.fspath(root)
    FlaskDownload(app)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))

    class BigStream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(_chunks(BIG_SIZE // 65536, 65536), name="big.txt")

    app.add_url_rule("/stream", view_func=BigStream.as_view("stream"))
    httpd = make_server("127.0.0.1", 0, app, handler_class=QuietWSGIRefHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield app, ("127.0.0.1", httpd.server_port)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize(
    "path", ["/files/big.bin", "/stream"], ids=["file-wrapper", "streamed"]
)
def test_real_client_hang_up(server: tuple[Flask, tuple[str, int]], path: str) -> None:
    app, address = server
    with Recorder().connected(app) as recorder:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            received = b""
            while len(received) < 100_000 and (data := sock.recv(65536)):
                received += data
            assert received.startswith(b"HTTP/1.0 200")
            # Unread data at close makes the kernel reset the connection.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        assert recorder.done.wait(10), "download_finished was not sent"
    [finished] = recorder.finished
    assert finished["completed"] is False
    assert 100_000 - 1000 < finished["bytes_sent"] < BIG_SIZE
    assert len(recorder.started) == 1


def test_real_client_reads_to_the_end(server: tuple[Flask, tuple[str, int]]) -> None:
    app, address = server
    with Recorder().connected(app) as recorder:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(b"GET /files/big.bin HTTP/1.0\r\nHost: x\r\n\r\n")
            total = 0
            while data := sock.recv(1 << 20):
                total += len(data)
        assert recorder.done.wait(10), "download_finished was not sent"
    [finished] = recorder.finished
    assert (finished["bytes_sent"], finished["completed"]) == (BIG_SIZE, True)
    assert total > BIG_SIZE  # the headers, then every byte
