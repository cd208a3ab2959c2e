"""Contract sweep (DESIGN.md sections 2, 4, 5, 6, 8 and 9), written from the
contract text: public names only, as an outside acceptance suite would."""

from __future__ import annotations

import base64
import binascii
import collections.abc as cabc
import datetime
import hashlib
import http.client
import io
import os
import pathlib
import struct
import time
import typing as t
import zipfile
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from conftest import free_port
from conftest import NGINX
from conftest import NGINX_CONF_HEAD
from conftest import running_gunicorn
from conftest import running_nginx
from conftest import running_werkzeug
from flask import Flask
from flask import url_for
from sqlalchemy import orm

import flask_download
from flask_download import ArchiveFile
from flask_download import DownloadFile
from flask_download import DownloadView
from flask_download import FileNotFound
from flask_download import FlaskDownload
from flask_download import make_download_blueprint
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import signature_required
from flask_download import signed_url_for
from flask_download import StorageDownloadView
from flask_download import StorageFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download import ZipDownloadView

UTC = datetime.timezone.utc
SECRET = "a-long-enough-secret-key-for-tests-0123456789"


def make_app(root: pathlib.Path | None = None, **config: t.Any) -> Flask:
    app = Flask("sweep_b", root_path=os.fspath(root or pathlib.Path.cwd()))
    app.config.update(TESTING=True, SECRET_KEY=SECRET)
    if root is not None:
        app.config["DOWNLOAD_ROOT"] = os.fspath(root)
    app.config.update(config)
    return app


class Got(t.NamedTuple):
    status_code: int
    headers: t.Any
    data: bytes


def fetch(client: t.Any, url: str, method: str = "GET", **kwargs: t.Any) -> Got:
    """Request ``url`` with the test client, read the body and close it."""
    with client.open(url, method=method, **kwargs) as rv:
        return Got(rv.status_code, rv.headers, rv.get_data())


def raw_get(
    base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        rv = conn.getresponse()
        return rv.status, rv.headers, rv.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Section 2: wrappers
# --------------------------------------------------------------------------


class TestWrappers:
    def test_every_wrapper_is_a_download_file(
        self, download_root: pathlib.Path
    ) -> None:
        import fsspec

        fs = fsspec.filesystem("memory")
        fs.pipe("/sweepb/x.txt", b"x")
        try:
            wrappers = [
                PathFile(download_root / "hello.txt"),
                VirtualFile(b"x"),
                StorageFile(fs, "/sweepb/x.txt"),
                ArchiveFile([]),
            ]
            for wrapper in wrappers:
                assert isinstance(wrapper, DownloadFile)
        finally:
            fs.rm("/sweepb", recursive=True)

    def test_path_file_exposes_what_it_knows(self, download_root: pathlib.Path) -> None:
        f = PathFile(download_root / "hello.txt")
        assert f.name == "hello.txt"
        assert f.size == len(b"Hello, world!\n")
        assert f.modified_time is not None
        assert f.modified_time.tzinfo is not None
        assert f.modified_time.utcoffset() == datetime.timedelta(0)
        assert f.etag is not None
        assert b"".join(f.chunks()) == b"Hello, world!\n"
        assert f.seekable

    def test_path_file_name_argument(self, download_root: pathlib.Path) -> None:
        assert (
            PathFile(download_root / "hello.txt", name="other.txt").name == "other.txt"
        )

    def test_path_file_missing_raises_file_not_found(
        self, tmp_path: pathlib.Path
    ) -> None:
        with pytest.raises(FileNotFound):
            f = PathFile(tmp_path / "nope.txt")
            b"".join(f.chunks())

    def test_file_not_found_is_public(self) -> None:
        assert flask_download.FileNotFound is FileNotFound

    def test_virtual_file_none_for_unknown(self) -> None:
        f = VirtualFile(iter([b"a", b"b"]))
        assert f.name is None
        assert f.size is None
        assert f.modified_time is None
        assert f.etag is None
        assert f.url is None

    def test_virtual_file_str_encoded_utf8(self) -> None:
        f = VirtualFile("été", name="x.txt")
        assert f.size == len("été".encode())
        assert b"".join(f.chunks()) == "été".encode()

    def test_virtual_file_etag_bare_is_quoted_once(self) -> None:
        app = make_app()

        class Given(VirtualDownloadView):
            def get_file(self) -> DownloadFile:
                return VirtualFile(iter([b"abc"]), name="g.bin", etag="v1")

        app.add_url_rule("/g", view_func=Given.as_view("g"))
        rv = fetch(app.test_client(), "/g")
        assert rv.headers["ETag"] == '"v1"'
        assert rv.data == b"abc"
        # If-None-Match with the quoted tag -> 304.
        assert (
            fetch(
                app.test_client(), "/g", headers={"If-None-Match": '"v1"'}
            ).status_code
            == 304
        )

    def test_virtual_iterator_no_range_no_accept_ranges_no_etag(self) -> None:
        app = make_app()

        class It(VirtualDownloadView):
            def get_file(self) -> DownloadFile:
                return VirtualFile(iter([b"abc", "déf"]), name="it.bin")

        app.add_url_rule("/it", view_func=It.as_view("it"))
        client = app.test_client()
        rv = fetch(client, "/it", headers={"Range": "bytes=0-1"})
        assert rv.status_code == 200
        assert rv.data == b"abc" + "déf".encode()
        assert (
            "Accept-Ranges" not in rv.headers or rv.headers["Accept-Ranges"] == "none"
        )
        assert "ETag" not in rv.headers

    @pytest.mark.parametrize("content", ["hello wörld", b"hello world"])
    def test_virtual_str_bytes_seekable(self, content: str | bytes) -> None:
        app = make_app()
        app.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view(
                "v", content=content, basename="v.txt"
            ),
        )
        client = app.test_client()
        data = content.encode() if isinstance(content, str) else content
        rv = fetch(client, "/v")
        assert rv.data == data
        assert rv.headers["Accept-Ranges"] == "bytes"
        assert rv.headers["Content-Length"] == str(len(data))
        etag = rv.headers["ETag"]
        assert not etag.startswith("W/")
        assert 'filename="v.txt"' in rv.headers["Content-Disposition"]
        rv = fetch(client, "/v", headers={"Range": "bytes=1-3"})
        assert rv.status_code == 206
        assert rv.data == data[1:4]
        # Strong ETag is a content hash: same content -> same tag, other -> other.
        other = make_app()
        other.add_url_rule(
            "/v", view_func=VirtualDownloadView.as_view("v", content=data, basename="w")
        )
        assert fetch(other.test_client(), "/v").headers["ETag"] == etag
        other2 = make_app()
        other2.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view(
                "v", content=data + b"!", basename="w"
            ),
        )
        assert fetch(other2.test_client(), "/v").headers["ETag"] != etag

    def test_virtual_file_like(self) -> None:
        app = make_app()

        class FL(VirtualDownloadView):
            def get_file(self) -> DownloadFile:
                return VirtualFile(io.BytesIO(b"0123456789"), name="f.bin")

        app.add_url_rule("/f", view_func=FL.as_view("f"))
        rv = fetch(app.test_client(), "/f")
        assert rv.data == b"0123456789"

    def test_virtual_modified_time_last_modified(self) -> None:
        when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
        app = make_app()

        class M(VirtualDownloadView):
            def get_file(self) -> DownloadFile:
                return VirtualFile(b"x", name="m.bin", modified_time=when)

        app.add_url_rule("/m", view_func=M.as_view("m"))
        rv = fetch(app.test_client(), "/m")
        assert rv.headers["Last-Modified"] == "Thu, 02 Jan 2020 03:04:05 GMT"

    def test_virtual_size_given_sets_content_length(self) -> None:
        app = make_app()

        class S(VirtualDownloadView):
            def get_file(self) -> DownloadFile:
                return VirtualFile(iter([b"ab", b"cd"]), name="s.bin", size=4)

        app.add_url_rule("/s", view_func=S.as_view("s"))
        rv = fetch(app.test_client(), "/s")
        assert rv.headers["Content-Length"] == "4"
        assert rv.data == b"abcd"

    def test_user_subclass_of_download_file(self) -> None:
        class Mine(DownloadFile):
            name = "mine.txt"
            size = 5

            def open(self) -> t.IO[bytes]:
                return io.BytesIO(b"mine!")

        app = make_app()

        class V(DownloadView):
            def get_file(self) -> DownloadFile:
                return Mine()

        app.add_url_rule("/m", view_func=V.as_view("m"))
        rv = fetch(app.test_client(), "/m")
        assert rv.data == b"mine!"
        assert 'filename="mine.txt"' in rv.headers["Content-Disposition"]


# --------------------------------------------------------------------------
# Section 2: PathDownloadView
# --------------------------------------------------------------------------


class TestPathView:
    def test_path_attribute_relative_to_root(self, download_root: pathlib.Path) -> None:
        app = make_app()
        app.add_url_rule(
            "/r",
            view_func=PathDownloadView.as_view(
                "r", path="hello.txt", root=os.fspath(download_root)
            ),
        )
        assert fetch(app.test_client(), "/r").data == b"Hello, world!\n"

    def test_path_attribute_relative_to_download_root(
        self, download_root: pathlib.Path
    ) -> None:
        app = make_app(download_root)
        app.add_url_rule(
            "/r", view_func=PathDownloadView.as_view("r", path="hello.txt")
        )
        assert fetch(app.test_client(), "/r").data == b"Hello, world!\n"

    def test_absolute_trusted_path_outside_root(
        self, download_root: pathlib.Path
    ) -> None:
        secret = download_root.parent / "secret.txt"
        app = make_app(download_root)
        app.add_url_rule(
            "/s", view_func=PathDownloadView.as_view("s", path=os.fspath(secret))
        )
        assert fetch(app.test_client(), "/s").data == b"TOP SECRET"

    def test_url_path_in_root(self, download_root: pathlib.Path) -> None:
        app = make_app(download_root)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        client = app.test_client()
        assert fetch(client, "/f/sub/nested.txt").data == b"nested\n"

    def test_custom_path_url_kwarg(self, download_root: pathlib.Path) -> None:
        app = make_app(download_root)
        app.add_url_rule(
            "/f/<path:name>",
            view_func=PathDownloadView.as_view("f", path_url_kwarg="name"),
        )
        assert fetch(app.test_client(), "/f/hello.txt").data == b"Hello, world!\n"

    def test_view_root_beats_config(self, download_root: pathlib.Path) -> None:
        app = make_app(download_root / "sub")
        app.add_url_rule(
            "/f/<path:path>",
            view_func=PathDownloadView.as_view("f", root=os.fspath(download_root)),
        )
        assert fetch(app.test_client(), "/f/hello.txt").status_code == 200

    @pytest.mark.parametrize(
        "url",
        [
            "/f/../secret.txt",
            "/f/%2e%2e/secret.txt",
            "/f/%2E%2E/secret.txt",
            "/f/sub/..%2f..%2fsecret.txt",
            "/f/..%5csecret.txt",
            "/f/sub\\..\\..\\secret.txt",
            "/f/%00hello.txt",
            "/f/hello.txt%00",
            "/f//etc/passwd",
            "/f/%2fetc%2fpasswd",
            "/f/link/secret.txt",
            "/f/secretlink",
        ],
    )
    def test_url_path_escapes_404(self, download_root: pathlib.Path, url: str) -> None:
        (download_root / "link").symlink_to(download_root.parent)
        (download_root / "secretlink").symlink_to(download_root.parent / "secret.txt")
        app = make_app(download_root)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        rv = fetch(app.test_client(), url)
        assert rv.status_code in (404, 308), url
        assert b"TOP SECRET" not in rv.data

    def test_url_path_without_root_is_configuration_error(self) -> None:
        app = make_app()
        app.config["PROPAGATE_EXCEPTIONS"] = True
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        with pytest.raises(flask_download.ConfigurationError) as info:
            fetch(app.test_client(), "/f/hello.txt")
        message = str(info.value)
        assert "root" in message.lower() or "DOWNLOAD_ROOT" in message

    def test_without_extension(self, download_root: pathlib.Path) -> None:
        app = make_app(download_root)  # no FlaskDownload
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        assert fetch(app.test_client(), "/f/hello.txt").data == b"Hello, world!\n"

    def test_missing_file_404(self, download_root: pathlib.Path) -> None:
        app = make_app(download_root)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        app.add_url_rule("/g", view_func=PathDownloadView.as_view("g", path="nope"))
        client = app.test_client()
        assert fetch(client, "/f/nope.txt").status_code == 404
        assert fetch(client, "/g").status_code == 404


