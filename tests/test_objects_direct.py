"""ObjectDownloadView's direct read (flask_download/_direct.py).

A plain Core lookup on an engine with no listeners, no SQL logging and no
execution options is read on a pooled DBAPI connection, with SQLAlchemy's
bind and result processors applied by hand. These tests check that it is
taken when it may be, that it is indistinguishable from the ``Connection``
path, and that everything unusual (listeners, echo, execution options,
driver errors, disconnects) goes through SQLAlchemy as before.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import datetime
import logging
import os
import pathlib
import sqlite3
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.exc
import sqlalchemy.orm as orm
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_download import download_started
from flask_download import ObjectDownloadView
from flask_download.pytest_plugin import SAMPLE_FILES


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class ShiftedId(sa.TypeDecorator[int]):
    """An id stored 1000 higher than the application sees it."""

    impl = sa.Integer
    cache_ok = True

    def process_bind_param(self, value: t.Any, dialect: t.Any) -> t.Any:
        if value is not None and value < 0:
            raise ValueError("negative ids are not stored")
        return None if value is None else value + 1000

    def process_result_value(self, value: t.Any, dialect: t.Any) -> t.Any:
        return None if value is None else value - 1000


class UnderSub(sa.TypeDecorator[str]):
    """A key stored relative to ``sub/`` and read back under it."""

    impl = sa.String(200)
    cache_ok = True

    def process_bind_param(self, value: t.Any, dialect: t.Any) -> t.Any:
        if value is not None and value.startswith("sub/"):
            value = value[len("sub/") :]
        return value

    def process_result_value(self, value: t.Any, dialect: t.Any) -> t.Any:
        return None if value is None else f"sub/{value}"


class Doc(Base):
    __tablename__ = "direct_doc"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str | None] = mapped_column(sa.String(50), unique=True)
    path: Mapped[str | None] = mapped_column(sa.String(200))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    version: Mapped[int | None]


class Fancy(Base):
    __tablename__ = "direct_fancy"

    id: Mapped[int] = mapped_column(ShiftedId, primary_key=True)
    path: Mapped[str | None] = mapped_column(UnderSub)
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    filename: Mapped[str | None] = mapped_column(sa.String(200))
    mimetype: Mapped[str | None] = mapped_column(sa.String(100))
    encoding: Mapped[str | None] = mapped_column(sa.String(20))
    charset: Mapped[str | None] = mapped_column(sa.String(20))
    updated_at: Mapped[datetime.datetime | None]
    size: Mapped[int | None]
    version: Mapped[int | None]
    crc32: Mapped[int | None]


FANCY_FIELDS = {
    "basename_field": "filename",
    "mime_type_field": "mimetype",
    "encoding_field": "encoding",
    "charset_field": "charset",
    "modification_time_field": "updated_at",
    "size_field": "size",
    "version_field": "version",
    "crc32_field": "crc32",
}


def _routes(app: Flask) -> None:
    doc = ObjectDownloadView.as_view("doc", model=Doc, file_field="path")
    app.add_url_rule("/doc/<int:id>", view_func=doc)
    app.add_url_rule("/raw/<id>", view_func=doc, endpoint="raw")
    app.add_url_rule(
        "/slug/<slug>",
        view_func=ObjectDownloadView.as_view(
            "slug", model=Doc, file_field="path", slug_field="slug"
        ),
    )
    app.add_url_rule(
        "/blob/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "blob", model=Doc, file_field="content", version_field="version"
        ),
    )
    app.add_url_rule(
        "/fancy/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "fancy", model=Fancy, file_field="path", **FANCY_FIELDS
        ),
    )
    app.add_url_rule(
        "/fancy-blob/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "fancy_blob", model=Fancy, file_field="content", **FANCY_FIELDS
        ),
    )


@dataclasses.dataclass
class Probe:
    """An app and what its engine's driver did."""

    app: Flask
    engine: t.Any
    #: Every statement the DBAPI connections ran (sqlite3 trace callback).
    statements: list[str]
    #: Every DBAPI connection the pool made (one per ``connect`` event).
    connections: list[sqlite3.Connection]

    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    def get(self, url: str) -> tuple[int, list[tuple[str, str]], bytes]:
        with self.app.test_client().get(url) as rv:
            return rv.status_code, list(rv.headers.items()), rv.data

    def add(self, row: t.Any) -> None:
        with self.app.app_context():
            db.session.add(row)
            db.session.commit()

    def database(self) -> str:
        return t.cast(str, self.engine.url.database)


