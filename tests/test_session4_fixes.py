"""Fixes of the fourth session that cross areas (found by one audit, in
another's files)."""

from __future__ import annotations

import pathlib

from flask import Flask

from flask_download import PathDownloadView


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
