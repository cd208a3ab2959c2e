"""DESIGN §4: the extension, config, blueprints and offload."""

from __future__ import annotations

import os
import pathlib
import typing as t

import pytest
from flask import Flask
from flask import url_for

from flask_download import DEFAULTS
from flask_download import DownloadError
from flask_download import FlaskDownload
from flask_download import make_download_blueprint
from flask_download import PathDownloadView
from flask_download import StorageDownloadView
from flask_download import VirtualDownloadView

from .conftest import Live

KEYS = {
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


def test_app_factory_pattern(download_root: pathlib.Path) -> None:
    download = FlaskDownload()
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = os.fspath(download_root)
    download.init_app(app)
    assert app.extensions["download"] is download
    direct = Flask(__name__)
    ext = FlaskDownload(direct)
    assert direct.extensions["download"] is ext


def test_one_extension_serves_many_apps(download_root: pathlib.Path) -> None:
    download = FlaskDownload()
    apps = []
    for age in (10, 20):
        app = Flask(__name__)
        app.config.update(DOWNLOAD_ROOT=os.fspath(download_root))
        app.config["DOWNLOAD_CACHE_MAX_AGE"] = age
        download.init_app(app)
        app.add_url_rule(
            "/p", view_func=PathDownloadView.as_view("p", path="hello.txt")
        )
        apps.append(app)
    for app, age in zip(apps, (10, 20), strict=True):
        with app.test_client().get("/p") as rv:
            assert f"max-age={age}" in rv.headers["Cache-Control"]


def test_config_keys_defined() -> None:
    assert set(DEFAULTS) >= KEYS
    assert DEFAULTS["DOWNLOAD_CHUNK_SIZE"] == 64 * 1024
    assert DEFAULTS["DOWNLOAD_MAX_RANGES"] == 50
    assert DEFAULTS["DOWNLOAD_ACCEL"] is None


def test_init_app_twice_refused(app: Flask) -> None:
    with pytest.raises(RuntimeError):
        FlaskDownload(app)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DOWNLOAD_CHUNK_SIZE", 0),
        ("DOWNLOAD_CHUNK_SIZE", "big"),
        ("DOWNLOAD_MAX_RANGES", -1),
        ("DOWNLOAD_ACCEL", "iis"),
        ("DOWNLOAD_ACCEL_RULES", [{"destination_url": "/x/"}]),
        ("DOWNLOAD_HTTP_TIMEOUT", "soon"),
        ("DOWNLOAD_ROOT", "/no/such/directory/anywhere"),
    ],
)
def test_bad_config_fails_at_init(key: str, value: t.Any) -> None:
    app = Flask(__name__)
    app.config[key] = value
    with pytest.raises((DownloadError, ValueError, TypeError)) as info:
        FlaskDownload(app)
    assert (
        key in str(info.value)
        or key.removeprefix("DOWNLOAD_").lower() in str(info.value).lower()
    )


def _cache(app: Flask, **attrs: t.Any) -> str:
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view("v", content="x", basename="x", **attrs),
    )
    with app.test_client().get("/v") as rv:
        return str(rv.headers.get("Cache-Control", ""))


def test_precedence_argument_over_default() -> None:
    app = Flask(__name__)
    FlaskDownload(app, cache_max_age=111)
    assert "max-age=111" in _cache(app)


def test_precedence_config_over_argument() -> None:
    app = Flask(__name__)
    app.config["DOWNLOAD_CACHE_MAX_AGE"] = 222
    FlaskDownload(app, cache_max_age=111)
    assert "max-age=222" in _cache(app)


def test_precedence_view_over_config() -> None:
    app = Flask(__name__)
    app.config["DOWNLOAD_CACHE_MAX_AGE"] = 222
    FlaskDownload(app)
    assert "max-age=333" in _cache(app, cache_max_age=333)


