"""ObjectDownloadView, review of the fifth audit's lookup changes.

- a ``get_query`` selecting a class that is neither the model nor a base or
  a subclass of it (a sibling in the hierarchy, an unrelated model) is a
  ConfigurationError: narrowed on the model's own table it was a cartesian
  product that served rows outside the query;
- a ``TypeDecorator`` that does not convert bound values itself (no
  ``process_bind_param``) is converted as its ``impl`` for keys and slugs,
  as a plain ``Date`` or ``Uuid`` is; one that does still gets the URL's
  string;
- a hybrid property slug whose SQL expression is typed is converted like a
  column of that type.

PostgreSQL runs when ``FLASK_DOWNLOAD_TEST_POSTGRES`` is set (``.ci/run``
starts one).
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import os
import pathlib
import typing as t
import uuid

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from flask import Flask
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_download import ConfigurationError
from flask_download import ObjectDownloadView


class Base(DeclarativeBase):
    pass


class Doc(Base):
    __tablename__ = "review5b_doc"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    owner: Mapped[str] = mapped_column(sa.String(20))
    slug: Mapped[str] = mapped_column(sa.String(20), unique=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "doc"}


class Invoice(Doc):
    __tablename__ = "review5b_invoice"

    id: Mapped[int] = mapped_column(sa.ForeignKey("review5b_doc.id"), primary_key=True)

    __mapper_args__ = {"polymorphic_identity": "invoice"}


class Receipt(Doc):
    __tablename__ = "review5b_receipt"

    id: Mapped[int] = mapped_column(sa.ForeignKey("review5b_doc.id"), primary_key=True)

    __mapper_args__ = {"polymorphic_identity": "receipt"}


class Owner(Base):
    """Unrelated to Doc (no inheritance)."""

    __tablename__ = "review5b_owner"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(20))


class PlainDate(sa.TypeDecorator[datetime.date]):
    """A Date read back its own way, bound as a Date (no process_bind_param)."""

    impl = sa.Date
    cache_ok = True

    def process_result_value(self, value: t.Any, dialect: t.Any) -> t.Any:
        return value


class PlainUuid(sa.TypeDecorator[uuid.UUID]):
    """A Uuid bound as a Uuid (no process_bind_param)."""

    impl = sa.Uuid
    cache_ok = True


class Upper(sa.TypeDecorator[str]):
    """Converts bound values itself: strings go to it as they are."""

    impl = sa.String(20)
    cache_ok = True

    def process_bind_param(self, value: t.Any, dialect: t.Any) -> t.Any:
        return value.upper() if isinstance(value, str) else value


class Event(Base):
    __tablename__ = "review5b_event"

    id: Mapped[uuid.UUID] = mapped_column(PlainUuid(), primary_key=True)
    day: Mapped[datetime.date] = mapped_column(PlainDate(), unique=True)
    code: Mapped[str] = mapped_column(Upper(), unique=True)
    number: Mapped[int] = mapped_column(unique=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)

    @hybrid_property
    def seq(self) -> int:
        return self.number

    @hybrid_property
    def when(self) -> datetime.date:
        return self.day


EVENT_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


# -- views -------------------------------------------------------------------


class InvoiceThroughSibling(ObjectDownloadView):
    """Invoices wrongly selected as alice's receipts."""

    model = Invoice
    file_field = "content"

    def get_query(self) -> sa.Select[t.Any]:
        return sa.select(Receipt).where(Receipt.owner == "alice")


class InvoiceThroughSiblingAlias(InvoiceThroughSibling):
    def get_query(self) -> sa.Select[t.Any]:
        receipt = orm.aliased(Receipt)
        return sa.select(receipt).where(receipt.owner == "alice")


class DocThroughOwner(ObjectDownloadView):
    """Documents wrongly selected as the owner alice."""

    model = Doc
    file_field = "content"

    def get_query(self) -> sa.Select[t.Any]:
        return sa.select(Owner).where(Owner.name == "alice")


class DocThroughOwnerLegacy(DocThroughOwner):
    def get_query(self) -> t.Any:
        return orm.Query(Owner).filter_by(name="alice")


class DocJoinedToOwner(ObjectDownloadView):
    """Alice's documents, through a join to Owner: the right way."""

    model = Doc
    file_field = "content"

    def get_query(self) -> sa.Select[t.Any]:
        return (
            sa.select(Doc)
            .join(Owner, Owner.name == Doc.owner)
            .where(Owner.name == "alice")
        )


class DocAndOwner(DocJoinedToOwner):
    """Both entities selected: the model's is narrowed."""

    def get_query(self) -> sa.Select[t.Any]:
        return (
            sa.select(Owner, Doc)
            .join(Doc, Owner.name == Doc.owner)
            .where(Owner.name == "alice")
        )


class Events(ObjectDownloadView):
    model = Event
    file_field = "content"


class CustomEvents(Events):
    """Any get_query override: statement narrowed per request."""

    def get_query(self) -> sa.Select[t.Any]:
        return super().get_query().where(Event.number > 0)


# -- fixtures ----------------------------------------------------------------

POSTGRES = os.environ.get("FLASK_DOWNLOAD_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", "psycopg2", "psycopg"])
def database_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review5b.sqlite'}"
    if not POSTGRES:
        pytest.skip("FLASK_DOWNLOAD_TEST_POSTGRES is not set (.ci/run sets it)")
    pytest.importorskip(request.param)
    url = sa.make_url(POSTGRES).set(drivername=f"postgresql+{request.param}")
    return url.render_as_string(False)


