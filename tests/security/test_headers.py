"""Response headers from stored values: active types, media types, caching.

An uploaded ``.svg`` or ``.html`` shown inline runs script in the site's
origin (``nosniff`` does not stop it): inline active types carry
``Content-Security-Policy: sandbox``. A media type, charset or encoding read
from a row (``text/plain€``) used to be a 500 on multipart ranges and a
dropped connection on a plain GET: invalid values are ignored. Rows are
usually per user: ``ObjectDownloadView`` answers are ``private`` (#12).
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import pytest
from flask import Flask
from flask import request

from flask_download import DownloadFile
from flask_download import FlaskDownload
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.response import content_type_and_encoding
from flask_download.response import is_active_type
from flask_download.response import valid_media_type

from .conftest import LiveServer
from .conftest import start_server
from .conftest import stop_server

PAGE = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"


class _StoredView(VirtualDownloadView):
    """Serves ``?name=`` with ``?type=``, ``?charset=``, ``?encoding=`` set
    on the wrapper, as ObjectDownloadView does from a row."""

    def get_file(self) -> DownloadFile:
        file = VirtualFile(PAGE * 4, name=request.args.get("name", "upload"))
        for attr, param in (
            ("mimetype", "type"),
            ("charset", "charset"),
            ("encoding", "encoding"),
        ):
            value = request.args.get(param)
            if value is not None:
                setattr(file, attr, value)
        return file


def make_app() -> Flask:
    app = Flask("headers_app")
    FlaskDownload(app)
    app.add_url_rule("/attachment", view_func=_StoredView.as_view("attachment"))
    app.add_url_rule(
        "/inline", view_func=_StoredView.as_view("inline", attachment=False)
    )
    app.add_url_rule(
        "/inline-no-csp",
        view_func=_StoredView.as_view(
            "inline_no_csp", attachment=False, content_security_policy=None
        ),
    )
    app.add_url_rule(
        "/inline-custom",
        view_func=_StoredView.as_view(
            "inline_custom",
            attachment=False,
            content_security_policy="sandbox allow-downloads",
        ),
    )
    return app


@pytest.fixture(scope="module")
def server() -> cabc.Iterator[LiveServer]:
    live = start_server(make_app())
    try:
        yield live
    finally:
        stop_server(live)


ACTIVE_NAMES = ["x.html", "x.htm", "x.xhtml", "x.svg", "x.xml", "x.xsl"]
PASSIVE_NAMES = ["x.png", "x.jpg", "x.pdf", "x.txt", "x.mp4", "x.mp3", "x.bin"]


@pytest.mark.parametrize("name", ACTIVE_NAMES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_inline_active_types_are_sandboxed(
    server: LiveServer, name: str, method: str
) -> None:
    response = server.request(f"/inline?name={name}", method=method)
    assert response.status == 200
    assert response.get_all("Content-Security-Policy") == ["sandbox"]


@pytest.mark.parametrize("name", PASSIVE_NAMES)
def test_inline_passive_types_are_left_alone(server: LiveServer, name: str) -> None:
    response = server.request(f"/inline?name={name}")
    assert response.status == 200
    assert response.header("Content-Security-Policy") is None


@pytest.mark.parametrize("name", ACTIVE_NAMES)
def test_attachments_need_no_sandbox(server: LiveServer, name: str) -> None:
    response = server.request(f"/attachment?name={name}")
    assert response.header("Content-Security-Policy") is None


@pytest.mark.parametrize(
    "stored", ["text/html", "image/svg+xml", "application/rss+xml", "TEXT/HTML"]
)
def test_a_stored_active_type_is_sandboxed_whatever_the_name(
    server: LiveServer, stored: str
) -> None:
    response = server.request(f"/inline?name=x.png&type={stored.replace('+', '%2B')}")
    assert response.header("Content-Security-Policy") == "sandbox"


def test_ranges_of_inline_active_content_are_sandboxed(server: LiveServer) -> None:
    single = server.request("/inline?name=x.svg", [("Range", "bytes=0-9")])
    assert single.status == 206
    assert single.header("Content-Security-Policy") == "sandbox"
    multi = server.request("/inline?name=x.svg", [("Range", "bytes=0-9,20-29")])
    assert multi.status == 206
    assert multi.header("Content-Security-Policy") == "sandbox"


def test_the_policy_is_the_views(server: LiveServer) -> None:
    dropped = server.request("/inline-no-csp?name=x.svg")
    assert dropped.header("Content-Security-Policy") is None
    custom = server.request("/inline-custom?name=x.svg")
    assert custom.header("Content-Security-Policy") == "sandbox allow-downloads"


# -- media types, charsets and encodings from a row ----------------------------

#: Stored values that are not RFC 9110 tokens or media types.
BAD_TYPES = {
    "euro": "text/plain\u20ac",
    "latin1": "text/plain\u00e9",
    "no-subtype": "text",
    "space": "text /plain",
    "empty-param": "text/plain; charset=",
    "bad-param": "text/plain; charset=utf-8\u20ac",
    "unterminated-quote": 'text/plain; a="b',
    "slash-in-subtype": "text/pl/ain",
    "empty": "",
}


@pytest.mark.parametrize("value", BAD_TYPES.values(), ids=BAD_TYPES.keys())
@pytest.mark.parametrize(
    "headers",
    [[], [("Range", "bytes=0-9")], [("Range", "bytes=0-9,20-29")]],
    ids=["whole", "range", "multipart"],
)
def test_invalid_stored_media_type_falls_back_to_guessing(
    server: LiveServer, value: str, headers: list[tuple[str, str]]
) -> None:
    from urllib.parse import quote

    response = server.request(f"/attachment?name=a.txt&type={quote(value)}", headers)
    assert response.status in (200, 206)
    content_type = response.header("Content-Type") or ""
    if len(headers) and "," in headers[0][1]:
        assert content_type.startswith("multipart/byteranges; boundary=")
        assert b"Content-Type: text/plain; charset=utf-8\r\n" in response.body
    else:
        assert content_type == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "value", ["utf-8\u20ac", "utf 8", "", "utf-8; x=y", '"utf-8"'], ids=repr
)
def test_invalid_stored_charset_falls_back_to_utf8(
    server: LiveServer, value: str
) -> None:
    from urllib.parse import quote

    response = server.request(
        f"/attachment?name=a.txt&charset={quote(value)}", [("Range", "bytes=0-1,5-9")]
    )
    assert response.status == 206
    assert b"Content-Type: text/plain; charset=utf-8\r\n" in response.body


def test_invalid_stored_encoding_is_not_sent(server: LiveServer) -> None:
    response = server.request("/attachment?name=a.txt&encoding=gz%E2%82%AC")
    assert response.status == 200
    assert response.header("Content-Encoding") is None


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("text/plain", True),
        ("text/plain; charset=utf-8", True),
        ('multipart/byteranges; boundary="a b"', True),
        ("application/vnd.api+json;v=1", True),
        ("text/plain\u20ac", False),
        ("text/plain\r\nX-Injected: 1", False),
        ("text/plain; charset=\u00e9", False),
        ("/plain", False),
        (None, False),
    ],
)
def test_valid_media_type(value: str | None, valid: bool) -> None:
    assert valid_media_type(value) is valid


@pytest.mark.parametrize(
    ("content_type", "active"),
    [
        ("text/html; charset=utf-8", True),
        ("application/xhtml+xml", True),
        ("image/svg+xml", True),
        ("text/xml", True),
        ("application/xml", True),
        ("image/png", False),
        ("application/pdf", False),
        ("text/plain; charset=utf-8", False),
        ("video/mp4", False),
        ("audio/mpeg", False),
        ("application/octet-stream", False),
    ],
)
def test_is_active_type(content_type: str, active: bool) -> None:
    assert is_active_type(content_type) is active


def test_content_type_ignores_invalid_values_without_raising() -> None:
    decided = content_type_and_encoding("a.html", "bad\u20ac", "br\u20ac", "x y", False)
    assert decided == ("text/html; charset=utf-8", None)


# -- ObjectDownloadView caching -------------------------------------------------


def _object_app(tmp_path: t.Any, **config: t.Any) -> Flask:
    sa = pytest.importorskip("sqlalchemy")
    orm = pytest.importorskip("sqlalchemy.orm")
    from flask_download import ObjectDownloadView

    class Base(orm.DeclarativeBase):
        pass

    class Row(Base):
        __tablename__ = "row"
        id = sa.Column(sa.Integer, primary_key=True)
        file = sa.Column(sa.LargeBinary)

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        session.add(Row(id=1, file=b"per-user content"))
        session.commit()
    app = Flask("rows")
    app.config.update(config)
    FlaskDownload(app)
    sessions = orm.sessionmaker(engine)
    app.add_url_rule(
        "/rows/<int:id>",
        view_func=ObjectDownloadView.as_view("rows", model=Row, session=sessions),
    )
    app.add_url_rule(
        "/shared/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "shared", model=Row, session=sessions, cache_control="public, max-age=60"
        ),
    )
    app.extensions["test_engine"] = engine
    return app


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "private, no-cache"),
        ({"DOWNLOAD_CACHE_MAX_AGE": 300}, "private, max-age=300"),
    ],
    ids=["default", "max-age"],
)
def test_object_downloads_are_private_by_default(
    tmp_path: t.Any, config: dict[str, t.Any], expected: str
) -> None:
    app = _object_app(tmp_path, **config)
    try:
        client = app.test_client()
        with client.get("/rows/1") as rv:
            assert rv.status_code == 200
            assert rv.headers["Cache-Control"] == expected
            etag = rv.headers["ETag"]
        with client.get("/rows/1", headers={"If-None-Match": etag}) as rv:
            assert rv.status_code == 304
            assert rv.headers["Cache-Control"] == expected
        with client.get("/shared/1") as rv:
            assert rv.headers["Cache-Control"] == "public, max-age=60"
    finally:
        app.extensions["test_engine"].dispose()
