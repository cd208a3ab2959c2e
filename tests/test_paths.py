from __future__ import annotations

import gc
import os
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import FileNotFound
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download.paths import ConfinedPath
from flask_download.paths import is_windows_device
from flask_download.paths import MAX_SYMLINKS
from flask_download.paths import open_confined
from flask_download.paths import split_key
from flask_download.paths import split_relative

# Every form of path a client could use to leave its root.
REFUSED = {
    "empty": "",
    "only-slash": "/",
    "only-dot": ".",
    "only-dots-and-slashes": "./././",
    "dotdot": "..",
    "dotdot-slash": "../",
    "dotdot-file": "../secret.txt",
    "dotdot-deep": "../../../../etc/passwd",
    "dotdot-middle": "sub/../../secret.txt",
    "dotdot-back-in": "sub/../hello.txt",
    "dotdot-end": "sub/..",
    "dot-dotdot": "./../secret.txt",
    "absolute": "/etc/passwd",
    "double-slash-absolute": "//etc/passwd",
    "backslash": "sub\\nested.txt",
    "backslash-dotdot": "..\\secret.txt",
    "backslash-absolute": "\\etc\\passwd",
    "backslash-unc": "\\\\server\\share\\x.txt",
    "nul": "hello.txt\x00.png",
    "nul-only": "\x00",
    "tab": "hel\tlo.txt",
    "cr": "hello.txt\r",
    "lf": "hello\n.txt",
    "escape": "\x1bhello.txt",
    "unit-separator": "a\x1fb",
    "del": "hello\x7f.txt",
    "drive-relative": "C:x",
    "drive-absolute": "C:/Windows/win.ini",
    "drive-lower": "c:secret.txt",
    "drive-in-segment": "sub/D:evil.txt",
    "device-con": "CON",
    "device-con-lower": "con",
    "device-nul-ext": "nul.txt",
    "device-aux": "sub/AUX",
    "device-prn": "PRN.log",
    "device-com1": "COM1",
    "device-lpt9": "lpt9.txt",
    "device-con-double-ext": "con.tar.gz",
    "device-com-superscript-1": "COM\u00b9",
    "device-com-superscript-2": "com\u00b2.txt",
    "device-lpt-superscript-3": "LPT\u00b3",
    "device-com0": "COM0",
    "device-conin": "CONIN$",
    "device-conout-lower-ext": "conout$.log",
    "device-trailing-space": "CON ",
    "device-trailing-dot": "nul.",
    "device-space-before-ext": "aux .txt",
    "device-trailing-dots-spaces": "PRN. .",
    "device-stream": "CON:stream",
    "c1-nel": "hello\x85.txt",
    "c1-first": "\x80",
    "c1-last": "a\x9fb",
    "c1-csi": "sub/\x9b31m.txt",
    # Names a directory: never served, and one URL per file.
    "trailing-slash": "sub/",
    "trailing-dot-segment": "hello.txt/.",
}


@pytest.mark.parametrize("untrusted", REFUSED.values(), ids=REFUSED.keys())
def test_split_relative_refuses(untrusted: str) -> None:
    with pytest.raises(FileNotFound):
        split_relative(untrusted)


def _read(root: str | os.PathLike[str], untrusted: str) -> tuple[bytes, str]:
    """Open ``untrusted`` confined to ``root``: (content, real path)."""
    opened = open_confined(root, untrusted)
    try:
        return os.pread(opened.fd, 1 << 20, 0), opened.path
    finally:
        os.close(opened.fd)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _baseline_fds() -> int:
    """:func:`_open_fds`, once the garbage earlier tests left is collected:
    a socket or selector of theirs in a reference cycle, closed when the
    collector happens to run between two counts, would change the count."""
    gc.collect()
    return _open_fds()


@pytest.mark.parametrize("untrusted", REFUSED.values(), ids=REFUSED.keys())
def test_open_confined_refuses(download_root: pathlib.Path, untrusted: str) -> None:
    with pytest.raises(FileNotFound):
        open_confined(download_root, untrusted)


