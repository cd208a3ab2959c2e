"""The download response: headers from a file wrapper, a streamed body."""

from __future__ import annotations

import codecs
import collections.abc as cabc
import contextlib
import datetime
import functools
import hashlib
import io
import itertools
import mimetypes
import os
import re
import typing as t
import unicodedata
from urllib.parse import quote

from flask import current_app
from flask import has_request_context
from flask import Response
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date as _werkzeug_http_date
from werkzeug.wsgi import ClosingIterator

from . import ranges as _ranges
from . import signals as _signals
from ._grammar import sendable_etag
from ._grammar import TOKEN
from ._grammar import valid_token
from .exceptions import FileNotFound
from .files import _FromOffset
from .files import _LocalFile
from .files import _Unclosed
from .files import DEFAULT_CHUNK_SIZE
from .files import DownloadFile
from .files import read_slice

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

#: Media types of compressed files, sent for attachments whose compression
#: was only guessed from the name (``x.tar.gz`` is a gzip file to save, not a
#: tar file to unpack on the fly).
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
    "zstd": "application/zstd",
}
# Characters deleted from ASCII file names: C0 controls (TAB, CR, LF, NUL...)
# and DEL. Other names also lose C1 controls and every Unicode format
# character (category Cf: bidi controls that make "exe.txt" display as
# "txt.exe", U+061C, zero-width characters...), see _clean_name.
_UNSAFE_ASCII = re.compile("[\x00-\x1f\x7f]")
# RFC 8187 §3.2.1 attr-char, besides ALPHA and DIGIT (quote() keeps those).
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"
# Longest file name put in a header, in characters (most file systems allow 255).
MAX_NAME_LENGTH = 255
# Longest extension (dot included) a truncated name keeps whole.
_MAX_EXTENSION_LENGTH = 32


def _clean_name(name: str) -> str | None:
    if name.isascii():
        name = _UNSAFE_ASCII.sub("", name)
    else:
        # A name read from a non-UTF-8 file system holds lone surrogates
        # (os.fsdecode's surrogateescape), which cannot be encoded: turn the
        # undecodable bytes into U+FFFD instead of failing.
        try:
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = name.encode("utf-8", "replace")
        name = raw.decode("utf-8", "replace")
        category = unicodedata.category
        name = "".join(c for c in name if category(c) not in ("Cc", "Cf"))
    name = name.strip()
    if name in ("", ".", ".."):
        return None
    if len(name) > MAX_NAME_LENGTH:
        stem, ext = os.path.splitext(name)
        # A longer "extension" is cut, never dropped: dropping it would make
        # the one before it the last ("report.html.xxx..." would become
        # "report.html"), and no type worth hiding has 31 letters.
        ext = ext[:_MAX_EXTENSION_LENGTH]
        name = stem[: MAX_NAME_LENGTH - len(ext)] + ext
    return name


# Punctuation NFKD leaves alone, mapped to its ASCII look-alike.
_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        "\u2026": "_",
        "\u00d7": "x",
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u00c6": "AE",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u00f8": "o",
        "\u00d8": "O",
        "\u0142": "l",
        "\u0141": "L",
        "\u0111": "d",
        "\u0110": "D",
        "\u00f0": "d",
        "\u00fe": "th",
        "\u0131": "i",
    }
)
# An extension kept in the fallback: ASCII letters and digits after the dot.
_ASCII_EXTENSION = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9_+-]{0,31}")
# What folding may never add: a new extension or path separator.
_FORBIDDEN_FOLDED = str.maketrans(dict.fromkeys("./\\", "_"))


def _fold_char(char: str) -> str:
    if char.isascii():
        return char
    mapped = char.translate(_PUNCTUATION)
    if mapped != char:
        return mapped
    if unicodedata.category(char) == "Zs":
        return " "  # no-break, en, ideographic... spaces
    folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    # NFKD turns U+2024 ONE DOT LEADER and U+FF0E FULLWIDTH FULL STOP into
    # ".", and U+FF0F into "/": they may not become an extension or a path.
    return folded.translate(_FORBIDDEN_FOLDED)


def _ascii_fallback(name: str) -> str:
    """An ASCII ``filename`` for a non-ASCII name (RFC 6266 §4.3).

    Only the stem is folded, one character at a time (``é`` -> ``e``, ``–``
    -> ``-``, a no-break space -> a space); the extension is kept if it is
    ASCII. Folding never makes a new ``.``, ``/`` or ``\\``, so
    ``report\u2024exe`` cannot become ``report.exe``. Letters of other scripts,
    which do not fold, are replaced by a short hash of the whole name, so
    ``報告.pdf`` becomes ``f1c2d3e4.pdf`` rather than an empty name, and
    ``архив.tar.gz`` becomes ``1a2b3c4d.tar.gz``.
    """
    stem, ext = os.path.splitext(name)
    if ext == ".":
        ext = ""
    elif ext and not _ASCII_EXTENSION.fullmatch(ext):
        # A non-ASCII "extension" (".ｈｔｍｌ") is part of the name, folded
        # like the rest, behind an underscore instead of its dot.
        stem, ext = stem + "_" + ext[1:], ""
    parts: list[str] = []
    lost = False
    for char in stem:
        folded = _fold_char(char)
        if not folded and unicodedata.category(char)[0] in "LN":
            lost = True
        parts.append(folded)
    text = _UNSAFE_ASCII.sub("", "".join(parts))
    text = " ".join(text.split())  # runs of spaces collapse to one
    leading_dot = text.startswith(".")
    # Symbols that fold to nothing ("😀😀.tar" of "😀😀.tar.gz") leave the
    # inner extension first: its dot must not be lost ("tar.gz").
    dropped = leading_dot and not stem.lstrip(" ").startswith(".")
    text = text.strip(" .")
    inner = leading_dot and _ASCII_EXTENSION.fullmatch("." + text) is not None
    if lost or not text or (dropped and inner):
        digest = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:8]
        if (lost or dropped) and inner:
            # Nothing before the dot folded ("архив.tar" of "архив.tar.gz"):
            # the hash goes where those letters were, before the inner
            # extension, which stays one ("1a2b3c4d.tar.gz").
            text = f"{digest}.{text}"
        else:
            text = f"{text}-{digest}" if text else digest
    return text + ext


