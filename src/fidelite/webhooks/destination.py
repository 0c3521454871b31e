"""Where a webhook may be sent: the server-side request forgery (SSRF) guard.

A subscription URL is chosen by whoever holds an admin key; without this guard it
could make the server POST to itself, to the cloud metadata service (credentials) or
to machines on the private network. Rules, applied to *every* address the host name
resolves to (and again before each delivery, since DNS answers may change):

* only ``http`` and ``https``;
* never: link-local (169.254.0.0/16, fe80::/10, which hold the metadata services),
  known metadata addresses (fd00:ec2::254, 100.100.100.200), unspecified (0.0.0.0,
  ::), multicast and reserved ranges;
* loopback (127.0.0.0/8, ::1) and private ranges (10/8, 172.16/12, 192.168/16,
  100.64/10, fc00::/7) only with ``allow_private=True``, an explicit development
  setting (a receiver on the developer's own machine). The refusal says how to allow
  them where the user is (:data:`PRIVATE_ALLOWED_BY`, or the caller's ``allowed_by``):
  this module imports neither the CLI nor the API, so it names both.

The connection is made to the address that was checked (:func:`pin`): no second DNS
lookup can steer it elsewhere (DNS rebinding); the original name still goes in the
``Host`` header and, for https, in TLS (SNI and the certificate check).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from fidelite.webhooks.errors import UnsafeURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: private in practice


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


PRIVATE_ALLOWED_BY = (
    "allowed only when private destinations are allowed (the CLI's --allow-private, "
    "allow_private=True in code), for development"
)
"""How a refusal of a loopback or private address says it can be allowed; a caller that
knows where its user is (the API, which never allows them) gives its own words."""


def refusal(
    address: IPAddress, *, allow_private: bool, allowed_by: str = PRIVATE_ALLOWED_BY
) -> str | None:
    """Why ``address`` may not receive webhooks (None when it may); a loopback or
    private address's reason ends with ``allowed_by``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "is a cloud metadata address"
    if address.is_link_local:
        return "is link-local"
    if address.is_unspecified or address.is_multicast:
        return "is not a unicast host address"
    if address.is_loopback:  # before "reserved": ::1 lies in the reserved ::/8
        return None if allow_private else f"is loopback (this server itself); {allowed_by}"
    if address.is_private or address in SHARED:
        return None if allow_private else f"is in a private range; {allowed_by}"
    if address.is_reserved:
        return "is not a unicast host address"
    if allow_private:
        return None
    if not address.is_global:
        return f"is not a public address; {allowed_by}"
    return None


@dataclass(frozen=True)
class Destination:
    """A checked URL, pinned to the address that was checked.

    ``connect_url`` names the address itself, so the connection goes where the check
    looked (no second DNS lookup); ``host_header`` and ``tls_name`` carry the original
    name for the HTTP ``Host`` header and for TLS (SNI and certificate check).
    """

    url: str
    connect_url: str
    host_header: str
    tls_name: str | None


def check_url(
    url: str,
    *,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
    field: str = "url",
    allowed_by: str = PRIVATE_ALLOWED_BY,
) -> str:
    """Return ``url`` if webhooks may be POSTed to it, else raise :class:`UnsafeURL`
    (``allowed_by``: see :func:`refusal`)."""
    return pin(url, allow_private=allow_private, resolve=resolve, field=field,
               allowed_by=allowed_by).url  # fmt: skip


def pin(
    url: str,
    *,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
    field: str = "url",
    allowed_by: str = PRIVATE_ALLOWED_BY,
) -> Destination:
    """Check ``url`` (see the module docstring) and pin it to its first address
    (``allowed_by``: see :func:`refusal`)."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("is empty", field=field)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"{url!r} is not a valid URL ({exc})", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(
            f"scheme {parts.scheme or '(none)'!r} is not allowed (only http and https)",
            field=field,
        )
    host = parts.hostname
    if not host:
        raise UnsafeURL(f"{url!r} names no host", field=field)
    if "@" in parts.netloc:  # even empty (http://@host/): the Host header would carry it
        raise UnsafeURL("must not carry credentials (user:password@)", field=field)
    if port == 0:
        raise UnsafeURL(f"{url!r}: port 0 is no port to send to (1 to 65535)", field=field)
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            raise UnsafeURL(f"host {host!r} does not resolve ({exc})", field=field) from None
    if not addresses:
        raise UnsafeURL(f"host {host!r} does not resolve", field=field)
    checked = [ipaddress.ip_address(text.split("%")[0]) for text in addresses]
    for text, address in zip(addresses, checked, strict=True):
        why = refusal(address, allow_private=allow_private, allowed_by=allowed_by)
        if why is not None:
            shown = host if host == text else f"{host} ({text})"
            raise UnsafeURL(f"host {shown} {why}", field=field)
    first = checked[0]
    literal = f"[{first}]" if first.version == 6 else str(first)
    connect = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    tls_name = host if parts.scheme == "https" else None
    return Destination(url.strip(), connect, _host_header(host, parts.port), tls_name)


def _host_header(host: str, port: int | None) -> str:
    """The ``Host`` header for ``host`` (as the URL names it, lower case) and the URL's
    explicit port, if any: never the URL's user information."""
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return name if port is None else f"{name}:{port}"
