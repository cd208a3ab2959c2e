"""Follow-ups of the fifth audit: config values that are integer-likes."""

from __future__ import annotations

import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import ConfigurationError
from flask_download import FlaskDownload
from flask_download import PathDownloadView


class IntLike:
    """An integer that is no ``int`` (``numpy.int64`` behaves so)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"IntLike({self.value})"


def _app(tmp_path: pathlib.Path, **config: t.Any) -> Flask:
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 40)
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = str(tmp_path)
    app.config.update(config)
    FlaskDownload(app)
    app.add_url_rule("/<path:path>", view_func=PathDownloadView.as_view("files"))
    return app


def test_integer_like_config_values_are_numbers(tmp_path: pathlib.Path) -> None:
    app = _app(
        tmp_path,
        DOWNLOAD_CHUNK_SIZE=IntLike(1000),
        DOWNLOAD_MAX_RANGES=IntLike(2),
        DOWNLOAD_CACHE_MAX_AGE=IntLike(60),
    )
    client = app.test_client()
    with client.get("/data.bin") as rv:
        assert rv.status_code == 200
        assert rv.headers["Cache-Control"] == "max-age=60"
    # Three ranges are more than DOWNLOAD_MAX_RANGES: the whole file.
    with client.get("/data.bin", headers={"Range": "bytes=0-0,10-10,20-20"}) as rv:
        assert rv.status_code == 200
    with client.get("/data.bin", headers={"Range": "bytes=0-0,10-10"}) as rv:
        assert rv.status_code == 206


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DOWNLOAD_CHUNK_SIZE", True),
        ("DOWNLOAD_CHUNK_SIZE", 4096.0),
        ("DOWNLOAD_CHUNK_SIZE", IntLike(0)),
        ("DOWNLOAD_MAX_RANGES", "5"),
        ("DOWNLOAD_CACHE_MAX_AGE", IntLike(-1)),
        ("DOWNLOAD_CACHE_MAX_AGE", 1.5),
    ],
)
def test_other_config_numbers_are_still_refused(
    tmp_path: pathlib.Path, key: str, value: t.Any
) -> None:
    with pytest.raises(ConfigurationError, match=key):
        _app(tmp_path, **{key: value})
