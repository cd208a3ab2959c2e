from __future__ import annotations

import collections.abc as cabc
import datetime
import http.client
import os
import pathlib
import subprocess
import sys
import types
import typing as t
import uuid

import fsspec
import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from conftest import serving
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.serving import make_server

from flask_download import ConfigurationError
from flask_download import ObjectDownloadView
from flask_download.sqlalchemy import ColumnFile
from flask_download.sqlalchemy import FileColumn


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Document(Base):
    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str | None] = mapped_column(sa.String(50), unique=True)
    owner: Mapped[str] = mapped_column(sa.String(20), default="alice")
    path: Mapped[str | None] = mapped_column(sa.String(200))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    stored: Mapped[ColumnFile | None] = mapped_column(FileColumn())
    filename: Mapped[str | None] = mapped_column(sa.String(200))
    mimetype: Mapped[str | None] = mapped_column(sa.String(100))
    encoding: Mapped[str | None] = mapped_column(sa.String(20))
    charset: Mapped[str | None] = mapped_column(sa.String(20))
    size: Mapped[int | None]
    updated_at: Mapped[datetime.datetime | None]
    version: Mapped[int | None]


class Token(Base):
    __tablename__ = "token"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    path: Mapped[str]


class OwnedView(ObjectDownloadView):
    """Only alice's rows (the current user, in a real app)."""

    model = Document
    file_field = "path"

    def get_query(self) -> sa.Select[t.Any]:
        return super().get_query().where(Document.owner == "alice")


def _add(app: Flask, **values: t.Any) -> int:
    with app.app_context():
        row = Document(**values)
        db.session.add(row)
        db.session.commit()
        return row.id


@pytest.fixture
def db_app(
    app_factory: cabc.Callable[..., Flask], tmp_path: pathlib.Path
) -> cabc.Iterator[Flask]:
    """An app with Flask-SQLAlchemy (SQLite file) and download routes."""
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.init_app(app)
    path_view = ObjectDownloadView.as_view(
        "by_id",
        model=Document,
        file_field="path",
        basename_field="filename",
        mime_type_field="mimetype",
        encoding_field="encoding",
        charset_field="charset",
        modification_time_field="updated_at",
        size_field="size",
    )
    app.add_url_rule("/doc/<int:id>", view_func=path_view)
    app.add_url_rule("/raw/<id>", view_func=path_view, endpoint="raw")
    app.add_url_rule(
        "/slug/<slug>",
        view_func=ObjectDownloadView.as_view(
            "by_slug", model=Document, file_field="path"
        ),
    )
    app.add_url_rule(
        "/blob/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "blob",
            model=Document,
            file_field="content",
            basename_field="filename",
            modification_time_field="updated_at",
        ),
    )
    app.add_url_rule(
        "/versioned/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "versioned", model=Document, file_field="content", version_field="version"
        ),
    )
    app.add_url_rule(
        "/stored/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "stored", model=Document, file_field="stored"
        ),
    )
    app.add_url_rule("/owned/<int:id>", view_func=OwnedView.as_view("owned"))
    app.add_url_rule(
        "/token/<id>",
        view_func=ObjectDownloadView.as_view("token", model=Token, file_field="path"),
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def db_client(db_app: Flask) -> t.Any:
    return db_app.test_client()


def test_row_by_id_serves_its_path_under_download_root(
    db_app: Flask, db_client: t.Any
) -> None:
    row = _add(db_app, path="hello.txt")
    with db_client.get(f"/doc/{row}") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert rv.headers["Content-Length"] == "14"


def test_row_by_slug_serves_its_file(db_app: Flask, db_client: t.Any) -> None:
    _add(db_app, slug="nested", path="sub/nested.txt")
    with db_client.get("/slug/nested") as rv:
        assert rv.status_code == 200
        assert rv.data == b"nested\n"


def test_head_answers_like_get_without_body(db_app: Flask, db_client: t.Any) -> None:
    row = _add(db_app, path="data.bin")
    with db_client.head(f"/doc/{row}") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == "1024"
        assert rv.data == b""


@pytest.mark.parametrize(
    "url",
    [
        "/doc/999",
        "/slug/missing",
        f"/doc/{2**63}",
        f"/doc/{2**64 + 5}",
        "/doc/" + "9" * 40,
        f"/raw/{2**63}",
        f"/raw/-{2**63 + 1}",
        "/raw/abc",
        "/raw/1.5",
        "/raw/%D9%A3",  # ARABIC-INDIC DIGIT THREE: isdigit() but not an id
        "/raw/1%00",
        "/slug/a%00b",
        "/token/not-a-uuid",
        f"/token/{uuid.UUID(int=1)}",
    ],
    ids=[
        "missing-id",
        "missing-slug",
        "2**63",
        "2**64",
        "40-digits",
        "string-2**63",
        "below-min",
        "letters",
        "decimal",
        "unicode-digit",
        "nul-id",
        "nul-slug",
        "bad-uuid",
        "missing-uuid",
    ],
)
def test_missing_or_impossible_rows_are_404(
    db_app: Flask, db_client: t.Any, url: str
) -> None:
    _add(db_app, slug="present", path="hello.txt")
    with db_client.get(url) as rv:
        assert rv.status_code == 404


def test_string_id_and_uuid_primary_key_are_converted(
    db_app: Flask, db_client: t.Any
) -> None:
    row = _add(db_app, path="hello.txt")
    with db_app.app_context():
        token = Token(path="data.bin")
        db.session.add(token)
        db.session.commit()
        token_id = token.id
    with db_client.get(f"/raw/{row}") as rv:
        assert rv.data == b"Hello, world!\n"
    with db_client.get(f"/token/{token_id}") as rv:
        assert rv.status_code == 200
        assert len(rv.data) == 1024


def test_row_outside_get_query_is_404_like_a_missing_one(
    db_app: Flask, db_client: t.Any
) -> None:
    mine = _add(db_app, path="hello.txt", owner="alice")
    theirs = _add(db_app, path="hello.txt", owner="bob")
    with db_client.get(f"/owned/{mine}") as rv:
        assert rv.status_code == 200
    with (
        db_client.get(f"/owned/{theirs}") as other,
        db_client.get("/owned/999") as gone,
    ):
        assert other.status_code == gone.status_code == 404
        assert other.data == gone.data


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "/etc/passwd", "sub/../../secret.txt", "sub\\..\\x", "nope.txt"],
    ids=["dotdot", "absolute", "nested-dotdot", "backslash", "missing-file"],
)
def test_string_column_never_leaves_the_root(
    db_app: Flask, db_client: t.Any, path: str
) -> None:
    row = _add(db_app, path=path)
    with db_client.get(f"/doc/{row}") as rv:
        assert rv.status_code == 404
        assert b"SECRET" not in rv.data


