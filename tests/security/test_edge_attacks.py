"""Attacks on nginx secure links (issue 17), against real nginx and the app.

A link signed for one file must never fetch another, whatever the
encoding of the path (``%2F``, double encoding, dot segments, ``//``,
backslashes, NUL): nginx hashes its decoded and normalised ``$uri``, and
``nginx_secure_link_required`` must agree with it, so each variant either
serves the signed file or is refused.
"""

from __future__ import annotations

import typing as t
import urllib.parse

import pytest

from tests.test_edge import _link
from tests.test_edge import app_port  # noqa: F401 - fixture
from tests.test_edge import app_seen  # noqa: F401 - fixture
from tests.test_edge import edge_root  # noqa: F401 - fixture
from tests.test_edge import FILES
from tests.test_edge import nginx_url  # noqa: F401 - fixture

SIGNED = "sub/dir/deep.bin"
#: Paths that are another file (or the secret next to the root) in some
#: reading of their encoding, each given the signed link's query string.
REPOINTED = [
    "/files/report.pdf",
    "/files/sub/dir/../../report.pdf",
    "/files/sub/dir/%2e%2e/%2e%2e/report.pdf",
    "/files/sub%2fdir%2f..%2f..%2freport.pdf",
    "/files/sub/dir/deep.bin/../../../report.pdf",
    "/files/sub/dir/deep.bin%2f..%2f..%2f..%2freport.pdf",
    "/files/sub/dir/%252e%252e/%252e%252e/report.pdf",
    "/files/sub/dir/..%5c..%5creport.pdf",
    "/files/sub/dir/deep.bin%00/../../../report.pdf",
    "/files/../secret.txt",
    "/files/sub/dir/../../../secret.txt",
    "//files/report.pdf",
    "/files//sub/dir/../../report.pdf",
]
#: Spellings of the signed path itself: served as the signed file, or refused.
SAME = [
    "/files/sub/dir/deep.bin",
    "/files/sub%2Fdir%2Fdeep.bin",
    "/files/sub/dir/./deep.bin",
    "/files//sub/dir/deep.bin",
    "/files/sub/%64ir/deep.bin",
]


@pytest.fixture(params=["nginx", "app"])
def base(request: pytest.FixtureRequest) -> str:
    if request.param == "nginx":
        return t.cast(str, request.getfixturevalue("nginx_url"))
    return f"http://127.0.0.1:{request.getfixturevalue('app_port')}"


def _query() -> str:
    return _link(SIGNED).partition("?")[2]


@pytest.mark.parametrize("path", REPOINTED)
def test_a_link_never_fetches_another_file(http: t.Any, base: str, path: str) -> None:  # noqa: F811
    rv = http.request("GET", f"{base}{path}?{_query()}", redirect=False)
    if rv.status == 308:
        # Werkzeug merging "//": the redirect, followed, is refused too.
        location = rv.headers["Location"]
        rv = http.request("GET", urllib.parse.urljoin(base + path, location))
    assert rv.status in (400, 403, 404), (path, rv.status)
    assert rv.data != FILES["report.pdf"]
    assert b"TOP SECRET" not in rv.data


@pytest.mark.parametrize("path", SAME)
def test_spellings_of_the_signed_path(http: t.Any, base: str, path: str) -> None:  # noqa: F811
    rv = http.request("GET", f"{base}{path}?{_query()}", redirect=False)
    if rv.status == 200:
        assert rv.data == FILES[SIGNED]
    else:
        assert rv.status in (301, 308, 400, 403, 404), (path, rv.status)


@pytest.mark.parametrize(
    "expires",
    ["+9999999999", " 9999999999", "9999999999 ", "0x2540BE3FF", "9" * 13, "-1", ""],
)
def test_odd_expiry_values_are_refused(
    http: t.Any,  # noqa: F811
    base: str,
    expires: str,
) -> None:
    query = dict(urllib.parse.parse_qsl(_query()))
    query["expires"] = expires
    url = f"{base}/files/{SIGNED}?" + urllib.parse.urlencode(query)
    rv = http.request("GET", url, redirect=False)
    assert rv.status in (403, 410), (expires, rv.status)
    assert rv.data != FILES[SIGNED]
