"""Benchmark Flask-Download side by side with nginx, Flask and django-downloadview.

One command, from the repository root, with the dev venv::

    python benchmarks/run.py

It writes a 1 GiB and a 4 KiB file to a temporary directory, starts each
contender on its own 127.0.0.1 port (one at a time), checks that it answers
each workload correctly with ``curl`` (a wrong answer is flagged, not
counted), measures it with ``curl`` and ``wrk``, stops it, and finally runs
the in-process ``pytest-benchmark`` module. The Markdown report is printed
and written to ``benchmarks/results/<timestamp>.md``. See
``benchmarks/README.md`` for what is measured and the targets.

Needs ``nginx``, ``wrk`` and ``curl`` on the ``PATH`` and ``gunicorn`` in the
running Python; Django with django-downloadview and ``pytest-benchmark`` are
optional (their rows are skipped with a message).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import importlib
import importlib.metadata
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APPS = os.path.join(HERE, "apps")
LUA = os.path.join(HERE, "lua")
RESULTS = os.path.join(HERE, "results")
README = os.path.join(HERE, "README.md")

BIG_NAME = "big.bin"
SMALL_NAME = "small.bin"
BIG_SIZE = 1 << 30
SMALL_SIZE = 4 << 10
RANGE_LENGTH = 64 << 10
#: The 4 KiB file (and the content of the VirtualDownloadView contender).
SMALL_CONTENT = bytes(range(256)) * 16
MIB = 1 << 20

# Workload keys, in table order, with their unit.
BIG = "1 GiB file, one client"
SMALL = "4 KiB file, 16 connections"
RANGE = "64 KiB Range at random offsets of 1 GiB"
REVALIDATE = "304 revalidation (If-None-Match)"
WORKLOADS = {BIG: "MB/s", SMALL: "req/s", RANGE: "req/s", REVALIDATE: "req/s"}

NGINX = "nginx static"
WSGI = "bare WSGI callable (the server's ceiling)"
CEILING = "Flask ceiling: minimal hand-written view (not something to ship)"
SEND_FILE = "Flask send_from_directory"
DJANGO = "django-downloadview PathDownloadView"
FD_PATH = "Flask-Download PathDownloadView"
FD_VIRTUAL = "Flask-Download VirtualDownloadView (bytes)"
FD_OBJECT = "Flask-Download ObjectDownloadView by id (SQLite row)"
FD_OBJECT_SLUG = "Flask-Download ObjectDownloadView by slug (SQLite row)"
FD_SEND = "Flask-Download send_download (function view)"
FD_GTHREAD = "Flask-Download PathDownloadView, gunicorn gthread (keep-alive)"
FD_ACCEL = "Flask-Download + nginx X-Accel-Redirect"
#: gunicorn's worker options per contender kind (the default: sync x2).
SYNC = ["--workers=2", "--worker-class=sync"]
#: Threads with keep-alive: wrk's 16 connections stay open between requests
#: (sync workers close each connection after one response).
GTHREAD = ["--workers=2", "--worker-class=gthread", "--threads=8", "--keep-alive=5"]


def say(message: str) -> None:
    """Progress on stderr (the report goes to stdout)."""
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


# -- data -------------------------------------------------------------------


def make_data(data_dir: str) -> None:
    """Write the 1 GiB file (random bytes, so a misplaced range shows) and
    the 4 KiB one, unless they are already there with the right content."""
    os.makedirs(data_dir, exist_ok=True)
    # nginx workers run as another user: let them read the directory.
    os.chmod(data_dir, 0o755)
    for name, size in ((BIG_NAME, BIG_SIZE), (SMALL_NAME, SMALL_SIZE)):
        path = os.path.join(data_dir, name)
        if (
            os.path.exists(path)
            and os.path.getsize(path) == size
            and (size != SMALL_SIZE or read_at(path, 0, size) == SMALL_CONTENT)
        ):
            continue
        say(f"writing {size} bytes to {path}")
        rng = random.Random(size)
        with open(path, "wb") as f:
            if size == SMALL_SIZE:
                # The content VirtualDownloadView serves, so one check fits all.
                f.write(SMALL_CONTENT)
            remaining = size - f.tell()
            while remaining:
                n = min(remaining, 4 * MIB)
                f.write(rng.randbytes(n))
                remaining -= n
        os.chmod(path, 0o644)


def read_at(path: str, start: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(length)


# -- processes --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (the server's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name in parentheses.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def read_proc_field(pid: int, name: str, field: str) -> int:
    """A ``field: value`` line of ``/proc/<pid>/<name>`` (``status``, ``io``)."""
    with open(f"/proc/{pid}/{name}") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == field:
                return int(value.split()[0])
    raise KeyError(field)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` so far, in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(pids: list[int], timeout: float = 15.0) -> None:
    """Wait until the workers stop using CPU: requests a load generator gave
    up on may still be running and would slow the next measurement."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pids)
        if now - last < 0.02:
            return
        last = now