def test_symlink_out_of_root_is_404(
    db_app: Flask, db_client: t.Any, download_root: pathlib.Path
) -> None:
    (download_root / "link.txt").symlink_to(download_root.parent / "secret.txt")
    row = _add(db_app, path="link.txt")
    with db_client.get(f"/doc/{row}") as rv:
        assert rv.status_code == 404


def test_null_file_column_is_404(db_app: Flask, db_client: t.Any) -> None:
    row = _add(db_app, path=None, content=None)
    with db_client.get(f"/doc/{row}") as path_rv, db_client.get(f"/blob/{row}") as rv:
        assert path_rv.status_code == rv.status_code == 404


def test_view_root_wins_over_download_root(
    db_app: Flask, download_root: pathlib.Path
) -> None:
    db_app.add_url_rule(
        "/sub/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "sub", model=Document, file_field="path", root=download_root / "sub"
        ),
    )
    row = _add(db_app, path="nested.txt")
    with db_app.test_client().get(f"/sub/{row}") as rv:
        assert rv.data == b"nested\n"


def test_metadata_fields_set_the_headers(db_app: Flask, db_client: t.Any) -> None:
    row = _add(
        db_app,
        path="data.bin",
        filename="Relevé été.csv",
        mimetype="text/csv",
        charset="latin-1",
        encoding="gzip",
        size=5,  # stale: the file's own size wins
        updated_at=datetime.datetime(2024, 1, 2, 3, 4, 5),
    )
    with db_client.get(f"/doc/{row}") as rv:
        assert rv.headers["Content-Type"] == "text/csv; charset=latin-1"
        assert rv.headers["Content-Encoding"] == "gzip"
        assert rv.headers["Content-Length"] == "1024"
        # Naive datetimes mean UTC.
        assert rv.headers["Last-Modified"] == "Tue, 02 Jan 2024 03:04:05 GMT"
        disposition = rv.headers["Content-Disposition"]
        assert "filename*=UTF-8''Relev%C3%A9%20%C3%A9t%C3%A9.csv" in disposition
        assert 'filename="Releve ete.csv"' in disposition


