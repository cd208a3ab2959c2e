"""Fixes of the seventh session that no audit file holds."""

from __future__ import annotations

import os
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import FlaskDownload
from flask_download import PathDownloadView

SECRET = b"outside the root\n"


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """root/ with a report and links pointing out of it; secret.txt outside."""
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "report.pdf").write_bytes(b"%PDF report\n")
    (root / "docs" / "report.txt").write_bytes(b"text report\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "docs" / "leak.pdf").symlink_to(tmp_path / "secret.txt")
    return tmp_path


def _app(tree: pathlib.Path, view: type[PathDownloadView]) -> Flask:
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = os.fspath(tree / "root")
    FlaskDownload(app)
    app.add_url_rule("/f/<path:path>", view_func=view.as_view("f"))
    return app


class AsPdf(PathDownloadView):
    """The URL names the document; the view serves its PDF."""

    def get_path(self) -> str:
        return super().get_path() + ".pdf"


class RawJoin(PathDownloadView):
    """Joins the root and the URL variable itself (as a port of
    django-downloadview's examples might)."""

    def get_path(self) -> str:
        return os.path.join(t.cast(str, self.get_root()), self.kwargs["path"])


@pytest.mark.parametrize("view", [AsPdf, RawJoin], ids=["suffix", "raw-join"])
def test_a_path_an_override_builds_under_the_root_stays_confined(
    tree: pathlib.Path, view: type[PathDownloadView]
) -> None:
    client = _app(tree, view).test_client()
    name = "docs/report" if view is AsPdf else "docs/report.pdf"
    with client.get(f"/f/{name}") as rv:
        assert rv.status_code == 200
        assert rv.data == b"%PDF report\n"
    # A link out of the root under the root's name: refused, as for the URL
    # path itself (it was served: the plain string was opened as trusted).
    leak = "docs/leak" if view is AsPdf else "docs/leak.pdf"
    with client.get(f"/f/{leak}") as rv:
        assert rv.status_code == 404
        assert SECRET not in rv.data


def test_dot_segments_joined_under_the_root_are_refused(tree: pathlib.Path) -> None:
    client = _app(tree, RawJoin).test_client()
    with client.get("/f/docs/../../secret.txt") as rv:
        assert rv.status_code == 404
        assert SECRET not in rv.data


def test_a_path_an_override_picks_elsewhere_is_still_trusted(
    tree: pathlib.Path,
) -> None:
    """An override mapping the URL to a file of its own choosing, outside the
    root (a developer's decision, not the client's), is served as before."""
    elsewhere = tree / "published"
    elsewhere.mkdir()
    (elsewhere / "latest.txt").write_bytes(b"latest\n")

    class Latest(PathDownloadView):
        def get_path(self) -> str:
            return os.fspath(elsewhere / "latest.txt")

    with _app(tree, Latest).test_client().get("/f/anything") as rv:
        assert rv.status_code == 200
        assert rv.data == b"latest\n"
