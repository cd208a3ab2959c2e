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
    time.sleep(0.2)
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
    engine = sa.create_engine("sqlite://")
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
