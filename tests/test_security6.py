"""An outside review of Flask-Download (round 6): attacks across features.

Each finding is a test that fails today, pinned with a strict ``xfail``
whose reason says what breaks and where; the other tests pin behaviour
that holds and that no earlier round tested in this combination.

Threats tried (see the report for the full list):

1. re-point a signed ``ObjectDownloadView`` link to another user's row once
   the linked row is deleted and its id reused (the example app's share
   links, SQLite ``rowid`` reuse): works, xfail;
2. configuration from the environment (``app.config.from_prefixed_env()``)
   that is silently not what it says: works, xfail;
3. read the project's own files through a local storage given without a
   folder (``LocalFileSystem()``, ``file://``): works, xfail;
4. a wrapper (or archive member) whose stream yields more than the size it
   announces, to forge a second response on a kept-alive connection: held;
5. descriptors left open by clients hanging up mid-body in parallel, on
   gunicorn, for storage members of an archive and for ``send_download``
   of file objects, whole and multipart: held;
6. a 5xx or leak from hostile raw requests (methods, duplicate and huge
   conditional headers, odd ``Host`` values, overlong UTF-8 and
   percent-encoded paths) across a signed blueprint, ``FileColumn`` rows
   with their own root and storage, ``send_download`` with ``root=``, nginx
   secure links and archives of storage members: held;
7. a name that adds a ``filename*`` for clients splitting the header on
   ``;``: works, xfail;
8. a CloudFront custom policy widened by a ``?`` of the query: works, xfail.
"""

from __future__ import annotations

import collections.abc as cabc
import io
import os
import pathlib
import re
import socket
import threading
import time
import typing as t
from html import unescape
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from flask import request
from flask import Response

from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import make_download_blueprint
from flask_download import nginx_secure_link_required
from flask_download import nginx_secure_url_for
from flask_download import ObjectDownloadView
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import send_download
from flask_download import signed_url_for
from flask_download import ZipDownloadView

SECRET = b"ROUND6-SECRET-never-served"
NGINX_SECRET = "n" * 40


# -- raw HTTP ---------------------------------------------------------------------


class Answer(t.NamedTuple):
    status: int
    head: bytes
    body: bytes


def raw_bytes(base: str, data: bytes, timeout: float = 15) -> bytes:
    """Send ``data`` as is, half-close, and read until the server closes."""
    port = t.cast(int, urlsplit(base).port)
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse(received: bytes) -> Answer:
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return Answer(int(match.group(1)) if match else 0, head, body)


