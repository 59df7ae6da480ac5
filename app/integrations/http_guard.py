"""Outbound HTTP to URLs users give us (webhook subscriptions, rules' `call_webhook`), guarded
against server-side request forgery.

A URL is checked when it is saved and again when it is sent:

- only `http`/`https`, a host, no userinfo (`https://good@evil/`), no fragment, at most
  2000 characters, a numeric host only as a dotted-quad IPv4 or a bracketed IPv6 address
  (`2130706433`, `0177.0.0.1`, `0x7f.1` are refused rather than interpreted);
- the host is resolved and *every* address it resolves to must be public: loopback,
  private (RFC 1918), link-local, unique-local, CGNAT (100.64/10), multicast, unspecified,
  reserved, documentation and benchmarking ranges are refused, and so are IPv4-mapped,
  6to4, Teredo and NAT64 addresses that wrap one of those, and the cloud metadata
  addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200, …);
- at send time the connection goes to an address that was checked: `pinned()` tells the
  pinning transport (`pinning_client()`) which address each host may connect to, and a
  connection to any other host is refused — so a DNS answer that changes between the check
  and the connect (DNS rebinding) cannot reach an internal address. The URL keeps its
  host name, so TLS SNI, certificate verification and the Host header stay correct.

`RELATA_WEBHOOK_ALLOWED_PRIVATE_NETWORKS` (a list of CIDRs, addresses or host names, empty by
default) lets listed private targets through, for local development and tests. A metadata
address is allowed only when listed by itself, never by a network that contains it."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000
RESOLVE_TIMEOUT_SECONDS = 5.0

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack, ...
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))
METADATA_NAMES = frozenset(("metadata.google.internal", "metadata", "instance-data",
                            "instance-data.ec2.internal"))

# Refused whatever `is_global` says (some are "global" to Python but never a webhook receiver).
BLOCKED_NETWORKS: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10",
    "ff00::/8",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DOTTED_QUAD = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_NUMERIC_LOOKING = re.compile(r"^(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+))*\.?$", re.IGNORECASE)


class UnsafeURLError(ValueError):
    """The URL may not be called: why, in words a user can act on."""


@dataclass(frozen=True)
class AllowList:
    networks: tuple[Network, ...] = ()
    addresses: frozenset[IPAddress] = frozenset()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        networks: list[Network] = []
        addresses: set[IPAddress] = set()
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                if "/" in entry:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                else:
                    addresses.add(ipaddress.ip_address(entry.strip("[]")))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(addresses), frozenset(hosts))

    def allows(self, host: str, address: IPAddress) -> bool:
        if host in self.hosts or address in self.addresses:
            return True
        if address in METADATA_ADDRESSES:
            return False
        return any(address in network for network in self.networks)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class Policy:
    allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver = system_resolver


_policy: Policy | None = None


def policy() -> Policy:
    """The process's policy; from the settings unless `configure` set one."""
    global _policy
    if _policy is None:
        from app.config import get_settings

        _policy = Policy(AllowList.parse(get_settings().webhook_allowed_private_networks))
    return _policy


def configure(allow: Iterable[str] | None = None, resolver: Resolver | None = None) -> Policy:
    """Replace the process's policy (the worker at startup; tests)."""
    global _policy
    _policy = Policy(AllowList.parse(allow or ()), resolver or system_resolver)
    return _policy


def _embedded(address: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 one wraps (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def public_address(address: IPAddress) -> bool:
    inner = _embedded(address)
    if inner is not None and not public_address(inner):
        return False
    if address in METADATA_ADDRESSES:
        return False
    if any(address in network for network in BLOCKED_NETWORKS
           if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def check_address(host: str, address: IPAddress, allow: AllowList) -> None:
    if allow.allows(host, address):
        return
    if address in METADATA_ADDRESSES or (_embedded(address) in METADATA_ADDRESSES):
        raise UnsafeURLError(f"{host} is a cloud metadata address ({address})")
    if not public_address(address):
        shown = host if host == str(address) else f"{host} resolves to {address}, which"
        raise UnsafeURLError(f"{shown} is not a public internet address (loopback, "
                             "private, link-local or reserved addresses are refused)")


@dataclass(frozen=True)
class Target:
    """A checked URL: where its host may be connected to."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def parse_url(url: str) -> tuple[httpx.URL, str, int]:
    """Shape checks; no DNS. Returns the parsed URL, its host and port."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UnsafeURLError("a URL has no spaces or control characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UnsafeURLError(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURLError("only http:// and https:// URLs")
    if parsed.userinfo or "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        raise UnsafeURLError("a URL with a user name or password (user@host) is refused")
    if parsed.fragment or "#" in url:
        raise UnsafeURLError("a URL has no #fragment")
    host = parsed.host.lower().rstrip(".")
    if not host:
        raise UnsafeURLError("the URL has no host")
    if host in METADATA_NAMES:
        raise UnsafeURLError(f"{host} is a cloud metadata host")
    if ":" not in host and _NUMERIC_LOOKING.match(host) and not _DOTTED_QUAD.match(host):
        raise UnsafeURLError("a numeric host must be a dotted-quad IPv4 address "
                             "(decimal, octal and hexadecimal forms are refused)")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed, host, port


async def check_url(url: str, current: Policy | None = None) -> Target:
    """Parse, resolve and check; raises UnsafeURLError. Every resolved address must pass."""
    current = current or policy()
    _, host, port = parse_url(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                addresses = await current.resolver(host, port)
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise UnsafeURLError(f"{host} does not resolve") from exc
        if not addresses:
            raise UnsafeURLError(f"{host} does not resolve")
    for address in addresses:
        check_address(host, ipaddress.ip_address(address.split("%", 1)[0]), current.allow)
    return Target(url=url, host=host, port=port, addresses=tuple(addresses))


# Pinning: the connection goes where the check said.

_PINS: ContextVar[dict[tuple[str, int], str] | None] = ContextVar("relata_http_pins",
                                                                 default=None)


@contextlib.contextmanager
def pinned(target: Target) -> Iterator[None]:
    """Within this block, a pinning client connects only to `target`'s checked address."""
    token = _PINS.set({(target.host.strip("[]"), target.port): target.addresses[0]})
    try:
        yield
    finally:
        _PINS.reset(token)


class _PinningBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        pins = _PINS.get()
        if pins is not None:
            address = pins.get((host.lower().rstrip(".").strip("[]"), port))
            if address is None:
                raise httpcore.ConnectError(f"{host}:{port} was not checked: refused")
            host = address
        return await self._inner.connect_tcp(host, port, timeout=timeout,
                                             local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        if _PINS.get() is not None:
            raise httpcore.ConnectError("unix sockets are refused")
        return await self._inner.connect_unix_socket(path, timeout=timeout,
                                                     socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinning_client(*, max_connections: int = 100, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client whose connections made inside `pinned()` go to the pinned address.
    Outside `pinned()` it is an ordinary client (the SMS provider, configured by the admin).
    No proxies from the environment (a proxy would connect somewhere unchecked), no
    redirects followed."""
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections))
    pool = transport._pool
    pool._network_backend = _PinningBackend(pool._network_backend)
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                             **kwargs)


def is_pinning(client: httpx.AsyncClient) -> bool:
    transport = getattr(client, "_transport", None)
    pool = getattr(transport, "_pool", None)
    return isinstance(getattr(pool, "_network_backend", None), _PinningBackend)
