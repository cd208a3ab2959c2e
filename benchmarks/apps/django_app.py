"""Contender: django-downloadview's ``PathDownloadView`` (optional).

Run by ``benchmarks/run.py`` as ``gunicorn django_app:application`` when
Django and django-downloadview are installed; the data directory comes from
``BENCH_DATA_DIR``. No middleware, so that the figures are the view's.
"""

from __future__ import annotations

import os
import typing as t

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="benchmark-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path as url_path  # noqa: E402
from django.utils._os import safe_join  # noqa: E402
from django_downloadview import PathDownloadView  # noqa: E402

DATA_DIR = os.environ["BENCH_DATA_DIR"]


class RootedPathDownloadView(PathDownloadView):  # type: ignore[misc]
    """``PathDownloadView`` takes an absolute path; confine the URL's to the data."""

    def get_path(self) -> t.Any:
        return safe_join(DATA_DIR, self.kwargs["path"])


urlpatterns = [
    url_path("files/<path:path>", RootedPathDownloadView.as_view()),
]

application = get_wsgi_application()
