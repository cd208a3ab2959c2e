"""Hostile conditional headers, sent raw: absurd dates, huge lists, bad ETags.

Unparseable or absurd dates are ignored (RFC 9110 §13.1.3, §13.1.4), never a
500 (year 999999999999 overflows ``datetime``; Flask's ``send_from_directory``
answers it with a 500). Huge ``If-None-Match`` lists either reach the view
(and are answered) or are refused by the server with a 4xx. Malformed
entity-tags never match.
"""

from __future__ import annotations

import pytest

from .conftest import LiveServer
from .conftest import RawResponse

TARGET = "/files/hello.txt"
CONTENT = b"Hello, world!\n"

ABSURD_DATES = {
    "year-999999999999": "Sun, 06 Nov 999999999999 08:49:37 GMT",
    "trailing-nul": "Sun, 06 Nov 1994 08:49:37 GMT\x00",
    "embedded-nul": "Sun, 06 Nov\x00 1994 08:49:37 GMT",
    "garbage": "garbage",
    "empty": "",
    "spaces": "   ",
    "zero": "0",
    "negative": "-1",
    "epoch-seconds": "784111777",
    "year-zero": "Sat, 01 Jan 0000 00:00:00 GMT",
    "day-32-hour-25": "Mon, 32 Jan 2020 25:61:61 GMT",
    "month-13": "Mon, 01 Abc 2020 00:00:00 GMT",
    "huge-offset": "Sun, 06 Nov 1994 08:49:37 +9999",
    "huge-negative-offset": "Sun, 06 Nov 1994 08:49:37 -9999",
    "1000-digit-year": "Sun, 06 Nov " + "9" * 1000 + " 08:49:37 GMT",
    "10k-chars": "Sun, " + "a" * 10_000,
    "latin1-bytes": "\xff\xfe\xfd",
    "two-dates": "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
    "asctime-huge-year": "Sun Nov  6 08:49:37 999999999999",
    "rfc850-garbage": "Sunday, 99-Xyz-99 99:99:99 GMT",
}

#: Values in which ``werkzeug.http.parse_date`` finds a valid date anyway.
LENIENT = frozenset(
    ABSURD_DATES[key] for key in ("trailing-nul", "year-zero", "two-dates")
)


def _assert_full(response: RawResponse) -> None:
    assert response.status == 200, response
    assert response.body == CONTENT


@pytest.fixture(scope="module")
def etag(live: LiveServer) -> str:
    """The bare entity-tag of ``hello.txt``."""
    value = live.request(TARGET, method="HEAD").header("ETag")
    assert value is not None and value.startswith('"') and value.endswith('"')
    return value[1:-1]


@pytest.mark.parametrize("value", ABSURD_DATES.values(), ids=ABSURD_DATES.keys())
@pytest.mark.parametrize(
    "header",
    ["If-Modified-Since", "If-Unmodified-Since"],
    ids=["modified-since", "unmodified-since"],
)
def test_absurd_dates_are_ignored(live: LiveServer, header: str, value: str) -> None:
    response = live.request(TARGET, [(header, value.encode("latin-1"))])
    if header == "If-Unmodified-Since" and value in LENIENT:
        # Werkzeug's parser reads a valid 1994/2000 date in these: 412 is
        # the right answer for that date (and no less safe).
        assert response.status in (200, 412), response
        return
    _assert_full(response)


@pytest.mark.parametrize("value", ABSURD_DATES.values(), ids=ABSURD_DATES.keys())
def test_absurd_if_range_dates_send_the_whole_file(
    live: LiveServer, value: str
) -> None:
    response = live.request(
        TARGET, [("Range", "bytes=0-1"), ("If-Range", value.encode("latin-1"))]
    )
    _assert_full(response)


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 GMT", 304),
        ("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT", 200),
        ("If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT", 200),
        ("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT", 412),
        ("If-Unmodified-Since", "Sun Nov  6 08:49:37 1994", 412),
        ("If-Unmodified-Since", "Fri, 31 Dec 9999 23:59:59 GMT", 200),
    ],
    ids=[
        "ims-year-9999",
        "ims-epoch",
        "ims-rfc850",
        "ius-1994",
        "ius-asctime",
        "ius-year-9999",
    ],
)
def test_extreme_but_valid_dates_are_compared(
    live: LiveServer, header: str, value: str, status: int
) -> None:
    """The controls: the dates above are ignored, not the headers."""
    response = live.request(TARGET, [(header, value)])
    assert response.status == status
    if status != 200:
        assert response.body == b""


# -- huge lists ----------------------------------------------------------------

ENTRIES = 100_000


def _entries(count: int) -> list[str]:
    return [f'"{i:06x}"' for i in range(count)]


def _split(entries: list[str], per_line: int = 6_000) -> list[str]:
    return [
        ",".join(entries[i : i + per_line]) for i in range(0, len(entries), per_line)
    ]


