"""The exceptions Flask-Download raises, all derived from :class:`DownloadError`."""

from __future__ import annotations


class DownloadError(Exception):
    """Base class of every error raised by Flask-Download."""


class FileNotFound(DownloadError):
    """The file a view was asked to serve does not exist (or may not be served).

    Views answer it with :meth:`DownloadMixin.file_not_found_response`
    (a 404 by default).
    """


class ConfigurationError(DownloadError, ValueError):
    """A view attribute or a ``DOWNLOAD_*`` setting is missing or has a bad value.

    Raised at start-up or on the first request, with a message that names the fix.
    """
