"""Per-request CPU of the contenders in one process, interleaved.

No server and no socket: each contender's WSGI app is called directly with
a prepared environ (a ``wsgi.file_wrapper`` included, as gunicorn offers
one) and its body read. Rounds alternate between the contenders, and the
median of the rounds is kept, so load from other processes on a shared
machine hits every contender alike: the ratios are much steadier than
req/s. Run from the repository root::

    python benchmarks/inprocess.py            # about 30 s
    python benchmarks/inprocess.py --rounds 40 --requests 300

The report (Markdown) gives CPU µs per request and each contender's ratio
to the Flask ceiling and to ``PathDownloadView`` (above 1: cheaper).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "apps"), os.path.dirname(HERE)]

SMALL = bytes(range(256)) * 16
BIG_SIZE = 16 << 20
RANGE = "bytes=1000000-1065535"


def _start_response(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
    _start_response.status = status  # type: ignore[attr-defined]
    return None


def call(app: t.Any, environ: dict[str, t.Any]) -> int:
    body = app(dict(environ), _start_response)
    size = 0
    try:
        for chunk in body:
            size += len(chunk)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return size


def environ(path: str, headers: dict[str, str]) -> dict[str, t.Any]:
    from werkzeug.test import EnvironBuilder
    from werkzeug.wsgi import FileWrapper

    env = EnvironBuilder(path=path, headers=headers).get_environ()
    env["wsgi.file_wrapper"] = FileWrapper
    env["SERVER_SOFTWARE"] = "gunicorn/bench"
    return env


def etag_of(app: t.Any, path: str) -> str:
    found: dict[str, str] = {}

    def start(status: str, headers: t.Any, exc_info: t.Any = None) -> None:
        found.update(headers)

    body = app(environ(path, {}), start)
    list(body)
    getattr(body, "close", lambda: None)()
    return found["ETag"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--requests", type=int, default=200, help="per round")
    options = parser.parse_args(argv)

    data = tempfile.mkdtemp(prefix="flask-download-inprocess-")
    os.environ["BENCH_DATA_DIR"] = data
    with open(os.path.join(data, "small.bin"), "wb") as f:
        f.write(SMALL)
    with open(os.path.join(data, "big.bin"), "wb") as f:
        f.truncate(BIG_SIZE)

    import ceiling_app
    import flask_download_app as fd_app

    import flask_download

    apps: dict[str, tuple[t.Any, str, str]] = {
        "bare WSGI callable": (ceiling_app.create_wsgi(), "/files/small.bin", "big"),
        "Flask ceiling": (ceiling_app.create_app(), "/files/small.bin", "big"),
        "PathDownloadView": (fd_app.create_app("path"), "/files/small.bin", "big"),
    }
    if hasattr(flask_download, "send_download"):
        apps["send_download"] = (
            fd_app.create_app("send_download"),
            "/send/small.bin",
            "big",
        )
    if fd_app.unavailable("object") is None:
        fd_app.init_database(data)
        objects = fd_app.create_app("object")
        apps["ObjectDownloadView by id"] = (objects, "/object/2", "/object/1")
        apps["ObjectDownloadView by slug"] = (
            objects,
            "/object/by-slug/small.bin",
            "/object/by-slug/big.bin",
        )
    workloads = ("4 KiB", "304", "64 KiB range")
    cases: list[tuple[str, str, dict[str, t.Any]]] = []
    for name, (app, small, big) in apps.items():
        big_path = small.replace("small", "big") if big == "big" else big
        for workload in workloads:
            if workload == "4 KiB":
                env = environ(small, {})
            elif workload == "304":
                env = environ(small, {"If-None-Match": etag_of(app, small)})
            else:
                env = environ(big_path, {"Range": RANGE})
            call(app, env)
            expected = {"4 KiB": "200", "304": "304", "64 KiB range": "206"}[workload]
            status = _start_response.status  # type: ignore[attr-defined]
            if not status.startswith(expected):
                raise SystemExit(f"{name} {workload}: answered {status}")
            cases.append((name, workload, env))

    samples: dict[tuple[str, str], list[float]] = {(n, w): [] for n, w, _ in cases}
    for _ in range(options.rounds):
        for name, workload, env in cases:
            app = apps[name][0]
            start = time.process_time()
            for _ in range(options.requests):
                call(app, env)
            samples[name, workload].append(
                (time.process_time() - start) / options.requests
            )
    cost = {key: statistics.median(values) for key, values in samples.items()}

    lines = [
        "| workload | contender | CPU µs per request | ceiling / this | Path / this |",
        "|---|---|---:|---:|---:|",
    ]
    for workload in workloads:
        ceiling = cost.get(("Flask ceiling", workload))
        path = cost.get(("PathDownloadView", workload))
        for name in apps:
            mine = cost[name, workload]
            lines.append(
                f"| {workload} | {name} | {mine * 1e6:,.1f}"
                f" | {ceiling / mine:.2f}x | {path / mine:.2f}x |"
                if ceiling and path
                else f"| {workload} | {name} | {mine * 1e6:,.1f} | — | — |"
            )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
