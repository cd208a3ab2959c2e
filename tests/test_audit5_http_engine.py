"""Audit 5: the HTTP engine every view shares (DESIGN §3, signals of §5).

416 without a claimed content type, suffix ranges of empty files, exact
"anyone listening?" checks for the signals, and the precondition / range
matrix on real servers (Werkzeug's threaded server and gunicorn).
"""

from __future__ import annotations

import collections.abc as cabc
import email.utils
import http.client
import os
import pathlib
import re
import typing as t
import urllib.parse
from wsgiref.util import FileWrapper

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from conftest import SAMPLE_FILES
from flask import Flask

from flask_download import download_finished
from flask_download import download_started
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download import VirtualDownloadView
from flask_download.ranges import evaluate_range
from flask_download.ranges import UNSATISFIABLE

DATA = SAMPLE_FILES["data.bin"]
SIZE = len(DATA)
HELLO = SAMPLE_FILES["hello.txt"]
#: A fixed modification time, long past (a strong Last-Modified validator).
MTIME = 1_000_000_000
MTIME_HTTP = email.utils.formatdate(MTIME, usegmt=True)


# -- apps (also imported by gunicorn) -----------------------------------------


def _write_files(root: pathlib.Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.bin").write_bytes(DATA)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "empty.bin").write_bytes(b"")
    for name in ("data.bin", "hello.txt", "empty.bin"):
        os.utime(root / name, (MTIME, MTIME))


def make_app(root: str, max_ranges: int | None = None) -> Flask:
    """Path, virtual (gzip-encoded) and ``send_download`` views over ``root``."""
    app = Flask("audit5_http_engine")
    app.config["DOWNLOAD_ROOT"] = root
    if max_ranges is not None:
        app.config["DOWNLOAD_MAX_RANGES"] = max_ranges
    FlaskDownload(app)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    app.add_url_rule(
        "/gz",
        view_func=VirtualDownloadView.as_view(
            "gz", content=b"\x1f\x8b" + DATA, basename="x.bin", encoding="gzip"
        ),
    )

    @app.route("/send/<name>")
    def send(name: str) -> t.Any:
        return send_download(name, root=root)

    return app


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "engine"
    _write_files(path)
    return path


@pytest.fixture
def engine_app(root: pathlib.Path) -> Flask:
    return make_app(os.fspath(root))


@pytest.fixture
def engine_client(engine_app: Flask) -> t.Any:
    return engine_app.test_client()


@pytest.fixture(scope="module")
def wire_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("audit5") / "engine"
    _write_files(path)
    return path


@pytest.fixture(params=["werkzeug", "gunicorn"], scope="module")
def server(
    request: pytest.FixtureRequest, wire_root: pathlib.Path
) -> cabc.Iterator[str]:
    if request.param == "werkzeug":
        with running_werkzeug(make_app(os.fspath(wire_root))) as url:
            yield url
    else:
        spec = f"tests.test_audit5_http_engine:make_app({os.fspath(wire_root)!r})"
        with running_gunicorn(spec, "--worker-class=gthread", "--threads=2") as url:
            yield url


def _request(
    url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _keep_alive_pair(
    url: str, path: str, first: dict[str, str]
) -> tuple[tuple[int, http.client.HTTPMessage, bytes], tuple[int, bytes]]:
    """Two requests on one connection: ``first``'s answer, then a plain GET."""
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=10)
    try:
        conn.request("GET", path, headers=first)
        response = conn.getresponse()
        one = (response.status, response.headers, response.read())
        conn.request("GET", path)
        second = conn.getresponse()
        return one, (second.status, second.read())
    finally:
        conn.close()


# -- 416 has no Content-Type ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/files/data.bin", SIZE),
        ("/files/hello.txt", len(HELLO)),
        ("/gz", SIZE + 2),
        ("/send/hello.txt", len(HELLO)),
    ],
    ids=["binary", "text", "encoded", "send_download"],
)
def test_416_claims_no_content_type(engine_client: t.Any, path: str, size: int) -> None:
    """An empty 416 said ``Content-Type: text/plain; charset=utf-8`` (the
    file's) and ``Content-Encoding: gzip`` for a body it does not have: like
    the 304 and the 412 it now carries neither (WhiteNoise sends only
    ``Content-Range``)."""
    with engine_client.get(path, headers={"Range": "bytes=100000-"}) as rv:
        assert rv.status_code == 416
        assert rv.data == b""
        assert "Content-Type" not in rv.headers
        assert "Content-Encoding" not in rv.headers
        assert "Content-Disposition" not in rv.headers
        assert rv.headers["Content-Range"] == f"bytes */{size}"
        assert rv.headers["Content-Length"] == "0"
    with engine_client.get(path, headers={"If-Match": '"nope"'}) as failed:
        assert failed.status_code == 412
        assert "Content-Type" not in failed.headers


