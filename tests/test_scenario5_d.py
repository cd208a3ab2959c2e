"""Storage downloads end to end: a real S3 store, real servers, real clients.

One app (:func:`create_app`) serves keys of a SeaweedFS bucket (started by
``test_s3``'s fixtures, signatures checked as AWS does) in every way
DESIGN.md offers: ``StorageDownloadView`` over ``s3://bucket/prefix``
streamed and with ``redirect=True`` (presigned), an ``ObjectDownloadView``
whose ``FileColumn`` points into the same storage, a ``ZipDownloadView`` of
S3 members (stored, so ranges work) and ``send_download`` of a
``StorageFile``. It runs on gunicorn (as its own process) and on Werkzeug's
threaded server, and is checked with curl (``-L``, ``-r``, ``-C -``, ``-I``,
``-z``) and raw sockets: ranges and resume, validators, awkward keys,
missing keys, a key rewritten between and during downloads, the store
killed mid-download, and the descriptors a worker holds after hang-ups.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import datetime
import email.utils
import hashlib
import http.client
import io
import os
import pathlib
import signal
import socket
import struct
import subprocess
import tempfile
import time
import typing as t
import urllib.parse
import zipfile

import pytest
from conftest import running_gunicorn
from conftest import running_werkzeug
from flask import abort
from flask import Flask
from flask import Response

s3_module = pytest.importorskip("test_s3")
flask_sqlalchemy = pytest.importorskip("flask_sqlalchemy")

import fsspec  # noqa: E402
from sqlalchemy import orm  # noqa: E402
from test_s3 import _admin  # noqa: E402
from test_s3 import BUCKET  # noqa: E402
from test_s3 import CONFIG  # noqa: E402
from test_s3 import CREDENTIALS  # noqa: E402
from test_s3 import s3_endpoint as s3_endpoint  # noqa: E402
from test_s3 import seaweedfs  # noqa: E402

from flask_download import content_disposition  # noqa: E402
from flask_download import download_finished  # noqa: E402
from flask_download import FileNotFound  # noqa: E402
from flask_download import ObjectDownloadView  # noqa: E402
from flask_download import resolve_storage  # noqa: E402
from flask_download import send_download  # noqa: E402
from flask_download import StorageDownloadView  # noqa: E402
from flask_download import StorageFile  # noqa: E402
from flask_download import ZipDownloadView  # noqa: E402
from flask_download.sqlalchemy import FileColumn  # noqa: E402
from flask_download.storage import _resolve_url  # noqa: E402
from flask_download.storage import storage_key  # noqa: E402

PREFIX = "scn5d"
STORAGE = f"s3://{BUCKET}/{PREFIX}"
CURL = "curl"


def _bytes(seed: str, size: int) -> bytes:
    """``size`` reproducible pseudo-random bytes (the same in every process)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


BIG = _bytes("big", 700_000)
#: Keys that need encoding in a URL; every one exists in the bucket.
ODD_KEYS = [
    "odd/a b.txt",
    "odd/rapport d’été ünï €.txt",
    "odd/c++ 1+1.txt",
    "odd/100% sure.txt",
    "odd/%41%2e%2e.txt",
    "odd/#hash.txt",
    "odd/why?.txt",
    "odd/and&eq=.txt",
    "odd/semi;colon,comma=.txt",
    "odd/quote\"s and 'apostrophes'.txt",
    "odd/tilde~ [brackets] {braces}.txt",
    "odd/ends with a space .txt",
]
OBJECTS: dict[str, bytes] = {
    "big.bin": BIG,
    "notes.txt": b"some notes\n",
    "zip/one.bin": _bytes("one", 300_000),
    "zip/two.txt": b"second member\n" * 1000,
    "zip/drei ü.txt": b"dritte\n",
    "empty.bin": b"",
    **{key: f"content of {key}\n".encode() for key in ODD_KEYS},
}
#: Members of /zip: (name in the archive, key).
ZIP_MEMBERS = [
    ("one.bin", "zip/one.bin"),
    ("docs/two.txt", "zip/two.txt"),
    ("drei ü.txt", "zip/drei ü.txt"),
]
#: Rows of the Document table: id -> key (None: a NULL column).
ROWS: dict[int, str | None] = {
    1: "big.bin",
    2: "gone/missing.bin",
    3: None,
    4: "empty.bin",
    **{10 + i: key for i, key in enumerate(ODD_KEYS)},
}


