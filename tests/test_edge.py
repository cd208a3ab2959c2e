"""Edge-verified links: nginx's secure_link (the real nginx) and CloudFront.

The nginx configuration is the one in ``docs/edge.rst``, read from the page,
so the documented snippet is the tested one. nginx serves the files from
disk itself; the Flask app behind it counts the requests it sees, to show
that a download by link never reaches Python.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import datetime
import hashlib
import json
import os
import pathlib
import re
import textwrap
import time
import typing as t
import urllib.parse

import pytest
from conftest import free_port
from conftest import NGINX
from conftest import NGINX_CONF_HEAD
from conftest import running_nginx
from conftest import running_werkzeug
from flask import Flask

from flask_download import ConfigurationError
from flask_download import edge
from flask_download import FlaskDownload
from flask_download import PathDownloadView
from flask_download.edge import cloudfront_signed_cookies
from flask_download.edge import cloudfront_signed_url
from flask_download.edge import nginx_secure_link
from flask_download.edge import nginx_secure_link_required
from flask_download.edge import nginx_secure_url_for

urllib3 = pytest.importorskip("urllib3")

needs_nginx = pytest.mark.skipif(
    not os.access(NGINX, os.X_OK),
    reason="needs nginx at /usr/sbin/nginx (apt-get install nginx; .ci/run does it)",
)

SECRET = "k3Q9-VwJx2pHf0uTzL8sYbN4cRe7MaGd_x1"
#: nginx reads spaces, semicolons, braces and single quotes literally
#: inside the quoted string.
ODD_SECRET = "two words; {braces} 'quotes' #hash %percent"
DOCS = pathlib.Path(__file__).parent.parent / "docs" / "edge.rst"
#: Names nginx must find from the decoded $uri: spaces, reserved characters,
#: non-ASCII text.
FILES: dict[str, bytes] = {
    "report.pdf": b"%PDF-1.7 " + os.urandom(4096),
    "été 2024.txt": "vacances d'été\n".encode(),
    "100% sure?.txt": b"percent and question mark\n",
    "a b#c;d&e=f.txt": b"reserved characters\n",
    "sub/dir/deep.bin": bytes(range(256)) * 16,
}


def _documented_location() -> str:
    """The ``location`` block of the nginx snippet in docs/edge.rst."""
    text = DOCS.read_text()
    blocks = re.findall(
        r"^\.\. code-block:: nginx\n\n((?:(?:    .*)?\n)+)", text, flags=re.M
    )
    snippets = [textwrap.dedent(b) for b in blocks if "secure_link_md5" in b]
    assert snippets, "docs/edge.rst lost its nginx secure_link snippet"
    return snippets[0]


NGINX_CONF = (
    NGINX_CONF_HEAD
    + """\
    types {{ application/pdf pdf; text/plain txt; }}
    default_type application/octet-stream;

    server {{
        listen 127.0.0.1:{port};
{files_location}
{bound_location}
{odd_location}
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
        }}
    }}
}}
"""
)


@pytest.fixture(scope="module")
def edge_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("edge") / "files"
    for name, content in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root.parent / "secret.txt").write_bytes(b"TOP SECRET")
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1 name on disk")
    return root


def make_app(root: pathlib.Path, seen: list[str] | None = None) -> Flask:
    """The app: ``/files/<path>`` checks the same links nginx does."""
    app = Flask("edge_app")
    app.config.update(
        TESTING=True,
        DOWNLOAD_ROOT=os.fspath(root),
        DOWNLOAD_NGINX_SECURE_LINK_SECRET=SECRET,
    )
    FlaskDownload(app)
    view = PathDownloadView.as_view("files")
    app.add_url_rule("/files/<path:path>", view_func=nginx_secure_link_required(view))
    bound = nginx_secure_link_required(remote_addr=True)(
        PathDownloadView.as_view("bound")
    )
    app.add_url_rule("/bound/<path:path>", view_func=bound)
    if seen is not None:

        @app.before_request
        def count() -> None:
            from flask import request

            seen.append(request.path)

    return app


@pytest.fixture(scope="module")
def app_seen() -> list[str]:
    return []


@pytest.fixture(scope="module")
def app_port(edge_root: pathlib.Path, app_seen: list[str]) -> cabc.Iterator[int]:
    with running_werkzeug(make_app(edge_root, app_seen)) as url:
        yield int(url.rpartition(":")[2])


@pytest.fixture(scope="module")
def nginx_url(
    edge_root: pathlib.Path, app_port: int, tmp_path_factory: pytest.TempPathFactory
) -> cabc.Iterator[str]:
    if not os.access(NGINX, os.X_OK):
        pytest.skip("needs nginx")
    tmp = tmp_path_factory.mktemp("edge_nginx")
    port = free_port()
    location = _documented_location()
    location = location.replace("REPLACE-WITH-THE-SECRET", SECRET)
    location = location.replace("/srv/files/", f"{edge_root}/")
    # The same location bound to the client's address.
    bound = location.replace("location /files/", "location /bound/")
    bound = bound.replace("$uri ", "$uri$remote_addr ")
    assert "$remote_addr" in bound
    odd = location.replace("location /files/", "location /odd/")
    odd = odd.replace(SECRET, ODD_SECRET)
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=tmp,
            port=port,
            app_port=app_port,
            files_location=textwrap.indent(location, " " * 8),
            bound_location=textwrap.indent(bound, " " * 8),
            odd_location=textwrap.indent(odd, " " * 8),
        )
    )
    with running_nginx(conf, port) as url:
        yield url


def _link(name: str, expires: t.Any = None, **kwargs: t.Any) -> str:
    if expires is None:
        expires = datetime.timedelta(minutes=5)
    return nginx_secure_link(f"/files/{name}", secret=SECRET, expires=expires, **kwargs)


def _nginx_md5(message: bytes) -> str:
    # The nginx documentation's recipe: openssl md5 -binary | openssl base64
    # | tr +/ -_ | tr -d =
    digest = hashlib.md5(message).digest()
    return base64.b64encode(digest).decode().replace("+", "-").replace("/", "_")


# -- nginx_secure_link: the link itself ------------------------------------------


def test_link_format_matches_nginx_recipe() -> None:
    link = nginx_secure_link("/files/été 1.txt", secret=SECRET, expires=2_000_000_000)
    path, _, query = link.partition("?")
    assert path == "/files/%C3%A9t%C3%A9%201.txt"
    params = urllib.parse.parse_qs(query)
    assert params["expires"] == ["2000000000"]
    message = f"2000000000/files/été 1.txt {SECRET}".encode()
    assert params["md5"] == [_nginx_md5(message).rstrip("=")]
    assert "=" not in params["md5"][0]


def test_link_bound_to_an_address() -> None:
    link = nginx_secure_link(
        "/files/a.txt", secret=SECRET, expires=2_000_000_000, remote_addr="192.0.2.7"
    )
    md5 = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["md5"][0]
    message = f"2000000000/files/a.txt192.0.2.7 {SECRET}".encode()
    assert md5 == _nginx_md5(message).rstrip("=")


@pytest.mark.parametrize(
    "expires",
    [
        datetime.datetime(2033, 5, 18, 3, 33, 20, tzinfo=datetime.timezone.utc),
        datetime.datetime(2033, 5, 18, 3, 33, 20),  # naive means UTC
        2_000_000_000,
        2_000_000_000.5,
    ],
    ids=["aware", "naive-utc", "int", "float"],
)
def test_expires_forms(expires: t.Any) -> None:
    link = nginx_secure_link("/f", secret=SECRET, expires=expires)
    assert link.endswith("&expires=2000000000")


def test_expires_as_timedelta_is_from_now() -> None:
    before = time.time()
    link = nginx_secure_link(
        "/f", secret=SECRET, expires=datetime.timedelta(seconds=90)
    )
    stamp = int(link.rpartition("expires=")[2])
    assert int(before) + 90 <= stamp <= time.time() + 91


@pytest.mark.parametrize(
    "uri",
    ["files/a.txt", "/files//a.txt", "/files/./a.txt", "/files/../a.txt", "/a\x00"],
    ids=["relative", "double-slash", "dot", "dot-dot", "nul"],
)
def test_uri_nginx_would_rewrite_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="uri"):
        nginx_secure_link(uri, secret=SECRET, expires=2_000_000_000)


@pytest.mark.parametrize(
    "secret", ["", "has$var", 'quo"te', "back\\slash", "new\nline"], ids=repr
)
def test_secret_nginx_cannot_hold_is_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        nginx_secure_link("/f", secret=secret, expires=2_000_000_000)


# -- the real nginx ------------------------------------------------------------------


@needs_nginx
@pytest.mark.parametrize("name", list(FILES), ids=list(FILES))
def test_nginx_serves_a_valid_link_without_the_app(
    http: t.Any, nginx_url: str, app_seen: list[str], name: str
) -> None:
    before = len(app_seen)
    rv = http.request("GET", nginx_url + _link(name))
    assert rv.status == 200
    assert rv.data == FILES[name]
    assert rv.headers["X-Content-Type-Options"] == "nosniff"
    assert rv.headers["Content-Disposition"] == "attachment"
    assert len(app_seen) == before  # nginx answered: Python never ran


@needs_nginx
def test_nginx_refuses_tampered_links(http: t.Any, nginx_url: str) -> None:
    link = _link("report.pdf")
    path, _, query = link.partition("?")
    params = dict(urllib.parse.parse_qsl(query))
    other_file = link.replace("report.pdf", "sub/dir/deep.bin")
    later = link.replace(
        f"expires={params['expires']}", f"expires={int(params['expires']) + 3600}"
    )
    # The first character: the last one has bits base64 decoding drops.
    flipped = ("A" if params["md5"][0] != "A" else "B") + params["md5"][1:]
    wrong_md5 = link.replace(params["md5"], flipped)
    wrong_secret = nginx_secure_link(
        "/files/report.pdf", secret=SECRET + "x", expires=int(params["expires"])
    )
    for url in (path, other_file, later, wrong_md5, wrong_secret):
        rv = http.request("GET", nginx_url + url)
        assert rv.status == 403, url
        assert rv.data != FILES["report.pdf"]
    # nginx resolves the dot-segments first: the app behind answers 404.
    escape = link.replace("/files/report.pdf", "/files/../secret.txt")
    rv = http.request("GET", nginx_url + escape)
    assert rv.status == 404
    assert b"TOP SECRET" not in rv.data


@needs_nginx
def test_name_that_is_not_utf8_on_disk(http: t.Any, nginx_url: str) -> None:
    """Surrogate escapes (os.fsdecode) stand for the raw bytes nginx hashes."""
    uri = os.fsdecode(b"/files/caf\xe9.txt")
    link = nginx_secure_link(uri, secret=SECRET, expires=datetime.timedelta(hours=1))
    assert link.startswith("/files/caf%E9.txt?")
    rv = http.request("GET", nginx_url + link)
    assert rv.status == 200
    assert rv.data == b"latin-1 name on disk"
    # The Python check hashes the same bytes.
    query = dict(urllib.parse.parse_qsl(link.partition("?")[2]))
    edge.verify_nginx_secure_link(
        b"/files/caf\xe9.txt", query["md5"], query["expires"], secret=SECRET
    )


@needs_nginx
def test_expiry_is_hashed_as_sent(
    http: t.Any, nginx_url: str, edge_root: pathlib.Path
) -> None:
    """A leading zero or other digits change the hash, in nginx and in Python."""
    link = _link("report.pdf")
    stamp = link.rpartition("expires=")[2]
    app = make_app(edge_root)
    for other in (
        "0" + stamp,
        stamp.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    ):
        changed = link.replace(
            f"expires={stamp}", f"expires={urllib.parse.quote(other)}"
        )
        assert http.request("GET", nginx_url + changed).status == 403
        with app.test_client().get(changed) as rv:
            assert rv.status_code == 403


@needs_nginx
def test_nginx_answers_410_to_an_expired_link(http: t.Any, nginx_url: str) -> None:
    link = _link("report.pdf", expires=int(time.time()) - 5)
    rv = http.request("GET", nginx_url + link)
    assert rv.status == 410
    assert rv.data != FILES["report.pdf"]


@needs_nginx
def test_nginx_reads_a_secret_with_spaces_and_punctuation(
    http: t.Any, nginx_url: str
) -> None:
    expires = datetime.timedelta(minutes=5)
    link = nginx_secure_link("/odd/report.pdf", secret=ODD_SECRET, expires=expires)
    rv = http.request("GET", nginx_url + link)
    assert rv.status == 200
    assert rv.data == FILES["report.pdf"]
    other = nginx_secure_link("/odd/report.pdf", secret=SECRET, expires=expires)
    assert http.request("GET", nginx_url + other).status == 403


@needs_nginx
def test_nginx_checks_the_bound_address(http: t.Any, nginx_url: str) -> None:
    expires = datetime.timedelta(minutes=5)
    mine = nginx_secure_link(
        "/bound/report.pdf", secret=SECRET, expires=expires, remote_addr="127.0.0.1"
    )
    theirs = nginx_secure_link(
        "/bound/report.pdf", secret=SECRET, expires=expires, remote_addr="192.0.2.1"
    )
    assert http.request("GET", nginx_url + mine).status == 200
    assert http.request("GET", nginx_url + theirs).status == 403


@needs_nginx
def test_nginx_secure_url_for_makes_links_nginx_accepts(
    http: t.Any, nginx_url: str, edge_root: pathlib.Path, app_seen: list[str]
) -> None:
    app = make_app(edge_root)
    before = len(app_seen)
    for name, content in FILES.items():
        with app.test_request_context():
            link = nginx_secure_url_for("files", path=name, expires_in=60)
        rv = http.request("GET", nginx_url + link)
        assert rv.status == 200, name
        assert rv.data == content
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        bound = nginx_secure_url_for("bound", path="report.pdf", remote_addr=True)
    assert http.request("GET", nginx_url + bound).status == 200
    assert len(app_seen) == before


# -- the same links checked by the app ---------------------------------------------


def test_app_checks_the_same_links(edge_root: pathlib.Path) -> None:
    """Where nginx does not answer first, the Flask view checks the link."""
    app = make_app(edge_root)
    with running_werkzeug(app) as base, urllib3.PoolManager(retries=False) as pool:
        with app.test_request_context():
            link = nginx_secure_url_for("files", path="été 2024.txt")
        rv = pool.request("GET", base + link)
        assert rv.status == 200
        assert rv.data == FILES["été 2024.txt"]
        assert pool.request("GET", base + link.replace("2024", "2025")).status == 403
        assert pool.request("GET", base + "/files/report.pdf").status == 403
        expired = _link("report.pdf", expires=int(time.time()) - 5)
        assert pool.request("GET", base + expired).status == 410
        tampered = expired.replace("expires=", "expires=9")
        assert pool.request("GET", base + tampered).status == 403


def test_nginx_secure_url_for_needs_a_long_secret(edge_root: pathlib.Path) -> None:
    app = make_app(edge_root)
    for value, match in ((None, "need DOWNLOAD_NGINX"), ("short", "at least 32")):
        app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = value
        with app.test_request_context(), pytest.raises(ConfigurationError, match=match):
            nginx_secure_url_for("files", path="report.pdf")


@pytest.mark.parametrize(
    "expires_in",
    [0, True, float("inf"), float("nan"), 1e300, datetime.timedelta(0)],
    ids=["zero", "bool", "inf", "nan", "past-year-9999", "timedelta"],
)
def test_nginx_secure_url_for_refuses_bad_lifetimes(
    edge_root: pathlib.Path, expires_in: t.Any
) -> None:
    app = make_app(edge_root)
    with (
        app.test_request_context(),
        pytest.raises(ConfigurationError, match="expires_in"),
    ):
        nginx_secure_url_for("files", path="report.pdf", expires_in=expires_in)


def test_nginx_secure_url_for_refuses_query_parameters(
    edge_root: pathlib.Path,
) -> None:
    app = make_app(edge_root)
    with app.test_request_context(), pytest.raises(ConfigurationError, match="query"):
        nginx_secure_url_for("files", path="report.pdf", download="1")


def test_nginx_secure_url_for_default_lifetime(edge_root: pathlib.Path) -> None:
    app = make_app(edge_root)
    app.config["DOWNLOAD_SIGNED_MAX_AGE"] = 3600  # read at FlaskDownload()
    with app.test_request_context():
        link = nginx_secure_url_for("files", path="report.pdf", _external=True)
    assert link.startswith("http://localhost/files/report.pdf?md5=")
    stamp = int(link.rpartition("expires=")[2])
    assert time.time() + 3590 < stamp <= time.time() + 3601


# -- CloudFront --------------------------------------------------------------------

crypto = pytest.importorskip("cryptography", reason="CloudFront needs [cdn]")
pytest.importorskip("botocore", reason="CloudFront needs [cdn]")

from cryptography.exceptions import InvalidSignature as BadRSA  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

CF_URL = "https://d111111abcdef8.cloudfront.net/albums/42/été.jpg"
# CF_URL as a client requests it, which is what is signed.
CF_RESOURCE = "https://d111111abcdef8.cloudfront.net/albums/42/%C3%A9t%C3%A9.jpg"
KEY_ID = "K2JCJMDEHXQW5F"


@pytest.fixture(scope="module")
def rsa_key() -> t.Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(rsa_key: t.Any) -> bytes:
    return t.cast(
        bytes,
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )


def _cf_b64decode(value: str) -> bytes:
    # CloudFront's URL-safe base64: '-' for '+', '_' for '=', '~' for '/'.
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


def _verify(rsa_key: t.Any, policy: bytes, signature: str) -> None:
    rsa_key.public_key().verify(
        _cf_b64decode(signature), policy, padding.PKCS1v15(), hashes.SHA1()
    )


def _query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


@pytest.mark.parametrize("key_form", ["pem-bytes", "pem-str", "loaded"])
def test_cloudfront_canned_url(rsa_key: t.Any, pem: bytes, key_form: str) -> None:
    key = {"pem-bytes": pem, "pem-str": pem.decode(), "loaded": rsa_key}[key_form]
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    url = cloudfront_signed_url(
        CF_URL, key_pair_id=KEY_ID, private_key=key, expires=expires
    )
    assert url.startswith(CF_RESOURCE + "?")
    params = _query(url)
    assert set(params) == {"Expires", "Signature", "Key-Pair-Id"}
    assert params["Expires"] == str(int(expires.timestamp()))
    assert params["Key-Pair-Id"] == KEY_ID
    # The canned policy CloudFront rebuilds from the URL and the expiry.
    canned = json.dumps(
        {
            "Statement": [
                {
                    "Resource": CF_RESOURCE,
                    "Condition": {
                        "DateLessThan": {"AWS:EpochTime": int(expires.timestamp())}
                    },
                }
            ]
        },
        separators=(",", ":"),
    ).encode()
    _verify(rsa_key, canned, params["Signature"])
    with pytest.raises(BadRSA):
        _verify(rsa_key, canned.replace(b"42", b"43"), params["Signature"])


def test_cloudfront_custom_policy_with_ip_and_start(rsa_key: t.Any) -> None:
    # Naive: UTC. Before the expiry (a link that starts after it ends never
    # works, and is refused).
    start = (
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    ).replace(tzinfo=None, microsecond=0)
    url = cloudfront_signed_url(
        CF_URL,
        key_pair_id=KEY_ID,
        private_key=rsa_key,
        expires=datetime.timedelta(hours=1),
        ip_address="203.0.113.9",
        not_before=start,
    )
    params = _query(url)
    assert set(params) == {"Policy", "Signature", "Key-Pair-Id"}
    policy = _cf_b64decode(params["Policy"])
    _verify(rsa_key, policy, params["Signature"])
    (statement,) = json.loads(policy)["Statement"]
    assert statement["Resource"] == CF_RESOURCE
    condition = statement["Condition"]
    assert condition["IpAddress"] == {"AWS:SourceIp": "203.0.113.9/32"}
    start_stamp = int(start.replace(tzinfo=datetime.timezone.utc).timestamp())
    assert condition["DateGreaterThan"] == {"AWS:EpochTime": start_stamp}
    end = condition["DateLessThan"]["AWS:EpochTime"]
    assert time.time() + 3590 < end <= time.time() + 3601


@pytest.mark.parametrize("late", [0, 1, 3600])
def test_cloudfront_not_before_after_expires_is_refused(
    rsa_key: t.Any, late: int
) -> None:
    """A link that starts when (or after) it ends never works: say so."""
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    with pytest.raises(ValueError, match="not_before"):
        cloudfront_signed_url(
            CF_URL,
            key_pair_id=KEY_ID,
            private_key=rsa_key,
            expires=expires,
            not_before=expires + datetime.timedelta(seconds=late),
        )


def test_cloudfront_ipv6_and_cidr(rsa_key: t.Any) -> None:
    for given, expected in (
        ("2001:db8::1", "2001:db8::1/128"),
        ("10.1.2.3/8", "10.0.0.0/8"),
    ):
        url = cloudfront_signed_url(
            CF_URL,
            key_pair_id=KEY_ID,
            private_key=rsa_key,
            expires=2_000_000_000,
            ip_address=given,
        )
        policy = json.loads(_cf_b64decode(_query(url)["Policy"]))
        condition = policy["Statement"][0]["Condition"]
        assert condition["IpAddress"] == {"AWS:SourceIp": expected}


def test_cloudfront_explicit_policy(rsa_key: t.Any) -> None:
    resource = "https://d111111abcdef8.cloudfront.net/albums/42/*"
    url = cloudfront_signed_url(
        CF_URL,
        key_pair_id=KEY_ID,
        private_key=rsa_key,
        expires=2_000_000_000,
        policy={"Statement": [{"Resource": resource}]},
    )
    params = _query(url)
    policy = _cf_b64decode(params["Policy"])
    _verify(rsa_key, policy, params["Signature"])
    assert json.loads(policy) == {
        "Statement": [
            {
                "Resource": resource,
                "Condition": {"DateLessThan": {"AWS:EpochTime": 2_000_000_000}},
            }
        ]
    }
    # JSON text is signed exactly as given.
    text = json.dumps(json.loads(policy), separators=(",", ":"))
    again = cloudfront_signed_url(
        CF_URL, key_pair_id=KEY_ID, private_key=rsa_key, expires=None, policy=text
    )
    assert _cf_b64decode(_query(again)["Policy"]) == text.encode()


def test_cloudfront_cookies_canned(rsa_key: t.Any) -> None:
    cookies = cloudfront_signed_cookies(
        CF_URL, key_pair_id=KEY_ID, private_key=rsa_key, expires=2_000_000_000
    )
    assert set(cookies) == {
        "CloudFront-Expires",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    }
    assert cookies["CloudFront-Expires"] == "2000000000"
    assert cookies["CloudFront-Key-Pair-Id"] == KEY_ID
    condition = {"DateLessThan": {"AWS:EpochTime": 2_000_000_000}}
    canned = {"Statement": [{"Resource": CF_RESOURCE, "Condition": condition}]}
    _verify(
        rsa_key,
        json.dumps(canned, separators=(",", ":")).encode(),
        cookies["CloudFront-Signature"],
    )


def test_cloudfront_cookies_for_a_folder_use_a_custom_policy(rsa_key: t.Any) -> None:
    folder = "https://d111111abcdef8.cloudfront.net/albums/42/*"
    cookies = cloudfront_signed_cookies(
        folder, key_pair_id=KEY_ID, private_key=rsa_key, expires=2_000_000_000
    )
    assert set(cookies) == {
        "CloudFront-Policy",
        "CloudFront-Signature",
        "CloudFront-Key-Pair-Id",
    }
    policy = _cf_b64decode(cookies["CloudFront-Policy"])
    _verify(rsa_key, policy, cookies["CloudFront-Signature"])
    (statement,) = json.loads(policy)["Statement"]
    assert statement["Resource"] == folder
    assert statement["Condition"] == {"DateLessThan": {"AWS:EpochTime": 2_000_000_000}}
    # Cookie values need no quoting: CloudFront's base64 has no = + /.
    assert all(re.fullmatch(r"[A-Za-z0-9_~-]+", v) for v in cookies.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"private_key": b"not a key"}, "PEM"),
        ({"key_pair_id": ""}, "key_pair_id"),
        ({"ip_address": "300.1.2.3"}, "ip_address"),
        ({"expires": None}, "expires"),
    ],
    ids=["bad-key", "no-key-id", "bad-ip", "no-expiry"],
)
def test_cloudfront_bad_arguments(
    rsa_key: t.Any, kwargs: dict[str, t.Any], match: str
) -> None:
    arguments = {"key_pair_id": KEY_ID, "private_key": rsa_key, "expires": 2e9}
    arguments.update(kwargs)
    with pytest.raises(ConfigurationError, match=match):
        cloudfront_signed_url(CF_URL, **arguments)


def test_public_names() -> None:
    import flask_download

    for name in (
        "nginx_secure_link",
        "cloudfront_signed_url",
        "cloudfront_signed_cookies",
    ):
        assert getattr(flask_download, name) is getattr(edge, name)


@pytest.mark.parametrize("secret", ["short", 12345, "x" * 40 + "$"], ids=repr)
def test_weak_secret_fails_at_init_app(secret: t.Any) -> None:
    app = Flask("weak")
    app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = secret
    with pytest.raises(ConfigurationError, match="secret|SECRET"):
        FlaskDownload(app)


def test_cloudfront_url_with_a_star_names_one_file(rsa_key: t.Any) -> None:
    """Outside review: a literal ``*`` from ``url_for`` became a wildcard in
    the custom policy's Resource, granting every matching file."""
    base = "https://d111111abcdef8.cloudfront.net/media/"
    url = cloudfront_signed_url(
        base + "user*/x.pdf",
        key_pair_id=KEY_ID,
        private_key=rsa_key,
        expires=datetime.timedelta(hours=1),
        ip_address="203.0.113.9",
    )
    assert url.startswith(base + "user%2A/x.pdf?")
    policy = _cf_b64decode(_query(url)["Policy"])
    _verify(rsa_key, policy, _query(url)["Signature"])
    (statement,) = json.loads(policy)["Statement"]
    assert statement["Resource"] == base + "user%2A/x.pdf"
    assert "*" not in statement["Resource"]


