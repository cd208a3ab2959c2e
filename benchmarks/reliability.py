"""Reliability checks of Flask-Download under gunicorn (issue 8).

One command, from the repository root, with the dev venv::

    python benchmarks/reliability.py

Four checks, each PASS or FAIL:

(a) memory, local file: a 2 GiB sparse file through ``PathDownloadView``
    under gunicorn (sync, 1 worker) to ``curl -o /dev/null``, once through
    the server's ``wsgi.file_wrapper`` (sendfile) and once with the file
    wrapper removed by a WSGI middleware (Python streams the chunks); the
    worker's peak ``VmRSS`` stays within 32 MiB of its baseline;
(b) memory, HTTP proxy: the same for ``HTTPDownloadView`` relaying a 2 GiB
    upstream (a local server streaming zeros with ``Content-Length``);
(c) header floods: a 10,000-range ``Range`` and a 100,000-entry
    ``If-None-Match`` are answered quickly (median of 20 next to the plain
    request);
(d) no database connection held while a body streams: 20 slow concurrent
    downloads of an ``ObjectDownloadView`` (SQLite file, pool of 5, no
    overflow, 2 s pool timeout) under a gthread worker all get 200.

The Markdown table is printed and written to
``benchmarks/results/reliability-<timestamp>.md``; ``--update-readme``
also copies it into ``benchmarks/README.md``. Exit status 1 if a check
fails. Needs Linux (``/proc``), ``curl`` and gunicorn, SQLAlchemy and
Flask-SQLAlchemy in the running Python. The sparse files are deleted at the
end.

The apps are in this module too: gunicorn runs
``reliability:create_app("files")`` and ``reliability:create_app("object")``.
"""

from __future__ import annotations

import argparse
import collections.abc as cabc
import contextlib
import dataclasses
import datetime
import http.client
import http.server
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

from run import children
from run import free_port
from run import machine
from run import RssPoller
from run import say
from run import Server
from run import start_gunicorn as start_bench_gunicorn
from run import wait_ready

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
README = os.path.join(HERE, "README.md")
README_START = "<!-- reliability:start -->"
README_END = "<!-- reliability:end -->"

MIB = 1 << 20
#: The sparse file of (a) and the upstream body of (b).
HUGE_NAME = "huge.bin"
HUGE_SIZE = 2 << 30
#: Peak worker RSS over its baseline allowed while 2 GiB are served.
RSS_LIMIT = 32 * MIB

#: The file of (c): 20,000 bytes, so 10,000 one-byte ranges fit in it.
FLOOD_NAME = "flood.bin"
FLOOD_SIZE = 20_000
RANGE_COUNT = 10_000
ETAG_COUNT = 100_000
#: gunicorn refuses header lines over 8190 bytes by default; the If-None-Match
#: list is sent as several lines of at most this size (the server joins
#: repeated fields with "," into one list, RFC 9110 §5.3).
HEADER_LINE_SIZE = 64 * 1024
LATENCY_RUNS = 20
#: Median latency allowed for each flood: far above a linear parse of
#: 0.1 to 1 MB of header on a slow machine, far below a quadratic one.
RANGE_LATENCY_LIMIT = 0.25
ETAG_LATENCY_LIMIT = 1.0

#: The file of (d), downloaded by SLOW_CLIENTS at SLOW_RATE each: about 4 s,
#: twice the pool timeout, and much more than loopback socket buffers hold.
SLOW_NAME = "slow.bin"
SLOW_SIZE = 64 * MIB
SLOW_CLIENTS = 20
SLOW_RATE = "16M"
POOL_SIZE = 5
POOL_TIMEOUT = 2
THREADS = 32

#: Requests under this prefix lose ``wsgi.file_wrapper`` (see create_app).
STREAMED_PREFIX = "/streamed/"


# -- the apps (run by gunicorn) ---------------------------------------------


class WithoutFileWrapper:
    """WSGI middleware: requests under :data:`STREAMED_PREFIX` get no
    ``wsgi.file_wrapper``, so the response streams its chunks in Python."""

    def __init__(self, app: t.Any) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, t.Any], start_response: t.Any
    ) -> cabc.Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(STREAMED_PREFIX):
            # A copy: gunicorn reads environ["wsgi.file_wrapper"] itself
            # after the app returns (KeyError if it is deleted).
            environ = dict(environ)
            del environ["wsgi.file_wrapper"]
        return t.cast("cabc.Iterable[bytes]", self.app(environ, start_response))


