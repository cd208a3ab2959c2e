"""Review 10 (b): the storage folder checks, refused URL values, allowed hosts.

- a storage folder that holds the working directory is refused with advice
  that fits (it said "give the folder as an absolute path", which it was),
  naming the working directory;
- that folder is also recognised under another name of the same directory
  (a case-insensitive disk, a bind mount), not only by its path;
- ``file:///C:/srv`` on Windows is the folder ``C:/srv``, as fsspec reads it;
- a URL value a column type refuses is still a 404 on every lookup path
  (the row fast path and its direct read, mapped instances, a legacy
  ``Query``, Flask-SQLAlchemy binds, a session bound to a connection);
- :class:`~flask_download.HTTPFile` checks an ``allowed_hosts`` list once,
  not on every request, and still refuses a bad one every time;
- a network (``10.0.0.0/8``) in an allowed host list is not answered with
  "use '10.0.0.0'".
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
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session

import flask_download.http._file as http_file
from flask_download import ConfigurationError
from flask_download import DisallowedURL
from flask_download import HTTPFile
from flask_download import make_download_blueprint
from flask_download import ObjectDownloadView
from flask_download import StorageDownloadView
from flask_download.settings import check_allowed_hosts
from flask_download.sqlalchemy import FileColumn
from flask_download.storage._keys import _is_root
from flask_download.storage._keys import _url_path

# -- a storage folder holding the working directory ------------------------------


@pytest.fixture
def app_in_served_folder(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> pathlib.Path:
    """/srv/files/app: the application runs inside the folder it would serve."""
    served = tmp_path / "files"
    (served / "app" / "instance").mkdir(parents=True)
    (served / "app" / "instance" / "config.py").write_text("SECRET_KEY = 'x'\n")
    (served / "report.pdf").write_bytes(b"%PDF")
    monkeypatch.chdir(served / "app")
    return served


def test_a_folder_holding_the_working_directory_gets_advice_that_fits(
    app_in_served_folder: pathlib.Path,
) -> None:
    """The message ended with "Give the folder to serve as an absolute path:
    storage='file:///srv/files'": what was given. It now says what to do
    (a folder of its own, outside the application, or another working
    directory) and names the working directory it found."""
    storage = "file://" + os.fspath(app_in_served_folder)
    cwd = os.path.realpath(os.getcwd())
    for make in (
        lambda: StorageDownloadView.as_view("files", storage=storage),
        lambda: make_download_blueprint("dl", storage=storage),
        lambda: FileColumn(storage=storage),
    ):
        with pytest.raises(ConfigurationError, match="working directory") as error:
            make()
        message = str(error.value)
        assert "as an absolute path" not in message
        assert repr(cwd) in message
        assert "outside the application" in message
        assert "another one" in message


def test_a_relative_folder_keeps_its_advice(app_in_served_folder: pathlib.Path) -> None:
    with pytest.raises(ConfigurationError, match="as an absolute path"):
        StorageDownloadView.as_view("files", storage="file://files")


def test_the_working_directory_is_found_under_another_name(
    app_in_served_folder: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Paths compared as strings miss a folder named otherwise than the
    working directory's path says: another case on a case-insensitive disk
    (macOS: ``normcase`` does not fold there), a bind mount, a Windows short
    name. Here a symbolic link with ``realpath`` not resolving it stands
    for those names; the folder is the same directory (device, inode)."""
    alias = tmp_path / "alias"
    alias.symlink_to(app_in_served_folder, target_is_directory=True)
    monkeypatch.setattr(os.path, "realpath", lambda path, **kwargs: path)
    with pytest.raises(ConfigurationError, match="working directory"):
        StorageDownloadView.as_view("files", storage="file://" + os.fspath(alias))
    # A folder inside the working directory, or beside it, stays allowed.
    inside = pathlib.Path(os.getcwd()) / "public"
    inside.mkdir()
    StorageDownloadView.as_view("inside", storage="file://" + os.fspath(inside))
    beside = tmp_path / "beside"
    beside.mkdir()
    StorageDownloadView.as_view("beside", storage="file://" + os.fspath(beside))


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        ("file:///C:/srv/files", "C:/srv/files"),
        ("local:///D:/files", "D:/files"),
        ("simplecache::file:///C:/srv", "C:/srv"),
        ("file:/C:/srv", "C:/srv"),
    ],
)
def test_a_windows_drive_url_is_the_drive_folder(
    monkeypatch: pytest.MonkeyPatch, url: str, folder: str
) -> None:
    """fsspec reads ``file:///C:/srv`` as ``C:/srv`` on Windows; taken as
    ``/C:/srv``, the folder never held the working directory there, so
    ``file:///C:/project`` run from C:\\project was not refused."""
    with monkeypatch.context() as patch:
        patch.setattr(os, "name", "nt")
        found = _url_path(url)
    assert found == folder  # (pytest's report needs the real os.name)


