"""Serve files referenced by (or stored in) SQLAlchemy rows.

SQLAlchemy is imported when a view is used, not when this module is, so that
``import flask_download`` needs only Flask.
"""

from __future__ import annotations

from ._view import ObjectDownloadView as ObjectDownloadView
