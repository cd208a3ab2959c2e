"""Audit 4: signed links (DESIGN §5) on a real server.

``signature_required`` on class-based views, the ``Expires`` header of a
signed answer (``send_download(max_age=...)``, as ``send_file`` sets it) on
200, 206 and 304, and what a link binds: converters, query values, and
parameter pollution.
"""

from __future__ import annotations

import collections.abc as cabc
import email.utils
import re
import time
import typing as t
import uuid

import pytest
from conftest import running_werkzeug
from flask import Flask
from flask import request
from flask.views import MethodView
from flask.views import View

from flask_download import FlaskDownload
from flask_download import send_download
from flask_download import signature_required
from flask_download import signed_url_for

urllib3 = pytest.importorskip("urllib3")

BODY = b"0123456789" * 10


@pytest.fixture(scope="module")
def pool() -> cabc.Iterator[t.Any]:
    manager = urllib3.PoolManager(retries=False, timeout=10.0)
    try:
        yield manager
    finally:
        manager.clear()


def _app() -> Flask:
    app = Flask("audit4_signing")
    app.config.update(SECRET_KEY="audit4-secret", DOWNLOAD_CACHE_MAX_AGE=86400)
    FlaskDownload(app)

    @signature_required
    class Reports(MethodView):
        def get(self, id: int) -> str:
            return f"report {id}"

    class Plain(MethodView):
        def get(self) -> str:
            return "plain"

    class Page(View):
        def dispatch_request(self) -> str:
            return "page"

    app.add_url_rule("/reports/<int:id>", view_func=Reports.as_view("reports"))
    app.add_url_rule("/plain", view_func=Plain.as_view("plain"))
    app.add_url_rule(
        "/signed-plain", view_func=signature_required(Plain).as_view("signed_plain")
    )
    app.add_url_rule("/page", view_func=signature_required()(Page).as_view("page"))

    @app.get("/sent")
    @signature_required
    def sent() -> t.Any:
        return send_download(BODY, basename="sent.txt", max_age=86400)

    @app.get("/open-sent")
    def open_sent() -> t.Any:
        return send_download(BODY, basename="sent.txt", max_age=86400)

    @app.get("/echo/<uuid:u>/<int:n>/<path:p>")
    @signature_required
    def echo(u: uuid.UUID, n: int, p: str) -> str:
        return repr((str(u), n, p, list(request.args.items(multi=True))))

    return app


@pytest.fixture(scope="module")
def app() -> Flask:
    return _app()


@pytest.fixture(scope="module")
def base(app: Flask) -> cabc.Iterator[str]:
    with running_werkzeug(app) as url:
        yield url


def _sign(app: Flask, endpoint: str, **values: t.Any) -> str:
    with app.test_request_context():
        return signed_url_for(endpoint, **values)


# -- signature_required on class-based views -----------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "values", "body"),
    [
        ("reports", {"id": 7}, b"report 7"),
        ("signed_plain", {}, b"plain"),
        ("page", {}, b"page"),
    ],
)
def test_signature_required_on_a_view_class(
    app: Flask,
    base: str,
    pool: t.Any,
    endpoint: str,
    values: dict[str, t.Any],
    body: bytes,
) -> None:
    link = _sign(app, endpoint, **values)
    rv = pool.request("GET", base + link)
    assert (rv.status, rv.data) == (200, body)
    assert "private" in rv.headers["Cache-Control"]
    assert pool.request("GET", base + link.partition("?")[0]).status == 403
    assert pool.request("GET", base + link + "&x=1").status == 403
    with app.test_request_context():
        from flask_download import signing

        real_now = signing._now
        signing._now = lambda: real_now() - 10_000  # type: ignore[assignment]
        try:
            old = signed_url_for(endpoint, expires_in=5, **values)
        finally:
            signing._now = real_now  # type: ignore[assignment]
    assert pool.request("GET", base + old).status == 410


def test_the_decorated_class_itself_is_unchanged(
    app: Flask, base: str, pool: t.Any
) -> None:
    """``signature_required(Plain)`` makes a signed subclass: ``Plain`` used
    elsewhere stays open."""
    rv = pool.request("GET", base + "/plain")
    assert (rv.status, rv.data) == (200, b"plain")
    view = app.view_functions["signed_plain"]
    assert view.view_class.__name__ == "Plain"  # type: ignore[attr-defined]
    assert view.view_class is not app.view_functions["plain"].view_class  # type: ignore[attr-defined]
    assert issubclass(
        view.view_class,  # type: ignore[attr-defined]
        app.view_functions["plain"].view_class,  # type: ignore[attr-defined]
    )


