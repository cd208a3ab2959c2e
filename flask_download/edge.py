"""Links that nginx or a CDN checks, so that downloads never reach Python.

A link made here carries its own proof: an expiry and a signature that the
web server or the CDN verifies on each request, with a secret (nginx) or a
public key (CloudFront) it was given once. The application only hands the
links out.

- :func:`nginx_secure_link` makes links for nginx's
  ``ngx_http_secure_link_module``; :func:`nginx_secure_url_for` builds them
  with :func:`flask.url_for` and the app's ``DOWNLOAD_NGINX_SECURE_LINK_SECRET``,
  and :func:`nginx_secure_link_required` checks them in Python where no
  nginx stands in front (development, tests).
- :func:`cloudfront_signed_url` and :func:`cloudfront_signed_cookies` sign
  for Amazon CloudFront with botocore's ``CloudFrontSigner`` (extra
  ``Flask-Download[cdn]``).

What the edge checks, and what it cannot (revocation before expiry,
per-user rules), is described in the "Edge-verified links" documentation.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import datetime
import functools
import hashlib
import hmac
import ipaddress
import json
import math
import re
import time
import typing as t
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from flask import after_this_request
from flask import current_app
from flask import has_request_context
from flask import request
from flask import url_for
from flask.views import View

from ._compat import require
from .conditional import as_utc
from .exceptions import ConfigurationError
from .exceptions import InvalidSignature
from .exceptions import SignatureExpired

if t.TYPE_CHECKING:
    from flask import Flask

#: The config key holding the secret shared with nginx's ``secure_link_md5``.
SECRET_KEY_CONFIG = "DOWNLOAD_NGINX_SECURE_LINK_SECRET"
#: Query parameter holding the hash, as in ``secure_link $arg_md5,$arg_expires``.
MD5_PARAM = "md5"
#: Query parameter holding the expiry (a Unix time in seconds).
EXPIRES_PARAM = "expires"
#: Shortest secret :func:`nginx_secure_url_for` accepts from the config: the
#: scheme is an MD5 over a known message and the secret, so the secret's
#: length and randomness are all that keeps a link from being forged.
MIN_SECRET_LENGTH = 32

# Characters that would change the meaning of the secret inside nginx's
# ``secure_link_md5 "..."``: a variable, the end of the string, an escape.
_NGINX_UNSAFE = frozenset('$"\\')

# The last second of the year 9999 (what datetime can hold), as a Unix time.
_LAST_EXPIRY = 253402300799
# nginx's limits: ``time_t`` (ngx_atotm) and base64url (ngx_decode_base64url).
_MAX_TIME_T = 2**63 - 1
_BASE64URL = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])
Expiry: t.TypeAlias = int | float | datetime.datetime | datetime.timedelta


def _now() -> float:
    return time.time()


def _expiry_timestamp(expires: Expiry) -> int:
    """A Unix time: ``datetime`` (naive means UTC), ``timedelta`` from now,
    or a number (a Unix time already).

    :raises ValueError: the time is not after 1970 (nginx refuses an
        ``expires`` of 0 with 403, and cannot read a negative one) or not
        before the year 10000, or not a finite number.
    """
    if isinstance(expires, datetime.timedelta):
        stamp = _now() + expires.total_seconds() + 0.999  # never shorter
    elif isinstance(expires, datetime.datetime):
        stamp = as_utc(expires).timestamp()
    elif isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise TypeError(
            "expires must be a datetime, a timedelta (from now) or a Unix time,"
            f" not {expires!r}."
        )
    else:
        stamp = expires
    if not (math.isfinite(stamp) and 1 <= int(stamp) <= _LAST_EXPIRY):
        raise ValueError(
            "expires must be a moment after 1970-01-01T00:00:01Z and before the"
            f" year 10000 (a Unix time from 1 to {_LAST_EXPIRY}), not {expires!r}."
        )
    return int(stamp)


def _secret_bytes(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not raw:
        raise ConfigurationError("The nginx secure_link secret is empty.")
    text = raw.decode("latin-1")
    if any(c in _NGINX_UNSAFE or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ConfigurationError(
            "The nginx secure_link secret must read back as is inside nginx's"
            ' secure_link_md5 "..." string: no $, " or \\ and no control'
            " characters (for example secrets.token_urlsafe(32))."
        )
    return raw


def _check_uri(uri: str | bytes) -> bytes:
    """The bytes of ``uri`` as nginx's ``$uri`` holds them."""
    if isinstance(uri, str):
        # Surrogate escapes stand for the raw bytes of a name that is not
        # UTF-8 (os.fsdecode).
        raw = uri.encode("utf-8", "surrogateescape")
    elif isinstance(uri, bytes):
        raw = uri
    else:
        raise ValueError(f"uri must be a path starting with '/', not {uri!r}.")
    if not raw.startswith(b"/"):
        raise ValueError(f"uri must be a path starting with '/', not {uri!r}.")
    # nginx normalises $uri (merge_slashes, "." and ".." resolved) before
    # secure_link_md5 reads it: a path it would rewrite never matches.
    segments = raw.split(b"/")[1:]
    if b"" in segments[:-1] or b"." in segments or b".." in segments:
        raise ValueError(
            f"uri {uri!r} has an empty, '.' or '..' segment, which nginx"
            " normalises away before checking the hash: use the normal form."
        )
    if b"\x00" in raw:
        raise ValueError("uri must not contain NUL.")
    return raw


