"""ObjectDownloadView and the SQLAlchemy columns, fifth audit.

- a ``get_query`` selecting a base class of the model (or an alias of one)
  is refused with a ConfigurationError instead of a cartesian product that
  served any row; one selecting a subclass of the model is narrowed on it;
- URL values for slug columns that are not text (``Enum``, ``Date``,
  ``DateTime``, ``Numeric``, ``Uuid``, ``Integer``) are converted or
  refused as 404, like primary keys;
- a composite primary key is refused at ``as_view`` when the model is known;
- pending writes of the application's session are never rolled back;
- an outside tester's tour: ``BinaryFile`` ranges, ``HEAD``, 304, NULL
  columns, missing files, per-user narrowing through a Flask-Login-style
  ``current_user``, slug and key together, renamed URL variables, and no
  pooled connection held while a body streams on a real server.

PostgreSQL runs when ``FLASK_DOWNLOAD_TEST_POSTGRES`` is set (``.ci/run``
starts one; see ``test_objects_direct_postgres.py``).
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import decimal
import enum
import http.client
import os
import pathlib
import re
import typing as t
import uuid

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from conftest import serving
from flask import Flask
from flask import g
from flask import request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.local import LocalProxy
from werkzeug.serving import make_server

from flask_download import ConfigurationError
from flask_download import ObjectDownloadView
from flask_download.sqlalchemy import ColumnFile
from flask_download.sqlalchemy import FileColumn


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Doc(Base):
    """The base of an inheritance hierarchy (joined and single-table)."""

    __tablename__ = "audit5_doc"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    owner: Mapped[str] = mapped_column(sa.String(20))
    slug: Mapped[str] = mapped_column(sa.String(50), unique=True)
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    path: Mapped[ColumnFile | None] = mapped_column(FileColumn())
    name: Mapped[str | None] = mapped_column(sa.String(50))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "doc"}


class Invoice(Doc):
    """Joined-table inheritance."""

    __tablename__ = "audit5_invoice"

    id: Mapped[int] = mapped_column(sa.ForeignKey("audit5_doc.id"), primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(20))

    __mapper_args__ = {"polymorphic_identity": "invoice"}


class Note(Doc):
    """Single-table inheritance."""

    __mapper_args__ = {"polymorphic_identity": "note"}


class Color(enum.Enum):
    red = "r"
    blue = "b"


class Event(Base):
    """Slug columns of every type a URL string is not a value of."""

    __tablename__ = "audit5_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(
        sa.Enum("talk", "poster", name="audit5_kind_enum"), unique=True
    )
    color: Mapped[Color] = mapped_column(
        sa.Enum(Color, name="audit5_color_enum"), unique=True
    )
    day: Mapped[datetime.date] = mapped_column(unique=True)
    at: Mapped[datetime.datetime] = mapped_column(unique=True)
    price: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(10, 2), unique=True)
    uid: Mapped[uuid.UUID] = mapped_column(sa.Uuid, unique=True)
    uid_text: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), unique=True)
    number: Mapped[int] = mapped_column(unique=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Code(Base):
    """A text primary key."""

    __tablename__ = "audit5_code"

    id: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Pair(Base):
    """A composite primary key and no slug."""

    __tablename__ = "audit5_pair"

    a: Mapped[int] = mapped_column(primary_key=True)
    b: Mapped[int] = mapped_column(primary_key=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)


class SluggedPair(Base):
    """A composite primary key and a unique slug."""

    __tablename__ = "audit5_slugged_pair"

    a: Mapped[int] = mapped_column(primary_key=True)
    b: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(20), unique=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)


# -- a Flask-Login-style current_user ----------------------------------------


class User:
    def __init__(self, name: str | None) -> None:
        self.name = name
        self.is_authenticated = name is not None


def _load_user() -> User:
    if "user" not in g:
        g.user = User(request.headers.get("X-User"))
    return t.cast(User, g.user)


current_user: t.Any = LocalProxy(_load_user)


# -- views -------------------------------------------------------------------


class InvoiceThroughBaseAlias(ObjectDownloadView):
    """Alice's invoices, wrongly selected through an alias of the base."""

    model = Invoice
    file_field = "content"

    def get_query(self) -> sa.Select[t.Any]:
        doc = orm.aliased(Doc)
        return sa.select(doc).where(doc.owner == "alice")


