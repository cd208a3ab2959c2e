"""Audit 7: DESIGN §3 on real servers (Werkzeug's threaded server, gunicorn
sync and gthread), with the small bodies gunicorn reads instead of sending
them with ``sendfile`` (test_small_bodies.py): framing on one kept-alive
connection, boundaries, a caller's file handed over mid-file, files changing
after they were opened, client hang-ups, ``download_finished`` counts; and
which streams may be sent from their descriptor at all.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import gzip
import http.client
import json
import os
import pathlib
import random
import socket
import struct
import time
import typing as t
import urllib.parse

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from flask import jsonify
from flask import request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from flask_download import download_finished
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import send_download

KIB = 1024
SMALL = random.Random(71).randbytes(4 * KIB)
EXACT = random.Random(72).randbytes(64 * KIB)  # the largest body gunicorn reads
OVER = random.Random(73).randbytes(64 * KIB + 1)  # the smallest it sendfiles
MID = random.Random(74).randbytes(16 * KIB)
LARGE = random.Random(75).randbytes(200 * KIB)
#: What the .gz files decompress to: random bytes, so that the compressed
#: file is no shorter than its content and the two cannot be mistaken.
UNZIPPED = random.Random(76).randbytes(200 * KIB)
SMALL_UNZIPPED = random.Random(77).randbytes(3 * KIB)
#: Large enough that a client that stopped reading cannot have it all in
#: the kernel's socket buffers when it hangs up.
HUGE_SIZE = 16 * 1024 * KIB

FILES = {
    "small.bin": SMALL,
    "exact.bin": EXACT,
    "over.bin": OVER,
    "mid.bin": MID,
    "large.bin": LARGE,
    "data.gz": gzip.compress(UNZIPPED, mtime=0),
    "small.gz": gzip.compress(SMALL_UNZIPPED, mtime=0),
}


class Gunzipped(PathFile):
    """A PathFile whose ``open()`` gives the bytes its .gz file decompresses
    to (a subclass transforming what is on the disk: decompressing,
    decrypting): the stream still has the file's ``fileno()``."""

    def __init__(self, path: t.Any) -> None:
        super().__init__(path)
        with gzip.open(self.path) as stream:
            self.size = len(stream.read())
        self.etag = None

    def open(self) -> t.IO[bytes]:
        return t.cast(t.IO[bytes], _GzipReader(super().open()))


