"""DESIGN §5: testing helpers, pytest plugin, signals, signed links."""

from __future__ import annotations

import os
import pathlib
import time
import typing as t
import urllib.parse

import pytest
from flask import Flask

from flask_download import download_finished
from flask_download import download_started
from flask_download import DownloadFile
from flask_download import PathDownloadView
from flask_download import signature_required
from flask_download import signed_url_for
from flask_download import VirtualDownloadView
from flask_download.testing import assert_download_response

from .conftest import Live

pytest_plugins = ["pytester"]


# -- assert_download_response --------------------------------------------------


def _view(app: Flask, **attrs: t.Any) -> t.Any:
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", **attrs))
    return app.test_client()


def test_assert_download_response_passes(app: Flask) -> None:
    with _view(app, path="hello.txt").get("/p") as rv:
        assert_download_response(
            rv,
            content=b"Hello, world!\n",
            basename="hello.txt",
            mimetype="text/plain",
            attachment=True,
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": b"other"},
        {"basename": "other.txt"},
        {"mimetype": "image/png"},
        {"attachment": False},
        {"status": 206},
    ],
    ids=["content", "basename", "mimetype", "attachment", "status"],
)
def test_assert_download_response_fails(app: Flask, kwargs: dict[str, t.Any]) -> None:
    with _view(app, path="hello.txt").get("/p") as rv, pytest.raises(AssertionError):
        assert_download_response(rv, **kwargs)


def test_assert_download_response_offloaded(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/in/"}
        ],
    )
    with _view(app, path="hello.txt").get("/p") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/in/hello.txt"
        assert_download_response(rv, content=b"Hello, world!\n", basename="hello.txt")


def test_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os

        def test_root(download_root):
            assert os.path.isdir(download_root)
            assert os.listdir(download_root)

        def test_storage(download_storage):
            download_storage.pipe("/a.txt", b"A")
            assert download_storage.cat("/a.txt") == b"A"

        def test_storage_is_fresh(download_storage):
            assert not download_storage.exists("/a.txt")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


# -- signals -------------------------------------------------------------------


def test_signals_sent_with_documented_arguments(
    app: Flask, serve: t.Callable[[t.Any], Live]
) -> None:
    started: list[dict[str, t.Any]] = []
    finished: list[dict[str, t.Any]] = []

    def on_started(sender: t.Any, **kwargs: t.Any) -> None:
        started.append({"sender": sender, **kwargs})

    def on_finished(sender: t.Any, **kwargs: t.Any) -> None:
        finished.append({"sender": sender, **kwargs})

    _view(app, path="data.bin")
    download_started.connect(on_started, app)
    download_finished.connect(on_finished, app)
    try:
        live = serve(app)
        status, _, body = live.get("/p")
        assert status == 200
        status, _, body = live.get("/p", headers={"Range": "bytes=0-9"})
        assert status == 206
        deadline = time.monotonic() + 5
        while len(finished) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        download_started.disconnect(on_started, app)
        download_finished.disconnect(on_finished, app)
    assert len(started) == 2
    assert started[0]["sender"] is app
    assert isinstance(started[0]["file"], DownloadFile)
    assert "request" in started[0]
    # Each request ends in its own server thread: in any order.
    assert sorted(f["bytes_sent"] for f in finished) == [10, 1024]
    assert all(f["completed"] is True for f in finished)
    assert all(isinstance(f["file"], DownloadFile) for f in finished)


# -- signed links --------------------------------------------------------------


@pytest.fixture
def signed_app(app_factory: t.Callable[..., Flask]) -> Flask:
    app = app_factory(SECRET_KEY="contract-secret")
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )

    @app.route("/d/<name>")
    @signature_required
    def decorated(name: str) -> str:
        return f"hello {name}"

    return app


def _signed(app: Flask, endpoint: str, **values: t.Any) -> str:
    with app.test_request_context():
        return signed_url_for(endpoint, **values)


def test_signed_link_serves(signed_app: Flask) -> None:
    url = _signed(signed_app, "s", path="hello.txt")
    client = signed_app.test_client()
    with client.get(url) as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
        assert "private" in rv.headers["Cache-Control"]
    with client.get("/s/hello.txt") as rv:
        assert rv.status_code == 403


def test_signature_required_decorator(signed_app: Flask) -> None:
    client = signed_app.test_client()
    with client.get(_signed(signed_app, "decorated", name="bob")) as rv:
        assert rv.status_code == 200
        assert rv.data == b"hello bob"
    with client.get("/d/bob") as rv:
        assert rv.status_code == 403


