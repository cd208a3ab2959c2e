"""Configuration keys, their defaults, and the validated :class:`Settings`
of one application.

Every ``DOWNLOAD_*`` key is defined once, here. :func:`get_settings` is the
one helper views, sources and offload use to read them; it works with or
without :class:`~flask_download.FlaskDownload` registered.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import difflib
import ipaddress
import json
import math
import os
import re
import sys
import types
import typing as t
import warnings
from weakref import WeakKeyDictionary

from flask import Flask

from ._context import app_object
from .accel_rules import AccelRule
from .accel_rules import parse_rules
from .accel_rules import validate_accel
from .edge import validate_nginx_secret
from .exceptions import ConfigurationError
from .files import as_index
from .files import DEFAULT_CHUNK_SIZE

#: Every configuration key Flask-Download reads, with its default. docs/config.rst
#: documents each one; code and tests use these names.
DEFAULTS: dict[str, t.Any] = {
    # Directory that ``PathDownloadView`` resolves relative and URL paths in.
    "DOWNLOAD_ROOT": None,
    # Bytes read and sent per chunk when the body is streamed by Python.
    "DOWNLOAD_CHUNK_SIZE": DEFAULT_CHUNK_SIZE,
    # Above this many ranges in one Range header, the whole file is sent.
    "DOWNLOAD_MAX_RANGES": 50,
    # ``Cache-Control: max-age`` in seconds; ``None`` sends ``no-cache``.
    "DOWNLOAD_CACHE_MAX_AGE": None,
    # Offload backend: ``None``, ``"nginx"``, ``"apache"`` or ``"lighttpd"``.
    "DOWNLOAD_ACCEL": None,
    # Offload rules: a list of mappings (see docs/offload.rst).
    "DOWNLOAD_ACCEL_RULES": (),
    # Host names ``HTTPDownloadView`` may fetch from; ``None`` allows any public host.
    "DOWNLOAD_HTTP_ALLOWED_HOSTS": None,
    # Connect and read timeout of ``HTTPDownloadView``, in seconds.
    "DOWNLOAD_HTTP_TIMEOUT": 10.0,
    # Default lifetime of links made by ``signed_url_for``, in seconds.
    "DOWNLOAD_SIGNED_MAX_AGE": 3600,
    # Secret shared with nginx's ``secure_link_md5`` (``nginx_secure_url_for``).
    "DOWNLOAD_NGINX_SECURE_LINK_SECRET": None,
}

# Maps a ``FlaskDownload(...)`` argument to its config key.
_ARGUMENTS = {
    "root": "DOWNLOAD_ROOT",
    "chunk_size": "DOWNLOAD_CHUNK_SIZE",
    "max_ranges": "DOWNLOAD_MAX_RANGES",
    "cache_max_age": "DOWNLOAD_CACHE_MAX_AGE",
    "accel": "DOWNLOAD_ACCEL",
    "accel_rules": "DOWNLOAD_ACCEL_RULES",
    "http_allowed_hosts": "DOWNLOAD_HTTP_ALLOWED_HOSTS",
    "http_timeout": "DOWNLOAD_HTTP_TIMEOUT",
    "signed_max_age": "DOWNLOAD_SIGNED_MAX_AGE",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated ``DOWNLOAD_*`` configuration of one application."""

    root: str | None = None
    chunk_size: int = DEFAULTS["DOWNLOAD_CHUNK_SIZE"]
    max_ranges: int = DEFAULTS["DOWNLOAD_MAX_RANGES"]
    cache_max_age: int | None = None
    accel: str | None = None
    accel_rules: tuple[AccelRule, ...] = ()
    http_allowed_hosts: tuple[str, ...] | None = None
    http_timeout: float = DEFAULTS["DOWNLOAD_HTTP_TIMEOUT"]
    signed_max_age: int = DEFAULTS["DOWNLOAD_SIGNED_MAX_AGE"]

    @classmethod
    def from_mapping(
        cls, values: cabc.Mapping[str, t.Any], root_path: str | None = None
    ) -> Settings:
        """Validate ``DOWNLOAD_*`` values; a missing key takes its default.

        :param values: a mapping such as ``app.config``.
        :param root_path: a relative ``DOWNLOAD_ROOT`` is taken relative to
            this directory (the application's ``root_path``).
        :raises ConfigurationError: a value has the wrong type or range.
        """

        def get(key: str) -> t.Any:
            return values.get(key, DEFAULTS[key])

        root = get("DOWNLOAD_ROOT")
        if root is not None:
            if not isinstance(root, (str, os.PathLike)):
                raise ConfigurationError(
                    f"DOWNLOAD_ROOT must be a directory path or None, not {root!r}."
                )
            root = os.fspath(root)
            if not root:
                # os.path.join(root_path, "") is the application's own
                # directory: its source code would be served.
                raise ConfigurationError(
                    "DOWNLOAD_ROOT is an empty string: set it to the directory"
                    " to serve, or to None."
                )
            if root_path is not None:
                root = os.path.join(root_path, root)
            root = os.path.abspath(root)
        accel = validate_accel("DOWNLOAD_ACCEL", get("DOWNLOAD_ACCEL"))
        validate_nginx_secret(get("DOWNLOAD_NGINX_SECURE_LINK_SECRET"))
        return cls(
            root=root,
            chunk_size=_positive_int("DOWNLOAD_CHUNK_SIZE", get("DOWNLOAD_CHUNK_SIZE")),
            max_ranges=_positive_int("DOWNLOAD_MAX_RANGES", get("DOWNLOAD_MAX_RANGES")),
            cache_max_age=_max_age(get("DOWNLOAD_CACHE_MAX_AGE")),
            accel=accel,
            accel_rules=parse_rules(get("DOWNLOAD_ACCEL_RULES"), accel, root_path),
            http_allowed_hosts=check_allowed_hosts(
                get("DOWNLOAD_HTTP_ALLOWED_HOSTS"), "DOWNLOAD_HTTP_ALLOWED_HOSTS"
            ),
            http_timeout=_timeout(get("DOWNLOAD_HTTP_TIMEOUT")),
            signed_max_age=_signed_max_age(get("DOWNLOAD_SIGNED_MAX_AGE")),
        )


