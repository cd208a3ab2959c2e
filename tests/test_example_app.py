"""The example app: a document library on Flask-Download (issue #18).

The browser tests are in ``test_browser.py``; these use the test client for
the app's rules, and real servers (``flask run``, Werkzeug's threaded server
with curl) for what happens on the wire. No test needs the network: the
remote-file demo is pointed at a server of the test (``upstream_url``).
"""

from __future__ import annotations

import collections.abc as cabc
import http.cookiejar
import io
import os
import pathlib
import re
import shutil
import struct
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
from example_app.demo import EDGE_FILES
from example_app.demo import EDGE_LINK_EXPIRES
from example_app.demo import LARGE_FILE
from example_app.demo import MARK_EVERY
from example_app.demo import STORAGE_FILES
from example_app.documents import clean_filename
from example_app.documents import guess_mimetype
from example_app.documents import UPLOAD_DIR
from example_app.models import db
from example_app.models import Document
from example_app.models import SAMPLE_USERS
from example_app.models import User
from example_app.samples import SAMPLES
from flask_download import ConfigurationError
from flask_download import VirtualDownloadView
from flask_download.http import _pool

EXAMPLE_ROOT = pathlib.Path(__file__).parent.parent / "example_app"
#: Small enough to download whole in a test, not a multiple of MARK_EVERY.
LARGE_SIZE = 3 * MARK_EVERY + 12345
#: What the test's upstream serves for the remote-file demo.
UPSTREAM_BODY = b"Hypertext Transfer Protocol (HTTP) semantics.\n" * 100


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
    """The uploaded documents (not the samples made on first run)."""
    with app.app_context():
        found = db.session.scalars(
            sa.select(Document)
            .where(Document.path.startswith(f"{UPLOAD_DIR}/"))
            .order_by(Document.id)
        ).all()
        db.session.expunge_all()
        return list(found)


@pytest.fixture(scope="module")
def upstream_url() -> cabc.Iterator[str]:
    """Another web server on 127.0.0.1, for the remote-file demo.

    Loopback is refused unless allowed: apps that use it set
    ``DOWNLOAD_HTTP_ALLOWED_HOSTS=["127.0.0.1"]`` (see :func:`remote_config`).
    """
    upstream = Flask("upstream")
    view = VirtualDownloadView.as_view(
        "rfc", content=UPSTREAM_BODY, basename="rfc9110.txt"
    )
    upstream.add_url_rule("/rfc9110.txt", view_func=view)
    with running_werkzeug(upstream) as url:
        yield url
    # Pooled keep-alive connections to the stopped server.
    _pool().clear()


def remote_config(upstream_url: str) -> dict[str, t.Any]:
    """Config that points the remote-file demo at the test's upstream."""
    return {
        "EXAMPLE_HTTP_URL": f"{upstream_url}/rfc9110.txt",
        "DOWNLOAD_HTTP_ALLOWED_HOSTS": ["127.0.0.1"],
    }


def index_links(page: str) -> list[str]:
    """The links of a page to this site, in order, without duplicates."""
    found = re.findall(r'<a[^>]* href="(/[^"]*)"', page)
    return list(dict.fromkeys(unescape(url) for url in found))


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


def test_first_run_seeds_the_sample_documents_once(tmp_path: pathlib.Path) -> None:
    expected = sorted((s.owner, s.filename, s.content) for s in SAMPLES)
    for _ in range(2):
        app = make_example(tmp_path)
        with app.app_context():
            found = db.session.execute(
                sa.select(User.name, Document.filename, Document.path)
                .join(Document.owner)
                .order_by(Document.id)
            ).all()
            db.engine.dispose()
        root = tmp_path / "files"
        seeded = sorted(
            (owner, name, (root / path).read_bytes()) for owner, name, path in found
        )
        assert seeded == expected
    assert {owner for owner, _, _ in expected} == set(SAMPLE_USERS)
    names = [name for _, name, _ in expected]
    assert any(not name.isascii() for name in names)
    assert any('"' in name and ";" in name for name in names)
    assert {guess_mimetype(name) for name in names} >= {"text/html", "image/svg+xml"}


