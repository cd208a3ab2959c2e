"""Contenders of ``benchmarks/zip.py``: ZIP archives by Flask-Download,
zipstream-ng and stream-zip, and the single file they are compared with.

``gunicorn zip_app:app``; the data directory comes from ``BENCH_DATA_DIR``
(``big.bin``, ``quarter-0.bin`` ... ``quarter-3.bin`` and ``small/`` with
1,000 files of 4 KiB, written by ``benchmarks/zip.py``).
"""

from __future__ import annotations

import datetime
import os
import typing as t
import zlib

from flask import Flask
from flask import Response

from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import ZipDownloadView

QUARTERS = [f"quarter-{i}.bin" for i in range(4)]


def _crc32(path: str) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def create_app(data_dir: str) -> Flask:
    app = Flask("zip_bench")
    FlaskDownload(app)
    quarters = [os.path.join(data_dir, name) for name in QUARTERS]
    # What an app would have stored when the files were written.
    crcs = {path: _crc32(path) for path in quarters}
    small_dir = os.path.join(data_dir, "small")
    small = sorted(os.path.join(small_dir, name) for name in os.listdir(small_dir))

    app.add_url_rule(
        "/big.bin",
        view_func=PathDownloadView.as_view(
            "big", path=os.path.join(data_dir, "big.bin")
        ),
    )

    class Quarters(ZipDownloadView):
        known_crc = True

        def get_members(self) -> list[PathFile]:
            members = [PathFile(path) for path in quarters]
            if self.known_crc:
                for member in members:
                    member.crc32 = crcs[member.path]
            return members

    app.add_url_rule("/quarters.zip", view_func=Quarters.as_view("quarters"))
    app.add_url_rule(
        "/quarters-nocrc.zip",
        view_func=Quarters.as_view("quarters_nocrc", known_crc=False),
    )

    class Small(ZipDownloadView):
        def get_members(self) -> list[PathFile]:
            return [PathFile(path) for path in small]

    app.add_url_rule("/small/flask-download.zip", view_func=Small.as_view("small"))

    @app.route("/small/zipstream-ng.zip")
    def zipstream_ng() -> Response:
        import zipstream

        stream = zipstream.ZipStream(sized=True)
        for path in small:
            stream.add_path(path)
        return Response(
            stream,
            mimetype="application/zip",
            headers={"Content-Length": str(len(stream))},
        )

    @app.route("/small/stream-zip.zip")
    def stream_zip() -> Response:
        import stream_zip as sz

        def members() -> t.Iterator[t.Any]:
            for path in small:
                modified = datetime.datetime.fromtimestamp(
                    os.stat(path).st_mtime, datetime.timezone.utc
                )

                def chunks(path: str = path) -> t.Iterator[bytes]:
                    with open(path, "rb") as handle:
                        while block := handle.read(65536):
                            yield block

                yield (
                    os.path.basename(path),
                    modified,
                    0o644,
                    sz.NO_COMPRESSION_32,
                    chunks(),
                )

        return Response(sz.stream_zip(members()), mimetype="application/zip")

    return app


app = create_app(os.environ.get("BENCH_DATA_DIR", "."))
