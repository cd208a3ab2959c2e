"""``send_download`` side by side with ``flask.send_file``.

DESIGN §7 promises a drop-in: ``send_file``'s keywords keep their Flask
meaning, so porting a call is a rename. Each test here makes the same call
with ``flask.send_file`` (or ``send_from_directory``) and with
``send_download`` (``root=`` for the directory) and compares the answers:
status, the headers that matter, the body. The behaviours are those checked
by Flask's ``tests/test_helpers.py`` (``TestSendfile``) and Werkzeug's
``tests/test_send_file.py``, plus the request headers both answer
(``HEAD``, ``Range``, ``If-None-Match``, ``If-Modified-Since``).

Where DESIGN deliberately answers otherwise, the test asserts DESIGN's
answer, next to ``send_file``'s, and a comment names the section. The wire
tests at the end run both on real servers (Werkzeug's, gunicorn), where
framing shows.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import io
import os
import pathlib
import socket
import time
import typing as t
import urllib.parse

import flask
import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import Flask
from werkzeug.datastructures import Headers
from werkzeug.exceptions import NotFound
from werkzeug.http import http_date
from werkzeug.http import parse_date

from flask_download import DownloadResponse
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import send_download

HTML = b"<!doctype html>\n<title>index</title>\n"
TEXT = b"FOUND\n"
SUB = b"in a subdirectory\n"

#: A Last-Modified both are told to send (Werkzeug's ``test_last_modified``).
LAST_MODIFIED = datetime.datetime(1999, 1, 1, tzinfo=datetime.timezone.utc)


def write_files(root: pathlib.Path) -> pathlib.Path:
    """The application's ``root_path``: ``static/``, ``res/`` and a file
    next to ``res/`` that ``send_from_directory("res", ...)`` must not reach."""
    (root / "static").mkdir()
    (root / "static" / "index.html").write_bytes(HTML)
    (root / "res").mkdir()
    (root / "res" / "index.html").write_bytes(HTML)
    (root / "res" / "test.txt").write_bytes(TEXT)
    (root / "res" / "sub").mkdir()
    (root / "res" / "sub" / "x.txt").write_bytes(SUB)
    (root / "secret.txt").write_bytes(b"TOP SECRET")
    return root


@pytest.fixture
def res(tmp_path: pathlib.Path) -> pathlib.Path:
    return write_files(tmp_path)


@pytest.fixture
def send_app(res: pathlib.Path) -> Flask:
    """A plain Flask app: ``send_file`` needs no extension, nor does
    ``send_download`` (DESIGN §1: defaults apply without ``init_app``)."""
    app = Flask("parity_app", root_path=os.fspath(res))
    app.config["TESTING"] = True
    return app


@dataclasses.dataclass
class Answer:
    """What a client saw."""

    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


View = cabc.Callable[[], flask.typing.ResponseReturnValue]


@pytest.fixture
def probe(send_app: Flask) -> cabc.Callable[..., Answer]:
    """``probe(view, method=..., headers=...)``: request ``/probe``, answered
    by ``view`` (a function view), through the test client."""
    views: dict[str, View] = {}
    send_app.add_url_rule(
        "/probe", "probe", lambda: views["view"](), methods=["GET", "HEAD"]
    )

    def request(
        view: View, method: str = "GET", headers: dict[str, str] | None = None
    ) -> Answer:
        views["view"] = view
        with send_app.test_client().open(
            "/probe", method=method, headers=headers
        ) as rv:
            return Answer(rv.status_code, Headers(rv.headers), rv.get_data())

    return request


Probe = cabc.Callable[..., Answer]


def compare(
    probe: Probe,
    *args: t.Any,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    **kwargs: t.Any,
) -> tuple[Answer, Answer]:
    """The same call answered by ``flask.send_file`` and ``send_download``.

    A file-like argument is given as a factory (each call gets its own).
    """

    def call(send: cabc.Callable[..., t.Any]) -> View:
        def view() -> t.Any:
            made = [arg() if callable(arg) else arg for arg in args]
            return send(*made, **kwargs)

        return view

    expected = probe(call(flask.send_file), method=method, headers=headers)
    got = probe(call(send_download), method=method, headers=headers)
    return expected, got


def compare_from_directory(
    probe: Probe,
    directory: t.Any,
    path: t.Any,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    **kwargs: t.Any,
) -> tuple[Answer, Answer]:
    """``send_from_directory(directory, path)`` and its port,
    ``send_download(path, root=directory)``."""
    expected = probe(
        lambda: flask.send_from_directory(directory, path, **kwargs),
        method=method,
        headers=headers,
    )
    got = probe(
        lambda: send_download(path, root=directory, **kwargs),
        method=method,
        headers=headers,
    )
    return expected, got


#: Headers whose values send_download gives exactly as send_file does.
SAME = ("Content-Type", "Content-Length", "Cache-Control", "Content-Range")


def assert_same(
    expected: Answer, got: Answer, names: cabc.Iterable[str] = SAME
) -> None:
    assert got.status == expected.status
    for name in names:
        assert got.header(name) == expected.header(name), name
    assert got.body == expected.body


def assert_design_headers(got: Answer) -> None:
    """What every download of send_download adds (DESIGN §3)."""
    assert got.header("X-Content-Type-Options") == "nosniff"


def strong_etag(answer: Answer) -> str:
    etag = answer.header("ETag")
    assert etag is not None
    assert etag.startswith('"')
    assert etag.endswith('"')
    return etag


# -- paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["static/index.html", pathlib.Path("static/index.html")],
    ids=["str", "pathlike"],
)
def test_path_relative_to_root_path(probe: Probe, path: t.Any) -> None:
    """Flask ``test_send_file``, Werkzeug ``test_path`` and ``test_root_path``:
    a relative path is joined to ``app.root_path``."""
    expected, got = compare(probe, path, as_attachment=False)
    assert_same(expected, got, SAME + ("Last-Modified", "Accept-Ranges", "Expires"))
    assert got.header("Content-Type") == "text/html; charset=utf-8"
    assert got.body == HTML
    assert_design_headers(got)
    # DESIGN §3: an inline HTML download is sandboxed (send_file does not).
    assert got.header("Content-Security-Policy") == "sandbox"
    # DESIGN §3: a strong ETag, but not send_file's "mtime-size-adler32".
    strong_etag(expected)
    strong_etag(got)


def test_absolute_pathlike(probe: Probe, res: pathlib.Path) -> None:
    expected, got = compare(probe, res / "res" / "test.txt", as_attachment=True)
    assert_same(expected, got, SAME + ("Last-Modified",))
    assert got.body == TEXT


def test_fspath_object(probe: Probe) -> None:
    """Flask's ``FakePath``: any object with ``__fspath__``."""

    class FakePath:
        def __init__(self, path: str) -> None:
            self.path = path

        def __fspath__(self) -> str:
            return self.path

    expected, got = compare(probe, FakePath("res/test.txt"), as_attachment=True)
    assert_same(expected, got, SAME + ("Last-Modified",))


