from __future__ import annotations

import logging
import os
import pathlib
import re
import typing as t
import uuid

import pytest
from flask import Flask

fsspec = pytest.importorskip("fsspec", reason="storages need 'fsspec'")

from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402

from flask_download import ConfigurationError  # noqa: E402
from flask_download import DownloadFile  # noqa: E402
from flask_download import FileNotFound  # noqa: E402
from flask_download import resolve_storage  # noqa: E402
from flask_download import StorageDownloadView  # noqa: E402
from flask_download import StorageFile  # noqa: E402
from flask_download.storage import storage_key  # noqa: E402

DATA = bytes(range(256)) * 1024  # 256 KiB


class CountingFS(MemoryFileSystem):
    """A private memory filesystem that records what is asked of it."""

    protocol = "countingmem"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.store = {}
        self.pseudo_dirs = [""]
        self.calls: list[tuple[t.Any, ...]] = []

    def info(self, path: str, **kwargs: t.Any) -> dict[str, t.Any]:
        self.calls.append(("info", path))
        return t.cast(dict[str, t.Any], super().info(path, **kwargs))

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kw: t.Any
    ) -> bytes:
        self.calls.append(("cat_file", start, end))
        return t.cast(bytes, super().cat_file(path, start=start, end=end, **kw))

    def _open(self, path: str, mode: str = "rb", **kwargs: t.Any) -> t.Any:
        self.calls.append(("open", path))
        return super()._open(path, mode, **kwargs)


class DownFS(MemoryFileSystem):
    """A filesystem whose store is down."""

    protocol = "downmem"

    def info(self, path: str, **kwargs: t.Any) -> dict[str, t.Any]:
        raise ConnectionError("Connection refused by storage.example:443")


class TaggedFS(MemoryFileSystem):
    """A store that reports its own ETag and modification time, S3-style."""

    protocol = "taggedmem"

    def info(self, path: str, **kwargs: t.Any) -> dict[str, t.Any]:
        return {
            "name": path,
            "size": 5,
            "type": "file",
            "ETag": '"9b2cf535f27731c974343645a3985328-2"',
            "LastModified": "2024-05-01T10:20:30Z",
        }


@pytest.fixture
def fs() -> CountingFS:
    fs = CountingFS(skip_instance_cache=True)
    fs.pipe("/docs/data.bin", DATA)
    fs.pipe("/docs/hello.txt", b"Hello, storage!\n")
    fs.pipe("/docs/sub/été.txt", "Un été\n".encode())
    fs.pipe("/secret.txt", b"TOP SECRET")
    fs.calls.clear()
    return fs


def make_app(**view_attrs: t.Any) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = True
    view = StorageDownloadView.as_view("dl", **view_attrs)
    app.add_url_rule("/files/<path:path>", view_func=view)
    app.add_url_rule("/fixed", view_func=view, defaults={"path": None})
    return app


def test_full_download_with_metadata(fs: CountingFS) -> None:
    client = make_app(storage=fs).test_client()
    with client.get("/files/docs/data.bin") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == DATA
        assert rv.headers["Content-Length"] == str(len(DATA))
        assert rv.headers["Accept-Ranges"] == "bytes"
        assert rv.headers["ETag"].startswith('"')
        assert "Last-Modified" in rv.headers
        assert rv.headers["Content-Disposition"] == 'attachment; filename="data.bin"'
    assert [c for c in fs.calls if c[0] == "info"] == [("info", "docs/data.bin")]


def test_whole_file_is_fetched_in_few_growing_blocks(fs: CountingFS) -> None:
    client = make_app(storage=fs, chunk_size=4096).test_client()
    with client.get("/files/docs/data.bin") as rv:
        assert rv.get_data() == DATA
    fetches = [c for c in fs.calls if c[0] == "cat_file"]
    sizes = [end - start for _, start, end in fetches]
    # 4 KiB, 8 KiB, 16 KiB... instead of 64 requests of 4 KiB.
    assert sizes[:3] == [4096, 8192, 16384]
    assert len(fetches) < 10
    assert sum(sizes) == len(DATA)


