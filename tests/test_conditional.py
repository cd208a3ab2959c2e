from __future__ import annotations

import datetime
import typing as t

import pytest

from flask_download import conditional as conditional_module
from flask_download.conditional import evaluate_preconditions
from flask_download.conditional import NOT_MODIFIED
from flask_download.conditional import parse_http_date
from flask_download.conditional import PRECONDITION_FAILED
from flask_download.conditional import strong_etag_matches

UTC = datetime.timezone.utc
ETAG = "abc123"
# Sun, 06 Nov 1994 08:49:37 GMT, with a sub-second part the HTTP-date drops.
LAST_MODIFIED = datetime.datetime(1994, 11, 6, 8, 49, 37, 500_000, tzinfo=UTC)
LM_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
EARLIER_DATE = "Sun, 06 Nov 1994 08:49:36 GMT"
LATER_DATE = "Sun, 06 Nov 1994 08:49:38 GMT"


def evaluate(
    *,
    method: str = "GET",
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
    etag: str | None = ETAG,
    last_modified: datetime.datetime | None = LAST_MODIFIED,
) -> int | None:
    return evaluate_preconditions(
        method=method,
        if_match=if_match,
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
        if_unmodified_since=if_unmodified_since,
        etag=etag,
        last_modified=last_modified,
    )


def future_date() -> str:
    future = datetime.datetime.now(UTC) + datetime.timedelta(days=2)
    return future.strftime("%a, %d %b %Y %H:%M:%S GMT")


# -- parse_http_date --------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT\t",
        "Sun Nov 06 08:49:37 1994",
    ],
    ids=["imf-fixdate", "rfc850", "asctime", "ows", "asctime-two-digit-day"],
)
def test_parse_http_date_returns_aware_utc(value: str) -> None:
    parsed = parse_http_date(value)
    assert parsed == datetime.datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert parsed is not None
    assert parsed.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "Sun, 06 Nov 999999999999 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "x" * 100_000,
        f"{LM_DATE}, {LM_DATE}",
        f"{LM_DATE} garbage",
        f"{LM_DATE}\x00",
        "06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 10:49:37 +0200",
        "Sun, 06 Nov 1994 03:49:37 EST",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "sun, 06 nov 1994 08:49:37 gmt",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun, \u0660\u0666 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:60 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994 GMT",
        "1994-11-06T08:49:37Z",
        "784111777",
    ],
    ids=[
        "none",
        "empty",
        "garbage",
        "absurd-year",
        "bad-hour",
        "bad-day",
        "offset-overflow",
        "long-garbage",
        "list",
        "trailing-garbage",
        "trailing-nul",
        "no-weekday",
        "no-zone",
        "offset",
        "other-zone",
        "utc-not-gmt",
        "two-digit-year",
        "one-digit-day",
        "no-seconds",
        "lower-case",
        "two-spaces",
        "arabic-indic-digits",
        "leap-second",
        "year-zero",
        "rfc850-four-digit-year",
        "rfc850-short-weekday",
        "asctime-with-zone",
        "iso-8601",
        "timestamp",
    ],
)
def test_parse_http_date_returns_none_for_bad_values(value: str | None) -> None:
    """Only RFC 9110 §5.6.7 HTTP-dates are dates: anything else is ignored
    (Werkzeug's lenient parser took lists, zones and missing weekdays)."""
    assert parse_http_date(value) is None


@pytest.mark.parametrize(
    ("ahead", "year_offset"),
    [(0, 0), (-1, -1), (50, 50), (51, -49), (99, -1)],
    ids=["this-year", "last-year", "fifty-ahead", "fifty-one-ahead", "ninety-nine"],
)
def test_rfc850_year_is_at_most_fifty_years_ahead(ahead: int, year_offset: int) -> None:
    """RFC 9110 §5.6.7: a two-digit year that appears more than 50 years in
    the future is the most recent past year with those last two digits."""
    this_year = datetime.datetime.now(UTC).year
    two_digits = (this_year + ahead) % 100
    parsed = parse_http_date(f"Sunday, 06-Nov-{two_digits:02d} 08:49:37 GMT")
    assert parsed is not None
    assert parsed.year == this_year + year_offset


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"if_modified_since": f"{LM_DATE}, {LM_DATE}"}, None),
        ({"if_modified_since": f"{LATER_DATE}, {EARLIER_DATE}"}, None),
        ({"if_modified_since": f"{LM_DATE} +0000"}, None),
        ({"if_modified_since": "06 Nov 1994 08:49:37 GMT"}, None),
        ({"if_unmodified_since": f"{EARLIER_DATE}, {EARLIER_DATE}"}, None),
        ({"if_unmodified_since": f"{EARLIER_DATE}\x00"}, None),
        ({"if_unmodified_since": "Sun, 06 Nov 1994 08:49:36 EST"}, None),
        ({"if_modified_since": LM_DATE}, NOT_MODIFIED),
        ({"if_unmodified_since": EARLIER_DATE}, PRECONDITION_FAILED),
    ],
    ids=[
        "ims-list",
        "ims-list-later-first",
        "ims-trailing-zone",
        "ims-no-weekday",
        "ius-list",
        "ius-trailing-nul",
        "ius-other-zone",
        "ims-valid",
        "ius-valid",
    ],
)
def test_dates_that_are_not_http_dates_are_ignored(
    headers: dict[str, str], expected: int | None
) -> None:
    """RFC 9110 §13.1.3 and §13.1.4: a value that is not a valid HTTP-date
    is ignored (no 304 for a list of dates, no 412 for a zone that is not
    GMT)."""
    assert evaluate(**headers) == expected