def test_default_disposition_is_attachment(probe: Probe) -> None:
    """DESIGN §7: ``attachment=True`` is send_download's default, where
    send_file's is inline; a port of a call relying on inline passes
    ``as_attachment=False`` (or ``attachment=False``)."""
    expected, got = compare(probe, "res/test.txt")
    assert expected.header("Content-Disposition") == "inline; filename=test.txt"
    assert got.header("Content-Disposition") == 'attachment; filename="test.txt"'
    assert_same(expected, got)


@pytest.mark.parametrize(
    ("as_attachment", "value"), [(False, "inline"), (True, "attachment")]
)
def test_disposition_name(probe: Probe, as_attachment: bool, value: str) -> None:
    """Werkzeug ``test_disposition_name``. DESIGN §3 quotes the file name
    (a quoted-string), which says the same to every client."""
    expected, got = compare(probe, "res/test.txt", as_attachment=as_attachment)
    assert expected.header("Content-Disposition") == f"{value}; filename=test.txt"
    assert got.header("Content-Disposition") == f'{value}; filename="test.txt"'
    assert_same(expected, got)


def test_response_is_passed_through(send_app: Flask) -> None:
    """Flask ``test_send_file``: called in a request, used as a context
    manager, ``direct_passthrough`` until the test turns it off."""
    with send_app.test_request_context():
        for send in (flask.send_file, send_download):
            with send("static/index.html", as_attachment=False) as rv:
                assert rv.direct_passthrough
                assert rv.mimetype == "text/html"
                rv.direct_passthrough = False
                assert rv.data == HTML


def test_missing_path(probe: Probe, send_app: Flask) -> None:
    """send_file lets ``FileNotFoundError`` out (a 500); DESIGN §1/§2: a
    missing source is ``FileNotFound``, answered 404."""
    with send_app.test_request_context(), pytest.raises(FileNotFoundError):
        flask.send_file("res/nothing.txt")
    got = probe(lambda: send_download("res/nothing.txt"))
    assert got.status == 404


# -- names and types ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ascii", "utf8"),
    [
        ("index.html", '"index.html"', None),
        ("(test.txt", '"(test.txt"', None),
        ("Vögel.txt", '"Vogel.txt"', "V%C3%B6gel.txt"),
        ("Ñandú／pingüino.txt", None, "%C3%91and%C3%BA%EF%BC%8Fping%C3%BCino.txt"),
        ("те:/ст", None, "%D1%82%D0%B5%3A%2F%D1%81%D1%82"),
        ("(тест.txt", None, "%28%D1%82%D0%B5%D1%81%D1%82.txt"),
    ],
    ids=["ascii", "paren", "latin1", "slash", "no-ascii-left", "paren-cyrillic"],
)
def test_non_ascii_download_name(
    probe: Probe, name: str, ascii: str | None, utf8: str | None
) -> None:
    """Werkzeug ``test_non_ascii_name``: the same RFC 8187 ``filename*``.

    The ASCII fallback is DESIGN §3's: it keeps the extension and is never
    empty (send_file's can shrink to ``":/"`` or ``"(.txt"``, and keeps the
    ``/`` of ``"Nandu/pinguino.txt"``).
    """
    expected, got = compare(
        probe, "static/index.html", as_attachment=True, download_name=name
    )
    assert_same(expected, got)
    disposition = got.header("Content-Disposition")
    assert disposition is not None
    params = dict(part.strip().split("=", 1) for part in disposition.split(";")[1:])
    if utf8 is None:
        assert "filename*" not in params
    else:
        assert f"filename*=UTF-8''{utf8}" in (
            expected.header("Content-Disposition") or ""
        )
        assert params["filename*"] == f"UTF-8''{utf8}"
    fallback = params["filename"]
    if ascii is not None:
        assert fallback == ascii
    assert fallback.isascii()
    assert fallback.strip('"')
    if "." in name:
        assert fallback.strip('"').endswith(os.path.splitext(name)[1])


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.pdf", "application/pdf"),
        ("a.unknownextension", "application/octet-stream"),
        ("no-extension", "application/octet-stream"),
    ],
)
def test_mimetype_guessed_from_download_name(
    probe: Probe, name: str, mimetype: str
) -> None:
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, download_name=name
    )
    assert_same(expected, got)
    assert got.header("Content-Type") == mimetype


@pytest.mark.parametrize(
    "mimetype", ["text/plain", "text/csv", "application/json", "image/png"]
)
def test_explicit_mimetype(probe: Probe, mimetype: str) -> None:
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, mimetype=mimetype
    )
    assert_same(expected, got)


@pytest.mark.parametrize("as_attachment", [False, True], ids=["inline", "attachment"])
def test_guessed_content_encoding(probe: Probe, as_attachment: bool) -> None:
    """Werkzeug ``test_content_encoding``: a guessed encoding only inline.

    DESIGN §3 (a merely guessed encoding): an attachment goes out as the
    bytes it is, so its type is the compressed file's, ``application/gzip``
    (send_file keeps ``image/svg+xml`` without its ``Content-Encoding``, a
    type the saved bytes are not); and ``image/svg+xml`` gets no charset.
    """
    expected, got = compare(
        probe, "res/test.txt", download_name="logo.svgz", as_attachment=as_attachment
    )
    assert got.status == expected.status == 200
    assert got.body == expected.body
    if as_attachment:
        assert expected.header("Content-Encoding") is None
        assert got.header("Content-Encoding") is None
        assert got.header("Content-Type") == "application/gzip"
    else:
        assert expected.header("Content-Encoding") == "gzip"
        assert got.header("Content-Encoding") == "gzip"
        assert got.header("Content-Type") == "image/svg+xml"


