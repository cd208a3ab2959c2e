"""DESIGN §2: every source reaching the local disk is confined by one opener."""

from __future__ import annotations

import collections.abc as cabc
import os
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from flask import Flask

from flask_download import ObjectDownloadView
from flask_download import StorageDownloadView
from flask_download.sqlalchemy import FileColumn

from .conftest import check_handles_close


@pytest.fixture
def links(download_root: pathlib.Path) -> pathlib.Path:
    """Symbolic links inside the root that lead out of it, and one that stays."""
    secret = download_root.parent / "secret.txt"
    (download_root / "out.txt").symlink_to(secret)
    (download_root / "outdir").symlink_to(download_root.parent)
    (download_root / "in.txt").symlink_to(download_root / "hello.txt")
    return download_root


OUT = ["out.txt", "outdir/secret.txt", "../secret.txt", "sub/../../secret.txt"]


def _storage_url(app: Flask, root: pathlib.Path) -> t.Any:
    app.add_url_rule(
        "/s/<path:path>",
        view_func=StorageDownloadView.as_view("s", storage="file://" + os.fspath(root)),
    )
    return app.test_client()


def _dirfs(app: Flask, root: pathlib.Path) -> t.Any:
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    fs = DirFileSystem(path=os.fspath(root), fs=LocalFileSystem())
    app.add_url_rule(
        "/s/<path:path>", view_func=StorageDownloadView.as_view("s", storage=fs)
    )
    return app.test_client()


@pytest.mark.parametrize("make", [_storage_url, _dirfs], ids=["file-url", "dirfs"])
def test_local_storage_confined(
    app: Flask, links: pathlib.Path, make: t.Callable[[Flask, pathlib.Path], t.Any]
) -> None:
    client = make(app, links)
    with client.get("/s/hello.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
    with client.get("/s/in.txt") as rv:
        assert rv.status_code == 200
    for path in OUT:
        with client.get("/s/" + path) as rv:
            assert rv.status_code == 404, path
            assert b"TOP SECRET" not in rv.data


class Base(orm.DeclarativeBase):
    pass


class Upload(Base):
    __tablename__ = "contract_upload"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    path: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))
    stored: orm.Mapped[t.Any] = orm.mapped_column(FileColumn(), nullable=True)


@pytest.fixture
def session() -> cabc.Iterator[orm.Session]:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as s:
        yield s
    engine.dispose()


@pytest.mark.parametrize("field", ["path", "stored"])
def test_row_paths_confined_through_symlinks(
    app: Flask, links: pathlib.Path, session: orm.Session, field: str
) -> None:
    for i, path in enumerate(["in.txt", *OUT], start=1):
        session.execute(
            sa.text(f"INSERT INTO contract_upload (id, {field}) VALUES (:i, :p)"),
            {"i": i, "p": path},
        )
    session.commit()
    app.add_url_rule(
        "/o/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "o", model=Upload, file_field=field, session=session
        ),
    )
    client = app.test_client()
    with client.get("/o/1") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
    for i, path in enumerate(OUT, start=2):
        with client.get(f"/o/{i}") as rv:
            assert rv.status_code == 404, path
            assert b"TOP SECRET" not in rv.data


def test_file_column_root(
    app: Flask, links: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    class Local(Base):
        __tablename__ = "contract_upload_rooted"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        stored: orm.Mapped[t.Any] = orm.mapped_column(
            FileColumn(root=os.fspath(links / "sub")), nullable=True
        )

    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    try:
        with orm.Session(engine) as session:
            session.add(Local(id=1, stored="nested.txt"))
            session.execute(
                sa.text(
                    "INSERT INTO contract_upload_rooted (id, stored)"
                    " VALUES (2, '../hello.txt')"
                )
            )
            session.commit()
            app.add_url_rule(
                "/o/<int:id>",
                view_func=ObjectDownloadView.as_view(
                    "o", model=Local, file_field="stored", session=session
                ),
            )
            client = app.test_client()
            with client.get("/o/1") as rv:
                assert rv.data == b"nested\n"
            with client.get("/o/2") as rv:
                assert rv.status_code == 404
    finally:
        engine.dispose()


def test_storage_prefix_sibling_not_reachable(app: Flask) -> None:
    """A key normalised to a sibling sharing the prefix's text stays out."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/contract-sib/in/a.txt", b"inside")
    fs.pipe("/contract-sib/in-evil/secret.txt", b"TOP SECRET")
    fs.pipe("/contract-sib/inx", b"TOP SECRET")
    try:
        app.add_url_rule(
            "/s/<path:path>",
            view_func=StorageDownloadView.as_view(
                "s", storage="memory://contract-sib/in"
            ),
        )
        client = app.test_client()
        with client.get("/s/a.txt") as rv:
            assert rv.data == b"inside"
        for path in (
            "../in-evil/secret.txt",
            "%2e%2e/in-evil/secret.txt",
            "../inx",
            "a.txt/../../in-evil/secret.txt",
            "/contract-sib/in-evil/secret.txt",
            "memory://contract-sib/inx",
        ):
            with client.get("/s/" + path, follow_redirects=True) as rv:
                assert rv.status_code == 404, path
                assert b"TOP SECRET" not in rv.data
    finally:
        fs.rm("/contract-sib", recursive=True)


def test_local_storage_sibling_not_reachable(
    app: Flask, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("inside")
    (tmp_path / "in-evil").mkdir()
    (tmp_path / "in-evil" / "secret.txt").write_text("TOP SECRET")
    app.add_url_rule(
        "/s/<path:path>",
        view_func=StorageDownloadView.as_view(
            "s", storage="file://" + os.fspath(tmp_path / "in")
        ),
    )
    client = app.test_client()
    with client.get("/s/a.txt") as rv:
        assert rv.data == b"inside"
    with client.get("/s/../in-evil/secret.txt") as rv:
        assert rv.status_code == 404
    with client.get("/s/%2e%2e/in-evil/secret.txt") as rv:
        assert rv.status_code == 404


def test_local_storage_handles_closed_on_every_path(
    app: Flask, download_root: pathlib.Path
) -> None:
    check_handles_close(_storage_url(app, download_root), "/s/data.bin")
