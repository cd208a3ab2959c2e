"""Offload rules: which files the web server sends, and the header that
tells it where to find them.

A rule maps where a file lives (a local directory, ``source_dir``, or a
storage URL prefix, ``source_url``) to where the web server finds it (an
nginx ``internal`` location, ``destination_url``, or a directory,
``destination_dir``). This module validates rules (``DOWNLOAD_ACCEL_RULES``,
view attributes, :func:`~flask_download.offload`) and matches a file
against them; :mod:`flask_download.accel` builds the responses.

The destination is built only from the rule's destination and the file's
path relative to the rule's source, after confining it: nothing a client
sends (request headers included) takes part in the decision.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import os
import re
import typing as t
from urllib.parse import quote
from urllib.parse import unquote

from . import paths as _paths
from ._grammar import valid_token
from .conditional import as_utc
from .exceptions import ConfigurationError
from .exceptions import FileNotFound
from .files import DownloadFile
from .paths import split_relative

#: Offload backends understood by ``DOWNLOAD_ACCEL`` and the ``accel`` view attribute.
ACCEL_BACKENDS = ("nginx", "apache", "lighttpd")
#: Keys of one ``DOWNLOAD_ACCEL_RULES`` mapping besides the nginx options.
_RULE_KEYS = (
    "source_dir",
    "source_url",
    "destination_url",
    "destination_dir",
    "backend",
)
#: nginx options of a rule, given flat or under an ``options`` mapping.
_OPTION_KEYS = ("buffering", "limit_rate", "expires", "charset")
# A URL path nginx can take as an X-Accel-Redirect prefix: printable ASCII,
# no query, fragment or whitespace.
_URL_PATH = re.compile(r"^/[\x21-\x7e]*$")


def validate_accel(key: str, value: t.Any) -> str | None:
    """Check an offload backend name; ``None`` and ``False`` mean no offload.

    :param key: what the value was given as, for the error message.
    :raises ConfigurationError: an unknown backend.
    """
    if value is None or value is False:
        return None
    if value not in ACCEL_BACKENDS:
        raise ConfigurationError(
            f"{key} must be None or one of {', '.join(map(repr, ACCEL_BACKENDS))},"
            f" not {value!r}."
        )
    return t.cast(str, value)


@dataclasses.dataclass(frozen=True)
class AccelRule:
    """One offload rule: where a file lives -> where the web server finds it.

    Give exactly one source and the destination your backend needs.
    ``DOWNLOAD_ACCEL_RULES`` mappings take the same keys (the nginx options
    flat or under an ``options`` mapping)::

        AccelRule(source_dir="/srv/media", destination_url="/protected/")

    :param source_dir: a local directory; files whose real path (symbolic
        links followed) is inside it match.
    :param source_url: a storage URL prefix such as ``s3://bucket/media``;
        files whose :attr:`~flask_download.DownloadFile.url` starts with it
        at a ``/`` boundary match. Below an ``http(s)://`` prefix the rest
        of the URL is percent-decoded first, and URLs with a query or
        fragment never match.
    :param destination_url: the nginx ``internal`` location the source is
        aliased to (``X-Accel-Redirect``).
    :param destination_dir: the directory Apache or lighttpd reads the
        source from (``X-Sendfile``); defaults to ``source_dir``.
    :param buffering: nginx ``X-Accel-Buffering`` (``True``: ``yes``).
    :param limit_rate: nginx ``X-Accel-Limit-Rate``, bytes per second
        (``0`` or ``"off"``: no limit).
    :param expires: nginx ``X-Accel-Expires`` for its proxy cache: seconds
        (an ``int`` or a :class:`~datetime.timedelta`; ``0``: do not cache),
        or an expiry time (a :class:`~datetime.datetime`, naive meaning
        UTC, or ``"@<epoch seconds>"``).
    :param charset: nginx ``X-Accel-Charset``.
    :param backend: the backend this rule offloads to (``"nginx"``,
        ``"apache"``, ``"lighttpd"``), whatever ``DOWNLOAD_ACCEL`` says, so
        one application can offload to two kinds of servers; ``None``
        (default): the configured backend. A view that names its backend
        (``accel = "apache"``, or ``offload("apache")``) has it in front of
        it: that backend then applies to the rules of the configuration
        (``DOWNLOAD_ACCEL_RULES``) whatever their own ``backend`` (a view
        attribute wins over the configuration; a rule whose destination
        does not suit it is skipped), while rules given with the view
        (``accel_rules``, ``offload(..., rules=...)``) keep their own.
    :raises ConfigurationError: a value is missing, of the wrong type, or
        could not go into a header.
    """

    source_dir: str | None = None
    source_url: str | None = None
    destination_url: str | None = None
    destination_dir: str | None = None
    buffering: bool | None = None
    limit_rate: int | str | None = None
    expires: int | str | datetime.datetime | datetime.timedelta | None = None
    charset: str | None = None
    backend: str | None = None

    def __post_init__(self) -> None:
        if (self.source_dir is None) == (self.source_url is None):
            raise ConfigurationError(
                "Each DOWNLOAD_ACCEL_RULES rule needs exactly one of 'source_dir'"
                " (a local directory) or 'source_url' (a storage URL prefix):"
                f" {self!r}."
            )
        if self.source_dir is not None:
            # Absolute; its links are followed when it is used (a "current"
            # link a deploy swaps names the new release at once).
            source_dir = _path("source_dir", self.source_dir)
            object.__setattr__(self, "source_dir", os.path.abspath(source_dir))
        if self.source_url is not None:
            if not isinstance(self.source_url, str) or not self.source_url.strip("/"):
                raise ConfigurationError(
                    "'source_url' of a DOWNLOAD_ACCEL_RULES rule must be a URL"
                    f" prefix such as 's3://bucket/media', not {self.source_url!r}."
                )
            object.__setattr__(self, "source_url", normalize_url(self.source_url))
        if self.destination_url is not None:
            if not isinstance(self.destination_url, str) or not _URL_PATH.match(
                self.destination_url
            ):
                raise ConfigurationError(
                    "'destination_url' of a DOWNLOAD_ACCEL_RULES rule must be the"
                    " URL path of an nginx internal location, such as '/protected/'"
                    " (ASCII, no spaces, no query), not"
                    f" {self.destination_url!r}."
                )
            if "?" in self.destination_url or "#" in self.destination_url:
                raise ConfigurationError(
                    "'destination_url' of a DOWNLOAD_ACCEL_RULES rule cannot have a"
                    f" query or fragment: {self.destination_url!r}."
                )
        if self.destination_dir is not None:
            destination_dir = _path("destination_dir", self.destination_dir, False)
            if not os.path.isabs(destination_dir):
                raise ConfigurationError(
                    "'destination_dir' of a DOWNLOAD_ACCEL_RULES rule is the"
                    " directory as the web server sees it and must be absolute,"
                    f" not {destination_dir!r}."
                )
            object.__setattr__(
                self, "destination_dir", os.path.normpath(destination_dir)
            )
        if self.destination_url is None and self.sendfile_dir is None:
            raise ConfigurationError(
                "Each DOWNLOAD_ACCEL_RULES rule needs 'destination_url' (nginx) or"
                f" 'destination_dir' (Apache, lighttpd): {self!r}."
            )
        if self.backend is not None:
            object.__setattr__(
                self, "backend", validate_accel("A rule's 'backend'", self.backend)
            )
        if self.backend == "nginx" and self.destination_url is None:
            raise ConfigurationError(
                "A DOWNLOAD_ACCEL_RULES rule with backend 'nginx' needs a"
                f" 'destination_url' (an nginx internal location): {self!r}."
            )
        if self.backend in ("apache", "lighttpd") and self.sendfile_dir is None:
            raise ConfigurationError(
                f"A DOWNLOAD_ACCEL_RULES rule with backend {self.backend!r} needs a"
                f" 'destination_dir' (X-Sendfile path): {self!r}."
            )
        if self.buffering is not None and not isinstance(self.buffering, bool):
            raise ConfigurationError(
                f"The 'buffering' option must be True or False, not {self.buffering!r}."
            )
        if isinstance(self.limit_rate, str) and self.limit_rate.lower() == "off":
            # nginx reads "off" like 0 (no limit) in X-Accel-Limit-Rate.
            object.__setattr__(self, "limit_rate", 0)
        if self.limit_rate is not None and (
            isinstance(self.limit_rate, bool)
            or not isinstance(self.limit_rate, int)
            or self.limit_rate < 0
        ):
            raise ConfigurationError(
                "The 'limit_rate' option must be bytes per second (an integer >= 0)"
                f" or 'off', not {self.limit_rate!r}."
            )
        expires = self.expires
        if isinstance(expires, datetime.timedelta) and expires.total_seconds() >= 0:
            expires = int(expires.total_seconds())
        elif isinstance(expires, datetime.datetime):
            expires = f"@{int(as_utc(expires).timestamp())}"
        object.__setattr__(self, "expires", expires)
        if expires is not None and not (
            (
                isinstance(expires, int)
                and not isinstance(expires, bool)
                and expires >= 0
            )
            or (isinstance(expires, str) and re.fullmatch(r"@[0-9]+", expires))
        ):
            raise ConfigurationError(
                "The 'expires' option must be seconds (an integer >= 0 or a"
                " timedelta), a datetime or '@<epoch seconds>',"
                f" not {self.expires!r}."
            )
        if self.charset is not None and (
            not isinstance(self.charset, str) or not valid_token(self.charset)
        ):
            raise ConfigurationError(
                f"The 'charset' option must be a charset name, not {self.charset!r}."
            )

    @property
    def real_source_dir(self) -> str | None:
        """The real path of :attr:`source_dir` now (its links followed)."""
        if self.source_dir is None:
            return None
        return _paths.resolved_dir(self.source_dir)

    @property
    def sendfile_dir(self) -> str | None:
        """The directory ``X-Sendfile`` paths start with, if this rule has one."""
        return (
            self.destination_dir
            if self.destination_dir is not None
            else self.real_source_dir
        )

    def relative_segments(
        self, file: DownloadFile, real_path: str | None = None
    ) -> list[str] | None:
        """The path segments of ``file`` below this rule's source, or ``None``.

        Local files are compared by real path at an ``os.sep`` boundary, so
        ``/srv/media-private`` is not inside ``/srv/media`` and a link out of
        the source does not match.

        :param real_path: ``os.path.realpath(file.path)`` if already known
            (:func:`find_offload` resolves it once for all rules).
        """
        if self.source_dir is not None:
            if file.path is None:
                return None
            real = real_path if real_path is not None else os.path.realpath(file.path)
            base = os.path.join(t.cast(str, self.real_source_dir), "")
            if not real.startswith(base) or real == base:
                return None
            segments = real[len(base) :].split(os.sep)
            # A real path has no "." or ".." segment; refuse anyway, cheaply.
            if any(s in ("", ".", "..") for s in segments):
                return None
            return segments
        assert self.source_url is not None
        url = file.url
        if not isinstance(url, str):
            return None
        url = normalize_url(url)
        prefix = self.source_url
        if not prefix.endswith("://"):
            prefix += "/"  # a whole store ("memory://") has no path to end
        if not url.startswith(prefix):
            return None
        rest = url[len(prefix) :]
        try:
            if self.source_url.lower().startswith(("http://", "https://")):
                if "?" in rest or "#" in rest:
                    return None
                rest = unquote(rest, errors="strict")
            return split_relative(rest)
        except (FileNotFound, UnicodeDecodeError):
            return None


def normalize_url(url: str) -> str:
    """Spell a storage URL (or prefix) one way, for matching ``source_url``.

    fsspec reads ``memory://x/pub`` and ``memory:///x/pub`` (or ``s3://b/p``
    and ``s3:///b/p/``) as the same location: below a non-HTTP scheme, the
    slashes around the path do not count. HTTP(S) URLs only lose a
    trailing slash; the scheme is compared in lower case.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.rstrip("/")
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        return f"{scheme}://{rest.rstrip('/')}"
    return f"{scheme}://{rest.strip('/')}"


