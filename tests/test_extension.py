from __future__ import annotations

import os
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import ConfigurationError
from flask_download import DEFAULTS
from flask_download import DownloadError
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView

#: The config keys DESIGN.md section 4 names.
DESIGN_KEYS = {
    "DOWNLOAD_ROOT",
    "DOWNLOAD_CHUNK_SIZE",
    "DOWNLOAD_MAX_RANGES",
    "DOWNLOAD_CACHE_MAX_AGE",
    "DOWNLOAD_ACCEL",
    "DOWNLOAD_ACCEL_RULES",
    "DOWNLOAD_HTTP_ALLOWED_HOSTS",
    "DOWNLOAD_HTTP_TIMEOUT",
    "DOWNLOAD_SIGNED_MAX_AGE",
}

CONTENT = bytes(range(256)) * 400  # 100 KiB: more than one default chunk
THREE_RANGES = "bytes=0-9,100-109,200-209"

#: Made at import time, used by several apps.
SHARED_VIEW = VirtualDownloadView.as_view(
    "shared", content=CONTENT, basename="shared.bin"
)

#: An extension made at import time, for app factories.
download = FlaskDownload()


def make_app(tmp_path: pathlib.Path, name: str = "ext_app", **config: t.Any) -> Flask:
    app = Flask(name, root_path=os.fspath(tmp_path))
    app.config.update(TESTING=True)
    app.config.update(config)
    return app


def create_app(tmp_path: pathlib.Path, **config: t.Any) -> Flask:
    """An app factory using the module-level extension."""
    app = make_app(tmp_path, **config)
    download.init_app(app)
    app.add_url_rule("/shared", view_func=SHARED_VIEW)
    return app


def first_chunk(app: Flask, url: str, **kwargs: t.Any) -> bytes:
    with app.test_client().get(url, buffered=False, **kwargs) as rv:
        assert rv.status_code == 200
        return next(iter(rv.response))  # type: ignore[no-any-return]


# -- registration -----------------------------------------------------------


def test_extension_with_app(tmp_path: pathlib.Path) -> None:
    app = make_app(tmp_path)
    ext = FlaskDownload(app)
    assert app.extensions["download"] is ext
    assert ext.settings(app).chunk_size == DEFAULTS["DOWNLOAD_CHUNK_SIZE"]


def test_init_app_in_factory(tmp_path: pathlib.Path) -> None:
    app = create_app(tmp_path, DOWNLOAD_CACHE_MAX_AGE=30)
    assert app.extensions["download"] is download
    with app.app_context():
        assert download.settings().cache_max_age == 30
    with app.test_client().get("/shared") as rv:
        assert rv.status_code == 200
        assert rv.data == CONTENT
        assert rv.headers["Cache-Control"] == "max-age=30"


def test_double_init_app_is_runtime_error(tmp_path: pathlib.Path) -> None:
    app = make_app(tmp_path)
    ext = FlaskDownload(app)
    with pytest.raises(RuntimeError):
        ext.init_app(app)
    with pytest.raises(RuntimeError):
        FlaskDownload().init_app(app)
    assert app.extensions["download"] is ext


def test_settings_of_unregistered_app_is_runtime_error(
    tmp_path: pathlib.Path,
) -> None:
    ext = FlaskDownload()
    app = make_app(tmp_path)
    with pytest.raises(RuntimeError, match="init_app"):
        ext.settings(app)
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        ext.settings()


def test_settings_of_app_registered_with_other_instance(
    tmp_path: pathlib.Path,
) -> None:
    app = make_app(tmp_path)
    FlaskDownload(app)
    with pytest.raises(RuntimeError, match="init_app"):
        FlaskDownload().settings(app)


def test_defaults_have_every_design_key() -> None:
    assert set(DEFAULTS) >= DESIGN_KEYS
    assert DEFAULTS["DOWNLOAD_CHUNK_SIZE"] == 64 * 1024
    assert DEFAULTS["DOWNLOAD_MAX_RANGES"] == 50
    assert DEFAULTS["DOWNLOAD_ACCEL"] is None


