"""Fifth audit of local files, virtual files and the mixin/view API.

- Sizes, offsets and the integer view attributes (``chunk_size``,
  ``max_ranges``, ``cache_max_age``) take integer-likes (``numpy.int64``:
  what :func:`operator.index` accepts), never ``bool`` nor ``float``.
- Confinement is checked by what is served: a swap (directory component,
  last segment or link target replaced by a link out of the root) made
  before any single system call of the walk never serves a byte from
  outside. Hostile URLs on a real server are 404 (or a redirect), never
  a 5xx; unreadable files and directories are 404; a root deleted,
  recreated or swapped while the app runs is followed.
- The mixin API keeps django-downloadview's names: every documented method
  can be overridden, and a ported override that uses ``self.file_instance``
  or calls ``download_response(file_instance=..., file_mimetype=...,
  file_encoding=...)`` works unchanged.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import errno
import http.client
import io
import os
import pathlib
import shutil
import socket
import stat
import typing as t
import urllib.parse

import pytest
from conftest import running_werkzeug
from flask import Flask
from flask import Response

from flask_download import ConfigurationError
from flask_download import DownloadFile
from flask_download import DownloadMixin
from flask_download import DownloadView
from flask_download import FileNotFound
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download import PathFile
from flask_download import VirtualDownloadView
from flask_download import VirtualFile
from flask_download.files import read_slice
from flask_download.files import SizedReader

INSIDE = b"the file inside the root\n"
SECRET = b"TOP SECRET outside the root\n"


class Index:
    """An integer-like that is no ``int`` (as ``numpy.int64`` is)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"Index({self.value})"


# -- integer-likes -------------------------------------------------------------


def test_a_virtual_file_takes_an_integer_like_size() -> None:
    file = VirtualFile(iter([b"abc"]), name="a.bin", size=Index(3))
    assert file.size == 3
    assert type(file.size) is int


def test_an_integer_like_size_goes_out_as_a_number() -> None:
    app = Flask(__name__)

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(iter([b"abc"]), name="a.bin", size=Index(3))

    app.add_url_rule("/a", view_func=View.as_view("a"))
    response = app.test_client().get("/a")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "3"
    assert response.data == b"abc"


@pytest.mark.parametrize("size", [True, False, 3.0, "3", Index(-1)])
def test_a_virtual_file_refuses_sizes_that_are_not_integers(size: t.Any) -> None:
    expected = ConfigurationError if isinstance(size, Index) else TypeError
    with pytest.raises(expected):
        VirtualFile(iter([b"abc"]), size=size)


@pytest.mark.parametrize(
    "content",
    [b"abcdef", "abcdef", io.BytesIO(b"abcdef"), io.StringIO("abcdef")],
    ids=["bytes", "str", "BytesIO", "StringIO"],
)
def test_chunks_take_integer_like_offsets(content: t.Any) -> None:
    file = VirtualFile(content)
    assert b"".join(file.chunks(Index(2), Index(1), Index(5))) == b"bcde"


def test_read_slice_and_sized_reader_take_integer_likes() -> None:
    chunks = list(read_slice(io.BytesIO(b"abcdef"), Index(2), Index(1), Index(5)))
    assert chunks == [b"bc", b"de"]

    class Reader(SizedReader):
        def read(self, size: int | None = -1) -> bytes:
            return b""

    reader = Reader(Index(6))
    assert reader.seek(Index(2)) == 2
    assert reader.seek(Index(1), io.SEEK_CUR) == 3
    with pytest.raises(TypeError):
        reader.seek(1.5)  # type: ignore[arg-type]


def test_a_seekable_stream_reads_integer_like_offsets() -> None:
    stream = io.BytesIO(b"--abcdef")
    stream.seek(2)
    file = VirtualFile(stream)
    with file.open() as handle:
        assert handle.seek(Index(1)) == 1
        assert handle.read(2) == b"bc"


