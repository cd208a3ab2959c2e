"""Offload, fourth audit: confined files handed to a real nginx.

The app checks the file (confined, links followed only inside the root) and
hands nginx the path it walked; nginx must then send exactly that file's
bytes, under the name the client asked for, and nothing the app refused.
Names that nginx decodes specially (``%`` followed by hex digits, ``?``,
``#``, a directory literally named ``%2e%2e``, newlines in a trusted name)
must reach the same file.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import pathlib
import typing as t
from urllib.parse import quote
from urllib.parse import unquote

import pytest
from conftest import free_port
from conftest import NGINX
from conftest import NGINX_CONF_HEAD
from conftest import running_nginx
from conftest import running_werkzeug
from flask import Flask

from flask_download import content_disposition
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import send_download

pytest.importorskip("urllib3")

SECRET = b"SECRET-audit4-offload"
TARGET = b"the second release\n"

#: Names served from the root through a URL path: name -> content.
ODD_NAMES: dict[str, bytes] = {
    "100%41.txt": b"percent then hex digits\n",
    "A.txt": b"plain A\n",
    "%2e%2e/inside.txt": b"below a directory named %2e%2e\n",
    "%00.txt": b"percent zero zero\n",
    "%3F.txt": b"an encoded question mark, literally\n",
    "q?x.txt": b"question mark\n",
    "h#x.txt": b"hash\n",
    "sp ace+plus;semi.txt": b"space, plus, semicolon\n",
    "été/naïve.txt": b"non-ASCII directory and name\n",
    "..foo.txt": b"two leading dots\n",
}
#: A trusted name with a newline: only a fixed ``path`` can name it.
NEWLINE_NAME = "line\nbreak.txt"

NGINX_CONF = (
    NGINX_CONF_HEAD
    + """\
    server {{
        listen 127.0.0.1:{port};
        location /protected/ {{
            internal;
            alias {root}/;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
        }}
    }}
}}
"""
)


def _layout(base: pathlib.Path) -> pathlib.Path:
    root = base / "files"
    root.mkdir()
    for name, content in ODD_NAMES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root / NEWLINE_NAME).write_bytes(b"newline in the name\n")
    (root / "releases").mkdir()
    (root / "releases" / "v2.txt").write_bytes(TARGET)
    (root / "latest.txt").symlink_to("releases/v2.txt")
    (root / "current").symlink_to(root / "releases")
    # Ways out, each refused by the app.
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "v2.txt").write_bytes(SECRET)
    (root / "escape.txt").symlink_to("../secret.txt")
    (root / "escape-abs.txt").symlink_to(base / "secret.txt")
    (root / "out").symlink_to("../outside")
    (root / "up").symlink_to("..")
    os.mkfifo(root / "fifo")
    return root


def _make_app(
    root: pathlib.Path,
    backend: str = "nginx",
    rule: cabc.Mapping[str, str] | None = None,
) -> Flask:
    app = Flask("audit4_offload", root_path=os.fspath(root.parent))
    app.config.update(
        DOWNLOAD_ROOT=os.fspath(root),
        DOWNLOAD_ACCEL=backend,
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": os.fspath(root),
                "destination_url": "/protected/",
                **(rule or {}),
            }
        ],
    )
    FlaskDownload(app)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    app.add_url_rule(
        "/newline",
        view_func=PathDownloadView.as_view(
            "newline", path=os.fspath(root / NEWLINE_NAME), basename="newline.txt"
        ),
    )

    @app.route("/send/<path:name>")
    def send(name: str) -> t.Any:
        return send_download(name, root=os.fspath(root))

    return app


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return _layout(tmp_path_factory.mktemp("audit4_offload"))


@pytest.fixture(scope="module")
def nginx_url(
    root: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> cabc.Iterator[str]:
    if not os.access(NGINX, os.X_OK):
        pytest.skip("needs nginx at /usr/sbin/nginx (apt-get install nginx)")
    tmp = tmp_path_factory.mktemp("audit4_nginx")
    with running_werkzeug(_make_app(root)) as app_url:
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                tmp=tmp, root=root, port=port, app_port=app_url.rpartition(":")[2]
            )
        )
        with running_nginx(conf, port) as url:
            yield url


# -- through nginx ---------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/files/", "/send/"], ids=["view", "send"])
@pytest.mark.parametrize("name", ODD_NAMES, ids=list(ODD_NAMES))
def test_nginx_sends_the_exact_file_for_odd_names(
    http: t.Any, nginx_url: str, prefix: str, name: str
) -> None:
    rv = http.request("GET", nginx_url + prefix + quote(name), redirect=False)
    assert rv.status == 200
    assert rv.data == ODD_NAMES[name]
    assert rv.headers["Content-Disposition"] == content_disposition(
        name.rsplit("/", 1)[-1], True
    )
    assert "X-Accel-Redirect" not in rv.headers


def test_nginx_sends_a_trusted_name_with_a_newline(http: t.Any, nginx_url: str) -> None:
    rv = http.request("GET", f"{nginx_url}/newline", redirect=False)
    assert rv.status == 200
    assert rv.data == b"newline in the name\n"
    assert rv.headers["Content-Disposition"] == 'attachment; filename="newline.txt"'


@pytest.mark.parametrize("prefix", ["/files/", "/send/"], ids=["view", "send"])
@pytest.mark.parametrize(
    ("asked", "name"),
    [("latest.txt", "latest.txt"), ("current/v2.txt", "v2.txt")],
    ids=["file-link", "directory-link"],
)
def test_nginx_sends_a_links_target_under_the_links_name(
    http: t.Any, nginx_url: str, prefix: str, asked: str, name: str
) -> None:
    rv = http.request("GET", nginx_url + prefix + asked, redirect=False)
    assert rv.status == 200
    assert rv.data == TARGET
    assert rv.headers["Content-Disposition"] == f'attachment; filename="{name}"'


@pytest.mark.parametrize("prefix", ["/files/", "/send/"], ids=["view", "send"])
@pytest.mark.parametrize(
    "path",
    [
        "escape.txt",
        "escape-abs.txt",
        "out/v2.txt",
        "up/secret.txt",
        "up/files/A.txt",
        "..%2fsecret.txt",
        "%2e%2e/..%2f..%2fsecret.txt",
        "%252e%252e/inside.txt/..%2f..%2f..%2fsecret.txt",
        "fifo",
        "releases",
        "current",
    ],
)
def test_nginx_never_sends_what_the_app_refused(
    http: t.Any, nginx_url: str, prefix: str, path: str
) -> None:
    rv = http.request("GET", nginx_url + prefix + path, redirect=False)
    # 404 from the app; 400 from nginx itself for a path it decodes above "/".
    assert rv.status in (400, 404)
    assert SECRET not in rv.data
    assert "X-Accel-Redirect" not in rv.headers


def test_the_internal_location_stays_internal(http: t.Any, nginx_url: str) -> None:
    for path in ("/protected/A.txt", "/protected/%2e%2e/inside.txt"):
        rv = http.request("GET", nginx_url + path, redirect=False)
        assert rv.status == 404
        assert b"plain A" not in rv.data
        assert b"below a directory" not in rv.data


# -- the offload header itself ---------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "header"), [("nginx", "X-Accel-Redirect"), ("apache", "X-Sendfile")]
)
def test_a_link_offloads_its_target_under_its_own_name(
    tmp_path: pathlib.Path, backend: str, header: str
) -> None:
    root = _layout(tmp_path)
    app = _make_app(root, backend, {"destination_dir": "/srv/files"})
    for prefix in ("/files/", "/send/"):
        with app.test_client().get(prefix + "latest.txt") as rv:
            assert rv.status_code == 200
            assert rv.data == b""
            assert unquote(rv.headers[header]).endswith("/releases/v2.txt")
            assert rv.headers["Content-Disposition"] == (
                'attachment; filename="latest.txt"'
            )
