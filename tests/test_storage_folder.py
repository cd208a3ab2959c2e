"""A local storage confines client paths and row keys only to an absolute folder.

``LocalFileSystem()`` and the URLs ``"file://"``, ``"local://"``,
``"file://."``, ``"file://files"`` (relative) read keys relative to the
process's working directory, the project with its instance config;
``"file:///"`` has prefix ``""`` in fsspec (the same), and ``"/"`` itself
would serve the whole machine. Views, blueprints and ``FileColumn`` refuse
them when made; anything that only meets them at first use (a view's
storage given to a row's ``ColumnFile``, :func:`storage_key`) refuses them
then, with a :exc:`ConfigurationError`, never by serving a file.
"""

from __future__ import annotations

import os
import pathlib
import typing as t

import pytest
from flask import Flask
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_download import ConfigurationError
from flask_download import make_download_blueprint
from flask_download import ObjectDownloadView
from flask_download import StorageDownloadView
from flask_download.sqlalchemy import ColumnFile
from flask_download.sqlalchemy import FileColumn
from flask_download.storage import resolve_storage
from flask_download.storage import storage_key

SECRET = b"FOLDER-SECRET-never-served"


def _bad_storages() -> list[t.Any]:
    return [
        pytest.param(lambda: LocalFileSystem(), id="LocalFileSystem()"),
        pytest.param(lambda: "file://", id="file://"),
        pytest.param(lambda: "local://", id="local://"),
        pytest.param(lambda: "file://.", id="file://."),
        pytest.param(lambda: "file://instance", id="file://relative"),
        pytest.param(lambda: "file:///", id="file:///"),
        pytest.param(lambda: "file:///.", id="file:///."),
        pytest.param(lambda: "local:///", id="local:///"),
        pytest.param(lambda: "simplecache::file://", id="simplecache::file://"),
        pytest.param(lambda: "dir::file://", id="dir::file://"),
        pytest.param(lambda: "dir::file:///", id="dir::file:///"),
        pytest.param(
            lambda: DirFileSystem("/", fs=LocalFileSystem()), id="DirFileSystem(/)"
        ),
    ]


BAD = _bad_storages()


@pytest.fixture
def project(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A deployed project, the process's working directory."""
    project = tmp_path / "project"
    (project / "instance").mkdir(parents=True)
    (project / "instance" / "config.py").write_bytes(
        b"SECRET_KEY = '" + SECRET + b"'\n"
    )
    (project / "files").mkdir()
    (project / "files" / "a.txt").write_bytes(b"public")
    monkeypatch.chdir(project)
    return project


def _says_the_fix(error: pytest.ExceptionInfo[ConfigurationError]) -> None:
    message = str(error.value)
    assert "file:///srv/files" in message
    assert "DirFileSystem('/srv/files', fs=LocalFileSystem())" in message


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "folder_row"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str | None]


# -- refused when made ---------------------------------------------------------


@pytest.mark.parametrize("make", BAD)
def test_a_view_refuses_it_when_made(
    project: pathlib.Path, make: t.Callable[[], t.Any]
) -> None:
    with pytest.raises(ConfigurationError) as error:
        StorageDownloadView.as_view("files", storage=make())
    _says_the_fix(error)


@pytest.mark.parametrize("make", BAD)
def test_a_view_class_attribute_is_refused_too(
    project: pathlib.Path, make: t.Callable[[], t.Any]
) -> None:
    class Files(StorageDownloadView):
        storage = make()

    with pytest.raises(ConfigurationError):
        Files.as_view("files")


@pytest.mark.parametrize("make", BAD)
def test_a_blueprint_refuses_it_when_made(
    project: pathlib.Path, make: t.Callable[[], t.Any]
) -> None:
    with pytest.raises(ConfigurationError) as error:
        make_download_blueprint("dl", storage=make())
    _says_the_fix(error)


@pytest.mark.parametrize("make", BAD)
def test_a_model_only_blueprint_refuses_it_when_made(
    project: pathlib.Path, make: t.Callable[[], t.Any]
) -> None:
    # Its view confines row keys to the storage.
    with pytest.raises(ConfigurationError):
        make_download_blueprint("dl", storage=make(), model=Row, files=False)


@pytest.mark.parametrize("make", BAD)
def test_a_file_column_refuses_it_when_made(
    project: pathlib.Path, make: t.Callable[[], t.Any]
) -> None:
    with pytest.raises(ConfigurationError) as error:
        FileColumn(storage=make())
    _says_the_fix(error)


def test_the_root_is_named_as_such(project: pathlib.Path) -> None:
    with pytest.raises(ConfigurationError, match="root of the filesystem"):
        StorageDownloadView.as_view("files", storage="file:///")
    with pytest.raises(ConfigurationError, match="working directory"):
        StorageDownloadView.as_view("files", storage=LocalFileSystem())


