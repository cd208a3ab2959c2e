"""The adversarial harness: a real WSGI server on 127.0.0.1 and a raw client.

HTTP client libraries normalise ``..`` and ``%2e``, fold headers and refuse
control characters, so every request here is written byte for byte on a
socket. Every answer goes through :func:`check_invariants`: never a 5xx,
never a traceback, no header added or split, and the bytes of the secret
files planted outside the roots never appear.

The app (:func:`make_app`) serves one route per view class under attack;
optional views (storage, HTTP proxy, SQLAlchemy rows) are mounted when their
module and dependencies import.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import gzip
import importlib
import io
import os
import pathlib
import re
import socket
import socketserver
import threading
import typing as t
import uuid

import pytest
from conftest import serving
from flask import abort
from flask import Flask
from flask import got_request_exception
from flask import request
from werkzeug.serving import make_server
from werkzeug.serving import WSGIRequestHandler

from flask_download import DownloadFile
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download.pytest_plugin import write_sample_files

#: Content of every secret file planted outside the roots (and of the
#: upstream server's ``/secret``). It must never appear in any response.
SECRET = b"SECRET-7c1e5b0d-do-not-serve"

#: Header names the app may send. Anything else was added by an attack
#: (``Set-Cookie``, ``X-Injected``...) or leaked from an upstream.
EXPECTED_HEADERS = frozenset(
    {
        "accept-ranges",
        "cache-control",
        "connection",
        "content-disposition",
        "content-encoding",
        "content-length",
        "content-range",
        "content-security-policy",
        "content-type",
        "date",
        "etag",
        "last-modified",
        "location",
        "server",
        "transfer-encoding",
        "vary",
        "x-content-type-options",
    }
)
#: Headers that may appear at most once.
SINGLETON_HEADERS = (
    "content-disposition",
    "content-encoding",
    "content-length",
    "content-range",
    "content-security-policy",
    "content-type",
    "etag",
    "last-modified",
    "location",
    "x-content-type-options",
)
# RFC 9110 §5.1 / §5.5: field-name is a token; field-value is VCHAR, obs-text,
# SP and HTAB only (no CR, LF, NUL or other controls).
_HEADER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*")
_STATUS_LINE = re.compile(
    rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?"
)

#: Size of ``big.bin``, the multi-MiB file the reliability tests abort.
BIG_SIZE = 4 * 1024 * 1024 + 7
#: Size of ``ranges.bin``, the file the Range tests ask slices of.
RANGES_SIZE = 20_000


def big_content() -> bytes:
    """The content of ``big.bin`` (no byte run equals :data:`SECRET`)."""
    return bytes(range(256)) * (BIG_SIZE // 256) + b"x" * (BIG_SIZE % 256)


def ranges_content() -> bytes:
    """The content of ``ranges.bin``: every position distinguishable."""
    return bytes((i * 31 + i // 251) % 256 for i in range(RANGES_SIZE))


# -- the raw client ------------------------------------------------------------


@dataclasses.dataclass
class RawResponse:
    """One answer read off the socket until the server closed it."""

    #: Every byte received.
    raw: bytes
    #: The request method (a HEAD answer must have no body).
    method: str
    status: int = 0
    #: The header lines as sent (without CRLF), in order.
    header_lines: list[bytes] = dataclasses.field(default_factory=list)
    #: ``(name, value)`` pairs, names as sent, values decoded as Latin-1.
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: The body (de-chunked when the server chunked it).
    body: bytes = b""
    #: Exceptions the app raised while answering (for failure messages).
    errors: list[str] = dataclasses.field(default_factory=list)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    def __repr__(self) -> str:
        head = self.raw.partition(b"\r\n\r\n")[0]
        return f"<RawResponse {self.status} {head[:2000]!r} body={len(self.body)}B>"


def _dechunk(data: bytes) -> bytes:
    # RFC 9112 §7.1; tolerant of a body cut short (the server may abort).
    out = bytearray()
    while data:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            break
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def parse_response(raw: bytes, method: str) -> RawResponse:
    """Split a raw answer into status, header lines and body."""
    response = RawResponse(raw=raw, method=method)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return response
    status_line, *lines = head.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(status_line)
    assert match is not None, f"malformed status line {status_line!r}"
    response.status = int(match.group(1))
    response.header_lines = lines
    for line in lines:
        name, _, value = line.partition(b":")
        response.headers.append(
            (name.decode("latin-1"), value.strip(b" \t").decode("latin-1"))
        )
    if "chunked" in (response.header("Transfer-Encoding") or "").lower():
        body = _dechunk(body)
    response.body = body
    return response


def check_invariants(response: RawResponse) -> RawResponse:
    """The global invariants every answer of the app must keep.

    Never a 5xx, never a traceback in the bytes, every header line well
    formed with an expected name (nothing added or split: no CR/LF leaked
    into a value), singletons sent once, no body for HEAD, never more body
    than ``Content-Length``, ``nosniff`` on every download, and never the
    bytes of a secret file.
    """
    raw = response.raw
    errors = "".join(response.errors)
    assert raw, "the server closed the connection without answering"
    assert response.status, f"no complete status line and headers: {raw[:500]!r}"
    assert response.status < 500, f"{response!r}\napp errors:\n{errors}"
    assert SECRET not in raw, f"the secret leaked: {response!r}"
    for marker in (b"Traceback", b'File "'):
        assert marker not in raw, f"a traceback leaked: {response!r}"
    names: list[str] = []
    for line in response.header_lines:
        assert _HEADER_LINE.fullmatch(line), f"malformed header line {line!r}"
        names.append(line.partition(b":")[0].decode("latin-1").lower())
    unexpected = set(names) - EXPECTED_HEADERS
    assert not unexpected, f"unexpected headers {unexpected}: {response!r}"
    for name in SINGLETON_HEADERS:
        assert names.count(name) <= 1, f"{name} sent {names.count(name)} times"
    for line in response.header_lines:
        # What attacks try to add (in a value, the same text is harmless).
        assert not line.lower().startswith(
            (b"x-injected", b"set-cookie", b"x-accel", b"x-sendfile")
        ), f"injected header line {line!r}"
    if response.method == "HEAD":
        assert response.body == b"", "a HEAD answer has a body"
    length = response.header("Content-Length")
    if length is not None and response.method != "HEAD":
        assert length.isdigit(), f"Content-Length {length!r}"
        # Shorter only when the server cut the body (a file truncated while
        # it was sent); never longer.
        assert len(response.body) <= int(length)
    if response.status in (200, 206):
        assert response.get_all("X-Content-Type-Options") == ["nosniff"]
    return response


def raw_request(
    port: int, data: bytes, *, method: str = "GET", timeout: float = 10.0
) -> RawResponse:
    """Send ``data`` as is, read until the server closes, parse (unchecked)."""
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            # Half-close: the request is complete. (Werkzeug's server
            # otherwise waits 10 ms for more request bytes after the body.)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered (431...) before reading it all
        while True:
            try:
                chunk = sock.recv(256 * 1024)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return parse_response(b"".join(chunks), method)


HeaderList = cabc.Sequence[tuple[str | bytes, str | bytes]]


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def build_request(
    target: str | bytes,
    headers: HeaderList = (),
    *,
    method: str = "GET",
    host: str = "127.0.0.1",
) -> bytes:
    """A raw HTTP/1.1 request with ``Connection: close``; nothing is escaped."""
    lines = [
        method.encode("ascii") + b" " + _bytes(target) + b" HTTP/1.1",
        b"Host: " + host.encode("ascii"),
        b"Connection: close",
    ]
    lines += [_bytes(name) + b": " + _bytes(value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class LiveServer:
    """A real WSGI server in a thread of this process, on 127.0.0.1."""

    def __init__(self, server: t.Any, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        self.port: int = server.server_address[1]
        #: Tracebacks of exceptions the app raised, in order.
        self.errors: list[str] = []

    def raw(self, data: bytes, *, method: str = "GET") -> RawResponse:
        """Send raw bytes; the answer is checked with :func:`check_invariants`."""
        seen = len(self.errors)
        response = raw_request(self.port, data, method=method)
        response.errors = self.errors[seen:]
        return check_invariants(response)

    def request(
        self, target: str | bytes, headers: HeaderList = (), *, method: str = "GET"
    ) -> RawResponse:
        """Send a request built by :func:`build_request`, checked."""
        data = build_request(target, headers, method=method, host=self.host)
        return self.raw(data, method=method)

    def follow(self, response: RawResponse, headers: HeaderList = ()) -> RawResponse:
        """Follow a redirect once (to this server only), checked."""
        location = response.header("Location")
        assert location is not None, response
        prefix = f"http://{self.host}"
        assert location.startswith(("/", prefix)), location
        if location.startswith(prefix):
            location = location[len(prefix) :] or "/"
        return self.request(location, headers)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: t.Any) -> None:
        pass


def start_server(app: t.Any) -> LiveServer:
    """Serve ``app`` with Werkzeug's threaded server on a free port."""
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LiveServer(server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.shutdown()
    live.server.server_close()
    live.thread.join(10)


# -- the files under attack ----------------------------------------------------

#: File names that Windows treats as devices; plain files on this system.
DEVICE_NAMES = (
    "CON",
    "con",
    "NUL.txt",
    "nul.txt",
    "com1",
    "COM1.log",
    "LPT9",
    "aux",
    # Issue #11: every other spelling Windows accepts.
    "COM\u00b9",
    "lpt\u00b2.txt",
    "CONIN$",
    "conout$.log",
    "CON ",
    "nul.",
    "aux .txt",
    "PRN. .",
)
#: Names holding a C1 control (NEL, CSI): plain files here, refused anyway.
C1_NAMES = ("hello\x85.txt", "\x9b31m.txt")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where everything lives on disk."""

    base: pathlib.Path
    root: pathlib.Path
    secret: pathlib.Path
    evil: pathlib.Path


def make_layout(base: pathlib.Path) -> Layout:
    """Write the root, the secrets next to it, and the traps inside it.

    ``base/secret.txt`` and ``base/root-evil/secret.txt`` (a sibling whose
    name starts with the root's) hold :data:`SECRET`; the root holds the
    sample files, device-named files, links out, a FIFO, a directory.
    """
    root = write_sample_files(base / "root")
    secret = base / "secret.txt"
    secret.write_bytes(SECRET)
    evil = base / "root-evil"
    evil.mkdir()
    (evil / "secret.txt").write_bytes(SECRET)
    (root / "big.bin").write_bytes(big_content())
    (root / "ranges.bin").write_bytes(ranges_content())
    (root / "image.svg").write_bytes(
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    )
    (root / "script.js").write_bytes(b"alert(1)\n")
    (root / "data.xml").write_bytes(b"<?xml version='1.0'?><a/>\n")
    (root / "page.xhtml").write_bytes(b"<html xmlns='http://www.w3.org/1999/xhtml'/>")
    (root / "noext").write_bytes(b"<html><script>alert(1)</script>")
    for name in C1_NAMES:
        (root / name).write_bytes(b"c1\n")
    for name in DEVICE_NAMES:
        (root / name).write_bytes(b"device-named file\n")
    (root / "sub" / "CON").write_bytes(b"device-named file\n")
    # Links out of the root: absolute, relative, to a directory, to the
    # sibling-prefix directory, to a device; and one that stays inside.
    (root / "link-out.txt").symlink_to(secret)
    (root / "link-out-rel.txt").symlink_to(pathlib.Path("..") / "secret.txt")
    (root / "link-dir").symlink_to(base, target_is_directory=True)
    (root / "sub" / "link-up.txt").symlink_to(pathlib.Path("../../secret.txt"))
    (root / "evil-link.txt").symlink_to(evil / "secret.txt")
    (root / "evil-dir").symlink_to(pathlib.Path("../root-evil"))
    (root / "zero").symlink_to("/dev/zero")
    (root / "loop").symlink_to(root / "loop")
    (root / "link-in.txt").symlink_to("hello.txt")
    os.mkfifo(root / "fifo")
    return Layout(base=base, root=root, secret=secret, evil=evil)


# -- optional views ------------------------------------------------------------


def _optional(module: str, *names: str) -> tuple[t.Any, ...] | None:
    try:
        imported = importlib.import_module(f"flask_download.{module}")
        return tuple(getattr(imported, name) for name in names)
    except (ImportError, AttributeError):
        return None


def memory_storage(prefix: str) -> t.Any:
    """The global fsspec memory filesystem (``memory://`` URLs use it)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for key, content in {
        f"{prefix}/root/hello.txt": b"Hello, world!\n",
        f"{prefix}/root/sub/nested.txt": b"nested\n",
        f"{prefix}/root/CON": b"device-named file\n",
        f"{prefix}/root/NUL.txt": b"device-named file\n",
        f"{prefix}/secret.txt": SECRET,
        f"{prefix}/root-evil/secret.txt": SECRET,
    }.items():
        fs.pipe(key, content)
    return fs


def _add_storage_routes(app: Flask, layout: Layout, prefix: str) -> bool:
    found = _optional("storage", "StorageDownloadView")
    if found is None:
        return False
    try:
        memory_storage(prefix)
    except ImportError:
        return False
    (view,) = found
    app.add_url_rule(
        "/storage-mem/<path:path>",
        view_func=view.as_view("storage_mem", storage=f"memory://{prefix}/root"),
    )
    app.add_url_rule(
        "/storage-disk/<path:path>",
        view_func=view.as_view("storage_disk", storage=f"file://{layout.root}"),
    )
    return True


#: ``file`` column values of the ``Document`` rows under attack (owner alice).
ROW_PATHS: dict[str, str] = {
    "dotdot": "../secret.txt",
    "dotdot-nested": "sub/../../secret.txt",
    "sibling": "../root-evil/secret.txt",
    "absolute": "",  # filled with the secret's absolute path
    "absolute-slashes": "",  # "//" + the secret's absolute path
    "backslash": "..\\secret.txt",
    "drive": "C:/secret.txt",
    "unc": "\\\\host\\share\\secret.txt",
    "device": "CON",
    "nul": "hello.txt\x00.png",
    "link-out": "link-out.txt",
    "link-sibling": "evil-link.txt",
    "link-dir": "link-dir/secret.txt",
    "directory": "sub",
    "dot": ".",
    "empty": "",
    "fifo": "fifo",
}
#: Ids of the rows of :data:`ROW_PATHS`, in order, from 10.
ROW_IDS = {name: 10 + i for i, name in enumerate(ROW_PATHS)}


def _add_object_routes(app: Flask, layout: Layout) -> bool:
    found = _optional("objects", "ObjectDownloadView")
    if found is None:
        return False
    try:
        import sqlalchemy as sa
        import sqlalchemy.orm as orm
    except ImportError:
        return False
    (view,) = found

    class Base(orm.DeclarativeBase):
        pass

    class Document(Base):
        __tablename__ = "document"
        id = sa.Column(sa.Integer, primary_key=True)
        owner = sa.Column(sa.String, nullable=False)
        file = sa.Column(sa.String)
        name = sa.Column(sa.String)

    engine = sa.create_engine(f"sqlite:///{layout.base / 'security.db'}")
    Base.metadata.create_all(engine)
    paths = dict(ROW_PATHS)
    paths["absolute"] = os.fspath(layout.secret)
    paths["absolute-slashes"] = "//" + os.fspath(layout.secret)
    with orm.Session(engine) as session:
        session.add(Document(id=1, owner="alice", file="hello.txt", name="a.txt"))
        session.add(Document(id=2, owner="bob", file="hello.txt", name="b.txt"))
        session.add(Document(id=3, owner="alice", file=None, name="null.txt"))
        for name, value in paths.items():
            session.add(Document(id=ROW_IDS[name], owner="alice", file=value))
        session.commit()
    sessions = orm.sessionmaker(engine)

    class OwnDocumentView(view):  # type: ignore[misc,valid-type]
        model = Document
        basename_field = "name"
        session = sessions
        cache_control = "private, max-age=60"

        def get_query(self) -> t.Any:
            user = request.args.get("user", "alice")
            return super().get_query().where(Document.owner == user)

    app.add_url_rule("/objects/<int:id>", view_func=OwnDocumentView.as_view("objects"))
    app.add_url_rule(
        "/objects-signed/<int(signed=True):id>",
        view_func=OwnDocumentView.as_view("objects_signed"),
    )
    app.add_url_rule(
        "/objects-any/<id>", view_func=OwnDocumentView.as_view("objects_any")
    )
    app.extensions["security_engine"] = engine
    return True


def _add_proxy_routes(app: Flask) -> bool:
    found = _optional("http", "HTTPDownloadView")
    if found is None:
        return False
    try:
        import urllib3  # noqa: F401
    except ImportError:
        return False
    (view,) = found

    class ClientURLView(view):  # type: ignore[misc,valid-type]
        """The dangerous pattern: the URL comes from the client."""

        timeout = 5.0

        def get_url(self) -> str:
            return request.args.get("url", "")

    # No allowlist: only public addresses.
    app.add_url_rule("/proxy", view_func=ClientURLView.as_view("proxy"))
    # An allowlist that the attacks try to get around.
    app.add_url_rule(
        "/proxy-allowlist",
        view_func=ClientURLView.as_view(
            "proxy_allowlist", allowed_hosts=("allowed.example",)
        ),
    )
    # The upstream on 127.0.0.1 is allowed explicitly (and nothing else).
    app.add_url_rule(
        "/proxy-local",
        view_func=ClientURLView.as_view("proxy_local", allowed_hosts=("127.0.0.1",)),
    )
    return True


# -- names ---------------------------------------------------------------------

#: Hostile client-side names, served by ``/fixed/<key>`` (as a row or a
#: disk listing would give them, whatever a URL can carry).
HOSTILE_NAMES: dict[str, str] = {
    "crlf-header": "evil\r\nSet-Cookie: a=b.txt",
    "lf-header": "evil\nX-Injected: 1.txt",
    "cr-header": "evil\rX-Injected: 1.txt",
    "crlf-body": "evil\r\n\r\n<script>alert(1)</script>.html",
    "nul": "evil\x00.txt",
    "del": "evil\x7f.txt",
    "tab": "a\tb.txt",
    "c1-controls": "a\x85b\x9bc.txt",
    "bidi-rlo": "invoice\u202egpj.exe",
    "bidi-isolates": "a\u2066b\u2069\u200f.txt",
    "line-separator": "a\u2028b\u2029.txt",
    "quote-add-filename-star": "a.txt\"; filename*=UTF-8''evil.exe",
    "quote-add-filename": 'a.txt"; filename="evil.exe',
    "semicolon-filename": "a.txt; filename=evil.exe",
    "semicolon-filename-star": "a.txt; filename*=UTF-8''evil.exe",
    "backslash-quote": 'a\\"; filename*=x.exe',
    "unicode-quote": "\u00e9t\u00e9\"; filename*=UTF-8''evil.exe",
    "unicode-semicolon": "\u00e9t\u00e9; filename=evil.exe",
    "percent-crlf": "%0d%0aX-Injected: 1.txt",
    "10kb-ascii": "a" * 10_240 + ".txt",
    "10kb-unicode": "\u00e9" * 10_240 + ".txt",
    "10kb-emoji": "\U0001f4c4" * 10_240 + ".pdf",
    "10kb-extension": "a." + "b" * 10_240,
    "10kb-quotes": '"' * 10_240,
    "10kb-crlf": "\r\n" * 5_120 + "x.txt",
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "spaces": "   ",
    "controls-only": "\r\n\x00\x7f",
    "bidi-only": "\u202e",
    "path": "../../etc/passwd",
    "windows-path": "..\\..\\boot.ini",
    "latin1": "\xff\xfe.txt",
    "surrogate-escape": "caf\udce9.txt",
    "emoji": "\U0001f4c4 report.pdf",
    "fullwidth-quote": "a\uff02; filename=b.txt",
    "only-extension": ".htaccess",
    "unicode-dot": "\u00e9.",
}


class _FixedNameView(VirtualDownloadView):
    content = b"name test\n"

    def get_basename(self) -> str | None:
        key = self.kwargs.get("key", "")
        if key not in HOSTILE_NAMES:
            abort(404)
        return HOSTILE_NAMES[key]


class _QueryNameView(VirtualDownloadView):
    content = b"name test\n"

    def get_basename(self) -> str | None:
        return request.args.get("n")


class _PathNameView(VirtualDownloadView):
    content = b"name test\n"

    def get_basename(self) -> str | None:
        return str(self.kwargs.get("name"))


# -- reliability hooks ---------------------------------------------------------

#: Counters of the ``/counted/`` view: how often a file was opened.
OPEN_COUNTS: dict[str, int] = {"opens": 0}


class _CountingPathFile(PathFile):
    def open(self) -> t.IO[bytes]:
        OPEN_COUNTS["opens"] += 1
        return super().open()


class _CountingView(PathDownloadView):
    def get_file(self) -> DownloadFile:
        return _CountingPathFile(self.get_path())


#: Version markers of the race files: each version is one byte repeated.
RACE_V1 = b"1"
RACE_V2 = b"2"
RACE_SIZE = 1024 * 1024


class _ReplacedBeforeOpenView(PathDownloadView):
    """Replaces the file between the view's ``stat`` and the body's ``open``."""

    def get_file(self) -> DownloadFile:
        path = self.get_path()
        file = PathFile(path)
        replacement = path + ".v2"
        pathlib.Path(replacement).write_bytes(RACE_V2 * RACE_SIZE)
        os.replace(replacement, path)
        return file


class _HookedReader(io.RawIOBase):
    """Calls ``hook`` once, after the first read of the wrapped handle."""

    def __init__(self, handle: t.IO[bytes], hook: cabc.Callable[[], None]) -> None:
        self._handle = handle
        self._hook: cabc.Callable[[], None] | None = hook

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def fileno(self) -> int:
        return self._handle.fileno()

    def readinto(self, buffer: t.Any) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def _mid_stream_view(action: str) -> type[PathDownloadView]:
    class MidStreamFile(PathFile):
        def open(self) -> t.IO[bytes]:
            handle = super().open()
            path = self.path

            def change() -> None:
                if action == "truncate":
                    os.truncate(path, RACE_SIZE // 4)
                elif action == "rewrite":
                    # In place: same inode, new content, same size.
                    before = os.stat(path).st_mtime_ns
                    with open(path, "r+b") as f:
                        f.write(RACE_V2 * RACE_SIZE)
                    # A later writer's mtime differs; here the rewrite may
                    # fall in the same clock tick as the first write.
                    later = before + 1_000_000_000
                    os.utime(path, ns=(later, later))
                else:  # "replace": a new file under the same name
                    pathlib.Path(path + ".v2").write_bytes(RACE_V2 * RACE_SIZE)
                    os.replace(path + ".v2", path)

            return t.cast(t.IO[bytes], _HookedReader(handle, change))

    class MidStreamView(PathDownloadView):
        def get_file(self) -> DownloadFile:
            return MidStreamFile(self.get_path())

    return MidStreamView


# -- the app -------------------------------------------------------------------


def make_app(layout: Layout, storage_prefix: str) -> Flask:
    """One route per view under attack."""
    app = Flask("security_app", root_path=os.fspath(layout.base))
    app.config["DOWNLOAD_ROOT"] = os.fspath(layout.root)
    FlaskDownload(app)
    root = os.fspath(layout.root)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    # The same root spelled with a trailing slash (sibling-prefix checks).
    app.add_url_rule(
        "/slash/<path:path>",
        view_func=PathDownloadView.as_view("slash", root=root + os.sep),
    )
    app.add_url_rule(
        "/inline/<path:path>",
        view_func=PathDownloadView.as_view("inline", attachment=False),
    )
    app.add_url_rule("/fixed/<key>", view_func=_FixedNameView.as_view("fixed"))
    app.add_url_rule("/name", view_func=_QueryNameView.as_view("name_query"))
    app.add_url_rule("/name/<path:name>", view_func=_PathNameView.as_view("name_path"))
    # A file whose name on disk is not UTF-8 (Linux allows any bytes).
    undecodable = os.fsencode(layout.root) + b"/caf\xe9.txt"
    with open(undecodable, "wb") as f:
        f.write(b"cafe\n")
    app.add_url_rule(
        "/undecodable",
        view_func=PathDownloadView.as_view(
            "undecodable", path=os.fsdecode(undecodable)
        ),
    )
    app.add_url_rule(
        "/virtual.html",
        view_func=VirtualDownloadView.as_view(
            "virtual_html", content=b"<p>hi</p>", basename="page.html"
        ),
    )
    app.add_url_rule("/counted/<path:path>", view_func=_CountingView.as_view("counted"))
    app.add_url_rule(
        "/race/replace-before-open/<path:path>",
        view_func=_ReplacedBeforeOpenView.as_view("race_before_open"),
    )
    for action in ("truncate", "rewrite", "replace"):
        app.add_url_rule(
            f"/race/{action}/<path:path>",
            view_func=_mid_stream_view(action).as_view(f"race_{action}"),
        )
    app.config["SECURITY_OPTIONAL"] = {
        "storage": _add_storage_routes(app, layout, storage_prefix),
        "objects": _add_object_routes(app, layout),
        "proxy": _add_proxy_routes(app),
    }
    return app


def _record_error(sender: Flask, exception: BaseException, **extra: t.Any) -> None:
    import traceback

    errors: list[str] = sender.extensions["security_errors"]
    errors.append("".join(traceback.format_exception(exception)))


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return make_layout(tmp_path_factory.mktemp("security"))


@pytest.fixture(scope="session")
def live(layout: Layout) -> cabc.Iterator[LiveServer]:
    """The app under attack, served by Werkzeug's threaded server."""
    prefix = f"/security-{uuid.uuid4().hex}"
    app = make_app(layout, prefix)
    server = start_server(app)
    app.extensions["security_errors"] = server.errors
    got_request_exception.connect(_record_error, app)
    try:
        yield server
    finally:
        got_request_exception.disconnect(_record_error, app)
        stop_server(server)
        engine = app.extensions.get("security_engine")
        if engine is not None:
            engine.dispose()
        if app.config["SECURITY_OPTIONAL"]["storage"]:
            import fsspec

            fsspec.filesystem("memory").rm(prefix, recursive=True)


def require(live: LiveServer, feature: str) -> None:
    """Skip unless the optional views for ``feature`` are mounted."""
    app = live.server.app
    if not app.config["SECURITY_OPTIONAL"][feature]:
        pytest.skip(f"the {feature} views are not available")


# -- an upstream for the HTTP proxy --------------------------------------------

#: What ``/bomb`` on the upstream sends: 10 MiB of zeros, gzip-compressed.
GZIP_BOMB = gzip.compress(b"\0" * (10 * 1024 * 1024), compresslevel=9)


class _UpstreamHandler(socketserver.StreamRequestHandler):
    """A deliberately hostile upstream, written raw so it can send anything."""

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        target = head.split(b" ", 2)[1].decode("latin-1")
        path, _, query = target.partition("?")
        server = t.cast("_UpstreamServer", self.server)
        server.requests.append(head)
        body = b"upstream\n"
        extra: list[bytes] = []
        status = b"200 OK"
        if path == "/secret":
            body = SECRET
        elif path == "/redirect":
            from urllib.parse import unquote

            status = b"302 Found"
            extra.append(b"Location: " + unquote(query).encode("latin-1"))
            body = b""
        elif path == "/echo":
            body = head
        elif path == "/hop":
            extra += [
                b"Connection: close, X-Hop",
                b"X-Hop: 1",
                b"Keep-Alive: timeout=5",
                b"Proxy-Authenticate: Basic",
                b"Set-Cookie: session=upstream",
                b"X-Accel-Redirect: /internal/secret.txt",
                b"X-Accel-Buffering: no",
                b"X-Sendfile: /etc/passwd",
                b"X-Injected: 1",
                b"Content-Type: text/plain",
            ]
        elif path == "/bomb":
            body = GZIP_BOMB
            extra += [b"Content-Encoding: gzip", b"Content-Type: application/json"]
        lines = [b"HTTP/1.1 " + status, *extra]
        lines.append(b"Content-Length: " + str(len(body)).encode())
        if not any(line.startswith(b"Connection:") for line in extra):
            lines.append(b"Connection: close")
        self.request.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)


class _UpstreamServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        self.requests: list[bytes] = []


@pytest.fixture(scope="session")
def upstream() -> cabc.Iterator[_UpstreamServer]:
    """A raw upstream server on 127.0.0.1 (``/secret``, ``/redirect?URL``...)."""
    with serving(_UpstreamServer()) as server:
        yield server


def pipelined(
    port: int, first: str, range_header: str = "", second: str = "/ok"
) -> bytes:
    """Send ``first`` then ``second`` on one connection; all bytes received
    until the server closes it (or 10 s of silence)."""
    host = f"Host: 127.0.0.1:{port}\r\n"
    extra = f"Range: {range_header}\r\n" if range_header else ""
    request = (
        f"GET {first} HTTP/1.1\r\n{host}{extra}\r\nGET {second} HTTP/1.1\r\n{host}\r\n"
    ).encode()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    return received
