"""Where a request's CPU goes on the wire: py-spy profiles of gunicorn workers.

``benchmarks/inprocess.py`` times requests in a tight loop in one process,
where code and data stay in the CPU caches. Under gunicorn, every request
also runs the server's accept, parse, send and close, and the caches are
shared with the load generator: code that touches much memory (SQLite,
SQLAlchemy's pool) costs up to twice as much as in the loop. This script
measures there.

For each contender and workload it starts ``gunicorn`` (one sync worker),
measures the worker's CPU per request under ``wrk`` (no profiler), then
records a ``py-spy`` profile of the same load and splits the worker's CPU
into parts by the deepest frame of each sample that names one (see
:data:`PARTS`). A part's µs are its share of the samples times the CPU per
request measured without the profiler: the profiler slows Python code more
than system calls, so the split is an estimate, the totals are measured.

Run (needs ``wrk`` and ``py-spy``, ``pip install -e ".[bench]"``; as root,
or with ``ptrace`` allowed, for py-spy to attach)::

    python benchmarks/profile_wire.py                 # every contender
    python benchmarks/profile_wire.py --only path --only ceiling

The report is Markdown on stdout.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]

import run  # noqa: E402  (the runner's helpers: servers, wrk, CPU time)

#: contender name -> (gunicorn app, 4 KiB URL path, 1 GiB URL path)
CONTENDERS = {
    "ceiling": ("ceiling_app:create_app()", "/files/small.bin", "/files/big.bin"),
    "path": (
        'flask_download_app:create_app("path")',
        "/files/small.bin",
        "/files/big.bin",
    ),
    "object": ('flask_download_app:create_app("object")', "/object/2", "/object/1"),
}

#: The parts of a request, each named by frames (function name, end of the
#: file's path). A sample goes to the part of its deepest naming frame;
#: samples outside a request (the worker's accept loop) to "worker loop".
PARTS: list[tuple[str, tuple[tuple[str, str], ...]]] = [
    (
        "gunicorn: parse the request, build the environ, close the socket",
        (("SyncWorker.handle", "gunicorn/workers/sync.py"),),
    ),
    (
        "gunicorn: status line and headers",
        (("Response.send_headers", "gunicorn/http/wsgi.py"),),
    ),
    (
        "gunicorn: body (sendfile, or write of the bytes)",
        (
            ("Response.write_file", "gunicorn/http/wsgi.py"),
            ("Response.write", "gunicorn/http/wsgi.py"),
        ),
    ),
    (
        "Flask and Werkzeug around the view (context, routing, hooks, teardown)",
        (("Flask.__call__", "flask/app.py"),),
    ),
    (
        "the view (class-based dispatch, headers, preconditions)",
        (
            ("create_app.<locals>.serve", "ceiling_app.py"),
            ("DownloadView.as_view.<locals>.view", "flask_download/views/_base.py"),
        ),
    ),
    (
        "file lookup (URL path, confined open, fstat)",
        (
            ("PathDownloadView.get_file", "flask_download/views/_ready.py"),
            ("ObjectDownloadView.get_file", "flask_download/objects/_view.py"),
        ),
    ),
    (
        "row lookup (one SELECT, pool checkout and return)",
        (("ObjectDownloadView.get_object", "flask_download/objects/_view.py"),),
    ),
    (
        "closing the body (the file, the response's callbacks)",
        (
            ("_FileSpan.close", "flask_download/response/_bodies.py"),
            ("_ClosingBody.close", "flask_download/response/_bodies.py"),
            ("DownloadResponse.close", "flask_download/response/_download.py"),
            ("FileWrapper.close", "werkzeug/wsgi.py"),
        ),
    ),
    (
        "response to WSGI (status, header list, body iterator)",
        (
            ("Response.__call__", "werkzeug/wrappers/response.py"),
            ("DownloadResponse.__call__", "flask_download/response/_download.py"),
        ),
    ),
]
#: py-spy, from the PATH or the virtual environment running this script.
PY_SPY = shutil.which("py-spy") or shutil.which(
    "py-spy", path=os.path.dirname(sys.executable)
)

WORKER_LOOP = "gunicorn: worker loop (accept, heartbeat)"
ORDER = [name for name, _ in PARTS[:3]] + [WORKER_LOOP] + [n for n, _ in PARTS[3:]]


#: The frame every complete sample of a sync worker has.
_ROOT = "SyncWorker.run "


def part_of(frames: list[str]) -> str:
    """The part a sample (frames from the outermost) belongs to."""
    found = WORKER_LOOP
    for frame in frames:
        # py-spy's raw format: "function (path:line)".
        name, _, where = frame.partition(" (")
        path = where.rpartition(":")[0]
        for part, marks in PARTS:
            if any(name == n and path.endswith(f) for n, f in marks):
                found = part
    return found


def split(raw_path: str) -> dict[str, float]:
    """Each part's share of the complete samples of a py-spy raw profile."""
    counts: collections.Counter[str] = collections.Counter()
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = stack.split(";")
            # A sample caught mid-switch may lack its outer frames (py-spy
            # does not stop the worker): left out rather than misplaced.
            if any(frame.startswith(_ROOT) for frame in frames):
                counts[part_of(frames)] += int(count)
    total = sum(counts.values()) or 1
    return {part: counts[part] / total for part in ORDER}