class InvoiceThroughBase(InvoiceThroughBaseAlias):
    def get_query(self) -> sa.Select[t.Any]:
        return sa.select(Doc).where(Doc.owner == "alice")


class NoteThroughBaseAlias(InvoiceThroughBaseAlias):
    model = Note


class DocThroughInvoice(ObjectDownloadView):
    """Documents that are invoices numbered "1": a subclass of the model."""

    model = Doc
    file_field = "content"

    def get_query(self) -> sa.Select[t.Any]:
        return sa.select(Invoice).where(Invoice.number == "1")


class DocThroughInvoiceAlias(DocThroughInvoice):
    def get_query(self) -> sa.Select[t.Any]:
        invoice = orm.aliased(Invoice)
        return sa.select(invoice).where(invoice.number == "1")


class MyDocs(ObjectDownloadView):
    """The current user's documents (Flask-Login style)."""

    model = Doc
    file_field = "content"
    basename_field = "name"
    version_field = "version"

    def get_query(self) -> sa.Select[t.Any]:
        if not current_user.is_authenticated:
            return super().get_query().where(sa.false())
        return super().get_query().where(Doc.owner == current_user.name)


class MyDocsAliased(MyDocs):
    def get_query(self) -> sa.Select[t.Any]:
        doc = orm.aliased(Doc)
        return sa.select(doc).where(doc.owner == current_user.name)


class MyDocsLegacyQuery(MyDocs):
    """The 1.x ``Query`` API many Flask-SQLAlchemy apps still use."""

    def get_query(self) -> t.Any:
        return db.session.query(Doc).filter_by(owner=current_user.name)


class NotAQuery(MyDocs):
    def get_query(self) -> t.Any:
        return [Doc]


POSTGRES = os.environ.get("FLASK_DOWNLOAD_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", "psycopg2", "psycopg"])
def database_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit5.sqlite'}"
    if not POSTGRES:
        pytest.skip("FLASK_DOWNLOAD_TEST_POSTGRES is not set (.ci/run sets it)")
    pytest.importorskip(request.param)
    url = sa.make_url(POSTGRES).set(drivername=f"postgresql+{request.param}")
    return url.render_as_string(False)


def _routes(app: Flask) -> None:
    def add(rule: str, name: str, view: type[ObjectDownloadView], **kw: t.Any) -> None:
        app.add_url_rule(rule, view_func=view.as_view(name, **kw))

    for name, view in (
        ("base-alias", InvoiceThroughBaseAlias),
        ("base", InvoiceThroughBase),
        ("note-base-alias", NoteThroughBaseAlias),
        ("sub", DocThroughInvoice),
        ("sub-alias", DocThroughInvoiceAlias),
        ("mine", MyDocs),
        ("mine-aliased", MyDocsAliased),
        ("mine-legacy", MyDocsLegacyQuery),
        ("not-a-query", NotAQuery),
    ):
        add(f"/{name}/<int:id>", name, view)
        add(f"/{name}-slug/<slug>", f"{name}-slug", view)
        add(f"/{name}-instance/<int:id>", f"{name}-instance", view, load_instance=True)
    for field in ("kind", "color", "day", "at", "price", "uid", "uid_text", "number"):
        for how in ("row", "instance"):
            add(
                f"/event-{field}-{how}/<slug>",
                f"event-{field}-{how}",
                ObjectDownloadView,
                model=Event,
                file_field="content",
                slug_field=field,
                load_instance=how == "instance",
            )
    add(
        "/event-uid-converter/<uuid:slug>",
        "event-uid-converter",
        ObjectDownloadView,
        model=Event,
        file_field="content",
        slug_field="uid",
    )
    add(
        "/event-number-converter/<int:slug>",
        "event-number-converter",
        ObjectDownloadView,
        model=Event,
        file_field="content",
        slug_field="number",
    )
    add("/code/<int:id>", "code", ObjectDownloadView, model=Code, file_field="content")
    add(
        "/code-text/<id>",
        "code-text",
        ObjectDownloadView,
        model=Code,
        file_field="content",
    )
    add(
        "/doc-slug-int/<int:slug>",
        "doc-slug-int",
        ObjectDownloadView,
        model=Doc,
        file_field="content",
    )
    add("/blob/<int:id>", "blob", ObjectDownloadView, model=Doc, file_field="content")
    add(
        "/blob-instance/<int:id>",
        "blob-instance",
        ObjectDownloadView,
        model=Doc,
        file_field="content",
        basename_field="name",
        load_instance=True,
    )
    add("/path/<int:id>", "path", ObjectDownloadView, model=Doc, file_field="path")
    add(
        "/both/<int:id>/<slug>",
        "both",
        ObjectDownloadView,
        model=Doc,
        file_field="path",
    )
    add(
        "/renamed/<int:doc_id>/<handle>",
        "renamed",
        ObjectDownloadView,
        model=Doc,
        file_field="path",
        pk_url_kwarg="doc_id",
        slug_url_kwarg="handle",
    )
    add(
        "/renamed-pk/<int:doc_id>",
        "renamed-pk",
        ObjectDownloadView,
        model=Doc,
        file_field="path",
        pk_url_kwarg="doc_id",
    )
    add(
        "/public/<int:id>",
        "public",
        ObjectDownloadView,
        model=Doc,
        file_field="content",
        cache_control="public, max-age=60",
    )
    add(
        "/slugged-pair/<slug>",
        "slugged-pair",
        ObjectDownloadView,
        model=SluggedPair,
        file_field="content",
    )
    add(
        "/slugged-pair-by-key/<int:id>",
        "slugged-pair-by-key",
        ObjectDownloadView,
        model=SluggedPair,
        file_field="content",
    )


