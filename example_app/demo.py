"""Blueprint "demo": the downloads that come from elsewhere than a row.

- ``/large.bin``: a large file on the local disk, served by
  ``PathDownloadView``, to resume;
- ``/storage/<path>``: a file of an fsspec storage (``StorageDownloadView``),
  by default a folder under ``DOWNLOAD_ROOT``;
- ``/remote``: a file of another web server, streamed through the app
  (``HTTPDownloadView``);
- ``/edge/<path>``: a file that nginx serves itself in production, to
  holders of a ``secure_link`` link; here the app checks the same links.

The large file is made once, on first run, in the instance folder. It is
sparse: only a short line every MiB is written (``offset 0x00100000``), so
even 1 GiB takes a few MiB of disk, and any range shows where it comes from.

Try ``curl -O http://127.0.0.1:5000/large.bin``, interrupt it, and go on
with ``curl -C - -O http://127.0.0.1:5000/large.bin``: the view answers the
``Range`` with 206, and ``If-Range`` makes sure the rest comes from the
same version of the file.

``fsspec`` and ``urllib3`` (extras ``Flask-Download[storage]`` and
``Flask-Download[http]``) are only imported when ``/storage`` and
``/remote`` are used; without them those two answer 501 with the command
that installs them, and the rest of the app works.
"""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import hmac
import importlib.util
import os
import typing as t

from flask import abort
from flask import Blueprint
from flask import current_app
from flask import Flask
from flask import render_template
from flask import url_for
from werkzeug.wrappers import Response

from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import HTTPDownloadView
from flask_download import nginx_secure_link_required
from flask_download import nginx_secure_url_for
from flask_download import PathDownloadView
from flask_download import StorageDownloadView
from flask_download import UpstreamError
from flask_download import UpstreamTimeout

if t.TYPE_CHECKING:
    from flask.typing import RouteCallable

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


def _write_missing(path: str, content: bytes) -> None:
    # Whole under another name, then renamed: a server started twice at
    # once never serves half a file. An existing file is kept, and so are
    # its validators.
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.part"
    with open(partial, "wb") as out:
        out.write(content)
    os.replace(partial, path)


def missing_extra(module: str, extra: str) -> str | None:
    """The command that installs ``module``, or ``None`` if it is installed.

    Checked without importing it: the app starts without loading a backend
    that no request has used yet.
    """
    if importlib.util.find_spec(module) is not None:
        return None
    return f"pip install 'Flask-Download[{extra}]'"


def _extra_view(
    name: str, module: str, extra: str, view: cabc.Callable[[], RouteCallable]
) -> RouteCallable:
    """``view()``, or where ``module`` is missing a view that says (501) what
    to install: the rest of the app works with the ``example`` extra alone."""
    command = missing_extra(module, extra)
    if command is None:
        return view()

    def needs_extra(**kwargs: t.Any) -> t.NoReturn:
        abort(501, description=f"This demo needs {module!r}: {command}.")

    needs_extra.__name__ = name
    return needs_extra


# -- a file in an fsspec storage ------------------------------------------------

#: The default storage of the demo, a folder relative to ``DOWNLOAD_ROOT``
#: (``EXAMPLE_STORAGE_URL`` is ``file://`` and its path).
STORAGE_DIR = "sample/storage"
#: Files written in a ``file://`` storage on first run; the index links each.
STORAGE_FILES = {
    "readme.txt": b"This file was read through fsspec by StorageDownloadView.\n",
    "reports/2026/summary.csv": b"month,downloads\n2026-01,412\n2026-02,398\n",
}


class StorageView(StorageDownloadView):
    """A file of the fsspec storage ``EXAMPLE_STORAGE_URL``: ``/storage/<path>``.

    The path comes from the URL and stays inside the storage's prefix, as a
    URL path stays inside ``DOWNLOAD_ROOT``: ``..``, absolute paths and
    symbolic links leading out are 404. Set ``EXAMPLE_STORAGE_URL`` to
    ``s3://bucket/prefix`` (extra ``Flask-Download[s3]``) to serve the same
    paths from S3.
    """

    def get_storage(self) -> t.Any:
        # The URL is the app's setting; Flask-Download makes the filesystem
        # once per URL and reuses it.
        if self.storage is None:
            self.storage = current_app.config["EXAMPLE_STORAGE_URL"]
        return super().get_storage()

    def get_file(self) -> DownloadFile:
        try:
            return super().get_file()
        except ImportError as e:
            # A URL whose backend is not installed (s3:// without s3fs): the
            # message names the extra. A page that says so, not a 500.
            abort(501, description=str(e))


bp.add_url_rule(
    "/storage/<path:path>",
    view_func=_extra_view(
        "storage", "fsspec", "storage", lambda: StorageView.as_view("storage")
    ),
)


def make_storage_files(app: Flask) -> None:
    """Point ``EXAMPLE_STORAGE_URL`` at the sample folder unless it is set,
    and write the sample files in a ``file://`` storage that lacks them.

    Plain files on the disk: fsspec is not needed (nor imported) to start.
    Files of another store (S3...) are yours to upload.
    """
    if app.config["EXAMPLE_STORAGE_URL"] is None:
        folder = os.path.join(app.config["DOWNLOAD_ROOT"], STORAGE_DIR)
        app.config["EXAMPLE_STORAGE_URL"] = "file://" + folder
    url = app.config["EXAMPLE_STORAGE_URL"]
    if not isinstance(url, str) or not url.startswith("file://"):
        return
    folder = url.removeprefix("file://")
    for key, content in STORAGE_FILES.items():
        _write_missing(os.path.join(folder, *key.split("/")), content)


