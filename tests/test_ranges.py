from __future__ import annotations

import datetime
import email
import email.policy
import re

import pytest

from flask_download import ranges as ranges_module
from flask_download.ranges import ByteRanges
from flask_download.ranges import content_range
from flask_download.ranges import evaluate_range
from flask_download.ranges import make_boundary
from flask_download.ranges import multipart_layout
from flask_download.ranges import RangeDecision
from flask_download.ranges import UNSATISFIABLE
from flask_download.ranges import Unsatisfiable
from flask_download.ranges import unsatisfied_content_range

UTC = datetime.timezone.utc
ETAG = "abc123"
LAST_MODIFIED = datetime.datetime(1994, 11, 6, 8, 49, 37, 500_000, tzinfo=UTC)
LM_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
SIZE = 10_000


def evaluate(
    range_header: str | None,
    *,
    if_range: str | None = None,
    size: int | None = SIZE,
    etag: str | None = ETAG,
    last_modified: datetime.datetime | None = LAST_MODIFIED,
    max_ranges: int = 50,
) -> RangeDecision:
    return evaluate_range(
        range_header=range_header,
        if_range=if_range,
        size=size,
        etag=etag,
        last_modified=last_modified,
        max_ranges=max_ranges,
    )


# -- when Range is not used at all -------------------------------------------


def test_no_range_header_returns_none() -> None:
    assert evaluate(None) is None


def test_unknown_size_returns_none() -> None:
    assert evaluate("bytes=0-1", size=None) is None


# -- single ranges (RFC 9110 §14.1.1) ----------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ((0, 1),)),
        ("bytes=0-499", ((0, 500),)),
        ("bytes=500-999", ((500, 1000),)),
        ("bytes=9500-", ((9500, SIZE),)),
        ("bytes=-500", ((9500, SIZE),)),
        ("bytes=-1", ((9999, SIZE),)),
        ("bytes=9999-9999", ((9999, SIZE),)),
        ("bytes=0-99999", ((0, SIZE),)),
        ("bytes=-99999", ((0, SIZE),)),
        ("bytes=0-", ((0, SIZE),)),
        ("BYTES=0-1", ((0, 2),)),
        ("Bytes=0-1", ((0, 2),)),
        ("bytes=0005-0010", ((5, 11),)),
        (" bytes=0-1 ", ((0, 2),)),
        ("bytes= 0-1 ", ((0, 2),)),
        ("bytes=\t0-1\t", ((0, 2),)),
        ("bytes=0-1,", ((0, 2),)),
        ("bytes=, ,\t,0-1, ,", ((0, 2),)),
    ],
    ids=[
        "first-byte",
        "first-500",
        "middle",
        "open-ended",
        "suffix",
        "suffix-1",
        "last-byte",
        "last-clamped",
        "suffix-clamped",
        "whole",
        "unit-upper",
        "unit-mixed",
        "leading-zeros",
        "outer-ows",
        "inner-ows",
        "tab-ows",
        "trailing-empty",
        "empty-elements",
    ],
)
def test_single_range(header: str, expected: ByteRanges) -> None:
    assert evaluate(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=",
        "bytes=,",
        "bytes= , ,",
        "bytes",
        "bytes 0-1",
        "bytes=a-b",
        "bytes=1-0",
        "bytes=0-1,5-4",
        "bytes=+1-2",
        "bytes=1-+2",
        "bytes=1_0-20",
        "bytes=\u0661-\u0662",
        "bytes=1 0-20",
        "bytes=1 -2",
        "bytes=1- 2",
        "bytes=0-1;x",
        "bytes=--1",
        "bytes=-",
        "bytes=-+1",
        "bytes=1-2-3",
        "bytes=0-1, x",
        "bytes=0x1-2",
        "bytes=0-1\r\n",
        "bytes==0-1",
    ],
    ids=[
        "no-ranges",
        "only-comma",
        "only-empty",
        "no-equals",
        "space-not-equals",
        "letters",
        "last-before-first",
        "one-reversed",
        "plus-first",
        "plus-last",
        "underscore",
        "unicode-digits",
        "space-in-number",
        "space-before-dash",
        "space-after-dash",
        "parameter",
        "double-dash",
        "dash-only",
        "suffix-plus",
        "three-parts",
        "one-bad-element",
        "hex",
        "crlf",
        "double-equals",
    ],
)
def test_malformed_range_is_ignored(header: str) -> None:
    assert evaluate(header) is None