def test_416_keeps_the_validators(engine_client: t.Any) -> None:
    with engine_client.get("/files/data.bin") as whole:
        etag = whole.headers["ETag"]
    with engine_client.get("/files/data.bin", headers={"Range": "bytes=-0"}) as rv:
        assert rv.status_code == 416
        assert rv.headers["ETag"] == etag
        assert rv.headers["Last-Modified"] == MTIME_HTTP
        assert rv.headers["Accept-Ranges"] == "bytes"


def test_416_on_the_wire_has_no_content_type(server: str) -> None:
    (status, headers, body), (again, content) = _keep_alive_pair(
        server, "/files/hello.txt", {"Range": "bytes=500-"}
    )
    assert status == 416
    assert body == b""
    assert headers.get("Content-Type") is None
    assert headers["Content-Range"] == f"bytes */{len(HELLO)}"
    assert headers["Content-Length"] == "0"
    # The empty body is framed right: the next answer is read intact.
    assert (again, content) == (200, HELLO)


def test_416_of_an_encoded_file_on_the_wire(server: str) -> None:
    status, headers, body = _request(server, "/gz", {"Range": "bytes=5000-"})
    assert status == 416
    assert body == b""
    assert headers.get("Content-Type") is None
    assert headers.get("Content-Encoding") is None


# -- empty representations (RFC 9110 §14.1.1) ---------------------------------


@pytest.mark.parametrize(
    "header", ["bytes=-5", "bytes=-1", "bytes=0-0,-5", "bytes=-5,x"]
)
def test_suffix_range_of_an_empty_file_is_the_whole_file(header: str) -> None:
    """RFC 9110 §14.1.1: "When a selected representation has zero length, the
    only satisfiable form of range-spec is a suffix-range with a non-zero
    suffix-length": it was answered 416 as unsatisfiable."""
    assert (
        evaluate_range(
            range_header=header,
            if_range=None,
            size=0,
            etag=None,
            last_modified=None,
            max_ranges=50,
        )
        is None
    )


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=5-", "bytes=0-0", "bytes=-0"])
def test_other_ranges_of_an_empty_file_are_unsatisfiable(header: str) -> None:
    assert (
        evaluate_range(
            range_header=header,
            if_range=None,
            size=0,
            etag=None,
            last_modified=None,
            max_ranges=50,
        )
        is UNSATISFIABLE
    )


def test_empty_file_ranges_on_the_wire(server: str) -> None:
    status, headers, body = _request(server, "/files/empty.bin", {"Range": "bytes=-5"})
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == "0"
    assert headers.get("Content-Range") is None
    status, headers, body = _request(server, "/files/empty.bin", {"Range": "bytes=5-"})
    assert (status, body) == (416, b"")
    assert headers["Content-Range"] == "bytes */0"
    assert headers.get("Content-Type") is None


# -- signals: exact "is anyone listening" --------------------------------------


class RecordingWrapper(FileWrapper):
    """wsgiref's file wrapper, remembering what it was given."""

    given: t.ClassVar[list[t.Any]] = []

    def __init__(self, filelike: t.Any, blksize: int = 8192) -> None:
        self.given.append(filelike)
        super().__init__(filelike, blksize)


@pytest.fixture
def wrapper_environ() -> dict[str, t.Any]:
    RecordingWrapper.given = []
    return {"wsgi.file_wrapper": RecordingWrapper}


def _finished_receiver(sink: list[dict[str, t.Any]]) -> cabc.Callable[..., None]:
    def receiver(sender: t.Any, **kwargs: t.Any) -> None:
        sink.append({"sender": sender, **kwargs})

    return receiver


