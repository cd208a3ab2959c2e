"""Media types and charsets, and the content security policy of active types."""

from __future__ import annotations

import codecs
import functools
import re

from werkzeug.datastructures import Headers

from .._grammar import TOKEN
from .._grammar import valid_token

# RFC 9110 §5.6.4 quoted-string (ASCII only: a header value must encode as
# Latin-1, and obs-text has no use in a media type).
_QUOTED_STRING = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
# RFC 9110 §8.3.1: type "/" subtype *( OWS ";" OWS [ name "=" value ] ).
_MEDIA_TYPE = re.compile(
    rf"{TOKEN}/{TOKEN}(?:[ \t]*;[ \t]*(?:{TOKEN}=(?:{TOKEN}|{_QUOTED_STRING}))?)*"
)


@functools.lru_cache(maxsize=256)
def valid_media_type(value: str | None) -> bool:
    """Whether ``value`` is a well-formed media type (RFC 9110 §8.3.1).

    Values read from a row or an upstream (``text/plain€``, a CR, a missing
    subtype) are not; they are treated as unknown and the type is guessed.
    """
    return value is not None and _MEDIA_TYPE.fullmatch(value) is not None


_TYPE_SUBTYPE = re.compile(f"{TOKEN}/{TOKEN}")
# One "; name=value" of RFC 9110 §5.6.6 (an empty one, ";;", is allowed).
_PARAMETER = re.compile(
    rf"[ \t]*;[ \t]*(?:({TOKEN})=({TOKEN}|{_QUOTED_STRING}))?[ \t]*"
)


def _parse_media_type(value: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``(type/subtype in lower case, [(name, value as given)])``, or
    ``None`` when ``value`` is not a well-formed media type."""
    match = _TYPE_SUBTYPE.match(value)
    if match is None:
        return None
    params: list[tuple[str, str]] = []
    position, end = match.end(), len(value)
    while position < end:
        param = _PARAMETER.match(value, position)
        if param is None or param.end() == position:
            return None
        if param.group(1):
            params.append((param.group(1), param.group(2)))
        position = param.end()
    return match.group().lower(), params


def _format_media_type(essence: str, params: list[tuple[str, str]]) -> str:
    return "".join([essence, *(f"; {name}={value}" for name, value in params)])


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


@functools.lru_cache(maxsize=256)
def _normalise_media_type(value: str) -> tuple[str, str | None]:
    """``value`` with its type and subtype in lower case (RFC 9110 §8.3.1:
    they are case-insensitive), and its ``charset`` parameter or ``None``.

    Parameter names are compared case-insensitively; their values are kept
    as they are. A value that is not a well-formed media type is returned as
    it is.
    """
    parsed = _parse_media_type(value)
    if parsed is None:
        return value, None
    essence, params = parsed
    charset = next(
        (_unquote(v) for name, v in params if name.lower() == "charset"), None
    )
    return _format_media_type(essence, params), charset


def media_type_charset(value: str) -> str | None:
    """The ``charset`` parameter of a media type, or ``None``.

    ``text/plain; charset="latin-1"`` gives ``latin-1``; ``text/plain;
    x-charset=foo`` gives ``None``.
    """
    return _normalise_media_type(value)[1]


def _with_charset(value: str, charset: str) -> str:
    """``value`` whose ``charset`` parameter says ``charset`` (added if none)."""
    parsed = _parse_media_type(value)
    if parsed is None:
        return value
    essence, params = parsed
    others = [(name, v) for name, v in params if name.lower() != "charset"]
    return _format_media_type(essence, [*others, ("charset", charset)])


@functools.lru_cache(maxsize=64)
def codec_charset(charset: str | None) -> str | None:
    """``charset`` as it can be both announced and encoded with: itself if it
    is a token naming a text encoding, the codec's own name if only the
    latter, ``None`` if it names no text encoding."""
    if charset is None:
        return None
    try:
        codec = codecs.lookup(charset)
    except (LookupError, TypeError, ValueError):
        return None
    # "base64" or "rot13" are codecs too, but not of text to bytes.
    if not getattr(codec, "_is_text_encoding", True):
        return None
    return charset if valid_token(charset) else codec.name


#: The default ``Content-Security-Policy`` of inline active content.
DEFAULT_CONTENT_SECURITY_POLICY = "sandbox"
# Types a browser runs scripts in when it displays them (HTML, XHTML, SVG,
# XML with XSLT or XHTML islands, multipart/x-mixed-replace HTML parts).
# Firefox also shows text/rdf as an XML document (nsContentDLF's XML types).
_ACTIVE_TYPES = frozenset(
    (
        "text/html",
        "text/xml",
        "text/xsl",
        "text/rdf",
        "application/xml",
        "multipart/x-mixed-replace",
    )
)


@functools.lru_cache(maxsize=256)
def is_active_type(content_type: str) -> bool:
    """Whether a browser may run scripts in content of this type shown inline.

    HTML, XHTML, SVG and every other XML type (``*+xml``, and ``text/rdf``,
    which Firefox shows as XML). Images, audio, video, PDF and plain text
    are not.
    """
    essence = content_type.partition(";")[0].strip().lower()
    return essence in _ACTIVE_TYPES or essence.endswith("+xml")


def set_content_security_policy(
    headers: Headers, attachment: bool, policy: str | None
) -> None:
    """Set or remove ``Content-Security-Policy`` for the headers' type.

    ``policy`` goes out for inline responses of active types
    (:func:`is_active_type`), so that an uploaded HTML or SVG file runs no
    script in the site's origin; attachments and other types get none.
    """
    content_type = headers.get("Content-Type", "")
    if policy and not attachment and is_active_type(content_type):
        headers["Content-Security-Policy"] = policy
    else:
        del headers["Content-Security-Policy"]