def test_aware_modification_time_is_converted_to_utc(db_app: Flask) -> None:
    # SQLite drops time zones, so the row is a plain object here.
    paris = datetime.timezone(datetime.timedelta(hours=2))
    row = types.SimpleNamespace(
        content=b"x", updated_at=datetime.datetime(2024, 6, 1, 12, tzinfo=paris)
    )
    view = ObjectDownloadView(
        model=Document, file_field="content", modification_time_field="updated_at"
    )
    with db_app.test_request_context("/"):
        file = view.file_from_object(row)
    assert file.modified_time == datetime.datetime(
        2024, 6, 1, 10, tzinfo=datetime.timezone.utc
    )


def test_largebinary_content_is_served_with_size_and_hash_etag(
    db_app: Flask, db_client: t.Any
) -> None:
    content = bytes(range(256)) * 8
    row = _add(db_app, content=content, filename="blob.bin")
    with db_client.get(f"/blob/{row}") as rv:
        assert rv.status_code == 200
        assert rv.data == content
        assert rv.headers["Content-Length"] == str(len(content))
        assert rv.headers["Accept-Ranges"] == "bytes"
        etag = rv.headers["ETag"]
    with db_client.get(f"/blob/{row}", headers={"Range": "bytes=10-19"}) as rv:
        assert rv.status_code == 206
        assert rv.data == content[10:20]
    with db_client.get(f"/blob/{row}", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.data == b""


def test_empty_bytes_are_a_valid_empty_file(db_app: Flask, db_client: t.Any) -> None:
    row = _add(db_app, content=b"", filename="empty.txt")
    with db_client.get(f"/blob/{row}") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == "0"
        assert rv.data == b""


def test_version_field_makes_the_etag_and_changes_with_it(
    db_app: Flask, db_client: t.Any
) -> None:
    row = _add(db_app, content=b"same", version=1)
    hashed = _add(db_app, content=b"same")
    with db_client.get(f"/versioned/{row}") as first:
        etag = first.headers["ETag"]
    with db_client.get(f"/blob/{hashed}") as by_hash:
        assert by_hash.headers["ETag"] != etag
    with db_app.app_context():
        db.session.get(Document, row).version = 2
        db.session.commit()
    with db_client.get(f"/versioned/{row}", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 200
        assert rv.headers["ETag"] != etag


def test_file_column_value_is_resolved(db_app: Flask, db_client: t.Any) -> None:
    row = _add(db_app, stored="sub/nested.txt")
    with db_client.get(f"/stored/{row}") as rv:
        assert rv.status_code == 200
        assert rv.data == b"nested\n"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="nested.txt"'


def test_string_column_as_storage_key(db_app: Flask) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/objects-test/docs/a.txt", b"from memory")
    fs.pipe("/objects-test/outside.txt", b"outside")
    db_app.add_url_rule(
        "/mem/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "mem", model=Document, file_field="path", storage="memory://objects-test"
        ),
    )
    ok = _add(db_app, path="docs/a.txt")
    out = _add(db_app, path="../outside.txt")
    gone = _add(db_app, path="docs/missing.txt")
    client = db_app.test_client()
    with client.get(f"/mem/{ok}") as rv:
        assert rv.data == b"from memory"
    with client.get(f"/mem/{out}") as rv_out, client.get(f"/mem/{gone}") as rv_gone:
        assert rv_out.status_code == rv_gone.status_code == 404


def _count_selects(app: Flask) -> list[str]:
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        statements.append(statement)

    return statements


@pytest.mark.parametrize(
    "url", ["/doc/{id}", "/blob/{id}", "/slug/one"], ids=["path", "deferred", "slug"]
)
def test_one_select_per_request(db_app: Flask, db_client: t.Any, url: str) -> None:
    row = _add(
        db_app,
        slug="one",
        path="hello.txt",
        content=b"deferred bytes",
        filename="f.txt",
        updated_at=datetime.datetime(2024, 1, 1),
    )
    statements = _count_selects(db_app)
    with db_client.get(url.format(id=row)) as rv:
        assert rv.status_code == 200
        assert rv.data
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("SELECT")


def test_connection_is_back_in_the_pool_before_the_body(
    db_app: Flask, db_client: t.Any
) -> None:
    row = _add(db_app, path="hello.txt", content=b"bytes")
    checked_out: list[int] = []

    @db_app.after_request
    def record(response: t.Any) -> t.Any:
        checked_out.append(db.engine.pool.checkedout())  # type: ignore[attr-defined]
        return response

    for url in (f"/doc/{row}", f"/blob/{row}", "/doc/999"):
        with db_client.get(url) as rv:
            assert rv.status_code in (200, 404)
    assert checked_out == [0, 0, 0]


def test_transaction_begun_by_the_app_is_left_alone(
    db_app: Flask, db_client: t.Any
) -> None:
    """Pending changes made before the view survive it (no rollback)."""
    row = _add(db_app, path="hello.txt")

    @db_app.before_request
    def audit() -> None:
        db.session.add(Document(path="audit.log", owner="audit"))

    @db_app.after_request
    def commit(response: t.Any) -> t.Any:
        db.session.commit()
        return response

    with db_client.get(f"/doc/{row}") as rv:
        assert rv.status_code == 200
    with db_app.app_context():
        owners = db.session.scalars(sa.select(Document.owner)).all()
    assert owners.count("audit") == 1


def test_sessionmaker_attribute_gets_a_session_per_request(
    db_app: Flask, tmp_path: pathlib.Path
) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=1, max_overflow=0
    )
    factory = orm.sessionmaker(engine)
    db_app.add_url_rule(
        "/own/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "own", model=Document, file_field="path", session=factory
        ),
    )
    row = _add(db_app, path="hello.txt")
    client = db_app.test_client()
    for _ in range(3):  # a pool of one: each request must give it back
        with client.get(f"/own/{row}") as rv:
            assert rv.data == b"Hello, world!\n"
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    engine.dispose()