class _GzipReader(gzip.GzipFile):
    """A GzipFile that closes the file it reads when it is closed."""

    def __init__(self, raw: t.IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


class GunzipView(PathDownloadView):
    def get_file(self) -> PathFile:
        return Gunzipped(self.get_path())


def make_app(root: str, counted: bool = True) -> Flask:
    """The views; ``counted``: with a ``download_finished`` receiver, which
    makes gunicorn read every body (it counts what is read), else none, so
    that its ``sendfile`` runs."""
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = root
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    app.add_url_rule(
        "/c8/<path:path>",
        view_func=PathDownloadView.as_view("c8", chunk_size=8 * KIB),
    )
    app.add_url_rule(
        "/gz/<path:path>", view_func=GunzipView.as_view("gz", basename="data.bin")
    )
    events: list[list[t.Any]] = []

    def finished(
        sender: Flask, file: t.Any, bytes_sent: int, completed: bool, **extra: t.Any
    ) -> None:
        events.append([bytes_sent, completed])

    if counted:
        download_finished.connect(finished, app)
        app.extensions["audit7_receiver"] = finished  # blinker holds it weakly

    @app.get("/send-gz/<name>")
    def send_gz(name: str) -> t.Any:
        return send_download(Gunzipped(os.path.join(root, name)), basename="x.bin")

    @app.get("/open/<name>")
    def opened(name: str) -> t.Any:
        """A caller's open file, handed over at ``?at=`` (reached by a read
        of a buffered file with ``?read=1``, which reads ahead of it)."""
        at = request.args.get("at", 0, type=int)
        stream = open(os.path.join(root, name), "rb")  # noqa: SIM115
        if request.args.get("read"):
            stream.read(at)
        else:
            stream.seek(at)
        response = send_download(stream, download_name=name)
        shrink = request.args.get("shrink", type=int)
        if shrink is not None:
            os.truncate(os.path.join(root, name), shrink)
        return response

    @app.get("/state")
    def state() -> t.Any:
        """The download_finished events so far, and the files of ``root``
        this process still holds open."""
        held = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith(root + os.sep):
                    held.append(os.path.basename(target))
        return jsonify(events=events, held=sorted(held))

    return app


def make_wsgi(root: str) -> t.Any:
    """The counted app, and the quiet one under ``/quiet``."""
    return DispatcherMiddleware(
        make_app(root), {"/quiet": make_app(root, counted=False)}
    )


# -- servers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("audit7")
    for name, content in FILES.items():
        (folder / name).write_bytes(content)
    with open(folder / "huge.bin", "wb") as huge:
        huge.truncate(HUGE_SIZE)
    return folder


@pytest.fixture(scope="module", params=["werkzeug", "sync", "gthread"])
def server(request: pytest.FixtureRequest, root: pathlib.Path) -> cabc.Iterator[str]:
    if not pathlib.Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    if request.param == "werkzeug":
        with running_werkzeug(make_wsgi(os.fspath(root))) as url:
            yield url
        return
    options = []
    if request.param == "gthread":
        options = ["--worker-class=gthread", "--threads=2", "--keep-alive=30"]
    app = f"test_audit7_http:make_wsgi({os.fspath(root)!r})"
    with running_gunicorn(app, *options) as url:
        yield url


@pytest.fixture(scope="module")
def gthread(root: pathlib.Path) -> cabc.Iterator[str]:
    options = ["--worker-class=gthread", "--threads=2", "--keep-alive=30"]
    app = f"test_audit7_http:make_wsgi({os.fspath(root)!r})"
    with running_gunicorn(app, *options) as url:
        yield url


@pytest.fixture(params=["counted", "quiet"])
def prefix(request: pytest.FixtureRequest) -> str:
    """Where the app is: with a download_finished receiver (gunicorn reads
    each body to count it), or without (gunicorn sends large ones with
    sendfile)."""
    return "" if request.param == "counted" else "/quiet"


def _address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def fetch(
    url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection(*_address(url), timeout=20)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def state(url: str, prefix: str = "") -> dict[str, t.Any]:
    status, _, body = fetch(url, prefix + "/state")
    assert status == 200
    return t.cast(dict[str, t.Any], json.loads(body))


def settled(url: str, events: int, prefix: str = "") -> dict[str, t.Any]:
    """The server's state once it recorded ``events`` events and holds no
    file of the root open (a threaded server closes a response after its
    last byte reached the client: look again until then)."""
    deadline = time.monotonic() + 20
    while True:
        now = state(url, prefix)
        if len(now["events"]) >= events and not now["held"]:
            return now
        if time.monotonic() > deadline:
            return now
        time.sleep(0.02)


# -- a subclass's open() that transforms the file ----------------------------


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/gz/data.gz", {}, UNZIPPED),
        ("/send-gz/data.gz", {}, UNZIPPED),
        ("/gz/data.gz", {"Range": "bytes=1000-150999"}, UNZIPPED[1000:151000]),
        ("/send-gz/data.gz", {"Range": "bytes=-70000"}, UNZIPPED[-70000:]),
        ("/gz/data.gz", {"Range": "bytes=10-99"}, UNZIPPED[10:100]),
        ("/gz/small.gz", {}, SMALL_UNZIPPED),
    ],
    ids=[
        "view",
        "send_download",
        "large-range",
        "suffix-range",
        "small-range",
        "small",
    ],
)
def test_a_stream_open_gives_is_what_is_sent(
    server: str, prefix: str, path: str, headers: dict[str, str], expected: bytes
) -> None:
    """DESIGN §2/§3: the body is what the wrapper's ``open()`` reads. A
    PathFile subclass may return a stream that transforms the file (here
    GzipFile): its ``fileno()`` is still the file's, and sending from that
    descriptor (gunicorn's sendfile) would send the compressed bytes on
    disk, cut to the announced length, as a 200."""
    status, response_headers, body = fetch(server, prefix + path, headers)
    assert status == (206 if headers else 200)
    assert response_headers["Content-Length"] == str(len(expected))
    assert body == expected


