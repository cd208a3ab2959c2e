"""Review of the fourth session's last commits: 412 without Content-Type
everywhere a 412 is made, the strict nginx ``md5`` spelling against every
link this package writes, and URL paths ending in ``/`` or ``/.``."""

from __future__ import annotations

import http.client
import os
import pathlib
import random
import string
import time
import typing as t
import urllib.error
import urllib.request
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from conftest import free_port
from conftest import NGINX
from conftest import NGINX_CONF_HEAD
from conftest import running_nginx
from conftest import running_werkzeug
from flask import Flask

from flask_download import HTTPDownloadView
from flask_download import InvalidSignature
from flask_download import nginx_secure_link
from flask_download import nginx_secure_link_required
from flask_download import nginx_secure_url_for
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download import signed_url_for
from flask_download import StorageDownloadView
from flask_download import VirtualFile
from flask_download import ZipDownloadView
from flask_download.edge import verify_nginx_secure_link

SECRET = "s3cr3t-" + "x" * 40


def _file_app(root: pathlib.Path) -> Flask:
    (root / "a.txt").write_bytes(b"inside")
    app = Flask(__name__)
    app.add_url_rule(
        "/p/<path:path>", view_func=PathDownloadView.as_view("p", root=str(root))
    )
    app.add_url_rule(
        "/s/<path:path>", view_func=StorageDownloadView.as_view("s", storage=str(root))
    )

    class Zip(ZipDownloadView):
        def get_members(self) -> list[VirtualFile]:
            return [VirtualFile(b"m", name="m.txt")]

    app.add_url_rule("/z", view_func=Zip.as_view("z"))

    @app.route("/sd")
    def sd() -> t.Any:
        return send_download("a.txt", root=str(root))

    @app.route("/sb")
    def sb() -> t.Any:
        return send_download(b"data", basename="x.bin", etag="tag")

    return app