def test_range_is_a_ranged_read(fs: CountingFS) -> None:
    client = make_app(storage=fs).test_client()
    with client.get("/files/docs/data.bin", headers={"Range": "bytes=1000-1099"}) as rv:
        assert rv.status_code == 206
        assert rv.get_data() == DATA[1000:1100]
        assert rv.headers["Content-Range"] == f"bytes 1000-1099/{len(DATA)}"
    assert [c for c in fs.calls if c[0] == "cat_file"] == [("cat_file", 1000, 1100)]
    assert not [c for c in fs.calls if c[0] == "open"]


def test_several_ranges_read_only_their_bytes(fs: CountingFS) -> None:
    client = make_app(storage=fs).test_client()
    headers = {"Range": "bytes=0-9,200000-200009"}
    with client.get("/files/docs/data.bin", headers=headers) as rv:
        assert rv.status_code == 206
        body = rv.get_data()
        assert DATA[0:10] in body
        assert DATA[200000:200010] in body
    fetches = [c for c in fs.calls if c[0] == "cat_file"]
    assert fetches == [("cat_file", 0, 10), ("cat_file", 200000, 200010)]


def test_if_none_match_gives_304_without_reading(fs: CountingFS) -> None:
    client = make_app(storage=fs).test_client()
    with client.get("/files/docs/hello.txt") as rv:
        etag = rv.headers["ETag"]
    fs.calls.clear()
    with client.get("/files/docs/hello.txt", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.get_data() == b""
        assert rv.headers["ETag"] == etag
    assert fs.calls == [("info", "docs/hello.txt")]


def test_head_reads_no_content(fs: CountingFS) -> None:
    client = make_app(storage=fs).test_client()
    with client.head("/files/docs/data.bin") as rv:
        assert rv.status_code == 200
        assert rv.headers["Content-Length"] == str(len(DATA))
    assert [c[0] for c in fs.calls] == ["info"]


def test_non_ascii_key(fs: CountingFS) -> None:
    client = make_app(storage=fs).test_client()
    with client.get("/files/docs/sub/%C3%A9t%C3%A9.txt") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == "Un été\n".encode()
        assert "filename*=UTF-8''%C3%A9t%C3%A9.txt" in rv.headers["Content-Disposition"]


@pytest.mark.parametrize(
    "path",
    [
        "docs/missing.txt",
        "docs/sub",
        "docs/../secret.txt",
        "docs/%2e%2e/secret.txt",
        "docs\\..\\secret.txt",
        "docs/%00.txt",
    ],
    ids=["missing", "directory", "dotdot", "encoded-dotdot", "backslash", "nul"],
)
def test_refused_or_missing_keys_give_404(fs: CountingFS, path: str) -> None:
    client = make_app(storage=fs).test_client()
    with client.get("/files/" + path) as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.get_data()


def test_url_storage_confines_keys_to_its_prefix() -> None:
    prefix = f"/flask-download-tests-{uuid.uuid4().hex}"
    shared = fsspec.filesystem("memory")
    shared.pipe(f"{prefix}/public/a.txt", b"public")
    shared.pipe(f"{prefix}/private.txt", b"private")
    try:
        client = make_app(storage=f"memory://{prefix}/public").test_client()
        with client.get("/files/a.txt") as rv:
            assert rv.status_code == 200
            assert rv.get_data() == b"public"
        with client.get("/files/../private.txt") as rv:
            assert rv.status_code == 404
    finally:
        shared.rm(prefix, recursive=True)


def test_fixed_path_attribute(fs: CountingFS) -> None:
    client = make_app(storage=fs, path="docs/hello.txt", attachment=False).test_client()
    with client.get("/fixed") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"Hello, storage!\n"
        assert rv.headers["Content-Disposition"] == 'inline; filename="hello.txt"'
        assert rv.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_storage_outage_gives_503_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_app(storage=DownFS(skip_instance_cache=True)).test_client()
    with caplog.at_level(logging.ERROR), client.get("/files/a.txt") as rv:
        assert rv.status_code == 503
        assert b"storage.example" not in rv.get_data()
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "unavailable" in m and "a.txt" in m and "ConnectionError" in m for m in messages
    )