# -- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DOWNLOAD_CHUNK_SIZE", 0),
        ("DOWNLOAD_CHUNK_SIZE", -1),
        ("DOWNLOAD_CHUNK_SIZE", "x"),
        ("DOWNLOAD_MAX_RANGES", -1),
        ("DOWNLOAD_MAX_RANGES", "many"),
        ("DOWNLOAD_CACHE_MAX_AGE", -5),
        ("DOWNLOAD_CACHE_MAX_AGE", "soon"),
        ("DOWNLOAD_ACCEL", "iis"),
        ("DOWNLOAD_HTTP_TIMEOUT", 0),
        ("DOWNLOAD_HTTP_TIMEOUT", -3.5),
        ("DOWNLOAD_SIGNED_MAX_AGE", 0),
    ],
    ids=[
        "chunk-size-zero",
        "chunk-size-negative",
        "chunk-size-str",
        "max-ranges-negative",
        "max-ranges-str",
        "cache-max-age-negative",
        "cache-max-age-str",
        "accel-unknown",
        "timeout-zero",
        "timeout-negative",
        "signed-max-age-zero",
    ],
)
def test_bad_config_fails_at_init_app(
    tmp_path: pathlib.Path, key: str, value: t.Any
) -> None:
    app = make_app(tmp_path, **{key: value})
    ext = FlaskDownload()
    with pytest.raises(ConfigurationError, match=key) as info:
        ext.init_app(app)
    assert isinstance(info.value, DownloadError)
    assert "download" not in app.extensions


@pytest.mark.parametrize("accel", [None, "nginx", "apache", "lighttpd"])
def test_accel_backends_accepted(tmp_path: pathlib.Path, accel: str | None) -> None:
    app = make_app(tmp_path, DOWNLOAD_ACCEL=accel)
    ext = FlaskDownload(app)
    assert ext.settings(app).accel == accel


# -- precedence: view attribute > app.config > argument > default -----------


@pytest.mark.parametrize(
    ("argument", "config", "attribute", "expected"),
    [
        (None, None, None, None),
        (10, None, None, 10),
        (10, 20, None, 20),
        (10, 20, 30, 30),
        (None, None, 30, 30),
        (None, 20, None, 20),
        (10, 0, None, 0),
    ],
    ids=[
        "default",
        "argument",
        "config-over-argument",
        "attribute-over-all",
        "attribute-only",
        "config-only",
        "config-zero",
    ],
)
def test_cache_max_age_precedence(
    tmp_path: pathlib.Path,
    argument: int | None,
    config: int | None,
    attribute: int | None,
    expected: int | None,
) -> None:
    app = make_app(tmp_path)
    if config is not None:
        app.config["DOWNLOAD_CACHE_MAX_AGE"] = config
    FlaskDownload(app, cache_max_age=argument)
    view = VirtualDownloadView.as_view(
        "v", content=b"data", basename="d.bin", cache_max_age=attribute
    )
    app.add_url_rule("/v", view_func=view)
    with app.test_client().get("/v") as rv:
        assert rv.status_code == 200
        cache_control = rv.headers.get("Cache-Control", "")
    if expected is None:
        default = DEFAULTS["DOWNLOAD_CACHE_MAX_AGE"]
        if default is None:
            assert "max-age" not in cache_control
        else:
            assert cache_control == f"max-age={default}"
    else:
        assert cache_control == f"max-age={expected}"


@pytest.mark.parametrize(
    ("argument", "config", "attribute", "expected"),
    [
        (None, None, None, 64 * 1024),
        (7000, None, None, 7000),
        (7000, 5000, None, 5000),
        (7000, 5000, 3000, 3000),
        (None, None, 3000, 3000),
    ],
    ids=[
        "default",
        "argument",
        "config-over-argument",
        "attribute-over-all",
        "attribute-only",
    ],
)
def test_chunk_size_precedence(
    tmp_path: pathlib.Path,
    argument: int | None,
    config: int | None,
    attribute: int | None,
    expected: int,
) -> None:
    app = make_app(tmp_path)
    if config is not None:
        app.config["DOWNLOAD_CHUNK_SIZE"] = config
    FlaskDownload(app, chunk_size=argument)
    view = VirtualDownloadView.as_view(
        "v", content=CONTENT, basename="d.bin", chunk_size=attribute
    )
    app.add_url_rule("/v", view_func=view)
    assert len(first_chunk(app, "/v")) == expected


@pytest.mark.parametrize(
    ("argument", "config", "attribute", "status"),
    [
        (None, None, None, 206),
        (2, None, None, 200),
        (2, 3, None, 206),
        (2, 3, 2, 200),
        (None, 2, 3, 206),
    ],
    ids=[
        "default",
        "argument",
        "config-over-argument",
        "attribute-over-config",
        "attribute-raises-config",
    ],
)
def test_max_ranges_precedence(
    tmp_path: pathlib.Path,
    argument: int | None,
    config: int | None,
    attribute: int | None,
    status: int,
) -> None:
    app = make_app(tmp_path)
    if config is not None:
        app.config["DOWNLOAD_MAX_RANGES"] = config
    FlaskDownload(app, max_ranges=argument)
    view = VirtualDownloadView.as_view(
        "v", content=CONTENT, basename="d.bin", max_ranges=attribute
    )
    app.add_url_rule("/v", view_func=view)
    with app.test_client().get("/v", headers={"Range": THREE_RANGES}) as rv:
        assert rv.status_code == status
        if status == 200:
            assert rv.data == CONTENT
        else:
            assert rv.mimetype == "multipart/byteranges"
            assert CONTENT[100:110] in rv.data


