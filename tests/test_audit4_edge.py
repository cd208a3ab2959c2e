"""Audit 4: edge-verified links against the real nginx, and CloudFront.

``nginx_secure_link_required`` stands in for nginx where nginx does not
answer first, so it must agree with nginx on every request: the same links
served, the same ones refused, 403 and 410 alike. The nginx location is the
one documented (DESIGN §9), read from docs/edge.rst.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import datetime
import json
import os
import pathlib
import socket
import sys
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

from flask_download import ConfigurationError
from flask_download import edge
from flask_download.edge import nginx_secure_link
from flask_download.edge import nginx_secure_url_for
from tests.test_edge import _documented_location
from tests.test_edge import make_app
from tests.test_edge import SECRET

urllib3 = pytest.importorskip("urllib3")

CONTENT = b"the signed file\n"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = _has_ipv6_loopback()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("audit4_edge") / "files"
    root.mkdir()
    (root / "a.txt").write_bytes(CONTENT)
    return root


@pytest.fixture(scope="module")
def app_url(root: pathlib.Path) -> cabc.Iterator[str]:
    """The Flask app checking the same links (tests/test_edge.py's app)."""
    with running_werkzeug(make_app(root)) as url:
        yield url


@pytest.fixture(scope="module")
def nginx(
    root: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> cabc.Iterator[int]:
    """nginx with the documented location, the same bound to
    ``$remote_addr``, and ``/addr`` answering nginx's ``$remote_addr`` for
    the address given in ``X-Real-IP`` (to see how nginx writes it)."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("needs nginx")
    tmp = tmp_path_factory.mktemp("audit4_nginx")
    port = free_port()
    location = _documented_location().replace("REPLACE-WITH-THE-SECRET", SECRET)
    location = location.replace("/srv/files/", f"{root}/")
    bound = location.replace("location /files/", "location /bound/")
    bound = bound.replace("$uri ", "$uri$remote_addr ")
    assert "$remote_addr" in bound
    listen = f"listen 127.0.0.1:{port};"
    if IPV6:
        listen += f"\n        listen [::1]:{port};"
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF_HEAD.format(tmp=tmp)
        + f"""\
    default_type application/octet-stream;
    server {{
        {listen}
        # Read at the start of the request, before any location.
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;
{textwrap.indent(location, " " * 8)}
{textwrap.indent(bound, " " * 8)}
        location = /addr {{
            return 200 "$remote_addr";
        }}
    }}
}}
"""
    )
    with running_nginx(conf, port):
        yield port


@pytest.fixture(scope="module")
def pool() -> cabc.Iterator[t.Any]:
    manager = urllib3.PoolManager(retries=False, timeout=10.0)
    try:
        yield manager
    finally:
        manager.clear()


def _status(pool: t.Any, url: str) -> int:
    rv = pool.request("GET", url, redirect=False)
    if rv.status == 200:
        assert rv.data == CONTENT
    return int(rv.status)


def _md5_for(expires: str, uri: str = "/files/a.txt") -> str:
    """A valid hash for ``expires`` spelled exactly so (nginx hashes it as
    sent), made with nginx's recipe."""
    return edge._nginx_md5(expires, uri.encode(), None, SECRET.encode())


VALID = "2000000000"


def _both_agree(pool: t.Any, nginx: int, app_url: str, query: str) -> int:
    nginx_status = _status(pool, f"http://127.0.0.1:{nginx}/files/a.txt?{query}")
    app_status = _status(pool, f"{app_url}/files/a.txt?{query}")
    assert (nginx_status, app_status) == (nginx_status, nginx_status), query
    return nginx_status


# -- the app answers what nginx answers ------------------------------------------

_MD5 = _md5_for(VALID)
# The 22nd character keeps 2 of its 6 bits: nginx drops the other 4.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LAST = _ALPHABET.index(_MD5[-1])
_SAME_BITS = _ALPHABET[(_LAST & ~15) | ((_LAST + 1) & 15)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"md5={_MD5}&expires={VALID}", 200),
        # $arg_ names are found in any case; the first of two is used.
        (f"MD5={_MD5}&Expires={VALID}", 200),
        (f"md5={_MD5}&expires={VALID}&md5=AAAA&expires=1", 200),
        (f"md5=AAAA&md5={_MD5}&expires={VALID}", 403),
        # $arg_ values are not percent-decoded, and only "&" separates.
        (f"md5={_MD5}&expires=%32{VALID[1:]}", 403),
        (f"md5=%{ord(_MD5[0]):02X}{_MD5[1:]}&expires={VALID}", 403),
        (f"md5={_MD5};expires={VALID}", 403),
        # Too long, standard base64, missing parts.
        (f"md5={_MD5}AAA&expires={VALID}", 403),
        (f"md5={_MD5.replace('-', '+').replace('_', '/')}&expires={VALID}", 403),
        (f"md5={_MD5}", 403),
        (f"expires={VALID}", 403),
    ],
    ids=[
        "plain",
        "upper-case-names",
        "first-of-two-valid",
        "first-of-two-invalid",
        "encoded-expiry",
        "encoded-md5",
        "semicolon",
        "too-long",
        "standard-base64",
        "no-expiry",
        "no-md5",
    ],
)
def test_the_app_reads_md5_and_expires_as_nginx_does(
    pool: t.Any, nginx: int, app_url: str, query: str, expected: int
) -> None:
    assert _both_agree(pool, nginx, app_url, query) == expected