def raw(
    base: str,
    target: str | bytes,
    headers: cabc.Sequence[tuple[str, str]] = (),
    method: str = "GET",
    host: str = "127.0.0.1",
) -> Answer:
    """One request with ``Connection: close``; nothing is escaped."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode("latin-1") + b" " + target + b" HTTP/1.1"]
    lines.append(b"Host: " + host.encode("latin-1"))
    lines.append(b"Connection: close")
    lines += [f"{k}: {v}".encode("latin-1") for k, v in headers]
    if method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: 0")
    return parse(raw_bytes(base, b"\r\n".join(lines) + b"\r\n\r\n"))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- threat 1: a signed row link outlives its row ------------------------------------


def _example(tmp_path: pathlib.Path) -> Flask:
    from example_app import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}",
            "DOWNLOAD_ROOT": os.fspath(tmp_path / "files"),
            "EXAMPLE_LARGE_FILE_SIZE": 1000,
        }
    )


def _login(client: t.Any, name: str) -> None:
    with client.post("/auth/login", data={"name": name}) as rv:
        assert rv.status_code == 302


def _upload(client: t.Any, name: str, content: bytes) -> int:
    data = {"file": [(io.BytesIO(content), name)]}
    with client.post("/upload", data=data, content_type="multipart/form-data") as rv:
        assert rv.status_code == 302, rv.get_data(as_text=True)
    with client.get("/") as rv:
        ids = re.findall(r'name="id" value="(\d+)"', rv.get_data(as_text=True))
    return max(int(id) for id in ids)


def _share(client: t.Any, id: int, expires: str) -> str:
    with client.post(f"/documents/{id}/share", data={"expires": expires}) as rv:
        assert rv.status_code == 200
        page = rv.get_data(as_text=True)
    match = re.search(r'id="share-url"[^>]*value="([^"]+)"', page)
    assert match is not None
    return path_of(unescape(match.group(1)))


def test_a_share_link_never_opens_the_row_that_reuses_its_id(
    tmp_path: pathlib.Path,
) -> None:
    app = _example(tmp_path)
    try:
        alice = app.test_client()
        _login(alice, "alice")
        shared = _upload(alice, "minutes.txt", b"alice shares this")
        link = _share(alice, shared, "86400")
        with app.test_client().get(link) as rv:
            assert rv.data == b"alice shares this"
        with alice.post(f"/documents/{shared}/delete") as rv:
            assert rv.status_code == 302
        with app.test_client().get(link) as rv:
            assert rv.status_code == 404  # revoked, as the docs promise

        bob = app.test_client()
        _login(bob, "bob")
        # SQLite gives the deleted newest row's id to this upload (a fix
        # that keeps ids from coming back passes too).
        _upload(bob, "salary.txt", b"bob's private " + SECRET)

        with app.test_client().get(link) as rv:
            leaked = rv.get_data()
            status = rv.status_code
        assert SECRET not in leaked
        assert status in (404, 410)
    finally:
        from example_app.models import db

        with app.app_context():
            db.engine.dispose()


def _row_app(tmp_path: pathlib.Path) -> tuple[Flask, t.Any, t.Any]:
    """A signed ObjectDownloadView as docs/signing.rst shows it, on a
    Postgres-like sequence (SQLite AUTOINCREMENT: ids never come back)."""

    class Base(orm.DeclarativeBase):
        pass

    class Doc(Base):
        __tablename__ = "doc"
        __table_args__ = {"sqlite_autoincrement": True}
        id = sa.Column(sa.Integer, primary_key=True)
        owner = sa.Column(sa.String, nullable=False)
        content = sa.Column(sa.LargeBinary)

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rows.sqlite'}")
    Base.metadata.create_all(engine)
    app = Flask("round6_rows")
    app.config["SECRET_KEY"] = "k" * 32
    FlaskDownload(app)
    app.add_url_rule(
        "/doc/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "doc",
            model=Doc,
            file_field="content",
            session=orm.sessionmaker(engine),
            signed=True,
        ),
    )
    return app, engine, Doc


def test_a_share_link_of_a_deleted_row_stays_dead_when_ids_are_not_reused(
    tmp_path: pathlib.Path,
) -> None:
    # The defence the example app lacks: with ids that never come back, the
    # link of a deleted row is a 404 for good, whoever inserts next.
    app, engine, Doc = _row_app(tmp_path)
    with orm.Session(engine) as session:
        session.add(Doc(owner="alice", content=b"shared"))
        session.commit()
    with app.test_request_context():
        link = signed_url_for("doc", id=1, expires_in=3600)
    client = app.test_client()
    assert client.get(link).data == b"shared"
    with orm.Session(engine) as session:
        session.execute(sa.delete(Doc))
        session.add(Doc(owner="bob", content=SECRET))
        session.commit()
    answer = client.get(link)
    assert answer.status_code == 404
    assert SECRET not in answer.data
    engine.dispose()


# -- threat 2: configuration from the environment -------------------------------------


def test_comma_separated_allowed_hosts_from_the_environment_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLASK_DOWNLOAD_HTTP_ALLOWED_HOSTS", "a.example,b.example")
    app = Flask("round6_env")
    app.config.from_prefixed_env()
    with pytest.raises(ConfigurationError, match="ALLOWED_HOSTS"):
        FlaskDownload(app)


def test_json_lists_from_the_environment_configure_hosts_and_rules(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The working spelling of both: JSON, as from_prefixed_env reads it; a
    # relative source_dir is the app's, as in app.config.
    (tmp_path / "files").mkdir()
    monkeypatch.setenv(
        "FLASK_DOWNLOAD_HTTP_ALLOWED_HOSTS", '["a.example", "B.example"]'
    )
    monkeypatch.setenv("FLASK_DOWNLOAD_ACCEL", "nginx")
    monkeypatch.setenv(
        "FLASK_DOWNLOAD_ACCEL_RULES",
        '[{"source_dir": "files", "destination_url": "/protected/"}]',
    )
    app = Flask("round6_env_ok", root_path=os.fspath(tmp_path))
    app.config.from_prefixed_env()
    FlaskDownload(app)
    settings = app.extensions["download"].settings(app)
    assert settings.http_allowed_hosts == ("a.example", "b.example")
    (rule,) = settings.accel_rules
    assert rule.source_dir == os.path.join(os.fspath(tmp_path), "files")


# -- threat 3: a local storage with no folder serves the working directory ---------


def _project(tmp_path: pathlib.Path) -> pathlib.Path:
    """A deployed project: the process runs from its directory (gunicorn and
    ``flask run`` are started there), which holds the instance config."""
    project = tmp_path / "project"
    (project / "instance").mkdir(parents=True)
    (project / "instance" / "config.py").write_bytes(
        b"SECRET_KEY = '" + SECRET + b"'\n"
    )
    (project / "files").mkdir()
    (project / "files" / "a.txt").write_bytes(b"public")
    return project


def test_a_local_storage_without_a_folder_never_serves_the_working_directory(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsspec.implementations.local import LocalFileSystem

    from flask_download import StorageDownloadView

    project = _project(tmp_path)
    monkeypatch.chdir(project)
    app = Flask("round6_cwd", root_path=os.fspath(project))
    try:
        view = StorageDownloadView.as_view("files", storage=LocalFileSystem())
    except ConfigurationError:
        return  # refused when the view is made: fixed
    app.add_url_rule("/files/<path:path>", view_func=view)
    try:
        answer = app.test_client().get("/files/instance/config.py")
    except ConfigurationError:
        return  # refused at the first request: fixed
    assert SECRET not in answer.data
    assert answer.status_code == 404


def test_a_local_storage_with_a_folder_is_confined_to_it(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same project with the folder spelled out: only that folder is served,
    # through the confined opener, whatever the working directory.
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    from flask_download import StorageDownloadView

    project = _project(tmp_path)
    (project / "files" / "up").symlink_to("../instance/config.py")
    monkeypatch.chdir(project)
    app = Flask("round6_cwd_ok", root_path=os.fspath(project))
    folder = os.fspath(project / "files")
    app.add_url_rule(
        "/url/<path:path>",
        view_func=StorageDownloadView.as_view("url", storage="file://" + folder),
    )
    app.add_url_rule(
        "/dir/<path:path>",
        view_func=StorageDownloadView.as_view(
            "dir", storage=DirFileSystem(folder, fs=LocalFileSystem())
        ),
    )
    client = app.test_client()
    for prefix in ("/url/", "/dir/"):
        assert client.get(prefix + "a.txt").data == b"public"
        for path in ("../instance/config.py", "up", "%2e%2e/instance/config.py"):
            answer = client.get(prefix + path)
            assert answer.status_code == 404, (prefix, path)
            assert SECRET not in answer.data


# -- the application of threats 4 to 6 ---------------------------------------------


class _Overlong(DownloadFile):
    """A wrapper whose stream yields more than the size it announces (a
    source that grew, a buggy subclass): the rest forges a response."""

    name = "over.bin"
    size = 5
    FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"

    def chunks(self, chunk_size: int) -> cabc.Iterator[bytes]:
        yield b"A" * 5
        yield self.FORGED


def make_round6_app(base: str | None = None) -> Flask:
    """Every feature under attack in one app (also gunicorn's, with the
    directory in ``ROUND6_BASE``)."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    from flask_download import StorageDownloadView
    from flask_download import StorageFile
    from flask_download.sqlalchemy import FileColumn

    where = pathlib.Path(base or os.environ["ROUND6_BASE"])
    root = where / "root"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_bytes(b"hello world " * 100)
    (root / "sub" / "b.bin").write_bytes(b"b" * 1000)
    (root / "big.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    (where / "secret.txt").write_bytes(SECRET)
    (root / "out.txt").unlink(missing_ok=True)
    (root / "out.txt").symlink_to("../secret.txt")
    other = where / "other"
    other.mkdir(exist_ok=True)
    (other / "o.txt").write_bytes(b"other root")
    memory = fsspec.filesystem("memory")
    memory.pipe("/round6pub/m.txt", b"memory" * 50)
    memory.pipe("/round6secret.txt", SECRET)

    app = Flask("round6", root_path=os.fspath(where))
    app.config.update(
        SECRET_KEY="k" * 32,
        DOWNLOAD_ROOT=os.fspath(root),
        DOWNLOAD_NGINX_SECURE_LINK_SECRET=NGINX_SECRET,
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(root / "sub"), "destination_url": "/prot/"}
        ],
    )
    FlaskDownload(app)

    class Base(orm.DeclarativeBase):
        pass

    class Doc(Base):
        __tablename__ = "doc"
        id = sa.Column(sa.Integer, primary_key=True)
        slug = sa.Column(sa.String)
        file = sa.Column(FileColumn(root=os.fspath(other)))
        stored = sa.Column(FileColumn(storage="memory://round6pub"))
        blob = sa.Column(sa.LargeBinary)
        name = sa.Column(sa.String)
        mime = sa.Column(sa.String)

    engine = sa.create_engine(f"sqlite:///{where / 'rows.sqlite'}")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        if session.get(Doc, 1) is None:
            session.add(
                Doc(
                    id=1,
                    slug="one",
                    file="o.txt",
                    stored="m.txt",
                    blob=b"blob",
                    name="n\r\nX-Injected: y.txt",
                    mime="text/html\r\nX-Injected: b",
                )
            )
            session.commit()
    sessions = orm.sessionmaker(engine)
    app.add_url_rule(
        "/row/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "row",
            model=Doc,
            session=sessions,
            basename_field="name",
            mime_type_field="mime",
        ),
    )
    app.add_url_rule(
        "/row-stored/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "row_stored", model=Doc, session=sessions, file_field="stored"
        ),
    )
    app.add_url_rule(
        "/row-blob/<slug>",
        view_func=ObjectDownloadView.as_view(
            "row_blob", model=Doc, session=sessions, file_field="blob", attachment=False
        ),
    )
    app.register_blueprint(
        make_download_blueprint(
            "signed", root=os.fspath(root), url_prefix="/bp", options={"signed": True}
        )
    )
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    app.add_url_rule(
        "/mem/<path:path>",
        view_func=StorageDownloadView.as_view("mem", storage="memory://round6pub"),
    )

    @app.route("/sd")
    def sd() -> Response:
        return send_download(request.args.get("f", ""), root=os.fspath(root))

    @app.route("/sd-file")
    def sd_file() -> Response:
        return send_download(open(root / "big.bin", "rb"), basename="big.bin")

    @app.route("/nx/<path:name>")
    @nginx_secure_link_required
    def nx(name: str) -> Response:
        return send_download(name, root=os.fspath(root))

    local = LocalFileSystem()

    class Members(ZipDownloadView):
        def get_members(self) -> cabc.Iterator[t.Any]:
            for name in request.args.getlist("f"):
                yield PathFile(name, root=os.fspath(root))
            for index in range(int(request.args.get("big", "0") or 0) % 5):
                big = os.fspath(root / "big.bin")
                yield (f"big{index}.bin", StorageFile(local, big))
            if request.args.get("m"):
                yield StorageFile(memory, "/round6pub/m.txt")

    app.add_url_rule("/zip", view_func=Members.as_view("zip"))

    class OverlongView(DownloadView):
        def get_file(self) -> DownloadFile:
            return _Overlong()

    class OverlongZip(ZipDownloadView):
        def get_members(self) -> list[DownloadFile]:
            return [_Overlong()]

    app.add_url_rule("/overlong", view_func=OverlongView.as_view("overlong"))
    app.add_url_rule("/overlong.zip", view_func=OverlongZip.as_view("overlong_zip"))

    @app.route("/fds")
    def fds() -> str:
        return str(len(os.listdir("/proc/self/fd")))

    app.extensions["round6_engine"] = engine
    return app