def _quoted_string(value: str) -> str:
    # RFC 9110 §5.6.4: backslash and double quote are escaped in a quoted-string.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=512)
def content_disposition(basename: str | None, attachment: bool = True) -> str:
    """Build a ``Content-Disposition`` value (RFC 6266) for a file name.

    An ASCII name goes out as ``filename="..."``; any other name also gets
    ``filename*=UTF-8''...`` (RFC 8187) after an ASCII ``filename`` fallback
    that keeps the extension. Control and bidi characters are deleted, so
    nothing in a name can add a header or a parameter. Empty names, ``.``
    and ``..`` give no ``filename`` at all.

    :param basename: the client-side file name, or ``None``.
    :param attachment: ``attachment`` (save) or ``inline`` (display).
    """
    disposition = "attachment" if attachment else "inline"
    name = None if basename is None else _clean_name(basename)
    if name is None:
        return disposition
    if name.isascii():
        return f"{disposition}; filename={_quoted_string(name)}"
    fallback = _quoted_string(_ascii_fallback(name))
    encoded = quote(name, safe=_ATTR_CHAR_SAFE, encoding="utf-8")
    return f"{disposition}; filename={fallback}; filename*=UTF-8''{encoded}"


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


@functools.lru_cache(maxsize=1024)
def http_date(value: datetime.datetime) -> str:
    """Format an HTTP-date (cached: a file's mtime is formatted per request)."""
    return _werkzeug_http_date(value)


@functools.lru_cache(maxsize=512)
def guess_type(name: str) -> tuple[str | None, str | None]:
    """Guess ``(media type, content encoding)`` from a file name (cached)."""
    return mimetypes.guess_type(name, strict=False)


def content_type_and_encoding(
    name: str | None,
    mimetype: str | None,
    encoding: str | None,
    charset: str | None,
    attachment: bool,
) -> tuple[str, str | None]:
    """Decide ``Content-Type`` and ``Content-Encoding``.

    An explicit ``encoding`` is always sent. One guessed from the name is
    sent only for inline responses (DESIGN §3): an attachment keeps the
    bytes it is (``x.tar.gz`` -> ``application/gzip``, no
    ``Content-Encoding``). Name inline files compressed other than with
    gzip, br or zstd with care: ``xz`` and ``bzip2`` are no HTTP content
    codings and ``compress`` is decoded by no browser.
    ``text/*`` types get a charset (``charset``, else UTF-8) unless the
    media type has a ``charset`` parameter, which wins. Type and subtype go
    out in lower case (they are case-insensitive, RFC 9110 §8.3.1), so
    ``TEXT/PLAIN`` is ``text/plain; charset=utf-8``. A media type that is
    not well formed (:func:`valid_media_type`), or a charset or encoding
    that is not a token, is ignored.
    """
    # Values from a row or an upstream may be anything: invalid ones count as
    # unknown (guessed), never reach the headers, never cause a 500.
    if mimetype is not None and not valid_media_type(mimetype):
        mimetype = None
    if charset is not None and not valid_token(charset):
        charset = None
    if encoding is not None and not valid_token(encoding):
        encoding = None
    guessed_type, guessed_encoding = guess_type(name) if name else (None, None)
    if encoding is None and guessed_encoding is not None:
        if attachment:
            if mimetype is None:
                mimetype = _ENCODING_TYPES.get(guessed_encoding)
        else:
            encoding = guessed_encoding
    if mimetype is None:
        mimetype = guessed_type or "application/octet-stream"
    if ";" in mimetype or not mimetype.islower():
        # Given with parameters, or not in lower case ("TEXT/PLAIN"): look
        # for a charset parameter itself, not for the text "charset=" (which
        # "x-charset=" also holds). A guessed "text/plain" skips this.
        mimetype, declared = _normalise_media_type(mimetype)
        if declared is not None:
            return mimetype, encoding
    if mimetype.startswith("text/"):
        mimetype = f"{mimetype}; charset={charset or 'utf-8'}"
    return mimetype, encoding


def representation(
    file: DownloadFile,
    basename: str | None,
    mimetype: str | None,
    encoding: str | None,
    charset: str | None,
    attachment: bool,
) -> tuple[str | None, str, str | None, str]:
    """Decide how ``file`` is presented to the client.

    The one place the view's values meet the wrapper's: each of
    ``basename``, ``mimetype``, ``encoding`` and ``charset`` that is
    ``None`` falls back to the file's own (``name``, ``mimetype``...). A
    name that is not a ``str`` (``bytes`` from a column, a number) is made
    one. Used by :class:`DownloadResponse` and by presigned redirects, so
    that a file streamed and the same file redirected to are described
    alike.

    Text a wrapper encodes (:attr:`~DownloadFile.encoded_text`, or text it
    streams with a charset of its own) goes out in the wrapper's charset,
    and the ``Content-Type`` says so, even over a ``charset`` parameter of
    ``mimetype``: its bytes, and the ``Content-Length`` and ``ETag`` made
    from them, are already in that charset. A wrapper that streams text
    without a charset of its own is given the one the response announces
    (the ``charset`` parameter of ``mimetype``, else ``charset``, else
    UTF-8), so that body and header agree.

    :return: ``(name, Content-Type, Content-Encoding or None,
        Content-Disposition)``.
    """
    name = basename if basename is not None else file.name
    if name is not None and type(name) is not str:
        name = _name_text(name)
    # Text the wrapper encodes (VirtualFile's str, StringIO, text streams).
    text = file.encoded_text or file._streams_text
    fixed = text and (file.encoded_text or file.charset is not None)
    if charset is None or fixed:
        charset = file.charset
    content_type, content_encoding = content_type_and_encoding(
        name,
        mimetype if mimetype is not None else file.mimetype,
        encoding if encoding is not None else file.encoding,
        charset,
        attachment,
    )
    if text:
        content_type = _text_content_type(file, content_type, charset, fixed)
    return name, content_type, content_encoding, content_disposition(name, attachment)


