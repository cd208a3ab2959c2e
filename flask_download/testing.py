"""Helpers for testing download views: :func:`assert_download_response`.

Import it from ``flask_download.testing`` in your tests::

    from flask_download.testing import assert_download_response

    def test_report_download(client):
        with client.get("/reports/2024.pdf") as response:
            assert_download_response(
                response,
                content=b"%PDF-1.7 ...",
                basename="2024.pdf",
                mimetype="application/pdf",
                attachment=True,
            )
"""

from __future__ import annotations

import collections.abc as cabc
import os
import re
from urllib.parse import unquote

from werkzeug.http import parse_options_header
from werkzeug.wrappers import Response

from ._grammar import TOKEN
from .signals import OFFLOAD_HEADERS

__all__ = ["OFFLOAD_HEADERS", "assert_download_response", "parse_content_disposition"]


# Offload headers whose value is a path on the local disk (not a URL).
_PATH_OFFLOAD_HEADERS = ("X-Sendfile", "X-LIGHTTPD-send-file")

# RFC 9110 §5.6.2 token, §5.6.4 quoted-string.
_PARAMETER = re.compile(
    rf"""\s*;\s*(?P<name>{TOKEN})\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|{TOKEN})\s*"""
)
_QUOTED_PAIR = re.compile(r"\\(.)")
# RFC 8187 §3.2.1 ext-value: charset "'" [ language ] "'" value-chars.
_EXT_VALUE = re.compile(r"(?P<charset>[^']*)'(?P<language>[^']*)'(?P<value>.*)")
# Bytes of the body shown in a failure message, on each side of a difference.
_EXCERPT = 24


def parse_content_disposition(value: str) -> tuple[str, dict[str, str]]:
    """Parse a ``Content-Disposition`` value strictly (RFC 6266).

    Returns the disposition type (lower case) and its parameters, names in
    lower case. ``filename*`` (RFC 8187 ``charset'lang'%XX``) is decoded and
    wins over ``filename``, wherever it stands (RFC 6266 §4.3); the result
    keeps ``filename`` as the name to use and ``filename-fallback`` as the
    plain ``filename`` parameter when both were sent.

    :param value: the header value.
    :raises ValueError: the value is not well formed: a parameter that is
        neither a token nor a quoted-string, a repeated parameter, or a
        ``filename*`` that does not decode.
    """
    match = re.match(rf"\s*({TOKEN})", value)
    if match is None:
        raise ValueError(f"no disposition type in {value!r}")
    disposition = match.group(1).lower()
    position = match.end()
    raw: dict[str, str] = {}
    while position < len(value):
        parameter = _PARAMETER.match(value, position)
        if parameter is None:
            raise ValueError(
                f"malformed parameter at offset {position} of {value!r}"
                f" (near {value[position : position + 20]!r})"
            )
        name = parameter.group("name").lower()
        if name in raw:
            raise ValueError(f"parameter {name!r} is repeated in {value!r}")
        text = parameter.group("value")
        if text.startswith('"'):
            text = _QUOTED_PAIR.sub(r"\1", text[1:-1])
        raw[name] = text
        position = parameter.end()
    params = {name: text for name, text in raw.items() if not name.endswith("*")}
    for name, text in raw.items():
        if not name.endswith("*"):
            continue
        ext = _EXT_VALUE.fullmatch(text)
        if ext is None:
            raise ValueError(f"{name} is not an RFC 8187 ext-value: {text!r}")
        try:
            decoded = unquote(
                ext.group("value"), encoding=ext.group("charset"), errors="strict"
            )
        except (LookupError, UnicodeDecodeError) as e:
            raise ValueError(f"{name} does not decode: {text!r} ({e})") from None
        plain = name[:-1]
        if plain in params:
            params[f"{plain}-fallback"] = params[plain]
        params[plain] = decoded
    return disposition, params


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    mimetype, params = parse_options_header(value)
    return mimetype.lower(), {k.lower(): v.lower() for k, v in params.items()}


def _read_body(response: Response) -> bytes:
    # A DownloadResponse returned by a view (not through the test client) is
    # in direct-passthrough mode: get_data() refuses it, iter_encoded() reads it.
    if response.direct_passthrough:
        return b"".join(response.iter_encoded())
    return response.get_data()


def _difference(expected: bytes, found: bytes) -> str:
    offset = next(
        (i for i, (a, b) in enumerate(zip(expected, found, strict=False)) if a != b),
        min(len(expected), len(found)),
    )
    start = max(0, offset - _EXCERPT)
    return (
        f"expected {len(expected)} bytes, found {len(found)}; first difference at"
        f" byte {offset}: expected {expected[start : offset + _EXCERPT]!r},"
        f" found {found[start : offset + _EXCERPT]!r}"
    )


def _request_method(response: Response) -> str:
    request = getattr(response, "request", None)
    environ = getattr(request, "environ", None) or {}
    return str(environ.get("REQUEST_METHOD", "GET"))


