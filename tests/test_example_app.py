"""The example app: a document library on Flask-Download (issue #18).

The browser tests are in ``test_browser.py``; these use the test client for
the app's rules, and real servers (``flask run``, Werkzeug's threaded server
with curl) for what happens on the wire.
"""

from __future__ import annotations

import collections.abc as cabc
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import typing as t
import urllib.request
import zipfile
import zlib
from html import unescape
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from conftest import free_port
from conftest import running_gunicorn
from conftest import running_werkzeug
from conftest import wait_for_port
from flask import Flask

from example_app import create_app
from example_app.demo import LARGE_FILE
from example_app.demo import MARK_EVERY
from example_app.documents import clean_filename
from example_app.documents import guess_mimetype
from example_app.models import db
from example_app.models import Document
from example_app.models import SAMPLE_USERS
from example_app.models import User
from flask_download import ConfigurationError

EXAMPLE_ROOT = pathlib.Path(__file__).parent.parent / "example_app"
#: Small enough to download whole in a test, not a multiple of MARK_EVERY.
LARGE_SIZE = 3 * MARK_EVERY + 12345


def make_example(tmp_path: pathlib.Path, **config: t.Any) -> Flask:
    """The example app with its database and files under ``tmp_path``."""
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}",
            "DOWNLOAD_ROOT": os.fspath(tmp_path / "files"),
            "EXAMPLE_LARGE_FILE_SIZE": LARGE_SIZE,
            **config,
        }
    )


@pytest.fixture
def example(tmp_path: pathlib.Path) -> cabc.Iterator[Flask]:
    app = make_example(tmp_path)
    yield app
    with app.app_context():
        db.engine.dispose()


def login(client: t.Any, name: str = "alice") -> None:
    with client.post("/auth/login", data={"name": name}) as rv:
        assert rv.status_code == 302


def upload(client: t.Any, *files: tuple[str, bytes]) -> list[int]:
    """Upload files; return the new documents' ids, in upload order."""
    data = {"file": [(io.BytesIO(content), name) for name, content in files]}
    with client.post("/upload", data=data, content_type="multipart/form-data") as rv:
        assert rv.status_code == 302, rv.get_data(as_text=True)
    with client.get("/") as rv:
        ids = re.findall(r'name="id" value="(\d+)"', rv.get_data(as_text=True))
    return sorted(int(id) for id in ids)[-len(files) :]


def rows(app: Flask) -> list[Document]:
    with app.app_context():
        found = db.session.scalars(sa.select(Document).order_by(Document.id)).all()
        db.session.expunge_all()
        return list(found)


def share_link(client: t.Any, id: int, expires: str = "300") -> str:
    with client.post(f"/documents/{id}/share", data={"expires": expires}) as rv:
        assert rv.status_code == 200
        page = rv.get_data(as_text=True)
    match = re.search(r'id="share-url"[^>]*value="([^"]+)"', page)
    assert match is not None
    return unescape(match.group(1))


# -- first run ------------------------------------------------------------------


def test_first_run_creates_the_database_and_sample_users_once(
    tmp_path: pathlib.Path,
) -> None:
    for _ in range(2):
        app = make_example(tmp_path)
        with app.app_context():
            names = db.session.scalars(sa.select(User.name)).all()
            db.engine.dispose()
        assert sorted(names) == sorted(SAMPLE_USERS)


def test_large_file_is_made_once_sparse_with_markers(tmp_path: pathlib.Path) -> None:
    size = 64 * MARK_EVERY + 7
    make_example(tmp_path, EXAMPLE_LARGE_FILE_SIZE=size)
    path = tmp_path / "files" / LARGE_FILE
    stat = path.stat()
    assert stat.st_size == size
    # Sparse: the markers take a page each, not the whole size.
    assert stat.st_blocks * 512 < size // 4
    with path.open("rb") as f:
        f.seek(5 * MARK_EVERY)
        assert f.read(18) == b"offset 0x00500000\n"
        assert f.read(100) == bytes(100)
    # A restart keeps the file (and so its ETag): downloads can resume.
    make_example(tmp_path, EXAMPLE_LARGE_FILE_SIZE=size)
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert not list(path.parent.glob("*.part"))