def _name_text(value: object) -> str | None:
    """A name that is not a ``str`` as one: ``bytes`` decoded as UTF-8
    (undecodable bytes become U+FFFD), anything else through ``str()``."""
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", "replace")
        return str(value)
    except Exception:  # a __str__ that fails: no name rather than a 500
        return None


def _text_content_type(
    file: DownloadFile, content_type: str, charset: str | None, fixed: bool
) -> str:
    """``content_type`` naming the charset text of ``file`` is encoded with,
    which the wrapper is told when it was not fixed already."""
    announced = media_type_charset(content_type)
    wanted = file.charset if fixed else announced or charset
    usable = codec_charset(wanted)
    if usable is None:
        if file.encoded_text:
            return content_type  # a custom wrapper's bytes: its own business
        usable = "utf-8"  # no such text encoding: send UTF-8, and say so
    if not file.encoded_text:
        file.charset = usable  # what the wrapper encodes its text with
    if announced is not None and announced != usable:
        return _with_charset(content_type, usable)
    if (
        announced is None
        and codecs.lookup(usable).name != "utf-8"
        and _is_textual(content_type)
    ):
        # XML or JSON in another encoding than UTF-8 (which they are read
        # as without a charset): say which. Binary types never get one.
        return _with_charset(content_type, usable)
    return content_type


# Types outside text/* whose content is text, read as UTF-8 by default.
_TEXTUAL_TYPES = frozenset(
    (
        "application/xml",
        "application/json",
        "application/javascript",
        "application/ecmascript",
        "application/xhtml+xml",
    )
)


def _is_textual(content_type: str) -> bool:
    essence = content_type.partition(";")[0].strip().lower()
    return essence in _TEXTUAL_TYPES or essence.endswith(("+xml", "+json"))


def validator_headers(
    file: DownloadFile, cache_control: str | None
) -> list[tuple[str, str]]:
    """The validators of ``file`` and the ``Cache-Control`` value, as headers.

    ``Last-Modified`` and a quoted ``ETag`` when the file knows them. Sent
    with a download and with its 304, which carries the validators and
    ``Cache-Control`` the 200 would have had (RFC 9110 §15.4.5).
    """
    items: list[tuple[str, str]] = []
    if file.modified_time is not None:
        items.append(("Last-Modified", http_date(file.modified_time)))
    etag = sendable_etag(file.etag)
    if etag is not None:
        items.append(("ETag", f'"{etag}"'))
    if cache_control is not None:
        items.append(("Cache-Control", cache_control))
    return items


def _checked_headers(items: list[tuple[str, str]]) -> Headers:
    """A :class:`~werkzeug.datastructures.Headers` of ``items``, validated at once.

    Werkzeug checks each value for CR and LF as it is added, one function
    call per header. The values of a download are strings, mostly built
    here; one search over all of them makes the same check, and only a list
    that fails it (or holds a value that is not a string) goes through
    ``Headers`` itself, which raises or converts as it always does.
    """
    try:
        values = "".join([value for _, value in items])
    except TypeError:
        return Headers(items)
    if "\n" in values or "\r" in values or not _HEADERS_HAVE_LIST:
        return Headers(items)
    headers = Headers()
    headers._list = items
    return headers


# Werkzeug's Headers keeps its items in ``_list`` (since 0.x); a version that
# does not gets its headers built the ordinary way.
_HEADERS_HAVE_LIST = isinstance(getattr(Headers(), "_list", None), list)


def close_connection(start_response: t.Any) -> None:
    """Have the server close the connection once this response is sent.

    Called when a body ends before the bytes its ``Content-Length``
    announced (a file shrank, a stream or an upstream broke off): a server
    that kept the connection open would let the client read the next
    response on it as the rest of this body. gunicorn does not compare the
    body with ``Content-Length``, so it is told through its ``Response``
    (the object whose ``start_response`` the application got), before it
    decides on keep-alive. Werkzeug's development server answers
    ``Connection: close`` to every request; waitress closes by itself when
    a body is short. Behind middleware that wraps ``start_response``, the
    server cannot be reached and this does nothing.
    """
    force_close = getattr(gunicorn_response(start_response), "force_close", None)
    if force_close is not None:
        force_close()


def gunicorn_response(start_response: t.Any) -> t.Any:
    """gunicorn's ``Response`` if ``start_response`` is its own (no
    middleware in between), else ``None``."""
    server = getattr(start_response, "__self__", None)
    if type(server).__module__ == "gunicorn.http.wsgi":
        return server
    return None


#: The keywords of :class:`DownloadResponse` kept to make it again without
#: ranges (``DownloadResponse._options`` holds their values, in this order).
REMADE_OPTIONS = (
    "attachment",
    "basename",
    "mimetype",
    "encoding",
    "charset",
    "chunk_size",
    "cache_control",
    "headers",
    "content_security_policy",
)


