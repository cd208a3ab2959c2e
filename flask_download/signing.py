"""Signed expiring links: :func:`signed_url_for` and :func:`signature_required`.

A signed link carries two query parameters, ``expires`` (a Unix time) and
``signature`` (an HMAC made with :mod:`itsdangerous` from the app's
``SECRET_KEY`` and the salt :data:`SALT`).

The signature covers what the link *routes to*, not how its URL is
spelled: the endpoint, every URL variable the rule matched (host and
subdomain variables included), every other query parameter and the expiry.
The signer routes the URL it built, the checker routes the request, and both
sign the same canonical form. So neither the ``Host`` header, nor
``X-Forwarded-Prefix`` (``ProxyFix``), nor another ``SCRIPT_NAME`` /
``PATH_INFO`` split can point a link at another file, and a path spelled
with other percent-escapes is still the same link.

A signed response is ``Cache-Control: private`` with a ``max-age`` that
never runs past the link's expiry: a shared cache cannot keep serving it.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import functools
import hashlib
import json
import re
import time
import typing as t
from urllib.parse import parse_qsl
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from flask import after_this_request
from flask import current_app
from flask import has_request_context
from flask import request
from flask import url_for
from flask.views import View
from itsdangerous import BadData
from itsdangerous import Signer
from itsdangerous.encoding import base64_decode
from itsdangerous.encoding import base64_encode
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import RoutingException

from ._context import app_object
from .exceptions import ConfigurationError
from .exceptions import InvalidSignature
from .exceptions import SignatureExpired
from .settings import link_expiry

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.routing import MapAdapter
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Response

#: The itsdangerous salt of link signatures: a signature made for anything
#: else with the same ``SECRET_KEY`` is not a valid link signature.
SALT = "flask-download.signed-url"
#: Query parameter holding the expiry, as a Unix time in seconds.
EXPIRES_PARAM = "expires"
#: Query parameter holding the signature.
SIGNATURE_PARAM = "signature"
# Set in the WSGI environ once the request's signature was checked, so that a
# signed view behind ``signature_required`` checks it once.
_CHECKED = "flask_download.signature_checked"
#: The WSGI environ key holding the expiry (a Unix time) of the link this
#: request was checked against, signed_url_for's or nginx_secure_link's
#: (the earlier of the two): what a presigned storage redirect may not
#: outlive.
_LINK_EXPIRES = "flask_download.link_expires"

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])


def _now() -> float:
    return time.time()


def _signer(app: Flask) -> Signer:
    secret_key = app.secret_key
    if not secret_key:
        raise ConfigurationError(
            "Signed download links need the app's SECRET_KEY: set"
            " app.config['SECRET_KEY'] to a long random value (for example"
            " secrets.token_hex()) and keep it the same on every server."
        )
    # As Flask's sessions do: sign with SECRET_KEY, also accept links made
    # with an older key listed in SECRET_KEY_FALLBACKS (newest last).
    fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or ()
    keys: list[str | bytes] = [*fallbacks, secret_key]
    return Signer(
        keys,  # type: ignore[arg-type]  # str and bytes may mix (want_bytes)
        salt=SALT,
        key_derivation="hmac",
        digest_method=hashlib.sha256,
    )


def _legacy_message(path: str, query: cabc.Iterable[tuple[str, str]]) -> bytes:
    # The form of links made before 0.2: the decoded path percent-encoded
    # again, then the sorted query pairs. Kept to check old links where a
    # path alone decides the route (see _legacy_unambiguous).
    encoded_path = quote(path, safe="/", errors="backslashreplace")
    return f"{encoded_path}?{_query_text(query)}".encode()


def _query_text(query: cabc.Iterable[tuple[str, str]]) -> str:
    # The query pairs without the signature, sorted by name (values of one
    # name keep their order).
    pairs = sorted(
        ((name, value) for name, value in query if name != SIGNATURE_PARAM),
        key=lambda pair: pair[0],
    )
    return urlencode(pairs, quote_via=quote)


def _message(
    rule: Rule,
    args: cabc.Mapping[str, t.Any],
    query: cabc.Iterable[tuple[str, str]],
    script_root: str,
    method: str,
) -> bytes:
    # One canonical form for both sides: the script root the application is
    # mounted at, the method (HEAD counts as GET), the endpoint and each URL
    # variable (host and subdomain ones included) as its converter writes it,
    # then the query. JSON keeps the parts apart whatever characters they
    # hold.
    converters = getattr(rule, "_converters", {})
    variables = sorted(
        (name, converters[name].to_url(value) if name in converters else str(value))
        for name, value in args.items()
    )
    return json.dumps(
        [
            "v3",
            script_root.rstrip("/"),
            _signed_method(method),
            rule.endpoint,
            variables,
            _query_text(query),
        ],
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode()


def _signed_method(method: str) -> str:
    # A link for GET also answers HEAD (same view, no body).
    method = method.upper()
    return "GET" if method == "HEAD" else method


def _wsgi_str(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _route_built_url(
    app: Flask, external: str, method: str
) -> tuple[Rule, t.Any, str, str]:
    """Route the absolute URL ``url_for`` built, as a request for it would be.

    :return: the rule, its values, the script root and the method routed.
    """
    parts = urlsplit(external)
    origin = f"{parts.scheme}://{parts.netloc}"
    # MapAdapter.build writes the script name as it is (the request's, else
    # APPLICATION_ROOT), then the rule's path.
    if has_request_context():
        prefix = request.root_path.rstrip("/")
    else:
        prefix = (app.config["APPLICATION_ROOT"] or "/").rstrip("/")
    rest = external[len(origin) :].partition("?")[0].partition("#")[0]
    if prefix and rest.startswith(prefix):
        rest = rest[len(prefix) :]
    # The WSGI environ of a request for that URL (PEP 3333: native strings
    # holding the decoded bytes as Latin-1), enough for URL routing.
    port = parts.port or (443 if parts.scheme == "https" else 80)
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": _wsgi_str(prefix),
        "PATH_INFO": _wsgi_str(unquote(rest or "/")),
        "QUERY_STRING": "",
        "SERVER_NAME": parts.hostname or "",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": parts.netloc,
        "wsgi.url_scheme": parts.scheme,
    }
    routed = t.cast("MapAdapter", app.create_url_adapter(app.request_class(environ)))
    try:
        try:
            rule, args = routed.match(return_rule=True)
        except MethodNotAllowed as e:
            # A view for another method (POST...): route it as that one, if
            # there is only one (Flask adds OPTIONS, answered without the
            # view, to every rule).
            methods = sorted(set(e.valid_methods or ()) - {"OPTIONS", "HEAD"})
            if len(methods) != 1:
                raise ConfigurationError(
                    f"signed_url_for() built {external!r}, whose view does not"
                    f" answer {method} but {', '.join(methods) or 'nothing'}:"
                    " pass _method= to say which one the link is for."
                ) from None
            method = methods[0]
            rule, args = routed.match(method=method, return_rule=True)
        return rule, args, prefix, method
    except (RoutingException, HTTPException) as e:
        raise ConfigurationError(
            f"signed_url_for() built {external!r}, which does not route back to a"
            f" view ({type(e).__name__}); check the endpoint and its values."
        ) from None


def signed_url_for(
    endpoint: str,
    expires_in: int | float | datetime.timedelta | None = None,
    **values: t.Any,
) -> str:
    """Build a URL with :func:`flask.url_for` and sign it with an expiry.

    The link opens a view protected by ``signed = True`` or
    :func:`signature_required` until it expires; the signature covers the
    endpoint, every URL variable (host and subdomain ones included), every
    query parameter and the expiry, so no part of the link can be changed
    and no ``Host`` or prefix header can re-point it. It also binds the
    script root the application is mounted at and the method: ``GET`` (which
    also opens the link with ``HEAD``) unless ``_method`` says otherwise, or
    the only method the view answers. Needs the app's ``SECRET_KEY``.

    ``url_for`` options such as ``_external`` and ``_anchor`` work as usual.

    :param endpoint: the endpoint of the view, as for ``url_for``.
    :param expires_in: how long the link is valid, in seconds or as a
        :class:`~datetime.timedelta`; default ``DOWNLOAD_SIGNED_MAX_AGE``.
    :param values: URL variables and query parameters, as for ``url_for``.
    :raises ConfigurationError: the app has no ``SECRET_KEY``.
    :raises ConfigurationError: ``expires_in`` is not positive, or ``values`` use
        the reserved names ``expires`` or ``signature``, or the URL built does
        not route back to a view.
    """
    for reserved in (EXPIRES_PARAM, SIGNATURE_PARAM):
        if reserved in values:
            raise ConfigurationError(
                f"{reserved!r} is reserved for the link's signature; rename the"
                " URL variable or query parameter."
            )
    app = app_object()
    now = _now()
    expires = link_expiry(app, expires_in, now)
    signer = _signer(app)

    url = urlsplit(url_for(endpoint, **values))
    query = parse_qsl(url.query, keep_blank_values=True)
    query.append((EXPIRES_PARAM, str(expires)))
    # Sign what the link routes to: route the URL as a request for it would
    # be routed (its host and script root included).
    external = url_for(endpoint, **{**values, "_external": True, "_anchor": None})
    rule, args, script_root, method = _route_built_url(
        app, external, values.get("_method") or "GET"
    )
    message = _message(rule, args, query, script_root, method)
    signature = signer.get_signature(message).decode()
    extra = urlencode({EXPIRES_PARAM: expires, SIGNATURE_PARAM: signature})
    return urlunsplit(
        url._replace(query=f"{url.query}&{extra}" if url.query else extra)
    )


def check_signature() -> None:
    """Check the signature of the current request's URL.

    :raises InvalidSignature: the signature is missing or does not match (403).
    :raises SignatureExpired: the link expired (410).
    :raises ConfigurationError: the app has no ``SECRET_KEY``.
    """
    environ = request.environ
    if environ.get(_CHECKED):
        return
    args = request.args
    signatures = args.getlist(SIGNATURE_PARAM)
    expiries = args.getlist(EXPIRES_PARAM)
    if not signatures or not expiries:
        raise InvalidSignature("This link needs a signature: ask for a new link.")
    app = app_object()
    signer = _signer(app)
    if (
        len(signatures) != 1
        or len(expiries) != 1
        or not _EXPIRY.fullmatch(expiries[0])
        or not _canonical(signatures[0])
    ):
        raise InvalidSignature("The signature of this link is not valid.")
    query = list(args.items(multi=True))
    # Route the request again: view_args may have been changed since by
    # url_value_preprocessor functions.
    adapter = t.cast("MapAdapter", app.create_url_adapter(request))
    try:
        rule, values = adapter.match(return_rule=True)
    except Exception:
        raise InvalidSignature("The signature of this link is not valid.") from None
    message = _message(rule, values, query, request.root_path, request.method)
    valid = signer.verify_signature(message, signatures[0])
    if not valid and _legacy_unambiguous(app, rule):
        valid = signer.verify_signature(
            _legacy_message(request.root_path + request.path, query), signatures[0]
        )
    if not valid:
        raise InvalidSignature("The signature of this link is not valid.")
    expires = int(expiries[0])
    if _now() > expires:
        raise SignatureExpired("This link has expired: ask for a new link.")
    environ[_CHECKED] = expires  # a Unix time after now: true
    environ[_LINK_EXPIRES] = min(environ.get(_LINK_EXPIRES, expires), expires)
    after_this_request(functools.partial(_private_until, expires))


def keep_within_link(response: Response) -> Response:
    """Cap again the caching of a signed request's ``response`` at the
    link's expiry, if the request was checked by :func:`check_signature`
    or :func:`~flask_download.check_nginx_secure_link` (the earlier expiry
    of the two).

    The cap is set by an ``after_this_request`` function, which Flask runs
    before the application's ``after_request`` hooks; the extension's
    offload hook calls this after it offloaded a response built by hand,
    so that an offload rule's ``X-Accel-Expires`` cannot outlive the link.
    """
    expires = request.environ.get(_LINK_EXPIRES)
    if isinstance(expires, int) and not isinstance(expires, bool):
        return _private_until(expires, response)
    return response


def _canonical(signature: str) -> bool:
    """Whether ``signature`` is spelled exactly as :func:`signed_url_for`
    writes it: unpadded base64url with its unused low bits zero.

    The decoder alone also takes other spellings of the same bytes (another
    last character, characters outside the alphabet skipped), so that a
    changed link could still open the file.
    """
    try:
        return base64_encode(base64_decode(signature)) == signature.encode("ascii")
    except (BadData, UnicodeEncodeError):
        return False


# An expiry as signed_url_for writes it: ASCII digits (str.isdigit() also
# takes "²"), at most 19.
_EXPIRY = re.compile(r"[0-9]{1,19}")


def _legacy_unambiguous(app: Flask, rule: Rule) -> bool:
    # A link signed over its path alone (before 0.2) is accepted only where
    # the path alone decides the route: no script root that could be split
    # differently (X-Forwarded-Prefix), no host or subdomain in any rule.
    if request.root_path or app.url_map.host_matching:
        return False
    return not any(r.subdomain or r.host for r in app.url_map.iter_rules())


def _private_until(expires: int, response: Response) -> Response:
    """Keep a signed response out of shared caches and past its expiry.

    ``private`` (RFC 9111 §5.2.2.7) and a ``max-age`` no longer than the
    link's remaining lifetime (an error, 4xx or 5xx, gets none it did not
    have); ``no-store`` and ``no-cache`` are kept. An ``Expires`` or
    ``X-Accel-Expires`` header is capped at the expiry too.
    """
    remaining = max(0, int(expires - _now()))
    cache_control = response.cache_control
    cache_control.public = False
    cache_control.s_maxage = None
    cache_control.private = True
    if cache_control.max_age is not None:
        cache_control.max_age = min(cache_control.max_age, remaining)
    elif not (
        cache_control.no_cache or cache_control.no_store or response.status_code >= 400
    ):
        # An error said nothing about caching: a max-age would make the
        # browser keep it (a 404 before the upload, a 503) for the link's life.
        cache_control.max_age = remaining
    # An Expires header (send_file's max_age sets one) for caches that read
    # no Cache-Control: not past the link either.
    if response.expires is not None and response.expires.timestamp() > expires:
        response.expires = datetime.datetime.fromtimestamp(
            expires, datetime.timezone.utc
        )
    # nginx's proxy cache obeys X-Accel-Expires (from an offload rule's
    # ``expires``) before Cache-Control: it may not outlive the link either.
    accel_expires = response.headers.get("X-Accel-Expires")
    if accel_expires is not None:
        response.headers["X-Accel-Expires"] = _accel_expires_until(
            accel_expires, expires, remaining
        )
    return response


def _accel_expires_until(value: str, expires: int, remaining: int) -> str:
    # "N" seconds from now, or "@N" (an epoch time); anything else is
    # replaced by the link's remaining lifetime.
    if value.startswith("@") and value[1:].isascii() and value[1:].isdigit():
        return f"@{min(int(value[1:]), expires)}"
    if value.isascii() and value.isdigit():
        return str(min(int(value), remaining))
    return str(remaining)


@t.overload
def signature_required(view: F) -> F: ...
@t.overload
def signature_required(view: None = None) -> cabc.Callable[[F], F]: ...
def signature_required(view: F | None = None) -> F | cabc.Callable[[F], F]:
    """Require a valid signed link (:func:`signed_url_for`) to call a view.

    Use it bare or called, on any Flask view function::

        @app.get("/reports/<int:id>")
        @signature_required
        def report(id): ...

    or on a class-based view (:class:`flask.views.View`, ``MethodView``),
    which returns a subclass whose ``as_view()`` views check the link
    first (the class decorated is not changed)::

        @signature_required
        class ReportView(MethodView):
            def get(self, id): ...

    A missing or tampered signature is answered 403 and an expired link
    410, before the view runs.
    """

    def decorator(view: F) -> F:
        if isinstance(view, type):
            return t.cast(F, _signed_view_class(view))

        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            check_signature()
            return current_app.ensure_sync(view)(*args, **kwargs)

        return t.cast(F, wrapper)

    if view is None:
        return decorator
    return decorator(view)


def _signed_view_class(cls: type) -> type:
    # A View class: its as_view() applies ``decorators`` to the view function
    # it makes, the last one outermost, so the check comes before them all.
    if not issubclass(cls, View):
        raise TypeError(
            "signature_required decorates a view function or a"
            f" flask.views.View subclass, not the class {cls.__qualname__}."
        )
    namespace = {
        "decorators": [*cls.decorators, signature_required],
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    return type(cls.__name__, (cls,), namespace)


__all__ = ["SALT", "check_signature", "signature_required", "signed_url_for"]