EVENT = {
    "kind": "talk",
    "color": Color.red,
    "day": datetime.date(2024, 2, 29),
    "at": datetime.datetime(2024, 2, 29, 12, 30, 15),
    "price": decimal.Decimal("1.50"),
    "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "uid_text": "87654321-4321-8765-4321-876543218765",
    "number": 42,
}


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
                Invoice(
                    id=1, owner="alice", slug="a", content=b"A", number="1", name="a"
                ),
                Invoice(id=2, owner="bob", slug="b", content=b"B", number="2"),
                Note(id=3, owner="alice", slug="c", content=b"C", path="hello.txt"),
                Note(id=4, owner="bob", slug="d", content=b"D", path="data.bin"),
                Doc(id=5, owner="alice", slug="e", content=None, path=None),
                Doc(id=6, owner="alice", slug="f", content=b"", path="missing.txt"),
                Event(id=1, content=b"event", **EVENT),
                SluggedPair(a=1, b=2, slug="pair", content=b"pair"),
                Code(id="77", content=b"code"),
                Doc(id=77, owner="x", slug="77", content=b"seventy-seven"),
            ]
        )
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def _get(app: Flask, url: str, **kwargs: t.Any) -> t.Any:
    with app.test_client().open(url, **kwargs) as rv:
        rv.get_data()
        return rv


@pytest.fixture
def statements(db_app: Flask) -> cabc.Iterator[list[str]]:
    """Every SELECT sent, through SQLAlchemy or the direct read."""
    seen: list[str] = []
    with db_app.app_context():
        engine = db.engine

    def record(dbapi_connection: t.Any, record: t.Any) -> None:
        if engine.dialect.name == "sqlite":
            dbapi_connection.set_trace_callback(seen.append)

    engine.dispose()
    sa.event.listen(engine.pool, "connect", record)

    def sent(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        if engine.dialect.name != "sqlite":
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", sent)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", sent)
    sa.event.remove(engine.pool, "connect", record)


def _froms(sql: str) -> str:
    """The top-level FROM list of ``sql`` (subqueries left out)."""
    sql = " ".join(sql.split())
    while True:
        flat = re.sub(r"\([^()]*\)", "", sql)
        if flat == sql:
            break
        sql = flat
    found = re.search(r"\bFROM\b(.*?)\bWHERE\b", sql, re.I)
    assert found is not None, sql
    return found.group(1)


# -- 1. get_query selecting a base class or a subclass ----------------------