def _path(key: str, value: t.Any, absolute: bool = True) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ConfigurationError(
            f"'{key}' of a DOWNLOAD_ACCEL_RULES rule must be a directory path,"
            f" not {value!r}."
        )
    path = os.fspath(value)
    return os.path.abspath(path) if absolute else path


def parse_rules(
    value: t.Any, backend: str | None = None, root_path: str | None = None
) -> tuple[AccelRule, ...]:
    """Validate ``DOWNLOAD_ACCEL_RULES`` into :class:`AccelRule` objects.

    :param value: a list of mappings (or :class:`AccelRule` objects), or ``None``.
    :param backend: the configured backend; each rule must then have the
        destination that backend needs.
    :param root_path: a relative ``source_dir`` is taken relative to it.
    :raises ConfigurationError: a rule is invalid.
    """
    if value is None:
        return ()
    if isinstance(value, (str, bytes, cabc.Mapping, AccelRule)) or not isinstance(
        value, cabc.Iterable
    ):
        raise ConfigurationError(
            "DOWNLOAD_ACCEL_RULES must be a list of mappings, each with 'source_dir'"
            f" or 'source_url', not {value!r}."
        )
    rules = tuple(_parse_rule(item, root_path) for item in value)
    for rule in rules:
        if rule.backend is not None:
            continue  # checked against its own backend
        if backend == "nginx" and rule.destination_url is None:
            raise ConfigurationError(
                "DOWNLOAD_ACCEL is 'nginx': each DOWNLOAD_ACCEL_RULES rule needs a"
                f" 'destination_url' (an nginx internal location): {rule!r}."
            )
        if backend in ("apache", "lighttpd") and rule.sendfile_dir is None:
            raise ConfigurationError(
                f"DOWNLOAD_ACCEL is {backend!r}: each DOWNLOAD_ACCEL_RULES rule"
                f" needs a 'destination_dir' (X-Sendfile path): {rule!r}."
            )
    return rules


