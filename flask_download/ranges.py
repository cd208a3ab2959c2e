"""Evaluation of HTTP range requests and multipart/byteranges layout.

This module is pure: it takes plain header values and representation
metadata and returns a decision. It never touches Flask's ``request`` or
``current_app``.

Run it after :func:`flask_download.conditional.evaluate_preconditions`
returned ``None``: RFC 9110 §13.2.2 evaluates all other preconditions before
``If-Range`` and ``Range``.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import enum
import itertools
import re
import secrets
import time
import typing as t

from ._grammar import sendable_etag
from .conditional import as_utc
from .conditional import parse_http_date

#: A sorted, coalesced tuple of half-open ``(start, stop)`` byte ranges.
ByteRanges: t.TypeAlias = tuple[tuple[int, int], ...]


class Unsatisfiable(enum.Enum):
    """Type of the :data:`UNSATISFIABLE` sentinel."""

    UNSATISFIABLE = "unsatisfiable"


#: Returned by :func:`evaluate_range` when the response must be
#: 416 Range Not Satisfiable (RFC 9110 §15.5.17).
UNSATISFIABLE: t.Final = Unsatisfiable.UNSATISFIABLE

#: Everything :func:`evaluate_range` can return: ``None`` (send the whole
#: representation), :data:`ByteRanges` (206) or :data:`UNSATISFIABLE` (416).
RangeDecision: t.TypeAlias = ByteRanges | Unsatisfiable | None

# RFC 9110 §14.1.1: int-range = first-pos "-" [ last-pos ], with 1*DIGIT
# positions. Only ASCII digits are accepted, never "+", "_" or Unicode digits.
_INT_RANGE_RE = re.compile(r"([0-9]+)-([0-9]*)")
# RFC 9110 §14.1.1: suffix-range = "-" suffix-length.
_SUFFIX_RANGE_RE = re.compile(r"-([0-9]+)")
# The request of nearly every client (a resumed download, a video seek): one
# int-range, no whitespace, positions short enough to need no clamping.
_ONE_RANGE_RE = re.compile(r"bytes=([0-9]{1,19})-([0-9]{0,19})")

# A position with more significant digits than this is clamped to _HUGE; it
# lies beyond the end of any representation this module can describe.
_MAX_DIGITS: t.Final = 20
_HUGE = 10**_MAX_DIGITS

# RFC 9110 §5.6.3: optional whitespace is spaces and horizontal tabs.
_OWS = " \t"


def _number(digits: str) -> int:
    """Convert a run of ASCII digits to an int without quadratic cost.

    :param digits: A non-empty string of ASCII digits.
    :return: The value, or ``_HUGE`` if it has more than ``_MAX_DIGITS``
        significant digits.
    """
    significant = digits.lstrip("0")

    if len(significant) > _MAX_DIGITS:
        return _HUGE

    return int(significant or "0")


def _less_than(a: str, b: str) -> bool:
    """Compare two runs of ASCII digits numerically in linear time.

    :param a: A non-empty string of ASCII digits.
    :param b: A non-empty string of ASCII digits.
    """
    a = a.lstrip("0")
    b = b.lstrip("0")
    return (len(a), a) < (len(b), b)


def _if_range_matches(
    if_range: str,
    etag: str | None,
    last_modified: datetime.datetime | None,
    now: datetime.datetime | None = None,
) -> bool:
    """Evaluate an ``If-Range`` header.

    RFC 9110 §13.1.5: an entity-tag matches only by strong comparison, so a
    weak tag never matches. An HTTP-date (the strict forms of
    :func:`~flask_download.conditional.parse_http_date`) matches only if it
    is exactly the representation's modification time (at one-second
    resolution) *and* that time is a strong validator: RFC 9110 §8.8.2.2
    makes ``Last-Modified`` strong only when the representation cannot have
    changed twice within the second it names, so the modification must be
    at least one second before ``now``. A file written and rewritten within
    the current second has one ``Last-Modified`` for two contents; a range
    of the new one must not be spliced onto a copy of the old. Anything
    unparseable does not match.

    :param if_range: The raw ``If-Range`` value.
    :param etag: The representation's bare strong entity-tag, or ``None``.
    :param last_modified: The representation's modification time, or ``None``.
    :param now: The time the response is made (default: the current time).
    """
    value = if_range.strip(_OWS)

    if value.startswith(('"', "W/")):
        # RFC 9110 §8.8.3.2: strong comparison; a weak validator never matches.
        return etag is not None and value == f'"{etag}"'

    date = parse_http_date(value)

    if date is None or last_modified is None:
        return False

    modified = as_utc(last_modified).timestamp()

    if int(modified) != int(date.timestamp()):
        return False

    # RFC 9110 §13.1.5 step 1: a date that is not a strong validator
    # (§8.8.2.2: modified less than a second ago) makes the condition false.
    current = time.time() if now is None else now.timestamp()
    return current - modified >= 1


def evaluate_range(
    *,
    range_header: str | None,
    if_range: str | None,
    size: int | None,
    etag: str | None,
    last_modified: datetime.datetime | None,
    max_ranges: int,
    method: str = "GET",
    now: datetime.datetime | None = None,
) -> RangeDecision:
    """Decide how to answer a ``Range`` request (RFC 9110 §14).

    Only call this after the other preconditions passed. The header is
    ignored (``None``, a full 200 response) when it is absent, when the
    method is not ``GET`` (``HEAD`` included), when ``size``
    is unknown, when ``If-Range`` does not match, when the unit is not
    ``bytes``, when it is malformed (including ``last < first``), when it has
    more than ``max_ranges`` non-empty range-specs, when the satisfiable
    ranges add up to more bytes than the representation has, or when the
    representation is empty and a suffix-range asks for its end (``bytes=-5``
    is satisfiable, RFC 9110 §14.1.1, but no ``Content-Range`` can describe
    zero bytes).

    The ``max_ranges`` check runs before any range-spec is parsed: the count
    is the number of comma-separated list elements that are not empty or
    whitespace-only (RFC 9110 §5.6.1.2 lets recipients skip empty elements,
    so they do not count). A ``max_ranges`` below 1 disables range requests.

    :param range_header: The raw ``Range`` value, ``None`` when absent.
    :param if_range: The raw ``If-Range`` value, ``None`` when absent.
    :param size: The representation's length in bytes, or ``None`` if ranges
        are not supported for it.
    :param etag: The representation's bare strong entity-tag, or ``None``
        (one that cannot be sent counts as ``None``).
    :param last_modified: The representation's modification time as an aware
        UTC datetime (a naive one is taken as UTC), or ``None``.
    :param max_ranges: The largest number of range-specs to honour.
    :param method: The request method; only ``GET`` has range handling.
    :param now: The time the response is made, which tells whether an
        ``If-Range`` date is a strong validator (default: the current time).
    :return: ``None`` to send the whole representation (200); a non-empty
        tuple of sorted, coalesced, half-open ``(start, stop)`` ranges to send
        206 (one range) or multipart/byteranges (several); or
        :data:`UNSATISFIABLE` to send 416.
    """
    # RFC 9110 §14.2: a server MUST ignore Range on any method but GET, so a
    # HEAD mirrors the full 200 a GET without Range would get.
    if range_header is None or size is None or size < 0 or method != "GET":
        return None

    # RFC 9110 §13.1.5: a non-matching If-Range means the Range header is
    # ignored and the whole representation is sent.
    if if_range is not None and not _if_range_matches(
        if_range, sendable_etag(etag), last_modified, now
    ):
        return None

    if max_ranges >= 1 and (one := _ONE_RANGE_RE.fullmatch(range_header)):
        # The general parse below, for one int-range, decided at once.
        first_digits, last_digits = one.groups()
        first = int(first_digits)
        if last_digits and int(last_digits) < first:
            return None  # invalid: the header is ignored
        if first >= size:
            return UNSATISFIABLE
        stop = min(int(last_digits) + 1, size) if last_digits else size
        return ((first, stop),)

    # RFC 9110 §14.2: ranges-specifier = range-unit "=" range-set.
    unit, equals, range_set = range_header.strip(_OWS).partition("=")

    # RFC 9110 §14.2: a server MUST ignore a Range header with an unknown unit;
    # range units are compared case-insensitively (RFC 9110 §14.1).
    if not equals or unit.lower() != "bytes":
        return None

    # Cheap refusal before parsing any element: a comma count is an upper bound
    # on the number of elements; only when it is exceeded are the non-empty
    # elements counted (RFC 9110 §5.6.1.2: empty elements do not count).
    if max_ranges < 1:
        return None

    elements = range_set.split(",")

    if len(elements) > max_ranges:
        non_empty = 0

        for element in elements:
            if element.strip(_OWS):
                non_empty += 1

                if non_empty > max_ranges:
                    return None

    specs: list[tuple[int, int] | None] = []

    for element in elements:
        spec = element.strip(_OWS)

        # RFC 9110 §5.6.1.2: empty list elements are skipped.
        if not spec:
            continue

        if (match := _INT_RANGE_RE.fullmatch(spec)) is not None:
            first_digits, last_digits = match.groups()

            # RFC 9110 §14.1.1: an int-range with last < first is invalid,
            # which makes the whole ranges-specifier invalid.
            if last_digits and _less_than(last_digits, first_digits):
                return None

            first = _number(first_digits)

            # RFC 9110 §14.1.1: satisfiable if first < size; last is clamped
            # to size - 1.
            if first >= size:
                specs.append(None)
                continue

            stop = min(_number(last_digits) + 1, size) if last_digits else size
            specs.append((first, stop))
        elif (match := _SUFFIX_RANGE_RE.fullmatch(spec)) is not None:
            length = _number(match.group(1))

            # RFC 9110 §14.1.1: a suffix-range is satisfiable if its length is
            # non-zero; it covers the last min(length, size) bytes.
            if length == 0:
                specs.append(None)
                continue

            # RFC 9110 §14.1.1: "When a selected representation has zero
            # length, the only satisfiable form of range-spec is a
            # suffix-range with a non-zero suffix-length": it is the whole
            # (empty) representation, which no Content-Range can describe, so
            # it is sent whole (200, as RFC 9110 §14.2 allows), never 416.
            # The rest of the header cannot change that: a later invalid
            # spec would make it ignored, also a 200.
            if size == 0:
                return None

            specs.append((size - min(length, size), size))
        else:
            # RFC 9110 §14.2: an invalid Range header field is ignored.
            return None

    # RFC 9110 §14.1.1: range-set = 1#range-spec; at least one is required.
    if not specs:
        return None

    satisfiable = [spec for spec in specs if spec is not None]

    # RFC 9110 §15.5.17: 416 when none of the ranges is satisfiable.
    if not satisfiable:
        return UNSATISFIABLE

    # RFC 9110 §14.2 lets a server ignore a Range header: if the ranges (before
    # coalescing) add up to more than the representation, overlapping-range
    # abuse could make the response much larger than the file; send it whole.
    if sum(stop - start for start, stop in satisfiable) > size:
        return None

    return _coalesce(satisfiable)


def forwardable_range(range_header: str, max_ranges: int) -> bool:
    """Whether a proxy may pass ``range_header`` on as it is, without the
    representation's size (which only the upstream knows).

    It may when :func:`evaluate_range` could only answer it with those very
    ranges: ``bytes``, well formed, at most ``max_ranges`` range-specs, and,
    for several, byte positions that neither overlap nor touch (so they can
    never add up to more than the file). A header that is not is answered
    with the whole representation (200), as :func:`evaluate_range` answers
    malformed, too many, or overlapping ranges that may add up to more than
    the file; a suffix among several ranges may overlap the others, which
    only the size tells.
    """
    unit, equals, range_set = range_header.strip(_OWS).partition("=")
    if not equals or unit.lower() != "bytes" or max_ranges < 1:
        return False
    specs = [spec for element in range_set.split(",") if (spec := element.strip(_OWS))]
    if not specs or len(specs) > max_ranges:
        return False
    spans: list[tuple[int, int | None]] = []
    for spec in specs:
        if (match := _INT_RANGE_RE.fullmatch(spec)) is not None:
            first_digits, last_digits = match.groups()
            if last_digits and _less_than(last_digits, first_digits):
                return False  # invalid: evaluate_range ignores the header
            last = _number(last_digits) + 1 if last_digits else None
            spans.append((_number(first_digits), last))
        elif _SUFFIX_RANGE_RE.fullmatch(spec) is None:
            return False  # malformed
        elif len(specs) > 1:
            return False  # a suffix among others: overlap depends on the size
    spans.sort(key=lambda span: span[0])
    for (_, stop), (start, _) in itertools.pairwise(spans):
        if stop is None or start <= stop:
            return False  # overlapping or touching: may add up past the file
    return True


def _coalesce(ranges: cabc.Iterable[tuple[int, int]]) -> ByteRanges:
    """Sort half-open ranges and merge overlapping and adjacent ones.

    RFC 9110 §14.2: a server MAY coalesce ranges that overlap or are separated
    by a small gap; here only overlapping and touching ranges are merged.

    :param ranges: Half-open ``(start, stop)`` ranges with ``start < stop``.
    """
    merged: list[tuple[int, int]] = []

    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            if stop > merged[-1][1]:
                merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))

    return tuple(merged)


def content_range(start: int, stop: int, size: int) -> str:
    """Format a ``Content-Range`` value for a satisfied range.

    RFC 9110 §14.4: ``bytes first-last/complete-length`` with an inclusive
    last position.

    :param start: The first byte position.
    :param stop: One past the last byte position (half-open).
    :param size: The complete length of the representation.
    """
    return f"bytes {start}-{stop - 1}/{size}"


def unsatisfied_content_range(size: int) -> str:
    """Format the ``Content-Range`` value sent with a 416 response.

    RFC 9110 §14.4: ``bytes */complete-length``.

    :param size: The complete length of the representation.
    """
    return f"bytes */{size}"


def make_boundary() -> str:
    """Return a random multipart boundary.

    RFC 2046 §5.1.1: the boundary must not occur in the enclosed data; 32
    random hex digits make that practically certain.
    """
    return secrets.token_hex(16)


def multipart_layout(
    ranges: cabc.Sequence[tuple[int, int]],
    size: int,
    content_type: str,
    boundary: str,
) -> tuple[list[tuple[bytes, int, int]], bytes, int]:
    """Lay out a multipart/byteranges body (RFC 9110 §14.6).

    The body is, for each part, the part's header bytes followed by the file
    bytes ``[start, stop)``, and then the closing bytes. Every part header,
    the first one included, starts with CRLF (the first CRLF forms an empty
    preamble, RFC 2046 §5.1.1)::

        b"\\r\\n--BOUNDARY\\r\\nContent-Type: <ct>\\r\\n"
        b"Content-Range: bytes a-b/size\\r\\n\\r\\n"

    and the closing bytes are ``b"\\r\\n--BOUNDARY--\\r\\n"``. The response's
    ``Content-Type`` is ``multipart/byteranges; boundary=BOUNDARY``.

    :param ranges: Half-open ``(start, stop)`` ranges within ``[0, size]``,
        as returned by :func:`evaluate_range`.
    :param size: The complete length of the representation.
    :param content_type: The representation's media type, used in every part.
    :param boundary: The boundary, e.g. from :func:`make_boundary`.
    :return: The parts as ``(part header bytes, start, stop)``, the closing
        bytes, and the exact total length of the body.
    :raises ValueError: If a range is empty or out of bounds, or if
        ``content_type`` or ``boundary`` contains CR or LF.
    """
    if any(c in content_type or c in boundary for c in "\r\n"):
        raise ValueError("content_type and boundary must not contain CR or LF.")

    delimiter = f"\r\n--{boundary}\r\n".encode("latin-1")
    type_line = f"Content-Type: {content_type}\r\n".encode("latin-1")
    parts: list[tuple[bytes, int, int]] = []
    total = 0

    for start, stop in ranges:
        if not 0 <= start < stop <= size:
            raise ValueError(f"Invalid range ({start}, {stop}) for size {size}.")

        header = b"".join(
            (
                delimiter,
                type_line,
                f"Content-Range: {content_range(start, stop, size)}\r\n\r\n".encode(
                    "latin-1"
                ),
            )
        )
        parts.append((header, start, stop))
        total += len(header) + stop - start

    closing = f"\r\n--{boundary}--\r\n".encode("latin-1")
    total += len(closing)
    return parts, closing, total
