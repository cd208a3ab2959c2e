"""An outside security review of Flask-Download (round 7, part d).

Attacks against DESIGN.md's confinement, header, proxy, range and signing
promises, on real servers where the wire matters. Each finding is a test
that failed before its fix; the other tests pin, on every local source at
once (paths, ``send_download(root=)``, ``file://``, ``DirFileSystem`` and
caching storages, ``FileColumn`` rows), behaviour that earlier rounds only
tested on one or two of them.

Findings:

1. the ``ETag`` of a local file spelled out its stat: inode number, size,
   and modification and change times to the nanosecond (the information
   leak of CVE-2003-1418, which Apache and nginx stopped long ago): every
   client learned inode numbers (which files are hard links of each
   other, the order files were made in) and when each file's metadata
   last changed. Now an opaque hash of the same fields: still strong,
   still the same in every worker, still new on every change.
"""

from __future__ import annotations

import http.client
import os
import pathlib
import socket
import typing as t
from urllib.parse import quote
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as orm
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from flask import Response

from flask_download import FlaskDownload
from flask_download import ObjectDownloadView
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download import StorageDownloadView
from flask_download.sqlalchemy import FileColumn

SECRET = b"SECRET-round7d-never-served"

#: Every local source a URL or a row can name a file of.
PREFIXES = ("/path/", "/send/", "/file-url/", "/dirfs/", "/cached/", "/row/")


def make_app(base: str | None = None) -> Flask:
    """One app serving the same root through every local source (also
    gunicorn's: the directory comes from ``SECURITY7_BASE``)."""
    import fsspec
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    where = pathlib.Path(base or os.environ["SECURITY7_BASE"])
    root = where / "root"
    app = Flask("security7", root_path=os.fspath(where))
    app.config.update(DOWNLOAD_ROOT=os.fspath(root))
    FlaskDownload(app)
    app.add_url_rule("/path/<path:path>", view_func=PathDownloadView.as_view("path"))

    @app.route("/send/<path:name>")
    def send(name: str) -> Response:
        return send_download(name, root=os.fspath(root))

    storages = {
        "file-url": f"file://{root}",
        "dirfs": DirFileSystem(os.fspath(root), fs=LocalFileSystem()),
        "cached": fsspec.filesystem(
            "simplecache", target_protocol="file", cache_storage=os.fspath(where)
        ),
    }
    for name, storage in storages.items():
        if name == "cached":
            storage = DirFileSystem(os.fspath(root), fs=storage)
        app.add_url_rule(
            f"/{name}/<path:path>",
            view_func=StorageDownloadView.as_view(name, storage=storage),
        )

    class Base(orm.DeclarativeBase):
        pass

    class Doc(Base):
        __tablename__ = "doc"
        key = sa.Column(sa.String, primary_key=True)
        file = sa.Column(FileColumn(root=os.fspath(root)))

    engine = sa.create_engine(f"sqlite:///{where / 'rows.sqlite'}")
    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        for key in ("ok.txt", "sub/deep.txt", "loop/ok.txt", *REFUSED):
            if session.get(Doc, key) is None:
                session.add(Doc(key=key, file=key))
        session.commit()
    app.add_url_rule(
        "/row/<path:key>",
        view_func=ObjectDownloadView.as_view(
            "row",
            model=Doc,
            session=orm.sessionmaker(engine),
            pk_url_kwarg="key",
        ),
    )
    app.extensions["security7_engine"] = engine
    return app


