"""Audit 7 (extension, config, blueprints, testing helpers, signals, signed
and edge-verified links): DESIGN.md sections 4, 5 and 9 read literally,
black-box, through public names only."""

from __future__ import annotations

import http.client
import os
import pathlib
import time
import typing as t

import pytest
from conftest import running_werkzeug
from flask import abort
from flask import Flask
from flask import url_for

from flask_download import ConfigurationError
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import make_download_blueprint
from flask_download import nginx_secure_link_required
from flask_download import nginx_secure_url_for
from flask_download import PathDownloadView
from flask_download import signature_required
from flask_download import signed_url_for
from flask_download import StorageUnavailable

SECRET = "audit7-secret-key"


def _signed_app(root: pathlib.Path, **config: t.Any) -> Flask:
    app = Flask("audit7", root_path=os.fspath(root.parent))
    app.config.update(SECRET_KEY=SECRET, DOWNLOAD_ROOT=os.fspath(root), **config)
    FlaskDownload(app)
    app.add_url_rule(
        "/files/<path:path>", view_func=PathDownloadView.as_view("files", signed=True)
    )

    class Flaky(DownloadView):
        signed = True

        def get_file(self) -> t.Any:
            raise StorageUnavailable("the store is down")

    app.add_url_rule("/flaky/<name>", view_func=Flaky.as_view("flaky"))

    @app.get("/export/<int:id>")
    @signature_required
    def export(id: int) -> t.Any:
        if id == 404:
            abort(404)
        if id == 500:
            raise RuntimeError("boom")
        if id == 1404:
            return "gone", 404, {"Cache-Control": "public, max-age=86400"}
        return f"export {id}"

    return app


# -- signed links: caching of what a signed request answers ------------------


@pytest.mark.parametrize(
    ("endpoint", "values", "status"),
    [
        ("files", {"path": "not-uploaded-yet.txt"}, 404),
        ("export", {"id": 404}, 404),
        ("export", {"id": 500}, 500),
        ("flaky", {"name": "x"}, 503),
    ],
    ids=["missing-file", "abort-404", "view-error-500", "store-down-503"],
)
def test_signed_error_response_is_not_made_cacheable(
    download_root: pathlib.Path,
    endpoint: str,
    values: dict[str, t.Any],
    status: int,
) -> None:
    """DESIGN 5: a signed response is ``private`` with a max-age never past
    the link's expiry. That caps freshness; it must not grant any to an
    error that said nothing about caching: ``private, max-age=3600`` on a
    404 (the file not uploaded yet) or a 503 made the browser replay the
    error for the link's whole life."""
    app = _signed_app(download_root)
    with app.test_request_context():
        link = signed_url_for(endpoint, expires_in=3600, **values)
    with app.test_client().get(link) as rv:
        assert rv.status_code == status
        cache_control = rv.cache_control
        assert cache_control.max_age is None, rv.headers.get("Cache-Control")
        assert not cache_control.public


def test_signed_error_with_its_own_max_age_is_still_capped(
    download_root: pathlib.Path,
) -> None:
    """An error response that does set a lifetime keeps the cap: private,
    no longer than the link."""
    app = _signed_app(download_root)
    with app.test_request_context():
        link = signed_url_for("export", id=1404, expires_in=60)
    with app.test_client().get(link) as rv:
        assert rv.status_code == 404
        assert rv.cache_control.private
        assert not rv.cache_control.public
        assert rv.cache_control.max_age is not None
        assert rv.cache_control.max_age <= 60


def test_signed_success_without_cache_headers_still_gets_the_cap(
    download_root: pathlib.Path,
) -> None:
    """The documented behaviour for answers that succeed is unchanged: a
    function view that says nothing is private with max-age <= the link."""
    app = _signed_app(download_root, DOWNLOAD_CACHE_MAX_AGE=86400)
    with app.test_request_context():
        export = signed_url_for("export", id=7, expires_in=60)
        file = signed_url_for("files", path="hello.txt", expires_in=60)
    client = app.test_client()
    for link in (export, file):
        with client.get(link) as rv:
            assert rv.status_code == 200
            assert rv.cache_control.private
            assert rv.cache_control.max_age is not None
            assert 0 < rv.cache_control.max_age <= 60


# -- config: DOWNLOAD_ACCEL_RULES --------------------------------------------


@pytest.mark.parametrize("accel", [None, "nginx"])
def test_empty_source_dir_in_config_fails_at_init_app(
    tmp_path: pathlib.Path, accel: str | None
) -> None:
    """An empty ``source_dir`` (an unset environment variable) was joined to
    ``app.root_path`` and silently became "every file of the application's
    directory"; ``AccelRule(source_dir="")`` and the ``FlaskDownload``
    argument refuse it. The config must fail the same way, at init_app."""
    app = Flask("audit7", root_path=os.fspath(tmp_path))
    app.config.update(
        DOWNLOAD_ACCEL=accel,
        DOWNLOAD_ACCEL_RULES=[{"source_dir": "", "destination_url": "/protected/"}],
    )
    with pytest.raises(ConfigurationError, match="source_dir"):
        FlaskDownload(app)
    assert "download" not in app.extensions


