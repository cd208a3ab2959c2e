"""Offload behind a real nginx: X-Accel-Redirect end to end.

A module-scoped fixture starts nginx on 127.0.0.1 with a generated config
(everything it writes lives in a temporary directory) in front of the Flask
app, which a werkzeug server runs in a thread. The config is the snippet of
docs/offload.rst ("nginx").
"""

from __future__ import annotations

import collections.abc as cabc
import os
import pathlib
import time
import typing as t
from urllib.parse import quote

import pytest
from conftest import free_port
from conftest import NGINX
from conftest import NGINX_CONF_HEAD
from conftest import running_nginx
from conftest import running_werkzeug
from flask import abort
from flask import Flask
from flask import request

from flask_download import content_disposition
from flask_download import DownloadFile
from flask_download import DownloadResponse
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download.pytest_plugin import SAMPLE_FILES
from flask_download.pytest_plugin import write_sample_files

urllib3 = pytest.importorskip("urllib3")

pytestmark = pytest.mark.skipif(
    not os.access(NGINX, os.X_OK),
    reason="needs nginx at /usr/sbin/nginx (apt-get install nginx; .ci/run does it)",
)

#: Files served besides SAMPLE_FILES: names nginx must decode exactly.
EXTRA_FILES: dict[str, bytes] = {
    "100% sure?.txt": b"percent and question mark\n",
    "a b#c;d.txt": b"space, hash, semicolon\n",
    "big.bin": bytes(range(256)) * 1024,
    "notes.txt.gz": b"\x1f\x8b\x08\x00gzip-bytes",
}
# URL paths with a backslash are refused by the app (404): that name is
# served by a view with a fixed path instead.
WEIRD = 'we"ird;name\\.txt'
OFFLOADED = [name for name in [*SAMPLE_FILES, *EXTRA_FILES] if name != WEIRD]