# -- strong_etag_matches ----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        ('"abc123"', ETAG, True),
        ('"x", "abc123"', ETAG, True),
        ('"x",\t"abc123" , "y"', ETAG, True),
        ('W/"abc123"', ETAG, False),
        ('"x", W/"abc123"', ETAG, False),
        ("abc123", ETAG, False),
        ('abc123, W/"abc123"', ETAG, False),
        ('"abc123" garbage', ETAG, False),
        ('"abc12"', ETAG, False),
        ('"abc123"', None, False),
        ("*", None, True),
        (" * ", ETAG, True),
        ('"a,b"', "a,b", True),
        ('"a,b"', "a", False),
        ("", ETAG, False),
        (",,,", ETAG, False),
    ],
    ids=[
        "single",
        "list",
        "list-ows",
        "weak-never-matches",
        "weak-in-list",
        "unquoted",
        "unquoted-plus-weak",
        "trailing-garbage",
        "different",
        "no-etag",
        "star-no-etag",
        "star-ows",
        "comma-in-tag",
        "comma-in-tag-prefix",
        "empty",
        "only-commas",
    ],
)
def test_strong_etag_matches(header: str, etag: str | None, expected: bool) -> None:
    assert strong_etag_matches(header, etag) is expected


# -- If-Match (RFC 9110 §13.1.1) ---------------------------------------------


@pytest.mark.parametrize(
    ("if_match", "etag", "expected"),
    [
        ('"abc123"', ETAG, None),
        ('"nope", "abc123"', ETAG, None),
        ("*", ETAG, None),
        ("*", None, None),
        ('"nope"', ETAG, PRECONDITION_FAILED),
        ('W/"abc123"', ETAG, PRECONDITION_FAILED),
        ('"abc123"', None, PRECONDITION_FAILED),
        ("abc123", ETAG, PRECONDITION_FAILED),
        ("garbage ,, \"'", ETAG, PRECONDITION_FAILED),
    ],
    ids=[
        "match",
        "match-in-list",
        "star",
        "star-without-etag",
        "mismatch",
        "weak",
        "no-etag",
        "unquoted",
        "garbage",
    ],
)
def test_if_match(if_match: str, etag: str | None, expected: int | None) -> None:
    assert evaluate(if_match=if_match, etag=etag) == expected


def test_if_match_fails_for_any_method() -> None:
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE"):
        assert evaluate(method=method, if_match='"nope"') == PRECONDITION_FAILED


def test_if_match_beats_matching_if_none_match() -> None:
    assert evaluate(if_match='"nope"', if_none_match='"abc123"') == PRECONDITION_FAILED


def test_if_match_present_skips_if_unmodified_since() -> None:
    # RFC 9110 §13.2.2 step 2 only applies when If-Match is absent.
    result = evaluate(if_match='"abc123"', if_unmodified_since=EARLIER_DATE)
    assert result is None


def test_empty_if_match_is_treated_as_absent() -> None:
    assert evaluate(if_match="") is None
    assert evaluate(if_match=" \t", if_unmodified_since=EARLIER_DATE) == 412


def test_matching_if_match_still_evaluates_if_none_match() -> None:
    assert evaluate(if_match="*", if_none_match='"abc123"') == NOT_MODIFIED


# -- If-Unmodified-Since (RFC 9110 §13.1.4) ----------------------------------


