"""Review of the fifth session's changes to the proxy, storage, edge links,
signing and offload: each test names the bug it guards against."""

from __future__ import annotations

import collections.abc as cabc
import pathlib
import time
import typing as t

import pytest
from conftest import running_werkzeug
from conftest import serving
from flask import Flask

# -- an nginx secure link caps what the offload hook adds, as a signed one -----


def test_a_secure_link_caps_the_offload_hooks_accel_expires(
    download_root: pathlib.Path,
) -> None:
    """``nginx_secure_link_required`` caps the response's caching at the
    link's expiry, but a hand-built response offloaded afterwards by the
    extension's ``after_request`` hook kept the rule's ``X-Accel-Expires``
    (a day): ``keep_within_link`` read the expiry of ``signed_url_for``
    links only, so nginx's proxy cache served the file long after the link
    died."""
    from flask_download import DownloadResponse
    from flask_download import FlaskDownload
    from flask_download import nginx_secure_link
    from flask_download import nginx_secure_link_required
    from flask_download import PathFile

    secret = "s" * 32
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        DOWNLOAD_NGINX_SECURE_LINK_SECRET=secret,
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": str(download_root),
                "destination_url": "/in/",
                "expires": 86400,
            }
        ],
    )
    FlaskDownload(app)

    @app.get("/h/<name>")
    @nginx_secure_link_required
    def hand_built(name: str) -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    link = nginx_secure_link("/h/x", secret=secret, expires=int(time.time()) + 60)
    with app.test_client().get(link) as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Accel-Redirect"] == "/in/hello.txt"
        assert int(rv.headers["X-Accel-Expires"]) <= 60
        assert "private" in rv.headers["Cache-Control"]


# -- the proxy: an upstream's private is not narrowed by the view's ------------

pytest.importorskip("urllib3", reason="HTTPDownloadView needs 'urllib3'")

from test_audit5_http import make_app  # noqa: E402
from test_audit5_http import path_of  # noqa: E402
from test_audit5_http import raw  # noqa: E402
from test_audit5_http import Scripted  # noqa: E402

from flask_download.http import _pool  # noqa: E402


@pytest.fixture(scope="module")
def upstream() -> cabc.Iterator[Scripted]:
    with serving(Scripted()) as server:
        try:
            yield server
        finally:
            _pool().clear()


@pytest.mark.parametrize(
    ("view", "sent"),
    [
        ('private="Set-Cookie", max-age=60', "private, max-age=60"),
        ('Private="Set-Cookie"', "private"),
        ("private, max-age=60", "private, max-age=60"),
    ],
    ids=["qualified", "qualified-capitalised", "bare"],
)
def test_a_view_private_naming_fields_does_not_narrow_the_upstreams_private(
    upstream: Scripted, view: str, sent: str
) -> None:
    """An upstream ``Cache-Control: private`` (the whole answer is one
    user's) met a view's ``private="Set-Cookie"`` (only that field is
    private): the directive counted as present, so the relayed answer said
    only Set-Cookie was private and shared caches stored the rest."""
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\nContent-Length: 5\r\n"
        b'ETag: "v1"\r\nCache-Control: private\r\n\r\nhello'
    )
    path = path_of(upstream, answer)
    not_modified = path_of(
        upstream,
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nCache-Control: private\r\n\r\n',
    )
    with running_werkzeug(make_app(upstream.port, cache_control=view)) as base:
        got = raw(base, f"/p?path={path}")
        head = raw(base, f"/p?path={path}", method="HEAD")
        cached = raw(
            base, f"/p?path={not_modified}", headers=[("If-None-Match", '"v1"')]
        )
    assert got.status == 200 and got.body == b"hello"
    assert got.get_all("Cache-Control") == [sent]
    assert head.get_all("Cache-Control") == [sent]
    assert cached.status == 304
    assert cached.get_all("Cache-Control") == [sent]


@pytest.mark.parametrize("ports", [[[80, 443]], [{80}]], ids=["list", "set"])
def test_an_unhashable_allowed_ports_entry_is_a_configuration_error(
    ports: t.Any,
) -> None:
    """``check_allowed_ports`` is documented to raise ``ConfigurationError``
    for anything but port numbers: a nested list (``[[80, 443]]``) was a
    bare ``TypeError: unhashable type`` from ``as_view``."""
    from flask_download import ConfigurationError
    from flask_download import HTTPDownloadView

    with pytest.raises(ConfigurationError, match="allowed_ports"):
        HTTPDownloadView.as_view("p", url="http://example.com/", allowed_ports=ports)