@pytest.mark.parametrize(
    ("untrusted", "segments"),
    [
        ("hello.txt", ["hello.txt"]),
        ("sub/nested.txt", ["sub", "nested.txt"]),
        ("a/b/c/d.txt", ["a", "b", "c", "d.txt"]),
        ("./hello.txt", ["hello.txt"]),
        ("sub/./nested.txt", ["sub", "nested.txt"]),
        ("sub//nested.txt", ["sub", "nested.txt"]),
        ("été.txt", ["été.txt"]),
        ("日本/ファイル.txt", ["日本", "ファイル.txt"]),
        ("...", ["..."]),
        ("..hidden", ["..hidden"]),
        ("file..txt", ["file..txt"]),
        (".hidden", [".hidden"]),
        ("con-tents.txt", ["con-tents.txt"]),
        ("console.txt", ["console.txt"]),
        ("com.txt", ["com.txt"]),
        ('we"ird;name.txt', ['we"ird;name.txt']),
        ("with space.txt", ["with space.txt"]),
        ("%2e%2e", ["%2e%2e"]),
    ],
    ids=[
        "file",
        "nested",
        "deep",
        "leading-dot",
        "middle-dot",
        "double-slash",
        "non-ascii",
        "cjk",
        "three-dots",
        "dotdot-prefix",
        "dotdot-inside",
        "hidden",
        "con-prefix",
        "console",
        "com-without-digit",
        "quote-semicolon",
        "space",
        "literal-percent",
    ],
)
def test_split_relative_accepts(untrusted: str, segments: list[str]) -> None:
    assert split_relative(untrusted) == segments


@pytest.mark.parametrize(
    "untrusted",
    ["hello.txt", "sub/nested.txt", "./sub//nested.txt", "été.txt", "archive.tar.gz"],
    ids=["file", "nested", "messy", "non-ascii", "double-ext"],
)
def test_open_confined_accepts(download_root: pathlib.Path, untrusted: str) -> None:
    content, path = _read(download_root, untrusted)
    expected = download_root.joinpath(*split_relative(untrusted))
    assert path == os.path.realpath(expected)
    assert content == expected.read_bytes()


def test_open_confined_takes_checked_segments(download_root: pathlib.Path) -> None:
    content, _ = _read(download_root, "sub/nested.txt")
    opened = open_confined(download_root, ["sub", "nested.txt"])
    os.close(opened.fd)
    assert opened.path == os.path.realpath(download_root / "sub" / "nested.txt")
    assert content == b"nested\n"


def test_open_confined_stat_is_of_the_descriptor(download_root: pathlib.Path) -> None:
    opened = open_confined(download_root, "hello.txt")
    try:
        assert os.path.samestat(opened.stat, os.fstat(opened.fd))
        assert opened.stat.st_size == len(b"Hello, world!\n")
    finally:
        os.close(opened.fd)