def create_app(kind: str) -> t.Any:
    """The app under test.

    ``"files"``: ``PathDownloadView`` at ``/files/<path>`` and (without the
    file wrapper) ``/streamed/<path>``; ``HTTPDownloadView`` of the upstream
    ``BENCH_UPSTREAM`` at ``/proxy/<size>`` (``warm`` or ``huge``).
    ``"object"``: ``ObjectDownloadView`` at ``/object/<int:id>`` on a SQLite
    file with a pool of 5 and no overflow, and ``/pool`` (connections
    checked out right now).
    """
    from flask import Flask

    from flask_download import FlaskDownload
    from flask_download import PathDownloadView

    data_dir = os.environ["BENCH_DATA_DIR"]
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = data_dir
    FlaskDownload(app)
    if kind == "files":
        from flask_download import HTTPDownloadView

        view = PathDownloadView.as_view("files")
        app.add_url_rule("/files/<path:path>", view_func=view)
        app.add_url_rule(f"{STREAMED_PREFIX}<path:path>", "streamed", view)
        upstream = os.environ["BENCH_UPSTREAM"]
        for name in ("warm", "huge"):
            app.add_url_rule(
                f"/proxy/{name}",
                view_func=HTTPDownloadView.as_view(
                    f"proxy_{name}",
                    url=f"{upstream}/{name}",
                    allowed_hosts=("127.0.0.1",),
                ),
            )
        app.wsgi_app = WithoutFileWrapper(app.wsgi_app)  # type: ignore[method-assign]
    elif kind == "object":
        from flask_sqlalchemy import SQLAlchemy
        from sqlalchemy import Column
        from sqlalchemy import Integer
        from sqlalchemy import String
        from sqlalchemy.pool import QueuePool

        from flask_download import ObjectDownloadView

        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
            data_dir, "objects.sqlite"
        )
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "poolclass": QueuePool,
            "pool_size": POOL_SIZE,
            "max_overflow": 0,
            "pool_timeout": POOL_TIMEOUT,
        }
        db = SQLAlchemy()

        class Document(db.Model):  # type: ignore[name-defined,misc]
            __tablename__ = "document"
            id = Column(Integer, primary_key=True)
            file = Column(String(255), nullable=False)

        db.init_app(app)
        app.add_url_rule(
            "/object/<int:id>",
            view_func=ObjectDownloadView.as_view("object", model=Document),
        )

        @app.get("/pool")
        def pool() -> str:
            return str(db.engine.pool.checkedout())  # type: ignore[attr-defined]

    else:
        raise ValueError(f"Unknown app kind {kind!r}.")
    return app


# -- the runner -------------------------------------------------------------