# -- ObjectDownloadView: refused URL values stay 404s ------------------------------


class _Base(DeclarativeBase):
    pass


class Code(sa.TypeDecorator[str]):
    """Codes are ``c<digits>``; anything else is refused before any SQL."""

    impl = sa.String(20)
    cache_ok = True

    def process_bind_param(self, value: t.Any, dialect: t.Any) -> t.Any:
        if isinstance(value, str) and not re.fullmatch(r"c[0-9]{1,9}", value):
            raise ValueError(value)
        return value


db = SQLAlchemy(model_class=_Base)


class CodedDoc(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "review10_b_coded"
    __bind_key__ = "files"
    id: sa.Column[str] = sa.Column(Code(), primary_key=True)
    code: sa.Column[str] = sa.Column(Code())
    content: sa.Column[bytes] = sa.Column(sa.LargeBinary)


class CodedView(ObjectDownloadView):
    model = CodedDoc
    file_field = "content"
    slug_field = "code"


class InstanceView(CodedView):
    load_instance = True


class LegacyQueryView(CodedView):
    def get_query(self) -> t.Any:
        return CodedDoc.query.filter(CodedDoc.content.is_not(None))


class SelectView(CodedView):
    def get_query(self) -> t.Any:
        return sa.select(CodedDoc).where(CodedDoc.content.is_not(None))


@pytest.fixture
def coded_app(tmp_path: pathlib.Path) -> t.Iterator[Flask]:
    app = Flask("review10_b")
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    app.config["SQLALCHEMY_BINDS"] = {"files": f"sqlite:///{tmp_path / 'b.db'}"}
    db.init_app(app)
    for name, view in [
        ("rows", CodedView),
        ("instance", InstanceView),
        ("legacy", LegacyQueryView),
        ("select", SelectView),
    ]:
        app.add_url_rule(f"/{name}/id/<id>", view_func=view.as_view(f"{name}_id"))
        app.add_url_rule(f"/{name}/slug/<slug>", view_func=view.as_view(f"{name}_slug"))
    with app.app_context():
        db.create_all()
        db.session.add(CodedDoc(id="c1", code="c1", content=b"coded"))
        db.session.commit()
    yield app
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def _status(app: Flask, url: str) -> int:
    with app.test_client().get(url) as rv:
        rv.get_data()
        return rv.status_code


@pytest.mark.parametrize("view", ["rows", "instance", "legacy", "select"])
@pytest.mark.parametrize("by", ["id", "slug"])
def test_a_refused_url_value_is_404_on_every_lookup_path(
    coded_app: Flask, view: str, by: str
) -> None:
    assert _status(coded_app, f"/{view}/{by}/c1") == 200
    assert _status(coded_app, f"/{view}/{by}/c2") == 404
    assert _status(coded_app, f"/{view}/{by}/nope") == 404


def test_a_refused_url_value_is_404_with_a_session_bound_to_a_connection(
    tmp_path: pathlib.Path,
) -> None:
    """The test-suite pattern: every session joins one connection."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    _Base.metadata.create_all(engine, tables=[CodedDoc.__table__])
    with engine.connect() as connection:
        session = Session(bind=connection)
        session.add(CodedDoc(id="c1", code="c1", content=b"coded"))
        session.flush()

        class ConnectionView(CodedView):
            def get_session(self) -> t.Any:
                return session

        app = Flask("review10_b_connection")
        app.add_url_rule("/<slug>", view_func=ConnectionView.as_view("coded"))
        assert _status(app, "/c1") == 200
        assert _status(app, "/nope") == 404
        session.close()
    engine.dispose()


# -- HTTPFile: allowed_hosts checked once ------------------------------------------


def test_httpfile_checks_an_allowed_hosts_list_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every HTTPFile (one per request, one per resumed read) ran the whole
    check of its list again: about 5 microseconds an entry on each request,
    for the list its view or the settings checked already."""
    calls: list[t.Any] = []

    def counting(value: t.Any, setting: str) -> t.Any:
        calls.append(value)
        return check_allowed_hosts(value, setting)

    monkeypatch.setattr(http_file, "check_allowed_hosts", counting)
    monkeypatch.setattr(http_file, "_CHECKED_HOSTS", set(), raising=False)
    # As the settings normalise them: "::1" without brackets, lowercase IDNs.
    hosts = ["cdn.example.com", ".example.org", "::1", "bücher.example", "10.0.0.7"]
    for _ in range(3):
        with pytest.raises(DisallowedURL):
            HTTPFile("http://elsewhere.example/a.txt", allowed_hosts=hosts)
        with pytest.raises(DisallowedURL):
            HTTPFile("http://elsewhere.example/a.txt", allowed_hosts=tuple(hosts))
    assert len(calls) == 1
    # A list that changes is checked again; a bad one is refused every time.
    hosts.append("b.example")
    with pytest.raises(DisallowedURL):
        HTTPFile("http://elsewhere.example/a.txt", allowed_hosts=hosts)
    assert len(calls) == 2
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="port"):
            HTTPFile("http://a.example/", allowed_hosts=["a.example:8080"])
    assert len(calls) == 4


