"""DESIGN §1: the mixin API, as django-downloadview's tests use it."""

from __future__ import annotations

import datetime
import os
import pathlib
import typing as t

import flask
import flask.views
import pytest
from flask import Flask

from flask_download import BaseDownloadView
from flask_download import DownloadFile
from flask_download import DownloadMixin
from flask_download import DownloadResponse
from flask_download import DownloadView
from flask_download import FileNotFound
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView
from flask_download import VirtualFile

UTC = datetime.timezone.utc


def test_mixin_is_not_a_flask_view() -> None:
    assert not issubclass(DownloadMixin, flask.views.View)
    assert issubclass(DownloadView, DownloadMixin)
    assert issubclass(DownloadView, flask.views.MethodView)
    assert BaseDownloadView is DownloadView


def test_mixin_defaults() -> None:
    assert DownloadMixin.response_class is DownloadResponse
    assert DownloadMixin.attachment is True
    assert DownloadMixin.basename is None
    assert DownloadMixin.mimetype is None
    assert DownloadMixin.encoding is None


def test_get_file_not_implemented() -> None:
    with pytest.raises(NotImplementedError):
        DownloadMixin().get_file()


def test_getters_return_attributes() -> None:
    mixin = DownloadMixin()
    mixin.basename = "a.txt"
    mixin.mimetype = "text/x-special"
    mixin.encoding = "br"
    assert mixin.get_basename() == "a.txt"
    assert mixin.get_mimetype() == "text/x-special"
    assert mixin.get_encoding() == "br"


def test_download_view_subclass_get_file(app: Flask) -> None:
    class Hello(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"hello", name="hello.txt")

    app.add_url_rule("/h", view_func=Hello.as_view("h"))
    with app.test_client().get("/h") as rv:
        assert rv.status_code == 200
        assert rv.data == b"hello"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'
        assert rv.mimetype == "text/plain"


def test_as_view_sets_instance_attributes(app: Flask) -> None:
    app.add_url_rule(
        "/readme",
        view_func=PathDownloadView.as_view(
            "readme", path="hello.txt", attachment=False, basename="read.me"
        ),
    )
    with app.test_client().get("/readme") as rv:
        assert rv.status_code == 200
        assert rv.data == b"Hello, world!\n"
        assert rv.headers["Content-Disposition"].startswith("inline")
        assert 'filename="read.me"' in rv.headers["Content-Disposition"]
    # The class itself is never changed.
    assert PathDownloadView.attachment is True
    assert PathDownloadView.basename is None
    assert getattr(PathDownloadView, "path", None) is None


def test_as_view_unknown_keyword_is_type_error() -> None:
    with pytest.raises(TypeError, match="no_such_attribute"):
        PathDownloadView.as_view("x", no_such_attribute=1)


def test_as_view_two_views_of_one_class_are_independent(app: Flask) -> None:
    app.add_url_rule(
        "/a", view_func=VirtualDownloadView.as_view("a", content="A", basename="a.txt")
    )
    app.add_url_rule(
        "/b", view_func=VirtualDownloadView.as_view("b", content="B", basename="b.txt")
    )
    client = app.test_client()
    with client.get("/a") as a, client.get("/b") as b:
        assert (a.data, b.data) == (b"A", b"B")


def test_url_variables_are_self_kwargs(app: Flask) -> None:
    seen: list[dict[str, t.Any]] = []

    class Echo(DownloadView):
        def get_file(self) -> DownloadFile:
            seen.append(dict(self.kwargs))
            return VirtualFile(str(self.kwargs["n"]), name="n.txt")

        def get_basename(self) -> str | None:
            seen.append(dict(self.kwargs))
            return f"file-{self.kwargs['n']}.txt"

    app.add_url_rule("/e/<int:n>", view_func=Echo.as_view("e"))
    with app.test_client().get("/e/7") as rv:
        assert rv.data == b"7"
        assert 'filename="file-7.txt"' in rv.headers["Content-Disposition"]
    assert seen and all(kw == {"n": 7} for kw in seen)


def test_head_same_headers_as_get_without_body(app: Flask) -> None:
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="data.bin"))
    client = app.test_client()
    with client.get("/p") as get, client.head("/p") as head:
        assert head.status_code == 200
        assert head.data == b""
        for name in (
            "Content-Length",
            "Content-Type",
            "Content-Disposition",
            "ETag",
            "Last-Modified",
            "Accept-Ranges",
            "X-Content-Type-Options",
        ):
            assert head.headers.get(name) == get.headers.get(name), name


