"""Configuration mistakes fail at configuration time with a message that says
what to fix (issue 14): roots, ``as_view`` keywords, model fields, URL
variables and allowed hosts."""

from __future__ import annotations

import collections.abc as cabc
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import FlaskDownload
from flask_download import HTTPDownloadView
from flask_download import HTTPFile
from flask_download import ObjectDownloadView
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView
from flask_download import VirtualFile

# -- DOWNLOAD_ROOT and view roots ---------------------------------------------


def _app(tmp_path: pathlib.Path, **config: t.Any) -> Flask:
    app = Flask(__name__, root_path=str(tmp_path))
    app.config.update(TESTING=True, **config)
    return app


def test_init_app_refuses_a_missing_download_root(tmp_path: pathlib.Path) -> None:
    app = _app(tmp_path, DOWNLOAD_ROOT="files")
    with pytest.raises(ConfigurationError) as info:
        FlaskDownload(app)
    message = str(info.value)
    assert "DOWNLOAD_ROOT" in message
    assert str(tmp_path / "files") in message  # resolved against root_path
    assert "does not exist" in message
    assert "download" not in app.extensions


def test_init_app_refuses_a_file_as_download_root(tmp_path: pathlib.Path) -> None:
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    app = _app(tmp_path, DOWNLOAD_ROOT=str(tmp_path / "passwd"))
    with pytest.raises(ConfigurationError, match="is not a directory"):
        FlaskDownload(app)


def test_relative_download_root_is_resolved_against_root_path(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "app" / "files").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no "files" in the working directory
    app = _app(tmp_path / "app", DOWNLOAD_ROOT="files")
    download = FlaskDownload(app)
    assert download.settings(app).root == str(tmp_path / "app" / "files")


def test_argument_root_is_checked_at_init_app(tmp_path: pathlib.Path) -> None:
    download = FlaskDownload(root="missing")  # no app yet: nothing to check
    with pytest.raises(ConfigurationError, match="DOWNLOAD_ROOT"):
        download.init_app(_app(tmp_path))


def test_view_root_is_checked_at_first_use(tmp_path: pathlib.Path) -> None:
    app = _app(tmp_path)
    app.add_url_rule(
        "/f/<path:path>",
        view_func=PathDownloadView.as_view("f", root="no-such-dir"),
    )
    with app.test_client() as client, pytest.raises(ConfigurationError) as info:
        client.get("/f/a.txt")
    assert "PathDownloadView.root" in str(info.value)
    assert str(tmp_path / "no-such-dir") in str(info.value)


def test_download_root_without_init_app_is_checked_at_first_use(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "a-file").write_bytes(b"x")
    app = _app(tmp_path, DOWNLOAD_ROOT="a-file")
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client() as client, pytest.raises(ConfigurationError) as info:
        client.get("/f/a.txt")
    assert "DOWNLOAD_ROOT" in str(info.value)
    assert "is not a directory" in str(info.value)


def test_root_removed_after_first_use_answers_404(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (root / "a.txt").write_bytes(b"a")
    app = _app(tmp_path, DOWNLOAD_ROOT="files")
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client() as client:
        with client.get("/f/a.txt") as rv:
            assert rv.status_code == 200
        (root / "a.txt").unlink()
        root.rmdir()
        with client.get("/f/a.txt") as rv:
            assert rv.status_code == 404


# -- as_view keywords -----------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("atachment", "Did you mean 'attachment'?"),
        ("basname", "Did you mean 'basename'?"),
        ("mime_type", "Did you mean 'mimetype'?"),
        ("as_attachment", "flask.send_file keyword: use 'attachment'"),
        ("download_name", "flask.send_file keyword: use 'basename'"),
        ("max_age", "flask.send_file keyword: use 'cache_max_age'"),
        ("conditional", "conditional requests are always answered"),
    ],
)
def test_as_view_suggests_the_attribute(keyword: str, expected: str) -> None:
    with pytest.raises(TypeError) as info:
        PathDownloadView.as_view("v", **{keyword: True})
    message = str(info.value)
    assert f"PathDownloadView.as_view() got the keyword {keyword!r}" in message
    assert expected in message