def _nginx_digest(
    expires: str, uri: bytes, remote_addr: str | None, secret: bytes
) -> bytes:
    # secure_link_md5 "$secure_link_expires$uri$remote_addr <secret>"; the
    # expiry as the client sent it, $uri decoded.
    address = (_nginx_address(remote_addr) or "").encode()
    message = b"%s%s%s %s" % (expires.encode(), uri, address, secret)
    return hashlib.md5(message).digest()  # nginx's scheme: keyed by the secret


def _nginx_md5(expires: str, uri: bytes, remote_addr: str | None, secret: bytes) -> str:
    digest = _nginx_digest(expires, uri, remote_addr, secret)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _inet6_text(packed: bytes) -> str:
    """An IPv6 address written as nginx writes ``$remote_addr``
    (``ngx_inet6_ntop``): the first longest run of two or more zero groups
    is ``::``, hex in lower case, and the IPv4-mapped (``::ffff:1.2.3.4``)
    and IPv4-compatible forms end in dotted decimal."""
    zero, last, longest, run = -1, -1, 1, 0
    for i in range(0, 16, 2):
        if packed[i] or packed[i + 1]:
            if longest < run:
                zero, longest = last, run
            run = 0
            continue
        if run == 0:
            last = i
        run += 1
    if longest < run:
        zero, longest = last, run
    end = 16
    text = ""
    if zero == 0:
        if (
            (longest == 5 and packed[10] == 0xFF and packed[11] == 0xFF)
            or longest == 6
            or (longest == 7 and packed[14] != 0 and packed[15] != 1)
        ):
            end = 12
        text += ":"
    i = 0
    while i < end:
        if i == zero:
            text += ":"
            i += longest * 2
            continue
        text += f"{packed[i] * 256 + packed[i + 1]:x}"
        if i < 14:
            text += ":"
        i += 2
    if end == 12:
        text += ".".join(str(b) for b in packed[12:])
    return text


def _nginx_address(remote_addr: str | None) -> str | None:
    """``remote_addr`` as nginx's ``$remote_addr`` holds it: an IP address
    in nginx's spelling (``0:0::1`` and ``::1`` are one client); anything
    else (``unix:``) as it is."""
    if remote_addr is None:
        return None
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return remote_addr
    if isinstance(address, ipaddress.IPv6Address):
        return _inet6_text(address.packed)  # no %scope: nginx has none
    return str(address)