def assert_download_response(
    response: Response,
    content: bytes | str | None = None,
    basename: str | None = None,
    mimetype: str | None = None,
    attachment: bool | None = None,
    status: int = 200,
    *,
    encoding: str | None = None,
    offload: bool | str | None = None,
    headers: cabc.Mapping[str, str | None] | None = None,
) -> bytes:
    """Assert that ``response`` is the expected download.

    Works with responses of the Flask test client (streamed ones made with
    ``buffered=False`` too: the body is read to its end here, the caller
    still closes the response) and with a
    :class:`~flask_download.DownloadResponse` returned by a view. Every
    expectation is checked and all that fail are reported together, each
    with what was found. Arguments left to ``None`` are not checked.

    An offloaded response (one of :data:`OFFLOAD_HEADERS` present) must have
    an empty body; the offload header is checked instead of the body. When
    the header names a local file (``X-Sendfile``, ``X-LIGHTTPD-send-file``),
    ``content`` is compared with that file; an ``X-Accel-Redirect`` location
    belongs to nginx, so ``content`` cannot be checked there.

    :param response: the response to check.
    :param content: the expected body (``str`` is encoded as UTF-8). For a
        ``HEAD`` request, only ``Content-Length`` is compared with its size.
    :param basename: the file name the client sees: ``filename*`` when sent
        (RFC 8187, decoded), else ``filename``.
    :param mimetype: the expected media type. Without parameters (``"text/plain"``)
        only the type is compared; with parameters
        (``"text/plain; charset=utf-8"``) those must match too. Case-insensitive.
    :param attachment: ``True`` for ``attachment``, ``False`` for ``inline``.
    :param status: the expected status code.
    :param encoding: the expected ``Content-Encoding``.
    :param offload: ``None`` to accept either kind; ``True`` to require an
        offload header, ``False`` to require a streamed body; a string to
        require an offload header with exactly that value.
    :param headers: other headers to compare exactly; ``None`` as a value
        means the header must be absent.
    :returns: the body read (``b""`` when offloaded or for ``HEAD``).
    :raises AssertionError: an expectation did not hold.
    """
    __tracebackhide__ = True
    failures: list[str] = []
    h = response.headers

    if response.status_code != status:
        failures.append(f"status: expected {status}, found {response.status}")

    if mimetype is not None:
        found_type = h.get("Content-Type")
        if found_type is None:
            failures.append(f"mimetype: expected {mimetype!r}, found no Content-Type")
        else:
            want, want_params = _media_type(mimetype)
            got, got_params = _media_type(found_type)
            if want != got or (want_params and want_params != got_params):
                failures.append(
                    f"mimetype: expected {mimetype!r}, found Content-Type"
                    f" {found_type!r}"
                )

    if encoding is not None and h.get("Content-Encoding") != encoding:
        failures.append(
            f"encoding: expected Content-Encoding {encoding!r},"
            f" found {h.get('Content-Encoding')!r}"
        )

    if basename is not None or attachment is not None:
        _check_disposition(h.get("Content-Disposition"), basename, attachment, failures)

    for name, expected in (headers or {}).items():
        found = h.get(name)
        if found != expected:
            what = "absent" if expected is None else repr(expected)
            failures.append(f"header {name}: expected {what}, found {found!r}")

    expected_body = content.encode("utf-8") if isinstance(content, str) else content
    offload_header = next((name for name in OFFLOAD_HEADERS if name in h), None)
    body = b""
    if offload_header is not None:
        _check_offload(response, offload_header, offload, expected_body, failures)
        body = _read_body(response)
        if body:
            failures.append(
                f"offloaded body: expected an empty body with {offload_header},"
                f" found {len(body)} bytes"
            )
    elif offload is not None and offload is not False:
        failures.append(
            f"offload: expected one of {', '.join(OFFLOAD_HEADERS)}"
            f"{'' if offload is True else f' = {offload!r}'}, found none"
        )
    elif _request_method(response) == "HEAD":
        body = _read_body(response)
        if body:
            failures.append(f"HEAD body: expected none, found {len(body)} bytes")
        if expected_body is not None:
            length = h.get("Content-Length")
            if length != str(len(expected_body)):
                failures.append(
                    f"Content-Length: expected {len(expected_body)} (the size of"
                    f" content), found {length!r}"
                )
    else:
        body = _read_body(response)
        length = h.get("Content-Length")
        if length is not None and length != str(len(body)):
            failures.append(
                f"Content-Length: header says {length!r}, body has {len(body)} bytes"
            )
        if expected_body is not None and body != expected_body:
            failures.append(f"content: {_difference(expected_body, body)}")

    if failures:
        raise AssertionError(
            f"{response!r} is not the expected download:\n"
            + "\n".join(f"- {failure}" for failure in failures)
        )
    return body


def _check_disposition(
    value: str | None,
    basename: str | None,
    attachment: bool | None,
    failures: list[str],
) -> None:
    if value is None:
        failures.append("Content-Disposition: expected one, found none")
        return
    try:
        disposition, params = parse_content_disposition(value)
    except ValueError as e:
        failures.append(f"Content-Disposition: malformed: {e}")
        return
    if attachment is not None:
        want = "attachment" if attachment else "inline"
        if disposition != want:
            failures.append(
                f"attachment: expected {want!r}, found {disposition!r} ({value!r})"
            )
    if basename is not None and params.get("filename") != basename:
        failures.append(
            f"basename: expected {basename!r}, found {params.get('filename')!r}"
            f" ({value!r})"
        )


def _check_offload(
    response: Response,
    header: str,
    offload: bool | str | None,
    content: bytes | None,
    failures: list[str],
) -> None:
    value = response.headers[header]
    if offload is False:
        failures.append(f"offload: expected a streamed body, found {header}: {value!r}")
        return
    if isinstance(offload, str) and value != offload:
        failures.append(f"offload: expected {header}: {offload!r}, found {value!r}")
    if not value:
        failures.append(f"offload: {header} is empty")
        return
    if content is None or header not in _PATH_OFFLOAD_HEADERS:
        return
    try:
        with open(value, "rb") as f:
            found = f.read()
    except OSError as e:
        failures.append(f"offload: {header} names {value!r}, which cannot be read: {e}")
        return
    if found != content:
        failures.append(
            f"content of {os.path.basename(value)!r} ({header}):"
            f" {_difference(content, found)}"
        )