def test_cloudfront_url_is_signed_as_a_client_requests_it(rsa_key: t.Any) -> None:
    """A space or a non-ASCII letter is percent-encoded by the client: the
    canned policy is signed over that spelling (escapes kept)."""
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    base = "https://d111111abcdef8.cloudfront.net/"
    url = cloudfront_signed_url(
        base + "a b/ü.pdf?v=1 2&x=%41",
        key_pair_id=KEY_ID,
        private_key=rsa_key,
        expires=expires,
    )
    resource = base + "a%20b/%C3%BC.pdf?v=1%202&x=%41"
    assert url.startswith(resource + "&Expires=")
    canned = json.dumps(
        {
            "Statement": [
                {
                    "Resource": resource,
                    "Condition": {
                        "DateLessThan": {"AWS:EpochTime": int(expires.timestamp())}
                    },
                }
            ]
        },
        separators=(",", ":"),
    ).encode()
    _verify(rsa_key, canned, _query(url)["Signature"])


def test_cloudfront_cookies_keep_the_folder_wildcard(rsa_key: t.Any) -> None:
    cookies = cloudfront_signed_cookies(
        "https://d111111abcdef8.cloudfront.net/albums/4 2/*",
        key_pair_id=KEY_ID,
        private_key=rsa_key,
        expires=datetime.timedelta(hours=1),
    )
    policy = _cf_b64decode(cookies["CloudFront-Policy"])
    (statement,) = json.loads(policy)["Statement"]
    assert (
        statement["Resource"] == "https://d111111abcdef8.cloudfront.net/albums/4%202/*"
    )
