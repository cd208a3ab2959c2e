"""Pieces of the HTTP grammar (RFC 9110) that several modules check values
against. Pure: it imports nothing of ours, so any module may use it.
"""

from __future__ import annotations

import functools
import re

#: RFC 9110 §5.6.2 token (a pattern to embed in others): a media type's
#: parts, a parameter name, a charset, a content coding, a disposition type.
TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(TOKEN)

#: RFC 9110 §8.8.3 etagc, the characters of an opaque entity tag: "!",
#: %x23-7E, obs-text; no '"', no space, no controls.
ETAGC = r"[\x21\x23-\x7e\x80-\xff]"
_OPAQUE_TAG_RE = re.compile(f"{ETAGC}*")


@functools.lru_cache(maxsize=256)
def valid_token(value: str) -> bool:
    """Whether ``value`` is a single token (RFC 9110 §5.6.2)."""
    return _TOKEN_RE.fullmatch(value) is not None


def valid_opaque_tag(value: str) -> bool:
    """Whether ``value`` can stand between an entity tag's quotes (``""`` can)."""
    return _OPAQUE_TAG_RE.fullmatch(value) is not None


@functools.lru_cache(maxsize=1024)
def _sendable_etag(value: str) -> str | None:
    bare = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return bare if valid_opaque_tag(bare) else None


def sendable_etag(value: object) -> str | None:
    """A wrapper's entity tag as the bare opaque tag sent and compared.

    ``DownloadFile.etag`` is bare (``abc``, sent as ``"abc"``); one pair of
    quotes around it is taken off, as :class:`~flask_download.VirtualFile`
    does. Anything else that cannot stand between the quotes of a strong
    entity tag (RFC 9110 §8.8.3: a ``"`` inside, spaces, controls, a
    character beyond Latin-1, a weak ``W/"x"``, a value that is not a
    string) is no validator: ``None``, so that a custom wrapper never puts
    a malformed ``ETag`` header on the wire, nor a CR or LF (a 500).
    """
    if not isinstance(value, str):
        return None
    return _sendable_etag(str(value))