# Cache-Control directives of an upstream that the relayed answer keeps: the
# upstream knows whether the file is one user's (the app may fetch it with
# that user's token), which the view's own Cache-Control cannot tell.
_PRIVACY_DIRECTIVES = ("no-store", "private")


def cache_directives(values: cabc.Iterable[str]) -> frozenset[str]:
    """The directive names (lowercase) of ``Cache-Control`` values."""
    return frozenset(
        name
        for value in values
        for part in value.split(",")
        if (name := part.partition("=")[0].strip(" \t").lower())
    )


def no_less_private(cache_control: str | None, upstream: frozenset[str]) -> str | None:
    """``cache_control`` with ``no-store`` and ``private`` added when
    ``upstream`` names them (and ``public`` dropped), so that no shared cache
    stores a file kept private (by a proxied upstream, or an access check);
    unchanged when ``upstream`` has neither."""
    missing = [d for d in _PRIVACY_DIRECTIVES if d in upstream]
    if not missing:
        return cache_control
    parts = [p.strip(" \t") for p in (cache_control or "").split(",")]
    # The view's public goes; so does a private="field" of the view when the
    # upstream's private is kept: it would make only those fields private
    # (RFC 9111 §5.2.2.7), the rest of the answer storable by shared caches.
    dropped = {"public", "private"} if "private" in missing else {"public"}
    kept = [p for p in parts if p and cache_directives([p]).isdisjoint(dropped)]
    present = cache_directives(kept)
    return ", ".join([d for d in missing if d not in present] + kept)