class TestAsView:
    def test_unknown_keyword_type_error_at_as_view(self) -> None:
        with pytest.raises(TypeError):
            PathDownloadView.as_view("x", no_such_attribute=1)

    def test_keyword_does_not_change_class(self) -> None:
        before = PathDownloadView.attachment
        PathDownloadView.as_view("x", path="README.md", attachment=False)
        assert PathDownloadView.attachment is before
        assert PathDownloadView.__dict__.get("path", None) is None or (
            PathDownloadView.path != "README.md"
        )

    def test_method_is_an_existing_attribute(self) -> None:
        # get_file is an existing class attribute too: a callable is accepted.
        VirtualDownloadView.as_view("x", content=b"", basename="x")

    def test_attribute_on_subclass_accepted(self) -> None:
        class V(VirtualDownloadView):
            extra = None

        V.as_view("v", extra=1, content=b"x", basename="x")
        with pytest.raises(TypeError):
            VirtualDownloadView.as_view("v", extra=1)


# --------------------------------------------------------------------------
# Section 2: StorageDownloadView
# --------------------------------------------------------------------------


@pytest.fixture
def memfs() -> cabc.Iterator[t.Any]:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/sweepb/bucket/a.txt", b"alpha")
    fs.pipe("/sweepb/bucket/dir/b.txt", b"bravo")
    fs.pipe("/sweepb/outside.txt", b"OUTSIDE")
    try:
        yield fs
    finally:
        fs.rm("/sweepb", recursive=True)


class SigningFS:
    """A stand-in for a store that can presign (records each call)."""

    def __new__(cls, base: t.Any) -> t.Any:
        import fsspec.implementations.memory as memory

        class Signing(memory.MemoryFileSystem):
            calls: t.ClassVar[list[tuple[str, t.Any]]] = []
            cachable = False

            def sign(self, path: str, expiration: int = 100, **kwargs: t.Any) -> str:
                self.calls.append((path, expiration))
                return f"https://signed.example/{path.lstrip('/')}?exp={expiration}"

        Signing.calls = []
        return Signing()


class TestStorageView:
    def test_instance_and_path(self, memfs: t.Any) -> None:
        app = make_app()
        app.add_url_rule(
            "/a",
            view_func=StorageDownloadView.as_view(
                "a", storage=memfs, path="/sweepb/bucket/a.txt"
            ),
        )
        rv = fetch(app.test_client(), "/a")
        assert rv.data == b"alpha"
        assert 'filename="a.txt"' in rv.headers["Content-Disposition"]

    def test_url_storage_and_url_kwarg(self, memfs: t.Any) -> None:
        app = make_app()
        app.add_url_rule(
            "/s/<path:path>",
            view_func=StorageDownloadView.as_view(
                "s", storage="memory://sweepb/bucket"
            ),
        )
        client = app.test_client()
        assert fetch(client, "/s/a.txt").data == b"alpha"
        assert fetch(client, "/s/dir/b.txt").data == b"bravo"
        assert fetch(client, "/s/nope.txt").status_code == 404

    @pytest.mark.parametrize(
        "url",
        [
            "/s/../outside.txt",
            "/s/%2e%2e/outside.txt",
            "/s/dir/../../outside.txt",
            "/s//sweepb/outside.txt",
            "/s/%2fsweepb%2foutside.txt",
            "/s/..%5coutside.txt",
            "/s/a.txt%00",
        ],
    )
    def test_confined_to_prefix(self, memfs: t.Any, url: str) -> None:
        app = make_app()
        app.add_url_rule(
            "/s/<path:path>",
            view_func=StorageDownloadView.as_view(
                "s", storage="memory://sweepb/bucket"
            ),
        )
        rv = fetch(app.test_client(), url)
        assert rv.status_code in (404, 308), url
        assert b"OUTSIDE" not in rv.data

    def test_storage_file_metadata(self, memfs: t.Any) -> None:
        f = StorageFile(memfs, "/sweepb/bucket/a.txt")
        assert f.name == "a.txt"
        assert f.size == 5
        with pytest.raises(FileNotFound):
            g = StorageFile(memfs, "/sweepb/bucket/none.txt")
            b"".join(g.chunks())

    def test_redirect_false_default_serves(self, memfs: t.Any) -> None:
        assert StorageDownloadView.redirect is False
        assert StorageDownloadView.redirect_expires == 300

    def test_redirect_unsignable_store_serves_bytes(self, memfs: t.Any) -> None:
        app = make_app()
        app.add_url_rule(
            "/a",
            view_func=StorageDownloadView.as_view(
                "a", storage=memfs, path="/sweepb/bucket/a.txt", redirect=True
            ),
        )
        rv = fetch(app.test_client(), "/a")
        assert rv.status_code == 200
        assert rv.data == b"alpha"

    def test_redirect_presigned_302(self, memfs: t.Any) -> None:
        fs = SigningFS(memfs)
        app = make_app()
        app.add_url_rule(
            "/a",
            view_func=StorageDownloadView.as_view(
                "a", storage=fs, path="/sweepb/bucket/a.txt", redirect=True
            ),
        )
        app.add_url_rule(
            "/b",
            view_func=StorageDownloadView.as_view(
                "b",
                storage=fs,
                path="/sweepb/bucket/a.txt",
                redirect=True,
                redirect_expires=60,
            ),
        )
        client = app.test_client()
        rv = fetch(client, "/a")
        assert rv.status_code == 302
        assert rv.headers["Location"].startswith("https://signed.example/")
        assert fs.calls[-1][1] == 300
        rv = fetch(client, "/b")
        assert rv.status_code == 302
        assert fs.calls[-1][1] == 60

    def test_redirect_head_never_gets_get_signed_url(self, memfs: t.Any) -> None:
        """Section 9: a URL signed for GET is never handed to a HEAD."""
        fs = SigningFS(memfs)
        app = make_app()
        app.add_url_rule(
            "/a",
            view_func=StorageDownloadView.as_view(
                "a", storage=fs, path="/sweepb/bucket/a.txt", redirect=True
            ),
        )
        client = app.test_client()
        get = fetch(client, "/a")
        head = fetch(client, method="HEAD", url="/a")
        assert head.data == b""
        if head.status_code == 302:
            assert head.headers["Location"] != get.headers["Location"]
        else:
            assert head.status_code == 200
            assert head.headers["Content-Length"] == "5"

    def test_redirect_missing_file_404(self, memfs: t.Any) -> None:
        fs = SigningFS(memfs)
        app = make_app()
        app.add_url_rule(
            "/m",
            view_func=StorageDownloadView.as_view(
                "m", storage=fs, path="/sweepb/bucket/missing.txt", redirect=True
            ),
        )
        client = app.test_client()
        assert fetch(client, "/m").status_code == 404
        assert fetch(client, method="HEAD", url="/m").status_code == 404


# --------------------------------------------------------------------------
# Section 4: the extension and config precedence
# --------------------------------------------------------------------------

KEYS = [
    "DOWNLOAD_ROOT",
    "DOWNLOAD_CHUNK_SIZE",
    "DOWNLOAD_MAX_RANGES",
    "DOWNLOAD_CACHE_MAX_AGE",
    "DOWNLOAD_ACCEL",
    "DOWNLOAD_ACCEL_RULES",
    "DOWNLOAD_HTTP_ALLOWED_HOSTS",
    "DOWNLOAD_HTTP_TIMEOUT",
    "DOWNLOAD_SIGNED_MAX_AGE",
]


class TestExtension:
    def test_app_factory_and_extensions_key(self) -> None:
        download = FlaskDownload()
        app = make_app()
        download.init_app(app)
        assert app.extensions["download"] is download
        app2 = make_app()
        ext = FlaskDownload(app2)
        assert app2.extensions["download"] is ext

    def test_defaults_document_every_key(self) -> None:
        for key in KEYS:
            assert key in flask_download.DEFAULTS
        assert flask_download.DEFAULTS["DOWNLOAD_CHUNK_SIZE"] == 65536
        assert flask_download.DEFAULTS["DOWNLOAD_MAX_RANGES"] == 50
        assert flask_download.DEFAULTS["DOWNLOAD_ROOT"] is None
        assert flask_download.DEFAULTS["DOWNLOAD_ACCEL"] is None

    @pytest.mark.parametrize(
        "config",
        [
            {"DOWNLOAD_ACCEL": "bogus"},
            {"DOWNLOAD_CHUNK_SIZE": 0},
            {"DOWNLOAD_MAX_RANGES": -1},
            {"DOWNLOAD_CACHE_MAX_AGE": -5},
            {"DOWNLOAD_HTTP_TIMEOUT": 0},
            {"DOWNLOAD_SIGNED_MAX_AGE": 0},
            {"DOWNLOAD_ROOT": "/no/such/dir/sweepb"},
            {"DOWNLOAD_ACCEL_RULES": [{"destination_url": "/p/"}]},
            {"DOWNLOAD_ACCEL_RULES": [{"source_dir": "/tmp", "bogus": 1}]},
        ],
    )
    def test_bad_config_fails_at_init(self, config: dict[str, t.Any]) -> None:
        app = make_app(**config)
        with pytest.raises(flask_download.ConfigurationError) as info:
            FlaskDownload(app)
        key = next(iter(config))
        assert key in str(info.value)

    def test_same_extension_two_apps(self, download_root: pathlib.Path) -> None:
        download = FlaskDownload()
        a = make_app(download_root, DOWNLOAD_CACHE_MAX_AGE=10)
        b = make_app(download_root, DOWNLOAD_CACHE_MAX_AGE=20)
        for app in (a, b):
            download.init_app(app)
            app.add_url_rule(
                "/f", view_func=PathDownloadView.as_view("f", path="hello.txt")
            )
        assert "max-age=10" in fetch(a.test_client(), "/f").headers["Cache-Control"]
        assert "max-age=20" in fetch(b.test_client(), "/f").headers["Cache-Control"]


def _settings_app(
    level: str, key: str, value: t.Any, lower: t.Any, **config: t.Any
) -> tuple[Flask, dict[str, t.Any]]:
    """An app where ``key`` is ``value`` at ``level`` and ``lower`` at every
    level below it (so the winner is observable). Returns the app and the view
    attributes to use."""
    argument = {
        "DOWNLOAD_ROOT": "root",
        "DOWNLOAD_CHUNK_SIZE": "chunk_size",
        "DOWNLOAD_MAX_RANGES": "max_ranges",
        "DOWNLOAD_CACHE_MAX_AGE": "cache_max_age",
        "DOWNLOAD_ACCEL": "accel",
        "DOWNLOAD_ACCEL_RULES": "accel_rules",
        "DOWNLOAD_HTTP_ALLOWED_HOSTS": "http_allowed_hosts",
        "DOWNLOAD_HTTP_TIMEOUT": "http_timeout",
        "DOWNLOAD_SIGNED_MAX_AGE": "signed_max_age",
    }[key]
    attribute = {
        "http_allowed_hosts": "allowed_hosts",
        "http_timeout": "timeout",
    }.get(argument, argument)
    app = make_app(**config)
    attrs: dict[str, t.Any] = {}
    if level == "view":
        attrs[attribute] = value
        app.config[key] = lower
        FlaskDownload(app, **{argument: lower})
    elif level == "config":
        app.config[key] = value
        FlaskDownload(app, **{argument: lower})
    elif level == "argument":
        FlaskDownload(app, **{argument: value})
    else:
        FlaskDownload(app)
    return app, attrs


LEVELS = ["view", "config", "argument"]