@pytest.fixture
def base(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "ok.txt").write_bytes(b"ok\n")
    (root / "sub" / "deep.txt").write_bytes(b"deep\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    os.mkfifo(tmp_path / "outside.fifo")
    os.mkfifo(root / "planted.fifo")
    (root / "to-fifo").symlink_to("planted.fifo")
    (root / "to-outside-fifo").symlink_to("../outside.fifo")
    (root / "to-zero").symlink_to("/dev/zero")
    (root / "to-tty").symlink_to("/dev/tty")
    (root / "to-environ").symlink_to("/proc/self/environ")
    (root / "out-relative").symlink_to("../secret.txt")
    (root / "out-absolute").symlink_to(tmp_path / "secret.txt")
    (root / "sub" / "up-and-out").symlink_to("../../secret.txt")
    (root / "loop").symlink_to(".")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(os.fspath(root / "planted.sock"))
    yield tmp_path
    listening.close()


def _get(base_url: str, target: str, headers: dict[str, str] | None = None) -> t.Any:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


# -- finding 1: ETags show no inode number or change time ------------------------


def _stat_fields(path: pathlib.Path) -> list[str]:
    st = os.stat(path)
    return [f"{st.st_ino:x}", f"{st.st_ctime_ns:x}", f"{st.st_mtime_ns:x}"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_etags_of_local_files_tell_no_inode_or_change_time(
    base: pathlib.Path, prefix: str
) -> None:
    """An attacker reading ETags learned each file's inode number (which
    files are hard links of each other, the order they were made in) and
    its change time to the nanosecond. The tag stays a strong validator:
    the same for the same file, another once the file changed."""
    app = make_app(os.fspath(base))
    target = base / "root" / "sub" / "deep.txt"
    try:
        with running_werkzeug(app) as url:
            status, headers, body = _get(url, prefix + "sub/deep.txt")
            assert (status, body) == (200, b"deep\n")
            etag = headers["ETag"]
            assert etag.startswith('"') and etag.endswith('"'), etag
            fields = etag.strip('"').split("-")
            ino, ctime, mtime = _stat_fields(target)
            assert ino not in fields, (etag, ino)
            assert ctime not in etag and mtime not in etag, etag
            # Strong, and the same on the next request: a 304.
            status, headers, body = _get(
                url, prefix + "sub/deep.txt", {"If-None-Match": etag}
            )
            assert (status, body) == (304, b"")
            assert headers["ETag"] == etag
            # Rewritten in place at the same size, mtime put back (cp -p):
            # another tag, the new content.
            st = os.stat(target)
            target.write_bytes(b"DEEP\n")
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
            status, headers, body = _get(
                url, prefix + "sub/deep.txt", {"If-None-Match": etag}
            )
            assert (status, body) == (200, b"DEEP\n")
            assert headers["ETag"] != etag
    finally:
        app.extensions["security7_engine"].dispose()


def test_etags_are_the_same_in_every_worker_process(
    base: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tag is a hash of the stat, not a per-process secret: gunicorn's
    worker and this process agree (a cache revalidating against another
    worker gets its 304)."""
    app = make_app(os.fspath(base))
    try:
        with running_werkzeug(app) as url:
            here = _get(url, "/path/ok.txt")[1]["ETag"]
    finally:
        app.extensions["security7_engine"].dispose()
    monkeypatch.setenv("SECURITY7_BASE", os.fspath(base))
    with running_gunicorn("tests.test_security7:make_app()") as url:
        status, headers, _ = _get(url, "/path/ok.txt", {"If-None-Match": here})
    assert (status, headers["ETag"]) == (304, here)


# -- held: no local source serves what is not a regular file inside the root ------

#: Names under the root that must never be served (FIFOs block a reader that
#: opens them; devices never end; the rest lead out of the root).
REFUSED = (
    "planted.fifo",
    "to-fifo",
    "to-outside-fifo",
    "to-zero",
    "to-tty",
    "to-environ",
    "out-relative",
    "out-absolute",
    "sub/up-and-out",
    "loop/planted.fifo",
    "loop/loop/out-relative",
    "planted.sock",
    "sub",
    "loop",
)


def _check_every_source(url: str) -> list[tuple[str, str, int]]:
    wrong = []
    for prefix in PREFIXES:
        status, _, body = _get(url, prefix + "loop/ok.txt")
        if (status, body) != (200, b"ok\n"):
            wrong.append((prefix, "loop/ok.txt", status))
        for name in REFUSED:
            status, _, body = _get(url, prefix + quote(name))
            if status != 404 or SECRET in body:
                wrong.append((prefix, name, status))
    return wrong


def test_no_local_source_serves_fifos_devices_or_links_out_on_gunicorn(
    base: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One sync worker: a FIFO opened for reading would block it for ever
    (every later request times out), a device would stream without end."""
    make_app(os.fspath(base)).extensions["security7_engine"].dispose()
    monkeypatch.setenv("SECURITY7_BASE", os.fspath(base))
    with running_gunicorn("tests.test_security7:make_app()") as url:
        assert _check_every_source(url) == []
        # The worker is still free.
        assert _get(url, "/path/ok.txt")[0] == 200


def test_no_local_source_serves_fifos_devices_or_links_out_on_werkzeug(
    base: pathlib.Path,
) -> None:
    app = make_app(os.fspath(base))
    try:
        with running_werkzeug(app) as url:
            assert _check_every_source(url) == []
    finally:
        app.extensions["security7_engine"].dispose()
