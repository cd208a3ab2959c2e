"""``Cache-Control`` privacy: directives of an upstream the answer keeps."""

from __future__ import annotations

import collections.abc as cabc

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