def test_head_ignores_range(app: Flask) -> None:
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="data.bin"))
    with app.test_client().head("/p", headers={"Range": "bytes=0-9"}) as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == "1024"
        assert "Content-Range" not in rv.headers


def test_file_not_found_is_404(app: Flask) -> None:
    class Missing(DownloadView):
        def get_file(self) -> DownloadFile:
            raise FileNotFound("gone")

    app.add_url_rule("/m", view_func=Missing.as_view("m"))
    with app.test_client().get("/m") as rv:
        assert rv.status_code == 404


def test_file_not_found_response_override_may_return(app: Flask) -> None:
    class Missing(DownloadView):
        def get_file(self) -> DownloadFile:
            raise FileNotFound("gone")

        def file_not_found_response(self) -> flask.Response:
            return flask.Response("custom", status=410)

    app.add_url_rule("/m", view_func=Missing.as_view("m"))
    with app.test_client().get("/m") as rv:
        assert rv.status_code == 410
        assert rv.data == b"custom"


def test_not_modified_response_builds_the_304(app: Flask) -> None:
    calls: list[dict[str, t.Any]] = []

    class Tracked(VirtualDownloadView):
        content = "x"
        basename = "x.txt"

        def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            calls.append(kwargs)
            response = super().not_modified_response(*args, **kwargs)
            response.headers["X-Custom"] = "yes"
            return response

    app.add_url_rule("/t", view_func=Tracked.as_view("t"))
    client = app.test_client()
    with client.get("/t") as first:
        etag = first.headers["ETag"]
    with client.get("/t", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.headers["X-Custom"] == "yes"
        assert rv.headers["ETag"] == etag
    assert calls and "headers" in calls[0]


def test_download_response_override(app: Flask) -> None:
    class Custom(VirtualDownloadView):
        content = "abc"
        basename = "abc.txt"

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            response = super().download_response(*args, **kwargs)
            response.headers["X-From"] = "download_response"
            return response

    app.add_url_rule("/c", view_func=Custom.as_view("c"))
    with app.test_client().get("/c") as rv:
        assert isinstance(rv, flask.Response)
        assert rv.headers["X-From"] == "download_response"
        assert rv.data == b"abc"


class _Wrapper(DownloadFile):
    """A wrapper with a configurable ``modified_time`` / ``was_modified_since``."""

    def __init__(self, **attrs: t.Any) -> None:
        self.__dict__.update(attrs)


def _since(seconds: float = 0) -> datetime.datetime:
    return datetime.datetime(2020, 1, 1, tzinfo=UTC) + datetime.timedelta(
        seconds=seconds
    )


def test_was_modified_since_uses_wrapper_method() -> None:
    seen: list[datetime.datetime] = []

    class Asks(DownloadFile):
        def was_modified_since(self, since: datetime.datetime) -> bool:
            seen.append(since)
            return False

    assert DownloadMixin().was_modified_since(Asks(), _since()) is False
    assert seen == [_since()]


@pytest.mark.parametrize(
    ("mtime", "expected"),
    [
        (_since(-10), False),
        (_since(0), False),
        (_since(0.7), False),  # same second: HTTP dates have no fractions
        (_since(1), True),
        (_since(100), True),
    ],
    ids=["older", "equal", "fraction", "one-second-newer", "newer"],
)
def test_was_modified_since_compares_seconds(
    mtime: datetime.datetime, expected: bool
) -> None:
    class Timed(DownloadFile):
        @property
        def modified_time(self) -> datetime.datetime | None:
            return mtime

    assert DownloadMixin().was_modified_since(Timed(), _since()) is expected


def _raising(exc: type[BaseException]) -> DownloadFile:
    class Broken(DownloadFile):
        @property
        def modified_time(self) -> datetime.datetime | None:
            raise exc()

    return Broken()


@pytest.mark.parametrize(
    "file",
    [
        _raising(AttributeError),
        _raising(NotImplementedError),
        VirtualFile(b"x"),  # modified_time None
    ],
    ids=["attribute-error", "not-implemented", "none"],
)
def test_was_modified_since_unknown_counts_as_modified(file: DownloadFile) -> None:
    assert DownloadMixin().was_modified_since(file, _since()) is True


def test_was_modified_since_wrapper_method_not_implemented_falls_back() -> None:
    class Half(DownloadFile):
        def was_modified_since(self, since: datetime.datetime) -> bool:
            raise NotImplementedError

        @property
        def modified_time(self) -> datetime.datetime | None:
            return _since(-50)

    assert DownloadMixin().was_modified_since(Half(), _since()) is False


def test_if_modified_since_uses_was_modified_since(app: Flask) -> None:
    received: list[datetime.datetime] = []

    class Never(VirtualDownloadView):
        content = "x"
        basename = "x.txt"

        def was_modified_since(
            self, file_instance: DownloadFile, since: datetime.datetime
        ) -> bool:
            received.append(since)
            return False

    app.add_url_rule("/n", view_func=Never.as_view("n"))
    headers = {"If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT"}
    with app.test_client().get("/n", headers=headers) as rv:
        assert rv.status_code == 304
    assert received == [datetime.datetime(2015, 10, 21, 7, 28, tzinfo=UTC)]
    assert received[0].tzinfo is not None
    assert received[0].utcoffset() == datetime.timedelta(0)


def test_views_work_without_extension(download_root: pathlib.Path) -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/p",
        view_func=PathDownloadView.as_view(
            "p", path=os.fspath(download_root / "hello.txt")
        ),
    )
    app.add_url_rule(
        "/v", view_func=VirtualDownloadView.as_view("v", content="hi", basename="v.txt")
    )
    client = app.test_client()
    with client.get("/p") as p, client.get("/v") as v:
        assert p.status_code == 200
        assert p.data == b"Hello, world!\n"
        assert v.data == b"hi"
        assert p.headers["Accept-Ranges"] == "bytes"