@pytest.mark.parametrize(
    ("since", "last_modified", "expected"),
    [
        (EARLIER_DATE, LAST_MODIFIED, PRECONDITION_FAILED),
        (LM_DATE, LAST_MODIFIED, None),
        (LATER_DATE, LAST_MODIFIED, None),
        ("garbage", LAST_MODIFIED, None),
        ("Sun, 06 Nov 999999999999 08:49:37 GMT", LAST_MODIFIED, None),
        (EARLIER_DATE, None, None),
    ],
    ids=["modified", "same-second", "unmodified", "garbage", "absurd", "no-mtime"],
)
def test_if_unmodified_since(
    since: str, last_modified: datetime.datetime | None, expected: int | None
) -> None:
    result = evaluate(if_unmodified_since=since, last_modified=last_modified)
    assert result == expected


def test_if_unmodified_since_fails_before_if_none_match() -> None:
    result = evaluate(if_unmodified_since=EARLIER_DATE, if_none_match='"abc123"')
    assert result == PRECONDITION_FAILED


def test_if_unmodified_since_treats_naive_last_modified_as_utc() -> None:
    naive = LAST_MODIFIED.replace(tzinfo=None)
    assert evaluate(if_unmodified_since=EARLIER_DATE, last_modified=naive) == 412
    assert evaluate(if_unmodified_since=LM_DATE, last_modified=naive) is None


# -- If-None-Match (RFC 9110 §13.1.2) ----------------------------------------


@pytest.mark.parametrize(
    ("if_none_match", "etag", "expected"),
    [
        ('"abc123"', ETAG, NOT_MODIFIED),
        ('W/"abc123"', ETAG, NOT_MODIFIED),
        ('w/"abc123"', ETAG, NOT_MODIFIED),
        ('"x", W/"y", "abc123"', ETAG, NOT_MODIFIED),
        ("*", ETAG, NOT_MODIFIED),
        ("*", None, NOT_MODIFIED),
        ('"nope"', ETAG, None),
        ('"abc123"', None, None),
        ("abc123", ETAG, None),
        ('"abc123" "x"', ETAG, None),
        ('"\'garbage, ,"', ETAG, None),
    ],
    ids=[
        "strong",
        "weak-matches-weakly",
        "lowercase-weak",
        "in-list",
        "star",
        "star-no-etag",
        "mismatch",
        "no-etag",
        "unquoted",
        "malformed-list",
        "garbage",
    ],
)
def test_if_none_match(
    if_none_match: str, etag: str | None, expected: int | None
) -> None:
    assert evaluate(if_none_match=if_none_match, etag=etag) == expected


def test_if_none_match_returns_304_for_head() -> None:
    assert evaluate(method="HEAD", if_none_match='"abc123"') == NOT_MODIFIED


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_if_none_match_returns_412_for_unsafe_methods(method: str) -> None:
    assert evaluate(method=method, if_none_match='"abc123"') == PRECONDITION_FAILED
    assert evaluate(method=method, if_none_match="*") == PRECONDITION_FAILED


def test_non_matching_if_none_match_skips_if_modified_since() -> None:
    # RFC 9110 §13.1.3: If-Modified-Since is ignored with If-None-Match, even
    # when the date alone would give 304.
    result = evaluate(if_none_match='"nope"', if_modified_since=LATER_DATE)
    assert result is None


def test_empty_if_none_match_is_treated_as_absent() -> None:
    assert evaluate(if_none_match="", if_modified_since=LATER_DATE) == NOT_MODIFIED


def test_huge_if_none_match_list_is_linear() -> None:
    tags = [f'"tag{i}"' for i in range(100_000)]
    miss = ", ".join(tags)
    hit = ", ".join([*tags, '"abc123"'])
    assert evaluate(if_none_match=miss) is None
    assert evaluate(if_none_match=hit) == NOT_MODIFIED


def test_huge_garbage_if_none_match_does_not_raise() -> None:
    assert evaluate(if_none_match='"' * 100_001 + "," * 100_000 + " " * 100_000) is None
    assert evaluate(if_none_match="W/" * 100_000) is None


# -- If-Modified-Since (RFC 9110 §13.1.3) ------------------------------------


@pytest.mark.parametrize(
    ("since", "last_modified", "expected"),
    [
        (LM_DATE, LAST_MODIFIED, NOT_MODIFIED),
        (LATER_DATE, LAST_MODIFIED, NOT_MODIFIED),
        (EARLIER_DATE, LAST_MODIFIED, None),
        ("garbage", LAST_MODIFIED, None),
        ("Sun, 06 Nov 999999999999 08:49:37 GMT", LAST_MODIFIED, None),
        (LM_DATE, None, None),
    ],
    ids=["same-second", "later", "modified", "garbage", "absurd", "no-mtime"],
)
def test_if_modified_since(
    since: str, last_modified: datetime.datetime | None, expected: int | None
) -> None:
    result = evaluate(if_modified_since=since, last_modified=last_modified)
    assert result == expected


