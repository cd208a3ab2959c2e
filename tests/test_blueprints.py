from __future__ import annotations

import collections.abc as cabc
import functools
import os
import pathlib
import typing as t
import uuid

import fsspec
import pytest
import sqlalchemy as sa
from flask import abort
from flask import Flask
from flask import request
from flask import url_for
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.routing import BuildError

from flask_download import ConfigurationError
from flask_download import FlaskDownload
from flask_download import make_download_blueprint
from flask_download import ObjectDownloadView


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Report(Base):
    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(50), unique=True)
    file: Mapped[str | None] = mapped_column(sa.String(200))
    owner: Mapped[str] = mapped_column(sa.String(20), default="alice")


class Ticket(Base):
    __tablename__ = "ticket"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    file: Mapped[str]


@pytest.fixture
def db_app(
    app_factory: cabc.Callable[..., Flask], tmp_path: pathlib.Path
) -> cabc.Iterator[Flask]:
    app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'bp.sqlite'}")
    db.init_app(app)
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [
                Report(id=1, slug="q1", file="hello.txt"),
                Report(id=2, slug="q2", file="sub/nested.txt", owner="bob"),
                Ticket(id=uuid.UUID(int=7), file="data.bin"),
            ]
        )
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_directory_blueprint_serves_download_root(app: Flask) -> None:
    app.register_blueprint(make_download_blueprint("files", url_prefix="/files"))
    client = app.test_client()
    with app.test_request_context():
        url = url_for("files.file", path="sub/nested.txt")
    assert url == "/files/sub/nested.txt"
    with client.get(url) as rv:
        assert rv.data == b"nested\n"
    with client.get("/files/../secret.txt") as rv:
        assert rv.status_code == 404


def test_directory_blueprint_with_its_own_root(
    app: Flask, download_root: pathlib.Path
) -> None:
    app.register_blueprint(
        make_download_blueprint("sub", root=download_root / "sub", url_prefix="/s")
    )
    with app.test_client().get("/s/nested.txt") as rv:
        assert rv.data == b"nested\n"


def test_model_blueprint_serves_rows_by_id_and_slug(db_app: Flask) -> None:
    db_app.register_blueprint(
        make_download_blueprint("reports", model=Report, url_prefix="/dl")
    )
    client = db_app.test_client()
    with db_app.test_request_context():
        by_id = url_for("reports.object", id=1)
        by_slug = url_for("reports.object_by_slug", slug="q2")
        with pytest.raises(BuildError):
            url_for("reports.file", path="hello.txt")
    assert (by_id, by_slug) == ("/dl/report/1", "/dl/report/by-slug/q2")
    with client.get(by_id) as rv:
        assert rv.data == b"Hello, world!\n"
    with client.get(by_slug) as rv:
        assert rv.data == b"nested\n"
    with client.get("/dl/report/3") as rv, client.get(f"/dl/report/{2**63}") as big:
        assert rv.status_code == big.status_code == 404


def test_blueprint_with_root_and_model_serves_both(
    db_app: Flask, download_root: pathlib.Path
) -> None:
    db_app.register_blueprint(
        make_download_blueprint("both", root=download_root, model=Report)
    )
    client = db_app.test_client()
    with db_app.test_request_context():
        assert url_for("both.file", path="data.bin") == "/files/data.bin"
        assert url_for("both.object", id=2) == "/report/2"
    with client.get("/files/data.bin") as rv:
        assert len(rv.data) == 1024
    with client.get("/report/2") as rv:
        assert rv.data == b"nested\n"


def test_uuid_primary_key_gets_a_uuid_route(db_app: Flask) -> None:
    db_app.register_blueprint(make_download_blueprint("tickets", model=Ticket))
    client = db_app.test_client()
    with db_app.test_request_context():
        url = url_for("tickets.object", id=uuid.UUID(int=7))
        with pytest.raises(BuildError):
            url_for("tickets.object_by_slug", slug="x")  # Ticket has no slug
    with client.get(url) as rv:
        assert len(rv.data) == 1024
    with client.get("/ticket/not-a-uuid") as rv:
        assert rv.status_code == 404