# -- a file of another web server -----------------------------------------------


class RemoteView(HTTPDownloadView):
    """``EXAMPLE_HTTP_URL``, fetched and streamed through the app: ``/remote``.

    The client's ``Range`` and conditional headers go upstream and the
    answer is relayed (206, 304...). The URL is the app's setting, never
    the client's. Only hosts whose addresses are all public are fetched
    (``DOWNLOAD_HTTP_ALLOWED_HOSTS`` is unset): a URL, or a redirect, to
    this machine, the local network or a cloud metadata address is refused
    with 403. To proxy a server of your own network, list its host name in
    ``DOWNLOAD_HTTP_ALLOWED_HOSTS``, and only that one.
    """

    def get_url(self) -> str:
        return str(current_app.config["EXAMPLE_HTTP_URL"])


bp.add_url_rule(
    "/remote",
    view_func=_extra_view(
        "remote", "urllib3", "http", lambda: RemoteView.as_view("remote")
    ),
)


@bp.errorhandler(UpstreamError)
@bp.errorhandler(UpstreamTimeout)
def remote_failed(error: UpstreamError | UpstreamTimeout) -> Response:
    """The 502 or 504 of ``/remote``, naming the URL it could not fetch.

    The default URL is on the internet: on a machine without access to it,
    the page says so and which setting points the demo elsewhere. The cause
    (``error.detail``) stays in the log.
    """
    response = error.get_response()
    response.set_data(
        render_template(
            "error.html", error=error, remote_url=current_app.config["EXAMPLE_HTTP_URL"]
        )
    )
    response.content_type = "text/html; charset=utf-8"
    return response


# -- a link nginx checks --------------------------------------------------------

#: The files behind the secure links, relative to ``DOWNLOAD_ROOT``.
EDGE_DIR = "sample/edge"
#: Files written there on first run; the index links each.
EDGE_FILES = {
    "handbook.txt": b"nginx checked the link's hash and expiry, then sent this file.\n",
}
#: How long the secure links on the index stay valid, in seconds.
EDGE_LINK_EXPIRES = 3600


class EdgeView(PathDownloadView):
    """A file that nginx sends itself in production, to holders of a link
    made by ``nginx_secure_url_for``: ``/edge/<path>?md5=...&expires=...``.

    In front of the app, nginx checks each link and never asks Python::

        location /edge/ {
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri <the secret>";
            if ($secure_link = "") { return 403; }
            if ($secure_link = "0") { return 410; }
            alias /path/to/instance/files/sample/edge/;
        }

    Where nginx does not answer first (``flask run``, tests), this view
    checks the same links (403 if altered, 410 once expired) and serves the
    file from the same folder. The secret is
    ``DOWNLOAD_NGINX_SECURE_LINK_SECRET``.
    """

    decorators = [nginx_secure_link_required]

    def get_root(self) -> str:
        return os.path.join(current_app.config["DOWNLOAD_ROOT"], EDGE_DIR)


bp.add_url_rule("/edge/<path:path>", view_func=EdgeView.as_view("edge"))


def make_edge_files(app: Flask) -> None:
    """Write the files behind the secure links, and derive the secret shared
    with nginx from ``SECRET_KEY`` unless it is set.

    Set ``DOWNLOAD_NGINX_SECURE_LINK_SECRET`` in ``instance/config.py`` to
    the value written in nginx's ``secure_link_md5`` when nginx serves
    ``/edge/``: a derived one changes with ``SECRET_KEY``.
    """
    if not app.config.get("DOWNLOAD_NGINX_SECURE_LINK_SECRET"):
        key = app.config["SECRET_KEY"]
        key = key if isinstance(key, bytes) else str(key).encode()
        # An HMAC, not the key itself: nginx's configuration never holds the
        # key that signs sessions.
        app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = hmac.new(
            key, b"example_app nginx secure_link", hashlib.sha256
        ).hexdigest()
    folder = os.path.join(app.config["DOWNLOAD_ROOT"], EDGE_DIR)
    for name, content in EDGE_FILES.items():
        _write_missing(os.path.join(folder, name), content)


# -- the links on the index -----------------------------------------------------


class DemoLinks(t.NamedTuple):
    """What the index shows of each demo."""

    #: ``(key, URL)`` of each sample file of the storage.
    storage: list[tuple[str, str]]
    #: The protocol of ``EXAMPLE_STORAGE_URL`` (not the whole URL: the
    #: page need not tell where the files are).
    storage_protocol: str
    #: The command that installs fsspec, if it is missing.
    storage_missing: str | None
    #: The URL of the remote download, and the URL it fetches.
    remote: str
    remote_url: str
    #: The command that installs urllib3, if it is missing.
    remote_missing: str | None
    #: ``(name, secure link)`` of each file behind nginx.
    edge: list[tuple[str, str]]


@bp.app_template_global()
def demo_links() -> DemoLinks:
    """The links of the demos, for the index (a template global)."""
    return DemoLinks(
        storage=[(key, url_for("demo.storage", path=key)) for key in STORAGE_FILES],
        storage_protocol=str(current_app.config["EXAMPLE_STORAGE_URL"]).partition(
            "://"
        )[0],
        storage_missing=missing_extra("fsspec", "storage"),
        remote=url_for("demo.remote"),
        remote_url=str(current_app.config["EXAMPLE_HTTP_URL"]),
        remote_missing=missing_extra("urllib3", "http"),
        edge=[
            (
                name,
                nginx_secure_url_for(
                    "demo.edge", expires_in=EDGE_LINK_EXPIRES, path=name
                ),
            )
            for name in EDGE_FILES
        ],
    )