# -- refused at first use, where only known then --------------------------------


@pytest.mark.parametrize("make", BAD)
def test_a_row_key_in_a_view_storage_is_refused(
    project: pathlib.Path, make: t.Callable[[], t.Any]
) -> None:
    # What ObjectDownloadView does with a string (or FileColumn) value and
    # its own storage: ColumnFile(value).resolve(storage=view.storage).
    with pytest.raises(ConfigurationError):
        ColumnFile("instance/config.py").resolve(storage=make())


def test_an_object_view_storage_is_refused_at_its_first_row(
    project: pathlib.Path,
) -> None:
    view = ObjectDownloadView(model=Row, file_field="key", storage="file://")
    with pytest.raises(ConfigurationError):
        view.file_from_object(Row(id=1, key="instance/config.py"))


def test_storage_key_refuses_an_implicit_local_folder(project: pathlib.Path) -> None:
    for fs, prefix in (
        (LocalFileSystem(), ""),
        (LocalFileSystem(), "instance"),
        (LocalFileSystem(), "/"),
        resolve_storage("file:///"),
    ):
        with pytest.raises(ConfigurationError):
            storage_key(fs, prefix, "instance/config.py")


def test_a_view_storage_known_only_per_request_is_refused_then(
    project: pathlib.Path,
) -> None:
    class Files(StorageDownloadView):
        def get_storage(self) -> t.Any:
            return LocalFileSystem(), ""

    app = Flask("folder_first_use", root_path=os.fspath(project))
    app.testing = True
    app.add_url_rule("/files/<path:path>", view_func=Files.as_view("files"))
    with pytest.raises(ConfigurationError):
        app.test_client().get("/files/instance/config.py")


# -- what stays allowed ------------------------------------------------------------


def test_an_absolute_folder_is_served_and_confined(project: pathlib.Path) -> None:
    folder = os.fspath(project / "files")
    app = Flask("folder_ok", root_path=os.fspath(project))
    app.register_blueprint(
        make_download_blueprint("url", storage="file://" + folder, url_prefix="/u")
    )
    app.register_blueprint(
        make_download_blueprint(
            "dir",
            storage=DirFileSystem(folder, fs=LocalFileSystem()),
            url_prefix="/d",
        )
    )
    app.register_blueprint(
        make_download_blueprint(
            "cached", storage="simplecache::file://" + folder, url_prefix="/c"
        )
    )
    client = app.test_client()
    for prefix in ("/u/", "/d/", "/c/"):
        with client.get(prefix + "a.txt") as answer:
            assert answer.data == b"public"
        with client.get(prefix + "../instance/config.py") as answer:
            assert answer.status_code == 404
            assert SECRET not in answer.data


def test_a_file_column_with_an_absolute_folder_reads_its_keys(
    project: pathlib.Path,
) -> None:
    column = FileColumn(storage="file://" + os.fspath(project / "files"))
    value = column.process_result_value("a.txt", dialect=t.cast(t.Any, None))
    assert value is not None
    with value.resolve() as file:
        assert file.size == len(b"public")


def test_a_trusted_absolute_path_stays_allowed(project: pathlib.Path) -> None:
    app = Flask("folder_trusted", root_path=os.fspath(project))
    path = os.fspath(project / "files" / "a.txt")
    for name, storage in (("instance", LocalFileSystem()), ("url", "file://")):
        app.add_url_rule(
            f"/{name}",
            view_func=StorageDownloadView.as_view(name, storage=storage, path=path),
        )
    client = app.test_client()
    for name in ("instance", "url"):
        with client.get(f"/{name}") as answer:
            assert answer.data == b"public"


def test_a_view_with_its_own_get_path_is_checked_at_first_use(
    project: pathlib.Path,
) -> None:
    # It may serve trusted keys only: not refused when made.
    trusted = os.fspath(project / "files" / "a.txt")

    class Latest(StorageDownloadView):
        def get_path(self) -> str:
            return trusted

    app = Flask("folder_own_path", root_path=os.fspath(project))
    app.add_url_rule("/latest", view_func=Latest.as_view("latest", storage="file://"))
    with app.test_client().get("/latest") as answer:
        assert answer.data == b"public"


@pytest.mark.parametrize("storage", ["memory://folder-test", "memory://"])
def test_other_stores_are_not_concerned(storage: str) -> None:
    StorageDownloadView.as_view("files", storage=storage)
    make_download_blueprint("dl", storage=storage)
    FileColumn(storage=storage)


def test_object_view_refuses_a_local_storage_without_a_folder_when_made() -> None:
    from fsspec.implementations.local import LocalFileSystem

    from flask_download import ObjectDownloadView

    with pytest.raises(ConfigurationError, match="file:///srv/files"):
        ObjectDownloadView.as_view("rows", storage=LocalFileSystem())