class _ClosingBody(ClosingIterator):
    """A response body that closes itself if the server drops it unclosed.

    PEP 3333 servers call ``close()``; Werkzeug's development server skips
    it when the client reset the connection (the request body's drain fails
    first), which would leave the file to the garbage collector and never
    send ``download_finished``.
    """

    _closed = False

    def close(self) -> None:
        self._closed = True
        super().close()

    def __del__(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self.close()


class DownloadResponse(Response):
    """A response that sends a :class:`~flask_download.DownloadFile`.

    Headers are set when the response is made, from what the wrapper
    knows; the file is opened only when the server asks for the body (not
    for ``HEAD``). Local files go through the server's
    ``wsgi.file_wrapper`` (``sendfile``), whole or as a single range; other
    bodies are streamed in chunks. The file is closed when the response is
    closed, also when the client hangs up.

    :param file: the file to send.
    :param attachment: ``Content-Disposition: attachment`` (else ``inline``).
    :param basename: the client-side name; defaults to ``file.name``.
    :param mimetype: the media type; defaults to the wrapper's, else guessed.
    :param encoding: the ``Content-Encoding``; defaults to the wrapper's.
    :param charset: the charset of ``text/*`` types; defaults to the
        wrapper's, else UTF-8.
    :param ranges: the decision of :func:`flask_download.ranges.evaluate_range`:
        ``None`` (whole file), byte ranges (206), or ``UNSATISFIABLE`` (416).
    :param chunk_size: bytes per chunk when Python streams the body.
    :param cache_control: the ``Cache-Control`` value, if any.
    :param headers: extra headers.
    :param content_security_policy: sent as ``Content-Security-Policy`` with
        inline responses of active types (HTML, XHTML, SVG, XML), so that
        their scripts cannot run in the site's origin; ``None`` sends none.
    """

    default_mimetype = "application/octet-stream"
    # Content-Length is set from the file's size; Werkzeug must not compute
    # one by reading the body (that would use up an iterator).
    automatically_set_content_length = False
    _offload_decided: bool = False  # set by accel.apply_offload: decided once
    # The server's start_response, to close the connection after a short body.
    _start_response: t.Any = None
    # The view's charset (when it gives one) and the representation's media
    # type (when Content-Type is multipart/byteranges): the charset text that
    # a custom wrapper yields is encoded with is found from them.
    _charset: str | None = None
    _media_type: str | None = None

    def __init__(
        self,
        file: DownloadFile,
        *,
        attachment: bool = True,
        basename: str | None = None,
        mimetype: str | None = None,
        encoding: str | None = None,
        charset: str | None = None,
        ranges: _ranges.RangeDecision = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        cache_control: str | None = None,
        headers: Headers | cabc.Mapping[str, str] | None = None,
        status: int | None = None,
        content_security_policy: str | None = DEFAULT_CONTENT_SECURITY_POLICY,
    ) -> None:
        self.file = file
        self.attachment = attachment
        if charset is not None:
            self._charset = charset  # for text a custom wrapper yields
        name, content_type, content_encoding, disposition = representation(
            file, basename, mimetype, encoding, charset, attachment
        )
        self.basename = name
        self.chunk_size = chunk_size
        # How it was made, but for ranges and status (in the order of
        # REMADE_OPTIONS): an offload rule met after the fact
        # (accel.apply_offload) makes it again for the web server, which
        # answers the request's Range itself.
        self._options = (
            attachment,
            basename,
            mimetype,
            encoding,
            charset,
            chunk_size,
            cache_control,
            headers,
            content_security_policy,
        )
        #: Body parts: literal bytes, or ``(start, stop)`` spans of the file
        #: (``stop`` ``None``: to the end). Empty for bodiless responses.
        self._segments: list[bytes | tuple[int, int | None]] = []
        self._handle: t.IO[bytes] | None = None
        # Counts the body for ``download_finished`` (only with receivers).
        self._delivery: _signals._Delivery | None = None

        size = file.size
        # Built as one list: a download's headers are all distinct, so the
        # per-header replace of ``Headers.__setitem__`` is not needed.
        items = [("X-Content-Type-Options", "nosniff")]
        unsatisfiable = ranges is _ranges.UNSATISFIABLE
        if content_encoding and not unsatisfiable:
            items.append(("Content-Encoding", content_encoding))
        items += validator_headers(file, cache_control)
        if file.seekable and size is not None:
            items.append(("Accept-Ranges", "bytes"))

        if ranges is _ranges.UNSATISFIABLE:
            # RFC 9110 §15.5.17: 416 carries the current length. It has no
            # content, so (like the 304 and the 412) no Content-Type and no
            # Content-Encoding, which describe content (RFC 9110 §8.3, §8.4):
            # the file's type on an empty 416 would claim a body it lacks.
            status = 416
            items.append(
                ("Content-Range", _ranges.unsatisfied_content_range(size or 0))
            )
            items.append(("Content-Length", "0"))
        else:
            items.append(("Content-Disposition", disposition))
            if (
                content_security_policy
                and not attachment
                and is_active_type(content_type)
            ):
                items.append(("Content-Security-Policy", content_security_policy))
            if not ranges:
                status = status or 200
                self._segments = [(0, size)]
                if size is not None:
                    items.append(("Content-Length", str(size)))
            elif len(ranges) == 1:
                assert size is not None
                status = 206
                start, stop = ranges[0]
                items.append(
                    ("Content-Range", _ranges.content_range(start, stop, size))
                )
                items.append(("Content-Length", str(stop - start)))
                self._segments = [(start, stop)]
            else:
                # RFC 9110 §14.6: several ranges go out as multipart/byteranges.
                assert size is not None
                status = 206
                boundary = _ranges.make_boundary()
                parts, closing, length = _ranges.multipart_layout(
                    ranges, size, content_type, boundary
                )
                self._media_type = content_type
                content_type = f"multipart/byteranges; boundary={boundary}"
                items.append(("Content-Length", str(length)))
                for header, start, stop in parts:
                    self._segments += [header, (start, stop)]
                self._segments.append(closing)
        # First: Werkzeug looks for it by name before anything else.
        items.insert(0, ("Content-Type", content_type))
        super().__init__(
            status=status,
            headers=_checked_headers(items),
            direct_passthrough=True,
        )
        if unsatisfiable:
            # Werkzeug adds a default type when there is none: the type goes
            # in first (above), then out.
            del self.headers["Content-Type"]
        if headers:
            self.headers.update(headers)

    # -- body ---------------------------------------------------------------

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        # Kept to reach the server if the body ends short (_cut_short).
        # Werkzeug's Response.__call__, inlined: no extra call per request.
        self._start_response = start_response
        try:
            app_iter, status, headers = self.get_wsgi_response(environ)
        except Exception as error:
            # Nothing is sent yet (the file is opened and its first chunk
            # read before the status line): answer as a view's error would.
            return self._failed(error, environ, start_response)
        start_response(status, headers)
        return app_iter

    def _failed(
        self, error: Exception, environ: WSGIEnvironment, start_response: StartResponse
    ) -> cabc.Iterable[bytes]:
        """Answer an error raised before the first byte (by ``open()`` or the
        first read: a store down since ``info()``, an upstream that broke off)
        with the application's error handlers, as if the view had raised it:
        503, 502 or 504 for the library's errors, the app's 500 handler (and
        its log line) for a bug. The server would otherwise send its own 500
        page. ``after_request`` functions ran already, for the download."""
        self.close()
        if not has_request_context():
            # Plain WSGI use, outside a Flask request.
            if isinstance(error, HTTPException):
                return error(environ, start_response)
            raise error
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if isinstance(error, HTTPException):
            answer = app.handle_user_exception(error)
        else:
            answer = app.handle_exception(error)  # re-raised when propagating
        response: Response = app.make_response(answer)
        return response(environ, start_response)

    def _cut_short(self) -> None:
        """The body ended before its ``Content-Length``: see that the
        connection closes after it (:func:`close_connection`)."""
        close_connection(self._start_response)

    def _wants_body(self, environ: WSGIEnvironment) -> bool:
        return bool(self._segments) and environ.get("REQUEST_METHOD") != "HEAD"

    def _single_span(self) -> tuple[int, int | None] | None:
        if len(self._segments) == 1 and isinstance(self._segments[0], tuple):
            return self._segments[0]
        return None

    def get_wsgi_response(
        self, environ: WSGIEnvironment
    ) -> tuple[cabc.Iterable[bytes], str, list[tuple[str, str]]]:
        # Werkzeug builds the headers before the body; open the file first so
        # that a file deleted since the view stat-ed it is still a clean 404.
        app_iter = self.get_app_iter(environ)
        if (
            _signals.download_started.receivers or _signals.download_finished.receivers
        ) and self._is_offloaded(environ):
            _signals._offloaded(self.file)
        headers = self.get_wsgi_headers(environ)
        return app_iter, self.status, headers.to_wsgi_list()

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        # Werkzeug's version copies the headers to fix Location and
        # Content-Location and the length of 1xx, 204 and 304 answers. A
        # download (200, 206, 404 or 416) has none of those unless an
        # application added them: then, and only then, the copy is made.
        if self.status_code in _PLAIN_STATUSES:
            for key, _ in self.headers:
                if key not in _OWN_HEADERS and key.lower() in _FIXED_HEADERS:
                    return super().get_wsgi_headers(environ)
            return self.headers
        return super().get_wsgi_headers(environ)

    def get_app_iter(self, environ: WSGIEnvironment) -> cabc.Iterable[bytes]:
        if not self._wants_body(environ):
            self.close()
            return ()
        file = self.file
        text = False
        try:
            if file.seekable:
                handle = self._handle = file.open()
                if type(handle) not in _BINARY_STREAMS and _is_text_stream(handle):
                    # A subclass's open() gave text: bytes in the response's
                    # charset are sent, never the str, never by file_wrapper.
                    self._handle = self._encoded_text(handle)
                    text = True
        except FileNotFound:
            self._become_not_found()
            return ()
        # Signals: nothing but two truthiness checks without receivers.
        delivery = None
        if _signals.download_started.receivers or _signals.download_finished.receivers:
            try:
                delivery = self._delivery = _signals._begin(file)
            except BaseException:
                self.close()  # a receiver failed: release the open file
                raise
        wrapper = environ.get("wsgi.file_wrapper")
        span = self._single_span()
        # A caller's open file (send_download(open(path, "rb"))) goes the
        # same way as a path, its offsets counted from where it was handed
        # over (``start``): the span's ends are in the file itself.
        base = file.start if type(file) is _LocalFile else None
        if (
            wrapper is not None
            and (file.path is not None or base is not None)
            and span is not None
            and not text
        ):
            # Zero-copy: hand the server the open file positioned at the
            # range start; it sends exactly Content-Length bytes from there.
            # The server's own wrapper object is returned as is: gunicorn
            # uses sendfile only when it gets its FileWrapper back.
            assert self._handle is not None
            handle, self._handle = self._handle, None
            start, stop = span
            length = (file.size if stop is None else stop) or 0
            if base is not None:
                # The server counts in the file itself: gunicorn passes the
                # descriptor's offset (lseek on fileno()) to socket.sendfile,
                # which seek()s the span to it when os.sendfile fails. The
                # span's seek() and tell() count from 0 too, as fileno() does.
                handle = t.cast(
                    t.IO[bytes], _FromOffset(handle.fileno(), 0, base + start)
                )
            elif start:
                handle.seek(start)
            # Servers other than gunicorn may send a descriptor from offset 0
            # for the file's size (uWSGI): only the file from its first byte
            # is "whole", never a caller's file handed over past it.
            whole = start == 0 and length == file.size and not base
            cls = (
                _SendfileSpan
                if whole or environ.get("SERVER_SOFTWARE", "").startswith(_CLAMPING)
                else _FileSpan
            )
            base = base or 0
            filelike: t.Any = cls(
                handle, base + start, base + length, self.close, self._cut_short
            )
            if delivery is not None:
                # Count what the server reads (this turns sendfile off).
                filelike = delivery.reader(filelike, length - start)
            return wrapper(filelike, self.chunk_size)  # type: ignore[no-any-return]
        body = self._iter_body()
        if delivery is not None:
            body = delivery.count(body, self.headers.get("Content-Length", type=int))
        return self._first_read(body)

    def _first_read(self, body: cabc.Iterator[bytes]) -> cabc.Iterable[bytes]:
        """The body, its first bytes read before the status line is sent.

        Werkzeug and gunicorn send the status with the first body bytes: an
        error raised then (a key deleted since ``info()``, a store down, an
        upstream that broke off before its first byte) could only become the
        server's 500 page. Read now, it is a 404, or the error's own status
        (see :meth:`_failed`).
        """
        try:
            for first in body:
                if first:
                    break
            else:
                self.close()
                return ()
        except FileNotFound:
            self._become_not_found()
            return ()
        except BaseException:
            self.close()
            raise
        close = getattr(body, "close", None)
        callbacks = [self.close] if close is None else [close, self.close]
        return _ClosingBody(itertools.chain((first,), body), callbacks)

    def _iter_body(self) -> cabc.Iterator[bytes]:
        # A body that ends before its Content-Length (the file shrank or
        # changed, a stream or upstream ended or failed early) must not
        # leave the connection open: see _cut_short.
        missing = 0
        try:
            handle = self._handle
            if handle is None:
                # A stream without open(): its own chunks, whole. A subclass
                # yielding str gets it encoded with the charset the response
                # announces: no str may reach the server.
                sent = 0
                expected = self.content_length
                encoder = None
                chunk: t.Any
                # _FLUSH ends the chunks: the encoder's last bytes, if any.
                for chunk in itertools.chain(self.file.chunks(self.chunk_size), _FLUSH):
                    if type(chunk) is not bytes:
                        if isinstance(chunk, str):
                            if encoder is None:
                                encoder = self._text_encoder()
                            chunk = encoder.encode(chunk)
                        elif chunk is _END:
                            if encoder is None:
                                break
                            chunk = encoder.encode("", final=True)
                        elif isinstance(chunk, (bytearray, memoryview)):
                            chunk = bytes(chunk)
                        else:
                            raise TypeError(
                                f"{type(self.file).__name__}.chunks() yielded"
                                f" {type(chunk).__name__!r}: chunks are bytes or str."
                            )
                        if not chunk:
                            continue
                    if expected is not None and sent + len(chunk) > expected:
                        # A source longer than the size it declared: never
                        # past Content-Length, or the extra bytes would be
                        # read as the next response on a kept-alive
                        # connection.
                        yield chunk[: expected - sent]
                        sent = expected
                        break
                    sent += len(chunk)
                    yield chunk
                if expected is not None:
                    missing = expected - sent
            else:
                unchanged = self.file.unchanged_check(handle)
                chunk_size = self.chunk_size
                for segment in self._segments:
                    if isinstance(segment, bytes):
                        yield segment
                    else:
                        start, stop = segment
                        missing = yield from read_slice(
                            handle, chunk_size, start, stop, unchanged
                        )
                        if missing:
                            break  # no more parts after a short one
        except BaseException:
            # Failed mid-body, or closed early (GeneratorExit: the client
            # hung up): whatever was sent is short.
            self._cut_short()
            raise
        if missing > 0:
            self._cut_short()

    def iter_encoded(self) -> cabc.Iterator[bytes]:
        # For code that reads the response directly (``response.get_data()``
        # needs a sequence; ``b"".join(response.iter_encoded())`` works).
        if self._segments and self.file.seekable and self._handle is None:
            handle = self._handle = self.file.open()
            if _is_text_stream(handle):
                self._handle = self._encoded_text(handle)
        return self._iter_body()

    def _encoded_text(self, handle: t.IO[t.Any]) -> t.IO[bytes]:
        """The text stream ``open()`` gave, read as bytes in the response's
        charset; the headers made from the wrapper's ``size`` are corrected
        when the text encodes to another length."""
        stream = _EncodedText(t.cast(t.IO[str], handle), self._text_encoding())
        try:
            length = stream.length()
        except BaseException:
            self.close()  # a character the charset cannot encode, say
            raise
        if length is not None and length != self.file.size:
            # A size counted in characters, newlines translated, another
            # charset: Content-Length must count the bytes sent, and ranges
            # of a size that is wrong cannot be answered (RFC 9110 §14.2
            # lets a server ignore Range). Nothing is sent yet.
            headers = self.headers
            if self.status_code == 206:
                self.status_code = 200
                del headers["Content-Range"]
                if self._media_type is not None:
                    headers["Content-Type"] = self._media_type
            del headers["Accept-Ranges"]
            headers["Content-Length"] = str(length)
            self._segments = [(0, length)]
        return t.cast(t.IO[bytes], stream)

    def _text_encoding(self) -> str:
        """The charset text a wrapper gives is encoded with: the one the
        response announces, else the view's or the wrapper's, else UTF-8."""
        content_type = self._media_type or self.headers.get("Content-Type", "")
        charset = media_type_charset(content_type) or self._charset or self.file.charset
        return codec_charset(charset) or "utf-8"

    def _text_encoder(self) -> codecs.IncrementalEncoder:
        # One encoder for the whole body: a stateful encoding (a byte order
        # mark, ISO-2022 shifts) is written once, not once a chunk.
        return codecs.getincrementalencoder(self._text_encoding())()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.basename!r} [{self.status}]>"

    def _become_not_found(self) -> None:
        self.close()
        self.status_code = 404
        self._segments = []
        for name in (
            "Content-Disposition",
            "Content-Encoding",
            "Content-Range",
            "Accept-Ranges",
            "ETag",
            "Last-Modified",
        ):
            del self.headers[name]
        self.headers["Content-Type"] = "text/plain; charset=utf-8"
        self.headers["Content-Length"] = "0"

    def close(self) -> None:
        """Close the file and its open stream; safe to call more than once."""
        handle, self._handle = self._handle, None
        try:
            if handle is not None:
                handle.close()
        finally:
            self.file.close()
            super().close()
            delivery, self._delivery = self._delivery, None
            if delivery is not None:
                delivery.finish()

    def _is_offloaded(self, environ: WSGIEnvironment) -> bool:
        # An empty-bodied download the web server sends (accel.AccelResponse).
        return (
            environ.get("REQUEST_METHOD") != "HEAD"
            and self.status_code in (200, 206)
            and any(name in self.headers for name in _signals.OFFLOAD_HEADERS)
        )


