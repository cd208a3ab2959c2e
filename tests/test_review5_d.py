"""Review of send_download's open files, the 416, integer-likes and config keys."""

from __future__ import annotations

import errno
import os
import pathlib
import typing as t
import urllib.request

import pytest
from flask import Flask

from flask_download import FlaskDownload
from flask_download import send_download

try:
    from conftest import running_gunicorn
except ImportError:  # imported by gunicorn as tests.test_review5_d
    from tests.conftest import running_gunicorn

DATA = bytes(range(256)) * 64
#: Where the app's file object is when it is handed over.
POSITION = 1000


def _refuse_sendfile(*args: t.Any) -> int:
    # What os.sendfile says for a file system without splice support: the
    # standard library then sends the file with seek() and read().
    raise OSError(errno.EINVAL, "sendfile not supported here")


def make_open_file_app(directory: str, sendfile_works: bool = True) -> Flask:
    """gunicorn's entry point: send_download of a file object at POSITION."""
    if not sendfile_works:
        os.sendfile = _refuse_sendfile
    app = Flask(__name__)
    FlaskDownload(app)

    @app.route("/file/<name>")
    def file(name: str) -> t.Any:
        handle = open(os.path.join(directory, name), "rb")  # noqa: SIM115
        handle.seek(POSITION)
        return send_download(handle, download_name=name)

    return app


def _get(url: str, range_header: str | None = None) -> tuple[t.Any, bytes]:
    headers = {"Range": range_header} if range_header else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as rv:
        return rv, rv.read()


def test_open_file_on_gunicorn_without_os_sendfile(tmp_path: pathlib.Path) -> None:
    """gunicorn hands socket.sendfile() the offset of the descriptor (in the
    file itself); without os.sendfile the standard library seek()s the
    wrapper to it and read()s: seek() must count as the descriptor does, or
    the bytes after POSITION twice over are sent."""
    (tmp_path / "a.bin").write_bytes(DATA)
    target = f"tests.test_review5_d:make_open_file_app({os.fspath(tmp_path)!r}, False)"
    with running_gunicorn(target) as url:
        rv, data = _get(url + "/file/a.bin")
        assert rv.status == 200
        assert data == DATA[POSITION:]
        rv, data = _get(url + "/file/a.bin", "bytes=100-199")
        assert rv.status == 206
        assert data == DATA[POSITION + 100 : POSITION + 200]


class PositionBlindWrapper:
    """uWSGI's ``wsgi.file_wrapper``: a file-like object with a descriptor
    is sent with sendfile from offset 0 for the file's whole size, whatever
    its position (unbit/uwsgi plugins/python/wsgi_subhandler.c calls
    ``uwsgi_response_sendfile_do(wsgi_req, fd, 0, 0)``); others are read."""

    def __init__(self, filelike: t.Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> t.Iterator[bytes]:
        fileno = getattr(self.filelike, "fileno", None)
        if fileno is not None:
            fd = fileno()
            yield os.pread(fd, os.fstat(fd).st_size, 0)
            return
        while chunk := self.filelike.read(self.block_size):
            yield chunk

    def close(self) -> None:
        self.filelike.close()


def test_open_file_on_a_server_blind_to_the_position(tmp_path: pathlib.Path) -> None:
    """Only gunicorn is known to send from the descriptor's position: for
    others, a file object handed over past its start is no "whole file"
    that may be sent by its descriptor."""
    (tmp_path / "a.bin").write_bytes(DATA)
    client = make_open_file_app(os.fspath(tmp_path)).test_client()
    env = {"wsgi.file_wrapper": PositionBlindWrapper, "SERVER_SOFTWARE": "uWSGI"}
    with client.get("/file/a.bin", environ_overrides=env) as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == str(len(DATA) - POSITION)
        assert rv.data == DATA[POSITION:]


def test_file_closed_by_the_view_is_never_another_file(tmp_path: pathlib.Path) -> None:
    """``with open(path, "rb") as f: return send_download(f)`` closes the
    file before the body is sent. Its descriptor number is then free for
    the next file opened in the process (another request's): the body must
    not be read from it, sendfile or not."""
    (tmp_path / "public.bin").write_bytes(b"public data")
    (tmp_path / "secret.bin").write_bytes(b"SECRET of another user")
    app = Flask(__name__)
    FlaskDownload(app)
    reopened: list[t.Any] = []

    @app.route("/closed")
    def closed() -> t.Any:
        with open(tmp_path / "public.bin", "rb") as handle:
            response = send_download(handle, download_name="public.bin")
        reopened.append(open(tmp_path / "secret.bin", "rb"))  # noqa: SIM115
        return response

    client = app.test_client()
    try:
        for env in ({}, {"wsgi.file_wrapper": PositionBlindWrapper}):
            # A bug in the view: the app's 500 (and its log line), never
            # another file's bytes.
            answer = client.get("/closed", environ_overrides=env)
            assert answer.status_code == 500
            assert b"SECRET" not in answer.get_data()
            app.testing = True
            with pytest.raises(ValueError, match="closed"):
                client.get("/closed", environ_overrides=env)
            app.testing = False
    finally:
        for handle in reopened:
            handle.close()
