"""Audit 4: the mixin API, views, the extension, blueprints and VirtualFile."""

from __future__ import annotations

import datetime
import pickle
import subprocess
import sys
import textwrap
import threading
import typing as t

import pytest
from flask import Flask
from flask import Response

import flask_download
from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import DownloadMixin
from flask_download import FileNotFound
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.testing import assert_download_response

# -- as_view: the view-function attributes Flask reads from the class ---------


def _deny(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    def wrapper(**kwargs: t.Any) -> Response:
        return Response("denied", status=403)

    return wrapper


def test_as_view_decorators_keyword_is_applied() -> None:
    """``as_view(name, decorators=[login_required])`` was accepted (it is a
    class attribute) and then silently ignored: the view was served to
    anyone."""
    app = Flask(__name__)
    view = VirtualDownloadView.as_view(
        "guarded", content="secret", basename="s.txt", decorators=[_deny]
    )
    app.add_url_rule("/guarded", view_func=view)
    with app.test_client().get("/guarded") as rv:
        assert rv.status_code == 403
        assert rv.data == b"denied"
    assert VirtualDownloadView.decorators == []


def test_as_view_decorators_keyword_wins_over_the_class_attribute() -> None:
    class Guarded(VirtualDownloadView):
        decorators = [_deny]
        content = "open"

    app = Flask(__name__)
    app.add_url_rule("/open", view_func=Guarded.as_view("open", decorators=[]))
    app.add_url_rule("/closed", view_func=Guarded.as_view("closed"))
    client = app.test_client()
    with client.get("/open") as rv:
        assert_download_response(rv, content="open")
    with client.get("/closed") as rv:
        assert rv.status_code == 403


def test_as_view_methods_and_automatic_options_keywords_are_applied() -> None:
    view = VirtualDownloadView.as_view(
        "v", content="x", methods=["GET"], provide_automatic_options=False
    )
    assert view.methods == ["GET"]  # type: ignore[attr-defined]
    assert view.provide_automatic_options is False  # type: ignore[attr-defined]
    app = Flask(__name__)
    app.add_url_rule("/v", view_func=view)
    with app.test_client().options("/v") as rv:
        assert rv.status_code == 405
    with app.test_client().head("/v") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == "1"


class _PerUser(VirtualDownloadView):
    """Waits until two requests are both inside get_file, then reads the URL."""

    init_every_request = False
    inits = 0
    barrier: threading.Barrier

    def __init__(self, **attrs: t.Any) -> None:
        super().__init__(**attrs)
        type(self).inits += 1

    def get_file(self) -> DownloadFile:
        self.barrier.wait()
        return VirtualFile(f"file of {self.kwargs['user']}", name="f.txt")


@pytest.mark.parametrize("decorated", [False, True], ids=["plain", "decorated"])
def test_init_every_request_false_never_mixes_two_requests(decorated: bool) -> None:
    """With ``init_every_request = False`` Flask shares one view instance
    between requests, but the mixin keeps the URL variables and the file on
    ``self``: two concurrent requests served one user's file to the other."""
    _PerUser.inits = 0
    _PerUser.barrier = threading.Barrier(2, timeout=10)
    app = Flask(__name__)
    decorators = [lambda view: view] if decorated else []
    app.add_url_rule(
        "/<user>", view_func=_PerUser.as_view("per_user", decorators=decorators)
    )
    assert _PerUser.inits == 1  # made once, at as_view time, as Flask does
    bodies: dict[str, bytes] = {}

    def fetch(user: str) -> None:
        with app.test_client().get(f"/{user}") as rv:
            bodies[user] = rv.data

    threads = [threading.Thread(target=fetch, args=(u,)) for u in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bodies == {"alice": b"file of alice", "bob": b"file of bob"}
    assert _PerUser.inits == 1


# -- optional dependencies ------------------------------------------------------

_BLOCK_EXTRAS = """\
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {
            "sqlalchemy", "flask_sqlalchemy", "fsspec", "botocore",
            "cryptography", "urllib3",
        }:
            raise ImportError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Block())
"""


def _run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    source = _BLOCK_EXTRAS + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_model_blueprint_without_sqlalchemy_names_the_extra() -> None:
    """make_download_blueprint(model=...) raised a bare "No module named
    'sqlalchemy'" instead of naming the extra to install."""
    done = _run_without_extras(
        """
        from flask_download import make_download_blueprint

        class Document:
            __tablename__ = "documents"
            file = "file"

        try:
            make_download_blueprint("docs", model=Document)
        except ImportError as e:
            print(e)
        """
    )
    assert "pip install 'Flask-Download[sqlalchemy]'" in done.stdout, done.stderr


# -- VirtualFile refuses what it cannot send, when it is made ------------------


@pytest.mark.parametrize(
    "content", [None, 5, 1.5, object()], ids=["none", "int", "float", "object"]
)
def test_virtual_file_refuses_content_it_cannot_send(content: t.Any) -> None:
    with pytest.raises(TypeError, match="VirtualFile content must be"):
        VirtualFile(content, name="x.bin")


@pytest.mark.parametrize(
    ("size", "error"),
    [("3", TypeError), (True, TypeError), (3.0, TypeError), (-1, ConfigurationError)],
    ids=["str", "bool", "float", "negative"],
)
def test_virtual_file_refuses_a_size_that_is_not_a_byte_count(
    size: t.Any, error: type[Exception]
) -> None:
    """``size=-1`` went out as ``Content-Length: -1``, ``size=True`` as
    ``Content-Length: True``."""
    with pytest.raises(error, match="VirtualFile size"):
        VirtualFile(iter([b"abc"]), name="x.bin", size=size)


@pytest.mark.parametrize(
    "modified_time", ["2024-01-01", 1_700_000_000, datetime.date(2024, 1, 1)]
)
def test_virtual_file_refuses_a_modified_time_that_is_not_a_datetime(
    modified_time: t.Any,
) -> None:
    with pytest.raises(TypeError, match="VirtualFile modified_time"):
        VirtualFile(b"abc", modified_time=modified_time)


def test_virtual_file_with_bad_size_is_a_clean_500_from_the_view() -> None:
    """The error is raised inside the view, before any header is sent."""

    class Bad(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"abc"]), name="x.bin", size=-1)

    app = Flask(__name__)
    app.add_url_rule("/bad", view_func=Bad.as_view("bad"))
    with app.test_client().get("/bad") as rv:
        assert rv.status_code == 500
        assert "Content-Disposition" not in rv.headers


