from __future__ import annotations

import collections.abc as cabc
import datetime
import pathlib
import time
import typing as t
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from conftest import SAMPLE_FILES
from flask import Flask
from flask import Response
from itsdangerous import Signer

import flask_download.signing
from flask_download import ConfigurationError
from flask_download import DownloadMixin
from flask_download import PathDownloadView
from flask_download import signature_required
from flask_download import signed_url_for
from flask_download import VirtualFile
from flask_download.testing import assert_download_response

HELLO = SAMPLE_FILES["hello.txt"]
# A name made of URL syntax: query, fragment, parameter and escape characters.
URL_SYNTAX = "a&b=c;d?e#f%20'\".txt"


@pytest.fixture
def app(app_factory: cabc.Callable[..., Flask], download_root: pathlib.Path) -> Flask:
    (download_root / "with space + plus.txt").write_bytes(b"spaced\n")
    (download_root / URL_SYNTAX).write_bytes(b"url syntax\n")
    app = app_factory(SECRET_KEY="test-secret")
    app.add_url_rule(
        "/files/<path:path>", view_func=PathDownloadView.as_view("files", signed=True)
    )
    app.add_url_rule("/open/<path:path>", view_func=PathDownloadView.as_view("open"))

    @app.get("/report/<int:id>")
    @signature_required
    def report(id: int) -> str:
        return f"report {id}"

    @app.get("/called")
    @signature_required()
    def called() -> str:
        return "called"

    class Mixin(DownloadMixin):
        signed = True

    @app.get("/mixin")
    def mixin() -> Response:
        view = Mixin(get_file=lambda: VirtualFile(b"mixin", name="m.txt"))
        return view.render_to_response()

    return app


def sign(app: Flask, endpoint: str, **values: t.Any) -> str:
    with app.test_request_context():
        return signed_url_for(endpoint, **values)


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


# -- valid links ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("hello.txt", HELLO),
        ("été.txt", SAMPLE_FILES["été.txt"]),
        ("with space + plus.txt", b"spaced\n"),
        (URL_SYNTAX, b"url syntax\n"),
        ("sub/nested.txt", SAMPLE_FILES["sub/nested.txt"]),
    ],
    ids=["ascii", "non-ascii", "space-and-plus", "url-syntax", "nested"],
)
def test_signed_link_opens_the_file(
    app: Flask, client: t.Any, name: str, content: bytes
) -> None:
    url = sign(app, "files", path=name)
    with client.get(url) as rv:
        assert_download_response(rv, content=content, basename=name.split("/")[-1])


def test_head_with_a_signed_link(app: Flask, client: t.Any) -> None:
    with client.head(sign(app, "files", path="hello.txt")) as rv:
        assert_download_response(rv, content=HELLO)


def test_differently_encoded_path_is_the_same_link(app: Flask, client: t.Any) -> None:
    """The signature covers the decoded path, not one client's encoding of it."""
    url = sign(app, "files", path="hello.txt")
    with client.get(url.replace("/hello.txt", "/%68ello.txt")) as rv:
        assert_download_response(rv, content=HELLO)


def test_query_parameters_are_kept_and_any_order_works(
    app: Flask, client: t.Any
) -> None:
    url = sign(app, "report", id=7, fmt="csv", lang="fr")
    assert query(url)["fmt"] == ["csv"]
    path, _, qs = url.partition("?")
    reordered = "&".join(reversed(qs.split("&")))
    for candidate in (url, f"{path}?{reordered}"):
        with client.get(candidate) as rv:
            assert (rv.status_code, rv.text) == (200, "report 7")


@pytest.mark.parametrize("endpoint", ["report", "called", "mixin"])
def test_decorator_and_mixin_accept_a_signed_link(
    app: Flask, client: t.Any, endpoint: str
) -> None:
    values = {"id": 1} if endpoint == "report" else {}
    with client.get(sign(app, endpoint, **values)) as rv:
        assert rv.status_code == 200


def test_external_url_and_anchor(app: Flask, client: t.Any) -> None:
    url = sign(app, "files", path="hello.txt", _external=True, _anchor="top")
    assert url.startswith("http://localhost/files/hello.txt?")
    assert url.endswith("#top")
    with client.get(url) as rv:
        assert_download_response(rv, content=HELLO)


