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
import typing as t

import pytest
from flask import Flask
from werkzeug.http import http_date

from flask_download import DownloadResponse
from flask_download import FlaskDownload
from flask_download import offload
from flask_download import send_download
from flask_download import VirtualFile
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


@pytest.mark.parametrize(("value", "public"), [(0, False), (60, True)])
def test_max_age(send_app: Flask, value: int, public: bool) -> None:
    rv = answer(send_app, lambda: send_download("res/test.txt", max_age=value))
    assert rv.status_code == 200
    assert ("no-cache" in rv.headers["Cache-Control"]) != public
    assert rv.cache_control.public == public
    if public:
        assert rv.cache_control.max_age == value


def test_max_age_callable_gets_the_name(send_app: Flask) -> None:
    seen: list[str | None] = []

    def lifetime(name: str | None) -> int:
        seen.append(name)
        return 10

    rv = answer(send_app, lambda: send_download("res/test.txt", max_age=lifetime))
    assert rv.cache_control.max_age == 10
    assert seen == ["test.txt"]


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
