from __future__ import annotations

import collections.abc as cabc
import datetime
import os
import pathlib
import typing as t
from urllib.parse import quote
from urllib.parse import unquote

import pytest
from flask import Flask
from flask import Response

from flask_download import AccelResponse
from flask_download import AccelRule
from flask_download import ConfigurationError
from flask_download import content_disposition
from flask_download import DownloadFile
from flask_download import DownloadResponse
from flask_download import DownloadView
from flask_download import FlaskDownload
from flask_download import offload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download.ranges import UNSATISFIABLE

OFFLOAD_HEADERS = ("X-Accel-Redirect", "X-Sendfile", "X-LIGHTTPD-send-file")
SNEAKY_REQUEST_HEADERS = {
    "X-Accel-Redirect": "/protected/../../etc/passwd",
    "X-Sendfile": "/etc/passwd",
    "X-Sendfile-Type": "X-Accel-Redirect",
    "X-Accel-Mapping": "/=/protected/",
    "X-Accel-Buffering": "yes",
}


def nginx_rules(root: pathlib.Path, **options: t.Any) -> list[dict[str, t.Any]]:
    rule = {"source_dir": os.fspath(root), "destination_url": "/protected/"}
    return [{**rule, **options}]


def add_views(app: Flask, **attrs: t.Any) -> Flask:
    app.add_url_rule(
        "/files/<path:path>", view_func=PathDownloadView.as_view("files", **attrs)
    )
    return app


def offload_headers(rv: t.Any) -> dict[str, list[str]]:
    return {
        name: rv.headers.getlist(name) for name in OFFLOAD_HEADERS if name in rv.headers
    }


@pytest.fixture
def nginx_app(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> Flask:
    return add_views(
        app_factory(
            DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
        )
    )


class CountingFile(PathFile):
    """A :class:`PathFile` that counts ``open`` and ``close`` calls."""

    opened = 0
    closed = 0

    def open(self) -> t.IO[bytes]:
        type(self).opened += 1
        return super().open()

    def close(self) -> None:
        type(self).closed += 1
        super().close()  # PathFile holds a descriptor (issue #11)


class CountingView(PathDownloadView):
    def get_file(self) -> DownloadFile:
        return CountingFile(self.get_path())


class URLFile(DownloadFile):
    """A file known only by its storage URL."""

    seekable = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = url.rsplit("/", 1)[-1]

    def chunks(self, *args: t.Any, **kwargs: t.Any) -> cabc.Iterator[bytes]:
        yield b"streamed by the app"


# -- rules: validation at init_app --------------------------------------------


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("/srv/media", "list of mappings"),
        ({"source_dir": "/srv", "destination_url": "/p/"}, "list of mappings"),
        (["/srv/media"], "must be a mapping"),
        ([{"destination_url": "/p/"}], "exactly one of 'source_dir'"),
        (
            [{"source_dir": "/srv", "source_url": "s3://b", "destination_url": "/p/"}],
            "exactly one of 'source_dir'",
        ),
        ([{"source_url": "s3://b/m"}], "needs 'destination_url'"),
        ([{"source_dir": "/srv", "destination_url": "p/"}], "destination_url"),
        ([{"source_dir": "/srv", "destination_url": "/a b/"}], "destination_url"),
        ([{"source_dir": "/srv", "destination_url": "/p/?x=1"}], "query"),
        ([{"source_dir": "/srv", "destination_url": "/été/"}], "destination_url"),
        ([{"source_dir": "/srv", "destination_dir": "rel"}], "must be absolute"),
        ([{"source_dir": 3, "destination_url": "/p/"}], "source_dir"),
        ([{"source_url": "", "destination_url": "/p/"}], "source_url"),
        (
            [{"source_dir": "/srv", "destination_url": "/p/", "buffering": "no"}],
            "buffering",
        ),
        (
            [{"source_dir": "/srv", "destination_url": "/p/", "limit_rate": -1}],
            "limit_rate",
        ),
        (
            [{"source_dir": "/srv", "destination_url": "/p/", "limit_rate": True}],
            "limit_rate",
        ),
        (
            [{"source_dir": "/srv", "destination_url": "/p/", "expires": "soon"}],
            "expires",
        ),
        (
            [{"source_dir": "/srv", "destination_url": "/p/", "charset": "utf 8"}],
            "charset",
        ),
        (
            [{"source_dir": "/srv", "destination_url": "/p/", "charset": "utf-8\n"}],
            "charset",
        ),
        ([{"source_dir": "/srv", "destination_url": "/p/", "sorce": "x"}], "'sorce'"),
        (
            [
                {
                    "source_dir": "/srv",
                    "destination_url": "/p/",
                    "charset": "utf-8",
                    "options": {"charset": "utf-8"},
                }
            ],
            "twice",
        ),
        ([{"source_dir": "/srv", "destination_url": "/p/", "options": 1}], "options"),
    ],
    ids=[
        "string",
        "mapping",
        "entry-not-mapping",
        "no-source",
        "two-sources",
        "url-source-no-destination",
        "destination-url-relative",
        "destination-url-space",
        "destination-url-query",
        "destination-url-non-ascii",
        "destination-dir-relative",
        "source-dir-int",
        "source-url-empty",
        "buffering-str",
        "limit-rate-negative",
        "limit-rate-bool",
        "expires-word",
        "charset-space",
        "charset-newline-at-end",
        "unknown-key",
        "option-twice",
        "options-not-mapping",
    ],
)
def test_bad_rules_fail_at_init_app(rules: t.Any, message: str) -> None:
    app = Flask("bad_rules")
    app.config["DOWNLOAD_ACCEL_RULES"] = rules
    with pytest.raises(ConfigurationError, match=message):
        FlaskDownload(app)