def _quote(key: str) -> str:
    return urllib.parse.quote(key, safe="/")


# -- the application -----------------------------------------------------


class Base(orm.DeclarativeBase):
    pass


db = flask_sqlalchemy.SQLAlchemy(model_class=Base)


class Document(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "scn5d_document"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    file: orm.Mapped[t.Any] = orm.mapped_column(
        FileColumn(storage=STORAGE), nullable=True
    )


class StorageZip(ZipDownloadView):
    """The ZIP of some keys of the storage, named in the archive as given."""

    members: list[tuple[str, str]] = ZIP_MEMBERS

    def get_members(self) -> cabc.Iterator[tuple[str, StorageFile]]:
        keys = list(self.members)
        if "key" in self.kwargs:
            keys.append(("changing.bin", self.kwargs["key"]))
        for name, key in keys:
            yield name, StorageFile(STORAGE, key)


def _s3_options(endpoint: str, **config: t.Any) -> dict[str, t.Any]:
    return {
        **CREDENTIALS,
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "config_kwargs": {**CONFIG, **config},
        "skip_instance_cache": True,
    }


def create_app(endpoint: str, database: str) -> Flask:
    """The application factory (gunicorn calls it in its worker).

    :param endpoint: the S3 endpoint of the store.
    :param database: the SQLite file of the Document rows.
    """
    # URL storages (s3://...) take their options from fsspec's configuration.
    # Few retries: a store that is gone must not keep a request for long.
    fsspec.config.conf["s3"] = _s3_options(
        endpoint,
        retries={"max_attempts": 2},
        connect_timeout=3,
        read_timeout=10,
    )
    _resolve_url.cache_clear()
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database}"
    db.init_app(app)
    with app.app_context():
        db.create_all()
        for id, key in ROWS.items():
            db.session.merge(Document(id=id, file=key))
        db.session.commit()

    app.add_url_rule(
        "/stream/<path:path>",
        view_func=StorageDownloadView.as_view("stream", storage=STORAGE),
    )
    app.add_url_rule(
        "/presigned/<path:path>",
        view_func=StorageDownloadView.as_view(
            "presigned", storage=STORAGE, redirect=True, redirect_expires=120
        ),
    )
    app.add_url_rule(
        "/doc/<int:id>",
        view_func=ObjectDownloadView.as_view("doc", model=Document),
    )
    app.add_url_rule("/zip", view_func=StorageZip.as_view("zip"))
    app.add_url_rule("/zip-with/<path:key>", view_func=StorageZip.as_view("zip_with"))
    app.add_url_rule(
        "/deflated-zip-with/<path:key>",
        view_func=StorageZip.as_view("deflated_zip_with", compress=True),
    )

    @app.route("/send/<path:path>", methods=["GET", "HEAD"])
    def send(path: str) -> Response:
        fs, prefix = resolve_storage(STORAGE)
        try:
            file = StorageFile(fs, storage_key(fs, prefix, path))
        except FileNotFound:
            abort(404)
        return send_download(file)

    @app.get("/_pid")
    def pid() -> str:
        return str(os.getpid())

    @app.get("/_fds")
    def fds() -> str:
        return str(len(os.listdir("/proc/self/fd")))

    return app


# -- fixtures ------------------------------------------------------------


def _put(endpoint: str, objects: dict[str, bytes]) -> None:
    client = _admin(endpoint)
    try:
        for key, body in objects.items():
            client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=body)
    finally:
        client.close()


def _store_etag(endpoint: str, key: str) -> str:
    client = _admin(endpoint)
    try:
        return str(client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["ETag"])
    finally:
        client.close()


def _restore_s3_conf(saved: dict[str, t.Any] | None) -> None:
    if saved is None:
        fsspec.config.conf.pop("s3", None)
    else:
        fsspec.config.conf["s3"] = saved
    _resolve_url.cache_clear()


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> cabc.Iterator[str]:
    """The endpoint, with :data:`OBJECTS` under the prefix; fsspec's global
    configuration restored afterwards."""
    _put(s3_endpoint, OBJECTS)
    saved = fsspec.config.conf.get("s3")
    try:
        yield s3_endpoint
    finally:
        _restore_s3_conf(saved)