def test_deleted_sample_stays_deleted_after_a_restart(tmp_path: pathlib.Path) -> None:
    app = make_example(tmp_path)
    client = app.test_client()
    login(client)
    with client.get("/") as rv:
        ids = re.findall(r'name="id" value="(\d+)"', rv.get_data(as_text=True))
    with client.post(f"/documents/{ids[0]}/delete") as rv:
        assert rv.status_code == 302
    with app.app_context():
        db.engine.dispose()
    app = make_example(tmp_path)
    client = app.test_client()
    login(client)
    with client.get("/") as rv:
        left = re.findall(r'name="id" value="(\d+)"', rv.get_data(as_text=True))
    assert left == ids[1:]
    with app.app_context():
        db.engine.dispose()


def test_demo_files_are_kept_across_restarts(tmp_path: pathlib.Path) -> None:
    make_example(tmp_path)
    sample = tmp_path / "files" / "sample"
    files = [sample / "storage" / key for key in STORAGE_FILES]
    files += [sample / "edge" / name for name in EDGE_FILES]
    stats = [path.stat().st_mtime_ns for path in files]
    make_example(tmp_path)
    assert [path.stat().st_mtime_ns for path in files] == stats
    assert not list(sample.rglob("*.part"))


@pytest.mark.parametrize("size", [-1, "1G", 1.5, True], ids=repr)
def test_bad_large_file_size_fails_at_start_up(
    tmp_path: pathlib.Path, size: object
) -> None:
    with pytest.raises(ConfigurationError, match="EXAMPLE_LARGE_FILE_SIZE"):
        make_example(tmp_path, EXAMPLE_LARGE_FILE_SIZE=size)


