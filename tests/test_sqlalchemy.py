from __future__ import annotations

import collections.abc as cabc
import datetime
import os
import pathlib
import typing as t

import fsspec
import pytest
import sqlalchemy as sa
import sqlalchemy.exc
from flask import Flask
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import Session

from flask_download import ConfigurationError
from flask_download import DownloadView
from flask_download import FileNotFound
from flask_download import PathFile
from flask_download.sqlalchemy import BinaryFile
from flask_download.sqlalchemy import ColumnFile
from flask_download.sqlalchemy import FileColumn


class Base(DeclarativeBase):
    pass


class Upload(Base):
    __tablename__ = "upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    # DOWNLOAD_ROOT of the current app.
    file: Mapped[ColumnFile | None] = mapped_column(FileColumn())
    # A root of its own, relative to the app's root_path.
    sub: Mapped[ColumnFile | None] = mapped_column(FileColumn(root="root/sub"))
    # An fsspec storage.
    remote: Mapped[ColumnFile | None] = mapped_column(
        FileColumn(storage="memory://sqlalchemy-test", length=300)
    )


@pytest.fixture
def session() -> cabc.Iterator[Session]:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def _reload(session: Session, row: Upload) -> Upload:
    session.commit()
    row_id = row.id
    session.expunge_all()
    return session.get(Upload, row_id)


def test_file_column_reads_back_a_wrapper_under_download_root(
    app: Flask, session: Session
) -> None:
    row = Upload(file="sub/nested.txt")
    session.add(row)
    row = _reload(session, row)
    assert isinstance(row.file, ColumnFile)
    assert row.file.key == "sub/nested.txt"
    assert row.file.name == "nested.txt"
    with app.app_context():
        resolved = row.file.resolve()
        assert isinstance(resolved, PathFile)
        assert row.file.size == 7
        assert b"".join(row.file.chunks()) == b"nested\n"
        assert row.file.etag == resolved.etag
    row.file.close()


def test_file_column_uses_its_own_root(app: Flask, session: Session) -> None:
    row = Upload(sub="nested.txt")
    session.add(row)
    row = _reload(session, row)
    assert row.sub is not None
    with app.app_context():
        assert row.sub.resolve().path == os.path.realpath(
            os.path.join(app.root_path, "root", "sub", "nested.txt")
        )


def test_reading_a_row_never_touches_the_file(app: Flask, session: Session) -> None:
    row = Upload(file="missing.txt")
    session.add(row)
    row = _reload(session, row)  # no app context, no file: still loads
    assert row.file is not None
    with app.app_context(), pytest.raises(FileNotFound):
        row.file.resolve()


@pytest.mark.parametrize(
    "value",
    ["../secret.txt", "/etc/passwd", "a/../../b", "a\\b", "", "C:/x", "a\x00b"],
    ids=["dotdot", "absolute", "nested-dotdot", "backslash", "empty", "drive", "nul"],
)
def test_storing_a_path_that_leaves_the_root_is_refused(
    session: Session, value: str
) -> None:
    session.add(Upload(file=value))
    with pytest.raises(sqlalchemy.exc.StatementError) as info:
        session.flush()
    assert isinstance(info.value.orig, ValueError)


def test_stored_keys_are_normalised(session: Session) -> None:
    row = Upload(file=pathlib.PurePosixPath("a/./b//c.txt"))  # type: ignore[arg-type]
    session.add(row)
    row = _reload(session, row)
    assert row.file is not None
    assert row.file.key == "a/b/c.txt"
    assert session.scalar(sa.select(Upload.id).where(Upload.file == "a//b/c.txt"))


def test_non_string_values_are_refused(session: Session) -> None:
    session.add(Upload(file=42))  # type: ignore[arg-type]
    with pytest.raises(sqlalchemy.exc.StatementError) as info:
        session.flush()
    assert isinstance(info.value.orig, TypeError)


def test_tampered_key_in_the_database_never_leaves_the_root(
    app: Flask, session: Session
) -> None:
    row = Upload(file="hello.txt")
    session.add(row)
    session.commit()
    session.execute(sa.text("UPDATE upload SET file = '../secret.txt'"))
    row = _reload(session, row)
    assert row.file is not None
    with app.app_context(), pytest.raises(FileNotFound):
        row.file.resolve()