@dataclasses.dataclass
class Site:
    name: str
    url: str
    endpoint: str

    def get(self, path: str) -> bytes:
        status, _, body = request(self.url, path)
        assert status == 200
        return body


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def site(
    request: pytest.FixtureRequest,
    bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> cabc.Iterator[Site]:
    database = tmp_path_factory.mktemp("db") / f"{request.param}.sqlite"
    with _serve(request.param, bucket, database) as url:
        yield Site(request.param, url, bucket)


@contextlib.contextmanager
def _serve(
    server: str, endpoint: str, database: pathlib.Path, *options: str
) -> cabc.Iterator[str]:
    """Serve :func:`create_app` on Werkzeug's threaded server or on gunicorn
    (a sync worker unless ``options`` say otherwise)."""
    if server == "werkzeug":
        with running_werkzeug(create_app(endpoint, os.fspath(database))) as url:
            yield url
    else:
        app = f"tests.test_scenario5_d:create_app({endpoint!r}, {str(database)!r})"
        with running_gunicorn(app, "--timeout=60", *options) as url:
            yield url


# -- clients -------------------------------------------------------------


def request(
    base: str,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urllib.parse.urlsplit(base + path)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@dataclasses.dataclass
class Curled:
    exit: int
    #: Every response's status and headers (lower-case names), in order.
    responses: list[tuple[int, dict[str, str]]]
    body: bytes

    @property
    def status(self) -> int:
        return self.responses[-1][0]

    @property
    def headers(self) -> dict[str, str]:
        return self.responses[-1][1]


def curl(url: str, *options: str, output: pathlib.Path | None = None) -> Curled:
    """Run curl on ``url``; the body goes to ``output`` (else is returned)."""
    with contextlib.ExitStack() as stack:
        directory = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory()))
        dump = directory / "headers"
        target = output or directory / "body"
        command = [CURL, "-sS", "--max-time", "40", "-D", os.fspath(dump)]
        command += ["-o", os.fspath(target), *options, url]
        done = subprocess.run(command, capture_output=True, timeout=60)
        responses = []
        text = dump.read_bytes().decode("latin-1") if dump.exists() else ""
        for block in text.split("\r\n\r\n"):
            lines = block.strip("\r\n").split("\r\n")
            if not lines[0].startswith("HTTP/"):
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            responses.append((int(lines[0].split()[1]), headers))
        body = target.read_bytes() if target.exists() and output is None else b""
        return Curled(done.returncode, responses, body)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- streamed and presigned ----------------------------------------------


def test_streamed_get_and_head(site: Site) -> None:
    url = f"{site.url}/stream/big.bin"
    got = curl(url)
    assert (got.exit, got.status) == (0, 200)
    assert sha256(got.body) == sha256(BIG)
    assert got.headers["content-length"] == str(len(BIG))
    assert got.headers["etag"] == _store_etag(site.endpoint, "big.bin")
    assert got.headers["accept-ranges"] == "bytes"
    head = curl(url, "-I")
    assert (head.exit, head.status) == (0, 200)
    for name in ("content-length", "etag", "last-modified", "content-disposition"):
        assert head.headers[name] == got.headers[name]
    # A Range on HEAD is ignored: the 200's headers.
    ranged = curl(url, "-I", "-r", "0-9")
    assert ranged.status == 200
    assert ranged.headers["content-length"] == str(len(BIG))
    assert "content-range" not in ranged.headers


def test_streamed_ranges_and_resume(site: Site, tmp_path: pathlib.Path) -> None:
    url = f"{site.url}/stream/big.bin"
    part = curl(url, "-r", "654321-654420")
    assert part.status == 206
    assert part.body == BIG[654321:654421]
    assert part.headers["content-range"] == f"bytes 654321-654420/{len(BIG)}"
    # An interrupted download (its first 123457 bytes), resumed by curl.
    saved = tmp_path / "big.bin"
    first = curl(url, "-r", "0-123456", output=saved)
    assert first.status == 206
    resumed = curl(url, "-C", "-", output=saved)
    assert resumed.exit == 0
    assert resumed.status == 206
    assert resumed.headers["content-range"] == (
        f"bytes 123457-{len(BIG) - 1}/{len(BIG)}"
    )
    assert sha256(saved.read_bytes()) == sha256(BIG)
    # Several ranges: multipart/byteranges with the right bytes.
    status, headers, body = request(
        site.url, "/stream/big.bin", {"Range": "bytes=0-9,500000-500009"}
    )
    assert status == 206
    assert headers.get_content_type() == "multipart/byteranges"
    assert BIG[:10] in body and BIG[500000:500010] in body


