"""``send_download``: a rename of ``flask.send_file`` that keeps its meaning.

The first part restates the behaviour-level checks of Werkzeug's
``tests/test_send_file.py`` and Flask's ``TestSendfile`` against
``send_download`` (where the answer differs on purpose, the test says why).
The second part checks the RFC 9110 points Werkzeug's ``make_conditional``
gets wrong; the third that the views' engine (offload, signals, HEAD) is
the one answering.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import io
import os
import pathlib
import time
import typing as t
import urllib.request

import flask
import pytest
from flask import Flask
from werkzeug.http import http_date
from werkzeug.http import parse_date

from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import DownloadResponse
from flask_download import FlaskDownload
from flask_download import offload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import send_download
from flask_download import VirtualFile
from flask_download.response import _download
from flask_download.signals import download_finished
from flask_download.signals import download_started

HTML = b"<!doctype html>\n<title>index</title>\n"
TEXT = b"FOUND\n"


@pytest.fixture
def res(tmp_path: pathlib.Path) -> pathlib.Path:
    """The application's root_path, with a static/ and a res/ directory."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_bytes(HTML)
    (tmp_path / "static" / "hello.txt").write_bytes(b"Hello Subdomain\n")
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "index.html").write_bytes(HTML)
    (tmp_path / "res" / "test.txt").write_bytes(TEXT)
    (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
    return tmp_path


@pytest.fixture
def send_app(res: pathlib.Path) -> Flask:
    app = Flask("send_app", root_path=os.fspath(res))
    app.config["TESTING"] = True
    return app


Call = cabc.Callable[..., t.Any]


def answer(
    app: Flask,
    make: Call,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> t.Any:
    """Request ``/send`` once, answered by ``make`` (a function view)."""
    if "send" not in app.view_functions:
        app.add_url_rule(
            "/send",
            "send",
            lambda: app.extensions["test_send"](),
            methods=["GET", "HEAD"],
        )
    app.extensions["test_send"] = make
    with app.test_client().open("/send", method=method, headers=headers) as rv:
        rv.get_data()
    return rv


# -- Werkzeug's and Flask's send_file tests, ported ---------------------------


@pytest.mark.parametrize("kind", [str, pathlib.Path], ids=["str", "pathlike"])
def test_path_is_sent_with_a_guessed_type(
    send_app: Flask, res: pathlib.Path, kind: Call
) -> None:
    rv = answer(send_app, lambda: send_download(kind(res / "res" / "index.html")))
    assert rv.status_code == 200
    assert rv.mimetype == "text/html"
    assert rv.data == HTML


def test_relative_path_is_relative_to_the_app_root_path(send_app: Flask) -> None:
    """Flask: send_file("static/index.html") reads below app.root_path,
    whatever the working directory."""
    assert not os.path.exists("static/index.html")
    rv = answer(send_app, lambda: send_download("static/index.html"))
    assert rv.data == HTML
    assert rv.mimetype == "text/html"


def test_response_is_passed_through(send_app: Flask) -> None:
    with send_app.test_request_context():
        rv = send_download("static/index.html")
        assert rv.direct_passthrough
        rv.close()


def test_last_modified_is_sent(send_app: Flask) -> None:
    when = datetime.datetime(1999, 1, 1, tzinfo=datetime.timezone.utc)
    rv = answer(send_app, lambda: send_download("res/test.txt", last_modified=when))
    assert rv.last_modified == when
    stamp = answer(
        send_app, lambda: send_download("res/test.txt", last_modified=when.timestamp())
    )
    assert stamp.last_modified == when


@pytest.mark.parametrize(
    "factory",
    [lambda res: (res / "res" / "test.txt").open("rb"), lambda res: io.BytesIO(TEXT)],
    ids=["file", "bytesio"],
)
def test_binary_object_with_mimetype(
    send_app: Flask, res: pathlib.Path, factory: Call
) -> None:
    handles: list[t.Any] = []

    def view() -> t.Any:
        handles.append(factory(res))
        return send_download(handles[-1], mimetype="text/plain")

    rv = answer(send_app, view)
    assert rv.data == TEXT
    assert rv.mimetype == "text/plain"
    assert handles[0].closed  # closed with the response, as send_file does


def test_object_without_mimetype_is_octet_stream(send_app: Flask) -> None:
    """Werkzeug raises TypeError; DESIGN §3 defaults to application/octet-stream."""
    rv = answer(send_app, lambda: send_download(io.BytesIO(b"test")))
    assert rv.mimetype == "application/octet-stream"
    assert rv.data == b"test"


def test_object_mimetype_from_download_name(send_app: Flask) -> None:
    rv = answer(
        send_app, lambda: send_download(io.BytesIO(b"test"), download_name="test.txt")
    )
    assert rv.mimetype == "text/plain"
    assert rv.headers["Content-Disposition"] == 'attachment; filename="test.txt"'


@pytest.mark.parametrize(
    "factory",
    [
        lambda res: (res / "res" / "test.txt").open(encoding="utf-8"),
        lambda res: io.StringIO("FOUND\n"),
    ],
    ids=["text-mode-file", "stringio"],
)
def test_text_object_is_encoded(
    send_app: Flask, res: pathlib.Path, factory: Call
) -> None:
    """Werkzeug refuses text mode (ValueError); DESIGN §3 encodes it."""
    handles: list[t.Any] = []

    def view() -> t.Any:
        handles.append(factory(res))
        return send_download(handles[-1], mimetype="text/plain")

    rv = answer(send_app, view)
    assert rv.data == TEXT
    assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
    handles[0].close()


def test_text_object_uses_the_charset(send_app: Flask) -> None:
    rv = answer(
        send_app,
        lambda: send_download(
            io.StringIO("Un été"), download_name="t.txt", charset="latin-1"
        ),
    )
    assert rv.headers["Content-Type"] == "text/plain; charset=latin-1"
    assert rv.data == "Un été".encode("latin-1")
    assert rv.headers["Content-Length"] == "6"


@pytest.mark.parametrize(
    ("keywords", "value"),
    [
        ({"as_attachment": False}, "inline"),
        ({"as_attachment": True}, "attachment"),
        ({"attachment": False}, "inline"),
        ({}, "attachment"),
    ],
    ids=["as_attachment-false", "as_attachment-true", "attachment-false", "default"],
)
def test_disposition_and_name(
    send_app: Flask, keywords: dict[str, t.Any], value: str
) -> None:
    """The default is DESIGN §7's attachment (send_file's is inline)."""
    rv = answer(send_app, lambda: send_download("res/test.txt", **keywords))
    assert rv.headers["Content-Disposition"] == f'{value}; filename="test.txt"'


def test_object_attachment_without_a_name(send_app: Flask) -> None:
    """Werkzeug raises TypeError; a nameless attachment is valid (RFC 6266)."""
    rv = answer(
        send_app,
        lambda: send_download(io.BytesIO(b"test"), as_attachment=True),
    )
    assert rv.headers["Content-Disposition"] == "attachment"
    named = answer(
        send_app,
        lambda: send_download(
            io.BytesIO(b"test"), as_attachment=True, download_name="test.txt"
        ),
    )
    assert named.headers["Content-Disposition"] == 'attachment; filename="test.txt"'


@pytest.mark.parametrize(
    ("name", "utf8"),
    [
        ("index.html", None),
        ("Ñandú／pingüino.txt", "%C3%91and%C3%BA%EF%BC%8Fping%C3%BCino.txt"),
        ("Vögel.txt", "V%C3%B6gel.txt"),
        ("те:/ст", "%D1%82%D0%B5%3A%2F%D1%81%D1%82"),
        ("(тест.txt", "%28%D1%82%D0%B5%D1%81%D1%82.txt"),
        ("(test.txt", None),
    ],
)
def test_non_ascii_name(send_app: Flask, name: str, utf8: str | None) -> None:
    rv = answer(send_app, lambda: send_download("res/index.html", download_name=name))
    value = rv.headers["Content-Disposition"]
    fallback = value.split("filename=", 1)[1].split(";", 1)[0]
    assert fallback.isascii()
    assert fallback.strip('"')
    if utf8 is None:
        assert fallback == f'"{name}"'
        assert "filename*" not in value
    else:
        assert value.endswith(f"filename*=UTF-8''{utf8}")


def test_not_modified_keeps_no_cache(send_app: Flask) -> None:
    rv = answer(
        send_app,
        lambda: send_download(
            "res/test.txt", last_modified=datetime.datetime(2020, 7, 11)
        ),
        headers={"If-Modified-Since": http_date(datetime.datetime(2020, 7, 12))},
    )
    assert rv.status_code == 304
    assert rv.headers["Cache-Control"] == "no-cache"
    assert not rv.cache_control.public
    assert rv.cache_control.max_age is None
    assert rv.data == b""


def _expires_in(rv: t.Any) -> float | None:
    """Seconds from now to the response's ``Expires``, or ``None`` without one."""
    if "Expires" not in rv.headers:
        return None
    expires = parse_date(rv.headers["Expires"])
    assert expires is not None
    return expires.timestamp() - time.time()


# Each pair answers the same request with flask.send_file (or
# send_from_directory) and with send_download; ``max_age`` is added.
SOURCES: dict[str, tuple[Call, Call]] = {
    "path": (
        lambda **kw: flask.send_file("res/test.txt", **kw),
        lambda **kw: send_download("res/test.txt", **kw),
    ),
    "directory": (
        lambda **kw: flask.send_from_directory("res", "test.txt", **kw),
        lambda **kw: send_download("test.txt", root="res", **kw),
    ),
    "file-like": (
        lambda **kw: flask.send_file(io.BytesIO(TEXT), download_name="t.txt", **kw),
        lambda **kw: send_download(io.BytesIO(TEXT), download_name="t.txt", **kw),
    ),
}


@pytest.mark.parametrize(
    ("how", "max_age"),
    [
        ("argument", None),
        ("argument", 0),
        ("argument", 60),
        ("argument", 1.5),
        ("callable", 30),
        ("callable", None),
        ("SEND_FILE_MAX_AGE_DEFAULT", 120),
        ("SEND_FILE_MAX_AGE_DEFAULT", datetime.timedelta(hours=1)),
    ],
    ids=[
        "none",
        "zero",
        "sixty",
        "float",
        "callable",
        "callable-none",
        "config",
        "config-timedelta",
    ],
)
@pytest.mark.parametrize("source", list(SOURCES))
def test_max_age_as_send_file(
    send_app: Flask, source: str, how: str, max_age: t.Any
) -> None:
    """``max_age`` gives send_file's Cache-Control and Expires, and a callable
    gets what send_file passes it: the path, or None for a file-like object."""
    if how == "SEND_FILE_MAX_AGE_DEFAULT":
        send_app.config["SEND_FILE_MAX_AGE_DEFAULT"] = max_age
    answers = []
    for call in SOURCES[source]:
        seen: list[str | None] = []

        def lifetime(path: str | None, seen: list[str | None] = seen) -> t.Any:
            seen.append(path)
            return max_age

        kwargs: dict[str, t.Any] = {}
        if how == "argument":
            kwargs["max_age"] = max_age
        elif how == "callable":
            kwargs["max_age"] = lifetime
        rv = answer(send_app, lambda call=call, kwargs=kwargs: call(**kwargs))
        assert rv.status_code == 200
        answers.append((rv, seen))
    (theirs, their_args), (ours, our_args) = answers
    expected = theirs.headers.get("Cache-Control")
    if how == "SEND_FILE_MAX_AGE_DEFAULT" and expected is not None:
        # A deliberate difference: a lifetime from that setting (meant for
        # static files) keeps the download out of shared caches.
        expected = expected.replace("public", "private")
    assert ours.headers.get("Cache-Control") == expected
    their_expires, our_expires = _expires_in(theirs), _expires_in(ours)
    assert (our_expires is None) == (their_expires is None)
    if our_expires is not None:
        assert their_expires is not None
        assert abs(our_expires - their_expires) <= 2
    assert our_args == their_args
    assert len(our_args) == (how == "callable")


@pytest.mark.parametrize("max_age", [None, 0, 60], ids=["none", "zero", "sixty"])
@pytest.mark.parametrize("source", ["path", "directory"])
def test_not_modified_has_the_cache_headers_of_send_file(
    send_app: Flask, source: str, max_age: int | None
) -> None:
    """RFC 9110 §15.4.5: the 304 carries the Cache-Control and Expires of the
    200, as send_file's does."""
    answers = []
    for call in SOURCES[source]:
        etag = answer(send_app, lambda call=call: call(max_age=max_age)).headers["ETag"]
        rv = answer(
            send_app,
            lambda call=call: call(max_age=max_age),
            headers={"If-None-Match": etag},
        )
        assert rv.status_code == 304
        answers.append(rv)
    theirs, ours = answers
    assert ours.headers.get("Cache-Control") == theirs.headers.get("Cache-Control")
    assert ("Expires" in ours.headers) == ("Expires" in theirs.headers)


def test_max_age_callable_is_called_once(send_app: Flask) -> None:
    calls: list[str | None] = []

    def lifetime(path: str | None) -> int:
        calls.append(path)
        return 10

    etag = answer(send_app, lambda: send_download("res/test.txt")).headers["ETag"]
    for headers in ({}, {"If-None-Match": etag}):
        calls.clear()
        answer(
            send_app,
            lambda: send_download("res/test.txt", max_age=lifetime),
            headers=headers,
        )
        assert len(calls) == 1


def test_max_age_callable_gets_a_wrappers_path(
    send_app: Flask, res: pathlib.Path
) -> None:
    seen: list[str | None] = []

    def lifetime(path: str | None) -> int:
        seen.append(path)
        return 10

    path = os.fspath(res / "res" / "test.txt")
    answer(send_app, lambda: send_download(PathFile(path), max_age=lifetime))
    answer(send_app, lambda: send_download(VirtualFile(b"x"), max_age=lifetime))
    assert seen == [path, None]


def test_negative_max_age_counts_as_zero(send_app: Flask) -> None:
    """send_file sends ``max-age=-5``, which is not a delta-seconds (RFC 9111
    §1.2.2): send_download sends 0, which means the same (stale at once)."""
    rv = answer(send_app, lambda: send_download("res/test.txt", max_age=-5))
    assert rv.headers["Cache-Control"] == "no-cache, max-age=0"
    expires = _expires_in(rv)
    assert expires is not None
    assert abs(expires) <= 2


def test_max_age_past_the_last_http_date(send_app: Flask) -> None:
    """send_file fails (500) when Expires would pass year 9999."""
    rv = answer(send_app, lambda: send_download("res/test.txt", max_age=10**12))
    assert rv.status_code == 200
    assert rv.headers["Cache-Control"] == f"public, max-age={10**12}"
    assert rv.headers["Expires"] == "Fri, 31 Dec 9999 23:59:59 GMT"


def test_send_file_max_age_default_applies(res: pathlib.Path) -> None:
    """Flask: SEND_FILE_MAX_AGE_DEFAULT and get_send_file_max_age."""
    app = Flask("age", root_path=os.fspath(res))
    assert answer(app, lambda: send_download("static/index.html")).headers[
        "Cache-Control"
    ] == ("no-cache")
    app = Flask("age", root_path=os.fspath(res))
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600
    assert (
        answer(app, lambda: send_download("static/index.html")).cache_control.max_age
        == 3600
    )

    class StaticFileApp(Flask):
        def get_send_file_max_age(self, filename: str | None) -> int | None:
            return 10

    app = StaticFileApp("age", root_path=os.fspath(res))
    assert (
        answer(app, lambda: send_download("static/index.html")).cache_control.max_age
        == 10
    )


def test_cache_max_age_config_wins_over_flask_default(res: pathlib.Path) -> None:
    app = Flask("age", root_path=os.fspath(res))
    app.config.update(SEND_FILE_MAX_AGE_DEFAULT=3600, DOWNLOAD_CACHE_MAX_AGE=5)
    FlaskDownload(app)
    rv = answer(app, lambda: send_download("res/test.txt"))
    assert rv.headers["Cache-Control"] == "max-age=5"
    rv = answer(app, lambda: send_download("res/test.txt", cache_control="private"))
    assert rv.headers["Cache-Control"] == "private"


def test_cache_arguments_precedence(res: pathlib.Path) -> None:
    """cache_control, then cache_max_age, then max_age, then
    DOWNLOAD_CACHE_MAX_AGE, then SEND_FILE_MAX_AGE_DEFAULT."""
    app = Flask("age", root_path=os.fspath(res))
    app.config.update(SEND_FILE_MAX_AGE_DEFAULT=3600, DOWNLOAD_CACHE_MAX_AGE=5)
    FlaskDownload(app)
    cases: list[tuple[dict[str, t.Any], str, bool]] = [
        ({}, "max-age=5", False),
        ({"max_age": 60}, "public, max-age=60", True),
        ({"max_age": 60, "cache_max_age": 10}, "max-age=10", False),
        ({"max_age": 60, "cache_control": "private"}, "private", False),
        ({"cache_max_age": 10, "cache_control": "private"}, "private", False),
    ]
    for kwargs, cache_control, expires in cases:
        rv = answer(app, lambda kwargs=kwargs: send_download("res/test.txt", **kwargs))
        assert rv.headers["Cache-Control"] == cache_control, kwargs
        assert ("Expires" in rv.headers) == expires, kwargs


def test_etag(send_app: Flask) -> None:
    rv = answer(send_app, lambda: send_download("res/test.txt"))
    assert rv.headers["ETag"].startswith('"')
    rv = answer(send_app, lambda: send_download("res/test.txt", etag=False))
    assert "ETag" not in rv.headers
    rv = answer(send_app, lambda: send_download("res/test.txt", etag="unique"))
    assert rv.headers["ETag"] == '"unique"'
    rv = answer(send_app, lambda: send_download("res/test.txt", etag='"quoted"'))
    assert rv.headers["ETag"] == '"quoted"'


@pytest.mark.parametrize(
    "bad", ['a"b', "a\r\nSet-Cookie: x=1", "tab\there", "newline-at-end\n"]
)
def test_etag_that_cannot_go_into_a_header_is_refused(
    send_app: Flask, bad: str
) -> None:
    with send_app.test_request_context(), pytest.raises(ValueError, match="etag"):
        send_download("res/test.txt", etag=bad)


@pytest.mark.parametrize("as_attachment", [True, False])
def test_content_encoding(send_app: Flask, as_attachment: bool) -> None:
    """Inline: image/svg+xml in gzip, as Werkzeug. Attachment: DESIGN §3
    sends the bytes as what they are (application/gzip), where Werkzeug
    labels them image/svg+xml without their encoding."""
    rv = answer(
        send_app,
        lambda: send_download(
            "res/test.txt", download_name="logo.svgz", as_attachment=as_attachment
        ),
    )
    if as_attachment:
        assert rv.mimetype == "application/gzip"
        assert rv.content_encoding is None
    else:
        assert rv.mimetype == "image/svg+xml"
        assert rv.content_encoding == "gzip"


@pytest.mark.parametrize(
    ("directory", "path"),
    [("res", "test.txt"), (pathlib.Path("res"), pathlib.Path("test.txt"))],
    ids=["str", "pathlike"],
)
def test_from_directory(send_app: Flask, directory: t.Any, path: t.Any) -> None:
    rv = answer(send_app, lambda: send_download(path, root=directory))
    assert rv.data == TEXT


def test_from_directory_absolute_root(send_app: Flask, res: pathlib.Path) -> None:
    rv = answer(send_app, lambda: send_download("hello.txt", root=res / "static"))
    assert rv.data == b"Hello Subdomain\n"


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "nothing.txt", "null\x00.txt", "/etc/passwd", "..%2fsecret.txt"],
)
def test_from_directory_not_found(send_app: Flask, path: str) -> None:
    rv = answer(send_app, lambda: send_download(path, root="res"))
    assert rv.status_code == 404
    assert b"TOP SECRET" not in rv.data