# Unknown keys under these prefixes can only be meant for Flask-Download.
_OWN_PREFIXES = (
    "DOWNLOAD_ACCEL",
    "DOWNLOAD_HTTP_",
    "DOWNLOAD_NGINX_",
    "DOWNLOAD_SIGNED_",
)


def check_config_keys(values: cabc.Mapping[t.Any, t.Any]) -> None:
    """Speak up about a config key that looks meant for Flask-Download but
    that it does not read, such as ``DOWNLOAD_MAX_RANGE`` for
    ``DOWNLOAD_MAX_RANGES``: it would be ignored without a word.

    A key that spells a setting in another case, or is close to a setting's
    name, is an error. Another key under the prefix of a group of settings
    (``DOWNLOAD_HTTP_PROXY``...) is only warned about: it may be the
    application's own. Other ``DOWNLOAD_*`` keys (``DOWNLOAD_FOLDER``) pass.

    :raises ConfigurationError: naming the key and the setting meant.
    """
    for key in values:
        if not isinstance(key, str) or key in DEFAULTS:
            continue
        upper = key.upper()
        if not upper.startswith("DOWNLOAD"):
            continue
        if upper in DEFAULTS:
            raise ConfigurationError(
                f"Config key {key!r} is not read: Flask config keys are upper"
                f" case, write {upper!r}."
            )
        # Compare what follows the prefix: "DOWNLOAD_" alone would make every
        # DOWNLOAD_* key look close to every setting.
        suffix = re.sub(r"\ADOWNLOADS?_*", "", upper)
        by_suffix = {name.removeprefix("DOWNLOAD_"): name for name in DEFAULTS}
        close = [
            by_suffix[match]
            for match in difflib.get_close_matches(suffix, by_suffix, n=1, cutoff=0.8)
        ]
        ending = [name for name in DEFAULTS if suffix and name.endswith("_" + suffix)]
        if close and ending:
            # Settings ending like the key (DOWNLOAD_MAX_AGE: the cache's or
            # the links' max age) are what was meant, not one spelt alike.
            close = ending
        hint = f"did you mean {' or '.join(map(repr, close))}? "
        known = f"The settings are {', '.join(DEFAULTS)} (docs/config.rst)."
        longer = close and len(suffix) > len(close[0].removeprefix("DOWNLOAD_")) + 2
        if close and not longer:
            raise ConfigurationError(
                f"Config key {key!r} is not a Flask-Download setting, so it"
                f" would be ignored: {hint}{known}"
            )
        group = next((p for p in _OWN_PREFIXES if upper.startswith(p)), None)
        if longer:
            # A setting's name and more (DOWNLOAD_CHUNK_SIZE_MB): more likely
            # the application's own key than a slip of the keyboard.
            message = f"Config key {key!r} is not a Flask-Download setting and"
            message += f" is ignored: {hint}Rename it if it is the application's own."
        elif group is not None:
            group_names = [name for name in DEFAULTS if name.startswith(group)]
            message = (
                f"Config key {key!r} is not a Flask-Download setting and is"
                f" ignored (the {group}* settings are"
                f" {', '.join(group_names)}). Rename it if it is the"
                " application's own."
            )
        else:
            continue
        warnings.warn(message, UserWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning made in this package at the
    first frame outside it: the application's ``FlaskDownload(app)`` or
    ``download.init_app(app)`` line, however many of this package's own
    calls lie between."""
    package = __name__.partition(".")[0]
    level = 1
    frame: types.FrameType | None = sys._getframe(1)  # the function that warns
    while (
        frame is not None
        and frame.f_globals.get("__name__", "").partition(".")[0] == package
    ):
        frame = frame.f_back
        level += 1
    return level


def _integer(value: t.Any) -> int | None:
    """``value`` as an ``int`` (integer-likes such as ``numpy.int64`` too,
    never a ``bool`` or a ``float``), else ``None``."""
    try:
        return as_index(value, "value")
    except TypeError:
        return None


def _positive_int(key: str, value: t.Any) -> int:
    number = _integer(value)
    if number is None or number < 1:
        raise ConfigurationError(f"{key} must be a positive integer, not {value!r}.")
    return number


#: Longest ``DOWNLOAD_SIGNED_MAX_AGE``: 100 years (365.25 days each).
MAX_SIGNED_MAX_AGE = 3_155_760_000


def _signed_max_age(value: t.Any) -> int:
    seconds = _positive_int("DOWNLOAD_SIGNED_MAX_AGE", value)
    if seconds > MAX_SIGNED_MAX_AGE:
        raise ConfigurationError(
            f"DOWNLOAD_SIGNED_MAX_AGE must be at most {MAX_SIGNED_MAX_AGE:,}"
            f" seconds (100 years), not {value!r}."
        )
    return seconds


def _max_age(value: t.Any, key: str = "DOWNLOAD_CACHE_MAX_AGE") -> int | None:
    if value is None:
        return None
    number = _integer(value)
    if number is None or number < 0:
        raise ConfigurationError(
            f"{key} must be a number of seconds (an integer >= 0)"
            f" or None, not {value!r}."
        )
    return number


def check_allowed_hosts(value: t.Any, setting: str) -> tuple[str, ...] | None:
    """Validate a list of host names, lowercased; ``None`` stays ``None``.

    Entries are host names (``cdn.example.com``, ``.example.com`` for the
    subdomains too) or IP addresses. Ports and schemes are never compared,
    so an entry with one would silently never match: it is refused.

    :param setting: the name to put in the message
        (``DOWNLOAD_HTTP_ALLOWED_HOSTS`` or ``allowed_hosts``).
    :raises ConfigurationError: not a list of host names.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    try:
        hosts = tuple(value)
    except TypeError:
        hosts = (value,)
    if not all(isinstance(host, str) and host.strip() for host in hosts):
        raise ConfigurationError(
            f"{setting} must be a list of host names or None, not {value!r}."
        )
    for host in hosts:
        names = [_bare_host(name) for name in re.split(r"[,;\s]+", host) if name]
        if any(c in host for c in ",;") or len(names) > 1:
            # "a.example,b.example", "a.example b.example" (an environment
            # variable read by from_prefixed_env): one name that would
            # never match.
            raise ConfigurationError(
                f"{setting} entry {host!r} holds several host names: give them"
                f" as a list, {names!r} (in an environment variable, as JSON:"
                f" '{json.dumps(names)}')."
            )
        if "*" in host:
            # Wildcards are not patterns here: "*" or "*.example.com" would
            # never match, and every URL would be refused without a word.
            domain = host[1:] if host.startswith("*.") else ""
            hint = (
                f", or {domain!r} for {domain[1:]} and its subdomains"
                if domain.strip(".") and "*" not in domain
                else ""
            )
            raise ConfigurationError(
                f"{setting} entry {host!r} is a wildcard, which is not"
                f" supported: use None to allow any host with public addresses{hint}."
            )
        problem = _host_problem(host)
        network = _network(host) if problem is not None else None
        if network is not None:
            # "10.0.0.0/8": not "use '10.0.0.0'" (one address of it).
            raise ConfigurationError(
                f"{setting} entry {host!r} is a network ({network}): entries are"
                " host names or single IP addresses, compared with the host of"
                " a URL as they are. List each host to allow."
            )
        if problem is not None:
            bare = _bare_host(host)
            if bare == host or _host_problem(bare) is not None:
                # Nothing to strip off: no entry of that kind can match.
                raise ConfigurationError(
                    f"{setting} entry {host!r} {problem}: it would never match"
                    " the host of a URL. Entries are host names or IP addresses"
                    " ('cdn.example.com', '.example.com', '203.0.113.7',"
                    " '2001:db8::7')."
                )
            raise ConfigurationError(
                f"{setting} entry {host!r} {problem}. Entries are host names only"
                " (ports and schemes are not compared, so this one would never"
                f" match): use {bare!r}."
            )
    # "[::1]" is compared as the URL's host name is: "::1".
    return tuple(host.lower().removeprefix("[").removesuffix("]") for host in hosts)


def _host_problem(host: str) -> str | None:
    if "://" in host:
        return "has a scheme"
    if any(c in host for c in "/?#@") or any(c.isspace() for c in host):
        return "is not a host name"
    if not host.strip("[].-_"):
        # "[]" (an empty list, as a string) would be "" once compared; ".",
        # "-": no URL's host is any of them.
        return "names no host"
    odd = sorted(
        {c for c in host if c.isascii() and not (c.isalnum() or c in "-._[]:")}
    )
    if odd:
        # "%": an escape, or an IPv6 zone ID ("fe80::1%eth0"): a URL's host
        # with either is never fetched.
        return f"has characters no host name has ({''.join(odd)!r})"
    if host.startswith("["):
        # "[::1]" is an IPv6 address; "[::1]:8080" has a port.
        return None if host.endswith("]") else "has a port"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "has a port"
    return None


def _network(host: str) -> str | None:
    """``host`` as an IP network (``"10.0.0.0/8"``), or ``None``."""
    if "/" not in host:
        return None
    try:
        # "[2001:db8::]/32": the brackets of a URL's IPv6 host, before the
        # prefix length.
        bare = host.strip().replace("[", "", 1).replace("]", "", 1)
        return str(ipaddress.ip_network(bare, strict=False))
    except ValueError:
        return None


def _bare_host(host: str) -> str:
    """``host`` without scheme, user info, port or path (for the message)."""
    rest = host.split("://", 1)[-1]
    rest = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    rest = rest.rsplit("@", 1)[-1].strip()
    if rest.startswith("["):
        return rest[: rest.find("]") + 1] or rest
    try:
        ipaddress.IPv6Address(rest)
        return rest
    except ValueError:
        return rest.rsplit(":", 1)[0]


# Roots already found to be directories: each is checked at its first use.
_checked_roots: set[str] = set()


def join_root(
    base: str, root: str | bytes | os.PathLike[str] | os.PathLike[bytes], setting: str
) -> str:
    """``root`` taken relative to ``base`` (a relative root is the
    application's ``root_path``'s), then checked with :func:`check_root`.
    A ``bytes`` root is decoded as the file system does (``os.fsdecode``).

    :raises ConfigurationError: ``root`` is empty (it would be ``base``
        itself, the application's source code), or not an existing directory.
    """
    path = os.fsdecode(root)
    if not path:
        raise ConfigurationError(
            f"{setting} is an empty string: set it to the directory to serve,"
            " or to None."
        )
    return check_root(os.path.join(base, path), setting)


def check_root(root: str, setting: str) -> str:
    """Return ``root`` if it is an existing directory, once per path.

    Called by ``init_app`` for ``DOWNLOAD_ROOT`` and by views at the first
    use of their ``root``, so a wrong root stops the application with a
    message instead of answering 404 for every file. Later requests pay one
    set lookup; a root removed afterwards gives 404s, as missing files do.

    :param root: an absolute path.
    :param setting: the name to put in the message (``DOWNLOAD_ROOT``, or
        ``PathDownloadView.root``...).
    :raises ConfigurationError: ``root`` does not exist or is not a directory.
    """
    if root in _checked_roots:
        return root
    if not os.path.isdir(root):
        exists = os.path.exists(root)
        problem = "is not a directory" if exists else "does not exist"
        raise ConfigurationError(
            f"{setting} is {root!r}, which {problem}. Set it to the directory"
            " that holds the files to serve (a relative path is relative to"
            " app.root_path), or create that directory."
        )
    _checked_roots.add(root)
    return root


def _timeout(value: t.Any, key: str = "DOWNLOAD_HTTP_TIMEOUT") -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value < math.inf  # NaN too
    ):
        raise ConfigurationError(
            f"{key} must be a positive, finite number of seconds, not {value!r}."
        )
    return float(value)