@pytest.fixture(autouse=True)
def _restore_sqlalchemy_logging() -> cabc.Iterator[None]:
    # echo=True adds a stdout handler to SQLAlchemy's engine logger and some
    # tests raise its level: put both back for the rest of the run.
    loggers = [
        logging.getLogger(name)
        for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.engine.Engine")
    ]
    saved = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
    yield
    for logger, level, handlers in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers


@pytest.fixture
def make_app(
    app_factory: cabc.Callable[..., Flask], tmp_path: pathlib.Path
) -> cabc.Iterator[cabc.Callable[..., Probe]]:
    """Make an app with Flask-SQLAlchemy on a SQLite file and the routes.

    ``attach=True`` attaches ``aux.sqlite`` as schema ``aux`` on every
    connection (for ``schema_translate_map``).
    """
    made: list[Probe] = []

    def make(attach: bool = False, **config: t.Any) -> Probe:
        config.setdefault(
            "SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'direct.sqlite'}"
        )
        app = app_factory(**config)
        db.init_app(app)
        with app.app_context():
            engine = db.engine
        probe = Probe(app, engine, [], [])
        made.append(probe)

        # A pool event: it must not turn the direct path off.
        @sa.event.listens_for(engine.pool, "connect")
        def connect(dbapi_connection: t.Any, record: t.Any) -> None:
            if attach:
                aux = os.fspath(tmp_path / "aux.sqlite")
                dbapi_connection.execute("ATTACH DATABASE ? AS aux", (aux,))
            dbapi_connection.set_trace_callback(probe.statements.append)
            probe.connections.append(dbapi_connection)

        _routes(app)
        with app.app_context():
            db.create_all()
        return probe

    yield make
    for probe in made:
        probe.engine.dispose()


@contextlib.contextmanager
def _sqlite(path: str) -> cabc.Iterator[sqlite3.Connection]:
    """A raw connection of our own, behind the app's back."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def _noop_cursor_listener(engine: t.Any) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        seen.append(statement)

    return seen


# -- 1. the direct path is taken ----------------------------------------------


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/doc/1", SAMPLE_FILES["hello.txt"]),
        ("/slug/the-slug", SAMPLE_FILES["hello.txt"]),
        ("/blob/1", b"stored bytes"),
    ],
    ids=["id", "slug", "bytes"],
)
def test_plain_lookup_is_one_select_on_a_pooled_connection(
    make_app: cabc.Callable[..., Probe], paths: list[str], url: str, body: bytes
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, slug="the-slug", path="hello.txt", content=b"stored bytes"))
    checked_out: list[tuple[str, int]] = []
    pool = probe.engine.pool

    had_session: list[bool] = []

    @probe.app.after_request
    def after(response: t.Any) -> t.Any:
        checked_out.append(("after_request", pool.checkedout()))
        had_session.append(db.session.registry.has())
        return response

    def started(sender: t.Any, **kwargs: t.Any) -> None:
        checked_out.append(("body", pool.checkedout()))

    for _ in range(3):  # the first read compiles; the others reuse it
        probe.statements.clear()
        paths.clear()
        checked_out.clear()
        with download_started.connected_to(started, probe.app):
            status, _, data = probe.get(url)
        assert (status, data) == (200, body)
        assert paths == ["direct"]
        assert len(probe.statements) == 1, probe.statements
        assert probe.statements[0].lstrip().upper().startswith("SELECT")
        assert checked_out == [("after_request", 0), ("body", 0)]
        assert pool.checkedout() == 0
    # The Flask-SQLAlchemy session of the request was never even made.
    assert had_session == [False, False, False]


def test_each_request_gets_its_own_row(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app()
    for i, name in enumerate(["hello.txt", "page.html", "sub/nested.txt"], 1):
        probe.add(Doc(id=i, slug=f"s{i}", path=name))
    paths.clear()
    for _ in range(2):
        for i, name in enumerate(["hello.txt", "page.html", "sub/nested.txt"], 1):
            assert probe.get(f"/doc/{i}")[2] == SAMPLE_FILES[name]
            assert probe.get(f"/slug/s{i}")[2] == SAMPLE_FILES[name]
    assert set(paths) == {"direct"}


def test_application_transaction_is_seen_not_bypassed(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    """A session with a transaction of its own: its uncommitted row is seen."""
    probe = make_app()
    with probe.app.test_request_context("/doc/5"):
        db.session.add(Doc(id=5, path="hello.txt"))
        db.session.flush()
        paths.clear()
        response = probe.app.full_dispatch_request()
        response.direct_passthrough = False
        assert response.status_code == 200
        assert response.get_data() == SAMPLE_FILES["hello.txt"]
        response.close()
        db.session.rollback()
    assert "direct" not in paths


# -- 2. the same values as SQLAlchemy's own path -----------------------------


def _snapshot(probe: Probe, url: str) -> tuple[t.Any, ...]:
    """Status, headers, body, and the file wrapper's attributes."""
    files: list[dict[str, t.Any]] = []

    def started(sender: t.Any, file: t.Any, **kwargs: t.Any) -> None:
        files.append(
            {
                "type": type(file).__name__,
                "path": getattr(file, "path", None),
                **{
                    name: getattr(file, name)
                    for name in (
                        "name",
                        "size",
                        "modified_time",
                        "etag",
                        "mimetype",
                        "encoding",
                        "charset",
                        "crc32",
                    )
                },
            }
        )

    with download_started.connected_to(started, probe.app):
        status, headers, data = probe.get(url)
    return status, headers, data, files


