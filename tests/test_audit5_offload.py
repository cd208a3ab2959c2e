"""Storage keys, offload precedence, signed and edge links (audit 5).

The S3 cases run against SeaweedFS as ``test_s3.py`` does (its server
helpers are reused) and through Werkzeug's real server, so the key reaches
the store exactly as a browser's URL would bring it.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import logging
import os
import pathlib
import typing as t
from urllib.parse import quote

import pytest
from conftest import running_werkzeug
from flask import Flask

from flask_download import FileNotFound
from flask_download import FlaskDownload
from flask_download import offload
from flask_download import PathDownloadView
from flask_download import StorageDownloadView
from flask_download.storage import storage_key

fsspec = pytest.importorskip("fsspec", reason="storages need 'Flask-Download[storage]'")
urllib3 = pytest.importorskip("urllib3")

OFFLOAD_HEADERS = ("X-Accel-Redirect", "X-Sendfile")


def _offload_headers(rv: t.Any) -> dict[str, str]:
    return {name: rv.headers[name] for name in OFFLOAD_HEADERS if name in rv.headers}


# -- S3 on SeaweedFS ------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_module() -> t.Any:
    return pytest.importorskip("test_s3")


@pytest.fixture(scope="module")
def s3_endpoint(s3_module: t.Any) -> cabc.Iterator[str]:
    with contextlib.ExitStack() as stack:
        endpoint = os.environ.get("FLASK_DOWNLOAD_S3_ENDPOINT", "").rstrip("/")
        if not endpoint:
            endpoint = stack.enter_context(s3_module.seaweedfs())
        s3_module._fill_bucket(endpoint)
        yield endpoint


@pytest.fixture(scope="module")
def s3(s3_module: t.Any, s3_endpoint: str) -> t.Any:
    """The whole S3 filesystem: the client's key starts with the bucket."""
    return s3_module.s3fs.S3FileSystem(
        **s3_module.CREDENTIALS,
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        config_kwargs=s3_module.CONFIG,
        skip_instance_cache=True,
    )


#: A key with "?" and "#", which S3 keeps as characters of the name.
ODD_KEY = "media/Invoice #3 (why?).txt"


@pytest.fixture(scope="module")
def s3_base(s3: t.Any) -> cabc.Iterator[str]:
    """A real server with a streaming and a redirecting view of ``s3``."""
    s3.pipe(f"downloads/{ODD_KEY}", b"odd key")
    app = Flask(__name__)
    for name, redirect in (("stream", False), ("redirect", True)):
        view = StorageDownloadView.as_view(name, storage=s3, redirect=redirect)
        app.add_url_rule(f"/{name}/<path:path>", view_func=view)
    with running_werkzeug(app) as base:
        yield base


def _fetch(method: str, url: str) -> t.Any:
    with urllib3.PoolManager(retries=False, timeout=20.0) as http:
        return http.request(method, url, redirect=False)


@pytest.mark.parametrize("view", ["stream", "redirect"])
@pytest.mark.parametrize(
    "suffix",
    ["%3FversionId=null", "%3FversionId=3HL4kqtJlcpXroDTDmJ", "%3FVERSIONID=null"],
    ids=["null", "version-id", "upper-case"],
)
def test_a_key_cannot_pick_an_object_version(
    s3_base: str, view: str, suffix: str
) -> None:
    """s3fs reads ``key?versionId=...`` as a version of ``key`` (version
    aware or not): a client could read an overwritten or deleted version of
    an object, or the object under another name. Such a key is a 404."""
    for method in ("GET", "HEAD"):
        answer = _fetch(method, f"{s3_base}/{view}/downloads/private.txt{suffix}")
        assert answer.status == 404, (method, answer.status)
        assert b"TOP SECRET" not in answer.data
        assert "Location" not in answer.headers


def test_question_marks_and_hashes_are_characters_of_an_s3_key(s3_base: str) -> None:
    url = f"{s3_base}/stream/downloads/{quote(ODD_KEY)}"
    answer = _fetch("GET", url)
    assert answer.status == 200
    assert answer.data == b"odd key"
    redirected = _fetch("GET", url.replace("/stream/", "/redirect/"))
    assert redirected.status == 302
    assert _fetch("GET", redirected.headers["Location"]).data == b"odd key"


def test_a_version_aware_store_is_never_asked_for_a_client_version(
    s3_module: t.Any,
) -> None:
    fs = s3_module.s3fs.S3FileSystem(
        anon=True, version_aware=True, skip_instance_cache=True
    )
    assert fs.split_path("b/p/a.txt?versionId=old")[2] == "old"  # what s3fs does
    for key in ("a.txt?versionId=old", "d?versionid=x/a.txt"):
        with pytest.raises(FileNotFound):
            storage_key(fs, "b/p", key)
    assert storage_key(fs, "b/p", "a #b?c.txt") == "b/p/a #b?c.txt"


def test_a_memory_store_refuses_the_same_keys() -> None:
    """Keys behave alike in tests (memory) and in production (S3)."""
    fs = fsspec.filesystem("memory")
    assert storage_key(fs, "/audit5", "q?x#y.txt") == "/audit5/q?x#y.txt"
    with pytest.raises(FileNotFound):
        storage_key(fs, "/audit5", "a.txt?versionId=x")


