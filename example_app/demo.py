"""A large file on the local disk, served by ``PathDownloadView``, to resume.

The file is made once, on first run, in the instance folder. It is sparse:
only a short line every MiB is written (``offset 0x00100000``), so even
1 GiB takes a few MiB of disk, and any range shows where it comes from.

Try ``curl -O http://127.0.0.1:5000/large.bin``, interrupt it, and go on
with ``curl -C - -O http://127.0.0.1:5000/large.bin``: the view answers the
``Range`` with 206, and ``If-Range`` makes sure the rest comes from the
same version of the file.
"""

from __future__ import annotations

import os

from flask import Blueprint
from flask import Flask

from flask_download import ConfigurationError
from flask_download import PathDownloadView

bp = Blueprint("demo", __name__)

#: Where the large file is, relative to ``DOWNLOAD_ROOT``.
LARGE_FILE = "sample/large.bin"
#: One marker line per this many bytes.
MARK_EVERY = 1024 * 1024

# A fixed path set by the developer is trusted; URL-supplied paths would be
# confined to DOWNLOAD_ROOT. Validators (ETag, Last-Modified) come from the
# file's stat, so a resumed download is checked against the same version.
bp.add_url_rule(
    "/large.bin", view_func=PathDownloadView.as_view("large", path=LARGE_FILE)
)


def make_large_file(app: Flask) -> None:
    """Create the large file of ``EXAMPLE_LARGE_FILE_SIZE`` bytes, once.

    An existing file of the right size is kept (its ETag stays the same
    across restarts, so downloads started before can resume).

    :raises ConfigurationError: the size is not a whole number of bytes.
    """
    size = app.config["EXAMPLE_LARGE_FILE_SIZE"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ConfigurationError(
            f"EXAMPLE_LARGE_FILE_SIZE must be a number of bytes, not {size!r}."
        )
    path = os.path.join(app.config["DOWNLOAD_ROOT"], LARGE_FILE)
    if os.path.isfile(path) and os.path.getsize(path) == size:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Written under another name and renamed: a server started twice at
    # once never serves a half-made file.
    partial = f"{path}.{os.getpid()}.part"
    with open(partial, "wb") as out:
        for offset in range(0, size, MARK_EVERY):
            out.seek(offset)
            out.write(f"offset 0x{offset:08x}\n".encode()[: size - offset])
        # The holes between markers read as zeros and take no disk space.
        out.truncate(size)
    os.replace(partial, path)