def test_sendfile_is_used_again_after_a_receiver_is_disconnected(
    engine_app: Flask, engine_client: t.Any, wrapper_environ: dict[str, t.Any]
) -> None:
    """blinker keeps a receiver disconnected from one sender in
    ``Signal.receivers``: the body was still counted (no ``fileno``, so no
    ``sendfile``) for a receiver nobody would call."""
    heard: list[dict[str, t.Any]] = []
    receiver = _finished_receiver(heard)
    download_finished.connect(receiver, engine_app)
    download_started.connect(receiver, engine_app)
    download_finished.disconnect(receiver, engine_app)
    download_started.disconnect(receiver, engine_app)
    try:
        with engine_client.get("/files/data.bin", environ_base=wrapper_environ) as rv:
            assert rv.status_code == 200
            assert rv.data == DATA
    finally:
        download_finished.disconnect(receiver)
        download_started.disconnect(receiver)
    [filelike] = RecordingWrapper.given
    assert hasattr(filelike, "fileno")
    assert heard == []


def test_a_receiver_of_another_app_leaves_sendfile_on(
    engine_app: Flask, engine_client: t.Any, wrapper_environ: dict[str, t.Any]
) -> None:
    other = Flask("other")
    heard: list[dict[str, t.Any]] = []
    with (
        download_finished.connected_to(_finished_receiver(heard), other),
        engine_client.get("/files/data.bin", environ_base=wrapper_environ) as rv,
    ):
        assert rv.data == DATA
    [filelike] = RecordingWrapper.given
    assert hasattr(filelike, "fileno")
    assert heard == []


@pytest.mark.parametrize("via", ["app", "any"])
@pytest.mark.parametrize(
    ("headers", "content"),
    [({}, DATA), ({"Range": "bytes=10-19"}, DATA[10:20])],
    ids=["whole", "range"],
)
def test_a_connected_receiver_still_hears_every_download(
    engine_app: Flask,
    engine_client: t.Any,
    wrapper_environ: dict[str, t.Any],
    via: str,
    headers: dict[str, str],
    content: bytes,
) -> None:
    started: list[dict[str, t.Any]] = []
    finished: list[dict[str, t.Any]] = []
    sender: t.Any = engine_app if via == "app" else None
    on_started = _finished_receiver(started)
    on_finished = _finished_receiver(finished)
    # A receiver that was disconnected from this app before stays disconnected;
    # the one connected afterwards is heard.
    stale = _finished_receiver([])
    download_finished.connect(stale, engine_app)
    download_finished.disconnect(stale, engine_app)
    if sender is None:
        download_started.connect(on_started)
        download_finished.connect(on_finished)
    else:
        download_started.connect(on_started, sender)
        download_finished.connect(on_finished, sender)
    try:
        for environ in (wrapper_environ, {}):
            with engine_client.get(
                "/files/data.bin", headers=headers, environ_base=environ
            ) as rv:
                assert rv.data == content
    finally:
        for signal, receiver in (
            (download_started, on_started),
            (download_finished, on_finished),
            (download_finished, stale),
        ):
            signal.disconnect(receiver)
    assert [s["sender"] for s in started] == [engine_app, engine_app]
    assert [(f["bytes_sent"], f["completed"]) for f in finished] == [
        (len(content), True),
        (len(content), True),
    ]
    [filelike] = RecordingWrapper.given
    assert not hasattr(filelike, "fileno")  # counted: read through Python


# -- the precondition and range matrix on real servers -------------------------

#: The ETag of /files/data.bin, filled in by ``etag`` below.
E = "{etag}"
RFC850 = "Sunday, 09-Sep-01 01:46:40 GMT"  # MTIME in the obsolete RFC 850 form
ASCTIME = "Sun Sep  9 01:46:40 2001"  # MTIME in asctime form
EARLIER_ASCTIME = "Sun Sep  9 01:46:39 2001"
EARLIER_RFC850 = "Sunday, 09-Sep-01 01:46:39 GMT"