def test_presigned_get_followed_by_curl(site: Site, tmp_path: pathlib.Path) -> None:
    url = f"{site.url}/presigned/big.bin"
    got = curl(url, "-L")
    assert got.exit == 0
    assert [status for status, _ in got.responses] == [302, 200]
    assert got.responses[0][1]["cache-control"] == "no-store"
    assert sha256(got.body) == sha256(BIG)
    assert got.headers["content-disposition"] == 'attachment; filename="big.bin"'
    assert got.headers["etag"] == _store_etag(site.endpoint, "big.bin")
    # Resume through the redirect: curl sends its Range to the store.
    saved = tmp_path / "big.bin"
    saved.write_bytes(BIG[:300_001])
    resumed = curl(url, "-L", "-C", "-", output=saved)
    assert resumed.exit == 0
    assert resumed.status == 206
    assert sha256(saved.read_bytes()) == sha256(BIG)


def test_head_never_gets_a_url_presigned_for_get(site: Site) -> None:
    """DESIGN §9: ``curl -I -L`` ends on a 200 from the store."""
    url = f"{site.url}/presigned/big.bin"
    get = curl(url)
    head = curl(url, "-I")
    assert (get.status, head.status) == (302, 302)
    get_location = get.headers["location"]
    head_location = head.headers["location"]
    assert head_location != get_location
    # What the store thinks of each URL, for each method.
    assert curl(head_location, "-I").status == 200
    assert curl(get_location, "-I").status == 403
    assert curl(head_location).status == 403
    followed = curl(url, "-I", "-L")
    assert [status for status, _ in followed.responses] == [302, 200]
    assert followed.headers["content-length"] == str(len(BIG))
    assert followed.headers["etag"] == _store_etag(site.endpoint, "big.bin")
    assert followed.headers["content-disposition"] == 'attachment; filename="big.bin"'


# -- validators ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["stream/big.bin", "presigned/big.bin", "doc/1", "send/big.bin"]
)
def test_store_etag_and_date_give_304(site: Site, path: str) -> None:
    etag = _store_etag(site.endpoint, "big.bin")
    url = f"{site.url}/{path}"
    full = curl(url, "-L")
    assert full.status == 200
    assert full.headers["etag"] == etag
    assert sha256(full.body) == sha256(BIG)
    conditions = [
        ("-H", f"If-None-Match: {etag}"),
        ("-H", "If-None-Match: *"),
        ("-H", f'If-None-Match: "other", {etag}'),
        ("-z", full.headers["last-modified"]),
    ]
    if not path.startswith("presigned/"):
        # (A presigned redirect leaves them to the store, and SeaweedFS
        # compares entity tags strongly.)
        conditions.append(("-H", f"If-None-Match: W/{etag}"))
    for options in conditions:
        got = curl(url, "-L", *options)
        assert got.exit == 0, options
        assert got.status == 304, options
        assert got.body == b""
        assert "content-disposition" not in got.headers
        assert got.headers["etag"] == etag
        if not path.startswith("presigned/"):
            # (SeaweedFS's own 304 has no Last-Modified.)
            assert got.headers["last-modified"] == full.headers["last-modified"]
    # A stale validator: the whole file.
    got = curl(url, "-L", "-H", 'If-None-Match: "stale"')
    assert got.status == 200
    assert sha256(got.body) == sha256(BIG)
    # An If-Modified-Since older than the object: the whole file too.
    got = curl(url, "-L", "-z", "Sat, 01 Jan 2000 00:00:00 GMT")
    assert got.status == 200
    assert sha256(got.body) == sha256(BIG)


