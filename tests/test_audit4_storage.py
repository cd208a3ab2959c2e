"""StorageDownloadView (audit 4): presigned redirects and the keys a store sees.

The S3 cases run against SeaweedFS as ``test_s3.py`` does (its server
helpers are reused); the others use a memory store that records the keys
it is asked for and, for redirects, "presigns" URLs that show their lifetime.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import os
import typing as t
import urllib.parse

import pytest
from conftest import running_werkzeug
from flask import Flask

pytest.importorskip("fsspec", reason="storages need 'Flask-Download[storage]'")

from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402

from flask_download import FlaskDownload  # noqa: E402
from flask_download import signed_url_for  # noqa: E402
from flask_download import StorageDownloadView  # noqa: E402


class SigningMemory(MemoryFileSystem):
    """A memory store that records the keys asked for and "presigns" URLs
    that carry their lifetime."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = {}
        self.pseudo_dirs = [""]
        self.asked: list[str] = []

    def info(self, path: str, **kwargs: t.Any) -> dict[str, t.Any]:
        self.asked.append(path)
        return t.cast("dict[str, t.Any]", super().info(path, **kwargs))

    def sign(self, path: str, expiration: int = 100, **kwargs: t.Any) -> str:
        return f"https://cdn.example/{path}?lifetime={expiration}"


@pytest.fixture
def store() -> SigningMemory:
    fs = SigningMemory(skip_instance_cache=True)
    for key in (
        "/docs/a.txt",
        "/docs/100%.txt",
        "/docs/100%25.txt",
        "/docs/a%41b.txt",
        "/docs/sub/f.txt",
    ):
        fs.pipe(key, key.encode())
    return fs


def _app(fs: SigningMemory, **view_attrs: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="audit-4")
    FlaskDownload(app)
    view = StorageDownloadView.as_view("dl", storage=fs, **view_attrs)
    app.add_url_rule("/files/<path:path>", view_func=view)
    return app


def _lifetime(location: str) -> int:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    return int(query["lifetime"][0])


# -- presigned redirects -----------------------------------------------------------


@pytest.mark.parametrize(("link", "expected"), [(60, 60), (3600, 300)])
def test_a_signed_link_redirects_to_a_url_that_expires_with_it(
    store: SigningMemory, link: int, expected: int
) -> None:
    """A link valid 60 s more redirected to a URL valid 300 s (the default
    redirect_expires): the store kept serving the file four minutes after
    the link, and the access it grants, had expired."""
    app = _app(store, redirect=True, signed=True)
    with app.test_request_context():
        url = signed_url_for("dl", path="docs/a.txt", expires_in=link)
    with app.test_client().get(url) as rv:
        assert rv.status_code == 302
        # A second may pass between signing and answering.
        assert expected - 2 <= _lifetime(rv.headers["Location"]) <= expected
        assert "no-store" in rv.headers["Cache-Control"]


def test_an_unsigned_redirect_keeps_redirect_expires(store: SigningMemory) -> None:
    app = _app(store, redirect=True, redirect_expires=45)
    with app.test_client().get("/files/docs/a.txt") as rv:
        assert rv.status_code == 302
        assert _lifetime(rv.headers["Location"]) == 45


def test_head_never_gets_the_url_presigned_for_get(store: SigningMemory) -> None:
    """fsspec's ``sign()`` has no method: outside S3 a HEAD is answered from
    the store's metadata, never redirected to a GET URL."""
    app = _app(store, redirect=True)
    with running_werkzeug(app) as base:
        import urllib3

        with urllib3.PoolManager(retries=False, timeout=10.0) as http:
            get = http.request("GET", f"{base}/files/docs/a.txt", redirect=False)
            head = http.request("HEAD", f"{base}/files/docs/a.txt", redirect=False)
    assert get.status == 302
    assert head.status == 200
    assert "Location" not in head.headers
    assert head.headers["Content-Length"] == str(len(b"/docs/a.txt"))
    assert head.data == b""


# -- keys are decoded once -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("/files/docs/100%25.txt", "docs/100%.txt"),
        ("/files/docs/100%2525.txt", "docs/100%25.txt"),
        ("/files/docs/a%2541b.txt", "docs/a%41b.txt"),
        ("/files/docs/sub%2Ff.txt", "docs/sub/f.txt"),
    ],
)
def test_a_key_reaches_the_store_as_the_urls_decoded_path(
    store: SigningMemory, url: str, key: str
) -> None:
    with _app(store).test_client().get(url) as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"/" + key.encode()
    assert store.asked == [key]


# -- S3: caching wrappers -----------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> cabc.Iterator[t.Any]:
    """An S3 filesystem on SeaweedFS (``test_s3.py``'s bucket and files)."""
    s3_module = pytest.importorskip("test_s3")
    with contextlib.ExitStack() as stack:
        endpoint = os.environ.get("FLASK_DOWNLOAD_S3_ENDPOINT", "").rstrip("/")
        if not endpoint:
            endpoint = stack.enter_context(s3_module.seaweedfs())
        s3_module._fill_bucket(endpoint)
        yield s3_module.s3fs.S3FileSystem(
            **s3_module.CREDENTIALS,
            client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
            config_kwargs=s3_module.CONFIG,
            skip_instance_cache=True,
        )


@pytest.mark.parametrize("cache", ["simplecache", "blockcache"])
def test_a_cached_s3_store_redirects_with_the_views_name_and_a_head_url(
    s3: t.Any, cache: str
) -> None:
    """``simplecache::s3://`` was not taken for S3: its GET URL lost the
    view's ``Content-Disposition`` and ``Content-Type``, and HEAD was never
    redirected."""
    import fsspec
    import urllib3

    fs = fsspec.filesystem(cache, fs=s3, skip_instance_cache=True)
    app = Flask(__name__)
    view = StorageDownloadView.as_view(
        "dl", storage=fs, redirect=True, basename="résumé.pdf"
    )
    app.add_url_rule("/s3/<path:path>", view_func=view)
    url = "/s3/downloads/media/report.pdf"
    with (
        running_werkzeug(app) as base,
        urllib3.PoolManager(retries=False, timeout=10.0) as http,
    ):
        get = http.request("GET", base + url, redirect=False)
        head = http.request("HEAD", base + url, redirect=False)
        assert get.status == 302
        assert head.status == 302
        answer = http.request("GET", get.headers["Location"], redirect=False)
        head_answer = http.request("HEAD", head.headers["Location"], redirect=False)
    assert answer.status == 200
    assert answer.data == s3.cat_file("downloads/media/report.pdf")
    disposition = answer.headers["Content-Disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in disposition
    assert answer.headers["Content-Type"] == "application/pdf"
    assert head_answer.status == 200
    assert head_answer.headers["Content-Disposition"] == disposition