MATRIX: list[tuple[str, dict[str, str], int]] = [
    ("match-and-none-match", {"If-Match": E, "If-None-Match": E}, 304),
    ("failed-match-beats-none-match", {"If-Match": '"x"', "If-None-Match": E}, 412),
    ("weak-if-match-fails", {"If-Match": f"W/{E}"}, 412),
    ("weak-if-none-match-matches", {"If-None-Match": f"W/{E}"}, 304),
    ("listed-if-match", {"If-Match": f'"a", {E}'}, 200),
    ("star-if-none-match", {"If-None-Match": "*"}, 304),
    (
        "star-if-none-match-beats-range",
        {"If-None-Match": "*", "Range": "bytes=0-9"},
        304,
    ),
    ("star-if-match", {"If-Match": "*", "Range": "bytes=0-9"}, 206),
    (
        "match-range-if-range",
        {"If-Match": E, "Range": "bytes=0-9", "If-Range": E},
        206,
    ),
    (
        "weak-if-range-sends-all",
        {"If-None-Match": '"x"', "Range": "bytes=0-9", "If-Range": f"W/{E}"},
        200,
    ),
    ("other-if-range-sends-all", {"Range": "bytes=0-9", "If-Range": '"x"'}, 200),
    ("date-if-range", {"Range": "bytes=0-9", "If-Range": MTIME_HTTP}, 206),
    ("rfc850-if-range", {"Range": "bytes=0-9", "If-Range": RFC850}, 206),
    ("earlier-if-range", {"Range": "bytes=0-9", "If-Range": EARLIER_ASCTIME}, 200),
    (
        "if-match-skips-ius",
        {"If-Match": E, "If-Unmodified-Since": EARLIER_ASCTIME},
        200,
    ),
    ("ius-rfc850-fails", {"If-Unmodified-Since": EARLIER_RFC850}, 412),
    ("ius-asctime-passes", {"If-Unmodified-Since": ASCTIME}, 200),
    ("ims-rfc850", {"If-Modified-Since": RFC850}, 304),
    ("ims-asctime", {"If-Modified-Since": ASCTIME}, 304),
    ("ims-beats-range", {"If-Modified-Since": MTIME_HTTP, "Range": "bytes=0-9"}, 304),
    (
        "ims-earlier-range",
        {"If-Modified-Since": EARLIER_ASCTIME, "Range": "bytes=0-9"},
        206,
    ),
    (
        "none-match-skips-ims",
        {"If-None-Match": '"x"', "If-Modified-Since": MTIME_HTTP},
        200,
    ),
    (
        "ius-fails-before-none-match",
        {"If-Unmodified-Since": EARLIER_RFC850, "If-None-Match": E},
        412,
    ),
    ("uppercase-unit", {"Range": "BYTES=0-9"}, 206),
    ("spaces-in-set", {"Range": "bytes= 0-4 ,\t5-9 "}, 206),
    ("zero-zero", {"Range": "bytes=0-0"}, 206),
    ("suffix-zero", {"Range": "bytes=-0"}, 416),
    ("suffix-larger-than-file", {"Range": f"bytes=-{SIZE * 10}"}, 206),
    ("unknown-unit", {"Range": "items=0-9"}, 200),
    ("malformed", {"Range": "bytes=9-0"}, 200),
]


@pytest.fixture(scope="module")
def etag(server: str) -> str:
    status, headers, _ = _request(server, "/files/data.bin")
    assert status == 200
    return str(headers["ETag"])


def _fill(headers: dict[str, str], etag: str) -> dict[str, str]:
    return {name: value.replace(E, etag) for name, value in headers.items()}


