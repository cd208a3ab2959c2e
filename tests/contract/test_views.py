"""DESIGN §2: file wrappers and views."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import io
import os
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_download import DownloadError
from flask_download import DownloadFile
from flask_download import FileNotFound
from flask_download import FlaskDownload
from flask_download import HTTPDownloadView
from flask_download import HTTPFile
from flask_download import ObjectDownloadView
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import StorageDownloadView
from flask_download import StorageFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.sqlalchemy import FileColumn

from .conftest import Live

UTC = datetime.timezone.utc


# -- wrappers ------------------------------------------------------------------


def _read(file: DownloadFile) -> bytes:
    chunks = file.chunks() if hasattr(file, "chunks") else iter(file)
    try:
        return b"".join(chunks)
    finally:
        close = getattr(file, "close", None)
        if close is not None:
            close()


def test_every_wrapper_is_a_download_file() -> None:
    for cls in (PathFile, VirtualFile, StorageFile, HTTPFile):
        assert issubclass(cls, DownloadFile)


def test_path_file_exposes_what_it_knows(download_root: pathlib.Path) -> None:
    file = PathFile(download_root / "hello.txt")
    assert file.name == "hello.txt"
    assert file.size == 14
    assert isinstance(file.modified_time, datetime.datetime)
    assert file.modified_time.utcoffset() == datetime.timedelta(0)
    assert file.etag
    assert _read(file) == b"Hello, world!\n"


def test_path_file_name_override(download_root: pathlib.Path) -> None:
    assert PathFile(download_root / "hello.txt", name="x.txt").name == "x.txt"


def test_path_file_missing_raises_file_not_found(download_root: pathlib.Path) -> None:
    with pytest.raises(FileNotFound):
        file = PathFile(download_root / "nope.txt")
        _read(file)
    assert issubclass(FileNotFound, DownloadError)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("héllo", "héllo".encode()), (b"\x00\xff", b"\x00\xff")],
    ids=["str", "bytes"],
)
def test_virtual_file_str_bytes(content: str | bytes, expected: bytes) -> None:
    file = VirtualFile(content, name="v.txt")
    assert file.size == len(expected)
    assert file.etag and not file.etag.startswith('"')
    assert _read(VirtualFile(content, name="v.txt")) == expected


def test_virtual_file_etag_depends_on_content() -> None:
    assert VirtualFile(b"a").etag != VirtualFile(b"b").etag
    assert VirtualFile(b"a").etag == VirtualFile(b"a").etag


def test_virtual_file_given_metadata() -> None:
    when = datetime.datetime(2021, 5, 4, 3, 2, 1, tzinfo=UTC)
    file = VirtualFile(b"abc", name="a", size=3, modified_time=when, etag="v1")
    assert (file.name, file.size, file.modified_time, file.etag) == (
        "a",
        3,
        when,
        "v1",
    )
    assert file.url is None


def _served(app: Flask, file: DownloadFile, **attrs: t.Any) -> t.Any:
    class View(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return file

    app.add_url_rule("/v", view_func=View.as_view("v", **attrs))
    return app.test_client()


def test_virtual_iterator_streams_without_ranges(app: Flask) -> None:
    client = _served(app, VirtualFile(iter([b"ab", "cd", b"ef"]), name="it.bin"))
    with client.get("/v", headers={"Range": "bytes=0-1"}) as rv:
        assert rv.status_code == 200
        assert rv.data == b"abcdef"
        assert (
            "Accept-Ranges" not in rv.headers or rv.headers["Accept-Ranges"] == "none"
        )
        assert "ETag" not in rv.headers


def test_virtual_iterator_with_given_etag(app: Flask) -> None:
    client = _served(app, VirtualFile(iter([b"ab"]), name="it.bin", etag="abc"))
    with client.get("/v") as rv:
        assert rv.headers["ETag"] == '"abc"'


def test_virtual_file_like(app: Flask) -> None:
    client = _served(app, VirtualFile(io.BytesIO(b"0123456789"), name="f.bin"))
    with client.get("/v") as rv:
        assert rv.data == b"0123456789"


def test_virtual_str_range(app: Flask) -> None:
    client = _served(app, VirtualFile("0123456789", name="f.txt"))
    with client.get("/v", headers={"Range": "bytes=2-4"}) as rv:
        assert rv.status_code == 206
        assert rv.data == b"234"
        assert rv.headers["Content-Range"] == "bytes 2-4/10"


def test_virtual_view_with_attributes(app: Flask) -> None:
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view("v", content="été", basename="e.txt"),
    )
    with app.test_client().get("/v") as rv:
        assert rv.data == "été".encode()
        assert rv.headers["Content-Length"] == str(len("été".encode()))
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"


# -- PathDownloadView ----------------------------------------------------------


def _path_app(app: Flask) -> t.Any:
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    return app.test_client()


def test_path_url_kwarg_serves_inside_root(app: Flask) -> None:
    with _path_app(app).get("/f/sub/nested.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b"nested\n"


def test_path_relative_to_view_root(app: Flask, download_root: pathlib.Path) -> None:
    app.add_url_rule(
        "/r/<path:path>",
        view_func=PathDownloadView.as_view("r", root=os.fspath(download_root / "sub")),
    )
    with app.test_client().get("/r/nested.txt") as rv:
        assert rv.data == b"nested\n"


def test_custom_path_url_kwarg(app: Flask) -> None:
    app.add_url_rule(
        "/k/<path:name>",
        view_func=PathDownloadView.as_view("k", path_url_kwarg="name"),
    )
    with app.test_client().get("/k/hello.txt") as rv:
        assert rv.data == b"Hello, world!\n"


def test_fixed_absolute_path_is_trusted(
    app: Flask, download_root: pathlib.Path
) -> None:
    secret = download_root.parent / "secret.txt"
    app.add_url_rule(
        "/s", view_func=PathDownloadView.as_view("s", path=os.fspath(secret))
    )
    with app.test_client().get("/s") as rv:
        assert rv.status_code == 200
        assert rv.data == b"TOP SECRET"


TRAVERSALS = [
    "../secret.txt",
    "sub/../../secret.txt",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "..%2fsecret.txt",
    "..%5csecret.txt",
    "sub\\..\\..\\secret.txt",
    "%00hello.txt",
    "hello.txt%00",
    "..%252fsecret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_url_path_traversal_is_404(
    app: Flask, download_root: pathlib.Path, path: str
) -> None:
    with _path_app(app).get("/f/" + path) as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data


def test_absolute_url_path_is_404(app: Flask, download_root: pathlib.Path) -> None:
    secret = os.fspath(download_root.parent / "secret.txt")
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    client = app.test_client()
    # "//tmp/..." is merged by Werkzeug into a redirect; the encoded slash
    # reaches the view as an absolute path.
    for url in ("/f/" + secret, "/f/%2F" + secret.lstrip("/")):
        with client.get(url, follow_redirects=True) as rv:
            assert rv.status_code == 404, url
            assert b"TOP SECRET" not in rv.data


def test_symlink_out_of_root_is_404(app: Flask, download_root: pathlib.Path) -> None:
    (download_root / "link.txt").symlink_to(download_root.parent / "secret.txt")
    (download_root / "dirlink").symlink_to(download_root.parent)
    client = _path_app(app)
    for path in ("link.txt", "dirlink/secret.txt"):
        with client.get("/f/" + path) as rv:
            assert rv.status_code == 404, path
            assert b"TOP SECRET" not in rv.data


def test_symlink_inside_root_is_served(app: Flask, download_root: pathlib.Path) -> None:
    (download_root / "alias.txt").symlink_to(download_root / "hello.txt")
    with _path_app(app).get("/f/alias.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"


def test_directory_is_404(app: Flask) -> None:
    with _path_app(app).get("/f/sub") as rv:
        assert rv.status_code == 404


def test_url_path_without_root_is_configuration_error() -> None:
    app = Flask(__name__)
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(DownloadError, match="(?i)root"):
        app.test_client().get("/f/hello.txt")


def test_traversal_on_real_server(app: Flask, serve: t.Callable[[t.Any], Live]) -> None:
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    live = serve(app)
    for path in ("/f/../secret.txt", "/f/%2e%2e/secret.txt", "/f/..%2Fsecret.txt"):
        status, _, body = live.get(path)
        assert status in (400, 404), path
        assert b"TOP SECRET" not in body
    status, headers, body = live.get("/f/hello.txt")
    assert (status, body) == (200, b"Hello, world!\n")


# -- StorageDownloadView -------------------------------------------------------


@pytest.fixture
def storage(download_storage: t.Any) -> t.Any:
    download_storage.pipe("/bucket/docs/a.txt", b"alpha")
    download_storage.pipe("/bucket/private.txt", b"TOP SECRET")
    return download_storage


def test_storage_view_serves_key(app: Flask, storage: t.Any) -> None:
    app.add_url_rule(
        "/s/<path:path>",
        view_func=StorageDownloadView.as_view(
            "s", storage=storage, path_url_kwarg="path"
        ),
    )
    with app.test_client().get("/s/bucket/docs/a.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b"alpha"
        assert 'filename="a.txt"' in rv.headers["Content-Disposition"]


def test_storage_view_fixed_path(app: Flask, storage: t.Any) -> None:
    app.add_url_rule(
        "/s",
        view_func=StorageDownloadView.as_view(
            "s", storage=storage, path="/bucket/docs/a.txt"
        ),
    )
    with app.test_client().get("/s", headers={"Range": "bytes=1-2"}) as rv:
        assert rv.status_code == 206
        assert rv.data == b"lp"


def test_storage_url_prefix_confines(app: Flask) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/contract-prefix/in/a.txt", b"inside")
    fs.pipe("/contract-prefix/secret.txt", b"TOP SECRET")
    try:
        app.add_url_rule(
            "/s/<path:path>",
            view_func=StorageDownloadView.as_view(
                "s", storage="memory://contract-prefix/in"
            ),
        )
        client = app.test_client()
        with client.get("/s/a.txt") as rv:
            assert rv.status_code == 200
            assert rv.data == b"inside"
        for path in ("../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt"):
            with client.get("/s/" + path) as rv:
                assert rv.status_code == 404, path
                assert b"TOP SECRET" not in rv.data
    finally:
        fs.rm("/contract-prefix", recursive=True)


def test_storage_missing_key_is_404(app: Flask, storage: t.Any) -> None:
    app.add_url_rule(
        "/s/<path:path>", view_func=StorageDownloadView.as_view("s", storage=storage)
    )
    with app.test_client().get("/s/bucket/none.txt") as rv:
        assert rv.status_code == 404


def test_storage_redirect_defaults() -> None:
    assert StorageDownloadView.redirect is False
    assert StorageDownloadView.redirect_expires == 300


# -- HTTPDownloadView ----------------------------------------------------------


def test_http_view_refuses_loopback(
    app: Flask, serve: t.Callable[[t.Any], Live]
) -> None:
    upstream = Flask("upstream")

    @upstream.get("/f.txt")
    def f() -> str:
        return "TOP SECRET"

    live = serve(upstream)
    url = f"http://127.0.0.1:{live.port}/f.txt"
    app.add_url_rule("/p", view_func=HTTPDownloadView.as_view("p", url=url))
    # Allowed explicitly: proxied.
    app.add_url_rule(
        "/ok",
        view_func=HTTPDownloadView.as_view("ok", url=url, allowed_hosts=["127.0.0.1"]),
    )
    with app.test_client().get("/p") as rv:
        assert 400 <= rv.status_code < 600
        assert rv.status_code != 200
        assert b"TOP SECRET" not in rv.data
    with app.test_client().get("/ok") as rv:
        assert rv.status_code == 200
        assert rv.data == b"TOP SECRET"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://0.0.0.0/x",
        "http://localhost/x",
        "http://2130706433/x",
        "http://10.0.0.1/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://127.1/x",
        "http://0x7f000001/x",
        "http://017700000001/x",
        "http://[fe80::1]/x",
        "http://[64:ff9b::7f00:1]/x",
        "http://user@127.0.0.1/x",
        "http://127.0.0.1.nip.io/x",
        "http://[::]/x",
        "http://100.64.0.1/x",
    ],
)
def test_http_view_refuses_private_targets(app: Flask, url: str) -> None:
    app.add_url_rule("/p", view_func=HTTPDownloadView.as_view("p", url=url))
    with app.test_client().get("/p") as rv:
        assert rv.status_code in (400, 403, 404, 502)
        assert b"root:" not in rv.data


def test_http_view_get_url(app: Flask, serve: t.Callable[[t.Any], Live]) -> None:
    upstream = Flask("upstream")

    @upstream.get("/<name>")
    def f(name: str) -> str:
        return f"content of {name}"

    live = serve(upstream)

    class Proxy(HTTPDownloadView):
        allowed_hosts = ["127.0.0.1"]
        timeout = 5

        def get_url(self) -> str:
            return f"http://127.0.0.1:{live.port}/{self.kwargs['name']}"

    app.add_url_rule("/p/<name>", view_func=Proxy.as_view("p"))
    with app.test_client().get("/p/a.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b"content of a.txt"


# -- ObjectDownloadView --------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Doc(Base):
    __tablename__ = "contract_doc"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str | None] = mapped_column(sa.String(50), unique=True)
    owner: Mapped[str] = mapped_column(sa.String(20), default="alice")
    path: Mapped[str | None] = mapped_column(sa.String(200))
    blob: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    stored: Mapped[t.Any] = mapped_column(FileColumn(), nullable=True)
    filename: Mapped[str | None] = mapped_column(sa.String(200))
    mime: Mapped[str | None] = mapped_column(sa.String(100))
    enc: Mapped[str | None] = mapped_column(sa.String(20))
    charset: Mapped[str | None] = mapped_column(sa.String(20))
    size: Mapped[int | None]
    updated: Mapped[datetime.datetime | None]


@pytest.fixture
def db_app(
    app: Flask,
) -> cabc.Iterator[tuple[Flask, SQLAlchemy]]:
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = SQLAlchemy(model_class=Base)
    db.init_app(app)
    with app.app_context():
        Base.metadata.create_all(db.engine)
    yield app, db
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        db.engine.dispose()


def _add(app: Flask, db: SQLAlchemy, **values: t.Any) -> int:
    with app.app_context():
        row = Doc(**values)
        db.session.add(row)
        db.session.commit()
        return int(row.id)


def test_object_view_string_path(db_app: tuple[Flask, SQLAlchemy]) -> None:
    app, db = db_app
    pk = _add(app, db, path="hello.txt", filename="greeting.txt")
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "o", model=Doc, file_field="path", basename_field="filename"
        ),
    )
    with app.test_client().get(f"/o/{pk}") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
        assert 'filename="greeting.txt"' in rv.headers["Content-Disposition"]
        assert "private" in rv.headers["Cache-Control"]


def test_object_view_slug(db_app: tuple[Flask, SQLAlchemy]) -> None:
    app, db = db_app
    _add(app, db, path="hello.txt", slug="the-slug")
    app.add_url_rule(
        "/o/<slug>",
        view_func=ObjectDownloadView.as_view("o", model=Doc, file_field="path"),
    )
    client = app.test_client()
    with client.get("/o/the-slug") as rv:
        assert rv.data == b"Hello, world!\n"
    with client.get("/o/other") as rv:
        assert rv.status_code == 404


@pytest.mark.parametrize(
    "path", ["../secret.txt", "/etc/passwd", "sub/../../secret.txt", "..\\secret.txt"]
)
def test_object_view_row_path_confined(
    db_app: tuple[Flask, SQLAlchemy], path: str
) -> None:
    app, db = db_app
    pk = _add(app, db, path=path)
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view("o", model=Doc, file_field="path"),
    )
    with app.test_client().get(f"/o/{pk}") as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data
        assert b"root:" not in rv.data


def test_object_view_bytes_column(db_app: tuple[Flask, SQLAlchemy]) -> None:
    app, db = db_app
    full = _add(app, db, blob=b"payload", filename="p.bin")
    empty = _add(app, db, blob=b"", filename="e.bin")
    null = _add(app, db, blob=None, filename="n.bin")
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "o", model=Doc, file_field="blob", basename_field="filename"
        ),
    )
    client = app.test_client()
    with client.get(f"/o/{full}", headers={"Range": "bytes=0-2"}) as rv:
        assert rv.status_code == 206
        assert rv.data == b"pay"
    with client.get(f"/o/{empty}") as rv:
        assert rv.status_code == 200
        assert rv.data == b""
        assert rv.headers["Content-Length"] == "0"
    with client.get(f"/o/{null}") as rv:
        assert rv.status_code == 404


def test_object_view_missing_row_and_query(db_app: tuple[Flask, SQLAlchemy]) -> None:
    app, db = db_app
    mine = _add(app, db, path="hello.txt", owner="alice")
    theirs = _add(app, db, path="hello.txt", owner="bob")

    class Mine(ObjectDownloadView):
        model = Doc
        file_field = "path"

        def get_query(self) -> t.Any:
            return super().get_query().where(Doc.owner == "alice")

    app.add_url_rule("/o/<int:id>", view_func=Mine.as_view("o"))
    client = app.test_client()
    with client.get(f"/o/{mine}") as rv:
        assert rv.status_code == 200
    with client.get(f"/o/{theirs}") as rv:
        assert rv.status_code == 404
    with client.get("/o/99999") as rv:
        assert rv.status_code == 404


def test_object_view_fields(db_app: tuple[Flask, SQLAlchemy]) -> None:
    app, db = db_app
    pk = _add(
        app,
        db,
        blob="olá".encode("latin-1"),
        filename="r.txt",
        mime="text/csv",
        charset="latin-1",
        enc="identity2",
        updated=datetime.datetime(2020, 2, 3, 4, 5, 6),  # naive = UTC
        size=3,
    )
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "o",
            model=Doc,
            file_field="blob",
            basename_field="filename",
            mime_type_field="mime",
            charset_field="charset",
            encoding_field="enc",
            modification_time_field="updated",
            size_field="size",
        ),
    )
    with app.test_client().get(f"/o/{pk}") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"].startswith("text/csv")
        assert "charset=latin-1" in rv.headers["Content-Type"].lower()
        assert rv.headers["Content-Encoding"] == "identity2"
        assert rv.headers["Last-Modified"] == "Mon, 03 Feb 2020 04:05:06 GMT"
        assert rv.headers["Content-Length"] == "3"


def test_file_column_reads_back_a_wrapper(
    db_app: tuple[Flask, SQLAlchemy], download_root: pathlib.Path
) -> None:
    app, db = db_app
    pk = _add(app, db, stored="sub/nested.txt")
    bad = _add(app, db)
    with app.app_context():
        # A row written behind the type's back (raw SQL, another program).
        db.session.execute(
            sa.text("UPDATE contract_doc SET stored = '../secret.txt' WHERE id = :id"),
            {"id": bad},
        )
        db.session.commit()
    with app.app_context():
        row = db.session.get(Doc, pk)
        assert row is not None
        assert isinstance(row.stored, DownloadFile)
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view("o", model=Doc, file_field="stored"),
    )
    client = app.test_client()
    with client.get(f"/o/{pk}") as rv:
        assert rv.data == b"nested\n"
    with client.get(f"/o/{bad}") as rv:
        assert rv.status_code == 404


def test_blueprint_model_routes_url_for(db_app: tuple[Flask, SQLAlchemy]) -> None:
    from flask import url_for

    from flask_download import make_download_blueprint

    app, db = db_app
    pk = _add(app, db, path="hello.txt", slug="greeting")
    app.register_blueprint(
        make_download_blueprint(
            "docs",
            model=Doc,
            url_prefix="/docs",
            object_options={"file_field": "path"},
        )
    )
    with app.test_request_context():
        by_id = url_for("docs.object", id=pk)
        by_slug = url_for("docs.object_by_slug", slug="greeting")
    client = app.test_client()
    for url in (by_id, by_slug):
        with client.get(url) as rv:
            assert rv.status_code == 200, url
            assert rv.data == b"Hello, world!\n"