def test_redirect_without_signing_support_streams(fs: CountingFS) -> None:
    client = make_app(storage=fs, redirect=True).test_client()
    with client.get("/files/docs/hello.txt") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"Hello, storage!\n"
    assert [c for c in fs.calls if c[0] == "info"] == [("info", "docs/hello.txt")]


def test_missing_storage_is_a_configuration_error() -> None:
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ConfigurationError, match="needs a 'storage'"):
        app.test_client().get("/files/a.txt")


def test_store_etag_and_modified_time_are_used() -> None:
    file = StorageFile(TaggedFS(skip_instance_cache=True), "bucket/key.txt")
    assert file.etag == "9b2cf535f27731c974343645a3985328-2"
    assert file.modified_time is not None
    assert file.modified_time.isoformat() == "2024-05-01T10:20:30+00:00"
    assert file.size == 5
    assert file.name == "key.txt"


class NewlineTaggedFS(TaggedFS):
    """A store whose ETag ends with a newline inside the quotes."""

    protocol = "newlinetaggedmem"

    def info(self, path: str, **kwargs: t.Any) -> dict[str, t.Any]:
        return {**super().info(path, **kwargs), "ETag": '"abc\n"'}


def test_store_etag_a_header_cannot_carry_is_kept_as_a_hash() -> None:
    file = StorageFile(NewlineTaggedFS(skip_instance_cache=True), "bucket/key.txt")
    assert file.etag is not None
    assert re.fullmatch("[0-9a-f]{32}", file.etag), file.etag


def test_storage_file_missing_key_raises(fs: CountingFS) -> None:
    with pytest.raises(FileNotFound):
        StorageFile(fs, "docs/nope.txt")


def test_storage_file_chunks_a_slice(fs: CountingFS) -> None:
    with StorageFile(fs, "docs/data.bin", name="x.bin") as file:
        assert file.name == "x.bin"
        assert file.url == "countingmem:///docs/data.bin"
        assert b"".join(file.chunks(100, 10, 1010)) == DATA[10:1010]


def test_resolve_storage_caches_per_url() -> None:
    first = resolve_storage("memory://cache-test")
    assert resolve_storage("memory://cache-test") is first
    assert first[1] == "/cache-test"


@pytest.mark.parametrize("value", [42, b"memory://", ""], ids=["int", "bytes", "empty"])
def test_resolve_storage_refuses_other_values(value: t.Any) -> None:
    with pytest.raises(ConfigurationError):
        resolve_storage(value)


def test_storage_key_joins_under_the_prefix(fs: CountingFS) -> None:
    assert storage_key(fs, "bucket/pre", "a/./b.txt") == "bucket/pre/a/b.txt"
    assert storage_key(fs, "", "a.txt") == "a.txt"
    with pytest.raises(FileNotFound):
        storage_key(fs, "bucket/pre", "../other/b.txt")


# -- local filesystem -------------------------------------------------------------


def test_local_storage_url_serves_with_sendfile_path(
    download_root: pathlib.Path,
) -> None:
    url = download_root.as_uri()
    client = make_app(storage=url).test_client()
    with client.get("/files/hello.txt") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"Hello, world!\n"
    with client.get("/files/data.bin", headers={"Range": "bytes=4-7"}) as rv:
        assert rv.status_code == 206
        assert rv.get_data() == bytes(range(4, 8))
    fs, prefix = resolve_storage(url)
    file = StorageFile(fs, storage_key(fs, prefix, "hello.txt"))
    assert file.path == os.path.realpath(download_root / "hello.txt")