def _tamper(url: str, **changes: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(changes)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def test_tampered_links_403(signed_app: Flask) -> None:
    url = _signed(signed_app, "s", path="hello.txt", v="1")
    client = signed_app.test_client()
    signature_names = [
        name
        for name, _ in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)
        if name != "v"
    ]
    assert len(signature_names) == 2
    tampered = [
        url.replace("hello.txt", "data.bin"),
        url.replace("/s/", "/d/"),
        _tamper(url, v="2"),
        url + "&extra=1",
    ]
    for name in signature_names:
        tampered.append(_tamper(url, **{name: "1"}))
    for bad in tampered:
        with client.get(bad) as rv:
            assert rv.status_code in (403, 404), bad
            assert rv.data != b"Hello, world!\n"
            assert b"\x00\x01\x02" not in rv.data
    # The expiry moved later with the old signature: refused, not served.
    later = str(int(time.time()) + 10**6)
    for name in signature_names:
        with client.get(_tamper(url, **{name: later})) as rv:
            assert rv.status_code == 403


def test_expired_link_410(signed_app: Flask) -> None:
    url = _signed(signed_app, "s", path="hello.txt", expires_in=1)
    time.sleep(2.1)
    with signed_app.test_client().get(url) as rv:
        assert rv.status_code == 410


def test_signed_cache_control_never_past_expiry(
    app_factory: t.Callable[..., Flask],
) -> None:
    signed_app = app_factory(SECRET_KEY="k", DOWNLOAD_CACHE_MAX_AGE=10**6)
    signed_app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )
    url = _signed(signed_app, "s", path="hello.txt", expires_in=60)
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)
    expires = int(dict(query)["expires"])
    before = time.time()
    with signed_app.test_client().get(url) as rv:
        value = rv.headers["Cache-Control"]
    assert "private" in value
    ages = [int(p.split("=")[1]) for p in value.split(", ") if p.startswith("max-age=")]
    assert ages
    # A cache that stored the response when the request was sent keeps it
    # until before + max-age at the latest: never past the link's expiry.
    assert before + ages[0] <= expires


@pytest.mark.parametrize(
    "environ",
    [
        {"HTTP_HOST": "evil.example"},
        {"HTTP_X_FORWARDED_PREFIX": "/other"},
        {"SCRIPT_NAME": "/s", "PATH_INFO_PREFIX": "1"},
    ],
    ids=["host", "x-forwarded-prefix", "script-name"],
)
def test_signed_link_cannot_be_repointed(
    signed_app: Flask, environ: dict[str, str]
) -> None:
    url = _signed(signed_app, "s", path="hello.txt")
    client = signed_app.test_client()
    path, _, query = url.partition("?")
    base: dict[str, str] = {}
    if "PATH_INFO_PREFIX" in environ:
        # The same bytes split differently: SCRIPT_NAME=/s, PATH_INFO=/hello.txt.
        with client.get(
            "/hello.txt?" + query,
            environ_base={"SCRIPT_NAME": "/s"},
        ) as rv:
            assert rv.status_code in (403, 404)
        return
    base.update(environ)
    other = _signed(signed_app, "s", path="data.bin")
    other_query = other.partition("?")[2]
    # The signature of data.bin's link never opens hello.txt, whatever headers.
    with client.get(path + "?" + other_query, environ_base=base) as rv:
        assert rv.status_code == 403


def test_signed_link_host_variables_bound(tmp_path: pathlib.Path) -> None:
    from flask_download import FlaskDownload

    (tmp_path / "f.txt").write_text("tenant file")
    app = Flask(__name__, host_matching=True, static_host="static.example")
    app.config.update(SECRET_KEY="k", DOWNLOAD_ROOT=os.fspath(tmp_path))
    FlaskDownload(app)
    app.add_url_rule(
        "/f/<path:path>",
        view_func=PathDownloadView.as_view("f", signed=True),
        host="<tenant>.example.com",
    )
    with app.test_request_context(base_url="http://a.example.com"):
        url = signed_url_for("f", tenant="a", path="f.txt", _external=True)
    parts = urllib.parse.urlsplit(url)
    target = parts.path + "?" + parts.query
    client = app.test_client()
    with client.get(target, base_url="http://a.example.com") as rv:
        assert rv.status_code == 200
        assert rv.data == b"tenant file"
    with client.get(target, base_url="http://b.example.com") as rv:
        assert rv.status_code == 403


def test_signed_virtual_view(app_factory: t.Callable[..., Flask]) -> None:
    app = app_factory(SECRET_KEY="k")
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view(
            "v", content="secret", basename="v.txt", signed=True
        ),
    )
    client = app.test_client()
    with client.get("/v") as rv:
        assert rv.status_code == 403
    with client.get(_signed(app, "v")) as rv:
        assert rv.data == b"secret"


