"""The upstream's answer checked: its framing, its range, the headers relayed."""

from __future__ import annotations

import re
import typing as t

from werkzeug.datastructures import Headers

from .._grammar import ETAGC
from .._grammar import TOKEN
from ..conditional import parse_http_date
from ._base import _fail

# RFC 9110 §8.6: Content-Length = 1*DIGIT; at most 19 digits keeps it in a
# signed 64-bit integer (and int() away from 5,000-digit strings).
_LENGTH = re.compile(r"[0-9]{1,19}")
# RFC 9110 §14.4: "bytes first-last/complete" or "bytes */complete" (416).
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/([0-9]{1,19})")
# RFC 9110 §8.4: Content-Encoding = #content-coding (a list of tokens).
_ENCODING_LIST = re.compile(rf"{TOKEN}(?:[ \t]*,[ \t]*{TOKEN})*")


def _check_framing(
    url: str,
    status: int,
    upstream: t.Any,
    relayed: Headers,
    asked_range: bool,
) -> None:
    """Refuse an answer whose framing or range cannot be relayed faithfully.

    The body is relayed as urllib3 reads it (de-chunked only when the one
    ``Transfer-Encoding`` is ``chunked``), so the client's framing must
    come from one valid ``Content-Length`` or from none:
    ``Transfer-Encoding`` with ``Content-Length`` is a smuggling attempt
    (RFC 9112 §6.3), and two lengths or a malformed one cannot be trusted.

    :raises UpstreamError: answered 502.
    """
    lengths = relayed.getlist("Content-Length")
    if "Transfer-Encoding" in upstream:
        codings = upstream.getlist("Transfer-Encoding")
        # http.client de-chunks a body whose first Transfer-Encoding is
        # exactly "chunked" and reads any other until the connection closes:
        # "gzip, chunked" would be relayed with its chunk framing and coding
        # as if they were the file's bytes.
        if len(codings) != 1 or codings[0].lower() != "chunked":
            shown = [coding[:64] for coding in codings[:4]]
            raise _fail(f"{url!r} sent the Transfer-Encoding {shown!r}.")
        if lengths:
            raise _fail(f"{url!r} sent both Transfer-Encoding and Content-Length.")
    elif len(lengths) > 1 or (lengths and not _LENGTH.fullmatch(lengths[0])):
        shown = [length[:64] for length in lengths[:4]]
        raise _fail(f"{url!r} sent an invalid Content-Length {shown!r}.")
    ranges = relayed.getlist("Content-Range")
    if (status == 206 or ranges) and not asked_range:
        # Nobody asked for part of the file: a 206 here would be taken for
        # the whole file (and skip the view's checks on the type).
        raise _fail(f"{url!r} answered a range that was not asked for.")
    if len(ranges) > 1:
        raise _fail(f"{url!r} sent {len(ranges)} Content-Range headers.")
    if ranges:
        value = ranges[0]
        match = None
        if status == 416:
            valid = _UNSATISFIED_RANGE.fullmatch(value) is not None
        else:
            match = _CONTENT_RANGE.fullmatch(value) if status == 206 else None
            valid = match is not None and _range_is_sane(*match.groups())
        if not valid:
            raise _fail(f"{url!r} sent an invalid Content-Range {value[:64]!r}.")
        # RFC 9110 §14.4: the body of a single part is the range; a length
        # that says otherwise leaves its bytes unknown.
        if (
            match is not None
            and lengths
            and int(lengths[0]) != int(match[2]) - int(match[1]) + 1
        ):
            raise _fail(
                f"{url!r} sent a Content-Length {lengths[0]!r} that is not"
                f" the length of its Content-Range {value[:64]!r}."
            )
    elif status == 206:
        content_type = relayed.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/byteranges"):
            raise _fail(f"{url!r} answered 206 without a Content-Range.")
    encodings = relayed.getlist("Content-Encoding")
    if encodings and not all(_ENCODING_LIST.fullmatch(e) for e in encodings):
        shown = [encoding[:64] for encoding in encodings[:4]]
        raise _fail(f"{url!r} sent an invalid Content-Encoding {shown!r}.")


def _range_is_sane(first: str, last: str, complete: str) -> bool:
    if int(first) > int(last):
        return False
    return complete == "*" or int(last) < int(complete)


def _content_size(status: int, headers: Headers) -> int | None:
    # The headers passed _check_framing: lengths are ASCII digits.
    if status == 206:
        # RFC 9110 §14.4: "bytes first-last/complete-length".
        complete = headers.get("Content-Range", "").rpartition("/")[2]
        return int(complete) if complete.isdigit() else None
    length = headers.get("Content-Length")
    return int(length) if length is not None else None


# RFC 9110 §8.8.3 entity-tag; §14.3 Accept-Ranges and §12.5.5 Vary, lists
# of tokens (or "*").
_ENTITY_TAG = re.compile(f'(?:W/)?"{ETAGC}*"')
_TOKEN_LIST = re.compile(f"{TOKEN}(?:[ \t]*,[ \t]*{TOKEN})*|\\*")
# What no header value may hold (RFC 9110 §5.5): controls but HTAB, DEL.
_FIELD_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


# Validators a response has at most one of.
_SINGLE_VALIDATORS = ("ETag", "Last-Modified")
# Headers that say what the body's bytes are: refused (502) when malformed,
# where other headers are only left out.
_FRAMING = frozenset(("Content-Length", "Content-Range", "Content-Encoding"))


def _relayable(header: str, value: str) -> bool:
    """Whether an upstream header value may be relayed: well formed, and
    nothing a server would refuse (gunicorn answers 500 to a NUL)."""
    value = value.strip(" \t")
    if _FIELD_CONTROLS.search(value):
        return False
    if header == "ETag":
        return _ENTITY_TAG.fullmatch(value) is not None
    if header == "Last-Modified":
        return parse_http_date(value) is not None
    if header in ("Accept-Ranges", "Vary", "Content-Encoding"):
        return _TOKEN_LIST.fullmatch(value) is not None
    return True


def _vary(upstream: Headers) -> str:
    # RFC 9110 §12.5.5: Accept-Encoding goes upstream, so the answer varies
    # with it whatever the upstream says (a gzip body must not be cached for
    # a client that cannot read it).
    values = [v.strip() for value in upstream.getlist("Vary") for v in value.split(",")]
    values = [v for v in values if v]
    if "*" in values:
        return "*"
    if not any(v.lower() == "accept-encoding" for v in values):
        values.append("Accept-Encoding")
    return ", ".join(values)
