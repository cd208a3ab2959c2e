"""Hostile Range headers, sent raw: never a 5xx, never more than the file.

``ranges.bin`` holds :data:`RANGES_SIZE` bytes. Whatever the header, the body
is at most the file plus a bounded overhead per multipart part; floods of
ranges are refused structurally (the whole file, 200), before any parsing
cost grows with them.
"""

from __future__ import annotations

import re

import pytest

from .conftest import LiveServer
from .conftest import ranges_content
from .conftest import RANGES_SIZE
from .conftest import RawResponse

TARGET = "/files/ranges.bin"
#: ``DOWNLOAD_MAX_RANGES`` default: more ranges get the whole file.
MAX_RANGES = 50
#: Bytes a multipart part may add around its slice (delimiter, Content-Type,
#: Content-Range: about 130 in practice).
PART_OVERHEAD = 256


def _get(live: LiveServer, *range_values: str, method: str = "GET") -> RawResponse:
    """One request; several values become several ``Range`` lines (the
    server joins them with commas, as RFC 9110 §5.3 lets it)."""
    response = live.request(
        TARGET, [("Range", value) for value in range_values], method=method
    )
    check_size_bound(response)
    return response


def check_size_bound(response: RawResponse) -> None:
    """The body is never much larger than the file."""
    parts = max(1, response.body.count(b"Content-Range: bytes "))
    assert parts <= MAX_RANGES
    assert len(response.body) <= RANGES_SIZE + parts * PART_OVERHEAD


def assert_whole_file(response: RawResponse) -> None:
    assert response.status == 200, response
    assert response.header("Content-Range") is None
    assert response.header("Content-Length") == str(RANGES_SIZE)
    assert response.body == ranges_content()


def _multipart_slices(response: RawResponse) -> list[tuple[int, int, bytes]]:
    content_type = response.header("Content-Type") or ""
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", content_type)
    assert match is not None, content_type
    boundary = match.group(1).encode()
    slices = []
    for part in response.body.split(b"\r\n--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        found = re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", head)
        assert found is not None, head
        first, last, total = (int(x) for x in found.groups())
        assert total == RANGES_SIZE
        slices.append((first, last + 1, data))
    return slices


# -- floods --------------------------------------------------------------------


def _distinct(count: int) -> list[str]:
    return [f"{i}-{i}" for i in range(count)]


def _lines(specs: list[str], per_line: int = 5000) -> list[str]:
    """``bytes=`` specs split over several header lines of < 64 KiB each."""
    chunks = [",".join(specs[i : i + per_line]) for i in range(0, len(specs), per_line)]
    return ["bytes=" + chunks[0], *chunks[1:]]


@pytest.mark.parametrize(
    "values",
    [
        ["bytes=" + ",".join(["0-0"] * 10_000)],
        ["bytes=" + ",".join(["-1"] * 10_000)],
        _lines(_distinct(10_000)),
        _lines([f"{i}-{i}" for i in range(RANGES_SIZE - 1, RANGES_SIZE - 10_001, -1)]),
        ["bytes=" + ",".join(["0-", "-1"] * 5_000)],
        _lines(_distinct(MAX_RANGES + 1)),
        ["bytes=" + ",".join(_distinct(MAX_RANGES)) + ",,,,,," + "99-99"],
    ],
    ids=[
        "10k-identical",
        "10k-suffixes",
        "10k-distinct",
        "10k-distinct-reversed",
        "10k-whole-file-each",
        "max-plus-one",
        "max-plus-one-with-empty-elements",
    ],
)
def test_range_floods_get_the_whole_file(live: LiveServer, values: list[str]) -> None:
    assert_whole_file(_get(live, *values))


def test_max_ranges_disjoint_ranges_are_served_as_multipart(
    live: LiveServer,
) -> None:
    specs = [f"{i * 100}-{i * 100 + 9}" for i in range(MAX_RANGES)]
    response = _get(live, "bytes=" + ",".join(specs))
    assert response.status == 206
    slices = _multipart_slices(response)
    assert len(slices) == MAX_RANGES
    content = ranges_content()
    for start, stop, data in slices:
        assert data == content[start:stop]


@pytest.mark.parametrize(
    "value",
    [
        "bytes=0-9999,0-9999,0-9999",
        "bytes=0-,0-",
        "bytes=" + ",".join(["0-999"] * 25),
        "bytes=" + ",".join(["-19999"] * 2),
        "bytes=0-19999,1-1",
    ],
    ids=["3-halves", "2-wholes", "25-overlapping", "2-big-suffixes", "whole-plus-one"],
)
def test_ranges_adding_up_to_more_than_the_file_get_it_whole(
    live: LiveServer, value: str
) -> None:
    assert_whole_file(_get(live, value))


# -- malformed and hostile numbers ---------------------------------------------

HUGE = "9" * 1000