@pytest.mark.parametrize(
    "root", ["nothing", "secret.txt", "res/test.txt"], ids=["missing", "file", "nested"]
)
def test_from_directory_root_that_is_no_directory_is_404(
    send_app: Flask, root: str
) -> None:
    """send_from_directory answers 404 when its directory is missing or a
    file; so does send_download, not a configuration error (500)."""
    theirs = answer(send_app, lambda: flask.send_from_directory(root, "test.txt"))
    ours = answer(send_app, lambda: send_download("test.txt", root=root))
    assert theirs.status_code == ours.status_code == 404


def test_from_directory_root_made_after_the_first_request(
    send_app: Flask, res: pathlib.Path
) -> None:
    """A per-user folder that does not exist before the first upload."""

    def view() -> t.Any:
        return send_download("a.txt", root="uploads/7")

    assert answer(send_app, view).status_code == 404
    (res / "uploads" / "7").mkdir(parents=True)
    assert answer(send_app, view).status_code == 404
    (res / "uploads" / "7" / "a.txt").write_bytes(b"uploaded")
    rv = answer(send_app, view)
    assert rv.status_code == 200
    assert rv.data == b"uploaded"


def test_from_directory_empty_root_is_an_error(send_app: Flask) -> None:
    """send_from_directory("", name) serves app.root_path (the application's
    own files): send_download refuses it."""
    with (
        send_app.test_request_context(),
        pytest.raises(ConfigurationError, match="root=''"),
    ):
        send_download("secret.txt", root="")


