from __future__ import annotations

import collections.abc as cabc
import datetime
import io
import os
import pathlib
import typing as t

import pytest
from conftest import SAMPLE_FILES
from flask import Flask
from flask import Response
from flask.views import View
from werkzeug.http import http_date

from flask_download import BaseDownloadView
from flask_download import conditional
from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import DownloadMixin
from flask_download import DownloadView
from flask_download import FileNotFound
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile

UTC = datetime.timezone.utc
# A modification time with a sub-second part the HTTP-date drops.
MODIFIED = datetime.datetime(2024, 5, 17, 12, 30, 45, 750_000, tzinfo=UTC)
MODIFIED_DATE = http_date(MODIFIED)
EARLIER_DATE = http_date(MODIFIED - datetime.timedelta(seconds=1))
HEADERS_SHARED_BY_HEAD = (
    "Content-Type",
    "Content-Length",
    "Content-Disposition",
    "ETag",
    "Last-Modified",
    "Accept-Ranges",
    "Cache-Control",
    "X-Content-Type-Options",
)


def plain_app(tmp_path: pathlib.Path, **config: t.Any) -> Flask:
    """A Flask app without ``FlaskDownload``."""
    app = Flask("plain_app", root_path=os.fspath(tmp_path))
    app.config.update(TESTING=True, PROPAGATE_EXCEPTIONS=True)
    app.config.update(config)
    return app


class RecordingFile(VirtualFile):
    """A :class:`VirtualFile` that counts calls to :meth:`close`."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_calls = 0

    def close(self) -> None:
        self.close_calls += 1
        super().close()


class RecordingPathFile(PathFile):
    """A :class:`PathFile` that keeps the handles it opened and counts closes."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_calls = 0
        self.handles: list[t.IO[bytes]] = []

    def open(self) -> t.IO[bytes]:
        handle = super().open()
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        self.close_calls += 1
        super().close()


class RecordingBytesIO(io.BytesIO):
    """A ``BytesIO`` that counts calls to :meth:`close`."""

    close_calls = 0

    def close(self) -> None:
        self.close_calls += 1
        super().close()