def test_app_mounted_under_a_prefix(app: Flask) -> None:
    client = app.test_client()
    base_url = "http://localhost/mounted/"
    with app.test_request_context(base_url=base_url):
        url = signed_url_for("files", path="été.txt")
    assert url.startswith("/mounted/files/")
    with client.get(url.removeprefix("/mounted"), base_url=base_url) as rv:
        assert_download_response(rv, content=SAMPLE_FILES["été.txt"])
    # The signature binds where the app is mounted: another application
    # with the same SECRET_KEY and endpoint names, mounted elsewhere (and
    # serving other files), does not open it.
    with client.get(url.removeprefix("/mounted")) as rv:
        assert rv.status_code == 403
    with client.get(
        url.removeprefix("/mounted"), base_url="http://localhost/other/"
    ) as rv:
        assert rv.status_code == 403


def test_link_made_with_a_fallback_key_still_works(app: Flask, client: t.Any) -> None:
    url = sign(app, "files", path="hello.txt")
    app.config.update(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["test-secret"])
    with client.get(url) as rv:
        assert_download_response(rv, content=HELLO)
    app.config["SECRET_KEY_FALLBACKS"] = []
    with client.get(url) as rv:
        assert rv.status_code == 403


# -- refused links ----------------------------------------------------------------


def _swap_path(url: str) -> str:
    return url.replace("/files/hello.txt", "/files/data.bin")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.split("?")[0],
        lambda url: url.replace("signature=", "signature=A"),
        lambda url: url.replace("signature=", "sig="),
        lambda url: url.replace("expires=", "expires=9"),
        lambda url: url.replace("expires=", "expires=-"),
        _swap_path,
        lambda url: url.replace("/files/hello.txt", "/files/sub/../hello.txt"),
        lambda url: url + "&extra=1",
        lambda url: url + "&signature=again",
        lambda url: url.replace("?", "?expires=1&", 1),
    ],
    ids=[
        "no-query",
        "changed-signature",
        "renamed-signature",
        "later-expiry",
        "malformed-expiry",
        "other-file",
        "dot-segments",
        "added-parameter",
        "second-signature",
        "second-expiry",
    ],
)
def test_missing_or_tampered_link_is_403(
    app: Flask, client: t.Any, tamper: cabc.Callable[[str], str]
) -> None:
    with client.get(tamper(sign(app, "files", path="hello.txt"))) as rv:
        assert rv.status_code == 403
        assert "Content-Disposition" not in rv.headers


def test_query_value_change_is_403(app: Flask, client: t.Any) -> None:
    url = sign(app, "report", id=7, fmt="csv")
    with client.get(url.replace("fmt=csv", "fmt=pdf")) as rv:
        assert rv.status_code == 403


def test_link_of_another_endpoint_is_403(app: Flask, client: t.Any) -> None:
    """A signature for /open/... does not open /files/... (same path variable)."""
    url = sign(app, "open", path="hello.txt")
    with client.get(url.replace("/open/", "/files/")) as rv:
        assert rv.status_code == 403


def test_missing_file_without_signature_is_403_not_404(client: t.Any) -> None:
    """The signature is checked before the file is looked up."""
    with client.get("/files/no-such-file.txt") as rv:
        assert rv.status_code == 403


@pytest.mark.parametrize("endpoint", ["files", "report", "called", "mixin"], ids=str)
def test_unsigned_request_is_403(app: Flask, client: t.Any, endpoint: str) -> None:
    path = {"files": "/files/hello.txt", "report": "/report/1"}.get(
        endpoint, f"/{endpoint}"
    )
    with client.get(path) as rv:
        assert rv.status_code == 403


def test_signature_with_another_salt_is_403(app: Flask, client: t.Any) -> None:
    url = sign(app, "files", path="hello.txt")
    other = Signer("test-secret", salt="itsdangerous.Signer").get_signature(
        b"/files/hello.txt?expires=" + query(url)["expires"][0].encode()
    )
    forged = url.split("&signature=")[0] + "&signature=" + other.decode()
    with client.get(forged) as rv:
        assert rv.status_code == 403


# -- expiry -------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [time.time()]
    monkeypatch.setattr(flask_download.signing, "_now", lambda: now[0])
    return now


@pytest.mark.parametrize("endpoint", ["files", "report", "mixin"])
def test_expired_link_is_410(
    app: Flask, client: t.Any, clock: list[float], endpoint: str
) -> None:
    values: dict[str, t.Any] = {
        "files": {"path": "hello.txt"},
        "report": {"id": 1},
    }.get(endpoint, {})
    url = sign(app, endpoint, expires_in=60, **values)
    clock[0] += 59
    with client.get(url) as rv:
        assert rv.status_code == 200
    clock[0] += 2
    with client.get(url) as rv:
        assert rv.status_code == 410