def test_multipart_upload_etag(site: Site) -> None:
    """An object uploaded in parts has an ETag that is no MD5 (``"...-2"``):
    sent as the store's, and it validates as any other."""
    key = f"multipart/{site.name}.bin"
    parts = [_bytes("part1", 5 * 1024 * 1024), _bytes("part2", 1000)]
    client = _admin(site.endpoint)
    try:
        upload = client.create_multipart_upload(Bucket=BUCKET, Key=f"{PREFIX}/{key}")
        done = []
        for number, body in enumerate(parts, 1):
            answer = client.upload_part(
                Bucket=BUCKET,
                Key=f"{PREFIX}/{key}",
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=body,
            )
            done.append({"ETag": answer["ETag"], "PartNumber": number})
        client.complete_multipart_upload(
            Bucket=BUCKET,
            Key=f"{PREFIX}/{key}",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": done},
        )
    finally:
        client.close()
    etag = _store_etag(site.endpoint, key)
    assert etag.endswith('-2"')
    url = f"{site.url}/stream/{key}"
    got = curl(url)
    assert got.status == 200
    assert got.headers["etag"] == etag
    assert sha256(got.body) == sha256(b"".join(parts))
    assert curl(url, "-H", f"If-None-Match: {etag}").status == 304
    resumed = curl(url, "-r", "5242000-", "-H", f"If-Range: {etag}")
    assert resumed.status == 206
    assert resumed.body == b"".join(parts)[5242000:]
    assert curl(url, "-H", 'If-Match: "nope"').status == 412
    assert curl(url, "-H", f"If-Match: {etag}").status == 200


# -- awkward keys --------------------------------------------------------


@pytest.mark.parametrize("key", ODD_KEYS)
def test_keys_needing_encoding(site: Site, key: str) -> None:
    content = OBJECTS[key]
    basename = key.rsplit("/", 1)[1]
    disposition = content_disposition(basename, True)
    doc_id = next(id for id, k in ROWS.items() if k == key)
    for path in (
        f"/stream/{_quote(key)}",
        f"/presigned/{_quote(key)}",
        f"/send/{_quote(key)}",
        f"/doc/{doc_id}",
    ):
        got = curl(site.url + path, "-L")
        assert got.exit == 0, path
        assert got.status == 200, path
        assert got.body == content, path
        assert got.headers["content-disposition"] == disposition, path
        assert got.headers["content-length"] == str(len(content)), path
        head = curl(site.url + path, "-I", "-L")
        assert head.status == 200, path
        assert head.headers["content-length"] == str(len(content)), path
        if path.startswith("/doc/"):
            assert "private" in got.headers["cache-control"]


def test_plus_is_a_plus_in_a_path(site: Site) -> None:
    """``+`` in a path is a plus sign, sent raw or as ``%2B``."""
    raw = curl(f"{site.url}/stream/odd/c++%201+1.txt")
    assert raw.status == 200
    assert raw.body == OBJECTS["odd/c++ 1+1.txt"]


@pytest.mark.parametrize(
    "path", ["stream/empty.bin", "send/empty.bin", "doc/4", "presigned/empty.bin"]
)
def test_empty_object(site: Site, path: str) -> None:
    got = curl(f"{site.url}/{path}", "-L")
    assert (got.exit, got.status, got.body) == (0, 200, b"")
    assert got.headers["content-length"] == "0"
    ranged = curl(f"{site.url}/{path}", "-L", "-r", "0-")
    assert ranged.status == 416
    assert ranged.headers["content-range"] == "bytes */0"


def test_zip_with_an_empty_member_and_several_ranges(site: Site) -> None:
    full = site.get("/zip-with/empty.bin")
    assert _members_from(full) == {
        **{name: OBJECTS[key] for name, key in ZIP_MEMBERS},
        "changing.bin": b"",
    }
    status, headers, body = request(
        site.url, "/zip-with/empty.bin", {"Range": "bytes=0-9,-10"}
    )
    assert status == 206
    assert headers.get_content_type() == "multipart/byteranges"
    assert full[:10] in body and full[-10:] in body


# -- missing keys --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "stream/gone.bin",
        "stream/odd/a%2Bb.txt",
        "presigned/gone.bin",
        "send/gone.bin",
        "doc/2",
        "doc/3",
        "doc/999",
        "zip-with/gone.bin",
        "stream/zip",
        "stream/..%2Fscn5d%2Fbig.bin",
    ],
)
def test_missing_key_is_404(site: Site, path: str) -> None:
    for options in ((), ("-I",)):
        got = curl(f"{site.url}/{path}", *options)
        assert got.exit == 0
        assert got.status == 404, options
        assert "location" not in got.headers