class _ZerosHandler(http.server.BaseHTTPRequestHandler):
    """The upstream of (b): ``/huge`` is 2 GiB of zeros, ``/warm`` 1 MiB."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        size = HUGE_SIZE if self.path == "/huge" else MIB
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block = bytes(MIB)
        try:
            for _ in range(size // MIB):
                self.wfile.write(block)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@dataclasses.dataclass
class Check:
    name: str
    measured: str
    limit: str
    passed: bool

    @property
    def result(self) -> str:
        return "PASS" if self.passed else "**FAIL**"


def make_data(data_dir: str) -> None:
    """Sparse files (no disk blocks), the flood file and the SQLite row."""
    for name, size in ((HUGE_NAME, HUGE_SIZE), (SLOW_NAME, SLOW_SIZE)):
        with open(os.path.join(data_dir, name), "wb") as f:
            f.truncate(size)
    with open(os.path.join(data_dir, FLOOD_NAME), "wb") as f:
        f.write(bytes(i % 251 for i in range(FLOOD_SIZE)))
    database = os.path.join(data_dir, "objects.sqlite")
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute(
            "CREATE TABLE document (id INTEGER PRIMARY KEY, file VARCHAR(255) NOT NULL)"
        )
        db.execute("INSERT INTO document VALUES (1, ?)", (SLOW_NAME,))
        db.commit()


def start_gunicorn(
    run_dir: str, app: str, env: dict[str, str], *extra: str
) -> tuple[Server, int]:
    port = free_port()
    # A 2 GiB body through Python takes seconds; a sync worker does not
    # heartbeat while it sends one.
    workers = ["--workers=1", "--timeout=120", *extra]
    server = start_bench_gunicorn(
        run_dir,
        port,
        app,
        env["BENCH_DATA_DIR"],
        workers,
        pythonpath=(HERE, REPO),
        env=env,
    )
    return server, port


def curl(url: str, *extra: str) -> tuple[int, int]:
    """``curl -o /dev/null``: status and bytes received."""
    done = subprocess.run(
        ["curl", "-sS", "-o", os.devnull, "-w", "%{http_code} %{size_download}"]
        + [*extra, url],
        capture_output=True,
        text=True,
    )
    status, size = (done.stdout.split() + ["0", "0"])[:2]
    return int(status), int(size)


def download_rss(port: int, worker: int, path: str, warm_path: str) -> Check:
    """(a)/(b): download ``path`` (2 GiB) while sampling the worker's RSS."""
    url = f"http://127.0.0.1:{port}"
    # Warm-up: imports, buffers and pools of this code path, then settle.
    status, _ = curl(url + warm_path, "-r", "0-1048575")
    if status not in (200, 206):
        raise RuntimeError(f"warm-up of {warm_path} answered {status}")
    time.sleep(0.2)
    started = time.monotonic()
    with RssPoller([worker]) as poller:
        status, size = curl(url + path)
    seconds = time.monotonic() - started
    baseline, peak = poller.baseline[worker], poller.peak[worker]
    growth = peak - baseline
    ok = status == 200 and size == HUGE_SIZE and growth <= RSS_LIMIT
    measured = (
        f"+{growth / MIB:.2f} MiB (baseline {baseline / MIB:.1f}, peak"
        f" {peak / MIB:.1f} MiB); {status}, {size / MIB:,.0f} MiB in"
        f" {seconds:.1f} s"
    )
    return Check("", measured, f"growth <= {RSS_LIMIT // MIB} MiB", ok)


def raw_get(port: int, target: str, headers: list[tuple[str, str]]) -> tuple[int, int]:
    """One request written on a socket (no client-side header limits).

    Returns the status and the number of bytes received.
    """
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        while chunk := sock.recv(256 * 1024):
            received += chunk
    status_line = bytes(received.partition(b"\r\n")[0])
    match = re.match(rb"HTTP/1\.[01] (\d{3})", status_line)
    return (int(match.group(1)) if match else 0), len(received)


def median_latency(
    port: int, target: str, headers: list[tuple[str, str]], expected: int
) -> tuple[float, int]:
    """Median seconds of :data:`LATENCY_RUNS` requests, and the status.

    Stops at the first answer whose status is not ``expected`` (returned).
    """
    times = []
    for _ in range(LATENCY_RUNS):
        started = time.perf_counter()
        status, _ = raw_get(port, target, headers)
        times.append(time.perf_counter() - started)
        if status != expected:
            return statistics.median(times), status
    return statistics.median(times), expected


def split_list(items: list[str], size: int) -> list[str]:
    """Join ``items`` with ``", "`` into values of at most ``size`` characters."""
    values: list[str] = []
    current: list[str] = []
    length = 0
    for item in items:
        if current and length + len(item) + 2 > size:
            values.append(", ".join(current))
            current, length = [], 0
        current.append(item)
        length += len(item) + 2
    if current:
        values.append(", ".join(current))
    return values


