"""SSRF protection for fetch_url: only http(s), no credentials, no private addresses.

A URL is checked by resolving its host and refusing it when ANY resolved address is not
public (loopback, private, link-local incl. cloud metadata, CGNAT, unique-local, multicast,
reserved, unspecified, or an IPv6 form that embeds one of those), unless the user allowed
private addresses or the host explicitly.

DNS rebinding: `resolve_url` returns the addresses it checked, and fetch_url connects to one of
those addresses itself (keeping the Host header and TLS SNI of the name), so a second, hostile
DNS answer is never consulted. Every redirect hop goes through `resolve_url` again.

The URL is parsed with httpx2.URL, the same parser the HTTP client uses, so the host we check
is the host we connect to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import httpx2

from runtime.errors import ShunterError, ToolDenied

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
"""Well-known NAT64 prefix: DNS64 maps public IPv4 sites here on IPv6-only networks, so the
embedded IPv4 address decides (Python calls the whole prefix reserved)."""
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

_ALLOW_HINT = (
    "private and local addresses are blocked to protect the local network "
    "(a user can allow a host with tools.fetch_allow_hosts, or all with tools.fetch_allow_private)"
)


class UnresolvedHost(ShunterError):
    """The host name does not resolve (a typo, or no DNS): not a policy refusal."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the addresses that were checked; connect only to these."""

    url: httpx2.URL
    host: str
    """The host as sent in the Host header and TLS SNI (IDNA-encoded, no brackets)."""
    port: int
    addresses: list[str]


def blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be fetched ('loopback', 'link-local (cloud metadata)', ...), or None
    when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (IPv4 {embedded} inside IPv6)" if reason else None
        if ip in _UNIQUE_LOCAL:
            return "unique-local"
        if ip in _SITE_LOCAL:
            return "site-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata)" if ip in _METADATA else "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def parse_address(text: str) -> IPAddress | None:
    """An IP address from a URL host or a getaddrinfo answer ('fe80::1%eth0' included)."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def host_allowed(host: str, allow_hosts: Sequence[str]) -> bool:
    """True when `host` (a URL host) is listed: by name, by IP literal, or inside a CIDR entry
    when the URL host is itself an IP literal. A name is never matched by what it resolves
    to, so allowing '127.0.0.1' does not allow an arbitrary name that points there."""
    name = host.lower().rstrip(".")
    literal = parse_address(name)
    for entry in allow_hosts:
        entry = entry.strip().lower().rstrip(".").strip("[]")
        if not entry:
            continue
        if entry == name:
            return True
        if literal is not None:
            try:
                if literal in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def parse_url(url: str) -> httpx2.URL:
    """Parse and vet the URL's form: http(s), a host, no credentials. Raises ToolDenied."""
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, TypeError, ValueError) as e:
        raise ToolDenied(
            f"{url!r} is not a valid URL ({e}); pass a full http:// or https:// address."
        ) from None
    if parsed.scheme not in ("http", "https"):
        shown = f"{parsed.scheme}:" if parsed.scheme else "a URL without a scheme"
        raise ToolDenied(f"Only http and https URLs can be fetched, not {shown}; pass an http(s) address.")
    if parsed.userinfo:
        raise ToolDenied(
            "URLs with a user name or password are refused; remove the credentials from the URL."
        )
    if not parsed.raw_host:
        raise ToolDenied(f"{url!r} has no host name; pass a full http:// or https:// address.")
    return parsed


def resolve_url(url: str, *, allow_private: bool, allow_hosts: Sequence[str]) -> Target:
    """Check `url` and return the addresses it may be fetched from. Blocking (DNS).

    Raises ToolDenied for a refused URL and UnresolvedHost when the name does not resolve.
    """
    parsed = parse_url(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise UnresolvedHost(f"Could not resolve the host {host!r} ({reason}); check the URL.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnresolvedHost(f"Could not resolve the host {host!r} (no addresses); check the URL.")
    if not (allow_private or host_allowed(host, allow_hosts)):
        for text in addresses:
            ip = parse_address(text)
            reason = "unparseable" if ip is None else blocked_reason(ip)
            if reason:
                where = f"{host} is" if parse_address(host) == ip else f"{host} resolves to {text}, which is"
                article = "an" if reason[0] in "aeiou" else "a"
                raise ToolDenied(
                    f"Refusing to fetch {parsed}: {where} {article} {reason} address; {_ALLOW_HINT}."
                )
    return Target(parsed, host, port, addresses)


async def aresolve_url(url: str, *, allow_private: bool, allow_hosts: Sequence[str]) -> Target:
    """`resolve_url` with the DNS lookup in a thread, for async callers."""
    return await asyncio.to_thread(resolve_url, url, allow_private=allow_private, allow_hosts=allow_hosts)


def check_url(url: str, *, allow_private: bool, allow_hosts: Sequence[str]) -> None:
    """Raise ToolDenied (one sentence) unless `url` may be fetched; see `resolve_url`."""
    resolve_url(url, allow_private=allow_private, allow_hosts=allow_hosts)