@pytest.mark.parametrize(
    "header",
    ["items=0-1", "bytesx=0-1", "none", "=0-1", "bits=0-"],
    ids=["items", "bytesx", "none", "empty-unit", "bits"],
)
def test_unknown_range_unit_is_ignored(header: str) -> None:
    assert evaluate(header) is None


# -- satisfiability (RFC 9110 §14.1.1, §15.5.17) ------------------------------


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=10000-", SIZE),
        ("bytes=10000-20000", SIZE),
        ("bytes=-0", SIZE),
        ("bytes=-000", SIZE),
        ("bytes=10000-,-0,20000-30000", SIZE),
        ("bytes=0-", 0),
        ("bytes=0-0", 0),
    ],
    ids=[
        "first-at-size",
        "beyond-end",
        "suffix-zero",
        "suffix-zeros",
        "all-unsatisfiable",
        "empty-file-open",
        "empty-file-int",
    ],
)
def test_unsatisfiable_range_returns_416(header: str, size: int) -> None:
    assert evaluate(header, size=size) is UNSATISFIABLE


def test_a_suffix_range_of_an_empty_file_is_the_whole_file() -> None:
    # RFC 9110 §14.1.1: a non-zero suffix is the one satisfiable form for a
    # zero-length representation; no Content-Range can describe it, so 200.
    assert evaluate("bytes=-5", size=0) is None


def test_unsatisfiable_specs_are_dropped() -> None:
    assert evaluate("bytes=20000-,0-9,-0") == ((0, 10),)


def test_syntax_error_beats_unsatisfiable() -> None:
    assert evaluate("bytes=20000-,x") is None


def test_unsatisfiable_is_an_enum_member() -> None:
    assert isinstance(UNSATISFIABLE, Unsatisfiable)
    assert UNSATISFIABLE is Unsatisfiable.UNSATISFIABLE


# -- huge numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=" + "9" * 1000 + "-", UNSATISFIABLE),
        ("bytes=0-" + "9" * 1000, ((0, SIZE),)),
        ("bytes=-" + "9" * 1000, ((0, SIZE),)),
        ("bytes=" + "9" * 5000 + "-" + "9" * 5000, UNSATISFIABLE),
        ("bytes=" + "0" * 5000 + "1-2", ((1, 3),)),
        ("bytes=" + "9" * 30 + "-" + "9" * 25, None),
        ("bytes=" + "2" * 25 + "-" + "1" * 25, None),
        ("bytes=" + "1" * 25 + "-" + "2" * 25, UNSATISFIABLE),
    ],
    ids=[
        "huge-first",
        "huge-last",
        "huge-suffix",
        "beyond-int-str-limit",
        "many-leading-zeros",
        "huge-reversed-by-length",
        "huge-reversed-same-length",
        "huge-ordered",
    ],
)
def test_huge_numbers_are_fast_and_do_not_raise(
    header: str, expected: RangeDecision
) -> None:
    assert evaluate(header) == expected


# -- max_ranges ---------------------------------------------------------------


def ranges_header(count: int) -> str:
    return "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(count))


def test_max_ranges_allows_exactly_the_limit() -> None:
    result = evaluate(ranges_header(50), max_ranges=50)
    assert isinstance(result, tuple)
    assert len(result) == 50


def test_more_than_max_ranges_returns_none() -> None:
    assert evaluate(ranges_header(51), max_ranges=50) is None


def test_empty_elements_do_not_count_towards_max_ranges() -> None:
    header = ranges_header(3) + "," * 100 + ", \t" * 100
    assert evaluate(header, max_ranges=3) == ((0, 1), (10, 11), (20, 21))


def test_max_ranges_below_one_disables_ranges() -> None:
    assert evaluate("bytes=0-1", max_ranges=0) is None


def test_ten_thousand_ranges_return_quickly() -> None:
    header = ranges_header(10_000)
    assert evaluate(header, size=1_000_000, max_ranges=50) is None
    assert evaluate("bytes=" + "x," * 100_000, max_ranges=50) is None


def test_many_ranges_below_a_high_limit_are_fast() -> None:
    header = ranges_header(10_000)
    result = evaluate(header, size=1_000_000, max_ranges=20_000)
    assert isinstance(result, tuple)
    assert len(result) == 10_000