def test_if_modified_since_returns_304_for_head() -> None:
    assert evaluate(method="HEAD", if_modified_since=LM_DATE) == NOT_MODIFIED


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_if_modified_since_is_ignored_for_unsafe_methods(method: str) -> None:
    assert evaluate(method=method, if_modified_since=LATER_DATE) is None


def test_if_modified_since_in_the_future_returns_304() -> None:
    recent = datetime.datetime.now(UTC) - datetime.timedelta(days=1)
    assert evaluate(if_modified_since=future_date(), last_modified=recent) == 304


def test_if_modified_since_uses_was_modified_since_callback() -> None:
    seen: list[datetime.datetime] = []

    def unchanged(since: datetime.datetime) -> bool:
        seen.append(since)
        return False

    def changed(since: datetime.datetime) -> bool:
        return True

    common = {
        "method": "GET",
        "if_match": None,
        "if_none_match": None,
        "if_modified_since": EARLIER_DATE,
        "if_unmodified_since": None,
        "etag": ETAG,
        # The callback decides even without a modification time.
        "last_modified": None,
    }
    assert evaluate_preconditions(**common, was_modified_since=unchanged) == 304
    assert seen == [datetime.datetime(1994, 11, 6, 8, 49, 36, tzinfo=UTC)]
    assert evaluate_preconditions(**common, was_modified_since=changed) is None


def test_no_conditional_headers_returns_none() -> None:
    assert evaluate() is None
    assert evaluate(etag=None, last_modified=None) is None


# -- Werkzeug regressions ----------------------------------------------------


def test_matching_if_none_match_returns_304_even_with_range() -> None:
    """Werkzeug make_conditional gets this wrong: a Range header beats a
    matching If-None-Match there. RFC 9110 §13.2.2 evaluates If-None-Match
    before Range, and the engine never even sees Range here: 304.
    """
    assert evaluate(if_none_match='"abc123"') == NOT_MODIFIED


def test_failing_if_match_with_range_returns_412() -> None:
    """Werkzeug make_conditional gets this wrong: a failing If-Match with a
    Range is not answered with 412. RFC 9110 §13.2.2 step 1 comes first.
    """
    assert evaluate(if_match='"other"') == PRECONDITION_FAILED


def test_if_match_star_on_existing_file_passes() -> None:
    """Werkzeug make_conditional gets this wrong: ``If-Match: *`` on an
    existing file fails there. RFC 9110 §13.1.1: ``*`` is true when a current
    representation exists.
    """
    assert evaluate(if_match="*") is None


def test_if_unmodified_since_is_honoured() -> None:
    """Werkzeug make_conditional gets this wrong: it ignores
    If-Unmodified-Since. RFC 9110 §13.1.4: 412 if modified since that date.
    """
    assert evaluate(if_unmodified_since=EARLIER_DATE) == PRECONDITION_FAILED


def test_non_matching_etag_flood_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long If-None-Match of other tags is refused by one substring search."""

    def fail(value: str) -> t.NoReturn:
        raise AssertionError("the list was parsed")

    monkeypatch.setattr(conditional_module, "parse_etags", fail)
    flood = ", ".join(f'"tag-{i}"' for i in range(100_000))
    assert evaluate(if_none_match=flood) is None
    assert evaluate(if_match=flood) == PRECONDITION_FAILED


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        ('"abc"', "abc", NOT_MODIFIED),
        ('W/"abc"', "abc", NOT_MODIFIED),
        ('"abd"', "abc", None),
        # The tag the client holds, alone: answered without parsing a list,
        # but a tag that holds quotes is never matched that way.
        ('"a", "b"', 'a", "b', None),
        ('W/"a", "b"', 'a", "b', None),
    ],
    ids=["strong", "weak", "other", "quoted-tag", "quoted-tag-weak"],
)
def test_single_if_none_match_tag(header: str, etag: str, expected: int | None) -> None:
    """Issue 16: the one-tag fast path agrees with the list parser."""
    assert evaluate(if_none_match=header, etag=etag) == expected


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        ('"abc"', "abc", None),
        ('W/"abc"', "abc", PRECONDITION_FAILED),
        ('"a", "b"', 'a", "b', PRECONDITION_FAILED),
    ],
    ids=["strong", "weak", "quoted-tag"],
)
def test_single_if_match_tag(header: str, etag: str, expected: int | None) -> None:
    """Issue 16: the one-tag fast path of If-Match is a strong comparison."""
    assert evaluate(if_match=header, etag=etag) == expected
