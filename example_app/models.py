"""The example's database: users and their documents, in SQLite.

Flask-SQLAlchemy keeps the database in the instance folder (see
:func:`example_app.create_app`); :func:`init_db` creates it on first run,
with the sample users and their documents.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship


class Base(DeclarativeBase):
    """Declarative base; models subclass it directly so mypy sees their types."""


#: The Flask-SQLAlchemy extension, bound to each app in ``create_app``.
db = SQLAlchemy(model_class=Base)


#: The largest id SQLite can store (its integers are 64-bit): a larger one in
#: a URL is no row, and binding it in a query would fail.
MAX_ID = 2**63 - 1


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class User(Base):
    """Someone who owns documents. The example has no passwords: a visitor
    picks a user name on the login page (see :mod:`example_app.auth`)."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)

    documents: Mapped[list[Document]] = relationship(
        back_populates="owner", cascade="all, delete-orphan"
    )


class Document(Base):
    """An uploaded file: the bytes live on disk, everything else in the row.

    The columns are the ones ``ObjectDownloadView`` reads through its
    ``*_field`` attributes (see :class:`example_app.documents.DocumentView`).
    """

    __tablename__ = "document"
    # AUTOINCREMENT: SQLite never gives the id of a deleted row to a new one
    # (without it, the next insert takes the deleted newest row's id). A
    # database made before this stays as it was (create_all alters no
    # table); the share links bind ``share_key`` too, so they are safe
    # on it as on any database that reuses ids.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    #: Where the bytes are: ``uploads/<random key>``, relative to
    #: ``DOWNLOAD_ROOT``. Generated, never the client's name, so two uploads
    #: of ``report.pdf`` never collide and no name can reach outside.
    path: Mapped[str] = mapped_column(sa.String(200), unique=True)
    #: The name the file had on the uploader's disk; downloads are saved
    #: under it (``basename_field``).
    filename: Mapped[str] = mapped_column(sa.String(255))
    #: The media type, guessed from the name at upload (``mime_type_field``).
    mimetype: Mapped[str] = mapped_column(sa.String(100))
    #: Size in bytes (``size_field``).
    size: Mapped[int]
    #: CRC-32 of the content, computed while the upload was written: ZIP
    #: archives of several documents use it instead of reading the file.
    crc32: Mapped[int] = mapped_column(sa.BigInteger)
    #: Upload time (``modification_time_field``); SQLite gives it back naive,
    #: which Flask-Download reads as UTC.
    uploaded_at: Mapped[datetime.datetime] = mapped_column(default=_now)

    owner: Mapped[User] = relationship(back_populates="documents")

    @property
    def share_key(self) -> str:
        """The last part of :attr:`path`: the random key of an upload (or a
        sample's fixed name: samples are only added to an empty database).

        Share links are signed over it as well as the id, and the shared
        view only opens the row whose path ends with it: the link of a
        deleted document never opens another row, even one that got its id.
        """
        return self.path.rpartition("/")[2]


#: Users created on first run, so that a fresh checkout can log in at once.
SAMPLE_USERS = ("alice", "bob")


def init_db(
    sample_documents: cabc.Callable[[str], cabc.Iterable[Document]] | None = None,
) -> None:
    """Create the tables; in an empty database, the sample users and their
    documents too.

    It runs at every start: a database that has users already is left as it
    is, so a restart adds nothing twice (and a sample the user deleted stays
    deleted).

    :param sample_documents: makes the documents of a new sample user, given
        their name (see :func:`example_app.samples.sample_documents`); they
        are committed with the users, in one transaction.
    """
    db.create_all()
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        return
    for name in SAMPLE_USERS:
        documents = list(sample_documents(name)) if sample_documents else []
        db.session.add(User(name=name, documents=documents))
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        # Another worker, started at the same time, created them first (the
        # user names are unique): theirs are kept.
        db.session.rollback()
