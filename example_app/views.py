"""The example's download views, all on one blueprint."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as orm
from flask import Blueprint
from flask import current_app
from flask import render_template_string
from flask import Response
from flask import url_for

from flask_download import DownloadFile
from flask_download import ObjectDownloadView
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download import VirtualDownloadView
from flask_download import VirtualFile

from .models import db
from .models import Document

bp = Blueprint("downloads", __name__)

_INDEX = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>Flask-Download example</title>
<h1>Flask-Download example</h1>
<ul>
{% for label, url in links %}
  <li><a href="{{ url }}">{{ label }}</a></li>
{% endfor %}
</ul>
<h2>Documents in the database</h2>
<ul>
{% for doc, by_id, by_slug, by_blueprint in documents %}
  <li>{{ doc.title }}:
    <a href="{{ by_id }}">by id</a>,
    <a href="{{ by_slug }}">by slug</a>,
    <a href="{{ by_blueprint }}">from make_download_blueprint</a></li>
{% endfor %}
</ul>
"""


@bp.get("/")
def index() -> str:
    """A page that links to every kind of download."""
    links = [
        ("A file from DOWNLOAD_ROOT (attachment)", url_for(".file", path="readme.txt")),
        ("The same file shown inline", url_for(".readme_inline")),
        ("A non-ASCII file name", url_for(".file", path="résumé.txt")),
        ("Text made in Python (VirtualDownloadView)", url_for(".hello")),
        ("A generated CSV report", url_for(".report")),
        ("A large generated file (64 MiB, streamed)", url_for(".large")),
        ("A function view (send_download)", url_for(".note", name="readme.txt")),
    ]
    documents = [
        (
            doc,
            url_for(".document", id=doc.id),
            url_for(".document_by_slug", slug=doc.slug),
            url_for("documents.object", id=doc.id),
        )
        for doc in db.session.scalars(sa.select(Document).order_by(Document.id))
    ]
    return render_template_string(_INDEX, links=links, documents=documents)


# Any file under DOWNLOAD_ROOT, by URL path; "..", symlinks out and the like
# give 404.
bp.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("file"))

# One fixed file, displayed by the browser instead of saved.
bp.add_url_rule(
    "/readme",
    view_func=PathDownloadView.as_view(
        "readme_inline", path="readme.txt", attachment=False
    ),
)

# Fixed content: the simplest virtual download.
bp.add_url_rule(
    "/hello.txt",
    view_func=VirtualDownloadView.as_view(
        "hello", content="Hello from Flask-Download!\n", basename="hello.txt"
    ),
)


@bp.get("/notes/<path:name>")
def note(name: str) -> Response:
    """A function view: ``send_download`` is ``send_file`` on the views' engine.

    ``root=`` confines the client's ``name`` to the directory, as
    ``send_from_directory`` does (and as ``PathDownloadView`` does for its
    URL paths).
    """
    return send_download(
        name, root=current_app.config["DOWNLOAD_ROOT"], attachment=False
    )


class ReportView(VirtualDownloadView):
    """A CSV made per request by overriding ``get_file``."""

    def get_file(self) -> DownloadFile:
        rows = ["day,downloads"] + [
            f"2026-11-{day:02},{day * 7}" for day in range(1, 8)
        ]
        return VirtualFile(
            "\n".join(rows) + "\n",
            name="report.csv",
            modified_time=datetime.datetime(2026, 11, 7, tzinfo=datetime.timezone.utc),
        )


bp.add_url_rule("/report.csv", view_func=ReportView.as_view("report"))


class LargeFileView(VirtualDownloadView):
    """64 MiB made chunk by chunk: never held in memory at once."""

    size = 64 * 1024 * 1024

    def get_file(self) -> DownloadFile:
        def chunks() -> cabc.Iterator[bytes]:
            block = bytes(range(256)) * 256  # 64 KiB
            for _ in range(self.size // len(block)):
                yield block

        return VirtualFile(chunks(), name="large.bin", size=self.size)


bp.add_url_rule("/large.bin", view_func=LargeFileView.as_view("large"))


class DocumentDownloadView(ObjectDownloadView):
    """A document's file, found by id or slug with one SELECT.

    The row's ``file`` (a path under ``DOWNLOAD_ROOT``) or ``content`` (bytes)
    is served with the name, media type and modification time stored next
    to it.
    """

    model = Document
    basename_field = "filename"
    mime_type_field = "mimetype"
    modification_time_field = "updated_at"
    # The ETag of stored bytes comes from updated_at, not a hash of them.
    version_field = "updated_at"

    def get_query(self) -> sa.Select[t.Any]:
        # A row holds a path or the bytes: load the (deferred) bytes in the
        # same SELECT; they are NULL, so free, for rows that hold a path.
        return sa.select(Document).options(orm.undefer(Document.content))

    def file_from_object(self, obj: t.Any) -> DownloadFile:
        if obj.file is None:
            self.file_field = "content"
        return super().file_from_object(obj)


bp.add_url_rule(
    "/documents/<int:id>", view_func=DocumentDownloadView.as_view("document")
)
bp.add_url_rule(
    "/documents/by-slug/<slug>",
    view_func=DocumentDownloadView.as_view("document_by_slug"),
)