def test_every_field_matches_the_connection_path(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app()
    fields = {
        "filename": "Relevé été.csv",
        "mimetype": "text/csv",
        "encoding": "gzip",
        "charset": "latin-1",
        "updated_at": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "size": 99,
        "version": 7,
        "crc32": 0x1234ABCD,
    }
    probe.add(Fancy(id=1, path="sub/nested.txt", content=b"blob bytes", **fields))
    probe.add(Fancy(id=2, path="sub/nested.txt", content=b"other"))
    # The keys as stored: the decorators really change them.
    with _sqlite(probe.database()) as raw:
        stored = raw.execute("SELECT id, path, updated_at FROM direct_fancy").fetchall()
    assert stored[0][:2] == (1001, "nested.txt")
    assert isinstance(stored[0][2], str)

    urls = ["/fancy/1", "/fancy/2", "/fancy-blob/1", "/fancy-blob/2", "/fancy/3"]
    paths.clear()
    direct = [_snapshot(probe, url) for url in urls]
    assert paths == ["direct"] * len(urls)

    status, headers, data, files = direct[0]
    assert (status, data) == (200, SAMPLE_FILES["sub/nested.txt"])
    header = dict(headers)
    assert header["Last-Modified"] == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert header["Content-Type"] == "text/csv; charset=latin-1"
    assert header["Content-Encoding"] == "gzip"
    assert "Relev%C3%A9%20%C3%A9t%C3%A9.csv" in header["Content-Disposition"]
    assert files[0]["crc32"] == 0x1234ABCD
    assert files[0]["path"].endswith(os.path.join("sub", "nested.txt"))
    assert direct[2][2] == b"blob bytes"
    assert direct[4][0] == 404

    # The same requests with the direct path off: a no-op cursor listener.
    paths.clear()
    seen = _noop_cursor_listener(probe.engine)
    through_sqlalchemy = [_snapshot(probe, url) for url in urls]
    assert paths == ["connection"] * len(urls)
    assert len(seen) == len(urls)
    assert through_sqlalchemy == direct


# -- 3. what turns the direct path off ----------------------------------------


def test_cursor_listener_sees_the_select(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, slug="s", path="hello.txt"))
    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct"]  # the direct read is made and kept...
    seen = _noop_cursor_listener(probe.engine)  # ...then a listener comes
    paths.clear()
    for url in ("/doc/1", "/slug/s", "/doc/2"):
        probe.get(url)
    assert paths == ["connection"] * 3
    assert len(seen) == 3
    assert all(s.lstrip().upper().startswith("SELECT") for s in seen)
    assert "direct_doc" in seen[0]