def floods(port: int) -> list[Check]:
    """(c): a 10,000-range Range and a 100,000-entry If-None-Match.

    Each is also sent to a URL no route matches: what gunicorn and Flask
    cost for such a header before any Flask-Download code runs.
    """
    target = f"/files/{FLOOD_NAME}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        response.read()
        etag = response.getheader("ETag") or ""
    finally:
        conn.close()
    if not etag:
        raise RuntimeError(f"{target} has no ETag")
    ms = 1000.0
    unrouted = "/no-such-route"

    plain, plain_status = median_latency(port, target, [], 200)
    ranges = ",".join(f"{2 * i}-{2 * i}" for i in range(RANGE_COUNT))
    range_header = [("Range", f"bytes={ranges}")]
    # More ranges than DOWNLOAD_MAX_RANGES: ignored, the whole file with 200.
    flood, flood_status = median_latency(port, target, range_header, 200)
    floor, _ = median_latency(port, unrouted, range_header, 404)
    range_check = Check(
        f"{RANGE_COUNT:,}-range `Range` ({len(ranges) // 1024} KiB header)",
        f"median {flood * ms:.1f} ms, {flood_status} (plain GET {plain * ms:.1f}"
        f" ms, {plain_status}; same header to an unrouted URL {floor * ms:.1f} ms)",
        f"200, median <= {RANGE_LATENCY_LIMIT * ms:.0f} ms",
        flood_status == 200 and plain_status == 200 and flood <= RANGE_LATENCY_LIMIT,
    )

    one, one_status = median_latency(port, target, [("If-None-Match", etag)], 304)
    # Every entry is compared: the file's own ETag comes last.
    tags = [f'"{i:x}-no"' for i in range(ETAG_COUNT - 1)] + [etag]
    values = split_list(tags, HEADER_LINE_SIZE)
    etag_headers = [("If-None-Match", value) for value in values]
    many, many_status = median_latency(port, target, etag_headers, 304)
    floor, _ = median_latency(port, unrouted, etag_headers, 404)
    size = sum(len(value) for value in values)
    etag_check = Check(
        f"{ETAG_COUNT:,}-entry `If-None-Match` ({size // 1024} KiB in"
        f" {len(values)} lines; the match is last)",
        f"median {many * ms:.1f} ms, {many_status} (one entry {one * ms:.1f} ms,"
        f" {one_status}; same headers to an unrouted URL {floor * ms:.1f} ms)",
        f"304, median <= {ETAG_LATENCY_LIMIT * ms:.0f} ms",
        many_status == 304 and one_status == 304 and many <= ETAG_LATENCY_LIMIT,
    )
    return [range_check, etag_check]


def slow_downloads(port: int, log_path: str) -> Check:
    """(d): 20 slow downloads of one row against a pool of 5."""
    url = f"http://127.0.0.1:{port}/object/1"
    argv = [
        "curl",
        "-sS",
        "-o",
        os.devnull,
        "--limit-rate",
        SLOW_RATE,
        "-w",
        "%{http_code} %{size_download} %{time_total}",
        url,
    ]
    clients = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        for _ in range(SLOW_CLIENTS)
    ]
    # While the bodies stream, ask the pool how many connections are out.
    checked_out: list[int] = []
    time.sleep(0.5)
    while all(client.poll() is None for client in clients):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/pool")
            checked_out.append(int(conn.getresponse().read()))
        finally:
            conn.close()
        time.sleep(0.1)
    results = []
    for client in clients:
        out, _ = client.communicate()
        status, size, seconds = (out.split() + ["0", "0", "0"])[:3]
        results.append((int(status), int(size), float(seconds)))
    with open(log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    timeouts = log.count("TimeoutError") + log.count("QueuePool limit")
    ok_count = sum(1 for s, n, _ in results if s == 200 and n == SLOW_SIZE)
    fastest = min(seconds for _, _, seconds in results)
    slowest = max(seconds for _, _, seconds in results)
    statuses = sorted({s for s, _, _ in results})
    passed = (
        ok_count == SLOW_CLIENTS
        and timeouts == 0
        # Slower than the pool timeout, or the check proves nothing.
        and fastest > POOL_TIMEOUT
    )
    return Check(
        f"{SLOW_CLIENTS} slow `ObjectDownloadView` downloads, pool {POOL_SIZE}"
        f" (no overflow, {POOL_TIMEOUT} s timeout), gthread x{THREADS}",
        f"{ok_count}/{SLOW_CLIENTS} complete 200 (statuses {statuses}), each"
        f" {fastest:.1f} to {slowest:.1f} s; connections checked out while"
        f" bodies streamed: max {max(checked_out, default=0)}"
        f" ({len(checked_out)} samples); pool timeouts in log: {timeouts}",
        f"all 200, each > {POOL_TIMEOUT} s, no pool timeout",
        passed,
    )


def worker_of(server: Server) -> int:
    workers = children(server.pid)
    if len(workers) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {workers}")
    return workers[0]


def render(checks: list[Check], seconds: float) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        f"### Flask-Download reliability, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {machine()}; Python {platform.python_version()}.",
        f"- `python benchmarks/reliability.py`, run time {seconds:.0f} s.",
        "",
        "| check | measured | limit | result |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c.name} | {c.measured} | {c.limit} | {c.result} |" for c in checks]
    return "\n".join(lines) + "\n"