class TestPrecedence:
    @pytest.mark.parametrize("level", LEVELS)
    def test_root(self, level: str, download_root: pathlib.Path) -> None:
        good = os.fspath(download_root)
        bad = os.fspath(download_root / "sub")
        app, attrs = _settings_app(level, "DOWNLOAD_ROOT", good, bad)
        app.add_url_rule(
            "/f/<path:path>", view_func=PathDownloadView.as_view("f", **attrs)
        )
        assert fetch(app.test_client(), "/f/hello.txt").data == b"Hello, world!\n"

    @pytest.mark.parametrize("level", LEVELS)
    def test_chunk_size(self, level: str) -> None:
        app, attrs = _settings_app(level, "DOWNLOAD_CHUNK_SIZE", 100, 300)
        app.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view(
                "v", content=b"x" * 1000, basename="v.bin", **attrs
            ),
        )
        with app.test_client().get("/v", buffered=False) as rv:
            sizes = [len(c) for c in rv.response]
        assert sum(sizes) == 1000
        assert max(sizes) == 100

    def test_chunk_size_default(self) -> None:
        app = make_app()
        app.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view(
                "v", content=b"x" * 200_000, basename="v.bin"
            ),
        )
        with app.test_client().get("/v", buffered=False) as rv:
            sizes = [len(c) for c in rv.response]
        assert max(sizes) == 65536

    @pytest.mark.parametrize("level", [*LEVELS, "default"])
    def test_max_ranges(self, level: str) -> None:
        app, attrs = _settings_app(level, "DOWNLOAD_MAX_RANGES", 2, 10)
        app.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view(
                "v", content=b"0123456789" * 100, basename="v.bin", **attrs
            ),
        )
        three = "bytes=0-0,10-10,20-20"
        rv = fetch(app.test_client(), "/v", headers={"Range": three})
        assert rv.status_code == (206 if level == "default" else 200)

    @pytest.mark.parametrize("level", LEVELS)
    def test_cache_max_age(self, level: str) -> None:
        app, attrs = _settings_app(level, "DOWNLOAD_CACHE_MAX_AGE", 123, 456)
        app.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view(
                "v", content=b"x", basename="v.bin", **attrs
            ),
        )
        cc = fetch(app.test_client(), "/v").headers["Cache-Control"]
        assert "max-age=123" in cc

    def test_cache_max_age_explicit_none_in_config_beats_argument(self) -> None:
        app = make_app(DOWNLOAD_CACHE_MAX_AGE=None)
        FlaskDownload(app, cache_max_age=456)
        app.add_url_rule(
            "/v", view_func=VirtualDownloadView.as_view("v", content=b"x", basename="v")
        )
        cc = fetch(app.test_client(), "/v").headers.get("Cache-Control", "")
        assert "max-age=456" not in cc

    @pytest.mark.parametrize("level", LEVELS)
    def test_accel_rules(self, level: str, download_root: pathlib.Path) -> None:
        good = [{"source_dir": os.fspath(download_root), "destination_url": "/good/"}]
        bad = [{"source_dir": os.fspath(download_root), "destination_url": "/bad/"}]
        app, attrs = _settings_app(
            level, "DOWNLOAD_ACCEL_RULES", good, bad, DOWNLOAD_ACCEL="nginx"
        )
        app.add_url_rule(
            "/f",
            view_func=PathDownloadView.as_view(
                "f", path=os.fspath(download_root / "hello.txt"), **attrs
            ),
        )
        rv = fetch(app.test_client(), "/f")
        assert rv.headers["X-Accel-Redirect"] == "/good/hello.txt"
        assert rv.data == b""

    @pytest.mark.parametrize("level", LEVELS)
    def test_accel(self, level: str, download_root: pathlib.Path) -> None:
        rules = [
            {
                "source_dir": os.fspath(download_root),
                "destination_dir": "/dest",
                "destination_url": "/protected/",
            }
        ]
        app, attrs = _settings_app(
            level, "DOWNLOAD_ACCEL", "apache", "nginx", DOWNLOAD_ACCEL_RULES=rules
        )
        app.add_url_rule(
            "/f",
            view_func=PathDownloadView.as_view(
                "f", path=os.fspath(download_root / "hello.txt"), **attrs
            ),
        )
        rv = fetch(app.test_client(), "/f")
        assert rv.headers.get("X-Sendfile") == "/dest/hello.txt"
        assert "X-Accel-Redirect" not in rv.headers


class TestSignedMaxAgePrecedence:
    @staticmethod
    def expiry(link: str) -> int:
        values = [v for vs in parse_qs(urlsplit(link).query).values() for v in vs]
        now = time.time()
        found = [int(v) for v in values if v.isdigit() and abs(int(v) - now) < 10**7]
        assert found, link
        return found[0] - int(now)

    @pytest.mark.parametrize(
        ("config", "argument", "expected"),
        [
            ({"DOWNLOAD_SIGNED_MAX_AGE": 100}, {"signed_max_age": 200}, 100),
            ({}, {"signed_max_age": 200}, 200),
            ({}, {}, 3600),
        ],
    )
    def test_levels(
        self, config: dict[str, int], argument: dict[str, int], expected: int
    ) -> None:
        app = make_app(**config)
        FlaskDownload(app, **argument)
        app.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view(
                "v", content=b"x", basename="v", signed=True
            ),
        )
        with app.test_request_context():
            link = signed_url_for("v")
            assert abs(self.expiry(link) - expected) <= 2
            link = signed_url_for("v", expires_in=50)
            assert abs(self.expiry(link) - 50) <= 2
            link = signed_url_for("v", expires_in=datetime.timedelta(seconds=70))
            assert abs(self.expiry(link) - 70) <= 2


# --------------------------------------------------------------------------
# Section 4: offload
# --------------------------------------------------------------------------


def offload_app(root: pathlib.Path, accel: str = "nginx", **rule: t.Any) -> Flask:
    base: dict[str, t.Any] = {"source_dir": os.fspath(root)}
    if accel == "nginx":
        base["destination_url"] = "/protected/"
    else:
        base["destination_dir"] = "/srv/dest"
    base.update(rule)
    app = make_app(root, DOWNLOAD_ACCEL=accel, DOWNLOAD_ACCEL_RULES=[base])
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    app.add_url_rule(
        "/out/<path:path>", view_func=PathDownloadView.as_view("out", accel=False)
    )
    return app


class TestOffload:
    def test_nginx_same_headers_as_direct(self, download_root: pathlib.Path) -> None:
        app = offload_app(download_root)
        client = app.test_client()
        off = fetch(client, "/f/hello.txt")
        direct = fetch(client, "/out/hello.txt")
        assert direct.data == b"Hello, world!\n"
        assert off.data == b""
        assert off.headers["X-Accel-Redirect"] == "/protected/hello.txt"
        for name in (
            "Content-Type",
            "Content-Disposition",
            "ETag",
            "Last-Modified",
            "Cache-Control",
        ):
            assert off.headers.get(name) == direct.headers.get(name), name
        assert "X-Accel-Redirect" not in direct.headers

    def test_non_ascii_and_odd_names_percent_encoded(
        self, download_root: pathlib.Path
    ) -> None:
        app = offload_app(download_root)
        client = app.test_client()
        rv = fetch(client, "/f/été.txt")
        assert rv.headers["X-Accel-Redirect"] == "/protected/" + quote("été.txt")
        (download_root / "a b?c#d%e.txt").write_bytes(b"odd")
        rv = fetch(client, "/f/" + quote("a b?c#d%e.txt"))
        value = rv.headers["X-Accel-Redirect"]
        assert "?" not in value and "#" not in value and " " not in value
        assert unquote(value) == "/protected/a b?c#d%e.txt"

    def test_head_offloaded_same_headers(self, download_root: pathlib.Path) -> None:
        app = offload_app(download_root)
        client = app.test_client()
        get = fetch(client, "/f/hello.txt")
        head = fetch(client, "/f/hello.txt", method="HEAD")
        assert head.data == b""
        assert head.headers["X-Accel-Redirect"] == get.headers["X-Accel-Redirect"]

    @pytest.mark.parametrize(
        ("options", "expected"),
        [
            ({"buffering": True}, {"X-Accel-Buffering": "yes"}),
            ({"buffering": False}, {"X-Accel-Buffering": "no"}),
            ({"limit_rate": 1024}, {"X-Accel-Limit-Rate": "1024"}),
            ({"limit_rate": 0}, {"X-Accel-Limit-Rate": "0"}),
            ({"expires": 3600}, {"X-Accel-Expires": "3600"}),
            ({"expires": 0}, {"X-Accel-Expires": "0"}),
            ({"charset": "utf-8"}, {"X-Accel-Charset": "utf-8"}),
        ],
    )
    def test_nginx_options(
        self,
        download_root: pathlib.Path,
        options: dict[str, t.Any],
        expected: dict[str, str],
    ) -> None:
        app = offload_app(download_root, **options)
        rv = fetch(app.test_client(), "/f/hello.txt")
        for name, value in expected.items():
            assert rv.headers.get(name) == value
        others = {
            "X-Accel-Buffering",
            "X-Accel-Limit-Rate",
            "X-Accel-Expires",
            "X-Accel-Charset",
        } - set(expected)
        for name in others:
            assert name not in rv.headers

    def test_no_options_no_option_headers(self, download_root: pathlib.Path) -> None:
        app = offload_app(download_root)
        rv = fetch(app.test_client(), "/f/hello.txt")
        assert not [
            h
            for h, _ in rv.headers.items()
            if h.startswith("X-Accel-") and h != "X-Accel-Redirect"
        ]

    @pytest.mark.parametrize("backend", ["apache", "lighttpd"])
    def test_x_sendfile_backends(
        self, download_root: pathlib.Path, backend: str
    ) -> None:
        app = offload_app(download_root, accel=backend)
        rv = fetch(app.test_client(), "/f/sub/nested.txt")
        assert rv.data == b""
        assert rv.headers.get("X-Sendfile") == "/srv/dest/sub/nested.txt"
        assert "Content-Disposition" in rv.headers
        assert "X-Accel-Redirect" not in rv.headers

    def test_accel_false_opt_out(self, download_root: pathlib.Path) -> None:
        app = offload_app(download_root)
        rv = fetch(app.test_client(), "/out/hello.txt")
        assert rv.data == b"Hello, world!\n"

    def test_view_backend_name(self, download_root: pathlib.Path) -> None:
        app = make_app(
            download_root,
            DOWNLOAD_ACCEL_RULES=[
                {"source_dir": os.fspath(download_root), "destination_dir": "/d"}
            ],
        )
        FlaskDownload(app)
        app.add_url_rule(
            "/f/<path:path>", view_func=PathDownloadView.as_view("f", accel="apache")
        )
        app.add_url_rule("/g/<path:path>", view_func=PathDownloadView.as_view("g"))
        assert (
            fetch(app.test_client(), "/f/hello.txt").headers["X-Sendfile"]
            == "/d/hello.txt"
        )
        rv = fetch(app.test_client(), "/g/hello.txt")
        assert rv.data == b"Hello, world!\n"

    def test_rule_prefix_is_a_directory_boundary(self, tmp_path: pathlib.Path) -> None:
        (tmp_path / "files").mkdir()
        (tmp_path / "files-private").mkdir()
        (tmp_path / "files-private" / "x.txt").write_bytes(b"private")
        app = make_app(
            tmp_path,
            DOWNLOAD_ACCEL="nginx",
            DOWNLOAD_ACCEL_RULES=[
                {"source_dir": os.fspath(tmp_path / "files"), "destination_url": "/p/"}
            ],
        )
        FlaskDownload(app)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        rv = fetch(app.test_client(), "/f/files-private/x.txt")
        assert "X-Accel-Redirect" not in rv.headers
        assert rv.data == b"private"

    def test_unmatched_file_served_by_python(self, download_root: pathlib.Path) -> None:
        app = offload_app(download_root / "sub")
        app.config["DOWNLOAD_ROOT"] = os.fspath(download_root)
        rv = fetch(app.test_client(), "/f/hello.txt")
        assert "X-Accel-Redirect" not in rv.headers

    @pytest.mark.parametrize(
        "headers",
        [
            {"X-Sendfile-Type": "X-Accel-Redirect"},
            {"X-Accel-Mapping": "/=/evil/"},
            {"X-Sendfile-Type": "X-Sendfile"},
            {"X-Accel-Redirect": "/evil/"},
            {"Range": "bytes=0-3"},
            {"Range": "bytes=0-1,4-5"},
            {"If-Range": '"nope"', "Range": "bytes=0-3"},
            {"Accept-Encoding": "gzip"},
            {"X-Forwarded-Prefix": "/evil"},
        ],
    )
    def test_client_headers_never_influence(
        self, download_root: pathlib.Path, headers: dict[str, str]
    ) -> None:
        app = offload_app(download_root)
        client = app.test_client()
        plain = fetch(client, "/f/hello.txt")
        rv = fetch(client, "/f/hello.txt", headers=headers)
        assert rv.status_code == plain.status_code == 200
        assert rv.headers["X-Accel-Redirect"] == plain.headers["X-Accel-Redirect"]
        assert "X-Sendfile" not in rv.headers
        assert rv.data == b""

    def test_storage_source_url(self, memfs: t.Any) -> None:
        app = make_app(
            DOWNLOAD_ACCEL="nginx",
            DOWNLOAD_ACCEL_RULES=[
                {"source_url": "memory://sweepb/bucket", "destination_url": "/s3/"}
            ],
        )
        FlaskDownload(app)
        app.add_url_rule(
            "/s/<path:path>",
            view_func=StorageDownloadView.as_view(
                "s", storage="memory://sweepb/bucket"
            ),
        )
        rv = fetch(app.test_client(), "/s/dir/b.txt")
        assert rv.headers["X-Accel-Redirect"] == "/s3/dir/b.txt"
        assert rv.data == b""

    def test_offload_decorator_send_download(self, download_root: pathlib.Path) -> None:
        app = make_app(
            download_root,
            DOWNLOAD_ACCEL_RULES=[
                {"source_dir": os.fspath(download_root), "destination_url": "/p/"}
            ],
        )
        FlaskDownload(app)

        @app.route("/d")
        @flask_download.offload("nginx")
        def d() -> t.Any:
            return flask_download.send_download(os.fspath(download_root / "hello.txt"))

        assert (
            fetch(app.test_client(), "/d").headers["X-Accel-Redirect"] == "/p/hello.txt"
        )

    def test_assert_download_response_offloaded(
        self, download_root: pathlib.Path
    ) -> None:
        from flask_download.testing import assert_download_response

        app = offload_app(download_root)
        with app.test_client().get("/f/hello.txt") as rv:
            assert_download_response(
                rv,
                content=b"Hello, world!\n",
                basename="hello.txt",
                mimetype="text/plain",
            )


