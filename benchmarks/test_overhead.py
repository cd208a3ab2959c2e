"""In-process cost of one request: Flask-Download vs Flask's ``send_file``.

Not part of the test suite (``testpaths`` is ``tests``); run it with::

    python -m pytest benchmarks/test_overhead.py

The whole request goes through ``app.test_client()`` with the body read, so
the figures are the Python work per request without a server or a socket:
routing, the view, headers, opening and reading a 4 KiB file.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import pytest
from flask import Flask
from flask import send_from_directory
from flask.testing import FlaskClient

from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import send_download

pytest.importorskip("pytest_benchmark", reason="needs 'pip install pytest-benchmark'")

SMALL = bytes(range(256)) * 16
BIG_SIZE = 16 << 20
RANGE = (BIG_SIZE - (128 << 10), BIG_SIZE - (64 << 10) - 1)

#: URL prefix of each contender.
CONTENDERS = {
    "send_file": "/send",
    "flask_download": "/fd",
    "send_download": "/sd",
}


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory,
) -> cabc.Iterator[FlaskClient]:
    root = tmp_path_factory.mktemp("data")
    (root / "small.bin").write_bytes(SMALL)
    with open(root / "big.bin", "wb") as f:
        f.truncate(BIG_SIZE)
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = str(root)
    FlaskDownload(app)

    @app.get("/send/<path:name>")
    def send(name: str) -> t.Any:
        return send_from_directory(root, name)

    app.add_url_rule("/fd/<path:path>", view_func=PathDownloadView.as_view("fd"))

    @app.get("/sd/<path:name>")
    def sd(name: str) -> t.Any:
        # The function view: the same engine as PathDownloadView.
        return send_download(name, root=root)

    yield app.test_client()


def _etag(client: FlaskClient, url: str) -> str:
    with client.get(url) as rv:
        return t.cast(str, rv.headers["ETag"])


def fetch(client: FlaskClient, url: str, headers: dict[str, str]) -> tuple[int, int]:
    with client.get(url, headers=headers) as rv:
        return rv.status_code, len(rv.get_data())


@pytest.mark.benchmark(group="4 KiB file")
@pytest.mark.parametrize("contender", CONTENDERS, ids=CONTENDERS)
def test_small_file(benchmark: t.Any, client: FlaskClient, contender: str) -> None:
    url = f"{CONTENDERS[contender]}/small.bin"
    assert benchmark(fetch, client, url, {}) == (200, len(SMALL))


@pytest.mark.benchmark(group="304 revalidation")
@pytest.mark.parametrize("contender", CONTENDERS, ids=CONTENDERS)
def test_revalidation(benchmark: t.Any, client: FlaskClient, contender: str) -> None:
    url = f"{CONTENDERS[contender]}/small.bin"
    headers = {"If-None-Match": _etag(client, url)}
    assert benchmark(fetch, client, url, headers) == (304, 0)


@pytest.mark.benchmark(group="64 KiB range near the end of 16 MiB")
@pytest.mark.parametrize("contender", CONTENDERS, ids=CONTENDERS)
def test_range(benchmark: t.Any, client: FlaskClient, contender: str) -> None:
    url = f"{CONTENDERS[contender]}/big.bin"
    headers = {"Range": f"bytes={RANGE[0]}-{RANGE[1]}"}
    assert benchmark(fetch, client, url, headers) == (206, 64 << 10)