def _parse_rule(item: t.Any, root_path: str | None) -> AccelRule:
    if isinstance(item, AccelRule):
        return item
    if not isinstance(item, cabc.Mapping):
        raise ConfigurationError(
            f"Each DOWNLOAD_ACCEL_RULES entry must be a mapping, not {item!r}."
        )
    values = dict(item)
    options = values.pop("options", None) or {}
    if not isinstance(options, cabc.Mapping):
        raise ConfigurationError(
            "'options' of a DOWNLOAD_ACCEL_RULES rule must be a mapping,"
            f" not {options!r}."
        )
    for key, option in options.items():
        if key in values:
            raise ConfigurationError(
                f"DOWNLOAD_ACCEL_RULES rule sets {key!r} twice (flat and in 'options')."
            )
        values[key] = option
    unknown = sorted(set(values) - {*_RULE_KEYS, *_OPTION_KEYS}, key=str)
    if unknown:
        raise ConfigurationError(
            f"Unknown DOWNLOAD_ACCEL_RULES key(s) {', '.join(map(repr, unknown))};"
            f" a rule takes {', '.join(_RULE_KEYS)} and the nginx options"
            f" {', '.join(_OPTION_KEYS)}."
        )
    source_dir = values.get("source_dir")
    if (
        root_path is not None
        and isinstance(source_dir, (str, os.PathLike))
        and os.fspath(source_dir)  # "" stays empty (refused), not root_path
    ):
        values["source_dir"] = os.path.join(root_path, os.fspath(source_dir))
    return AccelRule(**values)