NGINX_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location /protected/ {{
            internal;
            alias {root}/;
        }}
        location / {{
            proxy_pass {upstream};
            proxy_buffering off;
        }}
    }}
}}
"""


@pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx not installed")
class TestOffloadNginx:
    def test_real_nginx(
        self, download_root: pathlib.Path, tmp_path: pathlib.Path
    ) -> None:
        odd = "a b?c#d%e&é.txt"
        (download_root / odd).write_bytes(b"odd-content")
        app = offload_app(
            download_root,
            buffering=False,
            limit_rate=1_000_000,
            expires=60,
            charset="utf-8",
        )
        port = free_port()
        conf = tmp_path / "nginx.conf"
        with running_werkzeug(app) as upstream:
            conf.write_text(
                NGINX_CONF_HEAD.format(tmp=tmp_path)
                + NGINX_SERVER.format(port=port, root=download_root, upstream=upstream)
            )
            with running_nginx(conf, port) as base:
                for name, content in [
                    ("hello.txt", b"Hello, world!\n"),
                    ("été.txt", "Un été à Paris\n".encode()),
                    ("sub/nested.txt", b"nested\n"),
                    (odd, b"odd-content"),
                ]:
                    status, headers, body = raw_get(base, "/f/" + quote(name))
                    assert status == 200, name
                    assert body == content, name
                    assert "X-Accel-Redirect" not in headers
                    assert "attachment" in headers["Content-Disposition"]
                    for option in ("X-Accel-Buffering", "X-Accel-Limit-Rate"):
                        assert option not in headers
                status, headers, body = raw_get(
                    base, "/f/hello.txt", headers={"Range": "bytes=0-4"}
                )
                assert status == 206
                assert body == b"Hello"
                status, _, body = raw_get(base, "/protected/hello.txt")
                assert status == 404


# --------------------------------------------------------------------------
# Section 4: blueprints
# --------------------------------------------------------------------------


def _url_for_all(app: Flask, prefix: str) -> list[str]:
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith(prefix + "."):
                continue
            values = {}
            for arg in rule.arguments:
                converter = rule._converters[arg]
                values[arg] = (
                    1
                    if type(converter).__name__ in ("IntegerConverter",)
                    else "hello.txt"
                )
            urls.append(url_for(rule.endpoint, **values))
    return urls


class TestBlueprint:
    def test_files_blueprint_url_for_every_view(
        self, download_root: pathlib.Path
    ) -> None:
        bp = make_download_blueprint("dl", root=os.fspath(download_root))
        app = make_app()
        FlaskDownload(app)
        app.register_blueprint(bp, url_prefix="/dl")
        urls = _url_for_all(app, "dl")
        assert urls
        client = app.test_client()
        for url in urls:
            assert url.startswith("/dl/")
            rv = fetch(client, url)
            assert rv.status_code == 200, url
            assert rv.data == b"Hello, world!\n"

    def test_blueprint_on_two_apps(self, download_root: pathlib.Path) -> None:
        bp = make_download_blueprint("files", root=os.fspath(download_root))
        for prefix in ("/a", "/b"):
            app = make_app()
            FlaskDownload(app)
            app.register_blueprint(bp, url_prefix=prefix)
            for url in _url_for_all(app, "files"):
                assert fetch(app.test_client(), url).status_code == 200

    def test_blueprint_registered_twice_under_other_name(
        self, download_root: pathlib.Path
    ) -> None:
        bp = make_download_blueprint("files", root=os.fspath(download_root))
        app = make_app()
        FlaskDownload(app)
        app.register_blueprint(bp, url_prefix="/one")
        app.register_blueprint(bp, url_prefix="/two", name="files2")
        one = _url_for_all(app, "files")
        two = _url_for_all(app, "files2")
        assert one and two
        for url in one + two:
            assert fetch(app.test_client(), url).status_code == 200

    def test_storage_blueprint(self, memfs: t.Any) -> None:
        bp = make_download_blueprint("store", storage="memory://sweepb/bucket")
        app = make_app()
        app.register_blueprint(bp, url_prefix="/s")
        with app.test_request_context():
            rules = [
                r for r in app.url_map.iter_rules() if r.endpoint.startswith("store.")
            ]
            assert rules
            rule = rules[0]
            url = url_for(rule.endpoint, **dict.fromkeys(rule.arguments, "a.txt"))
        assert fetch(app.test_client(), url).data == b"alpha"

    def test_blueprint_traversal_404(self, download_root: pathlib.Path) -> None:
        bp = make_download_blueprint("dl", root=os.fspath(download_root))
        app = make_app()
        app.register_blueprint(bp, url_prefix="/dl")
        with app.test_request_context():
            rule = next(
                r for r in app.url_map.iter_rules() if r.endpoint.startswith("dl.")
            )
            url = url_for(rule.endpoint, **dict.fromkeys(rule.arguments, "x"))
        bad = url.rsplit("/", 1)[0] + "/%2e%2e/secret.txt"
        assert fetch(app.test_client(), bad).status_code == 404

    def test_signed_blueprint_url_for(self, download_root: pathlib.Path) -> None:
        bp = make_download_blueprint(
            "sdl", root=os.fspath(download_root), options={"signed": True}
        )
        app = make_app()
        FlaskDownload(app)
        app.register_blueprint(bp, url_prefix="/sdl")
        with app.test_request_context():
            rule = next(
                r for r in app.url_map.iter_rules() if r.endpoint.startswith("sdl.")
            )
            plain = url_for(rule.endpoint, **dict.fromkeys(rule.arguments, "hello.txt"))
            signed = signed_url_for(
                rule.endpoint, **dict.fromkeys(rule.arguments, "hello.txt")
            )
        client = app.test_client()
        assert fetch(client, plain).status_code == 403
        assert fetch(client, signed).data == b"Hello, world!\n"


# --------------------------------------------------------------------------
# Section 5: signals
# --------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.started: list[dict[str, t.Any]] = []
        self.finished: list[dict[str, t.Any]] = []

    def on_started(self, sender: t.Any, **kwargs: t.Any) -> None:
        self.started.append({"sender": sender, **kwargs})

    def on_finished(self, sender: t.Any, **kwargs: t.Any) -> None:
        self.finished.append({"sender": sender, **kwargs})


@pytest.fixture
def recorder() -> cabc.Iterator[Recorder]:
    rec = Recorder()
    flask_download.download_started.connect(rec.on_started)
    flask_download.download_finished.connect(rec.on_finished)
    try:
        yield rec
    finally:
        flask_download.download_started.disconnect(rec.on_started)
        flask_download.download_finished.disconnect(rec.on_finished)


class TestSignals:
    def test_started_and_finished(
        self, recorder: Recorder, download_root: pathlib.Path
    ) -> None:
        app = make_app(download_root)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        fetch(app.test_client(), "/f/hello.txt")
        assert len(recorder.started) == 1
        assert len(recorder.finished) == 1
        started = recorder.started[0]
        assert started["sender"] is app
        assert isinstance(started["file"], DownloadFile)
        assert started["request"].path == "/f/hello.txt"
        finished = recorder.finished[0]
        assert finished["sender"] is app
        assert finished["file"] is started["file"]
        assert finished["bytes_sent"] == 14
        assert finished["completed"] is True

    def test_range_counts_body_bytes(
        self, recorder: Recorder, download_root: pathlib.Path
    ) -> None:
        app = make_app(download_root)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        fetch(app.test_client(), "/f/hello.txt", headers={"Range": "bytes=0-4"})
        assert recorder.finished[0]["bytes_sent"] == 5
        assert recorder.finished[0]["completed"] is True

    def test_named_arguments(self, recorder: Recorder) -> None:
        app = make_app()
        app.add_url_rule(
            "/v",
            view_func=VirtualDownloadView.as_view("v", content=b"abc", basename="v"),
        )
        fetch(app.test_client(), "/v")
        assert set(recorder.started[0]) == {"sender", "file", "request"}
        assert set(recorder.finished[0]) == {
            "sender",
            "file",
            "bytes_sent",
            "completed",
        }

    def test_hang_up_not_completed_real_server(
        self, recorder: Recorder, tmp_path: pathlib.Path
    ) -> None:
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * (8 * 1024 * 1024))
        app = make_app(tmp_path)
        app.add_url_rule(
            "/f/<path:path>", view_func=PathDownloadView.as_view("f", accel=False)
        )
        import socket

        with running_werkzeug(app) as base:
            port = int(base.rsplit(":", 1)[1])
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(
                b"GET /f/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            sock.recv(1024)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            sock.close()
            # a second, complete request: it finishes after the first one's end
            status, _, body = raw_get(
                base, "/f/big.bin", headers={"Range": "bytes=0-9"}
            )
            assert status == 206
            deadline = time.monotonic() + 10
            while len(recorder.finished) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        outcomes = sorted((f["completed"], f["bytes_sent"]) for f in recorder.finished)
        assert (True, 10) in outcomes
        assert any(c is False and n < 8 * 1024 * 1024 for c, n in outcomes)

    def test_offloaded_download_signals(
        self, recorder: Recorder, download_root: pathlib.Path
    ) -> None:
        app = offload_app(download_root)
        fetch(app.test_client(), "/f/hello.txt")
        assert len(recorder.started) == 1
        assert len(recorder.finished) <= 1


# --------------------------------------------------------------------------
# Section 5: signed links
# --------------------------------------------------------------------------


def signed_app(download_root: pathlib.Path, **config: t.Any) -> Flask:
    app = make_app(download_root, **config)
    FlaskDownload(app)
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )
    app.add_url_rule(
        "/t/<path:path>", view_func=PathDownloadView.as_view("t", signed=True)
    )

    @app.route("/fn/<int:id>")
    @signature_required
    def fn(id: int) -> t.Any:
        return f"ok {id}"

    return app


def tamper(link: str, key: str, value: str) -> str:
    parts = urlsplit(link)
    query = parse_qs(parts.query, keep_blank_values=True)
    query[key] = [value]
    from urllib.parse import urlencode

    return parts.path + "?" + urlencode(query, doseq=True)


def _params(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


class TestSigned:
    def test_ok_missing_tampered(self, download_root: pathlib.Path) -> None:
        app = signed_app(download_root)
        client = app.test_client()
        with app.test_request_context():
            link = signed_url_for("s", path="hello.txt")
            other = signed_url_for("s", path="data.bin")
            flink = signed_url_for("fn", id=3)
        assert fetch(client, link).data == b"Hello, world!\n"
        assert fetch(client, flink).data == b"ok 3"
        assert fetch(client, "/s/hello.txt").status_code == 403
        assert fetch(client, "/fn/3").status_code == 403
        # swap the path under the same query: 403
        assert fetch(client, link.replace("hello.txt", "data.bin")).status_code == 403
        assert fetch(client, flink.replace("/fn/3", "/fn/4")).status_code == 403
        # endpoint binding: same path, other signed endpoint
        assert fetch(client, link.replace("/s/", "/t/")).status_code == 403
        # every query parameter of the link, changed
        for key, value in _params(link).items():
            changed = tamper(link, key, value[:-1] + ("A" if value[-1] != "A" else "B"))
            assert fetch(client, changed).status_code in (403, 410), key
        # query added
        assert fetch(client, link + "&extra=1").status_code == 403
        # the other file's signature on this path
        sig_other = _params(other)
        mixed = (
            urlsplit(link).path
            + "?"
            + "&".join(f"{k}={v}" for k, v in sig_other.items())
        )
        assert fetch(client, mixed).status_code == 403

    def test_query_values_bound(self, download_root: pathlib.Path) -> None:
        app = signed_app(download_root)
        with app.test_request_context():
            link = signed_url_for("s", path="hello.txt", fmt="csv")
        assert "fmt=csv" in link
        client = app.test_client()
        assert fetch(client, link).status_code == 200
        assert fetch(client, link.replace("fmt=csv", "fmt=pdf")).status_code == 403

    def test_expired_410(
        self, download_root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        app = signed_app(download_root)
        with app.test_request_context():
            link = signed_url_for("s", path="hello.txt", expires_in=60)
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)
        rv = fetch(app.test_client(), link)
        assert rv.status_code == 410

    def test_cache_control_private_max_age_bounded(
        self, download_root: pathlib.Path
    ) -> None:
        app = signed_app(download_root, DOWNLOAD_CACHE_MAX_AGE=86400)
        with app.test_request_context():
            link = signed_url_for("s", path="hello.txt", expires_in=60)
        rv = fetch(app.test_client(), link)
        cc = rv.headers["Cache-Control"]
        assert "private" in cc
        assert "public" not in cc
        ages = [
            int(p.split("=")[1])
            for p in cc.replace(" ", "").split(",")
            if p.startswith("max-age=")
        ]
        assert ages and ages[0] <= 60
        assert "s-maxage" not in cc

    def test_cache_control_private_with_no_cache_default(
        self, download_root: pathlib.Path
    ) -> None:
        app = signed_app(download_root)
        with app.test_request_context():
            link = signed_url_for("s", path="hello.txt", expires_in=60)
        cc = fetch(app.test_client(), link).headers["Cache-Control"]
        assert "private" in cc
        for part in cc.replace(" ", "").split(","):
            if part.startswith("max-age="):
                assert int(part.split("=")[1]) <= 60

    def test_signed_304_and_head(self, download_root: pathlib.Path) -> None:
        app = signed_app(download_root, DOWNLOAD_CACHE_MAX_AGE=86400)
        with app.test_request_context():
            link = signed_url_for("s", path="hello.txt", expires_in=60)
        client = app.test_client()
        rv = fetch(client, link)
        again = fetch(client, link, headers={"If-None-Match": rv.headers["ETag"]})
        assert again.status_code == 304
        assert "private" in again.headers["Cache-Control"]
        assert "max-age=86400" not in again.headers["Cache-Control"]
        head = fetch(client, link, method="HEAD")
        assert head.status_code == 200
        assert "private" in head.headers["Cache-Control"]

    def test_host_header_cannot_redirect_link(
        self, download_root: pathlib.Path
    ) -> None:
        app = Flask("sweep_b", subdomain_matching=True)
        app.config.update(
            TESTING=True,
            SECRET_KEY=SECRET,
            SERVER_NAME="example.com",
            DOWNLOAD_ROOT=os.fspath(download_root),
        )
        FlaskDownload(app)
        app.add_url_rule(
            "/s/<path:path>",
            subdomain="<tenant>",
            view_func=PathDownloadView.as_view("s", signed=True),
        )
        with app.test_request_context():
            link = signed_url_for("s", tenant="alice", path="hello.txt", _external=True)
        parts = urlsplit(link)
        assert parts.hostname == "alice.example.com"
        path = parts.path + "?" + parts.query
        client = app.test_client()
        ok = fetch(client, path, base_url="http://alice.example.com")
        assert ok.status_code == 200
        bad = fetch(client, path, base_url="http://bob.example.com")
        assert bad.status_code == 403

    def test_script_name_split(self, download_root: pathlib.Path) -> None:
        app = signed_app(download_root)
        with app.test_request_context():
            link = signed_url_for("s", path="sub/nested.txt")
        # Serve the app under /s: the link path /s/sub/... now means path sub/...
        # for endpoint "s"? No: SCRIPT_NAME=/s, PATH_INFO=/sub/nested.txt does not
        # match any rule, or matches another one: never a 200 with another file.
        rv = fetch(
            app.test_client(),
            link[len("/s") :],
            environ_overrides={"SCRIPT_NAME": "/s"},
        )
        assert rv.status_code in (403, 404)

    def test_forwarded_prefix_does_not_matter(
        self, download_root: pathlib.Path
    ) -> None:
        app = signed_app(download_root)
        with app.test_request_context():
            link = signed_url_for("s", path="hello.txt")
        rv = fetch(app.test_client(), link, headers={"X-Forwarded-Prefix": "/other"})
        assert rv.status_code == 200


# --------------------------------------------------------------------------
# Section 5: testing helpers and the pytest plugin
# --------------------------------------------------------------------------


class TestAssertDownloadResponse:
    @pytest.fixture
    def app(self, download_root: pathlib.Path) -> Flask:
        app = make_app(download_root)
        app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
        app.add_url_rule(
            "/i/<path:path>", view_func=PathDownloadView.as_view("i", attachment=False)
        )
        return app

    def test_passes(self, app: Flask) -> None:
        from flask_download.testing import assert_download_response

        with app.test_client().get("/f/hello.txt") as rv:
            assert_download_response(
                rv,
                content=b"Hello, world!\n",
                basename="hello.txt",
                mimetype="text/plain",
                attachment=True,
                status=200,
            )
        with app.test_client().get("/i/été.txt") as rv:
            assert_download_response(
                rv,
                content="Un été à Paris\n".encode(),
                basename="été.txt",
                attachment=False,
            )
        with app.test_client().get(
            "/f/hello.txt", headers={"Range": "bytes=0-4"}
        ) as rv:
            assert_download_response(rv, content=b"Hello", status=206)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"content": b"nope"},
            {"basename": "other.txt"},
            {"mimetype": "application/pdf"},
            {"attachment": False},
            {"status": 206},
        ],
    )
    def test_fails(self, app: Flask, kwargs: dict[str, t.Any]) -> None:
        from flask_download.testing import assert_download_response

        with app.test_client().get("/f/hello.txt") as rv, pytest.raises(AssertionError):
            assert_download_response(rv, **kwargs)

    def test_offloaded_wrong_content_fails(self, download_root: pathlib.Path) -> None:
        from flask_download.testing import assert_download_response

        app = offload_app(download_root)
        with app.test_client().get("/f/hello.txt") as rv, pytest.raises(AssertionError):
            assert_download_response(rv, content=b"not the file")
        with app.test_client().get("/f/hello.txt") as rv, pytest.raises(AssertionError):
            assert_download_response(rv, basename="data.bin")


pytest_plugins = ["pytester"]


def test_plugin_fixtures_in_a_fresh_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sweepb_plugin="""
        import fsspec

        def test_write(download_storage):
            assert isinstance(download_storage, fsspec.AbstractFileSystem)
            assert download_storage.protocol in ("memory", ("memory",)) or (
                "memory" in download_storage.protocol
            )
            download_storage.pipe("/left-over.txt", b"x")

        def test_fresh(download_storage):
            assert not download_storage.exists("/left-over.txt")

        def test_root(download_root):
            files = [p for p in download_root.rglob("*") if p.is_file()]
            assert files
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_plugin_entry_point() -> None:
    import importlib.metadata

    eps = importlib.metadata.entry_points(group="pytest11")
    assert any(ep.value == "flask_download.pytest_plugin" for ep in eps)


