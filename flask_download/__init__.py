"""Flask-Download: file downloads for Flask, with HTTP done right."""

from __future__ import annotations

from .exceptions import ConfigurationError as ConfigurationError
from .exceptions import DownloadError as DownloadError
from .exceptions import FileNotFound as FileNotFound
from .extension import DEFAULTS as DEFAULTS
from .extension import FlaskDownload as FlaskDownload
from .files import DownloadFile as DownloadFile
from .files import PathFile as PathFile
from .files import VirtualFile as VirtualFile
from .response import content_disposition as content_disposition
from .response import DownloadResponse as DownloadResponse
from .views import BaseDownloadView as BaseDownloadView
from .views import DownloadMixin as DownloadMixin
from .views import DownloadView as DownloadView
from .views import PathDownloadView as PathDownloadView
from .views import VirtualDownloadView as VirtualDownloadView

# -- models and blueprints (issue 3) --
# -- storages and remote files (issue 4) --
# -- offload (issue 5) --
# -- testing, signals, signed links (issue 6) --

__all__ = [
    "DEFAULTS",
    "BaseDownloadView",
    "ConfigurationError",
    "DownloadError",
    "DownloadFile",
    "DownloadMixin",
    "DownloadResponse",
    "DownloadView",
    "FileNotFound",
    "FlaskDownload",
    "PathDownloadView",
    "PathFile",
    "VirtualDownloadView",
    "VirtualFile",
    "content_disposition",
]
