"""Attacks on the example application (issue 18), over a real server.

The login's ``next=`` must only lead back to this site (no open redirect,
no 500 for a value that cannot go into ``Location``); names of uploaded
files are shown escaped everywhere; an inline preview of an active type is
sandboxed; the key that signs sessions and share links is never a
well-known default.
"""

from __future__ import annotations

import collections.abc as cabc
import html
import os
import pathlib
import re
import typing as t
import uuid
from urllib.parse import quote

import pytest
from flask import Flask

from .conftest import LiveServer
from .conftest import raw_request
from .conftest import RawResponse
from .conftest import start_server
from .conftest import stop_server

example_app = pytest.importorskip("example_app")


def _make(tmp_path: pathlib.Path, **config: t.Any) -> Flask:
    app: Flask = example_app.create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}",
            "DOWNLOAD_ROOT": os.fspath(tmp_path / "files"),
            "EXAMPLE_LARGE_FILE_SIZE": 1000,
            **config,
        }
    )
    return app


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> cabc.Iterator[LiveServer]:
    app = _make(tmp_path_factory.mktemp("example_attacks"))
    server = start_server(app)
    try:
        yield server
    finally:
        stop_server(server)
        with app.app_context():
            example_app.models.db.engine.dispose()


def _post(
    live: LiveServer,
    target: str,
    body: bytes,
    content_type: str,
    cookie: str | None = None,
) -> RawResponse:
    head = [
        f"POST {target} HTTP/1.1",
        f"Host: {live.host}",
        "Connection: close",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    if cookie:
        head.append(f"Cookie: {cookie}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    return raw_request(live.port, data, method="POST")


def _get(live: LiveServer, target: str, cookie: str) -> RawResponse:
    data = (
        f"GET {target} HTTP/1.1\r\nHost: {live.host}\r\nConnection: close\r\n"
        f"Cookie: {cookie}\r\n\r\n"
    ).encode("latin-1")
    return raw_request(live.port, data)


def _login(live: LiveServer, next_value: str | None = None) -> RawResponse:
    target = "/auth/login"
    if next_value is not None:
        target += "?next=" + quote(next_value, safe="")
    return _post(live, target, b"name=mallory", "application/x-www-form-urlencoded")


def _session(live: LiveServer) -> str:
    response = _login(live)
    assert response.status == 302, response
    cookie = response.header("Set-Cookie")
    assert cookie is not None
    return cookie.split(";", 1)[0]


@pytest.mark.parametrize(
    "next_value",
    [
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "/\r\n/evil.example/",
        "/\n/evil.example/",
        "/ /evil.example/",
        "https://evil.example/",
        "\\\\evil.example/",
        "/\x00/evil.example/",
        "/\u3000/evil.example/",
    ],
)
def test_login_next_never_leaves_the_site(live: LiveServer, next_value: str) -> None:
    response = _login(live, next_value)
    assert response.status == 302, response
    location = response.header("Location") or ""
    # Whatever the browser strips (tabs, newlines, spaces), it stays a path.
    stripped = re.sub(r"[\x00-\x20\x7f]", "", location)
    if stripped.startswith(("http://", "https://")):
        stripped = "/" + stripped.split("/", 3)[-1]
        assert location.startswith(f"http://{live.host}/"), location
    assert stripped.startswith("/") and not stripped.startswith(("//", "/\\"))


def test_login_next_to_a_local_page_is_kept(live: LiveServer) -> None:
    response = _login(live, "/documents/1?x=%2F%2Fy")
    assert response.status == 302
    assert (response.header("Location") or "").endswith("/documents/1?x=%2F%2Fy")


MARKUP = "<img src=x onerror=alert(1)>"


def _upload(live: LiveServer, cookie: str, name: str, content: bytes) -> RawResponse:
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return _post(
        live, "/upload", body, f"multipart/form-data; boundary={boundary}", cookie
    )


def test_uploaded_names_are_escaped_and_active_previews_sandboxed(
    live: LiveServer,
) -> None:
    cookie = _session(live)
    script = b"<html><script>alert(document.cookie)</script></html>"
    for name in (MARKUP + ".html", "x.svg", "x.xml"):
        content = (
            script
            if not name.endswith(".svg")
            else (
                b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
            )
        )
        assert _upload(live, cookie, name, content).status == 302
    index = _get(live, "/", cookie)
    assert index.status == 200
    page = index.body.decode()
    assert MARKUP not in page and html.escape(MARKUP, quote=False) in page
    ids = sorted({int(i) for i in re.findall(r"/documents/(\d+)", page)})
    assert len(ids) >= 3
    for id in ids:
        detail = _get(live, f"/documents/{id}", cookie)
        assert detail.status == 200
        assert MARKUP not in detail.body.decode()
        preview = _get(live, f"/documents/{id}/preview", cookie)
        assert preview.status == 200, preview
        disposition = preview.header("Content-Disposition") or ""
        if disposition.startswith("inline"):
            assert preview.header("Content-Security-Policy") == "sandbox", preview


def test_secret_key_is_random_and_kept(tmp_path: pathlib.Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    first = example_app.instance_secret_key(os.fspath(instance))
    again = example_app.instance_secret_key(os.fspath(instance))
    other = example_app.instance_secret_key(os.fspath(tmp_path))
    assert first == again and len(first) >= 64
    assert other != first
    assert (instance / "secret_key").stat().st_mode & 0o077 == 0
    assert [p.name for p in instance.iterdir()] == ["secret_key"]
    app = _make(tmp_path / "app")
    try:
        assert app.config["SECRET_KEY"] not in (None, "", "dev")
        assert (
            app.config["SECRET_KEY"]
            == (pathlib.Path(app.instance_path) / "secret_key").read_text().strip()
        )
    finally:
        # Its database connection, left to the garbage collector, would be
        # closed in whichever later test the collector runs (one counting
        # descriptors sees one fewer).
        with app.app_context():
            example_app.models.db.engine.dispose()


def test_bidi_controls_are_dropped_from_uploaded_names(live: LiveServer) -> None:
    cookie = _session(live)
    name = "invoice\u202efdp.exe"
    assert _upload(live, cookie, name, b"MZ").status == 302
    page = _get(live, "/", cookie).body.decode()
    assert "\u202e" not in page
    assert "invoicefdp.exe" in page
