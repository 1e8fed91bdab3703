"""Which addresses webhooks may reach: public ones, plus the networks an operator opens.
(Pure decisions; resolving names is covered by the service tests.)"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from app.services.runner.webhook_targets import AddressPolicy, AddressRefused, Unresolvable

NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
    "fe80::1",
    "fe80::1%2",
    "fc00::1",
    "fd00:ec2::254",
    "ff02::1",
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14"]


def policy(*networks: str) -> AddressPolicy:
    return AddressPolicy([ipaddress.ip_network(n) for n in networks], timeout_s=1.0)


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    assert not policy().allows(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert policy().allows(address)


def test_the_allow_list_opens_exactly_its_networks() -> None:
    opened = policy("127.0.0.0/8", "10.1.0.0/16")
    assert opened.allows("127.0.0.1")
    assert opened.allows("::ffff:127.0.0.1")
    assert opened.allows("10.1.2.3")
    assert not opened.allows("10.2.0.1")
    assert not opened.allows("::1")
    assert not opened.allows("169.254.169.254")


async def test_one_refused_address_among_several_refuses_the_host() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "127.0.0.1"]

    checked = AddressPolicy([], timeout_s=1.0, resolve=resolve)
    with pytest.raises(AddressRefused, match=r"address 127\.0\.0\.1 is not allowed"):
        await checked.addresses("rebinding.example", 80)


async def test_resolution_is_bounded_in_time() -> None:
    async def never(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    checked = AddressPolicy([], timeout_s=0.05, resolve=never)
    with pytest.raises(Unresolvable, match="did not resolve within"):
        await checked.addresses("slow.example", 80)