def nginx_secure_link(
    uri: str,
    *,
    secret: str | bytes,
    expires: Expiry,
    remote_addr: str | None = None,
) -> str:
    """A link that nginx's ``secure_link`` module accepts until ``expires``.

    Returns ``uri`` percent-encoded, with ``?md5=...&expires=...`` added, for
    this nginx configuration (drop ``$remote_addr`` when the link is not
    bound to an address)::

        location /files/ {
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri$remote_addr <secret>";
            if ($secure_link = "") { return 403; }
            if ($secure_link = "0") { return 410; }
            alias /srv/files/;
        }

    ``md5`` is the unpadded base64url form of the binary MD5 of
    ``<expires><uri><remote_addr> <secret>``, where ``uri`` is the decoded
    path, as nginx's ``$uri``.

    :param uri: the decoded path nginx will see, starting with ``/`` (no
        query; ``?`` and ``#`` are part of the name and get encoded). Names
        that are not UTF-8 on disk may carry surrogate escapes
        (:func:`os.fsdecode`).
    :param secret: the string written in ``secure_link_md5``. Make it long
        and random (``secrets.token_urlsafe(32)``): it is the only thing that
        keeps MD5 links from being forged.
    :param expires: when the link stops working: an aware
        :class:`~datetime.datetime` (naive means UTC), a
        :class:`~datetime.timedelta` from now, or a Unix time.
    :param remote_addr: bind the link to this client address, as nginx's
        ``$remote_addr`` will see it (an IPv6 address is written the way
        nginx writes it, so ``0:0:0:0:0:0:0:1`` binds ``::1``).
    :raises ValueError: ``uri`` is not a normalised absolute path, or
        ``expires`` is not between 1970 and the year 10000.
    :raises ConfigurationError: ``secret`` is empty or cannot be written in
        nginx's configuration as is.
    """
    path = _check_uri(uri)
    stamp = _expiry_timestamp(expires)
    md5 = _nginx_md5(str(stamp), path, remote_addr, _secret_bytes(secret))
    encoded = quote(path, safe="/")
    return f"{encoded}?{MD5_PARAM}={md5}&{EXPIRES_PARAM}={stamp}"


def verify_nginx_secure_link(
    uri: str | bytes,
    md5: str,
    expires: str,
    *,
    secret: str | bytes,
    remote_addr: str | None = None,
) -> int:
    """Check a link as nginx's ``secure_link`` module would.

    The same rules as nginx (parameters read raw, the first of two, an
    expiry of 0 invalid), so that a link nginx refuses is refused here;
    stricter in one point: ``md5`` must be spelled exactly as
    :func:`~flask_download.nginx_secure_link` writes it (nginx's decoder
    also takes ``=`` padding and ignores the unused bits of the last
    character, so it accepts some changed links). ``expires`` must be ASCII
    digits (leading zeros allowed, and hashed as sent) of a time after 1970,
    or the link is invalid (403), not expired.

    :param uri: the decoded path of the request (bytes: exactly as nginx's
        ``$uri`` holds it).
    :param md5: the ``md5`` query parameter, as sent (nginx does not
        percent-decode ``$arg_md5``).
    :param expires: the ``expires`` query parameter, as sent.
    :param secret: the secret of :func:`~flask_download.nginx_secure_link`.
    :param remote_addr: the client's address, when links are bound to it.
    :returns: the link's expiry, a Unix time.
    :raises InvalidSignature: the hash does not match (nginx: 403).
    :raises SignatureExpired: the link is past its expiry (nginx: 410).
    """
    invalid = InvalidSignature("The signature of this link is not valid.")
    try:
        path = _check_uri(uri)
    except ValueError:
        raise invalid from None
    # secure_link $arg_md5,$arg_expires: nginx splits the two at the first
    # comma, so a comma in md5 moves the rest into the expiry.
    md5, _, expires = f"{md5},{expires}".partition(",")
    stamp = _nginx_expiry(expires)
    hashed = _nginx_hash(md5)
    if stamp is None or hashed is None:
        raise invalid
    expected = _nginx_digest(expires, path, remote_addr, _secret_bytes(secret))
    if not hmac.compare_digest(expected, hashed):
        raise invalid
    if stamp < int(_now()):  # nginx: expires < ngx_time(), whole seconds
        raise SignatureExpired("This link has expired: ask for a new link.")
    return stamp


def _nginx_expiry(expires: str) -> int | None:
    """The Unix time nginx reads from ``expires`` (``ngx_atotm``), or
    ``None`` where it answers 403: not only ASCII digits, 0, or past
    ``time_t``."""
    if not expires or not (expires.isascii() and expires.isdigit()):
        return None
    digits = expires.lstrip("0")
    if not digits or len(digits) > 19:
        return None
    stamp = int(digits)
    return stamp if stamp <= _MAX_TIME_T else None