def test_as_view_without_close_match_gives_no_suggestion() -> None:
    with pytest.raises(TypeError) as info:
        VirtualDownloadView.as_view("v", zzzzzz=1)
    assert "Did you mean" not in str(info.value)


def test_as_view_never_suggests_a_method() -> None:
    with pytest.raises(TypeError) as info:
        VirtualDownloadView.as_view("v", get_fil=1)  # get_file is a method
    assert "get_file" not in str(info.value)


# -- ObjectDownloadView fields and URL variables -------------------------------


class Base(DeclarativeBase):
    pass


class Report(Base):
    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    document: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    filename: Mapped[str | None] = mapped_column(sa.String(100))

    @property
    def as_download(self) -> DownloadFile:
        return VirtualFile(self.document or b"", name=self.filename)


@pytest.fixture
def db_app(tmp_path: pathlib.Path) -> cabc.Iterator[Flask]:
    db = SQLAlchemy(model_class=Base)
    app = _app(tmp_path, SQLALCHEMY_DATABASE_URI="sqlite://")
    db.init_app(app)
    with app.app_context():
        db.create_all()
        db.session.add(Report(id=1, document=b"report", filename="r.txt"))
        db.session.commit()
    yield app
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


def test_default_file_field_the_model_lacks_fails_at_as_view() -> None:
    with pytest.raises(ConfigurationError) as info:
        ObjectDownloadView.as_view("report", model=Report)
    message = str(info.value)
    assert "ObjectDownloadView.file_field is 'file'" in message
    assert "Report has no attribute 'file'" in message
    assert "Report maps: id, document, filename, as_download." in message


def test_misspelt_field_gets_a_suggestion() -> None:
    class ReportView(ObjectDownloadView):
        model = Report
        file_field = "document"
        basename_field = "filenme"

    with pytest.raises(ConfigurationError) as info:
        ReportView.as_view("report")
    message = str(info.value)
    assert "ReportView.basename_field is 'filenme'" in message
    assert "Did you mean 'filename'?" in message
    assert "or None." in message


def test_field_given_to_as_view_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="size_field is 'size'"):
        ObjectDownloadView.as_view(
            "report", model=Report, file_field="document", size_field="size"
        )


def test_property_is_a_valid_file_field(db_app: Flask) -> None:
    db_app.add_url_rule(
        "/r/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "r", model=Report, file_field="as_download"
        ),
    )
    with db_app.test_client() as client, client.get("/r/1") as rv:
        assert rv.status_code == 200
        assert rv.data == b"report"


def test_view_reading_the_row_its_own_way_is_not_checked() -> None:
    class CustomView(ObjectDownloadView):
        model = Report  # no "file" column: this view does not use file_field

        def file_from_object(self, obj: t.Any) -> DownloadFile:
            return VirtualFile(obj.document, name="custom.bin")

    assert callable(CustomView.as_view("custom"))


def test_model_set_later_is_not_checked_at_as_view() -> None:
    assert callable(ObjectDownloadView.as_view("later"))


def test_pk_route_message_names_pk_url_kwarg(db_app: Flask) -> None:
    db_app.add_url_rule(
        "/r/<int:pk>",
        view_func=ObjectDownloadView.as_view("r", model=Report, file_field="document"),
    )
    with db_app.test_client() as client, pytest.raises(ConfigurationError) as info:
        client.get("/r/1")
    message = str(info.value)
    assert "the URL rule has 'pk'" in message
    assert "set pk_url_kwarg='pk'" in message


def test_pk_url_kwarg_fixes_a_pk_route(db_app: Flask) -> None:
    db_app.add_url_rule(
        "/r/<int:pk>",
        view_func=ObjectDownloadView.as_view(
            "r", model=Report, file_field="document", pk_url_kwarg="pk"
        ),
    )
    with db_app.test_client() as client, client.get("/r/1") as rv:
        assert rv.status_code == 200
        assert rv.data == b"report"


def test_missing_slug_field_is_a_configuration_error(db_app: Flask) -> None:
    db_app.add_url_rule(
        "/r/<slug>",
        view_func=ObjectDownloadView.as_view("r", model=Report, file_field="document"),
    )
    with db_app.test_client() as client, pytest.raises(ConfigurationError) as info:
        client.get("/r/annual")
    assert "slug_field is 'slug'" in str(info.value)
    assert "Report maps: id, document, filename" in str(info.value)