# -- the ZIP of S3 members -----------------------------------------------


def _members_from(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_zip_of_s3_members(site: Site, tmp_path: pathlib.Path) -> None:
    url = f"{site.url}/zip"
    full = curl(url)
    assert (full.exit, full.status) == (0, 200)
    assert full.headers["content-type"] == "application/zip"
    assert full.headers["content-length"] == str(len(full.body))
    assert full.headers["accept-ranges"] == "bytes"
    # Python's zipfile reads back exactly the bytes the store holds.
    assert _members_from(full.body) == {name: OBJECTS[key] for name, key in ZIP_MEMBERS}
    head = curl(url, "-I")
    assert head.status == 200
    assert head.headers["content-length"] == str(len(full.body))
    assert head.headers["etag"] == full.headers["etag"]
    # Ranges: in the headers, in a member's data, in the central directory.
    size = len(full.body)
    for first, last in ((0, 99), (150_000, 170_000), (size - 200, size - 1)):
        part = curl(url, "-r", f"{first}-{last}")
        assert part.status == 206
        assert part.body == full.body[first : last + 1]
    # Resumed twice, with curl -C -, from interrupted downloads.
    for cut in (30, 310_000):
        saved = tmp_path / f"cut{cut}.zip"
        assert curl(url, "-r", f"0-{cut - 1}", output=saved).status == 206
        resumed = curl(url, "-C", "-", output=saved)
        assert (resumed.exit, resumed.status) == (0, 206)
        assert sha256(saved.read_bytes()) == sha256(full.body)
    # Its validators.
    assert curl(url, "-H", f"If-None-Match: {full.headers['etag']}").status == 304
    assert curl(url, "-z", full.headers["last-modified"]).status == 304


# -- a key that changes --------------------------------------------------


def test_key_rewritten_between_requests(site: Site) -> None:
    """A new ETag; a resume with ``If-Range`` of the old one gets all of the
    new content (200), never old bytes spliced with new ones (206)."""
    key = f"changing/{site.name}-between.bin"
    old, new = _bytes("old", 200_000), _bytes("new", 200_000)
    _put(site.endpoint, {key: old})
    for path in (f"/stream/{key}", f"/send/{key}", f"/zip-with/{key}"):
        _put(site.endpoint, {key: old})
        status, headers, first = request(site.url, path)
        assert status == 200, path
        old_etag = headers["ETag"]
        _put(site.endpoint, {key: new})
        status, headers, again = request(site.url, path)
        assert status == 200
        assert headers["ETag"] != old_etag, path
        assert again != first
        resume = {"Range": "bytes=1000-", "If-Range": old_etag}
        status, headers, body = request(site.url, path, resume)
        assert status == 200, path
        assert body == again
        # With the new ETag, the resume is a 206 of the new bytes.
        resume["If-Range"] = headers["ETag"]
        status, _, body = request(site.url, path, resume)
        assert status == 206
        assert body == again[1000:]


def _read_some(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _read_all(conn: socket.socket) -> bytes:
    data = bytearray()
    while chunk := conn.recv(1 << 20):
        data += chunk
    return bytes(data)


def _start_download(
    base: str, path: str
) -> tuple[socket.socket, dict[bytes, bytes], bytes]:
    """Send a GET, read its head and the start of the body; the rest stays
    unread in the socket. :return: the socket, the headers, body so far."""
    parts = urllib.parse.urlsplit(base)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=30)
    conn.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    data = _read_some(conn, 64 * 1024)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return conn, headers, body


def test_key_rewritten_during_a_download_is_never_spliced(site: Site) -> None:
    key = f"changing/{site.name}-during.bin"
    size = 40 * 1024 * 1024
    old, new = b"o" * size, b"n" * size
    _put(site.endpoint, {key: old})
    conn, headers, start = _start_download(site.url, f"/stream/{key}")
    with conn:
        assert int(headers[b"content-length"]) == size
        # Most of it is still to be read from the store.
        _put(site.endpoint, {key: new})
        body = start + _read_all(conn)
    # Either the old object whole, or a body cut short: never a mixture
    # that looks complete.
    assert body == old or len(body) < size, (
        f"{body.count(b'o')} old bytes then {body.count(b'n')} new ones"
    )


def test_key_shrunk_during_a_download(site: Site) -> None:
    """A key that shrinks under a download: the body is cut short, and (in
    process) download_finished says it did not complete."""
    key = f"changing/{site.name}-shrinking.bin"
    size = 40 * 1024 * 1024
    _put(site.endpoint, {key: b"o" * size})
    finished: list[tuple[int | None, bool]] = []

    def record(
        app: Flask, file: t.Any, bytes_sent: int | None, completed: bool, **_: t.Any
    ) -> None:
        if getattr(file, "key", None) == f"{BUCKET}/{PREFIX}/{key}":
            finished.append((bytes_sent, completed))

    with download_finished.connected_to(record):
        conn, headers, start = _start_download(site.url, f"/stream/{key}")
        with conn:
            assert int(headers[b"content-length"]) == size
            _put(site.endpoint, {key: b"n" * 1000})
            body = start + _read_all(conn)
        assert len(body) < size
        assert body == b"o" * len(body)
        if site.name == "werkzeug":
            deadline = time.monotonic() + 20
            while not finished and time.monotonic() < deadline:
                time.sleep(0.05)
            assert finished
            sent, completed = finished[0]
            assert (sent, completed) == (len(body), False)


# -- the store stopped mid-download ---------------------------------------


def _weed_serving(endpoint: str) -> int:
    """The pid of our child ``weed`` process serving S3 at ``endpoint``."""
    port = urllib.parse.urlsplit(endpoint).port
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) != os.getpid():
                continue
            command = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
            if f"-s3.port={port}".encode() in command.split(b"\0"):
                return int(entry)
    raise AssertionError(f"no weed child serves {endpoint}")