@pytest.mark.parametrize("size", [-1, "1G", 1.5, True], ids=repr)
def test_bad_large_file_size_fails_at_start_up(
    tmp_path: pathlib.Path, size: object
) -> None:
    with pytest.raises(ConfigurationError, match="EXAMPLE_LARGE_FILE_SIZE"):
        make_example(tmp_path, EXAMPLE_LARGE_FILE_SIZE=size)


def test_flask_run_works_from_a_fresh_clone(tmp_path: pathlib.Path) -> None:
    """``flask --app example_app run`` with an empty instance folder."""
    clone = tmp_path / "clone"
    shutil.copytree(
        EXAMPLE_ROOT,
        clone / "example_app",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    port = free_port()
    env = {
        **os.environ,
        # The copy first, then the library of this checkout.
        "PYTHONPATH": os.pathsep.join([os.fspath(clone), os.getcwd()]),
    }
    env.pop("FLASK_APP", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "example_app", "run"]
        + ["--port", str(port)],
        cwd=clone,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for_port(port, process), process.communicate()[1]
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/auth/login") as rv:
            page = rv.read().decode()
        assert all(f'value="{name}"' in page for name in SAMPLE_USERS)
        request = urllib.request.Request(f"{base}/large.bin", method="HEAD")
        with urllib.request.urlopen(request) as rv:
            assert rv.headers["Content-Length"] == str(1024**3)
            assert rv.headers["Accept-Ranges"] == "bytes"
    finally:
        process.terminate()
        process.communicate(timeout=10)
    instance = clone / "instance"
    assert (instance / "example.sqlite").is_file()
    assert (instance / "files" / "uploads").is_dir()
    large = instance / "files" / LARGE_FILE
    assert large.stat().st_blocks * 512 < 64 * MARK_EVERY


def test_example_needs_only_the_example_extra(tmp_path: pathlib.Path) -> None:
    """``pip install -e ".[example]"`` is enough: no optional backend is imported."""
    script = f"""
import sys
from example_app import create_app
app = create_app({{
    "SQLALCHEMY_DATABASE_URI": "sqlite:///{tmp_path / "x.sqlite"}",
    "DOWNLOAD_ROOT": {os.fspath(tmp_path / "files")!r},
    "EXAMPLE_LARGE_FILE_SIZE": 100,
}})
client = app.test_client()
client.post("/auth/login", data={{"name": "alice"}})
for url in ("/", "/large.bin", "/archive?id=1", "/documents.csv"):
    client.get(url).close()
print(" ".join(sorted({{name.partition(".")[0] for name in sys.modules}})))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    imported = set(result.stdout.split())
    assert {"flask_sqlalchemy", "sqlalchemy"} <= imported
    optional = {"fsspec", "s3fs", "urllib3", "botocore", "cryptography", "selenium"}
    assert not imported & optional


# -- users ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/documents/1",
        "/documents/1/download",
        "/documents/1/preview",
        "/archive?id=1",
    ],
)
def test_pages_and_downloads_need_a_user(example: Flask, url: str) -> None:
    with example.test_client().get(url) as rv:
        assert rv.status_code == 302
        assert rv.location.startswith("/auth/login?next=")
        assert parse_qs(urlsplit(rv.location).query)["next"] == [url]


def test_login_creates_a_user_and_returns_to_next(example: Flask) -> None:
    client = example.test_client()
    url = "/auth/login?next=/documents/1"
    with client.post(url, data={"name": "carol"}) as rv:
        assert rv.status_code == 302
        assert rv.location == "/documents/1"
    with client.get("/") as rv:
        assert '<strong id="user">carol</strong>' in rv.get_data(as_text=True)
    assert "carol" in {user.name for user in _users(example)}


def _users(app: Flask) -> list[User]:
    with app.app_context():
        return list(db.session.scalars(sa.select(User)).all())


@pytest.mark.parametrize(
    "target", ["//evil.example/", "/\\evil.example", "https://evil.example/"]
)
def test_login_never_redirects_off_site(example: Flask, target: str) -> None:
    with example.test_client().post(
        "/auth/login", query_string={"next": target}, data={"name": "alice"}
    ) as rv:
        assert rv.location == "/"


@pytest.mark.parametrize("name", ["", "a b", "x" * 41, "é", "<script>"])
def test_login_refuses_bad_names(example: Flask, name: str) -> None:
    with example.test_client().post("/auth/login", data={"name": name}) as rv:
        assert rv.status_code == 400
        assert "A user name is 1 to 40" in rv.get_data(as_text=True)
    assert len(_users(example)) == len(SAMPLE_USERS)


def test_logout_forgets_the_user(example: Flask) -> None:
    client = example.test_client()
    login(client)
    with client.post("/auth/logout") as rv:
        assert rv.location == "/auth/login"
    with client.get("/") as rv:
        assert rv.status_code == 302


# -- uploads --------------------------------------------------------------------


def test_upload_stores_generated_key_and_metadata(example: Flask) -> None:
    client = example.test_client()
    login(client)
    content = b"caf\xc3\xa9\n" * 1000
    (id,) = upload(client, ("Café – menu.txt", content))
    (document,) = rows(example)
    assert document.id == id
    assert document.filename == "Café – menu.txt"
    assert document.mimetype == "text/plain"
    assert document.size == len(content)
    assert document.crc32 == zlib.crc32(content)
    assert abs(time.time() - document.uploaded_at.timestamp()) < 60
    # The file is under a random key, never the client's name.
    assert re.fullmatch(r"uploads/[0-9a-f]{32}", document.path)
    stored = pathlib.Path(example.config["DOWNLOAD_ROOT"], document.path)
    assert stored.read_bytes() == content


def test_several_files_upload_at_once(example: Flask) -> None:
    client = example.test_client()
    login(client)
    upload(client, ("a.txt", b"A"), ("a.txt", b"B"), ("empty.bin", b""))
    documents = rows(example)
    assert [(d.filename, d.size) for d in documents] == [
        ("a.txt", 1),
        ("a.txt", 1),
        ("empty.bin", 0),
    ]
    assert len({d.path for d in documents}) == 3


def test_upload_without_a_file_is_400(example: Flask) -> None:
    client = example.test_client()
    login(client)
    for data in ({}, {"file": (io.BytesIO(b""), "")}):
        with client.post(
            "/upload", data=data, content_type="multipart/form-data"
        ) as rv:
            assert rv.status_code == 400
            assert "Choose a file to upload first." in rv.get_data(as_text=True)
    assert rows(example) == []


def test_upload_over_the_limit_is_413_and_leaves_nothing(
    tmp_path: pathlib.Path,
) -> None:
    app = make_example(tmp_path, MAX_CONTENT_LENGTH=1000)
    client = app.test_client()
    login(client)
    data = {"file": (io.BytesIO(bytes(2000)), "big.bin")}
    with client.post("/upload", data=data, content_type="multipart/form-data") as rv:
        assert rv.status_code == 413
    assert rows(app) == []
    assert list((tmp_path / "files" / "uploads").iterdir()) == []
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("a\x00b\r\n\x7fc.txt", "abc.txt"),
        ("  spaced.txt  ", "spaced.txt"),
        ("../", "upload"),
        ("x" * 300 + ".tar.gz", "x" * 252 + ".gz"),
        ("y" * 300, "y" * 255),
    ],
    ids=["plain", "windows", "dots", "controls", "spaces", "empty", "long", "noext"],
)
def test_clean_filename(raw: str, kept: str) -> None:
    assert clean_filename(raw) == kept


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [
        ("photo.PNG", "image/png"),
        ("paper.pdf", "application/pdf"),
        ("backup.tar.gz", "application/gzip"),
        ("data.json.bz2", "application/x-bzip2"),
        ("README", "application/octet-stream"),
    ],
)
def test_media_type_is_guessed_from_the_name(name: str, mimetype: str) -> None:
    assert guess_mimetype(name) == mimetype


def test_delete_removes_row_and_file(example: Flask) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("gone.txt", b"bye"))
    (document,) = rows(example)
    stored = pathlib.Path(example.config["DOWNLOAD_ROOT"], document.path)
    with client.post(f"/documents/{id}/delete") as rv:
        assert rv.status_code == 302
    assert rows(example) == []
    assert not stored.exists()
    with client.get(f"/documents/{id}/download") as rv:
        assert rv.status_code == 404


# -- downloads ------------------------------------------------------------------


def test_download_keeps_the_original_name(example: Flask) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("Résumé – 2026.txt", b"hello"))
    with client.get(f"/documents/{id}/download") as rv:
        assert rv.status_code == 200
        assert rv.data == b"hello"
        disposition = rv.headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="Resume')
        assert disposition.endswith(
            "filename*=UTF-8''R%C3%A9sum%C3%A9%20%E2%80%93%202026.txt"
        )
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert rv.headers["Cache-Control"] == "private, no-cache"


def test_download_answers_ranges_and_revalidation(example: Flask) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("digits.txt", b"0123456789"))
    url = f"/documents/{id}/download"
    with client.get(url, headers={"Range": "bytes=2-4"}) as rv:
        assert rv.status_code == 206
        assert rv.data == b"234"
        assert rv.headers["Content-Range"] == "bytes 2-4/10"
        etag = rv.headers["ETag"]
    with client.get(url, headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.data == b""
    with client.get(url, headers={"Range": "bytes=10-"}) as rv:
        assert rv.status_code == 416
        assert rv.headers["Content-Range"] == "bytes */10"


@pytest.mark.parametrize(
    "url",
    [
        "/documents/{id}",
        "/documents/{id}/download",
        "/documents/{id}/preview",
        "/archive?id={id}",
    ],
)
def test_other_users_documents_are_404(example: Flask, url: str) -> None:
    alice = example.test_client()
    login(alice, "alice")
    (id,) = upload(alice, ("private.txt", b"alice only"))
    bob = example.test_client()
    login(bob, "bob")
    with bob.get(url.format(id=id)) as rv:
        assert rv.status_code == 404
        assert b"alice only" not in rv.data
    for action in ("share", "delete"):
        with bob.post(f"/documents/{id}/{action}", data={"expires": "300"}) as rv:
            assert rv.status_code == 404
    with alice.get(url.format(id=id)) as rv:
        assert rv.status_code == 200
    with bob.get("/") as rv:
        assert "private.txt" not in rv.get_data(as_text=True)


@pytest.mark.parametrize("id", [2**63, 10**30])
def test_ids_no_row_can_have_are_404(example: Flask, id: int) -> None:
    client = example.test_client()
    login(client)
    for url in ("", "/download", "/preview"):
        with client.get(f"/documents/{id}{url}") as rv:
            assert rv.status_code == 404, url
    for action in ("share", "delete"):
        with client.post(f"/documents/{id}/{action}", data={"expires": "300"}) as rv:
            assert rv.status_code == 404, action


@pytest.mark.parametrize(
    ("name", "inline", "sandboxed"),
    [
        ("photo.png", True, False),
        ("paper.pdf", True, False),
        ("notes.txt", True, False),
        ("page.html", True, True),
        ("drawing.svg", True, True),
        ("setup.exe", False, False),
        ("backup.tar.gz", False, False),
    ],
)
def test_preview_is_inline_only_where_safe(
    example: Flask, name: str, inline: bool, sandboxed: bool
) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, (name, b"<p>content</p>"))
    with client.get(f"/documents/{id}") as rv:
        assert (f"/documents/{id}/preview" in rv.get_data(as_text=True)) is inline
    with client.get(f"/documents/{id}/preview") as rv:
        assert rv.status_code == 200
        disposition = rv.headers["Content-Disposition"]
        assert disposition.startswith("inline;" if inline else "attachment;")
        assert rv.headers["X-Content-Type-Options"] == "nosniff"
        csp = rv.headers.get("Content-Security-Policy", "")
        assert csp.startswith("sandbox") is sandboxed
        assert "allow-scripts" not in csp


# -- shared links ---------------------------------------------------------------


@pytest.mark.parametrize("expires", [300, 86400])
def test_shared_link_opens_without_login_until_it_expires(
    example: Flask, monkeypatch: pytest.MonkeyPatch, expires: int
) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("shared.txt", b"for everyone"))
    made = time.time()
    link = share_link(client, id, str(expires))
    url = urlsplit(link)
    assert url.scheme == "http"
    assert url.path == f"/shared/{id}"
    expiry = int(parse_qs(url.query)["expires"][0])
    assert made + expires <= expiry <= time.time() + expires + 1
    anonymous = example.test_client()
    with anonymous.get(link) as rv:
        assert rv.status_code == 200
        assert rv.data == b"for everyone"
        assert 'filename="shared.txt"' in rv.headers["Content-Disposition"]
        assert rv.headers["Cache-Control"] == "private, no-cache"
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + expires + 2)
    with anonymous.get(link) as rv:
        assert rv.status_code == 410


def test_shared_link_cannot_be_pointed_elsewhere(example: Flask) -> None:
    client = example.test_client()
    login(client)
    first, second = upload(client, ("one.txt", b"1"), ("two.txt", b"2"))
    link = share_link(client, first)
    anonymous = example.test_client()
    tampered = [
        link.replace(f"/shared/{first}", f"/shared/{second}"),
        re.sub(r"expires=(\d+)", lambda m: f"expires={int(m[1]) + 86400}", link),
        link.split("?")[0],
    ]
    for url in tampered:
        with anonymous.get(url) as rv:
            assert rv.status_code == 403, url
            assert b"2" not in rv.data


@pytest.mark.parametrize("expires", ["", "60", "31536000", "abc"])
def test_share_only_offers_the_listed_durations(example: Flask, expires: str) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("x.txt", b"x"))
    with client.post(f"/documents/{id}/share", data={"expires": expires}) as rv:
        assert rv.status_code == 400
        page = rv.get_data(as_text=True)
        assert "Choose how long the link stays valid." in page
        assert "share-url" not in page


# -- archives -------------------------------------------------------------------


def test_archive_of_selected_documents(example: Flask) -> None:
    client = example.test_client()
    login(client)
    ids = upload(
        client, ("été.txt", b"summer"), ("notes.txt", b"n" * 5000), ("été.txt", b"2")
    )
    with client.get("/archive", query_string={"id": ids}) as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "application/zip"
        assert 'filename="documents.zip"' in rv.headers["Content-Disposition"]
        assert rv.headers["Content-Length"] == str(len(rv.data))
        assert rv.headers["Cache-Control"] == "private, no-cache"
        archive = zipfile.ZipFile(io.BytesIO(rv.data))
    assert archive.testzip() is None
    assert archive.namelist() == ["été.txt", "notes.txt", "été (2).txt"]
    assert archive.read("notes.txt") == b"n" * 5000
    with client.get(
        "/archive", query_string={"id": ids}, headers={"Range": "bytes=0-3"}
    ) as rv:
        assert rv.status_code == 206
        assert rv.data == b"PK\x03\x04"


def test_archive_uses_the_stored_crc32(example: Flask) -> None:
    """The CRC-32 column is what the archive carries: no second read."""
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("a.txt", b"abc"))
    with example.app_context():
        db.session.execute(sa.update(Document).values(crc32=0x12345678))
        db.session.commit()
    with client.get("/archive", query_string={"id": id}) as rv:
        archive = zipfile.ZipFile(io.BytesIO(rv.data))
    assert archive.getinfo("a.txt").CRC == 0x12345678


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("id=", 400),
        ("id=1&id=x", 400),
        ("id=%C2%B2", 400),
        ("id=" + "&id=".join(["1"] * 101), 400),
        ("id=" + "9" * 5000, 400),
        ("id=1&id=99", 404),
        (f"id={2**63}", 404),
        (f"id=1&id={2**70}", 404),
    ],
    ids=[
        "none",
        "empty",
        "word",
        "superscript",
        "too-many",
        "too-long",
        "missing",
        "past-int64",
        "huge",
    ],
)
def test_archive_bad_selection(example: Flask, query: str, status: int) -> None:
    client = example.test_client()
    login(client)
    upload(client, ("a.txt", b"a"))
    with client.get(f"/archive?{query}") as rv:
        assert rv.status_code == status


# -- export -------------------------------------------------------------------


def test_export_lists_own_documents_as_csv(example: Flask) -> None:
    client = example.test_client()
    login(client, "carol")
    upload(client, ("=HYPERLINK(1).txt", b"x"), ("plain.txt", b"hello"))
    other = example.test_client()
    login(other, "dave")
    upload(other, ("dave.txt", b"not carol's"))
    with client.get("/documents.csv") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert rv.headers["Content-Disposition"] == (
            'attachment; filename="carol-documents.csv"'
        )
        assert rv.headers["Cache-Control"] == "private, no-cache"
        etag = rv.headers["ETag"]
        lines = rv.get_data(as_text=True).splitlines()
    assert lines[0] == "id,filename,mimetype,size,crc32,uploaded_at"
    assert [line.split(",")[1:5] for line in lines[1:]] == [
        ["'=HYPERLINK(1).txt", "text/plain", "1", f"{zlib.crc32(b'x'):08x}"],
        ["plain.txt", "text/plain", "5", f"{zlib.crc32(b'hello'):08x}"],
    ]
    # Same list, same ETag: a browser revalidates with a 304.
    with client.get("/documents.csv", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304


def test_checksums_are_an_sfv_file(example: Flask) -> None:
    client = example.test_client()
    login(client, "erin")
    upload(client, ("été 1.txt", b"one"), ("b.bin", b"two"))
    with client.get("/documents.sfv") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert 'filename="erin-documents.sfv"' in rv.headers["Content-Disposition"]
        assert rv.headers["Cache-Control"] == "private, no-cache"
        lines = rv.get_data(as_text=True).splitlines()
        etag = rv.headers["ETag"]
    assert lines[0].startswith(";")
    assert lines[1:] == [
        f"été 1.txt {zlib.crc32(b'one'):08X}",
        f"b.bin {zlib.crc32(b'two'):08X}",
    ]
    with client.get("/documents.sfv", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
    upload(client, ("c.txt", b"three"))
    with client.get("/documents.sfv", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 200


def test_index_links_every_kind_of_download(example: Flask) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("notes.txt", b"notes"))
    with client.get("/") as rv:
        page = rv.get_data(as_text=True)
    links = set(re.findall(r'<a[^>]* href="(/[^"]*)"', page))
    assert {
        f"/documents/{id}/download",  # ObjectDownloadView
        f"/documents/{id}/preview",  # inline
        "/documents.csv",  # send_download
        "/documents.sfv",  # VirtualDownloadView
        "/large.bin",  # PathDownloadView
    } <= links
    assert 'action="/archive"' in page  # ZipDownloadView
    for url in links:
        with client.head(url) as rv:
            assert rv.status_code == 200, url


# -- on the wire ------------------------------------------------------------------


@pytest.fixture
def werkzeug_url(example: Flask) -> cabc.Iterator[str]:
    with running_werkzeug(example) as url:
        yield url


@pytest.fixture
def gunicorn_url(example: Flask) -> cabc.Iterator[str]:
    """The same app in gunicorn, from the factory as one would deploy it."""
    config = {
        key: example.config[key]
        for key in (
            "SQLALCHEMY_DATABASE_URI",
            "DOWNLOAD_ROOT",
            "EXAMPLE_LARGE_FILE_SIZE",
        )
    }
    with running_gunicorn(f"example_app:create_app({config!r})") as url:
        yield url


@pytest.fixture(params=["werkzeug", "gunicorn"])
def example_url(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.getfixturevalue(f"{request.param}_url"))


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_large_file_resumes_with_curl(
    example: Flask, example_url: str, tmp_path: pathlib.Path
) -> None:
    source = pathlib.Path(example.config["DOWNLOAD_ROOT"], LARGE_FILE)
    expected = source.read_bytes()
    # An interrupted download: the first 1.5 markers are on disk already.
    target = tmp_path / "large.bin"
    done = MARK_EVERY + MARK_EVERY // 2
    target.write_bytes(expected[:done])
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-C", "-", "-o", os.fspath(target)]
        + ["-D", "-", f"{example_url}/large.bin"],
        capture_output=True,
        check=True,
    )
    headers = result.stdout.decode("latin-1").lower()
    assert headers.startswith("http/1.1 206")
    assert f"content-range: bytes {done}-{LARGE_SIZE - 1}/{LARGE_SIZE}" in headers
    assert target.read_bytes() == expected


def test_pages_load_nothing_from_elsewhere(example: Flask) -> None:
    """No CDN: every script, stylesheet and image is served by the app."""
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("a.txt", b"a"))
    for url in ("/auth/login", "/", f"/documents/{id}"):
        with client.get(url) as rv:
            page = rv.get_data(as_text=True)
        loaded = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', page)
        assert loaded, url
        assert all(src.startswith("/static/") for src in loaded), loaded
        for src in loaded:
            with client.get(src) as rv:
                assert rv.status_code == 200
                assert b"http://" not in rv.data
                assert b"https://" not in rv.data


def test_errors_are_pages_of_the_site(
    example: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("a.txt", b"a"))
    link = share_link(client, id)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 400)
    with example.test_client().get(link) as rv:
        assert rv.status_code == 410
        page = rv.get_data(as_text=True)
    assert "<h1>410 Gone</h1>" in page
    assert "This link has expired: ask for a new link." in page
    assert 'href="/static/style.css"' in page
    with client.delete(f"/documents/{id}") as rv:
        assert rv.status_code == 405
        assert sorted(rv.headers["Allow"].split(", ")) == ["GET", "HEAD", "OPTIONS"]
        assert "<h1>405 Method Not Allowed</h1>" in rv.get_data(as_text=True)
