"""Review of the S3 If-Match reads (StorageFile.open's pin), on SeaweedFS.

Every ranged read of an S3 object asks ``If-Match`` the ETag it started with.
These tests pin down the stores the pin goes through (DirFileSystem folders),
those it must leave alone (caching wrappers), that a dropped body is tried
again as s3fs's ``cat_file`` does, and that a failed ``If-Match`` cuts the
body short, on the first read too.
"""

from __future__ import annotations

import http.client
import os
import pathlib
import typing as t
import urllib.parse

import pytest

s3_module = pytest.importorskip("test_s3")

import aiohttp  # noqa: E402
import fsspec  # noqa: E402
import s3fs  # noqa: E402
from conftest import running_werkzeug  # noqa: E402
from fsspec.implementations.dirfs import DirFileSystem  # noqa: E402
from test_s3 import BUCKET  # noqa: E402
from test_s3 import CONTENT  # noqa: E402
from test_s3 import make_app  # noqa: E402
from test_s3 import s3 as s3  # noqa: E402
from test_s3 import s3_endpoint as s3_endpoint  # noqa: E402

from flask_download import StorageFile  # noqa: E402


def _count_get_object(
    monkeypatch: pytest.MonkeyPatch, fs: s3fs.S3FileSystem, fail_first_body: bool
) -> list[str]:
    """Record the keys of ``get_object`` calls; optionally drop the first
    body read (a connection reset mid-body)."""
    calls: list[str] = []
    original = fs._call_s3
    failed: list[bool] = []

    class Dropping:
        def __init__(self, body: t.Any) -> None:
            self._body = body

        async def read(self, *args: t.Any) -> bytes:
            if not failed:
                failed.append(True)
                raise aiohttp.ClientPayloadError("connection reset mid-body")
            return t.cast(bytes, await self._body.read(*args))

        def close(self) -> None:
            self._body.close()

    async def call(method: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        answer = await original(method, *args, **kwargs)
        if method == "get_object":
            calls.append(kwargs["Key"])
            if fail_first_body:
                answer["Body"] = Dropping(answer["Body"])
        return answer

    monkeypatch.setattr(fs, "_call_s3", call)
    return calls


def test_a_dir_filesystem_over_s3_streams(s3: s3fs.S3FileSystem) -> None:
    """The pin called split_path/_call_s3 on the DirFileSystem itself (it
    has neither): every download from an S3 folder failed."""
    media = DirFileSystem(path=f"{BUCKET}/media", fs=s3)
    app = make_app(storage=media)
    with app.test_client().get("/s3/report.pdf") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == CONTENT


def test_a_dir_filesystem_over_s3_is_pinned(s3: s3fs.S3FileSystem) -> None:
    """Through a DirFileSystem the reads still ask If-Match: a key
    overwritten mid-download fails the next read, never splices."""
    key = "review8/pinned.bin"
    old, new = os.urandom(100_000), os.urandom(100_000)
    s3.pipe_file(f"{BUCKET}/{key}", old)
    folder = DirFileSystem(path=f"{BUCKET}/review8", fs=s3)
    handle = StorageFile(folder, "pinned.bin").open()
    try:
        assert handle.read(10) == old[:10]
        s3.pipe_file(f"{BUCKET}/{key}", new)
        assert handle.read(50_000) == b""  # cut short, never new bytes
    finally:
        handle.close()


def test_a_key_overwritten_before_the_first_read_is_no_500(
    s3: s3fs.S3FileSystem,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 412 of the first read raised before any byte went out, so the
    server answered its own 500 page instead of a body cut short."""
    key = f"{BUCKET}/review8/first.bin"
    s3.pipe_file(key, os.urandom(1000))
    opened = StorageFile.open

    def open_then_overwrite(self: StorageFile) -> t.IO[bytes]:
        handle = opened(self)
        s3.pipe_file(key, os.urandom(1000))
        return handle

    monkeypatch.setattr(StorageFile, "open", open_then_overwrite)
    app = make_app(storage=s3)
    app.config["TESTING"] = False
    with running_werkzeug(app) as base:
        url = urllib.parse.urlsplit(base)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            connection.request("GET", f"/s3/{key}")
            answer = connection.getresponse()
            assert answer.status == 200
            assert answer.headers["Content-Length"] == "1000"
            with pytest.raises(http.client.IncompleteRead) as cut:
                answer.read()
            assert cut.value.partial == b""
        finally:
            connection.close()
    assert "changed while it was read" in caplog.text


def test_a_caching_wrapper_over_s3_reads_from_its_cache(
    s3: s3fs.S3FileSystem, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A simplecache:: store was read straight from S3 on every download
    (the pin went around the cache the application asked for)."""
    cached = fsspec.filesystem("simplecache", fs=s3, cache_storage=str(tmp_path))
    calls = _count_get_object(monkeypatch, s3, fail_first_body=False)
    for _ in range(3):
        handle = StorageFile(cached, f"{BUCKET}/media/report.pdf").open()
        try:
            assert handle.read() == CONTENT
        finally:
            handle.close()
    assert calls == ["media/report.pdf"]  # the first download fills the cache


def test_a_dropped_body_is_read_again(
    s3: s3fs.S3FileSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cat_file tries the request and its body's read again on a dropped
    connection; the If-Match read tried only the request, so one reset
    mid-body cut the download short."""
    calls = _count_get_object(monkeypatch, s3, fail_first_body=True)
    handle = StorageFile(s3, f"{BUCKET}/media/report.pdf").open()
    try:
        assert handle.read() == CONTENT
    finally:
        handle.close()
    assert calls == ["media/report.pdf", "media/report.pdf"]