def _nginx_hash(md5: str) -> bytes | None:
    """The 16 bytes of ``md5``, or ``None`` (403).

    Only the spelling :func:`nginx_secure_link` writes is read: 22
    base64url characters, no padding, the unused low bits of the last one
    zero. nginx's own decoder also takes ``=`` padding (and anything after
    it) and ignores those bits, so a changed link such as one with another
    last character passes nginx one time in four; no link this module makes
    is spelled so, and here it is refused.
    """
    if len(md5) != 22 or not md5.isascii() or not _BASE64URL.issuperset(md5):
        return None
    digest = base64.urlsafe_b64decode(md5 + "==")
    if base64.urlsafe_b64encode(digest)[:22].decode() != md5:
        return None  # unused bits set: another spelling of the same hash
    return digest


def validate_nginx_secret(secret: t.Any) -> bytes | None:
    """Check a ``DOWNLOAD_NGINX_SECURE_LINK_SECRET`` value (``None``: unset).

    :raises ConfigurationError: not a string of at least
        :data:`MIN_SECRET_LENGTH` characters nginx can hold as is.
    """
    if secret is None:
        return None
    if not isinstance(secret, (str, bytes)) or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"{SECRET_KEY_CONFIG} must be a string of at least"
            f" {MIN_SECRET_LENGTH} random characters (secure_link's MD5 is only"
            " as strong as its secret); use secrets.token_urlsafe(32)."
        )
    return _secret_bytes(secret)


def _app_secret(app: Flask) -> bytes:
    secret = validate_nginx_secret(app.config.get(SECRET_KEY_CONFIG) or None)
    if secret is None:
        raise ConfigurationError(
            f"nginx secure links need {SECRET_KEY_CONFIG}: set it to the secret"
            ' written in nginx\'s secure_link_md5 "..." (a long random value,'
            " for example secrets.token_urlsafe(32))."
        )
    return secret


def _client_address(remote_addr: str | bool | None) -> str | None:
    if remote_addr is True:
        # As nginx's $remote_addr sees it: behind another proxy, set up
        # werkzeug's ProxyFix so that this is the client, not the proxy.
        return request.remote_addr or ""
    if remote_addr is False or remote_addr is None:
        return None
    return str(remote_addr)


def nginx_secure_url_for(
    endpoint: str,
    expires_in: int | float | datetime.timedelta | None = None,
    *,
    remote_addr: str | bool | None = None,
    **values: t.Any,
) -> str:
    """Build a URL with :func:`flask.url_for` that nginx's ``secure_link`` accepts.

    Used like :func:`~flask_download.signed_url_for`, for a route that nginx
    serves itself from the same directory (a ``location`` with
    ``secure_link`` and ``alias``, see :func:`nginx_secure_link`), so that
    the download never reaches the application. The secret is the app's
    ``DOWNLOAD_NGINX_SECURE_LINK_SECRET``. Protect the Flask view of the
    same route with :func:`nginx_secure_link_required`, so that it checks
    the same links wherever nginx does not answer first.

    :param endpoint: the endpoint of the route nginx mirrors.
    :param expires_in: lifetime in seconds or a :class:`~datetime.timedelta`;
        default ``DOWNLOAD_SIGNED_MAX_AGE``.
    :param remote_addr: bind the link to a client address (the current
        request's with ``True``); the nginx configuration must then use
        ``$remote_addr``.
    :param values: URL variables, and ``_external``, ``_scheme`` as for
        ``url_for``. Query parameters are not allowed: nginx's hash covers
        only the path.
    :raises ConfigurationError: no (or a weak) secret in the config, a
        non-positive ``expires_in``, a query parameter in ``values``, or a
        route whose host or subdomain has URL variables (nginx's hash does
        not cover the host: use :func:`~flask_download.signed_url_for`).
    """
    from .settings import link_expiry

    app = t.cast("Flask", current_app._get_current_object())  # type: ignore[attr-defined]
    secret = _app_secret(app)
    for rule in _endpoint_rules(app, endpoint):
        _check_path_only(rule)
    now = _now()
    stamp = link_expiry(app, expires_in, now)
    url = urlsplit(url_for(endpoint, **values))
    if url.query or url.fragment:
        raise ConfigurationError(
            "nginx's secure_link hash covers the path only: pass no query"
            " parameters or _anchor to nginx_secure_url_for()."
        )
    link = nginx_secure_link(
        unquote(url.path, errors="surrogateescape"),
        secret=secret,
        expires=stamp,
        remote_addr=_client_address(remote_addr),
    )
    return f"{url.scheme}://{url.netloc}{link}" if url.netloc else link