def test_options_and_custom_view_class_apply(db_app: Flask) -> None:
    class AliceOnly(ObjectDownloadView):
        def get_query(self) -> sa.Select[t.Any]:
            return super().get_query().where(Report.owner == "alice")

    db_app.register_blueprint(
        make_download_blueprint(
            "mine",
            model=Report,
            model_rule="/mine",
            object_view=AliceOnly,
            options={"attachment": False},
            object_options={"cache_control": "private, max-age=5"},
        )
    )
    client = db_app.test_client()
    with client.get("/mine/1") as rv:
        assert rv.headers["Content-Disposition"] == 'inline; filename="hello.txt"'
        assert rv.headers["Cache-Control"] == "private, max-age=5"
    with client.get("/mine/2") as rv:
        assert rv.status_code == 404


def test_decorators_wrap_every_view(db_app: Flask) -> None:
    def token_required(view: t.Any) -> t.Any:
        @functools.wraps(view)
        def wrapper(**kwargs: t.Any) -> t.Any:
            if request.headers.get("X-Token") != "s3cret":
                abort(403)
            return view(**kwargs)

        return wrapper

    db_app.register_blueprint(
        make_download_blueprint(
            "guarded", model=Report, files=True, decorators=[token_required]
        )
    )
    client = db_app.test_client()
    for url in ("/files/hello.txt", "/report/1", "/report/by-slug/q1"):
        with client.get(url) as denied:
            assert denied.status_code == 403
        with client.get(url, headers={"X-Token": "s3cret"}) as rv:
            assert rv.data == b"Hello, world!\n"


def test_storage_blueprint(app: Flask) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/bp-store/reports/a.txt", b"stored")
    app.register_blueprint(
        make_download_blueprint("store", storage="memory://bp-store", url_prefix="/m")
    )
    client = app.test_client()
    with app.test_request_context():
        url = url_for("store.file", path="reports/a.txt")
    with client.get(url) as rv:
        assert rv.data == b"stored"
    with client.get("/m/../bp-store/reports/a.txt") as rv:
        assert rv.status_code == 404


def test_one_blueprint_on_two_apps_keeps_each_apps_settings(
    tmp_path: pathlib.Path,
) -> None:
    """A blueprint made at import time works in every app it is registered on."""
    bp = make_download_blueprint("shared")
    apps = []
    max_ages = {"one": 10, "two": 20}
    for name in max_ages:
        root = tmp_path / name
        root.mkdir()
        (root / "which.txt").write_text(name)
        app = Flask(name)
        app.config["DOWNLOAD_CACHE_MAX_AGE"] = max_ages[name]
        FlaskDownload(app, root=root)
        app.register_blueprint(bp)
        apps.append(app)
    for app, name in zip(apps, max_ages, strict=True):
        with app.test_client().get("/which.txt") as rv:
            assert rv.data == name.encode()
            assert rv.headers["Cache-Control"] == f"max-age={max_ages[name]}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": None, "files": False}, "nothing to serve"),
        ({"root": "a", "storage": "memory://"}, "not both"),
        ({"files_rule": "/files"}, "no '<path:path>' variable"),
        ({"files_rule": "/<a>/<path:b>"}, "no '<path:path>' variable"),
        (
            {"files_rule": "/<path:path>", "file_options": {"path_url_kwarg": "p"}},
            "no '<path:p>' variable",
        ),
        ({"files_rule": "/<path:path"}, "Invalid files_rule"),
    ],
    ids=[
        "nothing",
        "root-and-storage",
        "no-variable",
        "two-variables",
        "other-variable",
        "malformed",
    ],
)
def test_bad_arguments_are_configuration_errors(
    kwargs: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_download_blueprint("bad", **kwargs)


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="atachment"):
        make_download_blueprint("typo", options={"atachment": False})


def test_blueprint_options_reach_the_blueprint() -> None:
    bp = make_download_blueprint(
        "sub", import_name=__name__, url_prefix="/x", subdomain="files"
    )
    assert (bp.name, bp.import_name, bp.url_prefix, bp.subdomain) == (
        "sub",
        __name__,
        "/x",
        "files",
    )
    assert os.path.isdir(bp.root_path)


