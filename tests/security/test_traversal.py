"""Path traversal, sent raw: nothing outside the root is ever served.

Every case is answered 404, or with a redirect of Werkzeug's routing (merged
slashes) that, followed once, is a 404 too. The secret files planted next to
the root (``secret.txt``, ``root-evil/secret.txt``) never appear: that is
checked on every answer by ``check_invariants``.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import http.server
import os
import pathlib
from urllib.parse import quote

import pytest
from conftest import serving

from .conftest import C1_NAMES
from .conftest import DEVICE_NAMES
from .conftest import Layout
from .conftest import LiveServer
from .conftest import RawResponse
from .conftest import require
from .conftest import ROW_IDS
from .conftest import SECRET
from .conftest import start_server
from .conftest import stop_server

#: Request-target suffixes (after the route's prefix), written raw.
#: ``{secret}`` is replaced by the secret file's absolute path.
TRAVERSALS: dict[str, str] = {
    # dot-dot segments, plain and percent-encoded
    "dotdot": "../secret.txt",
    "dotdot-deep": "../../../../../../../../secret.txt",
    "dotdot-nested": "sub/../../secret.txt",
    "dotdot-encoded": "%2e%2e/secret.txt",
    "dotdot-encoded-upper": "%2E%2E/secret.txt",
    "dotdot-half-encoded": ".%2e/secret.txt",
    "dotdot-slash-encoded": "..%2fsecret.txt",
    "dotdot-slash-encoded-upper": "..%2Fsecret.txt",
    "dotdot-all-encoded": "%2e%2e%2fsecret.txt",
    "dotdot-nested-encoded": "sub%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    "double-encoded": "%252e%252e%252fsecret.txt",
    "double-encoded-slash": "..%252fsecret.txt",
    "overlong-utf8": "%c0%ae%c0%ae/secret.txt",
    "overlong-utf8-slash": "..%c0%afsecret.txt",
    "dotdot-trailing-dot": "sub/..../secret.txt",
    # backslashes, drive letters, UNC
    "backslash": "..\\secret.txt",
    "backslash-encoded": "..%5csecret.txt",
    "backslash-encoded-upper": "..%5Csecret.txt",
    "backslash-nested": "sub%5c..%5c..%5csecret.txt",
    "backslash-mixed": "sub/..%5c../secret.txt",
    "unc": "\\\\host\\share\\secret.txt",
    "unc-encoded": "%5c%5chost%5cshare%5csecret.txt",
    "unc-device": "%5c%5c.%5cC:%5csecret.txt",
    "drive-relative": "C:secret.txt",
    "drive-absolute": "C:/secret.txt",
    "drive-backslash": "c:%5csecret.txt",
    "drive-encoded": "C%3a..%2fsecret.txt",
    # NUL bytes
    "nul-suffix": "hello.txt%00.png",
    "nul-end": "hello.txt%00",
    "nul-dotdot": "..%00/secret.txt",
    "nul-leading": "%00../secret.txt",
    # absolute paths
    "absolute": "/{secret}",
    "absolute-encoded": "%2f{secret_encoded}",
    "absolute-double-encoded": "%252f{secret_encoded}",
    "etc-passwd": "/etc/passwd",
    "etc-passwd-encoded": "%2fetc%2fpasswd",
    "dev-zero": "..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fdev%2fzero",
    "proc-self-environ": "%2fproc%2fself%2fenviron",
    # the sibling whose name starts with the root's
    "sibling-dotdot": "../root-evil/secret.txt",
    "sibling-encoded": "..%2froot-evil%2fsecret.txt",
    "sibling-link": "evil-link.txt",
    "sibling-dir-link": "evil-dir/secret.txt",
    # symbolic links out of the root
    "link-absolute": "link-out.txt",
    "link-relative": "link-out-rel.txt",
    "link-dir": "link-dir/secret.txt",
    "link-nested-up": "sub/link-up.txt",
    "link-device": "zero",
    "link-loop": "loop",
    # not regular files
    "directory": "sub",
    "directory-slash": "sub/",
    "directory-dot": ".",
    "directory-dot-slash": "./",
    "directory-sub-dot": "sub/.",
    "directory-encoded-dot": "%2e",
    "fifo": "fifo",
    "missing": "no-such-file.txt",
}
#: Windows device names: plain files here, refused so every OS answers alike.
DEVICES = {
    f"device-{name}": name for name in DEVICE_NAMES if name not in ("con", "nul.txt")
}
DEVICES |= {
    "device-lower-con": "con",
    "device-lower-nul": "nul.txt",
    "device-nested": "sub/CON",
    "device-encoded": "C%4fN",
    "device-ads": "hello.txt::$DATA",
}

PATH_ROUTES = ["/files/", "/slash/"]


def _target(prefix: str, suffix: str, layout: Layout) -> str:
    secret = os.fspath(layout.secret)
    return prefix + suffix.format(
        secret=secret.lstrip("/"), secret_encoded=secret.lstrip("/").replace("/", "%2f")
    )


def assert_refused(live: LiveServer, target: str | bytes) -> RawResponse:
    """404, or a redirect (Werkzeug merging slashes) that leads to a 404."""
    response = live.request(target)
    if response.status in (301, 302, 307, 308):
        response = live.follow(response)
    assert response.status == 404, response
    return response


@pytest.mark.parametrize("prefix", PATH_ROUTES, ids=["root", "root-trailing-slash"])
@pytest.mark.parametrize("suffix", TRAVERSALS.values(), ids=TRAVERSALS.keys())
def test_path_traversal_is_404(
    live: LiveServer, layout: Layout, prefix: str, suffix: str
) -> None:
    assert_refused(live, _target(prefix, suffix, layout))


@pytest.mark.parametrize("suffix", DEVICES.values(), ids=DEVICES.keys())
def test_windows_device_names_are_404(live: LiveServer, suffix: str) -> None:
    """The files exist on this system: only the name check refuses them."""
    assert_refused(live, "/files/" + quote(suffix, safe="/%:$"))


@pytest.mark.parametrize("name", C1_NAMES, ids=["nel", "csi"])
def test_c1_controls_are_404(live: LiveServer, name: str) -> None:
    """Issue #11: the files exist; only the control check refuses them."""
    assert_refused(live, "/files/" + quote(name))


