"""ObjectDownloadView against hostile URLs, odd queries and odd rows.

- a ``get_query`` that selects an alias of the model (``aliased(Model)``,
  an entity over a subquery) keeps its narrowing: the key and the fields
  are taken from the alias, never from a second, unrelated ``FROM``;
- URL values for keys that are not integers (``Numeric``, ``Date``,
  ``Enum``) are converted or refused as 404, never sent to the database
  as strings it rejects (a 500 on PostgreSQL, which also aborts the
  application's transaction);
- a negative ``size_field`` (``-1`` for "unknown") is no ``Content-Length``;
- ``Cache-Control: private`` by default, on every status, unless the view
  says otherwise;
- on a real server, one ``SELECT`` per download and no pooled connection
  held while the body streams, also through a custom ``get_query``.

PostgreSQL runs when ``FLASK_DOWNLOAD_TEST_POSTGRES`` is set (``.ci/run``
starts one; see ``test_objects_direct_postgres.py``).
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import decimal
import http.client
import os
import pathlib
import typing as t

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

from flask_download import ObjectDownloadView
from flask_download import VirtualFile


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Paper(Base):
    __tablename__ = "audit4_paper"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(50), unique=True)
    owner: Mapped[str] = mapped_column(sa.String(20))
    path: Mapped[str | None] = mapped_column(sa.String(200))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)


class Priced(Base):
    """A ``Numeric`` primary key."""

    __tablename__ = "audit4_priced"

    id: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(10, 2), primary_key=True)
    path: Mapped[str]


class Daily(Base):
    """A ``Date`` primary key."""

    __tablename__ = "audit4_daily"

    id: Mapped[datetime.date] = mapped_column(primary_key=True)
    path: Mapped[str]


class Kind(Base):
    """An ``Enum`` primary key (a native enum type on PostgreSQL)."""

    __tablename__ = "audit4_kind"

    id: Mapped[str] = mapped_column(
        sa.Enum("report", "invoice", name="audit4_kind_enum"), primary_key=True
    )
    path: Mapped[str]


class Streamed(Base):
    """A file whose size only the row knows (a property builds it)."""

    __tablename__ = "audit4_streamed"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int | None]

    @property
    def file(self) -> VirtualFile:
        return VirtualFile(iter([b"abc"]), name="streamed.bin")


class AliceByAlias(ObjectDownloadView):
    """Alice's papers, selected through ``aliased(Paper)``."""

    model = Paper
    file_field = "path"

    def get_query(self) -> sa.Select[t.Any]:
        paper = orm.aliased(Paper)
        return sa.select(paper).where(paper.owner == "alice")


class AliceBySubquery(ObjectDownloadView):
    """Alice's papers, selected through an entity over a subquery."""

    model = Paper
    file_field = "path"

    def get_query(self) -> sa.Select[t.Any]:
        mine = sa.select(Paper).where(Paper.owner == "alice").subquery()
        return sa.select(orm.aliased(Paper, mine))


class AliceDeferred(AliceByAlias):
    """The alias again, for a deferred ``LargeBinary`` column."""

    file_field = "content"


POSTGRES = os.environ.get("FLASK_DOWNLOAD_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit4.sqlite'}"
    if not POSTGRES:
        pytest.skip("FLASK_DOWNLOAD_TEST_POSTGRES is not set (.ci/run sets it)")
    pytest.importorskip("psycopg2")
    url = sa.make_url(POSTGRES).set(drivername="postgresql+psycopg2")
    return url.render_as_string(False)


def _routes(app: Flask) -> None:
    for name, view in (
        ("alias", AliceByAlias),
        ("subquery", AliceBySubquery),
        ("deferred", AliceDeferred),
    ):
        app.add_url_rule(f"/{name}/<int:id>", view_func=view.as_view(name))
        app.add_url_rule(f"/{name}-slug/<slug>", view_func=view.as_view(f"{name}_slug"))
        app.add_url_rule(
            f"/{name}-instance/<int:id>",
            view_func=view.as_view(f"{name}_instance", load_instance=True),
        )
    for name, model in (("priced", Priced), ("daily", Daily), ("kind", Kind)):
        app.add_url_rule(
            f"/{name}/<id>",
            view_func=ObjectDownloadView.as_view(name, model=model, file_field="path"),
        )
    app.add_url_rule(
        "/streamed/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "streamed", model=Streamed, size_field="size"
        ),
    )
    app.add_url_rule(
        "/paper/<int:id>",
        view_func=ObjectDownloadView.as_view("paper", model=Paper, file_field="path"),
    )
    app.add_url_rule(
        "/aged/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "aged", model=Paper, file_field="path", cache_max_age=120
        ),
    )
    app.add_url_rule(
        "/public/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "public", model=Paper, file_field="path", cache_control="public, max-age=60"
        ),
    )


@pytest.fixture
def db_app(
    app_factory: cabc.Callable[..., Flask], database_url: str
) -> cabc.Iterator[Flask]:
    app = app_factory(SQLALCHEMY_DATABASE_URI=database_url)
    db.init_app(app)
    _routes(app)
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.session.add_all(
            [
                Paper(id=1, slug="mine", owner="alice", path="hello.txt", content=b"A"),
                Paper(id=2, slug="theirs", owner="bob", path="data.bin", content=b"B"),
                Priced(id=decimal.Decimal("1.50"), path="hello.txt"),
                Daily(id=datetime.date(2024, 2, 29), path="hello.txt"),
                Kind(id="report", path="hello.txt"),
            ]
        )
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def _get(app: Flask, url: str, **kwargs: t.Any) -> t.Any:
    with app.test_client().get(url, **kwargs) as rv:
        rv.get_data()
        return rv