def test_local_storage_refuses_symlinks_out(download_root: pathlib.Path) -> None:
    (download_root / "escape.txt").symlink_to(download_root.parent / "secret.txt")
    client = make_app(storage=download_root.as_uri()).test_client()
    with client.get("/files/escape.txt") as rv:
        assert rv.status_code == 404
    with client.get("/files/../secret.txt") as rv:
        assert rv.status_code == 404


def _dirfs(root: pathlib.Path) -> t.Any:
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    return DirFileSystem(os.fspath(root), fs=LocalFileSystem())


def test_dirfs_over_local_disk_refuses_symlinks_out(
    download_root: pathlib.Path,
) -> None:
    """Issue #11: a DirFileSystem over the local disk goes through the
    confined opener, as a bare LocalFileSystem does."""
    (download_root / "escape.txt").symlink_to(download_root.parent / "secret.txt")
    (download_root / "escape-dir").symlink_to(download_root.parent)
    (download_root / "inside.txt").symlink_to("sub/nested.txt")
    client = make_app(storage=_dirfs(download_root)).test_client()
    for url in ("/files/escape.txt", "/files/escape-dir/secret.txt"):
        with client.get(url) as rv:
            assert rv.status_code == 404
            assert b"TOP SECRET" not in rv.get_data()
    with client.get("/files/inside.txt") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"nested\n"


def test_dirfs_over_local_disk_is_a_local_file(download_root: pathlib.Path) -> None:
    """Served from the descriptor the opener checked: sendfile, offload."""
    fs = _dirfs(download_root)
    with StorageFile(fs, storage_key(fs, "", "sub/nested.txt")) as file:
        assert file.path == os.path.realpath(download_root / "sub" / "nested.txt")
        assert file.real_path == file.path
        assert file.url == fs.unstrip_protocol("sub/nested.txt")
        with file.open() as handle:
            assert handle.read() == b"nested\n"


def test_nested_dirfs_is_confined_where_fsspec_reads(
    download_root: pathlib.Path,
) -> None:
    """A DirFileSystem inside another joins its folder below the inner
    one, as fsspec does: an absolute outer folder is not the host's."""
    from fsspec.implementations.dirfs import DirFileSystem

    (download_root / "etc").mkdir()
    (download_root / "etc" / "motd").write_bytes(b"sandboxed")
    fs = DirFileSystem("/etc", fs=_dirfs(download_root))
    assert fs.cat_file("motd") == b"sandboxed"  # what fsspec itself reads
    client = make_app(storage=fs).test_client()
    with client.get("/files/motd") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"sandboxed"
    for name in ("passwd", "hostname"):
        assert not (download_root / "etc" / name).exists()
        with client.get(f"/files/{name}") as rv:
            assert rv.status_code == 404


def test_nested_dirfs_trusted_path_is_read_where_fsspec_reads(
    download_root: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: t.Any
) -> None:
    from fsspec.implementations.dirfs import DirFileSystem

    (download_root / "sub2").mkdir()
    (download_root / "sub2" / "n.txt").write_bytes(b"in the storage")
    # The same relative name in the working directory must not be served.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub2").mkdir()
    (tmp_path / "sub2" / "n.txt").write_bytes(b"WRONG FILE FROM CWD")
    fs = DirFileSystem("sub2", fs=_dirfs(download_root))
    assert fs.cat_file("n.txt") == b"in the storage"
    client = make_app(storage=fs, path="n.txt").test_client()
    with client.get("/fixed") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"in the storage"


