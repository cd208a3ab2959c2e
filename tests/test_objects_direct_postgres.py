"""ObjectDownloadView's direct read on a real PostgreSQL server.

The SQLite tests (``test_objects_direct.py``) cover the rules; these run
the same lookups through psycopg2 and psycopg 3, whose dialects render
casts into the SQL and use named parameters, against the server that
``.ci/run`` starts. ``FLASK_DOWNLOAD_TEST_POSTGRES`` holds its URL (any
driver; each test picks its own), else the module is skipped.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import os
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from test_objects_direct import _routes
from test_objects_direct import db
from test_objects_direct import Doc
from test_objects_direct import Fancy

from flask_download.pytest_plugin import SAMPLE_FILES

URL = os.environ.get("FLASK_DOWNLOAD_TEST_POSTGRES")

pytestmark = pytest.mark.skipif(
    not URL, reason="FLASK_DOWNLOAD_TEST_POSTGRES is not set (.ci/run sets it)"
)

DRIVERS = ["psycopg2", "psycopg"]


@pytest.fixture(params=DRIVERS)
def app(
    request: pytest.FixtureRequest, app_factory: cabc.Callable[..., Flask]
) -> cabc.Iterator[Flask]:
    pytest.importorskip(request.param)
    url = sa.make_url(URL).set(drivername=f"postgresql+{request.param}")
    app = app_factory(SQLALCHEMY_DATABASE_URI=url.render_as_string(False))
    db.init_app(app)
    _routes(app)
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def _add(app: Flask, *rows: t.Any) -> None:
    with app.app_context():
        db.session.add_all(rows)
        db.session.commit()


def _get(app: Flask, url: str) -> tuple[int, list[tuple[str, str]], bytes]:
    with app.test_client().get(url) as response:
        return response.status_code, list(response.headers.items()), response.data


def _engine(app: Flask) -> t.Any:
    with app.app_context():
        return db.engine


def _checked_out(app: Flask) -> int:
    return t.cast(int, _engine(app).pool.checkedout())


def test_every_field_matches_the_connection_path(app: Flask, paths: list[str]) -> None:
    _add(
        app,
        Doc(id=1, slug="hello", path="hello.txt"),
        Doc(id=2, content=b"\x00bytea\xff", version=3),
        Fancy(
            id=1,
            path="sub/nested.txt",
            content=b"blob bytes",
            filename="Relevé été.csv",
            mimetype="text/csv",
            encoding="gzip",
            charset="latin-1",
            updated_at=datetime.datetime(2024, 1, 2, 3, 4, 5),
            size=99,
            version=7,
            crc32=0x1234ABCD,
        ),
        Fancy(id=2, path="sub/nested.txt", content=b"other"),
    )
    urls = [
        "/doc/1",
        "/slug/hello",
        "/blob/2",
        "/fancy/1",
        "/fancy/2",
        "/fancy-blob/1",
        "/doc/9",
        "/slug/none",
    ]
    paths.clear()
    direct = [_get(app, url) for url in urls]
    assert paths == ["direct"] * len(urls)
    assert direct[0][0] == 200
    assert direct[0][2] == SAMPLE_FILES["hello.txt"]
    assert direct[1][2] == SAMPLE_FILES["hello.txt"]
    assert direct[2][2] == b"\x00bytea\xff"  # bytea comes back as bytes
    status, headers, body = direct[3]
    assert (status, body) == (200, SAMPLE_FILES["sub/nested.txt"])
    assert dict(headers)["Last-Modified"] == "Tue, 02 Jan 2024 03:04:05 GMT"
    assert direct[5][2] == b"blob bytes"
    assert [d[0] for d in direct[6:]] == [404, 404]
    assert _checked_out(app) == 0

    # The same requests through SQLAlchemy's Connection (a cursor listener).
    seen: list[str] = []
    sa.event.listen(
        _engine(app),
        "before_cursor_execute",
        lambda conn, cursor, statement, *args: seen.append(statement),
    )
    paths.clear()
    assert [_get(app, url) for url in urls] == direct
    assert paths == ["connection"] * len(urls)
    assert len(seen) == len(urls)


def test_a_driver_error_is_sqlalchemys(app: Flask, paths: list[str]) -> None:
    _add(app, Doc(id=1, path="hello.txt"))
    with _engine(app).begin() as connection:
        connection.exec_driver_sql("ALTER TABLE direct_doc RENAME TO direct_doc_gone")
    try:
        paths.clear()
        with pytest.raises(sa.exc.ProgrammingError):
            _get(app, "/doc/1")
        assert paths == ["direct-failed", "connection"]
        assert _checked_out(app) == 0
    finally:
        with _engine(app).begin() as connection:
            connection.exec_driver_sql(
                "ALTER TABLE direct_doc_gone RENAME TO direct_doc"
            )
    paths.clear()
    assert _get(app, "/doc/1")[2] == SAMPLE_FILES["hello.txt"]
    assert paths == ["direct"]


def test_a_server_side_disconnect_invalidates_the_pool(
    app: Flask, paths: list[str]
) -> None:
    """The server ends the pooled connection (a restart, a failover): the
    direct read sees the disconnect, the pool drops its connections, and
    the lookup runs again on a new one."""
    _add(app, Doc(id=1, path="hello.txt"))
    engine = _engine(app)
    assert _get(app, "/doc/1")[0] == 200
    made: list[t.Any] = []
    sa.event.listen(engine.pool, "connect", lambda dbapi, record: made.append(dbapi))
    killer = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    try:
        with killer.begin() as connection:
            ended = connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name = ''"
            ).all()
    finally:
        killer.dispose()
    assert ended, "no pooled connection to end"
    paths.clear()
    status, _, body = _get(app, "/doc/1")
    assert (status, body) == (200, SAMPLE_FILES["hello.txt"])
    assert paths == ["direct-failed", "connection"]
    assert len(made) == 1  # one new connection, after the dead one
    assert _checked_out(app) == 0
    paths.clear()
    assert _get(app, "/doc/1")[0] == 200
    assert paths == ["direct"]