def test_signed_link_subdomain_variables_bound(download_root: pathlib.Path) -> None:
    from flask_download import FlaskDownload

    app = Flask(__name__, subdomain_matching=True)
    app.config.update(
        SECRET_KEY="k",
        SERVER_NAME="example.com",
        DOWNLOAD_ROOT=os.fspath(download_root),
    )
    FlaskDownload(app)
    app.add_url_rule(
        "/f/<path:path>",
        view_func=PathDownloadView.as_view("f", signed=True),
        subdomain="<tenant>",
    )
    with app.app_context():
        url = signed_url_for("f", tenant="a", path="hello.txt", _external=True)
    parts = urllib.parse.urlsplit(url)
    assert parts.netloc == "a.example.com"
    target = parts.path + "?" + parts.query
    client = app.test_client()
    with client.get(target, base_url="http://a.example.com") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
    with client.get(target, base_url="http://b.example.com") as rv:
        assert rv.status_code == 403


def test_signed_link_behind_proxy_prefix(app_factory: t.Callable[..., Flask]) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = app_factory(SECRET_KEY="k")
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )
    app.add_url_rule("/link", "link", lambda: signed_url_for("s", path="hello.txt"))
    app.wsgi_app = ProxyFix(app.wsgi_app, x_prefix=1)  # type: ignore[method-assign]
    client = app.test_client()
    with client.get("/link", headers={"X-Forwarded-Prefix": "/app"}) as rv:
        url = rv.get_data(as_text=True)
    assert url.startswith("/app/s/hello.txt?")
    inner = url.removeprefix("/app")
    with client.get(inner, headers={"X-Forwarded-Prefix": "/app"}) as rv:
        assert rv.status_code == 200
    # The same link under another prefix still names the same file only.
    with client.get(inner, headers={"X-Forwarded-Prefix": "/other"}) as rv:
        assert rv.status_code in (200, 403)
        if rv.status_code == 200:
            assert rv.data == b"Hello, world!\n"


def test_signed_offloaded_response_not_cached_past_expiry(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        SECRET_KEY="k",
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": os.fspath(download_root),
                "destination_url": "/in/",
                "expires": 86400,
            }
        ],
    )
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )
    url = _signed(app, "s", path="hello.txt", expires_in=60)
    with app.test_client().get(url) as rv:
        assert rv.headers["X-Accel-Redirect"] == "/in/hello.txt"
        assert "private" in rv.headers["Cache-Control"]
        expires = rv.headers.get("X-Accel-Expires")
    # nginx's proxy cache: absent (then Cache-Control: private applies),
    # "0" (do not cache) or a lifetime within the link's.
    assert expires is None or (expires.isdigit() and int(expires) <= 60)


def test_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    values = {ep.value for ep in entry_points(group="pytest11")}
    assert "flask_download.pytest_plugin" in values


def test_signed_link_script_name_split(signed_app: Flask) -> None:
    """The same full path split differently never opens another file."""
    url = _signed(signed_app, "s", path="x/s/hello.txt")
    path, _, query = url.partition("?")
    assert path == "/s/x/s/hello.txt"
    client = signed_app.test_client()
    # SCRIPT_NAME=/s/x, PATH_INFO=/s/hello.txt: the full path is the same.
    with client.get("/s/hello.txt?" + query, base_url="http://localhost/s/x") as rv:
        assert rv.status_code == 403
        assert rv.data != b"Hello, world!\n"


def test_assert_download_response_non_ascii_and_inline(app: Flask) -> None:
    app.add_url_rule(
        "/e", view_func=PathDownloadView.as_view("e", path="été.txt", attachment=False)
    )
    client = app.test_client()
    with client.get("/e") as rv:
        assert_download_response(
            rv,
            content="Un été à Paris\n".encode(),
            basename="été.txt",
            mimetype="text/plain",
            attachment=False,
        )
    with client.get("/e", headers={"Range": "bytes=0-1"}) as rv:
        assert_download_response(rv, content=b"Un", status=206)


@pytest.mark.parametrize(
    "query",
    [
        "expires=abc&signature=x",
        "expires=99999999999999999999999999&signature=x",
        "expires=-1&signature=x",
        "expires=1e10&signature=x",
        "expires=&signature=",
        "signature=%ZZ&expires=1",
        "expires=1&expires=2&signature=x",
        "expires=\u0661\u0662&signature=x",
        "signature=" + "A" * 10000 + "&expires=1",
    ],
    ids=[
        "text",
        "huge",
        "negative",
        "float",
        "empty",
        "bad-pct",
        "twice",
        "digits",
        "long",
    ],
)
def test_garbage_signatures_are_4xx(signed_app: Flask, query: str) -> None:
    with signed_app.test_client().get("/s/hello.txt?" + query) as rv:
        assert rv.status_code in (403, 410), rv.status_code
        assert rv.data != b"Hello, world!\n"