def test_view_integer_attributes_take_integer_likes() -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/a",
        view_func=VirtualDownloadView.as_view(
            "a",
            content=b"hello world",
            basename="a.txt",
            chunk_size=Index(4),
            max_ranges=Index(1),
            cache_max_age=Index(60),
        ),
    )

    class Fixed(VirtualDownloadView):
        content = b"hello world"
        basename = "b.txt"
        chunk_size = Index(4)  # type: ignore[assignment]
        cache_max_age = Index(0)  # type: ignore[assignment]

    app.add_url_rule("/b", view_func=Fixed.as_view("b"))
    client = app.test_client()
    response = client.get("/a", headers={"Range": "bytes=0-1"})
    assert response.status_code == 206
    assert response.data == b"he"
    assert response.headers["Cache-Control"] == "max-age=60"
    # max_ranges=1: two ranges get the whole file.
    response = client.get("/a", headers={"Range": "bytes=0-1,4-5"})
    assert response.status_code == 200
    assert response.data == b"hello world"
    response = client.get("/b")
    assert response.data == b"hello world"
    assert response.headers["Cache-Control"] == "max-age=0"


@pytest.mark.parametrize(
    ("name", "value"),
    [("chunk_size", True), ("chunk_size", 2.0), ("max_ranges", Index(0))],
)
def test_view_integer_attributes_still_refuse_non_integers(
    name: str, value: t.Any
) -> None:
    with pytest.raises(ConfigurationError):
        VirtualDownloadView.as_view("a", content=b"x", **{name: value})


def test_download_response_takes_an_integer_like_chunk_size() -> None:
    app = Flask(__name__)
    sizes: list[int] = []

    class View(VirtualDownloadView):
        content = b"abcdefg"

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            response = super().download_response(*args, chunk_size=Index(3), **kwargs)
            sizes.append(response.chunk_size)
            return response

    app.add_url_rule("/a", view_func=View.as_view("a"))
    response = app.test_client().get("/a")
    assert response.data == b"abcdefg"
    assert sizes == [3]
    assert type(sizes[0]) is int


# -- confinement: swaps at every step of the walk ------------------------------


