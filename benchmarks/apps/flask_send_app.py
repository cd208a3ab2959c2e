"""Contender: Flask's own ``send_from_directory`` (Werkzeug ``send_file``).

Run by ``benchmarks/run.py`` as ``gunicorn 'flask_send_app:create_app()'``;
the data directory comes from ``BENCH_DATA_DIR``.
"""

from __future__ import annotations

import os

from flask import Flask
from flask import Response
from flask import send_from_directory


def create_app() -> Flask:
    """A Flask app serving ``BENCH_DATA_DIR`` at ``/files/<path:name>``."""
    app = Flask(__name__)
    data_dir = os.environ["BENCH_DATA_DIR"]

    @app.get("/files/<path:name>")
    def files(name: str) -> Response:
        # conditional=True (the default): ETag, 304 and Range come from
        # Werkzeug's make_conditional.
        return send_from_directory(data_dir, name)

    return app