@pytest.mark.parametrize("as_attachment", [False, True], ids=["inline", "attachment"])
def test_explicit_mimetype_with_compressed_name(
    probe: Probe, as_attachment: bool
) -> None:
    """send_file guesses nothing when ``mimetype`` is given, so sends no
    ``Content-Encoding``. DESIGN §3 (every download): a guessed encoding is
    sent inline, so ``text/plain`` named ``log.txt.gz`` is shown decoded;
    an attachment is the bytes it is, in both."""
    expected, got = compare(
        probe,
        "res/test.txt",
        mimetype="text/plain",
        download_name="log.txt.gz",
        as_attachment=as_attachment,
    )
    assert got.header("Content-Type") == expected.header("Content-Type")
    assert expected.header("Content-Encoding") is None
    assert got.header("Content-Encoding") == (None if as_attachment else "gzip")


def test_explicit_compressed_type_gets_no_encoding(probe: Probe) -> None:
    """``mimetype="application/gzip"`` says the bytes are a gzip file, as
    send_file sends them; ``Content-Encoding: gzip`` on top makes a client
    decode them and keep the result, labelled as gzip."""
    expected, got = compare(
        probe,
        "res/test.txt",
        mimetype="application/gzip",
        download_name="data.csv.gz",
        as_attachment=False,
    )
    assert expected.header("Content-Encoding") is None
    assert got.header("Content-Type") == "application/gzip"
    assert got.header("Content-Encoding") is None


# -- file objects -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytesio", "file"])
def test_object_with_mimetype(probe: Probe, res: pathlib.Path, kind: str) -> None:
    """Werkzeug ``test_object``: read from the object, with the mimetype
    given. No name: send_file sends no ``Content-Disposition``; DESIGN §3
    sends the disposition without a name (inline asked for here)."""

    def source() -> t.IO[bytes]:
        if kind == "bytesio":
            return io.BytesIO(TEXT)
        return (res / "res" / "test.txt").open("rb")

    expected, got = compare(probe, source, mimetype="text/plain", as_attachment=False)
    assert got.status == expected.status == 200
    assert got.body == expected.body == TEXT
    assert got.header("Content-Type") == expected.header("Content-Type")
    assert expected.header("Content-Disposition") is None
    assert got.header("Content-Disposition") == "inline"
    # send_file knows a BytesIO's size, not a file's; send_download both.
    assert got.header("Content-Length") == str(len(TEXT))


def test_object_mimetype_from_download_name(probe: Probe) -> None:
    """Werkzeug ``test_object_mimetype_from_name``."""
    for as_attachment in (False, True):
        expected, got = compare(
            probe,
            lambda: io.BytesIO(b"test"),
            download_name="test.txt",
            as_attachment=as_attachment,
        )
        assert_same(expected, got)
        disposition = "attachment" if as_attachment else "inline"
        assert (
            got.header("Content-Disposition") == f'{disposition}; filename="test.txt"'
        )


def test_object_without_name_or_mimetype(send_app: Flask, probe: Probe) -> None:
    """Werkzeug ``test_object_without_mimetype``: send_file refuses
    (``TypeError``); DESIGN §3: the default type, ``application/octet-stream``."""
    with (
        send_app.test_request_context(),
        pytest.raises(TypeError, match="detect the MIME type"),
    ):
        flask.send_file(io.BytesIO(b"test"))
    got = probe(lambda: send_download(io.BytesIO(b"test"), as_attachment=False))
    assert got.status == 200
    assert got.header("Content-Type") == "application/octet-stream"
    assert got.body == b"test"


def test_object_attachment_without_name(send_app: Flask, probe: Probe) -> None:
    """Werkzeug ``test_object_attachment_requires_name``: send_file refuses
    (``TypeError``); DESIGN §3 names the file "when there is one", so this
    is a nameless attachment."""
    with send_app.test_request_context(), pytest.raises(TypeError, match="attachment"):
        flask.send_file(io.BytesIO(b"test"), mimetype="text/plain", as_attachment=True)
    got = probe(
        lambda: send_download(
            io.BytesIO(b"test"), mimetype="text/plain", as_attachment=True
        )
    )
    assert got.status == 200
    assert got.header("Content-Disposition") == "attachment"
    assert got.body == b"test"


@pytest.mark.parametrize("kind", ["stringio", "text-file"])
def test_text_streams_are_encoded(
    send_app: Flask, probe: Probe, res: pathlib.Path, kind: str
) -> None:
    """Werkzeug ``test_text_mode_fails``: send_file refuses text
    (``ValueError``); DESIGN §3: text is encoded with the response charset
    and ``Content-Length`` counts bytes."""
    path = res / "res" / "text.txt"
    path.write_text("héllo\n", encoding="utf-8")

    def source() -> t.IO[str]:
        if kind == "stringio":
            return io.StringIO("héllo\n")
        return path.open(encoding="utf-8")

    with (
        send_app.test_request_context(),
        source() as f,
        pytest.raises(ValueError, match="binary mode"),
    ):
        flask.send_file(f, mimetype="text/plain")  # type: ignore[arg-type]
    got = probe(lambda: send_download(source(), mimetype="text/plain"))
    assert got.status == 200
    assert got.body == "héllo\n".encode()
    if kind == "stringio":
        # A text file's size in bytes is not known before it is read.
        assert got.header("Content-Length") == str(len("héllo\n".encode()))
    assert got.header("Content-Type") == "text/plain; charset=utf-8"


