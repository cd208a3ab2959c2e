"""Evaluation of HTTP conditional request headers.

This module is pure: it takes plain header values and validator values and
returns a decision. It never touches Flask's ``request`` or ``current_app``.

The precedence follows RFC 9110 §13.2.2 exactly: ``If-Match``, then
``If-Unmodified-Since``, then ``If-None-Match``, then ``If-Modified-Since``.
``If-Range`` is evaluated later, together with ``Range``, by
:mod:`flask_download.ranges`.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import re
import typing as t

from werkzeug.http import parse_etags

from ._grammar import sendable_etag

#: Status code returned when a precondition fails (RFC 9110 §15.5.13).
PRECONDITION_FAILED = 412

#: Status code returned when the client's cached copy is fresh (RFC 9110 §15.4.5).
NOT_MODIFIED = 304

_UTC = datetime.timezone.utc


# RFC 9110 §5.6.7: the three forms of an HTTP-date. The grammar is case
# sensitive ("HTTP-date is case sensitive", %s strings): "sun, 17 may 2020"
# is not one, so it is ignored like any other invalid date. Digits are ASCII
# digits only: [0-9], not \d, which also matches other scripts' digits.
_DAY_NAME = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_DAY_NAME_L = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTHS = (
    *("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
    *("Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
)
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS, 1)}
_MONTH = f"({'|'.join(_MONTHS)})"
_TIME_OF_DAY = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
# IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT (the one senders generate).
_IMF_FIXDATE = re.compile(
    f"{_DAY_NAME}, ([0-9]{{2}}) {_MONTH} ([0-9]{{4}}) {_TIME_OF_DAY} GMT"
)
# Obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
_RFC850_DATE = re.compile(
    f"{_DAY_NAME_L}, ([0-9]{{2}})-{_MONTH}-([0-9]{{2}}) {_TIME_OF_DAY} GMT"
)
# asctime: Sun Nov  6 08:49:37 1994
_ASCTIME_DATE = re.compile(
    f"{_DAY_NAME} {_MONTH} ([0-9]{{2}}| [0-9]) {_TIME_OF_DAY} ([0-9]{{4}})"
)


def parse_http_date(value: str | None) -> datetime.datetime | None:
    """Parse an HTTP-date into an aware UTC datetime.

    Only the three forms of RFC 9110 §5.6.7 are accepted, exactly as the
    grammar spells them (it is case sensitive): IMF-fixdate (``Sun, 06 Nov
    1994 08:49:37 GMT``), the obsolete RFC 850 form (``Sunday, 06-Nov-94
    08:49:37 GMT``, its two-digit year read as RFC 9110 says) and asctime
    (``Sun Nov  6 08:49:37 1994``), with optional whitespace around. Anything
    else is not a valid HTTP-date, which RFC 9110 §13.1.3, §13.1.4 and
    §13.1.5 say to ignore: a list of dates, a zone other than ``GMT``, a
    missing weekday or seconds, trailing bytes. The weekday is not checked
    against the date.

    This never raises: a missing value, garbage or an impossible date
    (``31 Feb``, year 0) all give ``None``, so the caller treats the header
    as absent.

    :param value: The raw header value, or ``None`` if the header is absent.
    :return: An aware datetime in UTC, or ``None``.
    """
    if value is None:
        return None

    value = value.strip(" \t")

    if (match := _IMF_FIXDATE.fullmatch(value)) is not None:
        day, month, year, hour, minute, second = match.groups()
        full_year = int(year)
    elif (match := _RFC850_DATE.fullmatch(value)) is not None:
        day, month, year, hour, minute, second = match.groups()
        full_year = _rfc850_year(int(year))
    elif (match := _ASCTIME_DATE.fullmatch(value)) is not None:
        month, day, hour, minute, second, year = match.groups()
        full_year = int(year)
    else:
        return None

    try:
        return datetime.datetime(
            full_year,
            _MONTH_NUMBERS[month],
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=_UTC,
        )
    except ValueError:
        return None  # 31 Feb, hour 24, second 60, year 0000...


def _rfc850_year(two_digits: int) -> int:
    """The year of an RFC 850 date's two digits.

    RFC 9110 §5.6.7: a year that appears to be more than 50 years in the
    future is the most recent past year with the same last two digits.
    """
    this_year = datetime.datetime.now(_UTC).year
    year = this_year - this_year % 100 + two_digits
    return year - 100 if year > this_year + 50 else year


def _is_present(value: str | None) -> t.TypeGuard[str]:
    """Tell whether a raw header value counts as present.

    An empty or whitespace-only value carries no field content (RFC 9110
    §5.5), so it is treated the same as an absent header.

    :param value: The raw header value, or ``None``.
    """
    return value is not None and value.strip(" \t") != ""


def _listed(header: str, etag: str, *, allow_weak: bool) -> bool:
    """Tell whether ``etag`` occurs as a properly quoted list member.

    :func:`werkzeug.http.parse_etags` also accepts *unquoted* tokens as strong
    entity-tags. RFC 9110 §8.8.3 requires the ``DQUOTE`` delimiters, so a
    malformed member such as ``abc`` must not match. This check runs only
    after ``parse_etags`` found a candidate, is a single linear regex scan, and
    mirrors its tokenisation (members start at the beginning or after a comma).

    :param header: The stripped header value.
    :param etag: The bare entity-tag to look for.
    :param allow_weak: Also accept the ``W/`` form (weak comparison).
    """
    prefix = "(?:[Ww]/)?" if allow_weak else ""
    pattern = rf'(?:\A|,)[ \t]*{prefix}"{re.escape(etag)}"[ \t]*(?=,|\Z)'
    return re.search(pattern, header) is not None


def strong_etag_matches(header: str, etag: str | None) -> bool:
    """Evaluate an entity-tag list with the strong comparison function.

    RFC 9110 §8.8.3.2: two entity-tags are strongly equal only if neither is
    weak and their opaque tags are identical, so weak members (``W/"x"``) never
    match. RFC 9110 §13.1.1: ``*`` is true when a current representation
    exists; callers only ask about existing representations, so ``*`` is
    always true here, even when ``etag`` is ``None``.

    Malformed lists (unquoted members, garbage) never raise; the malformed
    members simply do not match. The list is parsed in linear time.

    :param header: The raw ``If-Match`` value (a list of entity-tags or ``*``).
    :param etag: The representation's bare strong entity-tag (no quotes), or
        ``None`` if it has none.
    """
    value = header.strip(" \t")

    if value == "*":
        return True

    # A member can only match if the quoted tag occurs at all: one C-speed
    # search makes a long list of other tags (a flood) cost nothing.
    if etag is None:
        return False

    quoted = f'"{etag}"'
    if quoted not in value:
        return False

    if value == quoted and '"' not in etag:
        return True  # the one tag the client holds

    return parse_etags(value).contains(etag) and _listed(value, etag, allow_weak=False)


def weak_etag_matches(header: str, etag: str | None) -> bool:
    """Evaluate an entity-tag list with the weak comparison function.

    RFC 9110 §8.8.3.2: weak comparison ignores the weakness indicator, so
    ``W/"x"`` matches ``"x"``. RFC 9110 §13.1.2: ``*`` matches any current
    representation.

    :param header: The raw ``If-None-Match`` value.
    :param etag: The representation's bare strong entity-tag, or ``None``.
    """
    value = header.strip(" \t")

    if value == "*":
        return True

    if etag is None:
        return False

    quoted = f'"{etag}"'
    if quoted not in value:
        return False

    # The revalidation of one cached copy: the header is that one tag.
    if (value == quoted or value == "W/" + quoted) and '"' not in etag:
        return True

    return parse_etags(value).contains_weak(etag) and _listed(
        value, etag, allow_weak=True
    )


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """Return ``value`` as an aware UTC datetime; a naive value is taken as UTC.

    :param value: The datetime to normalise.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=_UTC)

    return value.astimezone(_UTC)