# -- allowed hosts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "problem", "fix"),
    [
        ("localhost:8089", "has a port", "'localhost'"),
        ("https://cdn.example.com", "has a scheme", "'cdn.example.com'"),
        ("http://user@cdn.example.com:8443/x", "has a scheme", "'cdn.example.com'"),
        ("[::1]:8080", "has a port", "'[::1]'"),
        ("cdn.example.com/files", "is not a host name", "'cdn.example.com'"),
    ],
)
def test_allowed_hosts_config_refuses_ports_and_schemes(
    tmp_path: pathlib.Path, entry: str, problem: str, fix: str
) -> None:
    app = _app(tmp_path, DOWNLOAD_HTTP_ALLOWED_HOSTS=["example.org", entry])
    with pytest.raises(ConfigurationError) as info:
        FlaskDownload(app)
    message = str(info.value)
    assert f"DOWNLOAD_HTTP_ALLOWED_HOSTS entry {entry!r} {problem}" in message
    assert f"use {fix}" in message


@pytest.mark.parametrize(
    ("entry", "stored"),
    [
        ("cdn.example.com", "cdn.example.com"),
        (".example.com", ".example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),  # compared with the URL's host name, which has no []
        ("LOCALHOST", "localhost"),
    ],
)
def test_allowed_hosts_accepts_names_and_addresses(
    tmp_path: pathlib.Path, entry: str, stored: str
) -> None:
    app = _app(tmp_path, DOWNLOAD_HTTP_ALLOWED_HOSTS=[entry])
    assert FlaskDownload(app).settings(app).http_allowed_hosts == (stored,)


def test_view_allowed_hosts_are_checked_at_as_view() -> None:
    with pytest.raises(ConfigurationError) as info:
        HTTPDownloadView.as_view(
            "remote", url="http://localhost:8089/a", allowed_hosts=["localhost:8089"]
        )
    assert "HTTPDownloadView.allowed_hosts entry 'localhost:8089' has a port" in str(
        info.value
    )


def test_class_allowed_hosts_are_checked_at_as_view() -> None:
    class Remote(HTTPDownloadView):
        url = "https://cdn.example.com/a"
        allowed_hosts = ("https://cdn.example.com",)

    with pytest.raises(ConfigurationError, match="Remote.allowed_hosts"):
        Remote.as_view("remote")


def test_http_file_refuses_a_port_before_connecting() -> None:
    # 9 is the discard port: nothing is sent, the entry is refused first.
    with pytest.raises(ConfigurationError, match="has a port"):
        HTTPFile("http://127.0.0.1:9/a", allowed_hosts=["127.0.0.1:9"])


def test_bracketed_ipv6_entry_matches_its_address() -> None:
    from flask_download.http import _vet

    target = _vet("http://[::1]:9/a", allowed_hosts=["[::1]"])
    assert (target.host, target.port) == ("::1", 9)


# -- empty roots, bounds, view attributes (outside review) ---------------------


def test_empty_download_root_is_refused_not_the_app_directory(
    tmp_path: pathlib.Path,
) -> None:
    """``""`` joined to ``root_path`` is the application's own directory: its
    source code would be served."""
    (tmp_path / "app.py").write_text("SECRET = 1\n")
    app = _app(tmp_path, DOWNLOAD_ROOT="")
    with pytest.raises(ConfigurationError, match="DOWNLOAD_ROOT is an empty string"):
        FlaskDownload(app)
    # Without init_app: at the first request, never a 200 with the source.
    app = _app(tmp_path, DOWNLOAD_ROOT="")
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client() as client, pytest.raises(ConfigurationError):
        client.get("/f/app.py")


def test_empty_view_root_is_refused_at_as_view() -> None:
    for empty in ("", b""):
        with pytest.raises(
            ConfigurationError, match="PathDownloadView.root is an empty"
        ):
            PathDownloadView.as_view("f", root=empty)

    class Empty(PathDownloadView):
        root = pathlib.PurePath("")  # "." is not empty: only a literal ""

    Empty.as_view("ok")


def test_empty_file_column_root_is_refused(tmp_path: pathlib.Path) -> None:
    from flask_download.sqlalchemy import resolve_root

    app = _app(tmp_path)
    with app.app_context(), pytest.raises(ConfigurationError, match="empty string"):
        resolve_root("")


@pytest.mark.parametrize("value", [10**30, 3_155_760_001])
def test_signed_max_age_has_an_upper_bound(tmp_path: pathlib.Path, value: int) -> None:
    """A default lifetime past the year 9999 made links every check refused."""
    with pytest.raises(ConfigurationError, match="DOWNLOAD_SIGNED_MAX_AGE"):
        FlaskDownload(_app(tmp_path, DOWNLOAD_SIGNED_MAX_AGE=value))
    FlaskDownload(_app(tmp_path, DOWNLOAD_SIGNED_MAX_AGE=3_155_760_000))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0])
