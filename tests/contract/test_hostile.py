"""Attacks and corners across DESIGN §2-§5, on real servers where it matters."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import os
import pathlib
import socket
import time
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from flask import Flask
from flask import redirect

from flask_download import ConfigurationError
from flask_download import download_finished
from flask_download import HTTPDownloadView
from flask_download import ObjectDownloadView
from flask_download import PathDownloadView
from flask_download import StorageDownloadView
from flask_download import VirtualDownloadView
from flask_download.sqlalchemy import FileColumn

from .conftest import Live


def test_url_path_without_root_is_configuration_error() -> None:
    app = Flask(__name__)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ConfigurationError, match="DOWNLOAD_ROOT|root"):
        app.test_client().get("/f/hello.txt")


# -- SSRF ------------------------------------------------------------------------


def test_redirect_to_disallowed_host_not_followed(
    app: Flask, serve: t.Callable[[t.Any], Live]
) -> None:
    upstream = Flask("upstream")
    hits: list[str] = []

    @upstream.get("/start")
    def start() -> t.Any:
        return redirect(f"http://localhost:{port}/secret")

    @upstream.get("/secret")
    def secret() -> str:
        hits.append("secret")
        return "TOP SECRET"

    live = serve(upstream)
    port = live.port
    app.add_url_rule(
        "/p",
        view_func=HTTPDownloadView.as_view(
            "p", url=f"http://127.0.0.1:{port}/start", allowed_hosts=["127.0.0.1"]
        ),
    )
    with app.test_client().get("/p") as rv:
        assert rv.status_code in (403, 502)
        assert b"TOP SECRET" not in rv.data
    assert hits == []


def test_upstream_404_is_404(app: Flask, serve: t.Callable[[t.Any], Live]) -> None:
    upstream = Flask("upstream")
    live = serve(upstream)
    app.add_url_rule(
        "/p",
        view_func=HTTPDownloadView.as_view(
            "p", url=f"http://127.0.0.1:{live.port}/none", allowed_hosts=["127.0.0.1"]
        ),
    )
    with app.test_client().get("/p") as rv:
        assert rv.status_code == 404


def test_allowed_hosts_config(
    app_factory: t.Callable[..., Flask], serve: t.Callable[[t.Any], Live]
) -> None:
    upstream = Flask("upstream")

    @upstream.get("/f.txt")
    def f() -> str:
        return "remote"

    live = serve(upstream)
    app = app_factory(DOWNLOAD_HTTP_ALLOWED_HOSTS=["127.0.0.1"])
    app.add_url_rule(
        "/p",
        view_func=HTTPDownloadView.as_view(
            "p", url=f"http://127.0.0.1:{live.port}/f.txt"
        ),
    )
    with app.test_client().get("/p") as rv:
        assert rv.status_code == 200
        assert rv.data == b"remote"
        assert 'filename="f.txt"' in rv.headers["Content-Disposition"]


# -- hang-ups, signals, descriptors ----------------------------------------------


def test_client_hang_up_closes_and_reports_incomplete(
    app: Flask, serve: t.Callable[[t.Any], Live], tmp_path: pathlib.Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    app.add_url_rule("/b", view_func=PathDownloadView.as_view("b", path=os.fspath(big)))
    finished: list[dict[str, t.Any]] = []

    def on_finished(sender: t.Any, **kwargs: t.Any) -> None:
        finished.append(kwargs)

    live = serve(app)
    fd_dir = "/proc/self/fd"
    before = len(os.listdir(fd_dir))
    with download_finished.connected_to(on_finished, app):
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", live.port), timeout=5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.recv(1024)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2
            )
            sock.close()
        deadline = time.monotonic() + 10
        while len(finished) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(finished) == 3
    assert all(f["completed"] is False for f in finished)
    assert all(f["bytes_sent"] < big.stat().st_size for f in finished)
    # The signal comes from the response's close(); the server's thread
    # closes the connection after it: wait for that, not a fixed time.
    deadline = time.monotonic() + 10
    while len(os.listdir(fd_dir)) > before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir(fd_dir)) <= before + 1


def test_file_wrapper_used_whole_and_single_range(app: Flask) -> None:
    wrapped: list[t.Any] = []

    class Wrapper:
        def __init__(self, handle: t.Any, block_size: int = 8192) -> None:
            wrapped.append(handle)
            self.handle = handle
            self.block_size = block_size

        def __iter__(self) -> cabc.Iterator[bytes]:
            while True:
                data = self.handle.read(self.block_size)
                if not data:
                    return
                yield data

        def close(self) -> None:
            self.handle.close()

    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="data.bin"))
    client = app.test_client()
    environ = {"wsgi.file_wrapper": Wrapper}
    with client.get("/p", environ_base=environ) as rv:
        assert len(rv.data) == 1024
    with client.get("/p", environ_base=environ, headers={"Range": "bytes=10-19"}) as rv:
        assert rv.status_code == 206
        assert rv.data == (bytes(range(256)) * 4)[10:20]
    assert len(wrapped) == 2


# -- text charsets -----------------------------------------------------------------


def test_text_source_uses_response_charset(
    app: Flask, serve: t.Callable[[t.Any], Live]
) -> None:
    app.add_url_rule(
        "/t",
        view_func=VirtualDownloadView.as_view(
            "t", content=lambda: iter(["olé"]), basename="t.txt", charset="latin-1"
        ),
    )
    status, headers, body = serve(app).get("/t")
    assert status == 200
    assert (
        "latin-1" in headers["Content-Type"].lower()
        or "iso-8859-1" in headers["Content-Type"].lower()
    )
    assert body == "olé".encode("latin-1")


# -- rows --------------------------------------------------------------------------


class Base(orm.DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "contract_hostile_row"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    key: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    stored: orm.Mapped[t.Any] = orm.mapped_column(FileColumn(), nullable=True)


@pytest.fixture
def session(tmp_path: pathlib.Path) -> cabc.Iterator[orm.Session]:
    # One connection shared by the server's threads.
    engine = sa.create_engine(
        "sqlite://",
        connect_args={"check_same_thread": False},
        poolclass=sa.pool.StaticPool,
    )
    Base.metadata.create_all(engine)
    factory = orm.sessionmaker(engine)
    with factory() as s:
        yield s
    engine.dispose()


def test_object_view_with_plain_session_and_storage(
    app_factory: t.Callable[..., Flask], session: orm.Session, download_storage: t.Any
) -> None:
    download_storage.pipe("/bucket/in/a.txt", b"in storage")
    download_storage.pipe("/bucket/secret.txt", b"TOP SECRET")
    session.add_all([Row(id=1, key="a.txt"), Row(id=2, key="../secret.txt")])
    session.add(Row(id=3, key="/bucket/secret.txt"))
    session.commit()
    app = app_factory(DOWNLOAD_CACHE_MAX_AGE=3600)
    storage = download_storage
    prefix = "/bucket/in"

    class View(ObjectDownloadView):
        model = Row
        file_field = "key"

    app.add_url_rule(
        "/o/<int:id>",
        view_func=View.as_view(
            "o", session=session, storage=_prefixed(storage, prefix)
        ),
    )
    client = app.test_client()
    with client.get("/o/1") as rv:
        assert rv.status_code == 200
        assert rv.data == b"in storage"
        assert "private" in rv.headers["Cache-Control"]
        assert "public" not in rv.headers["Cache-Control"]
    for pk in (2, 3):
        with client.get(f"/o/{pk}") as rv:
            assert rv.status_code == 404
            assert b"TOP SECRET" not in rv.data


def _prefixed(fs: t.Any, prefix: str) -> t.Any:
    from fsspec.implementations.dirfs import DirFileSystem

    return DirFileSystem(path=prefix, fs=fs)


def test_object_cache_control_override(
    app_factory: t.Callable[..., Flask], session: orm.Session
) -> None:
    session.add(Row(id=1, key="hello.txt"))
    session.commit()
    app = app_factory()
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "o",
            model=Row,
            file_field="key",
            session=session,
            cache_control="public, max-age=60",
        ),
    )
    with app.test_client().get("/o/1") as rv:
        assert rv.headers["Cache-Control"] == "public, max-age=60"


def test_object_get_object_override(
    app_factory: t.Callable[..., Flask], session: orm.Session
) -> None:
    session.add(Row(id=7, key="hello.txt"))
    session.commit()

    class Latest(ObjectDownloadView):
        model = Row
        file_field = "key"

        def get_object(self) -> t.Any:
            return session.scalars(sa.select(Row).order_by(Row.id.desc())).first()

    app = app_factory()
    app.add_url_rule("/latest", view_func=Latest.as_view("latest", session=session))
    with app.test_client().get("/latest") as rv:
        assert rv.data == b"Hello, world!\n"


# -- HEAD everywhere -----------------------------------------------------------------


def _same_head(client: t.Any, url: str) -> None:
    with client.get(url) as get, client.head(url) as head:
        assert get.status_code == head.status_code == 200, url
        assert head.data == b""
        skip = {"date"}
        get_headers = {
            k.lower(): v for k, v in get.headers.items() if k.lower() not in skip
        }
        head_headers = {
            k.lower(): v for k, v in head.headers.items() if k.lower() not in skip
        }
        assert head_headers == get_headers, url


def test_head_matches_get_for_every_view(
    app: Flask, download_storage: t.Any, session: orm.Session
) -> None:
    download_storage.pipe("/b/a.txt", b"A" * 100)
    session.add(Row(id=1, key="hello.txt"))
    session.commit()
    app.add_url_rule(
        "/v", view_func=VirtualDownloadView.as_view("v", content="x", basename="v.txt")
    )
    app.add_url_rule(
        "/s",
        view_func=StorageDownloadView.as_view(
            "s", storage=download_storage, path="/b/a.txt"
        ),
    )
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "o", model=Row, file_field="key", session=session
        ),
    )
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="été.txt"))
    client = app.test_client()
    for url in ("/v", "/s", "/o/1", "/p"):
        _same_head(client, url)


def test_modified_time_is_utc_for_storage(download_storage: t.Any) -> None:
    from flask_download import StorageFile

    download_storage.pipe("/x.bin", b"x")
    file = StorageFile(download_storage, "/x.bin")
    assert file.size == 1
    when = file.modified_time
    assert when is None or when.utcoffset() == datetime.timedelta(0)


# -- header injection through rows and file names -------------------------------------


class Meta(Base):
    __tablename__ = "contract_hostile_meta"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    blob: orm.Mapped[bytes | None] = orm.mapped_column(sa.LargeBinary)
    name: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    mime: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    charset: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    enc: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))


@pytest.mark.parametrize(
    "values",
    [
        {"mime": "text/html\r\nX-Injected: 1"},
        {"mime": "text/plain; charset=utf-8\nX-Injected: 1"},
        {"charset": "utf-8\r\nX-Injected: 1"},
        {"charset": 'utf-8"; boundary=x'},
        {"enc": "gzip\r\nX-Injected: 1"},
        {"name": "a\r\nX-Injected: 1.txt"},
        {"mime": "not a mime type"},
        {"mime": "évil/type"},
        {"charset": "no-such-charset"},
    ],
    ids=[
        "mime-crlf",
        "mime-lf",
        "charset-crlf",
        "charset-param",
        "encoding-crlf",
        "name-crlf",
        "mime-garbage",
        "mime-non-ascii",
        "charset-unknown",
    ],
)
def test_row_fields_cannot_inject_headers(
    app: Flask,
    serve: t.Callable[[t.Any], Live],
    session: orm.Session,
    values: dict[str, str],
) -> None:
    session.add(Meta(id=1, blob=b"payload", **values))
    session.commit()
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "o",
            model=Meta,
            file_field="blob",
            basename_field="name",
            mime_type_field="mime",
            charset_field="charset",
            encoding_field="enc",
            session=session,
        ),
    )
    status, headers, body = serve(app).get("/o/1")
    assert status < 500
    assert headers.get("X-Injected") is None
    for name, value in headers.items():
        assert "\r" not in value and "\n" not in value, name
    if status == 200:
        assert body == b"payload"
        assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "name",
    ["a\nX-Injected: 1.txt", "q?x=1.txt", "h#frag.txt", "p%2e%2e.txt", "sp ace.txt"],
    ids=["newline", "question", "hash", "percent", "space"],
)
def test_offload_header_is_encoded(
    app_factory: t.Callable[..., Flask],
    download_root: pathlib.Path,
    serve: t.Callable[[t.Any], Live],
    name: str,
) -> None:
    (download_root / name).write_bytes(b"odd")
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/in/"}
        ],
    )
    app.add_url_rule(
        "/f",
        view_func=PathDownloadView.as_view("f", path=os.fspath(download_root / name)),
    )
    status, headers, _ = serve(app).get("/f")
    assert status == 200
    assert headers.get("X-Injected") is None
    value = headers["X-Accel-Redirect"]
    assert value.startswith("/in/")
    assert value.isascii() and value.isprintable()
    assert not set(value) & set(" ?#\r\n")
    from urllib.parse import unquote

    assert unquote(value) == "/in/" + name


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-99999999999999999999999999",
        "bytes=99999999999999999999999999-",
        "bytes=-99999999999999999999999999",
        "bytes=" + "0-0," * 20000 + "0-0",
        "bytes=" + "1" * 10000 + "-",
        "bytes=\u00bd-1",
        "bytes=0x10-0x20",
        "bytes= 1 - 2 ",
    ],
    ids=[
        "huge-end",
        "huge-start",
        "huge-suffix",
        "flood",
        "long-number",
        "unicode",
        "hex",
        "spaces",
    ],
)
def test_hostile_ranges_never_500(
    app: Flask, serve: t.Callable[[t.Any], Live], header: str
) -> None:
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="data.bin"))
    status, headers, body = serve(app).get("/p", headers={"Range": header})
    assert status in (200, 206, 416, 431, 400)
    if status == 200:
        assert len(body) == 1024


def test_signed_view_checks_signature_before_preconditions(
    app_factory: t.Callable[..., Flask],
) -> None:
    app = app_factory(SECRET_KEY="k")
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )
    client = app.test_client()
    for headers in (
        {"If-None-Match": "*"},
        {"If-Modified-Since": "Fri, 31 Dec 2100 00:00:00 GMT"},
        {"Range": "bytes=0-0"},
        {"If-Match": '"x"'},
    ):
        with client.get("/s/hello.txt", headers=headers) as rv:
            assert rv.status_code == 403, headers
            assert "ETag" not in rv.headers
            assert "Last-Modified" not in rv.headers
        with client.head("/s/hello.txt", headers=headers) as rv:
            assert rv.status_code == 403, headers


@pytest.mark.parametrize(
    ("attrs", "sandboxed"),
    [
        ({"mimetype": "text/html", "basename": "x.txt", "attachment": False}, True),
        ({"mimetype": "image/svg+xml", "basename": "x", "attachment": False}, True),
        ({"mimetype": "application/xhtml+xml", "attachment": False}, True),
        ({"basename": "x.htm", "attachment": False}, True),
        ({"basename": "x.png", "attachment": False}, False),
    ],
    ids=["html-by-mimetype", "svg-by-mimetype", "xhtml", "htm", "png"],
)
def test_sandbox_follows_the_sent_type(
    app: Flask, attrs: dict[str, t.Any], sandboxed: bool
) -> None:
    app.add_url_rule(
        "/v", view_func=VirtualDownloadView.as_view("v", content=b"<x/>", **attrs)
    )
    with app.test_client().get("/v") as rv:
        assert (rv.headers.get("Content-Security-Policy") == "sandbox") is sandboxed


def test_send_download_inline_html_sandboxed(app: Flask) -> None:
    from flask_download import send_download

    app.add_url_rule(
        "/x",
        "x",
        lambda: send_download(b"<script>", download_name="x.html", as_attachment=False),
    )
    with app.test_client().get("/x") as rv:
        assert rv.headers["Content-Security-Policy"] == "sandbox"
        assert rv.headers["X-Content-Type-Options"] == "nosniff"


# -- more corners ----------------------------------------------------------------------


def test_lazy_file_not_found_is_404(
    app: Flask, serve: t.Callable[[t.Any], Live]
) -> None:
    from flask_download import DownloadFile
    from flask_download import DownloadView
    from flask_download import FileNotFound

    class Gone(DownloadFile):
        name = "gone.bin"
        size = 10
        seekable = True

        def open(self) -> t.IO[bytes]:
            raise FileNotFound("deleted after the row was read")

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return Gone()

    app.add_url_rule("/g", view_func=View.as_view("g"))
    live = serve(app)
    status, _, _ = live.get("/g")
    assert status == 404
    status, _, _ = live.get("/g", headers={"Range": "bytes=0-1"})
    assert status == 404


def test_upstream_timeout_is_gateway_error(app: Flask) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    try:
        app.add_url_rule(
            "/p",
            view_func=HTTPDownloadView.as_view(
                "p",
                url=f"http://127.0.0.1:{port}/slow",
                allowed_hosts=["127.0.0.1"],
                timeout=0.5,
            ),
        )
        started = time.monotonic()
        with app.test_client().get("/p") as rv:
            assert rv.status_code in (502, 504)
        assert time.monotonic() - started < 10
    finally:
        listener.close()


def test_offloaded_range_left_to_the_server(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/in/"}
        ],
    )
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="data.bin"))
    with app.test_client().get("/p", headers={"Range": "bytes=0-9"}) as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Accel-Redirect"] == "/in/data.bin"
        assert "Content-Range" not in rv.headers
        assert rv.data == b""


def test_send_download_root_refuses_absolute(
    app: Flask, download_root: pathlib.Path
) -> None:
    from flask_download import send_download

    secret = os.fspath(download_root.parent / "secret.txt")
    root = os.fspath(download_root)
    app.add_url_rule("/x", "x", lambda: send_download(secret, root=root))
    with app.test_client().get("/x") as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data


def test_send_download_max_age_callable(
    app: Flask, download_root: pathlib.Path
) -> None:
    from flask_download import send_download

    seen: list[t.Any] = []

    def max_age(name: str | None) -> int:
        seen.append(name)
        return 77

    path = download_root / "hello.txt"
    app.add_url_rule("/x", "x", lambda: send_download(path, max_age=max_age))
    with app.test_client().get("/x") as rv:
        assert "max-age=77" in rv.headers["Cache-Control"]
    assert seen


def test_custom_slug_field(app: Flask, session: orm.Session) -> None:
    session.add(Row(id=5, key="hello.txt"))
    session.commit()
    app.add_url_rule(
        "/k/<name>",
        view_func=ObjectDownloadView.as_view(
            "k",
            model=Row,
            file_field="key",
            slug_field="key",
            slug_url_kwarg="name",
            session=session,
        ),
    )
    client = app.test_client()
    with client.get("/k/hello.txt") as rv:
        assert rv.data == b"Hello, world!\n"
    with client.get("/k/other.txt") as rv:
        assert rv.status_code == 404


def test_signal_request_is_the_current_request(app: Flask) -> None:
    import flask

    seen: list[t.Any] = []

    def receiver(sender: t.Any, **kwargs: t.Any) -> None:
        seen.append(
            (
                kwargs["request"].path,
                kwargs["request"] is flask.request._get_current_object(),
            )
        )  # type: ignore[attr-defined]

    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="hello.txt"))
    from flask_download import download_started

    with (
        download_started.connected_to(receiver, app),
        app.test_client().get("/p") as rv,
    ):
        rv.get_data()
    assert seen == [("/p", True)]


@pytest.mark.parametrize(
    ("upstream_etag", "expected"),
    [('"v1"', '"v1"'), ('W/"v1"', None)],
    ids=["strong", "weak"],
)
def test_upstream_validators(
    app: Flask,
    serve: t.Callable[[t.Any], Live],
    upstream_etag: str,
    expected: str | None,
) -> None:
    upstream = Flask("upstream")

    @upstream.get("/f.bin")
    def f() -> t.Any:
        return (
            b"0123456789",
            200,
            {
                "ETag": upstream_etag,
                "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT",
                "Content-Type": "application/octet-stream",
            },
        )

    live = serve(upstream)
    app.add_url_rule(
        "/p",
        view_func=HTTPDownloadView.as_view(
            "p", url=f"http://127.0.0.1:{live.port}/f.bin", allowed_hosts=["127.0.0.1"]
        ),
    )
    with app.test_client().get("/p") as rv:
        assert rv.status_code == 200
        assert rv.data == b"0123456789"
        assert rv.headers["Content-Length"] == "10"
        assert rv.headers["Last-Modified"] == "Wed, 21 Oct 2015 07:28:00 GMT"
        etag = rv.headers.get("ETag")
    # A weak upstream validator is never passed off as a strong one.
    if expected is None:
        assert etag is None or etag.startswith("W/")
    else:
        assert etag == expected


@pytest.mark.parametrize(
    ("chunks", "size"),
    [
        pytest.param([b"abc", b"defgh"], 4, id="longer-than-size"),
        pytest.param([b"ab"], 4, id="shorter-than-size"),
    ],
)
def test_iterator_with_size_never_sends_more(
    app: Flask, chunks: list[bytes], size: int
) -> None:
    from flask_download import DownloadFile
    from flask_download import VirtualFile

    class View(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter(chunks), name="i.bin", size=size)

    app.add_url_rule("/i", view_func=View.as_view("i"))
    live = Live(app)
    try:
        sock = socket.create_connection(("127.0.0.1", live.port), timeout=5)
        with sock:
            sock.sendall(b"GET /i HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                raw += data
    finally:
        live.stop()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert f"Content-Length: {size}".encode() in head
    assert len(body) <= size
    assert b"".join(chunks).startswith(body)


def test_upstream_headers_never_forwarded(
    app: Flask, serve: t.Callable[[t.Any], Live]
) -> None:
    upstream = Flask("upstream")

    @upstream.get("/page.html")
    def page() -> t.Any:
        return (
            "<script>alert(1)</script>",
            200,
            {
                "Content-Type": "text/html",
                "Set-Cookie": "session=evil",
                "X-Accel-Redirect": "/internal/secret",
                "X-Sendfile": "/etc/passwd",
                "Content-Security-Policy": "default-src *",
                "Access-Control-Allow-Origin": "*",
                "Refresh": "0; url=http://evil.example",
                "Link": "<http://evil.example>; rel=preload",
            },
        )

    live = serve(upstream)
    app.add_url_rule(
        "/p",
        view_func=HTTPDownloadView.as_view(
            "p",
            url=f"http://127.0.0.1:{live.port}/page.html",
            allowed_hosts=["127.0.0.1"],
            attachment=False,
        ),
    )
    status, headers, body = serve(app).get("/p")
    assert status == 200
    assert body == b"<script>alert(1)</script>"
    for name in (
        "Set-Cookie",
        "X-Accel-Redirect",
        "X-Sendfile",
        "Access-Control-Allow-Origin",
        "Refresh",
        "Link",
    ):
        assert headers.get(name) is None, name
    assert headers["Content-Security-Policy"] == "sandbox"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_proxy_head_matches_get(app: Flask, serve: t.Callable[[t.Any], Live]) -> None:
    upstream = Flask("upstream")
    methods: list[str] = []

    @upstream.route("/f.bin", methods=["GET", "HEAD"])
    def f() -> t.Any:
        from flask import request

        methods.append(request.method)
        return (
            b"0123456789",
            200,
            {"ETag": '"v1"', "Content-Type": "application/octet-stream"},
        )

    live = serve(upstream)
    app.add_url_rule(
        "/p",
        view_func=HTTPDownloadView.as_view(
            "p", url=f"http://127.0.0.1:{live.port}/f.bin", allowed_hosts=["127.0.0.1"]
        ),
    )
    client = app.test_client()
    with client.get("/p") as get, client.head("/p") as head:
        assert head.status_code == 200
        assert head.data == b""
        for name in ("Content-Length", "Content-Type", "Content-Disposition", "ETag"):
            assert head.headers.get(name) == get.headers.get(name), name
    assert methods == ["GET", "HEAD"]


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999999999999999",
        "-99999999999999999999999",
        "abc",
        "1 OR 1=1",
        "1.5",
        "%00",
    ],
    ids=["huge", "huge-negative", "text", "sql", "float", "nul"],
)
def test_hostile_primary_keys_are_404(
    app: Flask, session: orm.Session, value: str
) -> None:
    session.add(Row(id=1, key="hello.txt"))
    session.commit()
    app.add_url_rule(
        "/o/<doc_id>",
        view_func=ObjectDownloadView.as_view(
            "o", model=Row, file_field="key", pk_url_kwarg="doc_id", session=session
        ),
    )
    client = app.test_client()
    with client.get("/o/1") as rv:
        assert rv.data == b"Hello, world!\n"
    with client.get("/o/" + value) as rv:
        assert rv.status_code in (400, 404)
    with client.get("/o/99999999999999999999999999") as rv:
        assert rv.status_code in (400, 404)
