"""Where webhooks may point: the operator's allow-list (``HQ_WEBHOOK_ALLOW``).

A webhook must not become a way to reach internal services, so a URL is checked twice: when the
webhook is created (its host and port must match an entry), and before every try, after DNS
resolution: every address the name resolves to must be allowed, and the request goes to the
address that was checked (no second lookup, no redirects followed).

Entries, comma-separated:

- an address or network, with an optional port: ``127.0.0.1:9000``, ``10.1.2.0/24``,
  ``[::1]:9000``, ``[fd00::/8]:443``. Any address in it is allowed, public or not.
- a host name, with an optional port: ``hooks.example.com``, ``hooks.example.com:8443``. The
  name is allowed, but only to the *public* addresses it resolves to: a private, loopback,
  link-local or reserved address is reached only when an address entry lists it, so a changed
  DNS record cannot turn an allowed name into a way in.

Without a port an entry allows every port. An empty list (the default) allows nothing: no
webhook can be created until the operator names where they may go.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from hq import errors

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "HQ_WEBHOOK_ALLOW"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Entry:
    """One allow-list entry: a host name or a network, and a port (None: any)."""

    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def allows_port(self, port: int) -> bool:
        return self.port is None or self.port == port


@dataclass(frozen=True)
class Target:
    """A webhook URL, taken apart."""

    scheme: str
    host: str  # lower case; an IPv6 address without its brackets
    port: int
    address: IPAddress | None  # the host, when it is an address literal


def _port(text: str, entry: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{SETTING}: {entry!r} has no valid port (1-65535)")
    return int(text)


def parse_entry(entry: str) -> Entry:
    """One entry of the list; ValueError naming it when it is none of the forms."""
    host, port = entry.lower(), None
    if host.startswith("["):
        inside, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{SETTING}: {entry!r}: write an IPv6 entry as [addr]:port")
        host, port = inside, (_port(rest[1:], entry) if rest else None)
    elif host.count(":") == 1:
        host, text = host.split(":")
        port = _port(text, entry)
    try:
        return Entry(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    if not HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"{SETTING}: {entry!r} is not a host name, an address or a network (CIDR)")
    return Entry(host=host, port=port)


def parse_allow(text: str) -> tuple[Entry, ...]:
    """The comma-separated list; empty parts are skipped."""
    return tuple(parse_entry(part.strip()) for part in text.split(",") if part.strip())


def parse_target(url: str) -> Target:
    """The URL's scheme, host and port, or ValidationFailed saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise errors.ValidationFailed(f"webhook URL {url!r}: {exc}", field="url") from exc
    if parts.scheme not in DEFAULT_PORTS:
        raise errors.ValidationFailed(
            f"webhook URL {url!r}: the scheme must be http or https", field="url"
        )
    if not parts.hostname:
        raise errors.ValidationFailed(f"webhook URL {url!r} names no host", field="url")
    if parts.username is not None or parts.password is not None:
        raise errors.ValidationFailed(
            f"webhook URL {url!r}: no user or password in the URL; HQ signs each body instead",
            field="url",
        )
    host = parts.hostname.lower()
    try:
        address: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    return Target(
        scheme=parts.scheme, host=host, port=port or DEFAULT_PORTS[parts.scheme], address=address
    )


def _listed(address: IPAddress, port: int, allow: Sequence[Entry]) -> bool:
    return any(
        e.network is not None and address in e.network and e.allows_port(port) for e in allow
    )


def check_url(url: str, allow: Sequence[Entry]) -> Target:
    """The URL's target when the allow-list lets a webhook point there, else ValidationFailed
    naming the URL and the setting (checked at creation)."""
    target = parse_target(url)
    if not allow:
        raise errors.ValidationFailed(
            f"webhooks are disabled on this server: {SETTING} is empty; an operator lists "
            f"the hosts or networks webhooks may reach (e.g. {target.host}:{target.port})",
            field="url",
        )
    if target.address is not None:
        ok = _listed(target.address, target.port, allow)
    else:
        ok = any(e.host == target.host and e.allows_port(target.port) for e in allow)
    if not ok:
        raise errors.ValidationFailed(
            f"webhook URL {url!r}: {target.host} port {target.port} is not in {SETTING}; "
            "ask an operator to add it, or use a listed host",
            field="url",
        )
    return target


def address_allowed(target: Target, address: IPAddress, allow: Sequence[Entry]) -> bool:
    """Whether one address ``target``'s host resolved to may be reached (checked per try)."""
    if _listed(address, target.port, allow):
        return True
    by_name = any(e.host == target.host and e.allows_port(target.port) for e in allow)
    return by_name and address.is_global


async def resolve(target: Target, allow: Sequence[Entry]) -> IPAddress:
    """The address to send to: every address the host resolves to must be allowed (one that
    is not means the name now points somewhere it must not); PermissionError else."""
    if target.address is not None:
        addresses = [target.address]
    else:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        # An IPv6 link-local answer carries its zone ("fe80::1%eth0"): the address is before it.
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [str(a) for a in addresses if not address_allowed(target, a, allow)]
    if refused or not addresses:
        raise PermissionError(
            f"{target.host} resolves to {', '.join(refused) or 'nothing'}, "
            f"not allowed by {SETTING}; nothing was sent"
        )
    return addresses[0]