def test_view_root_that_does_not_exist_stays_a_configuration_error(
    send_app: Flask,
) -> None:
    """Only send_download answers 404 for a missing root; a view's own root
    is configuration, checked at its first use."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        # Checked by as_view or at the first request.
        send_app.add_url_rule(
            "/v/<path:path>", view_func=PathDownloadView.as_view("v", root="nothing")
        )
        send_app.test_client().get("/v/test.txt")


def test_missing_trusted_path_is_404_not_500(send_app: Flask) -> None:
    """send_file raises FileNotFoundError (500); a download view answers 404."""
    rv = answer(send_app, lambda: send_download("res/nothing.txt"))
    assert rv.status_code == 404


def test_bytes_and_download_file_sources(send_app: Flask) -> None:
    rv = answer(send_app, lambda: send_download(b"raw", download_name="r.bin"))
    assert rv.data == b"raw"
    assert rv.headers["Content-Length"] == "3"
    rv = answer(send_app, lambda: send_download(VirtualFile(b"wrapped", name="w.txt")))
    assert rv.data == b"wrapped"
    assert rv.mimetype == "text/plain"


@pytest.mark.parametrize("source", [42, None, ["a"]], ids=["int", "none", "list"])
def test_other_sources_are_a_type_error(send_app: Flask, source: t.Any) -> None:
    with (
        send_app.test_request_context(),
        pytest.raises(TypeError, match="send_download"),
    ):
        send_download(source)
    with send_app.test_request_context(), pytest.raises(TypeError, match="root"):
        send_download(b"x", root="res")


def test_conditional_false_ignores_request_headers(send_app: Flask) -> None:
    def view() -> t.Any:
        return send_download("res/test.txt", conditional=False)

    rv = answer(send_app, view, headers={"Range": "bytes=0-1"})
    assert rv.status_code == 200
    assert rv.data == TEXT
    assert "Accept-Ranges" not in rv.headers
    etag = rv.headers["ETag"]
    rv = answer(send_app, view, headers={"If-None-Match": etag})
    assert rv.status_code == 200


# -- etag= and last_modified= change the response, never the caller's wrapper --


class ReadOnlyValidators(DownloadFile):
    """A wrapper whose validators are properties without a setter, and whose
    own ``was_modified_since`` always says "modified"."""

    name = "r.txt"
    size = 3
    seekable = True

    @property  # type: ignore[override]
    def etag(self) -> str | None:
        return "own"

    @property  # type: ignore[override]
    def modified_time(self) -> datetime.datetime | None:
        return datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)

    def was_modified_since(self, since: datetime.datetime) -> bool:
        return True

    def open(self) -> t.IO[bytes]:
        return io.BytesIO(b"abc")


def test_validator_overrides_leave_a_shared_wrapper_unchanged(
    send_app: Flask,
) -> None:
    when = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    shared = VirtualFile(b"shared", name="s.txt", modified_time=when)
    own_etag = shared.etag
    rv = answer(send_app, lambda: send_download(shared, etag=False, last_modified=0))
    assert "ETag" not in rv.headers
    assert rv.headers["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert (shared.etag, shared.modified_time) == (own_etag, when)
    rv = answer(send_app, lambda: send_download(shared, etag="other"))
    assert rv.headers["ETag"] == '"other"'
    rv = answer(send_app, lambda: send_download(shared))
    assert rv.headers["ETag"] == f'"{own_etag}"'
    assert rv.headers["Last-Modified"] == http_date(when)


def test_validator_overrides_of_read_only_properties(send_app: Flask) -> None:
    when = datetime.datetime(2021, 6, 1, tzinfo=datetime.timezone.utc)

    def view() -> t.Any:
        return send_download(ReadOnlyValidators(), etag="given", last_modified=when)

    rv = answer(send_app, view)
    assert rv.status_code == 200
    assert rv.data == b"abc"
    assert rv.headers["ETag"] == '"given"'
    assert rv.headers["Last-Modified"] == http_date(when)
    rv = answer(send_app, view, headers={"If-None-Match": '"given"'})
    assert rv.status_code == 304
    assert rv.headers["ETag"] == '"given"'
    # last_modified replaces the wrapper's own was_modified_since answer.
    rv = answer(send_app, view, headers={"If-Modified-Since": http_date(when)})
    assert rv.status_code == 304
    rv = answer(
        send_app,
        lambda: send_download(ReadOnlyValidators(), etag=False),
        headers={"If-Modified-Since": http_date(when)},
    )
    assert rv.status_code == 200
    assert "ETag" not in rv.headers
    assert rv.headers["Last-Modified"] == "Wed, 01 Jan 2020 00:00:00 GMT"


def test_validator_view_delegates_every_download_file_member() -> None:
    """Whatever DownloadFile declares, the per-call view of a caller's
    wrapper answers from the wrapper (or from the call): nothing falls back
    to DownloadFile's defaults."""
    from flask_download.shortcuts import _Revalidated
    from flask_download.sqlalchemy import ColumnFile

    members = {name for name in vars(DownloadFile) if not name.startswith("__")}
    assert members
    for cls in (_Revalidated, ColumnFile):
        for name in members:
            owner = next(c for c in cls.__mro__ if name in vars(c))
            assert owner is not DownloadFile, (cls, name)