def test_bytesio_read_from_its_position(send_app: Flask) -> None:
    """Both send what is left; DESIGN §3 (``Content-Length`` whenever the
    size is known) counts those bytes, where send_file announces the whole
    buffer (6 for 4 bytes sent)."""
    with send_app.test_request_context():
        for send in (flask.send_file, send_download):
            buffer = io.BytesIO(b"abcdef")
            buffer.seek(2)
            with send(buffer, mimetype="text/plain") as rv:
                rv.direct_passthrough = False
                assert rv.get_data() == b"cdef"
                if send is send_download:
                    assert rv.content_length == 4


# -- bad arguments --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kwargs", "error"),
    [
        (None, {}, TypeError),
        (123, {}, TypeError),
        ("bytes", {"last_modified": "Fri, 01 Jan 1999 00:00:00 GMT"}, TypeError),
        ("bytes", {"etag": 'W/"weak"'}, ValueError),
        ("bytes", {"last_modified": float("nan")}, ValueError),
    ],
    ids=["none", "int", "last-modified-str", "weak-etag", "last-modified-nan"],
)
def test_bad_arguments_raise_the_same_type(
    send_app: Flask, source: t.Any, kwargs: dict[str, t.Any], error: type[Exception]
) -> None:
    """Calls send_file refuses are refused with the same exception type.

    (A ``BytesIO``: send_file leaves a file it opened for a path unclosed
    when it raises; send_download closes what it was handed.)
    """
    with send_app.test_request_context():
        for send in (flask.send_file, send_download):
            if source == "bytes":
                kwargs = {**kwargs, "download_name": "test.txt"}
                made = io.BytesIO(TEXT)
            else:
                made = source
            with pytest.raises(error):
                send(made, **kwargs).close()


def test_quoted_etag_is_accepted(send_app: Flask) -> None:
    """send_file refuses a quoted entity-tag (``ValueError``); send_download
    takes it bare or quoted, the same tag."""
    with send_app.test_request_context():
        with pytest.raises(ValueError):
            flask.send_file(io.BytesIO(TEXT), download_name="a.txt", etag='"unique"')
        with send_download("res/test.txt", etag='"unique"') as rv:
            assert rv.headers["ETag"] == '"unique"'


def test_etag_that_cannot_go_into_a_header(send_app: Flask) -> None:
    """send_file sends ``ETag: "a b"`` (no valid entity-tag); DESIGN §3:
    nothing given can break a header, so it is refused."""
    with send_app.test_request_context():
        with flask.send_file("res/test.txt", etag="a b") as rv:
            assert rv.headers["ETag"] == '"a b"'
        with pytest.raises(ValueError, match="header"):
            send_download("res/test.txt", etag="a b")


# -- validators -------------------------------------------------------------


def test_etag_keyword(probe: Probe) -> None:
    """Werkzeug ``test_etag``: ``True`` the file's own, ``False`` none, a
    string that tag."""
    _, got = compare(probe, "res/test.txt", as_attachment=True)
    strong_etag(got)
    expected, got = compare(probe, "res/test.txt", as_attachment=True, etag=False)
    assert expected.header("ETag") is None
    assert got.header("ETag") is None
    expected, got = compare(probe, "res/test.txt", as_attachment=True, etag="unique")
    assert expected.header("ETag") == got.header("ETag") == '"unique"'


def test_object_etag(probe: Probe) -> None:
    """A file object has no ETag unless given, in both."""
    expected, got = compare(
        probe, lambda: io.BytesIO(b"x"), download_name="a.bin", etag="given"
    )
    assert expected.header("ETag") == got.header("ETag") == '"given"'
    expected, got = compare(probe, lambda: io.BytesIO(b"x"), download_name="a.bin")
    assert expected.header("ETag") is None


@pytest.mark.parametrize(
    "value",
    [
        LAST_MODIFIED,
        LAST_MODIFIED.replace(tzinfo=None),
        datetime.date(1999, 1, 1),
        915148800,
        915148800.75,
    ],
    ids=["aware", "naive-utc", "date", "int", "float"],
)
def test_last_modified_keyword(probe: Probe, value: t.Any) -> None:
    """Werkzeug ``test_last_modified``: every type send_file takes."""
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, last_modified=value
    )
    assert expected.header("Last-Modified") == "Fri, 01 Jan 1999 00:00:00 GMT"
    assert got.header("Last-Modified") == expected.header("Last-Modified")


def test_file_mtime_is_last_modified(probe: Probe, res: pathlib.Path) -> None:
    os.utime(res / "res" / "test.txt", (915148800.5, 915148800.5))
    expected, got = compare(probe, "res/test.txt", as_attachment=True)
    assert got.header("Last-Modified") == expected.header("Last-Modified")
    assert got.header("Last-Modified") == "Fri, 01 Jan 1999 00:00:00 GMT"


# -- caching ----------------------------------------------------------------


@pytest.mark.parametrize(("value", "public"), [(0, False), (60, True)])
def test_max_age(probe: Probe, value: int, public: bool) -> None:
    """Werkzeug ``test_max_age``: ``public`` with a lifetime, ``no-cache``
    with 0, both with ``Expires``."""
    expected, got = compare(probe, "res/test.txt", as_attachment=True, max_age=value)
    assert_same(expected, got)
    assert ("public" in (got.header("Cache-Control") or "")) is public
    assert ("no-cache" in (got.header("Cache-Control") or "")) is not public
    expires = [parse_date(a.header("Expires")) for a in (expected, got)]
    assert None not in expires
    assert abs((expires[0] - expires[1]).total_seconds()) <= 2  # type: ignore[operator]


def test_max_age_default_is_no_cache(probe: Probe) -> None:
    """``SEND_FILE_MAX_AGE_DEFAULT`` is ``None`` by default: ``no-cache``
    and no ``Expires``, in both."""
    expected, got = compare(probe, "res/test.txt", as_attachment=True)
    assert_same(expected, got, SAME + ("Expires",))
    assert got.header("Cache-Control") == "no-cache"
    assert got.header("Expires") is None


def test_max_age_callable(probe: Probe) -> None:
    """Werkzeug ``test_max_age_callable``."""
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, max_age=lambda path: 10
    )
    assert_same(expected, got)
    assert got.header("Cache-Control") == "public, max-age=10"
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, max_age=lambda path: None
    )
    assert_same(expected, got, SAME + ("Expires",))


