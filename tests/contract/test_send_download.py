"""DESIGN §7: ``send_download``, a drop-in for ``flask.send_file``."""

from __future__ import annotations

import datetime
import io
import os
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import download_started
from flask_download import send_download
from flask_download import VirtualFile

from .conftest import Live


def _route(app: Flask, make: t.Callable[[], t.Any], rule: str = "/x") -> t.Any:
    app.add_url_rule(rule, rule, lambda **kw: make(**kw) if kw else make())
    return app.test_client()


def test_trusted_path_absolute(app: Flask, download_root: pathlib.Path) -> None:
    path = download_root / "hello.txt"
    client = _route(app, lambda: send_download(path))
    with client.get("/x") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'
        assert rv.headers["Accept-Ranges"] == "bytes"
        assert rv.headers["X-Content-Type-Options"] == "nosniff"


def test_relative_path_relative_to_root_path(app: Flask) -> None:
    # The app's root_path is download_root's parent (tests/conftest.py).
    client = _route(app, lambda: send_download("root/hello.txt"))
    with client.get("/x") as rv:
        assert rv.data == b"Hello, world!\n"


@pytest.mark.parametrize(
    "source",
    [
        lambda: io.BytesIO(b"bytes io"),
        lambda: b"bytes io",
        lambda: VirtualFile(b"bytes io", name="b.txt"),
        lambda: io.StringIO("bytes io"),
    ],
    ids=["bytesio", "bytes", "download-file", "stringio"],
)
def test_sources(app: Flask, source: t.Callable[[], t.Any]) -> None:
    client = _route(app, lambda: send_download(source(), basename="b.txt"))
    with client.get("/x") as rv:
        assert rv.status_code == 200
        assert rv.data == b"bytes io"
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_root_confines_untrusted_path(app: Flask, download_root: pathlib.Path) -> None:
    root = os.fspath(download_root)
    client = _route(
        app, lambda path: send_download(path, root=root), rule="/f/<path:path>"
    )
    with client.get("/f/sub/nested.txt") as rv:
        assert rv.data == b"nested\n"
    for bad in ("../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "sub"):
        with client.get("/f/" + bad) as rv:
            assert rv.status_code == 404, bad
            assert b"TOP SECRET" not in rv.data


def test_send_file_keywords(app: Flask, download_root: pathlib.Path) -> None:
    when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    path = download_root / "hello.txt"
    client = _route(
        app,
        lambda: send_download(
            path,
            as_attachment=False,
            download_name="greeting.txt",
            mimetype="text/x-greeting",
            max_age=120,
            etag="abc",
            last_modified=when,
        ),
    )
    with client.get("/x") as rv:
        assert rv.headers["Content-Disposition"] == 'inline; filename="greeting.txt"'
        assert rv.headers["Content-Type"].startswith("text/x-greeting")
        assert "max-age=120" in rv.headers["Cache-Control"]
        assert rv.headers["ETag"] == '"abc"'
        assert rv.headers["Last-Modified"] == "Thu, 02 Jan 2020 03:04:05 GMT"


def test_conditional_false_ignores_preconditions(
    app: Flask, download_root: pathlib.Path
) -> None:
    path = download_root / "data.bin"
    app.add_url_rule("/c", "c", lambda: send_download(path, conditional=False))
    app.add_url_rule("/d", "d", lambda: send_download(path))
    client = app.test_client()
    with client.get("/d") as rv:
        etag = rv.headers["ETag"]
    with client.get("/d", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
    with client.get("/c", headers={"If-None-Match": etag, "Range": "bytes=0-1"}) as rv:
        assert rv.status_code == 200
        assert len(rv.data) == 1024


def test_etag_false(app: Flask, download_root: pathlib.Path) -> None:
    path = download_root / "data.bin"
    client = _route(app, lambda: send_download(path, etag=False))
    with client.get("/x") as rv:
        assert "ETag" not in rv.headers


def test_same_engine_ranges_head_304(app: Flask, download_root: pathlib.Path) -> None:
    path = download_root / "data.bin"
    client = _route(app, lambda: send_download(path))
    with client.get("/x", headers={"Range": "bytes=0-3,10-11"}) as rv:
        assert rv.status_code == 206
        assert rv.mimetype == "multipart/byteranges"
    with client.get("/x", headers={"Range": "bytes=9999-"}) as rv:
        assert rv.status_code == 416
    with client.head("/x", headers={"Range": "bytes=0-3"}) as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == "1024"
        assert rv.data == b""


def test_offload_rules_apply(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/in/"}
        ],
    )
    client = _route(app, lambda: send_download(download_root / "hello.txt"))
    with client.get("/x") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/in/hello.txt"


def test_signals_sent(app: Flask, download_root: pathlib.Path) -> None:
    seen: list[t.Any] = []

    def receiver(sender: t.Any, **kwargs: t.Any) -> None:
        seen.append(kwargs["file"])

    client = _route(app, lambda: send_download(download_root / "hello.txt"))
    with download_started.connected_to(receiver, app), client.get("/x") as rv:
        rv.get_data()
    assert len(seen) == 1


@pytest.mark.parametrize(
    "name",
    ["a\r\nX-Injected: 1", 'a"; filename="b.exe', "été\n.txt"],
    ids=["crlf", "param", "non-ascii-lf"],
)
def test_download_name_cannot_inject(
    app: Flask, serve: t.Callable[[t.Any], Live], name: str
) -> None:
    _route(app, lambda: send_download(b"x", download_name=name))
    status, headers, body = serve(app).get("/x")
    assert status == 200
    assert headers.get("X-Injected") is None
    assert "\n" not in headers["Content-Disposition"]


def test_works_without_extension(download_root: pathlib.Path) -> None:
    app = Flask(__name__)
    path = download_root / "hello.txt"
    app.add_url_rule("/x", "x", lambda: send_download(path))
    with app.test_client().get("/x") as rv:
        assert rv.data == b"Hello, world!\n"


def test_text_mode_file_and_pipe(
    app: Flask, serve: t.Callable[[t.Any], Live], download_root: pathlib.Path
) -> None:
    def text_file() -> t.Any:
        handle = open(download_root / "été.txt", encoding="utf-8")  # noqa: SIM115
        return send_download(handle, download_name="e.txt")

    def pipe() -> t.Any:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, b"through a pipe")
        os.close(write_fd)
        return send_download(os.fdopen(read_fd, "rb"), download_name="p.bin")

    app.add_url_rule("/t", "t", text_file)
    app.add_url_rule("/pipe", "pipe", pipe)
    live = serve(app)
    status, headers, body = live.get("/t")
    assert status == 200
    assert body == "Un été à Paris\n".encode()
    status, headers, body = live.get("/pipe", headers={"Range": "bytes=0-1"})
    assert status == 200
    assert body == b"through a pipe"
