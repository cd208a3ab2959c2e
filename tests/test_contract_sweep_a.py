"""Contract sweep of DESIGN.md sections 1, 3 and 7, written from the text alone.

Every sentence of those sections that names something or states a behaviour
has at least one test here. "Every download" sentences run against each kind
of view (path, virtual, ``memory://`` storage, SQLite row, ``send_download``);
wire-level sentences run on Werkzeug's threaded server and on gunicorn.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import gzip
import http.client
import inspect
import io
import os
import pathlib
import socket
import typing as t
import urllib.parse
import uuid
import warnings
import wsgiref.validate

import flask
import flask.testing
import flask.views
import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.http import parse_options_header
from werkzeug.test import Client

import flask_download
from flask_download import BaseDownloadView
from flask_download import DownloadFile
from flask_download import DownloadMixin
from flask_download import DownloadResponse
from flask_download import DownloadView
from flask_download import FileNotFound
from flask_download import FlaskDownload
from flask_download import ObjectDownloadView
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download import StorageDownloadView
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.pytest_plugin import SAMPLE_FILES
from flask_download.pytest_plugin import SAMPLE_MTIME

try:
    from conftest import running_gunicorn
    from conftest import running_werkzeug
except ImportError:  # imported by gunicorn as tests.test_contract_sweep_a
    from tests.conftest import running_gunicorn
    from tests.conftest import running_werkzeug

#: The files every kind of view serves (name -> bytes).
FILES: dict[str, bytes] = {
    **SAMPLE_FILES,
    "table.csv": b"a,b\n1,2\n",
    "pic.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "doc.xhtml": b"<html xmlns='http://www.w3.org/1999/xhtml'/>",
    "feed.xml": b"<?xml version='1.0'?><a/>",
    "data.json": b'{"a": 1}',
    "notes.txt.gz": gzip.compress(b"notes\n", mtime=0),
    "big.bin": bytes(range(256)) * 4096,  # 1 MiB
}
#: Names that can travel in a URL path (a backslash is refused by design).
URL_NAMES = [name for name in FILES if "\\" not in name]
MTIME = datetime.datetime.fromtimestamp(SAMPLE_MTIME, datetime.timezone.utc)
KINDS = ("path", "virtual", "storage", "object", "send")
SEEKABLE_KINDS = KINDS


def write_root(root: pathlib.Path) -> pathlib.Path:
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (SAMPLE_MTIME, SAMPLE_MTIME))
    return root


class SweepVirtual(VirtualDownloadView):
    """Serves ``FILES[name]`` from memory, with the sample modification time."""

    def get_file(self) -> DownloadFile:
        name = self.kwargs["name"]
        if name not in FILES:
            raise FileNotFound(name)
        return VirtualFile(
            FILES[name], name=name.rsplit("/", 1)[-1], modified_time=MTIME
        )


def make_app(root: str, db_path: str) -> Flask:
    """An app serving ``FILES`` through every kind of view.

    ``/<kind>/<name>`` answers as an attachment, ``/inline/<kind>/<name>``
    inline; kinds are :data:`KINDS`.
    """
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{db_path}"
    FlaskDownload(app)

    import fsspec

    prefix = f"sweep-a-{uuid.uuid4().hex}"
    memory = fsspec.filesystem("memory")
    for name, content in FILES.items():
        memory.pipe(f"/{prefix}/{name}", content)

    db = SQLAlchemy()

    class Doc(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "doc"
        id: Mapped[int] = mapped_column(primary_key=True)
        slug: Mapped[str] = mapped_column(String(200), unique=True)
        name: Mapped[str] = mapped_column(String(200))
        content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
        mtime: Mapped[datetime.datetime | None] = mapped_column(DateTime)

    db.init_app(app)
    with app.app_context():
        db.create_all()
        if not db.session.query(Doc).count():
            for name, content in FILES.items():
                db.session.add(
                    Doc(
                        slug=name,
                        name=name.rsplit("/", 1)[-1],
                        content=content,
                        mtime=MTIME.replace(tzinfo=None),
                    )
                )
            db.session.commit()

    for attachment, pre in ((True, ""), (False, "/inline")):
        tag = "att" if attachment else "inl"
        app.add_url_rule(
            f"{pre}/path/<path:path>",
            view_func=PathDownloadView.as_view(
                f"path_{tag}", root=root, attachment=attachment
            ),
        )
        app.add_url_rule(
            f"{pre}/virtual/<path:name>",
            view_func=SweepVirtual.as_view(f"virtual_{tag}", attachment=attachment),
        )
        app.add_url_rule(
            f"{pre}/storage/<path:path>",
            view_func=StorageDownloadView.as_view(
                f"storage_{tag}",
                storage=f"memory://{prefix}",
                attachment=attachment,
            ),
        )
        app.add_url_rule(
            f"{pre}/object/<path:slug>",
            view_func=ObjectDownloadView.as_view(
                f"object_{tag}",
                model=Doc,
                file_field="content",
                basename_field="name",
                modification_time_field="mtime",
                slug_field="slug",
                attachment=attachment,
            ),
        )

        def send(path: str, attachment: bool = attachment) -> flask.Response:
            return send_download(path, root=root, attachment=attachment)

        app.add_url_rule(f"{pre}/send/<path:path>", f"send_{tag}", send)
    app.extensions["sweep_doc"] = (db, Doc)
    return app


class BufferedClient(flask.testing.FlaskClient):
    """A test client that reads and closes every response (as a server does)."""

    def open(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def tc(app: Flask) -> t.Any:
    app.test_client_class = BufferedClient
    return app.test_client()


def url(kind: str, name: str, inline: bool = False) -> str:
    return f"{'/inline' if inline else ''}/{kind}/{urllib.parse.quote(name)}"


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return write_root(tmp_path_factory.mktemp("sweep") / "root")


@pytest.fixture(scope="module")
def sweep_app(sweep_root: pathlib.Path) -> Flask:
    app = make_app(os.fspath(sweep_root), os.fspath(sweep_root.parent / "test.db"))
    app.testing = True
    return app


@pytest.fixture
def sc(sweep_app: Flask) -> t.Any:
    return tc(sweep_app)


# -- real servers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def werkzeug_base(sweep_root: pathlib.Path) -> cabc.Iterator[str]:
    app = make_app(os.fspath(sweep_root), os.fspath(sweep_root.parent / "wz.db"))
    with running_werkzeug(app) as base:
        yield base


@pytest.fixture(scope="module")
def gunicorn_base(sweep_root: pathlib.Path) -> cabc.Iterator[str]:
    root = os.fspath(sweep_root)
    db = os.fspath(sweep_root.parent / "gu.db")
    spec = f"tests.test_contract_sweep_a:make_app({root!r}, {db!r})"
    with running_gunicorn(spec, "--worker-class=gthread", "--threads=4") as base:
        yield base


@pytest.fixture(params=["werkzeug", "gunicorn"], scope="module")
def server(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.getfixturevalue(f"{request.param}_base"))


class Wire(t.NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get_all(name) or []
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


def wire(
    base: str, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Wire:
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        rv = conn.getresponse()
        return Wire(rv.status, rv.headers, rv.read())
    finally:
        conn.close()


def raw_exchange(base: str, request: bytes) -> bytes:
    """Send raw bytes, read everything until the server closes."""
    parsed = urllib.parse.urlsplit(base)
    assert parsed.hostname is not None and parsed.port is not None
    with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


# ============================================================================
# Section 1: the mixin API
# ============================================================================


def test_mixin_is_plain_object_with_documented_defaults() -> None:
    assert not issubclass(DownloadMixin, flask.views.View)
    assert DownloadMixin.response_class is DownloadResponse
    assert DownloadMixin.attachment is True
    assert DownloadMixin.basename is None
    assert DownloadMixin.mimetype is None
    assert DownloadMixin.encoding is None
    for name in (
        "get_file",
        "get_basename",
        "get_mimetype",
        "get_encoding",
        "was_modified_since",
        "not_modified_response",
        "download_response",
        "file_not_found_response",
        "render_to_response",
    ):
        assert callable(getattr(DownloadMixin, name)), name


def test_download_view_is_mixin_and_method_view() -> None:
    assert issubclass(DownloadView, DownloadMixin)
    assert issubclass(DownloadView, flask.views.MethodView)
    assert BaseDownloadView is DownloadView
    assert flask_download.BaseDownloadView is DownloadView
    for name in ("PathDownloadView", "VirtualDownloadView", "StorageDownloadView"):
        assert issubclass(getattr(flask_download, name), DownloadView)
    assert issubclass(ObjectDownloadView, DownloadView)


def test_base_get_file_raises_not_implemented() -> None:
    with pytest.raises(NotImplementedError):
        DownloadMixin().get_file()


def test_base_download_view_without_get_file_fails_loudly() -> None:
    app = Flask(__name__)
    app.testing = True
    app.add_url_rule("/x", view_func=DownloadView.as_view("x"))
    with pytest.raises(NotImplementedError):
        tc(app).get("/x")


def test_getters_return_the_attributes() -> None:
    mixin = DownloadMixin()
    assert mixin.get_basename() is None
    assert mixin.get_mimetype() is None
    assert mixin.get_encoding() is None
    mixin.basename, mixin.mimetype, mixin.encoding = "a.txt", "text/csv", "br"
    assert mixin.get_basename() == "a.txt"
    assert mixin.get_mimetype() == "text/csv"
    assert mixin.get_encoding() == "br"


def test_get_calls_render_to_response_with_kwargs() -> None:
    seen: list[dict[str, t.Any]] = []

    class Spy(VirtualDownloadView):
        content = b"x"
        basename = "x.bin"

        def render_to_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            seen.append(dict(self.kwargs))
            return super().render_to_response(*args, **kwargs)

    app = Flask(__name__)
    app.add_url_rule("/x/<int:n>", view_func=Spy.as_view("x"))
    rv = tc(app).get("/x/5")
    assert rv.status_code == 200 and rv.data == b"x"
    assert seen == [{"n": 5}]


def test_method_view_refuses_post() -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/x", view_func=VirtualDownloadView.as_view("x", content=b"x", basename="x")
    )
    assert tc(app).post("/x").status_code == 405


def test_as_view_sets_attributes_per_instance(download_root: pathlib.Path) -> None:
    app = Flask(__name__, root_path=os.fspath(download_root))
    app.add_url_rule(
        "/readme",
        view_func=PathDownloadView.as_view(
            "readme", path="hello.txt", root=os.fspath(download_root), attachment=False
        ),
    )
    rv = tc(app).get("/readme")
    assert rv.status_code == 200 and rv.data == SAMPLE_FILES["hello.txt"]
    assert rv.headers["Content-Disposition"].startswith("inline")
    assert PathDownloadView.attachment is True
    assert getattr(PathDownloadView, "path", None) is None


def test_as_view_unknown_keyword_type_error_at_as_view_time() -> None:
    with pytest.raises(TypeError):
        PathDownloadView.as_view("x", no_such_attribute=1)
    with pytest.raises(TypeError):
        VirtualDownloadView.as_view("y", contents=b"typo")


def test_as_view_fresh_instance_per_request() -> None:
    instances: list[int] = []

    class Counting(VirtualDownloadView):
        content = b"x"
        basename = "x.bin"
        marker: int = 0

        def get_file(self) -> DownloadFile:
            self.marker += 1
            instances.append(self.marker)
            return super().get_file()

    app = Flask(__name__)
    app.add_url_rule("/x", view_func=Counting.as_view("x"))
    client = tc(app)
    client.get("/x")
    client.get("/x")
    assert instances == [1, 1]
    assert Counting.marker == 0


def test_self_kwargs_in_every_method() -> None:
    seen: dict[str, t.Any] = {}

    class Echo(DownloadView):
        def get_file(self) -> DownloadFile:
            seen["get_file"] = dict(self.kwargs)
            return VirtualFile(b"abc", name="f.bin", modified_time=MTIME)

        def get_basename(self) -> str | None:
            seen["get_basename"] = dict(self.kwargs)
            return f"{self.kwargs['word']}.txt"

        def get_mimetype(self) -> str | None:
            seen["get_mimetype"] = dict(self.kwargs)
            return None

        def get_encoding(self) -> str | None:
            seen["get_encoding"] = dict(self.kwargs)
            return None

        def was_modified_since(self, file_instance: t.Any, since: t.Any) -> bool:
            seen["was_modified_since"] = dict(self.kwargs)
            return super().was_modified_since(file_instance, since)

        def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            seen["not_modified_response"] = dict(self.kwargs)
            return super().not_modified_response(*args, **kwargs)

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            seen["download_response"] = dict(self.kwargs)
            return super().download_response(*args, **kwargs)

    app = Flask(__name__)
    app.add_url_rule("/e/<word>", view_func=Echo.as_view("e"))
    client = tc(app)
    rv = client.get("/e/hello")
    assert rv.status_code == 200
    assert 'filename="hello.txt"' in rv.headers["Content-Disposition"]
    rv = client.get(
        "/e/hello", headers={"If-Modified-Since": "Wed, 01 Jan 2031 00:00:00 GMT"}
    )
    assert rv.status_code == 304
    for name in (
        "get_file",
        "get_basename",
        "get_mimetype",
        "get_encoding",
        "was_modified_since",
        "not_modified_response",
        "download_response",
    ):
        assert seen.get(name) == {"word": "hello"}, name


def test_file_not_found_response_default_and_override() -> None:
    class Missing(DownloadView):
        def get_file(self) -> DownloadFile:
            raise FileNotFound("nope")

    class Gone(Missing):
        def file_not_found_response(self) -> flask.Response:
            return flask.Response("gone", status=410)

    app = Flask(__name__)
    app.add_url_rule("/m", view_func=Missing.as_view("m"))
    app.add_url_rule("/g", view_func=Gone.as_view("g"))
    client = tc(app)
    assert client.get("/m").status_code == 404
    assert client.head("/m").status_code == 404
    rv = client.get("/g")
    assert rv.status_code == 410 and rv.data == b"gone"


def test_not_modified_response_receives_validators() -> None:
    calls: list[dict[str, t.Any]] = []

    class Tracked(SweepVirtual):
        def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            calls.append(kwargs)
            return super().not_modified_response(*args, **kwargs)

    app = Flask(__name__)
    app.add_url_rule("/v/<path:name>", view_func=Tracked.as_view("v"))
    client = tc(app)
    etag = client.get("/v/hello.txt").headers["ETag"]
    rv = client.get("/v/hello.txt", headers={"If-None-Match": etag})
    assert rv.status_code == 304
    assert len(calls) == 1
    headers = dict(calls[0]["headers"])
    assert headers["ETag"] == etag
    assert headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"


def test_not_modified_response_direct_call_is_304() -> None:
    app = Flask(__name__)
    with app.test_request_context():
        rv = DownloadMixin().not_modified_response(headers={"ETag": '"a"'})
        assert rv.status_code == 304
        assert rv.headers["ETag"] == '"a"'


def test_download_response_is_response_class() -> None:
    class Mine(DownloadResponse):
        pass

    app = Flask(__name__)
    app.add_url_rule(
        "/x",
        view_func=VirtualDownloadView.as_view(
            "x", content=b"x", basename="x.bin", response_class=Mine
        ),
    )
    seen: list[t.Any] = []

    @app.after_request
    def capture(rv: flask.Response) -> flask.Response:
        seen.append(rv)
        return rv

    tc(app).get("/x")
    assert isinstance(seen[0], Mine)


class _Wrapper(DownloadFile):
    def __init__(self, **attrs: t.Any) -> None:
        for key, value in attrs.items():
            setattr(self, key, value)


def _modified_time_raising(exc: type[BaseException]) -> DownloadFile:
    class Broken(DownloadFile):
        @property
        def modified_time(self) -> datetime.datetime | None:
            raise exc("cannot tell")

    return Broken()


def test_was_modified_since_contract() -> None:
    since = MTIME
    mixin = DownloadMixin()

    class Says(DownloadFile):
        def __init__(self, answer: t.Any) -> None:
            self.answer = answer

        def was_modified_since(self, since: datetime.datetime) -> t.Any:
            return self.answer

    assert mixin.was_modified_since(Says(False), since) is False
    assert mixin.was_modified_since(Says(True), since) is True
    # One-second resolution: fractions of the modification time do not count.
    frac = _Wrapper(modified_time=MTIME + datetime.timedelta(microseconds=900_000))
    assert mixin.was_modified_since(frac, since) is False
    later = _Wrapper(modified_time=MTIME + datetime.timedelta(seconds=1))
    assert mixin.was_modified_since(later, since) is True
    earlier = _Wrapper(modified_time=MTIME - datetime.timedelta(seconds=1))
    assert mixin.was_modified_since(earlier, since) is False
    # Cannot tell -> modified.
    assert mixin.was_modified_since(_Wrapper(modified_time=None), since) is True
    assert mixin.was_modified_since(_modified_time_raising(AttributeError), since)
    assert mixin.was_modified_since(_modified_time_raising(NotImplementedError), since)


def test_was_modified_since_receives_aware_utc() -> None:
    seen: list[datetime.datetime] = []

    class Spy(SweepVirtual):
        def was_modified_since(self, file_instance: t.Any, since: t.Any) -> bool:
            seen.append(since)
            return super().was_modified_since(file_instance, since)

    app = Flask(__name__)
    app.add_url_rule("/v/<path:name>", view_func=Spy.as_view("v"))
    rv = tc(app).get(
        "/v/hello.txt", headers={"If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"}
    )
    assert rv.status_code == 304
    assert seen == [MTIME]
    assert seen[0].utcoffset() == datetime.timedelta(0)


def test_views_work_without_extension(sweep_root: pathlib.Path) -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/p/<path:path>",
        view_func=PathDownloadView.as_view("p", root=os.fspath(sweep_root)),
    )
    app.add_url_rule("/v/<path:name>", view_func=SweepVirtual.as_view("v"))
    app.add_url_rule(
        "/s/<path:path>",
        "s",
        lambda path: send_download(path, root=os.fspath(sweep_root)),
    )
    client = tc(app)
    for prefix in ("/p", "/v", "/s"):
        rv = client.get(f"{prefix}/data.bin", headers={"Range": "bytes=0-3"})
        assert rv.status_code == 206, prefix
        assert rv.data == FILES["data.bin"][:4]


# -- HEAD ------------------------------------------------------------------------

HOP = {"date", "connection", "keep-alive", "server", "transfer-encoding"}


def _comparable(headers: t.Any) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in headers.items() if k.lower() not in HOP)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["hello.txt", "data.bin", "été.txt"])
def test_head_same_headers_as_get_no_body_client(
    sc: t.Any, kind: str, name: str
) -> None:
    get = sc.get(url(kind, name))
    head = sc.head(url(kind, name))
    assert get.status_code == head.status_code == 200
    assert head.data == b""
    assert _comparable(head.headers) == _comparable(get.headers)
    ranged = sc.head(url(kind, name), headers={"Range": "bytes=0-1"})
    assert ranged.status_code == 200
    assert ranged.headers["Content-Length"] == str(len(FILES[name]))
    assert "Content-Range" not in ranged.headers
    assert _comparable(ranged.headers) == _comparable(get.headers)


@pytest.mark.parametrize("kind", KINDS)
def test_head_on_real_server(server: str, kind: str) -> None:
    get = wire(server, url(kind, "big.bin"))
    head = wire(server, url(kind, "big.bin"), method="HEAD")
    assert get.status == head.status == 200
    assert _comparable(head.headers) == _comparable(get.headers)
    assert head.header("Content-Length") == str(len(FILES["big.bin"]))
    ranged = wire(server, url(kind, "big.bin"), {"Range": "bytes=0-1"}, "HEAD")
    assert ranged.status == 200
    assert ranged.header("Content-Length") == str(len(FILES["big.bin"]))
    assert ranged.header("Content-Range") is None
    # HEAD's answer is exactly headers: the connection's next bytes would be
    # the next response, so check on a raw socket that nothing follows.
    raw = raw_exchange(
        server,
        f"HEAD {url(kind, 'hello.txt')} HTTP/1.1\r\nHost: x\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    head_part, _, rest = raw.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 200")
    assert rest == b""


# ============================================================================
# Section 3: HTTP behaviour of every download response
# ============================================================================

# -- Content-Type ------------------------------------------------------------------

CONTENT_TYPES = {
    "hello.txt": "text/plain; charset=utf-8",
    "été.txt": "text/plain; charset=utf-8",
    "table.csv": "text/csv; charset=utf-8",
    "page.html": "text/html; charset=utf-8",
    "data.bin": "application/octet-stream",
    "data.json": "application/json",
    "pic.svg": "image/svg+xml",
    "archive.tar.gz": "application/gzip",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "expected"), sorted(CONTENT_TYPES.items()))
def test_content_type_every_kind(
    sc: t.Any, kind: str, name: str, expected: str
) -> None:
    rv = sc.get(url(kind, name))
    assert rv.status_code == 200
    assert rv.headers["Content-Type"] == expected


@pytest.mark.parametrize("kind", KINDS)
def test_binary_types_never_get_a_charset(sc: t.Any, kind: str) -> None:
    for name in ("data.bin", "data.json", "pic.svg", "archive.tar.gz", "feed.xml"):
        for inline in (False, True):
            rv = sc.get(url(kind, name, inline))
            content_type = rv.headers["Content-Type"]
            if not content_type.startswith("text/"):
                assert "charset" not in content_type, (name, content_type)


@pytest.mark.parametrize(
    ("mimetype", "expected"),
    [
        ("text/plain", "text/plain; charset=utf-8"),
        ("text/csv", "text/csv; charset=utf-8"),
        ("text/html", "text/html; charset=utf-8"),
        ("application/json", "application/json"),
        ("image/svg+xml", "image/svg+xml"),
        ("application/octet-stream", "application/octet-stream"),
        ("image/png", "image/png"),
    ],
)
def test_content_type_from_view_mimetype(
    sweep_root: pathlib.Path, mimetype: str, expected: str
) -> None:
    app = Flask(__name__)
    root = os.fspath(sweep_root)
    app.add_url_rule(
        "/p",
        view_func=PathDownloadView.as_view(
            "p", path="data.bin", root=root, mimetype=mimetype
        ),
    )
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view(
            "v", content=b"xyz", basename="f.bin", mimetype=mimetype
        ),
    )
    app.add_url_rule(
        "/s",
        "s",
        lambda: send_download(os.path.join(root, "data.bin"), mimetype=mimetype),
    )

    class Getter(VirtualDownloadView):
        content = b"xyz"

        def get_mimetype(self) -> str | None:
            return mimetype

    app.add_url_rule("/g", view_func=Getter.as_view("g"))
    client = tc(app)
    for path in ("/p", "/v", "/s", "/g"):
        assert client.get(path).headers["Content-Type"] == expected, path


def test_content_type_default_octet_stream_without_name() -> None:
    app = Flask(__name__)
    app.add_url_rule("/v", view_func=VirtualDownloadView.as_view("v", content=b"x"))
    app.add_url_rule("/s", "s", lambda: send_download(b"xyz"))
    app.add_url_rule("/i", "i", lambda: send_download(io.BytesIO(b"xyz")))
    client = tc(app)
    for path in ("/v", "/s", "/i"):
        rv = client.get(path)
        assert rv.headers["Content-Type"] == "application/octet-stream", path
        assert rv.headers["Content-Disposition"] == "attachment", path


def test_send_download_charset_keyword() -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/c",
        "c",
        lambda: send_download(b"caf\xe9", basename="x.txt", charset="iso-8859-1"),
    )
    app.add_url_rule(
        "/t",
        "t",
        lambda: send_download(io.StringIO("café"), basename="x.txt", charset="latin-1"),
    )
    client = tc(app)
    rv = client.get("/c")
    assert rv.headers["Content-Type"] == "text/plain; charset=iso-8859-1"
    rv = client.get("/t")
    assert rv.headers["Content-Type"] == "text/plain; charset=latin-1"
    assert rv.data == "café".encode("latin-1")
    assert rv.headers["Content-Length"] == "4"


# -- Content-Encoding ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_guessed_encoding_only_inline(sc: t.Any, kind: str) -> None:
    rv = sc.get(url(kind, "archive.tar.gz"))
    assert rv.headers["Content-Type"] == "application/gzip"
    assert "Content-Encoding" not in rv.headers
    assert rv.data == FILES["archive.tar.gz"]
    rv = sc.get(url(kind, "archive.tar.gz", inline=True))
    assert rv.headers["Content-Encoding"] == "gzip"
    assert rv.headers["Content-Type"] == "application/x-tar"
    rv = sc.get(url(kind, "notes.txt.gz", inline=True))
    assert rv.headers["Content-Encoding"] == "gzip"
    assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert rv.data == FILES["notes.txt.gz"]  # the bytes as they are
    rv = sc.get(url(kind, "notes.txt.gz"))
    assert "Content-Encoding" not in rv.headers
    assert rv.headers["Content-Type"] == "application/gzip"


def test_explicit_encoding_always_sent(sweep_root: pathlib.Path) -> None:
    root = os.fspath(sweep_root)
    app = Flask(__name__)
    app.add_url_rule(
        "/attr",
        view_func=PathDownloadView.as_view(
            "attr", path="notes.txt.gz", root=root, encoding="gzip"
        ),
    )

    class Getter(VirtualDownloadView):
        content = FILES["notes.txt.gz"]
        basename = "notes.txt"

        def get_encoding(self) -> str | None:
            return "gzip"

    app.add_url_rule("/getter", view_func=Getter.as_view("getter"))
    app.add_url_rule(
        "/send",
        "send",
        lambda: send_download(
            os.path.join(root, "notes.txt.gz"), basename="notes.txt", encoding="gzip"
        ),
    )
    app.add_url_rule(
        "/br",
        view_func=VirtualDownloadView.as_view(
            "br", content=b"xx", basename="x.bin", encoding="br"
        ),
    )
    client = tc(app)
    for path in ("/attr", "/getter", "/send"):
        rv = client.get(path)
        assert rv.headers["Content-Encoding"] == "gzip", path
        assert rv.headers["Content-Disposition"].startswith("attachment"), path
    assert client.get("/br").headers["Content-Encoding"] == "br"


# -- Content-Disposition ----------------------------------------------------------


def _disposition(app: Flask | None, basename: str, attachment: bool = True) -> str:
    app = Flask(__name__)
    view = VirtualDownloadView.as_view(
        f"v{uuid.uuid4().hex}", content=b"x", basename=basename, attachment=attachment
    )
    rule = f"/cd{uuid.uuid4().hex}"
    app.add_url_rule(rule, view_func=view)
    rv = tc(app).get(rule)
    assert rv.status_code == 200
    return t.cast(str, rv.headers["Content-Disposition"])


@pytest.mark.parametrize("kind", KINDS)
def test_disposition_every_kind(sc: t.Any, kind: str) -> None:
    rv = sc.get(url(kind, "hello.txt"))
    assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'
    rv = sc.get(url(kind, "hello.txt", inline=True))
    assert rv.headers["Content-Disposition"] == 'inline; filename="hello.txt"'
    rv = sc.get(url(kind, "été.txt"))
    value = rv.headers["Content-Disposition"]
    assert value.startswith("attachment; ")
    assert "filename*=UTF-8''%C3%A9t%C3%A9.txt" in value
    kind_, params = parse_options_header(value)
    assert kind_ == "attachment"
    assert params["filename"] == "été.txt"


def test_disposition_ascii_escapes() -> None:
    app = Flask(__name__)
    value = _disposition(app, 'we"ird;name\\.txt')
    assert value == 'attachment; filename="we\\"ird;name\\\\.txt"'
    assert parse_options_header(value) == (
        "attachment",
        {"filename": 'we"ird;name\\.txt'},
    )


@pytest.mark.parametrize(
    "name",
    ["日本語.pdf", "€.txt", "ü", "😀😀.tar.gz", "Ω", "é.é", "日本", "naïve file.txt"],
)
def test_disposition_non_ascii_fallback(name: str) -> None:
    app = Flask(__name__)
    for attachment in (True, False):
        value = _disposition(app, name, attachment)
        assert value.startswith("attachment; " if attachment else "inline; ")
        assert value.isascii()
        quoted = urllib.parse.quote(name, safe="")
        assert f"filename*=UTF-8''{quoted}" in value or (
            f"filename*=utf-8''{quoted}" in value
        )
        # The ASCII fallback: there, never empty, keeps the extension.
        fallback = value.split('filename="', 1)[1].split('"', 1)[0]
        assert fallback
        assert fallback.strip(".") != ""
        ext = os.path.splitext(name)[1]
        if ext and ext.isascii():
            assert fallback.endswith(ext), (name, fallback)
            assert fallback != ext, (name, fallback)


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("a\tb.txt", "ab.txt"),
        ("a\r\nX-Evil: 1.txt", "aX-Evil: 1.txt"),
        ("a\x00b\x7fc\x1fd.txt", "abcd.txt"),
        ("a\x85b\x9fc.txt", "abc.txt"),
        ("é\r\nSet-Cookie: a=b.txt", "éSet-Cookie: a=b.txt"),
    ],
)
def test_disposition_control_characters_deleted(name: str, clean: str) -> None:
    app = Flask(__name__)
    value = _disposition(app, name)
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value)
    _, params = parse_options_header(value)
    assert set(params) == {"filename"}
    assert params["filename"] == clean


@pytest.mark.parametrize(
    "name",
    [
        "a\"; filename*=UTF-8''evil.exe",
        'x.txt"; foo="bar',
        "a;b=c.txt",
        "a%0d%0aX: y.txt",
        "\\",
        '"',
        "\r\n",
        "\x00",
        "%",
        "=?utf-8?q?x?=.txt",
        'é"; filename="evil.exe',
        " ",
        "",
    ],
)
def test_disposition_cannot_add_parameters(name: str) -> None:
    app = Flask(__name__)
    value = _disposition(app, name)
    assert "\r" not in value and "\n" not in value
    _, params = parse_options_header(value)
    assert set(params) <= {"filename"}
    if "filename" in params:
        assert params["filename"] != "evil.exe"


def test_disposition_on_real_server(server: str) -> None:
    rv = wire(server, url("path", "été.txt"))
    assert rv.status == 200
    value = rv.header("Content-Disposition")
    assert value is not None and value.isascii()
    assert "filename*=UTF-8''%C3%A9t%C3%A9.txt" in value


# -- Content-Length, nosniff, CSP, Cache-Control --------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_content_length_and_nosniff_everywhere_client(sc: t.Any, kind: str) -> None:
    data = FILES["data.bin"]
    cases = [
        ("GET", {}, 200, len(data)),
        ("HEAD", {}, 200, len(data)),
        ("GET", {"Range": "bytes=10-19"}, 206, 10),
        ("GET", {"Range": "bytes=-5"}, 206, 5),
    ]
    for method, headers, status, length in cases:
        rv = sc.open(url(kind, "data.bin"), method=method, headers=headers)
        assert rv.status_code == status, (method, headers)
        assert rv.headers["Content-Length"] == str(length), (method, headers)
        assert rv.headers["X-Content-Type-Options"] == "nosniff", (method, headers)
    rv = sc.get(url(kind, "data.bin"), headers={"Range": "bytes=0-1,10-11"})
    assert rv.status_code == 206
    assert rv.headers["Content-Length"] == str(len(rv.data))
    assert rv.headers["X-Content-Type-Options"] == "nosniff"
    head = sc.head(url(kind, "data.bin"), headers={"Range": "bytes=0-1,10-11"})
    assert head.headers["Content-Length"] == str(len(data))


@pytest.mark.parametrize("kind", KINDS)
def test_content_length_on_real_server(server: str, kind: str) -> None:
    size = len(FILES["big.bin"])
    rv = wire(server, url(kind, "big.bin"))
    assert rv.status == 200 and rv.body == FILES["big.bin"]
    assert rv.header("Content-Length") == str(size)
    assert rv.header("Transfer-Encoding") is None
    assert rv.header("X-Content-Type-Options") == "nosniff"
    rv = wire(server, url(kind, "big.bin"), {"Range": "bytes=100-199"})
    assert rv.status == 206 and rv.body == FILES["big.bin"][100:200]
    assert rv.header("Content-Length") == "100"
    assert rv.header("Content-Range") == f"bytes 100-199/{size}"
    rv = wire(server, url(kind, "big.bin"), {"Range": "bytes=0-1,1000-1001"})
    assert rv.status == 206
    assert rv.header("Content-Length") == str(len(rv.body))
    assert rv.header("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["page.html", "pic.svg", "doc.xhtml", "feed.xml"])
def test_active_inline_types_sandboxed(sc: t.Any, kind: str, name: str) -> None:
    rv = sc.get(url(kind, name, inline=True))
    assert rv.status_code == 200
    assert rv.headers["Content-Security-Policy"] == "sandbox", rv.headers[
        "Content-Type"
    ]
    head = sc.head(url(kind, name, inline=True))
    assert head.headers["Content-Security-Policy"] == "sandbox"


@pytest.mark.parametrize("kind", KINDS)
def test_inactive_inline_types_not_sandboxed(sc: t.Any, kind: str) -> None:
    for name in ("hello.txt", "data.bin", "data.json"):
        rv = sc.get(url(kind, name, inline=True))
        assert "Content-Security-Policy" not in rv.headers, name


@pytest.mark.parametrize(
    "mimetype",
    [
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/xml",
        "text/xml",
        "TEXT/HTML",
        "Text/Html; charset=utf-8",
    ],
)
def test_active_type_given_by_view_is_sandboxed(mimetype: str) -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view(
            "v",
            content=b"<p>x</p>",
            basename="x.txt",
            attachment=False,
            mimetype=mimetype,
        ),
    )
    app.add_url_rule(
        "/s",
        "s",
        lambda: send_download(
            b"<p>x</p>", basename="x.txt", attachment=False, mimetype=mimetype
        ),
    )
    client = tc(app)
    for path in ("/v", "/s"):
        assert client.get(path).headers.get("Content-Security-Policy") == "sandbox"


def test_content_security_policy_attribute(sweep_root: pathlib.Path) -> None:
    app = Flask(__name__)
    root = os.fspath(sweep_root)
    app.add_url_rule(
        "/custom",
        view_func=PathDownloadView.as_view(
            "custom",
            path="page.html",
            root=root,
            attachment=False,
            content_security_policy="sandbox; default-src 'none'",
        ),
    )
    app.add_url_rule(
        "/none",
        view_func=PathDownloadView.as_view(
            "none",
            path="page.html",
            root=root,
            attachment=False,
            content_security_policy=None,
        ),
    )
    client = tc(app)
    rv = client.get("/custom")
    assert rv.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert "Content-Security-Policy" not in client.get("/none").headers


def test_object_view_private_by_default(sc: t.Any) -> None:
    for method in ("GET", "HEAD"):
        rv = sc.open(url("object", "hello.txt"), method=method)
        assert "private" in rv.headers["Cache-Control"]
        assert "public" not in rv.headers["Cache-Control"]
    rv = sc.get(url("object", "hello.txt"), headers={"Range": "bytes=0-1"})
    assert "private" in rv.headers["Cache-Control"]


# -- validators ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_validators_every_kind(sc: t.Any, kind: str) -> None:
    rv = sc.get(url(kind, "hello.txt"))
    etag = rv.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    if kind != "storage":  # the memory store has its own clock
        assert rv.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    else:
        assert "Last-Modified" in rv.headers
    # Different content -> different ETag.
    assert sc.get(url(kind, "data.bin")).headers["ETag"] != etag
    # The same resource -> the same ETag (stable).
    assert sc.get(url(kind, "hello.txt")).headers["ETag"] == etag


def test_virtual_etag_given_bare_and_none_for_streams() -> None:
    class Given(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"x", name="x.bin", etag="v1")

    class Stream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"a", b"b"]), name="x.bin")

    app = Flask(__name__)
    app.add_url_rule("/g", view_func=Given.as_view("g"))
    app.add_url_rule("/s", view_func=Stream.as_view("s"))
    client = tc(app)
    assert client.get("/g").headers["ETag"] == '"v1"'
    rv = client.get("/s", headers={"Range": "bytes=0-0"})
    assert rv.status_code == 200 and rv.data == b"ab"
    assert "ETag" not in rv.headers
    assert "Accept-Ranges" not in rv.headers
    assert "Last-Modified" not in rv.headers


# -- preconditions -------------------------------------------------------------------

PAST = "Mon, 01 Jan 2001 00:00:00 GMT"
FUTURE = "Sat, 01 Jan 2050 00:00:00 GMT"
EXACT = "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.mark.parametrize("kind", KINDS)
def test_precondition_order(sc: t.Any, kind: str) -> None:
    u = url(kind, "hello.txt")
    etag = sc.get(u).headers["ETag"]
    weak = f"W/{etag}"

    def status(**headers: str) -> int:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        return t.cast(int, sc.get(u, headers=hdrs).status_code)

    # If-Match: strong comparison, first.
    assert status(If_Match='"nope"', If_None_Match=etag) == 412
    assert status(If_Match=weak) == 412
    assert status(If_Match=etag) == 200
    assert status(If_Match="*") == 200
    assert status(If_Match=f'"x", {etag}') == 200
    # If-Unmodified-Since only when If-Match is absent.
    if kind != "storage":
        assert status(If_Unmodified_Since=PAST) == 412
        assert status(If_Match=etag, If_Unmodified_Since=PAST) == 200
        assert status(If_Unmodified_Since=EXACT) == 200
    assert status(If_Unmodified_Since=FUTURE) == 200
    # If-None-Match: weak comparison; wins over If-Modified-Since.
    assert status(If_None_Match=etag) == 304
    assert status(If_None_Match=weak) == 304
    assert status(If_None_Match="*") == 304
    assert status(If_None_Match=f'"x", {weak}') == 304
    assert status(If_None_Match='"nope"', If_Modified_Since=FUTURE) == 200
    assert status(If_None_Match=etag, If_Modified_Since=PAST) == 304
    # If-Modified-Since.
    assert status(If_Modified_Since=FUTURE) == 304
    assert status(If_Modified_Since=PAST) == 200
    if kind != "storage":
        assert status(If_Modified_Since=EXACT) == 304
    # Then Range: a 304 beats a Range, a 412 too.
    assert status(If_None_Match=etag, Range="bytes=0-1") == 304
    assert status(If_Match='"nope"', Range="bytes=0-1") == 412
    assert status(If_Match=etag, Range="bytes=0-1") == 206
    assert status(If_Match='"nope"', Range="bytes=9999-") == 412


@pytest.mark.parametrize("kind", KINDS)
def test_304_and_412_shape_client(sc: t.Any, kind: str) -> None:
    u = url(kind, "hello.txt")
    full = sc.get(u)
    etag = full.headers["ETag"]
    for method in ("GET", "HEAD"):
        rv = sc.open(u, method=method, headers={"If-None-Match": etag})
        assert rv.status_code == 304
        assert rv.data == b""
        assert rv.headers["ETag"] == etag
        assert rv.headers["Last-Modified"] == full.headers["Last-Modified"]
        assert rv.headers["Cache-Control"] == full.headers["Cache-Control"]
        assert "Content-Disposition" not in rv.headers
        rv = sc.open(u, method=method, headers={"If-Match": '"nope"'})
        assert rv.status_code == 412
        assert rv.data == b""


@pytest.mark.parametrize("kind", KINDS)
def test_304_and_412_on_real_server(server: str, kind: str) -> None:
    u = url(kind, "hello.txt")
    full = wire(server, u)
    etag = full.header("ETag")
    assert etag
    size = str(len(FILES["hello.txt"]))
    rv = wire(server, u, {"If-None-Match": etag})
    assert rv.status == 304
    assert rv.body == b""
    assert rv.header("ETag") == etag
    assert rv.header("Last-Modified") == full.header("Last-Modified")
    assert rv.header("Cache-Control") == full.header("Cache-Control")
    assert rv.header("Content-Disposition") is None
    # RFC 9110 8.6: a Content-Length on a 304 must be the 200's, if sent.
    assert rv.header("Content-Length") in (None, size)
    # RFC 9110 15.4.5: no representation metadata beyond the validators.
    assert rv.header("Content-Type") is None
    assert rv.header("Content-Encoding") is None
    rv = wire(server, u, {"If-Match": '"nope"'})
    assert rv.status == 412
    assert rv.body == b""
    assert rv.header("Content-Length") in (None, "0")
    assert rv.header("Content-Disposition") is None
    # A 304 on a keep-alive connection must not leave body bytes behind.
    raw = raw_exchange(
        server,
        (
            f"GET {u} HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"
            f"GET {u} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ).encode(),
    )
    first, _, rest = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 304")
    if b"\r\nconnection: close" not in first.lower():  # Werkzeug always closes
        assert rest.startswith(b"HTTP/1.1 200"), rest[:80]


BAD_DATES = [
    "garbage",
    "",
    "Mon, 32 Jan 2020 00:00:00 GMT",
    "Mon, 01 Jan 99999 00:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Sat, 01 Jan 0001 00:00:00 GMT",
    "Thu, 01 Jan 1970 00:00:00 +9999",
    "9" * 400,
    "Mon, 01 Jan 2001 25:61:61 GMT",
    "-1",
    "1700000000",
    "Tue, 14 Nov 2023 22:13:20 GMT, Tue, 14 Nov 2023 22:13:20 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "header", ["If-Modified-Since", "If-Unmodified-Since", "If-Range"]
)
def test_unparseable_or_absurd_dates_never_500(
    sc: t.Any, kind: str, header: str
) -> None:
    for value in BAD_DATES:
        headers = {header: value}
        if header == "If-Range":
            headers["Range"] = "bytes=0-1"
        rv = sc.get(url(kind, "hello.txt"), headers=headers)
        assert rv.status_code in (200, 206, 304, 412), (value, rv.status_code)
        if value in ("garbage", "", "-1", "9" * 400, "Mon, 32 Jan 2020 00:00:00 GMT"):
            # Unparseable: ignored (the full 200).
            assert rv.status_code == 200, value


def test_obsolete_date_formats_accepted(sc: t.Any) -> None:
    # RFC 9110 5.6.7: recipients accept the two obsolete formats.
    rv = sc.get(
        url("path", "hello.txt"),
        headers={"If-Modified-Since": "Wednesday, 01-Jan-31 00:00:00 GMT"},
    )
    assert rv.status_code in (200, 304)
    rv = sc.get(
        url("path", "hello.txt"),
        headers={"If-Modified-Since": "Wed Jan  1 00:00:00 2031"},
    )
    assert rv.status_code == 304


# -- ranges -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_ranges_every_kind(sc: t.Any, kind: str) -> None:
    data = FILES["data.bin"]
    n = len(data)
    u = url(kind, "data.bin")
    rv = sc.get(u)
    assert rv.headers["Accept-Ranges"] == "bytes"
    etag = rv.headers["ETag"]
    last_modified = rv.headers["Last-Modified"]
    rv = sc.get(u, headers={"Range": "bytes=10-19"})
    assert rv.status_code == 206 and rv.data == data[10:20]
    assert rv.headers["Content-Range"] == f"bytes 10-19/{n}"
    assert rv.headers["Content-Disposition"] == 'attachment; filename="data.bin"'
    assert rv.headers["Content-Type"] == "application/octet-stream"
    assert rv.headers["ETag"] == etag
    rv = sc.get(u, headers={"Range": f"bytes={n - 5}-{n + 100}"})
    assert rv.status_code == 206 and rv.data == data[-5:]
    assert rv.headers["Content-Range"] == f"bytes {n - 5}-{n - 1}/{n}"
    for unsatisfiable in (
        f"bytes={n}-",
        f"bytes={n + 5}-{n + 9}",
        "bytes=-0",
        "bytes=" + "9" * 500 + "-",
    ):
        rv = sc.get(u, headers={"Range": unsatisfiable})
        assert rv.status_code == 416, unsatisfiable
        assert rv.headers["Content-Range"] == f"bytes */{n}", unsatisfiable
    # If-Range with strong validators only.
    rv = sc.get(u, headers={"Range": "bytes=0-1", "If-Range": etag})
    assert rv.status_code == 206
    rv = sc.get(u, headers={"Range": "bytes=0-1", "If-Range": f"W/{etag}"})
    assert rv.status_code == 200 and rv.data == data
    rv = sc.get(u, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert rv.status_code == 200 and rv.data == data
    if kind != "storage":
        rv = sc.get(u, headers={"Range": "bytes=0-1", "If-Range": last_modified})
        assert rv.status_code == 206
    rv = sc.get(u, headers={"Range": "bytes=0-1", "If-Range": PAST})
    assert rv.status_code == 200
    # Unknown unit, malformed -> ignored.
    for ignored in (
        "items=0-1",
        "bytes=abc",
        "bytes=5-1",
        "bytes=",
        "bytes 0-1",
        "bytes=--1",
        "bytes=1-2-3",
        "bytes=0x10-0x20",
        "bytes=+1-2",
        "bytes=0-1;x",
        "BYTES=0-1x",
    ):
        rv = sc.get(u, headers={"Range": ignored})
        assert rv.status_code == 200 and rv.data == data, ignored
    # Empty list elements are allowed (RFC 9110 5.6.1.2).
    rv = sc.get(u, headers={"Range": "bytes=0-1,"})
    assert rv.status_code == 206 and rv.data == data[0:2]
    # Unit names are case-insensitive (RFC 9110 14.1).
    rv = sc.get(u, headers={"Range": "Bytes=0-1"})
    assert rv.status_code == 206


def _parts(rv: t.Any) -> list[tuple[str, str, bytes]]:
    content_type = rv.headers["Content-Type"]
    kind, params = parse_options_header(content_type)
    assert kind == "multipart/byteranges"
    boundary = params["boundary"].encode()
    body = rv.data if hasattr(rv, "data") else rv.body
    out = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")
        )
        assert content.endswith(b"\r\n")
        out.append((headers["Content-Type"], headers["Content-Range"], content[:-2]))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_multipart_and_coalescing(sc: t.Any, kind: str) -> None:
    data = FILES["data.bin"]
    n = len(data)
    u = url(kind, "data.bin")
    rv = sc.get(u, headers={"Range": "bytes=0-1,10-11"})
    assert rv.status_code == 206
    assert "Content-Range" not in rv.headers
    assert _parts(rv) == [
        ("application/octet-stream", f"bytes 0-1/{n}", data[0:2]),
        ("application/octet-stream", f"bytes 10-11/{n}", data[10:12]),
    ]
    # Overlapping and adjacent ranges are coalesced.
    rv = sc.get(u, headers={"Range": "bytes=0-5,3-8,20-21,22-23"})
    assert rv.status_code == 206
    assert [p[1:] for p in _parts(rv)] == [
        (f"bytes 0-8/{n}", data[0:9]),
        (f"bytes 20-23/{n}", data[20:24]),
    ]
    # Out of order: answered in the order asked or sorted, but every byte right.
    rv = sc.get(u, headers={"Range": "bytes=100-101,0-1"})
    parts = _parts(rv)
    assert {p[1] for p in parts} == {f"bytes 0-1/{n}", f"bytes 100-101/{n}"}
    for _, crange, content in parts:
        first, last = map(int, crange.split()[1].split("/")[0].split("-"))
        assert content == data[first : last + 1]
    # An unsatisfiable range among satisfiable ones is dropped.
    rv = sc.get(u, headers={"Range": f"bytes=0-1,{n + 10}-{n + 20}"})
    assert rv.status_code == 206 and rv.data == data[0:2]


@pytest.mark.parametrize("kind", KINDS)
def test_coalesced_to_one_range_is_single_part(sc: t.Any, kind: str) -> None:
    data = FILES["data.bin"]
    rv = sc.get(url(kind, "data.bin"), headers={"Range": "bytes=0-1,2-3"})
    assert rv.status_code == 206
    assert rv.headers["Content-Range"] == f"bytes 0-3/{len(data)}"
    assert rv.data == data[0:4]


@pytest.mark.parametrize("kind", KINDS)
def test_too_many_ranges_or_too_many_bytes_get_the_whole_file(
    sc: t.Any, kind: str
) -> None:
    data = FILES["data.bin"]
    u = url(kind, "data.bin")
    fifty = ",".join(f"{i * 3}-{i * 3}" for i in range(50))
    rv = sc.get(u, headers={"Range": f"bytes={fifty}"})
    assert rv.status_code == 206
    assert len(_parts(rv)) == 50
    fifty_one = ",".join(f"{i * 3}-{i * 3}" for i in range(51))
    rv = sc.get(u, headers={"Range": f"bytes={fifty_one}"})
    assert rv.status_code == 200 and rv.data == data
    assert "Content-Range" not in rv.headers
    rv = sc.get(u, headers={"Range": "bytes=0-,0-"})
    assert rv.status_code == 200 and rv.data == data
    rv = sc.get(u, headers={"Range": "bytes=0-600,400-1000"})
    assert rv.status_code == 200 and rv.data == data


def test_download_max_ranges_config(sweep_root: pathlib.Path) -> None:
    app = Flask(__name__)
    app.config["DOWNLOAD_MAX_RANGES"] = 2
    FlaskDownload(app)
    app.add_url_rule(
        "/p/<path:path>",
        view_func=PathDownloadView.as_view("p", root=os.fspath(sweep_root)),
    )
    client = tc(app)
    assert (
        client.get("/p/data.bin", headers={"Range": "bytes=0-0,2-2"}).status_code == 206
    )
    rv = client.get("/p/data.bin", headers={"Range": "bytes=0-0,2-2,4-4"})
    assert rv.status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_ranges_on_real_server(server: str, kind: str) -> None:
    data = FILES["big.bin"]
    n = len(data)
    u = url(kind, "big.bin")
    rv = wire(server, u, {"Range": f"bytes={n}-"})
    assert rv.status == 416
    assert rv.header("Content-Range") == f"bytes */{n}"
    assert rv.header("Content-Length") in (None, str(len(rv.body)))
    rv = wire(server, u, {"Range": "bytes=0-1,500000-500001,1048570-"})
    assert rv.status == 206
    parts = _parts(rv)
    assert [p[2] for p in parts] == [data[0:2], data[500000:500002], data[1048570:]]
    assert rv.header("Content-Length") == str(len(rv.body))
    rv = wire(server, u, {"Range": "bytes=-70000"})
    assert rv.status == 206 and rv.body == data[-70000:]


# -- text sources ---------------------------------------------------------------------


def test_text_sources_are_bytes_on_the_wire(tmp_path: pathlib.Path) -> None:
    text_path = tmp_path / "t.txt"
    text_path.write_text("été\n" * 3, encoding="utf-8")

    class Chunks(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter(["é", "t", "é"]), name="x.txt")

    class StringIOView(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(io.StringIO("été"), name="x.txt")

    class Str(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile("été", name="x.txt")

    app = Flask(__name__)
    app.add_url_rule("/chunks", view_func=Chunks.as_view("chunks"))
    app.add_url_rule("/stringio", view_func=StringIOView.as_view("stringio"))
    app.add_url_rule("/str", view_func=Str.as_view("str"))
    app.add_url_rule(
        "/textfile",
        "textfile",
        lambda: send_download(
            open(text_path, encoding="utf-8"),  # noqa: SIM115
            basename="t.txt",
        ),
    )
    app.add_url_rule(
        "/sendstr",
        "sendstr",
        lambda: send_download(io.StringIO("été"), basename="x.txt"),
    )
    client = Client(wsgiref.validate.validator(app))
    expected = {
        "/chunks": "été".encode(),
        "/stringio": "été".encode(),
        "/str": "été".encode(),
        "/textfile": ("été\n" * 3).encode(),
        "/sendstr": "été".encode(),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for path, body in expected.items():
            rv = client.get(path)
            assert rv.status_code == 200, path
            assert rv.data == body, path
            if "Content-Length" in rv.headers:
                assert rv.headers["Content-Length"] == str(len(body)), path
            rv.close()
    rv = client.get("/str")
    assert rv.headers["Content-Length"] == "5"
    rv.close()


# -- growing and shrinking local files -------------------------------------------------


@pytest.mark.parametrize("kind", ["path", "send"])
@pytest.mark.parametrize("change", ["grow", "shrink"])
@pytest.mark.parametrize("ranged", [False, True])
def test_file_changing_while_sent(
    server: str,
    sweep_root: pathlib.Path,
    kind: str,
    change: str,
    ranged: bool,
) -> None:
    size = 8 * 1024 * 1024
    original = bytes(range(251)) * (size // 251 + 1)
    original = original[:size]
    name = f"changing-{uuid.uuid4().hex}.bin"
    path = sweep_root / name
    path.write_bytes(original)
    range_header = "Range: bytes=100-\r\n" if ranged else ""
    expected = original[100:] if ranged else original
    parsed = urllib.parse.urlsplit(server)
    assert parsed.hostname is not None and parsed.port is not None
    try:
        with socket.socket() as s:
            # A small window (set before connecting, so the transfer stays
            # fast): the server is still sending when the file changes.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.settimeout(30)
            s.connect((parsed.hostname, parsed.port))
            s.sendall(
                f"GET {url(kind, name)} HTTP/1.1\r\nHost: x\r\n{range_header}"
                "Connection: close\r\n\r\n".encode()
            )
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(1)
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])
            }
            announced = int(headers["content-length"])
            assert announced == len(expected)
            if change == "grow":
                with open(path, "ab") as f:
                    f.write(b"Z" * 1_000_000)
            else:
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
            while chunk := s.recv(65536):
                body += chunk
    finally:
        path.unlink()
    if change == "grow":
        assert len(body) == announced
        assert body == expected
    else:
        assert len(body) <= announced
        assert expected.startswith(body)


# -- chunking, file_wrapper, closing ---------------------------------------------------


def test_chunks_of_download_chunk_size() -> None:
    app = Flask(__name__)
    app.config["DOWNLOAD_CHUNK_SIZE"] = 1000
    FlaskDownload(app)
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view("v", content=b"x" * 5500, basename="x"),
    )
    rv = tc(app).get("/v", buffered=False)
    chunks = list(rv.response)
    rv.close()
    assert b"".join(chunks) == b"x" * 5500
    assert max(len(c) for c in chunks) <= 1000
    assert len(chunks) >= 6


@pytest.mark.parametrize("kind", ["path", "send"])
def test_local_files_use_file_wrapper(sc: t.Any, kind: str) -> None:
    calls: list[tuple[t.Any, int]] = []

    class Wrapper:
        def __init__(self, filelike: t.Any, block_size: int = 8192) -> None:
            calls.append((filelike, block_size))
            self.filelike = filelike
            self.block_size = block_size

        def __iter__(self) -> t.Iterator[bytes]:
            while data := self.filelike.read(self.block_size):
                yield data

        def close(self) -> None:
            self.filelike.close()

    data = FILES["data.bin"]
    env = {"wsgi.file_wrapper": Wrapper}
    rv = sc.get(url(kind, "data.bin"), environ_overrides=env)
    assert rv.data == data
    assert len(calls) == 1
    rv = sc.get(
        url(kind, "data.bin"), headers={"Range": "bytes=10-19"}, environ_overrides=env
    )
    assert rv.status_code == 206 and rv.data == data[10:20]
    assert len(calls) == 2


class ClosingBytes(io.BytesIO):
    closed_count = 0

    def close(self) -> None:
        if not self.closed:
            ClosingBytes.closed_count += 1
        super().close()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"If-None-Match": "*"},
        {"If-Match": '"nope"'},
        {"Range": "bytes=5000-"},
        {"Range": "bytes=0-1"},
        {"Range": "bytes=0-1,5-6"},
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_every_handle_closed(headers: dict[str, str], method: str) -> None:
    opened: list[ClosingBytes] = []

    class Tracked(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            handle = ClosingBytes(b"0123456789")
            opened.append(handle)
            return VirtualFile(handle, name="x.bin", etag="e")

    def send() -> flask.Response:
        handle = ClosingBytes(b"0123456789")
        opened.append(handle)
        return send_download(handle, basename="x.bin", etag="e")

    app = Flask(__name__)
    app.add_url_rule("/v", view_func=Tracked.as_view("v"))
    app.add_url_rule("/s", "s", send)
    client = tc(app)
    for path in ("/v", "/s"):
        rv = client.open(path, method=method, headers=headers)
        rv.get_data()
        rv.close()
    assert opened and all(h.closed for h in opened)


def test_handle_closed_when_client_hangs_up(server: str) -> None:
    data = b""
    parsed = urllib.parse.urlsplit(server)
    assert parsed.hostname is not None and parsed.port is not None
    for kind in KINDS:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as s:
            s.sendall(
                f"GET {url(kind, 'big.bin')} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            data = s.recv(100)
            assert data.startswith(b"HTTP/1.1 200")
    # The server is still fine afterwards.
    assert wire(server, url("path", "hello.txt")).body == FILES["hello.txt"]


# ============================================================================
# Section 7: send_download
# ============================================================================


def test_send_download_signature() -> None:
    params = inspect.signature(send_download).parameters
    names = list(params)
    assert names[0] == "source"
    assert params["source"].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    expected_defaults = {
        "root": None,
        "basename": None,
        "attachment": True,
        "mimetype": None,
        "encoding": None,
        "charset": None,
        "cache_control": None,
        "cache_max_age": None,
    }
    for name, default in expected_defaults.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default == default, name
    # send_file's keywords: a **send_file_kwargs, or each of them named.
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for name in (
            "as_attachment",
            "download_name",
            "max_age",
            "conditional",
            "etag",
            "last_modified",
        ):
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert flask_download.send_download is send_download


def test_send_download_sources(
    sweep_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    root = os.fspath(sweep_root)
    app = Flask(__name__, root_path=root)
    data = FILES["data.bin"]
    sources: dict[str, t.Callable[[], t.Any]] = {
        "abs_str": lambda: os.path.join(root, "data.bin"),
        "pathlike": lambda: sweep_root / "data.bin",
        "relative": lambda: "data.bin",
        "relative_pathlike": lambda: pathlib.Path("data.bin"),
        "binary_file": lambda: open(sweep_root / "data.bin", "rb"),  # noqa: SIM115
        "bytesio": lambda: io.BytesIO(data),
        "bytes": lambda: data,
        "wrapper": lambda: VirtualFile(data, name="data.bin"),
    }
    for key, make in sources.items():
        app.add_url_rule(
            f"/{key}", key, lambda make=make: send_download(make(), basename="data.bin")
        )
    client = tc(app)
    for key in sources:
        rv = client.get(f"/{key}")
        assert rv.status_code == 200, key
        assert rv.data == data, key
        assert rv.headers["Content-Disposition"] == 'attachment; filename="data.bin"'
        rv = client.get(f"/{key}", headers={"Range": "bytes=1-2"})
        assert rv.status_code == 206 and rv.data == data[1:3], key
        rv.close()


def test_send_download_path_name_used_without_basename(
    sweep_root: pathlib.Path,
) -> None:
    app = Flask(__name__, root_path=os.fspath(sweep_root))
    app.add_url_rule("/x", "x", lambda: send_download("hello.txt"))
    rv = tc(app).get("/x")
    assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'
    assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "bad",
    [
        "../secret.txt",
        "/etc/passwd",
        "..%2fsecret.txt",
        "sub/../../secret.txt",
        "sub\\..\\..\\secret.txt",
        "hello.txt\x00.png",
        "",
        ".",
        "sub",
        "nope.txt",
    ],
)
def test_send_download_root_confines(tmp_path: pathlib.Path, bad: str) -> None:
    root = write_root(tmp_path / "root")
    (tmp_path / "secret.txt").write_bytes(b"SECRET")
    app = Flask(__name__)
    app.add_url_rule(
        "/x", "x", lambda: send_download(flask.request.args["p"], root=os.fspath(root))
    )
    rv = tc(app).get("/x", query_string={"p": bad})
    assert rv.status_code == 404
    assert b"SECRET" not in rv.data


def test_send_download_root_symlink_out(tmp_path: pathlib.Path) -> None:
    root = write_root(tmp_path / "root")
    (tmp_path / "secret.txt").write_bytes(b"SECRET")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    app = Flask(__name__)
    app.add_url_rule(
        "/x/<path:p>", "x", lambda p: send_download(p, root=os.fspath(root))
    )
    client = tc(app)
    assert client.get("/x/link.txt").status_code == 404
    assert client.get("/x/sub/nested.txt").data == FILES["sub/nested.txt"]


def test_send_file_keywords(sweep_root: pathlib.Path) -> None:
    root = os.fspath(sweep_root)
    path = os.path.join(root, "hello.txt")
    app = Flask(__name__)
    seen: list[t.Any] = []

    def max_age(p: t.Any) -> int:
        seen.append(p)
        return 42

    views: dict[str, t.Callable[[], t.Any]] = {
        "inline": lambda: send_download(path, as_attachment=False),
        "attachment": lambda: send_download(path, as_attachment=True),
        "name": lambda: send_download(path, download_name="other.csv"),
        "mimetype": lambda: send_download(path, mimetype="text/csv"),
        "max_age": lambda: send_download(path, max_age=60),
        "max_age_callable": lambda: send_download(path, max_age=max_age),
        "unconditional": lambda: send_download(path, conditional=False),
        "no_etag": lambda: send_download(path, etag=False),
        "etag_str": lambda: send_download(path, etag="custom"),
        "last_modified": lambda: send_download(
            path,
            last_modified=datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone.utc),
        ),
        "last_modified_ts": lambda: send_download(path, last_modified=1_600_000_000),
    }
    for key, make in views.items():
        app.add_url_rule(f"/{key}", key, lambda make=make: make())
    client = tc(app)
    assert client.get("/inline").headers["Content-Disposition"].startswith("inline")
    assert (
        client.get("/attachment")
        .headers["Content-Disposition"]
        .startswith("attachment")
    )
    rv = client.get("/name")
    assert rv.headers["Content-Disposition"] == 'attachment; filename="other.csv"'
    assert rv.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert client.get("/mimetype").headers["Content-Type"] == "text/csv; charset=utf-8"
    rv = client.get("/max_age")
    assert "max-age=60" in rv.headers["Cache-Control"]
    rv = client.get("/max_age_callable")
    assert "max-age=42" in rv.headers["Cache-Control"]
    assert seen, "a callable max_age is called, as Flask does"
    etag = client.get("/unconditional").headers.get("ETag", '"x"')
    rv = client.get(
        "/unconditional", headers={"If-None-Match": etag, "Range": "bytes=0-1"}
    )
    assert rv.status_code == 200
    assert rv.data == FILES["hello.txt"]
    assert "ETag" not in client.get("/no_etag").headers
    assert client.get("/etag_str").headers["ETag"] == '"custom"'
    rv = client.get("/etag_str", headers={"If-None-Match": '"custom"'})
    assert rv.status_code == 304
    rv = client.get("/last_modified")
    assert rv.headers["Last-Modified"] == "Thu, 02 Jan 2020 00:00:00 GMT"
    rv = client.get("/last_modified_ts")
    assert rv.headers["Last-Modified"] == "Sun, 13 Sep 2020 12:26:40 GMT"


def test_send_download_cache_keywords(sweep_root: pathlib.Path) -> None:
    path = os.path.join(os.fspath(sweep_root), "hello.txt")
    app = Flask(__name__)
    app.add_url_rule(
        "/cc", "cc", lambda: send_download(path, cache_control="private, no-store")
    )
    app.add_url_rule("/ma", "ma", lambda: send_download(path, cache_max_age=120))
    client = tc(app)
    cc = client.get("/cc").headers["Cache-Control"]
    assert "private" in cc and "no-store" in cc
    assert "max-age=120" in client.get("/ma").headers["Cache-Control"]
    # A 304 carries the same Cache-Control.
    etag = client.get("/ma").headers["ETag"]
    rv = client.get("/ma", headers={"If-None-Match": etag})
    assert rv.status_code == 304 and "max-age=120" in rv.headers["Cache-Control"]


def test_send_download_unknown_keyword_is_type_error(sweep_root: pathlib.Path) -> None:
    app = Flask(__name__)
    with app.test_request_context(), pytest.raises(TypeError):
        send_download(os.path.join(sweep_root, "hello.txt"), no_such_keyword=1)


def test_send_download_signals(sweep_root: pathlib.Path) -> None:
    from flask_download import download_finished
    from flask_download import download_started

    events: list[str] = []

    def started(sender: t.Any, **kwargs: t.Any) -> None:
        events.append("started")

    def finished(sender: t.Any, **kwargs: t.Any) -> None:
        events.append(f"finished:{kwargs['bytes_sent']}:{kwargs['completed']}")

    app = Flask(__name__)
    path = os.path.join(os.fspath(sweep_root), "hello.txt")
    app.add_url_rule("/x", "x", lambda: send_download(path))
    with (
        download_started.connected_to(started, app),
        download_finished.connected_to(finished, app),
    ):
        rv = tc(app).get("/x")
        rv.close()
    assert events == ["started", f"finished:{len(FILES['hello.txt'])}:True"]


def test_send_download_offload_rules(sweep_root: pathlib.Path) -> None:
    app = Flask(__name__)
    app.config["DOWNLOAD_ACCEL"] = "nginx"
    app.config["DOWNLOAD_ACCEL_RULES"] = [
        {"source_dir": os.fspath(sweep_root), "destination_url": "/protected/"}
    ]
    FlaskDownload(app)
    path = os.path.join(os.fspath(sweep_root), "hello.txt")
    app.add_url_rule("/x", "x", lambda: send_download(path))
    rv = tc(app).get("/x")
    assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"
    assert rv.data == b""
    assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'


def test_send_download_on_real_server(server: str) -> None:
    rv = wire(server, url("send", "hello.txt"))
    assert rv.status == 200 and rv.body == FILES["hello.txt"]
    rv = wire(server, url("send", "../secret.txt"))
    assert rv.status == 404
    rv = wire(server, "/send/%2e%2e/test.db")
    assert rv.status == 404


# ============================================================================
# Second pass: readings a different engineer could take
# ============================================================================


def test_view_mimetype_with_own_charset_is_kept() -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view(
            "v",
            content=b"caf\xe9",
            basename="x.txt",
            mimetype="text/plain; charset=latin-1",
        ),
    )
    rv = tc(app).get("/v")
    assert rv.headers["Content-Type"] == "text/plain; charset=latin-1"


@pytest.mark.parametrize("kind", KINDS)
def test_multipart_parts_carry_full_content_type(sc: t.Any, kind: str) -> None:
    rv = sc.get(url(kind, "hello.txt"), headers={"Range": "bytes=0-1,5-6"})
    assert rv.status_code == 206
    parts = _parts(rv)
    assert [p[0] for p in parts] == ["text/plain; charset=utf-8"] * 2
    assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'


@pytest.mark.parametrize("kind", KINDS)
def test_partial_responses_keep_download_headers(sc: t.Any, kind: str) -> None:
    full = sc.get(url(kind, "page.html", inline=True))
    for headers in ({"Range": "bytes=0-1"}, {"Range": "bytes=0-1,5-6"}):
        rv = sc.get(url(kind, "page.html", inline=True), headers=headers)
        assert rv.status_code == 206
        for name in (
            "ETag",
            "Last-Modified",
            "Cache-Control",
            "Content-Disposition",
            "Content-Security-Policy",
            "X-Content-Type-Options",
            "Accept-Ranges",
        ):
            assert rv.headers.get(name) == full.headers.get(name), (headers, name)
    rv = sc.get(url(kind, "notes.txt.gz", inline=True), headers={"Range": "bytes=0-1"})
    assert rv.status_code == 206
    assert rv.headers["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("kind", KINDS)
def test_error_statuses_keep_nosniff_and_never_leak_disposition(
    sc: t.Any, kind: str
) -> None:
    u = url(kind, "data.bin")
    rv = sc.get(u, headers={"Range": "bytes=99999-"})
    assert rv.status_code == 416
    assert rv.headers["Content-Range"] == f"bytes */{len(FILES['data.bin'])}"
    assert rv.headers.get("X-Content-Type-Options") == "nosniff"
    assert sc.get(url(kind, "missing.bin")).status_code == 404


def test_streamed_source_headers() -> None:
    class Stream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"ab", b"cd"]), name="x.bin")

    class Sized(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"ab", b"cd"]), name="x.bin", size=4)

    app = Flask(__name__)
    app.add_url_rule("/s", view_func=Stream.as_view("s"))
    app.add_url_rule("/z", view_func=Sized.as_view("z"))
    client = tc(app)
    rv = client.get("/s")
    assert rv.data == b"abcd" and "Content-Length" not in rv.headers
    head = client.head("/s")
    assert head.status_code == 200 and "Content-Length" not in head.headers
    rv = client.get("/z", headers={"Range": "bytes=0-0"})
    assert rv.status_code == 200 and rv.data == b"abcd"
    assert rv.headers["Content-Length"] == "4"
    assert client.head("/z").headers["Content-Length"] == "4"
    # Preconditions on a source without validators.
    assert client.get("/s", headers={"If-Match": '"x"'}).status_code == 412
    assert client.get("/s", headers={"If-Match": "*"}).status_code == 200
    assert client.get("/s", headers={"If-None-Match": "*"}).status_code == 304
    rv = client.get("/s", headers={"If-Modified-Since": FUTURE})
    assert rv.status_code == 200


def test_streamed_source_on_real_server() -> None:
    class Stream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"ab"] * 1000), name="x.bin")

    app = Flask(__name__)
    app.add_url_rule("/s", view_func=Stream.as_view("s"))
    with running_werkzeug(app) as base:
        rv = wire(base, "/s")
        assert rv.status == 200 and rv.body == b"ab" * 1000
        assert rv.header("Accept-Ranges") is None
        assert rv.header("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("kind", ["path", "virtual", "send"])
def test_empty_file(tmp_path: pathlib.Path, kind: str) -> None:
    (tmp_path / "empty.bin").write_bytes(b"")
    app = Flask(__name__)
    root = os.fspath(tmp_path)
    if kind == "path":
        view = PathDownloadView.as_view("e", path="empty.bin", root=root)
        app.add_url_rule("/e", view_func=view)
    elif kind == "virtual":
        view = VirtualDownloadView.as_view("e", content=b"", basename="empty.bin")
        app.add_url_rule("/e", view_func=view)
    else:
        app.add_url_rule("/e", "e", lambda: send_download("empty.bin", root=root))
    client = tc(app)
    rv = client.get("/e")
    assert rv.status_code == 200 and rv.data == b""
    assert rv.headers["Content-Length"] == "0"
    for spec in ("bytes=0-", "bytes=0-0"):
        rv = client.get("/e", headers={"Range": spec})
        assert rv.status_code == 416, spec
        assert rv.headers["Content-Range"] == "bytes */0"
    # RFC 9110 §14.1.1: a non-zero suffix is satisfiable on an empty file;
    # no Content-Range can say "zero bytes", so it is the whole (empty) file.
    rv = client.get("/e", headers={"Range": "bytes=-5"})
    assert rv.status_code == 200 and rv.data == b""
    assert rv.headers["Content-Length"] == "0"
    assert "Content-Range" not in rv.headers


def test_future_modified_time_not_after_date() -> None:
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)

    class Future(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"0123456789", name="x.bin", modified_time=future)

    app = Flask(__name__)
    app.add_url_rule("/f", view_func=Future.as_view("f"))
    client = tc(app)
    rv = client.get("/f")
    from werkzeug.http import parse_date

    last_modified = parse_date(rv.headers["Last-Modified"])
    assert last_modified is not None
    # RFC 9110 8.8.2.1: never later than the message's Date.
    if "Date" in rv.headers:
        date = parse_date(rv.headers["Date"])
        assert date is not None and last_modified <= date
    # A date validator that is not strong never satisfies If-Range.
    rv = client.get(
        "/f",
        headers={"Range": "bytes=0-1", "If-Range": rv.headers["Last-Modified"]},
    )
    assert rv.status_code == 200


def test_object_charset_and_mime_type_fields(tmp_path: pathlib.Path) -> None:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'c.db'}"
    db = SQLAlchemy()

    class Row(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "row"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        content: Mapped[bytes] = mapped_column(LargeBinary)
        mime: Mapped[str | None] = mapped_column(String(50), nullable=True)
        charset: Mapped[str | None] = mapped_column(String(50), nullable=True)

    db.init_app(app)
    with app.app_context():
        db.create_all()
        db.session.add_all(
            [
                Row(
                    id=1, name="a.txt", content=b"caf\xe9", mime=None, charset="latin-1"
                ),
                Row(id=2, name="a.bin", content=b"x", mime=None, charset="latin-1"),
                Row(id=3, name="a.bin", content=b"x", mime="text/plain", charset=None),
                Row(
                    id=4, name="a.txt", content=b"x", mime="image/png", charset="utf-8"
                ),
            ]
        )
        db.session.commit()
    app.add_url_rule(
        "/r/<int:id>",
        view_func=ObjectDownloadView.as_view(
            "r",
            model=Row,
            file_field="content",
            basename_field="name",
            mime_type_field="mime",
            charset_field="charset",
        ),
    )
    client = tc(app)
    assert client.get("/r/1").headers["Content-Type"] == "text/plain; charset=latin-1"
    assert client.get("/r/2").headers["Content-Type"] == "application/octet-stream"
    assert client.get("/r/3").headers["Content-Type"] == "text/plain; charset=utf-8"
    assert client.get("/r/4").headers["Content-Type"] == "image/png"


def test_object_view_cache_control_override(sweep_app: Flask) -> None:
    db, doc = sweep_app.extensions["sweep_doc"]
    app = Flask(__name__)
    app.config.update(sweep_app.config)
    db.init_app(app)
    app.add_url_rule(
        "/o/<path:slug>",
        view_func=ObjectDownloadView.as_view(
            "o",
            model=doc,
            file_field="content",
            basename_field="name",
            cache_control="public, max-age=60",
        ),
    )
    rv = tc(app).get("/o/hello.txt")
    assert rv.status_code == 200
    assert rv.headers["Cache-Control"] == "public, max-age=60"


@pytest.mark.parametrize("kind", KINDS)
def test_inline_non_ascii_and_bare_dispositions(sc: t.Any, kind: str) -> None:
    rv = sc.get(url(kind, "été.txt", inline=True))
    value = rv.headers["Content-Disposition"]
    assert value.startswith("inline; ")
    assert "filename*=UTF-8''%C3%A9t%C3%A9.txt" in value


def test_bare_dispositions_without_name() -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/i", view_func=VirtualDownloadView.as_view("i", content=b"x", attachment=False)
    )
    app.add_url_rule("/s", "s", lambda: send_download(b"x", attachment=False))
    client = tc(app)
    assert client.get("/i").headers["Content-Disposition"] == "inline"
    assert client.get("/s").headers["Content-Disposition"] == "inline"


def test_head_with_preconditions(sc: t.Any) -> None:
    u = url("path", "hello.txt")
    etag = sc.get(u).headers["ETag"]
    assert sc.head(u, headers={"If-None-Match": etag}).status_code == 304
    assert sc.head(u, headers={"If-Match": '"x"'}).status_code == 412
    rv = sc.head(u, headers={"Range": "bytes=999-"})
    assert rv.status_code == 200
    assert rv.headers["Content-Length"] == str(len(FILES["hello.txt"]))


def test_send_download_flask_max_age_meaning(sweep_root: pathlib.Path) -> None:
    # Flask: a positive max_age makes the response public and cacheable.
    path = os.path.join(os.fspath(sweep_root), "hello.txt")
    app = Flask(__name__)
    app.add_url_rule("/m", "m", lambda: send_download(path, max_age=60))
    rv = tc(app).get("/m")
    cc = rv.headers["Cache-Control"]
    assert "max-age=60" in cc
    assert "no-cache" not in cc


def test_send_download_download_name_non_ascii(sweep_root: pathlib.Path) -> None:
    path = os.path.join(os.fspath(sweep_root), "hello.txt")
    app = Flask(__name__)
    app.add_url_rule("/n", "n", lambda: send_download(path, download_name="résumé.pdf"))
    rv = tc(app).get("/n")
    value = rv.headers["Content-Disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in value
    assert rv.headers["Content-Type"] == "application/pdf"


def test_send_download_root_with_pathlike_and_nested(sweep_root: pathlib.Path) -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/n",
        "n",
        lambda: send_download(pathlib.Path("sub/nested.txt"), root=sweep_root),
    )
    rv = tc(app).get("/n")
    assert rv.status_code == 200 and rv.data == FILES["sub/nested.txt"]
    assert rv.headers["Content-Disposition"] == 'attachment; filename="nested.txt"'


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("😀😀.tar.gz", ".tar.gz"),
        ("✓✓.tar.bz2", ".tar.bz2"),
        ("日本語.tar.gz", ".tar.gz"),
        ("архив.tar.gz", ".tar.gz"),
    ],
)
def test_disposition_fallback_keeps_compound_extension(
    name: str, extension: str
) -> None:
    # Symbols that fold to nothing must not eat the dot of an inner
    # extension: "😀😀.tar.gz" fell back to "tar.gz".
    value = flask_download.content_disposition(name)
    fallback = value.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.endswith(extension), fallback
    assert len(fallback) > len(extension), fallback


def test_wrapper_encoding_always_sent() -> None:
    class Encoded(DownloadFile):
        name = "notes.txt"
        size = len(FILES["notes.txt.gz"])
        encoding = "gzip"

        def chunks(self, *args: t.Any, **kwargs: t.Any) -> t.Iterator[bytes]:
            yield FILES["notes.txt.gz"]

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return Encoded()

    app = Flask(__name__)
    app.add_url_rule("/w", view_func=View.as_view("w"))
    rv = tc(app).get("/w")
    assert rv.status_code == 200
    assert rv.headers["Content-Encoding"] == "gzip"
    assert rv.headers["Content-Disposition"].startswith("attachment")


class EventBytes(io.BytesIO):
    """A stream that says when it is closed."""

    def __init__(self, data: bytes, event: t.Any) -> None:
        super().__init__(data)
        self.event = event

    def close(self) -> None:
        self.event.set()
        super().close()


@pytest.mark.parametrize("route", ["/view", "/send"])
def test_handle_closed_when_client_hangs_up_midway(route: str) -> None:
    import threading

    closed = threading.Event()
    big = b"x" * (16 * 1024 * 1024)

    app = Flask(__name__)
    app.add_url_rule(
        "/view",
        view_func=VirtualDownloadView.as_view(
            "view", content=lambda: EventBytes(big, closed), basename="x.bin"
        ),
    )
    app.add_url_rule(
        "/send",
        "send",
        lambda: send_download(EventBytes(big, closed), basename="x.bin"),
    )
    with running_werkzeug(app) as base:
        parsed = urllib.parse.urlsplit(base)
        assert parsed.hostname is not None and parsed.port is not None
        with socket.create_connection((parsed.hostname, parsed.port), timeout=30) as s:
            s.sendall(f"GET {route} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.1 200")
            assert not closed.is_set()
        # The client is gone with most of the body unsent: the server's next
        # write fails and the stream must be closed then.
        assert closed.wait(20)


@pytest.mark.parametrize("kind", KINDS)
def test_default_chunk_size_is_64_kib(sc: t.Any, kind: str) -> None:
    rv = sc.get(url(kind, "big.bin"), buffered=False)
    try:
        sizes = [len(chunk) for chunk in rv.response]
    finally:
        rv.close()
    assert sum(sizes) == len(FILES["big.bin"])
    assert max(sizes) == 64 * 1024
