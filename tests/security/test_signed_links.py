"""Signed links under attack: re-pointed by Host, prefix or path split (#12).

A signature used to cover ``script_root + path`` and the query. With
subdomain or host rules the ``Host`` header picks the file, and behind
``ProxyFix(x_prefix=1)`` the client chooses where the script root ends.
The signature now binds the endpoint and every URL variable the request
routes to, so these requests are 403; and a signed answer never outlives
its link in a shared cache.
"""

from __future__ import annotations

import collections.abc as cabc
import time
import typing as t

import pytest
from flask import Flask
from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_download import DownloadFile
from flask_download import FlaskDownload
from flask_download import signature_required
from flask_download import signed_url_for
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.signing import _legacy_message
from flask_download.signing import _signer

from .conftest import LiveServer
from .conftest import start_server
from .conftest import stop_server


class _EchoView(VirtualDownloadView):
    """Serves a file naming the endpoint and variables it was reached by."""

    signed = True

    def get_file(self) -> DownloadFile:
        text = f"{request.endpoint}:{sorted(self.kwargs.items())}"
        return VirtualFile(text.encode(), name="file.txt")


def _tenant_app(**config: t.Any) -> Flask:
    app = Flask("tenants", subdomain_matching=True)
    app.config.update(SECRET_KEY="s3cret", SERVER_NAME="example.com", **config)
    FlaskDownload(app)
    app.add_url_rule(
        "/files/<name>",
        subdomain="<tenant>",
        view_func=_EchoView.as_view("tenant_file"),
    )
    return app


def test_a_tenants_link_does_not_open_another_tenants_file() -> None:
    app = _tenant_app()
    with app.app_context():
        url = signed_url_for("tenant_file", tenant="alice", name="x.txt")
    client = app.test_client()
    with client.get(url) as rv:
        assert rv.status_code == 200
        assert b"'tenant', 'alice'" in rv.data
    path = url.removeprefix("http://alice.example.com")
    with client.get(path, headers={"Host": "bob.example.com"}) as rv:
        assert rv.status_code == 403


def test_host_variables_are_bound() -> None:
    app = Flask("hosts", host_matching=True, static_host="static.example.org")
    app.config.update(SECRET_KEY="s3cret", SERVER_NAME="example.org")
    FlaskDownload(app)
    app.add_url_rule(
        "/files/<name>",
        host="<tenant>.example.org",
        view_func=_EchoView.as_view("host_file"),
    )
    with app.app_context():
        url = signed_url_for("host_file", tenant="alice", name="x.txt")
    assert url.startswith("http://alice.example.org/")
    client = app.test_client()
    with client.get(url) as rv:
        assert rv.status_code == 200
    path = url.removeprefix("http://alice.example.org")
    with client.get(path, headers={"Host": "bob.example.org"}) as rv:
        assert rv.status_code == 403


def _prefix_app() -> Flask:
    app = Flask("prefixed")
    app.config.update(SECRET_KEY="s3cret")
    FlaskDownload(app)
    app.add_url_rule("/a/<path:path>", view_func=_EchoView.as_view("a"))
    app.add_url_rule("/b/<path:path>", view_func=_EchoView.as_view("b"))
    app.wsgi_app = ProxyFix(app.wsgi_app, x_prefix=1)  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def prefixed() -> cabc.Iterator[LiveServer]:
    live = start_server(_prefix_app())
    try:
        yield live
    finally:
        stop_server(live)


def test_x_forwarded_prefix_cannot_re_point_a_link(prefixed: LiveServer) -> None:
    """/a/b/x.txt sent as /b/x.txt with X-Forwarded-Prefix: /a (#12)."""
    app = prefixed.server.app
    with app.test_request_context():
        url = signed_url_for("a", path="b/x.txt")
    assert url.startswith("/a/b/x.txt?")
    genuine = prefixed.request(url)
    assert genuine.status == 200
    assert genuine.body == b"a:[('path', 'b/x.txt')]"
    moved = url.removeprefix("/a")
    attack = prefixed.request(moved, [("X-Forwarded-Prefix", "/a")])
    assert attack.status == 403, attack


def test_a_link_made_behind_a_prefix_opens_its_file(prefixed: LiveServer) -> None:
    app = prefixed.server.app
    with app.test_request_context(
        "/", base_url="http://127.0.0.1/mount", headers={"X-Forwarded-Prefix": "/x"}
    ):
        url = signed_url_for("b", path="y.txt")
    assert url.startswith("/mount/b/y.txt?")
    response = prefixed.request(
        url.removeprefix("/mount"), [("X-Forwarded-Prefix", "/mount")]
    )
    assert response.status == 200
    assert response.body == b"b:[('path', 'y.txt')]"


def test_values_removed_by_url_value_preprocessors_stay_bound() -> None:
    app = Flask("lang")
    app.config.update(SECRET_KEY="s3cret")
    FlaskDownload(app)

    @app.url_value_preprocessor
    def pop_lang(endpoint: str | None, values: dict[str, t.Any] | None) -> None:
        if values:
            values.pop("lang", None)

    class View(VirtualDownloadView):
        signed = True
        content = b"localised"
        basename = "l.txt"

    app.add_url_rule("/<lang>/doc", view_func=View.as_view("doc"))
    with app.test_request_context():
        url = signed_url_for("doc", lang="fr")
    client = app.test_client()
    with client.get(url) as rv:
        assert rv.status_code == 200
    with client.get(url.replace("/fr/", "/de/")) as rv:
        assert rv.status_code == 403