@pytest.mark.parametrize("backend", ["apache", "lighttpd"])
def test_sendfile_backend_needs_a_directory(backend: str) -> None:
    app = Flask("bad_rules")
    app.config.update(
        DOWNLOAD_ACCEL=backend,
        DOWNLOAD_ACCEL_RULES=[{"source_url": "s3://b/m", "destination_url": "/s3/"}],
    )
    with pytest.raises(ConfigurationError, match="destination_dir"):
        FlaskDownload(app)


def test_nginx_backend_needs_a_destination_url() -> None:
    app = Flask("bad_rules")
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[{"source_dir": "/srv", "destination_dir": "/srv"}],
    )
    with pytest.raises(ConfigurationError, match="'destination_url'"):
        FlaskDownload(app)


def test_rules_become_frozen_rule_objects(tmp_path: pathlib.Path) -> None:
    app = Flask("rules", root_path=os.fspath(tmp_path))
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": "media",
                "destination_url": "/protected/",
                "options": {"buffering": False, "limit_rate": 1024},
            }
        ],
    )
    (rule,) = FlaskDownload(app).settings(app).accel_rules
    assert rule == AccelRule(
        source_dir=os.fspath(tmp_path / "media"),
        destination_url="/protected/",
        buffering=False,
        limit_rate=1024,
    )
    with pytest.raises(AttributeError):
        rule.source_dir = "/"  # type: ignore[misc]


def test_rules_as_extension_arguments(
    download_root: pathlib.Path,
) -> None:
    app = Flask("args", root_path=os.fspath(download_root.parent))
    app.config["DOWNLOAD_ROOT"] = os.fspath(download_root)
    FlaskDownload(app, accel="nginx", accel_rules=nginx_rules(download_root))
    add_views(app)
    with app.test_client().get("/files/hello.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"


# -- the offload response -----------------------------------------------------


def test_offload_keeps_the_download_headers(
    nginx_app: Flask, app_factory: cabc.Callable[..., Flask]
) -> None:
    direct = add_views(app_factory()).test_client()
    with (
        nginx_app.test_client().get("/files/hello.txt") as rv,
        direct.get("/files/hello.txt") as expected,
    ):
        assert rv.status_code == 200
        assert rv.data == b""
        assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"
        assert rv.headers["Content-Length"] == "0"
        for name in (
            "Content-Type",
            "Content-Disposition",
            "ETag",
            "Last-Modified",
            "Cache-Control",
            "X-Content-Type-Options",
        ):
            assert rv.headers[name] == expected.headers[name], name
        assert "Accept-Ranges" not in rv.headers


def test_offload_keeps_an_inline_content_encoding(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
    )
    add_views(app, attachment=False)
    with app.test_client().get("/files/archive.tar.gz") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/protected/archive.tar.gz"
        assert rv.headers["Content-Encoding"] == "gzip"
        assert rv.headers["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize(
    "range_header",
    ["bytes=0-4", "bytes=0-1,5-6", "bytes=500-", "bytes=-3"],
    ids=["single", "several", "unsatisfiable", "suffix"],
)
def test_range_requests_are_left_to_the_web_server(
    nginx_app: Flask, range_header: str
) -> None:
    with nginx_app.test_client().get(
        "/files/hello.txt", headers={"Range": range_header}
    ) as rv:
        assert rv.status_code == 200
        assert rv.data == b""
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert "Content-Range" not in rv.headers
        assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"


def test_head_is_offloaded_like_get(nginx_app: Flask) -> None:
    client = nginx_app.test_client()
    with client.head("/files/data.bin") as head, client.get("/files/data.bin") as get:
        assert head.status_code == 200
        assert head.data == b""
        assert dict(head.headers) == dict(get.headers)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("été.txt", "/protected/%C3%A9t%C3%A9.txt"),
        ("sub/nested.txt", "/protected/sub/nested.txt"),
        ("100% sure?.txt", "/protected/100%25%20sure%3F.txt"),
        ("a b#c;d.txt", "/protected/a%20b%23c%3Bd.txt"),
        ("日本 語.bin", "/protected/%E6%97%A5%E6%9C%AC%20%E8%AA%9E.bin"),
    ],
    ids=["non-ascii", "nested", "percent-question", "space-hash", "cjk"],
)
def test_destination_is_percent_encoded(
    nginx_app: Flask, download_root: pathlib.Path, name: str, expected: str
) -> None:
    (download_root / name).write_bytes(b"x")
    with nginx_app.test_client().get(f"/files/{quote(name)}") as rv:
        assert rv.status_code == 200
        value = rv.headers["X-Accel-Redirect"]
        assert value == expected
        assert value.isascii()
        # nginx decodes it back to exactly the file's name.
        assert unquote(value) == f"/protected/{name}"
        assert rv.headers["Content-Disposition"] == content_disposition(
            name.rsplit("/", 1)[-1], True
        )