# Statuses whose headers Werkzeug's get_wsgi_headers leaves as they are, and
# the headers it rewrites for any status.
_PLAIN_STATUSES = frozenset((200, 206, 404, 416))
_FIXED_HEADERS = frozenset(("location", "content-location"))
# Headers a download or a 304 is built with (skipped without a lower()).
_OWN_HEADERS = frozenset(
    (
        "X-Content-Type-Options",
        "Content-Encoding",
        "Last-Modified",
        "ETag",
        "Cache-Control",
        "Accept-Ranges",
        "Content-Range",
        "Content-Length",
        "Content-Disposition",
        "Content-Security-Policy",
        "Content-Type",
    )
)
# What a 304 may carry as it is (RFC 9110 §15.4.5): Werkzeug's
# get_wsgi_headers, which copies the headers and strips entity headers but
# also Last-Modified, is only needed for anything else.
_NOT_MODIFIED_HEADERS = frozenset(("etag", "last-modified", "cache-control", "vary"))


class NotModifiedResponse(Response):
    """A 304 response that keeps ``Last-Modified``.

    Werkzeug strips it with the other entity headers; RFC 9110 §15.4.5 lets
    a 304 carry it to guide cache updates, and clients without ETag support
    revalidate with it.
    """

    # No Content-Type: a 304 has no content (Werkzeug would add text/html
    # here only to strip it again in get_wsgi_headers).
    default_mimetype = None

    def __init__(
        self,
        response: t.Any = None,
        status: int | str | None = None,
        headers: Headers | cabc.Mapping[str, str] | None = None,
        **kwargs: t.Any,
    ) -> None:
        if not isinstance(headers, cabc.Mapping) or kwargs:
            super().__init__(response, status, headers, **kwargs)
            return
        # The validators of DownloadMixin.not_modified_response: checked in
        # one pass (_checked_headers), not one header at a time. Werkzeug
        # looks for a Content-Type first, and a missing header costs it an
        # exception: a placeholder is found at once, then dropped.
        checked = _checked_headers([("Content-Type", ""), *headers.items()])
        super().__init__(response, status, checked)
        del checked[0]

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        if self.status_code == 304 and not self.response:
            for key, _ in self.headers:
                if key.lower() not in _NOT_MODIFIED_HEADERS:
                    break
            else:
                return self.headers
        headers = super().get_wsgi_headers(environ)
        last_modified = self.headers.get("Last-Modified")
        if last_modified is not None:
            headers["Last-Modified"] = last_modified
        return headers


