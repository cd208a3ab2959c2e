"""Contenders: Flask-Download's views, one app per kind.

``benchmarks/run.py`` starts ``gunicorn 'flask_download_app:create_app("path")'``
(or ``"virtual"``, ``"object"``, ``"send_download"``, ``"accel"``); the data
directory comes from
``BENCH_DATA_DIR``. Optional parts (``ObjectDownloadView``, offload) are
imported inside functions, so :func:`unavailable` can tell the runner why a
contender is skipped instead of failing.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask

from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView

#: Content of the ``VirtualDownloadView`` contender: 4 KiB of bytes, like the
#: ``small.bin`` file the other contenders serve.
VIRTUAL_CONTENT = bytes(range(256)) * 16

#: Rows of the ``ObjectDownloadView`` contender: id -> file relative to the root.
OBJECT_ROWS = {1: "big.bin", 2: "small.bin"}

#: The nginx ``internal`` location the offload contender redirects to.
ACCEL_LOCATION = "/_protected/"


def unavailable(kind: str) -> str | None:
    """Why the contender ``kind`` cannot run here, or ``None`` if it can."""
    if kind == "object":
        try:
            from flask_sqlalchemy import SQLAlchemy  # noqa: F401

            from flask_download import ObjectDownloadView  # noqa: F401
        except ImportError as e:
            return f"ObjectDownloadView is not importable ({e})"
    if kind == "accel":
        try:
            import flask_download.accel  # noqa: F401
        except ImportError as e:
            return f"offload (flask_download/accel.py) is not importable ({e})"
    return None


def _database_uri(data_dir: str) -> str:
    return "sqlite:///" + os.path.join(data_dir, "objects.sqlite")


def _object_model(app: Flask) -> tuple[t.Any, t.Any]:
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import Column
    from sqlalchemy import Integer
    from sqlalchemy import String
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class Document(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "document"
        # Column() rather than Mapped[] annotations: those are strings here
        # (``from __future__ import annotations``) in a function's scope.
        id = Column(Integer, primary_key=True)
        slug = Column(String(255), unique=True, nullable=False)
        file = Column(String(255), nullable=False)

    db.init_app(app)
    return db, Document


def init_database(data_dir: str) -> None:
    """Create the SQLite rows of the ``ObjectDownloadView`` contender.

    Called once by the runner before gunicorn starts, so that the workers
    do not race to create the table.
    """
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = _database_uri(data_dir)
    db, document = _object_model(app)
    with app.app_context():
        db.drop_all()
        db.create_all()
        for pk, name in OBJECT_ROWS.items():
            db.session.add(document(id=pk, slug=name, file=name))
        db.session.commit()
        db.engine.dispose()


def create_app(kind: str = "path") -> Flask:
    """A Flask app with one Flask-Download contender.

    :param kind: ``"path"`` (``PathDownloadView`` at ``/files/<path:path>``),
        ``"virtual"`` (``VirtualDownloadView`` of 4 KiB bytes at
        ``/virtual``), ``"object"`` (``ObjectDownloadView`` at
        ``/object/<int:id>`` and ``/object/by-slug/<slug>``),
        ``"send_download"`` (a function view calling
        :func:`~flask_download.send_download` at ``/send/<path:name>``) or
        ``"accel"`` (``PathDownloadView`` answering with ``X-Accel-Redirect``
        for the nginx in front of it).
    """
    data_dir = os.environ["BENCH_DATA_DIR"]
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = data_dir
    if kind == "accel":
        app.config["DOWNLOAD_ACCEL"] = "nginx"
        app.config["DOWNLOAD_ACCEL_RULES"] = [
            {"source_dir": data_dir, "destination_url": ACCEL_LOCATION}
        ]
    FlaskDownload(app)
    if kind in ("path", "accel"):
        app.add_url_rule(
            "/files/<path:path>", view_func=PathDownloadView.as_view("files")
        )
    elif kind == "virtual":
        app.add_url_rule(
            "/virtual",
            view_func=VirtualDownloadView.as_view(
                "virtual", content=VIRTUAL_CONTENT, basename="small.bin"
            ),
        )
    elif kind == "object":
        from flask_download import ObjectDownloadView

        app.config["SQLALCHEMY_DATABASE_URI"] = _database_uri(data_dir)
        _db, document = _object_model(app)
        view = ObjectDownloadView.as_view("object", model=document)
        app.add_url_rule("/object/<int:id>", view_func=view)
        app.add_url_rule("/object/by-slug/<slug>", view_func=view)
    elif kind == "send_download":
        from flask_download import send_download

        @app.get("/send/<path:name>")
        def send(name: str) -> t.Any:
            return send_download(name, root=data_dir)

    else:
        raise ValueError(f"Unknown contender kind {kind!r}.")
    return app