def test_nginx_options_become_headers(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    rules = nginx_rules(
        download_root, buffering=False, limit_rate=4096, expires=60, charset="utf-8"
    )
    app = add_views(app_factory(DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=rules))
    with app.test_client().get("/files/hello.txt") as rv:
        assert rv.headers["X-Accel-Buffering"] == "no"
        assert rv.headers["X-Accel-Limit-Rate"] == "4096"
        assert rv.headers["X-Accel-Expires"] == "60"
        assert rv.headers["X-Accel-Charset"] == "utf-8"


def test_nginx_options_are_omitted_by_default(nginx_app: Flask) -> None:
    with nginx_app.test_client().get("/files/hello.txt") as rv:
        assert [name for name, _ in rv.headers if name.startswith("X-Accel")] == [
            "X-Accel-Redirect"
        ]


@pytest.mark.parametrize("backend", ["apache", "lighttpd"])
@pytest.mark.parametrize(
    ("rule", "expected_dir"),
    [({}, None), ({"destination_dir": "/mnt/web files"}, "/mnt/web%20files")],
    ids=["same-dir", "other-dir"],
)
def test_x_sendfile_carries_the_absolute_path(
    app_factory: cabc.Callable[..., Flask],
    download_root: pathlib.Path,
    backend: str,
    rule: dict[str, str],
    expected_dir: str | None,
) -> None:
    rules = [{"source_dir": os.fspath(download_root), **rule}]
    app = add_views(app_factory(DOWNLOAD_ACCEL=backend, DOWNLOAD_ACCEL_RULES=rules))
    real_root = os.path.realpath(download_root)
    with app.test_client().get("/files/sub/nested.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b""
        assert (expected_dir or real_root) + "/sub/nested.txt" == rv.headers[
            "X-Sendfile"
        ]
        assert "X-Accel-Redirect" not in rv.headers
    with app.test_client().get("/files/été.txt") as rv:
        # mod_xsendfile and lighttpd percent-decode the path.
        assert unquote(rv.headers["X-Sendfile"]) == os.path.join(
            unquote(expected_dir or real_root), "été.txt"
        )
        assert rv.headers["X-Sendfile"].isascii()


def test_304_comes_from_the_app_without_opening_the_file(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
    )
    app.add_url_rule("/c/<path:path>", view_func=CountingView.as_view("c"))
    CountingFile.opened = CountingFile.closed = 0
    client = app.test_client()
    with client.get("/c/hello.txt") as first:
        etag = first.headers["ETag"]
        assert first.headers["X-Accel-Redirect"] == "/protected/hello.txt"
    with client.get("/c/hello.txt", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert offload_headers(rv) == {}
    assert CountingFile.opened == 0
    assert CountingFile.closed >= 2


def test_offloaded_file_is_closed_never_opened(nginx_app: Flask) -> None:
    nginx_app.add_url_rule("/c/<path:path>", view_func=CountingView.as_view("c"))
    CountingFile.opened = CountingFile.closed = 0
    with nginx_app.test_client().get("/c/data.bin") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/protected/data.bin"
    assert CountingFile.opened == 0
    assert CountingFile.closed >= 1


def test_offloaded_headers_are_built_once(
    nginx_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_download.response import _representation

    calls: list[t.Any] = []
    content_type_and_encoding = _representation.content_type_and_encoding

    def counting(*args: t.Any) -> tuple[str, str | None]:
        calls.append(args)
        return content_type_and_encoding(*args)

    monkeypatch.setattr(_representation, "content_type_and_encoding", counting)
    with nginx_app.test_client().get("/files/hello.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert rv.headers["Content-Length"] == "0"
    assert len(calls) == 1


# -- matching: what is offloaded and what is not ------------------------------


def test_sibling_directory_with_the_same_prefix_does_not_match(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    sibling = download_root.parent / (download_root.name + "-private")
    sibling.mkdir()
    (sibling / "x.txt").write_bytes(b"sibling")
    app = app_factory(
        DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
    )
    app.add_url_rule(
        "/sibling",
        view_func=PathDownloadView.as_view(
            "sibling", path=os.fspath(sibling / "x.txt")
        ),
    )
    with app.test_client().get("/sibling") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"sibling"


def test_symlink_out_of_the_source_is_streamed_not_offloaded(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    outside = download_root.parent / "outside"
    outside.mkdir()
    (outside / "o.txt").write_bytes(b"outside")
    (download_root / "link.txt").symlink_to(outside / "o.txt")
    app = app_factory(
        DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
    )
    app.add_url_rule(
        "/link",
        view_func=PathDownloadView.as_view(
            "link", path=os.fspath(download_root / "link.txt")
        ),
    )
    with app.test_client().get("/link") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"outside"


def test_symlink_inside_the_source_offloads_its_target(
    nginx_app: Flask, download_root: pathlib.Path
) -> None:
    (download_root / "alias.txt").symlink_to(download_root / "sub" / "nested.txt")
    with nginx_app.test_client().get("/files/alias.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/protected/sub/nested.txt"


def test_traversal_is_refused_before_any_rule(nginx_app: Flask) -> None:
    client = nginx_app.test_client()
    for path in (
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/sub/../../secret.txt",
    ):
        with client.get(path) as rv:
            assert rv.status_code == 404
            assert offload_headers(rv) == {}


def test_file_outside_every_rule_is_streamed(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    rules = nginx_rules(download_root / "sub")
    app = add_views(app_factory(DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=rules))
    client = app.test_client()
    with client.get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"Hello, world!\n"
    with client.get("/files/sub/nested.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/protected/nested.txt"


def test_first_matching_rule_wins(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    rules = [
        {"source_dir": os.fspath(download_root / "sub"), "destination_url": "/sub/"},
        {"source_dir": os.fspath(download_root), "destination_url": "/all"},
    ]
    app = add_views(app_factory(DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=rules))
    client = app.test_client()
    with client.get("/files/sub/nested.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/sub/nested.txt"
    with client.get("/files/hello.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/all/hello.txt"


def test_virtual_file_is_never_offloaded(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
    )
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view("v", content="hi", basename="hi.txt"),
    )
    with app.test_client().get("/v") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"hi"


@pytest.mark.parametrize(
    ("source_url", "url", "expected"),
    [
        ("s3://bucket/media", "s3://bucket/media/a b/é.txt", "/s3/a%20b/%C3%A9.txt"),
        ("s3://bucket/media/", "s3://bucket/media/x.txt", "/s3/x.txt"),
        ("s3://bucket/media", "s3://bucket/media-other/x.txt", None),
        ("s3://bucket/media", "s3://bucket/media", None),
        ("s3://bucket/media", "s3://bucket/media/../secret.txt", None),
        ("s3://bucket/media", "s3://bucket/media/a\\b.txt", None),
        (
            "https://cdn.example/files",
            "https://cdn.example/files/a%20b.txt",
            "/s3/a%20b.txt",
        ),
        ("https://cdn.example/files", "https://cdn.example/files/%2e%2e/x", None),
        ("https://cdn.example/files", "https://cdn.example/files/a.txt?v=2", None),
        ("https://cdn.example/files", "https://cdn.example/files/%ff.txt", None),
    ],
    ids=[
        "quoted",
        "trailing-slash",
        "sibling-prefix",
        "prefix-itself",
        "dot-dot",
        "backslash",
        "http-decoded",
        "http-encoded-dot-dot",
        "http-query",
        "http-bad-utf8",
    ],
)
def test_storage_url_rules(source_url: str, url: str, expected: str | None) -> None:
    app = Flask("urls")
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[{"source_url": source_url, "destination_url": "/s3"}],
    )
    FlaskDownload(app)

    class URLView(DownloadView):
        def get_file(self) -> DownloadFile:
            return URLFile(url)

    app.add_url_rule("/u", view_func=URLView.as_view("u"))
    with app.test_client().get("/u") as rv:
        assert rv.headers.get("X-Accel-Redirect") == expected
        assert rv.data == (b"" if expected else b"streamed by the app")


# -- switching offload on and off ---------------------------------------------


def test_no_backend_means_no_offload(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = add_views(
        app_factory(
            DOWNLOAD_ACCEL=None, DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
        )
    )
    with app.test_client().get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"Hello, world!\n"


def test_view_opts_out_with_accel_false(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
    )
    add_views(app, accel=False)
    with app.test_client().get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"Hello, world!\n"


def test_view_chooses_its_backend_and_rules(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(DOWNLOAD_ACCEL=None)
    rules = [AccelRule(source_dir=os.fspath(download_root), destination_dir="/www")]
    add_views(app, accel="lighttpd", accel_rules=rules)
    with app.test_client().get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Sendfile": ["/www/hello.txt"]}


def test_view_backend_overrides_config(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    rules = [{**nginx_rules(download_root)[0], "destination_dir": "/www"}]
    app = app_factory(DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=rules)
    add_views(app, accel="apache")
    with app.test_client().get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Sendfile": ["/www/hello.txt"]}


class IISView(PathDownloadView):
    accel = "iis"


class BadRulesView(PathDownloadView):
    accel = "nginx"
    accel_rules = [{"source_dir": "/srv", "destination_dir": "/srv"}]


@pytest.mark.parametrize(
    ("view", "attrs", "message"),
    [
        (PathDownloadView, {"accel": "iis"}, "PathDownloadView.accel"),
        (PathDownloadView, {"accel": True}, "PathDownloadView.accel"),
        (IISView, {}, "IISView.accel"),
        (
            PathDownloadView,
            {"accel_rules": [{"destination_url": "/p/"}]},
            "exactly one of 'source_dir'",
        ),
        (
            PathDownloadView,
            {
                "accel": "nginx",
                "accel_rules": [{"source_dir": "/srv", "destination_dir": "/srv"}],
            },
            "'destination_url'",
        ),
        (BadRulesView, {}, "'destination_url'"),
    ],
    ids=[
        "keyword-backend",
        "keyword-true",
        "class-backend",
        "keyword-rule",
        "keyword-rule-for-backend",
        "class-rule-for-backend",
    ],
)
def test_bad_view_offload_fails_at_as_view(
    view: type[PathDownloadView], attrs: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        view.as_view("bad", **attrs)


def test_backend_set_per_request_is_checked_when_used(
    app_factory: cabc.Callable[..., Flask],
) -> None:
    class LateView(PathDownloadView):
        def get_file(self) -> DownloadFile:
            self.accel = "iis"
            return super().get_file()

    app = app_factory()
    app.add_url_rule("/files/<path:path>", view_func=LateView.as_view("late"))
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ConfigurationError, match="LateView.accel"):
        app.test_client().get("/files/hello.txt")


def test_view_rules_are_parsed_once(
    app_factory: cabc.Callable[..., Flask],
    download_root: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flask_download import accel_rules as accel

    calls: list[t.Any] = []
    parse_rules = accel.parse_rules

    def counting_parse_rules(*args: t.Any) -> tuple[AccelRule, ...]:
        calls.append(args)
        return parse_rules(*args)

    monkeypatch.setattr(accel, "parse_rules", counting_parse_rules)
    # Relative to the app's root_path (tmp_path), not the working directory.
    app = app_factory()
    add_views(app, accel="nginx", accel_rules=nginx_rules(pathlib.Path("root")))
    checked = len(calls)
    client = app.test_client()
    for _ in range(3):
        with client.get("/files/hello.txt") as rv:
            assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"
    assert len(calls) == checked + 1


def test_realpath_is_resolved_once_per_file(
    download_root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_download import accel

    rules = accel.parse_rules(
        [
            {"source_dir": os.fspath(download_root / "sub"), "destination_url": "/a/"},
            {"source_dir": os.fspath(download_root / "x"), "destination_url": "/b/"},
            {"source_dir": os.fspath(download_root), "destination_url": "/c/"},
        ]
    )
    file = PathFile(download_root / "hello.txt")
    calls: list[str] = []
    realpath = os.path.realpath

    def counting_realpath(path: t.Any, **kwargs: t.Any) -> t.Any:
        calls.append(path)
        return realpath(path, **kwargs)

    accel.find_offload(file, "nginx", rules)  # the source folders, resolved once
    monkeypatch.setattr(os.path, "realpath", counting_realpath)
    found = accel.find_offload(file, "nginx", rules)
    file.close()
    assert found is not None and found.value == "/c/hello.txt"
    assert calls == [os.fspath(download_root / "hello.txt")]


def test_a_source_dir_that_is_a_link_follows_its_swap(tmp_path: pathlib.Path) -> None:
    """Review: source_dir was resolved once, at start-up: after a deploy
    swapped a "current" link, no file matched the rule any more and every
    download was streamed by Python."""
    from flask_download import accel

    for release in ("rel1", "rel2"):
        (tmp_path / release).mkdir()
        (tmp_path / release / "a.txt").write_bytes(release.encode())
    current = tmp_path / "current"
    current.symlink_to("rel1")
    rules = accel.parse_rules(
        [{"source_dir": os.fspath(current), "destination_url": "/protected/"}]
    )
    sendfile = accel.parse_rules([{"source_dir": os.fspath(current)}])
    for expected in ("rel1", "rel2"):
        with PathFile("a.txt", root=current) as file:
            found = accel.find_offload(file, "nginx", rules)
            assert found is not None and found.value == "/protected/a.txt"
            found = accel.find_offload(file, "apache", sendfile)
            assert found is not None
            assert found.value == os.fspath(tmp_path / expected / "a.txt")
        (tmp_path / "next").symlink_to("rel2")
        os.replace(tmp_path / "next", current)


def test_views_offload_without_the_extension(download_root: pathlib.Path) -> None:
    app = Flask("plain", root_path=os.fspath(download_root.parent))
    app.config.update(
        DOWNLOAD_ROOT=os.fspath(download_root),
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=nginx_rules(download_root),
    )
    add_views(app)
    with app.test_client().get("/files/hello.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/protected/hello.txt"


# -- applied once, only to downloads; clients have no say ---------------------


def test_view_response_is_offloaded_exactly_once(nginx_app: Flask) -> None:
    with nginx_app.test_client().get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}


def test_hand_built_download_response_is_offloaded_once(
    nginx_app: Flask, download_root: pathlib.Path
) -> None:
    @nginx_app.route("/hand")
    def hand() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "data.bin"))

    @nginx_app.route("/already")
    def already() -> DownloadResponse:
        # After the hook ran once, running it again changes nothing.
        response = DownloadResponse(PathFile(download_root / "hello.txt"))
        for func in nginx_app.after_request_funcs[None]:
            response = func(response)
        assert isinstance(response, AccelResponse)
        return response

    client = nginx_app.test_client()
    with client.get("/hand") as rv:
        assert rv.status_code == 200
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/data.bin"]}
        assert rv.data == b""
    with client.get("/already") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}


def test_hand_built_206_is_offloaded_as_200(
    nginx_app: Flask, download_root: pathlib.Path
) -> None:
    @nginx_app.route("/hand-range")
    def hand_range() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "data.bin"), ranges=[(0, 10)])

    with nginx_app.test_client().get("/hand-range") as rv:
        assert rv.status_code == 200
        assert "Content-Range" not in rv.headers
        assert rv.headers["X-Accel-Redirect"] == "/protected/data.bin"


@pytest.mark.parametrize(
    "ranges",
    [[(0, 10), (20, 30)], UNSATISFIABLE],
    ids=["multipart", "416"],
)
def test_hand_built_ranged_answers_are_offloaded_whole(
    nginx_app: Flask, download_root: pathlib.Path, ranges: t.Any
) -> None:
    """Review: a response built by hand from the request's Range was not
    offloaded when that Range asked for several ranges or none it could
    serve: the client's header decided. It is made again without ranges
    (nginx answers the Range itself), with the headers the app added."""

    @nginx_app.route("/hand-ranges")
    def hand_ranges() -> DownloadResponse:
        response = DownloadResponse(
            PathFile(download_root / "data.bin"),
            ranges=ranges,
            mimetype="application/pdf",
            headers={"X-Mine": "kept"},
        )
        response.headers["X-Later"] = "kept too"
        response.headers["Cache-Control"] = "private, no-store"
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    with nginx_app.test_client().get("/hand-ranges") as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Accel-Redirect"] == "/protected/data.bin"
        assert rv.headers["Content-Type"] == "application/pdf"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="data.bin"'
        assert "Content-Range" not in rv.headers
        assert rv.headers["X-Mine"] == "kept"
        assert rv.headers["X-Later"] == "kept too"
        # As the application set them: the client's Range must not decide
        # whether a shared cache keeps a user's file (outside review).
        assert rv.headers["Cache-Control"] == "private, no-store"
        assert rv.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
        assert rv.data == b""


def test_opted_out_view_is_not_offloaded_by_the_hook(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx", DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
    )
    add_views(app, accel=False)
    with app.test_client().get("/files/data.bin") as rv:
        assert offload_headers(rv) == {}
        assert len(rv.data) == 1024


def test_non_download_responses_are_untouched(nginx_app: Flask) -> None:
    @nginx_app.route("/page")
    def page() -> str:
        return "a page"

    @nginx_app.route("/own")
    def own() -> Response:
        return Response(b"", headers={"X-Accel-Redirect": "/mine/x"})

    client = nginx_app.test_client()
    with client.get("/page") as rv:
        assert rv.data == b"a page"
        assert offload_headers(rv) == {}
    with client.get("/own") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/mine/x"]}
    with client.get("/files/missing.txt") as rv:
        assert rv.status_code == 404
        assert offload_headers(rv) == {}


@pytest.mark.parametrize("accel", [None, "nginx"], ids=["off", "nginx"])
def test_client_request_headers_never_influence_offload(
    app_factory: cabc.Callable[..., Flask],
    download_root: pathlib.Path,
    accel: str | None,
) -> None:
    app = add_views(
        app_factory(
            DOWNLOAD_ACCEL=accel, DOWNLOAD_ACCEL_RULES=nginx_rules(download_root)
        )
    )
    client = app.test_client()
    with (
        client.get("/files/hello.txt") as plain,
        client.get("/files/hello.txt", headers=SNEAKY_REQUEST_HEADERS) as sneaky,
    ):
        assert dict(sneaky.headers) == dict(plain.headers)
        assert sneaky.data == plain.data
    expected = {"X-Accel-Redirect": ["/protected/hello.txt"]} if accel else {}
    assert offload_headers(sneaky) == expected


# -- the offload decorator ----------------------------------------------------


def test_offload_decorator_chooses_backend_and_rules(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(DOWNLOAD_ACCEL=None)

    @app.route("/deco")
    @offload("nginx", rules=nginx_rules(download_root))
    def deco() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    with app.test_client().get("/deco") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}


def test_offload_decorator_opts_out(
    nginx_app: Flask, download_root: pathlib.Path
) -> None:
    @nginx_app.route("/deco-off")
    @offload(False)
    def deco_off() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    with nginx_app.test_client().get("/deco-off") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"Hello, world!\n"


def test_offload_decorator_uses_config_by_default(
    nginx_app: Flask, download_root: pathlib.Path
) -> None:
    @nginx_app.route("/deco-default")
    @offload()
    def deco_default() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    with nginx_app.test_client().get("/deco-default") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}


def test_offload_decorator_takes_source_dir_relative_to_the_app(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    # app.root_path is download_root.parent; the working directory is not.
    app = app_factory(DOWNLOAD_ACCEL=None)
    assert not os.path.exists("root")

    @app.route("/deco-relative")
    @offload("nginx", rules=[{"source_dir": "root", "destination_url": "/p/"}])
    def deco_relative() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    with app.test_client().get("/deco-relative") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/p/hello.txt"]}
        assert rv.data == b""


def test_offload_decorator_checks_its_arguments() -> None:
    with pytest.raises(ConfigurationError, match="offload"):
        offload("iis")
    with pytest.raises(ConfigurationError, match="destination_url"):
        offload("nginx", rules=[{"source_dir": "/srv", "destination_dir": "/srv"}])


def test_storage_file_matches_a_source_url_rule() -> None:
    fsspec = pytest.importorskip("fsspec")
    from flask_download import StorageFile

    fs = fsspec.filesystem("memory")
    fs.pipe("/accel-test/media/a b/é.txt", b"in the store")
    app = Flask("storage")
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_url": "memory:///accel-test/media", "destination_url": "/s3/"}
        ],
    )
    FlaskDownload(app)

    class StoreView(DownloadView):
        def get_file(self) -> DownloadFile:
            return StorageFile(fs, self.kwargs["key"])

    app.add_url_rule("/s/<path:key>", view_func=StoreView.as_view("s"))
    client = app.test_client()
    try:
        with client.get("/s/accel-test/media/a b/é.txt") as rv:
            assert rv.headers["X-Accel-Redirect"] == "/s3/a%20b/%C3%A9.txt"
            assert rv.data == b""
    finally:
        fs.rm("/accel-test", recursive=True)


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("nginx", {"X-Accel-Redirect": ["/protected/caf%E9.txt"]}),
        ("apache", {"X-Sendfile": ["/www/caf%E9.txt"]}),
        ("lighttpd", {}),
    ],
    ids=["nginx", "apache", "lighttpd-streams"],
)
def test_name_that_is_not_utf8_on_disk(
    app_factory: cabc.Callable[..., Flask],
    download_root: pathlib.Path,
    backend: str,
    expected: dict[str, list[str]],
) -> None:
    try:
        path = os.path.join(os.fsencode(download_root), b"caf\xe9.txt")
        with open(path, "wb") as f:
            f.write(b"latin-1 name")
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses non-UTF-8 names")
    rules = [{**nginx_rules(download_root)[0], "destination_dir": "/www"}]
    app = app_factory(DOWNLOAD_ACCEL=backend, DOWNLOAD_ACCEL_RULES=rules)
    app.add_url_rule(
        "/latin",
        view_func=PathDownloadView.as_view(
            "latin", path=os.fsdecode(path), basename="cafe.txt"
        ),
    )
    with app.test_client().get("/latin") as rv:
        assert rv.status_code == 200
        assert offload_headers(rv) == expected
        assert rv.data == (b"" if expected else b"latin-1 name")


# -- the offload decorator on any view (issue 13) --------------------------------


def test_offload_decorator_works_on_a_class_based_view(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    """Issue 13: offload(...) around an as_view() result was a no-op."""
    app = app_factory(DOWNLOAD_ACCEL=None)
    view = PathDownloadView.as_view("files")
    app.add_url_rule(
        "/files/<path:path>",
        view_func=offload("nginx", rules=nginx_rules(download_root))(view),
    )
    with app.test_client().get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}
        assert rv.data == b""


def test_offload_decorator_rule_wins_over_the_app_rule(
    nginx_app: Flask, download_root: pathlib.Path
) -> None:
    """Issue 13: the decorator's destination wins, as in django-downloadview."""
    rules = [{"source_dir": os.fspath(download_root), "destination_url": "/deco/"}]
    nginx_app.add_url_rule(
        "/cbv/<path:path>",
        view_func=offload("nginx", rules=rules)(PathDownloadView.as_view("cbv")),
    )

    @nginx_app.route("/fn")
    @offload("nginx", rules=rules)
    def fn() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    client = nginx_app.test_client()
    for url in ("/cbv/hello.txt", "/fn"):
        with client.get(url) as rv:
            assert offload_headers(rv) == {"X-Accel-Redirect": ["/deco/hello.txt"]}
    with client.get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}


def test_offload_decorator_wins_over_view_attributes(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(DOWNLOAD_ACCEL=None)
    app.add_url_rule(
        "/on/<path:path>",
        view_func=offload("nginx", rules=nginx_rules(download_root))(
            PathDownloadView.as_view("on", accel=False)
        ),
    )
    app.add_url_rule(
        "/off/<path:path>",
        view_func=offload(False)(
            PathDownloadView.as_view(
                "off", accel="nginx", accel_rules=nginx_rules(download_root)
            )
        ),
    )
    client = app.test_client()
    with client.get("/on/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}
    with client.get("/off/hello.txt") as rv:
        assert offload_headers(rv) == {}
        assert rv.data == b"Hello, world!\n"


def test_offload_decorator_in_view_class_decorators(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    class Offloaded(PathDownloadView):
        decorators = [offload("nginx", rules=nginx_rules(download_root))]

    app = app_factory(DOWNLOAD_ACCEL=None)
    app.add_url_rule("/o/<path:path>", view_func=Offloaded.as_view("o"))
    with app.test_client().get("/o/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}


def test_offload_decorator_keeps_the_view_attributes() -> None:
    view = PathDownloadView.as_view("kept")
    wrapped = offload(
        "nginx", rules=[{"source_dir": "/srv", "destination_url": "/p/"}]
    )(view)
    assert wrapped.view_class is PathDownloadView  # type: ignore[attr-defined]
    assert wrapped.__name__ == "kept"


def test_offload_decorator_misuse_fails_when_decorating() -> None:
    with pytest.raises(TypeError, match="parentheses"):
        offload(PathDownloadView.as_view("x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="as_view"):
        offload("nginx")(PathDownloadView)
    with pytest.raises(TypeError, match="as_view"):
        offload("nginx")("not a view")  # type: ignore[type-var]


def test_offload_decorator_choice_ends_with_the_view(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    """The decorator decides for the view it wraps, not for later requests."""
    app = add_views(app_factory(DOWNLOAD_ACCEL=None))

    @app.route("/boom")
    @offload("nginx", rules=nginx_rules(download_root))
    def boom() -> DownloadResponse:
        raise RuntimeError("view failed")

    client = app.test_client()
    app.testing = False
    with client.get("/boom") as rv:
        assert rv.status_code == 500
    with client.get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {}


# -- a rule's own backend (issue 13) ------------------------------------------


def test_rules_with_their_own_backend_offload_to_two_servers(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    (download_root / "big").mkdir()
    (download_root / "big" / "movie.bin").write_bytes(b"movie")
    app = add_views(
        app_factory(
            DOWNLOAD_ACCEL="nginx",
            DOWNLOAD_ACCEL_RULES=[
                {
                    "source_dir": os.fspath(download_root / "big"),
                    "destination_dir": "/mnt/big",
                    "backend": "apache",
                },
                {"source_dir": os.fspath(download_root), "destination_url": "/p/"},
            ],
        )
    )
    client = app.test_client()
    with client.get("/files/big/movie.bin") as rv:
        assert offload_headers(rv) == {"X-Sendfile": ["/mnt/big/movie.bin"]}
    with client.get("/files/hello.txt") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/p/hello.txt"]}


def test_rule_backend_applies_without_download_accel(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    rules = nginx_rules(download_root, backend="nginx")
    app = add_views(app_factory(DOWNLOAD_ACCEL=None, DOWNLOAD_ACCEL_RULES=rules))

    @app.route("/by-hand")
    def by_hand() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    # A view that opts out still streams.
    app.add_url_rule(
        "/no/<path:path>", view_func=PathDownloadView.as_view("no", accel=False)
    )
    client = app.test_client()
    for url in ("/files/hello.txt", "/by-hand"):
        with client.get(url) as rv:
            assert offload_headers(rv) == {"X-Accel-Redirect": ["/protected/hello.txt"]}
    with client.get("/no/hello.txt") as rv:
        assert offload_headers(rv) == {}


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ({"source_dir": "/srv", "destination_url": "/p/", "backend": "iis"}, "backend"),
        (
            {"source_dir": "/srv", "destination_dir": "/d", "backend": "nginx"},
            "destination_url",
        ),
        (
            {"source_url": "s3://b/p", "destination_url": "/p/", "backend": "apache"},
            "destination_dir",
        ),
    ],
    ids=["unknown", "nginx-needs-url", "apache-needs-dir"],
)
def test_rule_backend_is_checked(rule: dict[str, t.Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        FlaskDownload(accel_rules=[rule])


# -- parity details (issue 13) -------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "url"),
    [
        ("memory://accel13/pub", "memory:///accel13/pub/a.txt"),
        ("memory:///accel13/pub/", "memory://accel13/pub/a.txt"),
        ("s3://bucket/pub/", "s3://bucket/pub/a.txt"),
        ("s3://bucket/pub", "s3:///bucket/pub/a.txt"),
        ("S3://bucket/pub", "s3://bucket/pub/a.txt"),
    ],
)
def test_source_url_matches_every_spelling_of_the_prefix(prefix: str, url: str) -> None:
    """Issue 13: fsspec reads these spellings as the same location."""

    class Stored(DownloadFile):
        pass

    file = Stored()
    file.url = url
    rule = AccelRule(source_url=prefix, destination_url="/s/")
    assert rule.relative_segments(file) == ["a.txt"]
    other = Stored()
    other.url = url.replace("pub", "pubx")
    assert rule.relative_segments(other) is None


def test_source_url_prefix_from_the_config_matches_a_memory_file() -> None:
    fsspec = pytest.importorskip("fsspec")
    from flask_download import StorageFile

    fsspec.filesystem("memory").pipe("/accel13/pub/a.txt", b"x")
    app = Flask("spelling")
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_url": "memory://accel13/pub", "destination_url": "/m/"}
        ],
    )
    FlaskDownload(app)

    @app.route("/m")
    def m() -> DownloadResponse:
        return DownloadResponse(
            StorageFile(fsspec.filesystem("memory"), "/accel13/pub/a.txt")
        )

    with app.test_client().get("/m") as rv:
        assert offload_headers(rv) == {"X-Accel-Redirect": ["/m/a.txt"]}


@pytest.mark.parametrize("value", ["off", "OFF", 0])
def test_limit_rate_off_means_no_limit(
    value: t.Any, app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = add_views(
        app_factory(
            DOWNLOAD_ACCEL="nginx",
            DOWNLOAD_ACCEL_RULES=nginx_rules(download_root, limit_rate=value),
        )
    )
    with app.test_client().get("/files/hello.txt") as rv:
        assert rv.headers["X-Accel-Limit-Rate"] == "0"


@pytest.mark.parametrize(
    ("value", "header"),
    [
        (datetime.timedelta(minutes=5), "300"),
        (datetime.timedelta(0), "0"),
        (
            datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
            "@1893456000",
        ),
        (datetime.datetime(2030, 1, 1), "@1893456000"),
        (
            datetime.datetime(
                2030, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
            ),
            "@1893456000",
        ),
        (60, "60"),
        ("@1893456000", "@1893456000"),
    ],
    ids=["timedelta", "zero", "aware", "naive-utc", "offset", "int", "string"],
)
def test_expires_takes_datetime_and_timedelta(value: t.Any, header: str) -> None:
    """Issue 13: expires as a datetime/timedelta as well as seconds."""
    rule = AccelRule(source_dir="/srv", destination_url="/p/", expires=value)
    assert rule.expires == (int(header) if header.isdigit() else header)


@pytest.mark.parametrize(
    "value",
    [datetime.timedelta(seconds=-1), datetime.datetime(1960, 1, 1), "off", -5],
    ids=["negative-timedelta", "before-epoch", "off", "negative"],
)
def test_bad_expires_is_refused(value: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="expires"):
        AccelRule(source_dir="/srv", destination_url="/p/", expires=value)


@pytest.mark.parametrize("prefix", ["memory://", "memory:///", "MEMORY://"])
def test_source_url_of_a_whole_store(prefix: str) -> None:
    class Stored(DownloadFile):
        pass

    file = Stored()
    file.url = "memory:///pub/a.txt"
    rule = AccelRule(source_url=prefix, destination_url="/s/")
    assert rule.relative_segments(file) == ["pub", "a.txt"]
    other = Stored()
    other.url = "s3://pub/a.txt"
    assert rule.relative_segments(other) is None