# Ends the chunks of a stream (DownloadResponse._iter_body): text encoded so
# far may leave an incremental encoder with bytes to write.
_END = object()
_FLUSH = (_END,)

# Streams open() gives that are binary for sure, told apart from text ones
# without an isinstance() check against io.TextIOBase (an ABC).
_BINARY_STREAMS = frozenset((io.BufferedReader, io.BytesIO, io.FileIO))
_TEXT_STREAMS = (io.TextIOBase, codecs.StreamReader, codecs.StreamReaderWriter)


def _is_text_stream(handle: object) -> bool:
    """Whether ``handle`` reads ``str`` (``io.StringIO``, a text-mode file,
    or a caller's stream whose ``read`` gives ``str``)."""
    if isinstance(handle, _TEXT_STREAMS):
        return True
    if type(handle) is _Unclosed:
        # A caller's stream a VirtualFile took for binary (it is no
        # io.TextIOBase): read(0) reads nothing and tells which type read
        # gives. Asked before any header goes out, so that no str reaches
        # the server and Content-Length counts the bytes sent.
        try:
            return isinstance(handle.read(0), str)
        except Exception:
            return False
    return False


class _EncodedText(io.RawIOBase):
    """A text stream read as bytes: its characters encoded with ``encoding``.

    What :meth:`DownloadFile.open` returns is read as bytes, and ranges
    count bytes; a text stream's own offsets count characters (or are
    opaque cookies), so this view never seeks it but to its start: a seek
    forward reads and drops the bytes before the position. :meth:`length`
    tells how many bytes the text makes, for ``Content-Length``.
    """

    def __init__(self, stream: t.IO[str], encoding: str) -> None:
        self._stream = stream
        self._encoding = encoding
        self._restart()

    def _restart(self) -> None:
        self._encoder = codecs.getincrementalencoder(self._encoding)()
        self._pending = b""
        self._position = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        pending = self._pending
        while not self._ended and (size < 0 or len(pending) < size):
            # A character is one byte or more: reading as many characters
            # as bytes are missing is enough, but for the end of the text.
            text = self._stream.read(size - len(pending) if size >= 0 else -1)
            if text:
                pending += self._encoder.encode(text)
            else:
                self._ended = True
                pending += self._encoder.encode("", final=True)
        if 0 <= size < len(pending):
            data, self._pending = pending[:size], pending[size:]
        else:
            data, self._pending = pending, b""
        self._position += len(data)
        return data

    def readinto(self, buffer: t.Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < 0:
            raise io.UnsupportedOperation("only a position from the start")
        if offset < self._position:
            self._stream.seek(0)
            self._restart()
        while self._position < offset:
            if not self.read(min(offset - self._position, DEFAULT_CHUNK_SIZE)):
                break  # the text ends before the position
        return self._position

    def tell(self) -> int:
        return self._position

    def length(self) -> int | None:
        """The length of the whole text in bytes, read through once (the
        text stream is read again from its start afterwards); ``None`` when
        the text stream cannot go back to its start."""
        try:
            if not self._stream.seekable():
                return None
        except (AttributeError, OSError, ValueError):
            return None
        # A character the charset cannot encode raises here, before any
        # header is sent, rather than in the middle of the body.
        while self.read(DEFAULT_CHUNK_SIZE):
            pass
        length = self._position
        self._stream.seek(0)
        self._restart()
        return length

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class _FileSpan:
    """The bytes ``[start, stop)`` of an open file positioned at ``start``,
    for ``wsgi.file_wrapper``.

    Servers read it with ``read()``; closing it (the server closes its
    wrapper, which closes this) closes the file and the response. A span
    closed before its end was sent calls ``on_short`` first, so that the
    server closes the connection instead of keeping a desynchronised one.
    """

    def __init__(
        self,
        handle: t.IO[bytes],
        start: int,
        stop: int,
        on_close: cabc.Callable[[], None],
        on_short: cabc.Callable[[], None],
    ) -> None:
        self._handle = handle
        self._stop = stop
        self._remaining = stop - start
        self._on_close = on_close
        self._on_short = on_short

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        if size < 0 or size > self._remaining:
            size = self._remaining
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data

    def _ended_short(self) -> bool:
        # Read in chunks: the server stopped before the end (the file
        # ended early, or the client hung up and nothing more can be sent).
        return True

    def close(self) -> None:
        try:
            try:
                if self._remaining > 0 and self._ended_short():
                    self._on_short()
            finally:
                self._handle.close()
        finally:
            self._on_close()


class _SendfileSpan(_FileSpan):
    """A :class:`_FileSpan` that offers ``fileno()`` so the server can use
    ``sendfile`` from the current position: for whole files, and for ranges
    on servers that never send more than ``Content-Length``."""

    def fileno(self) -> int:
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        # socket.sendfile() falls back to seek() + read() without os.sendfile.
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def _ended_short(self) -> bool:
        # The server may have sent the span with sendfile, which stops at
        # the end of the file without a word and reads nothing through
        # this object: a file now shorter than the span's end was cut short.
        try:
            return os.fstat(self._handle.fileno()).st_size < self._stop
        except (OSError, ValueError):
            return True


# Servers whose file_wrapper sends from the file's current position and never
# more than Content-Length (gunicorn: ``Response.sendfile`` and ``write``).
_CLAMPING = ("gunicorn/",)
