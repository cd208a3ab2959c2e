"""Upload, list, download, preview, share and archive documents.

Every download goes through a Flask-Download view:

- :class:`DocumentView` (``ObjectDownloadView``) serves the logged-in
  user's documents; another user's is 404, exactly like a missing one;
- :class:`PreviewView` shows images, PDF and text inline (HTML and SVG
  with ``Content-Security-Policy: sandbox``, so their scripts never run);
- :class:`SharedDocumentView` opens a signed link that expires, for
  anyone, logged in or not;
- :class:`~example_app.archive.ArchiveView` (``ZipDownloadView``, in
  :mod:`example_app.archive`) streams several as one ZIP.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import mimetypes
import os
import secrets
import typing as t
import unicodedata
import zlib

import sqlalchemy as sa
from flask import abort
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import Flask
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from flask_download import DownloadFile
from flask_download import ObjectDownloadView
from flask_download import signed_url_for

from .auth import current_user
from .auth import login_required
from .models import db
from .models import Document
from .models import MAX_ID

bp = Blueprint("documents", __name__)

#: Directory of the uploads, under ``DOWNLOAD_ROOT``.
UPLOAD_DIR = "uploads"
#: How long a shared link can stay valid: form value (seconds) -> label.
SHARE_CHOICES = {"300": "5 minutes", "86400": "1 day"}

# Media types of compressed files, for names mimetypes reads as an encoding
# ("x.tar.gz" is a tar "encoded" with gzip): the file is served as the
# bytes it is, never decompressed by the browser.
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}
# Shown inline by every browser without a plug-in. HTML and SVG are
# included: Flask-Download sandboxes inline active content.
_PREVIEW_TYPES = frozenset({"application/pdf", "application/json"})


def previewable(mimetype: str) -> bool:
    """Whether the preview link shows a file of this type inline."""
    return mimetype.startswith(("image/", "text/")) or mimetype in _PREVIEW_TYPES


def make_upload_dir(app: Flask) -> None:
    """Create the upload directory under ``DOWNLOAD_ROOT`` on first run."""
    os.makedirs(os.path.join(app.config["DOWNLOAD_ROOT"], UPLOAD_DIR), exist_ok=True)


# -- uploads ------------------------------------------------------------------


# Bidi controls make "\u202egpj.exe" display as "exe.jpg" in the list.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def clean_filename(raw: str) -> str:
    """The name to keep for an upload: its last path segment, without control
    or bidi control characters, at most 255 characters (the extension kept).

    The name is only ever shown and sent back in ``Content-Disposition``
    (which Flask-Download quotes safely); it never names a file on disk.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        c for c in name if unicodedata.category(c) != "Cc" and c not in _BIDI_CONTROLS
    ).strip()
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: 254 - len(ext)] + dot + ext
        else:
            name = name[:255]
    return name or "upload"


def guess_mimetype(filename: str) -> str:
    """The media type stored for an upload, from its name."""
    mimetype, encoding = mimetypes.guess_type(filename, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return mimetype or "application/octet-stream"


def store_upload(stream: t.IO[bytes], filename: str) -> Document:
    """Write an uploaded file under a new random key and describe it in a row.

    The size and CRC-32 are computed while the bytes are written, so the
    file is read once. The row is added to the session, not committed.
    """
    path = f"{UPLOAD_DIR}/{secrets.token_hex(16)}"
    dest = os.path.join(current_app.config["DOWNLOAD_ROOT"], path)
    size = crc = 0
    try:
        # "x": never overwrite, even if a key ever came up twice.
        with open(dest, "xb") as out:
            while chunk := stream.read(64 * 1024):
                out.write(chunk)
                size += len(chunk)
                crc = zlib.crc32(chunk, crc)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest)
        raise
    name = clean_filename(filename)
    document = Document(
        owner=current_user(),
        path=path,
        filename=name,
        mimetype=guess_mimetype(name),
        size=size,
        crc32=crc,
    )
    db.session.add(document)
    return document


def _remove_files(documents: cabc.Iterable[Document]) -> None:
    root = current_app.config["DOWNLOAD_ROOT"]
    for document in documents:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(root, document.path))


# -- pages --------------------------------------------------------------------


def own_documents() -> sa.Select[Document]:
    """The logged-in user's documents.

    Every page and download starts from this query: a document of another
    user is never found, so it is 404 like a missing one.
    """
    return sa.select(Document).where(Document.owner_id == current_user().id)


def _get_own_document(id: int) -> Document:
    if id > MAX_ID:
        abort(404)
    document = db.session.scalar(own_documents().where(Document.id == id))
    if document is None:
        abort(404)
    return document


#: The ZIP link of the index holds this many of the newest documents.
ARCHIVE_LINK_MEMBERS = 10
#: How long the signed link of the index stays valid, in seconds.
INDEX_SHARE_EXPIRES = 300
# Shown inline with Content-Security-Policy: sandbox (the preview the index
# links to, to show that their scripts do not run).
_ACTIVE_TYPES = frozenset({"text/html", "image/svg+xml"})


@bp.get("/")
@login_required
def index() -> str:
    """The user's documents, an upload form and a link to each kind of download.

    The links that need a document use the newest one (and the newest HTML
    or SVG page for the sandboxed preview); the others come from the
    ``demo`` blueprint (see :func:`example_app.demo.demo_links`).
    """
    documents = db.session.scalars(
        own_documents().order_by(Document.uploaded_at.desc(), Document.id.desc())
    ).all()
    newest = documents[0] if documents else None
    share_url = None
    if newest is not None:
        share_url = signed_url_for(
            ".shared",
            id=newest.id,
            key=newest.share_key,
            expires_in=INDEX_SHARE_EXPIRES,
        )
    return render_template(
        "index.html",
        documents=documents,
        previewable=previewable,
        newest=newest,
        page=next((d for d in documents if d.mimetype in _ACTIVE_TYPES), None),
        share_url=share_url,
        archive_ids=[d.id for d in documents[:ARCHIVE_LINK_MEMBERS]],
    )


@bp.post("/upload")
@login_required
def upload() -> Response | tuple[str, int]:
    """Store the chosen files (several at once) and list them."""
    files = [file for file in request.files.getlist("file") if file.filename]
    if not files:
        flash("Choose a file to upload first.")
        return index(), 400
    documents = []
    try:
        for file in files:
            documents.append(store_upload(file.stream, file.filename or ""))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        _remove_files(documents)
        raise
    flash("Uploaded " + ", ".join(document.filename for document in documents) + ".")
    return redirect(url_for(".index"))


@bp.get("/documents/<int:id>")
@login_required
def detail(id: int) -> str:
    """One document: its metadata, links, the share form and the wire panel."""
    document = _get_own_document(id)
    return render_template(
        "document.html",
        document=document,
        previewable=previewable(document.mimetype),
        share_choices=SHARE_CHOICES,
    )


@bp.post("/documents/<int:id>/share")
@login_required
def share(id: int) -> str | tuple[str, int]:
    """Make a signed link to the document that anyone can open until it expires."""
    document = _get_own_document(id)
    expires = request.form.get("expires", "")
    context: dict[str, t.Any] = {
        "document": document,
        "previewable": previewable(document.mimetype),
        "share_choices": SHARE_CHOICES,
    }
    if expires not in SHARE_CHOICES:
        context["error"] = "Choose how long the link stays valid."
        return render_template("document.html", **context), 400
    # The signature covers the path and the expiry: the link opens this
    # document only, and only until then (403 if changed, 410 once expired).
    # The path holds the row's random key as well as its id: once the
    # document is deleted, the link is 404 even for a row given its id.
    context["share_url"] = signed_url_for(
        ".shared",
        id=document.id,
        key=document.share_key,
        expires_in=int(expires),
        _external=True,
    )
    context["share_label"] = SHARE_CHOICES[expires]
    return render_template("document.html", **context)


@bp.post("/documents/<int:id>/delete")
@login_required
def delete(id: int) -> Response:
    """Delete the row, then the file."""
    document = _get_own_document(id)
    db.session.delete(document)
    db.session.commit()
    _remove_files([document])
    flash(f"Deleted {document.filename}.")
    return redirect(url_for(".index"))


# -- downloads ----------------------------------------------------------------


class SharedDocumentView(ObjectDownloadView):
    """Any document, through a link made with ``signed_url_for``.

    ``signed = True``: a missing or altered signature is 403 and an expired
    link 410, checked before the database is queried.

    A signature binds the URL values, not the row: the link also holds the
    row's random key (``/shared/<id>/<key>``), so a deleted document's link
    never opens the row that reuses its id.
    """

    model = Document
    file_field = "path"  # a key relative to DOWNLOAD_ROOT
    basename_field = "filename"
    mime_type_field = "mimetype"
    size_field = "size"
    modification_time_field = "uploaded_at"
    signed = True
    # Only the visitor's browser may keep a copy, and it asks again each
    # time (a cheap 304 while the document is unchanged), so that a deleted
    # document, a logout or an expired link is seen at once.
    cache_control = "private, no-cache"

    def get_query(self) -> sa.Select[t.Any]:
        # The row with the id *and* the signed key (the last part of its
        # path, see Document.share_key), else 404.
        key = "/" + self.kwargs["key"]
        return super().get_query().where(Document.path.endswith(key, autoescape=True))


class DocumentView(SharedDocumentView):
    """The logged-in user's documents, saved as attachments."""

    decorators = [login_required]
    signed = False

    def get_query(self) -> sa.Select[t.Any]:
        # Other users' rows are outside the query, so they are 404.
        return own_documents()


class PreviewView(DocumentView):
    """Inline for the types :func:`previewable` accepts, else an attachment."""

    def file_from_object(self, obj: t.Any) -> DownloadFile:
        # Decided per document: a crafted preview URL for a program
        # still only saves it.
        self.attachment = not previewable(obj.mimetype)
        return super().file_from_object(obj)


bp.add_url_rule(
    "/documents/<int:id>/download", view_func=DocumentView.as_view("download")
)
bp.add_url_rule("/documents/<int:id>/preview", view_func=PreviewView.as_view("preview"))
bp.add_url_rule(
    "/shared/<int:id>/<key>", view_func=SharedDocumentView.as_view("shared")
)
