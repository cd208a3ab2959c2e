from __future__ import annotations

import os
import pathlib
import typing as t
from urllib.parse import quote

import pytest
from conftest import SAMPLE_FILES
from flask import Flask
from flask import Response

from flask_download import offload
from flask_download import PathDownloadView
from flask_download import VirtualDownloadView
from flask_download.testing import assert_download_response
from flask_download.testing import parse_content_disposition

HELLO = SAMPLE_FILES["hello.txt"]
ETE = SAMPLE_FILES["été.txt"]


@pytest.fixture
def client(app: Flask, download_root: pathlib.Path) -> t.Any:
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    app.add_url_rule(
        "/inline/<path:path>",
        view_func=PathDownloadView.as_view("inline", attachment=False),
    )
    root = os.fspath(download_root)
    app.add_url_rule(
        "/nginx/<path:path>",
        view_func=PathDownloadView.as_view(
            "nginx",
            accel="nginx",
            accel_rules=[{"source_dir": root, "destination_url": "/protected/"}],
        ),
    )
    app.add_url_rule(
        "/apache/<path:path>",
        view_func=PathDownloadView.as_view(
            "apache", accel="apache", accel_rules=[{"source_dir": root}]
        ),
    )

    @app.get("/raw")
    def raw() -> Response:
        # Not a download at all: an offload header and a body, a wrong length.
        return Response(
            b"abc", headers={"X-Accel-Redirect": "/x", "Content-Type": "text/plain"}
        )

    @app.get("/badlength")
    def badlength() -> Response:
        response = Response(b"abc", mimetype="text/plain")
        response.headers["Content-Disposition"] = 'attachment; filename="a"; filename'
        response.automatically_set_content_length = False
        response.headers["Content-Length"] = "5"
        return response

    return app.test_client()


def failure(response: t.Any, **expected: t.Any) -> str:
    with pytest.raises(AssertionError) as info:
        assert_download_response(response, **expected)
    return str(info.value)


# -- passing ----------------------------------------------------------------------


def test_matching_download_passes_and_returns_the_body(client: t.Any) -> None:
    with client.get("/files/hello.txt") as rv:
        body = assert_download_response(
            rv,
            content=HELLO,
            basename="hello.txt",
            mimetype="text/plain",
            attachment=True,
            headers={"X-Content-Type-Options": "nosniff", "Content-Encoding": None},
        )
    assert body == HELLO


def test_non_ascii_name_is_read_from_filename_star(client: t.Any) -> None:
    with client.get("/inline/été.txt") as rv:
        assert "filename*=UTF-8''" in rv.headers["Content-Disposition"]
        assert_download_response(rv, content=ETE, basename="été.txt", attachment=False)


def test_str_content_is_compared_as_utf8(client: t.Any) -> None:
    with client.get("/files/été.txt") as rv:
        assert_download_response(rv, content="Un été à Paris\n")


@pytest.mark.parametrize(
    "mimetype",
    [
        "text/plain",
        "TEXT/Plain",
        "text/plain; charset=utf-8",
        "text/plain;charset=UTF-8",
    ],
    ids=["type-only", "case", "with-charset", "charset-case"],
)
def test_mimetype_matches(client: t.Any, mimetype: str) -> None:
    with client.get("/files/hello.txt") as rv:
        assert_download_response(rv, mimetype=mimetype)


def test_streamed_response_is_read_to_the_end(client: t.Any) -> None:
    with client.get("/files/data.bin", buffered=False) as rv:
        body = assert_download_response(rv, content=SAMPLE_FILES["data.bin"])
    assert len(body) == 1024


def test_head_compares_content_length(client: t.Any) -> None:
    with client.head("/files/hello.txt") as rv:
        assert assert_download_response(rv, content=HELLO) == b""
        assert "Content-Length: expected 3" in failure(rv, content=b"abc")


def test_range_response(client: t.Any) -> None:
    with client.get("/files/hello.txt", headers={"Range": "bytes=0-4"}) as rv:
        assert_download_response(rv, content=b"Hello", status=206)