def test_virtual_file_zero_size_and_empty_content_still_work() -> None:
    app = Flask(__name__)

    class Empty(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([]), name="e.bin", size=0)

    app.add_url_rule("/e", view_func=Empty.as_view("e"))
    app.add_url_rule(
        "/b", view_func=VirtualDownloadView.as_view("b", content=b"", basename="b")
    )
    client = app.test_client()
    for url in ("/e", "/b"):
        with client.get(url) as rv:
            assert_download_response(rv, content=b"")
            assert rv.headers["Content-Length"] == "0"


def test_path_view_keeps_working_with_init_every_request_false(
    download_root: t.Any,
) -> None:
    class Shared(PathDownloadView):
        init_every_request = False

    app = Flask(__name__)
    app.add_url_rule(
        "/f/<path:path>", view_func=Shared.as_view("f", root=str(download_root))
    )
    client = app.test_client()
    with client.get("/f/hello.txt") as rv:
        assert_download_response(rv, content=b"Hello, world!\n", basename="hello.txt")
    with client.get("/f/sub/nested.txt") as rv:
        assert_download_response(rv, content=b"nested\n", basename="nested.txt")


def test_as_view_keyword_for_a_read_only_property_is_a_type_error() -> None:
    """It was accepted, then every request failed with a 500."""

    class Computed(VirtualDownloadView):
        content = "x"

        @property
        def basename(self) -> str:  # type: ignore[override]
            return "computed.txt"

    with pytest.raises(TypeError, match="property without a setter"):
        Computed.as_view("computed", basename="given.txt")
    assert Computed.as_view("computed") is not None


def test_as_view_positional_argument_is_a_type_error() -> None:
    """``as_view("name", "x")`` was accepted, then every request failed."""
    with pytest.raises(TypeError, match="keywords only"):
        VirtualDownloadView.as_view("v", "stray", content="x")


def test_as_view_positional_arguments_a_subclass_takes_still_work() -> None:
    class Greeting(VirtualDownloadView):
        def __init__(self, greeting: str, **attrs: t.Any) -> None:
            super().__init__(**attrs)
            self.greeting = greeting

        def get_file(self) -> DownloadFile:
            return VirtualFile(self.greeting, name="g.txt")

    app = Flask(__name__)
    app.add_url_rule("/g", view_func=Greeting.as_view("g", "hello", attachment=False))
    with app.test_client().get("/g") as rv:
        assert_download_response(rv, content="hello", attachment=False)