def workloads(contender: str, base: str, etag: str) -> dict[str, list[str]]:
    """wrk arguments (after the common ones) per workload."""
    _, small, big = CONTENDERS[contender]
    lua = os.path.join(run.LUA, "")
    return {
        "4 KiB": [base + small],
        "304": ["-s", lua + "revalidate.lua", base + small, "--", etag],
        "64 KiB range": [
            "-s",
            lua + "range.lua",
            base + big,
            "--",
            str(run.BIG_SIZE),
            str(run.RANGE_LENGTH),
        ],
    }


def wrk_count(args: list[str], seconds: float) -> int:
    out = subprocess.run(
        ["wrk", "-t1", "-c2", f"-d{round(seconds)}s", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        if "requests in" in line:
            return int(line.split()[0])
    raise RuntimeError(f"cannot read wrk output:\n{out}")


def measure(
    contender: str, data_dir: str, run_dir: str, seconds: float
) -> dict[str, tuple[float, dict[str, float]]]:
    """CPU µs per request and the split of each workload for one contender."""
    app, small, _ = CONTENDERS[contender]
    port = run.free_port()
    server = run.start_gunicorn(run_dir, port, app, data_dir, ["--workers=1"])
    try:
        run.wait_ready(server, port, small)
        [worker] = server.workers()
        base = f"http://127.0.0.1:{port}"
        etag = run.curl(base + small).headers["etag"]
        found = {}
        for workload, args in workloads(contender, base, etag).items():
            wrk_count(args, 1)
            run.settle([worker])
            before = run.cpu_seconds([worker])
            count = wrk_count(args, seconds)
            cpu = (run.cpu_seconds([worker]) - before) / count * 1e6
            raw = os.path.join(run_dir, f"{contender}-{workload.split()[0]}.raw")
            spy = subprocess.Popen(
                [
                    PY_SPY,
                    "record",
                    "--nonblocking",
                    "-r",
                    "1000",
                    "-f",
                    "raw",
                    "-d",
                    str(int(seconds)),
                    "-p",
                    str(worker),
                    "-o",
                    raw,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            wrk_count(args, seconds)
            spy.wait(timeout=seconds + 30)
            found[workload] = (cpu, split(raw))
            run.settle([worker])
        return found
    finally:
        server.stop()


def report(results: dict[str, dict[str, tuple[float, dict[str, float]]]]) -> str:
    lines = [
        "CPU µs per request of one gunicorn sync worker under `wrk -t1 -c2`, "
        "split by py-spy samples (`benchmarks/profile_wire.py`).",
        "",
    ]
    names = list(results)
    for workload in ("4 KiB", "304", "64 KiB range"):
        lines += [f"#### {workload}", ""]
        lines.append("| part | " + " | ".join(names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for part in ORDER:
            cells = []
            for name in names:
                cpu, shares = results[name][workload]
                cells.append(f"{cpu * shares[part]:.0f}")
            lines.append(f"| {part} | " + " | ".join(cells) + " |")
        totals = [f"**{results[name][workload][0]:.0f}**" for name in names]
        lines.append(
            "| **the whole request (measured)** | " + " | ".join(totals) + " |"
        )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(CONTENDERS))
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--data-dir", help="reuse the data files here")
    options = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not on the PATH")
    if PY_SPY is None:
        parser.error("py-spy is neither on the PATH nor next to this Python")
    chosen = options.only or list(CONTENDERS)
    with tempfile.TemporaryDirectory() as run_dir:
        run_dir = os.environ.get("PROFILE_KEEP", run_dir)
        data_dir = options.data_dir or os.path.join(run_dir, "data")
        run.make_data(data_dir)
        sys.path[:0] = [run.APPS, run.REPO]
        import flask_download_app

        flask_download_app.init_database(data_dir)
        results = {}
        for name in chosen:
            run.say(f"profiling {name}")
            results[name] = measure(name, data_dir, run_dir, options.seconds)
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