# -- boundaries of gunicorn's small bodies -----------------------------------

#: (method, path, headers, status, body, Content-Length); a multipart body
#: is checked by its parts (a tuple), its length is the body's.
CASES: list[tuple[str, str, dict[str, str], int, bytes | tuple[bytes, ...], int]] = [
    ("GET", "/f/small.bin", {}, 200, SMALL, 4096),
    ("GET", "/f/exact.bin", {}, 200, EXACT, 65536),
    ("GET", "/f/over.bin", {}, 200, OVER, 65537),
    # Two chunks of DOWNLOAD_CHUNK_SIZE, under 64 KiB: sendfile.
    ("GET", "/c8/mid.bin", {}, 200, MID, 16384),
    ("GET", "/c8/small.bin", {}, 200, SMALL, 4096),
    ("GET", "/f/large.bin", {"Range": "bytes=100-65635"}, 206, LARGE[100:65636], 65536),
    ("GET", "/f/large.bin", {"Range": "bytes=100-65636"}, 206, LARGE[100:65637], 65537),
    ("GET", "/f/large.bin", {"Range": "bytes=-65536"}, 206, LARGE[-65536:], 65536),
    ("GET", "/c8/large.bin", {"Range": "bytes=0-8191"}, 206, LARGE[:8192], 8192),
    ("GET", "/c8/large.bin", {"Range": "bytes=0-8192"}, 206, LARGE[:8193], 8193),
    ("HEAD", "/f/small.bin", {}, 200, b"", 4096),
    ("HEAD", "/f/large.bin", {"Range": "bytes=0-9"}, 200, b"", len(LARGE)),
    ("GET", "/f/small.bin", {"Range": "bytes=4096-"}, 416, b"", 0),
    ("GET", "/f/small.bin", {"If-Match": '"other"'}, 412, b"", 0),
    ("GET", "/f/large.bin", {}, 200, LARGE, len(LARGE)),
    ("GET", "/open/large.bin?at=150000", {}, 200, LARGE[150000:], 54800),
    ("GET", "/open/large.bin?at=1000&read=1", {}, 200, LARGE[1000:], 203800),
    ("GET", "/open/small.bin?at=100&read=1", {}, 200, SMALL[100:], 3996),
    (
        *("GET", "/open/small.bin?at=100&read=1", {"Range": "bytes=10-19"}),
        *(206, SMALL[110:120], 10),
    ),
    ("GET", "/open/large.bin?at=150000", {"Range": "bytes=-5"}, 206, LARGE[-5:], 5),
    (
        *("GET", "/open/large.bin?at=100", {"Range": "bytes=0-65535"}),
        *(206, LARGE[100:65636], 65536),
    ),
    ("GET", "/open/small.bin?at=5000", {}, 200, b"", 0),  # past its end
    (
        "GET",
        "/f/small.bin",
        {"Range": "bytes=0-1,10-11"},
        206,
        (SMALL[:2], SMALL[10:12]),
        -1,
    ),
    (
        *("GET", "/open/large.bin?at=100", {"Range": "bytes=0-1,70000-70002"}),
        *(206, (LARGE[100:102], LARGE[70100:70103]), -1),
    ),
    ("GET", "/f/small.bin", {}, 200, SMALL, 4096),
]