class RecordingWrapper:
    """A ``wsgi.file_wrapper`` that records what it was given."""

    instances: t.ClassVar[list[RecordingWrapper]] = []

    def __init__(self, filelike: t.Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.instances.append(self)

    def __iter__(self) -> cabc.Iterator[bytes]:
        while data := self.filelike.read(8192):
            yield data

    def close(self) -> None:
        self.filelike.close()


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({}, 200, TEXT),
        ({"Range": "bytes=1-3", "If-Range": '"v1"'}, 206, TEXT[1:4]),
        ({"Range": "bytes=1-3", "If-Range": '"old"'}, 200, TEXT),
    ],
    ids=["whole", "if-range-new", "if-range-old"],
)
def test_overridden_path_file_keeps_the_file_wrapper(
    send_app: Flask,
    res: pathlib.Path,
    headers: dict[str, str],
    status: int,
    body: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller's PathFile with etag= still reaches the server's
    wsgi.file_wrapper with a descriptor (gunicorn's sendfile)."""
    # The small file stands for a large one (small bodies are read).
    monkeypatch.setattr(_download, "SMALL_BODY", 0)
    RecordingWrapper.instances = []
    file = PathFile(res / "res" / "test.txt")
    send_app.add_url_rule(
        "/p", "p", lambda: send_download(file, etag="v1", attachment=False)
    )
    env = {"wsgi.file_wrapper": RecordingWrapper, "SERVER_SOFTWARE": "gunicorn/23.0"}
    client = send_app.test_client()
    with client.get("/p", headers=headers, environ_overrides=env) as rv:
        assert rv.status_code == status
        assert rv.data == body
        assert rv.headers["ETag"] == '"v1"'
    [wrapper] = RecordingWrapper.instances
    assert callable(getattr(wrapper.filelike, "fileno", None))
    assert file.etag != "v1"


@pytest.mark.parametrize("confined", [False, True], ids=["trusted", "confined"])
def test_overridden_path_file_is_offloaded(res: pathlib.Path, confined: bool) -> None:
    app = Flask("offload", root_path=os.fspath(res))
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[{"source_dir": "res", "destination_url": "/internal/"}],
    )
    FlaskDownload(app)

    def view() -> t.Any:
        if confined:
            file = PathFile("test.txt", root=res / "res")
        else:
            file = PathFile(res / "res" / "test.txt")
        return send_download(file, etag="v1", max_age=60)

    rv = answer(app, view)
    assert rv.headers["X-Accel-Redirect"] == "/internal/test.txt"
    assert rv.headers["ETag"] == '"v1"'
    assert rv.headers["Cache-Control"] == "public, max-age=60"
    assert "Expires" in rv.headers
    assert rv.data == b""


def _overridden_app(path: str) -> Flask:
    """For gunicorn: a caller's PathFile sent with etag= and last_modified=."""
    app = Flask("overridden")

    @app.route("/p")
    def sent() -> t.Any:
        return send_download(PathFile(path), etag="v1", last_modified=0)

    return app


def test_overridden_path_file_on_gunicorn(res: pathlib.Path) -> None:
    """On the wire, through gunicorn's sendfile path: the bytes announced."""
    from conftest import running_gunicorn

    big = res / "big.bin"
    big.write_bytes(bytes(range(256)) * 4096)
    data = big.read_bytes()
    target = f"tests.test_send_download:_overridden_app({os.fspath(big)!r})"
    with running_gunicorn(target) as url:
        with urllib.request.urlopen(url + "/p") as rv:
            assert rv.headers["ETag"] == '"v1"'
            assert rv.headers["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
            assert rv.read() == data
        ranged = urllib.request.Request(url + "/p", headers={"Range": "bytes=10-19"})
        with urllib.request.urlopen(ranged) as rv:
            assert rv.status == 206
            assert rv.read() == data[10:20]


# -- RFC 9110 where Werkzeug's make_conditional differs ---------------------------


def _etag_of(app: Flask) -> str:
    return t.cast(
        str, answer(app, lambda: send_download("res/test.txt")).headers["ETag"]
    )


def test_matching_if_none_match_beats_range(send_app: Flask) -> None:
    """RFC 9110 §13.2.2: If-None-Match is evaluated before Range (304)."""
    etag = _etag_of(send_app)
    rv = answer(
        send_app,
        lambda: send_download("res/test.txt"),
        headers={"If-None-Match": etag, "Range": "bytes=0-1"},
    )
    assert rv.status_code == 304


def test_failing_if_match_beats_range(send_app: Flask) -> None:
    """RFC 9110 §13.1.1: a failing If-Match is 412, whatever Range says."""
    rv = answer(
        send_app,
        lambda: send_download("res/test.txt"),
        headers={"If-Match": '"other"', "Range": "bytes=0-1"},
    )
    assert rv.status_code == 412


def test_if_unmodified_since_is_honoured(send_app: Flask) -> None:
    """RFC 9110 §13.1.4: Werkzeug ignores it; a modified file gives 412."""
    rv = answer(
        send_app,
        lambda: send_download(
            "res/test.txt", last_modified=datetime.datetime(2020, 7, 12)
        ),
        headers={"If-Unmodified-Since": http_date(datetime.datetime(2020, 7, 11))},
    )
    assert rv.status_code == 412


def test_weak_if_range_sends_the_whole_file(send_app: Flask) -> None:
    """RFC 9110 §13.1.5: If-Range needs a strong validator."""
    etag = _etag_of(send_app)
    rv = answer(
        send_app,
        lambda: send_download("res/test.txt"),
        headers={"If-Range": f"W/{etag}", "Range": "bytes=0-1"},
    )
    assert rv.status_code == 200
    assert rv.data == TEXT


def test_several_ranges_are_multipart(send_app: Flask) -> None:
    """RFC 9110 §14.6: Werkzeug answers 416; several ranges are multipart."""
    rv = answer(
        send_app,
        lambda: send_download("res/test.txt"),
        headers={"Range": "bytes=0-0,3-4"},
    )
    assert rv.status_code == 206
    assert rv.mimetype == "multipart/byteranges"
    assert b"Content-Range: bytes 0-0/6" in rv.data
    assert b"Content-Range: bytes 3-4/6" in rv.data


def test_unknown_range_unit_is_ignored(send_app: Flask) -> None:
    """RFC 9110 §14.2: Werkzeug answers 416; an unknown unit is ignored."""
    rv = answer(
        send_app, lambda: send_download("res/test.txt"), headers={"Range": "lines=1-2"}
    )
    assert rv.status_code == 200
    assert rv.data == TEXT


def test_head_with_range_is_the_200(send_app: Flask) -> None:
    """RFC 9110 §14.2: only GET has range handling."""
    rv = answer(
        send_app,
        lambda: send_download("res/test.txt"),
        headers={"Range": "bytes=0-1"},
        method="HEAD",
    )
    assert rv.status_code == 200
    assert rv.headers["Content-Length"] == str(len(TEXT))
    assert rv.data == b""


# -- the views' engine ---------------------------------------------------------


def test_offload_rules_apply(res: pathlib.Path) -> None:
    app = Flask("offload", root_path=os.fspath(res))
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(res / "res"), "destination_url": "/internal/"}
        ],
    )
    FlaskDownload(app)
    rv = answer(app, lambda: send_download("test.txt", root="res"))
    assert rv.headers["X-Accel-Redirect"] == "/internal/test.txt"
    assert rv.data == b""