# -- 1. get_query selecting an alias of the model --------------------------


@pytest.mark.parametrize("view", ["alias", "subquery", "deferred"])
@pytest.mark.parametrize("kind", ["", "-instance"], ids=["row", "instance"])
def test_get_query_of_an_alias_keeps_its_narrowing(
    db_app: Flask, hello_bytes: bytes, view: str, kind: str
) -> None:
    """Bob's paper is outside get_query: 404, never served through a
    cartesian product (or a dropped subquery) with alice's rows."""
    mine = _get(db_app, f"/{view}{kind}/1")
    assert mine.status_code == 200
    assert mine.data == (b"A" if view == "deferred" else hello_bytes)
    assert _get(db_app, f"/{view}{kind}/2").status_code == 404
    assert _get(db_app, f"/{view}{kind}/3").status_code == 404


@pytest.mark.parametrize("view", ["alias", "subquery"])
def test_get_query_of_an_alias_narrows_slug_lookups(
    db_app: Flask, hello_bytes: bytes, view: str
) -> None:
    assert _get(db_app, f"/{view}-slug/mine").data == hello_bytes
    assert _get(db_app, f"/{view}-slug/theirs").status_code == 404


# -- 2. typed primary keys from the URL -------------------------------------


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/priced/1.50", 200),
        ("/priced/1.5", 200),
        ("/priced/abc", 404),
        ("/priced/1e3", 404),
        ("/priced/%201.5", 404),
        ("/priced/NaN", 404),
        ("/daily/2024-02-29", 200),
        ("/daily/2023-02-29", 404),
        ("/daily/yesterday", 404),
        ("/kind/report", 200),
        ("/kind/memo", 404),
        ("/kind/Report", 404),
    ],
)
def test_typed_keys_from_the_url_are_converted_or_404(
    db_app: Flask, url: str, status: int
) -> None:
    assert _get(db_app, url).status_code == status


def test_refused_key_leaves_the_apps_transaction_usable(db_app: Flask) -> None:
    """The application's own transaction (begun before the view) commits
    after a URL value the key's type refuses: no statement failed in it."""

    @db_app.before_request
    def begin() -> None:
        db.session.add(Paper(id=10, slug="audit", owner="audit", path="x"))
        db.session.flush()

    @db_app.after_request
    def commit(response: t.Any) -> t.Any:
        db.session.commit()
        return response

    assert _get(db_app, "/kind/memo").status_code == 404
    with db_app.app_context():
        assert db.session.get(Paper, 10) is not None


# -- 3. the row's size -------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "length"), [(-1, None), (-5, None), (None, None), (3, "3")]
)
def test_negative_size_field_is_no_content_length(
    db_app: Flask, size: int | None, length: str | None
) -> None:
    with db_app.app_context():
        db.session.add(Streamed(id=1, size=size))
        db.session.commit()
    rv = _get(db_app, "/streamed/1")
    assert rv.status_code == 200
    assert rv.headers.get("Content-Length") == length
    assert rv.data == b"abc"


# -- 4. Cache-Control --------------------------------------------------------


def test_object_downloads_are_private_on_every_status(db_app: Flask) -> None:
    full = _get(db_app, "/paper/1")
    assert full.headers["Cache-Control"] == "private, no-cache"
    etag = full.headers["ETag"]
    not_modified = _get(db_app, "/paper/1", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["Cache-Control"] == "private, no-cache"
    partial = _get(db_app, "/paper/1", headers={"Range": "bytes=0-0"})
    assert partial.status_code == 206
    assert partial.headers["Cache-Control"] == "private, no-cache"
    aged = _get(db_app, "/aged/1")
    assert aged.headers["Cache-Control"] == "private, max-age=120"
    # The view's own value goes out as it is.
    assert _get(db_app, "/public/1").headers["Cache-Control"] == "public, max-age=60"


# -- 5. on a real server -----------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/paper/3", "/alias/3", "/alias-instance/3", "/deferred/3"]
)
def test_stalled_downloads_hold_no_connection_and_ran_one_select(
    db_app: Flask, download_root: pathlib.Path, url: str
) -> None:
    """Three downloads stalled mid-body: nothing checked out of the pool,
    and each ran exactly one SELECT."""
    big = os.urandom(4 * 1024 * 1024)
    (download_root / "big.bin").write_bytes(big)
    with db_app.app_context():
        db.session.add(Paper(id=3, slug="big", owner="alice", path="big.bin"))
        db.session.commit()
        db.session.execute(sa.update(Paper).where(Paper.id == 3).values(content=big))
        db.session.commit()
        engine = db.engine
    selects: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    connections: list[http.client.HTTPConnection] = []
    try:
        with serving(make_server("127.0.0.1", 0, db_app, threaded=True)) as server:
            try:
                responses = []
                for _ in range(3):
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", server.port, timeout=10
                    )
                    connections.append(conn)
                    conn.request("GET", url)
                    response = conn.getresponse()
                    responses.append(response)
                    assert response.status == 200
                    assert response.getheader("Content-Length") == str(len(big))
                    assert response.read(1024) == big[:1024]
                assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
                assert len(selects) == 3
                # Read to the end (a hang-up with unread data is a reset,
                # which Werkzeug's server may not close the body on).
                for response in responses:
                    assert response.read() == big[1024:]
            finally:
                for conn in connections:
                    conn.close()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def hello_bytes(download_root: pathlib.Path) -> bytes:
    return (download_root / "hello.txt").read_bytes()