# -- FileNotFound and was_modified_since ----------------------------------------


class _Missing(VirtualDownloadView):
    def get_file(self) -> DownloadFile:
        raise FileNotFound(self.kwargs["name"])


class _CheckFirst(_Missing):
    """Ports of Django code check the file in get() before serving it."""

    def get(self, **kwargs: t.Any) -> Response:
        self.get_file()
        return super().get(**kwargs)


class _CheckFirstCustom(_CheckFirst):
    def file_not_found_response(self) -> Response:
        return Response(f"no {self.kwargs['name']}", status=410)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_file_not_found_raised_in_an_overridden_get_is_a_404(method: str) -> None:
    """It was a 500: only render_to_response answered FileNotFound."""
    app = Flask(__name__)
    app.add_url_rule("/a/<name>", view_func=_CheckFirst.as_view("a"))
    app.add_url_rule("/b/<name>", view_func=_CheckFirstCustom.as_view("b"))
    client = app.test_client()
    with client.open("/a/x.txt", method=method) as rv:
        assert rv.status_code == 404
    with client.open("/b/x.txt", method=method) as rv:
        assert rv.status_code == 410
        if method == "GET":
            assert rv.data == b"no x.txt"


def _file_modified_at(modified: datetime.datetime) -> DownloadFile:
    file = DownloadFile()
    file.modified_time = modified
    return file


@pytest.mark.parametrize(
    ("modified", "since", "expected"),
    [
        # Fractions are dropped, before 1970 too (int() rounded them up there).
        (
            datetime.datetime(1969, 12, 31, 23, 59, 59, 500_000),
            (1969, 12, 31, 23, 59, 59),
            False,
        ),
        (
            datetime.datetime(1969, 12, 31, 23, 59, 58, 500_000),
            (1969, 12, 31, 23, 59, 59),
            False,
        ),
        (
            datetime.datetime(1970, 1, 1, 0, 0, 0, 500_000),
            (1969, 12, 31, 23, 59, 59),
            True,
        ),
        (
            datetime.datetime(2024, 5, 17, 12, 30, 45, 999_999),
            (2024, 5, 17, 12, 30, 45),
            False,
        ),
        (datetime.datetime(2024, 5, 17, 12, 30, 46), (2024, 5, 17, 12, 30, 45), True),
    ],
    ids=[
        "pre-1970-same-second",
        "pre-1970-earlier",
        "epoch-later",
        "fraction",
        "later",
    ],
)
def test_was_modified_since_compares_whole_seconds(
    modified: datetime.datetime, since: tuple[int, ...], expected: bool
) -> None:
    since_dt = datetime.datetime(*since, tzinfo=datetime.timezone.utc)
    file = _file_modified_at(modified.replace(tzinfo=datetime.timezone.utc))
    assert DownloadMixin().was_modified_since(file, since_dt) is expected


# -- exceptions ---------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        flask_download.UpstreamError,
        flask_download.UpstreamTimeout,
        flask_download.DisallowedURL,
        flask_download.StorageUnavailable,
    ],
)
def test_exceptions_with_a_detail_survive_pickling(error: type[Exception]) -> None:
    """They failed to unpickle (``__init__() missing 'detail'``), as when a
    worker process or a task queue hands one back."""
    raised = error("connect to 10.0.0.1:443 refused")  # type: ignore[call-arg]
    copy = pickle.loads(pickle.dumps(raised))
    assert type(copy) is error
    assert copy.detail == "connect to 10.0.0.1:443 refused"  # type: ignore[attr-defined]
    assert copy.code == raised.code  # type: ignore[attr-defined]
    # The detail is for logs, never for the client.
    assert "10.0.0.1" not in copy.get_body()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "error", [flask_download.InvalidSignature, flask_download.SignatureExpired]
)
def test_signature_exceptions_survive_pickling(error: type[Exception]) -> None:
    assert type(pickle.loads(pickle.dumps(error()))) is error


def test_get_file_returning_none_says_so() -> None:
    """A get_file() that forgot its return failed with "'NoneType' object
    has no attribute 'etag'"."""

    class Forgot(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            VirtualFile("x")  # no return
            return None  # type: ignore[return-value]

    app = Flask(__name__)
    app.add_url_rule("/f", view_func=Forgot.as_view("f"))
    with (
        app.test_request_context("/f"),
        pytest.raises(TypeError, match=r"Forgot.get_file\(\) returned None"),
    ):
        Forgot().render_to_response()
