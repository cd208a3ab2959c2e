"""Ceilings: the least a Flask view, and a bare WSGI callable, can do.

**Not something to ship.** These contenders exist only to measure how close
Flask-Download's views come to the cost of the stack around them. They
serve the benchmark's files from memory, compare ``If-None-Match`` as a
plain string, read a range with one ``os.pread`` and never check a path:
no confinement, no ``Range`` validation beyond the benchmark's own
requests, no ``If-Modified-Since``, no ``HEAD`` handling, no
``Content-Disposition`` escaping. Use :class:`flask_download.PathDownloadView`
or :func:`flask.send_from_directory` in an application.

``benchmarks/run.py`` starts ``gunicorn 'ceiling_app:create_app()'`` (the
Flask ceiling, routed at ``/files/<name>``) and ``gunicorn
'ceiling_app:create_wsgi()'`` (the server's ceiling, no framework); the
data directory comes from ``BENCH_DATA_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import re
import typing as t

from flask import Flask
from flask import request
from flask import Response

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

_RANGE = re.compile(r"bytes=(\d+)-(\d+)\Z")


class _Files:
    """The data directory's files, read once: content (small ones), size, ETag."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.small: dict[str, bytes] = {}
        self.etags: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        for name in os.listdir(data_dir):
            path = os.path.join(data_dir, name)
            if not os.path.isfile(path):
                continue
            stat = os.stat(path)
            self.sizes[name] = stat.st_size
            tag = hashlib.sha1(f"{stat.st_mtime_ns}-{stat.st_size}".encode())
            self.etags[name] = f'"{tag.hexdigest()[:16]}"'
            if stat.st_size <= 1 << 20:
                with open(path, "rb") as f:
                    self.small[name] = f.read()

    def answer(
        self, name: str, if_none_match: str | None, range_header: str | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for one GET of ``name``."""
        etag = self.etags.get(name)
        if etag is None:
            return 404, [("Content-Length", "0")], b""
        if if_none_match == etag:
            return 304, [("ETag", etag)], b""
        size = self.sizes[name]
        headers = [("Content-Type", "application/octet-stream"), ("ETag", etag)]
        match = _RANGE.match(range_header) if range_header else None
        if match is not None:
            start, last = int(match.group(1)), int(match.group(2))
            fd = os.open(os.path.join(self.data_dir, name), os.O_RDONLY)
            try:
                body = os.pread(fd, last - start + 1, start)
            finally:
                os.close(fd)
            headers.append(("Content-Range", f"bytes {start}-{last}/{size}"))
            headers.append(("Content-Length", str(len(body))))
            return 206, headers, body
        body = self.small.get(name)
        if body is None:
            # The 1 GiB file: streamed from disk in the server's file wrapper.
            return 200, headers, b""
        headers.append(("Content-Length", str(len(body))))
        return 200, headers, body


def create_app() -> Flask:
    """The Flask ceiling: a hand-written view at ``/files/<name>``."""
    files = _Files(os.environ["BENCH_DATA_DIR"])
    app = Flask(__name__)

    @app.get("/files/<name>")
    def serve(name: str) -> Response:
        environ = request.environ
        status, headers, body = files.answer(
            name, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_RANGE")
        )
        if status == 200 and not body:
            path = os.path.join(files.data_dir, name)
            headers.append(("Content-Length", str(files.sizes[name])))
            wrapper = environ["wsgi.file_wrapper"]
            return Response(
                wrapper(open(path, "rb"), 1 << 16),  # noqa: SIM115 (server closes)
                status=200,
                headers=headers,
                direct_passthrough=True,
            )
        return Response(body, status=status, headers=headers)

    return app


def create_wsgi() -> WSGIApplication:
    """The server's ceiling: a WSGI callable with no framework at all."""
    files = _Files(os.environ["BENCH_DATA_DIR"])
    reasons = {200: "200 OK", 206: "206 Partial Content", 304: "304 Not Modified"}

    def application(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        name = environ.get("PATH_INFO", "").rpartition("/")[2]
        status, headers, body = files.answer(
            name, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_RANGE")
        )
        if status == 200 and not body:
            path = os.path.join(files.data_dir, name)
            headers.append(("Content-Length", str(files.sizes[name])))
            start_response("200 OK", headers)
            wrapper = environ["wsgi.file_wrapper"]
            return wrapper(open(path, "rb"), 1 << 16)  # type: ignore[no-any-return]  # noqa: SIM115
        start_response(reasons.get(status, "404 Not Found"), headers)
        return [body]

    return application