@pytest.mark.parametrize("url", ["/p/a.txt", "/s/a.txt", "/z", "/sd", "/sb"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_every_412_has_no_content_type(
    tmp_path: pathlib.Path, url: str, method: str
) -> None:
    app = _file_app(tmp_path)
    with app.test_client().open(
        url, method=method, headers={"If-Match": '"nope"'}
    ) as rv:
        assert rv.status_code == 412
        assert rv.get_data() == b""
        assert "Content-Type" not in rv.headers
        assert "Content-Disposition" not in rv.headers
        assert rv.headers["Content-Length"] == "0"


def test_an_upstream_412_is_relayed_without_its_content_type() -> None:
    """HTTPDownloadView relays an upstream's 412 as its own: no body, and
    none of the upstream's error page headers."""
    upstream = Flask("upstream")

    @upstream.route("/f.txt")
    def f() -> t.Any:
        from flask import request

        if request.headers.get("If-Match"):
            return "<h1>Precondition Failed</h1>", 412, {"ETag": '"v1"'}
        return "content", 200, {"ETag": '"v1"', "Content-Type": "text/plain"}

    with running_werkzeug(upstream) as url:
        app = Flask(__name__)
        app.add_url_rule(
            "/dl",
            view_func=HTTPDownloadView.as_view(
                "dl", url=url + "/f.txt", allowed_hosts=["127.0.0.1"], timeout=5.0
            ),
        )
        for method in ("GET", "HEAD"):
            with app.test_client().open(
                "/dl", method=method, headers={"If-Match": '"v0"'}
            ) as rv:
                assert rv.status_code == 412
                assert rv.get_data() == b""
                assert "Content-Type" not in rv.headers
                assert rv.headers["Content-Length"] == "0"


def test_a_412_on_a_real_server_has_no_content_type(tmp_path: pathlib.Path) -> None:
    with running_werkzeug(_file_app(tmp_path)) as url:
        request = urllib.request.Request(url + "/p/a.txt", headers={"If-Match": '"x"'})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        with caught.value as answer:
            assert answer.code == 412
            assert answer.read() == b""
            assert answer.headers.get("Content-Type") is None
            assert answer.headers["Content-Length"] == "0"


_SECRET_CHARS = string.ascii_letters + string.digits + "-_.~!#%&'()*+,/:;<=>?@[]^`{|}"
_NAME_CHARS = (
    string.ascii_letters + string.digits + " -_.~%?#&=+,;:@!$'()[]é中\U0001f600"
)
_ADDRESSES = [
    None,
    "127.0.0.1",
    "10.0.0.255",
    "::1",
    "0:0:0:0:0:0:0:1",
    "2001:db8::1",
    "2001:DB8:0:0:1:0:0:1",
    "::ffff:192.0.2.1",
    "fe80::1",
    "unix:",
]


def _random_uri(rng: random.Random) -> str:
    segments = [
        "".join(rng.choice(_NAME_CHARS) for _ in range(rng.randint(1, 12))).strip(".")
        or "x"
        for _ in range(rng.randint(1, 4))
    ]
    if rng.random() < 0.1:
        segments[-1] += "\udcff"  # a name that is not UTF-8 on disk
    return "/" + "/".join(segments)


def test_every_link_nginx_secure_link_writes_passes_the_strict_check() -> None:
    """Thousands of links: each one's ``md5`` is the spelling the strict
    check reads, and it verifies; its other last characters are refused."""
    rng = random.Random(4)
    for _ in range(3000):
        secret = "".join(rng.choice(_SECRET_CHARS) for _ in range(rng.randint(1, 64)))
        uri = _random_uri(rng)
        expires = rng.choice([2**31 - 1, 4102444800, 253402300799, 10**10 + 7])
        expires = rng.randint(2_000_000_000, expires)
        address = rng.choice(_ADDRESSES)
        link = nginx_secure_link(
            uri, secret=secret, expires=expires, remote_addr=address
        )
        query = parse_qs(urlsplit(link).query)
        (md5,) = query["md5"]
        (stamp,) = query["expires"]
        verify_nginx_secure_link(uri, md5, stamp, secret=secret, remote_addr=address)
        changed = md5[:-1] + ("A" if md5[-1] != "A" else "Q")
        with pytest.raises(InvalidSignature):
            verify_nginx_secure_link(
                uri, changed, stamp, secret=secret, remote_addr=address
            )


@pytest.mark.parametrize("bound", [False, True])
def test_every_link_nginx_secure_url_for_makes_opens_its_view(bound: bool) -> None:
    rng = random.Random(5)
    app = Flask(__name__)
    app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = SECRET

    @app.route("/edge/<path:name>")
    @nginx_secure_link_required(remote_addr=bound)
    def edge(name: str) -> t.Any:
        return send_download(name.encode(), basename="x.txt")

    client = app.test_client()
    for n in range(300):
        name = _random_uri(rng)[1:].replace("\udcff", "")
        address = rng.choice([a for a in _ADDRESSES if a is not None])
        environ = {"REMOTE_ADDR": address}
        with app.test_request_context(environ_base=environ):
            link = nginx_secure_url_for(
                "edge", expires_in=60 + n, remote_addr=bound, name=name
            )
        with client.get(link, environ_base=environ) as rv:
            assert rv.status_code == 200, (link, address)
            assert rv.get_data() == name.encode()


_NGINX_SECURE = """
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


def _status(base: str, link: str) -> tuple[int, bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", link)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


@pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx not installed")
@pytest.mark.parametrize("bind", [False, True])
def test_nginx_and_the_app_accept_the_same_written_links(
    tmp_path: pathlib.Path, bind: bool
) -> None:
    """Real nginx and nginx_secure_link_required on a real server both open
    every link nginx_secure_link writes; a padded spelling (which nginx's
    decoder takes) is refused by the app only, as documented."""
    rng = random.Random(6 + bind)
    root = tmp_path / "files"
    root.mkdir()
    names = []
    for _ in range(40):
        name = _random_uri(rng)[1:].replace("\udcff", "")
        if name in names or name.lower() in (n.lower() for n in names):
            continue
        try:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(name.encode())
        except OSError:  # a file where a directory is wanted, or the other way
            continue
        names.append(name)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        NGINX_CONF_HEAD.format(tmp=tmp_path)
        + _NGINX_SECURE.format(
            port=port, root=root, secret=SECRET, remote="$remote_addr" if bind else ""
        )
    )
    app = Flask(__name__)
    app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = SECRET
    view = PathDownloadView.as_view("files", root=str(root))
    app.add_url_rule(
        "/files/<path:path>",
        view_func=nginx_secure_link_required(remote_addr=bind)(view),
    )
    expires = int(time.time()) + 600
    with running_nginx(conf, port) as nginx, running_werkzeug(app) as flask_url:
        for name in names:
            link = nginx_secure_link(
                "/files/" + name,
                secret=SECRET,
                expires=expires,
                remote_addr="127.0.0.1" if bind else None,
            )
            assert _status(nginx, link) == (200, name.encode()), link
            assert _status(flask_url, link) == (200, name.encode()), link
            padded = link.replace("&expires=", "==&expires=")
            assert _status(nginx, padded)[0] == 200
            assert _status(flask_url, padded)[0] == 403


@pytest.mark.parametrize("storage", ["file", "memory"])
def test_only_a_trailing_slash_or_dot_is_refused(
    tmp_path: pathlib.Path, storage: str
) -> None:
    """Dot and empty segments inside a path still name the file; only a
    path that ends as a directory does not, on every confined source."""
    import fsspec

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_bytes(b"b")
    if storage == "memory":
        fs = fsspec.filesystem("memory")
        fs.pipe(f"/review4d-{id(tmp_path)}/sub/b.txt", b"b")
        where: t.Any = f"memory://review4d-{id(tmp_path)}"
    else:
        where = str(tmp_path)
    app = Flask(__name__)
    app.add_url_rule(
        "/s/<path:path>", view_func=StorageDownloadView.as_view("s", storage=where)
    )
    app.add_url_rule(
        "/p/<path:path>", view_func=PathDownloadView.as_view("p", root=str(tmp_path))
    )

    @app.route("/sd/<path:name>")
    def sd(name: str) -> t.Any:
        return send_download(name, root=str(tmp_path))

    client = app.test_client()
    for prefix in ("/s/", "/p/", "/sd/"):
        for good in ("sub/b.txt", "./sub/b.txt", "sub//b.txt", "sub/./b.txt"):
            with client.get(prefix + good) as rv:
                assert (rv.status_code, rv.get_data()) == (200, b"b"), prefix + good
        for bad in ("sub/b.txt/", "sub/b.txt/.", "sub/", "sub/.", "sub/b.txt%2F"):
            with client.get(prefix + bad) as rv:
                assert rv.status_code == 404, prefix + bad


@pytest.mark.parametrize("kind", ["signed", "nginx"])
def test_a_signed_link_is_checked_before_preconditions_and_its_412_is_bare(
    tmp_path: pathlib.Path, kind: str
) -> None:
    """A bad link is a 403 whatever the conditions; a good one meets them,
    and its 412 has no body and no Content-Type."""
    (tmp_path / "a.txt").write_bytes(b"inside")
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "k" * 32
    app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = SECRET
    if kind == "signed":
        view = PathDownloadView.as_view("f", root=str(tmp_path), signed=True)
    else:
        view = nginx_secure_link_required(
            PathDownloadView.as_view("f", root=str(tmp_path))
        )
    app.add_url_rule("/f/<path:path>", view_func=view)
    with app.test_request_context():
        make = signed_url_for if kind == "signed" else nginx_secure_url_for
        link = make("f", expires_in=60, path="a.txt")
    client = app.test_client()
    condition = {"If-Match": '"nope"'}
    with client.get("/f/a.txt", headers=condition) as rv:
        assert rv.status_code == 403
    with client.get(link, headers=condition) as rv:
        assert rv.status_code == 412
        assert rv.get_data() == b""
        assert "Content-Type" not in rv.headers


def test_a_file_column_still_stores_dot_and_double_slash_spellings() -> None:
    from flask_download.sqlalchemy import FileColumn

    column = FileColumn(root="/srv/files")
    dialect = t.cast(t.Any, None)
    for key in ("sub/a.txt", "./sub/a.txt", "sub//a.txt", "sub/./a.txt"):
        assert column.process_bind_param(key, dialect) == "sub/a.txt"
    for key in ("sub/a.txt/", "sub/a.txt/.", "sub/"):
        with pytest.raises(ValueError):
            column.process_bind_param(key, dialect)