# Rules given in code (view attributes, as_view keywords, @offload), parsed
# once per value, backend and root path instead of on every request. Keyed by
# id(value); each entry keeps its value alive, so an id is never reused while
# it is cached. Bounded: a view computing new rules per request only re-parses.
_RULES_CACHE: dict[
    int, tuple[t.Any, dict[tuple[str | None, str | None], tuple[AccelRule, ...]]]
] = {}
_RULES_CACHE_SIZE = 256


def cached_rules(
    value: t.Any, backend: str | None, root_path: str | None
) -> tuple[AccelRule, ...]:
    """:func:`parse_rules`, once per rules object (by identity), backend and
    root path.

    Rules are read when first used: assign a new list to change them, do not
    change the list in place.

    :raises ConfigurationError: a rule is invalid.
    """
    entry = _RULES_CACHE.get(id(value))
    if entry is None or entry[0] is not value:
        if len(_RULES_CACHE) >= _RULES_CACHE_SIZE:
            _RULES_CACHE.clear()
        entry = _RULES_CACHE[id(value)] = (value, {})
    by_key = entry[1]
    rules = by_key.get((backend, root_path))
    if rules is None:
        rules = by_key[backend, root_path] = parse_rules(value, backend, root_path)
    return rules


def _accel_key(owner: str | type) -> str:
    return f"{owner.__name__}.accel" if isinstance(owner, type) else owner


def _is_descriptor(value: t.Any) -> bool:
    # A property (or other descriptor) on a view class: known per request only.
    return hasattr(type(value), "__get__")


