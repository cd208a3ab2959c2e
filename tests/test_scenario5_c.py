"""DESIGN §5 testing helpers, used as an outside Flask developer uses them.

``assert_download_response`` on every kind of response (buffered, streamed,
returned by a view, offloaded), what its failures say, and the pytest
plugin's fixtures loaded from the ``pytest11`` entry point (no conftest
import) in projects of their own, run with ``pytester``.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import typing as t

import pytest
from flask import Flask
from flask import Response

from flask_download import download_finished
from flask_download import PathDownloadView
from flask_download import send_download
from flask_download.pytest_plugin import SAMPLE_FILES
from flask_download.testing import assert_download_response

pytest_plugins = ["pytester"]

HELLO = SAMPLE_FILES["hello.txt"]
ETE = SAMPLE_FILES["été.txt"]
DATA = SAMPLE_FILES["data.bin"]
# Inner runs: in file order, no cache written into the project.
INNER = ("-p", "no:randomly", "-p", "no:cacheprovider")


@pytest.fixture
def app(download_root: pathlib.Path) -> Flask:
    app = Flask("scenario5c", root_path=os.fspath(download_root.parent))
    app.config.update(TESTING=True, DOWNLOAD_ROOT=os.fspath(download_root))
    app.add_url_rule("/files/<path:path>", view_func=PathDownloadView.as_view("files"))
    app.add_url_rule(
        "/inline/<path:path>",
        view_func=PathDownloadView.as_view("inline", attachment=False),
    )
    root = os.fspath(download_root)
    app.add_url_rule(
        "/nginx/<path:path>",
        view_func=PathDownloadView.as_view(
            "nginx",
            accel="nginx",
            accel_rules=[{"source_dir": root, "destination_url": "/protected/"}],
        ),
    )
    app.add_url_rule(
        "/apache/<path:path>",
        view_func=PathDownloadView.as_view(
            "apache",
            accel="apache",
            accel_rules=[{"source_dir": root, "destination_dir": "/srv/files"}],
        ),
    )

    @app.get("/odd")
    def odd() -> Response:
        return send_download(b"odd", basename='we"ird;name\\.txt')

    @app.get("/offloaded-with-body")
    def offloaded_with_body() -> Response:
        return Response(b"abc", headers={"X-Sendfile": os.path.join(root, "hello.txt")})

    return app


@pytest.fixture
def client(app: Flask) -> t.Any:
    return app.test_client()


def failure(response: t.Any, **expected: t.Any) -> str:
    with pytest.raises(AssertionError) as info:
        assert_download_response(response, **expected)
    return str(info.value)


# -- every parameter -------------------------------------------------------


def test_content_bytes_or_str_and_the_body_is_returned(client: t.Any) -> None:
    with client.get("/files/été.txt") as response:
        assert assert_download_response(response, content=ETE) == ETE
        assert assert_download_response(response, content="Un été à Paris\n") == ETE
        message = failure(response, content="Un ete a Paris\n")
    assert "content: expected 15 bytes, found 18; first difference at byte 3" in message


def test_basename_non_ascii_is_the_decoded_filename_star(client: t.Any) -> None:
    with client.get("/files/été.txt") as response:
        disposition = response.headers["Content-Disposition"]
        assert "filename*=UTF-8''%C3%A9t%C3%A9.txt" in disposition
        assert_download_response(response, basename="été.txt")
        # The ASCII fallback is not the name the client shows.
        message = failure(response, basename="ete.txt")
    assert "basename: expected 'ete.txt', found 'été.txt'" in message
    assert repr(disposition) in message


def test_basename_with_quote_semicolon_and_backslash(client: t.Any) -> None:
    with client.get("/odd") as response:
        assert_download_response(response, content=b"odd", basename='we"ird;name\\.txt')
        assert "basename: expected 'we\"ird'" in failure(response, basename='we"ird')


def test_mimetype_with_and_without_charset(client: t.Any) -> None:
    with client.get("/files/hello.txt") as response:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert_download_response(response, mimetype="text/plain")
        assert_download_response(response, mimetype="TEXT/Plain; charset=UTF-8")
        message = failure(response, mimetype="text/plain; charset=latin-1")
        assert (
            "mimetype: expected 'text/plain; charset=latin-1', found Content-Type"
            " 'text/plain; charset=utf-8'" in message
        )
        assert "mimetype: expected 'text/html'" in failure(
            response, mimetype="text/html"
        )
    with client.get("/files/data.bin") as response:
        assert_download_response(response, mimetype="application/octet-stream")
        assert "found Content-Type 'application/octet-stream'" in failure(
            response, mimetype="application/octet-stream; charset=utf-8"
        )


def test_attachment_true_false_none(client: t.Any) -> None:
    with client.get("/files/hello.txt") as response:
        assert_download_response(response, attachment=True)
        assert_download_response(response, attachment=None)
        message = failure(response, attachment=False)
        assert "attachment: expected 'inline', found 'attachment'" in message
    with client.get("/inline/hello.txt") as response:
        assert_download_response(response, attachment=False, basename="hello.txt")
        assert_download_response(response, attachment=None)
        assert "expected 'attachment', found 'inline'" in failure(
            response, attachment=True
        )


def test_status_200_206_304(client: t.Any) -> None:
    with client.get("/files/data.bin") as response:
        assert_download_response(response, content=DATA, status=200)
        etag = response.headers["ETag"]
    with client.get("/files/data.bin", headers={"Range": "bytes=10-19"}) as response:
        assert_download_response(response, content=DATA[10:20], status=206)
        assert "status: expected 200, found 206 PARTIAL CONTENT" in failure(
            response, content=DATA[10:20]
        )
    with client.get("/files/data.bin", headers={"If-None-Match": etag}) as response:
        # A 304 has no body and no Content-Disposition.
        assert_download_response(response, content=b"", status=304)
        assert "content: expected 3 bytes, found 0" in failure(
            response, content=b"abc", status=304
        )


def test_failures_are_listed_together_and_only_those(client: t.Any) -> None:
    with client.get("/files/hello.txt") as response:
        message = failure(
            response,
            content=b"Hello, World!\n",
            basename="hello.txt",
            mimetype="text/html",
            attachment=True,
            status=200,
        )
    lines = message.splitlines()
    assert lines[0] == (
        "<WrapperTestResponse 14 bytes [200 OK]> is not the expected download:"
    )
    assert [line.split(":")[0] for line in lines[1:]] == ["- mimetype", "- content"]
    assert "first difference at byte 7" in message


# -- streamed responses, and responses a view returns ----------------------


def test_streamed_is_read_once_and_closed_by_the_with_block(client: t.Any) -> None:
    finished: list[dict[str, t.Any]] = []

    def record(sender: t.Any, **extra: t.Any) -> None:
        finished.append(extra)

    with download_finished.connected_to(record):
        with client.get("/files/data.bin", buffered=False) as response:
            assert not response.is_sequence
            assert assert_download_response(response, content=DATA) == DATA
            # Checking again finds the same body, not an exhausted stream.
            assert assert_download_response(response, content=DATA) == DATA
            assert response.get_data() == DATA
            assert finished == []  # still open: the caller closes it
        assert [(f["bytes_sent"], f["completed"]) for f in finished] == [
            (len(DATA), True)
        ]


def test_response_returned_by_a_view_can_be_checked_twice(
    app: Flask, download_root: pathlib.Path
) -> None:
    view = PathDownloadView.as_view("direct", root=os.fspath(download_root))
    with app.test_request_context("/direct"):
        response = t.cast(Response, view(path="hello.txt"))
        try:
            assert response.direct_passthrough
            assert assert_download_response(response, content=HELLO) == HELLO
            assert assert_download_response(response, content=HELLO) == HELLO
            assert "content: expected 3 bytes, found 14" in failure(
                response, content=b"abc"
            )
        finally:
            response.close()


# -- offloaded responses: the header is checked instead of the body --------


def test_x_accel_redirect_is_checked_instead_of_the_body(client: t.Any) -> None:
    with client.get("/nginx/été.txt") as response:
        assert response.headers["X-Accel-Redirect"] == "/protected/%C3%A9t%C3%A9.txt"
        assert response.get_data() == b""
        body = assert_download_response(
            response,
            content="Un été à Paris\n",  # the file nginx sends
            basename="été.txt",
            offload="/protected/%C3%A9t%C3%A9.txt",
        )
        assert body == b""
        assert_download_response(response, offload=True)
        message = failure(response, content=b"Un ete", offload="/protected/x")
    assert "offload: expected X-Accel-Redirect: '/protected/x'" in message
    assert "content of 'été.txt' (X-Accel-Redirect): expected 6 bytes" in message
    with client.get("/nginx/hello.txt") as response:
        message = failure(response, offload=False)
    assert (
        "expected a streamed body, found X-Accel-Redirect: '/protected/hello.txt'"
        in (message)
    )


def test_x_sendfile_destination_is_mapped_back_to_the_source(client: t.Any) -> None:
    with client.get("/apache/sub/nested.txt") as response:
        assert response.headers["X-Sendfile"] == "/srv/files/sub/nested.txt"
        assert_download_response(
            response,
            content=SAMPLE_FILES["sub/nested.txt"],
            basename="nested.txt",
            offload="/srv/files/sub/nested.txt",
        )
        assert "content of 'nested.txt' (X-Sendfile)" in failure(response, content=b"x")
    with client.get("/files/hello.txt") as response:
        assert "offload: expected one of X-Accel-Redirect" in failure(
            response, offload=True
        )


def test_an_offloaded_response_with_a_body_fails(client: t.Any) -> None:
    with client.get("/offloaded-with-body") as response:
        message = failure(response, content=HELLO)
    assert "offloaded body: expected an empty body with X-Sendfile, found 3 bytes" in (
        message
    )
    assert "- content" not in message  # the file it names is the right one


# -- the plugin's fixtures, in projects of their own ----------------------


def test_fixtures_load_from_the_entry_point_and_hold_the_samples(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_samples="""
        import fsspec
        from flask_download.pytest_plugin import SAMPLE_FILES, SAMPLE_MTIME

        def test_root(download_root):
            found = {
                p.relative_to(download_root).as_posix(): p.read_bytes()
                for p in download_root.rglob("*") if p.is_file()
            }
            assert found == SAMPLE_FILES
            assert "été.txt" in found and 'we"ird;name\\\\.txt' in found
            assert (download_root / "hello.txt").stat().st_mtime == SAMPLE_MTIME

        def test_storage(download_storage):
            assert download_storage.protocol in ("memory", ("memory",))
            assert download_storage.find("/") == []
            download_storage.pipe("/docs/a.txt", b"hello")
            assert download_storage.cat("/docs/a.txt") == b"hello"
            assert not fsspec.filesystem("memory").exists("/docs/a.txt")
        """
    )
    assert "conftest.py" not in os.listdir(pytester.path)
    pytester.runpytest(*INNER).assert_outcomes(passed=2)


def test_what_a_test_writes_does_not_reach_the_next(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_isolation="""
        import pytest
        from flask_download.pytest_plugin import SAMPLE_FILES

        @pytest.mark.parametrize("run", range(3))
        def test_write(download_root, download_storage, run):
            assert sorted(p.name for p in download_root.iterdir()) == sorted(
                {name.split("/")[0] for name in SAMPLE_FILES}
            )
            hello = (download_root / "hello.txt").read_bytes()
            assert hello == SAMPLE_FILES["hello.txt"]
            assert download_storage.find("/") == []
            (download_root / "hello.txt").write_bytes(b"changed")
            (download_root / "data.bin").unlink()
            (download_root / "new.txt").write_bytes(b"new")
            download_storage.pipe("/docs/a.txt", b"written")
            download_storage.mkdir("/empty")
        """
    )
    pytester.runpytest(*INNER).assert_outcomes(passed=3)


def _private_memory_store() -> bool:
    memory = pytest.importorskip("fsspec.implementations.memory")
    init = memory.MemoryFileSystem.__init__
    return "global_store" in inspect.signature(init).parameters


@pytest.mark.skipif(
    not _private_memory_store(), reason="fsspec without MemoryFileSystem(global_store)"
)
def test_storage_copies_keep_its_files_and_no_other(pytester: pytest.Pytester) -> None:
    # A copy or a pickle of the fixture (made by code under test, a process
    # pool, fsspec itself) is the same private store, not the global one, and
    # the storage of another test never passes for this one.
    pytester.makepyfile(
        test_copies="""
        import copy, pickle

        seen = []

        def test_first(download_storage):
            download_storage.pipe("/a.txt", b"one")
            for other in (copy.copy(download_storage), copy.deepcopy(download_storage),
                          pickle.loads(pickle.dumps(download_storage))):
                assert other.cat("/a.txt") == b"one"
            seen.append(download_storage)

        def test_second(download_storage):
            assert download_storage != seen[0]
            assert not download_storage.exists("/a.txt")
            assert not copy.copy(download_storage).exists("/a.txt")
        """
    )
    pytester.runpytest(*INNER).assert_outcomes(passed=2)


def test_fixtures_in_a_flask_app_as_the_docs_show(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app="""
        import pytest
        from flask import Flask
        from flask_download import FlaskDownload, PathDownloadView, StorageDownloadView
        from flask_download.testing import assert_download_response

        @pytest.fixture
        def client(download_root, download_storage):
            app = Flask(__name__)
            app.config["DOWNLOAD_ROOT"] = str(download_root)
            FlaskDownload(app)
            app.add_url_rule(
                "/files/<path:path>", view_func=PathDownloadView.as_view("files"))
            app.add_url_rule(
                "/store/<path:path>",
                view_func=StorageDownloadView.as_view(
                    "store", storage=download_storage))
            download_storage.pipe("/docs/rapport é.txt", b"stored")
            return app.test_client()

        def test_root(client):
            with client.get("/files/été.txt", buffered=False) as response:
                assert_download_response(
                    response, content="Un été à Paris\\n", basename="été.txt",
                    mimetype="text/plain", attachment=True)

        def test_storage(client):
            with client.get("/store/docs/rapport%20é.txt") as response:
                assert_download_response(
                    response, content=b"stored", basename="rapport é.txt")

        def test_wrong(client):
            with client.get("/files/hello.txt") as response:
                assert_download_response(response, content=b"nope")
        """
    )
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*is not the expected download:",
            "*- content: expected 4 bytes, found 14; first difference at byte 0*",
        ]
    )


def test_project_without_the_fixtures_is_untouched(pytester: pytest.Pytester) -> None:
    # The plugin adds no option, hook or warning to a project that does not
    # use it, not even with warnings made errors; its own fixture names win.
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def download_root():
            return "the project's own"
        """
    )
    pytester.makepyfile(
        test_plain="""
        def test_plain():
            assert 1 + 1 == 2

        def test_own_fixture(download_root):
            assert download_root == "the project's own"
        """
    )
    result = pytester.runpytest(*INNER, "-W", "error", "-p", "no:flask_download")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest(*INNER, "-W", "error", "--strict-markers")
    result.assert_outcomes(passed=2)
    assert "warning" not in result.stdout.str().lower()