def test_100k_if_none_match_on_one_line_is_a_4xx_from_the_server(
    live: LiveServer,
) -> None:
    """900 KB in one header line: the server refuses it (431), no 5xx."""
    response = live.request(TARGET, [("If-None-Match", ",".join(_entries(ENTRIES)))])
    assert 400 <= response.status < 500, response


@pytest.mark.parametrize(
    ("extra", "status"),
    [(None, 200), ("match-last", 304), ("weak-match-last", 304)],
    ids=["no-match", "match-last", "weak-match-last"],
)
def test_100k_if_none_match_over_several_lines_reaches_the_view(
    live: LiveServer, etag: str, extra: str | None, status: int
) -> None:
    """The server joins the lines: the view parses 100,000 entity-tags."""
    entries = _entries(ENTRIES)
    if extra == "match-last":
        entries.append(f'"{etag}"')
    elif extra == "weak-match-last":
        entries.append(f'W/"{etag}"')
    lines = _split(entries)
    assert len(lines) < 100  # http.server's limit on header lines
    response = live.request(TARGET, [("If-None-Match", line) for line in lines])
    assert response.status == status, response
    if status == 304:
        assert response.body == b""
        assert response.header("ETag") == f'"{etag}"'


def test_100k_if_match_over_several_lines_fails_the_precondition(
    live: LiveServer,
) -> None:
    lines = _split(_entries(ENTRIES))
    response = live.request(TARGET, [("If-Match", line) for line in lines])
    assert response.status == 412
    assert response.body == b""


# -- malformed entity-tags -----------------------------------------------------

#: If-None-Match values, ``{e}`` the bare entity-tag -> status.
IF_NONE_MATCH = {
    "unquoted": ("{e}", 200),
    "unbalanced-open": ('"{e}', 200),
    "unbalanced-close": ('{e}"', 200),
    "weak-unquoted": ("W/{e}", 200),
    "weak-unbalanced": ('W/"{e}', 200),
    "lowercase-weak-unquoted": ("w/{e}", 200),
    "trailing-garbage": ('"{e}"x', 200),
    "leading-garbage": ('x"{e}"', 200),
    "nested-quotes": ('""{e}""', 200),
    "escaped-quote": ('"\\"{e}\\""', 200),
    "empty-tag": ('""', 200),
    "lone-quote": ('"', 200),
    "weak-alone": ("W/", 200),
    "commas": (",,,,", 200),
    "nul-inside": ('"{e}\x00"', 200),
    "star-in-list": ('"a", *', 200),
    # the controls
    "quoted": ('"{e}"', 304),
    "weak-quoted": ('W/"{e}"', 304),
    "star": ("*", 304),
    "in-list-with-garbage": ('garbage, "{e}"', 304),
}
#: If-Match values -> status (strong comparison only).
IF_MATCH = {
    "unquoted": ("{e}", 412),
    "unbalanced": ('"{e}', 412),
    "weak-quoted": ('W/"{e}"', 412),
    "weak-unquoted": ("W/{e}", 412),
    "garbage": ("garbage", 412),
    "empty-tag": ('""', 412),
    "nul-inside": ('"{e}\x00"', 412),
    "quoted": ('"{e}"', 200),
    "star": ("*", 200),
}


@pytest.mark.parametrize(
    ("value", "status"), IF_NONE_MATCH.values(), ids=IF_NONE_MATCH.keys()
)
def test_malformed_if_none_match(
    live: LiveServer, etag: str, value: str, status: int
) -> None:
    response = live.request(TARGET, [("If-None-Match", value.format(e=etag))])
    assert response.status == status, response
    if status == 200:
        assert response.body == CONTENT


@pytest.mark.parametrize(("value", "status"), IF_MATCH.values(), ids=IF_MATCH.keys())
def test_malformed_if_match(
    live: LiveServer, etag: str, value: str, status: int
) -> None:
    response = live.request(TARGET, [("If-Match", value.format(e=etag))])
    assert response.status == status, response
    assert response.body == (CONTENT if status == 200 else b"")


@pytest.mark.parametrize(
    "value",
    ["{e}", 'W/"{e}"', '"{e}', '"{e}"x'],
    ids=["unquoted", "weak", "unbalanced", "trailing-garbage"],
)
def test_malformed_if_range_etags_send_the_whole_file(
    live: LiveServer, etag: str, value: str
) -> None:
    response = live.request(
        TARGET, [("Range", "bytes=0-1"), ("If-Range", value.format(e=etag))]
    )
    _assert_full(response)


def test_every_conditional_header_at_once(live: LiveServer, etag: str) -> None:
    """All garbage together is still a plain 200."""
    garbage = ABSURD_DATES["year-999999999999"]
    response = live.request(
        TARGET,
        [
            ("If-Match", f'"{etag}"'),
            ("If-Unmodified-Since", garbage),
            ("If-None-Match", f"W/{etag}"),
            ("If-Modified-Since", garbage),
            ("If-Range", garbage),
            ("Range", "bytes=0-1"),
        ],
    )
    _assert_full(response)