@pytest.mark.parametrize(
    "value",
    [
        "bytes=10-5",
        "bytes=0-0,10-5",
        f"bytes={HUGE}-1",
        f"bytes=0000{HUGE[:30]}0-0",
        "bytes=-5-10",
        "bytes=--1",
        "bytes=-1-",
        "bytes=5--10",
        "bytes=-",
        "bytes=a-b",
        "bytes=0x0-0x10",
        "bytes=1e3-2e3",
        "bytes=+1-2",
        "bytes=1_0-2_0",
        "bytes= 1 - 2",
        "bytes=1.5-2",
        "bytes=\uff11-\uff12",
        "bytes=\u0663-\u0664",
        "bytes=0-1;q=1",
        "bytes=0-1\x00",
        "bytes=",
        "bytes=,,,,",
        "bytes",
        "=0-5",
        "items=0-5",
        "bytes 0-5",
        "bytes:0-5",
        "none",
        "",
        "bytes=0-5, bytes=6-10",
        "bytes=" + "0" * 100_00 + "x",
    ],
    ids=[
        "reversed",
        "one-reversed-among-valid",
        "huge-first-small-last",
        "huge-first-zero-last",
        "negative-first",
        "double-minus",
        "suffix-with-trailing-minus",
        "negative-last",
        "minus-only",
        "letters",
        "hex",
        "exponent",
        "plus-sign",
        "underscore",
        "inner-spaces",
        "fraction",
        "fullwidth-digits",
        "arabic-digits",
        "parameter",
        "nul",
        "empty-set",
        "only-commas",
        "no-equals",
        "no-unit",
        "unknown-unit",
        "space-for-equals",
        "colon-for-equals",
        "none",
        "empty",
        "repeated-unit",
        "10k-zeros-then-garbage",
    ],
)
def test_malformed_ranges_are_ignored(live: LiveServer, value: str) -> None:
    assert_whole_file(_get(live, value.encode("utf-8").decode("latin-1")))


@pytest.mark.parametrize(
    ("value", "start", "stop"),
    [
        ("bytes=0-0", 0, 1),
        ("Bytes=0-9", 0, 10),
        ("BYTES=0-9", 0, 10),
        (f"bytes=0-{HUGE}", 0, RANGES_SIZE),
        (f"bytes=-{HUGE}", 0, RANGES_SIZE),
        ("bytes=0-100,50-150", 0, 151),
        ("bytes=0-99,100-199", 0, 200),
        ("bytes=19990-", 19990, RANGES_SIZE),
        ("bytes=-10", RANGES_SIZE - 10, RANGES_SIZE),
        (" \tbytes=5-9\t ", 5, 10),
        ("bytes=" + "0" * 1000 + "5-" + "0" * 1000 + "9", 5, 10),
    ],
    ids=[
        "first-byte",
        "unit-capitalised",
        "unit-upper",
        "huge-last",
        "huge-suffix",
        "overlapping-coalesced",
        "adjacent-coalesced",
        "open-end",
        "suffix",
        "surrounding-whitespace",
        "1000-leading-zeros",
    ],
)
def test_valid_ranges_give_exact_slices(
    live: LiveServer, value: str, start: int, stop: int
) -> None:
    response = _get(live, value)
    assert response.status == 206, response
    assert response.header("Content-Range") == f"bytes {start}-{stop - 1}/{RANGES_SIZE}"
    assert response.body == ranges_content()[start:stop]


@pytest.mark.parametrize(
    "value",
    [
        "bytes=-0",
        f"bytes={RANGES_SIZE}-",
        f"bytes={HUGE}-",
        f"bytes={HUGE}-{HUGE}",
        f"bytes={HUGE[:30]}-{HUGE[:31]}",
        "bytes=-0,-0",
        f"bytes={RANGES_SIZE}-{RANGES_SIZE + 10},-0",
    ],
    ids=[
        "empty-suffix",
        "first-at-size",
        "huge-first",
        "huge-both",
        "huge-first-huger-last",
        "two-empty-suffixes",
        "beyond-and-empty",
    ],
)
def test_unsatisfiable_ranges_are_416(live: LiveServer, value: str) -> None:
    response = _get(live, value)
    assert response.status == 416, response
    assert response.header("Content-Range") == f"bytes */{RANGES_SIZE}"
    assert response.body == b""


def test_reversed_order_set_is_sorted_multipart(live: LiveServer) -> None:
    response = _get(live, "bytes=500-599,0-9,300-309")
    assert response.status == 206
    slices = _multipart_slices(response)
    assert [(a, b) for a, b, _ in slices] == [(0, 10), (300, 310), (500, 600)]
    content = ranges_content()
    assert all(data == content[a:b] for a, b, data in slices)


@pytest.mark.parametrize(
    "if_range",
    ['W/"x"', '"not-the-etag"', "garbage", "Sun, 06 Nov 999999999999 08:49:37 GMT"],
    ids=["weak", "other-etag", "garbage", "absurd-date"],
)
def test_non_matching_if_range_gets_the_whole_file(
    live: LiveServer, if_range: str
) -> None:
    response = live.request(TARGET, [("Range", "bytes=0-9"), ("If-Range", if_range)])
    assert_whole_file(response)


def test_range_on_head_has_no_body(live: LiveServer) -> None:
    response = _get(live, "bytes=0-9,20-29", method="HEAD")
    assert response.status in (200, 206)
    assert response.body == b""
