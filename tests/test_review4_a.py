"""Review of the session's fixes to views, responses, files and objects.

- a ``get_query`` selecting an alias of a *subclass* of the model
  (``aliased(Invoice)`` for a ``Document`` model, joined inheritance) keeps
  its narrowing: the key is compared on the alias, not on the model's own
  table added as a second, unrelated ``FROM`` (which served any row);
- a file-like object whose ``seek`` returns ``None`` (it moved all the same)
  or whose ``tell`` gives no position is sent whole, never from the end it
  was moved to while its size was measured (an empty 200).
"""

from __future__ import annotations

import io
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_download import ObjectDownloadView
from flask_download import send_download
from flask_download import VirtualFile

# -- get_query selecting an alias of a subclass of the model ------------------


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Document(Base):
    __tablename__ = "review4a_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    owner: Mapped[str] = mapped_column(sa.String(20))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    archived: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "document"}


class Invoice(Document):
    __tablename__ = "review4a_invoice"

    id: Mapped[int] = mapped_column(
        sa.ForeignKey("review4a_document.id"), primary_key=True
    )
    total: Mapped[int] = mapped_column(default=0)

    __mapper_args__ = {"polymorphic_identity": "invoice"}


class AliceInvoices(ObjectDownloadView):
    """Alice's invoices, selected through an alias of the subclass."""

    model = Document
    file_field = "content"

    def get_query(self) -> t.Any:
        invoice = orm.aliased(Invoice)
        return sa.select(invoice).where(invoice.owner == "alice")


class AliceArchivedInvoices(AliceInvoices):
    """The same narrowing, reading a deferred column (undefer options)."""

    file_field = "archived"


@pytest.fixture
def invoices_app() -> t.Iterator[Flask]:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db.init_app(app)
    app.add_url_rule("/invoice/<int:id>", view_func=AliceInvoices.as_view("invoice"))
    app.add_url_rule(
        "/archived/<int:id>", view_func=AliceArchivedInvoices.as_view("archived")
    )
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [
                Invoice(id=1, owner="alice", content=b"alice 1", archived=b"old 1"),
                Invoice(id=2, owner="bob", content=b"bob 2", archived=b"old 2"),
                Document(id=3, owner="bob", content=b"bob 3", archived=b"old 3"),
                Invoice(id=4, owner="alice", content=b"alice 4", archived=b"old 4"),
            ]
        )
        db.session.commit()
    yield app
    with app.app_context():
        db.drop_all()


@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("invoice", {1: b"alice 1", 4: b"alice 4"}),
        ("archived", {1: b"old 1", 4: b"old 4"}),
    ],
    ids=["columns", "deferred-column"],
)
def test_get_query_alias_of_a_subclass_keeps_its_narrowing(
    invoices_app: Flask, prefix: str, expected: dict[int, bytes]
) -> None:
    """Security: the alias check took only aliases of the model itself, so
    ``aliased(Invoice)`` for a ``Document`` model was narrowed on the
    model's table, a second ``FROM``: Bob's files were served to a view
    narrowed to Alice's."""
    client = invoices_app.test_client()
    for pk, content in expected.items():
        response = client.get(f"/{prefix}/{pk}")
        assert response.status_code == 200
        assert response.data == content
    # Bob's invoice and Bob's plain document are outside get_query: 404,
    # as a missing row (they were served: "bob 2", "bob 3").
    for pk in (2, 3, 99):
        response = client.get(f"/{prefix}/{pk}")
        assert response.status_code == 404, (pk, response.data)


# -- file-likes whose seek() returns None --------------------------------------


class _NoneSeek(io.RawIOBase):
    """A readable stream whose ``seek`` moves but returns ``None`` (some
    hand-written wrappers do), optionally with a ``tell`` that gives none."""

    def __init__(self, data: bytes, *, tells: bool = True) -> None:
        self._buffer = io.BytesIO(data)
        self._tells = tells

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> t.Any:
        return self._buffer.tell() if self._tells else None

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> t.Any:  # type: ignore[override]
        self._buffer.seek(offset, whence)
        return None

    def readinto(self, buffer: t.Any) -> int:
        data = self._buffer.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@pytest.fixture