@pytest.mark.parametrize(
    "md5",
    [f"{_MD5}==", f"{_MD5}=x", f"{_MD5[:-1]}{_SAME_BITS}"],
    ids=["padded", "after-padding", "unused-bits"],
)
def test_the_app_refuses_md5_spellings_no_link_has(
    pool: t.Any, nginx: int, app_url: str, md5: str
) -> None:
    """nginx's decoder takes padding and ignores the unused bits of the last
    character, so a link with its last character changed passes nginx one
    time in four. nginx_secure_link never writes those spellings: the
    app-side check refuses them (403), stricter than nginx."""
    query = f"md5={md5}&expires={VALID}"
    assert _status(pool, f"http://127.0.0.1:{nginx}/files/a.txt?{query}") == 200
    assert _status(pool, f"{app_url}/files/a.txt?{query}") == 403


@pytest.mark.parametrize("expires", ["0", "00", "0000000000"])
def test_an_expiry_of_zero_is_403_not_410(
    pool: t.Any, nginx: int, app_url: str, expires: str
) -> None:
    """nginx treats an expiry it reads as 0 as no link at all (403)."""
    query = f"md5={_md5_for(expires)}&expires={expires}"
    assert _both_agree(pool, nginx, app_url, query) == 403


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("0" + VALID, 200),  # leading zeros: hashed as sent
        ("1", 410),
        (str(int(time.time()) - 5), 410),
        ("10000000000000", 200),  # past year 9999, still a time_t
        (str(2**63 - 1), 200),
        (str(2**63), 403),  # overflows time_t
        ("0" * 40 + VALID, 200),
    ],
    ids=["leading-zero", "one", "past", "13-digits", "max-time_t", "overflow", "zeros"],
)
def test_expiry_values_as_nginx_reads_them(
    pool: t.Any, nginx: int, app_url: str, expires: str, expected: int
) -> None:
    query = f"md5={_md5_for(expires)}&expires={expires}"
    assert _both_agree(pool, nginx, app_url, query) == expected


@pytest.mark.parametrize(
    "expires",
    [
        0,
        0.5,
        -1,
        float("inf"),
        float("nan"),
        10**13,
        datetime.datetime(1969, 12, 31),
        datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc),
    ],
    ids=["zero", "half", "negative", "inf", "nan", "13-digits", "1969", "year-1"],
)
def test_expiries_no_link_can_carry_are_refused(expires: t.Any) -> None:
    """nginx refuses 0 (403, never 410); a negative or non-finite value, or
    one past the year 9999, is a mistake, not a link."""
    with pytest.raises(ValueError, match="expires"):
        nginx_secure_link("/files/a.txt", secret=SECRET, expires=expires)


def test_expiry_limits_that_work() -> None:
    link = nginx_secure_link("/f", secret=SECRET, expires=1)
    assert link.endswith("&expires=1")
    end = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    assert nginx_secure_link("/f", secret=SECRET, expires=end).endswith(
        "&expires=253402300799"
    )


# -- addresses as nginx writes $remote_addr ---------------------------------------

