"""Every Python sample of README.md and docs/*.rst runs as written.

Convention: each page's Python blocks (fenced ```python in Markdown,
``.. code-block:: python`` in reST) run in order, in one namespace, in a
fresh temporary working directory. A reST block preceded by the comment
``.. sample: skip`` is not run (it needs AWS, a real CDN...).
"""

from __future__ import annotations

import ast
import collections
import collections.abc as cabc
import contextlib
import dataclasses
import http.client
import io
import os
import pathlib
import re
import shlex
import shutil
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


@contextlib.contextmanager
def quickstart_server(page: pathlib.Path, work: pathlib.Path) -> cabc.Iterator[int]:
    """The page's first sample saved as ``app.py`` in ``work`` and started
    there with ``flask --app app run`` (on a free port): yields the port."""
    quickstart = page_samples(page)[0]
    (work / "app.py").write_text(quickstart.code, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(work)])}
    env.pop("FLASK_APP", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for_port(port, process), process.stderr and process.stderr.read()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_readme_quickstart_runs_as_written(tmp_path: pathlib.Path) -> None:
    """The README's first sample, saved as app.py and started with
    ``flask --app app run`` from its directory, serves every URL it shows."""
    with quickstart_server(REPO / "README.md", tmp_path) as port:
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


# -- console transcripts ------------------------------------------------------

_CONSOLE_FENCE = re.compile(r"^```console[ \t]*$")
_CONSOLE_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. code-block::[ \t]*console")


@dataclasses.dataclass
class Transcript:
    command: str  # after "$ "
    output: list[str]  # the lines shown below it, up to the next command


def console_transcripts(page: pathlib.Path) -> list[Transcript]:
    """The ``$ command`` / output pairs of a page's console blocks."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[list[str]] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        if page.suffix == ".md" and _CONSOLE_FENCE.match(line):
            end = lines.index("```", number + 1)
            blocks.append(lines[number + 1 : end])
            number = end
        elif match := _CONSOLE_DIRECTIVE.match(line):
            indent = len(match["indent"])
            body = []
            for text in lines[number + 1 :]:
                if text.strip() and len(text) - len(text.lstrip()) <= indent:
                    break
                body.append(text)
            blocks.append(textwrap.dedent("\n".join(body)).strip("\n").splitlines())
        number += 1
    transcripts = []
    for block in blocks:
        for line in block:
            if line.startswith("$ "):
                transcripts.append(Transcript(line[2:], []))
            elif transcripts and line.strip():
                transcripts[-1].output.append(line)
    return transcripts


def _shown_line_matches(shown: str, real: str) -> bool:
    """``...`` in a shown line stands for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, real) is not None


def assert_transcript(shown: list[str], real: list[str]) -> None:
    """The first line (a status line, or the body) is exact; the header lines
    that follow may come in any order, but each one shown is sent and each
    one sent is shown (``...`` for a value that changes)."""
    assert "..." not in shown, "show every header line, with ... for its value"
    assert real and _shown_line_matches(shown[0], real[0]), (shown, real)
    unmatched = list(real[1:])
    for line in shown[1:]:
        found = next((r for r in unmatched if _shown_line_matches(line, r)), None)
        assert found is not None, f"shown but not sent: {line!r} (sent {real})"
        unmatched.remove(found)
    assert not unmatched, f"sent but not shown: {unmatched}"


TRANSCRIPT_PAGES = [REPO / "README.md", DOCS / "quickstart.rst"]


