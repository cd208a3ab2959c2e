"""Pytest fixtures for applications that use Flask-Download.

Registered through the ``pytest11`` entry point, so installing
Flask-Download makes them available to every test suite:

``download_root``
    A temporary directory holding :data:`SAMPLE_FILES` (a non-ASCII name and
    one with ``"``, ``;`` and ``\\`` among them). Point ``DOWNLOAD_ROOT`` or a
    view's ``root`` at it.
``download_storage``
    A fresh, empty in-memory fsspec filesystem per test (needs ``fsspec``).
"""

from __future__ import annotations

import os
import pathlib
import typing as t

import pytest

#: The files ``download_root`` holds: relative path -> content.
SAMPLE_FILES: dict[str, bytes] = {
    "hello.txt": b"Hello, world!\n",
    "data.bin": bytes(range(256)) * 4,
    "archive.tar.gz": b"\x1f\x8b\x08\x00fake-gzip-bytes",
    "page.html": b"<!doctype html><p>hi</p>",
    "été.txt": "Un été à Paris\n".encode(),
    'we"ird;name\\.txt': b"odd name\n",
    "sub/nested.txt": b"nested\n",
}


#: Modification time of the sample files (2023-11-14 22:13:20 UTC): in the
#: past, so that their ``Last-Modified`` is a strong validator at once (RFC
#: 9110 §8.8.2.2: ``If-Range`` with the date of a file changed within the
#: current second is not honoured).
SAMPLE_MTIME = 1_700_000_000


def write_sample_files(root: pathlib.Path) -> pathlib.Path:
    """Write :data:`SAMPLE_FILES` under ``root`` (modified at
    :data:`SAMPLE_MTIME`) and return ``root``."""
    for name, content in SAMPLE_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (SAMPLE_MTIME, SAMPLE_MTIME))
    return root


@pytest.fixture
def download_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A temporary directory of sample files (see :data:`SAMPLE_FILES`)."""
    return write_sample_files(tmp_path / "download_root")


@pytest.fixture
def download_storage() -> t.Any:
    """A fresh, empty in-memory fsspec filesystem of its own (protocol ``memory``).

    Its store is private to the test: other tests and ``memory://`` URLs do
    not see its files.
    """
    pytest.importorskip("fsspec", reason="download_storage needs 'fsspec'")
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem(skip_instance_cache=True)
    # fsspec keeps one global store for every MemoryFileSystem; shadow it with
    # a private one (what ``global_store=False`` does in recent fsspec).
    fs.store = {}
    fs.pseudo_dirs = [""]
    return fs