def test_flask_run_works_from_a_fresh_clone(
    tmp_path: pathlib.Path, upstream_url: str
) -> None:
    """``flask --app example_app run`` with an empty instance folder: every
    link of the index answers on the real server, before any upload."""
    clone = tmp_path / "clone"
    shutil.copytree(
        EXAMPLE_ROOT,
        clone / "example_app",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    # The remote-file demo fetches the test's upstream, not the network.
    (clone / "instance").mkdir()
    settings = "".join(
        f"{key} = {value!r}\n" for key, value in remote_config(upstream_url).items()
    )
    (clone / "instance" / "config.py").write_text(settings)
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
        # Logged in as alice, with a session cookie.
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        with browser.open(f"{base}/auth/login", data=b"name=alice") as rv:
            page = rv.read().decode()
        assert "No documents yet" not in page
        assert set(kind_links(page)) == set(KINDS)
        for url in index_links(page):
            # A range, so that large.bin is not read whole (urllib follows
            # redirects: every answer must end in a 200 or a 206).
            request = urllib.request.Request(base + url, headers={"Range": "bytes=0-9"})
            with browser.open(request) as rv:
                assert rv.status in (200, 206), url
                rv.read()
    finally:
        process.terminate()
        process.communicate(timeout=10)
    instance = clone / "instance"
    assert (instance / "example.sqlite").is_file()
    assert (instance / "files" / "uploads").is_dir()
    large = instance / "files" / LARGE_FILE
    assert large.stat().st_blocks * 512 < 64 * MARK_EVERY


#: Packages of extras other than ``example`` (and of the test suite).
OPTIONAL = ("fsspec", "s3fs", "urllib3", "botocore", "cryptography", "selenium")


def test_example_needs_only_the_example_extra(tmp_path: pathlib.Path) -> None:
    """``pip install -e ".[example]"`` is enough: without the optional
    packages the app starts and serves every link of its index; the storage
    and remote-file demos answer 501 with the command that installs theirs."""
    script = f"""
import re
import sys
from html import unescape
for name in {OPTIONAL!r}:
    sys.modules[name] = None  # as if not installed: importing it fails
from example_app import create_app
app = create_app({{
    "SQLALCHEMY_DATABASE_URI": "sqlite:///{tmp_path / "x.sqlite"}",
    "DOWNLOAD_ROOT": {os.fspath(tmp_path / "files")!r},
    "EXAMPLE_LARGE_FILE_SIZE": 100,
}})
client = app.test_client()
client.post("/auth/login", data={{"name": "alice"}})
with client.get("/") as rv:
    page = rv.get_data(as_text=True)
print("PAGE", "Flask-Download[storage]" in page, "Flask-Download[http]" in page)
for url in dict.fromkeys(re.findall(r'<a[^>]* href="(/[^"]*)"', page)):
    with client.get(unescape(url)) as rv:
        print(rv.status_code, url, b"pip install" in rv.data)
print("IMPORTED", *sorted({{name.partition(".")[0] for name in sys.modules}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "PAGE True True"
    imported = set(lines[-1].split()[1:])
    assert {"flask_sqlalchemy", "sqlalchemy"} <= imported
    answers = {line.split()[1]: line.split()[::2] for line in lines[1:-1]}
    needs_extra = [url for url in answers if url.startswith(("/storage/", "/remote"))]
    assert len(needs_extra) == 1 + len(STORAGE_FILES)
    for url in needs_extra:
        assert answers.pop(url) == ["501", "True"], url
    assert len(answers) > 10
    assert {status for status, _ in answers.values()} == {"200"}, answers


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


def test_login_page_answers_head_like_get(example: Flask) -> None:
    client = example.test_client()
    with client.get("/auth/login") as got, client.head("/auth/login") as head:
        assert (got.status_code, head.status_code) == (200, 200)
        assert head.data == b""
        assert head.headers["Content-Length"] == got.headers["Content-Length"]
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
    assert re.fullmatch(rf"/shared/{id}/[0-9a-f]{{32}}", url.path), url.path
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
    keys = {d.id: d.share_key for d in rows(example)}
    anonymous = example.test_client()
    tampered = [
        link.replace(f"/shared/{first}", f"/shared/{second}"),
        link.replace(keys[first], keys[second]),
        link.replace(
            f"/shared/{first}/{keys[first]}", f"/shared/{second}/{keys[second]}"
        ),
        re.sub(r"expires=(\d+)", lambda m: f"expires={int(m[1]) + 86400}", link),
        link.split("?")[0],
    ]
    for url in tampered:
        with anonymous.get(url) as rv:
            assert rv.status_code == 403, url
            assert b"2" not in rv.data


def test_ids_of_deleted_documents_are_never_given_again(example: Flask) -> None:
    client = example.test_client()
    login(client)
    (first,) = upload(client, ("old.txt", b"old"))
    with client.post(f"/documents/{first}/delete") as rv:
        assert rv.status_code == 302
    (second,) = upload(client, ("new.txt", b"new"))
    assert second > first  # AUTOINCREMENT: the deleted newest id stays unused


def test_shared_link_of_a_deleted_document_never_opens_the_row_given_its_id(
    example: Flask,
) -> None:
    # A database that gives ids again (one made before AUTOINCREMENT, or
    # another engine): the link binds the row's random key, not just the id.
    alice = example.test_client()
    login(alice)
    (id,) = upload(alice, ("minutes.txt", b"alice shares this"))
    link = share_link(alice, id, "86400")
    anonymous = example.test_client()
    with anonymous.get(link) as rv:
        assert rv.data == b"alice shares this"
    with alice.post(f"/documents/{id}/delete") as rv:
        assert rv.status_code == 302
    bob = example.test_client()
    login(bob, "bob")
    (other,) = upload(bob, ("salary.txt", b"bob's private salary"))
    with example.app_context():
        document = db.session.get(Document, other)
        assert document is not None
        document.id = id  # the id the deleted document had
        db.session.commit()
    with bob.get(f"/documents/{id}/download") as rv:
        assert rv.data == b"bob's private salary"
    with anonymous.get(link) as rv:
        assert rv.status_code == 404
        assert b"salary" not in rv.data


def test_shared_link_of_a_sample_document(example: Flask) -> None:
    client = example.test_client()
    login(client)
    with client.get("/") as rv:
        ids = re.findall(r'name="id" value="(\d+)"', rv.get_data(as_text=True))
    link = share_link(client, int(ids[0]))
    with example.app_context():
        document = db.session.get(Document, int(ids[0]))
        assert document is not None
        assert f"/{document.share_key}?" in link
        content = pathlib.Path(
            example.config["DOWNLOAD_ROOT"], document.path
        ).read_bytes()
    with example.test_client().get(link) as rv:
        assert rv.status_code == 200
        assert rv.data == content


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
    """The CRC-32 column is what the archive carries: a range of the central
    directory has it without reading the member (a column that is wrong on
    purpose here shows it; a whole download, which reads the member, is cut
    short for it: tests/test_audit7_archive.py)."""
    client = example.test_client()
    login(client)
    (id,) = upload(client, ("a.txt", b"abc"))
    with example.app_context():
        db.session.execute(sa.update(Document).values(crc32=0x12345678))
        db.session.commit()
    query = {"id": id}
    # The end record (22 bytes, no comment) says where the directory is.
    with client.get(
        "/archive", query_string=query, headers={"Range": "bytes=-22"}
    ) as rv:
        assert rv.status_code == 206
        end = rv.data
    assert end[:4] == b"PK\x05\x06"
    size, offset = struct.unpack("<II", end[12:20])
    directory_range = {"Range": f"bytes={offset}-{offset + size - 1}"}
    with client.get("/archive", query_string=query, headers=directory_range) as rv:
        assert rv.status_code == 206
        directory = rv.data
    assert directory[:4] == b"PK\x01\x02"
    assert struct.unpack("<I", directory[16:20]) == (0x12345678,)
    assert directory[46 : 46 + len(b"a.txt")] == b"a.txt"


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


#: A link of the index for each kind of download (DESIGN §2, §5, §7-§9),
#: by its class: how its URL looks.
KINDS = {
    "kind-object": r"/documents/\d+/download",  # ObjectDownloadView
    "kind-inline": r"/documents/\d+/preview",  # attachment=False, sandboxed
    # signed_url_for: the id, the row's key, the expiry, the signature
    "kind-signed": r"/shared/\d+/[\w-]+\?expires=\d+&signature=[\w-]+",
    "kind-zip": r"/archive\?id=\d+(&id=\d+)*",  # ZipDownloadView
    "kind-send": r"/documents\.csv",  # send_download
    "kind-virtual": r"/documents\.sfv",  # VirtualDownloadView
    "kind-path": r"/large\.bin",  # PathDownloadView
    "kind-storage": r"/storage/.+",  # StorageDownloadView
    "kind-http": r"/remote",  # HTTPDownloadView
    "kind-edge": r"/edge/.+\?md5=[\w-]+&expires=\d+",  # nginx_secure_url_for
}


def kind_links(page: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind, url in re.findall(
        r'<a[^>]* class="(kind-[a-z]+)[^"]*" href="([^"]*)"', page
    ):
        found.setdefault(kind, []).append(unescape(url))
    return found


def test_index_of_a_fresh_app_links_every_kind_of_download(
    tmp_path: pathlib.Path, upstream_url: str
) -> None:
    """The samples made on first run: nothing to upload before every link works."""
    app = make_example(tmp_path, **remote_config(upstream_url))
    client = app.test_client()
    login(client)
    with client.get("/") as rv:
        page = rv.get_data(as_text=True)
    assert "No documents yet" not in page
    found = kind_links(page)
    assert set(found) == set(KINDS)
    for kind, pattern in KINDS.items():
        assert all(re.fullmatch(pattern, url) for url in found[kind]), found[kind]
    links = index_links(page)
    assert {url for urls in found.values() for url in urls} <= set(links)
    for url in links:
        with client.head(url) as rv:
            assert rv.status_code == 200, url
        with client.get(url, headers={"Range": "bytes=0-9"}) as rv:
            assert rv.status_code in (200, 206), url
    with app.app_context():
        db.engine.dispose()


def test_every_kind_of_download_answers_as_it_says(
    tmp_path: pathlib.Path, upstream_url: str
) -> None:
    app = make_example(tmp_path, **remote_config(upstream_url))
    client = app.test_client()
    login(client)
    with client.get("/") as rv:
        found = kind_links(rv.get_data(as_text=True))
    with client.get(found["kind-inline"][0]) as rv:
        assert rv.headers["Content-Disposition"].startswith("inline;")
        assert rv.headers["Content-Security-Policy"].startswith("sandbox")
        assert b"<script>" in rv.data
    with app.test_client().get(found["kind-signed"][0]) as rv:
        assert rv.status_code == 200  # no login needed
    with client.get(found["kind-zip"][0]) as rv:
        archive = zipfile.ZipFile(io.BytesIO(rv.data))
    assert archive.testzip() is None
    assert len(archive.namelist()) == sum(s.owner == "alice" for s in SAMPLES)
    for url, content in zip(found["kind-storage"], STORAGE_FILES.values(), strict=True):
        with client.get(url) as rv:
            assert rv.data == content
    with client.get(found["kind-http"][0], headers={"Range": "bytes=0-9"}) as rv:
        assert rv.status_code == 206
        assert rv.data == UPSTREAM_BODY[:10]
        assert 'filename="rfc9110.txt"' in rv.headers["Content-Disposition"]
    (edge,) = found["kind-edge"]
    anonymous = app.test_client()
    with anonymous.get(edge) as rv:
        assert rv.data == next(iter(EDGE_FILES.values()))
    with app.app_context():
        db.engine.dispose()


def test_index_still_links_every_kind_after_an_upload(example: Flask) -> None:
    client = example.test_client()
    login(client, "carol")
    with client.get("/") as rv:
        page = rv.get_data(as_text=True)
    # A new user has no documents: the kinds that need one say how to get one.
    assert "No documents yet" in page
    assert set(kind_links(page)) == set(KINDS) - {
        "kind-object",
        "kind-inline",
        "kind-signed",
        "kind-zip",
    }
    (id,) = upload(client, ("notes.txt", b"notes"))
    with client.get("/") as rv:
        found = kind_links(rv.get_data(as_text=True))
    assert set(found) == set(KINDS) - {"kind-inline"}  # no HTML or SVG page
    assert found["kind-object"] == [f"/documents/{id}/download"]
    assert found["kind-zip"] == [f"/archive?id={id}"]


def test_bob_sees_his_samples_not_alices(example: Flask) -> None:
    alice = example.test_client()
    login(alice, "alice")
    with alice.get("/") as rv:
        alice_ids = set(
            re.findall(r'name="id" value="(\d+)"', rv.get_data(as_text=True))
        )
    bob = example.test_client()
    login(bob, "bob")
    with bob.get("/") as rv:
        page = rv.get_data(as_text=True)
    bob_ids = set(re.findall(r'name="id" value="(\d+)"', page))
    assert "bob&#39;s notes.txt" in page
    assert bob_ids and not bob_ids & alice_ids
    for id in alice_ids:
        with bob.get(f"/documents/{id}/download") as rv:
            assert rv.status_code == 404


# -- the demos: storage, remote file, nginx secure link -----------------------


@pytest.mark.parametrize(
    "path",
    [
        "../edge/handbook.txt",
        "%2e%2e/edge/handbook.txt",
        "reports/../../edge/handbook.txt",
        "missing.txt",
        "reports",
    ],
)
def test_storage_paths_stay_inside_the_storage(example: Flask, path: str) -> None:
    with example.test_client().get(f"/storage/{path}") as rv:
        assert rv.status_code == 404


def test_storage_can_be_another_fsspec_url(tmp_path: pathlib.Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/example-app-test/readme.txt", b"from memory")
    try:
        app = make_example(tmp_path, EXAMPLE_STORAGE_URL="memory://example-app-test")
        with app.test_client().get("/storage/readme.txt") as rv:
            assert rv.data == b"from memory"
        # Files are written in a file:// storage only: a store is yours to fill.
        assert not (tmp_path / "files" / "sample" / "storage").exists()
    finally:
        fs.rm("/example-app-test", recursive=True)


def test_remote_default_is_a_public_https_url(example: Flask) -> None:
    """No network in the test: the link is there, nothing is fetched."""
    url = example.config["EXAMPLE_HTTP_URL"]
    assert urlsplit(url).scheme == "https"
    client = example.test_client()
    login(client)
    with client.get("/") as rv:
        page = rv.get_data(as_text=True)
    assert f'<a class="kind-http" href="/remote">{url}</a>' in page


def test_remote_refuses_loopback_unless_allowed(
    tmp_path: pathlib.Path, upstream_url: str
) -> None:
    """The demo's upstream is on 127.0.0.1: without an explicit
    DOWNLOAD_HTTP_ALLOWED_HOSTS it is refused, like any private address."""
    config = remote_config(upstream_url)
    del config["DOWNLOAD_HTTP_ALLOWED_HOSTS"]
    app = make_example(tmp_path, **config)
    with app.test_client().get("/remote") as rv:
        assert rv.status_code == 403
        assert UPSTREAM_BODY not in rv.data
    allowed = make_example(tmp_path, **remote_config(upstream_url))
    with allowed.test_client().get("/remote") as rv:
        assert rv.status_code == 200
        assert rv.data == UPSTREAM_BODY
    for made in (app, allowed):
        with made.app_context():
            db.engine.dispose()


def test_unreachable_remote_says_what_the_demo_fetches(tmp_path: pathlib.Path) -> None:
    """Offline (or behind a firewall), the remote-file demo's 502 page names
    the URL it could not fetch and the setting that changes it."""
    url = f"http://127.0.0.1:{free_port()}/rfc9110.txt"  # nothing listens there
    app = make_example(
        tmp_path, EXAMPLE_HTTP_URL=url, DOWNLOAD_HTTP_ALLOWED_HOSTS=["127.0.0.1"]
    )
    with app.test_client().get("/remote") as rv:
        assert rv.status_code == 502
        page = rv.get_data(as_text=True)
    assert "<h1>502 Bad Gateway</h1>" in page
    assert 'href="/static/style.css"' in page  # a page of the site
    assert f"<code>{url}</code>" in page
    assert "EXAMPLE_HTTP_URL" in page and "instance/config.py" in page
    with app.app_context():
        db.engine.dispose()


def test_edge_link_is_checked_where_no_nginx_runs(
    example: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = example.test_client()
    login(client)
    with client.get("/") as rv:
        (link,) = kind_links(rv.get_data(as_text=True))["kind-edge"]
    path = link.partition("?")[0]
    assert example.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] not in link
    anonymous = example.test_client()
    for url in (path, re.sub(r"md5=[\w-]+", "md5=" + "A" * 22, link)):
        with anonymous.get(url) as rv:
            assert rv.status_code == 403, url
    real_time = time.time
    # The expiry is rounded up to a whole second, and nginx still accepts a
    # link during its expiry second (expires < now is expired): 2 s after.
    monkeypatch.setattr(time, "time", lambda: real_time() + EDGE_LINK_EXPIRES + 2)
    with anonymous.get(link) as rv:
        assert rv.status_code == 410


def test_edge_secret_can_be_set(tmp_path: pathlib.Path) -> None:
    secret = "s" * 40
    app = make_example(tmp_path, DOWNLOAD_NGINX_SECURE_LINK_SECRET=secret)
    assert app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] == secret
    with app.app_context():
        db.engine.dispose()


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