@pytest.fixture
def layout(tmp_path: pathlib.Path) -> pathlib.Path:
    """``root/sub/f.txt`` inside; ``outside/sub/f.txt`` outside; ``root/link``
    -> ``sub`` (relative, inside)."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f.txt").write_bytes(INSIDE)
    (root / "link").symlink_to("sub")
    (tmp_path / "outside" / "sub").mkdir(parents=True)
    (tmp_path / "outside" / "sub" / "f.txt").write_bytes(SECRET)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return root


def _swap_directory_absolute(root: pathlib.Path) -> None:
    os.rename(root / "sub", root / "sub.real")
    (root / "sub").symlink_to(root.parent / "outside" / "sub")


def _swap_directory_relative(root: pathlib.Path) -> None:
    os.rename(root / "sub", root / "sub.real")
    (root / "sub").symlink_to("../outside/sub")


def _swap_last_segment(root: pathlib.Path) -> None:
    os.rename(root / "sub" / "f.txt", root / "sub" / "f.real")
    (root / "sub" / "f.txt").symlink_to(root.parent / "secret.txt")


def _swap_last_segment_relative(root: pathlib.Path) -> None:
    os.rename(root / "sub" / "f.txt", root / "sub" / "f.real")
    (root / "sub" / "f.txt").symlink_to("../../secret.txt")


def _retarget_link(root: pathlib.Path) -> None:
    (root / "link.new").symlink_to("../outside/sub")
    os.replace(root / "link.new", root / "link")


SWAPS: dict[str, tuple[str, cabc.Callable[[pathlib.Path], None]]] = {
    "directory-absolute": ("sub/f.txt", _swap_directory_absolute),
    "directory-relative": ("sub/f.txt", _swap_directory_relative),
    "last-segment-absolute": ("sub/f.txt", _swap_last_segment),
    "last-segment-relative": ("sub/f.txt", _swap_last_segment_relative),
    "link-retargeted": ("link/f.txt", _retarget_link),
}


def _count_calls(monkeypatch: pytest.MonkeyPatch, root: pathlib.Path, path: str) -> int:
    calls = 0
    real_open, real_readlink = os.open, os.readlink

    def counting_open(*args: t.Any, **kwargs: t.Any) -> int:
        nonlocal calls
        calls += 1
        return real_open(*args, **kwargs)

    def counting_readlink(*args: t.Any, **kwargs: t.Any) -> t.Any:
        nonlocal calls
        calls += 1
        return real_readlink(*args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    monkeypatch.setattr(os, "readlink", counting_readlink)
    PathFile(path, root=root).close()
    monkeypatch.setattr(os, "open", real_open)
    monkeypatch.setattr(os, "readlink", real_readlink)
    return calls


def _fresh(tmp_path: pathlib.Path, n: int) -> pathlib.Path:
    # A copy of the layout per step (links and all), so that every step
    # starts from the unswapped tree.
    source = tmp_path / "root"
    copy = tmp_path / f"step{n}" / "root"
    shutil.copytree(source, copy, symlinks=True)
    shutil.copytree(tmp_path / "outside", copy.parent / "outside", symlinks=True)
    (copy.parent / "secret.txt").write_bytes(SECRET)
    return copy


@pytest.mark.parametrize("swap", SWAPS.values(), ids=SWAPS.keys())
def test_a_swap_before_any_step_of_the_walk_never_serves_outside_bytes(
    layout: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    swap: tuple[str, cabc.Callable[[pathlib.Path], None]],
) -> None:
    path, change = swap
    steps = _count_calls(monkeypatch, layout, path)
    assert steps >= 3  # the root, at least one directory, the file
    real_open, real_readlink = os.open, os.readlink
    outcomes: list[bytes | None] = []
    for step in range(steps + 1):
        root = _fresh(layout.parent, step)
        calls = 0

        def before(root: pathlib.Path = root, step: int = step) -> None:
            nonlocal calls
            if calls == step:
                change(root)
            calls += 1

        def swapping_open(*args: t.Any, **kwargs: t.Any) -> int:
            before()
            return real_open(*args, **kwargs)

        def swapping_readlink(*args: t.Any, **kwargs: t.Any) -> t.Any:
            before()
            return real_readlink(*args, **kwargs)

        monkeypatch.setattr(os, "open", swapping_open)
        monkeypatch.setattr(os, "readlink", swapping_readlink)
        try:
            file = PathFile(path, root=root)
        except FileNotFound:
            outcomes.append(None)
            continue
        finally:
            monkeypatch.setattr(os, "open", real_open)
            monkeypatch.setattr(os, "readlink", real_readlink)
        try:
            with file.open() as handle:
                outcomes.append(handle.read())
        finally:
            file.close()
    assert SECRET not in outcomes
    assert set(outcomes) <= {INSIDE, None}
    # The swap made before the first call is seen (404), and one made
    # after the last call is not (the file checked is the one served).
    assert outcomes[0] is None
    assert outcomes[-1] == INSIDE


def test_the_descriptor_checked_is_the_one_served(layout: pathlib.Path) -> None:
    file = PathFile("sub/f.txt", root=layout)
    try:
        _swap_directory_absolute(layout)
        with file.open() as handle:
            assert handle.read() == INSIDE
    finally:
        file.close()


def test_a_view_serves_what_it_checked_when_the_name_is_swapped_after(
    layout: pathlib.Path,
) -> None:
    app = Flask(__name__)

    class View(PathDownloadView):
        root = os.fspath(layout)

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            # Between the check (get_file) and the body.
            _swap_last_segment(layout)
            return super().download_response(*args, **kwargs)

    app.add_url_rule("/f/<path:path>", view_func=View.as_view("f"))
    response = app.test_client().get("/f/sub/f.txt")
    assert response.status_code == 200
    assert response.data == INSIDE


# -- confinement: hostile URLs on a real server --------------------------------

HOSTILE_URLS = [
    "%2e%2e/secret.txt",
    "sub/%2e%2e/%2e%2e/secret.txt",
    "..%2fsecret.txt",
    "%2E%2E%2Fsecret.txt",
    "..%5csecret.txt",
    "sub%5c..%5c..%5csecret.txt",
    "sub%5cf.txt",
    "sub/f.txt%00",
    "sub/f.txt%00.png",
    "%00",
    "%c0%ae%c0%ae/secret.txt",
    "%c0%af%c0%afsecret.txt",
    "%e0%80%ae%e0%80%ae/secret.txt",
    "%252e%252e/secret.txt",
    "C:/secret.txt",
    "C:%5csecret.txt",
    "c:secret.txt",
    "sub/C:f.txt",
    "%2fetc%2fpasswd",
    "up/secret.txt",
    "abs/secret.txt",
    "a" * 300,
    "sub/" + "b" * 5000,
    "x/" * 3000 + "y",
    ("c" * 250 + "/") * 20 + "f.txt",
    "loop",
    "sub",
    "sub/",
    "sub/f.txt/",
    "sub/f.txt/.",
    "fifo",
    "sock",
    "devnull",
    "CON",
    "nul.txt",
    "sub/f.txt%0d%0aX-Injected:%201",
]


@pytest.fixture
def hostile_root(layout: pathlib.Path) -> cabc.Iterator[pathlib.Path]:
    (layout / "up").symlink_to("..")
    (layout / "abs").symlink_to(layout.parent)
    (layout / "loop").symlink_to("loop")
    (layout / "devnull").symlink_to("/dev/null")
    os.mkfifo(layout / "fifo")
    # A socket path must be short: bind it from inside the root.
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(layout)
    try:
        sock.bind("sock")
    finally:
        os.chdir(cwd)
    try:
        yield layout
    finally:
        sock.close()


def test_hostile_urls_are_404_on_a_real_server(hostile_root: pathlib.Path) -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/f/<path:path>",
        view_func=PathDownloadView.as_view("f", root=os.fspath(hostile_root)),
    )
    with running_werkzeug(app) as url:
        host = urllib.parse.urlsplit(url)
        answers = {}
        for target in HOSTILE_URLS:
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=20)
            try:
                conn.request("GET", "/f/" + target)
                response = conn.getresponse()
                status = response.status
                location = response.getheader("Location") or ""
                if status == 308 and urllib.parse.urlsplit(location).path.startswith(
                    "/f/"
                ):
                    # Werkzeug merges "//" (from "%2f") with a redirect that
                    # stays under the view's prefix.
                    status = 404
                answers[target[:40]] = (
                    status,
                    response.read(),
                    response.getheader("X-Injected"),
                )
            finally:
                conn.close()
        # The inside file is served on the same server.
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=20)
        conn.request("GET", "/f/sub/f.txt")
        assert conn.getresponse().read() == INSIDE
        conn.close()
    leaks = {k: v for k, v in answers.items() if b"SECRET" in v[1]}
    assert not leaks
    odd = {k: v[0] for k, v in answers.items() if v[0] != 404 or v[2] is not None}
    assert not odd, odd


@pytest.mark.skipif(not hasattr(os, "mknod"), reason="no mknod")
def test_a_device_node_inside_the_root_is_404(layout: pathlib.Path) -> None:
    try:
        os.mknod(layout / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as e:  # not allowed here (unprivileged, container)
        pytest.skip(f"cannot make a device node: {e}")
    app = Flask(__name__)
    app.add_url_rule(
        "/f/<path:path>", view_func=PathDownloadView.as_view("f", root=layout)
    )
    assert app.test_client().get("/f/null").status_code == 404
    with pytest.raises(FileNotFound, match="not a regular file"):
        PathFile("null", root=layout)


def _refusing_open(
    monkeypatch: pytest.MonkeyPatch, name: str, error: int
) -> cabc.Callable[[], None]:
    """``os.open`` of ``name`` (any directory) fails with ``error``."""
    real_open = os.open

    def fake_open(path: t.Any, *args: t.Any, **kwargs: t.Any) -> int:
        if os.path.basename(os.fsdecode(path)) == name:
            raise OSError(error, os.strerror(error), path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    return lambda: monkeypatch.setattr(os, "open", real_open)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("f.txt", errno.EACCES),
        ("sub", errno.EACCES),
        ("f.txt", errno.EPERM),
        ("f.txt", errno.ENAMETOOLONG),
        ("f.txt", errno.EIO),
    ],
)
def test_files_that_cannot_be_opened_are_404_never_500(
    layout: pathlib.Path, monkeypatch: pytest.MonkeyPatch, name: str, error: int
) -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/f/<path:path>", view_func=PathDownloadView.as_view("f", root=layout)
    )
    app.add_url_rule(
        "/trusted",
        view_func=PathDownloadView.as_view("t", path=os.fspath(layout / "sub/f.txt")),
    )
    client = app.test_client()
    restore = _refusing_open(monkeypatch, name, error)
    try:
        assert client.get("/f/sub/f.txt").status_code == 404
        assert client.head("/f/sub/f.txt").status_code == 404
        if name == "f.txt":  # a trusted path is opened whole
            assert client.get("/trusted").status_code == 404
    finally:
        restore()
    assert client.get("/f/sub/f.txt").data == INSIDE


def test_a_hard_link_is_the_file_itself_and_is_served(layout: pathlib.Path) -> None:
    # Documented: a hard link made inside the root is the file (there is no
    # "outside" to detect); only whoever can write in the root can make one.
    os.link(layout.parent / "secret.txt", layout / "hard.txt")
    file = PathFile("hard.txt", root=layout)
    try:
        with file.open() as handle:
            assert handle.read() == SECRET
    finally:
        file.close()


# -- roots that change while the app runs --------------------------------------


def _root_app(root: pathlib.Path) -> Flask:
    app = Flask(__name__, root_path=os.fspath(root.parent))
    app.config["DOWNLOAD_ROOT"] = os.fspath(root)
    FlaskDownload(app)
    app.add_url_rule("/c/<path:path>", view_func=PathDownloadView.as_view("c"))
    app.add_url_rule(
        "/v/<path:path>", view_func=PathDownloadView.as_view("v", root=root)
    )
    app.add_url_rule("/t", view_func=PathDownloadView.as_view("t", path="a.txt"))
    return app


def test_a_root_deleted_and_recreated_is_404_then_served_again(
    tmp_path: pathlib.Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"one")
    client = _root_app(root).test_client()
    urls = ("/c/a.txt", "/v/a.txt", "/t")
    assert [client.get(u).data for u in urls] == [b"one"] * 3
    shutil.rmtree(root)
    assert [client.get(u).status_code for u in urls] == [404] * 3
    root.write_bytes(b"not a directory")
    assert [client.get(u).status_code for u in urls] == [404] * 3
    root.unlink()
    root.mkdir()
    (root / "a.txt").write_bytes(b"two")
    assert [client.get(u).data for u in urls] == [b"two"] * 3


def test_a_root_that_is_a_link_follows_its_new_target(tmp_path: pathlib.Path) -> None:
    for release in ("r1", "r2"):
        (tmp_path / release).mkdir()
        (tmp_path / release / "a.txt").write_bytes(release.encode())
    root = tmp_path / "current"
    root.symlink_to("r1")
    # An absolute link inside the root spelled through the root's own link.
    (tmp_path / "r2" / "b.txt").symlink_to(root / "a.txt")
    (tmp_path / "r2" / "out.txt").symlink_to(tmp_path / "r1" / "a.txt")
    client = _root_app(root).test_client()
    assert client.get("/c/a.txt").data == b"r1"
    assert client.get("/v/a.txt").data == b"r1"
    (tmp_path / "next").symlink_to("r2")
    os.replace(tmp_path / "next", root)
    assert client.get("/c/a.txt").data == b"r2"
    assert client.get("/v/a.txt").data == b"r2"
    assert client.get("/c/b.txt").data == b"r2"
    # r1 is outside the root now.
    assert client.get("/c/out.txt").status_code == 404


# -- the mixin API (django-downloadview parity) --------------------------------


def _app_with(view: t.Any, rule: str = "/d") -> Flask:
    app = Flask(__name__)
    app.add_url_rule(rule, view_func=view)
    return app


def test_the_base_get_file_raises_not_implemented() -> None:
    with pytest.raises(NotImplementedError):
        DownloadMixin().get_file()


def test_every_get_method_can_be_overridden() -> None:
    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"data", name="own.bin")

        def get_basename(self) -> str | None:
            return f"report-{self.kwargs['n']}.txt.gz"

        def get_mimetype(self) -> str | None:
            return "text/csv"

        def get_encoding(self) -> str | None:
            return "br"

    response = _app_with(View.as_view("d"), "/d/<n>").test_client().get("/d/7")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="report-7.txt.gz"'
    )
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Encoding"] == "br"


def test_attributes_given_to_as_view_are_used_and_the_class_is_unchanged() -> None:
    view = VirtualDownloadView.as_view(
        "d",
        content=b"data",
        basename="x.bin",
        attachment=False,
        mimetype="text/plain",
        encoding="gzip",
    )
    response = _app_with(view).test_client().get("/d")
    assert response.headers["Content-Disposition"] == 'inline; filename="x.bin"'
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Encoding"] == "gzip"
    assert VirtualDownloadView.attachment is True
    assert VirtualDownloadView.basename is None


def test_was_modified_since_override_decides_if_modified_since() -> None:
    seen: list[datetime.datetime] = []

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"data", name="a.bin")

        def was_modified_since(
            self, file_instance: DownloadFile, since: datetime.datetime
        ) -> bool:
            seen.append(since)
            return False

    client = _app_with(View.as_view("d")).test_client()
    response = client.get(
        "/d", headers={"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}
    )
    assert response.status_code == 304
    assert response.data == b""
    assert seen == [datetime.datetime(1994, 11, 6, 8, 49, 37, tzinfo=datetime.UTC)]


def test_a_wrapper_that_tells_whether_it_changed_is_asked() -> None:
    class Told(VirtualFile):
        def was_modified_since(self, since: datetime.datetime) -> bool:
            return since.year < 2000

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return Told(b"data", name="a.bin")

    client = _app_with(View.as_view("d")).test_client()
    old = {"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}
    new = {"If-Modified-Since": "Sat, 06 Nov 2004 08:49:37 GMT"}
    assert client.get("/d", headers=old).status_code == 200
    assert client.get("/d", headers=new).status_code == 304


def test_a_wrapper_that_cannot_tell_counts_as_modified() -> None:
    class Unknowing(DownloadFile):
        def was_modified_since(self, since: datetime.datetime) -> bool:
            raise NotImplementedError

        @property  # type: ignore[override]
        def modified_time(self) -> datetime.datetime:
            raise NotImplementedError

    since = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    assert DownloadMixin().was_modified_since(Unknowing(), since) is True


def test_not_modified_response_override_gets_the_validators() -> None:
    got: list[dict[str, t.Any]] = []

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"data", name="a.bin", etag="v1")

        def not_modified_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
            got.append(dict(kwargs["headers"]))
            return Response(status=304, headers={"X-Own": "yes"})

    client = _app_with(View.as_view("d")).test_client()
    response = client.get("/d", headers={"If-None-Match": '"v1"'})
    assert response.status_code == 304
    assert response.headers["X-Own"] == "yes"
    assert got[0]["ETag"] == '"v1"'
    assert "Cache-Control" in got[0]


def test_file_not_found_response_override_answers_get_and_head() -> None:
    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            raise FileNotFound("gone")

        def file_not_found_response(self) -> Response:
            return Response("moved away", status=410)

    client = _app_with(View.as_view("d")).test_client()
    assert client.get("/d").status_code == 410
    assert client.head("/d").status_code == 410
    assert (
        _app_with(PathDownloadView.as_view("d", path="/nonexistent/file"))
        .test_client()
        .get("/d")
        .status_code
        == 404
    )


def test_render_to_response_override_wraps_the_default() -> None:
    class View(VirtualDownloadView):
        content = b"data"

        def render_to_response(self, *args: t.Any, **kwargs: t.Any) -> Response:
            response = super().render_to_response(*args, **kwargs)
            response.headers["X-Wrapped"] = "1"
            return response

    response = _app_with(View.as_view("d")).test_client().get("/d")
    assert response.data == b"data"
    assert response.headers["X-Wrapped"] == "1"


def test_download_response_override_passes_keywords_that_win() -> None:
    class View(VirtualDownloadView):
        content = b"data"
        basename = "view.txt"

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            return super().download_response(
                *args, basename="own.csv", attachment=False, **kwargs
            )

    response = _app_with(View.as_view("d")).test_client().get("/d")
    assert response.headers["Content-Disposition"] == 'inline; filename="own.csv"'
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"


def test_a_ported_override_uses_django_downloadview_names() -> None:
    # As written for django-downloadview: self.file_instance, and the
    # file_instance / file_mimetype / file_encoding keywords.
    names: list[str | None] = []

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"data", name="a.bin")

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            names.append(self.file_instance.name)
            kwargs.setdefault("file_instance", self.file_instance)
            kwargs.setdefault("file_mimetype", "text/csv")
            kwargs.setdefault("file_encoding", "gzip")
            return super().download_response(*args, **kwargs)

    response = _app_with(View.as_view("d")).test_client().get("/d")
    assert response.status_code == 200
    assert response.data == b"data"
    assert names == ["a.bin"]
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Encoding"] == "gzip"


def test_a_django_keyword_and_its_flask_name_together_are_refused() -> None:
    class View(VirtualDownloadView):
        content = b"data"

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            return super().download_response(
                mimetype="text/plain", file_mimetype="text/csv"
            )

    app = _app_with(View.as_view("d"))
    app.testing = True
    with pytest.raises(TypeError, match="both 'mimetype' and 'file_mimetype'"):
        app.test_client().get("/d")


def test_file_instance_is_settable_but_not_an_as_view_keyword() -> None:
    view = DownloadMixin()
    file = VirtualFile(b"x")
    view.file_instance = file
    assert view.file is file
    with pytest.raises(TypeError, match="file_instance"):
        VirtualDownloadView.as_view("d", content=b"x", file_instance=file)


def test_download_response_serves_the_file_passed_even_if_it_is_falsy() -> None:
    class Empty(VirtualFile):
        # A wrapper with a length: an empty one is falsy.
        def __len__(self) -> int:
            return self.size or 0

    class View(DownloadView):
        def get_file(self) -> DownloadFile:
            return VirtualFile(b"the view's file", name="view.bin")

        def download_response(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            self.file.close()
            return super().download_response(file=Empty(b"", name="empty.bin"))

    response = _app_with(View.as_view("d")).test_client().get("/d")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="empty.bin"'
    )


def test_the_mixin_alone_serves_a_function_view() -> None:
    class Mixin(DownloadMixin):
        def get_file(self) -> DownloadFile:
            return VirtualFile(self.kwargs["word"], name=f"{self.kwargs['word']}.txt")

    app = Flask(__name__)

    @app.route("/w/<word>")
    def word(word: str) -> Response:
        return Mixin(attachment=False).render_to_response()

    response = app.test_client().get("/w/hello")
    assert response.data == b"hello"
    assert response.headers["Content-Disposition"] == 'inline; filename="hello.txt"'


# -- bytes paths ---------------------------------------------------------------


def test_a_bytes_trusted_path_has_str_name_and_path(layout: pathlib.Path) -> None:
    file = PathFile(os.fsencode(layout / "sub" / "f.txt"))
    try:
        assert file.name == "f.txt"
        assert file.path == os.fspath(layout / "sub" / "f.txt")
    finally:
        file.close()


def test_a_bytes_path_attribute_is_served(layout: pathlib.Path) -> None:
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = os.fspath(layout)
    app.add_url_rule("/rel", view_func=PathDownloadView.as_view("r", path=b"sub/f.txt"))
    absolute = os.fsencode(layout / "sub" / "f.txt")
    app.add_url_rule("/abs", view_func=PathDownloadView.as_view("a", path=absolute))
    client = app.test_client()
    for url in ("/rel", "/abs"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.data == INSIDE
        assert response.headers["Content-Disposition"] == 'attachment; filename="f.txt"'


def test_a_bytes_path_attribute_matches_offload_rules(layout: pathlib.Path) -> None:
    app = Flask(__name__)
    app.config.update(
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {"source_dir": os.fspath(layout), "destination_url": "/internal/"}
        ],
    )
    absolute = os.fsencode(layout / "sub" / "f.txt")
    app.add_url_rule("/abs", view_func=PathDownloadView.as_view("a", path=absolute))
    response = app.test_client().get("/abs")
    assert response.status_code == 200
    assert response.headers["X-Accel-Redirect"] == "/internal/sub/f.txt"
