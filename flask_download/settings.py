"""Configuration keys, their defaults, and the validated :class:`Settings`
of one application.

Every ``DOWNLOAD_*`` key is defined once, here. :func:`get_settings` is the
one helper views, sources and offload use to read them; it works with or
without :class:`~flask_download.FlaskDownload` registered.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import os
import typing as t
from weakref import WeakKeyDictionary

from flask import current_app
from flask import Flask

from .accel_rules import AccelRule
from .accel_rules import parse_rules
from .accel_rules import validate_accel
from .edge import validate_nginx_secret
from .exceptions import ConfigurationError
from .files import DEFAULT_CHUNK_SIZE

#: Every configuration key Flask-Download reads, with its default. The README
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
    # Offload rules: a list of mappings (see the README).
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
            http_allowed_hosts=_hosts(get("DOWNLOAD_HTTP_ALLOWED_HOSTS")),
            http_timeout=_timeout(get("DOWNLOAD_HTTP_TIMEOUT")),
            signed_max_age=_positive_int(
                "DOWNLOAD_SIGNED_MAX_AGE", get("DOWNLOAD_SIGNED_MAX_AGE")
            ),
        )


def _positive_int(key: str, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{key} must be a positive integer, not {value!r}.")
    return value


def _max_age(value: t.Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            "DOWNLOAD_CACHE_MAX_AGE must be a number of seconds (an integer >= 0)"
            f" or None, not {value!r}."
        )
    return value


def _hosts(value: t.Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    hosts = tuple(value)
    if not all(isinstance(host, str) and host for host in hosts):
        raise ConfigurationError(
            "DOWNLOAD_HTTP_ALLOWED_HOSTS must be a list of host names or None,"
            f" not {value!r}."
        )
    return tuple(host.lower() for host in hosts)


def _timeout(value: t.Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(
            "DOWNLOAD_HTTP_TIMEOUT must be a positive number of seconds,"
            f" not {value!r}."
        )
    return float(value)


# Settings of applications that never called ``init_app`` (views work without it).
_fallback: WeakKeyDictionary[Flask, Settings] = WeakKeyDictionary()


def get_settings(app: Flask | None = None) -> Settings:
    """The settings of ``app`` (default: the current application).

    Applications without :class:`~flask_download.FlaskDownload` get the
    defaults merged with their ``DOWNLOAD_*`` config, read once.
    """
    if app is None:
        app = t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]
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
