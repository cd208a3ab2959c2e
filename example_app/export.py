"""Files made from the user's document list, on each request.

- ``/documents.csv``, from a function view with ``send_download``, the
  function-view counterpart of the download views (and a drop-in for
  ``flask.send_file``);
- ``/documents.sfv``, the CRC-32 of each document, from a
  ``VirtualDownloadView``.

Both get the same headers, validators (a 304 while the list is unchanged)
and ranges as every other download.
"""

from __future__ import annotations

import csv
import io

from werkzeug.wrappers import Response

from flask_download import DownloadFile
from flask_download import send_download
from flask_download import VirtualDownloadView
from flask_download import VirtualFile

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


class ChecksumsView(VirtualDownloadView):
    """The CRC-32 of each document in SFV (Simple File Verification), the
    format ``cksfv`` and many download managers check files with.

    The text is made by :meth:`get_file`; as a ``str`` it is seekable, so it
    gets a strong ETag from its content, ``Content-Length`` and ranges.
    """

    decorators = [login_required]
    mimetype = "text/plain"
    cache_control = "private, no-cache"

    def get_file(self) -> DownloadFile:
        user = current_user()
        lines = [f"; CRC-32 of the documents of {user.name}, for cksfv -f"]
        for document in db.session.scalars(own_documents().order_by(Document.id)):
            lines.append(f"{document.filename} {document.crc32:08X}")
        return VirtualFile("\n".join(lines) + "\n", name=f"{user.name}-documents.sfv")


bp.add_url_rule("/documents.sfv", view_func=ChecksumsView.as_view("checksums"))