@pytest.fixture
def round6(tmp_path: pathlib.Path) -> cabc.Iterator[Flask]:
    app = make_round6_app(os.fspath(tmp_path))
    yield app
    app.extensions["round6_engine"].dispose()


# -- threat 4: more bytes than announced -------------------------------------------


def _pipelined(base: str, first: str) -> bytes:
    # Two requests on one kept-alive connection: whatever follows the first
    # answer's Content-Length is read as the second answer.
    second = "/files/a.txt"
    data = (
        f"GET {first} HTTP/1.1\r\nHost: x\r\n\r\n"
        f"GET {second} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ).encode()
    return raw_bytes(base, data)


@pytest.mark.parametrize("target", ["/overlong", "/overlong.zip"])
def test_a_stream_longer_than_its_size_never_forges_a_response(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.setenv("ROUND6_BASE", os.fspath(tmp_path))
    with running_gunicorn(
        "tests.test_security6:make_round6_app()", "--threads=2"
    ) as base:
        received = _pipelined(base, target)
    assert _Overlong.FORGED not in received
    assert b"forged" not in received
    first = parse(received)
    assert first.status == 200
    length = int(re.search(rb"(?i)content-length: (\d+)", first.head).group(1))
    # The announced bytes, then either the real second answer or nothing.
    rest = first.body[length:]
    assert rest == b"" or rest.startswith(b"HTTP/1.1 200"), rest[:80]


# -- threat 5: descriptors of clients that hang up -----------------------------------


def _hang_up(base: str, target: str, headers: str = "") -> None:
    port = t.cast(int, urlsplit(base).port)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    # RST on close, mid-body: the worst way to leave.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    sock.recv(4096)
    sock.close()


def _descriptors(base: str) -> int:
    return int(raw(base, "/fds").body)


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/zip?big=4&m=1", ""),
        ("/zip?big=4&f=a.txt", "Range: bytes=100-200,1000000-3000000\r\n"),
        ("/sd-file", ""),
        ("/sd-file", "Range: bytes=0-10,100-1500000\r\n"),
    ],
)
def test_parallel_hang_ups_leave_no_descriptor_open(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, target: str, headers: str
) -> None:
    # Archives of storage members (fsspec's local and memory stores) and
    # send_download of a caller's file object, whole and multipart, on
    # gunicorn's threaded worker: 24 clients reset the connection mid-body.
    monkeypatch.setenv("ROUND6_BASE", os.fspath(tmp_path))
    with running_gunicorn(
        "tests.test_security6:make_round6_app()", "--threads=4"
    ) as base:
        assert raw(base, target.replace("big=4", "big=1")).status in (200, 206)
        time.sleep(0.5)
        baseline = _descriptors(base)
        threads = [
            threading.Thread(target=_hang_up, args=(base, target, headers))
            for _ in range(24)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deadline = time.monotonic() + 10
        while (after := _descriptors(base)) > baseline + 2:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert after <= baseline + 2, (baseline, after)


# -- threat 6: hostile raw requests across the features --------------------------------


_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "TRACE", "PROPFIND")
_HEADERS: list[list[tuple[str, str]]] = [
    [],
    [("Range", "bytes=0-0"), ("Range", "bytes=5-9")],
    [("Range", "bytes=-0")],
    [("Range", "bytes=0-" + "9" * 3000)],
    [("Range", "bytes=" + ",".join(["0-0"] * 49))],
    [("If-Range", "Mon, 01 Jan 3000 00:00:00 GMT"), ("Range", "bytes=0-1")],
    [("If-None-Match", '"a'), ("If-None-Match", "*")],
    [("If-Modified-Since", "Sat, 01 Jan 10000 00:00:00 GMT")],
    [("If-Unmodified-Since", "Fri, 31 Dec 9999 23:59:60 GMT"), ("If-Match", 'W/"x"')],
    [("X-Forwarded-Prefix", "/bp"), ("X-Accel-Redirect", "/prot/../secret.txt")],
]
_HOSTS = ("", "evil.example", "a b", "[::1]:99999", "x" * 1000, "\xff")
_PATHS = (
    "..%2fsecret.txt",
    "%c0%ae%c0%ae/secret.txt",
    "%e0%80%ae%e0%80%ae/secret.txt",
    "%ef%bc%8e%ef%bc%8e/secret.txt",
    "a.txt%00.png",
    "a.txt%0d%0aX-Injected:%201",
    "sub/" + "%2e%2e/" * 50 + "secret.txt",
    "%5c..%5csecret.txt",
    "out.txt",
    "/".join(["a"] * 1500),
    "%ff%fe",
    "%252e%252e%252fsecret.txt",
)