@pytest.mark.parametrize("view", ["base-alias", "base", "note-base-alias"])
@pytest.mark.parametrize("kind", ["", "-instance", "-slug"])
def test_get_query_of_a_base_class_is_refused(
    db_app: Flask, view: str, kind: str
) -> None:
    """An alias of (or the) base class of the model in get_query: the key
    compared on the model's own table was a second FROM, and bob's rows
    (even rows of another class) were served to alice's query."""
    url = f"/{view}{kind}/" + ("b" if kind == "-slug" else "2")
    with pytest.raises(ConfigurationError, match="base class"):
        _get(db_app, url)


@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
@pytest.mark.parametrize("view", ["sub", "sub-alias"])
@pytest.mark.parametrize("kind", ["", "-instance"], ids=["row", "instance"])
def test_get_query_of_a_subclass_is_narrowed_on_it(
    db_app: Flask, statements: list[str], view: str, kind: str
) -> None:
    """select(Invoice) for a Doc view: the key and the fields are taken
    from Invoice, never from a second FROM next to it."""
    assert _get(db_app, f"/{view}{kind}/1").data == b"A"
    for other in (2, 3, 4):  # bob's invoice, notes: outside get_query
        assert _get(db_app, f"/{view}{kind}/{other}").status_code == 404
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4
    for sql in selects:
        assert "," not in _froms(sql), sql


@pytest.mark.parametrize("view", ["mine", "mine-aliased", "mine-legacy"])
@pytest.mark.parametrize("kind", ["", "-instance"], ids=["row", "instance"])
def test_current_user_narrowing(db_app: Flask, view: str, kind: str) -> None:
    """Flask-Login style: another user's row, or no user, is a 404."""
    as_alice = {"X-User": "alice"}
    mine = _get(db_app, f"/{view}{kind}/1", headers=as_alice)
    assert (mine.status_code, mine.data) == (200, b"A")
    assert mine.headers["Cache-Control"] == "private, no-cache"
    assert _get(db_app, f"/{view}{kind}/2", headers=as_alice).status_code == 404
    assert _get(db_app, f"/{view}{kind}/2", headers={"X-User": "bob"}).data == b"B"
    assert _get(db_app, f"/{view}{kind}/1").status_code == 404
    assert _get(db_app, f"/{view}-slug/b", headers=as_alice).status_code == 404
    assert _get(db_app, f"/{view}-slug/a", headers=as_alice).data == b"A"


def test_get_query_of_something_else_is_a_configuration_error(
    db_app: Flask,
) -> None:
    with pytest.raises(ConfigurationError, match="must return a SQLAlchemy select"):
        _get(db_app, "/not-a-query/1", headers={"X-User": "alice"})


# -- 2. slug columns that are not text ---------------------------------------


@pytest.mark.parametrize("how", ["row", "instance"])
@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("kind", "talk", 200),
        ("kind", "keynote", 404),
        ("color", "red", 200),
        ("color", "green", 404),
        ("day", "2024-02-29", 200),
        ("day", "2023-02-29", 404),
        ("day", "yesterday", 404),
        ("at", "2024-02-29T12:30:15", 200),
        ("at", "2024-02-29 12:30:15", 200),
        ("at", "noon", 404),
        ("at", "2024-13-01T00:00:00", 404),
        ("price", "1.50", 200),
        ("price", "1.5", 200),
        ("price", "cheap", 404),
        ("price", "NaN", 404),
        ("price", "1e3", 404),
        ("price", "123456789012345678901234567890.5", 404),
        ("price", "0.001", 404),
        ("uid", "12345678-1234-5678-1234-567812345678", 200),
        ("uid", "12345678123456781234567812345678", 200),
        ("uid", "not-a-uuid", 404),
        ("uid_text", "87654321-4321-8765-4321-876543218765", 200),
        ("uid_text", "not-a-uuid", 404),
        ("number", "42", 200),
        ("number", "forty-two", 404),
        ("number", "99999999999999999999", 404),
    ],
)
def test_typed_slugs_are_converted_or_404(
    db_app: Flask, how: str, field: str, value: str, status: int
) -> None:
    rv = _get(db_app, f"/event-{field}-{how}/{value}")
    assert rv.status_code == status
    if status == 200:
        assert rv.data == b"event"


def test_typed_slugs_from_url_converters(db_app: Flask) -> None:
    """``<uuid:slug>`` and ``<int:slug>`` give non-string values: served."""
    assert _get(db_app, f"/event-uid-converter/{EVENT['uid']}").data == b"event"
    assert _get(db_app, "/event-number-converter/42").data == b"event"
    assert _get(db_app, "/event-number-converter/43").status_code == 404