def test_httpfile_refuses_an_unhashable_entry_with_the_usual_message() -> None:
    with pytest.raises(ConfigurationError, match="list of host names"):
        HTTPFile("http://a.example/", allowed_hosts=[["a.example"]])  # type: ignore[list-item]


# -- allowed hosts: networks ---------------------------------------------------------


@pytest.mark.parametrize("entry", ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"])
def test_a_network_entry_is_named_a_network(entry: str) -> None:
    """It said "use '10.0.0.0'": one address of the network, which
    allows none of the hosts meant."""
    with pytest.raises(ConfigurationError, match="is a network") as error:
        check_allowed_hosts([entry], "DOWNLOAD_HTTP_ALLOWED_HOSTS")
    assert "use '" not in str(error.value)


@pytest.mark.parametrize("entry", ["[]", ".", "..", "-", "_"])
def test_an_entry_naming_no_host_is_refused_by_the_settings(entry: str) -> None:
    """``"[]"`` (an empty list written as a string) passed the settings'
    check and became ``""``, which every HTTPFile then refused on each
    request (a 500 saying "must be a list of host names"); ``"."`` or
    ``"-"`` silently matched nothing."""
    with pytest.raises(ConfigurationError, match="names no host"):
        check_allowed_hosts(entry, "DOWNLOAD_HTTP_ALLOWED_HOSTS")
    assert check_allowed_hosts(["[::1]", "::", ".a.example"], "x") == (
        "::1",
        "::",
        ".a.example",
    )


@pytest.mark.parametrize(
    ("folder", "root"),
    [
        ("//fileserver/downloads", False),
        ("//fileserver/downloads/", False),
        ("\\\\fileserver\\downloads", False),
        ("C:/", True),
        ("/C:/", True),
        ("C:\\", True),
        ("\\\\?\\C:\\", True),
        ("/", True),
        ("C:/srv", False),
    ],
)
def test_a_windows_network_share_is_not_the_root_of_the_machine(
    monkeypatch: pytest.MonkeyPatch, folder: str, root: bool
) -> None:
    """``file:////fileserver/downloads`` (a share made for the downloads)
    was refused as "the root of the filesystem: every file of the machine
    would be served"."""
    with monkeypatch.context() as patch:
        patch.setattr(os, "name", "nt")
        found = _is_root(folder)
    assert found is root