def test_no_root_at_all_is_a_configuration_error(session: Session) -> None:
    app = Flask(__name__)
    row = Upload(file="hello.txt")
    session.add(row)
    row = _reload(session, row)
    assert row.file is not None
    with app.app_context(), pytest.raises(ConfigurationError, match="DOWNLOAD_ROOT"):
        row.file.resolve()


def test_root_and_storage_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        FileColumn(root="a", storage="memory://")


def test_storage_column_is_confined_to_its_prefix(session: Session) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/sqlalchemy-test/docs/a.txt", b"in memory")
    row = Upload(remote="docs/a.txt")
    session.add(row)
    row = _reload(session, row)
    assert row.remote is not None
    assert row.remote.size == 9
    assert b"".join(row.remote.chunks()) == b"in memory"
    session.execute(sa.text("UPDATE upload SET remote = '../sqlalchemy-test/x'"))
    row = _reload(session, row)
    assert row.remote is not None
    with pytest.raises(FileNotFound):
        row.remote.resolve()


def test_columns_with_different_roots_never_share_cached_statements(
    app: Flask, session: Session, download_root: pathlib.Path
) -> None:
    """The statement cache key includes the column's root."""
    assert (
        FileColumn(root="a")._static_cache_key != FileColumn(root="b")._static_cache_key
    )
    row = Upload(file="sub/nested.txt", sub="nested.txt")
    session.add(row)
    row = _reload(session, row)
    assert row.file is not None and row.sub is not None
    with app.app_context():
        assert row.file.resolve().path == row.sub.resolve().path


def test_column_file_can_be_returned_from_get_file(
    app: Flask, session: Session
) -> None:
    row = Upload(file="hello.txt")
    session.add(row)
    row = _reload(session, row)

    class UploadView(DownloadView):
        def get_file(self) -> ColumnFile:
            assert row.file is not None
            return row.file

    app.add_url_rule("/upload", view_func=UploadView.as_view("upload"))
    with app.test_client().get("/upload") as rv:
        assert rv.data == b"Hello, world!\n"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'


def test_missing_column_file_from_get_file_is_404(app: Flask, session: Session) -> None:
    class GoneView(DownloadView):
        def get_file(self) -> ColumnFile:
            return ColumnFile("gone.txt")

    app.add_url_rule("/gone", view_func=GoneView.as_view("gone"))
    with app.test_client().get("/gone") as rv:
        assert rv.status_code == 404


def test_binary_file_has_size_and_content_hash_etag() -> None:
    file = BinaryFile(b"abc", name="a.txt")
    same = BinaryFile(bytearray(b"abc"))
    other = BinaryFile(memoryview(b"abd"))
    assert file.size == 3
    assert file.seekable
    assert file.etag == same.etag != other.etag
    assert b"".join(file.chunks(2, 1, 3)) == b"bc"


def test_binary_file_etag_from_version_is_cheap_and_distinct() -> None:
    content = b"x" * 10
    v1 = BinaryFile(content, version=1)
    v2 = BinaryFile(content, version=2)
    stamp = BinaryFile(content, version=datetime.datetime(2024, 1, 1))
    assert len({v1.etag, v2.etag, stamp.etag, BinaryFile(content).etag}) == 4
    assert v1.etag is not None
    assert v1.etag.isalnum()
    assert BinaryFile(content, version=1, etag="given").etag == "given"


def test_binary_file_keeps_the_bytes_object() -> None:
    content = bytes(1024)
    file = BinaryFile(content)
    with file.open() as handle:
        assert handle.read() == content
    assert file._bytes is content


def test_binary_file_null_is_no_file_and_empty_is_a_file() -> None:
    with pytest.raises(FileNotFound):
        BinaryFile(None)
    empty = BinaryFile(b"")
    assert empty.size == 0
    assert list(empty.chunks()) == []


def test_column_file_attributes_can_be_overridden_without_resolving(
    app: Flask,
) -> None:
    file = ColumnFile("missing.txt")
    file.mimetype = "text/x-custom"
    file.size = 3
    assert file.mimetype == "text/x-custom"
    assert file.size == 3
    assert str(file) == "missing.txt"
    assert file == ColumnFile("missing.txt")
    assert repr(file) == "<ColumnFile 'missing.txt'>"
    assert t.cast(t.Any, file)._file is None