@pytest.mark.parametrize("expires", ["\u00b2", "9" * 5000, "-1", "+5", " 5"])
def test_malformed_expiry_is_403(expires: str) -> None:
    app = _prefix_app()
    with app.test_request_context():
        url = signed_url_for("a", path="x")
    tampered = url.replace("expires=", f"expires={expires}&old=")
    with app.test_client().get(tampered) as rv:
        assert rv.status_code == 403


# -- links made before the endpoint was bound ---------------------------------


def _legacy_link(app: Flask, path: str, expires: int) -> str:
    query = [("expires", str(expires))]
    signature = _signer(app).get_signature(_legacy_message(path, query)).decode()
    return f"{path}?expires={expires}&signature={signature}"


def test_old_links_still_open_where_the_path_decides_the_route() -> None:
    app = _prefix_app()
    url = _legacy_link(app, "/a/x.txt", int(time.time()) + 60)
    with app.test_client().get(url) as rv:
        assert rv.status_code == 200


def test_old_links_are_refused_where_a_prefix_could_re_point_them() -> None:
    app = _prefix_app()
    url = _legacy_link(app, "/a/b/x.txt", int(time.time()) + 60)
    client = app.test_client()
    with client.get(url.removeprefix("/a"), headers={"X-Forwarded-Prefix": "/a"}) as rv:
        assert rv.status_code == 403


def test_old_links_are_refused_where_a_host_picks_the_route() -> None:
    app = _tenant_app()
    url = _legacy_link(app, "/files/x.txt", int(time.time()) + 60)
    with app.test_client().get(url, headers={"Host": "bob.example.com"}) as rv:
        assert rv.status_code == 403


# -- caching ----------------------------------------------------------------


def _cache_app(**config: t.Any) -> Flask:
    app = Flask("cache")
    app.config.update(SECRET_KEY="s3cret", **config)
    FlaskDownload(app)

    class View(VirtualDownloadView):
        signed = True
        content = b"cached?"
        basename = "c.txt"

    app.add_url_rule("/c", view_func=View.as_view("c"))
    app.add_url_rule(
        "/public",
        view_func=View.as_view(
            "public", cache_control="public, max-age=3600, s-maxage=3600"
        ),
    )
    app.add_url_rule(
        "/no-store", view_func=View.as_view("no_store", cache_control="no-store")
    )

    @app.get("/plain")
    @signature_required
    def plain() -> str:
        return "plain view"

    return app


def _directives(value: str | None) -> dict[str, str | None]:
    assert value is not None
    out: dict[str, str | None] = {}
    for item in value.split(","):
        name, _, arg = item.strip().partition("=")
        out[name.lower()] = arg or None
    return out


def test_signed_response_is_private_and_capped_at_the_expiry() -> None:
    """DOWNLOAD_CACHE_MAX_AGE=86400 with expires_in=60 (#12)."""
    app = _cache_app(DOWNLOAD_CACHE_MAX_AGE=86400)
    with app.test_request_context():
        url = signed_url_for("c", expires_in=60)
    with app.test_client().get(url) as rv:
        assert rv.status_code == 200
        directives = _directives(rv.headers.get("Cache-Control"))
    assert "private" in directives
    assert "public" not in directives
    assert 0 < int(directives["max-age"] or 0) <= 60


def test_revalidation_of_a_signed_link_is_capped_too() -> None:
    app = _cache_app(DOWNLOAD_CACHE_MAX_AGE=86400)
    with app.test_request_context():
        url = signed_url_for("c", expires_in=60)
    client = app.test_client()
    with client.get(url) as rv:
        etag = rv.headers["ETag"]
    with client.get(url, headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        directives = _directives(rv.headers.get("Cache-Control"))
    assert "private" in directives
    assert int(directives["max-age"] or 0) <= 60


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("c", {"private", "no-cache"}),
        ("public", {"private", "max-age"}),
        ("no_store", {"private", "no-store"}),
        ("plain", {"private", "max-age"}),
    ],
)
def test_signed_cache_control_forms(endpoint: str, expected: set[str]) -> None:
    app = _cache_app()
    with app.test_request_context():
        url = signed_url_for(endpoint, expires_in=120)
    with app.test_client().get(url) as rv:
        assert rv.status_code == 200
        directives = _directives(rv.headers.get("Cache-Control"))
    assert set(directives) == expected
    if "max-age" in directives:
        assert 0 < int(directives["max-age"] or 0) <= 120


def test_unsigned_views_keep_their_cache_control() -> None:
    app = _cache_app(DOWNLOAD_CACHE_MAX_AGE=86400)
    app.add_url_rule(
        "/open", view_func=VirtualDownloadView.as_view("open", content=b"x")
    )
    with app.test_client().get("/open") as rv:
        assert rv.headers["Cache-Control"] == "max-age=86400"


def test_a_link_made_outside_a_request_under_application_root() -> None:
    app = Flask("rooted")
    app.config.update(
        SECRET_KEY="s3cret", SERVER_NAME="files.example", APPLICATION_ROOT="/app"
    )
    FlaskDownload(app)
    app.add_url_rule("/a/<path:path>", view_func=_EchoView.as_view("a"))
    with app.app_context():
        url = signed_url_for("a", path="caf\u00e9 1.txt")
    assert url.startswith("http://files.example/app/a/caf%C3%A9%201.txt?")
    client = app.test_client()
    path = url.removeprefix("http://files.example/app")
    with client.get(path, base_url="http://files.example/app/") as rv:
        assert rv.status_code == 200
        assert rv.data == b"a:[('path', 'caf\xc3\xa9 1.txt')]"
