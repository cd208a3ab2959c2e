"""Benchmark streaming ZIP archives against a single file and other libraries.

One command, from the repository root, with the dev venv and the ``bench``
extra (zipstream-ng, stream-zip)::

    python benchmarks/zip.py

It writes a 1 GiB file, the same bytes as four 256 MiB files, and 1,000
files of 4 KiB to a data directory, starts ``benchmarks/apps/zip_app.py``
in gunicorn (sync, 2 workers), checks every answer, then measures in one
run, side by side:

1. throughput of a 1 GiB stored archive of the four files (CRC-32s known,
   and unknown) against the single 1 GiB file from ``PathDownloadView``
   (``curl -o /dev/null``, best of three, alternated); target >= 0.9x;
2. time to last byte and the worker's peak RSS growth for the 1,000 x 4 KiB
   archive from Flask-Download, zipstream-ng and stream-zip;
3. ``wrk`` req/s of 64 KiB ranges at random offsets of the archive against
   the same ranges of the single file; target >= 0.5x.

The Markdown report goes to stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run as bench  # noqa: E402  (the shared helpers of benchmarks/run.py)

QUARTER = 256 * bench.MIB
SMALL_COUNT = 1000


def make_data(data_dir: str) -> None:
    """The 1 GiB file, its four quarters as files, and 1,000 small files."""
    bench.make_data(data_dir)
    big = os.path.join(data_dir, bench.BIG_NAME)
    for i in range(4):
        path = os.path.join(data_dir, f"quarter-{i}.bin")
        if os.path.exists(path) and os.path.getsize(path) == QUARTER:
            continue
        bench.say(f"writing {path}")
        with open(big, "rb") as source, open(path, "wb") as target:
            source.seek(i * QUARTER)
            remaining = QUARTER
            while remaining:
                block = source.read(min(remaining, 4 * bench.MIB))
                target.write(block)
                remaining -= len(block)
    small = os.path.join(data_dir, "small")
    os.makedirs(small, exist_ok=True)
    for i in range(SMALL_COUNT):
        path = os.path.join(small, f"file-{i:04d}.txt")
        if not os.path.exists(path):
            with open(path, "wb") as handle:
                handle.write(os.urandom(4096))


def check(url: str, files: dict[str, bytes] | None = None) -> int:
    """Fetch an archive, check it with zipfile; return its size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "archive.zip")
        done = subprocess.run(
            ["curl", "-sS", "-f", "--max-time", "300", "-o", path, url],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"{url}: curl {done.returncode} {done.stderr}")
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                raise RuntimeError(f"{url}: bad CRC")
            for name, content in (files or {}).items():
                if archive.read(name) != content:
                    raise RuntimeError(f"{url}: {name} differs")
        return os.path.getsize(path)


def throughput(url: str) -> float:
    result = bench.curl(url, keep_body=False, max_time=120)
    if result.status != 200 or result.size < bench.BIG_SIZE:
        raise RuntimeError(f"{url}: status {result.status}, {result.size} bytes")
    return result.speed