# --------------------------------------------------------------------------
# Section 6: layout
# --------------------------------------------------------------------------

REPO = pathlib.Path(__file__).parent.parent


def test_layout() -> None:
    for name in ("pyproject.toml", "README.md", "CHANGES.md"):
        assert (REPO / name).is_file(), name
    for name in ("flask_download", "tests", "example_app"):
        assert (REPO / name).is_dir(), name


def test_example_app_has_an_app_factory() -> None:
    """``flask --app example_app`` finds ``create_app`` (tests/test_example_app.py
    runs it for real, with its database in a temporary directory)."""
    import example_app

    assert callable(example_app.create_app)
    assert not isinstance(getattr(example_app, "app", None), Flask)


# --------------------------------------------------------------------------
# Section 8: archives
# --------------------------------------------------------------------------

T1 = datetime.datetime(2021, 5, 6, 7, 8, 10, tzinfo=UTC)
T2 = datetime.datetime(2022, 5, 6, 7, 8, 10, tzinfo=UTC)


class Counting(DownloadFile):
    """A seekable source that counts how often it is opened."""

    def __init__(
        self,
        data: bytes,
        name: str | None = None,
        crc32: int | None = None,
        modified_time: datetime.datetime | None = None,
    ) -> None:
        self.data = data
        self.name = name
        self.size = len(data)
        self.modified_time = modified_time
        if crc32 is not None:
            self.crc32 = crc32
        self.opens = 0

    def open(self) -> t.IO[bytes]:
        self.opens += 1
        return io.BytesIO(self.data)


def cd_offset(archive: bytes) -> int:
    eocd = archive[archive.rindex(b"PK\x05\x06") :]
    return int(struct.unpack("<I", eocd[16:20])[0])


def zip_app(members: t.Callable[[], t.Any], **attrs: t.Any) -> Flask:
    app = make_app()

    class Z(ZipDownloadView):
        def get_members(self) -> t.Any:
            return members()

    app.add_url_rule("/z", view_func=Z.as_view("z", **attrs))
    return app