def check_offload(owner: str | type, accel: t.Any, rules: t.Any) -> None:
    """Validate an offload backend and rules given in code, before any request.

    Values computed per request (properties) are checked when used.

    :param owner: the view class (or a name) for the error message.
    :raises ConfigurationError: an unknown backend or an invalid rule.
    """
    backend = None
    if not _is_descriptor(accel):
        backend = validate_accel(_accel_key(owner), accel)
    if rules is not None and not _is_descriptor(rules):
        cached_rules(rules, backend, None)


@dataclasses.dataclass(frozen=True)
class Offload:
    """The offload header (and nginx options) for one matched file."""

    #: ``X-Accel-Redirect`` or ``X-Sendfile``.
    header: str
    #: The percent-encoded destination URL (nginx) or file path (X-Sendfile).
    value: str
    #: The nginx option headers of the rule.
    options: tuple[tuple[str, str], ...] = ()
    #: The rule that matched: :func:`flask_download.testing.assert_download_response`
    #: maps the header back to the file through it.
    rule: AccelRule | None = dataclasses.field(default=None, compare=False)


def find_offload(
    file: DownloadFile,
    backend: str | None,
    rules: cabc.Iterable[AccelRule],
    *,
    override: bool = False,
) -> Offload | None:
    """The offload of ``file`` by the first matching rule, or ``None``.

    :param backend: ``"nginx"``, ``"apache"``, ``"lighttpd"``, or ``None``
        (only rules naming their own backend apply). A rule's own
        ``backend`` wins, unless ``override``; rules without the
        destination their backend needs are skipped.
    :param override: ``backend`` was named by a view (its ``accel``, or
        :func:`~flask_download.offload`) for rules of the configuration: it
        is the server in front of that view, so it replaces each rule's own
        ``backend`` (a view attribute wins over the configuration).
    """
    real_path = None
    for rule in rules:
        rule_backend = backend if override and backend else rule.backend or backend
        if rule_backend is None:
            continue
        if rule_backend == "nginx":
            if rule.destination_url is None:
                continue
        elif rule.sendfile_dir is None:
            continue
        if real_path is None and rule.source_dir is not None and file.path is not None:
            # Resolved once per request, not once per rule; a confined
            # file's path as its opener walked it (no second resolution).
            real_path = _paths.real_path(file)
        segments = rule.relative_segments(file, real_path)
        if segments is None:
            continue
        if rule_backend == "nginx":
            return _x_accel_redirect(rule, segments)
        found = _x_sendfile(rule, segments, rule_backend)
        if found is not None:
            return found
    return None


def _x_accel_redirect(rule: AccelRule, segments: list[str]) -> Offload:
    assert rule.destination_url is not None
    # nginx percent-decodes the X-Accel-Redirect URI before matching the
    # location, so every byte but the unreserved ones is encoded: "?" cannot
    # start a query, "%" and spaces survive, non-ASCII names fit in a header.
    # os.fsencode: a name that is not UTF-8 on disk goes out as its bytes.
    path = "/".join(quote(os.fsencode(segment), safe="") for segment in segments)
    options: list[tuple[str, str]] = []
    if rule.buffering is not None:
        options.append(("X-Accel-Buffering", "yes" if rule.buffering else "no"))
    if rule.limit_rate is not None:
        options.append(("X-Accel-Limit-Rate", str(rule.limit_rate)))
    if rule.expires is not None:
        options.append(("X-Accel-Expires", str(rule.expires)))
    if rule.charset is not None:
        options.append(("X-Accel-Charset", rule.charset))
    return Offload(
        "X-Accel-Redirect",
        rule.destination_url.rstrip("/") + "/" + path,
        tuple(options),
        rule,
    )


def _x_sendfile(rule: AccelRule, segments: list[str], backend: str) -> Offload | None:
    directory = rule.sendfile_dir
    assert directory is not None
    # mod_xsendfile (XSendFileUnescape, on by default) and lighttpd 1.4
    # (http_response_xsendfile) percent-decode the path. lighttpd also reads
    # the older X-LIGHTTPD-send-file name; X-Sendfile works since 1.4.24.
    path = os.fsencode(os.path.join(directory, *segments))
    if backend == "lighttpd":
        try:
            path.decode("utf-8")
        except UnicodeDecodeError:
            # lighttpd answers 502 to a path that is not UTF-8: stream it.
            return None
    return Offload("X-Sendfile", quote(path, safe="/"), (), rule)