def _check(
    case: tuple[str, str, dict[str, str], int, bytes | tuple[bytes, ...], int],
    response: http.client.HTTPResponse,
    body: bytes,
) -> None:
    _, _, _, status, expected, length = case
    assert response.status == status, case[:3]
    if isinstance(expected, tuple):
        content_type = response.headers["Content-Type"]
        assert content_type.startswith("multipart/byteranges; boundary=")
        delimiter = b"\r\n--" + content_type.split("=", 1)[1].encode()
        # The preamble's CRLF is optional before the first delimiter.
        parts = (b"\r\n" + body if body.startswith(b"--") else body).split(delimiter)
        assert parts[-1] == b"--\r\n", case[:3]
        assert [part.split(b"\r\n\r\n", 1)[1] for part in parts[1:-1]] == list(expected)
        length = len(body)
    else:
        assert body == expected, case[:3]
    if status != 412:
        assert response.headers["Content-Length"] == str(length), case[:3]


def test_every_body_on_its_own_connection(server: str, prefix: str) -> None:
    for case in CASES:
        method, path, headers = case[:3]
        conn = http.client.HTTPConnection(*_address(server), timeout=20)
        try:
            conn.request(method, prefix + path, headers=headers)
            response = conn.getresponse()
            _check(case, response, response.read())
        finally:
            conn.close()


class _Socket:
    """What http.client.HTTPResponse needs of a socket (``makefile``): the
    connection's one reader, left open by each response read from it."""

    def __init__(self, stream: t.BinaryIO) -> None:
        self._stream = stream

    def makefile(self, *args: t.Any, **kwargs: t.Any) -> _KeepOpen:
        return _KeepOpen(self._stream)


class _KeepOpen:
    def __init__(self, stream: t.BinaryIO) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._stream, name)

    def close(self) -> None:
        pass


def test_pipelined_requests_stay_in_step(gthread: str, prefix: str) -> None:
    """Every request written at once on one kept-alive connection: each
    answer (small bodies read, large ones sent with sendfile, HEAD, 416,
    412, multipart, a caller's file) is framed exactly, or the next one
    would be read from inside it."""
    raw = b"".join(
        f"{method} {prefix}{path} HTTP/1.1\r\nHost: test\r\n".encode()
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        + b"\r\n"
        for method, path, headers, *_ in CASES
    )
    with socket.create_connection(_address(gthread), timeout=20) as sock:
        sock.sendall(raw)
        reader = _Socket(sock.makefile("rb"))
        for case in CASES:
            response = http.client.HTTPResponse(
                t.cast(socket.socket, reader), method=case[0]
            )
            response.begin()
            assert not response.will_close, case[:3]
            _check(case, response, response.read())


# -- download_finished, hang-ups, files changing -----------------------------


def test_download_finished_counts_the_bytes_of_small_bodies(server: str) -> None:
    """One event a body, with the bytes of that body (none for HEAD, 304,
    412, 416), also when gunicorn reads the body instead of sendfile."""
    asked = [
        ("/f/small.bin", {}, [len(SMALL), True]),
        ("/f/exact.bin", {}, [len(EXACT), True]),
        ("/f/over.bin", {}, [len(OVER), True]),
        ("/f/large.bin", {"Range": "bytes=10-109"}, [100, True]),
        ("/open/small.bin?at=1000", {}, [len(SMALL) - 1000, True]),
        ("/open/small.bin?at=1000", {"Range": "bytes=0-9"}, [10, True]),
        ("/f/small.bin", {"Range": "bytes=9999-"}, None),
        ("/f/small.bin", {"If-Match": '"other"'}, None),
        ("/f/small.bin", {"If-None-Match": "*"}, None),
        ("/open/small.bin?at=1000", {"If-None-Match": "*"}, None),
    ]
    before = len(state(server)["events"])
    for path, headers, _ in asked:
        fetch(server, path, headers)
    fetch(server, "/f/small.bin", method="HEAD")
    expected = [event for _, _, event in asked if event is not None]
    now = settled(server, before + len(expected))
    # Threaded servers close a response after its last byte went out: the
    # next one may be done first.
    assert sorted(now["events"][before:]) == sorted(expected)
    assert now["held"] == []