def evaluate_preconditions(
    *,
    method: str,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
    etag: str | None,
    last_modified: datetime.datetime | None,
    was_modified_since: cabc.Callable[[datetime.datetime], bool] | None = None,
) -> int | None:
    """Evaluate the conditional request headers in RFC 9110 §13.2.2 order.

    Only call this for a representation that exists. Empty or whitespace-only
    header values are treated as absent.

    :param method: The request method in upper case, e.g. ``"GET"``.
    :param if_match: The raw ``If-Match`` value, ``None`` when absent.
    :param if_none_match: The raw ``If-None-Match`` value, ``None`` when absent.
    :param if_modified_since: The raw ``If-Modified-Since`` value, ``None``
        when absent.
    :param if_unmodified_since: The raw ``If-Unmodified-Since`` value, ``None``
        when absent.
    :param etag: The representation's strong entity-tag, bare (no quotes), or
        ``None`` if unknown. One that cannot be sent
        (:func:`~flask_download._grammar.sendable_etag`) counts as unknown.
    :param last_modified: The representation's modification time as an aware
        UTC datetime (a naive one is taken as UTC), or ``None`` if unknown.
    :param was_modified_since: Optional callback replacing the built-in
        ``If-Modified-Since`` comparison; it receives the parsed date and
        returns whether the representation changed since then.
    :return: :data:`PRECONDITION_FAILED` (412), :data:`NOT_MODIFIED` (304), or
        ``None`` to go on to ``Range`` handling and the full response.
    """
    is_get_or_head = method in ("GET", "HEAD")
    # The tag the response's ETag header shows (response.validator_headers):
    # one a wrapper gave that cannot be sent is none.
    etag = sendable_etag(etag)

    if last_modified is not None:
        last_modified = as_utc(last_modified)

    # RFC 9110 §13.2.2 step 1: If-Match first; false means 412.
    if _is_present(if_match):
        if not strong_etag_matches(if_match, etag):
            return PRECONDITION_FAILED
    # RFC 9110 §13.2.2 step 2: If-Unmodified-Since only when If-Match is absent.
    elif _is_present(if_unmodified_since) and last_modified is not None:
        since = parse_http_date(if_unmodified_since)

        # RFC 9110 §13.1.4: an invalid date is ignored; HTTP dates have
        # one-second resolution, so compare whole seconds.
        if since is not None and last_modified.replace(microsecond=0) > since:
            return PRECONDITION_FAILED

    # RFC 9110 §13.2.2 step 3: If-None-Match; a match means 304 for GET/HEAD,
    # 412 for any other method.
    if _is_present(if_none_match):
        if weak_etag_matches(if_none_match, etag):
            return NOT_MODIFIED if is_get_or_head else PRECONDITION_FAILED

        # RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is
        # present, so go straight on to Range.
        return None

    # RFC 9110 §13.2.2 step 4: If-Modified-Since only for GET and HEAD.
    if is_get_or_head and _is_present(if_modified_since):
        since = parse_http_date(if_modified_since)

        # RFC 9110 §13.1.3: an invalid date is ignored. A date in the future
        # is compared like any other (as Werkzeug and Django do): the client
        # says which copy it holds, and the mixin's was_modified_since decides.
        if since is None:
            return None

        if was_modified_since is not None:
            return None if was_modified_since(since) else NOT_MODIFIED

        if last_modified is None:
            return None

        # RFC 9110 §13.1.3: compare at one-second resolution.
        if int(last_modified.timestamp()) <= int(since.timestamp()):
            return NOT_MODIFIED

    # RFC 9110 §13.2.2 step 5: go on to Range and the full response.
    return None