def _endpoint_rules(app: Flask, endpoint: str) -> list[t.Any]:
    """The routes ``url_for`` may build ``endpoint`` with, a relative
    ``".name"`` read as ``url_for`` reads it; none for an unknown endpoint
    (``url_for`` then raises its ``BuildError``)."""
    if endpoint[:1] == "." and has_request_context():
        blueprint = request.blueprint
        endpoint = endpoint[1:] if blueprint is None else f"{blueprint}{endpoint}"
    try:
        return list(app.url_map.iter_rules(endpoint))
    except KeyError:
        return []


def _check_path_only(rule: t.Any) -> None:
    """Refuse a route whose host or subdomain holds URL variables (a tenant):
    nginx's hash covers the path only, so a link made for one tenant would
    open another's file of the same path.

    :raises ConfigurationError: saying what to do instead.
    """
    for part in (rule.subdomain, rule.host):
        if part and "<" in part:
            raise ConfigurationError(
                f"The route {rule.rule!r} ({rule.endpoint}) takes {part!r} from"
                " the host, which nginx's secure_link hash does not cover: a"
                " link made for one host would open the same path on another."
                " Put the variable in the path, or use signed_url_for and"
                " signature_required, which bind host and subdomain variables."
            )


def check_nginx_secure_link(*, remote_addr: bool = False) -> None:
    """Check the current request's ``md5`` and ``expires`` as nginx would.

    :param remote_addr: the link is bound to the client's address.
    :raises InvalidSignature: missing or wrong hash (403).
    :raises SignatureExpired: the link expired (410).
    :raises ConfigurationError: no (or a weak) secret in the config, or the
        route takes URL variables from the host (see
        :func:`nginx_secure_url_for`).
    """
    secret = _app_secret(t.cast("Flask", current_app._get_current_object()))  # type: ignore[attr-defined]
    if request.url_rule is not None:
        _check_path_only(request.url_rule)
    # nginx reads $arg_md5 and $arg_expires from the raw query string: the
    # first "name=" (any case) at the start or after "&", not percent-decoded.
    query = request.query_string
    md5 = _nginx_arg(query, b"md5")
    expires = _nginx_arg(query, b"expires")
    if md5 is None and expires is None:
        raise InvalidSignature("This link needs a signature: ask for a new link.")
    # nginx hashes $uri: the decoded path, script root included (the app may
    # be mounted below the server's root), as raw bytes (WSGI gives them as
    # latin-1 text), so names that are not UTF-8 match too.
    environ = request.environ
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    stamp = verify_nginx_secure_link(
        path.encode("latin-1", "replace"),
        (md5 or b"").decode("latin-1"),
        (expires or b"").decode("latin-1"),
        secret=secret,
        remote_addr=_client_address(remote_addr or None),
    )
    # As for signed_url_for links: a presigned storage redirect, and the
    # response's caching, end with the link.
    from .signing import _LINK_EXPIRES
    from .signing import _private_until

    environ[_LINK_EXPIRES] = min(environ.get(_LINK_EXPIRES, stamp), stamp)
    after_this_request(functools.partial(_private_until, stamp))


def _nginx_arg(query: bytes, name: bytes) -> bytes | None:
    """The value of ``$arg_<name>`` in nginx (``ngx_http_arg``)."""
    lowered = query.lower()
    needle = name.lower() + b"="
    start = lowered.find(needle)
    while start != -1:
        if start == 0 or query[start - 1 : start] == b"&":
            value = query[start + len(needle) :]
            return value.partition(b"&")[0]
        start = lowered.find(needle, start + 1)
    return None