def test_root_precedence(tmp_path: pathlib.Path, download_root: pathlib.Path) -> None:
    argument_root = tmp_path / "argument"
    config_root = tmp_path / "config"
    view_root = tmp_path / "view"
    for directory in (argument_root, config_root, view_root):
        directory.mkdir()
        (directory / "who.txt").write_text(directory.name)

    def who(app: Flask, **attrs: t.Any) -> bytes:
        app.add_url_rule(
            "/f/<path:path>", view_func=PathDownloadView.as_view("f", **attrs)
        )
        with app.test_client().get("/f/who.txt") as rv:
            assert rv.status_code == 200
            return rv.data

    app = make_app(tmp_path)
    FlaskDownload(app, root=argument_root)
    assert who(app) == b"argument"

    app = make_app(tmp_path, DOWNLOAD_ROOT=os.fspath(config_root))
    FlaskDownload(app, root=argument_root)
    assert who(app) == b"config"

    app = make_app(tmp_path, DOWNLOAD_ROOT=os.fspath(config_root))
    FlaskDownload(app, root=argument_root)
    assert who(app, root=view_root) == b"view"


def test_argument_does_not_leak_into_other_extension(tmp_path: pathlib.Path) -> None:
    app_a = make_app(tmp_path, "a")
    app_b = make_app(tmp_path, "b")
    FlaskDownload(app_a, cache_max_age=11)
    FlaskDownload(app_b)
    for app in (app_a, app_b):
        app.add_url_rule("/shared", view_func=SHARED_VIEW)
    with app_a.test_client().get("/shared") as rv:
        assert rv.headers["Cache-Control"] == "max-age=11"
    with app_b.test_client().get("/shared") as rv:
        assert "max-age=11" not in rv.headers.get("Cache-Control", "")


# -- several apps -----------------------------------------------------------


def test_two_apps_keep_their_own_settings(tmp_path: pathlib.Path) -> None:
    one = create_app(tmp_path, DOWNLOAD_CACHE_MAX_AGE=100, DOWNLOAD_CHUNK_SIZE=1000)
    two = create_app(tmp_path, DOWNLOAD_CACHE_MAX_AGE=200, DOWNLOAD_CHUNK_SIZE=2000)
    assert download.settings(one).chunk_size == 1000
    assert download.settings(two).chunk_size == 2000
    for _ in range(2):  # interleaved requests do not mix settings
        with one.test_client().get("/shared") as rv:
            assert rv.headers["Cache-Control"] == "max-age=100"
            assert rv.data == CONTENT
        with two.test_client().get("/shared") as rv:
            assert rv.headers["Cache-Control"] == "max-age=200"
            assert rv.data == CONTENT
        assert len(first_chunk(one, "/shared")) == 1000
        assert len(first_chunk(two, "/shared")) == 2000


def test_view_defined_at_import_time_works_in_two_apps(
    tmp_path: pathlib.Path,
) -> None:
    one = make_app(tmp_path, "one", DOWNLOAD_MAX_RANGES=2)
    two = make_app(tmp_path, "two", DOWNLOAD_MAX_RANGES=5)
    FlaskDownload(one)
    FlaskDownload(two)
    one.add_url_rule("/shared", view_func=SHARED_VIEW)
    two.add_url_rule("/shared", view_func=SHARED_VIEW)
    headers = {"Range": THREE_RANGES}
    with one.test_client().get("/shared", headers=headers) as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Disposition"] == 'attachment; filename="shared.bin"'
    with two.test_client().get("/shared", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.headers["Content-Type"].startswith("multipart/byteranges")


def test_one_extension_two_apps_two_roots(tmp_path: pathlib.Path) -> None:
    roots = []
    for name in ("first", "second"):
        root = tmp_path / name
        root.mkdir()
        (root / "name.txt").write_text(name)
        roots.append(root)
    ext = FlaskDownload()
    apps = []
    for root in roots:
        app = make_app(tmp_path, DOWNLOAD_ROOT=os.fspath(root))
        ext.init_app(app)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        apps.append(app)
    for app, root in zip(apps, roots, strict=True):
        with app.test_client().get("/f/name.txt") as rv:
            assert rv.status_code == 200
            assert rv.data == root.name.encode()
