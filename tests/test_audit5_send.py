"""Audit 5: ``send_download`` with a caller's file object, and send_file parity.

A real binary file handed over as an object (``open(path, "rb")``) goes to
the server's ``wsgi.file_wrapper`` (gunicorn's ``sendfile``), whole or as one
range, as Werkzeug's ``send_file`` hands it there; it is read from its
current position (as ``send_file`` does), the exact ``Content-Length`` is
sent even when the file grows, and it is closed with the response.
"""

from __future__ import annotations

import datetime
import gzip
import io
import os
import pathlib
import re
import socket
import tempfile
import typing as t
import urllib.request

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from werkzeug.test import EnvironBuilder

from flask_download import ConfigurationError
from flask_download import FlaskDownload
from flask_download import send_download
from flask_download.response import _download
from flask_download.signals import download_finished

DATA = bytes(range(256)) * 1024  # 256 KiB: larger than a read buffer
#: Where the file objects are when they are handed over (a BufferedReader
#: that has read from it is ahead of it at the descriptor level).
POSITION = 1000
#: The size a file shrinks to while it is sent.
SHRUNK = len(DATA) - POSITION // 2


class RecordingWrapper:
    """A ``wsgi.file_wrapper`` that records what it was given."""

    instances: t.ClassVar[list[RecordingWrapper]] = []

    def __init__(self, filelike: t.Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size
        # What gunicorn's sendfile starts from: the descriptor's position.
        # (A byte counter, with signal receivers, has no descriptor.)
        fileno = getattr(filelike, "fileno", None)
        self.position = None if fileno is None else os.lseek(fileno(), 0, os.SEEK_CUR)
        type(self).instances.append(self)

    def __iter__(self) -> t.Iterator[bytes]:
        while True:
            data = self.filelike.read(self.block_size)
            if not data:
                return
            yield data

    def close(self) -> None:
        self.filelike.close()


def _file(tmp_path: pathlib.Path, name: str = "data.bin") -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(DATA)
    return path


def _advanced(path: pathlib.Path) -> t.IO[bytes]:
    """``path`` opened and read up to POSITION (the descriptor is further on)."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by the response
    assert handle.read(POSITION) == DATA[:POSITION]
    return handle


def _run(app: Flask, headers: dict[str, str] | None = None) -> tuple[t.Any, bytes]:
    """Call ``app`` as a server offering RecordingWrapper would."""
    environ = EnvironBuilder(path="/f", headers=headers).get_environ()
    environ["wsgi.file_wrapper"] = RecordingWrapper
    environ["SERVER_SOFTWARE"] = "gunicorn/23.0.0"
    started: list[t.Any] = []
    body = app(environ, lambda status, headers, exc_info=None: started.append(headers))
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return dict(started[0]), data


def _app(make: t.Callable[[], t.Any]) -> Flask:
    app = Flask("audit5")
    app.add_url_rule("/f", "f", make)
    return app


# -- the file wrapper ------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "expected"),
    [(None, DATA[POSITION:]), ("bytes=10-19", DATA[POSITION + 10 : POSITION + 20])],
    ids=["whole", "range"],
)
def test_real_file_object_goes_to_the_file_wrapper(
    tmp_path: pathlib.Path,
    range_header: str | None,
    expected: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As send_file: the file object is handed to wsgi.file_wrapper, with a
    descriptor positioned where the bytes start (gunicorn sends from there)."""
    # The 10-byte range stands for a large one (small bodies are read).
    monkeypatch.setattr(_download, "SMALL_BODY", 0)
    path = _file(tmp_path)
    handles: list[t.IO[bytes]] = []

    def view() -> t.Any:
        handles.append(_advanced(path))
        return send_download(handles[-1], download_name="data.bin")

    RecordingWrapper.instances = []
    headers = {"Range": range_header} if range_header else None
    sent, data = _run(_app(view), headers)
    assert data == expected
    assert sent["Content-Length"] == str(len(expected))
    [wrapper] = RecordingWrapper.instances
    start = POSITION + (10 if range_header else 0)
    assert wrapper.position == start
    assert handles[0].closed


def test_several_ranges_of_a_file_object_are_streamed(tmp_path: pathlib.Path) -> None:
    path = _file(tmp_path)
    handles: list[t.IO[bytes]] = []

    def view() -> t.Any:
        handles.append(_advanced(path))
        return send_download(handles[-1])

    RecordingWrapper.instances = []
    sent, data = _run(_app(view), {"Range": "bytes=0-1,100-101"})
    assert sent["Content-Type"].startswith("multipart/byteranges")
    assert RecordingWrapper.instances == []
    parts = DATA[POSITION : POSITION + 2], DATA[POSITION + 100 : POSITION + 102]
    for part in parts:
        assert b"\r\n\r\n" + part + b"\r\n" in data
    assert handles[0].closed


def test_file_object_closed_when_the_client_hangs_up(tmp_path: pathlib.Path) -> None:
    path = _file(tmp_path)
    handles: list[t.IO[bytes]] = []

    def view() -> t.Any:
        handles.append(open(path, "rb"))  # noqa: SIM115
        return send_download(handles[-1])

    RecordingWrapper.instances = []
    environ = EnvironBuilder(path="/f").get_environ()
    environ["wsgi.file_wrapper"] = RecordingWrapper
    body = _app(view)(environ, lambda *args: None)
    assert next(iter(body))  # one block, then the client is gone
    assert not handles[0].closed
    body.close()
    assert handles[0].closed


def test_head_closes_the_file_object(tmp_path: pathlib.Path) -> None:
    path = _file(tmp_path)
    handles: list[t.IO[bytes]] = []

    def view() -> t.Any:
        handles.append(open(path, "rb"))  # noqa: SIM115
        return send_download(handles[-1])

    app = _app(view)
    app.url_map._rules[-1].methods.add("HEAD")  # type: ignore[union-attr]
    with app.test_client().head("/f") as rv:
        assert rv.headers["Content-Length"] == str(len(DATA))
        assert rv.data == b""
    assert handles[0].closed


def test_file_object_with_download_receivers_is_counted(
    tmp_path: pathlib.Path,
) -> None:
    """With signal receivers the bytes are counted (streamed by Python)."""
    path = _file(tmp_path)
    finished: list[tuple[int, bool]] = []

    def receiver(sender: t.Any, **extra: t.Any) -> None:
        finished.append((extra["bytes_sent"], extra["completed"]))

    def view() -> t.Any:
        return send_download(_advanced(path))

    with download_finished.connected_to(receiver):
        _, data = _run(_app(view))
    assert data == DATA[POSITION:]
    assert finished == [(len(DATA) - POSITION, True)]


def test_buffered_writes_of_a_temporary_file_are_sent(tmp_path: pathlib.Path) -> None:
    """A file written to and rewound: all its bytes, buffered ones too."""
    handles: list[t.IO[bytes]] = []

    def view() -> t.Any:
        spool = tempfile.TemporaryFile(dir=tmp_path)  # noqa: SIM115
        spool.write(b"abc")
        spool.seek(0)
        spool.write(b"X")  # still in the buffer
        handles.append(spool)
        return send_download(spool, mimetype="text/plain")

    RecordingWrapper.instances = []
    _, data = _run(_app(view))
    assert data == b"bc"
    assert handles[0].closed


@pytest.mark.parametrize("kind", ["gzip", "subclass", "named-temporary"])
def test_other_file_objects_are_read_by_their_read(
    tmp_path: pathlib.Path, kind: str
) -> None:
    """Objects with a fileno() whose read() gives other bytes than the
    descriptor holds (a GzipFile decompresses) are never sent by descriptor."""
    plain = b"the plain text\n" * 100
    if kind == "gzip":
        path = tmp_path / "x.gz"
        path.write_bytes(gzip.compress(plain))

        def make() -> t.IO[bytes]:
            return gzip.open(path, "rb")  # type: ignore[return-value]

    elif kind == "subclass":
        path = tmp_path / "x.bin"
        path.write_bytes(plain.upper())

        class Lower(io.BufferedReader):
            def read(self, size: int | None = -1) -> bytes:
                return super().read(size).lower()

            def readinto(self, buffer: t.Any) -> int:
                data = self.read(len(buffer))
                buffer[: len(data)] = data
                return len(data)

        def make() -> t.IO[bytes]:
            return Lower(io.FileIO(path, "rb"))

    else:

        def make() -> t.IO[bytes]:
            handle = tempfile.NamedTemporaryFile(dir=tmp_path)  # noqa: SIM115
            handle.write(plain)
            handle.seek(0)
            return t.cast(t.IO[bytes], handle)

    handles: list[t.IO[bytes]] = []

    def view() -> t.Any:
        handles.append(make())
        return send_download(handles[-1])

    RecordingWrapper.instances = []
    _, data = _run(_app(view))
    assert data == plain
    assert handles[0].closed


def test_unknown_charset_is_refused_and_the_file_closed(
    tmp_path: pathlib.Path,
) -> None:
    path = _file(tmp_path)
    app = Flask("audit5")
    handle = open(path, "rb")  # noqa: SIM115
    with app.test_request_context(), pytest.raises(ConfigurationError):
        send_download(handle, charset="no-such-charset", mimetype="text/plain")
    assert handle.closed


# -- on real servers ---------------------------------------------------------


def _marking(app: t.Any) -> t.Any:
    """Add ``X-File-Wrapper: yes`` when the body is the server's file wrapper."""

    def middleware(environ: t.Any, start_response: t.Any) -> t.Any:
        started: list[t.Any] = []
        body = app(environ, lambda *args: started.append(args))
        wrapper = environ.get("wsgi.file_wrapper")
        used = "yes" if wrapper is not None and isinstance(body, wrapper) else "no"
        status, headers, *rest = started[0]
        start_response(status, [*headers, ("X-File-Wrapper", used)], *rest)
        return body

    return middleware


def _wire_app(directory: str) -> Flask:
    """Downloads of caller-opened files in ``directory``, at POSITION."""
    app = Flask("audit5_wire")
    root = pathlib.Path(directory)

    @app.route("/file/<name>")
    def sent(name: str) -> t.Any:
        return send_download(_advanced(root / name), download_name=name)

    @app.route("/grow/<name>")
    def grow(name: str) -> t.Any:
        response = send_download(_advanced(root / name))
        with open(root / name, "ab") as more:
            more.write(b"!" * 100_000)
        return response

    @app.route("/shrink/<name>")
    def shrink(name: str) -> t.Any:
        response = send_download(_advanced(root / name))
        # Shorter than the span's end in the file, longer than its length.
        os.truncate(root / name, SHRUNK)
        return response

    @app.route("/ok")
    def ok() -> str:
        return "ok"

    return app


def make_marked_app(directory: str) -> t.Any:
    """gunicorn's entry point: the wire app, telling whether the wrapper was used."""
    app = _wire_app(directory)
    app.wsgi_app = _marking(app.wsgi_app)  # type: ignore[method-assign]
    return app


def make_plain_app(directory: str) -> Flask:
    """gunicorn's entry point: the wire app with the server's start_response."""
    return _wire_app(directory)


def _get(url: str, range_header: str | None = None) -> tuple[t.Any, bytes]:
    headers = {"Range": range_header} if range_header else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as rv:
        return rv, rv.read()


def test_file_object_on_gunicorn_uses_sendfile(tmp_path: pathlib.Path) -> None:
    for name in ("a.bin", "b.bin", "c.bin"):
        _file(tmp_path, name)
    target = f"tests.test_audit5_send:make_marked_app({os.fspath(tmp_path)!r})"
    with running_gunicorn(target, "--worker-class=gthread", "--threads=2") as url:
        rv, data = _get(url + "/file/a.bin")
        assert rv.headers["X-File-Wrapper"] == "yes"
        assert rv.headers["Content-Length"] == str(len(DATA) - POSITION)
        assert data == DATA[POSITION:]

        rv, data = _get(url + "/file/a.bin", "bytes=100-199")
        assert rv.status == 206
        assert rv.headers["X-File-Wrapper"] == "yes"
        assert data == DATA[POSITION + 100 : POSITION + 200]

        rv, data = _get(url + "/file/a.bin", "bytes=0-0,10-10")
        assert rv.headers["X-File-Wrapper"] == "no"
        assert DATA[POSITION : POSITION + 1] in data

        # Grown after the headers were made: the bytes announced, no more,
        # and the kept-alive connection stays in step (the next response).
        received = _pipelined(url, "/grow/b.bin", "/ok")
        assert received.count(b"HTTP/1.1 200") == 2
        head, _, rest = received.partition(b"\r\n\r\n")
        assert b"X-File-Wrapper: yes" in head
        assert rest.startswith(DATA[POSITION:] + b"HTTP/1.1 200")


def test_shrunk_file_object_on_gunicorn_closes_the_connection(
    tmp_path: pathlib.Path,
) -> None:
    """sendfile stops at the file's end: the short body ends the connection
    (the pipelined request is never answered as the rest of the body)."""
    _file(tmp_path, "s.bin")
    target = f"tests.test_audit5_send:make_plain_app({os.fspath(tmp_path)!r})"
    with running_gunicorn(target, "--worker-class=gthread", "--threads=2") as url:
        received = _pipelined(url, "/shrink/s.bin", "/ok")
    head, _, body = received.partition(b"\r\n\r\n")
    length = re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)
    assert length is not None and int(length[1]) == len(DATA) - POSITION
    assert body == DATA[POSITION:SHRUNK]


