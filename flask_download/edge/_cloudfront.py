"""Amazon CloudFront signed URLs and signed cookies (botocore's CloudFrontSigner)."""

from __future__ import annotations

import collections.abc as cabc
import datetime
import ipaddress
import json
import re
import typing as t
from urllib.parse import quote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from .._compat import require
from ..exceptions import ConfigurationError
from ._nginx import _expiry_timestamp
from ._nginx import Expiry

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
# unreserved characters and existing escapes, but "*" and "?": in a custom
# policy's Resource "*" matches any characters and "?" any one character, so
# a "?" inside the query (RFC 3986 allows it there) goes out as "%3F". The
# "?" that starts the query is one too, and cannot be escaped.
_CF_PATH_SAFE = "/%:@!$&'()+,;=~-._"
_CF_QUERY_SAFE = _CF_PATH_SAFE
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