def test_open_confined_root_through_symlink(
    download_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The root itself is trusted: links in its own path are followed."""
    link = tmp_path / "root-link"
    link.symlink_to(download_root, target_is_directory=True)
    content, path = _read(link, "sub/nested.txt")
    assert path == os.path.realpath(download_root / "sub" / "nested.txt")
    assert content == b"nested\n"


def test_open_confined_refuses_root_itself(download_root: pathlib.Path) -> None:
    for untrusted in (".", "./", "sub/..", ""):
        with pytest.raises(FileNotFound):
            open_confined(download_root, untrusted)


@pytest.mark.parametrize(
    ("links", "untrusted", "expected"),
    [
        ({"link.txt": "hello.txt"}, "link.txt", "hello.txt"),
        ({"link.txt": "{root}/hello.txt"}, "link.txt", "hello.txt"),
        ({"link.txt": "{real}/hello.txt"}, "link.txt", "hello.txt"),
        ({"dir": "sub"}, "dir/nested.txt", "sub/nested.txt"),
        ({"sub/up.txt": "../hello.txt"}, "sub/up.txt", "hello.txt"),
        ({"sub/self": "."}, "sub/self/self/nested.txt", "sub/nested.txt"),
        ({"a": "b", "b": "c", "c": "hello.txt"}, "a", "hello.txt"),
        ({"sub/d": "../sub/./", "x": "sub/d/nested.txt"}, "x", "sub/nested.txt"),
        ({"sub/back": "../sub/../sub/nested.txt"}, "sub/back", "sub/nested.txt"),
    ],
    ids=[
        "relative-file",
        "absolute-configured-root",
        "absolute-real-root",
        "directory",
        "dotdot-staying-inside",
        "self-loop-walked",
        "chain",
        "through-a-link-to-a-dir",
        "dotdot-twice",
    ],
)
def test_open_confined_follows_links_inside_root(
    tmp_path: pathlib.Path,
    download_root: pathlib.Path,
    links: dict[str, str],
    untrusted: str,
    expected: str,
) -> None:
    # The root is configured through a link, so "{root}" and "{real}" differ.
    configured = tmp_path / "configured"
    configured.symlink_to(download_root, target_is_directory=True)
    for link, target in links.items():
        (download_root / link).symlink_to(
            target.format(root=configured, real=os.path.realpath(download_root))
        )
    content, path = _read(configured, untrusted)
    assert path == os.path.realpath(download_root / expected)
    assert content == (download_root / expected).read_bytes()


@pytest.mark.parametrize(
    ("link", "target", "untrusted"),
    [
        ("escape.txt", "../secret.txt", "escape.txt"),
        ("abs-escape.txt", "{tmp}/secret.txt", "abs-escape.txt"),
        ("outside", "..", "outside/secret.txt"),
        ("etc", "/etc", "etc/passwd"),
        ("sub/up", "../..", "sub/up/secret.txt"),
        ("self", ".", "self"),
        ("sibling", "../root-evil", "sibling/x.txt"),
        ("sibling-file", "../root-evil/x.txt", "sibling-file"),
        ("dangling", "../nowhere.txt", "dangling"),
        ("back-in", "../root/hello.txt", "back-in"),
        ("abs-dotdot", "{root}/../secret.txt", "abs-dotdot"),
        ("null", "/dev/null", "null"),
        ("loop", "loop", "loop"),
        ("dir-loop", "dir-loop/x", "dir-loop/x"),
        ("empty", "", "empty"),
    ],
    ids=[
        "relative-file",
        "absolute-file",
        "directory",
        "system-directory",
        "nested-up",
        "root-itself",
        "sibling-prefix-dir",
        "sibling-prefix-file",
        "dangling-outside",
        "out-and-back-in",
        "absolute-dotdot",
        "device",
        "loop",
        "directory-loop",
        "empty-target",
    ],
)
def test_open_confined_refuses_links_out(
    download_root: pathlib.Path,
    tmp_path: pathlib.Path,
    link: str,
    target: str,
    untrusted: str,
) -> None:
    """A link is never followed out of the root, not even one that comes
    back in by the root's name (RESOLVE_IN_ROOT would not leave it either)."""
    evil = tmp_path / "root-evil"
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"evil")
    path = download_root / link
    if not target:
        try:  # Linux refuses empty link targets; other kernels may not
            path.symlink_to("")
        except OSError:
            pytest.skip("this kernel refuses empty link targets")
    else:
        path.symlink_to(target.format(tmp=tmp_path, root=download_root))
    before = _baseline_fds()
    with pytest.raises(FileNotFound):
        open_confined(download_root, untrusted)
    assert _open_fds() == before


def test_open_confined_limits_link_hops(download_root: pathlib.Path) -> None:
    # l0 -> l1 -> ... -> l40 -> hello.txt: 41 links from l0, 40 from l1.
    for i in range(MAX_SYMLINKS):
        (download_root / f"l{i}").symlink_to(f"l{i + 1}")
    (download_root / f"l{MAX_SYMLINKS}").symlink_to("hello.txt")
    with pytest.raises(FileNotFound, match="symbolic links"):
        open_confined(download_root, "l0")
    # One hop fewer is fine.
    content, _ = _read(download_root, "l1")
    assert content == b"Hello, world!\n"