def test_response_returned_by_a_view(app: Flask, download_root: pathlib.Path) -> None:
    """A DownloadResponse not sent through the client (direct passthrough)."""
    view = VirtualDownloadView(content=b"direct", basename="d.bin")
    with app.test_request_context("/"):
        response = view.render_to_response()
        try:
            assert_download_response(response, content=b"direct", basename="d.bin")
        finally:
            response.close()


# -- failing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"status": 206}, "status: expected 206, found 200 OK"),
        (
            {"content": b"Hello, World!\n"},
            "content: expected 14 bytes, found 14; first difference at byte 7",
        ),
        ({"content": HELLO + b"!"}, "expected 15 bytes, found 14"),
        (
            {"basename": "other.txt"},
            "basename: expected 'other.txt', found 'hello.txt'",
        ),
        ({"attachment": False}, "attachment: expected 'inline', found 'attachment'"),
        (
            {"mimetype": "text/html"},
            "mimetype: expected 'text/html', found Content-Type",
        ),
        ({"mimetype": "text/plain; charset=latin-1"}, "charset=utf-8"),
        (
            {"encoding": "gzip"},
            "encoding: expected Content-Encoding 'gzip', found None",
        ),
        ({"headers": {"ETag": '"x"'}}, "header ETag: expected '\"x\"', found '\""),
        ({"headers": {"Accept-Ranges": None}}, "header Accept-Ranges: expected absent"),
        ({"offload": True}, "offload: expected one of X-Accel-Redirect"),
        ({"offload": "/protected/hello.txt"}, "= '/protected/hello.txt', found none"),
    ],
    ids=[
        "status",
        "content",
        "content-length",
        "basename",
        "attachment",
        "mimetype",
        "mimetype-parameters",
        "encoding",
        "header",
        "header-absent",
        "offload-expected",
        "offload-value-expected",
    ],
)
def test_failure_says_what_was_expected_and_found(
    client: t.Any, expected: dict[str, t.Any], message: str
) -> None:
    with client.get("/files/hello.txt") as rv:
        assert message in failure(rv, **expected)


def test_every_failure_is_reported_at_once(client: t.Any) -> None:
    with client.get("/files/missing.txt") as rv:
        message = failure(
            rv, content=HELLO, basename="missing.txt", mimetype="text/plain"
        )
    assert message.count("\n- ") == 4
    assert "status: expected 200, found 404 NOT FOUND" in message
    assert "Content-Disposition: expected one, found none" in message


def test_malformed_disposition_and_wrong_length_are_reported(client: t.Any) -> None:
    with client.get("/badlength") as rv:
        message = failure(rv, basename="a")
    assert "Content-Disposition: malformed" in message
    assert "Content-Length: header says '5', body has 3 bytes" in message


# -- offload ----------------------------------------------------------------------


def test_nginx_offload_checks_the_header(client: t.Any) -> None:
    with client.get("/nginx/été.txt") as rv:
        body = assert_download_response(
            rv,
            basename="été.txt",
            mimetype="text/plain",
            offload="/protected/%C3%A9t%C3%A9.txt",
        )
        assert body == b""
        assert_download_response(rv, offload=True, content=ETE)
        message = failure(rv, offload="/protected/other.txt")
        assert "expected X-Accel-Redirect: '/protected/other.txt'" in message
        assert "expected a streamed body, found X-Accel-Redirect" in failure(
            rv, offload=False
        )


def test_sendfile_offload_compares_content_with_the_file(client: t.Any) -> None:
    with client.get("/apache/hello.txt") as rv:
        assert_download_response(rv, content=HELLO, basename="hello.txt", offload=True)
        message = failure(rv, content=b"something else")
    assert "content of 'hello.txt' (X-Sendfile)" in message


def test_offload_header_with_a_body_fails(client: t.Any) -> None:
    with client.get("/raw") as rv:
        message = failure(rv)
    assert "expected an empty body with X-Accel-Redirect, found 3 bytes" in message