def test_dialect_listener_turns_the_direct_path_off(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    """A ``handle_error`` hook (a dialect event) sees the driver's errors."""
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    errors: list[BaseException] = []

    @sa.event.listens_for(probe.engine, "handle_error")
    def handle_error(context: t.Any) -> None:
        errors.append(context.original_exception)

    paths.clear()
    assert probe.get("/doc/1")[0] == 200
    assert paths == ["connection"]
    with _sqlite(probe.database()) as raw:
        raw.execute("ALTER TABLE direct_doc RENAME TO direct_doc_gone")
    with pytest.raises(sa.exc.OperationalError):
        probe.get("/doc/1")
    assert len(errors) == 1
    assert isinstance(errors[0], sqlite3.OperationalError)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(sa.engine.Engine, id="Engine"),
        pytest.param(
            sa.engine.Connection,
            id="Connection",
            # In older 2.0 releases a Connection takes its flag from the engine
            # when it is made: listeners on the class never run, direct or not.
            marks=pytest.mark.skipif(
                not hasattr(sa.engine.Connection, "_has_events"),
                reason="listeners on the Connection class need a newer SQLAlchemy",
            ),
        ),
    ],
)
def test_listener_on_a_class_turns_the_direct_path_off(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    monkeypatch: pytest.MonkeyPatch,
    target: type[t.Any],
) -> None:
    """ConnectionEvents may be listened for on the Engine or Connection
    class (a query timer for every engine, say)."""
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    # Listening on a class sets its _has_events for good: put it back.
    # (SQLAlchemy 2.0's Connection has no such attribute until then.)
    monkeypatch.setattr(
        target, "_has_events", getattr(target, "_has_events", False), raising=False
    )
    seen: list[str] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        seen.append(statement)

    sa.event.listen(target, "before_cursor_execute", record)
    try:
        paths.clear()
        assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    finally:
        sa.event.remove(target, "before_cursor_execute", record)
    assert len(seen) == 1
    assert paths == ["connection"]


@pytest.mark.parametrize(
    "config",
    [
        {"SQLALCHEMY_ECHO": True},
        {"SQLALCHEMY_ENGINE_OPTIONS": {"echo": True}},
        {"SQLALCHEMY_ENGINE_OPTIONS": {"echo": "debug"}},
    ],
    ids=["SQLALCHEMY_ECHO", "engine-echo", "engine-echo-debug"],
)
def test_echo_logs_the_select(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    caplog: pytest.LogCaptureFixture,
    config: dict[str, t.Any],
) -> None:
    probe = make_app(**config)
    probe.add(Doc(id=1, path="hello.txt"))
    paths.clear()
    caplog.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["connection"]
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy")]
    assert any("SELECT" in m and "direct_doc" in m for m in logged), logged


