"""Fixes of the fourth session that cross areas (found by one audit, in
another's files)."""

from __future__ import annotations

import pathlib

import pytest
from flask import Flask

from flask_download import ConfigurationError
from flask_download import FlaskDownload
from flask_download import PathDownloadView
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
