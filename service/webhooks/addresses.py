"""Where a webhook may be sent: never to an address inside the service's own network.

A subscription's URL is checked when it is saved and again before every delivery: ``https``
only (unless ``SILOSPAN_WEBHOOKS_ALLOW_HTTP``), and every address its host resolves to must
be public, neither loopback, private, link-local (cloud metadata), multicast nor reserved
(unless ``SILOSPAN_WEBHOOKS_ALLOW_PRIVATE``). The delivery then connects to the address
that was checked, so a second DNS answer cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


class UnsafeUrl(ValueError):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    host: str
    address: str

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL with the checked address in place of the host, the Host header, and the
        TLS server name (so the certificate is still checked against the host)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rsplit("@", 1)[-1]
        extensions = {"sni_hostname": self.host} if parts.scheme == "https" else {}
        return url, {"Host": host_header}, extensions


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # Most specific first: Python counts link-local and loopback as private too.
    for label, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return label
    return None


def check_scheme(url: str, *, allow_http: bool) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrl("the URL must be an absolute https URL")
    if parts.scheme == "http" and not allow_http:
        raise UnsafeUrl("the URL must use https (SILOSPAN_WEBHOOKS_ALLOW_HTTP allows http)")
    if parts.username or parts.password:
        raise UnsafeUrl("the URL may not carry credentials")
    if parts.fragment:
        raise UnsafeUrl("the URL may not carry a fragment")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def resolve(url: str, *, allow_http: bool, allow_private: bool) -> Target:
    """Check ``url`` and resolve its host; raises ``UnsafeUrl`` saying why it is refused."""
    host, port = check_scheme(url, allow_http=allow_http)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve") from exc
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise UnsafeUrl(f"the host {host!r} does not resolve")
    if not allow_private:
        for text in addresses:
            reason = _forbidden(ipaddress.ip_address(text.split("%", 1)[0]))
            if reason:
                raise UnsafeUrl(
                    f"the host {host!r} resolves to a {reason} address ({text}); webhooks go "
                    "to public addresses only (SILOSPAN_WEBHOOKS_ALLOW_PRIVATE allows others)"
                )
    return Target(url=url, host=host, address=addresses[0])
