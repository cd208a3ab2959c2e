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