ADDRESSES = [
    "127.0.0.1",
    "::1",
    "0:0:0:0:0:0:0:1",
    "2001:DB8::1",
    "2001:0db8:0000:0000:0001:0000:0000:0001",
    "2001:db8:0:1:0:0:0:1",
    "2001:db8:0:0:1:0:0:1",
    "2001:db8::1:0",
    "1:0:2:0:3:0:4:0",
    "fe80::1",
    "::",
    "::ffff:192.0.2.7",
    "::ffff:c000:207",
    "::192.0.2.7",
    "::102",
    "::1:2",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_addresses_are_written_as_nginx_writes_remote_addr(
    pool: t.Any, nginx: int, address: str
) -> None:
    rv = pool.request(
        "GET", f"http://127.0.0.1:{nginx}/addr", headers={"X-Real-IP": address}
    )
    assert rv.status == 200
    assert edge._nginx_address(address) == rv.data.decode()


@pytest.mark.skipif(not IPV6, reason="needs an IPv6 loopback")
@pytest.mark.parametrize("address", ["::1", "0:0:0:0:0:0:0:1", "0::0001"])
def test_a_link_bound_to_an_ipv6_client(
    pool: t.Any, nginx: int, root: pathlib.Path, address: str
) -> None:
    expires = datetime.timedelta(minutes=5)
    link = nginx_secure_link(
        "/bound/a.txt", secret=SECRET, expires=expires, remote_addr=address
    )
    assert _status(pool, f"http://[::1]:{nginx}{link}") == 200
    # The app behind (test client: any REMOTE_ADDR) checks it the same way.
    app = make_app(root)
    with app.test_client() as client:
        for remote, status in (("::1", 200), ("::2", 403)):
            with client.get(link, environ_base={"REMOTE_ADDR": remote}) as rv:
                assert rv.status_code == status, remote
    other = nginx_secure_link(
        "/bound/a.txt", secret=SECRET, expires=expires, remote_addr="::2"
    )
    assert _status(pool, f"http://[::1]:{nginx}{other}") == 403


def test_an_address_that_is_not_ip_is_hashed_as_given() -> None:
    """nginx's $remote_addr of a client on a UNIX socket is "unix:"."""
    assert edge._nginx_address("unix:") == "unix:"
    link = nginx_secure_link("/f", secret=SECRET, expires=2, remote_addr="unix:")
    md5 = urllib.parse.parse_qs(link.partition("?")[2])["md5"][0]
    assert md5 == edge._nginx_md5("2", b"/f", "unix:", SECRET.encode())


def test_nginx_secure_url_for_binds_the_request_address_as_nginx_writes_it(
    root: pathlib.Path,
) -> None:
    app = make_app(root)
    environ = {"REMOTE_ADDR": "0:0:0:0:0:0:0:1"}
    with app.test_request_context(environ_base=environ):
        link = nginx_secure_url_for("bound", path="a.txt", remote_addr=True)
    expected = nginx_secure_link(
        "/bound/a.txt",
        secret=SECRET,
        expires=int(link.rpartition("expires=")[2]),
        remote_addr="::1",
    )
    assert link == expected


def test_nginx_secure_link_required_on_a_view_class(root: pathlib.Path) -> None:
    from flask import Flask
    from flask.views import MethodView

    from flask_download.edge import nginx_secure_link_required

    class Files(MethodView):
        def get(self, name: str) -> str:
            return f"file {name}"

    app = Flask("audit4_class")
    app.config["DOWNLOAD_NGINX_SECURE_LINK_SECRET"] = SECRET
    app.add_url_rule(
        "/files/<name>", view_func=nginx_secure_link_required(Files).as_view("files")
    )
    bound = nginx_secure_link_required(remote_addr=True)(Files)
    app.add_url_rule("/bound/<name>", view_func=bound.as_view("bound"))
    app.add_url_rule("/open/<name>", view_func=Files.as_view("open"))
    client = app.test_client()
    link = nginx_secure_link("/files/a.txt", secret=SECRET, expires=2e9)
    assert client.get(link).data == b"file a.txt"
    assert client.get("/files/a.txt").status_code == 403
    assert client.get("/open/a.txt").status_code == 200  # Files is unchanged
    mine = nginx_secure_link(
        "/bound/a.txt", secret=SECRET, expires=2e9, remote_addr="192.0.2.1"
    )
    assert (
        client.get(mine, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200
    )
    assert (
        client.get(mine, environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 403
    )
    with pytest.raises(TypeError, match="View"):
        nginx_secure_link_required(type("NotAView", (), {}))


# -- CloudFront ------------------------------------------------------------------

try:
    import botocore.signers  # noqa: F401
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric import rsa
except ImportError:  # the nginx tests above still run without [cdn]
    HAS_CDN = False
else:
    HAS_CDN = True

from flask_download.edge import cloudfront_signed_cookies  # noqa: E402
from flask_download.edge import cloudfront_signed_url  # noqa: E402

needs_cdn = pytest.mark.skipif(not HAS_CDN, reason="CloudFront needs [cdn]")

KEY_ID = "K2JCJMDEHXQW5F"
BASE = "https://d111111abcdef8.cloudfront.net/"


@pytest.fixture(scope="module")
def key() -> t.Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(value: str) -> bytes:
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


def _params(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def _verify(key: t.Any, policy: bytes, signature: str) -> None:
    key.public_key().verify(_b64(signature), policy, padding.PKCS1v15(), hashes.SHA1())


def _canned(resource: str, expires: int) -> bytes:
    statement = {
        "Resource": resource,
        "Condition": {"DateLessThan": {"AWS:EpochTime": expires}},
    }
    return json.dumps({"Statement": [statement]}, separators=(",", ":")).encode()


@needs_cdn
def test_cloudfront_fragment_stays_out_of_the_signature(key: t.Any) -> None:
    """``#page=2`` is never sent to CloudFront: the query goes before it."""
    url = cloudfront_signed_url(
        BASE + "doc.pdf#page=2", key_pair_id=KEY_ID, private_key=key, expires=2e9
    )
    signed, _, fragment = url.partition("#")
    assert fragment == "page=2"
    assert signed.startswith(BASE + "doc.pdf?Expires=2000000000&")
    _verify(key, _canned(BASE + "doc.pdf", 2_000_000_000), _params(signed)["Signature"])
    cookies = cloudfront_signed_cookies(
        BASE + "doc.pdf#page=2", key_pair_id=KEY_ID, private_key=key, expires=2e9
    )
    _verify(
        key, _canned(BASE + "doc.pdf", 2_000_000_000), cookies["CloudFront-Signature"]
    )


@needs_cdn
def test_cloudfront_percent_that_starts_no_escape(key: t.Any) -> None:
    """``100% sure.pdf``: a client sends ``%25``; an escape stays as it is."""
    url = cloudfront_signed_url(
        BASE + "100% sure%20now.pdf?q=5%&r=%41",
        key_pair_id=KEY_ID,
        private_key=key,
        expires=2e9,
    )
    resource = BASE + "100%25%20sure%20now.pdf?q=5%25&r=%41"
    assert url.startswith(resource + "&Expires=2000000000&")
    _verify(key, _canned(resource, 2_000_000_000), _params(url)["Signature"])


@needs_cdn
def test_cloudfront_policy_without_resource_names_the_url(key: t.Any) -> None:
    """A custom policy with no Resource would open every file the key is
    trusted for: the signed URL's own resource is filled in."""
    url = cloudfront_signed_url(
        BASE + "a b.pdf",
        key_pair_id=KEY_ID,
        private_key=key,
        expires=2e9,
        policy={"Statement": [{"Condition": {"IpAddress": {"AWS:SourceIp": "::1"}}}]},
    )
    policy = _b64(_params(url)["Policy"])
    _verify(key, policy, _params(url)["Signature"])
    (statement,) = json.loads(policy)["Statement"]
    assert statement["Resource"] == BASE + "a%20b.pdf"
    assert statement["Condition"]["DateLessThan"] == {"AWS:EpochTime": 2_000_000_000}
    assert b" " not in policy  # no whitespace in the signed JSON


@needs_cdn
@pytest.mark.parametrize(
    "policy",
    [
        {"Statement": []},
        {"Statement": [{"Resource": BASE + "a"}, {"Resource": BASE + "b"}]},
        {"Statement": ["not a statement"]},
        {"Statement": [{"Resource": BASE + "a", "Condition": ["x"]}]},
    ],
    ids=["none", "two", "not-a-mapping", "bad-condition"],
)
def test_cloudfront_policy_needs_exactly_one_statement(
    key: t.Any, policy: dict[str, t.Any]
) -> None:
    """CloudFront refuses a policy with several statements on every request."""
    for sign in (cloudfront_signed_url, cloudfront_signed_cookies):
        with pytest.raises(ConfigurationError, match="Statement|Condition"):
            sign(
                BASE + "a",
                key_pair_id=KEY_ID,
                private_key=key,
                expires=2e9,
                policy=policy,
            )


@needs_cdn
@pytest.mark.parametrize(
    "expires",
    [0, float("inf"), float("nan"), 10**13, datetime.datetime(1969, 12, 31)],
    ids=["zero", "inf", "nan", "past-9999", "1969"],
)
def test_cloudfront_bad_expiry_is_a_value_error(key: t.Any, expires: t.Any) -> None:
    for sign in (cloudfront_signed_url, cloudfront_signed_cookies):
        with pytest.raises(ValueError, match="expires"):
            sign(BASE + "a", key_pair_id=KEY_ID, private_key=key, expires=expires)


@needs_cdn
@pytest.mark.parametrize(
    "module",
    [
        "botocore.signers",
        "cryptography.hazmat.primitives.serialization",
        "cryptography.hazmat.primitives.asymmetric.padding",
    ],
)
def test_cloudfront_without_the_extra_names_it(
    key: t.Any, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"Flask-Download\[cdn\]"):
        cloudfront_signed_url(
            BASE + "a", key_pair_id=KEY_ID, private_key=key, expires=2e9
        )
