"""Attacks on ``ObjectDownloadView``'s row fast path (issue 16).

Without a ``get_query()`` override and with a session that has no
transaction, the row is read by a Core ``SELECT`` on a connection of its
own. A tenant filter added by a ``do_orm_execute`` listener must still
apply, wherever the listener is registered (the scoped session, its
``sessionmaker``, the ``Session`` class), and every lookup form (id, slug,
both) must answer 404 for a hidden row and for values no row can have,
with no connection left checked out.
"""

from __future__ import annotations

import collections.abc as cabc
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from flask import Flask

from flask_download import FlaskDownload
from flask_download import ObjectDownloadView

from .conftest import LiveServer
from .conftest import start_server
from .conftest import stop_server


class Base(orm.DeclarativeBase):
    pass


class Doc(Base):
    __tablename__ = "fast_path_doc"
    id = sa.Column(sa.Integer, primary_key=True)
    path = sa.Column(sa.String, nullable=False)
    owner = sa.Column(sa.String, nullable=False)
    slug = sa.Column(sa.String, nullable=False)


class Fixture(t.NamedTuple):
    live: LiveServer
    engine: t.Any
    sessions: t.Any


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> cabc.Iterator[Fixture]:
    base: pathlib.Path = tmp_path_factory.mktemp("fast_path")
    root = base / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alice's\n")
    (root / "m.txt").write_bytes(b"mallory's\n")
    engine = sa.create_engine(f"sqlite:///{base / 'fast.db'}")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        session.add(Doc(id=1, path="a.txt", owner="alice", slug="one"))
        session.add(Doc(id=2, path="m.txt", owner="mallory", slug="two"))
        session.commit()
    sessions = orm.scoped_session(orm.sessionmaker(engine))

    class View(ObjectDownloadView):
        model = Doc
        file_field = "path"
        session = sessions

    app = Flask("fast_path")
    app.config["DOWNLOAD_ROOT"] = str(root)
    FlaskDownload(app)
    app.add_url_rule("/id/<id>", view_func=View.as_view("by_id"))
    app.add_url_rule("/slug/<slug>", view_func=View.as_view("by_slug"))
    app.add_url_rule("/both/<id>/<slug>", view_func=View.as_view("both"))

    @app.teardown_appcontext
    def remove(error: BaseException | None) -> None:
        sessions.remove()

    live = start_server(app)
    try:
        yield Fixture(live, engine, sessions)
    finally:
        stop_server(live)
        engine.dispose()


def _only_alice(state: t.Any) -> None:
    if state.is_select:
        state.statement = state.statement.options(
            orm.with_loader_criteria(Doc, Doc.owner == "alice")
        )


HIDDEN = ["/id/2", "/slug/two", "/both/2/two"]
NO_ROW = [
    "/both/1/two",  # id and slug of different rows
    "/id/99999999999999999999",
    "/id/9223372036854775808",
    "/id/-9223372036854775809",
    "/id/1.0",
    "/id/0x1",
    "/id/%201",
    "/id/1%00",
    "/slug/one%00",
    "/id/%E2%91%A0",  # a circled digit one: not an ASCII integer
]


@pytest.mark.parametrize("where", ["scoped", "sessionmaker", "class"])
def test_tenant_filter_applies_on_the_fast_path(fixture: Fixture, where: str) -> None:
    target = {
        "scoped": fixture.sessions,
        "sessionmaker": fixture.sessions.session_factory,
        "class": orm.Session,
    }[where]
    live = fixture.live
    assert live.request("/id/2").status == 200  # visible without the filter
    sa.event.listen(target, "do_orm_execute", _only_alice)
    try:
        for url in ["/id/1", "/slug/one", "/both/1/one"]:
            response = live.request(url)
            assert response.status == 200, (url, response)
            assert response.body == b"alice's\n"
        for url in HIDDEN:
            response = live.request(url)
            assert response.status == 404, (url, response)
            assert b"mallory" not in response.raw
    finally:
        sa.event.remove(target, "do_orm_execute", _only_alice)


@pytest.mark.parametrize("url", NO_ROW)
def test_values_no_row_has_are_404(fixture: Fixture, url: str) -> None:
    response = fixture.live.request(url)
    assert response.status == 404, response


def test_no_connection_stays_checked_out(fixture: Fixture) -> None:
    for url in ["/id/1", "/id/2", *HIDDEN, *NO_ROW]:
        fixture.live.request(url)
        fixture.live.request(url, method="HEAD")
    assert fixture.engine.pool.checkedout() == 0