def time_to_last_byte(url: str) -> float:
    done = subprocess.run(
        ["curl", "-sS", "-o", os.devnull, "-w", "%{time_total}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="keep and reuse the data files here")
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds")
    parser.add_argument("--repeat", type=int, default=3, help="1 GiB downloads each")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = options.data_dir or os.path.join(tmp, "data")
        make_data(data_dir)
        port = bench.free_port()
        server = bench.start_gunicorn(tmp, port, "zip_app:app", data_dir)
        try:
            bench.wait_ready(server, port, "/small/flask-download.zip", timeout=120)
            return measure(f"http://127.0.0.1:{port}", server, data_dir, options)
        finally:
            server.stop()


def measure(
    base: str, server: bench.Server, data_dir: str, options: argparse.Namespace
) -> int:
    report = [
        "# Streaming ZIP benchmark",
        "",
        f"{bench.machine()}, load {bench._loadavg()}",
        "",
    ]

    # -- checks ---------------------------------------------------------
    bench.say("checking the archives")
    archive_size = check(f"{base}/quarters.zip")
    if check(f"{base}/quarters-nocrc.zip") != archive_size:
        raise RuntimeError("the archive's size depends on known CRC-32s")
    small_dir = os.path.join(data_dir, "small")
    small_files = {
        name: bench.read_at(os.path.join(small_dir, name), 0, 4096)
        for name in sorted(os.listdir(small_dir))
    }
    for library in ("flask-download", "zipstream-ng", "stream-zip"):
        check(f"{base}/small/{library}.zip", small_files)
    start = archive_size // 3
    ranged = bench.curl(
        f"{base}/quarters.zip", headers={"Range": f"bytes={start}-{start + 65535}"}
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "archive.zip")
        subprocess.run(["curl", "-sS", "-o", path, f"{base}/quarters.zip"], check=True)
        expected = bench.read_at(path, start, 65536)
    if ranged.status != 206 or ranged.body != expected:
        raise RuntimeError("a range of the archive differs from the whole")

    # -- 1. throughput ----------------------------------------------------
    bench.say("1 GiB: single file vs archive")
    speeds: dict[str, list[float]] = {"file": [], "zip": [], "zip-nocrc": []}
    for _ in range(options.repeat):
        speeds["file"].append(throughput(f"{base}/big.bin"))
        speeds["zip"].append(throughput(f"{base}/quarters.zip"))
        speeds["zip-nocrc"].append(throughput(f"{base}/quarters-nocrc.zip"))
    best = {key: max(values) for key, values in speeds.items()}

    def row(label: str, key: str, target: str = "") -> str:
        ratio = best[key] / best["file"]
        return f"| {label} | {best[key] / 1e6:.0f} | {ratio:.2f}x{target} |"

    report += [
        f"## 1 GiB, one client (curl, best of {options.repeat})",
        "",
        "| download | MB/s | vs single file |",
        "|---|---:|---:|",
        row("single 1 GiB file, `PathDownloadView` (sendfile)", "file"),
        row("archive of 4 x 256 MiB, CRC-32s known", "zip", " (target >= 0.9x)"),
        row("archive of 4 x 256 MiB, CRC-32s computed", "zip-nocrc"),
        "",
    ]

    # -- 2. many small files ----------------------------------------------
    bench.say("1,000 x 4 KiB")
    report += [
        "## 1,000 files of 4 KiB (median of 5, worker peak RSS growth)",
        "",
        "| library | time to last byte | peak RSS growth | archive size |",
        "|---|---:|---:|---:|",
    ]
    for library in ("flask-download", "zipstream-ng", "stream-zip"):
        url = f"{base}/small/{library}.zip"
        size = check(url)
        times = []
        with bench.RssPoller(server.workers()) as rss:
            for _ in range(5):
                times.append(time_to_last_byte(url))
        report.append(
            f"| {library} | {statistics.median(times) * 1000:.0f} ms"
            f" | {rss.growth / bench.MIB:.1f} MiB | {size} |"
        )
    report.append("")

    # -- 3. ranges --------------------------------------------------------
    bench.say("64 KiB ranges")
    results = {}
    for label, url, size in (
        ("file", f"{base}/big.bin", bench.BIG_SIZE),
        ("zip", f"{base}/quarters.zip", archive_size),
    ):
        bench.wrk(
            url,
            duration=1,
            connections=4,
            threads=2,
            script="range.lua",
            args=[str(size)],
        )
        results[label] = bench.wrk(
            url,
            duration=options.duration,
            connections=4,
            threads=2,
            script="range.lua",
            args=[str(size)],
        )
    ratio = results["zip"].requests_per_second / results["file"].requests_per_second
    report += [
        "## 64 KiB Range at random offsets (wrk -t2 -c4)",
        "",
        "| target | req/s | vs single file |",
        "|---|---:|---:|",
        f"| single 1 GiB file | {results['file'].requests_per_second:.0f} | 1.00x |",
        f"| 1 GiB archive, CRC-32s known | {results['zip'].requests_per_second:.0f}"
        f" | {ratio:.2f}x (target >= 0.5x) |",
        "",
    ]
    for label, result in results.items():
        if result.note:
            report.append(f"- {label}: {result.note}")
    sys.stdout.write("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
