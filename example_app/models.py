"""The example's database: Flask-SQLAlchemy over SQLite in the instance folder."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_download.sqlalchemy import ColumnFile
from flask_download.sqlalchemy import FileColumn


class Base(DeclarativeBase):
    """Declarative base; models subclass it directly so mypy sees their types."""


#: The Flask-SQLAlchemy extension, bound to each app in ``create_app``.
db = SQLAlchemy(model_class=Base)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Document(Base):
    """A downloadable document: a file under ``DOWNLOAD_ROOT``, or bytes in a row.

    The metadata columns next to the file are read by ``ObjectDownloadView``
    through its ``*_field`` attributes.
    """

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Used in URLs such as ``/documents/by-slug/readme``.
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    #: A path relative to ``DOWNLOAD_ROOT``; reads back as a ``ColumnFile``.
    file: Mapped[ColumnFile | None] = mapped_column(FileColumn(length=500))
    #: Or the content itself. Deferred: list pages never load it, the
    #: download view loads it in its one SELECT.
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    #: The name the browser saves the file under (``basename_field``).
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    #: The media type (``mime_type_field``); ``None`` guesses from the name.
    mimetype: Mapped[str | None] = mapped_column(sa.String(100))
    #: Last change (``modification_time_field``); SQLite gives it back naive,
    #: which Flask-Download reads as UTC.
    updated_at: Mapped[datetime.datetime] = mapped_column(default=_now, onupdate=_now)


#: Rows created on first run, so a fresh checkout has something to download.
SAMPLE_DOCUMENTS: list[dict[str, object]] = [
    {
        "slug": "readme",
        "title": "Read me (a file under DOWNLOAD_ROOT)",
        "file": "readme.txt",
        "mimetype": "text/plain",
    },
    {
        "slug": "resume",
        "title": "Résumé (a non-ASCII file name)",
        "file": "résumé.txt",
        "filename": "Résumé – 2026.txt",
    },
    {
        "slug": "stored-in-db",
        "title": "Hello from the database (a LargeBinary column)",
        "content": b"Ces octets sont dans SQLite.\n",
        "filename": "from-the-database.txt",
        "mimetype": "text/plain",
    },
]


def init_db() -> None:
    """Create the tables and add the sample documents to an empty database."""
    db.create_all()
    if db.session.scalar(sa.select(sa.func.count()).select_from(Document)):
        return
    db.session.add_all(Document(**values) for values in SAMPLE_DOCUMENTS)
    db.session.commit()