def test_max_age_callable_gets_what_send_file_passes(
    send_app: Flask, res: pathlib.Path
) -> None:
    """The full path for a path (and for ``send_from_directory``), ``None``
    for a file object: what ``app.get_send_file_max_age`` receives."""
    calls: dict[str, list[str | None]] = {"send_file": [], "send_download": []}

    def recorder(name: str) -> cabc.Callable[[str | None], int]:
        def max_age(path: str | None) -> int:
            calls[name].append(path)
            return 5

        return max_age

    with send_app.test_request_context():
        sends: list[tuple[str, cabc.Callable[..., t.Any], cabc.Callable[..., t.Any]]]
        sends = [
            ("send_file", flask.send_file, flask.send_from_directory),
            (
                "send_download",
                send_download,
                lambda root, path, **kw: send_download(path, root=root, **kw),
            ),
        ]
        for name, send, from_directory in sends:
            send("res/test.txt", max_age=recorder(name)).close()
            send(res / "res" / "test.txt", max_age=recorder(name)).close()
            send(
                io.BytesIO(b"x"), mimetype="text/plain", max_age=recorder(name)
            ).close()
            from_directory("res", "test.txt", max_age=recorder(name)).close()
    assert calls["send_download"] == calls["send_file"]
    assert calls["send_file"][2] is None


def test_negative_max_age_counts_as_zero(probe: Probe) -> None:
    """send_file sends ``max-age=-5``, no valid delta-seconds (RFC 9111
    §1.2.2); send_download's docstring: a negative lifetime counts as 0."""
    expected, got = compare(probe, "res/test.txt", as_attachment=True, max_age=-5)
    assert expected.header("Cache-Control") == "no-cache, max-age=-5"
    assert got.header("Cache-Control") == "no-cache, max-age=0"


def test_send_file_max_age_default(res: pathlib.Path) -> None:
    """Flask ``test_static_file``: ``SEND_FILE_MAX_AGE_DEFAULT`` and an
    overridden ``get_send_file_max_age`` set the lifetime of both. Not
    ``public``, as send_file makes it: send_download's docstring, a
    download answered by a view may be one user's (checked by the view),
    so only the browser may keep it, unless ``max_age`` says ``public``."""
    app = Flask("parity_app", root_path=os.fspath(res))
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600

    class StaticFileApp(Flask):
        def get_send_file_max_age(self, filename: str | None) -> int | None:
            return 10

    other = StaticFileApp("parity_app", root_path=os.fspath(res))
    for flask_app, seconds in [(app, 3600), (other, 10)]:
        with flask_app.test_request_context():
            with flask.send_file("res/test.txt") as rv:
                assert rv.cache_control.max_age == seconds
                assert rv.cache_control.public
            with send_download("res/test.txt") as rv:
                assert rv.cache_control.max_age == seconds
                assert rv.cache_control.private
                assert not rv.cache_control.public
            with send_download("res/test.txt", max_age=seconds) as rv:
                assert rv.headers["Cache-Control"] == f"public, max-age={seconds}"


# -- conditional requests -------------------------------------------------------


def test_if_modified_since_not_modified(probe: Probe) -> None:
    """Werkzeug ``test_no_cache_conditional_default``: 304, ``no-cache``,
    no ``max-age``, no ``Expires``, no body.

    DESIGN §3: the 304 carries ``Last-Modified`` (send_file's drops it) and
    no ``Content-Disposition`` (send_file's keeps it).
    """
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        last_modified=datetime.datetime(2020, 7, 11),
        headers={"If-Modified-Since": http_date(datetime.datetime(2020, 7, 12))},
    )
    assert_same(expected, got, ("Cache-Control", "Expires"))
    assert got.status == 304
    assert got.body == b""
    assert got.header("Cache-Control") == "no-cache"
    assert got.header("Last-Modified") == "Sat, 11 Jul 2020 00:00:00 GMT"
    assert expected.header("Content-Disposition") is not None
    assert got.header("Content-Disposition") is None


@pytest.mark.parametrize(
    ("offset", "status"),
    [(0, 304), (10, 304), (-10, 200)],
    ids=["same-second", "later", "earlier"],
)
def test_if_modified_since_at_second_resolution(
    probe: Probe, res: pathlib.Path, offset: int, status: int
) -> None:
    """A file's mtime has fractions, an HTTP date none: both compare
    seconds."""
    mtime = 1600000000.75
    os.utime(res / "res" / "test.txt", (mtime, mtime))
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        headers={"If-Modified-Since": http_date(mtime + offset)},
    )
    assert expected.status == got.status == status
    assert expected.body == got.body


@pytest.mark.parametrize(
    "value", ["garbage", "Sat, 01 Jan 10000 00:00:00 GMT", ""], ids=str
)
def test_unusable_if_modified_since_is_ignored(probe: Probe, value: str) -> None:
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, headers={"If-Modified-Since": value}
    )
    assert_same(expected, got)
    assert got.status == 200