@t.overload
def nginx_secure_link_required(view: F) -> F: ...
@t.overload
def nginx_secure_link_required(
    view: None = None, *, remote_addr: bool = False
) -> cabc.Callable[[F], F]: ...
def nginx_secure_link_required(
    view: F | None = None, *, remote_addr: bool = False
) -> F | cabc.Callable[[F], F]:
    """Check links made by :func:`nginx_secure_url_for` in the app itself.

    For the Flask view of a route that nginx serves with ``secure_link``:
    wherever nginx does not answer first (development server, tests, a
    deployment without that location), the view accepts the same links and
    refuses the rest, 403 for a missing or wrong hash and 410 for an
    expired link.

    Like :func:`~flask_download.signature_required`, it also decorates a
    class-based view (:class:`flask.views.View`), returning a subclass.

    :param remote_addr: links are bound to the client's address.
    """

    def decorator(view: F) -> F:
        if isinstance(view, type):
            if not issubclass(view, View):
                raise TypeError(
                    "nginx_secure_link_required decorates a view function or a"
                    f" flask.views.View subclass, not the class {view.__qualname__}."
                )
            check = nginx_secure_link_required(remote_addr=remote_addr)
            namespace = {
                "decorators": [*view.decorators, check],
                "__module__": view.__module__,
                "__qualname__": view.__qualname__,
                "__doc__": view.__doc__,
            }
            return t.cast(F, type(view.__name__, (view,), namespace))

        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            check_nginx_secure_link(remote_addr=remote_addr)
            return current_app.ensure_sync(view)(*args, **kwargs)

        return t.cast(F, wrapper)

    if view is None:
        return decorator
    return decorator(view)


# -- Amazon CloudFront ---------------------------------------------------------


def _cloudfront_signer(key_pair_id: str, private_key: t.Any) -> t.Any:
    signers = require("botocore.signers", "cdn", "CloudFront signatures")
    serialization = require(
        "cryptography.hazmat.primitives.serialization", "cdn", "CloudFront signatures"
    )
    hashes = require(
        "cryptography.hazmat.primitives.hashes", "cdn", "CloudFront signatures"
    )
    padding = require(
        "cryptography.hazmat.primitives.asymmetric.padding",
        "cdn",
        "CloudFront signatures",
    )
    if not key_pair_id or not isinstance(key_pair_id, str):
        raise ConfigurationError(
            "key_pair_id must be the ID of the CloudFront public key (or key"
            f" pair), not {key_pair_id!r}."
        )
    if isinstance(private_key, (str, bytes)):
        pem = private_key.encode() if isinstance(private_key, str) else private_key
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as e:
            raise ConfigurationError(
                "private_key must be an unencrypted PEM RSA private key (or a"
                f" loaded cryptography key): {e}"
            ) from None
    else:
        key = private_key
    if not hasattr(key, "sign") or not hasattr(key, "key_size"):
        raise ConfigurationError(
            f"private_key must be an RSA private key, not {type(key).__name__}."
        )

    def rsa_signer(message: bytes) -> bytes:
        # CloudFront verifies RSA PKCS #1 v1.5 signatures over SHA-1.
        return t.cast(bytes, key.sign(message, padding.PKCS1v15(), hashes.SHA1()))

    return signers.CloudFrontSigner(key_pair_id, rsa_signer)


def _as_datetime(moment: Expiry) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(
        _expiry_timestamp(moment), datetime.timezone.utc
    )


def _source_ip(ip_address: str) -> str:
    try:
        network = ipaddress.ip_network(ip_address, strict=False)
    except ValueError:
        raise ConfigurationError(
            f"ip_address must be an IP address or a CIDR block, not {ip_address!r}."
        ) from None
    return str(network)  # "/32" (or "/128") added to a bare address


