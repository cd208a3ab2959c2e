"""How a file is described: ``Content-Type``, ``Content-Encoding``, validators."""

from __future__ import annotations

import codecs
import datetime
import functools
import mimetypes

from werkzeug.datastructures import Headers
from werkzeug.http import http_date as _werkzeug_http_date

from .._grammar import sendable_etag
from .._grammar import valid_token
from ..files import DownloadFile
from ._disposition import content_disposition
from ._media import _normalise_media_type
from ._media import _with_charset
from ._media import codec_charset
from ._media import media_type_charset
from ._media import valid_media_type

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


@functools.lru_cache(maxsize=1024)
def http_date(value: datetime.datetime) -> str:
    """Format an HTTP-date (cached: a file's mtime is formatted per request)."""
    return _werkzeug_http_date(value)


@functools.lru_cache(maxsize=512)
def guess_type(name: str) -> tuple[str | None, str | None]:
    """Guess ``(media type, content encoding)`` from a file name (cached)."""
    return mimetypes.guess_type(name, strict=False)


#: The compressed formats' own media types, also under the older names.
_COMPRESSED_TYPES = frozenset(
    (*_ENCODING_TYPES.values(), "application/x-gzip", "application/x-zstd")
)


def _is_compressed_type(mimetype: str | None) -> bool:
    if mimetype is None:
        return False
    return mimetype.partition(";")[0].strip().lower() in _COMPRESSED_TYPES


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
        elif not _is_compressed_type(mimetype):
            # An explicit application/gzip says the bytes are the gzip file
            # itself: never also a coding the client would undo.
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
