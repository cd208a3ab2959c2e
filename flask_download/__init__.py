"""Flask-Download: file downloads for Flask, with HTTP done right."""

from __future__ import annotations

import typing as t

from .accel import AccelResponse as AccelResponse
from .accel import AccelRule as AccelRule
from .accel import offload as offload
from .archive import ArchiveFile as ArchiveFile
from .archive import ZipDownloadView as ZipDownloadView
from .blueprints import make_download_blueprint as make_download_blueprint
from .edge import cloudfront_signed_cookies as cloudfront_signed_cookies
from .edge import cloudfront_signed_url as cloudfront_signed_url
from .edge import nginx_secure_link as nginx_secure_link
from .edge import nginx_secure_link_required as nginx_secure_link_required
from .edge import nginx_secure_url_for as nginx_secure_url_for
from .exceptions import ConfigurationError as ConfigurationError
from .exceptions import DisallowedURL as DisallowedURL
from .exceptions import DownloadError as DownloadError
from .exceptions import FileNotFound as FileNotFound
from .exceptions import InvalidSignature as InvalidSignature
from .exceptions import SignatureExpired as SignatureExpired
from .exceptions import StorageUnavailable as StorageUnavailable
from .exceptions import UpstreamError as UpstreamError
from .exceptions import UpstreamTimeout as UpstreamTimeout
from .extension import DEFAULTS as DEFAULTS
from .extension import FlaskDownload as FlaskDownload
from .files import DownloadFile as DownloadFile
from .files import PathFile as PathFile
from .files import VirtualFile as VirtualFile
from .http import HTTPDownloadView as HTTPDownloadView
from .http import HTTPFile as HTTPFile
from .objects import ObjectDownloadView as ObjectDownloadView
from .response import content_disposition as content_disposition
from .response import DownloadResponse as DownloadResponse
from .shortcuts import send_download as send_download
from .signals import download_finished as download_finished
from .signals import download_started as download_started
from .signing import signature_required as signature_required
from .signing import signed_url_for as signed_url_for
from .storage import resolve_storage as resolve_storage
from .storage import StorageDownloadView as StorageDownloadView
from .storage import StorageFile as StorageFile
from .testing import assert_download_response as assert_download_response
from .views import BaseDownloadView as BaseDownloadView
from .views import DownloadMixin as DownloadMixin
from .views import DownloadView as DownloadView
from .views import PathDownloadView as PathDownloadView
from .views import VirtualDownloadView as VirtualDownloadView

if t.TYPE_CHECKING:  # pragma: no cover
    from .sqlalchemy import FileColumn as FileColumn

__all__ = [
    "DEFAULTS",
    "AccelResponse",
    "AccelRule",
    "ArchiveFile",
    "BaseDownloadView",
    "ConfigurationError",
    "DisallowedURL",
    "DownloadError",
    "DownloadFile",
    "DownloadMixin",
    "DownloadResponse",
    "DownloadView",
    "FileNotFound",
    "FlaskDownload",
    "HTTPDownloadView",
    "HTTPFile",
    "InvalidSignature",
    "ObjectDownloadView",
    "PathDownloadView",
    "PathFile",
    "SignatureExpired",
    "StorageDownloadView",
    "StorageFile",
    "StorageUnavailable",
    "UpstreamError",
    "UpstreamTimeout",
    "VirtualDownloadView",
    "VirtualFile",
    "ZipDownloadView",
    "assert_download_response",
    "cloudfront_signed_cookies",
    "cloudfront_signed_url",
    "content_disposition",
    "download_finished",
    "download_started",
    "make_download_blueprint",
    "nginx_secure_link",
    "nginx_secure_link_required",
    "nginx_secure_url_for",
    "offload",
    "resolve_storage",
    "send_download",
    "signature_required",
    "signed_url_for",
]


def __getattr__(name: str) -> t.Any:
    # DESIGN: every public name is importable from here, and a name whose
    # optional dependency is missing fails on use, never on import. So
    # FileColumn (SQLAlchemy) is loaded on first access, and is not in
    # __all__ (a star import must not need SQLAlchemy).
    if name == "FileColumn":
        from .sqlalchemy import FileColumn

        return FileColumn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
