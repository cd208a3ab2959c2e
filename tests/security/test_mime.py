"""Active content: ``nosniff`` always, HTML and SVG inline only on request.

A download of an uploaded ``.html`` or ``.svg`` shown inline runs its
scripts in the site's origin (stored XSS). ``PathDownloadView`` sends every
file as an attachment unless the view says ``attachment=False``, and every
download carries ``X-Content-Type-Options: nosniff`` so that no browser
second-guesses the type.
"""

from __future__ import annotations

import pytest

from .conftest import LiveServer

#: Files under the root -> the media type they go out with.
FILES = {
    "page.html": "text/html; charset=utf-8",
    "image.svg": "image/svg+xml",
    "page.xhtml": "application/xhtml+xml",
    "script.js": None,  # text/javascript or application/javascript
    "data.xml": None,  # text/xml or application/xml
    "noext": "application/octet-stream",
    "hello.txt": "text/plain; charset=utf-8",
    "data.bin": "application/octet-stream",
    "archive.tar.gz": "application/gzip",
}
ACTIVE = ("page.html", "image.svg", "page.xhtml", "script.js", "data.xml", "noext")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("name", FILES.keys(), ids=FILES.keys())
def test_every_download_is_nosniff_attachment(
    live: LiveServer, name: str, method: str
) -> None:
    response = live.request(f"/files/{name}", method=method)
    assert response.status == 200
    assert response.get_all("X-Content-Type-Options") == ["nosniff"]
    disposition = response.header("Content-Disposition") or ""
    assert disposition.startswith("attachment;"), disposition
    expected = FILES[name]
    if expected is not None:
        assert response.header("Content-Type") == expected


@pytest.mark.parametrize("name", ACTIVE, ids=ACTIVE)
def test_active_content_is_inline_only_when_the_view_says_so(
    live: LiveServer, name: str
) -> None:
    default = live.request(f"/files/{name}")
    assert (default.header("Content-Disposition") or "").startswith("attachment")
    inline = live.request(f"/inline/{name}")
    assert (inline.header("Content-Disposition") or "").startswith("inline")
    assert inline.get_all("X-Content-Type-Options") == ["nosniff"]
    assert inline.body == default.body


@pytest.mark.parametrize(
    "headers",
    [
        [("Range", "bytes=0-3")],
        [("Range", "bytes=0-1,5-6")],
        [("Accept", "text/html")],
        [("X-Content-Type-Options", "sniff")],
        [("Content-Type", "text/html")],
    ],
    ids=["range", "multipart", "accept-html", "client-sniff", "client-type"],
)
def test_client_headers_do_not_change_disposition_or_nosniff(
    live: LiveServer, headers: list[tuple[str, str]]
) -> None:
    response = live.request("/files/page.html", headers)
    assert response.status in (200, 206)
    assert (response.header("Content-Disposition") or "").startswith("attachment")
    assert response.get_all("X-Content-Type-Options") == ["nosniff"]


def test_virtual_html_is_an_attachment_by_default(live: LiveServer) -> None:
    response = live.request("/virtual.html")
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    assert (response.header("Content-Disposition") or "").startswith("attachment")
    assert response.get_all("X-Content-Type-Options") == ["nosniff"]


@pytest.mark.parametrize(
    "query",
    ["page.html", "x.svg", "a.txt%00.html", "a.html%0d%0aContent-Type:%20text/html"],
    ids=["html", "svg", "nul-html", "crlf-content-type"],
)
def test_client_chosen_html_names_stay_attachments(
    live: LiveServer, query: str
) -> None:
    """A name from the URL may pick the type, never inline nor a second type."""
    response = live.request(f"/name?n={query}")
    assert response.status == 200
    assert len(response.get_all("Content-Type")) == 1
    assert (response.header("Content-Disposition") or "").startswith("attachment")
    assert response.get_all("X-Content-Type-Options") == ["nosniff"]
