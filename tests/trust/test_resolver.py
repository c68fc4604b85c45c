"""Next-hop selection (RFC 5321 5.1, RFC 7505) over a static zone."""

from __future__ import annotations

import pytest

from mailserver.trust.resolver import (
    DnsResolver,
    Resolver,
    ResolverError,
    StaticResolver,
    next_hops,
)
from mailserver.trust.trustlist import LocalTrust, NextHop, TrustList

ZONE: dict[str, dict[str, object]] = {
    "multi.fr": {"MX": [(20, "mx2.multi.fr."), (10, "MX1.multi.fr"), (20, "mx3.multi.fr"),
                        (30, "mx1.multi.fr")]},
    "mx1.multi.fr": {"A": ["127.0.0.2"]},
    "implicit.fr": {"A": ["127.0.0.3"], "AAAA": ["::1"]},
    "v6only.fr": {"AAAA": ["::1"]},
    "nullmx.fr": {"MX": [(0, ".")], "A": ["127.0.0.4"]},
    "nothing.fr": {},
    "broken.fr": {"FAIL": True},
    "fixed.fr": {"MX": [(10, "mx.fixed.fr")]},
}


@pytest.fixture
def resolver() -> StaticResolver:
    return StaticResolver(ZONE)


@pytest.fixture
def trust() -> TrustList:
    return TrustList(local=LocalTrust().with_domain("fixed.fr", next_hop=NextHop("relay", 2525)))


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("multi.fr", [("mx1.multi.fr", 25), ("mx2.multi.fr", 25), ("mx3.multi.fr", 25)]),
        ("Multi.FR.", [("mx1.multi.fr", 25), ("mx2.multi.fr", 25), ("mx3.multi.fr", 25)]),
        ("implicit.fr", [("implicit.fr", 25)]),
        ("v6only.fr", [("v6only.fr", 25)]),
        ("nullmx.fr", []),
        ("nothing.fr", []),
        ("unknown.fr", []),
        ("fixed.fr", [("relay", 2525)]),
        ("not a domain", []),
    ],
    ids=["mx-by-preference", "case-and-dot", "implicit-mx", "implicit-mx-v6", "null-mx",
         "no-records", "nxdomain", "fixed-next-hop-first", "invalid-name"],
)
async def test_next_hops(domain: str, expected: list[tuple[str, int]],
                         resolver: StaticResolver, trust: TrustList) -> None:
    assert await next_hops(domain, trust, resolver) == expected


async def test_temporary_failure_propagates(resolver: StaticResolver, trust: TrustList) -> None:
    with pytest.raises(ResolverError):
        await next_hops("broken.fr", trust, resolver)


async def test_custom_port_and_addresses(resolver: StaticResolver, trust: TrustList) -> None:
    assert await next_hops("implicit.fr", trust, resolver, port=2525) == [("implicit.fr", 2525)]
    assert await resolver.addresses("implicit.fr") == ["127.0.0.3", "::1"]
    assert await resolver.mx("nothing.fr") == []


def test_implementations_satisfy_protocol(resolver: StaticResolver) -> None:
    assert isinstance(resolver, Resolver)
    assert isinstance(DnsResolver(timeout=0.5, nameservers=["127.0.0.1"]), Resolver)


async def test_dns_resolver_timeout_is_temporary_error() -> None:
    """A nameserver that never answers (a UDP socket we bound and never read)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        r = DnsResolver(timeout=0.3, nameservers=["127.0.0.1"], port=sock.getsockname()[1])
        with pytest.raises(ResolverError):
            await r.mx("example.fr")
    finally:
        sock.close()