@pytest.mark.parametrize("cache", ["simplecache", "filecache", "blockcache"])
def test_cached_local_storage_refuses_symlinks_out(
    download_root: pathlib.Path, tmp_path: pathlib.Path, cache: str
) -> None:
    """A cache over the local disk is opened by the confined opener too."""
    (download_root / "escape.txt").symlink_to(download_root.parent / "secret.txt")
    (download_root / "escape-dir").symlink_to(download_root.parent)
    storage = f"{cache}::{download_root.as_uri()}"
    client = make_app(storage=storage).test_client()
    for url in ("/files/escape.txt", "/files/escape-dir/secret.txt"):
        with client.get(url) as rv:
            assert rv.status_code == 404
            assert b"TOP SECRET" not in rv.get_data()
    with client.get("/files/sub/nested.txt", headers={"Range": "bytes=1-3"}) as rv:
        assert rv.status_code == 206
        assert rv.get_data() == b"est"


def test_async_wrapper_of_the_local_disk_refuses_symlinks_out(
    download_root: pathlib.Path,
) -> None:
    asyn_wrapper = pytest.importorskip("fsspec.implementations.asyn_wrapper")
    from fsspec.implementations.local import LocalFileSystem

    (download_root / "escape.txt").symlink_to(download_root.parent / "secret.txt")
    fs = asyn_wrapper.AsyncFileSystemWrapper(LocalFileSystem())
    prefix = os.fspath(download_root)
    with pytest.raises(FileNotFound):
        StorageFile(fs, storage_key(fs, prefix, "escape.txt"))
    with StorageFile(fs, storage_key(fs, prefix, "hello.txt")) as file:
        assert file.path == os.path.realpath(download_root / "hello.txt")


def test_dirfs_over_memory_keeps_its_key_checks() -> None:
    from fsspec.implementations.dirfs import DirFileSystem

    memory = MemoryFileSystem(skip_instance_cache=True)
    memory.store = {}
    memory.pseudo_dirs = [""]
    memory.pipe("/base/a.txt", b"a")
    fs = DirFileSystem("/base", fs=memory)
    assert storage_key(fs, "", "a.txt") == "a.txt"
    with pytest.raises(FileNotFound):
        storage_key(fs, "", "%2e%2e/secret.txt")


@pytest.mark.parametrize(
    "key", ["%2e%2e/secret.txt", ".%2E/secret.txt", "a%2fb", "a%5cb", "%252e%252e/x"]
)
def test_remote_keys_are_checked_after_decoding(fs: CountingFS, key: str) -> None:
    with pytest.raises(FileNotFound):
        storage_key(fs, "docs", key)


def test_local_keys_keep_their_percent_signs(download_root: pathlib.Path) -> None:
    """On the local disk a key is a file name: "%2e%2e" is one, not ".."."""
    (download_root / "%2e%2e").write_bytes(b"literal")
    client = make_app(storage=download_root.as_uri()).test_client()
    with client.get("/files/%252e%252e") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"literal"


def test_trusted_absolute_path_on_the_local_disk(download_root: pathlib.Path) -> None:
    """Issue #11: a path fixed by the developer may be absolute."""
    from fsspec.implementations.local import LocalFileSystem

    path = os.fspath(download_root / "sub" / "nested.txt")
    client = make_app(storage=LocalFileSystem(), path=path).test_client()
    with client.get("/fixed") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"nested\n"


def test_trusted_absolute_path_ignores_the_url_prefix(
    download_root: pathlib.Path,
) -> None:
    path = os.fspath(download_root / "hello.txt")
    other = download_root / "sub"
    client = make_app(storage=other.as_uri(), path=path).test_client()
    with client.get("/fixed") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"Hello, world!\n"


def test_trusted_absolute_key_on_a_remote_store(fs: CountingFS) -> None:
    client = make_app(storage=fs, path="/docs/hello.txt").test_client()
    with client.get("/fixed") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"Hello, storage!\n"


class SigningFS(CountingFS):
    """A private memory filesystem that can presign URLs, as S3 does."""

    protocol = "signingmem"

    def sign(self, path: str, expiration: int = 100, **kwargs: t.Any) -> str:
        return f"https://store.example/{path}?expires={expiration}"