def test_open_confined_refuses_a_fifo_without_blocking(
    download_root: pathlib.Path,
) -> None:
    os.mkfifo(download_root / "pipe")
    with pytest.raises(FileNotFound, match="not a regular file"):
        open_confined(download_root, "pipe")


def test_open_confined_refuses_a_socket(download_root: pathlib.Path) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.fspath(download_root / "sock"))
        with pytest.raises(FileNotFound):
            open_confined(download_root, "sock")


@pytest.mark.parametrize(
    "untrusted", ["sub", "sub/", "hello.txt/x", "missing/x.txt", "missing.txt"]
)
def test_open_confined_refuses_non_files(
    download_root: pathlib.Path, untrusted: str
) -> None:
    before = _baseline_fds()
    with pytest.raises(FileNotFound):
        open_confined(download_root, untrusted)
    assert _open_fds() == before


def test_open_confined_missing_root(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFound, match="root"):
        open_confined(tmp_path / "nowhere", "x.txt")


def test_open_confined_sibling_prefix_root(tmp_path: pathlib.Path) -> None:
    """A root ``.../root`` must not admit ``.../root-evil``: a string-prefix
    check would."""
    root = tmp_path / "root"
    root.mkdir()
    evil = tmp_path / "root-evil"
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"evil")
    (root / "a").symlink_to(evil / "x.txt")
    with pytest.raises(FileNotFound):
        open_confined(root, "a")
    with pytest.raises(FileNotFound):
        open_confined(os.fspath(root) + "/", "a")


def test_open_confined_root_with_trailing_slash(download_root: pathlib.Path) -> None:
    _, path = _read(os.fspath(download_root) + "/", "hello.txt")
    assert path == os.path.realpath(download_root / "hello.txt")


@pytest.mark.skipif(
    not hasattr(os, "O_PATH") or os.geteuid() == 0,
    reason="O_PATH is Linux's; root reads any directory anyway",
)
def test_open_confined_needs_no_read_permission_on_directories(
    download_root: pathlib.Path,
) -> None:
    """Directories are walked, not listed: search permission is enough."""
    (download_root / "sub").chmod(0o311)
    try:
        content, _ = _read(download_root, "sub/nested.txt")
    finally:
        (download_root / "sub").chmod(0o755)
    assert content == b"nested\n"


@pytest.mark.parametrize(
    "segments",
    [["sub/nested.txt"], ["..", "secret.txt"], ["/etc", "passwd"], ["a\0b"]],
    ids=["slash-inside", "dotdot", "absolute", "nul"],
)
def test_open_confined_refuses_unchecked_segments(
    download_root: pathlib.Path, segments: list[str]
) -> None:
    with pytest.raises(FileNotFound):
        open_confined(download_root, segments)


def test_confined_path_is_the_joined_path(download_root: pathlib.Path) -> None:
    confined = ConfinedPath(os.fspath(download_root), ["sub", "nested.txt"])
    assert confined == os.path.join(download_root, "sub", "nested.txt")
    assert confined.root == os.fspath(download_root)
    assert confined.segments == ("sub", "nested.txt")


@pytest.mark.parametrize(
    "segment",
    [
        "CON",
        "con",
        "Con.txt",
        "CON ",
        "CON.",
        "con .txt",
        "CON:",
        "CON:x",
        "CONIN$",
        "conout$.txt",
        "COM0",
        "COM9",
        "COM\u00b9",
        "com\u00b2.log",
        "LPT\u00b3",
        "lpt5",
        "PRN. .",
        "nul.tar.gz",
    ],
)
def test_windows_device_names(segment: str) -> None:
    assert is_windows_device(segment)


@pytest.mark.parametrize(
    "segment",
    [
        "CONS",
        "console",
        "com",
        "COM10",
        "lpt",
        "xcon",
        "con-tents",
        " CON",
        "COM\u2074",
    ],
)
def test_not_windows_device_names(segment: str) -> None:
    assert not is_windows_device(segment)


