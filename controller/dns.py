"""Resolving EgressNetworkPolicy dnsNames (3.11 `common/dns.go`), never crashing.

3.11 re-resolves each name at its record's minimum TTL (30 minutes when unknown).
`DnsResolver` keeps that lifetime: `resolve` answers from its cache until the TTL expires,
and asks again on the first call after that (the controller calls it whenever it compiles
the egress firewall).  Any failure (no server, NXDOMAIN, timeout) yields no addresses; the
compiler turns that into a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address

DEFAULT_TTL = 30 * 60
log = logging.getLogger(__name__)


class DnsResolver:
    def __init__(self, lifetime: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[IPv4Address, ...]]] = {}

    def __call__(self, name: str) -> Sequence[IPv4Address]:
        return self.resolve(name)

    def resolve(self, name: str) -> tuple[IPv4Address, ...]:
        cached = self._cache.get(name)
        if cached and cached[0] > self._clock():
            return cached[1]
        addresses, ttl = self._query(name)
        self._cache[name] = (self._clock() + ttl, addresses)
        return addresses

    def _query(self, name: str) -> tuple[tuple[IPv4Address, ...], float]:
        import dns.exception
        import dns.resolver
        try:
            answer = dns.resolver.resolve(name, "A", lifetime=self._lifetime)
        except (dns.exception.DNSException, OSError) as error:
            log.warning("dnsName %s did not resolve: %s", name, error)
            return (), DEFAULT_TTL
        ttl = answer.rrset.ttl if answer.rrset is not None else DEFAULT_TTL
        return tuple(sorted(IPv4Address(r.address) for r in answer)), float(ttl)


def no_dns(name: str) -> Sequence[IPv4Address]:
    """A resolver that knows nothing: dnsName rules render no flows."""
    return ()