@pytest.mark.parametrize(
    "target",
    [
        "//etc/passwd",
        "/files/../../secret.txt",
        "/files/%2e%2e/%2e%2e/secret.txt",
        "/files/./../secret.txt",
        "http://127.0.0.1/files/../secret.txt",
        "../secret.txt",
        "/files/..;/secret.txt",
        "/files/hello.txt/../../secret.txt",
        "/%2e%2e/secret.txt",
    ],
    ids=[
        "double-slash-root",
        "dotdot-before-routing",
        "encoded-dotdot-before-routing",
        "dot-dotdot",
        "absolute-form",
        "no-leading-slash",
        "tomcat-semicolon",
        "through-a-file",
        "outside-routes",
    ],
)
def test_raw_request_targets_are_refused(live: LiveServer, target: str) -> None:
    assert_refused(live, target)


@pytest.mark.parametrize(
    ("target", "content"),
    [
        ("/files/hello.txt", b"Hello, world!\n"),
        ("/files/sub/nested.txt", b"nested\n"),
        ("/files/link-in.txt", b"Hello, world!\n"),
        ("/files/%C3%A9t%C3%A9.txt", "Un été à Paris\n".encode()),
        ("/files/sub/./nested.txt", b"nested\n"),
        ("/slash/hello.txt", b"Hello, world!\n"),
    ],
    ids=["plain", "nested", "link-inside-root", "non-ascii", "dot-segment", "slash"],
)
def test_files_inside_the_root_are_served(
    live: LiveServer, target: str, content: bytes
) -> None:
    """The controls: the refusals above are not a broken route."""
    response = live.request(target)
    assert response.status == 200
    assert response.body == content


# -- storage keys --------------------------------------------------------------

#: Traversals without symbolic links (the memory store has none).
STORAGE_TRAVERSALS = {
    key: value
    for key, value in TRAVERSALS.items()
    if not key.startswith(("link", "sibling-link", "sibling-dir", "fifo"))
}


@pytest.mark.parametrize(
    "suffix", STORAGE_TRAVERSALS.values(), ids=STORAGE_TRAVERSALS.keys()
)
def test_memory_storage_key_traversal_is_404(
    live: LiveServer, layout: Layout, suffix: str
) -> None:
    require(live, "storage")
    assert_refused(live, _target("/storage-mem/", suffix, layout))


