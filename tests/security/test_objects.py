"""Object views: ids the database cannot hold and rows of another owner.

``/objects/<int:id>`` serves the rows of the user named in ``?user=``
(alice by default) through ``get_query()``. An id past 2**63 is no row
(404), never an overflow (500); a row of another owner is answered exactly
like a missing one (404, not 403: no existence oracle).
"""

from __future__ import annotations

import pytest

from .conftest import LiveServer
from .conftest import require


@pytest.fixture(autouse=True)
def _objects(live: LiveServer) -> None:
    require(live, "objects")


@pytest.mark.parametrize(
    "target",
    [
        f"/objects/{2**63}",
        f"/objects/{2**63 + 1}",
        f"/objects/{2**64}",
        f"/objects/{10**40}",
        "/objects/" + "9" * 1000,
        f"/objects-signed/{-(2**63) - 1}",
        "/objects-signed/-1",
        "/objects-signed/-0",
        f"/objects-any/{2**63}",
        f"/objects-any/{-(2**63) - 1}",
        "/objects-any/abc",
        "/objects-any/1.0",
        "/objects-any/1e3",
        "/objects-any/0x1",
        "/objects-any/+1",
        "/objects-any/%d9%a1",
        "/objects-any/%c2%b9",
        "/objects-any/1%00",
        "/objects-any/%00",
        "/objects-any/1%20OR%201=1",
        "/objects-any/1;DROP%20TABLE%20document",
        "/objects-any/%27",
        "/objects-any/" + "9" * 1000,
        "/objects/999",
        "/objects/0",
        "/objects/3",
    ],
    ids=[
        "2**63",
        "2**63+1",
        "2**64",
        "10**40",
        "1000-digits",
        "signed-below-min",
        "signed-minus-one",
        "signed-minus-zero",
        "any-2**63",
        "any-below-min",
        "any-letters",
        "any-fraction",
        "any-exponent",
        "any-hex",
        "any-plus",
        "any-arabic-digit",
        "any-superscript-digit",
        "any-nul-suffix",
        "any-nul",
        "any-sql-or",
        "any-sql-drop",
        "any-quote",
        "any-1000-digits",
        "missing",
        "zero",
        "null-file-column",
    ],
)
def test_ids_without_a_row_are_404(live: LiveServer, target: str) -> None:
    response = live.request(target)
    if response.status in (301, 302, 307, 308):
        response = live.follow(response)
    assert response.status == 404, response


def test_row_of_another_owner_is_exactly_like_a_missing_one(live: LiveServer) -> None:
    other = live.request("/objects/2")
    missing = live.request("/objects/999")
    assert other.status == missing.status == 404
    assert other.body == missing.body
    assert sorted(n.lower() for n, _ in other.headers) == sorted(
        n.lower() for n, _ in missing.headers
    )


@pytest.mark.parametrize(
    ("headers", "method"),
    [
        ([], "HEAD"),
        ([("If-None-Match", "*")], "GET"),
        ([("If-Match", "*")], "GET"),
        ([("If-Modified-Since", "Fri, 31 Dec 9999 23:59:59 GMT")], "GET"),
        ([("Range", "bytes=0-0")], "GET"),
    ],
    ids=["head", "if-none-match-star", "if-match-star", "if-modified-since", "range"],
)
def test_no_header_reveals_another_owners_row(
    live: LiveServer, headers: list[tuple[str, str]], method: str
) -> None:
    """304, 412 or 206 would tell the row exists: always 404 first."""
    response = live.request("/objects/2", headers, method=method)
    assert response.status == 404, response


def test_the_owner_gets_the_row(live: LiveServer) -> None:
    """The control: the row exists and its owner downloads it."""
    response = live.request("/objects/2?user=bob")
    assert response.status == 200
    assert response.body == b"Hello, world!\n"


def test_owner_spoofing_in_the_query_cannot_widen_the_query(live: LiveServer) -> None:
    for query in ("?user=bob%00", "?user=alice&user=bob", "?user=%27%20OR%201=1--"):
        response = live.request("/objects/2" + query)
        assert response.status == 404, (query, response)


def test_per_user_downloads_are_private_on_200_and_304(live: LiveServer) -> None:
    response = live.request("/objects/1")
    assert response.status == 200
    assert response.get_all("X-Content-Type-Options") == ["nosniff"]
    assert (response.header("Cache-Control") or "").startswith("private")
    etag = response.header("ETag") or ""
    revalidated = live.request("/objects/1", [("If-None-Match", etag)])
    assert revalidated.status == 304
    assert (revalidated.header("Cache-Control") or "").startswith("private")