def test_an_http_store_never_gets_a_query_or_fragment_from_a_key() -> None:
    """An HTTP store sends the key as a URL: ``?`` and ``#`` would add a
    query or cut the path."""
    fs = fsspec.filesystem("http")
    prefix = "https://files.example/pub"
    for key in ("a.txt?token=x", "a.txt#x", "d?x/a.txt"):
        with pytest.raises(FileNotFound):
            storage_key(fs, prefix, key)
    assert storage_key(fs, prefix, "a b.txt") == f"{prefix}/a b.txt"


def test_other_stores_keep_question_marks_and_hashes_in_names() -> None:
    """Only stores that read them as a query, a fragment or a version refuse
    them: on SFTP, FTP or SMB ``C# notes?.pdf`` is a name like any other."""
    from fsspec.spec import AbstractFileSystem

    class Sftp(AbstractFileSystem):
        protocol = ("sftp", "ssh")

    fs = Sftp(skip_instance_cache=True)
    assert storage_key(fs, "/srv", "C# notes?.pdf") == "/srv/C# notes?.pdf"


@pytest.mark.parametrize("view", ["stream", "redirect"])
@pytest.mark.parametrize(
    "bucket",
    [
        "arn:aws:s3:us-east-1:123456789012:accesspoint/attacker",
        "arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint/olap",
        "arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-01234567890123456"
        "/accesspoint/ap",
    ],
    ids=["access-point", "object-lambda", "outpost"],
)
def test_a_client_bucket_cannot_be_an_arn(
    s3_base: str, view: str, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore sends a request for an ARN bucket, signed with the app's
    credentials, to the host the ARN names (any account's access point):
    it was a 503 after a connection attempt to ``x-123456789012.<endpoint>``."""
    with caplog.at_level(logging.ERROR):
        answer = _fetch("GET", f"{s3_base}/{view}/{bucket}/private.txt")
    assert answer.status == 404
    assert "Location" not in answer.headers
    assert not [r for r in caplog.records if "unavailable" in r.getMessage()]


def test_an_arn_given_by_the_developer_is_a_bucket_as_any(s3_module: t.Any) -> None:
    fs = s3_module.s3fs.S3FileSystem(anon=True, skip_instance_cache=True)
    arn = "arn:aws:s3:us-east-1:123456789012:accesspoint/mine"
    assert storage_key(fs, arn, "a.txt") == f"{arn}/a.txt"
    with pytest.raises(FileNotFound):
        storage_key(fs, "", f"{arn}/a.txt")
    # Below a folder of a DirFileSystem, the first segment is no bucket.
    from fsspec.implementations.dirfs import DirFileSystem

    dirfs = DirFileSystem(path="bucket", fs=fs)
    assert storage_key(dirfs, "", "ab:c/d.txt") == "ab:c/d.txt"
    # Elsewhere a ":" is a character as any.
    memory = fsspec.filesystem("memory")
    assert storage_key(memory, "", "ab:c/d.txt") == "ab:c/d.txt"


@pytest.mark.parametrize("view", ["stream", "redirect"])
@pytest.mark.parametrize(
    "bucket", ["Invalid_Bucket!", "a" * 300, "b%5Ec"], ids=["bang", "long", "caret"]
)
def test_a_bucket_name_s3_refuses_is_404_not_an_outage(
    s3_base: str, view: str, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore refuses such names before sending anything
    (``ParamValidationError``): no object has them. It was a 503 with an
    error line in the log for every such URL a client made up."""
    with caplog.at_level(logging.ERROR):
        for method in ("GET", "HEAD"):
            answer = _fetch(method, f"{s3_base}/{view}/{bucket}/a.txt")
            assert answer.status == 404, (method, answer.status)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_store_that_refuses_the_app_is_still_an_outage(
    s3_module: t.Any, s3_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 403 from the store (wrong credentials) is no missing file: 503."""
    wrong = s3_module.s3fs.S3FileSystem(
        key=s3_module.ACCESS_KEY,
        secret="not-the-secret",
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
        config_kwargs=s3_module.CONFIG,
        skip_instance_cache=True,
    )
    app = Flask(__name__)
    app.add_url_rule(
        "/s/<path:path>", view_func=StorageDownloadView.as_view("s", storage=wrong)
    )
    with (
        caplog.at_level(logging.ERROR),
        app.test_client().get("/s/downloads/private.txt") as rv,
    ):
        assert rv.status_code == 503
        assert b"TOP SECRET" not in rv.get_data()
        assert b"not-the-secret" not in rv.get_data()
    assert any("unavailable" in r.getMessage() for r in caplog.records)


# -- offload: a view's backend and a rule's backend ---------------------------


def _two_backend_app(
    app_factory: cabc.Callable[..., Flask], root: pathlib.Path, **config: t.Any
) -> Flask:
    """A rule of the configuration that names nginx, and views that name
    their own backend or none."""
    app = app_factory(
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": os.fspath(root),
                "destination_url": "/protected/",
                "backend": "nginx",
            }
        ],
        **config,
    )
    for name, accel in (("plain", None), ("apache", "apache"), ("off", False)):
        view = PathDownloadView.as_view(name, accel=accel)
        app.add_url_rule(f"/{name}/<path:path>", view_func=view)
    app.add_url_rule(
        "/decorated/<path:path>",
        view_func=offload("lighttpd")(PathDownloadView.as_view("decorated")),
    )
    return app


def test_a_view_naming_its_backend_wins_over_the_rules_backend(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    """The view is behind Apache: an X-Accel-Redirect would reach the client
    (with an empty body) instead of being read by a server (view attribute >
    app config, DESIGN §4)."""
    app = _two_backend_app(app_factory, download_root)
    real = os.path.realpath(download_root / "hello.txt")
    client = app.test_client()
    with client.get("/apache/hello.txt") as rv:
        assert rv.status_code == 200
        assert _offload_headers(rv) == {"X-Sendfile": real}
        assert rv.get_data() == b""
    with client.get("/decorated/hello.txt") as rv:
        assert _offload_headers(rv) == {"X-Sendfile": real}
    # No backend named by the view: the rule's own.
    with client.get("/plain/hello.txt") as rv:
        assert _offload_headers(rv) == {"X-Accel-Redirect": "/protected/hello.txt"}
    with client.get("/off/hello.txt") as rv:
        assert _offload_headers(rv) == {}
        assert rv.get_data() == (download_root / "hello.txt").read_bytes()


def test_download_accel_does_not_override_a_rules_backend(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    app = _two_backend_app(app_factory, download_root, DOWNLOAD_ACCEL="apache")
    with app.test_client().get("/plain/hello.txt") as rv:
        assert _offload_headers(rv) == {"X-Accel-Redirect": "/protected/hello.txt"}


def test_a_config_rule_the_views_backend_cannot_use_is_skipped(
    app_factory: cabc.Callable[..., Flask],
) -> None:
    """A storage rule for nginx has no X-Sendfile path: a view behind Apache
    streams the file itself rather than send nginx's header to Apache."""
    fs = fsspec.filesystem("memory")
    fs.pipe("/audit5-accel/pub/a.txt", b"from the store")
    app = app_factory(
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_url": "memory://audit5-accel/pub",
                "destination_url": "/store/",
                "backend": "nginx",
            }
        ]
    )
    for name, accel in (("plain", None), ("apache", "apache")):
        view = StorageDownloadView.as_view(
            name, storage="memory://audit5-accel/pub", accel=accel
        )
        app.add_url_rule(f"/{name}/<path:path>", view_func=view)
    client = app.test_client()
    with client.get("/plain/a.txt") as rv:
        assert _offload_headers(rv) == {"X-Accel-Redirect": "/store/a.txt"}
    with client.get("/apache/a.txt") as rv:
        assert _offload_headers(rv) == {}
        assert rv.get_data() == b"from the store"


def test_rules_given_with_the_view_keep_their_own_backend(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    """Rules of the same level as the view's backend: the rule is the more
    specific choice."""
    rules = [
        {
            "source_dir": os.fspath(download_root),
            "destination_dir": "/mnt/files",
            "backend": "apache",
        }
    ]
    app = app_factory()
    app.add_url_rule(
        "/v/<path:path>",
        view_func=PathDownloadView.as_view("v", accel="nginx", accel_rules=rules),
    )
    app.add_url_rule(
        "/d/<path:path>",
        view_func=offload("nginx", rules=rules)(PathDownloadView.as_view("d")),
    )
    client = app.test_client()
    for url in ("/v/hello.txt", "/d/hello.txt"):
        with client.get(url) as rv:
            assert _offload_headers(rv) == {"X-Sendfile": "/mnt/files/hello.txt"}


def test_a_hand_built_response_follows_the_rules_backend(
    app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path
) -> None:
    from flask_download import DownloadResponse
    from flask_download import PathFile

    app = _two_backend_app(app_factory, download_root, DOWNLOAD_ACCEL="apache")

    @app.route("/by-hand")
    def by_hand() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    with app.test_client().get("/by-hand") as rv:
        assert _offload_headers(rv) == {"X-Accel-Redirect": "/protected/hello.txt"}


def test_the_extension_object_keeps_the_config(
    download_root: pathlib.Path,
) -> None:
    """``FlaskDownload(accel_rules=...)`` rules are the configuration's too."""
    app = Flask(__name__)
    FlaskDownload(
        app,
        accel_rules=[
            {
                "source_dir": os.fspath(download_root),
                "destination_url": "/protected/",
                "backend": "nginx",
            }
        ],
    )
    app.add_url_rule(
        "/a/<path:path>",
        view_func=PathDownloadView.as_view(
            "a", root=os.fspath(download_root), accel="apache"
        ),
    )
    with app.test_client().get("/a/hello.txt") as rv:
        assert _offload_headers(rv) == {
            "X-Sendfile": os.path.realpath(download_root / "hello.txt")
        }
