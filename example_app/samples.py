"""The sample users' first documents, made with the database on first run.

A fresh start is not an empty page: alice and bob each own documents that
show what the download views do with them (a non-ASCII name, a name with
quotes and a semicolon, an HTML page and an SVG drawing shown sandboxed, a
``.tar.gz`` that is never decompressed on the way). Their files are written
under ``DOWNLOAD_ROOT/sample/documents/`` and described by rows like
uploads, so every link works as it would for an uploaded file.

:func:`~example_app.models.init_db` calls :func:`sample_documents` only
when it creates the sample users, in the same transaction: a restart adds
nothing twice, and a sample the user deleted stays deleted.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import typing as t
import zlib

from flask import current_app

from .documents import guess_mimetype
from .models import Document

#: Where the sample documents are written, relative to ``DOWNLOAD_ROOT``.
SAMPLE_DOCUMENTS_DIR = "sample/documents"

_WELCOME = """\
Welcome to the document library.

This file is a row of the database (its name, type, size, CRC-32 and
time) and a file on the disk (its bytes). ObjectDownloadView reads the row
and streams the file: try Download, Preview and Share on its page, resume a
download with curl -C -, or log in as bob: for him this document is 404,
exactly like one that does not exist.
"""

_SANDBOXED_PAGE = """\
<!doctype html>
<meta charset="utf-8">
<title>A sandboxed page</title>
<h1>This page was shown inline</h1>
<p>It carries a script that would write below. Flask-Download sends inline
HTML with <code>Content-Security-Policy: sandbox</code>, so the browser
shows it in an origin of its own with scripts disabled: nothing appears.</p>
<p id="ran"></p>
<script>
  document.getElementById("ran").textContent =
    "The script ran: this page could read your session.";
</script>
"""

_DRAWING = """\
<svg xmlns="http://www.w3.org/2000/svg" width="240" height="120" viewBox="0 0 240 120">
  <title>Bytes on their way</title>
  <rect x="10" y="30" width="60" height="60" rx="6" fill="#2457c5"/>
  <rect x="170" y="30" width="60" height="60" rx="6" fill="#1d2330"/>
  <path d="M80 60 H160 M145 45 L160 60 L145 75" stroke="#5d6576" stroke-width="6"
        fill="none" stroke-linecap="round"/>
  <script>document.documentElement.style.background = "red"</script>
</svg>
"""

_REPORT = """\
quarter,downloads,resumed
2026-Q1,1204,87
2026-Q2,1519,102
2026-Q3,1876,131
"""


def _backup() -> bytes:
    """A small ``.tar.gz``, the same bytes on every run (fixed times)."""
    data = _WELCOME.encode()
    member = tarfile.TarInfo("backup/welcome.txt")
    member.size = len(data)
    member.mtime = 1767225600  # 2026-01-01 00:00:00 UTC
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(member, io.BytesIO(data))
    return gzip.compress(tar.getvalue(), mtime=0)


class Sample(t.NamedTuple):
    """One sample document: who owns it, its name, and its bytes."""

    owner: str
    filename: str
    content: bytes


#: The sample documents, newest last (the index lists the newest first).
SAMPLES = (
    Sample("alice", "backup.tar.gz", _backup()),
    Sample("alice", 'Q3 report "final"; v2.csv', _REPORT.encode()),
    Sample("alice", "drawing.svg", _DRAWING.encode()),
    Sample("alice", "sandboxed.html", _SANDBOXED_PAGE.encode()),
    Sample("alice", "Résumé – été 2026.txt", "Un résumé, en été.\n".encode()),
    Sample("alice", "welcome.txt", _WELCOME.encode()),
    Sample("bob", "bob's notes.txt", b"Only bob can download this file.\n"),
)


def sample_documents(owner: str) -> list[Document]:
    """Write the sample files of ``owner`` and return their rows (not added
    to the session).

    Each file is written under a fixed key, whole under a temporary name
    then renamed, so two workers starting together write the same bytes and
    neither ever serves half a file.
    """
    root = current_app.config["DOWNLOAD_ROOT"]
    documents = []
    for number, sample in enumerate(SAMPLES):
        if sample.owner != owner:
            continue
        path = f"{SAMPLE_DOCUMENTS_DIR}/{owner}-{number}"
        dest = os.path.join(root, path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        partial = f"{dest}.{os.getpid()}.part"
        with open(partial, "wb") as out:
            out.write(sample.content)
        os.replace(partial, dest)
        documents.append(
            Document(
                path=path,
                filename=sample.filename,
                mimetype=guess_mimetype(sample.filename),
                size=len(sample.content),
                crc32=zlib.crc32(sample.content),
            )
        )
    return documents
