"""Every download view answers with ``app.response_class``.

Flask coerces a view's answer of another class with
``app.response_class.force_type``, which swaps the object's class: a
download lost its own body code and went out as an empty body under the
file's ``Content-Length`` in any app with its own response class.
"""

from __future__ import annotations

import http.client
import pathlib
import typing as t
import urllib.parse

import flask
import pytest
from conftest import running_werkzeug
from flask import Flask

from flask_download import DownloadMixin
from flask_download import DownloadResponse
from flask_download import DownloadView
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download import ZipDownloadView

BODY = b"0123456789" * 100


class AppResponse(flask.Response):
    """An app's own class: a default header and a member of its own."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers.setdefault("X-App", "yes")

    def shout(self) -> str:
        return "custom"


class OverriddenGet(PathDownloadView):
    def get(self, **kwargs: t.Any) -> flask.Response:
        return self.render_to_response()


class Zip(ZipDownloadView):
    def get_members(self) -> list[VirtualFile]:
        return [VirtualFile(BODY, name="m.bin")]


def mixin_view() -> flask.Response:
    class Alone(DownloadMixin):
        def get_file(self) -> VirtualFile:
            return VirtualFile(BODY, name="alone.bin")

    return Alone().render_to_response()


def make_app(root: pathlib.Path) -> Flask:
    (root / "a.bin").write_bytes(BODY)
    app = Flask(__name__)
    app.response_class = AppResponse
    app.add_url_rule(
        "/path", view_func=PathDownloadView.as_view("path", path=root / "a.bin")
    )
    app.add_url_rule(
        "/virtual",
        view_func=VirtualDownloadView.as_view(
            "virtual", content=BODY, basename="v.bin"
        ),
    )
    app.add_url_rule(
        "/overridden",
        view_func=OverriddenGet.as_view("overridden", path=root / "a.bin"),
    )
    app.add_url_rule("/mixin", view_func=mixin_view)
    app.add_url_rule("/zip", view_func=Zip.as_view("zip"))
    return app


@pytest.fixture
def app(tmp_path: pathlib.Path) -> Flask:
    return make_app(tmp_path)


@pytest.mark.parametrize("path", ["/path", "/virtual", "/overridden", "/mixin"])
def test_body_and_class(app: Flask, path: str) -> None:
    answers: list[flask.Response] = []
    app.after_request_funcs.setdefault(None, []).append(
        lambda response: answers.append(response) or response
    )
    with app.test_client().get(path) as response:
        assert response.status_code == 200
        assert response.get_data() == BODY
        assert response.headers["Content-Length"] == str(len(BODY))
    (answer,) = answers
    assert isinstance(answer, AppResponse)
    assert isinstance(answer, DownloadResponse)
    assert answer.shout() == "custom"


def test_ranges_and_304_keep_working(app: Flask) -> None:
    client = app.test_client()
    with client.get("/path", headers={"Range": "bytes=10-19"}) as response:
        assert response.status_code == 206
        assert response.get_data() == BODY[10:20]
    etag = client.get("/path").headers["ETag"]
    with client.get("/path", headers={"If-None-Match": etag}) as response:
        assert response.status_code == 304
        assert response.get_data() == b""


def test_archive(app: Flask) -> None:
    with app.test_client().get("/zip") as response:
        assert response.status_code == 200
        data = response.get_data()
    assert len(data) == int(response.headers["Content-Length"])
    assert BODY in data  # stored, not compressed


def test_a_view_class_is_made_once(app: Flask) -> None:
    classes = set()
    app.after_request_funcs.setdefault(None, []).append(
        lambda response: classes.add(type(response)) or response
    )
    client = app.test_client()
    for _ in range(3):
        client.get("/path").close()
    assert len(classes) == 1


def test_default_response_class_is_untouched(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.bin").write_bytes(BODY)
    app = Flask(__name__)
    app.add_url_rule(
        "/path", view_func=PathDownloadView.as_view("path", path=tmp_path / "a.bin")
    )
    seen: list[type] = []
    app.after_request_funcs.setdefault(None, []).append(
        lambda response: seen.append(type(response)) or response
    )
    app.test_client().get("/path").close()
    assert seen == [DownloadResponse]


def test_views_returning_other_values_are_left_to_flask(tmp_path: pathlib.Path) -> None:
    class Text(DownloadView):
        def get(self, **kwargs: t.Any) -> t.Any:
            return "plain text", 202

    app = Flask(__name__)
    app.response_class = AppResponse
    app.add_url_rule("/t", view_func=Text.as_view("t"))
    response = app.test_client().get("/t")
    assert response.status_code == 202
    assert response.get_data() == b"plain text"


@pytest.mark.parametrize("path", ["/path", "/virtual", "/mixin"])
def test_on_a_real_server(tmp_path: pathlib.Path, path: str) -> None:
    with running_werkzeug(make_app(tmp_path)) as base:
        parts = urllib.parse.urlsplit(base)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            assert answer.status == 200
            assert answer.getheader("X-App") == "yes"
            assert answer.read() == BODY
        finally:
            connection.close()


# -- the mixed classes live as long as the app's class ------------------------


def test_mixed_classes_do_not_outlive_the_app_class(
    download_root: pathlib.Path,
) -> None:
    """An app factory defining its response class per app (as tests do)
    must not pile up classes: the mixed one goes with the app's."""
    import gc
    import weakref

    def factory() -> Flask:
        class PerApp(flask.Response):
            pass

        app = Flask(__name__)
        app.response_class = PerApp
        app.add_url_rule(
            "/d",
            view_func=VirtualDownloadView.as_view("d", content=BODY, basename="d.bin"),
        )
        return app

    refs = []
    for _ in range(3):
        app = factory()
        with app.test_client().get("/d") as rv:
            assert rv.data == BODY
            assert isinstance(rv, app.response_class)
        refs.append(weakref.ref(app.response_class))
        del app, rv
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]


def test_one_mixed_class_per_pair_across_threads() -> None:
    """Two threads making the class at once both get the one kept."""
    import threading

    from flask_download.views import _helpers

    both_inside = threading.Barrier(2, timeout=10)

    class Shared(flask.Response):
        def __init_subclass__(cls, **kwargs: t.Any) -> None:
            # Runs while a mixed class is made: hold each thread there
            # until the other one is making its own.
            super().__init_subclass__(**kwargs)
            both_inside.wait()

    found: list[type | None] = []

    def mix() -> None:
        found.append(_helpers._mixed_class(DownloadResponse, Shared))

    threads = [threading.Thread(target=mix) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2
    assert found[0] is found[1]
    assert found[0] is not None
    assert issubclass(found[0], DownloadResponse)
    assert issubclass(found[0], Shared)
    assert _helpers._mixed_class(DownloadResponse, Shared) is found[0]