def test_integer_url_values_for_text_columns(db_app: Flask) -> None:
    """``<int:id>`` for a text key (or slug) is compared as text: found, and
    never a type error from the database (PostgreSQL has no varchar = int)."""
    assert _get(db_app, "/code/77").data == b"code"
    assert _get(db_app, "/code/78").status_code == 404
    assert _get(db_app, "/code-text/77").data == b"code"
    assert _get(db_app, "/doc-slug-int/77").data == b"seventy-seven"
    assert _get(db_app, "/doc-slug-int/78").status_code == 404


def test_refused_slug_leaves_the_apps_transaction_usable(db_app: Flask) -> None:
    """The application's own transaction (begun before the view) commits
    after a slug the column's type refuses: no statement failed in it."""

    ids = iter(range(10, 20))

    @db_app.before_request
    def begin() -> None:
        new = next(ids)
        db.session.add(Doc(id=new, owner="x", slug=f"x{new}"))
        db.session.flush()

    @db_app.after_request
    def commit(response: t.Any) -> t.Any:
        db.session.commit()
        return response

    assert _get(db_app, "/event-day-row/someday").status_code == 404
    assert _get(db_app, "/event-uid_text-instance/zzz").status_code == 404
    with db_app.app_context():
        assert db.session.get(Doc, 10) is not None
        assert db.session.get(Doc, 11) is not None


# -- 3. composite primary keys ----------------------------------------------


def test_composite_primary_key_is_refused_at_as_view() -> None:
    with pytest.raises(ConfigurationError, match=r"composite primary key \(a, b\)"):
        ObjectDownloadView.as_view("pair", model=Pair, file_field="content")

    class PairView(ObjectDownloadView):
        model = Pair
        file_field = "content"

    with pytest.raises(ConfigurationError, match="composite"):
        PairView.as_view("pair")


def test_composite_primary_key_with_a_way_out_is_accepted(db_app: Flask) -> None:
    class PairView(ObjectDownloadView):
        model = Pair
        file_field = "content"

        def get_object(self) -> t.Any:
            return db.session.get(Pair, (self.kwargs["a"], self.kwargs["b"]))

    db_app.add_url_rule("/pair/<int:a>/<int:b>", view_func=PairView.as_view("pair"))
    # No key from the URL: nothing to refuse.
    ObjectDownloadView.as_view("x", model=Pair, file_field="content", pk_url_kwarg="")
    with db_app.app_context():
        db.session.add(Pair(a=1, b=2, content=b"12"))
        db.session.commit()
    assert _get(db_app, "/pair/1/2").data == b"12"
    assert _get(db_app, "/pair/2/1").status_code == 404
    # A slug lookup of a model with a composite key works; the key route
    # (the rule is not known at as_view) is refused when it is requested.
    assert _get(db_app, "/slugged-pair/pair").data == b"pair"
    with pytest.raises(ConfigurationError, match="composite"):
        _get(db_app, "/slugged-pair-by-key/1")


# -- 4. pending writes of the application's session --------------------------


@pytest.mark.parametrize("url", ["/blob/1", "/blob-instance/1", "/mine-instance/1"])
def test_pending_writes_are_never_rolled_back(db_app: Flask, url: str) -> None:
    """A row the application added (not flushed) before the view is still
    committed at the end of the request: the view's SELECT may autoflush it,
    but it must not roll it back as if the transaction were its own."""

    @db_app.before_request
    def log_download() -> None:
        db.session.add(Doc(id=20, owner="log", slug="log"))

    @db_app.after_request
    def commit(response: t.Any) -> t.Any:
        db.session.commit()
        return response

    rv = _get(db_app, url, headers={"X-User": "alice"})
    assert rv.data == b"A"
    with db_app.app_context():
        assert db.session.get(Doc, 20) is not None


def test_pending_row_is_seen_by_the_lookup(db_app: Flask) -> None:
    """A row added to the session before the view is found by it, as any
    query of that session finds it (autoflush)."""

    @db_app.before_request
    def add() -> None:
        db.session.add(Doc(id=21, owner="new", slug="new", content=b"new"))

    assert _get(db_app, "/blob/21").data == b"new"