def test_scoped_session_never_removed_does_not_exhaust_the_pool(
    db_app: Flask, tmp_path: pathlib.Path
) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=1, max_overflow=0
    )
    session = orm.scoped_session(orm.sessionmaker(engine))
    db_app.add_url_rule(
        "/scoped/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "scoped", model=Document, file_field="path", session=session
        ),
    )
    row = _add(db_app, path="hello.txt")
    client = db_app.test_client()
    for _ in range(3):
        with client.get(f"/scoped/{row}") as rv:
            assert rv.status_code == 200
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    session.remove()
    engine.dispose()


def test_slow_downloads_do_not_hold_database_connections(
    app_factory: cabc.Callable[..., Flask],
    tmp_path: pathlib.Path,
    download_root: pathlib.Path,
) -> None:
    """20 downloads stalled mid-body against a pool of 5 connections."""
    (download_root / "big.bin").write_bytes(os.urandom(16 * 1024 * 1024))
    app = app_factory(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'pool.sqlite'}",
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_size": 5,
            "max_overflow": 0,
            "pool_timeout": 2,
        },
    )
    db.init_app(app)
    app.add_url_rule(
        "/doc/<int:id>",
        view_func=ObjectDownloadView.as_view("doc", model=Document, file_field="path"),
    )
    with app.app_context():
        db.create_all()
        db.session.add(Document(id=1, path="big.bin"))
        db.session.commit()
    connections: list[http.client.HTTPConnection] = []
    responses: list[http.client.HTTPResponse] = []
    try:
        with serving(make_server("127.0.0.1", 0, app, threaded=True)) as server:
            try:
                for _ in range(20):
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", server.port, timeout=10
                    )
                    connections.append(conn)
                    conn.request("GET", "/doc/1")
                    response = conn.getresponse()
                    responses.append(response)
                    # Read a little and stall: the body is far from sent.
                    assert len(response.read(1024)) == 1024
                assert [r.status for r in responses] == [200] * 20
                with app.app_context():
                    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            finally:
                for conn in connections:
                    conn.close()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_model_is_required(db_app: Flask) -> None:
    db_app.add_url_rule(
        "/nomodel/<int:id>", view_func=ObjectDownloadView.as_view("nomodel")
    )
    with db_app.test_request_context("/nomodel/1"):
        view = ObjectDownloadView(kwargs={"id": 1})
        with pytest.raises(ConfigurationError, match="needs a 'model'"):
            view.get_file()


def test_url_without_id_or_slug_is_a_configuration_error(db_app: Flask) -> None:
    with db_app.test_request_context("/"):
        view = ObjectDownloadView(model=Document, kwargs={})
        with pytest.raises(ConfigurationError, match="URL variable"):
            view.get_file()


