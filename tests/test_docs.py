"""Every Python sample of README.md and docs/*.rst runs as written.

Convention: each page's Python blocks (fenced ```python in Markdown,
``.. code-block:: python`` in reST) run in order, in one namespace, in a
fresh temporary working directory. A reST block preceded by the comment
``.. sample: skip`` is not run (it needs AWS, a real CDN...).
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import io
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import types
import typing as t

import pytest
from conftest import free_port
from conftest import wait_for_port

from flask_download.signals import download_finished
from flask_download.signals import download_started

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.rst"))]

# The module the samples run in: registered in sys.modules (SQLAlchemy resolves
# annotations there), its file in the working directory (Flask's root_path).
SAMPLE_MODULE = "docs_sample"

_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*(?P<lang>\S+)")
_SKIP = re.compile(r"^[ \t]*\.\. sample: skip[ \t]*$")
_FENCE = re.compile(r"^(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+-]*)")


@dataclasses.dataclass
class Sample:
    page: pathlib.Path
    line: int  # 1-based line of the first line of code
    code: str
    skip: bool = False


def rst_samples(page: pathlib.Path) -> list[Sample]:
    """The ``.. code-block:: python`` blocks of a reST page."""
    lines = page.read_text(encoding="utf-8").splitlines()
    samples = []
    for number, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if match is None or match["lang"] not in ("python", "py", "python3"):
            continue
        previous = [text for text in lines[:number] if text.strip()]
        skip = bool(previous) and _SKIP.match(previous[-1]) is not None
        indent = len(match["indent"])
        body: list[str] = []
        start = number + 1
        # Options (":caption: ...") and the blank line before the content.
        while start < len(lines) and lines[start].strip().startswith(":"):
            start += 1
        for text in lines[start:]:
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            body.append(text)
        first = next((i for i, text in enumerate(body) if text.strip()), 0)
        code = textwrap.dedent("\n".join(body[first:])).rstrip() + "\n"
        samples.append(Sample(page, start + first + 1, code, skip))
    return samples


def markdown_samples(page: pathlib.Path) -> list[Sample]:
    """The fenced ```python blocks of a Markdown page."""
    lines = page.read_text(encoding="utf-8").splitlines()
    samples = []
    fence = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(lines):
        if fence is None:
            match = _FENCE.match(line)
            if match and match["lang"] in ("python", "py", "python3"):
                fence, body, start = match["fence"], [], number + 2
            elif match:
                fence, body, start = match["fence"], [], -1
        elif line.startswith(fence):
            if start > 0:
                samples.append(Sample(page, start, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    return samples


def page_samples(page: pathlib.Path) -> list[Sample]:
    if page.suffix == ".md":
        return markdown_samples(page)
    return rst_samples(page)


def run_samples(samples: list[Sample], namespace: dict[str, object]) -> None:
    for sample in samples:
        if sample.skip:
            continue
        relative = sample.page.relative_to(REPO)
        # Blank lines first, so that a traceback gives the line in the page.
        source = "\n" * (sample.line - 1) + sample.code
        exec(compile(source, str(relative), "exec"), namespace)  # noqa: S102


def _page_id(page: pathlib.Path) -> str:
    return str(page.relative_to(REPO))


PAGES_WITH_SAMPLES = [page for page in PAGES if page_samples(page)]


@pytest.fixture
def sample_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A fresh working directory; ``sys.path`` and env are restored after."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))
    # Receivers a page connects (connect_via holds them strongly) would make
    # later tests' downloads count their bytes: restore the signals after.
    for signal in (download_started, download_finished):
        monkeypatch.setattr(signal, "receivers", dict(signal.receivers))
        for index in ("_by_sender", "_by_receiver"):
            copy = collections.defaultdict(set)
            copy.update((key, set(ids)) for key, ids in getattr(signal, index).items())
            monkeypatch.setattr(signal, index, copy)
    return work


def sample_namespace(
    work: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    """A fresh module in ``work`` for one page, removed from sys.modules after."""
    module = types.ModuleType(SAMPLE_MODULE)
    module.__file__ = str(work / f"{SAMPLE_MODULE}.py")
    monkeypatch.setitem(sys.modules, SAMPLE_MODULE, module)
    return module.__dict__


@pytest.mark.parametrize("page", PAGES_WITH_SAMPLES, ids=_page_id)
def test_page_samples_run(
    page: pathlib.Path, sample_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_samples(page_samples(page), sample_namespace(sample_dir, monkeypatch))


def test_samples_are_collected() -> None:
    """The collector finds the pages' samples (an empty run proves nothing)."""
    readme = page_samples(REPO / "README.md")
    assert readme, "README.md has no python sample"
    for name in ("quickstart", "views", "models", "config"):
        assert page_samples(DOCS / f"{name}.rst"), f"docs/{name}.rst has no sample"


def test_rst_collector_reads_skip_comment_and_indentation(
    tmp_path: pathlib.Path,
) -> None:
    page = tmp_path / "page.rst"
    page.write_text(
        textwrap.dedent(
            """\
            Title
            =====

            .. code-block:: python

               x = 1
               if x:
                   y = 2

            text

            .. sample: skip

            .. code-block:: python
               :caption: needs AWS

               import boto3

            - a list item

              .. code-block:: python

                 z = 3
            """
        ),
        encoding="utf-8",
    )
    samples = rst_samples(page)
    assert [(s.line, s.code, s.skip) for s in samples] == [
        (6, "x = 1\nif x:\n    y = 2\n", False),
        (17, "import boto3\n", True),
        (23, "z = 3\n", False),
    ]


def test_markdown_collector_ignores_other_languages(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n```sh\npip install x\n```\n\n```python\na = 1\n```\n",
        encoding="utf-8",
    )
    assert [(s.line, s.code) for s in markdown_samples(page)] == [(8, "a = 1\n")]


def test_failing_sample_names_its_page_and_line(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "broken.rst"
    page.write_text(
        ".. code-block:: python\n\n   a = 1\n   raise ValueError(a)\n",
        encoding="utf-8",
    )
    samples = [
        dataclasses.replace(s, page=REPO / "docs" / "broken.rst")
        for s in rst_samples(page)
    ]
    with pytest.raises(ValueError) as info:
        run_samples(samples, {"__name__": SAMPLE_MODULE})
    last = info.traceback[-1]
    assert last.path == pathlib.Path("docs/broken.rst") or str(last.path).endswith(
        "broken.rst"
    )
    assert last.lineno + 1 == 4


def _get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_readme_quickstart_runs_as_written(tmp_path: pathlib.Path) -> None:
    """The README's first sample, saved as app.py and started with
    ``flask --app app run`` from its directory, serves every URL it shows."""
    quickstart = markdown_samples(REPO / "README.md")[0]
    (tmp_path / "app.py").write_text(quickstart.code, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    env.pop("FLASK_APP", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for_port(port, process), process.stderr and process.stderr.read()
        status, headers, body = _get(port, "/files/report.csv")
        assert status == 200
        assert body == b"year,total\n2026,42\n"
        assert headers["Content-Disposition"] == 'attachment; filename="report.csv"'
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Accept-Ranges"] == "bytes"
        assert "ETag" in headers and "Last-Modified" in headers
        status, _, body = _get(port, "/files/report.csv", {"Range": "bytes=0-3"})
        assert (status, body) == (206, b"year")
        status, headers, body = _get(port, "/readme")
        assert status == 200 and body == b"Served by Flask-Download.\n"
        assert headers["Content-Disposition"].startswith("inline")
        status, _, body = _get(port, "/hello.txt")
        assert (status, body) == (200, b"Hello!\n")
        status, _, _ = _get(port, "/files/../app.py")
        assert status == 404
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_upload_recipe_saves_where_the_view_reads(
    sample_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upload recipe of docs/models.rst, with the app started from another
    working directory: the file is saved under DOWNLOAD_ROOT resolved against
    app.root_path, where the download view reads it (201, then 200)."""
    namespace = sample_namespace(sample_dir, monkeypatch)
    run_samples(page_samples(DOCS / "models.rst"), namespace)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    create_app = t.cast(t.Callable[..., t.Any], namespace["create_app"])
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.test_client() as client:
        created = client.post(
            "/documents", data={"file": (io.BytesIO(b"agenda\n"), "agenda.txt")}
        )
        assert created.status_code == 201
        with client.get(created.headers["Location"]) as response:
            assert response.status_code == 200
            assert response.data == b"agenda\n"
        # A missing form field is the client's mistake: 400, not a 500.
        with client.post("/documents", data={}) as response:
            assert response.status_code == 400
    assert not any(elsewhere.iterdir())  # nothing written to the working dir