@pytest.mark.parametrize(
    "if_none_match",
    ['"unique"', 'W/"unique"', '"other", "unique"', "*"],
    ids=["strong", "weak", "list", "star"],
)
def test_if_none_match_not_modified(probe: Probe, if_none_match: str) -> None:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2)."""
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        etag="unique",
        headers={"If-None-Match": if_none_match},
    )
    assert_same(expected, got, ("Cache-Control", "ETag", "Expires"))
    assert got.status == 304


def test_if_none_match_other_tag(probe: Probe) -> None:
    """A tag that does not match wins over a matching If-Modified-Since
    (RFC 9110 §13.1.3): 200 from both."""
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        etag="unique",
        last_modified=LAST_MODIFIED,
        headers={
            "If-None-Match": '"other"',
            "If-Modified-Since": http_date(LAST_MODIFIED),
        },
    )
    assert_same(expected, got)
    assert got.status == 200


def test_if_none_match_without_etag(probe: Probe) -> None:
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        etag=False,
        headers={"If-None-Match": '"unique"'},
    )
    assert_same(expected, got)
    assert got.status == 200


def test_object_conditional(probe: Probe) -> None:
    """A file object with the validators given answers 304 too."""
    expected, got = compare(
        probe,
        lambda: io.BytesIO(b"abc"),
        download_name="a.txt",
        etag="unique",
        headers={"If-None-Match": '"unique"'},
    )
    assert expected.status == got.status == 304
    expected, got = compare(
        probe,
        lambda: io.BytesIO(b"abc"),
        download_name="a.txt",
        last_modified=LAST_MODIFIED,
        headers={"If-Modified-Since": http_date(LAST_MODIFIED)},
    )
    assert expected.status == got.status == 304


def test_not_modified_keeps_max_age(probe: Probe) -> None:
    """A 304 has the caching headers of the 200 (RFC 9110 §15.4.5)."""
    for max_age in (0, 60):
        expected, got = compare(
            probe,
            "res/test.txt",
            as_attachment=True,
            max_age=max_age,
            etag="unique",
            headers={"If-None-Match": '"unique"'},
        )
        assert got.status == expected.status == 304
        assert got.header("Cache-Control") == expected.header("Cache-Control")
        assert got.header("Expires") is not None


def test_if_match_failing_is_412(probe: Probe) -> None:
    """412 from both. send_file's still has the file as body and its
    headers; DESIGN §3: a 412 has no body."""
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        etag="unique",
        headers={"If-Match": '"other"'},
    )
    assert expected.status == got.status == 412
    assert expected.body == TEXT
    assert got.body == b""


def test_conditional_false(probe: Probe) -> None:
    """``conditional=False``: the request's validators and ``Range`` are
    ignored; a full 200 from both, with no ``Accept-Ranges``."""
    for method in ("GET", "HEAD"):
        expected, got = compare(
            probe,
            "res/test.txt",
            as_attachment=True,
            etag="unique",
            conditional=False,
            method=method,
            headers={"If-None-Match": '"unique"', "Range": "bytes=0-1"},
        )
        assert_same(expected, got, SAME + ("Accept-Ranges", "ETag"))
        assert got.status == 200
        assert got.header("Accept-Ranges") is None


# -- ranges -----------------------------------------------------------------


@pytest.mark.parametrize(
    "range_", ["bytes=0-1", "bytes=2-", "bytes=-2", "bytes=0-100", "bytes=0-"]
)
@pytest.mark.parametrize("kind", ["path", "bytesio"])
def test_single_range(probe: Probe, range_: str, kind: str) -> None:
    source: t.Any = "res/test.txt" if kind == "path" else (lambda: io.BytesIO(TEXT))
    expected, got = compare(
        probe,
        source,
        download_name="test.txt",
        as_attachment=True,
        headers={"Range": range_},
    )
    assert_same(expected, got, SAME + ("Accept-Ranges",))
    assert got.status == 206


def test_range_of_a_file_object(probe: Probe, res: pathlib.Path) -> None:
    """send_file does not know an opened file's size, so it sends it whole;
    send_download does (DESIGN §3: seekable sources have ranges)."""
    expected, got = compare(
        probe,
        lambda: (res / "res" / "test.txt").open("rb"),
        download_name="test.txt",
        headers={"Range": "bytes=0-1"},
    )
    assert expected.status == 200
    assert got.status == 206
    assert got.body == TEXT[:2]
    assert got.header("Content-Range") == f"bytes 0-1/{len(TEXT)}"


def test_unsatisfiable_range(probe: Probe) -> None:
    """416 with ``Content-Range: bytes */N`` from both. send_file's has
    Werkzeug's HTML error page as body; DESIGN §3's, no body."""
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, headers={"Range": "bytes=100-"}
    )
    assert expected.status == got.status == 416
    assert expected.header("Content-Range") == got.header("Content-Range")
    assert got.header("Content-Range") == f"bytes */{len(TEXT)}"


@pytest.mark.parametrize("kind", ["path", "bytesio"])
def test_range_of_an_empty_file(probe: Probe, res: pathlib.Path, kind: str) -> None:
    """send_file ignores ranges of an empty file (200); RFC 9110 §14.1.1: a
    zero-length representation satisfies no ``bytes=0-``, and DESIGN §3
    answers an unsatisfiable range 416 with ``Content-Range: bytes */0``."""
    (res / "res" / "empty.txt").write_bytes(b"")
    source: t.Any = "res/empty.txt" if kind == "path" else (lambda: io.BytesIO())
    expected, got = compare(
        probe,
        source,
        download_name="empty.txt",
        as_attachment=True,
        headers={"Range": "bytes=0-"},
    )
    assert expected.status == 200
    assert got.status == 416
    assert got.header("Content-Range") == "bytes */0"
    expected, got = compare(probe, source, download_name="empty.txt")
    assert expected.status == got.status == 200
    assert got.header("Content-Length") == "0"


@pytest.mark.parametrize(
    "range_",
    ["items=0-1", "bytes=x", "bytes=2-1"],
    ids=["unit", "malformed", "reversed"],
)
def test_unusable_range_is_ignored(probe: Probe, range_: str) -> None:
    """send_file answers 416; DESIGN §3: an unknown unit or a malformed
    header is ignored (200, the whole file), as RFC 9110 §14.2 allows."""
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, headers={"Range": range_}
    )
    assert expected.status == 416
    assert got.status == 200
    assert got.body == TEXT


def test_several_ranges_are_multipart(probe: Probe) -> None:
    """send_file answers 416; DESIGN §3: ``multipart/byteranges``."""
    expected, got = compare(
        probe, "res/test.txt", as_attachment=True, headers={"Range": "bytes=0-0,2-3"}
    )
    assert expected.status == 416
    assert got.status == 206
    content_type = got.header("Content-Type") or ""
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert b"Content-Range: bytes 0-0/6" in got.body
    assert b"Content-Range: bytes 2-3/6" in got.body
    assert got.header("Content-Length") == str(len(got.body))


@pytest.mark.parametrize(
    ("if_range", "status"),
    [('"unique"', 206), ('"other"', 200), (http_date(LAST_MODIFIED), 206)],
    ids=["etag", "other-etag", "date"],
)
def test_if_range(probe: Probe, if_range: str, status: int) -> None:
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        etag="unique",
        last_modified=LAST_MODIFIED,
        headers={"Range": "bytes=0-1", "If-Range": if_range},
    )
    assert_same(expected, got)
    assert got.status == status


# -- HEAD -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["path", "bytesio"])
def test_head(probe: Probe, kind: str) -> None:
    source: t.Any = "res/test.txt" if kind == "path" else (lambda: io.BytesIO(TEXT))
    expected, got = compare(
        probe, source, download_name="test.txt", as_attachment=True, method="HEAD"
    )
    assert_same(expected, got, SAME + ("Accept-Ranges", "Last-Modified"))
    assert got.body == b""
    assert got.header("Content-Length") == str(len(TEXT))


def test_head_with_range(probe: Probe) -> None:
    """send_file answers a 206; DESIGN §1 (RFC 9110 §14.2: only GET has
    range handling): the 200, with the full ``Content-Length``."""
    expected, got = compare(
        probe,
        "res/test.txt",
        as_attachment=True,
        method="HEAD",
        headers={"Range": "bytes=0-1"},
    )
    assert expected.status == 206
    assert got.status == 200
    assert got.header("Content-Length") == str(len(TEXT))
    assert got.header("Content-Range") is None


# -- send_from_directory ----------------------------------------------------


@pytest.mark.parametrize(
    ("directory", "path", "content"),
    [
        ("res", "test.txt", TEXT),
        ("res", pathlib.Path("test.txt"), TEXT),
        ("res", "sub/x.txt", SUB),
        ("res", "./test.txt", TEXT),
        ("res", "sub//x.txt", SUB),
        ("res/", "test.txt", TEXT),
    ],
)
def test_from_directory(
    probe: Probe, directory: str, path: t.Any, content: bytes
) -> None:
    """Werkzeug ``test_from_directory`` and Flask ``test_send_from_directory``:
    the directory is relative to ``app.root_path``."""
    expected, got = compare_from_directory(probe, directory, path, as_attachment=False)
    assert_same(expected, got, SAME + ("Last-Modified",))
    assert got.body == content


def test_from_absolute_pathlike_directory(probe: Probe, res: pathlib.Path) -> None:
    expected, got = compare_from_directory(
        probe, res / "res", pathlib.Path("test.txt"), as_attachment=False
    )
    assert_same(expected, got, SAME + ("Last-Modified",))


@pytest.mark.parametrize(
    "path",
    [
        "../res/test.txt",
        "../secret.txt",
        "nothing.txt",
        "null\x00.txt",
        "/etc/passwd",
        "sub",
        "sub/",
        "",
    ],
)
def test_from_directory_not_found(send_app: Flask, probe: Probe, path: str) -> None:
    """Werkzeug ``test_from_directory_not_found``: ``NotFound`` raised
    from the call, a 404 for the client."""
    with send_app.test_request_context():
        calls: list[cabc.Callable[[], t.Any]] = [
            lambda: flask.send_from_directory("res", path),
            lambda: send_download(path, root="res"),
        ]
        for call in calls:
            with pytest.raises(NotFound):
                call()
    expected, got = compare_from_directory(probe, "res", path)
    assert expected.status == got.status == 404


@pytest.mark.parametrize("root", ["nothing", "res/test.txt"], ids=["missing", "file"])
def test_from_directory_root_that_is_no_directory(probe: Probe, root: str) -> None:
    expected, got = compare_from_directory(probe, root, "test.txt")
    assert expected.status == got.status == 404


def test_from_directory_dot_segments_are_refused(probe: Probe) -> None:
    """send_from_directory normalises ``sub/../test.txt`` and serves it;
    DESIGN §2: a client path with ``..`` is a 404, wherever it leads
    (browsers remove dot-segments before they send a URL)."""
    expected, got = compare_from_directory(probe, "res", "sub/../test.txt")
    assert expected.status == 200
    assert got.status == 404


def test_from_directory_backslash_is_refused(probe: Probe, res: pathlib.Path) -> None:
    """On POSIX, send_from_directory serves a name with a backslash; DESIGN
    §2 refuses backslashes in client paths (404)."""
    (res / "res" / "a\\b.txt").write_bytes(TEXT)
    expected, got = compare_from_directory(probe, "res", "a\\b.txt")
    assert expected.status == 200
    assert got.status == 404


def test_from_directory_symlink_out_is_refused(probe: Probe, res: pathlib.Path) -> None:
    """send_from_directory follows a link out of the directory; DESIGN §2:
    404."""
    (res / "res" / "link.txt").symlink_to(res / "secret.txt")
    expected, got = compare_from_directory(probe, "res", "link.txt")
    assert expected.status == 200
    assert expected.body == b"TOP SECRET"
    assert got.status == 404


def test_from_directory_keywords(probe: Probe) -> None:
    """send_from_directory passes send_file's keywords on."""
    expected, got = compare_from_directory(
        probe,
        "res",
        "test.txt",
        as_attachment=True,
        download_name="other.csv",
        max_age=60,
        etag="unique",
        last_modified=LAST_MODIFIED,
        headers={"Range": "bytes=1-2"},
    )
    assert_same(expected, got, SAME + ("ETag", "Last-Modified"))
    assert got.header("Content-Disposition") == 'attachment; filename="other.csv"'