def test_expired_and_tampered_link_is_403(
    app: Flask, client: t.Any, clock: list[float]
) -> None:
    url = sign(app, "files", path="hello.txt", expires_in=1)
    clock[0] += 10
    with client.get(_swap_path(url)) as rv:
        assert rv.status_code == 403


def test_default_expiry_is_download_signed_max_age(
    app_factory: cabc.Callable[..., Flask], clock: list[float]
) -> None:
    app = app_factory(SECRET_KEY="k", DOWNLOAD_SIGNED_MAX_AGE=120)
    app.add_url_rule("/f/<path:path>", view_func=PathDownloadView.as_view("f"))
    expires = int(query(sign(app, "f", path="hello.txt"))["expires"][0])
    assert clock[0] + 120 <= expires <= clock[0] + 121


@pytest.mark.parametrize(
    "expires_in",
    [30, 30.5, datetime.timedelta(seconds=30)],
    ids=["int", "float", "timedelta"],
)
def test_expires_in_forms(
    app: Flask, clock: list[float], expires_in: int | float | datetime.timedelta
) -> None:
    expires = int(
        query(sign(app, "files", path="a", expires_in=expires_in))["expires"][0]
    )
    assert clock[0] + 30 <= expires <= clock[0] + 31.5


# -- misuse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expires_in",
    [0, -5, True, float("inf"), float("nan"), 1e300, datetime.timedelta(days=-1)],
    ids=["zero", "negative", "bool", "inf", "nan", "past-year-9999", "timedelta"],
)
def test_bad_expires_in_is_value_error(app: Flask, expires_in: t.Any) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        sign(app, "files", path="hello.txt", expires_in=expires_in)


@pytest.mark.parametrize("name", ["expires", "signature"])
def test_reserved_parameter_is_value_error(app: Flask, name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        sign(app, "files", path="hello.txt", **{name: "x"})


def test_missing_secret_key_is_a_configuration_error(
    app_factory: cabc.Callable[..., Flask],
) -> None:
    app = app_factory()
    app.add_url_rule(
        "/f/<path:path>", view_func=PathDownloadView.as_view("f", signed=True)
    )
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        sign(app, "f", path="hello.txt")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        app.test_client().get("/f/hello.txt?expires=1&signature=x")


def test_signed_attribute_is_settable_with_as_view() -> None:
    assert PathDownloadView.signed is False
    PathDownloadView.as_view("x", signed=True)
    assert PathDownloadView.signed is False


def test_signature_errors_belong_to_the_exception_tree() -> None:
    from werkzeug.exceptions import HTTPException

    from flask_download import DownloadError
    from flask_download import InvalidSignature
    from flask_download import SignatureExpired

    for error, code in ((InvalidSignature, 403), (SignatureExpired, 410)):
        assert issubclass(error, DownloadError)
        assert issubclass(error, HTTPException)
        assert error.code == code


@pytest.mark.parametrize(
    ("rule_expires", "allowed"),
    [
        (86400, lambda value, expires: value.isdigit() and int(value) <= 60),
        (0, lambda value, expires: value == "0"),
        (
            "@4102444800",  # 2100-01-01: far past the link
            lambda value, expires: value == f"@{expires}",
        ),
    ],
    ids=["seconds", "zero-kept", "epoch"],
)
def test_offloaded_signed_response_is_not_cached_by_nginx_past_the_link(
    app_factory: cabc.Callable[..., Flask],
    download_root: pathlib.Path,
    rule_expires: int | str,
    allowed: cabc.Callable[[str, int], bool],
) -> None:
    """X-Accel-Expires (nginx's proxy cache obeys it before Cache-Control)
    is capped at the link's expiry too."""
    app = app_factory(
        SECRET_KEY="k",
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": str(download_root),
                "destination_url": "/in/",
                "expires": rule_expires,
            }
        ],
    )
    app.add_url_rule(
        "/s/<path:path>", view_func=PathDownloadView.as_view("s", signed=True)
    )
    name = next(p.name for p in download_root.iterdir() if p.name.isascii())
    url = sign(app, "s", path=name, expires_in=60)
    expires = int(query(url)["expires"][0])
    with app.test_client().get(url) as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Accel-Redirect"].startswith("/in/")
        assert allowed(rv.headers["X-Accel-Expires"], expires)