def test_engine_logger_at_info_logs_the_select(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    logger = logging.getLogger("sqlalchemy.engine")
    level = logger.level
    paths.clear()
    assert probe.get("/doc/1")[0] == 200
    assert paths == ["direct"]
    try:
        logger.setLevel(logging.INFO)
        caplog.clear()
        paths.clear()
        assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
        logged = [r.getMessage() for r in caplog.records]
    finally:
        logger.setLevel(level)
    assert paths == ["connection"]
    assert any("SELECT" in m and "direct_doc" in m for m in logged), logged
    # Logging off again: the direct path again.
    paths.clear()
    assert probe.get("/doc/1")[0] == 200
    assert paths == ["direct"]


def test_echo_turned_on_later_logs_the_select(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    paths.clear()
    assert probe.get("/doc/1")[0] == 200
    probe.engine.echo = True
    try:
        caplog.clear()
        assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    finally:
        probe.engine.echo = False
    assert paths == ["direct", "connection"]
    logged = [r.getMessage() for r in caplog.records]
    assert any("SELECT" in m and "direct_doc" in m for m in logged), logged


def _two_schemas(tmp_path: pathlib.Path) -> None:
    """direct_doc in main (row 1: hello.txt) and in aux (row 1: nested.txt)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'direct.sqlite'}")

    @sa.event.listens_for(engine.pool, "connect")
    def attach(dbapi_connection: t.Any, record: t.Any) -> None:
        aux = os.fspath(tmp_path / "aux.sqlite")
        dbapi_connection.execute("ATTACH DATABASE ? AS aux", (aux,))

    aux_engine = engine.execution_options(schema_translate_map={None: "aux"})
    for bind, path in ((engine, "hello.txt"), (aux_engine, "sub/nested.txt")):
        Base.metadata.create_all(bind)
        with bind.begin() as connection:
            connection.execute(sa.insert(Doc.__table__), {"id": 1, "path": path})
    engine.dispose()


def test_execution_options_of_the_session_bind_apply(
    make_app: cabc.Callable[..., Probe], paths: list[str], tmp_path: pathlib.Path
) -> None:
    _two_schemas(tmp_path)
    probe = make_app(attach=True)
    translated = probe.engine.execution_options(schema_translate_map={None: "aux"})
    probe.app.add_url_rule(
        "/aux/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "aux", model=Doc, file_field="path", session=orm.sessionmaker(translated)
        ),
    )
    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert probe.get("/aux/1")[2] == SAMPLE_FILES["sub/nested.txt"]
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct", "connection", "direct"]
    assert probe.engine.pool.checkedout() == 0


def test_engine_execution_options_apply(
    make_app: cabc.Callable[..., Probe], paths: list[str], tmp_path: pathlib.Path
) -> None:
    _two_schemas(tmp_path)
    options = {"execution_options": {"schema_translate_map": {None: "aux"}}}
    probe = make_app(attach=True, SQLALCHEMY_ENGINE_OPTIONS=options)
    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["sub/nested.txt"]
    assert paths == ["connection"]


@pytest.mark.skipif(
    not hasattr(orm.Session, "execution_options"),
    reason="Session(execution_options=...) is new in SQLAlchemy 2.1",
)
def test_execution_options_of_the_session_apply(
    make_app: cabc.Callable[..., Probe], paths: list[str], tmp_path: pathlib.Path
) -> None:
    _two_schemas(tmp_path)
    probe = make_app(attach=True)
    factory = orm.sessionmaker(
        probe.engine, execution_options={"schema_translate_map": {None: "aux"}}
    )
    with factory() as session:  # what the session itself reads
        assert session.get(Doc, 1).path == "sub/nested.txt"
    probe.app.add_url_rule(
        "/aux/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "aux", model=Doc, file_field="path", session=factory
        ),
    )
    assert probe.get("/aux/1")[2] == SAMPLE_FILES["sub/nested.txt"]


def test_recorded_queries_include_the_select(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    from flask_sqlalchemy.record_queries import get_recorded_queries

    probe = make_app(SQLALCHEMY_RECORD_QUERIES=True)
    probe.add(Doc(id=1, path="hello.txt"))
    recorded: list[str] = []

    @probe.app.after_request
    def after(response: t.Any) -> t.Any:
        recorded.extend(q.statement for q in get_recorded_queries())
        return response

    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["connection"]
    assert len(recorded) == 1
    assert "direct_doc" in recorded[0]


# -- 4. driver errors are SQLAlchemy's ---------------------------------------


@pytest.mark.parametrize(
    ("break_it", "repair"),
    [
        ("DROP TABLE direct_doc", None),
        (
            "ALTER TABLE direct_doc RENAME TO direct_doc_old",
            "ALTER TABLE direct_doc_old RENAME TO direct_doc",
        ),
    ],
    ids=["dropped", "renamed"],
)
def test_driver_error_is_raised_as_sqlalchemys(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    break_it: str,
    repair: str | None,
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    assert probe.get("/doc/1")[0] == 200  # the direct read is made and kept
    with _sqlite(probe.database()) as raw:
        raw.execute(break_it)
    paths.clear()
    with pytest.raises(sa.exc.OperationalError) as info:
        probe.get("/doc/1")
    assert isinstance(info.value.orig, sqlite3.OperationalError)
    assert "direct_doc" in str(info.value)
    assert not info.value.connection_invalidated
    assert paths == ["direct-failed", "connection"]
    assert probe.engine.pool.checkedout() == 0
    if repair is None:
        return
    with _sqlite(probe.database()) as raw:
        raw.execute(repair)
    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct"]


def test_driver_error_is_a_500_without_propagation(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app(TESTING=False)
    probe.add(Doc(id=1, path="hello.txt"))
    with _sqlite(probe.database()) as raw:
        raw.execute("DROP TABLE direct_doc")
    errors: list[BaseException] = []
    probe.app.register_error_handler(
        sa.exc.OperationalError, lambda e: (errors.append(e), ("db", 503))[1]
    )
    paths.clear()
    status, _, data = probe.get("/doc/1")
    assert (status, data) == (503, b"db")
    assert len(errors) == 1
    assert paths == ["direct-failed", "connection"]
    assert probe.engine.pool.checkedout() == 0


def test_failed_connect_is_raised_as_sqlalchemys(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    assert probe.get("/doc/1")[0] == 200
    # The database becomes unreachable: a directory where the file was.
    probe.engine.dispose()
    database = pathlib.Path(probe.database())
    database.unlink()
    database.mkdir()
    paths.clear()
    with pytest.raises(sa.exc.OperationalError) as info:
        probe.get("/doc/1")
    assert isinstance(info.value.orig, sqlite3.OperationalError)
    assert probe.engine.pool.checkedout() == 0


class ShortWaitPool(sa.pool.QueuePool):
    """A QueuePool waiting 1 s for a connection (engine_from_config, which
    Flask-SQLAlchemy uses, makes pool_timeout an int). Long enough that one
    wait plus a request on a loaded machine stays under two waits."""

    wait = 1.0

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs["timeout"] = self.wait
        super().__init__(*args, **kwargs)


@pytest.mark.parametrize(
    "direct",
    [
        pytest.param(True, id="direct"),
        pytest.param(False, id="connection"),
    ],
)
@pytest.mark.parametrize("trouble", ["exhausted", "unreachable"])
def test_connection_is_asked_for_once(
    make_app: cabc.Callable[..., Probe], paths: list[str], direct: bool, trouble: str
) -> None:
    """No connection to be had (the pool is exhausted for pool_timeout, or
    the database cannot be reached): SQLAlchemy's error after one attempt,
    not a second wait or connect for the statement run again."""
    probe = make_app(
        SQLALCHEMY_ENGINE_OPTIONS={
            "poolclass": ShortWaitPool,
            "pool_size": 1,
            "max_overflow": 0,
        }
    )
    probe.add(Doc(id=1, path="hello.txt"))
    if not direct:
        _noop_cursor_listener(probe.engine)
    assert probe.get("/doc/1")[0] == 200
    pool = probe.engine.pool
    expected: type[Exception] = sa.exc.TimeoutError
    with contextlib.ExitStack() as stack:
        if trouble == "exhausted":
            stack.enter_context(probe.engine.connect())  # the only one, held
        else:
            expected = sa.exc.OperationalError
            probe.engine.dispose()
            pool = probe.engine.pool
            database = pathlib.Path(probe.database())
            database.unlink()
            database.mkdir()  # sqlite3: "unable to open database file"
        checkouts: list[float] = []
        connect = pool.connect

        def counting_connect() -> t.Any:
            checkouts.append(time.monotonic())
            return connect()

        pool.connect = counting_connect
        paths.clear()
        try:
            start = time.monotonic()
            with pytest.raises(expected):
                probe.get("/doc/1")
            elapsed = time.monotonic() - start
        finally:
            del pool.connect
    assert "connection" not in paths  # no Connection was had
    assert len(checkouts) == 1
    assert elapsed < 2 * ShortWaitPool.wait
    assert pool.checkedout() == 0


def test_bad_stored_value_fails_like_sqlalchemys(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    """A result processor's error (an unparsable DATETIME string)."""
    probe = make_app()
    probe.add(Fancy(id=1, path="sub/nested.txt"))
    with _sqlite(probe.database()) as raw:
        raw.execute("UPDATE direct_fancy SET updated_at = 'not a date'")
    raised = []
    for name in ("direct", "connection"):
        if name == "connection":
            _noop_cursor_listener(probe.engine)
        paths.clear()
        with pytest.raises(Exception) as info:
            probe.get("/fancy/1")
        assert paths[0].startswith(name), paths
        raised.append((type(info.value), str(info.value)))
        assert probe.engine.pool.checkedout() == 0
    assert raised[0] == raised[1]
    assert raised[0][0] is ValueError


def test_a_url_value_a_type_refuses_is_a_404_on_both_paths(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    """ShiftedId refuses negative ids in process_bind_param. Every value
    bound into the view's own statement comes from the URL, so a refused
    one answers 404 (SQLAlchemy raises a StatementError), on the direct
    path and through Connection alike."""
    probe = make_app()
    probe.add(Fancy(id=1, path="sub/nested.txt"))
    probe.app.add_url_rule(
        "/fancy-signed/<int(signed=True):id>",
        view_func=ObjectDownloadView.as_view(
            "fancy_signed", model=Fancy, file_field="path"
        ),
    )
    for name in ("direct", "connection"):
        if name == "connection":
            _noop_cursor_listener(probe.engine)
        paths.clear()
        assert probe.get("/fancy-signed/-5")[0] == 404
        assert paths[0].startswith(name), paths
        assert probe.engine.pool.checkedout() == 0
        assert probe.get("/fancy-signed/1")[0] == 200


def test_a_value_a_custom_query_binds_is_not_taken_for_the_urls(
    make_app: cabc.Callable[..., Probe],
) -> None:
    """A get_query() override binds values of its own: a type refusing one
    of those is the application's error, not the client's."""
    probe = make_app()
    probe.add(Fancy(id=1, path="hello.txt"))

    class Refusing(ObjectDownloadView):
        model = Fancy
        file_field = "path"

        def get_query(self) -> t.Any:
            return super().get_query().where(Fancy.id != -1)

    probe.app.add_url_rule("/refusing/<int:id>", view_func=Refusing.as_view("refusing"))
    with pytest.raises(sa.exc.StatementError) as info:
        probe.get("/refusing/1")
    assert isinstance(info.value.orig, ValueError)
    assert probe.engine.pool.checkedout() == 0


class Interrupt(BaseException):
    """Like KeyboardInterrupt or gevent's Timeout, raised mid-query."""


class InterruptibleCursor(sqlite3.Cursor):
    interrupt = False

    def execute(self, *args: t.Any) -> t.Any:
        if InterruptibleCursor.interrupt:
            InterruptibleCursor.interrupt = False
            raise Interrupt
        return super().execute(*args)


class InterruptibleConnection(sqlite3.Connection):
    def cursor(self, factory: t.Any = InterruptibleCursor) -> t.Any:
        return super().cursor(factory)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "connection"])
def test_connection_interrupted_mid_query_is_not_reused(
    make_app: cabc.Callable[..., Probe], paths: list[str], direct: bool
) -> None:
    """SQLAlchemy invalidates a connection an exit exception (not an
    Exception) interrupted: its state is unknown."""
    options = {"connect_args": {"factory": InterruptibleConnection}}
    probe = make_app(SQLALCHEMY_ENGINE_OPTIONS=options)
    probe.add(Doc(id=1, path="hello.txt"))
    if not direct:
        _noop_cursor_listener(probe.engine)
    assert probe.get("/doc/1")[0] == 200
    made = len(probe.connections)
    InterruptibleCursor.interrupt = True
    paths.clear()
    with pytest.raises(Interrupt):
        probe.get("/doc/1")
    assert paths[0].startswith("direct" if direct else "connection"), paths
    assert probe.engine.pool.checkedout() == 0
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert len(probe.connections) == made + 1  # a new one: not reused


# -- 5. disconnects ------------------------------------------------------------


@pytest.mark.parametrize("reset", ["rollback", None], ids=["reset", "no-reset"])
def test_dead_pooled_connection_is_invalidated_and_replaced(
    make_app: cabc.Callable[..., Probe], paths: list[str], reset: str | None
) -> None:
    # Without the pool's reset (a rollback, which fails on a closed
    # connection and so invalidates it too), only the direct read's own
    # invalidation keeps SQLAlchemy's run from the dead connection.
    probe = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_reset_on_return": reset})
    probe.add(Doc(id=1, path="hello.txt"))
    assert probe.get("/doc/1")[0] == 200
    assert probe.engine.pool.checkedin() == 1
    made = len(probe.connections)
    invalidated: list[BaseException | None] = []
    sa.event.listen(
        probe.engine.pool,
        "invalidate",
        lambda dbapi_connection, record, exception: invalidated.append(exception),
    )
    for connection in probe.connections:
        connection.close()  # the server went away
    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct-failed", "connection"]
    assert len(probe.connections) == made + 1  # one new DBAPI connection
    assert len(invalidated) == 1
    assert isinstance(invalidated[0], sqlite3.ProgrammingError)
    # The new connection stays in the pool and serves the next requests.
    paths.clear()
    for _ in range(2):
        assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct", "direct"]
    assert len(probe.connections) == made + 1
    assert probe.engine.pool.checkedout() == 0


def test_error_the_dialect_calls_a_disconnect_invalidates_the_connection(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    assert probe.get("/doc/1")[0] == 200
    made = len(probe.connections)
    asked: list[BaseException] = []
    dead = [True]

    def is_disconnect(e: BaseException, connection: t.Any, cursor: t.Any) -> bool:
        asked.append(e)
        return dead[0]

    monkeypatch.setattr(probe.engine.dialect, "is_disconnect", is_disconnect)
    with _sqlite(probe.database()) as raw:
        raw.execute("ALTER TABLE direct_doc RENAME TO direct_doc_old")
    paths.clear()
    with pytest.raises(sa.exc.OperationalError) as info:
        probe.get("/doc/1")
    assert info.value.connection_invalidated  # SQLAlchemy's own verdict
    assert paths == ["direct-failed", "connection"]
    # The direct read invalidated its connection: SQLAlchemy's run had a
    # new one (which it invalidated in turn).
    assert len(probe.connections) == made + 1
    assert len(asked) == 2  # the direct read's error, then SQLAlchemy's
    assert probe.engine.pool.checkedout() == 0

    dead[0] = False
    with _sqlite(probe.database()) as raw:
        raw.execute("ALTER TABLE direct_doc_old RENAME TO direct_doc")
    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct"]
    assert len(probe.connections) == made + 2


def test_pool_pre_ping_replaces_a_dead_connection_before_the_read(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True})
    probe.add(Doc(id=1, path="hello.txt"))
    assert probe.get("/doc/1")[0] == 200
    made = len(probe.connections)
    for connection in probe.connections:
        connection.close()
    paths.clear()
    assert probe.get("/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct"]  # the pool's ping caught it, not the read
    assert len(probe.connections) == made + 1


# -- 6. missing rows, impossible ids, threads ---------------------------------


def test_missing_rows_and_impossible_ids_are_404(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, slug="s", path="hello.txt"))
    probe.add(Doc(id=2, path=None))
    probe.add(Doc(id=2**63 - 1, path="hello.txt"))
    for url, status in [
        ("/doc/999", 404),
        ("/slug/nope", 404),
        ("/doc/2", 404),  # NULL file
        ("/blob/1", 404),  # NULL content
        (f"/doc/{2**63 - 1}", 200),
        (f"/raw/{-(2**63)}", 404),
    ]:
        probe.statements.clear()
        paths.clear()
        assert probe.get(url)[0] == status, url
        assert paths == ["direct"], url
        assert len(probe.selects()) == 1, url
    for url in (f"/doc/{2**63}", f"/doc/{2**64 + 5}", f"/raw/{-(2**63) - 1}"):
        probe.statements.clear()
        paths.clear()
        assert probe.get(url)[0] == 404, url
        assert paths == [], url  # no lookup at all
        assert probe.selects() == [], url
    assert probe.engine.pool.checkedout() == 0