STOP_SIZE = 40 * 1024 * 1024
STOP_CONTENT = _bytes("stop", 1 << 20) * 40
STOP_PATHS = ("/stream/big.bin", "/zip-with/big.bin", "/deflated-zip-with/big.bin")


@dataclasses.dataclass
class Stopped:
    #: (server, path) -> (the response's headers, the body the client got).
    bodies: dict[tuple[str, str], tuple[dict[bytes, bytes], bytes]]
    #: server -> whether the same worker answered at once after the cut.
    same_worker: dict[str, bool]
    #: server -> status of a new download once the store is gone.
    after: dict[str, int]
    #: In-process (Werkzeug): download_finished, as (kind, size, sent, completed)
    #: with kind "stream", "zip" or "deflated-zip".
    finished: dict[str, tuple[int | None, bool]]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory, bucket: str) -> Stopped:
    """Downloads from a store of their own, killed (SIGKILL) mid-download.

    Everything is done (servers stopped, fsspec's configuration for the
    module's store back) before the tests look at the results.
    """
    tmp_path = tmp_path_factory.mktemp("stopped")
    saved = fsspec.config.conf.get("s3")
    with contextlib.ExitStack() as stack:
        stack.callback(_restore_s3_conf, saved)
        endpoint = stack.enter_context(seaweedfs())
        client = _admin(endpoint)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        client.close()
        _put(endpoint, {"big.bin": STOP_CONTENT, "notes.txt": b"some notes\n"})
        _put(endpoint, {key: OBJECTS[key] for _, key in ZIP_MEMBERS})
        # Several downloads at once: gunicorn's threaded worker.
        threads = ("--worker-class=gthread", "--threads=4")
        sites = {
            name: stack.enter_context(
                _serve(name, endpoint, tmp_path / f"{name}.db", *threads)
            )
            for name in ("werkzeug", "gunicorn")
        }
        pids = {name: request(url, "/_pid")[2] for name, url in sites.items()}
        for url in sites.values():
            assert request(url, "/stream/notes.txt")[2] == b"some notes\n"
        finished: dict[str, tuple[int | None, bool]] = {}

        def record(
            app: Flask, file: t.Any, bytes_sent: int | None, completed: bool, **_: t.Any
        ) -> None:
            if isinstance(file, StorageFile):
                kind = "stream"
            else:
                kind = "zip" if file.size is not None else "deflated-zip"
            finished[kind] = (bytes_sent, completed)

        stack.enter_context(download_finished.connected_to(record))
        downloads = {
            (name, path): _start_download(url, path)
            for name, url in sites.items()
            for path in STOP_PATHS
        }
        os.kill(_weed_serving(endpoint), signal.SIGKILL)
        bodies = {}
        for key, (conn, headers, start) in downloads.items():
            with conn:
                bodies[key] = (headers, start + _read_all(conn))
        same_worker = {}
        after = {}
        for name, url in sites.items():
            same_worker[name] = request(url, "/_pid")[2] == pids[name]
            after[name] = request(url, "/stream/notes.txt")[0]
        # The server threads close their responses after the client saw the
        # end: wait for them.
        deadline = time.monotonic() + 20
        while len(finished) < len(STOP_PATHS) and time.monotonic() < deadline:
            time.sleep(0.05)
    return Stopped(bodies, same_worker, after, finished)


