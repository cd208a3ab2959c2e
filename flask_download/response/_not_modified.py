"""The 304 response, which keeps ``Last-Modified``."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from flask import Response
from werkzeug.datastructures import Headers

from ._representation import _checked_headers

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


# What a 304 may carry as it is (RFC 9110 §15.4.5): Werkzeug's
# get_wsgi_headers, which copies the headers and strips entity headers but
# also Last-Modified, is only needed for anything else.
_NOT_MODIFIED_HEADERS = frozenset(("etag", "last-modified", "cache-control", "vary"))


class NotModifiedResponse(Response):
    """A 304 response that keeps ``Last-Modified``.

    Werkzeug strips it with the other entity headers; RFC 9110 §15.4.5 lets
    a 304 carry it to guide cache updates, and clients without ETag support
    revalidate with it.
    """

    # No Content-Type: a 304 has no content (Werkzeug would add text/html
    # here only to strip it again in get_wsgi_headers).
    default_mimetype = None

    def __init__(
        self,
        response: t.Any = None,
        status: int | str | None = None,
        headers: Headers | cabc.Mapping[str, str] | None = None,
        **kwargs: t.Any,
    ) -> None:
        if not isinstance(headers, cabc.Mapping) or kwargs:
            super().__init__(response, status, headers, **kwargs)
            return
        # The validators of DownloadMixin.not_modified_response: checked in
        # one pass (_checked_headers), not one header at a time. Werkzeug
        # looks for a Content-Type first, and a missing header costs it an
        # exception: a placeholder is found at once, then dropped.
        checked = _checked_headers([("Content-Type", ""), *headers.items()])
        super().__init__(response, status, checked)
        del checked[0]

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        if self.status_code == 304 and not self.response:
            for key, _ in self.headers:
                if key.lower() not in _NOT_MODIFIED_HEADERS:
                    break
            else:
                return self.headers
        headers = super().get_wsgi_headers(environ)
        last_modified = self.headers.get("Last-Modified")
        if last_modified is not None:
            headers["Last-Modified"] = last_modified
        return headers