def update_readme(report: str) -> None:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    if README_START not in text:
        raise RuntimeError(f"{README} has no {README_START} marker")
    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    body = re.sub(r"^(#+) ", r"\1## ", report, flags=re.MULTILINE)
    with open(README, "w", encoding="utf-8") as f:
        f.write(f"{head}{README_START}\n{body}\n{README_END}{tail}")


def run(data_dir: str) -> list[Check]:
    make_data(data_dir)
    checks: list[Check] = []
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ZerosHandler)
    upstream.daemon_threads = True
    upstream_thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    upstream_thread.start()
    env = dict(
        os.environ,
        BENCH_DATA_DIR=data_dir,
        BENCH_UPSTREAM=f"http://127.0.0.1:{upstream.server_address[1]}",
    )
    try:
        server, port = start_gunicorn(
            data_dir,
            'reliability:create_app("files")',
            env,
            "--worker-class=sync",
            # The 10,000-range Range header is one line of about 110 KB.
            "--limit-request-field_size=262144",
            "--limit-request-fields=1000",
        )
        try:
            wait_ready(server, port, f"/files/{FLOOD_NAME}")
            worker = worker_of(server)
            for name, path, warm in (
                (
                    "2 GiB sparse file, `PathDownloadView`, sendfile"
                    " (`wsgi.file_wrapper`), gunicorn sync x1",
                    f"/files/{HUGE_NAME}",
                    f"/files/{HUGE_NAME}",
                ),
                (
                    "2 GiB sparse file, `PathDownloadView`, streamed in Python"
                    " (no `wsgi.file_wrapper`)",
                    f"{STREAMED_PREFIX}{HUGE_NAME}",
                    f"{STREAMED_PREFIX}{HUGE_NAME}",
                ),
                (
                    "2 GiB upstream, `HTTPDownloadView` proxy",
                    "/proxy/huge",
                    "/proxy/warm",
                ),
            ):
                say(f"downloading {path} (2 GiB)")
                check = download_rss(port, worker, path, warm)
                check.name = name
                say(f"  {check.measured}: {check.result}")
                checks.append(check)
            say("header floods")
            checks += floods(port)
            for check in checks[-2:]:
                say(f"  {check.measured}: {check.result}")
        finally:
            server.stop()
    finally:
        upstream.shutdown()
        upstream.server_close()
        upstream_thread.join(10)

    server, port = start_gunicorn(
        data_dir,
        'reliability:create_app("object")',
        env,
        "--worker-class=gthread",
        f"--threads={THREADS}",
    )
    try:
        wait_ready(server, port, "/pool")
        say(f"{SLOW_CLIENTS} slow downloads against a pool of {POOL_SIZE}")
        check = slow_downloads(port, server.log_path)
        say(f"  {check.measured}: {check.result}")
        checks.append(check)
    finally:
        server.stop()
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="copy the table into benchmarks/README.md",
    )
    options = parser.parse_args(argv)
    if not os.path.isdir("/proc/self"):
        parser.error("needs Linux (/proc)")
    if shutil.which("curl") is None:
        parser.error("needs curl on the PATH")
    started = time.monotonic()
    data_dir = tempfile.mkdtemp(prefix="flask-download-reliability-")
    try:
        checks = run(data_dir)
    finally:
        # The sparse files, the SQLite file and the logs.
        shutil.rmtree(data_dir, ignore_errors=True)
    report = render(checks, time.monotonic() - started)
    sys.stdout.write(report + "\n")
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(RESULTS, f"reliability-{stamp}.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(report)
    say(f"written to {os.path.relpath(path, REPO)}")
    if options.update_readme:
        update_readme(report)
        say("copied into benchmarks/README.md")
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
