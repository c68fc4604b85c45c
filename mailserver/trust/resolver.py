"""Next-hop resolution for outbound SMTP (RFC 5321 section 5.1).

Theory of operation
-------------------
:class:`Resolver` is the seam: two coroutines, ``mx(domain)`` and
``addresses(host)``. :class:`DnsResolver` implements it with dnspython's
async resolver and a per-query lifetime; :class:`StaticResolver` answers from
a dict (a "local zone") for tests and configured overrides.

Both return an empty list when the name exists without such records or does
not exist (a permanent condition) and raise :class:`ResolverError` on a
temporary failure (timeout, SERVFAIL), so the caller can defer and retry.

:func:`next_hops` orders the candidates: a fixed next hop from the trust list
first; otherwise MX hosts by ascending preference; otherwise, when the domain
has no MX, the domain itself if it has an address ("implicit MX",
RFC 5321 5.1). A null MX (RFC 7505: one MX of preference 0 and host ".")
means the domain accepts no mail: no hop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import dns.asyncresolver
import dns.exception
import dns.resolver

from .domains import InvalidDomainError, normalise_domain
from .trustlist import TrustList

__all__ = [
    "DnsResolver",
    "Resolver",
    "ResolverError",
    "StaticResolver",
    "next_hops",
]

SMTP_PORT = 25


class ResolverError(Exception):
    """A temporary DNS failure: retry later."""


@runtime_checkable
class Resolver(Protocol):
    """What next-hop selection needs from DNS."""

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """MX records of ``domain`` as (preference, host), host without trailing dot."""
        ...

    async def addresses(self, host: str) -> list[str]:
        """A and AAAA addresses of ``host`` as text."""
        ...


class DnsResolver:
    """dnspython-backed :class:`Resolver` with a time limit per query."""

    def __init__(
        self, timeout: float = 5.0, nameservers: Sequence[str] | None = None, port: int = 53
    ) -> None:
        """Create the resolver.

        Args:
            timeout: total seconds allowed per query (all retries included).
            nameservers: override the system's resolvers (e.g. for a local zone).
            port: nameserver port (with ``nameservers``).
        """
        self._resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
        self._resolver.lifetime = timeout
        if nameservers is not None:
            self._resolver.nameservers = list(nameservers)
            self._resolver.port = port

    async def _query(self, name: str, rdtype: str) -> list[object]:
        try:
            answer = await self._resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise ResolverError(f"{rdtype} lookup failed temporarily") from exc
        except dns.exception.DNSException as exc:
            raise ResolverError(f"{rdtype} lookup failed") from exc
        return list(answer)

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """See :meth:`Resolver.mx`."""
        records = await self._query(domain, "MX")
        return [
            (int(r.preference), r.exchange.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
            for r in records
        ]

    async def addresses(self, host: str) -> list[str]:
        """See :meth:`Resolver.addresses`."""
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            found.extend(r.to_text() for r in await self._query(host, rdtype))  # type: ignore[attr-defined]
        return found


class StaticResolver:
    """A :class:`Resolver` answering from a dict ("local zone").

    The zone maps names to record sets::

        {"example.fr": {"MX": [(10, "mx1.example.fr")]},
         "mx1.example.fr": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
         "broken.example": {"FAIL": True}}

    Names are compared case-insensitively without trailing dot. ``FAIL``
    makes every lookup of that name raise :class:`ResolverError`.
    """

    def __init__(self, zone: Mapping[str, Mapping[str, object]]) -> None:
        """Build from a zone mapping (copied)."""
        self._zone = {self._norm(k): dict(v) for k, v in zone.items()}

    @staticmethod
    def _norm(name: str) -> str:
        return name.strip().rstrip(".").lower()

    def _records(self, name: str) -> Mapping[str, object]:
        rrsets = self._zone.get(self._norm(name), {})
        if rrsets.get("FAIL"):
            raise ResolverError("static zone: simulated failure")
        return rrsets

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """See :meth:`Resolver.mx`."""
        records = self._records(domain).get("MX", [])
        if not isinstance(records, list):
            raise TypeError("static zone: MX must be a list of (preference, host)")
        return [(int(pref), self._norm(str(host)) or ".") for pref, host in records]

    async def addresses(self, host: str) -> list[str]:
        """See :meth:`Resolver.addresses`."""
        rrsets = self._records(host)
        out: list[str] = []
        for rdtype in ("A", "AAAA"):
            values = rrsets.get(rdtype, [])
            if not isinstance(values, list):
                raise TypeError(f"static zone: {rdtype} must be a list")
            out.extend(str(v) for v in values)
        return out


def _is_null_mx(records: list[tuple[int, str]]) -> bool:
    # RFC 7505 3: a single MX with preference 0 and an empty (root) exchange.
    return len(records) == 1 and records[0][1] in ("", ".")


async def next_hops(
    domain: str, trustlist: TrustList, resolver: Resolver, port: int = SMTP_PORT
) -> list[tuple[str, int]]:
    """Ordered SMTP next hops for ``domain``.

    Args:
        domain: recipient domain.
        trustlist: consulted for a fixed next hop.
        resolver: DNS seam.
        port: port for MX and implicit-MX hosts.

    Returns:
        (host, port) pairs to try in order; empty when the domain accepts no
        mail (null MX, or neither MX nor address: a permanent failure).

    Raises:
        ResolverError: temporary DNS failure; the caller should retry later.
    """
    fixed = trustlist.next_hop(domain)
    if fixed is not None:
        return [(fixed.host, fixed.port)]
    try:
        name = normalise_domain(domain)
    except InvalidDomainError:
        return []
    records = await resolver.mx(name)
    if records:
        if _is_null_mx(records):
            return []
        # RFC 5321 5.1: lowest preference first; the stable sort keeps the
        # resolver's order among equal preferences. Drop duplicate hosts.
        seen: set[str] = set()
        hops: list[tuple[str, int]] = []
        for _, host in sorted(records, key=lambda r: r[0]):
            key = host.lower().rstrip(".")
            if key and key != "." and key not in seen:
                seen.add(key)
                hops.append((key, port))
        return hops
    # RFC 5321 5.1: no MX -> the domain itself is the implicit MX, if it has an address.
    if await resolver.addresses(name):
        return [(name, port)]
    return []