def test_concurrent_requests_share_a_small_pool(
    make_app: cabc.Callable[..., Probe], paths: list[str]
) -> None:
    probe = make_app(
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_size": 2,
            "max_overflow": 0,
            "pool_timeout": 10,
        }
    )
    names = sorted(name for name in SAMPLE_FILES if '"' not in name)
    with probe.app.app_context():
        for i, name in enumerate(names, 1):
            db.session.add(Doc(id=i, slug=f"s{i}", path=name))
            db.session.add(Doc(id=100 + i, content=f"row {i} ".encode() * i))
        db.session.commit()
    paths.clear()
    barrier = threading.Barrier(8)
    failures: list[str] = []

    def worker(n: int) -> None:
        client = probe.app.test_client()
        barrier.wait()
        try:
            for k in range(30):
                i = (n + k) % len(names) + 1
                url, expected = [
                    (f"/doc/{i}", SAMPLE_FILES[names[i - 1]]),
                    (f"/slug/s{i}", SAMPLE_FILES[names[i - 1]]),
                    (f"/blob/{100 + i}", f"row {i} ".encode() * i),
                ][k % 3]
                with client.get(url) as rv:
                    if rv.status_code != 200 or rv.data != expected:
                        failures.append(f"{url}: {rv.status_code} {rv.data[:40]!r}")
        except Exception as e:  # reported below
            failures.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(paths) == 8 * 30
    assert set(paths) == {"direct"}
    assert probe.engine.pool.checkedout() == 0


