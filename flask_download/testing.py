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
import contextlib
import os
import re
import typing as t
import weakref
from urllib.parse import unquote
from urllib.parse import unquote_to_bytes

from flask import Flask
from flask import has_app_context
from flask import has_request_context
from flask import request as flask_request
from werkzeug.http import parse_options_header
from werkzeug.wrappers import Response

from ._context import app_object
from ._grammar import TOKEN
from .accel import OFFLOAD_CHOICE
from .accel_rules import AccelRule
from .accel_rules import parse_rules
from .exceptions import DownloadError
from .settings import get_settings
from .signals import OFFLOAD_HEADERS
from .views import VIEW_ATTRIBUTES

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


# The bodies read from direct-passthrough responses, which can be read once.
_BODIES: weakref.WeakKeyDictionary[Response, bytes] = weakref.WeakKeyDictionary()


def _read_body(response: Response) -> bytes:
    # A DownloadResponse returned by a view (not through the test client) is
    # in direct-passthrough mode: get_data() refuses it, iter_encoded() reads
    # it, once; the body is kept so that checking it again finds it again.
    # (get_data() keeps what it read on the response itself.)
    if response.direct_passthrough:
        body = _BODIES.get(response)
        if body is None:
            body = _BODIES[response] = b"".join(response.iter_encoded())
        return body
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
    an empty body; the offload header is checked instead of the body, and
    ``content`` is compared with the file the web server would send:

    - ``X-Sendfile`` and ``X-LIGHTTPD-send-file`` name a file path,
      percent-decoded first as Apache (``mod_xsendfile``) and lighttpd do.
      When an offload rule's ``destination_dir`` differs from its
      ``source_dir``, the path is mapped back to the source file through
      that rule; a path no rule maps is read as it is.
    - ``X-Accel-Redirect`` names an nginx location: it is mapped back to
      the source file (a local file or a key of an fsspec storage) through
      the rule whose ``destination_url`` it starts with. When no rule maps
      it, ``content`` cannot be checked and is not.

    The rules are those the application would use for the request: the
    :func:`~flask_download.offload` decorator and the ``accel_rules`` of
    the view that answered it (``as_view`` keyword or class attribute),
    then ``DOWNLOAD_ACCEL_RULES`` (with the
    :class:`~flask_download.FlaskDownload` default). The application is
    the Flask test client's, else the current one; rules computed per
    request (a property) or chosen inside a function view cannot be found.

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
    if content is None:
        return
    if header in _PATH_OFFLOAD_HEADERS:
        # mod_xsendfile (XSendFileUnescape, on by default) and lighttpd
        # (http_response_xsendfile) percent-decode the path before opening it.
        target = os.fsdecode(unquote_to_bytes(value))
        source = _map_to_source(response, target, _sendfile_segments)
        if source is None:
            source = _Source(target, target, None)
    else:
        # nginx: the URI of an internal location (a query is not part of it).
        source = _map_to_source(
            response, value.partition("?")[0], _accel_redirect_segments
        )
        if source is None:
            return  # nginx's own location: nothing here says what it serves.
    try:
        found = source.read()
    except Exception as e:
        if source.rule is not None:
            where = f", mapped back to {source.name!r} by an offload rule,"
            hint = ""
        else:
            decoded = (
                f" ({source.name!r} percent-decoded)" if source.name != value else ""
            )
            where = f"{decoded},"
            hint = (
                "; no offload rule of the application maps it back to a source"
                " file, so content could not be checked"
            )
        failures.append(
            f"offload: {header} names {value!r}{where} which cannot be read:"
            f" {type(e).__name__}: {e}{hint}"
        )
        return
    if found != content:
        failures.append(
            f"content of {os.path.basename(source.name)!r} ({header}):"
            f" {_difference(content, found)}"
        )


class _Source:
    """The file an offload header makes the web server send."""

    def __init__(
        self, name: str, location: str, rule: AccelRule | None, fs: t.Any = None
    ) -> None:
        #: A local path or a storage URL, for messages.
        self.name = name
        #: A local path, or a key of the rule's storage.
        self.location = location
        #: The rule that mapped the header back, ``None``: read as named.
        self.rule = rule
        #: The view's own filesystem for the rule's storage, if it has one.
        self.fs = fs

    def read(self) -> bytes:
        if self.rule is None or self.rule.source_url is None:
            with open(self.location, "rb") as f:
                return f.read()
        fs = self.fs
        if fs is None:
            from .storage import resolve_storage

            fs, _ = resolve_storage(_storage_url(self.rule.source_url))
        return bytes(fs.cat_file(self.location))


def _storage_url(source_url: str) -> str:
    # normalize_url drops the slashes after "file://": put the root back, or
    # fsspec reads the path as relative to the working directory.
    scheme, _, rest = source_url.partition("://")
    if scheme in ("file", "local"):
        return f"{scheme}:///{rest}"
    return source_url


def _sendfile_segments(rule: AccelRule, path: str) -> list[str] | None:
    directory = rule.sendfile_dir
    if directory is None:
        return None
    base = os.path.join(directory, "")
    if not path.startswith(base):
        return None
    return path[len(base) :].split(os.sep)


