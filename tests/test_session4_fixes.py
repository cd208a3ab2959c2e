"""Fixes of the fourth session that cross areas (found by one audit, in
another's files)."""

from __future__ import annotations

import codecs
import io
import os
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import ConfigurationError
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.settings import check_allowed_hosts


def test_a_bytes_view_root_confines_like_a_str_root(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"inside")
    app = Flask(__name__)
    view = PathDownloadView.as_view("files", root=bytes(tmp_path))
    app.add_url_rule("/files/<path:path>", view_func=view)
    client = app.test_client()
    with client.get("/files/a.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b"inside"
    with client.get("/files/../a.txt") as rv:
        assert rv.status_code == 404


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ("*", "addresses."),
        ("*.example.com", "'.example.com'"),
        ("a.*.com", "addresses."),
    ],
)
def test_wildcard_allowed_hosts_are_refused_with_a_hint(entry: str, hint: str) -> None:
    with pytest.raises(ConfigurationError, match="wildcard") as raised:
        check_allowed_hosts([entry], "DOWNLOAD_HTTP_ALLOWED_HOSTS")
    assert hint in str(raised.value)
    app = Flask(__name__)
    app.config["DOWNLOAD_HTTP_ALLOWED_HOSTS"] = [entry]
    with pytest.raises(ConfigurationError, match="DOWNLOAD_HTTP_ALLOWED_HOSTS"):
        FlaskDownload(app)


def test_a_blueprint_without_a_root_says_where_to_give_one() -> None:
    from flask_download import make_download_blueprint

    app = Flask(__name__)
    app.register_blueprint(make_download_blueprint("downloads"))
    with (
        app.test_request_context("/files/a.txt"),
        pytest.raises(ConfigurationError, match=r"make_download_blueprint\(\)"),
    ):
        app.view_functions["downloads.file"](path="a.txt")


def _virtual_app(make: t.Callable[[], VirtualFile]) -> Flask:
    app = Flask(__name__)

    class View(VirtualDownloadView):
        def get_file(self) -> VirtualFile:
            return make()

    app.add_url_rule("/v", view_func=View.as_view("v", basename="v.txt"))
    return app


def test_a_codecs_stream_reader_is_a_text_stream() -> None:
    text = "héllo wörld\n" * 100
    app = _virtual_app(
        lambda: VirtualFile(codecs.getreader("utf-8")(io.BytesIO(text.encode())))
    )
    with app.test_client().get("/v") as rv:
        assert rv.status_code == 200
        assert rv.data == text.encode("utf-8")
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs procfs")
def test_a_stream_that_says_it_seeks_but_cannot_is_streamed() -> None:
    def make() -> VirtualFile:
        stream = open("/proc/self/status", "rb")  # noqa: SIM115 - closed by the file
        assert stream.seekable()
        return VirtualFile(stream)

    app = _virtual_app(make)
    with app.test_client().get("/v") as rv:
        assert rv.status_code == 200
        assert b"Name:" in rv.data
        assert "Accept-Ranges" not in rv.headers


def test_a_412_has_no_body_and_no_content_type(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"inside")
    app = Flask(__name__)
    view = PathDownloadView.as_view("files", root=str(tmp_path))
    app.add_url_rule("/files/<path:path>", view_func=view)
    with app.test_client().get("/files/a.txt", headers={"If-Match": '"nope"'}) as rv:
        assert rv.status_code == 412
        assert rv.data == b""
        assert "Content-Type" not in rv.headers
        assert rv.headers["Content-Length"] == "0"


@pytest.mark.parametrize("tail", ["/", "/.", "//", "/./"])
def test_a_file_asked_as_a_directory_is_404(tmp_path: pathlib.Path, tail: str) -> None:
    """``hello.txt/`` names a directory (POSIX: ENOTDIR), as
    ``send_from_directory`` and nginx read it: one URL per file."""
    (tmp_path / "hello.txt").write_bytes(b"hi")
    app = Flask(__name__)
    view = PathDownloadView.as_view("files", root=str(tmp_path))
    app.add_url_rule("/files/<path:path>", view_func=view)
    client = app.test_client()
    with client.get("/files/hello.txt") as rv:
        assert rv.status_code == 200
    with client.get("/files/./hello.txt") as rv:
        assert rv.status_code == 200
    with client.get(f"/files/hello.txt{tail}") as rv:
        assert rv.status_code == 404
