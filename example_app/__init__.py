"""An example application for Flask-Download, made with an app factory.

Run it with ``flask --app example_app run`` and open http://127.0.0.1:5000/.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import typing as t

from flask import Flask

from flask_download import FlaskDownload
from flask_download import make_download_blueprint

from .models import db
from .models import Document
from .models import init_db

#: The extension, created once and bound to each app in :func:`create_app`.
download = FlaskDownload()


def create_app(test_config: cabc.Mapping[str, t.Any] | None = None) -> Flask:
    """Create and configure the example application.

    :param test_config: config values that win over the defaults (tests pass
        ``TESTING`` and temporary paths here).
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY="dev",
        # Files under this directory can be downloaded by URL path.
        DOWNLOAD_ROOT=os.path.join(app.root_path, "files"),
        DOWNLOAD_CACHE_MAX_AGE=60,
        # SQLite, the embedded default: a file in the instance folder.
        SQLALCHEMY_DATABASE_URI="sqlite:///"
        + os.path.join(app.instance_path, "example.sqlite"),
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, exist_ok=True)

    download.init_app(app)
    db.init_app(app)
    with app.app_context():
        # Creates the tables and sample rows on first run only.
        init_db()

    from .views import bp
    from .views import DocumentDownloadView

    app.register_blueprint(bp)
    # The same documents through the blueprint factory: endpoints
    # "documents.object" (/dl/document/<id>) and "documents.object_by_slug"
    # (/dl/document/by-slug/<slug>).
    app.register_blueprint(
        make_download_blueprint(
            "documents",
            model=Document,
            object_view=DocumentDownloadView,
            url_prefix="/dl",
        )
    )
    return app