class RecordingStorageFile(StorageFile):
    close_calls = 0

    def close(self) -> None:
        self.close_calls += 1
        super().close()


@pytest.mark.parametrize(
    ("signing", "status"),
    [(True, 302), (False, 200)],
    ids=["presigned-302", "no-signing-streams"],
)
def test_redirect_view_gets_the_file_once_and_closes_it(
    signing: bool, status: int
) -> None:
    fs = (SigningFS if signing else CountingFS)(skip_instance_cache=True)
    fs.pipe("/docs/hello.txt", b"Hello, storage!\n")
    files: list[RecordingStorageFile] = []

    class Recording(StorageDownloadView):
        def get_file(self) -> DownloadFile:
            fs, _ = self.get_storage()
            files.append(RecordingStorageFile(fs, self.get_path()))
            return files[-1]

    app = Flask(__name__)
    app.config["TESTING"] = True
    view = Recording.as_view("dl", storage=fs, redirect=True, redirect_expires=30)
    app.add_url_rule("/files/<path:path>", view_func=view)
    with app.test_client().get("/files/docs/hello.txt") as rv:
        assert rv.status_code == status
        if signing:
            assert rv.headers["Location"] == (
                "https://store.example/docs/hello.txt?expires=30"
            )
            assert rv.get_data() == b""
        else:
            assert rv.get_data() == b"Hello, storage!\n"
    assert len(files) == 1
    assert files[0].close_calls >= 1