class TestArchive:
    def test_archive_file_defaults(self) -> None:
        archive = ArchiveFile([])
        assert isinstance(archive, DownloadFile)
        assert archive.name == "download.zip"

    def test_view_defaults_and_names(self, download_root: pathlib.Path) -> None:
        app = zip_app(
            lambda: [
                PathFile(download_root / "hello.txt"),
                ("renamed/data.bin", PathFile(download_root / "data.bin")),
                VirtualFile(b"virtual", name="v.txt", modified_time=T1),
            ]
        )
        rv = fetch(app.test_client(), "/z")
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "application/zip"
        assert 'filename="download.zip"' in rv.headers["Content-Disposition"]
        assert rv.headers["Content-Length"] == str(len(rv.data))
        assert not rv.headers["ETag"].startswith("W/")
        with zipfile.ZipFile(io.BytesIO(rv.data)) as zf:
            assert zf.namelist() == ["hello.txt", "renamed/data.bin", "v.txt"]
            assert zf.read("hello.txt") == b"Hello, world!\n"
            assert zf.testzip() is None
            for info in zf.infolist():
                assert info.compress_type == zipfile.ZIP_STORED
            assert zf.getinfo("v.txt").date_time == (2021, 5, 6, 7, 8, 10)

    def test_basename_attribute_overrides(self) -> None:
        app = zip_app(lambda: [VirtualFile(b"x", name="x")], basename="mine.zip")
        rv = fetch(app.test_client(), "/z")
        assert 'filename="mine.zip"' in rv.headers["Content-Disposition"]

    def test_last_modified_newest_member(self) -> None:
        app = zip_app(
            lambda: [
                VirtualFile(b"a", name="a", modified_time=T2),
                VirtualFile(b"b", name="b", modified_time=T1),
            ]
        )
        rv = fetch(app.test_client(), "/z")
        assert rv.headers["Last-Modified"] == "Fri, 06 May 2022 07:08:10 GMT"

    def test_etag_depends_on_name_size_validator(self) -> None:
        def etag(members: list[t.Any]) -> str:
            app = zip_app(lambda: members)
            return str(fetch(app.test_client(), "/z").headers["ETag"])

        base = etag([VirtualFile(b"abc", name="a", modified_time=T1)])
        assert base == etag([VirtualFile(b"abc", name="a", modified_time=T1)])
        assert base != etag([VirtualFile(b"abc", name="b", modified_time=T1)])
        assert base != etag([VirtualFile(b"abcd", name="a", modified_time=T1)])
        assert base != etag([VirtualFile(b"abc", name="a", modified_time=T2)])
        assert base != etag([VirtualFile(b"abd", name="a", modified_time=T1)])

    def test_compress(self) -> None:
        app = make_app()

        class C(DownloadView):
            def get_file(self) -> DownloadFile:
                return ArchiveFile([VirtualFile(b"a" * 10000, name="a")], compress=True)

        app.add_url_rule("/c", view_func=C.as_view("c"))
        client = app.test_client()
        rv = fetch(client, "/c")
        assert "Content-Length" not in rv.headers or rv.headers.get("Transfer-Encoding")
        assert rv.headers.get("Accept-Ranges", "none") == "none"
        with zipfile.ZipFile(io.BytesIO(rv.data)) as zf:
            assert zf.getinfo("a").compress_type == zipfile.ZIP_DEFLATED
            assert zf.read("a") == b"a" * 10000
        ranged = fetch(client, "/c", headers={"Range": "bytes=0-3"})
        assert ranged.status_code == 200
        assert fetch(client, "/c", method="HEAD").status_code == 200

    def test_ranges_match_the_whole(self, download_root: pathlib.Path) -> None:
        app = zip_app(
            lambda: [
                PathFile(download_root / "data.bin"),
                VirtualFile(b"x" * 3000, name="x.bin", modified_time=T1),
            ]
        )
        client = app.test_client()
        whole = fetch(client, "/z").data
        etag = fetch(client, "/z").headers["ETag"]
        n = len(whole)
        for start, stop in [(0, 10), (100, 2000), (n - 30, n - 1), (1000, n - 1)]:
            rv = fetch(client, "/z", headers={"Range": f"bytes={start}-{stop}"})
            assert rv.status_code == 206
            assert rv.data == whole[start : stop + 1]
            assert rv.headers["Content-Range"] == f"bytes {start}-{stop}/{n}"
        rv = fetch(client, "/z", headers={"Range": "bytes=0-1,500-501"})
        assert rv.status_code == 206
        assert rv.headers["Content-Type"].startswith("multipart/byteranges")
        rv = fetch(client, "/z", headers={"Range": "bytes=5-9", "If-Range": etag})
        assert rv.status_code == 206 and rv.data == whole[5:10]
        rv = fetch(client, "/z", headers={"Range": "bytes=5-9", "If-Range": '"other"'})
        assert rv.status_code == 200 and rv.data == whole

    def test_known_crc_member_not_read_for_tail(self) -> None:
        data = b"q" * 5000
        a = Counting(data, "a.bin", crc32=binascii.crc32(data), modified_time=T1)
        b = Counting(b"r" * 100, "b.bin", modified_time=T1)
        app = zip_app(lambda: [a, b])
        client = app.test_client()
        whole = fetch(client, "/z").data
        a.opens = b.opens = 0
        # the central directory: only CRCs needed; a's is known.
        cd = cd_offset(whole)
        rv = fetch(client, "/z", headers={"Range": f"bytes={cd}-"})
        assert rv.status_code == 206 and rv.data == whole[cd:]
        assert a.opens == 0
        assert b.opens == 1

    def test_unknown_crc_member_read_once(self) -> None:
        made: list[Counting] = []

        def members() -> list[Counting]:
            made.append(Counting(b"q" * 5000, "a.bin", modified_time=T1))
            return made[-1:]

        app = zip_app(members)
        client = app.test_client()
        whole = fetch(client, "/z").data
        cd = cd_offset(whole)
        rv = fetch(client, "/z", headers={"Range": f"bytes={cd}-"})
        assert rv.data == whole[cd:]
        assert made[-1].opens == 1

    def test_wrong_crc_hint_is_used_as_given(self) -> None:
        # the CRC given is trusted (DESIGN: "taken from DownloadFile.crc32")
        data = b"hello"
        a = Counting(data, "a.bin", crc32=binascii.crc32(data), modified_time=T1)
        app = zip_app(lambda: [a])
        with zipfile.ZipFile(io.BytesIO(fetch(app.test_client(), "/z").data)) as zf:
            assert zf.testzip() is None

    def test_utf8_names_flag(self) -> None:
        app = zip_app(lambda: [VirtualFile(b"x", name="été/日本.txt")])
        with zipfile.ZipFile(io.BytesIO(fetch(app.test_client(), "/z").data)) as zf:
            info = zf.infolist()[0]
            assert info.filename == "été/日本.txt"
            assert info.flag_bits & 0x800

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("a\\b.txt", "a/b.txt"),
            ("/abs.txt", "abs.txt"),
            ("//abs.txt", "abs.txt"),
            ("C:\\x.txt", "x.txt"),
            ("c:/x.txt", "x.txt"),
            ("../../etc/passwd", "etc/passwd"),
            ("a/./b.txt", "a/b.txt"),
            ("a//b.txt", "a/b.txt"),
            ("a/../b.txt", "a/b.txt"),
            ("bad\x00na\x1fme\x7f.txt", "badname.txt"),
            ("new\nline.txt", "newline.txt"),
        ],
    )
    def test_names_made_safe(self, given: str, expected: str) -> None:
        app = zip_app(lambda: [(given, VirtualFile(b"x"))])
        with zipfile.ZipFile(io.BytesIO(fetch(app.test_client(), "/z").data)) as zf:
            [name] = zf.namelist()
        assert name == expected

    def test_names_never_unsafe(self) -> None:
        hostile = ["..", ".", "", "/", "\\", "C:", "\x00", "../", "a/..", "..\\..\\"]
        app = zip_app(lambda: [(n, VirtualFile(b"x")) for n in hostile])
        with zipfile.ZipFile(io.BytesIO(fetch(app.test_client(), "/z").data)) as zf:
            names = zf.namelist()
        assert len(names) == len(hostile)
        assert len(set(names)) == len(names)
        for name in names:
            assert name and not name.startswith("/") and "\\" not in name
            assert all(seg not in ("", ".", "..") for seg in name.split("/")), name
            assert ":" not in name.split("/")[0] or len(name.split("/")[0]) != 2

    def test_duplicates(self) -> None:
        app = zip_app(
            lambda: [
                ("a.txt", VirtualFile(b"1")),
                ("a.txt", VirtualFile(b"2")),
                ("a.txt", VirtualFile(b"3")),
                ("dir/b.tar.gz", VirtualFile(b"4")),
                ("dir/b.tar.gz", VirtualFile(b"5")),
                ("noext", VirtualFile(b"6")),
                ("noext", VirtualFile(b"7")),
                ("A.TXT", VirtualFile(b"8")),
            ]
        )
        with zipfile.ZipFile(io.BytesIO(fetch(app.test_client(), "/z").data)) as zf:
            names = zf.namelist()
            assert names[:3] == ["a.txt", "a (2).txt", "a (3).txt"]
            assert zf.read("a (2).txt") == b"2"
            assert names[3] == "dir/b.tar.gz"
            assert names[4] in ("dir/b (2).tar.gz", "dir/b.tar (2).gz")
            assert names[5:7] == ["noext", "noext (2)"]

    def test_duplicate_made_name_not_clashing(self) -> None:
        app = zip_app(
            lambda: [
                ("a (2).txt", VirtualFile(b"1")),
                ("a.txt", VirtualFile(b"2")),
                ("a.txt", VirtualFile(b"3")),
            ]
        )
        with zipfile.ZipFile(io.BytesIO(fetch(app.test_client(), "/z").data)) as zf:
            names = zf.namelist()
        assert len(set(names)) == 3

    def test_get_members_file_not_found_404(self) -> None:
        def boom() -> t.Any:
            raise FileNotFound("gone")

        app = zip_app(boom)
        assert fetch(app.test_client(), "/z").status_code == 404
        assert fetch(app.test_client(), "/z", method="HEAD").status_code == 404

    def test_get_members_generator_file_not_found_404(self) -> None:
        def gen() -> t.Any:
            yield VirtualFile(b"x", name="x")
            raise FileNotFound("gone")

        app = zip_app(gen)
        assert fetch(app.test_client(), "/z").status_code == 404

    def test_member_missing_404(self, tmp_path: pathlib.Path) -> None:
        app = zip_app(lambda: [PathFile(tmp_path / "missing.txt")])
        assert fetch(app.test_client(), "/z").status_code == 404

    def test_empty_archive_valid(self) -> None:
        app = zip_app(lambda: [])
        rv = fetch(app.test_client(), "/z")
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == "22"
        with zipfile.ZipFile(io.BytesIO(rv.data)) as zf:
            assert zf.namelist() == []
        rv = fetch(app.test_client(), "/z", headers={"Range": "bytes=0-3"})
        assert rv.status_code == 206 and rv.data == b"PK\x05\x06"

    def test_members_opened_one_at_a_time(self) -> None:
        open_now: list[int] = []
        peak = [0]

        class Tracked(DownloadFile):
            def __init__(self, i: int) -> None:
                self.name = f"{i}.bin"
                self.size = 1000
                self.modified_time = T1

            def open(self) -> t.IO[bytes]:
                tracked = self

                class S(io.BytesIO):
                    def close(self) -> None:
                        if not self.closed:
                            open_now.remove(id(tracked))
                        super().close()

                open_now.append(id(self))
                peak[0] = max(peak[0], len(open_now))
                return S(b"z" * 1000)

        app = zip_app(lambda: [Tracked(i) for i in range(20)])
        with zipfile.ZipFile(io.BytesIO(fetch(app.test_client(), "/z").data)) as zf:
            assert len(zf.namelist()) == 20
        assert peak[0] == 1
        assert open_now == []

    def test_zip64_big_member_tail_only(self) -> None:
        size = 4 * 1024**3 + 10

        class Huge(DownloadFile):
            name = "huge.bin"
            modified_time = T1
            crc32 = 0x12345678

            def __init__(self) -> None:
                self.size = size
                self.opened = 0

            def open(self) -> t.IO[bytes]:
                self.opened += 1
                raise AssertionError("the tail needs no member byte")

        huge = Huge()
        app = zip_app(lambda: [huge])
        head = fetch(app.test_client(), "/z", method="HEAD")
        total = int(head.headers["Content-Length"])
        assert total > size
        rv = fetch(app.test_client(), "/z", headers={"Range": "bytes=-200"})
        assert rv.status_code == 206
        tail = rv.data
        assert huge.opened == 0
        # zip64 end of central directory record and locator present
        assert b"PK\x06\x06" in tail and b"PK\x06\x07" in tail
        eocd = tail[tail.rindex(b"PK\x05\x06") :]
        entries, cd_size, cd_offset = struct.unpack("<HII", eocd[10:20])
        assert cd_offset == 0xFFFFFFFF
        loc = tail[tail.rindex(b"PK\x06\x07") :]
        (zip64_offset,) = struct.unpack("<Q", loc[8:16])
        assert 0 < zip64_offset < total


# --------------------------------------------------------------------------
# Section 9: edge-verified links
# --------------------------------------------------------------------------

from flask_download import cloudfront_signed_cookies  # noqa: E402
from flask_download import cloudfront_signed_url  # noqa: E402
from flask_download.edge import nginx_secure_link  # noqa: E402

NGINX_SECRET = "an-nginx-secure-link-secret-0123456789abcdef"


