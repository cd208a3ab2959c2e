"""The :class:`FlaskDownload` extension, its configuration keys and settings."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import os
import typing as t
from weakref import WeakKeyDictionary

from flask import current_app
from flask import Flask
from flask import Response

from .accel import AccelRule
from .accel import offload_after_request
from .accel import parse_rules
from .accel import validate_accel
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

    Applications without :class:`FlaskDownload` get the defaults merged with
    their ``DOWNLOAD_*`` config, read once.
    """
    if app is None:
        app = t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]
    ext = app.extensions.get("download")
    if isinstance(ext, FlaskDownload):
        settings = ext._settings.get(app)
        if settings is not None:
            return settings
    settings = _fallback.get(app)
    if settings is None:
        settings = _fallback[app] = Settings.from_mapping(app.config, app.root_path)
    return settings


def _offload_after_request(response: Response) -> Response:
    # Offload (issue 5) for download responses built by hand; views decide
    # their own, and every other response is returned untouched.
    settings = get_settings()
    if settings.accel is None:
        return response
    return offload_after_request(response, settings)


class FlaskDownload:
    """The Flask-Download extension: reads and validates ``DOWNLOAD_*`` config.

    Download views work without it (the defaults apply); register it to
    validate configuration at start-up and to give defaults in code::

        download = FlaskDownload()

        def create_app():
            app = Flask(__name__)
            download.init_app(app)
            return app

    Each keyword argument is the default of one config key; a value set in
    ``app.config`` wins over it, and a view attribute wins over both.

    :param app: an application to initialise right away.
    :param root: default of ``DOWNLOAD_ROOT``.
    :param chunk_size: default of ``DOWNLOAD_CHUNK_SIZE``.
    :param max_ranges: default of ``DOWNLOAD_MAX_RANGES``.
    :param cache_max_age: default of ``DOWNLOAD_CACHE_MAX_AGE``.
    :param accel: default of ``DOWNLOAD_ACCEL``.
    :param accel_rules: default of ``DOWNLOAD_ACCEL_RULES``.
    :param http_allowed_hosts: default of ``DOWNLOAD_HTTP_ALLOWED_HOSTS``.
    :param http_timeout: default of ``DOWNLOAD_HTTP_TIMEOUT``.
    :param signed_max_age: default of ``DOWNLOAD_SIGNED_MAX_AGE``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        root: str | os.PathLike[str] | None = None,
        chunk_size: int | None = None,
        max_ranges: int | None = None,
        cache_max_age: int | None = None,
        accel: str | None = None,
        accel_rules: cabc.Iterable[cabc.Mapping[str, t.Any] | AccelRule] | None = None,
        http_allowed_hosts: cabc.Iterable[str] | None = None,
        http_timeout: float | None = None,
        signed_max_age: int | None = None,
    ) -> None:
        given = {
            "root": root,
            "chunk_size": chunk_size,
            "max_ranges": max_ranges,
            "cache_max_age": cache_max_age,
            "accel": accel,
            "accel_rules": accel_rules,
            "http_allowed_hosts": http_allowed_hosts,
            "http_timeout": http_timeout,
            "signed_max_age": signed_max_age,
        }
        self._defaults = {
            _ARGUMENTS[name]: value
            for name, value in given.items()
            if value is not None
        }
        # Fail now, not at init_app, on a bad argument.
        Settings.from_mapping(self._defaults)
        self._settings: WeakKeyDictionary[Flask, Settings] = WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read and validate the ``DOWNLOAD_*`` config of ``app``.

        Missing keys are filled in ``app.config`` (argument, else default), so
        ``app.config`` shows the values in force.

        :raises ConfigurationError: a config value is invalid.
        :raises RuntimeError: the extension is already registered on ``app``.
        """
        if "download" in app.extensions:
            raise RuntimeError(
                "A 'FlaskDownload' instance is already registered on this app."
                " Call 'init_app' once per application."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, self._defaults.get(key, value))
        self._settings[app] = Settings.from_mapping(app.config, app.root_path)
        app.extensions["download"] = self
        app.after_request(_offload_after_request)

    def settings(self, app: Flask | None = None) -> Settings:
        """The validated settings of ``app`` (default: the current application).

        :raises RuntimeError: ``init_app`` was not called for ``app``.
        """
        if app is None:
            app = t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]
        try:
            return self._settings[app]
        except KeyError:
            raise RuntimeError(
                "This app is not registered with this 'FlaskDownload' instance."
                " Did you forget to call 'init_app'?"
            ) from None