# What stays as it is in a CloudFront URL: RFC 3986's reserved and
# unreserved characters and existing escapes, but "*" (and, in the path, "?"
# cannot occur): a literal "*" in a policy's Resource is a wildcard.
_CF_PATH_SAFE = "/%:@!$&'()+,;=~-._"
_CF_QUERY_SAFE = _CF_PATH_SAFE + "?"
# A "%" that does not start an escape: a client sends it as "%25".
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _cloudfront_url(url: str, wildcard: bool = False) -> str:
    """``url`` as a client will request it, so that the signature matches.

    Spaces, non-ASCII and other characters a client percent-encodes are
    encoded here, and so is a ``%`` that starts no escape (``100%.pdf``);
    so is ``*``, which a policy's ``Resource`` would read as a wildcard over
    other files, unless ``wildcard`` asks for one (signed cookies for a
    folder). Existing escapes are kept. The fragment is left out: a client
    never sends it.
    """
    parts = urlsplit(url)
    star = "*" if wildcard else ""
    path = quote(_STRAY_PERCENT.sub("%25", parts.path), safe=_CF_PATH_SAFE + star)
    query = quote(_STRAY_PERCENT.sub("%25", parts.query), safe=_CF_QUERY_SAFE + star)
    return urlunsplit(parts._replace(path=path, query=query, fragment=""))


def _with_fragment(signed: str, url: str) -> str:
    # The fragment goes after the signature's parameters, as in any URL.
    fragment = urlsplit(url).fragment
    return f"{signed}#{fragment}" if fragment else signed


def _cloudfront_policy(
    signer: t.Any,
    url: str,
    expires: Expiry | None,
    policy: str | cabc.Mapping[str, t.Any] | None,
    ip_address: str | None,
    not_before: Expiry | None,
) -> str | None:
    """The custom policy to sign, or ``None`` for a canned policy."""
    if policy is None:
        if ip_address is None and not_before is None:
            return None
        if expires is None:
            raise ConfigurationError("A CloudFront link needs 'expires'.")
        ends = _as_datetime(expires)
        starts = None if not_before is None else _as_datetime(not_before)
        if starts is not None and starts >= ends:
            # CloudFront would refuse the link at every moment.
            raise ValueError(
                f"not_before ({starts.isoformat()}) must be before expires"
                f" ({ends.isoformat()}): such a link never works."
            )
        built = signer.build_policy(
            url,
            ends,
            date_greater_than=starts,
            ip_address=None if ip_address is None else _source_ip(ip_address),
        )
        return t.cast(str, built)
    if ip_address is not None or not_before is not None:
        raise ConfigurationError(
            "Pass conditions either in 'policy' or as ip_address/not_before, not both."
        )
    if isinstance(policy, str):
        return policy
    document = json.loads(json.dumps(policy))
    statements = document.get("Statement") if isinstance(document, dict) else None
    if (
        not isinstance(statements, list)
        or len(statements) != 1
        or not isinstance(statements[0], dict)
    ):
        # CloudFront takes one statement only: a policy with more is refused
        # on every request.
        raise ConfigurationError(
            "A CloudFront custom policy is a mapping with a 'Statement' list of"
            " exactly one statement (a mapping)."
        )
    (statement,) = statements
    # Without a Resource a signed URL opens every file of every distribution
    # that trusts the key: default to the URL being signed.
    statement.setdefault("Resource", url)
    condition = statement.setdefault("Condition", {})
    if not isinstance(condition, dict):
        raise ConfigurationError("A CloudFront policy's 'Condition' is a mapping.")
    if "DateLessThan" not in condition:
        if expires is None:
            raise ConfigurationError(
                "A CloudFront policy needs a DateLessThan: pass 'expires'."
            )
        stamp = _expiry_timestamp(expires)
        condition["DateLessThan"] = {"AWS:EpochTime": stamp}
    return json.dumps(document, separators=(",", ":"))