@pytest.fixture
def db_app(
    app_factory: cabc.Callable[..., Flask], database_url: str
) -> cabc.Iterator[Flask]:
    engine = sa.create_engine(database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    maker = orm.sessionmaker(engine)
    with maker() as session:
        session.add_all(
            [
                Doc(id=1, owner="bob", slug="d1", content=b"doc-bob"),
                Invoice(id=2, owner="alice", slug="i2", content=b"invoice-alice"),
                Invoice(id=3, owner="bob", slug="i3", content=b"invoice-bob"),
                Receipt(id=4, owner="alice", slug="r4", content=b"receipt-alice"),
                Owner(id=1, name="alice"),
                Event(
                    id=EVENT_ID,
                    day=datetime.date(2024, 2, 29),
                    code="ABC",
                    number=7,
                    content=b"event",
                ),
            ]
        )
        session.commit()
    app = app_factory()
    for rule, name, view, kwargs in (
        ("/sibling/<int:id>", "sibling", InvoiceThroughSibling, {}),
        ("/sibling-slug/<slug>", "sibling-slug", InvoiceThroughSibling, {}),
        ("/sibling-alias/<int:id>", "sibling-alias", InvoiceThroughSiblingAlias, {}),
        (
            "/sibling-instance/<int:id>",
            "sibling-instance",
            InvoiceThroughSibling,
            {"load_instance": True},
        ),
        ("/owner/<int:id>", "owner", DocThroughOwner, {}),
        ("/owner-legacy/<int:id>", "owner-legacy", DocThroughOwnerLegacy, {}),
        ("/joined/<int:id>", "joined", DocJoinedToOwner, {}),
        ("/both/<int:id>", "both", DocAndOwner, {}),
        ("/event/<id>", "event", Events, {}),
        ("/event-custom/<id>", "event-custom", CustomEvents, {}),
        ("/event-uuid/<uuid:id>", "event-uuid", Events, {}),
    ):
        app.add_url_rule(rule, view_func=view.as_view(name, session=maker, **kwargs))
    for field in ("day", "code", "seq", "when"):
        for name, view in (("", Events), ("-custom", CustomEvents)):
            app.add_url_rule(
                f"/event-{field}{name}/<slug>",
                view_func=view.as_view(
                    f"event-{field}{name}", session=maker, slug_field=field
                ),
            )
    yield app
    Base.metadata.drop_all(engine)
    engine.dispose()


def _get(app: Flask, url: str) -> t.Any:
    with app.test_client().get(url) as rv:
        rv.get_data()
        return rv


# -- 1. get_query selecting another class -----------------------------------


@pytest.mark.parametrize(
    ("url", "selects"),
    [
        ("/sibling/2", "Receipt"),
        ("/sibling/3", "Receipt"),
        ("/sibling-slug/i2", "Receipt"),
        ("/sibling-alias/2", "aliased"),
        ("/sibling-instance/2", "Receipt"),
        ("/owner/1", "Owner"),
        ("/owner/3", "Owner"),
        ("/owner-legacy/3", "Owner"),
    ],
)
def test_get_query_of_another_class_is_refused(
    db_app: Flask, url: str, selects: str
) -> None:
    """Narrowed on the model's table, alice's receipts (or the owner alice)
    matched any invoice (or any document, bob's included): a second FROM,
    a cartesian product."""
    with pytest.raises(ConfigurationError, match=f"selects {selects}"):
        _get(db_app, url)


def test_get_query_joined_to_another_class_is_narrowed(db_app: Flask) -> None:
    for view in ("joined", "both"):
        assert _get(db_app, f"/{view}/2").data == b"invoice-alice"
        assert _get(db_app, f"/{view}/4").data == b"receipt-alice"
        assert _get(db_app, f"/{view}/1").status_code == 404  # bob's
        assert _get(db_app, f"/{view}/3").status_code == 404  # bob's


# -- 2. TypeDecorator keys and slugs -----------------------------------------


@pytest.mark.parametrize("view", ["event", "event-custom"])
@pytest.mark.parametrize(
    ("value", "status"),
    [
        (str(EVENT_ID), 200),
        (EVENT_ID.hex, 200),
        (str(EVENT_ID).upper(), 200),
        ("87654321-4321-8765-4321-876543218765", 404),
        ("not-a-uuid", 404),
        ("7", 404),
    ],
)
def test_type_decorator_key_without_bind_processing(
    db_app: Flask, view: str, value: str, status: int
) -> None:
    """A TypeDecorator over Uuid with no process_bind_param binds what Uuid
    does: the URL's string was given to it as it is (an AttributeError in
    the bind processor: 404 for the row's own id, 500 with get_query)."""
    rv = _get(db_app, f"/{view}/{value}")
    assert rv.status_code == status
    if status == 200:
        assert rv.data == b"event"


def test_type_decorator_key_from_the_uuid_converter(db_app: Flask) -> None:
    assert _get(db_app, f"/event-uuid/{EVENT_ID}").data == b"event"


@pytest.mark.parametrize("custom", ["", "-custom"])
@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("day", "2024-02-29", 200),
        ("day", "2024-02-28", 404),
        ("day", "2023-02-29", 404),
        ("day", "yesterday", 404),
        # Converts strings itself: given the URL's string.
        ("code", "abc", 200),
        ("code", "ABC", 200),
        ("code", "abd", 404),
        # Hybrid properties over typed columns.
        ("seq", "7", 200),
        ("seq", "8", 404),
        ("seq", "seven", 404),
        ("seq", "99999999999999999999", 404),
        ("when", "2024-02-29", 200),
        ("when", "Feb 29", 404),
    ],
)
def test_typed_slugs_through_decorators_and_hybrids(
    db_app: Flask, custom: str, field: str, value: str, status: int
) -> None:
    rv = _get(db_app, f"/event-{field}{custom}/{value}")
    assert rv.status_code == status
    if status == 200:
        assert rv.data == b"event"