SPLIT_KEY_REFUSED = {
    "encoded-dotdot": "%2e%2e/secret.txt",
    "encoded-dotdot-upper": "%2E%2E/secret.txt",
    "half-encoded": ".%2e/secret.txt",
    "half-encoded-first": "%2e./secret.txt",
    "encoded-dot": "%2e/secret.txt",
    "double-encoded-dotdot": "%252e%252e/secret.txt",
    "triple-encoded-dotdot": "%25252e%25252e/secret.txt",
    "nested-encoded-dotdot": "sub/%2e%2e/%2e%2e/secret.txt",
    "encoded-slash": "a%2fb",
    "encoded-slash-upper": "..%2Fsecret.txt",
    "encoded-backslash": "a%5cb",
    "double-encoded-slash": "a%252fb",
    "encoded-nul": "a%00b",
    "encoded-c1": "a%c2%85b",
    "encoded-device": "%43ON",
}


@pytest.mark.parametrize(
    "untrusted", SPLIT_KEY_REFUSED.values(), ids=SPLIT_KEY_REFUSED.keys()
)
def test_split_key_refuses_encoded_escapes(untrusted: str) -> None:
    with pytest.raises(FileNotFound):
        split_key(untrusted)


@pytest.mark.parametrize(
    ("untrusted", "segments"),
    [
        ("a/b.txt", ["a", "b.txt"]),
        ("100%.txt", ["100%.txt"]),
        ("a%20b.txt", ["a%20b.txt"]),
        ("%zz", ["%zz"]),
        ("caf%C3%A9", ["caf%C3%A9"]),
    ],
    ids=["plain", "bare-percent", "encoded-space", "not-an-escape", "encoded-utf8"],
)
def test_split_key_accepts(untrusted: str, segments: list[str]) -> None:
    assert split_key(untrusted) == segments


@pytest.mark.parametrize("untrusted", REFUSED.values(), ids=REFUSED.keys())
def test_split_key_refuses_what_split_relative_refuses(untrusted: str) -> None:
    with pytest.raises(FileNotFound):
        split_key(untrusted)


# -- through a view ------------------------------------------------------------


@pytest.fixture
def files_client(app: Flask) -> t.Any:
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    return app.test_client()


@pytest.mark.parametrize(
    "url",
    [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2E%2E/secret.txt",
        "/files/.%2e/secret.txt",
        "/files/sub/%2e%2e/%2e%2e/secret.txt",
        "/files/..%2fsecret.txt",
        "/files/%2fetc%2fpasswd",
        "/files//etc/passwd",
        "/files/..%5csecret.txt",
        "/files/hello.txt%00.png",
        "/files/CON",
        "/files/C:x",
        "/files/sub",
        "/files/missing.txt",
    ],
    ids=[
        "dotdot",
        "encoded-dotdot",
        "encoded-dotdot-upper",
        "half-encoded",
        "nested-encoded",
        "encoded-slash",
        "encoded-absolute",
        "double-slash",
        "encoded-backslash",
        "encoded-nul",
        "device",
        "drive",
        "directory",
        "missing",
    ],
)
def test_view_refuses_traversal_with_404(files_client: t.Any, url: str) -> None:
    # Werkzeug's routing merges "//" with a redirect first; follow it.
    with files_client.get(url, follow_redirects=True) as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data


def test_view_refuses_symlink_out_with_404(
    files_client: t.Any, download_root: pathlib.Path
) -> None:
    (download_root / "escape.txt").symlink_to("../secret.txt")
    with files_client.get("/files/escape.txt") as rv:
        assert rv.status_code == 404
        assert b"TOP SECRET" not in rv.data


def test_view_serves_nested_path(files_client: t.Any) -> None:
    with files_client.get("/files/sub/nested.txt") as rv:
        assert rv.status_code == 200
        assert rv.data == b"nested\n"


class _SubclassedView(PathDownloadView):
    """The common customisation: a wrapper of one's own around get_path()."""

    def get_file(self) -> PathFile:
        return PathFile(self.get_path())


