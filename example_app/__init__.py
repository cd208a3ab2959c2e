"""A small document library built with Flask-Download.

Run it with ``flask --app example_app run`` and open http://127.0.0.1:5000/.
Everything it writes lives in the instance folder (``instance/`` next to
the package), which it creates on first run:

- ``secret_key``: the key that signs sessions and shared links, made at
  random unless ``SECRET_KEY`` is set in ``instance/config.py``;
- ``example.sqlite``: users and documents (Flask-SQLAlchemy);
- ``files/uploads/``: the uploaded files, under generated keys;
- ``files/sample/``: made once on first run: the sample users' documents
  (:mod:`~example_app.samples`), a large file for the resume demo (sparse:
  it takes almost no disk space), the files of the storage demo and the
  files behind the nginx secure links.

The app is made by :func:`create_app` from three blueprints: ``auth``
(pick a user), ``documents`` (upload, list, download, preview, share;
:mod:`~example_app.archive` and :mod:`~example_app.export` add the ZIP and
the CSV list to it) and ``demo`` (a large file, a storage, a remote file
and nginx secure links). The index page links to every kind of download.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import os
import secrets
import typing as t

from flask import Flask
from flask import render_template
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from flask_download import FlaskDownload

from .models import db
from .models import init_db

#: The extension, created once and bound to each app in :func:`create_app`.
download = FlaskDownload()

#: Size of the generated large file (``EXAMPLE_LARGE_FILE_SIZE``): big enough
#: that an interrupted download is worth resuming.
LARGE_FILE_SIZE = 1024**3


def create_app(test_config: cabc.Mapping[str, t.Any] | None = None) -> Flask:
    """Create and configure the example application.

    Configuration comes from the defaults below, then ``instance/config.py``
    if it exists (or ``test_config`` instead, for tests).

    :param test_config: config values that win over the defaults (tests pass
        ``TESTING`` and temporary paths here).
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        # Signs the session cookie and the shared links: set in
        # instance/config.py, else made at random once (instance/secret_key).
        SECRET_KEY=None,
        # Forms are plain POSTs; a Lax cookie is not sent with cross-site ones.
        SESSION_COOKIE_SAMESITE="Lax",
        # Larger uploads are refused with 413 before they reach the disk.
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        # SQLite, the embedded default: a file in the instance folder.
        SQLALCHEMY_DATABASE_URI="sqlite:///"
        + os.path.join(app.instance_path, "example.sqlite"),
        # Uploads and the large file; stored paths are relative to it and
        # can never leave it.
        DOWNLOAD_ROOT=os.path.join(app.instance_path, "files"),
        # Browsers may reuse a download for a minute, then revalidate (304).
        DOWNLOAD_CACHE_MAX_AGE=60,
        EXAMPLE_LARGE_FILE_SIZE=LARGE_FILE_SIZE,
        # The fsspec storage of StorageDownloadView; None is the folder
        # DOWNLOAD_ROOT/sample/storage as a file:// URL (or s3://bucket/prefix).
        EXAMPLE_STORAGE_URL=None,
        # The remote file HTTPDownloadView streams through the app. Only
        # public addresses are fetched: to proxy a server on this machine or
        # your network, list its host in DOWNLOAD_HTTP_ALLOWED_HOSTS too.
        EXAMPLE_HTTP_URL="https://www.rfc-editor.org/rfc/rfc9110.txt",
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)

    from . import archive  # noqa: F401 - adds /archive to documents.bp
    from . import auth
    from . import demo
    from . import documents
    from . import export  # noqa: F401 - adds /documents.csv to documents.bp
    from . import samples

    # Files first: FlaskDownload checks that DOWNLOAD_ROOT is a directory
    # (and the secret shared with nginx, made here unless it is set).
    documents.make_upload_dir(app)
    demo.make_large_file(app)
    demo.make_storage_files(app)
    demo.make_edge_files(app)
    download.init_app(app)
    db.init_app(app)
    with app.app_context():
        # The tables, then on first run only the sample users and documents.
        init_db(samples.sample_documents)

    app.register_blueprint(auth.bp)
    app.register_blueprint(documents.bp)
    app.register_blueprint(demo.bp)
    app.register_error_handler(HTTPException, error_page)
    return app


def instance_secret_key(instance_path: str) -> str:
    """The key in ``instance/secret_key``, made at random on first run.

    A well-known default key would let anyone sign a session (log in as
    anybody) or a share link to any document. The key is kept in a file so
    that every worker process, and the next start, signs alike; it is
    written whole under a temporary name, then linked into place, so that
    workers starting together all read the same complete key.
    """
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path, encoding="ascii") as file:
            key = file.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32))
        # Another worker may have come first: its key wins.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    with open(path, encoding="ascii") as file:
        return file.read().strip()


def error_page(error: HTTPException) -> Response:
    """Show an HTTP error (404, an expired link's 410...) in the site's layout.

    The response keeps the error's own headers, such as ``Allow`` on a 405.
    """
    response = error.get_response()
    response.set_data(render_template("error.html", error=error))
    response.content_type = "text/html; charset=utf-8"
    return response