# The snippet of docs/offload.rst, with the paths and ports of the test. Debian's
# nginx.conf has "sendfile on; tcp_nopush on;" at http level: kept here.
NGINX_CONF = (
    NGINX_CONF_HEAD
    + """\
    sendfile on;
    tcp_nopush on;

    server {{
        listen 127.0.0.1:{port};

        location /protected/ {{
            internal;
            alias {root}/;
            # nginx drops the app's headers but a few on X-Accel-Redirect.
            add_header X-Content-Type-Options nosniff;
            add_header Content-Encoding $upstream_http_content_encoding;
            add_header Content-Security-Policy $upstream_http_content_security_policy;
            # Small ranged responses on kept-alive connections.
            tcp_nopush off;
        }}

        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""
)


class PrivateView(PathDownloadView):
    """Files only for requests with the right token: the app decides."""

    def get_file(self) -> DownloadFile:
        if request.args.get("token") != "letmein":
            abort(403)
        return super().get_file()


def _make_app(root: pathlib.Path) -> Flask:
    app = Flask("nginx_app", root_path=os.fspath(root.parent))
    app.config.update(
        DOWNLOAD_ROOT=os.fspath(root),
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(root), "destination_url": "/protected/"}
        ],
    )
    FlaskDownload(app)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    app.add_url_rule(
        "/inline/<path:path>",
        view_func=PathDownloadView.as_view("inline", attachment=False),
    )
    app.add_url_rule(
        "/streamed/<path:path>",
        view_func=PathDownloadView.as_view("streamed", accel=False),
    )
    app.add_url_rule("/private/<path:path>", view_func=PrivateView.as_view("private"))
    app.add_url_rule("/weird", view_func=PathDownloadView.as_view("weird", path=WEIRD))
    latin = os.fsdecode(os.path.join(os.fsencode(root), b"caf\xe9.txt"))
    app.add_url_rule(
        "/latin",
        view_func=PathDownloadView.as_view("latin", path=latin, basename="cafe.txt"),
    )

    @app.route("/by-hand/<name>")
    def by_hand(name: str) -> DownloadResponse:
        # Built by hand: the extension's after_request hook offloads it.
        return DownloadResponse(PathFile(root / {"hello": "hello.txt"}[name]))

    return app


@pytest.fixture(scope="module")
def nginx_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    base = tmp_path_factory.mktemp("nginx")
    root = write_sample_files(base / "files")
    for name, content in EXTRA_FILES.items():
        (root / name).write_bytes(content)
    (base / "secret.txt").write_bytes(b"TOP SECRET")
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1 name on disk")
    return root


@pytest.fixture(scope="module")
def app_port(nginx_root: pathlib.Path) -> cabc.Iterator[int]:
    with running_werkzeug(_make_app(nginx_root)) as url:
        yield int(url.rpartition(":")[2])


@pytest.fixture(scope="module")
def nginx_url(
    nginx_root: pathlib.Path, app_port: int, tmp_path_factory: pytest.TempPathFactory
) -> cabc.Iterator[str]:
    tmp = tmp_path_factory.mktemp("nginx_run")
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(tmp=tmp, root=nginx_root, port=port, app_port=app_port)
    )
    with running_nginx(conf, port) as url:
        yield url


def _get(http: t.Any, url: str, method: str = "GET", **headers: str) -> t.Any:
    return http.request(method, url, headers=headers, redirect=False)


def _app_etag(root: pathlib.Path, name: str) -> str:
    return f'"{PathFile(root / name).etag}"'


@pytest.mark.parametrize("name", OFFLOADED, ids=OFFLOADED)
def test_nginx_sends_the_files_bytes_and_the_apps_headers(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path, name: str
) -> None:
    rv = _get(http, f"{nginx_url}/files/{quote(name)}")
    assert rv.status == 200
    assert rv.data == (nginx_root / name).read_bytes()
    assert rv.headers["Content-Disposition"] == content_disposition(
        os.path.basename(name), True
    )
    assert rv.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert rv.headers["Content-Length"] == str(len(rv.data))
    # nginx sent the file: its own ETag, and no offload header leaks.
    assert rv.headers["ETag"] != _app_etag(nginx_root, name)
    assert "X-Accel-Redirect" not in rv.headers


def test_name_with_quote_semicolon_and_backslash(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path
) -> None:
    rv = _get(http, f"{nginx_url}/weird")
    assert rv.status == 200
    assert rv.data == (nginx_root / WEIRD).read_bytes()
    assert rv.headers["Content-Disposition"] == (
        'attachment; filename="we\\"ird;name\\\\.txt"'
    )
    assert rv.headers["ETag"] != _app_etag(nginx_root, WEIRD)


def test_name_that_is_not_utf8_on_disk(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path
) -> None:
    rv = _get(http, f"{nginx_url}/latin")
    assert rv.status == 200
    assert rv.data == b"latin-1 name on disk"
    # nginx opened it from the raw bytes of the percent-encoded name.
    assert rv.headers["ETag"] != _app_etag(nginx_root, os.fsdecode(b"caf\xe9.txt"))
    assert rv.headers["Content-Disposition"] == 'attachment; filename="cafe.txt"'


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("hello.txt", "text/plain; charset=utf-8"),
        ("été.txt", "text/plain; charset=utf-8"),
        ("data.bin", "application/octet-stream"),
        ("archive.tar.gz", "application/gzip"),
        ("page.html", "text/html; charset=utf-8"),
    ],
    ids=["text", "non-ascii", "binary", "attachment-gzip", "html"],
)
def test_content_type_is_the_apps(
    http: t.Any, nginx_url: str, name: str, content_type: str
) -> None:
    rv = _get(http, f"{nginx_url}/files/{quote(name)}")
    assert rv.status == 200
    assert rv.headers["Content-Type"] == content_type
    assert "Content-Encoding" not in rv.headers


def test_non_ascii_name_goes_out_in_rfc_8187_form(http: t.Any, nginx_url: str) -> None:
    rv = _get(http, f"{nginx_url}/files/{quote('été.txt')}")
    assert rv.status == 200
    assert rv.headers["Content-Disposition"] == (
        "attachment; filename=\"ete.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt"
    )
    assert rv.data.decode() == "Un été à Paris\n"


def test_inline_gzip_keeps_its_content_encoding(http: t.Any, nginx_url: str) -> None:
    rv = http.request("GET", f"{nginx_url}/inline/notes.txt.gz", decode_content=False)
    assert rv.status == 200
    assert rv.headers["Content-Encoding"] == "gzip"
    assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert rv.data == EXTRA_FILES["notes.txt.gz"]


def test_single_range_through_nginx(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path
) -> None:
    content = (nginx_root / "big.bin").read_bytes()
    rv = _get(http, f"{nginx_url}/files/big.bin", Range="bytes=1000-1099")
    assert rv.status == 206
    assert rv.headers["Content-Range"] == f"bytes 1000-1099/{len(content)}"
    assert rv.data == content[1000:1100]


def test_several_ranges_through_nginx(http: t.Any, nginx_url: str) -> None:
    rv = _get(http, f"{nginx_url}/files/data.bin", Range="bytes=0-1,10-11")
    assert rv.status == 206
    assert rv.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert b"Content-Range: bytes 0-1/1024" in rv.data
    assert b"Content-Range: bytes 10-11/1024" in rv.data


def test_unsatisfiable_range_is_416(http: t.Any, nginx_url: str) -> None:
    rv = _get(http, f"{nginx_url}/files/hello.txt", Range="bytes=500-")
    assert rv.status == 416
    assert rv.headers["Content-Range"] == "bytes */14"


def test_head_through_nginx(http: t.Any, nginx_url: str) -> None:
    rv = _get(http, f"{nginx_url}/files/hello.txt", method="HEAD")
    assert rv.status == 200
    assert rv.data == b""
    assert rv.headers["Content-Length"] == "14"
    assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'


def test_internal_location_is_not_reachable_directly(
    http: t.Any, nginx_url: str
) -> None:
    rv = _get(http, f"{nginx_url}/protected/hello.txt")
    assert rv.status == 404
    assert b"Hello" not in rv.data


def test_app_refusal_holds_behind_nginx(http: t.Any, nginx_url: str) -> None:
    refused = _get(http, f"{nginx_url}/private/hello.txt")
    allowed = _get(http, f"{nginx_url}/private/hello.txt?token=letmein")
    assert refused.status == 403
    assert b"Hello" not in refused.data
    assert allowed.status == 200
    assert allowed.data == b"Hello, world!\n"


@pytest.mark.parametrize(
    "path",
    ["/files/missing.txt", "/files/..%2fsecret.txt", "/files/sub/..%2f..%2fsecret.txt"],
    ids=["missing", "dot-dot", "nested-dot-dot"],
)
def test_app_404_holds_behind_nginx(http: t.Any, nginx_url: str, path: str) -> None:
    rv = _get(http, nginx_url + path)
    assert rv.status == 404
    assert b"SECRET" not in rv.data


def test_if_modified_since_gets_304_from_the_app(http: t.Any, nginx_url: str) -> None:
    first = _get(http, f"{nginx_url}/files/hello.txt")
    rv = _get(
        http,
        f"{nginx_url}/files/hello.txt",
        **{"If-Modified-Since": first.headers["Last-Modified"]},
    )
    assert rv.status == 304
    assert rv.data == b""


def test_nginx_etag_revalidates_with_304(http: t.Any, nginx_url: str) -> None:
    first = _get(http, f"{nginx_url}/files/hello.txt")
    rv = _get(
        http, f"{nginx_url}/files/hello.txt", **{"If-None-Match": first.headers["ETag"]}
    )
    assert rv.status == 304
    assert rv.data == b""


def test_inline_html_keeps_its_sandbox_through_nginx(
    http: t.Any, nginx_url: str
) -> None:
    """The documented config adds the app's Content-Security-Policy back: an
    offloaded inline page stays sandboxed, and a text file gets none."""
    rv = _get(http, f"{nginx_url}/inline/page.html")
    assert rv.status == 200
    assert rv.data == b"<!doctype html><p>hi</p>"
    assert rv.headers["Content-Security-Policy"] == "sandbox"
    assert rv.headers["X-Content-Type-Options"] == "nosniff"
    rv = _get(http, f"{nginx_url}/inline/hello.txt")
    assert "Content-Security-Policy" not in rv.headers


def test_nginx_etag_in_if_match_is_the_current_file(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path
) -> None:
    """nginx sends an offloaded file with its own ETag: a client that sends
    that one back in If-Match (a conditional resume, say) gets the file,
    not a 412 from the app; in If-None-Match, a 304."""
    url = f"{nginx_url}/files/hello.txt"
    first = _get(http, url)
    nginx_etag = first.headers["ETag"]
    assert nginx_etag != _app_etag(nginx_root, "hello.txt")
    for tag in (nginx_etag, "*", f'"x", {nginx_etag}'):
        rv = _get(http, url, **{"If-Match": tag})
        assert rv.status == 200, tag
        assert rv.data == b"Hello, world!\n"
    rv = _get(http, url, **{"If-Match": nginx_etag, "Range": "bytes=0-4"})
    assert (rv.status, rv.data) == (206, b"Hello")
    rv = _get(http, url, **{"If-Match": '"5f5e100-e"'})
    assert rv.status == 412
    rv = _get(http, url, **{"If-None-Match": f'"x", {nginx_etag}'})
    assert (rv.status, rv.data) == (304, b"")
    # Not offloaded: only the app's tag is current.
    streamed = f"{nginx_url}/streamed/hello.txt"
    assert _get(http, streamed, **{"If-Match": nginx_etag}).status == 412
    app_tag = _app_etag(nginx_root, "hello.txt")
    assert _get(http, streamed, **{"If-Match": app_tag}).status == 200


def test_opted_out_view_is_streamed_by_the_app(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path
) -> None:
    rv = _get(http, f"{nginx_url}/streamed/hello.txt")
    assert rv.status == 200
    assert rv.data == b"Hello, world!\n"
    assert rv.headers["ETag"] == _app_etag(nginx_root, "hello.txt")


def test_client_offload_headers_change_nothing(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path
) -> None:
    sneaky = {
        "X-Accel-Redirect": "/protected/data.bin",
        "X-Sendfile": os.fspath(nginx_root.parent / "secret.txt"),
        "X-Sendfile-Type": "X-Accel-Redirect",
        "X-Accel-Mapping": f"{nginx_root.parent}/=/protected/",
    }
    offloaded = _get(http, f"{nginx_url}/files/hello.txt", **sneaky)
    streamed = _get(http, f"{nginx_url}/streamed/hello.txt", **sneaky)
    assert offloaded.data == streamed.data == b"Hello, world!\n"
    assert streamed.headers["ETag"] == _app_etag(nginx_root, "hello.txt")


def test_hand_built_response_is_offloaded(
    http: t.Any, nginx_url: str, nginx_root: pathlib.Path
) -> None:
    rv = _get(http, f"{nginx_url}/by-hand/hello")
    assert rv.status == 200
    assert rv.data == b"Hello, world!\n"
    assert rv.headers["ETag"] != _app_etag(nginx_root, "hello.txt")


def test_small_ranges_on_a_kept_alive_connection_do_not_stall(
    http: t.Any, nginx_url: str
) -> None:
    """With tcp_nopush on, each small ranged response can wait ~40 ms; the
    snippet's ``tcp_nopush off`` in the internal location avoids that."""
    url = f"{nginx_url}/files/big.bin"
    _get(http, url, Range="bytes=0-0")  # connect first
    started = time.perf_counter()
    for i in range(20):
        rv = _get(http, url, Range=f"bytes={i * 100}-{i * 100 + 99}")
        assert rv.status == 206
    # 20 stalls would take 800 ms; unstalled requests take a few ms each.
    assert time.perf_counter() - started < 0.6