def test_storage_is_resolved_once_per_request(
    fs: CountingFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved: list[t.Any] = []

    def counting(storage: t.Any) -> tuple[t.Any, str]:
        resolved.append(storage)
        return resolve_storage(storage)

    monkeypatch.setattr("flask_download.storage._view.resolve_storage", counting)
    client = make_app(storage=fs).test_client()
    with client.get("/files/docs/hello.txt") as rv:
        assert rv.get_data() == b"Hello, storage!\n"
    assert resolved == [fs]


def test_head_on_a_signing_store_is_answered_from_metadata() -> None:
    """Issue #13: a URL signed for GET is never handed to a HEAD.

    fsspec's ``sign()`` has no method argument, so a store other than S3
    gets HEAD answered by the app, from ``info()``, without reading bytes.
    """
    fs = SigningFS(skip_instance_cache=True)
    fs.pipe("/docs/hello.txt", b"Hello, storage!\n")
    client = make_app(storage=fs, redirect=True).test_client()
    with client.get("/files/docs/hello.txt") as rv:
        assert rv.status_code == 302
    fs.calls.clear()
    with client.head("/files/docs/hello.txt") as rv:
        assert rv.status_code == 200
        assert "Location" not in rv.headers
        assert rv.headers["Content-Length"] == "16"
        assert rv.headers["Content-Disposition"] == 'attachment; filename="hello.txt"'
        assert "ETag" in rv.headers
        assert rv.get_data() == b""
    assert [c[0] for c in fs.calls] == ["info"]


@pytest.mark.parametrize(
    "expires",
    [0, -5, 1.5, "300", True, None],
    ids=["zero", "negative", "fraction", "string", "bool", "none"],
)
def test_bad_redirect_expires_fails_when_the_view_is_made(expires: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="redirect_expires"):
        StorageDownloadView.as_view("dl", storage="memory://", redirect_expires=expires)


def test_redirect_expires_accepts_a_timedelta() -> None:
    import datetime

    fs = SigningFS(skip_instance_cache=True)
    fs.pipe("/docs/hello.txt", b"Hello, storage!\n")
    app = make_app(
        storage=fs, redirect=True, redirect_expires=datetime.timedelta(minutes=2)
    )
    with app.test_client().get("/files/docs/hello.txt") as rv:
        assert rv.headers["Location"].endswith("?expires=120")


# -- missing extras and URL filesystems ---------------------------------------------


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    # A None entry in sys.modules makes the import fail as if not installed.
    import sys

    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_s3_url_without_fsspec_names_the_s3_extra_when_the_view_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: [storage] was named on the first request, then [s3] on the next."""
    _without(monkeypatch, "fsspec", "s3fs")
    with pytest.raises(ImportError, match=re.escape("Flask-Download[s3]")):
        StorageDownloadView.as_view("dl", storage="s3://bucket/missing-fsspec")
    with pytest.raises(ImportError, match=re.escape("Flask-Download[s3]")):
        resolve_storage("s3://bucket/missing-fsspec-2")
    with pytest.raises(ImportError, match=re.escape("Flask-Download[s3]")):
        StorageDownloadView.as_view("dl", storage="simplecache::s3://bucket/chained")


def test_s3_url_without_s3fs_names_the_s3_extra_when_the_view_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, "s3fs")
    # fsspec keeps the classes it loaded: forget S3's as if never installed.
    import importlib

    registry = importlib.import_module("fsspec.registry")
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    with pytest.raises(ImportError, match=re.escape("Flask-Download[s3]")):
        StorageDownloadView.as_view("dl", storage="s3://bucket/missing-s3fs")
    with pytest.raises(ImportError, match=re.escape("Flask-Download[s3]")):
        resolve_storage("s3://bucket/missing-s3fs")
    with pytest.raises(ImportError, match=re.escape("Flask-Download[s3]")):
        StorageDownloadView.as_view("dl", storage="simplecache::s3://bucket/chained")


def test_memory_url_without_fsspec_names_the_storage_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without(monkeypatch, "fsspec")
    with pytest.raises(ImportError, match=re.escape("Flask-Download[storage]")):
        StorageDownloadView.as_view("dl", storage="memory://missing-fsspec")
    with pytest.raises(ImportError, match=re.escape("Flask-Download[storage]")):
        StorageFile("memory://missing-fsspec", "a.txt")


def test_view_with_an_installed_url_is_made() -> None:
    StorageDownloadView.as_view("dl", storage="memory://installed")
    StorageDownloadView.as_view("dl2", storage="simplecache::memory://installed")


def test_storage_file_takes_a_url() -> None:
    """Review: StorageFile("memory://", "x") gave AttributeError on 'str'."""
    memory = fsspec.filesystem("memory")
    memory.pipe("/storage-file-url/pub/a.txt", b"by URL")
    try:
        for fs, key in [
            ("memory://storage-file-url/pub", "a.txt"),
            ("memory://", "/storage-file-url/pub/a.txt"),
            ("memory://storage-file-url/other", "/storage-file-url/pub/a.txt"),
        ]:
            file = StorageFile(fs, key)
            assert (file.name, file.size) == ("a.txt", 6)
            with file.open() as f:
                assert f.read() == b"by URL"
            file.close()
        with pytest.raises(FileNotFound):
            StorageFile("memory://storage-file-url/pub", "missing.txt")
    finally:
        memory.rm("/storage-file-url", recursive=True)


def test_storage_file_refuses_what_is_not_a_filesystem() -> None:
    with pytest.raises(TypeError, match="fsspec filesystem .* or a storage URL"):
        StorageFile(t.cast(t.Any, pathlib.Path("/srv")), "a.txt")


@pytest.mark.parametrize(
    "form", ["dir::{}", "dir::simplecache::{}", "simplecache::dir::{}"]
)
def test_dir_urls_serve_their_folder(download_root: pathlib.Path, form: str) -> None:
    """Security review: ``dir::file://...`` answered 404 for every key
    (fsspec gives the folder as the path too, joined to itself)."""
    (download_root / "escape.txt").symlink_to(download_root.parent / "secret.txt")
    client = make_app(storage=form.format(download_root.as_uri())).test_client()
    with client.get("/files/sub/nested.txt") as rv:
        assert rv.status_code == 200
        assert rv.get_data() == b"nested\n"
    with client.get("/files/escape.txt") as rv:
        assert rv.status_code == 404
