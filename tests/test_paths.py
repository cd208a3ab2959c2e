from __future__ import annotations

import os
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import FileNotFound
from flask_download import PathDownloadView
from flask_download.paths import safe_join
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
}


@pytest.mark.parametrize("untrusted", REFUSED.values(), ids=REFUSED.keys())
def test_split_relative_refuses(untrusted: str) -> None:
    with pytest.raises(FileNotFound):
        split_relative(untrusted)


@pytest.mark.parametrize("untrusted", REFUSED.values(), ids=REFUSED.keys())
def test_safe_join_refuses(download_root: pathlib.Path, untrusted: str) -> None:
    with pytest.raises(FileNotFound):
        safe_join(os.fspath(download_root), untrusted)


@pytest.mark.parametrize(
    ("untrusted", "segments"),
    [
        ("hello.txt", ["hello.txt"]),
        ("sub/nested.txt", ["sub", "nested.txt"]),
        ("a/b/c/d.txt", ["a", "b", "c", "d.txt"]),
        ("./hello.txt", ["hello.txt"]),
        ("sub/./nested.txt", ["sub", "nested.txt"]),
        ("sub//nested.txt", ["sub", "nested.txt"]),
        ("sub/", ["sub"]),
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
        "trailing-slash",
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
def test_safe_join_accepts(download_root: pathlib.Path, untrusted: str) -> None:
    joined = safe_join(os.fspath(download_root), untrusted)
    expected = os.path.realpath(download_root.joinpath(*split_relative(untrusted)))
    assert joined == expected
    assert os.path.isfile(joined)


def test_safe_join_returns_real_path_for_missing_file(
    download_root: pathlib.Path,
) -> None:
    # safe_join only confines; whether the file exists is PathFile's business.
    joined = safe_join(os.fspath(download_root), "missing.txt")
    assert joined == os.path.join(os.path.realpath(download_root), "missing.txt")


def test_safe_join_root_through_symlink(
    download_root: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    link = tmp_path / "root-link"
    link.symlink_to(download_root, target_is_directory=True)
    joined = safe_join(os.fspath(link), "sub/nested.txt")
    assert joined == os.path.realpath(download_root / "sub" / "nested.txt")


def test_safe_join_refuses_root_itself(download_root: pathlib.Path) -> None:
    for untrusted in (".", "./", "sub/..", ""):
        with pytest.raises(FileNotFound):
            safe_join(os.fspath(download_root), untrusted)


def test_safe_join_accepts_symlink_inside_root(download_root: pathlib.Path) -> None:
    (download_root / "link.txt").symlink_to(download_root / "hello.txt")
    joined = safe_join(os.fspath(download_root), "link.txt")
    assert joined == os.path.realpath(download_root / "hello.txt")


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
    ],
)
def test_safe_join_refuses_symlink_escaping_root(
    download_root: pathlib.Path,
    tmp_path: pathlib.Path,
    link: str,
    target: str,
    untrusted: str,
) -> None:
    evil = tmp_path / "root-evil"
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"evil")
    (download_root / link).symlink_to(target.format(tmp=tmp_path))
    with pytest.raises(FileNotFound):
        safe_join(os.fspath(download_root), untrusted)


def test_safe_join_sibling_prefix_root(tmp_path: pathlib.Path) -> None:
    """A root ``.../root`` must not admit ``.../root-evil``: a string-prefix
    check would."""
    root = tmp_path / "root"
    root.mkdir()
    evil = tmp_path / "root-evil"
    evil.mkdir()
    (evil / "x.txt").write_bytes(b"evil")
    (root / "a").symlink_to(evil / "x.txt")
    with pytest.raises(FileNotFound):
        safe_join(os.fspath(root), "a")
    with pytest.raises(FileNotFound):
        safe_join(os.fspath(root) + "/", "a")


def test_safe_join_root_with_trailing_slash(download_root: pathlib.Path) -> None:
    joined = safe_join(os.fspath(download_root) + "/", "hello.txt")
    assert joined == os.path.realpath(download_root / "hello.txt")


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