def test_offload_decorator_wins(res: pathlib.Path) -> None:
    app = Flask("offload", root_path=os.fspath(res))
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[{"source_dir": "res", "destination_url": "/internal/"}],
    )
    FlaskDownload(app)

    @offload("apache", rules=[{"source_dir": "res", "destination_dir": "/mnt/res"}])
    def view() -> t.Any:
        return send_download("res/test.txt")

    rv = answer(app, view)
    assert rv.headers["X-Sendfile"] == "/mnt/res/test.txt"
    assert "X-Accel-Redirect" not in rv.headers


def test_signals_are_sent(send_app: Flask) -> None:
    started: list[t.Any] = []
    finished: list[tuple[int, bool]] = []

    def on_started(sender: t.Any, file: t.Any, **kwargs: t.Any) -> None:
        started.append(file)

    def on_finished(sender: t.Any, file: t.Any, **kwargs: t.Any) -> None:
        finished.append((kwargs["bytes_sent"], kwargs["completed"]))

    with (
        download_started.connected_to(on_started, send_app),
        download_finished.connected_to(on_finished, send_app),
    ):
        answer(send_app, lambda: send_download("res/test.txt"))
    assert len(started) == 1
    assert finished == [(len(TEXT), True)]


def test_returns_a_download_response(send_app: Flask) -> None:
    with send_app.test_request_context():
        rv = send_download("res/test.txt")
        assert isinstance(rv, DownloadResponse)
        rv.close()
