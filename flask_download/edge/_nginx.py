"""nginx secure_link: links made, checked as nginx checks them, built by url_for."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import math
import time
import typing as t
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import has_request_context
from flask import request
from flask import url_for

from .._context import app_object
from ..conditional import as_utc
from ..exceptions import ConfigurationError
from ..exceptions import InvalidSignature
from ..exceptions import SignatureExpired

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
    if isinstance(secret, (int, float)) and not isinstance(secret, bool):
        # Digits only, from an environment variable: from_prefixed_env()
        # reads them as JSON, a number (and a float loses digits).
        raise ConfigurationError(
            f"{SECRET_KEY_CONFIG} was read as the number {secret!r}, not a"
            " string: in an environment variable read by from_prefixed_env(),"
            f" quote it as JSON (FLASK_{SECRET_KEY_CONFIG}='\"...\"'), or use"
            " secrets.token_urlsafe(32), which is not all digits."
        )
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
    from ..settings import link_expiry

    app = app_object()
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