class Server:
    """A process started by the runner; stopped with :meth:`stop`."""

    def __init__(self, argv: list[str], log: str, env: dict[str, str]) -> None:
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[int]:
        return children(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def wait_ready(server: Server, port: int, path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited; see {server.log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", path)
                conn.getresponse().read()
            finally:
                conn.close()
        except OSError:
            time.sleep(0.1)
            continue
        # gunicorn answers as soon as one worker is up; wait for both.
        time.sleep(0.3)
        return
    raise RuntimeError(f"server on port {port} did not answer; see {server.log_path}")


def nginx_conf(run_dir: str, port: int, body: str) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {run_dir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = f"""{user}worker_processes 2;
daemon off;
pid {run_dir}/nginx-{port}.pid;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    # tcp_nopush (TCP_CORK) holds the tail of each 64 KiB range until the
    # client's delayed ACK on a kept-alive loopback connection: 40 ms per
    # request, a cap of ~400 req/s that would not be nginx's limit.
    tcp_nopush off;
    keepalive_requests 1000000;
{temp}
    server {{
        listen 127.0.0.1:{port};
{body}
    }}
}}
"""
    path = os.path.join(run_dir, f"nginx-{port}.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def start_nginx(run_dir: str, port: int, body: str) -> Server:
    conf = nginx_conf(run_dir, port, body)
    log = os.path.join(run_dir, f"nginx-{port}.log")
    argv = ["nginx", "-p", run_dir, "-c", conf, "-e", log]
    return Server(argv, log, dict(os.environ))


def _gunicorn_has_control_socket() -> bool:
    global _CONTROL_SOCKET
    if _CONTROL_SOCKET is None:
        done = subprocess.run(
            [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True
        )
        _CONTROL_SOCKET = "--no-control-socket" in done.stdout
    return _CONTROL_SOCKET


_CONTROL_SOCKET: bool | None = None


def start_gunicorn(
    run_dir: str,
    port: int,
    app: str,
    data_dir: str,
    workers: list[str] | None = None,
    *,
    pythonpath: tuple[str, ...] = (APPS, REPO),
    env: dict[str, str] | None = None,
) -> Server:
    """Start gunicorn on ``port``, its log in ``run_dir``.

    ``workers`` are the worker options (default :data:`SYNC`), ``app`` is
    imported from ``pythonpath``; ``env`` is the whole environment (default:
    this one with ``BENCH_DATA_DIR=data_dir``).
    """
    log = os.path.join(run_dir, f"gunicorn-{port}.log")
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        *(workers or SYNC),
        f"--bind=127.0.0.1:{port}",
        f"--pythonpath={','.join(pythonpath)}",
        "--log-level=warning",
    ]
    if _gunicorn_has_control_socket():
        # Newer gunicorns open one control socket per user in ~/.gunicorn;
        # the contenders must not take it from another gunicorn.
        argv.append("--no-control-socket")
    argv.append(app)
    if env is None:
        env = dict(os.environ, BENCH_DATA_DIR=data_dir)
    return Server(argv, log, env)


# -- clients ----------------------------------------------------------------


@dataclasses.dataclass
class CurlResult:
    status: int
    size: int
    speed: float  # bytes per second
    headers: dict[str, str]
    body: bytes
    exit_code: int


def curl(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    keep_body: bool = True,
    max_time: float = 30.0,
    max_filesize: int | None = None,
) -> CurlResult:
    with tempfile.TemporaryDirectory() as tmp:
        body_path = os.path.join(tmp, "body") if keep_body else os.devnull
        head_path = os.path.join(tmp, "head")
        argv = [
            "curl",
            "-sS",
            "-o",
            body_path,
            "-D",
            head_path,
            "-w",
            "%{http_code} %{size_download} %{speed_download}",
            "--max-time",
            str(max_time),
        ]
        if max_filesize is not None:
            argv += ["--max-filesize", str(max_filesize)]
        for key, value in (headers or {}).items():
            argv += ["-H", f"{key}: {value}"]
        done = subprocess.run(argv + [url], capture_output=True, text=True)
        status, size, speed = (done.stdout.split() + ["0", "0", "0"])[:3]
        parsed: dict[str, str] = {}
        if os.path.exists(head_path):
            with open(head_path, encoding="latin-1") as f:
                for line in f:
                    key, sep, value = line.partition(":")
                    if sep:
                        parsed[key.strip().lower()] = value.strip()
        body = b""
        if keep_body and os.path.exists(body_path):
            with open(body_path, "rb") as f:
                body = f.read(BIG_SIZE if max_filesize is None else max_filesize)
        return CurlResult(
            int(status), int(size), float(speed), parsed, body, done.returncode
        )


@dataclasses.dataclass
class WrkResult:
    requests_per_second: float
    requests: int
    note: str


def wrk(
    url: str,
    *,
    duration: int,
    connections: int,
    threads: int,
    script: str | None = None,
    args: list[str] | None = None,
) -> WrkResult:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout=10s",
    ]
    if script is not None:
        argv += ["-s", os.path.join(LUA, script)]
    argv.append(url)
    if args:
        argv += ["--", *args]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + 60
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    notes = []
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        notes.append(f"{non_2xx.group(1)} non-2xx/3xx")
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        notes.append(f"socket errors: {errors.group(1)}")
    if rps is None or count is None:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    return WrkResult(float(rps.group(1)), int(count.group(1)), "; ".join(notes))


class RssPoller:
    """Samples ``VmRSS`` of some processes in a thread; reports peak growth."""

    def __init__(self, pids: list[int], interval: float = 0.005) -> None:
        self.pids = pids
        self.interval = interval
        self.baseline = {pid: self._rss(pid) for pid in pids}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            return read_proc_field(pid, "status", "VmRSS") * 1024
        except (OSError, KeyError):
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], self._rss(pid))
            time.sleep(self.interval)

    def __enter__(self) -> RssPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return max((self.peak[p] - self.baseline[p] for p in self.pids), default=0)

    @property
    def peak_rss(self) -> int:
        return max(self.peak.values(), default=0)


# -- contenders -------------------------------------------------------------


@dataclasses.dataclass
class Contender:
    name: str
    #: ``nginx``, ``gunicorn`` or ``accel`` (gunicorn behind nginx).
    kind: str
    small_path: str
    big_path: str | None
    app: str = ""
    #: Why it does not run here (``None``: it runs).
    skip: str | None = None
    #: Why some workloads do not apply.
    not_applicable: dict[str, str] = dataclasses.field(default_factory=dict)
    #: gunicorn's worker options (``None``: sync x2).
    workers: list[str] | None = None
    #: The ``server`` body of an ``nginx`` contender (``{data_dir}`` filled
    #: in); empty: nginx static, the whole data directory.
    nginx_body: str = ""


@dataclasses.dataclass
class Cell:
    """One figure of the report; ``value`` is ``None`` when not counted."""

    value: float | None
    note: str = ""
    flagged: bool = False
    #: Worker CPU seconds per request (wrk cells), a figure that other load
    #: on the machine disturbs much less than req/s.
    cpu_per_request: float | None = None


@dataclasses.dataclass
class Outcome:
    contender: Contender
    cells: dict[str, Cell] = dataclasses.field(default_factory=dict)
    rss_growth: int | None = None
    peak_rss: int | None = None
    range_rchar: int | None = None
    rss_note: str = ""
    rchar_note: str = ""


def contenders() -> list[Contender]:
    sys.path[:0] = [APPS, REPO]
    fd_app = importlib.import_module("flask_download_app")
    try:
        importlib.import_module("django")
        importlib.import_module("django_downloadview")
        django_skip = None
    except ImportError as e:
        django_skip = f"Django or django-downloadview is not installed ({e})"
    virtual_na = "bytes held in memory: the 4 KiB content only"
    send_skip = None
    try:
        importlib.import_module("flask_download").send_download  # noqa: B018
    except AttributeError:
        send_skip = "flask_download.send_download does not exist yet"
    return [
        Contender(NGINX, "nginx", f"/{SMALL_NAME}", f"/{BIG_NAME}"),
        # Right after nginx static, so that both see the same machine load.
        *edge_contenders(),
        Contender(
            WSGI,
            "gunicorn",
            f"/files/{SMALL_NAME}",
            f"/files/{BIG_NAME}",
            app="ceiling_app:create_wsgi()",
        ),
        Contender(
            CEILING,
            "gunicorn",
            f"/files/{SMALL_NAME}",
            f"/files/{BIG_NAME}",
            app="ceiling_app:create_app()",
        ),
        Contender(
            SEND_FILE,
            "gunicorn",
            f"/files/{SMALL_NAME}",
            f"/files/{BIG_NAME}",
            app="flask_send_app:create_app()",
        ),
        Contender(
            DJANGO,
            "gunicorn",
            f"/files/{SMALL_NAME}",
            f"/files/{BIG_NAME}",
            app="django_app:application",
            skip=django_skip,
        ),
        Contender(
            FD_PATH,
            "gunicorn",
            f"/files/{SMALL_NAME}",
            f"/files/{BIG_NAME}",
            app="flask_download_app:create_app('path')",
        ),
        Contender(
            FD_GTHREAD,
            "gunicorn",
            f"/files/{SMALL_NAME}",
            f"/files/{BIG_NAME}",
            app="flask_download_app:create_app('path')",
            workers=GTHREAD,
        ),
        Contender(
            FD_SEND,
            "gunicorn",
            f"/send/{SMALL_NAME}",
            f"/send/{BIG_NAME}",
            app="flask_download_app:create_app('send_download')",
            skip=send_skip,
        ),
        Contender(
            FD_VIRTUAL,
            "gunicorn",
            "/virtual",
            None,
            app="flask_download_app:create_app('virtual')",
            not_applicable={BIG: virtual_na, RANGE: virtual_na},
        ),
        Contender(
            FD_OBJECT,
            "gunicorn",
            "/object/2",
            "/object/1",
            app="flask_download_app:create_app('object')",
            skip=fd_app.unavailable("object"),
        ),
        Contender(
            FD_OBJECT_SLUG,
            "gunicorn",
            f"/object/by-slug/{SMALL_NAME}",
            f"/object/by-slug/{BIG_NAME}",
            app="flask_download_app:create_app('object')",
            skip=fd_app.unavailable("object"),
        ),
        Contender(
            FD_ACCEL,
            "accel",
            f"/files/{SMALL_NAME}",
            f"/files/{BIG_NAME}",
            app="flask_download_app:create_app('accel')",
            skip=fd_app.unavailable("accel"),
        ),
    ]


# -- edge-verified links (issue #17) ------------------------------------------
# nginx checks a flask_download.edge link itself (secure_link) and serves the
# file: no Python at all per download. Compared with nginx static in the
# same run.

FD_EDGE = "nginx secure_link (flask_download.edge links)"
#: Worth >= 0.8x nginx static on 4 KiB: the check is one MD5 per request.
EDGE_TARGET = 0.8


def edge_contenders() -> list[Contender]:
    try:
        edge = importlib.import_module("flask_download.edge")
    except ImportError as e:
        skip: str | None = f"flask_download.edge is missing ({e})"
        return [Contender(FD_EDGE, "nginx", "/", None, skip=skip)]
    secret = secrets.token_urlsafe(32)
    # Valid for the whole run; wrk sends the same link each time, as many
    # clients of one published link would.
    expires = datetime.timedelta(hours=6)

    def link(name: str) -> str:
        return str(edge.nginx_secure_link(f"/e/{name}", secret=secret, expires=expires))

    body = (
        "        location /e/ {{\n"
        "            secure_link $arg_md5,$arg_expires;\n"
        f'            secure_link_md5 "$secure_link_expires$uri {secret}";\n'
        '            if ($secure_link = "") {{ return 403; }}\n'
        '            if ($secure_link = "0") {{ return 410; }}\n'
        "            alias {data_dir}/;\n"
        "        }}"
    )
    return [
        Contender(FD_EDGE, "nginx", link(SMALL_NAME), link(BIG_NAME), nginx_body=body)
    ]


def edge_targets(outcomes: dict[str, Outcome]) -> list[Target]:
    label = f"{FD_EDGE}, {SMALL}: >= {EDGE_TARGET:g}x nginx static"
    cells = [
        outcomes[name].cells.get(SMALL) for name in (FD_EDGE, NGINX) if name in outcomes
    ]
    if len(cells) != 2 or not all(c and c.value for c in cells):
        return [Target(label, "not measured", None)]
    edge_cell, nginx_cell = t.cast("list[Cell]", cells)
    assert edge_cell.value and nginx_cell.value
    r = edge_cell.value / nginx_cell.value
    target = Target(label, f"{r:.3g}x", r >= EDGE_TARGET)
    if edge_cell.cpu_per_request and nginx_cell.cpu_per_request:
        r_cpu = nginx_cell.cpu_per_request / edge_cell.cpu_per_request
        target.by_cpu, target.met_by_cpu = f"{r_cpu:.3g}x", r_cpu >= EDGE_TARGET
    return [target]


class Runner:
    """Starts each contender in turn and measures it."""

    def __init__(self, options: argparse.Namespace, data_dir: str, run_dir: str):
        self.options = options
        self.data_dir = data_dir
        self.run_dir = run_dir
        self.big_file = os.path.join(data_dir, BIG_NAME)
        self.small_content = read_at(os.path.join(data_dir, SMALL_NAME), 0, SMALL_SIZE)

    def start(self, contender: Contender) -> tuple[list[Server], int, Server]:
        """Start ``contender``: its servers, the port to load, and the server
        whose workers are measured (gunicorn's; nginx's for the nginx row)."""
        port = free_port()
        if contender.kind == "nginx":
            body = f"        root {self.data_dir};\n        location / {{ }}"
            if contender.nginx_body:
                body = contender.nginx_body.format(data_dir=self.data_dir)
            server = start_nginx(self.run_dir, port, body)
            started = [(server, port)]
        elif contender.kind == "gunicorn":
            server = start_gunicorn(
                self.run_dir, port, contender.app, self.data_dir, contender.workers
            )
            started = [(server, port)]
        else:
            # Offload: nginx proxies to the app, which answers with
            # X-Accel-Redirect to an internal location nginx serves.
            app_port = free_port()
            fd_app = importlib.import_module("flask_download_app")
            server = start_gunicorn(
                self.run_dir, app_port, contender.app, self.data_dir
            )
            body = (
                f"        location / {{ proxy_pass http://127.0.0.1:{app_port}; }}\n"
                f"        location {fd_app.ACCEL_LOCATION} {{\n"
                "            internal;\n"
                f"            alias {self.data_dir}/;\n"
                "        }"
            )
            started = [(server, app_port)]
            started.append((start_nginx(self.run_dir, port, body), port))
            self.app_port = app_port
        try:
            for each, each_port in started:
                wait_ready(each, each_port, contender.small_path)
        except Exception:
            for each, _ in started:
                each.stop()
            raise
        return [each for each, _ in started], port, server

    def measure(self, contender: Contender) -> Outcome:
        outcome = Outcome(contender)
        servers, port, measured = self.start(contender)
        # CPU is counted over every worker of the contender (for offload:
        # gunicorn's and nginx's); RSS and bytes read over the measured ones.
        self.workers = [pid for server in servers for pid in server.workers()]
        try:
            self._measure(contender, outcome, f"http://127.0.0.1:{port}", measured)
        finally:
            for server in reversed(servers):
                server.stop()
        return outcome

    def _wrk(
        self,
        url: str,
        script: str | None = None,
        args: list[str] | None = None,
        connections: int | None = None,
    ) -> Cell:
        o = self.options
        load = {"connections": connections or o.connections, "threads": o.threads}
        load["threads"] = min(load["threads"], load["connections"])
        pids = self.workers
        if o.warmup > 0:
            wrk(url, duration=o.warmup, script=script, args=args, **load)
            settle(pids)
        before = cpu_seconds(pids)
        result = wrk(url, duration=o.duration, script=script, args=args, **load)
        cpu = cpu_seconds(pids) - before
        settle(pids)
        if result.requests < 10 and connections is None and o.connections > 2:
            # Slower than the load generator's timeout with 16 connections
            # queued on 2 workers: measure with one connection per worker
            # (the workers are just as busy, so the rate is comparable).
            cell = self._wrk(url, script, args, connections=2)
            cell.note = "; ".join(
                filter(None, ["2 connections (too slow for 16)", cell.note])
            )
            return cell
        per_request = cpu / result.requests if result.requests else None
        return Cell(result.requests_per_second, result.note, False, per_request)

    def _measure(
        self, contender: Contender, outcome: Outcome, base: str, measured: Server
    ) -> None:
        cells = outcome.cells
        for workload, reason in contender.not_applicable.items():
            cells[workload] = Cell(None, f"n/a: {reason}")
        small_url = base + contender.small_path
        workers = measured.workers()

        # -- 4 KiB file: one curl to verify, then wrk.
        check = curl(small_url)
        small_ok = check.status == 200 and check.body == self.small_content
        if contender.kind == "accel":
            # The app itself must answer with the offload header, else this
            # row would measure Flask-Download streaming through a proxy.
            direct = curl(f"http://127.0.0.1:{self.app_port}{contender.small_path}")
            if "x-accel-redirect" not in direct.headers or direct.body:
                raise RuntimeError(
                    "the app did not answer with X-Accel-Redirect and an empty body"
                )
        etag = check.headers.get("etag")
        if not small_ok:
            note = f"flagged: GET answered {check.status}, {len(check.body)} bytes"
            cells[SMALL] = Cell(None, note, True)

        if contender.big_path is not None:
            self._big(outcome, base + contender.big_path, workers)
        if small_ok:
            cells[SMALL] = self._wrk(small_url)
        self._revalidate(outcome, small_url, etag)
        if contender.big_path is not None:
            self._range(outcome, base + contender.big_path, workers)

    def _big(self, outcome: Outcome, url: str, workers: list[int]) -> None:
        # 1 GiB, one client; the workers' RSS is sampled meanwhile.
        limit = self.options.big_max_time
        before = cpu_seconds(self.workers)
        with RssPoller(workers) as poller:
            result = curl(url, keep_body=False, max_time=limit)
        cpu = cpu_seconds(self.workers) - before
        outcome.rss_growth = poller.growth
        outcome.peak_rss = poller.peak_rss
        if result.status != 200:
            note = f"flagged: GET answered {result.status}"
            outcome.cells[BIG] = Cell(None, note, True)
        elif result.size != BIG_SIZE:
            note = (
                f"stopped after {limit:g} s ({result.size / MIB:.0f} MiB sent);"
                " rate of that part"
            )
            outcome.cells[BIG] = Cell(result.speed / 1e6, note)
            outcome.rss_note = f"first {limit:g} s"
        else:
            outcome.cells[BIG] = Cell(result.speed / 1e6, cpu_per_request=cpu)
        settle(self.workers)

    def _revalidate(self, outcome: Outcome, url: str, etag: str | None) -> None:
        if etag is None:
            note = "flagged: no ETag, so If-None-Match cannot give 304"
            outcome.cells[REVALIDATE] = Cell(None, note, True)
            return
        check = curl(url, headers={"If-None-Match": etag})
        if check.status != 304 or check.body:
            note = f"flagged: If-None-Match answered {check.status}, not 304"
            outcome.cells[REVALIDATE] = Cell(None, note, True)
            return
        outcome.cells[REVALIDATE] = self._wrk(url, "revalidate.lua", [etag])

    def _range(self, outcome: Outcome, url: str, workers: list[int]) -> None:
        start = random.Random(7).randrange(0, BIG_SIZE - RANGE_LENGTH)
        last = start + RANGE_LENGTH - 1
        check = curl(
            url,
            headers={"Range": f"bytes={start}-{last}"},
            max_filesize=4 * RANGE_LENGTH,
            max_time=20,
        )
        if not (
            check.status == 206
            and check.headers.get("content-range") == f"bytes {start}-{last}/{BIG_SIZE}"
            and check.body == read_at(self.big_file, start, RANGE_LENGTH)
        ):
            note = f"flagged: Range answered {check.status}"
            if check.status == 200:
                note += " (Range ignored)"
            elif check.status == 206:
                note += " with the wrong bytes or Content-Range"
            outcome.cells[RANGE] = Cell(None, note, True)
            return
        # Bytes the workers read for one range near the end of the file:
        # ``rchar`` counts read() and sendfile() alike, so it must be about
        # the range length, not its offset.
        start = BIG_SIZE - 2 * RANGE_LENGTH
        before = _rchar(workers)
        curl(url, headers={"Range": f"bytes={start}-{start + RANGE_LENGTH - 1}"})
        time.sleep(0.05)
        outcome.range_rchar = _rchar(workers) - before
        args = [str(BIG_SIZE), str(RANGE_LENGTH)]
        outcome.cells[RANGE] = self._wrk(url, "range.lua", args)


# -- issue-16 targets, interleaved --------------------------------------------
# The sequential run above measures each contender minutes after the one it
# is compared with, and load from anything else on the machine moves single
# figures by 20-50%. For the ratios the issue-16 targets are about, the
# contenders are also measured side by side: all of them up at once, rounds
# of short wrk cells in turn (the order rotating each round), the median of
# the rounds kept.

#: The contenders the issue-16 targets compare.
INTERLEAVED = (CEILING, FD_PATH, FD_OBJECT, FD_OBJECT_SLUG)
INTERLEAVED_WORKLOADS = (SMALL, REVALIDATE, RANGE)


@dataclasses.dataclass
class Interleaved:
    """Median req/s and worker CPU per request, per (contender, workload)."""

    rounds: int
    duration: int
    cells: dict[tuple[str, str], Cell]


def run_interleaved(
    options: argparse.Namespace, data_dir: str, run_dir: str, chosen: list[Contender]
) -> Interleaved | None:
    wanted = [c for c in chosen if c.name in INTERLEAVED and c.skip is None]
    if options.rounds <= 0 or len(wanted) < 2:
        return None
    if any(c.name in (FD_OBJECT, FD_OBJECT_SLUG) for c in wanted):
        importlib.import_module("flask_download_app").init_database(data_dir)
    short = argparse.Namespace(**vars(options))
    short.duration = options.interleaved_duration
    runners: list[
        tuple[
            Contender,
            Runner,
            list[Server],
            dict[str, tuple[str, str | None, list[str] | None]],
        ]
    ] = []
    try:
        for contender in wanted:
            runner = Runner(short, data_dir, run_dir)
            servers, port, _ = runner.start(contender)
            base = f"http://127.0.0.1:{port}"
            small = base + contender.small_path
            etag = curl(small).headers.get("etag")
            urls: dict[str, tuple[str, str | None, list[str] | None]] = {
                SMALL: (small, None, None)
            }
            if etag is not None:
                urls[REVALIDATE] = (small, "revalidate.lua", [etag])
            if contender.big_path is not None:
                args = [str(BIG_SIZE), str(RANGE_LENGTH)]
                urls[RANGE] = (base + contender.big_path, "range.lua", args)
            runner.workers = [pid for server in servers for pid in server.workers()]
            runners.append((contender, runner, servers, urls))
        samples: dict[tuple[str, str], list[Cell]] = {}
        for round_number in range(options.rounds):
            say(f"interleaved round {round_number + 1} of {options.rounds}")
            shift = round_number % len(runners)
            order = runners[shift:] + runners[:shift]
            for workload in INTERLEAVED_WORKLOADS:
                for contender, runner, _, urls in order:
                    if workload not in urls:
                        continue
                    url, script, args = urls[workload]
                    cell = runner._wrk(url, script, args)
                    samples.setdefault((contender.name, workload), []).append(cell)
    finally:
        for _, _, servers, _ in runners:
            for server in reversed(servers):
                server.stop()
    cells = {}
    for key, found in samples.items():
        rates = [c.value for c in found if c.value]
        cpus = [c.cpu_per_request for c in found if c.cpu_per_request]
        cells[key] = Cell(
            statistics.median(rates) if rates else None,
            cpu_per_request=statistics.median(cpus) if cpus else None,
        )
    return Interleaved(options.rounds, short.duration, cells)


def interleaved_targets(result: Interleaved) -> list[Target]:
    """The issue-16 targets, from the interleaved medians."""
    outcomes: dict[str, Outcome] = {}
    for (name, workload), cell in result.cells.items():
        outcome = outcomes.get(name)
        if outcome is None:
            outcome = outcomes[name] = Outcome(Contender(name, "gunicorn", "", None))
        outcome.cells[workload] = cell
    return [t for t in targets(outcomes) if t.label.startswith(INTERLEAVED[1:])]


def _rchar(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, KeyError):
            total += read_proc_field(pid, "io", "rchar")
    return total


# -- in-process overhead (pytest-benchmark) ---------------------------------


@dataclasses.dataclass
class Overhead:
    group: str
    case: str
    mean: float  # seconds
    ops: float


def run_overhead(run_dir: str) -> tuple[list[Overhead], str]:
    """Run ``benchmarks/test_overhead.py``; its figures, or why there are none."""
    try:
        importlib.import_module("pytest_benchmark")
    except ImportError:
        return [], "pytest-benchmark is not installed (pip install pytest-benchmark)"
    report = os.path.join(run_dir, "overhead.json")
    argv = [
        sys.executable,
        "-m",
        "pytest",
        os.path.join(HERE, "test_overhead.py"),
        "-q",
        "-p",
        "no:randomly",
        f"--benchmark-json={report}",
        "--benchmark-disable-gc",
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(report):
        return (
            [],
            f"pytest failed:\n\n```\n{done.stdout[-3000:]}{done.stderr[-2000:]}\n```",
        )
    with open(report) as f:
        data = json.load(f)
    figures = [
        Overhead(
            b["group"] or "",
            b["param"] or b["name"],
            b["stats"]["mean"],
            b["stats"]["ops"],
        )
        for b in data["benchmarks"]
    ]
    return figures, ""


# -- report -----------------------------------------------------------------


def number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3g}"


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    r = value / reference
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for dist in ("Flask", "Werkzeug", "gunicorn", "Django", "django-downloadview"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    parts.append(nginx.strip().replace("nginx version: ", ""))
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    parts.append(wrk_v.split(" [")[0].strip())
    return ", ".join(parts)


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}"


@dataclasses.dataclass
class Target:
    label: str
    measured: str
    met: bool | None  # None: could not be measured
    #: The same ratio from worker CPU per request (less disturbed by other
    #: load on the machine), and whether it meets the target.
    by_cpu: str = "—"
    met_by_cpu: bool | None = None


def targets(outcomes: dict[str, Outcome]) -> list[Target]:
    def value(contender: str, workload: str) -> float | None:
        outcome = outcomes.get(contender)
        cell = outcome.cells.get(workload) if outcome else None
        return cell.value if cell else None

    def cpu(contender: str, workload: str) -> float | None:
        outcome = outcomes.get(contender)
        cell = outcome.cells.get(workload) if outcome else None
        return cell.cpu_per_request if cell and cell.value else None

    def make(label: str, r: float | None, r_cpu: float | None, factor: float) -> Target:
        target = Target(label, "not measured", None)
        if r is not None:
            target.measured, target.met = f"{r:.3g}x", r >= factor
        if r_cpu is not None:
            target.by_cpu, target.met_by_cpu = f"{r_cpu:.3g}x", r_cpu >= factor
        return target

    def quotient(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    def versus(workload: str, factor: float) -> Target:
        return make(
            f"{workload}: >= {factor:g}x Flask send_file",
            quotient(value(FD_PATH, workload), value(SEND_FILE, workload)),
            quotient(cpu(SEND_FILE, workload), cpu(FD_PATH, workload)),
            factor,
        )

    def against(
        contender: str, reference: str, short: str, workload: str, factor: float
    ) -> Target:
        return make(
            f"{contender} {workload}: >= {factor:g}x {short}",
            quotient(value(contender, workload), value(reference, workload)),
            quotient(cpu(reference, workload), cpu(contender, workload)),
            factor,
        )

    # Issue 16: the path view at the Flask ceiling, the object view close to
    # the path view.
    found = [
        against(FD_PATH, CEILING, "the Flask ceiling", SMALL, 0.9),
        against(FD_PATH, CEILING, "the Flask ceiling", REVALIDATE, 1.0),
        against(FD_PATH, CEILING, "the Flask ceiling", RANGE, 0.95),
    ]
    for contender in (FD_OBJECT, FD_OBJECT_SLUG):
        for workload in (SMALL, REVALIDATE):
            found.append(against(contender, FD_PATH, "PathDownloadView", workload, 0.8))
    found += [
        versus(BIG, 0.95),
        versus(SMALL, 1.2),
        versus(RANGE, 200),
    ]
    found.append(
        make(
            f"{RANGE}: >= 0.7x our own 4 KiB req/s",
            quotient(value(FD_PATH, RANGE), value(FD_PATH, SMALL)),
            quotient(cpu(FD_PATH, SMALL), cpu(FD_PATH, RANGE)),
            0.7,
        )
    )
    found.append(versus(REVALIDATE, 1.3))
    path = outcomes.get(FD_PATH)
    label = "worker RSS growth while serving 1 GiB: < 5 MiB"
    if path is None or path.rss_growth is None:
        found.append(Target(label, "not measured", None))
    else:
        growth = path.rss_growth / MIB
        found.append(Target(label, f"{growth:.2f} MiB", growth < 5))
    label = "worker bytes read for one 64 KiB range near the end: <= 128 KiB"
    if path is None or path.range_rchar is None:
        found.append(Target(label, "not measured", None))
    else:
        kib = path.range_rchar / 1024
        found.append(
            Target(label, f"{kib:,.0f} KiB", path.range_rchar <= 2 * RANGE_LENGTH)
        )
    found += edge_targets(outcomes)
    return found


def _cpu(cell: Cell | None) -> float | None:
    return cell.cpu_per_request if cell is not None and cell.value else None


def render(
    outcomes: dict[str, Outcome],
    skipped: dict[str, str],
    overhead: list[Overhead],
    overhead_note: str,
    options: argparse.Namespace,
    started: datetime.datetime,
    elapsed: float,
    interleaved: Interleaved | None = None,
) -> str:
    lines = [
        f"# Flask-Download benchmarks, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {machine()}.",
        f"- Software: {versions()}.",
        f"- Load: `wrk -t{options.threads} -c{options.connections}"
        f" -d{options.duration:g}s` after a {options.warmup:g} s warm-up;"
        " one `curl` for the 1 GiB file. Python contenders run under gunicorn,"
        " sync workers x2 (the gthread row: 2 workers x 8 threads, keep-alive);"
        " nginx with 2 workers; everything on 127.0.0.1.",
        f"- Run time: {elapsed:.0f} s. Load average (1 min) at the start"
        f" {options.load_start}, at the end {_loadavg()}: other processes on"
        " the machine lower every req/s figure.",
        "",
    ]
    ceiling = outcomes.get(CEILING)
    path = outcomes.get(FD_PATH)
    lines += [
        "Each figure is also given as a ratio to the Flask ceiling (a minimal"
        " hand-written Flask view, not something to ship) and to"
        " `PathDownloadView` under gunicorn sync, measured in the same run."
        " CPU ratios are the reference's worker CPU per request divided by"
        " this contender's (above 1: cheaper than the reference).",
        "",
    ]
    for workload, unit in WORKLOADS.items():
        cpu_unit = "CPU s per GiB" if workload == BIG else "CPU µs per request"
        lines += [
            f"## {workload} ({unit})",
            "",
            f"| contender | {unit} | x ceiling | x Path | {cpu_unit}"
            " | CPU: ceiling / this | CPU: Path / this | notes |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        ref_ceiling = ceiling.cells.get(workload) if ceiling else None
        ref_path = path.cells.get(workload) if path else None
        for name, outcome in outcomes.items():
            cell = outcome.cells.get(workload, Cell(None, "not measured"))
            figure = "—" if cell.value is None else number(cell.value)
            if cell.flagged:
                figure = "**flagged**"
            cpu = "—"
            if cell.cpu_per_request is not None and cell.value is not None:
                scale = 1 if workload == BIG else 1e6
                cpu = number(cell.cpu_per_request * scale)
            mine = cell.cpu_per_request if cell.value else None
            lines.append(
                f"| {name} | {figure}"
                f" | {ratio(cell.value, ref_ceiling.value if ref_ceiling else None)}"
                f" | {ratio(cell.value, ref_path.value if ref_path else None)}"
                f" | {cpu}"
                f" | {ratio(_cpu(ref_ceiling), mine)}"
                f" | {ratio(_cpu(ref_path), mine)}"
                f" | {cell.note} |"
            )
        lines.append("")
    lines += [
        "## Workers",
        "",
        "RSS: `VmRSS` of each worker sampled every 5 ms during the 1 GiB download"
        " (growth: peak minus the value just before). Bytes read: the `rchar`"
        " delta (`/proc/<pid>/io`, read() and sendfile() alike) of the workers"
        f" for one 64 KiB range at offset {BIG_SIZE - 2 * RANGE_LENGTH:,}.",
        "",
        "| contender | peak worker RSS | RSS growth | bytes read for one range |",
        "|---|---:|---:|---:|",
    ]
    for name, outcome in outcomes.items():
        peak = "—" if outcome.peak_rss is None else f"{outcome.peak_rss / MIB:.1f} MiB"
        growth = "—"
        if outcome.rss_growth is not None:
            growth = f"{outcome.rss_growth / MIB:.2f} MiB"
            if outcome.rss_note:
                growth += f" ({outcome.rss_note})"
        read = "—"
        if outcome.range_rchar is not None:
            read = f"{outcome.range_rchar / 1024:,.0f} KiB"
        lines.append(f"| {name} | {peak} | {growth} | {read} |")
    lines.append("")
    lines += ["## In-process overhead (pytest-benchmark, Flask test client)", ""]
    if overhead:
        lines += [
            "`benchmarks/test_overhead.py`: the whole request through"
            " `app.test_client()`, body read.",
            "",
            "| workload | contender | mean | req/s | x send_file |",
            "|---|---|---:|---:|---:|",
        ]
        reference = {o.group: o.ops for o in overhead if o.case == "send_file"}
        for o in overhead:
            lines.append(
                f"| {o.group} | {o.case} | {o.mean * 1e6:.0f} µs | {number(o.ops)}"
                f" | {ratio(o.ops, reference.get(o.group))} |"
            )
    else:
        lines.append(f"Skipped: {overhead_note}")
    lines.append("")
    if skipped:
        lines += ["## Skipped contenders", ""]
        lines += [f"- {name}: {reason}." for name, reason in skipped.items()]
        lines.append("")
    lines += [
        "## Targets",
        "",
        "The ratio of req/s decides; the same ratio from worker CPU time per"
        " request (inverted: the reference's CPU / the contender's) is shown"
        " because it is far less disturbed by other load on the machine.",
        "",
    ]
    lines += target_table(targets(outcomes))
    if interleaved is not None:
        lines += render_interleaved(interleaved)
    return "\n".join(lines)


def target_table(found: list[Target]) -> list[str]:
    """The Markdown table of ``found`` targets, a blank line after it."""
    verdict = {True: "PASS", False: "MISS", None: "not measured"}
    lines = [
        "| target | req/s ratio | result | CPU ratio | result by CPU |",
        "|---|---:|---|---:|---|",
    ]
    for target in found:
        by_cpu = verdict[target.met_by_cpu] if target.by_cpu != "—" else "—"
        lines.append(
            f"| {target.label} | {target.measured} | {verdict[target.met]}"
            f" | {target.by_cpu} | {by_cpu} |"
        )
    lines.append("")
    return lines


def render_interleaved(result: Interleaved) -> list[str]:
    lines = [
        "## Issue-16 targets, interleaved",
        "",
        "The same contenders up at once and measured in turn, in"
        f" {result.rounds} rounds of `wrk` cells of {result.duration} s (the"
        " order rotating each round); each figure is the median of the"
        " rounds. Load from elsewhere on the machine hits every contender"
        " alike, so these ratios are steadier than the sequential ones above.",
        "",
        "| contender | workload | req/s | CPU µs per request |",
        "|---|---|---:|---:|",
    ]
    for (name, workload), cell in result.cells.items():
        cpu = "—"
        if cell.cpu_per_request is not None:
            cpu = number(cell.cpu_per_request * 1e6)
        figure = "—" if cell.value is None else number(cell.value)
        lines.append(f"| {name} | {workload} | {figure} | {cpu} |")
    lines.append("")
    return lines + target_table(interleaved_targets(result))


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def update_readme(report: str) -> None:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    # Demote the report's headings below the README's own.
    body = re.sub(r"^(#+) ", r"\1## ", report, flags=re.MULTILINE)
    with open(README, "w", encoding="utf-8") as f:
        f.write(f"{head}{README_START}\n{body}\n{README_END}{tail}")


# -- main -------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk cell")
    parser.add_argument("--warmup", type=int, default=1, help="wrk warm-up seconds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--big-max-time",
        type=float,
        default=15,
        help="stop a slow 1 GiB download after this many seconds",
    )
    parser.add_argument(
        "--data-dir", help="keep the data files here and reuse them (default: temp)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only contenders whose name contains this (repeatable)",
    )
    parser.add_argument(
        "--no-overhead", action="store_true", help="skip the pytest-benchmark part"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the interleaved issue-16 targets (0: skip them)",
    )
    parser.add_argument(
        "--interleaved-duration",
        type=int,
        default=3,
        help="seconds per wrk cell of the interleaved rounds",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="copy the report into benchmarks/README.md",
    )
    options = parser.parse_args(argv)

    missing = [tool for tool in ("nginx", "wrk", "curl") if shutil.which(tool) is None]
    try:
        importlib.import_module("gunicorn")
    except ImportError:
        missing.append("gunicorn (pip install gunicorn)")
    if missing:
        say(f"missing tools: {', '.join(missing)}")
        return 2

    started = datetime.datetime.now(datetime.timezone.utc)
    options.load_start = _loadavg()
    clock = time.monotonic()
    data_dir = options.data_dir or tempfile.mkdtemp(prefix="flask-download-bench-")
    run_dir = tempfile.mkdtemp(prefix="flask-download-bench-run-")
    os.chmod(run_dir, 0o755)
    outcomes: dict[str, Outcome] = {}
    skipped: dict[str, str] = {}
    try:
        make_data(data_dir)
        chosen = [
            c
            for c in contenders()
            if not options.only
            or any(o.lower() in c.name.lower() for o in options.only)
        ]
        for contender in chosen:
            if contender.skip is not None:
                say(f"skipping {contender.name}: {contender.skip}")
                skipped[contender.name] = contender.skip
                continue
            say(f"measuring {contender.name}")
            try:
                if contender.name in (FD_OBJECT, FD_OBJECT_SLUG):
                    fd_app = importlib.import_module("flask_download_app")
                    fd_app.init_database(data_dir)
                outcomes[contender.name] = Runner(options, data_dir, run_dir).measure(
                    contender
                )
            except Exception as e:  # one broken contender does not end the run
                say(f"{contender.name} failed: {e!r}")
                skipped[contender.name] = f"failed: {e}"
        interleaved = None
        try:
            interleaved = run_interleaved(options, data_dir, run_dir, chosen)
        except Exception as e:  # the sequential figures still stand
            say(f"interleaved rounds failed: {e!r}")
        overhead: list[Overhead] = []
        overhead_note = "--no-overhead"
        if not options.no_overhead:
            say("running the in-process overhead benchmark (pytest-benchmark)")
            overhead, overhead_note = run_overhead(run_dir)
        report = render(
            outcomes,
            skipped,
            overhead,
            overhead_note,
            options,
            started,
            time.monotonic() - clock,
            interleaved,
        )
    finally:
        if options.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)

    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{started:%Y%m%d-%H%M%S}.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(report)
    sys.stdout.write(report + "\n")
    say(f"report written to {os.path.relpath(path, REPO)}")
    if options.update_readme:
        update_readme(report)
        say("report copied into benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