def stream_app() -> Flask:
    app = Flask(__name__)

    @app.route("/stream/<int:tells>")
    def stream(tells: int) -> t.Any:
        return send_download(
            _NoneSeek(b"hello world", tells=bool(tells)), basename="hello.bin"
        )

    return app


def test_stream_whose_seek_returns_none_is_sent_whole(stream_app: Flask) -> None:
    """Its size was measured by seeking to the end; the ``TypeError`` of
    ``None - start`` made it "not seekable", streamed from that end: an
    empty 200 (a 500 before the session's fix)."""
    client = stream_app.test_client()
    response = client.get("/stream/1")
    assert response.status_code == 200
    assert response.data == b"hello world"
    assert response.headers["Content-Length"] == "11"
    # Its size is known, and a range is read from where it starts.
    response = client.get("/stream/1", headers={"Range": "bytes=6-"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == "bytes 6-10/11"
    assert response.data == b"world"


def test_stream_that_tells_no_position_is_streamed_whole(stream_app: Flask) -> None:
    """A ``tell`` that gives ``None`` is no position to come back to: the
    stream is not moved, and is streamed as it comes."""
    response = stream_app.test_client().get("/stream/0")
    assert response.status_code == 200
    assert response.data == b"hello world"
    assert "Accept-Ranges" not in response.headers


def test_virtual_file_of_a_none_seek_stream_knows_its_size() -> None:
    stream = _NoneSeek(b"0123456789")
    stream.read(3)  # the content starts where the stream is
    file = VirtualFile(stream)
    assert file.seekable
    assert file.size == 7
    assert b"".join(file.chunks(4)) == b"3456789"


# -- a body the server drops unclosed ------------------------------------------


class _Tracked(VirtualFile):
    closes = 0

    def close(self) -> None:
        type(self).closes += 1
        super().close()


def _body_app() -> Flask:
    from flask_download import DownloadView

    class View(DownloadView):
        def get_file(self) -> VirtualFile:
            # A non-seekable source: the body is a Python iterator (the
            # seekable ones go to wsgi.file_wrapper when offered).
            return _Tracked(iter([b"a" * 10, b"b" * 10, b"c" * 10]), name="x.bin")

    app = Flask(__name__)
    app.add_url_rule("/x", view_func=View.as_view("x"))
    return app


def _environ() -> dict[str, t.Any]:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(path="/x").get_environ()


def _start_response(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
    return lambda data: None


@pytest.mark.parametrize(
    "closed_by_server", [False, True], ids=["dropped", "closed-then-dropped"]
)
def test_body_dropped_mid_way_sends_one_finished_and_closes_the_file(
    closed_by_server: bool,
) -> None:
    """The body that closes itself when dropped (Werkzeug's server skips
    ``close()`` on a reset) never closes a body still in use, and sends
    ``download_finished`` once, whether the server closed it or not."""
    import gc

    from flask_download import download_finished

    app = _body_app()
    finished: list[tuple[int, bool]] = []

    def on_finished(sender: t.Any, **extra: t.Any) -> None:
        finished.append((extra["bytes_sent"], extra["completed"]))

    _Tracked.closes = 0
    with download_finished.connected_to(on_finished, app):
        body = app(_environ(), _start_response)
        iterator = iter(body)
        assert next(iterator) == b"a" * 10
        gc.collect()
        # Still in use (the server holds it): nothing closed, nothing sent.
        assert (_Tracked.closes, finished) == (0, [])
        assert next(iterator) == b"b" * 10
        if closed_by_server:
            body.close()  # type: ignore[attr-defined]
        del body, iterator
        gc.collect()
    assert finished == [(20, False)]
    assert _Tracked.closes >= 1


def test_body_sent_whole_and_closed_sends_one_completed_finished() -> None:
    """Closed by the server, then dropped: no second signal from ``__del__``."""
    import gc

    from flask_download import download_finished

    app = _body_app()
    finished: list[tuple[int, bool]] = []

    def on_finished(sender: t.Any, **extra: t.Any) -> None:
        finished.append((extra["bytes_sent"], extra["completed"]))

    with download_finished.connected_to(on_finished, app):
        body = app(_environ(), _start_response)
        assert b"".join(body) == b"a" * 10 + b"b" * 10 + b"c" * 10
        body.close()  # type: ignore[attr-defined]
        del body
        gc.collect()
    assert finished == [(30, True)]