def test_pathfile_of_get_path_stays_confined(
    app: Flask, download_root: pathlib.Path
) -> None:
    """Issue #11: get_path() returns a ConfinedPath, so a subclass that wraps
    it in PathFile still goes through the confined opener."""
    (download_root / "escape.txt").symlink_to("../secret.txt")
    app.add_url_rule("/s/<path:path>", view_func=_SubclassedView.as_view("s"))
    with app.test_client() as client:
        with client.get("/s/escape.txt") as rv:
            assert rv.status_code == 404
            assert b"TOP SECRET" not in rv.data
        with client.get("/s/sub/nested.txt") as rv:
            assert rv.status_code == 200
            assert rv.data == b"nested\n"


def test_pathfile_with_root_is_confined(download_root: pathlib.Path) -> None:
    (download_root / "escape.txt").symlink_to("../secret.txt")
    with pytest.raises(FileNotFound):
        PathFile("escape.txt", root=download_root)
    with pytest.raises(FileNotFound):
        PathFile("../secret.txt", root=download_root)
    with PathFile("sub/nested.txt", root=download_root) as file:
        assert file.real_path == os.path.realpath(download_root / "sub/nested.txt")
        assert file.name == "nested.txt"
        with file.open() as handle:
            assert handle.read() == b"nested\n"
        # A second open walks again, confined the same way.
        with file.open() as handle:
            assert handle.read() == b"nested\n"


def test_trusted_pathfile_follows_links(download_root: pathlib.Path) -> None:
    """Without root the path is the developer's: links are followed."""
    (download_root / "escape.txt").symlink_to("../secret.txt")
    with PathFile(download_root / "escape.txt") as file:
        assert file.real_path is None
        assert file.size == len(b"TOP SECRET")


def test_pathfile_closes_its_descriptor(download_root: pathlib.Path) -> None:
    before = _baseline_fds()
    files = [PathFile("hello.txt", root=download_root) for _ in range(20)]
    assert _open_fds() == before + 20
    for file in files:
        file.close()
        file.close()  # twice is fine
    assert _open_fds() == before


def test_view_answers_closes_the_descriptor(
    files_client: t.Any, download_root: pathlib.Path
) -> None:
    """GET, HEAD, 304 and 416 all release what the wrapper opened."""
    before = _baseline_fds()
    with files_client.get("/files/hello.txt") as rv:
        etag = rv.headers["ETag"]
    with files_client.head("/files/hello.txt"):
        pass
    with files_client.get("/files/hello.txt", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
    with files_client.get("/files/hello.txt", headers={"Range": "bytes=999-"}) as rv:
        assert rv.status_code == 416
    assert _open_fds() == before


def test_pathfiles_hold_a_bounded_number_of_descriptors(
    download_root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_HELD_DESCRIPTORS (an archive of many members), a wrapper
    keeps only the file's identity and opens it again, still confined."""
    from flask_download.files import _path

    monkeypatch.setattr(_path, "MAX_HELD_DESCRIPTORS", _path._held + 2)
    before = _baseline_fds()
    wrappers = [PathFile("sub/nested.txt", root=download_root) for _ in range(5)]
    assert _open_fds() == before + 2
    for wrapper in wrappers:
        with wrapper.open() as handle:
            assert handle.read() == b"nested\n"
    # One past the limit, then the file is replaced: refused, not mixed up.
    held = [PathFile("hello.txt", root=download_root) for _ in range(2)]
    late = PathFile("hello.txt", root=download_root)
    assert _open_fds() == before + 2
    for wrapper in held:
        wrapper.close()
    (download_root / "new.txt").write_bytes(b"replaced")
    os.replace(download_root / "new.txt", download_root / "hello.txt")
    with pytest.raises(FileNotFound, match="changed"):
        late.open()
    for wrapper in wrappers:
        wrapper.close()
    late.close()
    assert _open_fds() == before


def test_offload_gets_the_walked_path_and_closes_the_descriptor(
    app_factory: t.Any, download_root: pathlib.Path
) -> None:
    """Issue #11: offload rules match the real path the opener walked (a
    link inside the root maps to its target), never a second resolution."""
    app = app_factory(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(download_root), "destination_url": "/protected/"}
        ],
    )
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("f"))
    (download_root / "latest.txt").symlink_to("sub/nested.txt")
    (download_root / "escape.txt").symlink_to("../secret.txt")
    client = app.test_client()
    before = _baseline_fds()
    with client.get("/files/latest.txt") as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Accel-Redirect"] == "/protected/sub/nested.txt"
        assert rv.data == b""
    with client.get("/files/escape.txt") as rv:
        assert rv.status_code == 404
        assert "X-Accel-Redirect" not in rv.headers
    assert _open_fds() == before