# -- the app's response class ---------------------------------------------------


class AppResponse(flask.Response):
    """An app's own response class, with a member of its own."""

    def shout(self) -> str:
        return "custom"


def test_app_response_class(send_app: Flask, probe: Probe) -> None:
    """send_file answers with ``app.response_class``; so does send_download
    (still a :class:`DownloadResponse`). Else Flask coerces the answer with
    ``force_type``, which swapped its class and sent an empty body under
    the file's ``Content-Length``."""
    send_app.response_class = AppResponse
    with send_app.test_request_context():
        for send in (flask.send_file, send_download):
            with send("res/test.txt") as rv:
                assert isinstance(rv, AppResponse)
                assert rv.shout() == "custom"
        with send_download("res/test.txt") as rv:
            assert isinstance(rv, DownloadResponse)
    for kwargs, headers in [
        ({}, {}),
        ({}, {"Range": "bytes=1-2"}),
        ({}, {"Range": "bytes=0-0,2-3"}),
        ({"etag": "unique"}, {"If-None-Match": '"unique"'}),
        ({"etag": "unique"}, {"If-Match": '"other"'}),
    ]:
        got = probe(
            lambda kwargs=kwargs: send_download("res/test.txt", **kwargs),
            headers=headers,
        )
        assert int(got.header("Content-Length") or 0) == len(got.body)
        if not headers:
            assert got.body == TEXT
    got = probe(lambda: send_download(io.StringIO("héllo"), mimetype="text/plain"))
    assert got.body == "héllo".encode()