@pytest.mark.parametrize("page", TRANSCRIPT_PAGES, ids=_page_id)
def test_quickstart_transcript_is_what_curl_prints(
    page: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """Each ``$ curl ...`` shown after the quickstart prints what the page
    shows, run as written against ``flask --app app run``."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    transcripts = console_transcripts(page)
    assert transcripts, f"{page.name} shows no console transcript"
    with quickstart_server(page, tmp_path) as port:
        for transcript in transcripts:
            argv = shlex.split(
                transcript.command.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
            )
            assert argv[0] == "curl", transcript.command
            done = subprocess.run(
                [curl, *argv[1:]], capture_output=True, timeout=30, check=True
            )
            real = [
                line
                for line in done.stdout.decode("utf-8")
                .replace("\r\n", "\n")
                .split("\n")
                if line
            ]
            assert_transcript(transcript.output, real)


def test_transcript_parser_and_matcher(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.rst"
    page.write_text(
        "T\n=\n\n.. code-block:: console\n\n   $ curl -sI x\n   HTTP/1.1 200 OK\n"
        "   Date: ...\n\n   $ curl -s y\n   body\n\nafter\n",
        encoding="utf-8",
    )
    assert console_transcripts(page) == [
        Transcript("curl -sI x", ["HTTP/1.1 200 OK", "Date: ..."]),
        Transcript("curl -s y", ["body"]),
    ]
    assert_transcript(
        ["HTTP/1.1 200 OK", "A: 1", "B: ..."], ["HTTP/1.1 200 OK", "B: x", "A: 1"]
    )
    with pytest.raises(AssertionError, match="sent but not shown"):
        assert_transcript(["HTTP/1.1 200 OK"], ["HTTP/1.1 200 OK", "Vary: Cookie"])
    with pytest.raises(AssertionError, match="shown but not sent"):
        assert_transcript(["HTTP/1.1 200 OK", "A: 2"], ["HTTP/1.1 200 OK", "A: 1"])
    with pytest.raises(AssertionError, match="every header line"):
        assert_transcript(["HTTP/1.1 200 OK", "..."], ["HTTP/1.1 200 OK", "A: 1"])


def test_quickstart_revalidation_is_a_304(tmp_path: pathlib.Path) -> None:
    """docs/quickstart.rst: asked again with the ETag in If-None-Match, the
    answer is 304 Not Modified; an interrupted download resumes (206)."""
    with quickstart_server(DOCS / "quickstart.rst", tmp_path) as port:
        status, headers, _ = _get(port, "/files/report.csv")
        assert status == 200
        status, _, body = _get(
            port, "/files/report.csv", {"If-None-Match": headers["ETag"]}
        )
        assert (status, body) == (304, b"")
        status, _, body = _get(
            port,
            "/files/report.csv",
            {"Range": "bytes=5-", "If-Range": headers["ETag"]},
        )
        assert (status, body) == (206, b"total\n2026,42\n")


# -- docs/testing.rst -----------------------------------------------------------


def _text_blocks(page: pathlib.Path) -> list[str]:
    """The ``.. code-block:: text`` blocks of a reST page, dedented."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if line.strip() != ".. code-block:: text":
            continue
        body = []
        for text in lines[number + 1 :]:
            if text.strip() and not text.startswith(" "):
                break
            body.append(text)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
    return blocks


def test_testing_page_failure_message_is_the_one_shown(
    sample_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/testing.rst: ``test_report`` run against an app where no view
    answers ``/reports/été.txt`` fails with exactly the message shown."""
    from flask import Flask

    page = DOCS / "testing.rst"
    namespace = sample_namespace(sample_dir, monkeypatch)
    run_samples(page_samples(page)[:1], namespace)
    test_report = t.cast(t.Callable[[t.Any], None], namespace["test_report"])
    app = Flask(SAMPLE_MODULE)
    with app.test_client() as client, pytest.raises(AssertionError) as info:
        test_report(client)
    assert f"AssertionError: {info.value}" == _text_blocks(page)[0]


def test_testing_page_pytest_sample_passes(tmp_path: pathlib.Path) -> None:
    """docs/testing.rst's fixtures sample, saved as a test module and run by
    pytest with the installed plugin (``download_root``, ``download_storage``),
    passes: its tests run, not only its definitions."""
    sample = next(
        s for s in page_samples(DOCS / "testing.rst") if "download_root" in s.code
    )
    (tmp_path / "test_sample.py").write_text(sample.code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_sample.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tests = len(re.findall(r"^def test_", sample.code, re.MULTILINE))
    assert tests >= 2
    assert f"{tests} passed" in done.stdout, done.stdout


# -- the API reference and the configuration page -------------------------------

# The public names of the contract (DESIGN.md), and the members it names.
CONTRACT_MEMBERS: dict[str, tuple[str, ...]] = {
    "DownloadMixin": (
        "response_class",
        "attachment",
        "basename",
        "mimetype",
        "encoding",
        "get_file",
        "get_basename",
        "get_mimetype",
        "get_encoding",
        "was_modified_since",
        "not_modified_response",
        "download_response",
        "file_not_found_response",
        "render_to_response",
        "kwargs",
        "content_security_policy",
        "accel",
        "signed",
    ),
    "DownloadView": ("get", "as_view"),
    "BaseDownloadView": (),
    "PathDownloadView": ("path", "root", "path_url_kwarg"),
    "VirtualDownloadView": ("content",),
    "StorageDownloadView": (
        "storage",
        "path",
        "path_url_kwarg",
        "redirect",
        "redirect_expires",
    ),
    "HTTPDownloadView": ("url", "get_url", "allowed_hosts", "timeout"),
    "ObjectDownloadView": (
        "model",
        "file_field",
        "basename_field",
        "encoding_field",
        "mime_type_field",
        "charset_field",
        "modification_time_field",
        "size_field",
        "pk_url_kwarg",
        "slug_url_kwarg",
        "slug_field",
        "get_query",
        "get_object",
        "session",
        "root",
        "storage",
    ),
    "ZipDownloadView": ("get_members",),
    "DownloadFile": (
        "name",
        "size",
        "modified_time",
        "etag",
        "url",
        "crc32",
        "chunks",
        "open",
    ),
    "PathFile": (),
    "VirtualFile": (),
    "StorageFile": (),
    "HTTPFile": (),
    "ArchiveFile": (),
    "DownloadResponse": (),
    "FileNotFound": (),
    "FlaskDownload": ("init_app",),
    "make_download_blueprint": (),
    "send_download": (),
    "download_started": (),
    "download_finished": (),
    "signed_url_for": (),
    "signature_required": (),
    "nginx_secure_link": (),
    "cloudfront_signed_url": (),
    "cloudfront_signed_cookies": (),
    "sqlalchemy.FileColumn": (),
    "testing.assert_download_response": (),
    "pytest_plugin.download_root": (),
    "pytest_plugin.download_storage": (),
}


def read_inventory(path: pathlib.Path) -> dict[str, set[str]]:
    """A Sphinx ``objects.inv``: role (``py:class``...) -> documented names."""
    import zlib

    data = path.read_bytes()
    header_end = 0
    for _ in range(4):  # "# Sphinx inventory version 2" and three more
        header_end = data.index(b"\n", header_end) + 1
    inventory: dict[str, set[str]] = collections.defaultdict(set)
    for line in zlib.decompress(data[header_end:]).decode("utf-8").splitlines():
        match = re.match(r"(?P<name>.+?)\s+(?P<role>\S+:\S+)\s+-?\d+\s", line)
        if match:
            inventory[match["role"]].add(match["name"])
    return inventory


@pytest.fixture(scope="module")
def docs_inventory(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The documentation built as CI builds it (``sphinx-build -W``)."""
    pytest.importorskip("sphinx", reason="building the docs needs the docs extra")
    pytest.importorskip("pallets_sphinx_themes", reason="needs the docs extra")
    pytest.importorskip("myst_parser", reason="needs the docs extra")
    out = tmp_path_factory.mktemp("docs")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            "-d",
            str(out / "doctrees"),
            str(DOCS),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return read_inventory(out / "html" / "objects.inv")


def test_every_public_name_is_in_the_api_reference(
    docs_inventory: dict[str, set[str]],
) -> None:
    """Each name of the contract, and of ``flask_download.__all__``, has an
    entry in the docs; each member the contract names too (on the class or
    a documented base class: ``DownloadView`` inherits the mixin's)."""
    import flask_download

    documented = set().union(*docs_inventory.values())

    def is_documented(name: str) -> bool:
        # A re-export may be documented in its own module.
        home = getattr(getattr(flask_download, name, None), "__module__", "")
        return bool(
            {f"flask_download.{name}", f"{home}.{name.rpartition('.')[2]}"} & documented
        )

    names = set(CONTRACT_MEMBERS) | set(flask_download.__all__)
    missing = sorted(name for name in names if not is_documented(name))
    assert not missing, f"not in the API reference: {missing}"
    undocumented = []
    for name, members in CONTRACT_MEMBERS.items():
        owner = getattr(flask_download, name, None)
        bases = [
            c
            for c in getattr(owner, "__mro__", ())
            if c.__module__.startswith("flask_download")
        ]
        for member in members:
            if not any(
                f"flask_download.{base.__name__}.{member}" in documented
                for base in bases
            ):
                undocumented.append(f"{name}.{member}")
    assert not undocumented, f"not in the API reference: {undocumented}"


_FIELD = re.compile(r"^   :(?P<name>[\w ]+):[ \t]*(?P<value>.*)$")


def config_entries() -> dict[str, list[dict[str, str]]]:
    """The ``.. data:: DOWNLOAD_*`` entries of every docs page: key -> each
    entry's fields (``type``, ``default``...)."""
    entries: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    for page in sorted(DOCS.glob("*.rst")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            match = re.match(r"^\.\. data:: (DOWNLOAD_\w+)\s*$", line)
            if match is None:
                continue
            fields: dict[str, str] = {}
            for text in lines[number + 1 :]:
                if text.strip() and not text.startswith(" "):
                    break
                if field := _FIELD.match(text):
                    fields[field["name"]] = field["value"]
            entries[match[1]].append(fields)
    return entries


def test_every_config_key_is_documented_once_with_type_and_default() -> None:
    """docs/config.rst documents each key of ``DEFAULTS`` once, with its type
    and its real default, the ``FlaskDownload(...)`` argument and the view
    attribute that override it."""
    import inspect

    import flask_download

    entries = config_entries()
    assert set(entries) == set(flask_download.DEFAULTS)
    arguments = inspect.signature(flask_download.FlaskDownload).parameters
    views = [
        flask_download.DownloadMixin,
        flask_download.PathDownloadView,
        flask_download.HTTPDownloadView,
    ]
    for key, found in entries.items():
        assert len(found) == 1, f"{key} is documented {len(found)} times"
        fields = found[0]
        assert fields.get("type"), f"{key} has no :type:"
        default = re.match(r"``(.*?)``", fields.get("default", ""))
        assert default, f"{key} has no :default: value"
        assert ast.literal_eval(default[1]) == flask_download.DEFAULTS[key], key
        # ``FlaskDownload(root=...)``, ``chunk_size`` or none
        argument = fields.get("argument", "")
        if argument != "none":
            name = re.fullmatch(
                r"``(?:FlaskDownload\()?(\w+)(?:=\.\.\.\))?``", argument
            )
            assert name, f"{key}: :argument: {argument!r}"
            assert name[1] in arguments, f"{key}: no FlaskDownload({name[1]}=...)"
        # ``root``, ``accel`` (...), or a call / none where there is no attribute
        attribute = re.match(r"``(\w+)``", fields.get("view attribute", ""))
        if attribute:
            assert any(hasattr(view, attribute[1]) for view in views), (
                f"{key}: no view attribute {attribute[1]!r}"
            )