#: View attributes that stand in for a setting, and how each is checked.
_VIEW_ATTRIBUTES: dict[str, cabc.Callable[[t.Any, str], t.Any]] = {
    "chunk_size": lambda value, key: _positive_int(key, value),
    "max_ranges": lambda value, key: _positive_int(key, value),
    "cache_max_age": _max_age,
    "timeout": _timeout,
}


#: The view attributes :func:`check_view_attribute` checks.
VIEW_SETTING_ATTRIBUTES = tuple(_VIEW_ATTRIBUTES)


def check_view_attribute(owner: str, name: str, value: t.Any) -> None:
    """Check a view attribute that overrides a ``DOWNLOAD_*`` setting
    (``chunk_size``, ``max_ranges``, ``cache_max_age``, ``timeout``) the way
    the setting is checked; ``None`` (use the setting) always passes.

    :param owner: the view class's name, for the message.
    :raises ConfigurationError: the value is not one the setting accepts.
    """
    check = _VIEW_ATTRIBUTES.get(name)
    if check is not None and value is not None:
        check(value, f"{owner}.{name}")


# Settings of applications that never called ``init_app`` (views work without it).
_fallback: WeakKeyDictionary[Flask, Settings] = WeakKeyDictionary()


def get_settings(app: Flask | None = None) -> Settings:
    """The settings of ``app`` (default: the current application).

    Applications without :class:`~flask_download.FlaskDownload` get the
    defaults merged with their ``DOWNLOAD_*`` config, read once.
    """
    if app is None:
        app = app_object()
    # FlaskDownload (extension.py, which imports this module) keeps the
    # settings it validated in init_app per application.
    registered = getattr(app.extensions.get("download"), "_settings", None)
    if isinstance(registered, WeakKeyDictionary):
        settings = t.cast("Settings | None", registered.get(app))
        if settings is not None:
            return settings
    settings = _fallback.get(app)
    if settings is None:
        settings = _fallback[app] = Settings.from_mapping(app.config, app.root_path)
    return settings