@pytest.mark.parametrize(
    ("conftest", "options"),
    [
        ('pytest_plugins = ["flask_download.pytest_plugin"]\n', ()),
        ("", ("-p", "flask_download.pytest_plugin")),
        (
            'pytest_plugins = ["flask_download.pytest_plugin"]\n',
            ("-p", "flask_download"),
        ),
    ],
    ids=["conftest-pytest_plugins", "-p-module", "both"],
)
def test_naming_the_plugin_module_too_does_not_break_the_run(
    pytester: pytest.Pytester, conftest: str, options: tuple[str, ...]
) -> None:
    # For runs with PYTEST_DISABLE_PLUGIN_AUTOLOAD, a project names the
    # module; with autoloading on as well, pluggy refused the module under a
    # second name and no test ran (ValueError at start-up).
    if conftest:
        pytester.makeconftest(conftest)
    pytester.makepyfile(
        test_named="""
        def test_fixtures(download_root, download_storage):
            assert (download_root / "hello.txt").is_file()
        """
    )
    result = pytester.runpytest_subprocess(*INNER, *options)
    assert "already registered" not in result.stderr.str()
    result.assert_outcomes(passed=1)


def test_autoload_disabled_and_the_module_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_named="""
        def test_fixtures(download_root):
            assert (download_root / "hello.txt").is_file()
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(errors=1)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "flask_download.pytest_plugin"
    )
    result.assert_outcomes(passed=1)