def cloudfront_signed_url(
    url: str,
    *,
    key_pair_id: str,
    private_key: t.Any,
    expires: Expiry | None,
    policy: str | cabc.Mapping[str, t.Any] | None = None,
    ip_address: str | None = None,
    not_before: Expiry | None = None,
) -> str:
    """Sign ``url`` for Amazon CloudFront (a distribution with trusted keys).

    Without conditions the URL carries a canned policy (``Expires``,
    ``Signature``, ``Key-Pair-Id``). With ``ip_address`` or ``not_before``,
    or an explicit ``policy``, it carries a custom policy (``Policy``
    instead of ``Expires``). Signed with botocore's ``CloudFrontSigner``
    and ``cryptography`` (extra ``Flask-Download[cdn]``).

    :param url: the CloudFront URL of the file (``https://d111.cloudfront.net/a.pdf``).
        Characters a client percent-encodes (spaces, non-ASCII) are encoded
        as it will request them, and so is ``*``: a link names one file,
        never a wildcard (use ``policy`` for that). A ``#fragment`` is not
        signed and stays at the end of the link.
    :param key_pair_id: the ID of the public key registered in CloudFront.
    :param private_key: the matching RSA private key: PEM text or bytes, or
        a loaded ``cryptography`` key. Keep it out of the code (a secret
        manager, an environment variable).
    :param expires: when the URL stops working: a
        :class:`~datetime.datetime` (naive means UTC), a
        :class:`~datetime.timedelta` from now, or a Unix time. May be
        ``None`` when ``policy`` has its own ``DateLessThan``.
    :param policy: a custom policy, as JSON text (signed as given) or a
        mapping with one statement (``Resource`` defaults to ``url`` and
        ``DateLessThan`` to ``expires``). The ``Resource`` may use ``*``
        wildcards.
    :param ip_address: only this client address or CIDR block may use it.
    :param not_before: the URL works only from this moment on.
    :raises ConfigurationError: a bad key, key ID, address or policy.
    :raises ValueError: ``not_before`` is not before ``expires``.
    :raises ImportError: ``botocore`` or ``cryptography`` is not installed.
    """
    signer = _cloudfront_signer(key_pair_id, private_key)
    given = url
    url = _cloudfront_url(url)
    custom = _cloudfront_policy(signer, url, expires, policy, ip_address, not_before)
    if custom is None:
        if expires is None:
            raise ConfigurationError("A CloudFront link needs 'expires'.")
        signed = signer.generate_presigned_url(url, _as_datetime(expires))
    else:
        signed = signer.generate_presigned_url(url, policy=custom)
    return _with_fragment(t.cast(str, signed), given)


def cloudfront_signed_cookies(
    url: str,
    *,
    key_pair_id: str,
    private_key: t.Any,
    expires: Expiry | None,
    policy: str | cabc.Mapping[str, t.Any] | None = None,
    ip_address: str | None = None,
    not_before: Expiry | None = None,
) -> dict[str, str]:
    """CloudFront signed cookies for ``url`` (a wildcard covers many files).

    Returns the cookies to set, by name: ``CloudFront-Expires`` (canned
    policy) or ``CloudFront-Policy`` (custom policy), ``CloudFront-Signature``
    and ``CloudFront-Key-Pair-Id``. A canned policy covers exactly ``url``;
    use a ``*`` in ``url`` (which makes the policy custom) for a folder::

        cookies = cloudfront_signed_cookies(
            "https://d111.cloudfront.net/albums/42/*", ...
        )
        for name, value in cookies.items():
            response.set_cookie(name, value, domain=".example.com",
                                secure=True, httponly=True)

    The arguments are those of :func:`cloudfront_signed_url`.
    """
    signer = _cloudfront_signer(key_pair_id, private_key)
    url = _cloudfront_url(url, wildcard=True)
    if policy is None and "*" in url and ip_address is None and not_before is None:
        # A canned policy cannot hold a wildcard: CloudFront needs it custom.
        policy = {"Statement": [{"Resource": url}]}
    custom = _cloudfront_policy(signer, url, expires, policy, ip_address, not_before)
    if custom is None:
        if expires is None:
            raise ConfigurationError("CloudFront cookies need 'expires'.")
        stamp = _expiry_timestamp(expires)
        canned = signer.build_policy(url, _as_datetime(stamp))
        signature = signer.rsa_signer(canned.encode())
        head = {"CloudFront-Expires": str(stamp)}
    else:
        signature = signer.rsa_signer(custom.encode())
        head = {"CloudFront-Policy": signer._url_b64encode(custom.encode()).decode()}
    return {
        **head,
        "CloudFront-Signature": signer._url_b64encode(signature).decode(),
        "CloudFront-Key-Pair-Id": key_pair_id,
    }


__all__ = [
    "check_nginx_secure_link",
    "cloudfront_signed_cookies",
    "cloudfront_signed_url",
    "nginx_secure_link",
    "nginx_secure_link_required",
    "nginx_secure_url_for",
    "verify_nginx_secure_link",
]
