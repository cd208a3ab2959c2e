"""Review 9 (b): local storage folders, URL values refused under an
overridden ``get_query()``, allowed host entries.

- a local storage URL fsspec reads as an absolute folder is not refused
  (``"file:/srv/files"``, ``"file://~/files"``); a ``DirFileSystem(".")``
  (made absolute against the working directory by fsspec) and a folder
  holding the working directory are;
- a URL value refused by the dialect's own form of a column type (a
  ``with_variant()`` type) under an overridden ``get_query()`` is a 404,
  as without the override;
- an allowed host entry with characters no host name has, or several names
  separated by spaces, gets a message that does not suggest the same entry.
"""

from __future__ import annotations

import os
import pathlib
import re
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from sqlalchemy.orm import DeclarativeBase

from flask_download import ConfigurationError
from flask_download import make_download_blueprint
from flask_download import ObjectDownloadView
from flask_download import StorageDownloadView
from flask_download.settings import check_allowed_hosts
from flask_download.sqlalchemy import FileColumn

SECRET = b"REVIEW9-SECRET-never-served"


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


def _serve(storage: t.Any, root_path: pathlib.Path) -> Flask:
    app = Flask("review9_b", root_path=os.fspath(root_path))
    app.add_url_rule(
        "/files/<path:path>",
        view_func=StorageDownloadView.as_view("files", storage=storage),
    )
    return app


# -- legitimate local folders ---------------------------------------------------


def test_file_url_short_form_with_an_absolute_folder_is_served(
    project: pathlib.Path,
) -> None:
    """``file:/srv/files`` (RFC 8089's form without an authority) is the
    absolute folder ``/srv/files`` to fsspec: it was refused as relative."""
    storage = "file:" + os.fspath(project / "files")
    app = _serve(storage, project)
    with app.test_client().get("/files/a.txt") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"public"
    with app.test_client().get("/files/../instance/config.py") as rv:
        assert rv.status_code == 404
    FileColumn(storage=storage)  # not refused either
    make_download_blueprint("dl", storage=storage)


@pytest.mark.parametrize("prefix", ["file://", "", "local://"])
def test_home_folder_url_is_served(
    project: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
) -> None:
    """``~/files`` (an environment variable's path): fsspec expands ``~``
    to the home folder, an absolute folder; it was refused as relative."""
    home = tmp_path / "home"
    (home / "files").mkdir(parents=True)
    (home / "files" / "h.txt").write_bytes(b"home file")
    monkeypatch.setenv("HOME", os.fspath(home))
    app = _serve(prefix + "~/files", project)
    with app.test_client().get("/files/h.txt") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"home file"


# -- still unsafe ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: DirFileSystem(".", fs=LocalFileSystem()), id="dirfs-dot"),
        pytest.param(
            lambda: DirFileSystem("./", fs=LocalFileSystem()), id="dirfs-dot-slash"
        ),
        pytest.param(
            lambda: DirFileSystem("files/..", fs=LocalFileSystem()), id="dirfs-up"
        ),
        pytest.param(
            lambda: DirFileSystem("..", fs=LocalFileSystem()), id="dirfs-parent"
        ),
        pytest.param(lambda: "file://" + os.getcwd(), id="file-url-of-cwd"),
        pytest.param(
            lambda: "file://" + os.path.dirname(os.getcwd()), id="file-url-parent"
        ),
    ],
)
def test_a_folder_that_is_or_holds_the_working_directory_is_refused(
    project: pathlib.Path, make: t.Callable[[], t.Any]
) -> None:
    """``DirFileSystem(".")`` is made absolute against the working
    directory when made, so it passed as an absolute folder and served the
    project (its instance config): the hole the check was made for."""
    storage = make()
    with pytest.raises(ConfigurationError, match="working directory"):
        StorageDownloadView.as_view("files", storage=storage)
    with pytest.raises(ConfigurationError, match="working directory"):
        make_download_blueprint("dl", storage=storage)
    with pytest.raises(ConfigurationError, match="working directory"):
        FileColumn(storage=storage)


def test_a_folder_inside_the_working_directory_stays_allowed(
    project: pathlib.Path,
) -> None:
    app = _serve(DirFileSystem("files", fs=LocalFileSystem()), project)
    with app.test_client().get("/files/a.txt") as rv:
        assert rv.get_data() == b"public"
    with app.test_client().get("/files/../instance/config.py") as rv:
        assert rv.status_code == 404


# -- ObjectDownloadView: a URL value refused by a dialect variant ----------------


class _Base(DeclarativeBase):
    pass