#: Links expire before ``datetime``'s last second, 9999-12-31 23:59:59 UTC.
_LAST_EXPIRY = 253402300799


def link_expiry(
    app: Flask, expires_in: float | datetime.timedelta | None, now: float
) -> int:
    """When a link made at ``now`` that lasts ``expires_in`` expires: a Unix
    time, rounded up (a link never lasts less than asked).

    The expiry of :func:`~flask_download.signed_url_for` and of the links
    of :mod:`flask_download.edge`: ``None`` means
    ``DOWNLOAD_SIGNED_MAX_AGE``.

    :raises ConfigurationError: ``expires_in`` is not a positive number of
        seconds or :class:`~datetime.timedelta`, or the link would expire
        after the year 9999 (``inf``, ``1e300``).
    """
    if expires_in is None:
        return _round_up(now + get_settings(app).signed_max_age)
    seconds = expires_in
    if isinstance(seconds, datetime.timedelta):
        seconds = seconds.total_seconds()
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= _LAST_EXPIRY - now
    ):
        raise ConfigurationError(
            "expires_in must be a positive duration (seconds or a timedelta)"
            f" that ends before the year 10000, not {expires_in!r}."
        )
    return _round_up(now + seconds)


def _round_up(timestamp: float) -> int:
    return int(timestamp + 0.999)