@pytest.mark.parametrize("suffix", TRAVERSALS.values(), ids=TRAVERSALS.keys())
def test_local_storage_key_traversal_is_404(
    live: LiveServer, layout: Layout, suffix: str
) -> None:
    require(live, "storage")
    assert_refused(live, _target("/storage-disk/", suffix, layout))


@pytest.mark.parametrize(
    "suffix", ["CON", "NUL.txt", "sub%2fCON"], ids=["con", "nul-txt", "nested"]
)
def test_memory_storage_device_names_are_404(live: LiveServer, suffix: str) -> None:
    require(live, "storage")
    assert_refused(live, "/storage-mem/" + suffix)


@pytest.mark.parametrize(
    "prefix", ["/storage-mem/", "/storage-disk/"], ids=["memory", "disk"]
)
def test_storage_keys_inside_the_prefix_are_served(
    live: LiveServer, prefix: str
) -> None:
    require(live, "storage")
    response = live.request(prefix + "hello.txt")
    assert response.status == 200
    assert response.body == b"Hello, world!\n"


# -- keys of a store that decodes them again (issue #11) ------------------------


class _StoreHandler(http.server.SimpleHTTPRequestHandler):
    """A plain HTTP file server, which (like most) percent-decodes and
    normalises the request path before it looks the file up."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_store(tmp_path_factory: pytest.TempPathFactory) -> cabc.Iterator[str]:
    """``http://127.0.0.1:N/store``; ``secret.txt`` lies next to ``store/``."""
    pytest.importorskip("aiohttp")
    base = tmp_path_factory.mktemp("http-store")
    (base / "store").mkdir()
    (base / "store" / "hello.txt").write_bytes(b"Hello, store!\n")
    (base / "secret.txt").write_bytes(SECRET)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(_StoreHandler, directory=os.fspath(base)),
    )
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}/store"


@pytest.fixture(scope="module")
def http_store_live(http_store: str) -> cabc.Iterator[LiveServer]:
    """An app serving the HTTP store's keys under ``/h/``."""
    from flask import Flask

    from flask_download import FlaskDownload
    from flask_download import StorageDownloadView

    app = Flask("http_store_app", root_path=os.fspath(pathlib.Path.cwd()))
    FlaskDownload(app)
    app.add_url_rule(
        "/h/<path:path>",
        view_func=StorageDownloadView.as_view("h", storage=http_store),
    )
    server = start_server(app)
    try:
        yield server
    finally:
        stop_server(server)


#: Request-target suffixes that a second decoding turns into a way out.
DOUBLE_ENCODED = {
    "dotdot": "%252e%252e/secret.txt",
    "dotdot-upper": "%252E%252E/secret.txt",
    "half": ".%252e/secret.txt",
    "half-first": "%252e./secret.txt",
    "triple": "%25252e%25252e/secret.txt",
    "nested": "sub/%252e%252e/%252e%252e/secret.txt",
    "slash": "%252e%252e%252fsecret.txt",
    "backslash": "%252e%252e%255csecret.txt",
    "dot": "%252e/hello.txt",
    "nul": "hello.txt%2500",
    "c1": "hello%25c2%2585.txt",
}


@pytest.mark.parametrize("suffix", DOUBLE_ENCODED.values(), ids=DOUBLE_ENCODED.keys())
def test_double_encoded_keys_never_leave_an_http_store(
    http_store_live: LiveServer, suffix: str
) -> None:
    """The store would decode ``%2e%2e`` once more and normalise it away."""
    assert_refused(http_store_live, "/h/" + suffix)


def test_http_store_serves_keys_inside_its_prefix(http_store_live: LiveServer) -> None:
    """The control: the store works, the refusals above are the key check."""
    response = http_store_live.request("/h/hello.txt")
    assert response.status == 200
    assert response.body == b"Hello, store!\n"


# -- paths stored in database rows ---------------------------------------------


@pytest.mark.parametrize("row_id", ROW_IDS.values(), ids=ROW_IDS.keys())
def test_row_paths_leaving_the_root_are_404(live: LiveServer, row_id: int) -> None:
    require(live, "objects")
    assert_refused(live, f"/objects/{row_id}")


def test_row_path_inside_the_root_is_served(live: LiveServer) -> None:
    require(live, "objects")
    response = live.request("/objects/1")
    assert response.status == 200
    assert response.body == b"Hello, world!\n"