def test_missing_flask_sqlalchemy_names_the_fix(app: Flask) -> None:
    with app.test_request_context("/"):
        view = ObjectDownloadView(model=Document, kwargs={"id": 1})
        with pytest.raises(ConfigurationError, match="Flask-SQLAlchemy"):
            view.get_file()


def test_unknown_view_attribute_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="file_feld"):
        ObjectDownloadView.as_view("typo", model=Document, file_feld="path")


def test_import_flask_download_works_without_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('sqlalchemy', 'flask_sqlalchemy'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import flask_download\n"
        "assert flask_download.ObjectDownloadView\n"
        "assert flask_download.make_download_blueprint\n"
        "assert 'sqlalchemy' not in sys.modules\n"
        "try:\n"
        "    import flask_download.sqlalchemy\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install 'Flask-Download[sqlalchemy]'" in result.stdout


# -- per-request cost (issue 16) ---------------------------------------------


class Article(Base):
    """Single-table inheritance: an Article is a Document row of its kind."""

    __tablename__ = "article"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    path: Mapped[str | None] = mapped_column(sa.String(200))
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "article"}


class Note(Article):
    __mapper_args__ = {"polymorphic_identity": "note"}


def _route(
    app: Flask, rule: str, view: type[ObjectDownloadView], **attrs: t.Any
) -> None:
    endpoint = f"ep{len(app.view_functions)}"
    app.add_url_rule(rule, view_func=view.as_view(endpoint, **attrs))


