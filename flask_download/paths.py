"""Confine client-supplied paths to a trusted root (local disk or storage prefix)."""

from __future__ import annotations

import functools
import os
import re

from .exceptions import FileNotFound

# A Windows drive ("C:") or device name ("CON", "nul.txt", "COM1"): refused
# everywhere so that the same URL behaves alike whatever the server's OS.
_WINDOWS_NAME = re.compile(
    r"^(?:[a-z]:.*|(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\..*)?)$", re.IGNORECASE
)


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
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in untrusted):
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
    :return: the real (symlink-free) path of the target, inside ``root``.
    :raises FileNotFound: the path is refused or leaves ``root``.
    """
    segments = split_relative(untrusted)
    real_root = _real_root(root)
    target = os.path.realpath(os.path.join(real_root, *segments))
    if os.path.commonpath((real_root, target)) != real_root or target == real_root:
        raise FileNotFound(f"{untrusted!r} leaves the download root.")
    return target
