"""The user's document list as a CSV file, from a function view.

``send_download`` is the function-view counterpart of the download views
(and a drop-in for ``flask.send_file``): the same headers, validators and
ranges, for content made in the view.
"""

from __future__ import annotations

import csv
import io

from werkzeug.wrappers import Response

from flask_download import send_download

from .auth import current_user
from .auth import login_required
from .documents import bp
from .documents import own_documents
from .models import db
from .models import Document

# A cell starting with one of these is a formula to a spreadsheet: a file
# named "=HYPERLINK(...)" must stay text (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


@bp.get("/documents.csv")
@login_required
def export() -> Response:
    """Name, type, size, CRC-32 and upload time of each of the user's documents."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "filename", "mimetype", "size", "crc32", "uploaded_at"])
    for document in db.session.scalars(own_documents().order_by(Document.id)):
        writer.writerow(
            [
                document.id,
                _cell(document.filename),
                document.mimetype,
                document.size,
                f"{document.crc32:08x}",
                document.uploaded_at.isoformat(timespec="seconds") + "Z",
            ]
        )
    return send_download(
        out.getvalue().encode(),
        basename=f"{current_user().name}-documents.csv",
        mimetype="text/csv",
        cache_control="private, no-cache",
    )