def test_file_object_on_werkzeugs_server(tmp_path: pathlib.Path) -> None:
    _file(tmp_path, "a.bin")
    _file(tmp_path, "b.bin")
    with running_werkzeug(_wire_app(os.fspath(tmp_path))) as url:
        _, data = _get(url + "/file/a.bin")
        assert data == DATA[POSITION:]
        rv, data = _get(url + "/file/a.bin", "bytes=-10")
        assert rv.status == 206
        assert data == DATA[-10:]
        rv, data = _get(url + "/grow/b.bin")
        assert data == DATA[POSITION:]


def _pipelined(url: str, first: str, second: str) -> bytes:
    """Send two requests on one connection; every byte until it closes."""
    port = int(url.rsplit(":", 1)[1])
    host = f"Host: 127.0.0.1:{port}\r\n"
    request = f"GET {first} HTTP/1.1\r\n{host}\r\nGET {second} HTTP/1.1\r\n{host}"
    request += "Connection: close\r\n\r\n"
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        while chunk := sock.recv(65536):
            received += chunk
    return received


# -- send_file parity --------------------------------------------------------


class FakePath:
    """An os.PathLike that is not a pathlib.Path (Flask's own test)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return self.path


def test_pathlike_source_and_root(tmp_path: pathlib.Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "hello.txt").write_bytes(b"Hello\n")
    app = Flask("parity", root_path=os.fspath(tmp_path))
    app.add_url_rule("/a", "a", lambda: send_download(FakePath("static/hello.txt")))
    app.add_url_rule(
        "/b", "b", lambda: send_download(FakePath("hello.txt"), root=FakePath("static"))
    )
    for url in ("/a", "/b"):
        with app.test_client().get(url) as rv:
            assert rv.data == b"Hello\n"
            assert rv.mimetype == "text/plain"


def test_validators_as_send_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "t.txt").write_bytes(b"x")
    app = Flask("parity", root_path=os.fspath(tmp_path))
    app.add_url_rule("/e", "e", lambda: send_download("t.txt", etag=""))
    app.add_url_rule(
        "/d",
        "d",
        lambda: send_download("t.txt", last_modified=datetime.date(2020, 1, 2)),
    )
    client = app.test_client()
    with client.get("/e") as rv:
        assert rv.headers["ETag"] == '""'
    with client.get("/e", headers={"If-None-Match": '""'}) as rv:
        assert rv.status_code == 304
    with client.get("/d") as rv:
        assert rv.headers["Last-Modified"] == "Thu, 02 Jan 2020 00:00:00 GMT"


@pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="needs Linux's procfs"
)
def test_procfs_file_object_is_streamed_whole() -> None:
    """A procfs file says its size is 0: it is streamed as it comes, not
    sent as an empty body."""

    def view() -> t.Any:
        return send_download(open("/proc/self/status", "rb"))  # noqa: SIM115

    RecordingWrapper.instances = []
    _, data = _run(_app(view))
    assert data.startswith(b"Name:")
    assert RecordingWrapper.instances == []


def test_file_object_is_never_offloaded(tmp_path: pathlib.Path) -> None:
    """Offload rules match paths: a file object is sent by the application
    (send_file never sends X-Sendfile for one either)."""
    path = _file(tmp_path)
    app = _app(lambda: send_download(open(path, "rb")))  # noqa: SIM115
    app.config["DOWNLOAD_ACCEL"] = "nginx"
    app.config["DOWNLOAD_ACCEL_RULES"] = [
        {"source_dir": os.fspath(tmp_path), "destination_url": "/internal/"}
    ]
    FlaskDownload(app)
    RecordingWrapper.instances = []
    sent, data = _run(app)
    assert "X-Accel-Redirect" not in sent
    assert data == DATA
    assert len(RecordingWrapper.instances) == 1


def test_not_modified_closes_the_file_object(tmp_path: pathlib.Path) -> None:
    path = _file(tmp_path)
    handles: list[t.IO[bytes]] = []

    def view() -> t.Any:
        handles.append(open(path, "rb", buffering=0))  # noqa: SIM115
        return send_download(handles[-1], etag="v1")

    sent, data = _run(_app(view), {"If-None-Match": '"v1"'})
    assert data == b""
    assert handles[0].closed
    _, data = _run(_app(view))
    assert data == DATA
    assert handles[1].closed