def test_render_to_response_is_the_entry_point(app: Flask) -> None:
    class Wrapped(VirtualDownloadView):
        content = "x"
        basename = "x.txt"

        def render_to_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            response = super().render_to_response(*args, **kwargs)
            response.headers["X-Rendered"] = "1"
            return response

    app.add_url_rule("/r", view_func=Wrapped.as_view("r"))
    with app.test_client().get("/r") as rv:
        assert rv.headers["X-Rendered"] == "1"


def test_response_class_is_used(app: Flask) -> None:
    class Mine(DownloadResponse):
        pass

    made: list[t.Any] = []

    class View(VirtualDownloadView):
        content = "x"
        basename = "x.txt"
        response_class = Mine

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            response = super().download_response(*args, **kwargs)
            made.append(response)
            return response

    app.add_url_rule("/m", view_func=View.as_view("m"))
    with app.test_client().get("/m") as rv:
        assert rv.data == b"x"
    assert len(made) == 1
    assert isinstance(made[0], Mine)


def test_download_response_is_a_download_response(app: Flask) -> None:
    made: list[t.Any] = []

    class View(PathDownloadView):
        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            response = super().download_response(*args, **kwargs)
            made.append(response)
            return response

    app.add_url_rule("/p", view_func=View.as_view("p", path="hello.txt"))
    with app.test_client().get("/p") as rv:
        rv.get_data()
    assert isinstance(made[0], DownloadResponse)
    assert isinstance(made[0], flask.Response)


def test_file_not_found_response_aborts_404() -> None:
    from werkzeug.exceptions import NotFound

    app = Flask(__name__)
    with app.test_request_context(), pytest.raises(NotFound):
        DownloadMixin().file_not_found_response()


def test_post_is_405(app: Flask) -> None:
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path="hello.txt"))
    with app.test_client().post("/p") as rv:
        assert rv.status_code == 405


# Ported from django-downloadview's tests/views.py (duck-typed wrappers).


def test_was_modified_since_returns_the_wrappers_answer() -> None:
    from unittest import mock

    wrapper = mock.Mock()
    wrapper.was_modified_since = mock.Mock(return_value=mock.sentinel.answer)
    since = _since()
    assert DownloadMixin().was_modified_since(wrapper, since) is mock.sentinel.answer
    wrapper.was_modified_since.assert_called_once_with(since)


@pytest.mark.parametrize("error", [AttributeError, NotImplementedError])
def test_was_modified_since_duck_typed_wrapper_cannot_tell(
    error: type[Exception],
) -> None:
    class Duck:
        def was_modified_since(self, since: datetime.datetime) -> bool:
            raise error("fake")

        @property
        def modified_time(self) -> datetime.datetime:
            raise error("fake")

    assert DownloadMixin().was_modified_since(Duck(), _since()) is True  # type: ignore[arg-type]
