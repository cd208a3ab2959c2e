"""Follow-ups of the fifth audit: config values that are integer-likes."""

from __future__ import annotations

import pathlib
import typing as t

import pytest
from flask import Flask

from flask_download import ConfigurationError
from flask_download import FlaskDownload
from flask_download import PathDownloadView


class IntLike:
    """An integer that is no ``int`` (``numpy.int64`` behaves so)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"IntLike({self.value})"


def _app(tmp_path: pathlib.Path, **config: t.Any) -> Flask:
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 40)
    app = Flask(__name__)
    app.config["DOWNLOAD_ROOT"] = str(tmp_path)
    app.config.update(config)
    FlaskDownload(app)
    app.add_url_rule("/<path:path>", view_func=PathDownloadView.as_view("files"))
    return app


def test_integer_like_config_values_are_numbers(tmp_path: pathlib.Path) -> None:
    app = _app(
        tmp_path,
        DOWNLOAD_CHUNK_SIZE=IntLike(1000),
        DOWNLOAD_MAX_RANGES=IntLike(2),
        DOWNLOAD_CACHE_MAX_AGE=IntLike(60),
    )
    client = app.test_client()
    with client.get("/data.bin") as rv:
        assert rv.status_code == 200
        assert rv.headers["Cache-Control"] == "max-age=60"
    # Three ranges are more than DOWNLOAD_MAX_RANGES: the whole file.
    with client.get("/data.bin", headers={"Range": "bytes=0-0,10-10,20-20"}) as rv:
        assert rv.status_code == 200
    with client.get("/data.bin", headers={"Range": "bytes=0-0,10-10"}) as rv:
        assert rv.status_code == 206


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DOWNLOAD_CHUNK_SIZE", True),
        ("DOWNLOAD_CHUNK_SIZE", 4096.0),
        ("DOWNLOAD_CHUNK_SIZE", IntLike(0)),
        ("DOWNLOAD_MAX_RANGES", "5"),
        ("DOWNLOAD_CACHE_MAX_AGE", IntLike(-1)),
        ("DOWNLOAD_CACHE_MAX_AGE", 1.5),
    ],
)
def test_other_config_numbers_are_still_refused(
    tmp_path: pathlib.Path, key: str, value: t.Any
) -> None:
    with pytest.raises(ConfigurationError, match=key):
        _app(tmp_path, **{key: value})


# -- nginx secure links end presigned redirects and caching with the link ------


def test_a_secure_link_redirect_expires_with_the_link() -> None:
    """Under ``nginx_secure_link_required`` the presigned URL lasted the full
    ``redirect_expires`` (300 s) after a link valid 60 s more."""
    import time
    import urllib.parse

    pytest.importorskip("fsspec")
    from fsspec.implementations.memory import MemoryFileSystem

    from flask_download import nginx_secure_link
    from flask_download import nginx_secure_link_required
    from flask_download import StorageDownloadView

    class Signing(MemoryFileSystem):
        def sign(self, path: str, expiration: int = 100, **kwargs: t.Any) -> str:
            return f"https://cdn.example/{path}?lifetime={expiration}"

    fs = Signing(skip_instance_cache=True)
    fs.store = {}
    fs.pseudo_dirs = [""]
    fs.pipe("/docs/a.txt", b"a")
    secret = "s" * 32
    app = Flask(__name__)
    app.config.update(DOWNLOAD_NGINX_SECURE_LINK_SECRET=secret)
    view = nginx_secure_link_required(
        StorageDownloadView.as_view("dl", storage=fs, redirect=True)
    )
    app.add_url_rule("/files/<path:path>", view_func=view)
    link = nginx_secure_link(
        "/files/docs/a.txt", secret=secret, expires=int(time.time()) + 60
    )
    with app.test_client().get(link) as rv:
        assert rv.status_code == 302
        query = urllib.parse.parse_qs(
            urllib.parse.urlsplit(rv.headers["Location"]).query
        )
        assert 55 <= int(query["lifetime"][0]) <= 60
    # Without a link: the view's redirect_expires.
    plain = Flask(__name__)
    plain.add_url_rule(
        "/files/<path:path>",
        view_func=StorageDownloadView.as_view("dl", storage=fs, redirect=True),
    )
    with plain.test_client().get("/files/docs/a.txt") as rv:
        query = urllib.parse.parse_qs(
            urllib.parse.urlsplit(rv.headers["Location"]).query
        )
        assert int(query["lifetime"][0]) == 300


def test_a_secure_link_response_is_private_until_the_link_expires(
    tmp_path: pathlib.Path,
) -> None:
    import time

    from flask_download import nginx_secure_link
    from flask_download import nginx_secure_link_required

    (tmp_path / "a.txt").write_bytes(b"a")
    secret = "s" * 32
    app = Flask(__name__)
    app.config.update(
        DOWNLOAD_NGINX_SECURE_LINK_SECRET=secret, DOWNLOAD_CACHE_MAX_AGE=3600
    )
    view = nginx_secure_link_required(
        PathDownloadView.as_view("dl", root=str(tmp_path), cache_control="public")
    )
    app.add_url_rule("/files/<path:path>", view_func=view)
    link = nginx_secure_link(
        "/files/a.txt", secret=secret, expires=int(time.time()) + 60
    )
    with app.test_client().get(link) as rv:
        assert rv.status_code == 200
        assert "private" in rv.headers["Cache-Control"]
        assert "public" not in rv.headers["Cache-Control"]
        assert 55 <= rv.cache_control.max_age <= 60


def test_allowed_ports_take_integer_likes() -> None:
    pytest.importorskip("urllib3")
    from flask_download.http import check_allowed_ports

    assert check_allowed_ports([IntLike(443), 80], "allowed_ports") == {80, 443}
    for bad in (True, 4.0, IntLike(0), IntLike(65536), "443"):
        with pytest.raises(ConfigurationError, match="port"):
            check_allowed_ports([bad], "allowed_ports")


# -- the proxy forwards only ranges the engine would answer as they are --------


@pytest.mark.parametrize(
    ("header", "forwarded"),
    [
        ("bytes=0-99", True),
        ("bytes=-500", True),
        ("bytes=100-", True),
        ("BYTES=0-0,10-19", True),
        ("bytes=10-19, 0-0", True),  # out of order, apart: upstream sorts
        ("bytes=0-99,100-199", False),  # touching
        ("bytes=0-99,50-60", False),  # overlapping
        ("bytes=0-99,0-99", False),
        ("bytes=100-,200-300", False),  # an open range covers the rest
        ("bytes=0-0,-1", False),  # a suffix among others
        ("bytes=0-" + ",0-".join(["0"] * 3), False),
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 200, 4)), True),  # 50
        ("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 204, 4)), False),  # 51
        ("bytes=5-1", False),  # invalid
        ("bytes=x", False),
        ("items=0-1", False),
        ("bytes=", False),
    ],
)
def test_forwardable_range(header: str, forwarded: bool) -> None:
    from flask_download.ranges import forwardable_range

    assert forwardable_range(header, 50) is forwarded


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("DOWNLOAD_MAX_RANGE_SIZE", "DOWNLOAD_MAX_RANGES"),
        ("DOWNLOAD_CHUNK_SIZE_MB", "DOWNLOAD_CHUNK_SIZE"),
    ],
)
def test_a_setting_name_and_more_is_a_warning(
    tmp_path: pathlib.Path, key: str, meant: str
) -> None:
    """Longer than the setting it resembles: maybe the application's own key,
    so a warning (with the hint), not an error the app cannot opt out of."""
    app = Flask(__name__)
    app.config.update(DOWNLOAD_ROOT=str(tmp_path), **{key: 5})
    with pytest.warns(UserWarning, match=f"did you mean {meant!r}"):
        FlaskDownload(app)


def test_a_host_lookup_is_given_up_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """getaddrinfo has no timeout: a DNS server that never answers held the
    worker for the resolver's own timeouts. Stuck lookups are bounded too."""
    import socket
    import threading
    import time

    pytest.importorskip("urllib3")
    from flask_download import UpstreamTimeout
    from flask_download.http import _resolver as http_module

    release = threading.Event()
    real = socket.getaddrinfo

    def resolver(host: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if host == "stuck.example":
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "no answer")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    try:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as info:
            http_module._resolve("stuck.example", 80, 0.2)
        assert "no answer within" in info.value.detail
        assert time.monotonic() - started < 2
        # Every lookup slot held by a stuck lookup: the next is refused in
        # time rather than queued for ever.
        for _ in range(http_module.MAX_LOOKUPS - 1):
            with pytest.raises(UpstreamTimeout):
                http_module._resolve("stuck.example", 80, 0.05)
        with pytest.raises(UpstreamTimeout) as info:
            http_module._resolve("example.invalid", 80, 0.2)
        assert "too many lookups" in info.value.detail
        # An address literal needs no lookup, whatever else is stuck.
        assert http_module._resolve("127.0.0.1", 80, 0.2)[0][4][0] == "127.0.0.1"
    finally:
        release.set()
    # The stuck lookups end and give their slots back.
    deadline = time.monotonic() + 5
    while http_module._lookups._value < http_module.MAX_LOOKUPS:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("decorated", "options", "expected"),
    [
        (False, {}, "no-cache"),
        (False, {"cache_max_age": 60}, "max-age=60"),
        (True, {}, "private, no-cache"),
        (True, {"cache_max_age": 60}, "private, max-age=60"),
        (True, {"cache_control": "public, max-age=5"}, "public, max-age=5"),
    ],
)
def test_a_blueprint_behind_decorators_is_private(
    tmp_path: pathlib.Path, decorated: bool, options: dict[str, t.Any], expected: str
) -> None:
    """With an access check (decorators), a file may be one user's: a
    shared cache stored "max-age=3600" answers and gave them to anyone."""
    import functools

    from flask_download import make_download_blueprint

    (tmp_path / "a.txt").write_bytes(b"a")

    def checked(view: t.Any) -> t.Any:
        @functools.wraps(view)
        def wrapper(**kwargs: t.Any) -> t.Any:
            return view(**kwargs)

        return wrapper

    app = Flask(__name__)
    app.register_blueprint(
        make_download_blueprint(
            "dl",
            root=str(tmp_path),
            options=options,
            decorators=[checked] if decorated else (),
        )
    )
    client = app.test_client()
    with client.get("/a.txt") as rv:
        assert rv.status_code == 200
        assert rv.headers["Cache-Control"] == expected
    etag = rv.headers["ETag"]
    with client.get("/a.txt", headers={"If-None-Match": etag}) as rv:
        assert rv.status_code == 304
        assert rv.headers["Cache-Control"] == expected


def test_a_body_ending_short_of_its_length_is_not_completed() -> None:
    """A body of known length that ends early without an error (a file that
    shrank, an archive member that failed) was reported completed=True."""
    from flask_download import DownloadFile
    from flask_download import VirtualDownloadView
    from flask_download.signals import download_finished

    class Shrunk(DownloadFile):
        name = "shrunk.bin"
        size = 10

        def chunks(self, chunk_size: int = 65536, **kwargs: t.Any) -> t.Iterator[bytes]:
            yield b"12345"  # five of the ten bytes announced

    class View(VirtualDownloadView):
        def get_file(self) -> DownloadFile:
            return Shrunk()

    app = Flask(__name__)
    app.add_url_rule("/s", view_func=View.as_view("s"))
    finished: list[tuple[int, bool]] = []

    def receiver(sender: t.Any, **extra: t.Any) -> None:
        finished.append((extra["bytes_sent"], extra["completed"]))

    client = app.test_client()
    with download_finished.connected_to(receiver, app), client.get("/s") as rv:
        assert rv.headers["Content-Length"] == "10"
        assert rv.get_data() == b"12345"
    assert finished == [(5, False)]