def _hang_up(url: str, path: str) -> bytes:
    """Ask for ``path``, read the start of the answer, and reset the
    connection (the client is gone)."""
    with socket.create_connection(_address(url), timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        start = sock.recv(64)
        # RST, not FIN: the server's next write fails.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return start


@pytest.mark.parametrize(
    "path", ["/f/huge.bin", "/f/small.bin", "/open/huge.bin?at=7", "/c8/mid.bin"]
)
def test_a_client_that_hangs_up_leaves_no_file_open(
    server: str, prefix: str, path: str
) -> None:
    before = len(state(server, prefix)["events"])
    assert _hang_up(server, prefix + path).startswith(b"HTTP/1.1 200")
    now = settled(server, before + (not prefix), prefix)
    assert now["held"] == []
    if prefix:
        return  # nothing counted
    [(bytes_sent, completed)] = now["events"][before:]
    if "huge" in path:
        # Far more than the socket buffers hold: the body was not all sent.
        assert not completed
        assert bytes_sent < HUGE_SIZE


@pytest.mark.parametrize(
    ("at", "shrink", "expected"),
    [(100, 2048, SMALL[100:2048]), (100, 0, b""), (3000, 2048, b"")],
    ids=["to-half", "to-nothing", "below-where-it-was-handed-over"],
)
def test_a_callers_file_that_shrinks_is_cut_short(
    server: str,
    prefix: str,
    root: pathlib.Path,
    at: int,
    shrink: int,
    expected: bytes,
) -> None:
    """send_download(open(...)) of a small file, truncated after the view
    returned: fewer bytes than announced, never padded, and the connection
    is not kept for another request (it would be read as the rest)."""
    name = f"shrinks-{at}-{shrink}{prefix.strip('/')}.bin"
    (root / name).write_bytes(SMALL)
    before = len(state(server, prefix)["events"])
    conn = http.client.HTTPConnection(*_address(server), timeout=20)
    try:
        conn.request("GET", f"{prefix}/open/{name}?at={at}&shrink={shrink}")
        response = conn.getresponse()
        assert response.headers["Content-Length"] == str(len(SMALL) - at)
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert cut.value.partial == expected
    finally:
        conn.close()
    now = settled(server, before + (not prefix), prefix)
    assert now["held"] == []
    if not prefix:
        assert now["events"][before:] == [[len(expected), False]]


class DescriptorWrapper:
    """A ``wsgi.file_wrapper`` that sends what has a ``fileno()`` from the
    descriptor, its whole file, as uWSGI does; reads anything else."""

    #: Whether each file sent so far went from its descriptor.
    sent: t.ClassVar[list[bool]] = []

    def __init__(self, filelike: t.Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> cabc.Iterator[bytes]:
        fileno = getattr(self.filelike, "fileno", None)
        if fileno is not None:
            try:
                fd = fileno()
            except (OSError, ValueError):
                pass
            else:
                self.sent.append(True)
                yield os.pread(fd, os.fstat(fd).st_size, 0)
                return
        self.sent.append(False)
        while data := self.filelike.read(self.blksize):
            yield data

    def close(self) -> None:
        self.filelike.close()


@pytest.mark.parametrize("path", ["/gz/data.gz", "/send-gz/small.gz"])
def test_a_transformed_stream_is_never_sent_from_its_descriptor(
    root: pathlib.Path, path: str
) -> None:
    """The same on a server that sends whole files from their descriptor."""
    app = make_app(os.fspath(root), counted=False)
    env = {"wsgi.file_wrapper": DescriptorWrapper, "SERVER_SOFTWARE": "uWSGI"}
    DescriptorWrapper.sent = []
    with app.test_client().get(path, environ_overrides=env) as rv:
        assert rv.status_code == 200
        assert rv.data == (UNZIPPED if "data" in path else SMALL_UNZIPPED)
    # A plain file still goes to the server's file_wrapper, descriptor and all.
    with app.test_client().get("/f/large.bin", environ_overrides=env) as rv:
        assert rv.data == LARGE
    assert DescriptorWrapper.sent[-1] is True