# -- abuse cap ----------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["bytes=0-,0-", "bytes=0-9999,0-0", "bytes=-10000,-1", "bytes=0-5000,4999-"],
    ids=["whole-twice", "whole-plus-one", "suffix-twice", "overlap"],
)
def test_ranges_larger_than_the_file_return_none(header: str) -> None:
    assert evaluate(header) is None


def test_ranges_adding_up_to_the_file_are_served() -> None:
    assert evaluate("bytes=0-4999,5000-") == ((0, SIZE),)


# -- coalescing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9,20-29", ((0, 10), (20, 30))),
        ("bytes=20-29,0-9", ((0, 10), (20, 30))),
        ("bytes=0-9,10-19", ((0, 20),)),
        ("bytes=0-9,5-14", ((0, 15),)),
        ("bytes=0-99,10-19", ((0, 100),)),
        ("bytes=-10,0-9", ((0, 10), (9990, SIZE))),
        ("bytes=9990-,-5", ((9990, SIZE),)),
        ("bytes=30-39,0-9,10-19,50-59", ((0, 20), (30, 40), (50, 60))),
    ],
    ids=[
        "disjoint",
        "sorted",
        "adjacent",
        "overlapping",
        "contained",
        "suffix-sorted",
        "suffix-contained",
        "mixed",
    ],
)
def test_ranges_are_sorted_and_coalesced(header: str, expected: ByteRanges) -> None:
    assert evaluate(header) == expected


# -- If-Range (RFC 9110 §13.1.5) ---------------------------------------------


@pytest.mark.parametrize(
    ("if_range", "etag", "last_modified", "matches"),
    [
        ('"abc123"', ETAG, LAST_MODIFIED, True),
        (' "abc123" ', ETAG, LAST_MODIFIED, True),
        ('"other"', ETAG, LAST_MODIFIED, False),
        ('"abc123"', None, LAST_MODIFIED, False),
        ('"abc123", "x"', ETAG, LAST_MODIFIED, False),
        ('"abc123', ETAG, LAST_MODIFIED, False),
        (LM_DATE, ETAG, LAST_MODIFIED, True),
        (LM_DATE, None, LAST_MODIFIED.replace(tzinfo=None), True),
        ("Sun, 06 Nov 1994 08:49:36 GMT", ETAG, LAST_MODIFIED, False),
        ("Sun, 06 Nov 1994 08:49:38 GMT", ETAG, LAST_MODIFIED, False),
        (LM_DATE, ETAG, None, False),
        ("garbage", ETAG, LAST_MODIFIED, False),
        ("Sun, 06 Nov 999999999999 08:49:37 GMT", ETAG, LAST_MODIFIED, False),
        ("abc123", ETAG, LAST_MODIFIED, False),
        ("", ETAG, LAST_MODIFIED, False),
    ],
    ids=[
        "strong-etag",
        "etag-ows",
        "other-etag",
        "no-etag",
        "list",
        "unterminated",
        "same-date",
        "naive-mtime",
        "earlier-date",
        "later-date",
        "no-mtime",
        "garbage",
        "absurd-date",
        "unquoted",
        "empty",
    ],
)
def test_if_range(
    if_range: str,
    etag: str | None,
    last_modified: datetime.datetime | None,
    matches: bool,
) -> None:
    result = evaluate(
        "bytes=0-9", if_range=if_range, etag=etag, last_modified=last_modified
    )
    assert result == (((0, 10),) if matches else None)


@pytest.mark.parametrize(
    ("age", "matches"),
    [(0, False), (0.4, False), (0.6, False), (0.999, False), (1, True), (3600, True)],
    ids=["now", "same-second", "next-second", "almost", "one-second", "an-hour"],
)
def test_if_range_date_matches_only_as_a_strong_validator(
    age: float, matches: bool
) -> None:
    """RFC 9110 §13.1.5 and §8.8.2.2: a Last-Modified less than a second
    old is weak (the file may change again within that second), so an
    If-Range date equal to it does not match."""
    result = evaluate_range(
        range_header="bytes=0-9",
        if_range=LM_DATE,
        size=SIZE,
        etag=ETAG,
        last_modified=LAST_MODIFIED,
        max_ranges=50,
        now=LAST_MODIFIED + datetime.timedelta(seconds=age),
    )
    assert result == (((0, 10),) if matches else None)