class ShortCode(sa.TypeDecorator[str]):
    """A code column the SQLite variant only takes as ``c<digits>``."""

    impl = sa.String(20)
    cache_ok = True

    def process_bind_param(self, value: t.Any, dialect: t.Any) -> t.Any:
        if isinstance(value, str) and not re.fullmatch(r"c[0-9]{1,9}", value):
            raise ValueError(value)
        return value


class Coded(_Base):
    __table__ = sa.Table(
        "review9_coded",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(20).with_variant(ShortCode(), "sqlite")),
        sa.Column("owner", sa.String(20)),
        sa.Column("content", sa.LargeBinary),
    )


class CodedView(ObjectDownloadView):
    model = Coded
    file_field = "content"
    slug_field = "code"


class OwnCodedView(CodedView):
    def get_query(self) -> t.Any:
        return sa.select(Coded).where(Coded.owner == "alice")


@pytest.fixture
def coded_app(tmp_path: pathlib.Path) -> t.Iterator[Flask]:
    db = SQLAlchemy(model_class=_Base)
    app = Flask("review9_coded")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'coded.db'}"
    db.init_app(app)
    app.add_url_rule("/plain/<slug>", view_func=CodedView.as_view("plain"))
    app.add_url_rule("/own/<slug>", view_func=OwnCodedView.as_view("own"))
    with app.app_context():
        Coded.__table__.create(db.engine)
        db.session.add(Coded(id=1, code="c42", owner="alice", content=b"coded"))
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def _status(app: Flask, url: str) -> int:
    with app.test_client().get(url) as rv:
        rv.get_data()
        return rv.status_code


def test_a_url_value_a_dialect_variant_refuses_is_404_under_get_query(
    coded_app: Flask,
) -> None:
    """``_refuses`` ran the generic type's bind processor, not the one the
    statement ran (the dialect's variant): the refusal was taken for the
    application's own, a 500."""
    assert _status(coded_app, "/plain/c42") == 200
    assert _status(coded_app, "/plain/nope") == 404
    assert _status(coded_app, "/own/c42") == 200
    assert _status(coded_app, "/own/c43") == 404
    assert _status(coded_app, "/own/nope") == 404


# -- allowed hosts: what to write instead -----------------------------------------


@pytest.mark.parametrize(
    "entry",
    ["exa$mple.com", "a.example|b.example", "fe80::1%eth0", "[fe80::1%eth0]"],
)
def test_a_host_entry_with_odd_characters_suggests_no_same_entry(entry: str) -> None:
    """The message said "use 'exa$mple.com'": the refused entry itself,
    after explaining ports and schemes it does not have."""
    with pytest.raises(ConfigurationError) as error:
        check_allowed_hosts([entry], "DOWNLOAD_HTTP_ALLOWED_HOSTS")
    message = str(error.value)
    assert "no host name has" in message
    assert f"use {entry!r}" not in message
    assert "port" not in message


@pytest.mark.parametrize(
    "entry", ["a.example b.example", "a.example\tb.example", "a.example\nb.example"]
)
def test_host_names_separated_by_spaces_are_named_as_several(entry: str) -> None:
    """A space-separated environment variable: the list to write, as for
    commas, not "use 'a.example b.example'"."""
    with pytest.raises(ConfigurationError, match="several host names") as error:
        check_allowed_hosts(entry, "DOWNLOAD_HTTP_ALLOWED_HOSTS")
    assert "['a.example', 'b.example']" in str(error.value)


def test_several_host_names_with_ports_are_listed_without_them() -> None:
    with pytest.raises(ConfigurationError) as error:
        check_allowed_hosts("a.example:443,b.example", "allowed_hosts")
    assert "['a.example', 'b.example']" in str(error.value)


@pytest.mark.parametrize(
    "entry",
    [
        "bücher.example",
        "xn--bcher-kva.example",
        "example.com.",
        ".example.com",
        "_acme.example.com",
        "[2001:db8::7]",
    ],
)
def test_legitimate_host_entries_stay_allowed(entry: str) -> None:
    assert check_allowed_hosts([entry], "allowed_hosts") is not None


def test_the_applications_failing_autoflush_is_not_a_404(coded_app: Flask) -> None:
    """A pending row of the application whose value its column type refuses
    fails in the autoflush before the download's SELECT: that is the
    application's error (a 500 with its traceback), not "no such row", with
    or without an overridden ``get_query()``. A refused URL value is still
    a 404."""
    db = coded_app.extensions["sqlalchemy"]

    @coded_app.before_request
    def audit() -> None:
        db.session.add(Coded(id=2, code="not a code", owner="x", content=b""))

    coded_app.testing = True
    for url in ("/plain/c42", "/own/c42"):
        with pytest.raises(sa.exc.StatementError, match="autoflush"):
            coded_app.test_client().get(url)
    assert _status(coded_app, "/plain/nope") == 404