def expected_md5(expires: int, uri: str, secret: str, remote: str = "") -> str:
    digest = hashlib.md5(f"{expires}{uri}{remote} {secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class TestNginxSecureLink:
    def test_format_int_expiry(self) -> None:
        link = nginx_secure_link(
            "/files/a.txt", secret=NGINX_SECRET, expires=2000000000
        )
        path, _, query = link.partition("?")
        assert path == "/files/a.txt"
        params = parse_qs(query)
        assert set(params) == {"md5", "expires"}
        assert params["expires"] == ["2000000000"]
        assert params["md5"] == [expected_md5(2000000000, "/files/a.txt", NGINX_SECRET)]
        assert query.index("md5") < query.index("expires")

    def test_remote_addr_bound(self) -> None:
        link = nginx_secure_link(
            "/f", secret=NGINX_SECRET, expires=2000000000, remote_addr="10.0.0.1"
        )
        params = parse_qs(urlsplit(link).query)
        assert params["md5"] == [
            expected_md5(2000000000, "/f", NGINX_SECRET, "10.0.0.1")
        ]

    def test_datetime_expiry(self) -> None:
        when = datetime.datetime(2033, 5, 18, 3, 33, 20, tzinfo=UTC)
        link = nginx_secure_link("/f", secret=NGINX_SECRET, expires=when)
        assert parse_qs(urlsplit(link).query)["expires"] == [str(int(when.timestamp()))]

    def test_timedelta_expiry_is_relative(self) -> None:
        link = nginx_secure_link(
            "/f", secret=NGINX_SECRET, expires=datetime.timedelta(seconds=300)
        )
        value = int(parse_qs(urlsplit(link).query)["expires"][0])
        assert abs(value - (time.time() + 300)) < 5

    def test_percent_encoded_hash_over_decoded(self) -> None:
        uri = "/files/été a?b#c%d.txt"
        link = nginx_secure_link(uri, secret=NGINX_SECRET, expires=2000000000)
        path, _, query = link.partition("?")
        assert " " not in path and "#" not in path and "?" not in path
        assert unquote(path) == uri
        assert parse_qs(query)["md5"] == [expected_md5(2000000000, uri, NGINX_SECRET)]

    def test_already_encoded_uri_not_double_encoded(self) -> None:
        link = nginx_secure_link(
            "/files/a%20b.txt", secret=NGINX_SECRET, expires=2000000000
        )
        path, _, query = link.partition("?")
        # Either reading: the hash must match what nginx's $uri will be for the
        # path actually sent.
        decoded = unquote(path)
        assert parse_qs(query)["md5"] == [
            expected_md5(2000000000, decoded, NGINX_SECRET)
        ]


NGINX_SECURE_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location /files/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri{remote} {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
            alias {root}/;
        }}
    }}
}}
"""


@pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx not installed")
@pytest.mark.parametrize("bind", [False, True])
def test_nginx_secure_link_real_nginx(
    download_root: pathlib.Path, tmp_path: pathlib.Path, bind: bool
) -> None:
    odd = "été a b+c%d&e.txt"
    (download_root / odd).write_bytes(b"odd")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        NGINX_CONF_HEAD.format(tmp=tmp_path)
        + NGINX_SECURE_SERVER.format(
            port=port,
            root=download_root,
            secret=NGINX_SECRET,
            remote="$remote_addr" if bind else "",
        )
    )
    remote = "127.0.0.1" if bind else None
    future = int(time.time()) + 600
    with running_nginx(conf, port) as base:
        for name, content in [
            ("hello.txt", b"Hello, world!\n"),
            ("été.txt", "Un été à Paris\n".encode()),
            ("sub/nested.txt", b"nested\n"),
            (odd, b"odd"),
        ]:
            link = nginx_secure_link(
                "/files/" + name,
                secret=NGINX_SECRET,
                expires=future,
                remote_addr=remote,
            )
            status, _, body = raw_get(base, link)
            assert (status, body) == (200, content), name
            dt = datetime.datetime.fromtimestamp(future, UTC)
            link = nginx_secure_link(
                "/files/" + name, secret=NGINX_SECRET, expires=dt, remote_addr=remote
            )
            assert raw_get(base, link)[0] == 200
        past = nginx_secure_link(
            "/files/hello.txt",
            secret=NGINX_SECRET,
            expires=int(time.time()) - 10,
            remote_addr=remote,
        )
        assert raw_get(base, past)[0] == 410
        link = nginx_secure_link(
            "/files/hello.txt", secret=NGINX_SECRET, expires=future, remote_addr=remote
        )
        assert raw_get(base, link.replace("hello.txt", "data.bin"))[0] == 403


def _rsa_key() -> t.Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cf_b64decode(value: str) -> bytes:
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


class TestCloudFront:
    def test_canned_url_verifies(self) -> None:
        pytest.importorskip("botocore")
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        key = _rsa_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        url = "https://d111111abcdef8.cloudfront.net/files/a.txt"
        when = datetime.datetime(2033, 5, 18, 3, 33, 20, tzinfo=UTC)
        for private_key in (key, pem, pem.decode()):
            signed = cloudfront_signed_url(
                url, key_pair_id="K2JCJMDEHXQW5F", private_key=private_key, expires=when
            )
            assert signed.startswith(url + "?")
            params = {k: v[0] for k, v in parse_qs(urlsplit(signed).query).items()}
            assert params["Expires"] == str(int(when.timestamp()))
            assert params["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
            epoch = int(when.timestamp())
            policy = (
                f'{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":'
                f'{{"AWS:EpochTime":{epoch}}}}}}}]}}'
            )
            key.public_key().verify(
                _cf_b64decode(params["Signature"]),
                policy.encode(),
                padding.PKCS1v15(),
                hashes.SHA1(),
            )

    def test_custom_policy_url_and_cookies(self) -> None:
        pytest.importorskip("botocore")
        import json

        key = _rsa_key()
        url = "https://d111111abcdef8.cloudfront.net/files/*"
        when = int(time.time()) + 600
        signed = cloudfront_signed_url(
            url,
            key_pair_id="KID",
            private_key=key,
            expires=when,
            policy={
                "Statement": [
                    {
                        "Resource": url,
                        "Condition": {"DateLessThan": {"AWS:EpochTime": when}},
                    }
                ]
            },
        )
        params = {k: v[0] for k, v in parse_qs(urlsplit(signed).query).items()}
        assert "Policy" in params and "Expires" not in params
        assert (
            json.loads(_cf_b64decode(params["Policy"]))["Statement"][0]["Resource"]
            == url
        )
        cookies = cloudfront_signed_cookies(
            url,
            key_pair_id="KID",
            private_key=key,
            expires=when,
            ip_address="1.2.3.0/24",
        )
        assert set(cookies) >= {
            "CloudFront-Policy",
            "CloudFront-Signature",
            "CloudFront-Key-Pair-Id",
        }
        canned = cloudfront_signed_cookies(
            "https://d1.cloudfront.net/a.txt",
            key_pair_id="KID",
            private_key=key,
            expires=when,
        )
        assert set(canned) >= {"CloudFront-Signature", "CloudFront-Key-Pair-Id"}
        assert "CloudFront-Expires" in canned or "CloudFront-Policy" in canned


# --------------------------------------------------------------------------
# Wire: the same contract on gunicorn (sync worker, no test client)
# --------------------------------------------------------------------------


def gunicorn_app() -> Flask:
    """An app for gunicorn: an archive, an offloaded file and a redirect view."""
    import tempfile

    from flask_download.pytest_plugin import write_sample_files

    root = write_sample_files(pathlib.Path(tempfile.mkdtemp()) / "root")
    app = make_app(
        root,
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(root), "destination_url": "/protected/"}
        ],
    )
    FlaskDownload(app)

    class Z(ZipDownloadView):
        def get_members(self) -> t.Any:
            return [
                PathFile(root / "data.bin"),
                VirtualFile(b"v" * 5000, name="v.bin", modified_time=T1),
            ]

    app.add_url_rule("/z", view_func=Z.as_view("z"))
    app.add_url_rule(
        "/off/<path:path>", view_func=PathDownloadView.as_view("off", accel="nginx")
    )
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )

    @app.route("/link")
    def link() -> str:
        return signed_url_for("s", path="hello.txt", expires_in=30)

    return app


def test_wire_gunicorn() -> None:
    with running_gunicorn("tests.test_contract_sweep_b:gunicorn_app()") as base:
        status, headers, whole = raw_get(base, "/z")
        assert status == 200
        assert int(headers["Content-Length"]) == len(whole)
        with zipfile.ZipFile(io.BytesIO(whole)) as zf:
            assert zf.testzip() is None
        status, headers, body = raw_get(base, "/z", headers={"Range": "bytes=100-2999"})
        assert status == 206 and body == whole[100:3000]
        status, headers, body = raw_get(base, "/z", method="HEAD")
        assert status == 200 and body == b""
        assert int(headers["Content-Length"]) == len(whole)
        for method in ("GET", "HEAD"):
            status, headers, body = raw_get(base, "/off/hello.txt", method=method)
            assert status == 200 and body == b""
            assert headers["X-Accel-Redirect"] == "/protected/hello.txt"
        _, _, link = raw_get(base, "/link")
        status, headers, body = raw_get(base, link.decode())
        assert (status, body) == (200, b"Hello, world!\n")
        assert "private" in headers["Cache-Control"]
        status, headers, body = raw_get(base, "/s/hello.txt")
        assert status == 403


def test_offload_never_turned_on_by_client(download_root: pathlib.Path) -> None:
    """Rack::Sendfile-style request headers cannot ask for an offload."""
    app = make_app(download_root)
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    rv = fetch(
        app.test_client(),
        "/f/hello.txt",
        headers={
            "X-Sendfile-Type": "X-Accel-Redirect",
            "X-Accel-Mapping": f"{download_root}=/protected",
        },
    )
    assert rv.data == b"Hello, world!\n"
    assert "X-Accel-Redirect" not in rv.headers and "X-Sendfile" not in rv.headers


def test_design_readme_example_relative_path_without_root() -> None:
    """DESIGN's own example: a relative trusted path and no root configured
    is relative to the app (as ``send_file``)."""
    app = Flask("sweep_b", root_path=os.fspath(REPO))
    app.add_url_rule(
        "/readme",
        view_func=PathDownloadView.as_view(
            "readme", path="README.md", attachment=False
        ),
    )
    rv = fetch(app.test_client(), "/readme")
    assert rv.status_code == 200
    assert rv.data == (REPO / "README.md").read_bytes()
    assert rv.headers["Content-Disposition"].startswith("inline")


def test_storage_url_with_path_attribute(memfs: t.Any) -> None:
    app = make_app()
    app.add_url_rule(
        "/a",
        view_func=StorageDownloadView.as_view(
            "a", storage="memory://sweepb/bucket", path="dir/b.txt"
        ),
    )
    assert fetch(app.test_client(), "/a").data == b"bravo"


def test_signed_host_matching(download_root: pathlib.Path) -> None:
    app = Flask("sweep_b", host_matching=True, static_host="static.example.com")
    app.config.update(
        TESTING=True, SECRET_KEY=SECRET, DOWNLOAD_ROOT=os.fspath(download_root)
    )
    FlaskDownload(app)
    app.add_url_rule(
        "/s/<path:path>",
        host="<tenant>.example.com",
        view_func=PathDownloadView.as_view("s", signed=True),
    )
    with app.test_request_context(base_url="http://alice.example.com"):
        link = signed_url_for("s", tenant="alice", path="hello.txt", _external=True)
    parts = urlsplit(link)
    path = parts.path + "?" + parts.query
    client = app.test_client()
    assert fetch(client, path, base_url="http://alice.example.com").status_code == 200
    assert fetch(client, path, base_url="http://bob.example.com").status_code == 403


def test_signed_function_view_max_age_bounded(download_root: pathlib.Path) -> None:
    app = make_app(download_root)
    FlaskDownload(app)

    @app.route("/fn")
    @signature_required
    def fn() -> t.Any:
        return flask_download.send_download(
            os.fspath(download_root / "hello.txt"), max_age=86400
        )

    app.add_url_rule(
        "/p",
        view_func=PathDownloadView.as_view(
            "p",
            path="hello.txt",
            signed=True,
            cache_control="public, max-age=86400",
        ),
    )
    with app.test_request_context():
        links = [
            signed_url_for("fn", expires_in=60),
            signed_url_for("p", expires_in=60),
        ]
    for link in links:
        cc = fetch(app.test_client(), link).headers["Cache-Control"]
        parts = [p.strip() for p in cc.split(",")]
        assert "private" in parts and "public" not in parts
        ages = [int(p[8:]) for p in parts if p.startswith("max-age=")]
        assert ages and max(ages) <= 60


# --------------------------------------------------------------------------
# Section 2: HTTPDownloadView (upstream on loopback: refused unless allowed)
# --------------------------------------------------------------------------


def upstream_app() -> Flask:
    up = Flask("upstream")

    @up.route("/file.txt")
    def file() -> t.Any:
        from flask import Response

        return Response(
            b"remote bytes",
            mimetype="text/plain",
            headers={
                "ETag": '"up1"',
                "Last-Modified": "Thu, 02 Jan 2020 03:04:05 GMT",
            },
        )

    @up.route("/missing")
    def missing() -> t.Any:
        return "no", 404

    return up


class TestHTTPView:
    def test_loopback_refused_by_default(self) -> None:
        from flask_download import HTTPDownloadView

        with running_werkzeug(upstream_app()) as up:
            app = make_app()
            app.add_url_rule(
                "/r", view_func=HTTPDownloadView.as_view("r", url=up + "/file.txt")
            )
            rv = fetch(app.test_client(), "/r")
            assert rv.status_code >= 400
            assert b"remote bytes" not in rv.data

    @pytest.mark.parametrize("level", ["view", "config", "argument"])
    def test_loopback_allowed_explicitly(self, level: str) -> None:
        from flask_download import HTTPDownloadView

        with running_werkzeug(upstream_app()) as up:
            app = make_app()
            attrs: dict[str, t.Any] = {}
            if level == "view":
                attrs["allowed_hosts"] = ["127.0.0.1"]
                FlaskDownload(app)
            elif level == "config":
                app.config["DOWNLOAD_HTTP_ALLOWED_HOSTS"] = ["127.0.0.1"]
                FlaskDownload(app, http_allowed_hosts=["example.com"])
            else:
                FlaskDownload(app, http_allowed_hosts=["127.0.0.1"])
            app.add_url_rule(
                "/r",
                view_func=HTTPDownloadView.as_view("r", url=up + "/file.txt", **attrs),
            )

            class G(HTTPDownloadView):
                def get_url(self) -> str:
                    return up + "/file.txt"

            app.add_url_rule("/g", view_func=G.as_view("g", **attrs))
            app.add_url_rule(
                "/m",
                view_func=HTTPDownloadView.as_view("m", url=up + "/missing", **attrs),
            )
            client = app.test_client()
            for url in ("/r", "/g"):
                rv = fetch(client, url)
                assert rv.status_code == 200, url
                assert rv.data == b"remote bytes"
                assert 'filename="file.txt"' in rv.headers["Content-Disposition"]
                assert rv.headers["Content-Length"] == "12"
            assert fetch(client, "/m").status_code == 404

    def test_config_list_does_not_allow_other_hosts(self) -> None:
        from flask_download import HTTPDownloadView

        with running_werkzeug(upstream_app()) as up:
            app = make_app(DOWNLOAD_HTTP_ALLOWED_HOSTS=["example.com"])
            FlaskDownload(app)
            app.add_url_rule(
                "/r", view_func=HTTPDownloadView.as_view("r", url=up + "/file.txt")
            )
            rv = fetch(app.test_client(), "/r")
            assert rv.status_code >= 400 and b"remote" not in rv.data


# --------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------


def _other_spellings(signature: str) -> list[str]:
    """Spellings of ``signature`` that base64url decoders read as the same
    bytes (or skip): another last character, junk characters, padding."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    unused = {2: 4, 3: 2}.get(len(signature) % 4, 0)
    same = [
        signature[:-1] + alphabet[(last & ~((1 << unused) - 1)) | low]
        for low in range(1 << unused)
    ]
    return [s for s in same if s != signature] + [
        signature + "=",
        signature + "==",
        signature[:5] + "!" + signature[5:],
        signature[:5] + "." + signature[5:],
        " " + signature,
    ]