def test_if_range_date_of_a_file_modified_now_does_not_match() -> None:
    """Without ``now`` the clock decides: a file modified this very moment
    has no strong date, while its entity tag still matches."""
    modified = datetime.datetime.now(UTC)
    date = modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert evaluate("bytes=0-9", if_range=date, last_modified=modified) is None
    matched = evaluate("bytes=0-9", if_range='"abc123"', last_modified=modified)
    assert matched == ((0, 10),)


@pytest.mark.parametrize(
    "if_range",
    [
        f"{LM_DATE}, {LM_DATE}",
        f"{LM_DATE} garbage",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "06 Nov 1994 08:49:37 GMT",
        "sun, 06 nov 1994 08:49:37 gmt",
    ],
    ids=["list", "trailing-garbage", "offset", "no-weekday", "lower-case"],
)
def test_if_range_date_must_be_an_http_date(if_range: str) -> None:
    """If-Range dates are parsed as strictly as the other preconditions'."""
    assert evaluate("bytes=0-9", if_range=if_range) is None


def test_failing_if_range_beats_unsatisfiable() -> None:
    assert evaluate("bytes=20000-", if_range='"other"') is None
    assert evaluate("bytes=20000-", if_range='"abc123"') is UNSATISFIABLE


# -- Content-Range ------------------------------------------------------------


def test_content_range_uses_inclusive_last_position() -> None:
    assert content_range(0, 1, SIZE) == "bytes 0-0/10000"
    assert content_range(9500, SIZE, SIZE) == "bytes 9500-9999/10000"


def test_unsatisfied_content_range() -> None:
    assert unsatisfied_content_range(SIZE) == "bytes */10000"
    assert unsatisfied_content_range(0) == "bytes */0"


# -- multipart/byteranges (RFC 9110 §14.6) ------------------------------------


def test_make_boundary_is_random_hex() -> None:
    boundaries = {make_boundary() for _ in range(100)}
    assert len(boundaries) == 100
    assert all(re.fullmatch("[0-9a-f]{32}", b) for b in boundaries)


def assemble(
    data: bytes, ranges: ByteRanges, content_type: str, boundary: str
) -> bytes:
    parts, closing, total = multipart_layout(ranges, len(data), content_type, boundary)
    body = b"".join(header + data[start:stop] for header, start, stop in parts)
    body += closing
    assert total == len(body)
    return body


def test_multipart_layout_parses_back_with_email() -> None:
    data = bytes(range(48, 123)) * 10  # printable ASCII, 750 bytes
    ranges = ((0, 10), (100, 150), (740, 750))
    boundary = make_boundary()
    body = assemble(data, ranges, "text/plain", boundary)

    message = email.message_from_bytes(
        b"Content-Type: multipart/byteranges; boundary="
        + boundary.encode()
        + b"\r\n\r\n"
        + body,
        policy=email.policy.HTTP,
    )
    assert message.is_multipart()
    assert message.defects == []
    parts = message.get_payload()
    assert isinstance(parts, list)
    assert len(parts) == len(ranges)

    for part, (start, stop) in zip(parts, ranges, strict=True):
        assert part["Content-Type"] == "text/plain"
        assert part["Content-Range"] == f"bytes {start}-{stop - 1}/{len(data)}"
        assert part.get_payload(decode=True) == data[start:stop]


def test_multipart_layout_exact_bytes_for_binary_data() -> None:
    data = bytes(range(256)) * 4
    body = assemble(data, ((0, 2), (1022, 1024)), "application/octet-stream", "XYZ")
    assert body == (
        b"\r\n--XYZ\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Range: bytes 0-1/1024\r\n"
        b"\r\n"
        b"\x00\x01"
        b"\r\n--XYZ\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Range: bytes 1022-1023/1024\r\n"
        b"\r\n"
        b"\xfe\xff"
        b"\r\n--XYZ--\r\n"
    )


def test_multipart_layout_from_evaluate_range() -> None:
    data = bytes(range(256)) * 40
    ranges = evaluate("bytes=-5,0-4,100-199", size=len(data))
    assert isinstance(ranges, tuple)
    body = assemble(data, ranges, "image/png", "b0undary")
    chunks = body.split(b"\r\n--b0undary")
    assert chunks[0] == b""
    assert chunks[-1] == b"--\r\n"
    for chunk, (start, stop) in zip(chunks[1:-1], ranges, strict=True):
        head, _, payload = chunk.partition(b"\r\n\r\n")
        assert f"Content-Range: bytes {start}-{stop - 1}/{len(data)}".encode() in head
        assert payload == data[start:stop]


