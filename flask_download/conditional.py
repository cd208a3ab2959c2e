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

from werkzeug.http import parse_date
from werkzeug.http import parse_etags

#: Status code returned when a precondition fails (RFC 9110 §15.5.13).
PRECONDITION_FAILED = 412

#: Status code returned when the client's cached copy is fresh (RFC 9110 §15.4.5).
NOT_MODIFIED = 304

_UTC = datetime.timezone.utc


def parse_http_date(value: str | None) -> datetime.datetime | None:
    """Parse an HTTP-date into an aware UTC datetime.

    Wraps :func:`werkzeug.http.parse_date`, which accepts the three formats
    of RFC 9110 §5.6.7 (IMF-fixdate, obsolete RFC 850 and asctime). Unlike the
    wrapped function this never raises: a missing value, garbage, or an absurd
    date (a year that overflows, a zone offset that leaves the representable
    range) all give ``None``, so the caller treats the header as absent.

    :param value: The raw header value, or ``None`` if the header is absent.
    :return: An aware datetime in UTC, or ``None``.
    """
    if value is None:
        return None

    try:
        parsed = parse_date(value.strip(" \t"))

        if parsed is None:
            return None

        return parsed.astimezone(_UTC)
    except (TypeError, ValueError, OverflowError):
        return None


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


def _weak_etag_matches(header: str, etag: str | None) -> bool:
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
        ``None`` if unknown.
    :param last_modified: The representation's modification time as an aware
        UTC datetime (a naive one is taken as UTC), or ``None`` if unknown.
    :param was_modified_since: Optional callback replacing the built-in
        ``If-Modified-Since`` comparison; it receives the parsed date and
        returns whether the representation changed since then.
    :return: :data:`PRECONDITION_FAILED` (412), :data:`NOT_MODIFIED` (304), or
        ``None`` to go on to ``Range`` handling and the full response.
    """
    is_get_or_head = method in ("GET", "HEAD")

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
        if _weak_etag_matches(if_none_match, etag):
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