def test_store_stopped_mid_download(stopped: Stopped) -> None:
    """The client sees a body cut short, and the worker goes on serving."""
    assert len(stopped.bodies) == 6
    for (name, path), (headers, body) in stopped.bodies.items():
        if path.startswith("/deflated-"):
            # No size known: chunked, and never its last chunk.
            assert headers.get(b"transfer-encoding") == b"chunked", name
            assert not body.endswith(b"\r\n0\r\n\r\n"), name
            continue
        length = int(headers[b"content-length"])
        assert len(body) < length, (name, path)
        if path.startswith("/stream/"):
            assert length == STOP_SIZE
            assert body == STOP_CONTENT[: len(body)], name
        else:
            assert length > STOP_SIZE
    # The same worker answers at once, and says the store is gone.
    assert stopped.same_worker == {"werkzeug": True, "gunicorn": True}
    assert stopped.after == {"werkzeug": 503, "gunicorn": 503}


@pytest.mark.parametrize("kind", ["stream", "deflated-zip"])
def test_store_stopped_download_finished_not_completed(
    stopped: Stopped, kind: str
) -> None:
    sent, completed = stopped.finished[kind]
    assert sent is not None and sent < STOP_SIZE
    assert completed is False


def test_store_stopped_download_finished_for_a_stored_zip(stopped: Stopped) -> None:
    sent, completed = stopped.finished["zip"]
    assert sent is not None and sent < STOP_SIZE
    assert completed is False


# -- descriptors after hang-ups ------------------------------------------


def _hang_up(base: str, path: str, headers: str = "") -> None:
    """GET ``path``, read a little of the answer, and reset the connection."""
    parts = urllib.parse.urlsplit(base)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=30)
    with conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        _read_some(conn, 2048)
        # An abortive close: RST, as a killed client leaves it.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_descriptors_bounded_after_hangups(site: Site) -> None:
    paths = [
        ("/stream/big.bin", ""),
        ("/stream/big.bin", "Range: bytes=1000-600000\r\n"),
        ("/stream/big.bin", "Range: bytes=0-10,200000-\r\n"),
        ("/zip", ""),
        ("/zip", "Range: bytes=100000-\r\n"),
        ("/doc/1", ""),
        ("/send/big.bin", ""),
        ("/stream/big.bin", "If-None-Match: *\r\n"),
        ("/stream/big.bin", "Range: bytes=999999999-\r\n"),
        ("/presigned/big.bin", ""),
        ("/stream/gone.bin", ""),
    ]

    def fds() -> int:
        return int(request(site.url, "/_fds")[2])

    # Warm up: connection pools and imports.
    for path, headers in paths * 3:
        _hang_up(site.url, path, headers)
    pid = request(site.url, "/_pid")[2]
    before = fds()
    for i in range(100):
        path, headers = paths[i % len(paths)]
        _hang_up(site.url, path, headers)
    # Threads of the threaded server end after their client is gone: wait
    # for the count to settle (a leak never does).
    deadline = time.monotonic() + 20
    while (after := fds()) > before + 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after <= before + 8, (before, after)
    assert request(site.url, "/_pid")[2] == pid
    assert site.get("/stream/notes.txt") == b"some notes\n"


def test_last_modified_is_the_stores(site: Site) -> None:
    client = _admin(site.endpoint)
    try:
        info = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/big.bin")
    finally:
        client.close()
    modified = info["LastModified"].astimezone(datetime.timezone.utc)
    expected = email.utils.format_datetime(modified, usegmt=True)
    for path in ("/stream/big.bin", "/doc/1", "/send/big.bin"):
        status, headers, _ = request(site.url, path, method="HEAD")
        assert status == 200
        assert headers["Last-Modified"] == expected, path
