"""Confine client-supplied paths to a trusted root (local disk or storage prefix)."""

from __future__ import annotations

import functools
import os
import re
import stat

from .exceptions import FileNotFound

# A Windows drive ("C:") or device name ("CON", "nul.txt", "COM1"): refused
# everywhere so that the same URL behaves alike whatever the server's OS.
_WINDOWS_NAME = re.compile(
    r"^(?:[a-z]:.*|(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\..*)?)$", re.IGNORECASE
)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def split_relative(untrusted: str) -> list[str]:
    """Split a client-supplied relative path into safe segments.

    Refuses (with :exc:`FileNotFound`, so views answer 404) empty paths,
    absolute paths, backslashes, NUL and other control characters, ``..``
    segments, Windows drive and device names. ``.`` and empty segments are
    dropped.

    :raises FileNotFound: the path could leave its root.
    """
    if not untrusted or "\\" in untrusted or untrusted.startswith("/"):
        raise FileNotFound(f"Refused path {untrusted!r}.")
    if _CONTROL.search(untrusted):
        raise FileNotFound(f"Refused path {untrusted!r}.")
    segments = [s for s in untrusted.split("/") if s not in ("", ".")]
    if not segments or any(s == ".." or _WINDOWS_NAME.match(s) for s in segments):
        raise FileNotFound(f"Refused path {untrusted!r}.")
    return segments


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    return os.path.realpath(root)


def safe_join(root: str, untrusted: str) -> str:
    """Join a client-supplied path to ``root`` and make sure it stays inside.

    Unlike Werkzeug's ``safe_join`` this also follows symbolic links: a link
    inside ``root`` that points outside it is refused.

    :param root: a trusted directory (never from the client).
    :param untrusted: a relative path from the client.
    :return: the real (symlink-free) path of the target, inside ``root``. A
        target that does not exist is returned too (opening it fails later).
    :raises FileNotFound: the path is refused or leaves ``root``.
    """
    segments = split_relative(untrusted)
    real_root = _real_root(root)
    # Walk the segments below the (already real) root with one lstat each:
    # without a symlink and without "..", the path cannot leave the root.
    # This costs fewer system calls than os.path.realpath, which also walks
    # every component of the root itself.
    path = real_root
    for segment in segments:
        path = os.path.join(path, segment)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            # Missing (or not a directory): nothing further can be a link.
            return os.path.join(real_root, *segments)
        if stat.S_ISLNK(mode):
            return _resolve_links(real_root, segments, untrusted)
    return path


def _resolve_links(real_root: str, segments: list[str], untrusted: str) -> str:
    target = os.path.realpath(os.path.join(real_root, *segments))
    if target == real_root or not target.startswith(real_root.rstrip(os.sep) + os.sep):
        raise FileNotFound(f"{untrusted!r} leaves the download root.")
    return target