def _comparable(headers: http.client.HTTPMessage) -> dict[str, str]:
    return {
        k.lower(): v
        for k, v in headers.items()
        if k.lower() not in ("date", "server", "connection", "keep-alive")
    }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [(headers, status) for _, headers, status in MATRIX],
    ids=[name for name, _, _ in MATRIX],
)
def test_precondition_and_range_matrix(
    server: str, etag: str, headers: dict[str, str], expected: int
) -> None:
    """RFC 9110 §13.2.2 order, weak/strong comparison in each header, the
    three date forms, then Range: GET, and HEAD with the same headers
    (a HEAD ignores Range: the 200's headers, no body)."""
    sent = _fill(headers, etag)
    status, got, body = _request(server, "/files/data.bin", sent)
    assert status == expected
    if status == 200:
        assert body == DATA
        assert got["Content-Length"] == str(SIZE)
    elif status == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", got["Content-Range"])
        assert match is not None
        first, last, total = map(int, match.groups())
        assert total == SIZE
        assert body == DATA[first : last + 1]
        assert got["Content-Length"] == str(len(body))
    else:
        assert body == b""
        assert got.get("Content-Type") is None
        assert got.get("Content-Disposition") is None
    if status in (304, 412):
        assert got.get("Content-Length") in (None, "0")
    if status == 304:
        assert got["ETag"] == etag
        assert got["Last-Modified"] == MTIME_HTTP

    # HEAD: the status GET has without Range handling, the same headers.
    head_status, head, head_body = _request(
        server, "/files/data.bin", sent, method="HEAD"
    )
    assert head_body == b""
    if status in (206, 416):
        assert head_status == 200
        _, plain, _ = _request(server, "/files/data.bin", method="HEAD")
        assert _comparable(head) == _comparable(plain)
        assert head["Content-Length"] == str(SIZE)
    else:
        assert head_status == status
        assert _comparable(head) == _comparable(got)


# -- several ranges -------------------------------------------------------------


def _parts(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/byteranges body strictly (RFC 9110 §14.6)."""
    match = re.fullmatch(
        r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})", content_type
    )
    assert match is not None, content_type
    delimiter = b"\r\n--" + match.group(1).encode()
    assert body.endswith(delimiter + b"--\r\n")
    chunks = body[: -len(delimiter + b"--\r\n")].split(delimiter)
    assert chunks[0] == b""  # an empty preamble
    parts = []
    for chunk in chunks[1:]:
        assert chunk.startswith(b"\r\n")
        head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        assert sep
        headers = dict(
            line.split(": ", 1) for line in head.decode("ascii").split("\r\n")
        )
        parts.append((headers, data))
    return parts


def _spread(count: int) -> str:
    return "bytes=" + ",".join(f"{i * 20}-{i * 20 + 9}" for i in range(count))


def test_exactly_max_ranges_are_multipart(server: str) -> None:
    status, headers, body = _request(server, "/files/data.bin", {"Range": _spread(50)})
    assert status == 206
    parts = _parts(headers["Content-Type"], body)
    assert len(parts) == 50
    for i, (part_headers, data) in enumerate(parts):
        start = i * 20
        assert part_headers == {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"bytes {start}-{start + 9}/{SIZE}",
        }
        assert data == DATA[start : start + 10]
    assert headers["Content-Length"] == str(len(body))


def test_one_range_over_max_is_the_whole_file(server: str) -> None:
    status, headers, body = _request(server, "/files/data.bin", {"Range": _spread(51)})
    assert (status, body) == (200, DATA)
    assert headers.get("Content-Range") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-599,100-523", (206, "bytes 0-599/1024")),  # 600 + 424 == SIZE
        ("bytes=0-599,100-524", (200, None)),  # one byte more than the file
        ("bytes=0-511,512-1023", (206, "bytes 0-1023/1024")),  # adjacent, whole
    ],
    ids=["exactly-size", "one-over", "adjacent-halves"],
)
def test_ranges_adding_up_to_the_size(
    server: str, header: str, expected: tuple[int, str | None]
) -> None:
    status, headers, body = _request(server, "/files/data.bin", {"Range": header})
    assert (status, headers.get("Content-Range")) == expected
    if status == 200:
        assert body == DATA
    else:
        assert headers["Content-Type"] == "application/octet-stream"
        assert body == DATA[: len(body)]


def test_text_parts_name_the_charset(server: str) -> None:
    status, headers, body = _request(
        server, "/files/hello.txt", {"Range": "bytes=0-1,5-6"}
    )
    assert status == 206
    parts = _parts(headers["Content-Type"], body)
    assert [p[0]["Content-Type"] for p in parts] == ["text/plain; charset=utf-8"] * 2
    assert [p[1] for p in parts] == [HELLO[0:2], HELLO[5:7]]
    # Each part's Content-Range, the boundary and the Content-Length agree.
    assert headers["Content-Length"] == str(len(body))
    assert headers.get("Content-Range") is None