def test_http_timeout_must_be_finite_and_positive(
    tmp_path: pathlib.Path, value: float
) -> None:
    with pytest.raises(ConfigurationError, match="DOWNLOAD_HTTP_TIMEOUT"):
        FlaskDownload(_app(tmp_path, DOWNLOAD_HTTP_TIMEOUT=value))
    with pytest.raises(ConfigurationError, match="HTTPDownloadView.timeout"):
        HTTPDownloadView.as_view("h", url="https://example.com/x", timeout=value)


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("chunk_size", 0),
        ("chunk_size", -1),
        ("chunk_size", "64k"),
        ("max_ranges", 0),
        ("cache_max_age", -5),
        ("cache_max_age", 1.5),
        ("cache_max_age", True),
    ],
)
def test_view_attributes_standing_in_for_settings_are_checked(
    attribute: str, value: t.Any
) -> None:
    """``chunk_size=0`` sent an empty body under a Content-Length; a negative
    ``cache_max_age`` went out as ``max-age=-5``."""
    with pytest.raises(ConfigurationError, match=f"PathDownloadView.{attribute}"):
        PathDownloadView.as_view("f", path="x", **{attribute: value})

    class Bad(PathDownloadView):
        path = "x"

    setattr(Bad, attribute, value)
    with pytest.raises(ConfigurationError, match=f"Bad.{attribute}"):
        Bad.as_view("bad")


def test_valid_view_attributes_pass() -> None:
    PathDownloadView.as_view("f", path="x", chunk_size=1, max_ranges=1, cache_max_age=0)
    HTTPDownloadView.as_view("h", url="https://example.com/x", timeout=0.5)


@pytest.mark.parametrize(
    "content",
    [iter([b"a"]), (chunk for chunk in [b"a"])],
    ids=["iterator", "generator"],
)
def test_virtual_content_used_up_by_one_request_is_refused(content: t.Any) -> None:
    import io

    with pytest.raises(ConfigurationError, match="callable"):
        VirtualDownloadView.as_view("v", content=content, basename="a.bin")
    with pytest.raises(ConfigurationError, match="BytesIO"):
        VirtualDownloadView.as_view("v", content=io.BytesIO(b"a"), basename="a.bin")


def test_virtual_content_callable_serves_every_request(tmp_path: pathlib.Path) -> None:
    import io

    app = _app(tmp_path)
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view(
            "v", content=lambda: io.BytesIO(b"data"), basename="d.bin"
        ),
    )
    client = app.test_client()
    for _ in range(2):
        with client.get("/v") as rv:
            assert rv.data == b"data"


def test_a_property_standing_in_for_a_setting_is_not_checked_at_as_view(
    tmp_path: pathlib.Path,
) -> None:
    """Review: the property object itself was checked and refused."""

    class Dynamic(VirtualDownloadView):
        content = b"x"
        basename = "x.bin"

        @property
        def cache_max_age(self) -> int:  # type: ignore[override]
            return 60

    app = _app(tmp_path)
    app.add_url_rule("/d", view_func=Dynamic.as_view("d"))
    with app.test_client().get("/d") as rv:
        assert rv.headers["Cache-Control"] == "max-age=60"