def test_hand_built_signed_response_offloaded_by_the_hook_is_capped(
    app_factory: cabc.Callable[..., Flask],
    download_root: pathlib.Path,
) -> None:
    """A ``DownloadResponse`` built by hand is offloaded by the extension's
    ``after_request`` hook, which Flask runs after the signed link's cap:
    the rule's X-Accel-Expires is capped all the same."""
    from flask_download import DownloadResponse
    from flask_download import FlaskDownload
    from flask_download import PathFile
    from flask_download import signature_required

    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="k",
        DOWNLOAD_ACCEL="nginx",
        DOWNLOAD_ACCEL_RULES=[
            {
                "source_dir": str(download_root),
                "destination_url": "/in/",
                "expires": 86400,
            }
        ],
    )
    FlaskDownload(app)

    @app.get("/h")
    @signature_required
    def hand_built() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    @app.get("/plain")
    def plain() -> DownloadResponse:
        return DownloadResponse(PathFile(download_root / "hello.txt"))

    url = sign(app, "hand_built", expires_in=60)
    with app.test_client().get(url) as rv:
        assert rv.status_code == 200
        assert rv.headers["X-Accel-Redirect"] == "/in/hello.txt"
        assert int(rv.headers["X-Accel-Expires"]) <= 60
        assert "private" in rv.headers["Cache-Control"]
    # Unsigned requests of other views keep the rule's value.
    with app.test_client().get("/plain") as rv:
        assert rv.headers["X-Accel-Expires"] == "86400"


def test_link_is_bound_to_its_method(app_factory: cabc.Callable[..., Flask]) -> None:
    """A link made for GET (which also answers HEAD) does not open the same
    route for POST or DELETE."""
    app = app_factory(SECRET_KEY="k")

    @app.route("/doc/<name>", methods=["GET", "POST", "DELETE"])
    @signature_required
    def doc(name: str) -> str:
        return name

    url = sign(app, "doc", name="a")
    client = app.test_client()
    assert client.get(url).status_code == 200
    assert client.head(url).status_code == 200
    assert client.post(url).status_code == 403
    assert client.delete(url).status_code == 403
    post_url = sign(app, "doc", name="a", _method="POST")
    assert client.post(post_url).status_code == 200
    assert client.get(post_url).status_code == 403


def test_two_apps_sharing_a_key_at_two_mounts_keep_their_links(
    tmp_path: pathlib.Path,
) -> None:
    """Outside review: a link of the app at /public opened the same endpoint
    of the app at /private (same SECRET_KEY, same blueprint)."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.test import Client

    from flask_download import make_download_blueprint

    def make(name: str) -> Flask:
        root = tmp_path / name
        root.mkdir()
        (root / "hello.txt").write_text(f"{name} hello")
        app = Flask(name)
        app.config.update(SECRET_KEY="shared")
        app.register_blueprint(
            make_download_blueprint("dl", root=str(root), options={"signed": True})
        )
        return app

    public, private = make("public"), make("private")
    site = DispatcherMiddleware(public, {"/public": public, "/private": private})
    with public.test_request_context(base_url="http://localhost/public/"):
        url = signed_url_for("dl.file", path="hello.txt")
    assert url.startswith("/public/")
    client = Client(site)
    with client.get(url) as rv:
        assert rv.get_data() == b"public hello"
    with client.get(url.replace("/public/", "/private/", 1)) as rv:
        assert rv.status_code == 403


def test_link_to_a_view_of_one_other_method_is_for_that_method(
    app_factory: cabc.Callable[..., Flask],
) -> None:
    """Review: OPTIONS (which Flask adds to every rule) was signed for a
    POST-only view, so its link always answered 403."""
    app = app_factory(SECRET_KEY="k")

    @app.post("/upload/<name>")
    @signature_required
    def upload(name: str) -> str:
        return name

    @app.route("/edit/<name>", methods=["PUT", "DELETE"])
    @signature_required
    def edit(name: str) -> str:
        return name

    url = sign(app, "upload", name="a")
    client = app.test_client()
    assert client.post(url).status_code == 200
    with app.test_request_context(), pytest.raises(ConfigurationError, match="_method"):
        signed_url_for("edit", name="a")
    assert client.put(sign(app, "edit", name="a", _method="PUT")).status_code == 200