def test_root_precedence(tmp_path: pathlib.Path) -> None:
    for name in ("arg", "config", "view"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.txt").write_text(name)
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = os.fspath(tmp_path / "config")
    FlaskDownload(app, root=os.fspath(tmp_path / "arg"))
    app.add_url_rule("/a/<path:path>", view_func=PathDownloadView.as_view("a"))
    app.add_url_rule(
        "/b/<path:path>",
        view_func=PathDownloadView.as_view("b", root=os.fspath(tmp_path / "view")),
    )
    client = app.test_client()
    with client.get("/a/f.txt") as rv:
        assert rv.data == b"config"
    with client.get("/b/f.txt") as rv:
        assert rv.data == b"view"
    other = Flask(__name__)
    FlaskDownload(other, root=os.fspath(tmp_path / "arg"))
    other.add_url_rule("/a/<path:path>", view_func=PathDownloadView.as_view("a"))
    with other.test_client().get("/a/f.txt") as rv:
        assert rv.data == b"arg"


def test_chunk_size_config(
    app_factory: t.Callable[..., Flask], serve: t.Callable[[t.Any], Live]
) -> None:
    app = app_factory(DOWNLOAD_CHUNK_SIZE=100)
    app.add_url_rule(
        "/p", view_func=PathDownloadView.as_view("p", path="data.bin", accel=False)
    )
    with app.test_client().get("/p", buffered=False) as rv:
        sizes = [len(chunk) for chunk in rv.response]
    assert sum(sizes) == 1024
    assert len(sizes) >= 11
    assert max(sizes) <= 100


# -- blueprints ----------------------------------------------------------------


def test_blueprint_url_for(app: Flask, download_root: pathlib.Path) -> None:
    app.register_blueprint(
        make_download_blueprint("dl", root=os.fspath(download_root), url_prefix="/dl")
    )
    with app.test_request_context():
        url = url_for("dl.file", path="sub/nested.txt")
    assert url == "/dl/sub/nested.txt"
    client = app.test_client()
    with client.get(url) as rv:
        assert rv.status_code == 200
        assert rv.data == b"nested\n"
    with client.get("/dl/../secret.txt") as rv:
        assert rv.status_code == 404


def test_blueprint_storage(app: Flask, download_storage: t.Any) -> None:
    download_storage.pipe("/files/a.txt", b"A")
    app.register_blueprint(
        make_download_blueprint("st", storage=download_storage, url_prefix="/st")
    )
    with app.test_request_context():
        url = url_for("st.file", path="files/a.txt")
    with app.test_client().get(url) as rv:
        assert rv.data == b"A"


# -- offload ---------------------------------------------------------------------


def _offload_app(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path, **rule: t.Any
) -> Flask:
    base = {"source_dir": os.fspath(download_root), "destination_url": "/internal/"}
    base.update(rule)
    app = app_factory(DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=[base])
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    app.add_url_rule(
        "/no/<path:path>", view_func=PathDownloadView.as_view("no", accel=False)
    )
    return app


def test_nginx_offload_headers(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = _offload_app(app_factory, download_root)
    client = app.test_client()
    with client.get("/no/sub/nested.txt") as plain:
        expected = dict(plain.headers)
    with client.get("/f/sub/nested.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b""
        assert rv.headers["X-Accel-Redirect"] == "/internal/sub/nested.txt"
        for name in (
            "Content-Type",
            "Content-Disposition",
            "ETag",
            "Last-Modified",
            "Cache-Control",
        ):
            assert rv.headers.get(name) == expected.get(name), name


def test_nginx_offload_non_ascii_and_options(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = _offload_app(
        app_factory,
        download_root,
        buffering=False,
        limit_rate=1024,
        expires=60,
        charset="utf-8",
    )
    with app.test_client().get("/f/été.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/internal/%C3%A9t%C3%A9.txt"
        assert rv.headers["X-Accel-Buffering"] == "no"
        assert rv.headers["X-Accel-Limit-Rate"] == "1024"
        assert rv.headers["X-Accel-Expires"] == "60"
        assert rv.headers["X-Accel-Charset"] == "utf-8"


def test_offload_opt_out(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = _offload_app(app_factory, download_root)
    with app.test_client().get("/no/hello.txt") as rv:
        assert "X-Accel-Redirect" not in rv.headers
        assert rv.data == b"Hello, world!\n"


@pytest.mark.parametrize("backend", ["apache", "lighttpd"])
def test_x_sendfile_offload(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path, backend: str
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL=backend,
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_dir": "/srv/x"}
        ],
    )
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client().get("/f/hello.txt") as rv:
        header = "X-Sendfile" if backend == "apache" else "X-LIGHTTPD-send-file"
        value = rv.headers.get(header) or rv.headers.get("X-Sendfile")
        assert value == "/srv/x/hello.txt"
        assert rv.data == b""


def test_view_accel_backend_name(
    app: Flask, download_root: pathlib.Path, app_factory: t.Callable[..., Flask]
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/i/"}
        ]
    )
    app.add_url_rule(
        "/f/<path:path>", view_func=PathDownloadView.as_view("f", accel="nginx")
    )
    with app.test_client().get("/f/hello.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/i/hello.txt"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Sendfile-Type": "X-Accel-Redirect"},
        {"X-Accel-Mapping": "/=/internal/"},
        {"X-Sendfile-Type": "X-Sendfile"},
    ],
)
def test_client_headers_never_influence_offload(
    app_factory: t.Callable[..., Flask],
    download_root: pathlib.Path,
    headers: dict[str, str],
) -> None:
    app = app_factory()
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client().get("/f/hello.txt", headers=headers) as rv:
        names = [name.lower() for name, _ in rv.headers.items()]
        assert not [n for n in names if n.startswith(("x-accel", "x-sendfile"))]
        assert rv.data == b"Hello, world!\n"
    off = _offload_app(app_factory, download_root)
    with off.test_client().get("/f/hello.txt", headers=headers) as rv:
        assert rv.headers["X-Accel-Redirect"] == "/internal/hello.txt"


def test_offload_storage_source_url(
    app_factory: t.Callable[..., Flask], download_storage: t.Any
) -> None:
    download_storage.pipe("/bucket/a.txt", b"A")
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_url": "memory://bucket", "destination_url": "/mem/"}
        ],
    )
    app.add_url_rule(
        "/s/<path:path>",
        view_func=StorageDownloadView.as_view("s", storage=download_storage),
    )
    with app.test_client().get("/s/bucket/a.txt") as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Accel-Redirect"] == "/mem/a.txt"
        assert rv.data == b""


def test_accel_rules_argument(download_root: pathlib.Path) -> None:
    from flask_download import AccelRule

    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = os.fspath(download_root)
    FlaskDownload(
        app,
        accel="nginx",
        accel_rules=[
            AccelRule(source_dir=os.fspath(download_root), destination_url="/arg/")
        ],
    )
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client().get("/f/hello.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/arg/hello.txt"


def test_accel_rules_config_beats_argument(download_root: pathlib.Path) -> None:
    app = Flask(__name__)
    app.config.update(
        DOWNLOAD_ROOT=os.fspath(download_root),
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/config/"}
        ],
    )
    FlaskDownload(
        app,
        accel_rules=[
            {"source_dir": os.fspath(download_root), "destination_url": "/arg/"}
        ],
    )
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client().get("/f/hello.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/config/hello.txt"


def test_offloaded_inline_html_keeps_security_headers(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = _offload_app(app_factory, download_root)
    app.add_url_rule(
        "/i/<path:path>",
        view_func=PathDownloadView.as_view("i", attachment=False),
    )
    with app.test_client().get("/i/page.html") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/internal/page.html"
        assert rv.headers["X-Content-Type-Options"] == "nosniff"
        assert rv.headers["Content-Security-Policy"] == "sandbox"
        assert rv.headers["Content-Disposition"] == 'inline; filename="page.html"'
