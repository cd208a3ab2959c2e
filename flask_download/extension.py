"""The :class:`FlaskDownload` extension.

The configuration keys, their defaults and :class:`Settings` live in
:mod:`flask_download.settings` (re-exported here).
"""

from __future__ import annotations

import collections.abc as cabc
import os
import typing as t
from weakref import WeakKeyDictionary

from flask import Flask
from flask import Response

from ._context import app_object
from .accel import offload_after_request
from .accel_rules import AccelRule
from .settings import _ARGUMENTS
from .settings import check_config_keys
from .settings import check_root
from .settings import DEFAULTS as DEFAULTS
from .settings import get_settings as get_settings
from .settings import Settings as Settings
from .signing import keep_within_link


def _offload_after_request(response: Response) -> Response:
    # Offload (issue 5) for download responses built by hand; views decide
    # their own, and every other response is returned untouched.
    if getattr(response, "_offload_decided", True):
        return response  # not a download response, or one a view decided
    # Registered by init_app only when DOWNLOAD_ACCEL or its rules are set.
    offloaded = offload_after_request(response, get_settings())
    if offloaded is response:
        return response
    # Its offload headers came after a signed link's cap: cap them too.
    keep_within_link(offloaded)
    return offloaded


def _as_tuple(value: t.Any) -> t.Any:
    """A list argument as a tuple (read once, shared by every app); other
    values unchanged, for the settings to accept or refuse."""
    if isinstance(value, (str, bytes, cabc.Mapping)) or not isinstance(
        value, cabc.Iterable
    ):
        return value
    return tuple(value)


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
            # Read here and again by each init_app: a generator would be
            # empty the second time (no rules, no allowed host, silently).
            "accel_rules": _as_tuple(accel_rules),
            "http_allowed_hosts": _as_tuple(http_allowed_hosts),
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

        Missing keys are filled in ``app.config`` (argument, else default).
        The values are read once, here, as other extensions read theirs:
        set the configuration before calling ``init_app`` (in the app
        factory); a change made to ``app.config`` afterwards is not seen.

        :raises ConfigurationError: a config value is invalid,
            ``DOWNLOAD_ROOT`` is not an existing directory, or a key looks
            meant for a setting it is not (``DOWNLOAD_MAX_RANGE``).
        :raises RuntimeError: the extension is already registered on ``app``.
        """
        if "download" in app.extensions:
            raise RuntimeError(
                "A 'FlaskDownload' instance is already registered on this app."
                " Call 'init_app' once per application."
            )
        check_config_keys(app.config)
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, self._defaults.get(key, value))
        settings = Settings.from_mapping(app.config, app.root_path)
        if settings.root is not None:
            check_root(settings.root, "DOWNLOAD_ROOT")
        self._settings[app] = settings
        app.extensions["download"] = self
        if settings.accel is not None or settings.accel_rules:
            # Without offload configured the hook would do nothing on every
            # request (the settings are fixed here).
            app.after_request(_offload_after_request)

    def settings(self, app: Flask | None = None) -> Settings:
        """The validated settings of ``app`` (default: the current application).

        :raises RuntimeError: ``init_app`` was not called for ``app``.
        """
        if app is None:
            app = app_object()
        try:
            return self._settings[app]
        except KeyError:
            raise RuntimeError(
                "This app is not registered with this 'FlaskDownload' instance."
                " Did you forget to call 'init_app'?"
            ) from None