# -- 5. an outside tester's tour ---------------------------------------------


@pytest.mark.parametrize("url", ["/blob/1", "/blob-instance/1", "/mine/1"])
def test_binary_content_ranges_head_and_304(db_app: Flask, url: str) -> None:
    headers = {"X-User": "alice"}
    full = _get(db_app, url, headers=headers)
    assert (full.status_code, full.data) == (200, b"A")
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["Content-Length"] == "1"
    etag = full.headers["ETag"]
    assert etag.startswith('"')
    part = _get(db_app, url, headers={**headers, "Range": "bytes=0-0"})
    assert (part.status_code, part.data) == (206, b"A")
    assert part.headers["Content-Range"] == "bytes 0-0/1"
    assert part.headers["Cache-Control"] == "private, no-cache"
    bad = _get(db_app, url, headers={**headers, "Range": "bytes=5-"})
    assert bad.status_code == 416
    assert bad.headers["Content-Range"] == "bytes */1"
    resumed = _get(
        db_app, url, headers={**headers, "Range": "bytes=0-", "If-Range": etag}
    )
    assert (resumed.status_code, resumed.data) == (206, b"A")
    stale = _get(
        db_app, url, headers={**headers, "Range": "bytes=0-", "If-Range": '"x"'}
    )
    assert (stale.status_code, stale.data) == (200, b"A")
    head = _get(db_app, url, method="HEAD", headers={**headers, "Range": "bytes=0-0"})
    assert (head.status_code, head.data) == (200, b"")
    assert head.headers["Content-Length"] == "1"
    not_modified = _get(db_app, url, headers={**headers, "If-None-Match": etag})
    assert (not_modified.status_code, not_modified.data) == (304, b"")
    assert not_modified.headers["ETag"] == etag
    assert not_modified.headers["Cache-Control"] == "private, no-cache"
    assert "Content-Disposition" not in not_modified.headers


def test_empty_null_and_missing_files(db_app: Flask) -> None:
    empty = _get(db_app, "/blob/6")
    assert (empty.status_code, empty.data) == (200, b"")
    assert empty.headers["Content-Length"] == "0"
    assert _get(db_app, "/blob/5").status_code == 404  # NULL content
    assert _get(db_app, "/path/5").status_code == 404  # NULL FileColumn
    assert _get(db_app, "/path/6").status_code == 404  # a missing file
    assert _get(db_app, "/path/3").status_code == 200


def test_file_column_key_leaving_the_root_is_404(db_app: Flask) -> None:
    """A key written behind the ORM's back (raw SQL) never leaves the root."""
    with db_app.app_context():
        for key in ("../secret.txt", "/etc/passwd", "sub/../../secret.txt"):
            db.session.execute(
                sa.text("UPDATE audit5_doc SET path = :key WHERE id = 3"),
                {"key": key},
            )
            db.session.commit()
            assert _get(db_app, "/path/3").status_code == 404, key


def test_slug_and_key_together_must_both_match(db_app: Flask) -> None:
    assert _get(db_app, "/both/3/c").status_code == 200
    assert _get(db_app, "/both/3/d").status_code == 404
    assert _get(db_app, "/both/4/c").status_code == 404


def test_renamed_url_variables(db_app: Flask) -> None:
    assert _get(db_app, "/renamed/3/c").status_code == 200
    assert _get(db_app, "/renamed/3/d").status_code == 404
    assert _get(db_app, "/renamed-pk/4").status_code == 200
    assert _get(db_app, "/renamed-pk/9").status_code == 404