def test_app_response_class_with_the_extension(res: pathlib.Path) -> None:
    app = Flask("parity_app", root_path=os.fspath(res))
    app.response_class = AppResponse
    FlaskDownload(app)
    app.add_url_rule("/t", "t", lambda: send_download("res/test.txt"))
    with app.test_client().get("/t") as rv:
        assert rv.get_data() == TEXT


def test_view_with_app_response_class(res: pathlib.Path) -> None:
    """The class-based views have the same coercion problem as
    send_download had: an app with its own ``response_class`` gets an empty
    body under the file's ``Content-Length``."""
    app = Flask("parity_app", root_path=os.fspath(res))
    app.response_class = AppResponse
    view = PathDownloadView.as_view("t", path=os.fspath(res / "res" / "test.txt"))
    app.add_url_rule("/t", view_func=view)
    with app.test_client().get("/t") as rv:
        assert rv.get_data() == TEXT


# -- on real servers ------------------------------------------------------------


def wire_app(root: str) -> Flask:
    """The same downloads by ``/sf/...`` (send_file) and ``/sd/...``
    (send_download); gunicorn imports it as
    ``tests.test_send_file_parity:wire_app(root)``."""
    app = Flask("parity_wire", root_path=root)
    sends: dict[str, cabc.Callable[..., t.Any]] = {
        "sf": flask.send_file,
        "sd": send_download,
    }

    @app.route("/<kind>/path", methods=["GET", "HEAD"])
    def path(kind: str) -> t.Any:
        return sends[kind]("res/test.txt", as_attachment=True, etag="unique")

    @app.route("/<kind>/bytes", methods=["GET", "HEAD"])
    def bytes_io(kind: str) -> t.Any:
        return sends[kind](io.BytesIO(TEXT), download_name="test.txt", etag="unique")

    @app.route("/<kind>/dir/<path:name>", methods=["GET", "HEAD"])
    def directory(kind: str, name: str) -> t.Any:
        if kind == "sf":
            return flask.send_from_directory("res", name)
        return send_download(name, root="res", as_attachment=False)

    @app.route("/sd/text", methods=["GET", "HEAD"])
    def text() -> t.Any:
        return send_download(io.StringIO("héllo\n"), mimetype="text/plain")

    return app


def raw_request(
    base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Answer:
    """One HTTP/1.1 request on its own connection; the answer as framed on
    the wire (the body is every byte after the head, up to the close)."""
    url = urllib.parse.urlsplit(base)
    assert url.port is not None
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = Headers()
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed.add(name.strip(), value.strip())
    return Answer(int(status_line.split()[1]), parsed, body)


#: (path, method, request headers) for both send functions.
WIRE_CASES = [
    ("path", "GET", {}),
    ("path", "HEAD", {}),
    ("path", "GET", {"Range": "bytes=1-3"}),
    ("path", "GET", {"If-None-Match": '"unique"'}),
    ("bytes", "GET", {}),
    ("bytes", "HEAD", {}),
    ("bytes", "GET", {"Range": "bytes=1-3"}),
    ("bytes", "GET", {"If-None-Match": '"unique"'}),
    ("dir/test.txt", "GET", {}),
    ("dir/sub/x.txt", "HEAD", {}),
    ("dir/nothing.txt", "GET", {}),
]


def check_wire(base: str) -> None:
    for path, method, headers in WIRE_CASES:
        expected = raw_request(base, f"/sf/{path}", method, headers)
        got = raw_request(base, f"/sd/{path}", method, headers)
        case = (path, method, headers)
        assert got.status == expected.status, case
        if got.status == 404:
            continue
        assert got.header("Transfer-Encoding") is None, case
        assert got.header("Content-Length") == expected.header("Content-Length"), case
        assert got.header("Content-Range") == expected.header("Content-Range"), case
        assert got.body == expected.body, case
        if method == "HEAD" or got.status == 304:
            assert got.body == b"", case
        else:
            assert len(got.body) == int(got.header("Content-Length") or -1), case
    text = raw_request(base, "/sd/text")
    assert text.body == "héllo\n".encode()
    assert text.header("Content-Length") == str(len(text.body))
    head = raw_request(base, "/sd/text", "HEAD")
    assert head.body == b""
    assert head.header("Content-Length") == text.header("Content-Length")


def test_on_werkzeug_server(res: pathlib.Path) -> None:
    with running_werkzeug(wire_app(os.fspath(res))) as base:
        check_wire(base)


def test_on_werkzeug_server_with_app_response_class(res: pathlib.Path) -> None:
    app = wire_app(os.fspath(res))
    app.response_class = AppResponse
    with running_werkzeug(app) as base:
        check_wire(base)


def test_on_gunicorn(res: pathlib.Path) -> None:
    target = f"tests.test_send_file_parity:wire_app({os.fspath(res)!r})"
    with running_gunicorn(target) as base:
        check_wire(base)


def test_expires_follows_max_age_on_the_wire(res: pathlib.Path) -> None:
    app = Flask("parity_wire", root_path=os.fspath(res))

    @app.route("/<kind>")
    def view(kind: str) -> t.Any:
        send = flask.send_file if kind == "sf" else send_download
        return send("res/test.txt", max_age=120, as_attachment=True)

    with running_werkzeug(app) as base:
        before = time.time()
        for kind in ("sf", "sd"):
            answer = raw_request(base, f"/{kind}")
            assert answer.header("Cache-Control") == "public, max-age=120"
            expires = parse_date(answer.header("Expires"))
            assert expires is not None
            assert abs(expires.timestamp() - (before + 120)) <= 3