@pytest.mark.parametrize("backend", ["apache", "lighttpd"])
@pytest.mark.parametrize(
    "name",
    ["sp ace.txt", "été.txt", "50%25 off;#1.txt"],
    ids=["space", "utf8", "percent"],
)
def test_sendfile_path_is_percent_decoded(
    app: Flask, download_root: pathlib.Path, backend: str, name: str
) -> None:
    """Review: X-Sendfile is percent-encoded; the helper opened it undecoded."""
    (download_root / name).write_bytes(b"abc")
    app.add_url_rule(
        "/f/<path:path>",
        view_func=PathDownloadView.as_view(
            "f", accel=backend, accel_rules=[{"source_dir": download_root}]
        ),
    )
    with app.test_client().get(f"/f/{quote(name)}") as rv:
        assert "%" in rv.headers["X-Sendfile"]
        assert_download_response(rv, content=b"abc", offload=True)
        assert "expected 5 bytes" in failure(rv, content=b"WRONG")


def test_sendfile_destination_dir_is_mapped_back_to_the_source(
    app: Flask, download_root: pathlib.Path
) -> None:
    """Review: a destination_dir other than source_dir always failed."""
    rules = [{"source_dir": download_root, "destination_dir": "/nowhere/www/files"}]
    app.add_url_rule(
        "/f/<path:path>",
        view_func=PathDownloadView.as_view("f", accel="apache", accel_rules=rules),
    )
    with app.test_client().get("/f/sub/nested.txt") as rv:
        assert rv.headers["X-Sendfile"] == "/nowhere/www/files/sub/nested.txt"
        assert_download_response(rv, content=b"nested\n")
        assert "content of 'nested.txt' (X-Sendfile)" in failure(rv, content=b"x")


def test_sendfile_path_no_rule_maps_fails_only_when_content_is_expected(
    app: Flask,
) -> None:
    @app.get("/hand")
    def hand() -> Response:
        return Response(b"", headers={"X-Sendfile": "/nowhere/a%20b.txt"})

    with app.test_client().get("/hand") as rv:
        assert_download_response(rv, offload=True)
        message = failure(rv, content=b"abc")
    assert "names '/nowhere/a%20b.txt' ('/nowhere/a b.txt' percent-decoded)" in message
    assert "no offload rule of the application maps it back" in message


def test_accel_redirect_content_is_checked_through_the_config_rules(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    """Review: content=b"WRONG" passed silently for X-Accel-Redirect."""
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/prot"}
        ],
    )
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    with app.test_client().get("/f/été.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/prot/%C3%A9t%C3%A9.txt"
        assert_download_response(rv, content=ETE)
        message = failure(rv, content=b"WRONG")
    assert "content of 'été.txt' (X-Accel-Redirect): expected 5 bytes" in message


def test_accel_redirect_content_is_checked_through_the_view_rules(
    app: Flask, download_root: pathlib.Path
) -> None:
    rule = {"source_dir": download_root, "destination_url": "/cls/"}

    class Rules(PathDownloadView):
        accel = "nginx"
        accel_rules = [rule]

    app.add_url_rule("/c/<path:path>", view_func=Rules.as_view("c"))
    app.add_url_rule(
        "/d/<path:path>",
        view_func=offload("nginx", rules=[{**rule, "destination_url": "/deco/"}])(
            PathDownloadView.as_view("d")
        ),
    )
    client = app.test_client()
    for url, location in (("/c/hello.txt", "/cls/"), ("/d/hello.txt", "/deco/")):
        with client.get(url) as rv:
            assert rv.headers["X-Accel-Redirect"] == f"{location}hello.txt"
            assert_download_response(rv, content=HELLO)
            assert "(X-Accel-Redirect): expected 5 bytes" in failure(
                rv, content=b"WRONG"
            )


def test_accel_redirect_of_a_storage_key_is_read_from_the_storage(app: Flask) -> None:
    fsspec = pytest.importorskip("fsspec")
    from flask_download import StorageDownloadView

    fs = fsspec.filesystem("memory")
    fs.pipe("/testing-accel/pub/a b.txt", b"in the store")
    app.add_url_rule(
        "/s/<path:path>",
        view_func=StorageDownloadView.as_view(
            "s",
            storage="memory://testing-accel/pub",
            accel="nginx",
            accel_rules=[
                {"source_url": "memory://testing-accel/pub", "destination_url": "/s3/"}
            ],
        ),
    )
    try:
        with app.test_client().get("/s/a b.txt") as rv:
            assert rv.headers["X-Accel-Redirect"] == "/s3/a%20b.txt"
            assert_download_response(rv, content=b"in the store")
            assert "content of 'a b.txt'" in failure(rv, content=b"WRONG")
    finally:
        fs.rm("/testing-accel", recursive=True)


def test_accel_redirect_of_a_response_returned_by_a_view(
    app_factory: t.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    """Outside the test client, the current app's rules are used."""
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/p/"}
        ],
    )
    view = PathDownloadView(path="hello.txt")
    with app.test_request_context("/"):
        response = view.render_to_response()
        try:
            assert response.headers["X-Accel-Redirect"] == "/p/hello.txt"
            assert_download_response(response, content=HELLO)
            assert "expected 5 bytes" in failure(response, content=b"WRONG")
        finally:
            response.close()