@pytest.mark.parametrize(
    "override",
    ["pre_exec", "create_cursor", "create_default_cursor", "get_result_processor"],
)
def test_a_dialect_whose_execution_context_matters_is_not_bypassed(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    monkeypatch: pytest.MonkeyPatch,
    override: str,
) -> None:
    """Drivers whose execution context makes or prepares the cursor itself
    (Oracle, pyodbc, mysqlconnector, pg8000) keep SQLAlchemy's path."""
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    base = probe.engine.dialect.execution_ctx_cls
    calls: list[str] = []
    original = getattr(base, override)

    def spy(self: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        calls.append(override)
        return original(self, *args, **kwargs)

    context = type("Context", (base,), {override: spy})
    monkeypatch.setattr(probe.engine.dialect, "execution_ctx_cls", context)
    paths.clear()
    status, _, body = probe.get("/doc/1")
    assert status == 200
    assert body == b"Hello, world!\n"
    assert paths == ["connection"]


def test_a_driver_the_direct_read_was_not_tested_with_keeps_sqlalchemys_path(
    make_app: cabc.Callable[..., Probe],
    paths: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = make_app()
    probe.add(Doc(id=1, path="hello.txt"))
    monkeypatch.setattr(probe.engine.dialect, "driver", "pysqlcipher")
    paths.clear()
    status, _, body = probe.get("/doc/1")
    assert (status, body) == (200, b"Hello, world!\n")
    assert paths == ["connection"]
