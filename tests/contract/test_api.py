"""DESIGN preamble: every public name is importable from ``flask_download``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import flask_download

NAMES = [
    # §1
    "DownloadMixin",
    "DownloadView",
    "BaseDownloadView",
    "DownloadResponse",
    # §2
    "DownloadFile",
    "PathFile",
    "VirtualFile",
    "StorageFile",
    "HTTPFile",
    "PathDownloadView",
    "VirtualDownloadView",
    "StorageDownloadView",
    "HTTPDownloadView",
    "ObjectDownloadView",
    "FileNotFound",
    # §4
    "FlaskDownload",
    "make_download_blueprint",
    # §5
    "download_started",
    "download_finished",
    "signed_url_for",
    "signature_required",
    "assert_download_response",
    # §7
    "send_download",
    # §8
    "ArchiveFile",
    "ZipDownloadView",
    # §9
    "nginx_secure_link",
    "cloudfront_signed_url",
    "cloudfront_signed_cookies",
]


@pytest.mark.parametrize("name", NAMES)
def test_public_name_at_top_level(name: str) -> None:
    assert getattr(flask_download, name, None) is not None, name


def test_file_column_at_top_level() -> None:
    from flask_download import FileColumn
    from flask_download.sqlalchemy import FileColumn as Submodule

    assert FileColumn is Submodule


def test_submodule_names() -> None:
    assert importlib.import_module("flask_download.testing").assert_download_response
    assert importlib.import_module("flask_download.sqlalchemy").FileColumn
    edge = importlib.import_module("flask_download.edge")
    for name in (
        "nginx_secure_link",
        "cloudfront_signed_url",
        "cloudfront_signed_cookies",
    ):
        assert getattr(edge, name)


def test_all_lists_importable_names() -> None:
    for name in flask_download.__all__:
        assert hasattr(flask_download, name), name


def test_import_needs_only_flask() -> None:
    """``import flask_download`` works with the optional packages missing."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'sqlalchemy', 'flask_sqlalchemy', 'fsspec',"
        " 'botocore', 'cryptography', 'urllib3', 'requests', 'httpx'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import flask_download\n"
        "try:\n"
        "    flask_download.FileColumn\n"
        "except ImportError as e:\n"
        "    assert 'Flask-Download[sqlalchemy]' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('FileColumn without SQLAlchemy')\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_every_exception_derives_from_download_error() -> None:
    for name in flask_download.__all__:
        value = getattr(flask_download, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, flask_download.DownloadError), name


def test_signed_url_for_without_secret_key_says_so() -> None:
    from flask import Flask

    app = Flask(__name__)
    app.add_url_rule(
        "/v",
        view_func=flask_download.VirtualDownloadView.as_view(
            "v", content="x", signed=True
        ),
    )
    with (
        app.test_request_context(),
        pytest.raises(flask_download.ConfigurationError, match="SECRET_KEY"),
    ):
        flask_download.signed_url_for("v")
