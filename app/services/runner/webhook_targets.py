"""Where webhooks may go: public addresses only, unless the operator opens networks.

A ``webhook_url`` is checked twice. At submission its host is resolved and every address it
resolves to must be allowed (:func:`check_url`). At delivery the dispatcher's HTTP client
resolves the host again, checks every address again and connects to a checked address itself
(:class:`GuardedTransport`), so a name that resolves elsewhere by then (DNS rebinding) cannot
reach an address that was never checked. The Host header and TLS server name stay the URL's.

Refused by default: loopback, private, link-local (and so cloud metadata at 169.254.169.254),
shared, multicast, reserved and unspecified addresses, IPv6 ones included, and IPv6 forms that
embed an IPv4 address (``::ffff:127.0.0.1``, 6to4, NAT64). ``INF_WEBHOOK_ALLOW_NETWORKS`` (a
list of CIDRs) opens networks, e.g. a receiver inside the cluster.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from app.services.errors import InvalidInput, Issue

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to, as text
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]

METADATA = frozenset(map(ipaddress.ip_address, ("169.254.169.254", "fd00:ec2::254")))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """The target's host resolves to an address webhooks may not reach."""


class Unresolvable(Exception):
    """The target's host did not resolve (in time)."""


# Lookups that hang (a tenant's slow DNS) hold these threads only, not the loop's default
# executor, which resolves the LLM providers' hosts.
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, by the system resolver off the event loop."""
    lookup = partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        found = await asyncio.get_running_loop().run_in_executor(_LOOKUPS, lookup)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"{host} does not resolve: {exc}") from None
    return list(dict.fromkeys(str(entry[4][0]) for entry in found))


class AddressPolicy:
    """Resolves hosts (within ``timeout_s``) and refuses any not allowed to receive webhooks."""

    def __init__(
        self, allow: Iterable[IPNetwork], timeout_s: float, resolve: Resolve = system_resolve
    ) -> None:
        self.allow = tuple(allow)
        self.timeout_s = timeout_s
        self.resolve = resolve

    async def addresses(self, host: str, port: int) -> list[str]:
        """Every address of ``host``, all allowed; raises ``AddressRefused`` or ``Unresolvable``."""
        try:
            async with asyncio.timeout(self.timeout_s):
                found = list(await self.resolve(host, port))
        except TimeoutError:
            raise Unresolvable(f"{host} did not resolve within {self.timeout_s:g} s") from None
        if not found:
            raise Unresolvable(f"{host} resolves to no address")
        for address in found:
            if not self.allows(address):
                raise AddressRefused(f"address {address} is not allowed")
        return found

    def allows(self, text: str) -> bool:
        """Whether webhooks may connect to the address ``text``."""
        address = ipaddress.ip_address(text.split("%", 1)[0])
        target = _embedded(address)  # what an IPv6 form that carries IPv4 reaches
        if any(form in network for form in (address, target) for network in self.allow):
            return True
        return _public(target)


def _embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), or the address itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _public(address: IPAddress) -> bool:
    special = (
        address.is_private,
        address.is_loopback,
        address.is_link_local,
        address.is_multicast,
        address.is_reserved,
        address.is_unspecified,
        address in METADATA,
    )
    return address.is_global and not any(special)


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Refuse (``InvalidInput`` on ``webhook_url``) a URL webhooks may not be sent to."""
    try:
        await _check(url, policy)
    except (AddressRefused, Unresolvable, ValueError) as exc:
        raise InvalidInput(f"webhook_url: {exc}", [Issue("webhook_url", str(exc))]) from None


async def _check(url: str, policy: AddressPolicy) -> None:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not allowed")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    await policy.addresses(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme])


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that connects only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.addresses(host, port)
        except Unresolvable as exc:
            raise httpcore.ConnectError(str(exc)) from None
        failure = httpcore.ConnectError(f"no address of {host} answered")
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = httpcore.ConnectError(str(exc))
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a :class:`GuardedBackend` (no proxies: they would connect for us)."""

    def __init__(self, policy: AddressPolicy, limits: httpx.Limits | None = None) -> None:
        super().__init__(trust_env=False)
        chosen = limits or httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=chosen.max_connections,
            max_keepalive_connections=chosen.max_keepalive_connections,
            keepalive_expiry=chosen.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )
