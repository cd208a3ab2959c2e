"""Several documents as one ZIP, streamed by ``ZipDownloadView``."""

from __future__ import annotations

import collections.abc as cabc
import re

from flask import abort
from flask import request

from flask_download import DownloadFile
from flask_download import FileNotFound
from flask_download import ZipDownloadView
from flask_download.sqlalchemy import open_key

from .auth import login_required
from .documents import bp
from .documents import own_documents
from .models import db
from .models import Document
from .models import MAX_ID

#: Most documents in one ZIP: a longer query string is refused (400).
MAX_ARCHIVE_MEMBERS = 100
# ASCII digits only (str.isdigit() also takes "²"), and few enough that
# int() is cheap.
_ID = re.compile(r"[0-9]{1,30}\Z")


def _archive_ids() -> list[int]:
    # Invalid input is the client's mistake: 400 with a reason, never a 500.
    values = request.args.getlist("id")
    if not values:
        abort(400, description="Select at least one document to download.")
    if len(values) > MAX_ARCHIVE_MEMBERS:
        abort(400, description=f"At most {MAX_ARCHIVE_MEMBERS} documents at once.")
    if not all(_ID.match(value) for value in values):
        abort(400, description="Document ids are numbers.")
    return list(dict.fromkeys(int(value) for value in values))


class ArchiveView(ZipDownloadView):
    """Several of the user's documents as one ZIP: ``/archive?id=1&id=2``.

    Members are stored (not compressed), so the size is known before the
    first byte and the download can resume; the CRC-32 of each member comes
    from its row, so no file is read twice.
    """

    decorators = [login_required]
    basename = "documents.zip"
    # The archive is as private as the documents in it.
    cache_control = "private, no-cache"

    def get_members(self) -> cabc.Iterable[tuple[str, DownloadFile]]:
        ids = _archive_ids()
        if max(ids) > MAX_ID:
            raise FileNotFound("No such document.")
        documents = db.session.scalars(
            own_documents().where(Document.id.in_(ids)).order_by(Document.id)
        ).all()
        if len(documents) != len(ids):
            # One of them is missing or someone else's: 404, as for one.
            raise FileNotFound("No such document.")
        members = []
        for document in documents:
            file = open_key(document.path, name=document.filename)
            file.crc32 = document.crc32
            members.append((document.filename, file))
        return members


bp.add_url_rule("/archive", view_func=ArchiveView.as_view("archive"))