def test_split_relative_gives_a_fresh_list_each_time() -> None:
    """Checked segments are cached per path: a caller changing the list it
    got (open_confined reverses it) must not change the next answer."""
    first = split_relative("a/b/c.txt")
    first.reverse()
    first.append("..")
    assert split_relative("a/b/c.txt") == ["a", "b", "c.txt"]


@pytest.mark.parametrize("untrusted", ["../x", "a/../../x", "CON", "a\\b"])
def test_split_relative_refuses_every_time(untrusted: str) -> None:
    # A refusal is never remembered as an answer: asked again, refused again.
    for _ in range(3):
        with pytest.raises(FileNotFound):
            split_relative(untrusted)


def test_split_relative_long_paths_are_checked_too() -> None:
    long_name = "d/" * 400 + "f.txt"
    assert split_relative(long_name) == ["d"] * 400 + ["f.txt"]
    with pytest.raises(FileNotFound):
        split_relative("d/" * 400 + "../../x")


@pytest.mark.parametrize("root", ["/srv/files", "/srv/files/", "/"])
def test_confined_path_joins_like_os_path_join(root: str) -> None:
    segments = ["a", "b.txt"]
    assert str(ConfinedPath(root, segments)) == os.path.join(root, *segments)


def test_a_root_that_is_a_link_follows_its_swap(tmp_path: pathlib.Path) -> None:
    """Outside review: a "current" -> release root was resolved once per
    process, so after a deploy swapped the link the old release's files
    (removed from the live tree) were still served."""
    for release, name in (("rel1", "old.txt"), ("rel2", "new.txt")):
        (tmp_path / release).mkdir()
        (tmp_path / release / name).write_bytes(release.encode())
    current = tmp_path / "current"
    current.symlink_to("rel1")
    root = str(current)

    opened = open_confined(root, "old.txt")
    os.close(opened.fd)
    assert opened.path == str(tmp_path / "rel1" / "old.txt")
    # The deploy: an atomic swap of the link.
    (tmp_path / "next").symlink_to("rel2")
    os.replace(tmp_path / "next", current)

    with pytest.raises(FileNotFound):
        open_confined(root, "old.txt")
    opened = open_confined(root, "new.txt")
    try:
        assert os.read(opened.fd, 10) == b"rel2"
        assert opened.path == str(tmp_path / "rel2" / "new.txt")
    finally:
        os.close(opened.fd)
    with PathFile("new.txt", root=root) as file:
        with file.open() as handle:
            assert handle.read() == b"rel2"
        assert file.real_path == str(tmp_path / "rel2" / "new.txt")


def test_a_file_opened_again_after_its_root_link_was_swapped(
    tmp_path: pathlib.Path,
) -> None:
    """Review: a second open (an archive member read again) walked the path
    relative to the root as it is now: after a deploy swapped the link, the
    same file, hard-linked into the new release, was refused."""
    (tmp_path / "rel1").mkdir()
    (tmp_path / "rel2").mkdir()
    (tmp_path / "rel1" / "a.txt").write_bytes(b"same")
    os.link(tmp_path / "rel1" / "a.txt", tmp_path / "rel2" / "a.txt")
    current = tmp_path / "current"
    current.symlink_to("rel1")
    file = PathFile("a.txt", root=current)
    try:
        with file.open() as handle:
            assert handle.read() == b"same"
        (tmp_path / "next").symlink_to("rel2")
        os.replace(tmp_path / "next", current)
        with file.open() as handle:  # walked again: the same file
            assert handle.read() == b"same"
    finally:
        file.close()
