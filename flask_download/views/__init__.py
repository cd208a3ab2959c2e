"""Download views: the :class:`DownloadMixin` API and ready views for each source."""

from __future__ import annotations

from ._base import BaseDownloadView as BaseDownloadView
from ._base import DownloadMixin as DownloadMixin
from ._base import DownloadView as DownloadView
from ._helpers import VIEW_ATTRIBUTES as VIEW_ATTRIBUTES
from ._ready import PathDownloadView as PathDownloadView
from ._ready import VirtualDownloadView as VirtualDownloadView
