from __future__ import annotations

import collections.abc as cabc
import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import wsgiref.simple_server

import pytest
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.serving import WSGIRequestHandler

from flask_download import FlaskDownload
from flask_download.pytest_plugin import SAMPLE_FILES as SAMPLE_FILES
from flask_download.pytest_plugin import write_sample_files


@pytest.fixture
def download_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """The plugin's sample files, with a secret file next to (not in) the root."""
    root = write_sample_files(tmp_path / "root")
    (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
    return root


@pytest.fixture
def app_factory(
    download_root: pathlib.Path,
) -> cabc.Callable[..., Flask]:
    """Make an app with Flask-Download registered and the given config."""

    def factory(**config: t.Any) -> Flask:
        app = Flask("test_app", root_path=os.fspath(download_root.parent))
        app.config.update(TESTING=True, DOWNLOAD_ROOT=os.fspath(download_root))
        app.config.update(config)
        FlaskDownload(app)
        return app

    return factory


@pytest.fixture
def app(app_factory: cabc.Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> t.Any:
    return app.test_client()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers run as processes)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(server: t.Any) -> cabc.Iterator[t.Any]:
    """Run a ``socketserver``-style WSGI server in a thread until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without the access log (errors still show)."""

    def log_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        pass


class QuietWSGIRefHandler(wsgiref.simple_server.WSGIRequestHandler):
    """The standard library's request handler without the access log."""

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@contextlib.contextmanager
def running_werkzeug(app: t.Any) -> cabc.Iterator[str]:
    """Serve ``app`` with Werkzeug's threaded server until the block ends.

    :return: the base URL, ``http://127.0.0.1:<port>`` (a free port).
    """
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
    )
    with serving(server):
        yield f"http://127.0.0.1:{server.server_port}"


#: The checkout: gunicorn imports ``tests.<module>`` from here.
REPO = pathlib.Path(__file__).parent.parent


@contextlib.contextmanager
def running_gunicorn(app: str, *options: str) -> cabc.Iterator[str]:
    """Run ``gunicorn app`` (one worker) until the block ends; yield its base URL.

    ``app`` is gunicorn's ``module:variable`` or ``module:factory(args)``;
    modules of the test suite import as ``tests.test_x`` (or ``conftest``),
    after the ``PYTHONPATH`` of this run, so the code under test is the same.
    ``options`` are more command-line options (``--threads=4``...). Skips
    the test when gunicorn is not installed.
    """
    pytest.importorskip("gunicorn")
    port = free_port()
    path = [
        os.environ.get("PYTHONPATH", ""),
        os.fspath(REPO),
        os.fspath(REPO / "tests"),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    command = [sys.executable, "-m", "gunicorn", "--workers=1", *options]
    command += [f"--bind=127.0.0.1:{port}", app]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            if not wait_for_port(port, proc):
                log.seek(0)
                pytest.fail(
                    f"gunicorn did not start: {log.read().decode(errors='replace')}"
                )
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def wait_for_port(
    port: int, process: subprocess.Popen[t.Any] | None = None, timeout: float = 20
) -> bool:
    """Wait until something accepts connections on 127.0.0.1:``port``.

    :return: ``False`` if ``process`` exited or ``timeout`` seconds passed first.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            exited = process is not None and process.poll() is not None
            if exited or time.monotonic() > deadline:
                return False
            time.sleep(0.05)


@pytest.fixture(scope="module")
def http() -> cabc.Iterator[t.Any]:
    """A urllib3 pool of one connection, kept alive between requests as
    browsers do; it neither retries nor follows redirects by itself."""
    urllib3 = pytest.importorskip("urllib3")
    pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=10.0)
    try:
        yield pool
    finally:
        pool.clear()


#: The nginx binary the integration tests run (``None``-safe: check it first).
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


#: The start of an ``nginx.conf`` for :func:`running_nginx`, to format with
#: ``tmp`` (the conf's directory): one foreground process that writes only
#: under ``tmp``; it leaves the ``http {{`` block open for the servers.
NGINX_CONF_HEAD = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
"""


@contextlib.contextmanager
def running_nginx(conf: pathlib.Path, port: int) -> cabc.Iterator[str]:
    """Run ``nginx -c conf`` until the block ends; yield its base URL.

    The prefix and the startup error log are ``conf``'s directory, so
    nothing is written to /var/log/nginx; ``conf`` listens on ``port``.
    """
    tmp = conf.parent
    # -e: startup errors go to the temp dir too, not /var/log/nginx.
    command = [NGINX, "-p", os.fspath(tmp), "-c", os.fspath(conf)]
    command += ["-e", os.fspath(tmp / "error.log")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if not wait_for_port(port, proc, timeout=10):
            log = tmp / "error.log"
            errors = log.read_text() if log.exists() else ""
            pytest.fail(f"nginx did not start: {errors}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


# ObjectDownloadView's direct read (test_objects_direct*.py).
@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which path each lookup took: "direct", "direct-failed" (the driver
    failed, SQLAlchemy runs it again), "direct-raised" (any other error) or
    "connection" (``Connection.execute``, which the session path goes
    through too)."""
    import sqlalchemy as sa

    from flask_download import _direct

    taken: list[str] = []
    fetch = _direct.DirectRead.fetch
    execute = sa.engine.Connection.execute

    def spy_fetch(self: t.Any, engine: t.Any, params: t.Any) -> t.Any:
        try:
            row = fetch(self, engine, params)
        except _direct.Unsupported:
            taken.append("direct-failed")
            raise
        except BaseException:
            taken.append("direct-raised")
            raise
        taken.append("direct")
        return row

    def spy_execute(self: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        taken.append("connection")
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(_direct.DirectRead, "fetch", spy_fetch)
    monkeypatch.setattr(sa.engine.Connection, "execute", spy_execute)
    return taken