def _check(answer: Answer, what: object) -> None:
    assert 0 < answer.status < 500, (what, answer.status, answer.body[:200])
    assert SECRET not in answer.body, what
    assert b"Traceback" not in answer.body, what
    assert b"\r\nX-Injected" not in answer.head, what  # never a header line


def test_hostile_requests_across_rows_blueprints_links_and_archives_never_5xx(
    round6: Flask,
) -> None:
    with round6.test_request_context():
        signed = signed_url_for("signed.file", path="a.txt")
        secure = nginx_secure_url_for("nx", name="a.txt")
    targets = [
        "/row/1",
        "/row-stored/1",
        "/row-blob/one",
        path_of(signed),
        path_of(secure),
        "/files/sub/b.bin",
        "/mem/m.txt",
        "/sd?f=a.txt",
        "/zip?f=a.txt&f=sub/b.bin&m=1",
    ]
    with running_werkzeug(round6) as base:
        for target in targets:
            for method in _METHODS:
                for headers in _HEADERS:
                    _check(raw(base, target, headers, method), (target, method))
            for host in _HOSTS:
                _check(raw(base, target, host=host), (target, host))
        for prefix in ("/files/", "/bp/", "/mem/", "/sd?f=", "/zip?f=", "/nx/"):
            for path in _PATHS:
                for method in ("GET", "HEAD"):
                    _check(raw(base, prefix + path, method=method), prefix + path)
        # The row's hostile name and media type stay out of the headers.
        answer = raw(base, "/row/1")
        assert answer.body == b"other root"
        assert b"text/html" not in answer.head
        assert b'filename="nX-Injected: y.txt"' in answer.head


