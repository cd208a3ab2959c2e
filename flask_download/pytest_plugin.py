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

import inspect
import os
import pathlib
import sys
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


#: The name of the ``pytest11`` entry point that loads this module.
ENTRY_POINT_NAME = "flask_download"


def pytest_plugin_registered(
    plugin: object, manager: pytest.PytestPluginManager
) -> None:
    """Let the entry point and an explicit request for this module coexist.

    The entry point registers this module as ``flask_download``; a project
    may also name it by its module name (``pytest_plugins =
    ["flask_download.pytest_plugin"]`` in a conftest, ``-p
    flask_download.pytest_plugin``). Registering one module under two names
    is refused by pluggy with a ``ValueError`` that stops the whole run, so
    once the module is registered under either name, the other is blocked:
    asking for it again is a no-op, the fixtures are there already.
    """
    if plugin is not sys.modules[__name__]:
        return
    for name in (ENTRY_POINT_NAME, __name__):
        if manager.get_plugin(name) is None and not manager.is_blocked(name):
            manager.set_blocked(name)


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

    if "global_store" in inspect.signature(MemoryFileSystem.__init__).parameters:
        # A store of its own, and an identity (token, equality, pickling and
        # copies) of its own: a copy keeps the files, and the filesystem of
        # another test never compares equal to this one.
        return MemoryFileSystem(global_store=False, skip_instance_cache=True)
    # Older fsspec keeps one global store for every MemoryFileSystem: shadow
    # it with a private one.
    fs = MemoryFileSystem(skip_instance_cache=True)
    fs.store = {}
    fs.pseudo_dirs = [""]
    return fs
