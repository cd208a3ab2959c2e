from __future__ import annotations

import collections.abc as cabc
import os
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import FlaskDownload

#: Sample files written to ``download_root``: name -> content.
SAMPLE_FILES: dict[str, bytes] = {
    "hello.txt": b"Hello, world!\n",
    "data.bin": bytes(range(256)) * 4,
    "archive.tar.gz": b"\x1f\x8b\x08\x00fake-gzip-bytes",
    "page.html": b"<!doctype html><p>hi</p>",
    "été.txt": "Un été à Paris\n".encode(),
    'we"ird;name\\.txt': b"odd name\n",
    "sub/nested.txt": b"nested\n",
}


@pytest.fixture
def download_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory of sample files, with a secret file next to (not in) it."""
    root = tmp_path / "root"
    for name, content in SAMPLE_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
    return root


@pytest.fixture
def app_factory(
    download_root: pathlib.Path,
) -> cabc.Callable[..., Flask]:
    """Make an app with Flask-Download registered and the given config."""

    def factory(**config: t.Any) -> Flask:
        app = Flask("test_app", root_path=os.fspath(download_root.parent))
        app.config.update(TESTING=True, DOWNLOAD_ROOT=os.fspath(download_root))
        app.config.update(config)
        FlaskDownload(app)
        return app

    return factory


@pytest.fixture
def app(app_factory: cabc.Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> t.Any:
    return app.test_client()