def _accel_redirect_segments(rule: AccelRule, uri: str) -> list[str] | None:
    if rule.destination_url is None:
        return None
    base = rule.destination_url.rstrip("/") + "/"
    if not uri.startswith(base):
        return None
    # accel_rules encodes each segment of os.fsencode(name) on its own.
    return [os.fsdecode(unquote_to_bytes(s)) for s in uri[len(base) :].split("/")]


def _map_to_source(
    response: Response,
    destination: str,
    segments_of: cabc.Callable[[AccelRule, str], list[str] | None],
) -> _Source | None:
    """The source file of an offload destination, by the first rule that
    maps it back, or ``None``."""
    for rule in _offload_rules(response):
        segments = segments_of(rule, destination)
        if segments is None or any(s in ("", ".", "..") for s in segments):
            continue
        if rule.source_dir is not None:
            path = os.path.join(rule.source_dir, *segments)
            return _Source(path, path, rule)
        assert rule.source_url is not None
        if rule.source_url.lower().startswith(("http://", "https://")):
            continue  # a remote URL: not read by a test helper
        from .storage import resolve_storage

        try:
            _, prefix = resolve_storage(_storage_url(rule.source_url))
        except (DownloadError, ImportError):
            continue
        key = "/".join([prefix, *segments]) if prefix else "/".join(segments)
        url = rule.source_url + ("" if rule.source_url.endswith("://") else "/")
        return _Source(
            url + "/".join(segments), key, rule, _view_storage(response, rule)
        )
    return None


def _view_storage(response: Response, rule: AccelRule) -> t.Any:
    """The filesystem instance the view that made ``response`` serves from,
    when it speaks the protocol of ``rule`` (a private ``memory://`` store,
    such as the ``download_storage`` fixture, is not the one its URL names
    globally); else ``None``."""
    app = _response_app(response)
    view = None if app is None else _response_view(app, response)
    attributes = getattr(view, VIEW_ATTRIBUTES, None) or {}
    storage = attributes.get("storage")
    if storage is None:
        storage = getattr(getattr(view, "view_class", None), "storage", None)
    protocols = getattr(storage, "protocol", None)
    if storage is None or isinstance(storage, str) or protocols is None:
        return None
    if isinstance(protocols, str):
        protocols = (protocols,)
    scheme = (rule.source_url or "").partition("://")[0].lower()
    return storage if scheme in protocols else None


def _offload_rules(response: Response) -> list[AccelRule]:
    """The offload rules the application that made ``response`` would use
    for its request, most specific first (best effort: ``[]`` when unknown)."""
    offload = getattr(response, "offload", None)  # an AccelResponse itself
    rule = getattr(offload, "rule", None)
    if isinstance(rule, AccelRule):
        return [rule]
    app = _response_app(response)
    if app is None:
        return []
    rules: list[AccelRule] = []
    for value in _view_rules(_response_view(app, response)):
        # Invalid rules are the view's to report, on its own requests.
        with contextlib.suppress(DownloadError):
            rules.extend(parse_rules(value, None, app.root_path))
    with contextlib.suppress(DownloadError):
        rules.extend(get_settings(app).accel_rules)
    return rules


def _response_app(response: Response) -> Flask | None:
    # The Flask test client gives each response the app's JSON provider,
    # which keeps a weak proxy of the app; a bound method through the proxy
    # is bound to the app itself.
    provider = getattr(response, "json_module", None)
    try:
        app = getattr(getattr(provider, "_app", None), "app_context", None)
        app = getattr(app, "__self__", None)
    except ReferenceError:  # the app is gone
        app = None
    if isinstance(app, Flask):
        return app
    if has_app_context():
        return app_object()
    return None


def _response_view(app: Flask, response: Response) -> t.Any:
    """The view function of the request that ``response`` answers, or ``None``."""
    request = getattr(response, "request", None)
    environ = getattr(request, "environ", None)
    if environ is None and has_request_context():
        environ = flask_request.environ
    if not isinstance(environ, dict):
        return None
    try:
        # A copy: routing a request here changes nothing of the test's.
        adapter = app.create_url_adapter(
            app.request_class(dict(environ), populate_request=False)
        )
        if adapter is None:
            return None
        endpoint, _ = adapter.match()
    except Exception:
        return None  # not routable any more (a redirect, 404, 405...)
    return app.view_functions.get(str(endpoint))


def _view_rules(view: t.Any) -> list[t.Any]:
    """The offload rules a view function was given, most specific first: the
    :func:`~flask_download.offload` decorator, ``as_view`` keywords, the class
    attribute (each recorded on the function by what made it)."""
    found: list[t.Any] = []
    choice = getattr(view, OFFLOAD_CHOICE, None)
    if isinstance(choice, tuple) and len(choice) == 3:
        if choice[1] is None:
            return found  # the configured rules, whatever the view says
        found.append(choice[1])
    attributes = getattr(view, VIEW_ATTRIBUTES, None)
    if isinstance(attributes, dict) and attributes.get("accel_rules") is not None:
        found.append(attributes["accel_rules"])
    rules = getattr(getattr(view, "view_class", None), "accel_rules", None)
    if rules is not None and not hasattr(type(rules), "__get__"):
        found.append(rules)
    return found
