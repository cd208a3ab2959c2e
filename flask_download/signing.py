"""Signed expiring links: :func:`signed_url_for` and :func:`signature_required`.

A signed link carries two query parameters, ``expires`` (a Unix time) and
``signature`` (an HMAC made with :mod:`itsdangerous` from the app's
``SECRET_KEY`` and the salt :data:`SALT`). The signature covers the path and
every other query parameter, so a link can neither be pointed at another
file or endpoint nor given a later expiry.

Paths are compared decoded: the signer decodes what ``url_for`` encoded and
the checker uses ``request.path``, which the server decoded, and both
encode the text again in one canonical way. Names with spaces or non-ASCII
characters therefore work whatever encoding the client or a proxy chose.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import functools
import hashlib
import time
import typing as t
from urllib.parse import parse_qsl
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from flask import current_app
from flask import request
from flask import url_for
from itsdangerous import Signer

from .exceptions import ConfigurationError
from .exceptions import InvalidSignature
from .exceptions import SignatureExpired
from .settings import get_settings

if t.TYPE_CHECKING:
    from flask import Flask

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


def _message(path: str, query: cabc.Iterable[tuple[str, str]]) -> bytes:
    # One canonical form for both sides: the decoded path percent-encoded
    # again, then the query pairs without the signature, sorted by name
    # (values of one name keep their order).
    pairs = sorted(
        ((name, value) for name, value in query if name != SIGNATURE_PARAM),
        key=lambda pair: pair[0],
    )
    encoded_path = quote(path, safe="/", errors="backslashreplace")
    return f"{encoded_path}?{urlencode(pairs, quote_via=quote)}".encode()


def signed_url_for(
    endpoint: str,
    expires_in: int | float | datetime.timedelta | None = None,
    **values: t.Any,
) -> str:
    """Build a URL with :func:`flask.url_for` and sign it with an expiry.

    The link opens a view protected by ``signed = True`` or
    :func:`signature_required` until it expires; the signature covers the
    path and every query parameter, so no part of the link can be changed.
    Needs the app's ``SECRET_KEY``.

    ``url_for`` options such as ``_external`` and ``_anchor`` work as usual.

    :param endpoint: the endpoint of the view, as for ``url_for``.
    :param expires_in: how long the link is valid, in seconds or as a
        :class:`~datetime.timedelta`; default ``DOWNLOAD_SIGNED_MAX_AGE``.
    :param values: URL variables and query parameters, as for ``url_for``.
    :raises ConfigurationError: the app has no ``SECRET_KEY``.
    :raises ConfigurationError: ``expires_in`` is not positive, or ``values`` use
        the reserved names ``expires`` or ``signature``.
    """
    for reserved in (EXPIRES_PARAM, SIGNATURE_PARAM):
        if reserved in values:
            raise ConfigurationError(
                f"{reserved!r} is reserved for the link's signature; rename the"
                " URL variable or query parameter."
            )
    app = t.cast("Flask", current_app._get_current_object())  # type: ignore[attr-defined]
    if expires_in is None:
        expires_in = get_settings(app).signed_max_age
    if isinstance(expires_in, datetime.timedelta):
        expires_in = expires_in.total_seconds()
    if isinstance(expires_in, bool) or not expires_in > 0:
        raise ConfigurationError(
            f"expires_in must be a positive duration, not {expires_in!r}."
        )
    signer = _signer(app)
    expires = int(_now() + expires_in + 0.999)  # round up: never shorter

    url = urlsplit(url_for(endpoint, **values))
    query = parse_qsl(url.query, keep_blank_values=True)
    query.append((EXPIRES_PARAM, str(expires)))
    signature = signer.get_signature(_message(unquote(url.path), query)).decode()
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
    signer = _signer(t.cast("Flask", current_app._get_current_object()))  # type: ignore[attr-defined]
    message = _message(request.root_path + request.path, args.items(multi=True))
    valid = len(signatures) == 1 and signer.verify_signature(message, signatures[0])
    if not valid or len(expiries) != 1 or not expiries[0].isdigit():
        raise InvalidSignature("The signature of this link is not valid.")
    if _now() > int(expiries[0]):
        raise SignatureExpired("This link has expired: ask for a new link.")
    environ[_CHECKED] = True


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

    A missing or tampered signature is answered 403 and an expired link
    410, before the view runs.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            check_signature()
            return current_app.ensure_sync(view)(*args, **kwargs)

        return t.cast(F, wrapper)

    if view is None:
        return decorator
    return decorator(view)


__all__ = ["SALT", "check_signature", "signature_required", "signed_url_for"]
