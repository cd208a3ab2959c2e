"""DESIGN §9: edge-verified links, and presigned redirects on HEAD."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import typing as t
import urllib.parse

import pytest
from flask import Flask

from flask_download import StorageDownloadView
from flask_download.edge import cloudfront_signed_cookies
from flask_download.edge import cloudfront_signed_url
from flask_download.edge import nginx_secure_link

SECRET = "a-long-random-contract-secret"


def _nginx_md5(text: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(text).digest()).decode().rstrip("=")


def _split(link: str) -> tuple[str, dict[str, str]]:
    path, _, query = link.partition("?")
    return path, dict(urllib.parse.parse_qsl(query))


def test_nginx_secure_link_formula() -> None:
    link = nginx_secure_link("/files/a.pdf", secret=SECRET, expires=2_000_000_000)
    path, query = _split(link)
    assert path == "/files/a.pdf"
    assert query["expires"] == "2000000000"
    expected = _nginx_md5(f"2000000000/files/a.pdf {SECRET}".encode())
    assert query["md5"] == expected
    assert link == f"/files/a.pdf?md5={expected}&expires=2000000000"


def test_nginx_secure_link_remote_addr() -> None:
    link = nginx_secure_link(
        "/f.bin", secret=SECRET, expires=2_000_000_000, remote_addr="203.0.113.7"
    )
    _, query = _split(link)
    expected = _nginx_md5(f"2000000000/f.bin203.0.113.7 {SECRET}".encode())
    assert query["md5"] == expected


def test_nginx_secure_link_hashes_decoded_path() -> None:
    uri = "/files/été ?#.pdf"
    link = nginx_secure_link(uri, secret=SECRET, expires=2_000_000_000)
    path, query = _split(link)
    assert path == "/files/%C3%A9t%C3%A9%20%3F%23.pdf"
    assert urllib.parse.unquote(path) == uri
    expected = _nginx_md5(f"2000000000{uri} {SECRET}".encode())
    assert query["md5"] == expected


def test_nginx_secure_link_expires_forms() -> None:
    when = datetime.datetime(2033, 5, 18, 3, 33, 20, tzinfo=datetime.timezone.utc)
    by_datetime = nginx_secure_link("/a", secret=SECRET, expires=when)
    assert _split(by_datetime)[1]["expires"] == "2000000000"
    delta = nginx_secure_link("/a", secret=SECRET, expires=datetime.timedelta(hours=1))
    stamp = int(_split(delta)[1]["expires"])
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    assert now + 3590 <= stamp <= now + 3610


@pytest.mark.parametrize("uri", ["/a/../etc/passwd", "relative", "/a/./b", "/a\x00"])
def test_nginx_secure_link_refuses_non_normal_paths(uri: str) -> None:
    with pytest.raises(ValueError):
        nginx_secure_link(uri, secret=SECRET, expires=2_000_000_000)


# -- CloudFront ----------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> t.Any:
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    pytest.importorskip("botocore")
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cf_b64decode(value: str) -> bytes:
    table = str.maketrans("-_~", "+=/")
    return base64.b64decode(value.translate(table))


def _verify(rsa_key: t.Any, message: bytes, signature: str) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    rsa_key.public_key().verify(
        _cf_b64decode(signature), message, padding.PKCS1v15(), hashes.SHA1()
    )


def test_cloudfront_canned_url(rsa_key: t.Any) -> None:
    url = "https://d111.cloudfront.net/a b.pdf"
    signed = cloudfront_signed_url(
        url, key_pair_id="K2JCJMDEHXQW5F", private_key=rsa_key, expires=2_000_000_000
    )
    parts = urllib.parse.urlsplit(signed)
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert query["Expires"] == "2000000000"
    assert query["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    resource = signed.partition("?")[0]
    canned = (
        '{"Statement":[{"Resource":"'
        + resource
        + '","Condition":{"DateLessThan":{"AWS:EpochTime":2000000000}}}]}'
    )
    _verify(rsa_key, canned.encode(), query["Signature"])


def test_cloudfront_custom_policy(rsa_key: t.Any) -> None:
    signed = cloudfront_signed_url(
        "https://d111.cloudfront.net/x.bin",
        key_pair_id="K1",
        private_key=rsa_key,
        expires=2_000_000_000,
        policy={"Statement": [{"Resource": "https://d111.cloudfront.net/*"}]},
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(signed).query))
    assert "Expires" not in query
    policy = _cf_b64decode(query["Policy"])
    statement = json.loads(policy)["Statement"][0]
    assert statement["Resource"] == "https://d111.cloudfront.net/*"
    assert statement["Condition"]["DateLessThan"]["AWS:EpochTime"] == 2_000_000_000
    _verify(rsa_key, policy, query["Signature"])


def test_cloudfront_cookies(rsa_key: t.Any) -> None:
    cookies = cloudfront_signed_cookies(
        "https://d111.cloudfront.net/albums/*",
        key_pair_id="K1",
        private_key=rsa_key,
        expires=2_000_000_000,
    )
    assert cookies["CloudFront-Key-Pair-Id"] == "K1"
    policy = _cf_b64decode(cookies["CloudFront-Policy"])
    _verify(rsa_key, policy, cookies["CloudFront-Signature"])


# -- presigned redirects and HEAD ----------------------------------------------


def _signing_storage(download_storage: t.Any) -> t.Any:
    calls: list[dict[str, t.Any]] = []

    class Signing(type(download_storage)):  # type: ignore[misc]
        def sign(self, path: str, expiration: int = 100, **kwargs: t.Any) -> str:
            calls.append({"path": path, "expiration": expiration, **kwargs})
            method = kwargs.get("method", "GET")
            return f"https://signed.example/{path.lstrip('/')}?for={method}"

    fs = Signing()
    fs.store = download_storage.store
    fs.pseudo_dirs = download_storage.pseudo_dirs
    fs.pipe("/bucket/a.txt", b"A")
    fs.calls = calls
    return fs


def test_presigned_redirect_get_and_head(app: Flask, download_storage: t.Any) -> None:
    fs = _signing_storage(download_storage)
    app.add_url_rule(
        "/s/<path:path>",
        view_func=StorageDownloadView.as_view(
            "s", storage=fs, redirect=True, redirect_expires=60
        ),
    )
    client = app.test_client()
    with client.get("/s/bucket/a.txt") as rv:
        assert rv.status_code == 302
        get_location = rv.headers["Location"]
        assert get_location.startswith("https://signed.example/")
    assert fs.calls and fs.calls[-1]["expiration"] == 60
    with client.head("/s/bucket/a.txt") as rv:
        # Never the URL signed for GET.
        assert rv.headers.get("Location") != get_location
        assert rv.status_code in (200, 302, 307)
        if rv.status_code == 200:
            assert rv.headers["Content-Length"] == "1"


def test_nginx_secure_link_encodes_control_characters() -> None:
    link = nginx_secure_link("/a\r\nb c", secret=SECRET, expires=2_000_000_000)
    assert link.startswith("/a%0D%0Ab%20c?md5=")
    assert link.isascii() and link.isprintable()