def test_signature_required_refuses_a_class_that_is_not_a_view() -> None:
    class NotAView:
        pass

    with pytest.raises(TypeError, match="View"):
        signature_required(NotAView)


# -- caching of a signed answer --------------------------------------------------------


def _expires_header(headers: t.Any) -> float:
    parsed = email.utils.parsedate_to_datetime(headers["Expires"])
    return parsed.timestamp()


def _max_age(headers: t.Any) -> int:
    match = re.search(r"max-age=(\d+)", headers["Cache-Control"])
    assert match is not None, headers["Cache-Control"]
    return int(match.group(1))


@pytest.mark.parametrize("kind", ["200", "206", "304", "HEAD"])
def test_expires_header_never_outlives_the_link(
    app: Flask, base: str, pool: t.Any, kind: str
) -> None:
    """``send_download(max_age=86400)`` sets ``Expires`` a day ahead; a link
    valid 60 seconds must not be cacheable (by an HTTP/1.0 cache reading
    only ``Expires``) longer than that."""
    link = _sign(app, "sent", expires_in=60)
    stamp = int(re.search(r"expires=(\d+)", link).group(1))  # type: ignore[union-attr]
    headers: dict[str, str] = {}
    method = "HEAD" if kind == "HEAD" else "GET"
    if kind == "206":
        headers["Range"] = "bytes=0-9"
    if kind == "304":
        etag = pool.request("GET", base + link).headers["ETag"]
        headers["If-None-Match"] = etag
    rv = pool.request(method, base + link, headers=headers)
    assert rv.status == {"206": 206, "304": 304}.get(kind, 200)
    assert "private" in rv.headers["Cache-Control"]
    assert "public" not in rv.headers["Cache-Control"]
    assert _max_age(rv.headers) <= 60
    assert "Expires" in rv.headers
    assert _expires_header(rv.headers) <= stamp
    assert _expires_header(rv.headers) >= time.time() - 5


def test_unsigned_send_download_keeps_its_expires(app: Flask) -> None:
    with app.test_client().get("/open-sent") as rv:
        assert _expires_header(rv.headers) > time.time() + 86000


# -- what a link binds ------------------------------------------------------------


def test_converters_and_query_values_round_trip(
    app: Flask, base: str, pool: t.Any
) -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    link = _sign(
        app,
        "echo",
        u=u,
        n="007",
        p="dir/a b+c%2F~é.txt",
        tag=["b", "a"],
        count=3,
        name="été & co=1",
        empty="",
    )
    rv = pool.request("GET", base + link)
    assert rv.status == 200
    expected = (
        str(u),
        7,
        "dir/a b+c%2F~é.txt",
        [("count", "3"), ("empty", ""), ("name", "été & co=1")],
    )
    text = rv.data.decode()
    assert text.startswith(repr(expected[:3])[:-1])
    for pair in expected[3]:
        assert repr(pair) in text
    assert "('tag', 'b'), ('tag', 'a')" in text
    # The same link with ~ and letters percent-encoded is the same link.
    respelled = link.replace("~", "%7E").replace("/dir/", "/%64ir/")
    assert pool.request("GET", base + respelled).status == 200


@pytest.mark.parametrize(
    "change",
    [
        lambda link: link + "&extra=1",
        lambda link: link + "&signature=AAAA",
        lambda link: re.sub(r"signature=([^&]+)", r"signature=\1&signature=\1", link),
        lambda link: re.sub(r"expires=(\d+)", r"expires=\1&expires=\1", link),
        lambda link: link.replace("tag=b&tag=a", "tag=a&tag=b"),
        lambda link: link.replace("tag=b&tag=a", "tag=b"),
        lambda link: link.replace("/007/", "/8/").replace("/7/", "/8/"),
        lambda link: re.sub(r"expires=(\d+)", r"expires=0\1", link),
        lambda link: re.sub(r"expires=(\d+)", r"expires=\1.0", link),
    ],
    ids=[
        "extra",
        "second-signature",
        "same-signature-twice",
        "same-expiry-twice",
        "reordered-values",
        "value-dropped",
        "other-variable",
        "leading-zero-expiry",
        "float-expiry",
    ],
)
def test_changed_links_are_403(
    app: Flask, base: str, pool: t.Any, change: cabc.Callable[[str], str]
) -> None:
    link = _sign(
        app, "echo", u=uuid.uuid4(), n=7, p="a.txt", tag=["b", "a"], expires_in=600
    )
    assert pool.request("GET", base + link).status == 200
    changed = change(link)
    assert changed != link
    assert pool.request("GET", base + changed).status == 403