def test_accel_redirect_no_rule_maps_is_not_checked(client: t.Any) -> None:
    """An nginx location no known rule maps: content cannot be checked."""
    with client.get("/nginx/hello.txt") as rv:
        headers = dict(rv.headers)
    # Made by hand, outside any application: no rule is known.
    response = Response(b"", headers=headers)
    assert_download_response(response, content=b"not checked", offload=True)


# -- parse_content_disposition ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("attachment", ("attachment", {})),
        ('INLINE; filename="a b.txt"', ("inline", {"filename": "a b.txt"})),
        ("attachment; filename=plain.txt", ("attachment", {"filename": "plain.txt"})),
        (
            'attachment; filename="we\\"ird;name\\\\.txt"',
            ("attachment", {"filename": 'we"ird;name\\.txt'}),
        ),
        (
            "attachment; filename*=UTF-8''%C3%A9t%C3%A9.txt; filename=\"ete.txt\"",
            ("attachment", {"filename": "été.txt", "filename-fallback": "ete.txt"}),
        ),
        (
            "attachment; filename=\"ete.txt\"; filename*=utf-8'fr'%C3%A9t%C3%A9.txt",
            ("attachment", {"filename": "été.txt", "filename-fallback": "ete.txt"}),
        ),
        (
            "attachment; filename*=ISO-8859-1''%E9t%E9.txt",
            ("attachment", {"filename": "été.txt"}),
        ),
    ],
    ids=["bare", "quoted", "token", "escapes", "star-first", "star-last", "latin-1"],
)
def test_parse_content_disposition(value: str, expected: tuple[str, t.Any]) -> None:
    assert parse_content_disposition(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        'attachment; filename="unterminated',
        "attachment; filename=a; filename=b",
        "attachment; filename*=%C3%A9.txt",
        "attachment; filename*=UTF-8''%FF.txt",
        "attachment; filename=a b",
        'attachment; filename="a"; injected',
    ],
    ids=[
        "empty",
        "unterminated",
        "repeated",
        "no-charset",
        "bad-utf8",
        "space-in-token",
        "bare-word",
    ],
)
def test_parse_content_disposition_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_content_disposition(value)


def test_storage_offload_is_checked_against_the_views_own_filesystem(
    download_storage: t.Any,
) -> None:
    """Final review: the helper read the rule's URL from the global
    ``memory://`` store, not the view's private one (the
    ``download_storage`` fixture), and failed a correct response."""
    from flask_download import FlaskDownload
    from flask_download import StorageDownloadView

    download_storage.pipe("/bucket/é k.txt", b"content")
    app = Flask(__name__)
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_url": "memory://bucket", "destination_url": "/int/"}
        ],
    )
    FlaskDownload(app)
    app.add_url_rule(
        "/s/<path:path>",
        view_func=StorageDownloadView.as_view("s", storage=download_storage),
    )
    with app.test_client().get("/s/bucket/%C3%A9%20k.txt") as rv:
        assert rv.headers["X-Accel-Redirect"] == "/int/%C3%A9%20k.txt"
        assert_download_response(rv, content=b"content", basename="é k.txt")
        with pytest.raises(AssertionError, match="content"):
            assert_download_response(rv, content=b"other")