def test_signature_other_spellings_are_tampered(download_root: pathlib.Path) -> None:
    """Flipping the last character of a signature (a classic tamper test)
    must be a 403, also when it only changes bits base64 does not use."""
    app = signed_app(download_root)
    client = app.test_client()
    checked = 0
    for name in ("hello.txt", "data.bin", "page.html", "sub/nested.txt"):
        with app.test_request_context():
            link = signed_url_for("s", path=name)
        signature = _params(link)["signature"]
        assert fetch(client, link).status_code == 200
        for other in _other_spellings(signature):
            changed = tamper(link, "signature", other)
            assert fetch(client, changed).status_code == 403, other
            checked += 1
    assert checked >= 4 * 5


@pytest.mark.parametrize("kind", ["url", "dirfs"])
def test_local_storage_symlink_out_is_404(
    download_root: pathlib.Path, kind: str
) -> None:
    fsspec = pytest.importorskip("fsspec")
    (download_root / "link").symlink_to(download_root.parent)
    (download_root / "secretlink").symlink_to(download_root.parent / "secret.txt")
    storage: t.Any = "file://" + os.fspath(download_root)
    if kind == "dirfs":
        from fsspec.implementations.dirfs import DirFileSystem

        storage = DirFileSystem(os.fspath(download_root), fsspec.filesystem("file"))
    app = make_app()
    app.add_url_rule(
        "/s/<path:path>", view_func=StorageDownloadView.as_view("s", storage=storage)
    )
    client = app.test_client()
    assert fetch(client, "/s/hello.txt").data == b"Hello, world!\n"
    for url in (
        "/s/link/secret.txt",
        "/s/secretlink",
        "/s/../secret.txt",
        "/s/%2e%2e/secret.txt",
    ):
        rv = fetch(client, url)
        assert rv.status_code == 404, url
        assert b"TOP SECRET" not in rv.data


def test_model_blueprint_url_for_every_view(download_root: pathlib.Path) -> None:
    flask_sqlalchemy = pytest.importorskip("flask_sqlalchemy")

    class Base(orm.DeclarativeBase):
        pass

    db = flask_sqlalchemy.SQLAlchemy(model_class=Base)

    class Report(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "report"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        slug: orm.Mapped[str] = orm.mapped_column(sa.String(50), unique=True)
        file: orm.Mapped[str | None] = orm.mapped_column(sa.String(200))

    app = make_app(download_root, SQLALCHEMY_DATABASE_URI="sqlite://")
    db.init_app(app)
    FlaskDownload(app)
    app.register_blueprint(
        make_download_blueprint("dl", model=Report, root=os.fspath(download_root)),
        url_prefix="/dl",
    )
    with app.app_context():
        db.create_all()
        db.session.add(Report(id=1, slug="hello", file="hello.txt"))
        db.session.add(Report(id=2, slug="escape", file="../secret.txt"))
        db.session.commit()
    endpoints = {
        r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("dl.")
    }
    assert len(endpoints) == 3
    with app.test_request_context():
        urls = [
            url_for("dl.file", path="hello.txt"),
            url_for("dl.object", id=1),
            url_for("dl.object_by_slug", slug="hello"),
        ]
        bad = [url_for("dl.object", id=2), url_for("dl.object", id=99)]
    client = app.test_client()
    for url in urls:
        rv = fetch(client, url)
        assert rv.status_code == 200, url
        assert rv.data == b"Hello, world!\n"
    for url in bad:
        rv = fetch(client, url)
        assert rv.status_code == 404, url
    with app.app_context():
        db.engine.dispose()


NGINX_SERVER_HEADERS = """
    server {{
        listen 127.0.0.1:{port};
        location /protected/ {{
            internal;
            alias {root}/;
            add_header X-Content-Type-Options nosniff;
            add_header Content-Encoding $upstream_http_content_encoding;
            add_header Content-Security-Policy $upstream_http_content_security_policy;
        }}
        location / {{
            proxy_pass {upstream};
        }}
    }}
}}
"""


@pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx not installed")
def test_nginx_offload_keeps_security_headers_with_add_header(
    download_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """nginx keeps only a few headers of an X-Accel-Redirect response: the
    inline ``Content-Security-Policy: sandbox`` of an HTML file is lost unless
    the internal location adds it back from ``$upstream_http_...`` (and an
    empty value adds nothing for the other files)."""
    app = offload_app(download_root)
    app.add_url_rule(
        "/i/<path:path>", view_func=PathDownloadView.as_view("i", attachment=False)
    )
    port = free_port()
    conf = tmp_path / "nginx.conf"
    with running_werkzeug(app) as upstream:
        conf.write_text(
            NGINX_CONF_HEAD.format(tmp=tmp_path)
            + NGINX_SERVER_HEADERS.format(
                port=port, root=download_root, upstream=upstream
            )
        )
        with running_nginx(conf, port) as base:
            direct = fetch(app.test_client(), "/i/page.html")
            assert direct.headers["Content-Security-Policy"] == "sandbox"
            status, headers, body = raw_get(base, "/i/page.html")
            assert (status, body) == (200, b"<!doctype html><p>hi</p>")
            assert headers["Content-Security-Policy"] == "sandbox"
            assert headers["X-Content-Type-Options"] == "nosniff"
            status, headers, body = raw_get(base, "/i/hello.txt")
            assert status == 200
            assert "Content-Security-Policy" not in headers
            assert "Content-Encoding" not in headers


def test_script_name_split_cannot_reroute_signed_link(tmp_path: pathlib.Path) -> None:
    public = tmp_path / "public"
    private = tmp_path / "private"
    public.mkdir()
    private.mkdir()
    (public / "x.txt").write_bytes(b"public x")
    (private / "x.txt").write_bytes(b"PRIVATE x")
    app = make_app()
    FlaskDownload(app)
    app.add_url_rule(
        "/a/<path:path>",
        view_func=PathDownloadView.as_view("a", root=os.fspath(public), signed=True),
    )
    app.add_url_rule(
        "/<path:path>",
        view_func=PathDownloadView.as_view("b", root=os.fspath(private), signed=True),
    )
    with app.test_request_context():
        link = signed_url_for("a", path="x.txt")
    assert link.startswith("/a/x.txt?")
    client = app.test_client()
    assert fetch(client, link).data == b"public x"
    # the same bytes on the wire, split differently by a front server
    rv = fetch(client, link[2:], environ_overrides={"SCRIPT_NAME": "/a"})
    assert rv.status_code == 403
    assert b"PRIVATE" not in rv.data
    rv = fetch(client, link, headers={"X-Forwarded-Prefix": "/a"})
    assert rv.data == b"public x"


def test_signed_offloaded_response_never_outlives_link(
    download_root: pathlib.Path,
) -> None:
    app = make_app(
        download_root,
        DOWNLOAD_CACHE_MAX_AGE=86400,
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": os.fspath(download_root),
                "destination_url": "/protected/",
                "expires": 86400,
            }
        ],
    )
    FlaskDownload(app)
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )
    with app.test_request_context():
        link = signed_url_for("s", path="hello.txt", expires_in=60)
    rv = fetch(app.test_client(), link)
    assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"
    parts = [p.strip() for p in rv.headers["Cache-Control"].split(",")]
    assert "private" in parts
    assert all(int(p[8:]) <= 60 for p in parts if p.startswith("max-age="))
    expires = rv.headers.get("X-Accel-Expires")
    if expires is not None:
        if expires.startswith("@"):
            assert int(expires[1:]) <= time.time() + 61
        else:
            assert int(expires) <= 60


HOSTILE_RAW_PATHS = [
    "/f/../secret.txt",
    "/f/..%2fsecret.txt",
    "/f/..%2Fsecret.txt",
    "/f/%2e%2e%2fsecret.txt",
    "/f/%2e%2e/secret.txt",
    "/f/.%2e/secret.txt",
    "/f/sub/..%2f..%2fsecret.txt",
    "/f/..%5csecret.txt",
    "/f/%2e%2e%5csecret.txt",
    "/f/%c0%ae%c0%ae/secret.txt",
    "/f/%252e%252e/secret.txt",
    "/f/..%00/secret.txt",
    "/f/%2fetc%2fpasswd",
    "/f/link/secret.txt",
    "/f/secretlink",
    "/f/sub/../../secret.txt",
    "/f/sub/%2e%2e/%2e%2e/secret.txt",
]


def hostile_app() -> Flask:
    import tempfile

    from flask_download.pytest_plugin import write_sample_files

    tmp = pathlib.Path(tempfile.mkdtemp())
    root = write_sample_files(tmp / "root")
    (tmp / "secret.txt").write_bytes(b"TOP SECRET")
    (root / "link").symlink_to(tmp)
    (root / "secretlink").symlink_to(tmp / "secret.txt")
    app = make_app(root)
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    return app


def test_hostile_paths_on_real_servers() -> None:
    def check(base: str) -> None:
        assert raw_get(base, "/f/hello.txt")[2] == b"Hello, world!\n"
        for path in HOSTILE_RAW_PATHS:
            status, _, body = raw_get(base, path)
            assert status in (400, 404, 308), (path, status)
            assert b"TOP SECRET" not in body, path

    with running_werkzeug(hostile_app()) as base:
        check(base)
    with running_gunicorn("tests.test_contract_sweep_b:hostile_app()") as base:
        check(base)


@pytest.mark.parametrize("backend", ["nginx", "apache", "lighttpd"])
def test_assert_download_response_offload_backends(
    download_root: pathlib.Path, backend: str
) -> None:
    from flask_download.testing import assert_download_response

    app = offload_app(download_root, accel=backend)
    with app.test_client().get("/f/sub/nested.txt") as rv:
        assert_download_response(rv, content=b"nested\n", basename="nested.txt")
    with (
        app.test_client().get("/f/sub/nested.txt") as rv,
        pytest.raises(AssertionError),
    ):
        assert_download_response(rv, content=b"Hello, world!\n")
    with app.test_client().head("/f/hello.txt") as rv:
        assert_download_response(rv, content=b"Hello, world!\n", basename="hello.txt")


def test_nested_blueprint_url_for_and_signed(download_root: pathlib.Path) -> None:
    from flask import Blueprint

    parent = Blueprint("parent", __name__, url_prefix="/p")
    parent.register_blueprint(
        make_download_blueprint(
            "dl", root=os.fspath(download_root), options={"signed": True}
        ),
        url_prefix="/dl",
    )
    app = make_app()
    FlaskDownload(app)
    app.register_blueprint(parent)
    with app.test_request_context():
        plain = url_for("parent.dl.file", path="sub/nested.txt")
        link = signed_url_for("parent.dl.file", path="sub/nested.txt")
    assert plain == "/p/dl/sub/nested.txt"
    client = app.test_client()
    assert fetch(client, plain).status_code == 403
    assert fetch(client, link).data == b"nested\n"


@pytest.mark.parametrize("level", ["config", "argument", "view"])
def test_relative_root_is_relative_to_app_root_path(
    download_root: pathlib.Path, level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    app = Flask("sweep_b", root_path=os.fspath(download_root.parent))
    app.config.update(TESTING=True)
    attrs: dict[str, t.Any] = {}
    if level == "config":
        app.config["DOWNLOAD_ROOT"] = "root"
        FlaskDownload(app)
    elif level == "argument":
        FlaskDownload(app, root="root")
    else:
        FlaskDownload(app)
        attrs["root"] = "root"
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f", **attrs))
    assert fetch(app.test_client(), "/f/hello.txt").data == b"Hello, world!\n"


@pytest.mark.parametrize("level", ["view", "config", "argument"])
def test_http_timeout_precedence(level: str) -> None:
    """DOWNLOAD_HTTP_TIMEOUT: an upstream that does not answer in time -> 504."""
    import threading

    from flask_download import HTTPDownloadView

    release = threading.Event()
    up = Flask("slow")

    @up.route("/slow")
    def slow() -> str:
        release.wait(30)
        return "late"

    try:
        with running_werkzeug(up) as base:
            app, attrs = _settings_app(
                level,
                "DOWNLOAD_HTTP_TIMEOUT",
                0.5,
                60.0,
                DOWNLOAD_HTTP_ALLOWED_HOSTS=["127.0.0.1"],
            )
            app.add_url_rule(
                "/r",
                view_func=HTTPDownloadView.as_view("r", url=base + "/slow", **attrs),
            )
            started = time.monotonic()
            rv = fetch(app.test_client(), "/r")
            assert rv.status_code == 504
            assert time.monotonic() - started < 30
            release.set()
    finally:
        release.set()