def test_empty_source_dir_is_refused_wherever_a_rule_is_given() -> None:
    """The argument and a view's rules already refused it when given: the
    three ways of giving a rule agree."""
    rules = [{"source_dir": "", "destination_url": "/protected/"}]
    with pytest.raises(ConfigurationError, match="source_dir"):
        FlaskDownload(accel_rules=rules)
    with pytest.raises(ConfigurationError, match="source_dir"):
        PathDownloadView.as_view("f", accel="nginx", accel_rules=rules)


def test_nginx_checked_error_response_is_not_made_cacheable(
    download_root: pathlib.Path,
) -> None:
    """DESIGN 9: the app-side check of nginx secure links caps caching the
    same way (it shares the cap): a 404 behind a valid link gets no max-age."""
    app = Flask("audit7", root_path=os.fspath(download_root.parent))
    app.config.update(
        DOWNLOAD_ROOT=os.fspath(download_root),
        DOWNLOAD_NGINX_SECURE_LINK_SECRET="n" * 40,
    )
    FlaskDownload(app)
    view = nginx_secure_link_required(PathDownloadView).as_view("edge")
    app.add_url_rule("/edge/<path:path>", view_func=view)
    with app.test_request_context():
        missing = nginx_secure_url_for("edge", path="later.txt", expires_in=3600)
        present = nginx_secure_url_for("edge", path="hello.txt", expires_in=60)
    client = app.test_client()
    with client.get(missing) as rv:
        assert rv.status_code == 404
        assert rv.cache_control.max_age is None, rv.headers.get("Cache-Control")
    with client.get(present) as rv:
        assert rv.status_code == 200
        assert rv.cache_control.private


# -- blueprints registered twice, two apps, one extension (real server) ------


def _status(base: str, path: str, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_signed_link_of_one_blueprint_registration_never_opens_another(
    download_root: pathlib.Path,
) -> None:
    """DESIGN 4 and 5: one download blueprint registered twice (``name=``)
    under two prefixes: ``url_for`` and ``signed_url_for`` work for both,
    and a link made for one registration is a 403 at the other, on a real
    server, whatever prefix or Host it is sent with."""
    app = Flask("audit7", root_path=os.fspath(download_root.parent))
    app.config.update(SECRET_KEY=SECRET)
    FlaskDownload(app)
    bp = make_download_blueprint("dl", root=download_root, options={"signed": True})
    app.register_blueprint(bp, url_prefix="/one")
    app.register_blueprint(bp, url_prefix="/two", name="dl2")
    with app.test_request_context():
        assert url_for("dl2.file", path="hello.txt") == "/two/hello.txt"
        one = signed_url_for("dl.file", path="hello.txt")
        two = signed_url_for("dl2.file", path="hello.txt")
    with running_werkzeug(app) as base:
        assert _status(base, one) == (200, b"Hello, world!\n")
        assert _status(base, two) == (200, b"Hello, world!\n")
        assert _status(base, one.replace("/one/", "/two/", 1))[0] == 403
        assert _status(base, two.replace("/two/", "/one/", 1))[0] == 403
        # No host variable in the rule: the host is not what the link opens.
        assert _status(base, one, host="other.example")[0] == 200
        assert _status(base, "/one/hello.txt")[0] == 403


def test_one_extension_two_apps_keep_their_own_link_and_offload_settings(
    download_root: pathlib.Path,
) -> None:
    """DESIGN 4: precedence app config > ``FlaskDownload(...)`` argument >
    default, per app, with one extension object serving two apps."""
    rules = [{"source_dir": os.fspath(download_root), "destination_url": "/int/"}]
    download = FlaskDownload(signed_max_age=60, accel="nginx", accel_rules=rules)

    def make(**config: t.Any) -> Flask:
        app = Flask("audit7", root_path=os.fspath(download_root.parent))
        app.config.update(SECRET_KEY=SECRET, **config)
        download.init_app(app)
        view = PathDownloadView.as_view("f", root=download_root, signed=True)
        app.add_url_rule("/f/<path:path>", view_func=view)
        return app

    plain = make()
    own = make(
        DOWNLOAD_SIGNED_MAX_AGE=600, DOWNLOAD_ACCEL=None, DOWNLOAD_ACCEL_RULES=[]
    )
    for app, lifetime, offloaded in ((plain, 60, "/int/hello.txt"), (own, 600, None)):
        assert app.extensions["download"] is download
        with app.test_request_context():
            link = signed_url_for("f", path="hello.txt")
        expires = int(link.split("expires=")[1].split("&")[0])
        assert lifetime - 2 <= expires - time.time() <= lifetime + 2
        with app.test_client().get(link) as rv:
            assert rv.status_code == 200
            assert rv.headers.get("X-Accel-Redirect") == offloaded