@pytest.mark.parametrize(
    ("ranges", "content_type", "boundary"),
    [
        (((0, 0),), "text/plain", "b"),
        (((5, 2),), "text/plain", "b"),
        (((-1, 2),), "text/plain", "b"),
        (((0, 11),), "text/plain", "b"),
        (((0, 1),), "text/plain\r\nX-Evil: 1", "b"),
        (((0, 1),), "text/plain", "b\nX-Evil: 1"),
    ],
    ids=["empty", "reversed", "negative", "past-end", "crlf-type", "lf-boundary"],
)
def test_multipart_layout_rejects_bad_input(
    ranges: ByteRanges, content_type: str, boundary: str
) -> None:
    with pytest.raises(ValueError):
        multipart_layout(ranges, 10, content_type, boundary)


# -- Werkzeug regressions ----------------------------------------------------


def test_suffix_range_zero_is_unsatisfiable() -> None:
    """Werkzeug make_conditional gets this wrong: its parse_range_header
    rejects ``bytes=-0`` as malformed, and the 416 it then sends comes only
    from answering every malformed Range with 416 (RFC 9110 §14.2 says ignore
    it); ``bytes=-0,0-1`` gets 416 there instead of 206. RFC 9110 §14.1.1:
    ``-0`` is a valid but unsatisfiable suffix-range, dropped from the set.
    """
    assert evaluate("bytes=-0") is UNSATISFIABLE
    assert evaluate("bytes=-0,0-1") == ((0, 2),)


def test_weak_etag_in_if_range_never_matches() -> None:
    """Werkzeug make_conditional gets this wrong: it lets a weak ETag in
    If-Range match. RFC 9110 §13.1.5 requires the strong comparison, so the
    whole representation is sent.
    """
    assert evaluate("bytes=0-9", if_range='W/"abc123"') is None


def test_several_ranges_are_served() -> None:
    """Werkzeug make_conditional gets this wrong: it does not serve several
    ranges. RFC 9110 §14.6: they go out as multipart/byteranges.
    """
    assert evaluate("bytes=0-9,100-109") == ((0, 10), (100, 110))


def test_unknown_range_unit_gives_full_response() -> None:
    """Werkzeug make_conditional gets this wrong: an unknown range unit is not
    simply ignored there. RFC 9110 §14.2: ignore it and send the whole file.
    """
    assert evaluate("pages=1-2") is None


def test_too_many_ranges_are_refused_before_any_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flood of range-specs costs one split, never a parse per element."""

    def fail(digits: str) -> int:
        raise AssertionError("a range-spec was parsed")

    monkeypatch.setattr(ranges_module, "_number", fail)
    header = "bytes=" + ",".join(f"{i}-{i}" for i in range(10_000))
    assert evaluate(header) is None


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "OPTIONS"])
def test_range_is_ignored_on_methods_other_than_get(method: str) -> None:
    """Issue 13: RFC 9110 §14.2, a server MUST ignore Range on other methods."""
    args = {
        "range_header": "bytes=2-4",
        "if_range": None,
        "size": 10,
        "etag": "e",
        "last_modified": None,
        "max_ranges": 5,
    }
    assert evaluate_range(**args, method="GET") == ((2, 5),)
    assert evaluate_range(**args, method=method) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-0",
        "bytes=0-",
        "bytes=5-9",
        "bytes=5-4",
        "bytes=9-",
        "bytes=10-",
        "bytes=10-20",
        "bytes=0009-00010",
        "bytes=0-9999999999999999999",
        "bytes=9999999999999999999-",
        "bytes=1-2,4-5",
        "Bytes=1-2",
        "bytes= 1-2",
        "bytes=-3",
    ],
)
@pytest.mark.parametrize("size", [0, 1, 10])
@pytest.mark.parametrize("max_ranges", [0, 1, 50])
def test_one_range_shortcut_agrees_with_the_parser(
    monkeypatch: pytest.MonkeyPatch, header: str, size: int, max_ranges: int
) -> None:
    """Issue 16: ``bytes=first-last`` is decided without the general parse,
    with the same answer."""

    def decide() -> object:
        return evaluate_range(
            range_header=header,
            if_range=None,
            size=size,
            etag=None,
            last_modified=None,
            max_ranges=max_ranges,
        )

    fast = decide()
    monkeypatch.setattr(ranges_module, "_ONE_RANGE_RE", re.compile("(?!)"))
    assert fast == decide()