@pytest.mark.parametrize(
    ("kwargs", "url"),
    [
        ({"file_options": {"path_url_kwarg": "name"}}, "/dl/sub/nested.txt"),
        ({"options": {"path_url_kwarg": "name"}}, "/dl/sub/nested.txt"),
        ({"files_rule": "/<path:name>"}, "/dl/sub/nested.txt"),
        ({"files_rule": "/get/<name>"}, "/dl/get/nested.txt"),
        (
            {
                "files_rule": "/f/<path:name>",
                "file_options": {"path_url_kwarg": "name"},
            },
            "/dl/f/sub/nested.txt",
        ),
    ],
    ids=["file-options", "options", "rule", "string-converter", "both"],
)
def test_path_url_kwarg_and_files_rule_agree(
    app: Flask, download_root: pathlib.Path, kwargs: dict[str, t.Any], url: str
) -> None:
    """Review: path_url_kwarg was accepted but the rule kept <path:path> (500)."""
    root = download_root / "sub" if "get" in url else download_root
    app.register_blueprint(
        make_download_blueprint("dl", root=root, url_prefix="/dl", **kwargs)
    )
    name = url.rsplit("/", 2)[-1] if "get" in url else "sub/nested.txt"
    with app.test_request_context():
        assert url_for("dl.file", name=name) == url
    with app.test_client().get(url) as rv:
        assert rv.status_code == 200
        assert rv.data == b"nested\n"


def test_default_file_route_does_not_overlap_the_model_routes(
    db_app: Flask, download_root: pathlib.Path
) -> None:
    """Review: url_for("d.file", path="report/1") built the model's /report/1."""
    (download_root / "report").mkdir()
    (download_root / "report" / "1").write_bytes(b"the file named report/1")
    db_app.register_blueprint(
        make_download_blueprint("d", root=download_root, model=Report)
    )
    client = db_app.test_client()
    with db_app.test_request_context():
        file_url = url_for("d.file", path="report/1")
        row_url = url_for("d.object", id=1)
    assert file_url != row_url
    with client.get(file_url) as rv:
        assert rv.data == b"the file named report/1"
    with client.get(row_url) as rv:
        assert rv.data == b"Hello, world!\n"


@pytest.mark.parametrize(
    ("files_rule", "model_rule"),
    [
        ("/<path:path>", None),
        ("/report/<path:path>", None),
        ("/report/by-slug/<path:path>", None),
        ("/files/<path:path>", "/files"),
        ("/files/<path:path>", "/<lang>/docs"),
        ("/<lang>/files/<path:path>", "/docs"),
    ],
    ids=["catch-all", "under-model", "under-slug", "same-prefix", "model-var", "var"],
)
def test_overlapping_routes_are_refused(
    files_rule: str, model_rule: str | None
) -> None:
    with pytest.raises(ConfigurationError, match="overlaps the model routes"):
        make_download_blueprint(
            "o", model=Report, files=True, files_rule=files_rule, model_rule=model_rule
        )


@pytest.mark.parametrize(
    ("files_rule", "model_rule"),
    [
        ("/files/<path:path>", None),
        ("/files/<path:path>", "/"),
        ("/report/x/<path:path>", None),
        ("/report/by-slug/x/<path:path>", None),
        ("/docs/<path:path>", "/rows"),
    ],
    ids=["default", "model-at-root", "below-id", "below-slug", "apart"],
)
def test_routes_that_cannot_overlap_are_accepted(
    db_app: Flask, download_root: pathlib.Path, files_rule: str, model_rule: str | None
) -> None:
    bp = make_download_blueprint(
        "ok", model=Report, files=True, files_rule=files_rule, model_rule=model_rule
    )
    db_app.register_blueprint(bp)
    client = db_app.test_client()
    with db_app.test_request_context():
        urls = [
            (url_for("ok.file", path="hello.txt"), b"Hello, world!\n"),
            (url_for("ok.object", id=2), b"nested\n"),
            (url_for("ok.object_by_slug", slug="q1"), b"Hello, world!\n"),
        ]
    for url, content in urls:
        with client.get(url) as rv:
            assert rv.data == content, url
