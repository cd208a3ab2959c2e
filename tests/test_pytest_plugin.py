from __future__ import annotations

import importlib.metadata
import pathlib

import pytest

from flask_download import pytest_plugin

pytest_plugins = ["pytester"]


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    entry_points = importlib.metadata.entry_points(group="pytest11")
    [entry_point] = [ep for ep in entry_points if ep.name == "flask_download"]
    assert entry_point.value == "flask_download.pytest_plugin"
    assert entry_point.load() is pytest_plugin


def test_fixtures_are_listed_with_their_docs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "download_root -- *pytest_plugin.py:*",
            "*A temporary directory of sample files*",
            "download_storage -- *pytest_plugin.py:*",
            "*in-memory fsspec filesystem*",
        ]
    )


def test_download_root_holds_the_sample_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fd_plugin_root="""
        import os

        from flask_download.pytest_plugin import SAMPLE_FILES

        def test_files(download_root):
            assert download_root.is_dir()
            for name, content in SAMPLE_FILES.items():
                assert (download_root / name).read_bytes() == content
            assert "été.txt" in os.listdir(download_root)

        def test_fresh_per_test(download_root, tmp_path):
            assert download_root.parent == tmp_path
            (download_root / "hello.txt").write_bytes(b"changed")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_download_root_serves_a_flask_app(pytester: pytest.Pytester) -> None:
    """The fixture and assert_download_response, as an application uses them."""
    pytester.makepyfile(
        test_fd_plugin_app="""
        import pytest
        from flask import Flask

        from flask_download import FlaskDownload, PathDownloadView
        from flask_download.testing import assert_download_response

        @pytest.fixture
        def client(download_root):
            app = Flask(__name__)
            app.config["DOWNLOAD_ROOT"] = str(download_root)
            FlaskDownload(app)
            app.add_url_rule(
                "/files/<path:path>", view_func=PathDownloadView.as_view("files")
            )
            return app.test_client()

        def test_download(client):
            with client.get("/files/été.txt") as rv:
                assert_download_response(
                    rv,
                    content="Un été à Paris\\n",
                    basename="été.txt",
                    mimetype="text/plain",
                    attachment=True,
                )

        def test_wrong_name_fails(client):
            with client.get("/files/hello.txt") as rv:
                assert_download_response(rv, basename="bye.txt")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*basename: expected 'bye.txt', found 'hello.txt'*"])


def test_download_storage_is_empty_and_private(pytester: pytest.Pytester) -> None:
    pytest.importorskip("fsspec")
    pytester.makepyfile(
        test_fd_plugin_storage="""
        import fsspec
        import pytest

        @pytest.mark.parametrize("run", [1, 2])
        def test_fresh(download_storage, run):
            assert download_storage.protocol in ("memory", ("memory",))
            assert download_storage.ls("/") == []
            download_storage.pipe("/docs/a.txt", b"hello")
            assert download_storage.cat("/docs/a.txt") == b"hello"
            # Other memory filesystems do not see it.
            assert not fsspec.filesystem("memory").exists("/docs/a.txt")

        def test_two_storages_are_separate(download_storage):
            download_storage.pipe("/x.txt", b"x")
            assert download_storage.exists("/x.txt")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_write_sample_files(tmp_path: pathlib.Path) -> None:
    root = pytest_plugin.write_sample_files(tmp_path)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*")) == sorted(
        pytest_plugin.SAMPLE_FILES
    )
