"""SSRF checks: which URLs, hosts, ports and addresses may be fetched."""

from __future__ import annotations

import collections.abc as cabc
import ipaddress
import typing as t
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from ..files import as_index
from ._base import _fail
from ._base import _refuse
from ._resolver import _resolve

# -- SSRF checks ----------------------------------------------------------------

# IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates): never
# fetched, whatever ``ipaddress`` thinks of them (its ``is_global`` changed
# between Python versions).
_SPECIAL_IPV4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network" (RFC 791)
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # shared address space, CGNAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (RFC 3927)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "192.0.2.0/24",  # documentation (RFC 5737)
        "192.31.196.0/24",  # AS112-v4 (RFC 7535)
        "192.52.193.0/24",  # AMT (RFC 7450)
        "192.88.99.0/24",  # 6to4 relay anycast (RFC 7526)
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # AS112 direct delegation (RFC 7534)
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast address
    )
)
# Global unicast (RFC 4291 §2.4): nothing outside it is fetched, unless it
# embeds an IPv4 address (below).
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# IANA IPv6 Special-Purpose Address Registry, inside 2000::/3.
_SPECIAL_IPV6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (Teredo is judged by its IPv4)
        "2001:db8::/32",  # documentation (RFC 3849)
        "2620:4f:8000::/48",  # AS112 direct delegation (RFC 7534)
        "3fff::/20",  # documentation (RFC 9637)
    )
)
# Prefixes that carry an IPv4 address in their last 32 bits: IPv4-compatible
# (RFC 4291 §2.5.5.1, "::" and "::1" included), IPv4-mapped (§2.5.5.2), SIIT
# (RFC 2765) and the NAT64 well-known prefix (RFC 6052).
_IPV4_IN_LAST_32 = tuple(
    ipaddress.IPv6Network(n)
    for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
_TEREDO = ipaddress.IPv6Network("2001::/32")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
# RFC 8215 local-use NAT64: the operator picks the prefix length, so the IPv4
# address may sit at any RFC 6052 §2.2 position; every candidate is judged.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _rfc6052_ipv4(packed: bytes, prefix_length: int) -> ipaddress.IPv4Address:
    # RFC 6052 §2.2: the IPv4 bits follow the prefix, skipping bits 64-71.
    start = prefix_length // 8
    if start >= 12:
        return ipaddress.IPv4Address(packed[12:16])
    head = packed[start:8]
    return ipaddress.IPv4Address(head + packed[9 : 9 + 4 - len(head)])


def _embedded_ipv4s(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses ``address`` stands for; empty if none."""
    if any(address in net for net in _IPV4_IN_LAST_32):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _LOCAL_NAT64:
        return [_rfc6052_ipv4(address.packed, n) for n in (48, 56, 64, 96)]
    if address in _SIX_TO_FOUR:
        return [t.cast(ipaddress.IPv4Address, address.sixtofour)]
    if address in _TEREDO:
        server, client = t.cast(
            "tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]", address.teredo
        )
        return [server, client]
    return []


def _isatap_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # RFC 5214 §6.1: interface identifier 0000:5efe or 0200:5efe (the "u"
    # bit set for a global IPv4 address; "g" taken either way), then IPv4.
    if (int(address) >> 32) & 0xFCFFFFFF != 0x00005EFE:
        return None
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def _public_ipv4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in net for net in _SPECIAL_IPV4)


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (safe to fetch from).

    IPv4: outside every special-purpose range (private, loopback,
    link-local, shared, documentation, benchmarking, multicast, reserved...).
    IPv6: inside ``2000::/3`` and outside its special-purpose ranges; an
    address that embeds an IPv4 one (mapped, compatible, SIIT, NAT64
    ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4, Teredo) is judged by that
    IPv4 address alone; an ISATAP address (interface identifier
    ``0:5efe:a.b.c.d``) must also embed a public IPv4 address. Anything
    unparseable, or with a zone (``%eth0``), is not public.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_ipv4(ip)
    if ip.scope_id is not None:
        return False  # zones belong to link-local and site-local addresses
    embedded = _embedded_ipv4s(ip)
    if embedded:
        return all(_public_ipv4(v4) for v4 in embedded)
    # A host with an ISATAP interface on that prefix sends it to the IPv4
    # address in its last 32 bits, inside its own network.
    isatap = _isatap_ipv4(ip)
    if isatap is not None and not _public_ipv4(isatap):
        return False
    return (
        ip in _GLOBAL_UNICAST
        and not any(ip in net for net in _SPECIAL_IPV6)
        and ip.is_global
    )


class _Target(t.NamedTuple):
    url: str
    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query sent in the request line
    host_header: str


def _allowed_form(entry: str) -> str:
    """An ``allowed_hosts`` entry as URL hosts are compared: lowercase, no
    trailing dot or brackets, an internationalised name in ASCII."""
    entry = entry.lower().rstrip(".").strip("[]")
    dot = "." if entry.startswith(".") else ""
    name = entry[len(dot) :]
    # IDNA reads the ideographic and full-width full stops as dots: one of
    # them at the end is a trailing dot too.
    return dot + (_ascii_host(name).rstrip(".") or name)


def _host_allowed(host: str, allowed_hosts: cabc.Collection[str]) -> bool:
    """Whether ``host`` (ASCII, lowercase) matches an entry of
    ``allowed_hosts`` (as :func:`_allowed_form` makes them)."""
    for allowed in allowed_hosts:
        if host == allowed:
            return True
        # ".example.com" allows example.com and its subdomains (as Django's
        # ALLOWED_HOSTS does).
        if allowed.startswith(".") and (host == allowed[1:] or host.endswith(allowed)):
            return True
    return False


def _ascii_host(host: str) -> str:
    """``host`` as resolved and sent (``Host``, SNI): an internationalised
    name in its ASCII (IDNA) form, as ``getaddrinfo`` looks it up; ``""``
    when it cannot be a host name (a zone ID or a percent-encoded name,
    an invalid label)."""
    if "%" in host:
        # "fe80::1%25eth0" picks an interface; "%31%32%37.0.0.1" is no name
        # a resolver knows.
        return ""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def check_allowed_ports(
    allowed_ports: cabc.Collection[int] | None, where: str
) -> frozenset[int] | None:
    """``allowed_ports`` as a set, checked: TCP port numbers (1 to 65535).

    :raises ConfigurationError: anything else (a string, a name, 0...).
    """
    if allowed_ports is None:
        return None
    if isinstance(allowed_ports, (str, bytes)) or not isinstance(
        allowed_ports, cabc.Iterable
    ):
        raise ConfigurationError(
            f"{where} must be a collection of port numbers, not {allowed_ports!r}."
        )
    ports = set()
    for port in allowed_ports:
        try:
            number = as_index(port, "port")  # numpy.int64 too, never a bool
        except TypeError:
            number = 0
        if not 0 < number < 65536:
            raise ConfigurationError(
                f"{where}: {port!r} is not a TCP port number (1 to 65535)."
            )
        ports.add(number)
    return frozenset(ports)


def _vet(
    url: str,
    allowed_hosts: cabc.Collection[str] | None,
    allowed_ports: cabc.Collection[int] | None = None,
    timeout: float | None = None,
) -> _Target:
    """Check a URL and resolve its host to a vetted address.

    :param timeout: the longest wait for the host name's addresses.
    :raises DisallowedURL: the URL may not be fetched.
    :raises UpstreamError: the host name does not resolve.
    :raises UpstreamTimeout: the name was not resolved within ``timeout``.
    """
    if isinstance(allowed_hosts, str):
        allowed_hosts = (allowed_hosts,)  # one host, not its letters
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise _refuse(f"{url!r} contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise _refuse(f"{url!r} is not a valid URL: {e}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse(f"{url!r}: only http and https URLs are fetched.")
    if "@" in parts.netloc:
        # "http://allowed.example@evil.example/" goes to evil.example.
        raise _refuse(f"{url!r}: URLs with user info are refused.")
    # The trailing dot stripped after the conversion too: IDNA reads the
    # ideographic and full-width full stops as dots.
    host = _ascii_host((parts.hostname or "").rstrip(".")).rstrip(".")
    if not host:
        raise _refuse(f"{url!r} has no valid host.")
    if port is None:
        port = 443 if scheme == "https" else 80
    elif port == 0:
        raise _refuse(f"{url!r} has no valid port.")
    if allowed_ports is not None and port not in allowed_ports:
        raise _refuse(f"{url!r}: port {port} is not in the allowed ports.")
    # An IPv6 entry may be written "[::1]"; the URL's host name is "::1".
    if allowed_hosts is not None:
        allowed_hosts = [_allowed_form(entry) for entry in allowed_hosts]
    listed = allowed_hosts is not None and host in allowed_hosts
    if allowed_hosts is not None and not (listed or _host_allowed(host, allowed_hosts)):
        raise _refuse(f"{host!r} is not in the allowed hosts.")
    try:
        infos = _resolve(host, port, timeout)
    except (OSError, UnicodeError) as e:
        raise _fail(f"cannot resolve {host!r}: {e}.") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise _fail(f"{host!r} has no address.")
    if not listed:
        # Every address must be public: a name with one private record among
        # public ones is a rebinding attempt as much as an all-private one.
        for address in addresses:
            if not is_public_address(address):
                raise _refuse(
                    f"{host!r} resolves to the non-public address {address};"
                    " add the host to allowed_hosts (DOWNLOAD_HTTP_ALLOWED_HOSTS)"
                    " to allow it."
                )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    default_port = port == (443 if scheme == "https" else 80)
    name = f"[{host}]" if ":" in host else host
    host_header = name if default_port else f"{name}:{port}"
    return _Target(url, scheme, host, port, addresses[0], target, host_header)