# -- threat 8: a CloudFront link that names more than one URL -----------------------


def _policy_resource(url: str) -> str:
    import base64
    import json
    from urllib.parse import parse_qsl

    policy = dict(parse_qsl(urlsplit(url).query))["Policy"]
    text = policy.replace("-", "+").replace("_", "=").replace("~", "/")
    document = json.loads(base64.b64decode(text))
    return str(document["Statement"][0]["Resource"])


def test_a_cloudfront_custom_policy_has_no_wildcard_from_the_query() -> None:
    pytest.importorskip("botocore")
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    from flask_download import cloudfront_signed_url

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = cloudfront_signed_url(
        "https://d111.cloudfront.net/f.pdf?next=a?b*c",
        key_pair_id="K1",
        private_key=key,
        expires=2_000_000_000,
        ip_address="203.0.113.7",
    )
    resource = _policy_resource(url)
    assert "*" not in resource
    # One "?": the query's separator (a wildcard CloudFront cannot be told
    # otherwise); none from the query itself.
    assert resource.count("?") == 1, resource


@pytest.mark.parametrize(
    ("hosts", "hint"),
    [
        ("a.example,b.example", """'["a.example", "b.example"]'"""),
        (["a.example; b.example"], """'["a.example", "b.example"]'"""),
        (["a.example", "b.example,"], """'["b.example"]'"""),
    ],
)
def test_several_hosts_in_one_entry_say_how_to_list_them(
    hosts: t.Any, hint: str
) -> None:
    app = Flask("round6_hosts")
    app.config["DOWNLOAD_HTTP_ALLOWED_HOSTS"] = hosts
    with pytest.raises(ConfigurationError, match="several host names") as info:
        FlaskDownload(app)
    assert hint in str(info.value)


@pytest.mark.parametrize("host", ["a.example!", "a'b.example", "a.example%2e"])
def test_characters_no_host_name_has_are_refused(host: str) -> None:
    app = Flask("round6_hosts_chars")
    app.config["DOWNLOAD_HTTP_ALLOWED_HOSTS"] = [host]
    with pytest.raises(ConfigurationError, match="no host name has"):
        FlaskDownload(app)


@pytest.mark.parametrize(
    "host",
    [
        "files.example",
        ".example.com",
        "xn--bcher-kva.example",
        "bücher.example",
        "127.0.0.1",
        "[::1]",
        "::1",
        "my_host.internal",
    ],
)
def test_host_names_and_addresses_are_accepted(host: str) -> None:
    app = Flask("round6_hosts_ok")
    app.config["DOWNLOAD_HTTP_ALLOWED_HOSTS"] = [host]
    FlaskDownload(app)