class NonSeekableStream(io.RawIOBase):
    """A readable binary stream that cannot seek (like a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: t.Any) -> int:
        data = self._data.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# -- DownloadMixin API ------------------------------------------------------


def test_base_get_file_raises_not_implemented() -> None:
    with pytest.raises(NotImplementedError):
        DownloadMixin().get_file()


def test_download_view_without_get_file_raises_not_implemented(
    tmp_path: pathlib.Path,
) -> None:
    app = plain_app(tmp_path)
    app.add_url_rule("/f", view_func=DownloadView.as_view("f"))
    with pytest.raises(NotImplementedError):
        app.test_client().get("/f")


def test_mixin_is_not_a_flask_view() -> None:
    assert not issubclass(DownloadMixin, View)
    assert issubclass(DownloadView, DownloadMixin)
    assert issubclass(DownloadView, View)


def test_base_download_view_is_download_view() -> None:
    assert BaseDownloadView is DownloadView


def test_mixin_in_a_function_view(app: Flask, client: t.Any) -> None:
    class Mixin(DownloadMixin):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"from a mixin", name="mixin.bin")

    @app.route("/mixin")
    def mixin_view() -> Response:
        return Mixin().render_to_response()

    with client.get("/mixin") as rv:
        assert rv.status_code == 200
        assert rv.data == b"from a mixin"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="mixin.bin"'


def test_mixin_alone_sees_the_url_variables(app: Flask, client: t.Any) -> None:
    """DESIGN §1: URL variables are ``self.kwargs`` in every method, also
    for a mixin used in a function view."""

    class Mixin(DownloadMixin):
        def get_file(self) -> DownloadFile:
            return VirtualFile(repr(sorted(self.kwargs.items())), name="k.txt")

    @app.route("/mixin/<name>/<int:number>")
    def mixin_view(name: str, number: int) -> Response:
        return Mixin().render_to_response()

    with client.get("/mixin/a/7") as rv:
        assert rv.data == repr([("name", "a"), ("number", 7)]).encode()
    assert DownloadMixin().kwargs == {}  # outside a request
    assert DownloadMixin(kwargs={"x": 1}).kwargs == {"x": 1}
    with pytest.raises(TypeError):
        PathDownloadView.as_view("k", kwargs={"path": "x"})


def test_get_basename_mimetype_encoding_overrides(app: Flask, client: t.Any) -> None:
    class Custom(VirtualDownloadView):
        content = b"payload"

        def get_basename(self) -> str | None:
            return "report.csv"

        def get_mimetype(self) -> str | None:
            return "application/x-custom"

        def get_encoding(self) -> str | None:
            return "br"

    app.add_url_rule("/c", view_func=Custom.as_view("c"))
    with client.get("/c") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Disposition"] == 'attachment; filename="report.csv"'
        assert rv.headers["Content-Type"] == "application/x-custom"
        assert rv.headers["Content-Encoding"] == "br"
        assert rv.data == b"payload"


def test_basename_mimetype_encoding_attributes(app: Flask, client: t.Any) -> None:
    view = VirtualDownloadView.as_view(
        "attrs",
        content=b"payload",
        basename="data.json",
        mimetype="text/x-special",
        encoding="gzip",
    )
    app.add_url_rule("/a", view_func=view)
    with client.get("/a") as rv:
        assert rv.headers["Content-Disposition"] == 'attachment; filename="data.json"'
        assert rv.headers["Content-Type"] == "text/x-special; charset=utf-8"
        assert rv.headers["Content-Encoding"] == "gzip"


# -- was_modified_since -----------------------------------------------------


class OwnAnswerFile(DownloadFile):
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[datetime.datetime] = []
        # Would say "modified" if the wrapper's own method were ignored.
        self.modified_time = MODIFIED + datetime.timedelta(days=1)

    def was_modified_since(self, since: datetime.datetime) -> bool:
        self.asked.append(since)
        return self.answer


@pytest.mark.parametrize("answer", [True, False], ids=["modified", "not-modified"])
def test_was_modified_since_uses_wrapper_method(answer: bool) -> None:
    file = OwnAnswerFile(answer)
    assert DownloadMixin().was_modified_since(file, MODIFIED) is answer
    assert file.asked == [MODIFIED]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (MODIFIED.replace(microsecond=0), False),
        (MODIFIED, False),
        (MODIFIED + datetime.timedelta(seconds=5), False),
        (MODIFIED.replace(microsecond=0) - datetime.timedelta(seconds=1), True),
    ],
    ids=["same-second", "exact", "later", "one-second-earlier"],
)
def test_was_modified_since_compares_whole_seconds(
    since: datetime.datetime, expected: bool
) -> None:
    file = VirtualFile(b"x", modified_time=MODIFIED)
    assert DownloadMixin().was_modified_since(file, since) is expected


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_was_modified_since_takes_a_naive_modified_time_as_utc(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    """As ``Last-Modified`` is formatted: the server's time zone changes
    nothing."""
    import time

    naive = datetime.datetime(2020, 1, 1, 12)
    file = VirtualFile(b"x", modified_time=naive)
    file.modified_time = naive  # a wrapper that did not normalise it
    utc = datetime.timezone.utc
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        mixin = DownloadMixin()
        assert not mixin.was_modified_since(file, naive.replace(tzinfo=utc))
        earlier = datetime.datetime(2020, 1, 1, 6, tzinfo=utc)
        assert mixin.was_modified_since(file, earlier)
    finally:
        monkeypatch.undo()
        time.tzset()


class NoTimeFile(DownloadFile):
    modified_time = None


class AttributeErrorFile(DownloadFile):
    @property
    def modified_time(self) -> datetime.datetime | None:  # type: ignore[override]
        raise AttributeError("modified_time")


class NotImplementedFile(DownloadFile):
    @property
    def modified_time(self) -> datetime.datetime | None:  # type: ignore[override]
        raise NotImplementedError


class NotImplementedMethodFile(DownloadFile):
    modified_time = None

    def was_modified_since(self, since: datetime.datetime) -> bool:
        raise NotImplementedError


class NoneMethodFile(DownloadFile):
    modified_time = None

    def was_modified_since(self, since: datetime.datetime) -> bool | None:
        return None  # the wrapper cannot tell


@pytest.mark.parametrize(
    "file_class",
    [
        NoTimeFile,
        AttributeErrorFile,
        NotImplementedFile,
        NotImplementedMethodFile,
        NoneMethodFile,
    ],
    ids=[
        "none",
        "attribute-error",
        "not-implemented",
        "method-not-implemented",
        "method-returns-none",
    ],
)
def test_was_modified_since_unknown_counts_as_modified(
    file_class: type[DownloadFile],
) -> None:
    assert DownloadMixin().was_modified_since(file_class(), MODIFIED) is True


def test_wrapper_was_modified_since_gives_304_through_view(
    app: Flask, client: t.Any
) -> None:
    class View_(DownloadView):
        def get_file(self) -> DownloadFile:
            file = RecordingFile(b"data", name="d.bin")
            file.was_modified_since = lambda since: False  # type: ignore[attr-defined]
            return file

    app.add_url_rule("/w", view_func=View_.as_view("w"))
    with client.get("/w", headers={"If-Modified-Since": EARLIER_DATE}) as rv:
        assert rv.status_code == 304
        assert rv.data == b""


def test_unknown_modified_time_ignores_if_modified_since(
    app: Flask, client: t.Any
) -> None:
    view = VirtualDownloadView.as_view("u", content=b"data", basename="u.bin")
    app.add_url_rule("/u", view_func=view)
    with client.get("/u", headers={"If-Modified-Since": MODIFIED_DATE}) as rv:
        assert rv.status_code == 200
        assert rv.data == b"data"


@pytest.mark.parametrize(
    ("since", "status"),
    [(MODIFIED_DATE, 304), (EARLIER_DATE, 200)],
    ids=["same-second", "one-second-earlier"],
)
def test_modified_time_one_second_resolution_through_view(
    app: Flask, client: t.Any, since: str, status: int
) -> None:
    class View_(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"data", name="d.bin", modified_time=MODIFIED)

    app.add_url_rule("/m", view_func=View_.as_view("m"))
    with client.get("/m", headers={"If-Modified-Since": since}) as rv:
        assert rv.status_code == status


# -- response factories -----------------------------------------------------


def test_not_modified_response_gets_validator_headers(
    app: Flask, client: t.Any
) -> None:
    calls: list[tuple[tuple[t.Any, ...], dict[str, t.Any]]] = []

    class View_(DownloadView):
        cache_max_age = 60

        def get_file(self) -> DownloadFile:
            return VirtualFile(b"data", name="d.bin", modified_time=MODIFIED, etag="v1")

        def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
            calls.append((args, kwargs))
            return super().not_modified_response(*args, **kwargs)

    app.add_url_rule("/n", view_func=View_.as_view("n"))
    with client.get("/n", headers={"If-None-Match": '"v1"'}) as rv:
        assert rv.status_code == 304
        assert rv.data == b""
        assert rv.headers["ETag"] == '"v1"'
        assert rv.headers["Last-Modified"] == MODIFIED_DATE
        assert rv.headers["Cache-Control"] == "max-age=60"
        assert "Content-Disposition" not in rv.headers
    assert len(calls) == 1
    headers = dict(calls[0][1]["headers"])
    assert headers["ETag"] == '"v1"'
    assert headers["Last-Modified"] == MODIFIED_DATE
    assert headers["Cache-Control"] == "max-age=60"


def test_not_modified_response_override_is_used(app: Flask, client: t.Any) -> None:
    class View_(VirtualDownloadView):
        content = b"data"

        def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
            response = super().not_modified_response(*args, **kwargs)
            response.headers["X-Custom"] = "yes"
            return response

    app.add_url_rule("/n", view_func=View_.as_view("n"))
    with client.get("/n") as rv:
        etag = rv.headers["ETag"]
    with client.get("/n", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.headers["X-Custom"] == "yes"


def test_file_not_found_default_is_404(app: Flask, client: t.Any) -> None:
    class Missing(DownloadView):
        def get_file(self) -> DownloadFile:
            raise FileNotFound("gone")

    app.add_url_rule("/missing", view_func=Missing.as_view("missing"))
    with client.get("/missing") as rv:
        assert rv.status_code == 404


def test_file_not_found_response_override(app: Flask, client: t.Any) -> None:
    class Missing(DownloadView):
        def get_file(self) -> DownloadFile:
            raise FileNotFound("gone")

        def file_not_found_response(self) -> Response:
            return Response("it is gone", status=410)

    app.add_url_rule("/missing", view_func=Missing.as_view("missing"))
    with client.get("/missing") as rv:
        assert rv.status_code == 410
        assert rv.data == b"it is gone"


def test_render_to_response_override(app: Flask, client: t.Any) -> None:
    class Wrapped(VirtualDownloadView):
        content = b"data"
        basename = "d.bin"

        def render_to_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
            response = super().render_to_response(*args, **kwargs)
            response.headers["X-Wrapped"] = "1"
            return response

    app.add_url_rule("/r", view_func=Wrapped.as_view("r"))
    with client.get("/r") as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Wrapped"] == "1"
        assert rv.data == b"data"


def test_download_response_override_gets_keyword_arguments(
    app: Flask, client: t.Any
) -> None:
    class Inline(VirtualDownloadView):
        content = b"data"
        basename = "d.txt"

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            kwargs["attachment"] = False
            return super().download_response(*args, **kwargs)

    app.add_url_rule("/i", view_func=Inline.as_view("i"))
    with client.get("/i") as rv:
        assert rv.headers["Content-Disposition"] == 'inline; filename="d.txt"'


# -- as_view ----------------------------------------------------------------


def test_as_view_sets_attributes_per_view(app: Flask, client: t.Any) -> None:
    app.add_url_rule(
        "/a", view_func=VirtualDownloadView.as_view("a", content="A", basename="a.txt")
    )
    app.add_url_rule(
        "/b",
        view_func=VirtualDownloadView.as_view(
            "b", content=b"B", basename="b.bin", attachment=False
        ),
    )
    with client.get("/a") as rv:
        assert rv.data == b"A"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="a.txt"'
    with client.get("/b") as rv:
        assert rv.data == b"B"
        assert rv.headers["Content-Disposition"] == 'inline; filename="b.bin"'
    assert VirtualDownloadView.content is None
    assert VirtualDownloadView.basename is None
    assert VirtualDownloadView.attachment is True


def test_as_view_does_not_change_class(app: Flask, client: t.Any) -> None:
    class Named(VirtualDownloadView):
        content = b"class content"
        basename = "class.bin"

    app.add_url_rule("/over", view_func=Named.as_view("over", basename="override.bin"))
    app.add_url_rule("/plain", view_func=Named.as_view("plain"))
    with client.get("/over") as rv:
        assert (
            rv.headers["Content-Disposition"] == 'attachment; filename="override.bin"'
        )
    with client.get("/plain") as rv:
        assert rv.headers["Content-Disposition"] == 'attachment; filename="class.bin"'
    assert Named.basename == "class.bin"
    assert DownloadMixin.basename is None


def test_as_view_makes_a_fresh_instance_per_request(app: Flask, client: t.Any) -> None:
    seen: list[int] = []

    class Counting(VirtualDownloadView):
        content = b"x"

        def get_file(self) -> DownloadFile:
            seen.append(id(self))
            assert not hasattr(self, "marker")
            self.marker = True
            return super().get_file()

    app.add_url_rule("/c", view_func=Counting.as_view("c"))
    for _ in range(2):
        with client.get("/c") as rv:
            assert rv.status_code == 200
    assert len(seen) == 2


@pytest.mark.parametrize(
    "key", ["nonexistent_option", "basenme"], ids=["unknown", "typo"]
)
def test_as_view_unknown_keyword_is_type_error(key: str) -> None:
    with pytest.raises(TypeError, match=key):
        VirtualDownloadView.as_view("bad", **{key: 1})


def test_as_view_unknown_keyword_leaves_class_alone() -> None:
    with pytest.raises(TypeError):
        PathDownloadView.as_view("bad", pth="x")
    assert not hasattr(PathDownloadView, "pth")


def test_kwargs_hold_url_variables(app: Flask, client: t.Any) -> None:
    seen: list[dict[str, t.Any]] = []

    class Echo(DownloadView):
        def get_basename(self) -> str | None:
            seen.append(dict(self.kwargs))
            return f"{self.kwargs['name']}.txt"

        def get_file(self) -> DownloadFile:
            return VirtualFile(f"{self.kwargs['name']}:{self.kwargs['n']}")

    app.add_url_rule("/echo/<name>/<int:n>", view_func=Echo.as_view("echo"))
    with client.get("/echo/report/7") as rv:
        assert rv.data == b"report:7"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="report.txt"'
    assert seen == [{"name": "report", "n": 7}]


# -- HEAD -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["path", "virtual"])
def test_head_has_get_headers_and_no_body(app: Flask, client: t.Any, kind: str) -> None:
    if kind == "path":
        view = PathDownloadView.as_view("h", path="hello.txt")
    else:
        view = VirtualDownloadView.as_view("h", content=b"virtual", basename="v.txt")
    app.add_url_rule("/h", view_func=view)
    with client.get("/h") as get:
        get_headers = {k: get.headers.get(k) for k in HEADERS_SHARED_BY_HEAD}
        assert get.data
    with client.head("/h") as head:
        assert head.status_code == 200
        assert head.data == b""
        head_headers = {k: head.headers.get(k) for k in HEADERS_SHARED_BY_HEAD}
    assert head_headers == get_headers
    assert head_headers["Content-Length"] == str(len(get.data))


@pytest.mark.parametrize("kind", ["path", "virtual"])
@pytest.mark.parametrize(
    "headers",
    [
        {"Range": "bytes=2-4"},
        {"Range": "bytes=0-1,5-6"},
        {"Range": "bytes=9999-"},
        {"Range": "bytes=-3", "If-Range": "ignored"},
    ],
    ids=["single", "multipart", "unsatisfiable", "if-range"],
)
def test_head_ignores_range(
    app: Flask, client: t.Any, kind: str, headers: dict[str, str]
) -> None:
    """Issue 13: RFC 9110 §14.2, only GET has range handling; a HEAD with
    Range mirrors the 200 a GET without Range gets."""
    if kind == "path":
        view = PathDownloadView.as_view("h", path="hello.txt")
    else:
        view = VirtualDownloadView.as_view("h", content=b"0123456789", basename="v.txt")
    app.add_url_rule("/h", view_func=view)
    with client.get("/h") as get:
        get_headers = {k: get.headers.get(k) for k in HEADERS_SHARED_BY_HEAD}
    with client.head("/h", headers=headers) as head:
        assert head.status_code == 200
        assert head.data == b""
        assert "Content-Range" not in head.headers
        assert {k: head.headers.get(k) for k in HEADERS_SHARED_BY_HEAD} == get_headers
    assert get_headers["Content-Length"] == str(len(get.data))


# -- recipes ----------------------------------------------------------------


def test_recipe_inline_file(app: Flask, client: t.Any) -> None:
    app.add_url_rule(
        "/readme",
        view_func=PathDownloadView.as_view(
            "readme", path="hello.txt", attachment=False
        ),
    )
    with client.get("/readme") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Disposition"] == 'inline; filename="hello.txt"'
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert rv.data == SAMPLE_FILES["hello.txt"]


def test_recipe_never_modified_answers_304(app: Flask, client: t.Any) -> None:
    class Constant(VirtualDownloadView):
        content = "never changes"
        basename = "constant.txt"

        def was_modified_since(
            self, file_instance: DownloadFile, since: datetime.datetime
        ) -> bool:
            return False

    app.add_url_rule("/constant", view_func=Constant.as_view("constant"))
    with client.get("/constant") as rv:
        assert rv.status_code == 200
    headers = {"If-Modified-Since": EARLIER_DATE}
    with client.get("/constant", headers=headers) as rv:
        assert rv.status_code == 304
        assert rv.data == b""
        assert "Content-Disposition" not in rv.headers


# -- PathDownloadView -------------------------------------------------------


def test_path_absolute(tmp_path: pathlib.Path, download_root: pathlib.Path) -> None:
    app = plain_app(tmp_path)
    path = os.fspath(download_root / "data.bin")
    app.add_url_rule("/abs", view_func=PathDownloadView.as_view("abs", path=path))
    with app.test_client().get("/abs") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["data.bin"]
        assert rv.headers["Content-Length"] == str(len(SAMPLE_FILES["data.bin"]))
        assert rv.headers["Content-Disposition"] == 'attachment; filename="data.bin"'
        assert rv.headers["Accept-Ranges"] == "bytes"
        assert rv.headers["ETag"].startswith('"')
        assert "Last-Modified" in rv.headers


def test_path_relative_to_download_root(app: Flask, client: t.Any) -> None:
    app.add_url_rule(
        "/nested", view_func=PathDownloadView.as_view("nested", path="sub/nested.txt")
    )
    with client.get("/nested") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["sub/nested.txt"]


def test_path_relative_to_view_root(
    tmp_path: pathlib.Path, download_root: pathlib.Path
) -> None:
    app = plain_app(tmp_path)
    view = PathDownloadView.as_view(
        "nested", path="nested.txt", root=download_root / "sub"
    )
    app.add_url_rule("/nested", view_func=view)
    with app.test_client().get("/nested") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["sub/nested.txt"]


def test_fixed_path_missing_is_404(app: Flask, client: t.Any) -> None:
    app.add_url_rule("/m", view_func=PathDownloadView.as_view("m", path="nope.txt"))
    with client.get("/m") as rv:
        assert rv.status_code == 404


@pytest.mark.parametrize(
    ("url_path", "name"),
    [
        ("hello.txt", "hello.txt"),
        ("sub/nested.txt", "sub/nested.txt"),
        ("%C3%A9t%C3%A9.txt", "été.txt"),
        ("data.bin", "data.bin"),
    ],
    ids=["plain", "nested", "non-ascii", "binary"],
)
def test_url_path_inside_download_root(
    app: Flask, client: t.Any, url_path: str, name: str
) -> None:
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    with client.get(f"/files/{url_path}") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES[name]


def test_url_path_inside_view_root(
    tmp_path: pathlib.Path, download_root: pathlib.Path
) -> None:
    app = plain_app(tmp_path)
    view = PathDownloadView.as_view("files", root=download_root)
    app.add_url_rule("/files/<path:path>", view_func=view)
    with app.test_client().get("/files/sub/nested.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["sub/nested.txt"]


def test_view_root_wins_over_download_root(
    app: Flask, client: t.Any, download_root: pathlib.Path
) -> None:
    view = PathDownloadView.as_view("files", root=download_root / "sub")
    app.add_url_rule("/files/<path:path>", view_func=view)
    with client.get("/files/nested.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["sub/nested.txt"]
    with client.get("/files/hello.txt") as rv:
        assert rv.status_code == 404


def test_custom_path_url_kwarg(app: Flask, client: t.Any) -> None:
    view = PathDownloadView.as_view("files", path_url_kwarg="filename")
    app.add_url_rule("/files/<path:filename>", view_func=view)
    with client.get("/files/hello.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["hello.txt"]


def test_symlink_inside_root_is_served(
    app: Flask, client: t.Any, download_root: pathlib.Path
) -> None:
    (download_root / "alias.txt").symlink_to(download_root / "hello.txt")
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    with client.get("/files/alias.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["hello.txt"]


@pytest.mark.parametrize(
    "url",
    [
        "/files/../secret.txt",
        "/files/sub/../../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2E%2E/secret.txt",
        "/files/sub/%2e%2e/%2e%2e/secret.txt",
        "/files/..%2fsecret.txt",
        "/files/sub/..%2f..%2fsecret.txt",
        "/files/..\\secret.txt",
        "/files/sub%5C..%5C..%5Csecret.txt",
        "/files/hello.txt%00",
        "/files/hello.txt%00.png",
        "/files/sub",
        "/files/.",
        "/files/nope.txt",
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "encoded-dotdot",
        "encoded-dotdot-upper",
        "nested-encoded-dotdot",
        "dotdot-encoded-slash",
        "nested-dotdot-encoded-slash",
        "backslash",
        "encoded-backslash",
        "nul",
        "nul-suffix",
        "directory",
        "root-itself",
        "missing",
    ],
)
def test_url_path_traversal_is_404(app: Flask, client: t.Any, url: str) -> None:
    app.add_url_rule(
        "/files/<path:path>",
        view_func=PathDownloadView.as_view("files"),
        merge_slashes=False,
    )
    with client.get(url) as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data


def test_absolute_url_path_is_404(
    app: Flask, client: t.Any, tmp_path: pathlib.Path
) -> None:
    secret = os.fspath(tmp_path / "secret.txt")
    app.add_url_rule(
        "/files/<path:path>",
        view_func=PathDownloadView.as_view("files"),
        merge_slashes=False,
    )
    # The URL variable itself is absolute (what a route with ``defaults``
    # or a path converter given a leading slash would pass).
    app.add_url_rule(
        "/direct",
        view_func=PathDownloadView.as_view("direct"),
        defaults={"path": secret},
    )
    # Werkzeug before 3.1 redirects the double slash first: follow it.
    with client.get(f"/files/{secret}", follow_redirects=True) as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data
    with client.get("/direct") as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data


def test_symlink_out_of_root_is_404(
    app: Flask, client: t.Any, download_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    (download_root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (download_root / "sub" / "up").symlink_to(tmp_path)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    for url in ("/files/leak.txt", "/files/sub/up/secret.txt"):
        with client.get(url) as rv:
            assert rv.status_code == 404, url
            assert b"TOP SECRET" not in rv.data


def test_sibling_prefix_directory_is_404(
    app: Flask, client: t.Any, download_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    evil = tmp_path / (download_root.name + "-evil")
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"TOP SECRET")
    # A link whose real path starts with the root's path as a string.
    (download_root / "evil").symlink_to(evil)
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    for url in (f"/files/../{evil.name}/x.txt", "/files/evil/x.txt"):
        with client.get(url) as rv:
            assert rv.status_code == 404, url
            assert b"TOP SECRET" not in rv.data


def test_sibling_prefix_with_view_root_is_404(
    tmp_path: pathlib.Path, download_root: pathlib.Path
) -> None:
    evil = tmp_path / (download_root.name + "-evil")
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"TOP SECRET")
    (download_root / "evil").symlink_to(evil)
    app = plain_app(tmp_path)
    view = PathDownloadView.as_view("files", root=os.fspath(download_root))
    app.add_url_rule("/files/<path:path>", view_func=view)
    with app.test_client().get("/files/evil/x.txt") as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data


def test_url_path_without_root_is_configuration_error(
    tmp_path: pathlib.Path,
) -> None:
    app = plain_app(tmp_path)
    app.testing = True
    app.config["PROPAGATE_EXCEPTIONS"] = True
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    with pytest.raises(ConfigurationError, match="DOWNLOAD_ROOT"):
        app.test_client().get("/files/hello.txt")


def test_url_path_with_download_root_without_extension(
    tmp_path: pathlib.Path, download_root: pathlib.Path
) -> None:
    app = plain_app(tmp_path, DOWNLOAD_ROOT=os.fspath(download_root))
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    with app.test_client().get("/files/hello.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["hello.txt"]
    with app.test_client().get("/files/../secret.txt") as rv:
        assert rv.status_code == 404


# -- VirtualDownloadView ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "body"),
    [("Un été\n", "Un été\n".encode()), (b"\x00\x01bytes", b"\x00\x01bytes")],
    ids=["str", "bytes"],
)
def test_virtual_content_attribute(
    app: Flask, client: t.Any, content: str | bytes, body: bytes
) -> None:
    view = VirtualDownloadView.as_view("v", content=content, basename="v.txt")
    app.add_url_rule("/v", view_func=view)
    with client.get("/v") as rv:
        assert rv.status_code == 200
        assert rv.data == body
        assert rv.headers["Content-Length"] == str(len(body))
        assert rv.headers["Content-Disposition"] == 'attachment; filename="v.txt"'
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert rv.headers["Accept-Ranges"] == "bytes"
        assert rv.headers["ETag"].startswith('"')
    with client.get("/v", headers={"If-None-Match": rv.headers["ETag"]}) as again:
        assert again.status_code == 304


def test_virtual_content_subclass(app: Flask, client: t.Any) -> None:
    class Hello(VirtualDownloadView):
        content = "hello"
        basename = "hello.txt"

    app.add_url_rule("/v", view_func=Hello.as_view("v"))
    with client.get("/v") as rv:
        assert rv.data == b"hello"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'


def test_virtual_iterator_is_streamed_without_ranges(app: Flask, client: t.Any) -> None:
    class Stream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"one,", "two,", b"three"]), name="s.csv")

    app.add_url_rule("/s", view_func=Stream.as_view("s"))
    with client.get("/s") as rv:
        assert rv.status_code == 200
        assert rv.data == b"one,two,three"
        assert "Accept-Ranges" not in rv.headers
        assert "ETag" not in rv.headers
        assert rv.headers["Content-Type"] == "text/csv; charset=utf-8"
    with client.get("/s", headers={"Range": "bytes=0-2"}) as rv:
        assert rv.status_code == 200
        assert rv.data == b"one,two,three"
        assert "Content-Range" not in rv.headers


def test_virtual_iterator_with_given_etag(app: Flask, client: t.Any) -> None:
    class Stream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"abc"]), name="s.bin", etag="fixed", size=3)

    app.add_url_rule("/s", view_func=Stream.as_view("s"))
    with client.get("/s") as rv:
        assert rv.headers["ETag"] == '"fixed"'
        assert rv.headers["Content-Length"] == "3"
        assert "Accept-Ranges" not in rv.headers
        assert rv.data == b"abc"
    with client.get("/s", headers={"If-None-Match": '"fixed"'}) as rv:
        assert rv.status_code == 304


def test_virtual_file_like(app: Flask, client: t.Any) -> None:
    class Stream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(io.BytesIO(b"0123456789"), name="digits.bin")

    app.add_url_rule("/f", view_func=Stream.as_view("f"))
    with client.get("/f") as rv:
        assert rv.status_code == 200
        assert rv.data == b"0123456789"
        assert rv.headers["Content-Length"] == "10"
    with client.get("/f", headers={"Range": "bytes=2-4"}) as rv:
        assert rv.status_code == 206
        assert rv.data == b"234"
        assert rv.headers["Content-Range"] == "bytes 2-4/10"


def test_virtual_non_seekable_file_like(app: Flask, client: t.Any) -> None:
    class Stream(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(NonSeekableStream(b"piped data"), name="pipe.bin")

    app.add_url_rule("/p", view_func=Stream.as_view("p"))
    with client.get("/p", headers={"Range": "bytes=0-1"}) as rv:
        assert rv.status_code == 200
        assert rv.data == b"piped data"
        assert "Accept-Ranges" not in rv.headers


@pytest.mark.parametrize(
    ("range_header", "status", "body", "content_range"),
    [
        ("bytes=0-4", 206, b"01234", "bytes 0-4/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=8-", 206, b"89", "bytes 8-9/10"),
        ("bytes=20-30", 416, b"", "bytes */10"),
    ],
    ids=["first", "suffix", "open-ended", "unsatisfiable"],
)
def test_virtual_seekable_supports_range(
    app: Flask,
    client: t.Any,
    range_header: str,
    status: int,
    body: bytes,
    content_range: str,
) -> None:
    view = VirtualDownloadView.as_view("r", content=b"0123456789", basename="r.bin")
    app.add_url_rule("/r", view_func=view)
    with client.get("/r", headers={"Range": range_header}) as rv:
        assert rv.status_code == status
        assert rv.data == body
        assert rv.headers["Content-Range"] == content_range


def test_virtual_without_content_is_configuration_error(
    tmp_path: pathlib.Path,
) -> None:
    app = plain_app(tmp_path)
    app.add_url_rule("/v", view_func=VirtualDownloadView.as_view("v"))
    with pytest.raises(ConfigurationError):
        app.test_client().get("/v")


# -- without FlaskDownload --------------------------------------------------


def test_views_work_without_extension(
    tmp_path: pathlib.Path, download_root: pathlib.Path
) -> None:
    app = plain_app(tmp_path)
    content = bytes(range(256)) * 300  # larger than one default chunk
    app.add_url_rule(
        "/v", view_func=VirtualDownloadView.as_view("v", content=content, basename="b")
    )
    path = os.fspath(download_root / "hello.txt")
    app.add_url_rule("/p", view_func=PathDownloadView.as_view("p", path=path))
    client = app.test_client()
    with client.get("/v", buffered=False) as rv:
        assert rv.status_code == 200
        first = next(iter(rv.response))
        assert len(first) == 64 * 1024
    with client.get("/v") as rv:
        assert rv.data == content
        assert "max-age" not in rv.headers.get("Cache-Control", "")
    with client.get("/p") as rv:
        assert rv.status_code == 200
        assert rv.data == SAMPLE_FILES["hello.txt"]
    assert "download" not in app.extensions


def test_views_without_extension_read_app_config(tmp_path: pathlib.Path) -> None:
    app = plain_app(tmp_path, DOWNLOAD_CACHE_MAX_AGE=120, DOWNLOAD_CHUNK_SIZE=4)
    view = VirtualDownloadView.as_view("v", content=b"0123456789", basename="d.bin")
    app.add_url_rule("/v", view_func=view)
    with app.test_client().get("/v", buffered=False) as rv:
        assert rv.headers["Cache-Control"] == "max-age=120"
        assert next(iter(rv.response)) == b"0123"


# -- files are closed on every path -----------------------------------------


def make_closing_view(kind: str, root: pathlib.Path, files: list[t.Any]) -> t.Any:
    class Closing(DownloadView):
        def get_file(self) -> DownloadFile:
            file: t.Any
            if kind == "path":
                file = RecordingPathFile(root / "data.bin")
            elif kind == "bytesio":
                stream = RecordingBytesIO(SAMPLE_FILES["data.bin"])
                file = VirtualFile(
                    stream, name="data.bin", etag="tag", modified_time=MODIFIED
                )
                file.stream = stream
            else:
                file = RecordingFile(
                    SAMPLE_FILES["data.bin"], name="data.bin", modified_time=MODIFIED
                )
            files.append(file)
            return file

    return Closing.as_view("closing", chunk_size=16)


def assert_closed(file: t.Any) -> None:
    if isinstance(file, RecordingPathFile):
        assert file.close_calls >= 1
        assert all(handle.closed for handle in file.handles)
    elif isinstance(file, RecordingFile):
        assert file.close_calls >= 1
    else:
        assert file.stream.close_calls >= 1
        assert file.stream.closed


def request_for(case: str, etag: str) -> dict[str, t.Any]:
    if case == "304":
        return {"headers": {"If-None-Match": etag}}
    if case == "412":
        return {"headers": {"If-Match": '"other"'}}
    if case == "416":
        return {"headers": {"Range": "bytes=5000-6000"}}
    if case == "range":
        return {"headers": {"Range": "bytes=10-19"}}
    if case == "multirange":
        return {"headers": {"Range": "bytes=0-1,10-19"}}
    return {}


@pytest.mark.parametrize("kind", ["path", "bytesio", "virtual"])
@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("full", 200),
        ("304", 304),
        ("412", 412),
        ("416", 416),
        ("range", 206),
        ("multirange", 206),
        ("head", 200),
    ],
    ids=["full", "304", "412", "416", "range", "multirange", "head"],
)
def test_file_is_closed(
    app: Flask,
    client: t.Any,
    download_root: pathlib.Path,
    kind: str,
    case: str,
    status: int,
) -> None:
    files: list[t.Any] = []
    app.add_url_rule("/c", view_func=make_closing_view(kind, download_root, files))
    with client.head("/c") as rv:
        etag = rv.headers["ETag"]
    files.clear()
    method = client.head if case == "head" else client.get
    with method("/c", **request_for(case, etag)) as rv:
        assert rv.status_code == status
        if case == "full":
            assert rv.data == SAMPLE_FILES["data.bin"]
        if case in ("304", "412", "416", "head"):
            assert rv.data == b""
    assert len(files) == 1
    assert_closed(files[0])


@pytest.mark.parametrize("kind", ["path", "bytesio", "virtual"])
def test_file_is_closed_when_client_hangs_up(
    app: Flask, client: t.Any, download_root: pathlib.Path, kind: str
) -> None:
    files: list[t.Any] = []
    app.add_url_rule("/c", view_func=make_closing_view(kind, download_root, files))
    rv = client.get("/c", buffered=False)
    try:
        assert rv.status_code == 200
        first = next(iter(rv.response))
        assert first == SAMPLE_FILES["data.bin"][:16]
    finally:
        rv.close()
    assert len(files) == 1
    assert_closed(files[0])


def test_iterator_with_close_is_closed(app: Flask, client: t.Any) -> None:
    closed: list[bool] = []

    def generate() -> cabc.Generator[bytes, None, None]:
        try:
            yield b"a" * 10
            yield b"b" * 10
        finally:
            closed.append(True)

    class Stream(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(generate(), name="g.bin")

    app.add_url_rule("/g", view_func=Stream.as_view("g"))
    rv = client.get("/g", buffered=False)
    try:
        assert next(iter(rv.response)) == b"a" * 10
    finally:
        rv.close()
    assert closed == [True]


# -- render_to_response hooks -------------------------------------------------


def test_file_response_answers_early_and_closes_the_file(
    app: Flask, client: t.Any
) -> None:
    files: list[RecordingFile] = []
    seen: list[DownloadFile] = []

    class Elsewhere(DownloadView):
        def get_file(self) -> DownloadFile:
            files.append(RecordingFile(b"data", name="d.bin"))
            return files[-1]

        def file_response(self, file: DownloadFile) -> Response | None:
            seen.append(file)
            return Response(b"", status=302, headers={"Location": "/elsewhere"})

    app.add_url_rule("/e", view_func=Elsewhere.as_view("e"))
    # An early answer wins over preconditions.
    with client.get("/e", headers={"If-Match": '"other"'}) as rv:
        assert rv.status_code == 302
        assert rv.headers["Location"] == "/elsewhere"
    assert len(files) == 1
    assert seen == files
    assert files[0].close_calls == 1


def test_file_response_none_goes_on_with_the_download(
    app: Flask, client: t.Any
) -> None:
    class Passing(VirtualDownloadView):
        content = b"data"

        def file_response(self, file: DownloadFile) -> Response | None:
            return super().file_response(file)

    app.add_url_rule("/p", view_func=Passing.as_view("p"))
    with client.get("/p") as rv:
        assert rv.status_code == 200
        assert rv.data == b"data"


@pytest.mark.parametrize(
    ("decision", "status"),
    [(conditional.NOT_MODIFIED, 304), (conditional.PRECONDITION_FAILED, 412)],
    ids=["not-modified", "precondition-failed"],
)
def test_evaluate_preconditions_override_decides(
    app: Flask, client: t.Any, decision: int, status: int
) -> None:
    files: list[RecordingFile] = []

    class Decided(DownloadView):
        cache_control = "private, max-age=5"

        def get_file(self) -> DownloadFile:
            files.append(RecordingFile(b"data", name="d.bin", modified_time=MODIFIED))
            return files[-1]

        def evaluate_preconditions(self, file: DownloadFile) -> int | None:
            assert file is files[-1]
            return decision

    app.add_url_rule("/d", view_func=Decided.as_view("d"))
    # No conditional header at all: the override alone decides.
    with client.get("/d") as rv:
        assert rv.status_code == status
        assert rv.data == b""
        if status == 304:
            assert rv.headers["ETag"] == f'"{files[0].etag}"'
            assert rv.headers["Last-Modified"] == MODIFIED_DATE
            assert rv.headers["Cache-Control"] == "private, max-age=5"
    assert len(files) == 1
    assert files[0].close_calls >= 1


def test_evaluate_preconditions_default_reads_the_request(app: Flask) -> None:
    view = DownloadMixin()
    file = VirtualFile(b"data", name="d.bin", etag="v1")
    with app.test_request_context("/", headers={"If-None-Match": '"v1"'}):
        assert view.evaluate_preconditions(file) == conditional.NOT_MODIFIED
    with app.test_request_context("/", headers={"If-Match": '"v2"'}):
        assert view.evaluate_preconditions(file) == conditional.PRECONDITION_FAILED
    with app.test_request_context("/"):
        assert view.evaluate_preconditions(file) is None


@pytest.mark.parametrize("kind", ["view", "mixin"])
def test_signature_is_checked_once_per_request(
    app: Flask, client: t.Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        "flask_download.views._base.check_signature", lambda: calls.append(kind)
    )

    class Signed(VirtualDownloadView):
        content = b"signed"
        signed = True

    class SignedMixin(DownloadMixin):
        signed = True

        def get_file(self) -> DownloadFile:
            return VirtualFile(b"signed", name="s.bin")

    if kind == "view":
        app.add_url_rule("/s", view_func=Signed.as_view("s"))
    else:
        app.add_url_rule("/s", "s", lambda: SignedMixin().render_to_response())
    with client.get("/s") as rv:
        assert rv.status_code == 200
        assert rv.data == b"signed"
    assert calls == [kind]


class _AsyncApp(Flask):
    """Runs coroutine views with asyncio (Flask's default needs asgiref)."""

    def async_to_sync(self, func: t.Any) -> t.Any:
        import asyncio

        return lambda *args, **kwargs: asyncio.run(func(*args, **kwargs))


def test_async_get_runs_through_ensure_sync(tmp_path: pathlib.Path) -> None:
    """Issue 16: plain methods skip ensure_sync, coroutines still use it."""

    class AsyncView(VirtualDownloadView):
        content = b"from a coroutine"

        async def get(self, **kwargs: t.Any) -> Response:
            return self.render_to_response()

    app = _AsyncApp("async_app", root_path=os.fspath(tmp_path))
    app.add_url_rule("/a", view_func=AsyncView.as_view("a"))
    with app.test_client().get("/a") as rv:
        assert rv.status_code == 200
        assert rv.data == b"from a coroutine"


def test_overridden_ensure_sync_is_honoured(tmp_path: pathlib.Path) -> None:
    """Issue 16: an application that overrides ensure_sync sees every call."""
    seen: list[str] = []

    class CountingApp(Flask):
        def ensure_sync(self, func: t.Any) -> t.Any:
            seen.append(func.__name__)
            return super().ensure_sync(func)

    app = CountingApp("counting_app", root_path=os.fspath(tmp_path))
    app.add_url_rule(
        "/v", view_func=VirtualDownloadView.as_view("v", content=b"x", basename="x")
    )
    with app.test_client().get("/v") as rv:
        assert rv.status_code == 200
    assert seen == ["v", "dispatch_request", "get"]


def test_as_view_function_uses_its_view_class(tmp_path: pathlib.Path) -> None:
    """Issue 16: the view function keeps Flask's attributes, and a replaced
    ``view_class`` (as Flask allows for tests) is the one instantiated."""

    class Other(VirtualDownloadView):
        content = b"other"

    app = plain_app(tmp_path)
    view = VirtualDownloadView.as_view("v", basename="v.bin")
    assert view.view_class is VirtualDownloadView  # type: ignore[attr-defined]
    assert view.__name__ == "v"
    assert view.methods == VirtualDownloadView.methods  # type: ignore[attr-defined]
    view.view_class = Other  # type: ignore[attr-defined]
    app.add_url_rule("/v", view_func=view)
    with app.test_client().get("/v") as rv:
        assert rv.data == b"other"
        assert 'filename="v.bin"' in rv.headers["Content-Disposition"]
    with app.test_client().head("/v") as rv:
        assert rv.status_code == 200
        assert rv.data == b""


@pytest.mark.parametrize("via", ["view", "send_download"])
def test_text_is_encoded_in_the_charset_its_mimetype_names(
    app: Flask, client: t.Any, via: str
) -> None:
    """Outside review: ``mimetype="text/plain; charset=latin-1"`` was
    announced while the text went out in UTF-8."""
    from flask_download import send_download

    mimetype = "text/plain; charset=latin-1"
    if via == "view":
        view = VirtualDownloadView.as_view(
            "v", content="café", basename="a.txt", mimetype=mimetype
        )
        app.add_url_rule("/t", view_func=view)
    else:

        @app.get("/t")
        def text() -> Response:
            return send_download(
                io.StringIO("café"), download_name="a.txt", mimetype=mimetype
            )

    with client.get("/t") as rv:
        assert rv.headers["Content-Type"] == mimetype
        assert rv.data == "café".encode("latin-1")
        assert rv.headers["Content-Length"] == "4"


def test_bytes_with_a_charset_no_codec_knows_are_sent_as_they_are(
    app: Flask, client: t.Any
) -> None:
    """Review: the mimetype's charset, passed to VirtualFile, made bytes
    content a 500 when Python knows no such codec."""
    from flask_download import send_download

    mimetype = "text/plain; charset=x-user-defined"
    app.add_url_rule(
        "/v",
        view_func=VirtualDownloadView.as_view(
            "v", content=b"abc", basename="x.txt", mimetype=mimetype
        ),
    )

    @app.get("/s")
    def sent() -> Response:
        return send_download(b"abc", download_name="x.txt", mimetype=mimetype)

    for url in ("/v", "/s"):
        with client.get(url) as rv:
            assert rv.status_code == 200
            assert rv.headers["Content-Type"] == mimetype
            assert rv.data == b"abc"


def test_text_in_another_encoding_is_announced_whatever_the_type(
    app: Flask, client: t.Any
) -> None:
    """Review: Latin-1 text of an XML file went out as ``application/xml``
    with no charset (read as UTF-8)."""
    app.add_url_rule(
        "/x",
        view_func=VirtualDownloadView.as_view(
            "x", content="<a>é</a>", basename="x.xml", charset="latin-1"
        ),
    )
    with client.get("/x") as rv:
        assert rv.headers["Content-Type"] == "application/xml; charset=latin-1"
        assert rv.data == "<a>é</a>".encode("latin-1")


def test_the_mimetype_charset_wins_for_text_content_as_for_files(
    app: Flask, client: t.Any
) -> None:
    app.add_url_rule(
        "/c",
        view_func=VirtualDownloadView.as_view(
            "c",
            content="é",
            basename="x.txt",
            mimetype="text/plain; charset=iso-8859-1",
            charset="utf-16",
        ),
    )
    with client.get("/c") as rv:
        assert rv.headers["Content-Type"] == "text/plain; charset=iso-8859-1"
        assert rv.data == "é".encode("iso-8859-1")