def test_cache_control_override(db_app: Flask) -> None:
    full = _get(db_app, "/public/1")
    assert full.headers["Cache-Control"] == "public, max-age=60"
    etag = full.headers["ETag"]
    again = _get(db_app, "/public/1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["Cache-Control"] == "public, max-age=60"
    assert _get(db_app, "/blob/1").headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize(
    "url", ["/mine/7", "/mine-aliased-instance/7", "/blob-instance/7", "/path/7"]
)
def test_slow_bodies_hold_no_connection(
    db_app: Flask, download_root: pathlib.Path, url: str
) -> None:
    """Stalled mid-body on a real server, also with a current_user query and
    a pending write committed after the request: nothing checked out."""
    big = os.urandom(4 * 1024 * 1024)
    (download_root / "big.bin").write_bytes(big)
    with db_app.app_context():
        db.session.add(
            Doc(id=7, owner="alice", slug="big", content=big, path="big.bin")
        )
        db.session.commit()
        engine = db.engine

    @db_app.before_request
    def log_download() -> None:
        if request.headers.get("X-Log"):
            db.session.add(Doc(id=30, owner="log", slug="log"))

    @db_app.after_request
    def commit(response: t.Any) -> t.Any:
        db.session.commit()
        return response

    connections: list[http.client.HTTPConnection] = []
    with serving(make_server("127.0.0.1", 0, db_app, threaded=True)) as server:
        try:
            responses = []
            for log in ("", "yes"):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                connections.append(conn)
                conn.request("GET", url, headers={"X-User": "alice", "X-Log": log})
                response = conn.getresponse()
                responses.append(response)
                assert response.status == 200
                assert response.read(1024) == big[:1024]
            assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            for response in responses:
                assert response.read() == big[1024:]
        finally:
            for conn in connections:
                conn.close()
    with db_app.app_context():
        assert db.session.get(Doc, 30) is not None


def test_version_field_changes_the_etag(db_app: Flask) -> None:
    headers = {"X-User": "alice"}
    before = _get(db_app, "/mine/1", headers=headers).headers["ETag"]
    with db_app.app_context():
        db.session.execute(sa.update(Doc).where(Doc.id == 1).values(version=2))
        db.session.commit()
    after = _get(db_app, "/mine/1", headers={**headers, "If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["ETag"] != before


class Hashid(sa.TypeDecorator[int]):
    """An integer column the application reads and writes as ``"h<n>"``."""

    impl = sa.Integer
    cache_ok = True

    def process_bind_param(self, value: t.Any, dialect: t.Any) -> t.Any:
        if isinstance(value, str):
            if not re.fullmatch(r"h[0-9]{1,9}", value):
                raise ValueError(value)
            return int(value[1:])
        return value


class HashidEvent(Base):
    """``Event``'s table with ``number`` read through ``Hashid``."""

    __table__ = sa.Table(
        "audit5_event",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", Hashid()),
        sa.Column("content", sa.LargeBinary),
    )


def test_type_decorator_slug_gets_the_url_string(db_app: Flask) -> None:
    """A slug column of a TypeDecorator type is given the URL's string as it
    is: its process_bind_param converts it (or refuses it: a 404)."""
    view = ObjectDownloadView.as_view(
        "hashid", model=HashidEvent, file_field="content", slug_field="number"
    )
    db_app.add_url_rule("/hashid/<slug>", view_func=view)
    assert _get(db_app, "/hashid/h42").data == b"event"
    assert _get(db_app, "/hashid/h43").status_code == 404
    assert _get(db_app, "/hashid/42").status_code == 404


class HashidEvents(ObjectDownloadView):
    """A ``get_query()`` override around the Hashid slug: the value the URL
    gives is still the view's own to refuse (404), its own bound values the
    application's (a bug in them stays a 500)."""

    model = HashidEvent
    file_field = "content"
    slug_field = "number"
    #: A value bound by the override itself.
    floor: t.Any = 0

    def get_query(self) -> t.Any:
        return sa.select(HashidEvent).where(HashidEvent.number >= self.floor)


def test_type_decorator_refusal_under_get_query_is_404(db_app: Flask) -> None:
    db_app.add_url_rule("/hashid-q/<slug>", view_func=HashidEvents.as_view("hashid_q"))
    assert _get(db_app, "/hashid-q/h42").data == b"event"
    assert _get(db_app, "/hashid-q/h43").status_code == 404
    # Refused by Hashid.process_bind_param: a 404, as without the override.
    assert _get(db_app, "/hashid-q/42").status_code == 404
    assert _get(db_app, "/hashid-q/h").status_code == 404


def test_the_overrides_own_refused_value_is_still_an_error(db_app: Flask) -> None:
    db_app.add_url_rule(
        "/hashid-bad/<slug>",
        view_func=HashidEvents.as_view("hashid_bad", floor="not-a-hashid"),
    )
    db_app.testing = True
    with pytest.raises(sa.exc.StatementError):
        _get(db_app, "/hashid-bad/h42")
