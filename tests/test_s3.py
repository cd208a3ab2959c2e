"""StorageDownloadView against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import logging
import os
import subprocess
import sys
import time
import typing as t
import urllib.parse

import pytest
from conftest import free_port
from conftest import wait_for_port
from flask import Flask

pytest.importorskip("s3fs", reason="S3 storages need 'Flask-Download[s3]'")
pytest.importorskip("boto3", reason="S3 storages need 'Flask-Download[s3]'")
pytest.importorskip("moto.server", reason="the S3 tests need 'moto[server]'")
urllib3 = pytest.importorskip("urllib3", reason="following redirects needs urllib3")

import boto3  # noqa: E402
import fsspec  # noqa: E402
import s3fs  # noqa: E402

from flask_download import DownloadFile  # noqa: E402
from flask_download import StorageDownloadView  # noqa: E402
from flask_download.storage import _resolve_url  # noqa: E402

BUCKET = "downloads"
CONTENT = os.urandom(300_000)
CREDENTIALS = {"key": "testing", "secret": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> cabc.Iterator[str]:
    """A moto S3 server on 127.0.0.1, with a bucket of test objects.

    CI (``.ci/run``) starts one and names it in ``FLASK_DOWNLOAD_S3_ENDPOINT``;
    without it the fixture starts its own process.
    """
    given = os.environ.get("FLASK_DOWNLOAD_S3_ENDPOINT")
    process = None
    if given:
        endpoint = given.rstrip("/")
        port = urllib.parse.urlsplit(endpoint).port or 80
    else:
        port = free_port()
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        endpoint = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_port(port, process, timeout=30):
            pytest.fail("moto_server did not start")
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="media/report.pdf", Body=CONTENT)
        client.put_object(Bucket=BUCKET, Key="media/notes.txt", Body=b"some notes\n")
        client.put_object(Bucket=BUCKET, Key="private.txt", Body=b"TOP SECRET")
        client.close()
        yield endpoint
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        **CREDENTIALS,
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        skip_instance_cache=True,
    )


def make_app(**view_attrs: t.Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    view = StorageDownloadView.as_view("dl", **view_attrs)
    app.add_url_rule("/s3/<path:path>", view_func=view)
    return app


def test_full_download(s3: s3fs.S3FileSystem) -> None:
    client = make_app(storage=s3).test_client()
    with client.get(f"/s3/{BUCKET}/media/report.pdf") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == CONTENT
        assert rv.headers["Content-Type"] == "application/pdf"
        assert rv.headers["Content-Length"] == str(len(CONTENT))
        # S3's own ETag (the MD5 of a single-part upload), re-quoted.
        assert rv.headers["ETag"] == f'"{hashlib.md5(CONTENT).hexdigest()}"'
        assert "Last-Modified" in rv.headers


def test_range(s3: s3fs.S3FileSystem) -> None:
    client = make_app(storage=s3).test_client()
    headers = {"Range": "bytes=250000-250099"}
    with client.get(f"/s3/{BUCKET}/media/report.pdf", headers=headers) as rv:
        assert rv.status_code == 206
        assert rv.get_data() == CONTENT[250000:250100]
        assert rv.headers["Content-Range"] == f"bytes 250000-250099/{len(CONTENT)}"


def test_if_none_match_gives_304(s3: s3fs.S3FileSystem) -> None:
    client = make_app(storage=s3).test_client()
    etag = f'"{hashlib.md5(CONTENT).hexdigest()}"'
    headers = {"If-None-Match": etag}
    with client.get(f"/s3/{BUCKET}/media/report.pdf", headers=headers) as rv:
        assert rv.status_code == 304
        assert rv.get_data() == b""
        assert rv.headers["ETag"] == etag


@pytest.mark.parametrize(
    "path",
    [f"{BUCKET}/media/missing.pdf", "no-such-bucket/x.txt", f"{BUCKET}/media"],
    ids=["missing-key", "missing-bucket", "prefix-not-object"],
)
def test_missing_key_gives_404(s3: s3fs.S3FileSystem, path: str) -> None:
    client = make_app(storage=s3).test_client()
    with client.get(f"/s3/{path}") as rv:
        assert rv.status_code == 404


def test_storage_url_with_prefix(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # URL storages take their options from fsspec's configuration.
    monkeypatch.setitem(
        fsspec.config.conf,
        "s3",
        {
            **CREDENTIALS,
            "client_kwargs": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            "skip_instance_cache": True,
        },
    )
    # Resolved filesystems are cached per URL: start and end clean.
    _resolve_url.cache_clear()
    try:
        client = make_app(storage=f"s3://{BUCKET}/media").test_client()
        with client.get("/s3/notes.txt") as rv:
            assert rv.status_code == 200
            assert rv.get_data() == b"some notes\n"
        with client.get("/s3/../private.txt") as rv:
            assert rv.status_code == 404
        with client.get("/s3/%2e%2e/private.txt") as rv:
            assert rv.status_code == 404
    finally:
        _resolve_url.cache_clear()


def test_presigned_redirect_yields_the_file(s3: s3fs.S3FileSystem) -> None:
    client = make_app(storage=s3, redirect=True, redirect_expires=60).test_client()
    with client.get(f"/s3/{BUCKET}/media/report.pdf") as rv:
        assert rv.status_code == 302
        assert rv.headers["Cache-Control"] == "no-store"
        location = rv.headers["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if "X-Amz-Expires" in query:  # SigV4: a lifetime
        assert query["X-Amz-Expires"] == ["60"]
    else:  # SigV2: an expiry time
        assert abs(int(query["Expires"][0]) - (time.time() + 60)) < 10
    with urllib3.PoolManager() as http:
        answer = http.request("GET", location, retries=False)
    assert answer.status == 200
    assert answer.data == CONTENT
    assert answer.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert answer.headers["Content-Type"] == "application/pdf"


def test_presigned_redirect_for_a_missing_key_is_404(s3: s3fs.S3FileSystem) -> None:
    client = make_app(storage=s3, redirect=True).test_client()
    with client.get(f"/s3/{BUCKET}/media/missing.pdf") as rv:
        assert rv.status_code == 404
        assert "Location" not in rv.headers


def test_outage_gives_503(caplog: pytest.LogCaptureFixture) -> None:
    down = s3fs.S3FileSystem(
        **CREDENTIALS,
        client_kwargs={
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "region_name": "us-east-1",
        },
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1},
        skip_instance_cache=True,
    )
    client = make_app(storage=down).test_client()
    with caplog.at_level(logging.ERROR), client.get(f"/s3/{BUCKET}/x.txt") as rv:
        assert rv.status_code == 503
        assert b"127.0.0.1" not in rv.get_data()
    assert any("Storage s3:// unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("known", "content_type"),
    [
        ({"mimetype": "application/vnd.example"}, "application/vnd.example"),
        ({"charset": "iso-8859-1"}, "text/plain; charset=iso-8859-1"),
    ],
    ids=["file-mimetype", "file-charset"],
)
def test_presigned_redirect_and_stream_describe_the_file_alike(
    s3: s3fs.S3FileSystem, known: dict[str, str], content_type: str
) -> None:
    """What the file knows of itself reaches the redirect as it does a stream."""

    class Described(StorageDownloadView):
        def get_file(self) -> DownloadFile:
            file = super().get_file()
            for name, value in known.items():
                setattr(file, name, value)
            return file

    app = Flask(__name__)
    app.config["TESTING"] = True
    for name, redirect in (("stream", False), ("redirect", True)):
        view = Described.as_view(name, storage=s3, redirect=redirect)
        app.add_url_rule(f"/{name}/<path:path>", view_func=view)
    client = app.test_client()
    with client.get(f"/stream/{BUCKET}/media/notes.txt") as streamed:
        assert streamed.get_data() == b"some notes\n"
    with client.get(f"/redirect/{BUCKET}/media/notes.txt") as rv:
        assert rv.status_code == 302
        location = rv.headers["Location"]
    with urllib3.PoolManager() as http:
        answer = http.request("GET", location, retries=False)
    assert answer.status == 200
    assert answer.data == b"some notes\n"
    assert streamed.headers["Content-Type"] == content_type
    assert answer.headers["Content-Type"] == content_type
    disposition = 'attachment; filename="notes.txt"'
    assert streamed.headers["Content-Disposition"] == disposition
    assert answer.headers["Content-Disposition"] == disposition
