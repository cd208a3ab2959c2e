from __future__ import annotations

import pathlib
import re
import typing as t

import pytest
from flask import Flask

from example_app import create_app
from example_app.models import db
from example_app.models import Document
from example_app.models import SAMPLE_DOCUMENTS


@pytest.fixture
def example(tmp_path: pathlib.Path) -> t.Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}",
        }
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def _links(client: t.Any) -> dict[str, str]:
    with client.get("/") as rv:
        assert rv.status_code == 200
        page = rv.get_data(as_text=True)
    pairs = re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)
    return dict(pairs)


def test_first_run_creates_and_seeds_the_database_once(
    example: Flask, tmp_path: pathlib.Path
) -> None:
    again = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}"}
    )
    with again.app_context():
        slugs = db.session.scalars(db.select(Document.slug)).all()
        db.engine.dispose()
    assert sorted(slugs) == sorted(str(doc["slug"]) for doc in SAMPLE_DOCUMENTS)


def test_index_links_every_kind_of_download(example: Flask) -> None:
    links = _links(example.test_client())
    urls = set(links)
    assert {
        "/files/readme.txt",
        "/readme",
        "/files/r%C3%A9sum%C3%A9.txt",
        "/hello.txt",
        "/report.csv",
        "/large.bin",
        "/documents/1",
        "/documents/by-slug/readme",
        "/documents/3",
        "/dl/document/2",
        "/notes/readme.txt",
    } <= urls


def test_every_link_on_the_index_downloads(example: Flask) -> None:
    client = example.test_client()
    for url in _links(client):
        method = client.head if url == "/large.bin" else client.get
        with method(url) as rv:
            assert rv.status_code == 200, url
            assert rv.headers["X-Content-Type-Options"] == "nosniff"
            assert "filename=" in rv.headers["Content-Disposition"], url


@pytest.mark.parametrize(
    ("url", "disposition", "body"),
    [
        ("/readme", 'inline; filename="readme.txt"', b"Flask-Download example file."),
        ("/files/readme.txt", 'attachment; filename="readme.txt"', b"Flask-Download"),
        ("/documents/1", 'attachment; filename="readme.txt"', b"Flask-Download"),
        (
            "/documents/by-slug/resume",
            "attachment; filename=\"Resume - 2026.txt\"; filename*=UTF-8''"
            "R%C3%A9sum%C3%A9%20%E2%80%93%202026.txt",
            None,
        ),
        (
            "/documents/3",
            'attachment; filename="from-the-database.txt"',
            b"Ces octets sont dans SQLite.\n",
        ),
        (
            "/dl/document/by-slug/stored-in-db",
            'attachment; filename="from-the-database.txt"',
            b"Ces octets",
        ),
        ("/hello.txt", 'attachment; filename="hello.txt"', b"Hello from Flask"),
        ("/notes/readme.txt", 'inline; filename="readme.txt"', b"Flask-Download"),
    ],
    ids=[
        "inline",
        "path",
        "by-id",
        "non-ascii-by-slug",
        "largebinary",
        "blueprint",
        "virtual",
        "send_download",
    ],
)
def test_each_kind_answers_as_documented(
    example: Flask, url: str, disposition: str, body: bytes | None
) -> None:
    with example.test_client().get(url) as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Disposition"] == disposition
        if body is not None:
            assert rv.data.startswith(body)


def test_largebinary_document_supports_ranges_and_validators(example: Flask) -> None:
    client = example.test_client()
    with client.get("/documents/3", headers={"Range": "bytes=0-2"}) as rv:
        assert rv.status_code == 206
        assert rv.data == b"Ces"
        etag = rv.headers["ETag"]
        assert rv.headers["Last-Modified"]
    with client.get("/documents/3", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304


def test_missing_documents_are_404(example: Flask) -> None:
    client = example.test_client()
    for url in ("/documents/99", "/documents/by-slug/nope", f"/dl/document/{2**63}"):
        with client.get(url) as rv:
            assert rv.status_code == 404, url


def test_large_file_is_streamed(example: Flask) -> None:
    with example.test_client().get("/large.bin", buffered=False) as rv:
        assert rv.headers["Content-Length"] == str(64 * 1024 * 1024)
        first = next(iter(rv.response))
        assert first == bytes(range(256)) * 256