def test_lookup_statement_is_built_once_per_view(
    db_app: Flask, db_client: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: the SELECT is made once, with bound parameters for the key."""
    rows = [_add(db_app, path="hello.txt", slug=f"s{i}") for i in range(3)]

    class Fresh(ObjectDownloadView):
        model = Document
        file_field = "path"

    _route(db_app, "/fresh/<int:id>", Fresh)
    _route(db_app, "/fresh-slug/<slug>", Fresh)
    built: list[tuple[t.Any, ...]] = []
    select = sa.select

    def counting_select(*entities: t.Any) -> t.Any:
        built.append(entities)
        return select(*entities)

    monkeypatch.setattr(sa, "select", counting_select)
    for row in rows:
        with db_client.get(f"/fresh/{row}") as rv:
            assert rv.data == b"Hello, world!\n"
    for i in range(3):
        with db_client.get(f"/fresh-slug/s{i}") as rv:
            assert rv.data == b"Hello, world!\n"
    with db_client.get("/fresh/999") as rv:
        assert rv.status_code == 404
    # One statement for the id lookups, one for the slug lookups.
    assert len(built) == 2


def test_object_is_a_row_of_the_download_fields(db_app: Flask) -> None:
    """Issue 16: no mapped instance is loaded when the fields suffice."""
    row = _add(db_app, path="hello.txt", filename="a.txt", owner="bob")
    seen: list[t.Any] = []

    class Recording(ObjectDownloadView):
        model = Document
        file_field = "path"
        basename_field = "filename"

        def get_query(self) -> sa.Select[t.Any]:  # keeps the row fast path
            query = super().get_query()
            return query.where(Document.owner.in_(["alice", "bob"]))

        def release_session(self, session: orm.Session, began: bool) -> None:
            seen.append(self.object)
            super().release_session(session, began)

    _route(db_app, "/rec/<int:id>", Recording)
    with db_app.test_client().get(f"/rec/{row}") as rv:
        assert rv.headers["Content-Disposition"] == 'attachment; filename="a.txt"'
    (obj,) = seen
    assert not isinstance(obj, Document)
    assert (obj.path, obj.filename) == ("hello.txt", "a.txt")
    assert not hasattr(obj, "owner")
    assert "Document" in repr(obj)


def test_method_override_gets_the_mapped_instance(db_app: Flask) -> None:
    """An override may read any attribute of ``self.object``."""
    row = _add(db_app, path="hello.txt", owner="carol")

    class ByOwner(ObjectDownloadView):
        model = Document
        file_field = "path"

        def get_basename(self) -> str:
            return f"{self.object.owner}.txt"

    _route(db_app, "/by-owner/<int:id>", ByOwner)
    # Also a method set with as_view(), and load_instance=True.
    _route(
        db_app,
        "/attr/<int:id>",
        ObjectDownloadView,
        model=Document,
        file_field="path",
        load_instance=True,
    )
    client = db_app.test_client()
    with client.get(f"/by-owner/{row}") as rv:
        assert rv.headers["Content-Disposition"] == 'attachment; filename="carol.txt"'
    with db_app.test_request_context(f"/attr/{row}"):
        view = ObjectDownloadView(model=Document, file_field="path", load_instance=True)
        view.kwargs = {"id": row}
        assert isinstance(view.get_object(), Document)
        # Called directly (not serving a request), get_object gives the
        # mapped instance whatever load_instance says.
        view = ObjectDownloadView(model=Document, file_field="path")
        view.kwargs = {"id": row}
        assert view.get_object().owner == "carol"
    with client.get(f"/attr/{row}") as rv:
        assert rv.data == b"Hello, world!\n"


def test_property_file_field_loads_the_instance(db_app: Flask) -> None:
    row = _add(db_app, path="hello.txt")

    class WithProperty(Document):
        __tablename__ = None  # type: ignore[assignment]

        @property
        def upper_path(self) -> str:
            return self.path.upper() if self.path else ""

    # Same table, a property as the file field: the instance is needed.
    _route(
        db_app,
        "/prop/<int:id>",
        ObjectDownloadView,
        model=WithProperty,
        file_field="upper_path",
    )
    with db_app.test_client().get(f"/prop/{row}") as rv:
        assert rv.status_code == 404  # HELLO.TXT does not exist: looked up
    (pathlib.Path(db_app.config["DOWNLOAD_ROOT"]) / "HELLO.TXT").write_bytes(b"up")
    with db_app.test_client().get(f"/prop/{row}") as rv:
        assert rv.data == b"up"


def test_lookup_sees_rows_of_the_apps_own_transaction(
    db_app: Flask, db_client: t.Any
) -> None:
    """A row added earlier in the request (not committed) is found."""
    (pathlib.Path(db_app.config["DOWNLOAD_ROOT"]) / "new.txt").write_bytes(b"new")

    @db_app.before_request
    def add_row() -> None:
        db.session.add(Document(id=4242, path="new.txt"))
        db.session.flush()

    with db_client.get("/doc/4242") as rv:
        assert rv.data == b"new"
    with db_app.app_context():
        assert db.session.get(Document, 4242) is None  # never committed


def test_session_after_begin_hook_runs_for_the_lookup(
    db_app: Flask, db_client: t.Any
) -> None:
    """A per-transaction hook (row-level security set-up...) is not skipped."""
    row = _add(db_app, path="hello.txt")
    began: list[t.Any] = []

    def hook(session: orm.Session, transaction: t.Any, connection: t.Any) -> None:
        began.append(connection)

    sa.event.listen(orm.Session, "after_begin", hook)
    try:
        with db_client.get(f"/doc/{row}") as rv:
            assert rv.status_code == 200
    finally:
        sa.event.remove(orm.Session, "after_begin", hook)
    assert began


def test_global_criteria_of_session_events_apply(
    db_app: Flask, db_client: t.Any
) -> None:
    """Rows hidden by a ``do_orm_execute`` tenant filter are 404."""
    mine = _add(db_app, path="hello.txt", owner="alice")
    other = _add(db_app, path="hello.txt", owner="mallory")

    def only_alice(state: orm.ORMExecuteState) -> None:
        if state.is_select:
            state.statement = state.statement.options(
                orm.with_loader_criteria(Document, Document.owner == "alice")
            )

    sa.event.listen(orm.Session, "do_orm_execute", only_alice)
    try:
        with db_client.get(f"/doc/{mine}") as rv:
            assert rv.status_code == 200
        with db_client.get(f"/doc/{other}") as rv:
            assert rv.status_code == 404
    finally:
        sa.event.remove(orm.Session, "do_orm_execute", only_alice)


def test_get_query_with_loader_options_still_works(db_app: Flask) -> None:
    row = _add(db_app, path="hello.txt", content=b"blob")

    class WithOptions(ObjectDownloadView):
        model = Document
        file_field = "path"

        def get_query(self) -> sa.Select[t.Any]:
            return sa.select(Document).options(orm.undefer(Document.content))

    _route(db_app, "/opts/<int:id>", WithOptions)
    statements = _count_selects(db_app)
    with db_app.test_client().get(f"/opts/{row}") as rv:
        assert rv.data == b"Hello, world!\n"
    assert len(statements) == 1


def test_single_table_inheritance_keeps_its_discriminator(db_app: Flask) -> None:
    with db_app.app_context():
        db.create_all()
        db.session.add_all(
            [Article(id=1, path="hello.txt"), Note(id=2, path="hello.txt")]
        )
        db.session.commit()
    _route(db_app, "/note/<int:id>", ObjectDownloadView, model=Note, file_field="path")
    client = db_app.test_client()
    with client.get("/note/2") as rv:
        assert rv.status_code == 200
    with client.get("/note/1") as rv:
        assert rv.status_code == 404  # an Article, not a Note


def test_session_bound_to_a_connection_is_used(
    db_app: Flask, tmp_path: pathlib.Path
) -> None:
    """Test suites bind a session to an outer transaction: its rows are seen."""
    (pathlib.Path(db_app.config["DOWNLOAD_ROOT"]) / "tx.txt").write_bytes(b"tx")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    connection = engine.connect()
    outer = connection.begin()
    connection.execute(sa.insert(Document).values(id=777, path="tx.txt"))
    session = orm.Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        _route(
            db_app,
            "/tx/<int:id>",
            ObjectDownloadView,
            model=Document,
            file_field="path",
            session=session,
        )
        with db_app.test_client().get("/tx/777") as rv:
            assert rv.data == b"tx"
    finally:
        session.close()
        outer.rollback()
        connection.close()
        engine.dispose()


def test_out_of_range_ids_are_404_without_a_dialect_lookup_for_small_ones(
    db_app: Flask, db_client: t.Any
) -> None:
    row = _add(db_app, path="hello.txt")
    for url, status in (
        (f"/raw/{row}", 200),
        (f"/raw/{2**31}", 404),
        (f"/raw/{2**63}", 404),
        (f"/raw/{-(2**63) - 1}", 404),
    ):
        with db_client.get(url) as rv:
            assert rv.status_code == status, url


def test_lookup_makes_no_session_when_a_select_suffices(
    db_app: Flask, db_client: t.Any
) -> None:
    """Issue 16: the request's Flask-SQLAlchemy session is not even created."""
    row = _add(db_app, path="hello.txt")
    had_session: list[bool] = []

    @db_app.after_request
    def record(response: t.Any) -> t.Any:
        had_session.append(db.session.registry.has())
        return response

    with db_client.get(f"/doc/{row}") as rv:
        assert rv.data == b"Hello, world!\n"
    with db_client.get("/doc/999") as rv:
        assert rv.status_code == 404
    assert had_session == [False, False]


def test_sessionmaker_attribute_makes_sessions_only_when_needed(
    db_app: Flask, tmp_path: pathlib.Path
) -> None:
    made: list[orm.Session] = []

    class CountingSession(orm.Session):
        def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    factory = orm.sessionmaker(engine, class_=CountingSession)
    _route(
        db_app,
        "/made/<int:id>",
        ObjectDownloadView,
        model=Document,
        file_field="path",
        session=factory,
    )
    _route(
        db_app,
        "/made-inst/<int:id>",
        ObjectDownloadView,
        model=Document,
        file_field="path",
        session=factory,
        load_instance=True,
    )
    row = _add(db_app, path="hello.txt")
    client = db_app.test_client()
    for _ in range(3):
        with client.get(f"/made/{row}") as rv:
            assert rv.data == b"Hello, world!\n"
    assert len(made) == 1  # the probe: asked for binds, never used for a query
    for _ in range(2):
        with client.get(f"/made-inst/{row}") as rv:
            assert rv.data == b"Hello, world!\n"
    assert len(made) == 3  # the mapped instance needs a session per request
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    engine.dispose()


# -- an overridden get_object ------------------------------------------------


class SessionGet(ObjectDownloadView):
    """Loads the row itself, as the docs of get_object suggest."""

    model = Document
    file_field = "path"

    def get_object(self) -> Document | None:
        return db.session.get(Document, self.kwargs["id"])


def test_get_object_returning_none_is_404(db_app: Flask, db_client: t.Any) -> None:
    """Review: ``None`` from an overridden get_object (``Session.get`` of a
    missing row) was a 500 (AttributeError), not a 404."""
    row = _add(db_app, path="hello.txt")
    _route(db_app, "/get/<int:id>", SessionGet)
    with db_client.get(f"/get/{row}") as rv:
        assert rv.data == b"Hello, world!\n"
    with db_client.get(f"/get/{row + 1}") as rv, db_client.get("/doc/999") as gone:
        assert rv.status_code == gone.status_code == 404
        assert rv.data == gone.data


def test_get_object_override_using_the_session_gives_it_back(
    db_app: Flask, db_client: t.Any
) -> None:
    """The override's query on Flask-SQLAlchemy's session ends before the body,
    as the view's own does (see release_session)."""
    row = _add(db_app, path="hello.txt")
    _route(db_app, "/get/<int:id>", SessionGet)
    checked_out: list[int] = []

    @db_app.after_request
    def record(response: t.Any) -> t.Any:
        checked_out.append(db.engine.pool.checkedout())  # type: ignore[attr-defined]
        return response

    for url in (f"/get/{row}", "/get/999"):
        with db_client.get(url) as rv:
            assert rv.status_code in (200, 404)
    assert checked_out == [0, 0]


@pytest.mark.parametrize(
    "found",
    [None, types.SimpleNamespace(file=b"from elsewhere", name="e.txt")],
    ids=["none", "object"],
)
def test_get_object_override_needs_no_database_session(
    app: Flask, found: t.Any
) -> None:
    """Review: with no Flask-SQLAlchemy and no ``session``, an overridden
    get_object was never called: every request raised ConfigurationError."""

    class Elsewhere(ObjectDownloadView):
        basename_field = "name"

        def get_object(self) -> t.Any:
            return found

    app.add_url_rule("/else/<int:id>", view_func=Elsewhere.as_view("else"))
    with app.test_client().get("/else/1") as rv:
        if found is None:
            assert rv.status_code == 404
        else:
            assert rv.data == b"from elsewhere"
            assert rv.headers["Content-Disposition"] == 'attachment; filename="e.txt"'


def test_get_object_override_with_its_own_session(
    app: Flask, tmp_path: pathlib.Path
) -> None:
    """An app without Flask-SQLAlchemy whose override opens its own session."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'own.sqlite'}")
    Base.metadata.create_all(engine, tables=[Document.__table__])  # type: ignore[list-item]
    with orm.Session(engine) as session:
        session.add(Document(id=1, path="hello.txt", filename="own.txt"))
        session.commit()

    class OwnSession(ObjectDownloadView):
        model = Document
        file_field = "path"
        basename_field = "filename"

        def get_object(self) -> Document | None:
            with orm.Session(engine) as session:
                return session.get(Document, self.kwargs["id"])

    app.add_url_rule("/own/<int:id>", view_func=OwnSession.as_view("own"))
    client = app.test_client()
    with client.get("/own/1") as rv:
        assert rv.data == b"Hello, world!\n"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="own.txt"'
    with client.get("/own/2") as rv:
        assert rv.status_code == 404
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    engine.dispose()


def test_get_object_override_calling_the_default_still_needs_a_session(
    app: Flask,
) -> None:
    class Wrapping(ObjectDownloadView):
        model = Document
        file_field = "path"

        def get_object(self) -> t.Any:
            return super().get_object()

    with app.test_request_context("/"):
        view = Wrapping(kwargs={"id": 1})
        with pytest.raises(ConfigurationError, match="Flask-SQLAlchemy"):
            view.get_file()
        assert "_session" not in view.__dict__


def test_get_object_override_calling_the_default_gets_a_session_made_then(
    db_app: Flask, tmp_path: pathlib.Path
) -> None:
    """A ``sessionmaker`` attribute: the default lookup, reached through
    ``super()``, gets a session of its own, closed after the lookup."""
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=1, max_overflow=0
    )
    seen: list[t.Any] = []

    class Wrapping(ObjectDownloadView):
        model = Document
        file_field = "path"
        session = orm.sessionmaker(engine)

        def get_object(self) -> t.Any:
            found = super().get_object()
            seen.append(found)
            return found

    _route(db_app, "/wrap/<int:id>", Wrapping)
    row = _add(db_app, path="hello.txt")
    client = db_app.test_client()
    for _ in range(3):  # a pool of one: each request must give it back
        with client.get(f"/wrap/{row}") as rv:
            assert rv.data == b"Hello, world!\n"
    with client.get("/wrap/999") as rv:
        assert rv.status_code == 404
    assert len(seen) == 3
    assert all(isinstance(found, Document) for found in seen)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    engine.dispose()
