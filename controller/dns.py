"""EgressNetworkPolicy dnsNames and their TTLs (3.11 `common/dns.go`, `egress_dns.go`).

3.11 resolves each dnsName when its policy arrives and again when the answer's minimum TTL
runs out (30 minutes when no TTL is known); a changed answer rewrites the namespace's table
101.  `EgressDns` keeps that schedule for the controller: the compiler only reads its
cache (`lookup`, never a query, so compiling never waits on the network), the node agent
tells it which names the topology uses (`follow`) and runs `refresh` when `next_due` comes.

On failure 3.11 keeps the last good addresses and asks again 30 minutes later; a name that
fails on its very first query is dropped until its policy changes.  Here the last good
addresses stay too, and a failed name (first query or not) is asked again after 5 s,
doubling up to those 30 minutes: a lost DNS server at start-up does not leave a rule
without flows for half an hour.  An answer's TTL counts from 1 s, so a TTL of 0 does not
make a busy loop of queries (3.11 would spin).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from topology.errors import OsdnError

DEFAULT_TTL = 30 * 60.0  # 3.11 defaultTTL: no TTL known, and the wait after a failure
MIN_TTL = 1.0  # the shortest wait between two queries of a name
FIRST_RETRY = 5.0  # after a failure; doubles on each further failure, up to DEFAULT_TTL
QUERY_LIFETIME = 2.0  # seconds one query may take, over all servers
log = logging.getLogger("osdn")

Addresses = tuple[IPv4Address, ...]


class DnsFailure(OsdnError):
    """A name did not resolve (no server, NXDOMAIN, no A record, timeout)."""


# name -> (its IPv4 addresses, sorted, no duplicates; seconds they stay valid)
Query = Callable[[str], tuple[Addresses, float]]


def dns_query(nameserver: str | None = None, lifetime: float = QUERY_LIFETIME) -> Query:
    """A query of the system's resolvers (/etc/resolv.conf, as 3.11), or of one server
    given as "address" or "address:port"."""
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        address, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 \
            else (nameserver, "", "")
        resolver.nameservers = [address]
        resolver.port = int(port) if port else 53

    def query(name: str) -> tuple[Addresses, float]:
        import dns.exception
        try:
            answer = resolver.resolve(name, "A", lifetime=lifetime, search=False)
        except (dns.exception.DNSException, OSError) as error:
            raise DnsFailure(f"dnsName {name} did not resolve: {error}") from error
        # the smallest TTL along the CNAME chain, as 3.11's minimum over the answer section
        ttl = float(answer.chaining_result.minimum_ttl)
        return tuple(sorted({IPv4Address(record.address) for record in answer})), ttl

    return query


def resolve_now(query: Query) -> Callable[[str], Sequence[IPv4Address]]:
    """A resolver for one compile (`osdn render`): asks each time, () on failure (the
    compiler warns that the rule has no flow)."""
    def resolve(name: str) -> Sequence[IPv4Address]:
        try:
            return query(name)[0]
        except DnsFailure:
            return ()
    return resolve


def no_dns(name: str) -> Sequence[IPv4Address]:
    """A resolver that knows nothing: dnsName rules render no flows."""
    return ()


@dataclass
class _Name:
    addresses: Addresses = ()  # the last good answer
    due: float = float("-inf")  # when to ask again (clock)
    failures: int = 0  # in a row, since the last good answer


class EgressDns:
    """The dnsNames the topology uses, their last good answers and when each is due."""

    def __init__(self, query: Query, clock: Callable[[], float]) -> None:
        self._query = query
        self._clock = clock
        self._names: dict[str, _Name] = {}

    def lookup(self, name: str) -> Addresses:
        """The last good answer for `name` (() if none yet): what the compiler reads."""
        entry = self._names.get(name)
        return () if entry is None else entry.addresses

    def follow(self, names: Iterable[str]) -> bool:
        """The names the topology now uses: new ones are due at once, gone ones are
        forgotten.  True if a new name came."""
        wanted = set(names)
        for gone in self._names.keys() - wanted:
            del self._names[gone]
        new = wanted - self._names.keys()
        for name in new:
            self._names[name] = _Name()
        return bool(new)

    def next_due(self) -> float | None:
        """When the next name is due (clock), None if no name is followed."""
        return min((entry.due for entry in self._names.values()), default=None)

    def refresh(self) -> list[str]:
        """Ask again for every name that is due; the names whose addresses changed."""
        changed = []
        for name in sorted(self._names):
            entry = self._names[name]
            if entry.due <= self._clock() and self._ask(name, entry):
                changed.append(name)
        return changed

    def _ask(self, name: str, entry: _Name) -> bool:
        try:
            addresses, ttl = self._query(name)
        except DnsFailure as error:
            entry.failures += 1
            wait = min(FIRST_RETRY * 2 ** (entry.failures - 1), DEFAULT_TTL)
            entry.due = self._clock() + wait
            log.warning("%s; %s, asking again in %.0f s", error,
                        f"keeping {_text(entry.addresses)}" if entry.addresses
                        else "its rule has no flow", wait)
            return False
        if entry.failures:
            log.info("dnsName %s resolves again", name)
        entry.failures = 0
        entry.due = self._clock() + max(ttl, MIN_TTL)
        if addresses == entry.addresses:
            return False
        log.info("dnsName %s: %s (was %s), TTL %.0f s", name, _text(addresses),
                 _text(entry.addresses), ttl)
        entry.addresses = addresses
        return True


def _text(addresses: Addresses) -> str:
    return ", ".join(map(str, addresses)) or "nothing"
