"""Local-disk confinement, fourth audit: what a client path names and how
the confined opener takes the roots it is given.

- A symbolic link inside the root downloads under the name the client asked
  for (the link's), as a trusted path and ``flask.send_from_directory`` do,
  not under its target's name, whatever the source (view, ``send_download``,
  :class:`~flask_download.PathFile`, a ``file://`` storage key).
- A root given as ``bytes`` (or a ``bytes`` path-like) is a root like any
  other for :class:`~flask_download.PathFile` and ``open_confined``.
- ``PathFile(view.get_path(), root=view.get_root())``: a confined path
  passed along with its own root (any spelling) is served; with another root
  it is refused.
- Hostile paths that reach the file system (names too long, deep paths past
  ``PATH_MAX``, FIFOs, devices, directories) answer 404 on a real server,
  never a 5xx or a hang.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import pathlib
import socket
import typing as t
import uuid
from urllib.parse import quote

import pytest
from conftest import running_werkzeug
from flask import Flask

from flask_download import ConfigurationError
from flask_download import FileNotFound
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import send_download
from flask_download.paths import ConfinedPath
from flask_download.paths import open_confined
from flask_download.paths import split_key

pytest.importorskip("urllib3")

TARGET = b"version two of the report\n"


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "root"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / "report-v2.txt").write_bytes(TARGET)
    (root / "latest.txt").symlink_to("releases/report-v2.txt")
    (root / "current").symlink_to("releases")
    (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
    return root


def _app(root: pathlib.Path) -> Flask:
    app = Flask("confinement_app", root_path=os.fspath(root.parent))
    app.config.update(DOWNLOAD_ROOT=os.fspath(root))
    FlaskDownload(app)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))

    @app.route("/send/<path:name>")
    def send(name: str) -> t.Any:
        return send_download(name, root=os.fspath(root))

    class Passed(PathDownloadView):
        # The documented subclass pattern, passing the root along too.
        def get_file(self) -> PathFile:
            return PathFile(self.get_path(), root=self.get_root())

    app.add_url_rule("/passed/<path:path>", view_func=Passed.as_view("passed"))
    return app


# -- the name of a file reached through a link ---------------------------------


@pytest.mark.parametrize("prefix", ["/files/", "/send/"], ids=["view", "send"])
@pytest.mark.parametrize(
    ("asked", "name"),
    [("latest.txt", "latest.txt"), ("current/report-v2.txt", "report-v2.txt")],
    ids=["file-link", "directory-link"],
)
def test_a_link_downloads_under_the_name_it_was_asked_by(
    root: pathlib.Path, prefix: str, asked: str, name: str
) -> None:
    with _app(root).test_client().get(prefix + asked) as rv:
        assert rv.status_code == 200
        assert rv.data == TARGET
        assert rv.headers["Content-Disposition"] == f'attachment; filename="{name}"'


def test_a_link_keeps_its_name_like_a_trusted_path(root: pathlib.Path) -> None:
    confined = PathFile("latest.txt", root=root)
    trusted = PathFile(root / "latest.txt")
    try:
        assert confined.name == trusted.name == "latest.txt"
        # What the opener walked is still the target (offload rules use it).
        assert confined.real_path == os.path.realpath(root / "latest.txt")
    finally:
        confined.close()
        trusted.close()


def test_a_link_in_a_file_storage_keeps_its_name(root: pathlib.Path) -> None:
    pytest.importorskip("fsspec")
    from flask_download import StorageDownloadView

    app = _app(root)
    app.add_url_rule(
        "/store/<path:path>",
        view_func=StorageDownloadView.as_view("store", storage=f"file://{root}"),
    )
    with app.test_client().get("/store/latest.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == TARGET
        assert rv.headers["Content-Disposition"] == 'attachment; filename="latest.txt"'


# -- roots in every spelling -----------------------------------------------------


@pytest.mark.parametrize(
    "spell",
    [os.fsencode, lambda p: os.fsencode(p) + b"/"],
    ids=["bytes", "bytes-trailing-slash"],
)
def test_a_bytes_root_confines_like_a_str_root(
    root: pathlib.Path, spell: cabc.Callable[[pathlib.Path], bytes]
) -> None:
    with PathFile("latest.txt", root=t.cast(t.Any, spell(root))) as file:
        assert file.size == len(TARGET)
        with file.open() as handle:
            assert handle.read() == TARGET
    opened = open_confined(t.cast(t.Any, spell(root)), "current/report-v2.txt")
    os.close(opened.fd)
    assert opened.path == os.path.realpath(root / "releases" / "report-v2.txt")
    (root / "escape.txt").symlink_to("../secret.txt")
    with pytest.raises(FileNotFound):
        PathFile("escape.txt", root=t.cast(t.Any, spell(root)))
    with pytest.raises(FileNotFound):
        PathFile("../secret.txt", root=t.cast(t.Any, spell(root)))


@pytest.mark.parametrize(
    "spell",
    [str, pathlib.Path, lambda p: f"{p}/", os.fsencode],
    ids=["str", "pathlib", "trailing-slash", "bytes"],
)
def test_a_confined_path_passed_with_its_own_root_is_served(
    root: pathlib.Path, spell: cabc.Callable[[pathlib.Path], t.Any]
) -> None:
    path = ConfinedPath(os.fspath(root), ["latest.txt"])
    with PathFile(path, root=spell(root)) as file:
        assert file.name == "latest.txt"
        with file.open() as handle:
            assert handle.read() == TARGET


def test_a_confined_path_passed_with_another_root_is_refused(
    root: pathlib.Path,
) -> None:
    (root / "releases" / "escape.txt").symlink_to("../../secret.txt")
    inner = ConfinedPath(os.fspath(root / "releases"), ["report-v2.txt"])
    # Another root than its own: never opened as a trusted absolute path.
    with pytest.raises(FileNotFound):
        PathFile(inner, root=root.parent)
    escape = ConfinedPath(os.fspath(root), ["releases", "escape.txt"])
    with pytest.raises(FileNotFound):
        PathFile(escape, root=root)


def test_a_subclass_passing_the_root_along_serves_and_confines(
    root: pathlib.Path,
) -> None:
    (root / "escape.txt").symlink_to("../secret.txt")
    client = _app(root).test_client()
    with client.get("/passed/latest.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == TARGET
        assert rv.headers["Content-Disposition"] == 'attachment; filename="latest.txt"'
    for target in ("/passed/escape.txt", "/passed/..%2fsecret.txt"):
        with client.get(target) as rv:
            assert rv.status_code == 404
            assert b"SECRET" not in rv.data


# -- hostile paths on a real server ------------------------------------------------


_DEEP_DIRS = [f"{i:02d}" + "d" * 198 for i in range(24)]


@pytest.fixture
def hostile_root(root: pathlib.Path) -> pathlib.Path:
    os.mkfifo(root / "fifo")
    (root / "fifo-link").symlink_to("fifo")
    (root / "zero").symlink_to("/dev/zero")
    (root / "null-device").symlink_to("/dev/null")
    # A file deeper than PATH_MAX (4096): each segment is fine, the whole
    # path is not; the walk opens one segment at a time.
    # Made one directory at a time, relative to the one before (os.mkdir
    # of the whole path would fail with ENAMETOOLONG).
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for segment in _DEEP_DIRS:
            os.mkdir(segment, dir_fd=fd)
            next_fd = os.open(segment, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(file_fd, "wb") as f:
            f.write(b"deep inside\n")
    finally:
        os.close(fd)
    return root


@pytest.mark.parametrize(
    "path",
    [
        "fifo",
        "fifo-link",
        "zero",
        "null-device",
        "releases",
        "releases/",
        "current",
        "x" * 300,
        "releases/" + "y" * 256 + ".txt",
        "/".join(["z" * 250] * 40),
        "a/" * 3000 + "b.txt",
        "latest.txt/inside",
        "fifo/inside",
    ],
    ids=[
        "fifo",
        "link-to-fifo",
        "link-to-dev-zero",
        "link-to-dev-null",
        "directory",
        "directory-slash",
        "link-to-directory",
        "name-too-long",
        "nested-name-too-long",
        "path-too-long",
        "many-segments",
        "below-a-file",
        "below-a-fifo",
    ],
)
def test_paths_that_are_not_regular_files_are_404_on_a_real_server(
    http: t.Any, hostile_root: pathlib.Path, path: str
) -> None:
    with running_werkzeug(_app(hostile_root)) as url:
        for prefix in ("/files/", "/send/"):
            rv = http.request("GET", url + prefix + quote(path), redirect=False)
            assert rv.status == 404, (prefix, rv.status)
            assert b"SECRET" not in rv.data


def test_a_file_deeper_than_path_max_is_served(
    http: t.Any, hostile_root: pathlib.Path
) -> None:
    path = "/".join(_DEEP_DIRS) + "/deep.txt"
    assert len(os.path.join(hostile_root, path)) > 4096
    with running_werkzeug(_app(hostile_root)) as url:
        rv = http.request("GET", f"{url}/files/{quote(path)}", redirect=False)
        assert rv.status == 200
        assert rv.data == b"deep inside\n"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="deep.txt"'


# -- metadata changed while a file is sent -----------------------------------------

BIG = bytes(range(256)) * (16 * 1024 * 1024 // 256)


def _download_while(
    port: int, target: str, change: cabc.Callable[[], None]
) -> tuple[int, bytes]:
    """GET ``target`` on a raw socket with a small receive buffer; once the
    first 64 KiB of body are in (the server is still sending), ``change()``,
    then read to the end. Returns (Content-Length, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        lines = head.decode("latin-1").split("\r\n")[1:]
        fields = dict(line.split(":", 1) for line in lines)
        length = int({k.lower(): v for k, v in fields.items()}["content-length"])
        while len(body) < 64 * 1024:
            body += sock.recv(65536)
        change()
        while chunk := sock.recv(1 << 20):
            body += chunk
    return length, body


@pytest.mark.parametrize(
    "change",
    [
        lambda path: os.chmod(path, 0o600),
        lambda path: os.chown(path, 12345, 12345),
        lambda path: os.utime(path, ns=(1, os.stat(path).st_mtime_ns)),
    ],
    ids=["chmod", "chown", "atime"],
)
def test_metadata_changes_do_not_cut_a_download_short(
    tmp_path: pathlib.Path, change: cabc.Callable[[pathlib.Path], None]
) -> None:
    """chmod, chown or a new atime leave the bytes as announced: the
    download goes on to its end (a rewrite still stops it, see
    test_races.py)."""
    root = tmp_path / "root"
    root.mkdir()
    path = root / "big.bin"
    path.write_bytes(BIG)
    path.chmod(0o644)
    app = Flask("metadata_app")
    app.config.update(DOWNLOAD_ROOT=os.fspath(root))
    FlaskDownload(app)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    with running_werkzeug(app) as url:
        port = int(url.rpartition(":")[2])
        length, body = _download_while(port, "/files/big.bin", lambda: change(path))
    assert length == len(BIG)
    assert len(body) == len(BIG)
    assert body == BIG


# -- keys of remote stores whose escapes are not UTF-8 -------------------------------


@pytest.mark.parametrize(
    "key",
    ["%ff.txt", "%c0%ae%c0%ae/secret.txt", "a/%c0%af..", "%25ff", "%e2%82.txt"],
    ids=["invalid-byte", "overlong-dots", "overlong-slash", "double-encoded", "cut"],
)
def test_keys_with_escapes_that_are_not_utf8_are_refused(key: str) -> None:
    with pytest.raises(FileNotFound):
        split_key(key)


def test_a_store_key_with_escapes_that_are_not_utf8_is_404(
    http: t.Any, root: pathlib.Path
) -> None:
    pytest.importorskip("fsspec")
    from flask_download import StorageDownloadView

    app = _app(root)
    app.add_url_rule(
        "/memory/<path:path>",
        view_func=StorageDownloadView.as_view(
            "memory", storage=f"memory://audit4-{uuid.uuid4().hex}"
        ),
    )
    with running_werkzeug(app) as url:
        for path in ("%25ff.txt", "%25c0%25ae%25c0%25ae/secret.txt", "%25e2%2582"):
            rv = http.request("GET", f"{url}/memory/{path}", redirect=False)
            assert rv.status == 404, (path, rv.status)


@pytest.mark.parametrize("empty", ["", b""], ids=["str", "bytes"])
@pytest.mark.parametrize("path", ["pyproject.toml", "../secret.txt"])
def test_an_empty_root_is_a_configuration_error_not_the_working_directory(
    root: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    empty: str | bytes,
    path: str,
) -> None:
    monkeypatch.chdir(root.parent)
    (root.parent / "pyproject.toml").write_bytes(b"in the working directory")
    with pytest.raises(ConfigurationError, match="empty root"):
        PathFile(path, root=t.cast(t.Any, empty))
