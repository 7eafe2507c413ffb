"""A generated cluster's address plan: the underlay the hostIPs (and egress IPs) live in, the
service network and the cluster networks, each either given or chosen from the seed so that
none overlaps another and everything asked for fits."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

from bench.params import Params

POOLS = tuple(IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10",
                                      "192.168.0.0/16"))
HOSTS_PER_RACK = 200  # hostIPs .10-.209 of each /24 of the underlay


@dataclass(frozen=True)
class AddressPlan:
    underlay: IPv4Network  # racks of HOSTS_PER_RACK hostIPs per /24, egress IPs in the top /24s
    service_network: IPv4Network  # its first address is the kubernetes service's
    networks: list[tuple[IPv4Network, int]]  # (cluster CIDR, hostSubnetLength)


def plan_addresses(params: Params) -> AddressPlan:
    """The plan for `params`; ValueError when what was given overlaps or is too small."""
    rng = params.rng("networks")
    hsl = _host_subnet_length(params, rng)
    given = [(IPv4Network(cidr), int(length)) for cidr, length in (
        (entry, hsl) if isinstance(entry, str) else entry for entry in params.cluster_cidrs or ())]
    taken = _disjoint(given + [(IPv4Network(value), 0)
                               for value in (params.service_cidr, params.underlay)
                               if value is not None])
    underlay = _underlay(params, rng, taken)
    service_network = _service_network(params, rng, taken)
    networks = given or _cluster_networks(params, hsl, rng, taken)
    _check_cluster_networks(params, networks)
    return AddressPlan(underlay, service_network, networks)


def _host_subnet_length(params: Params, rng: random.Random) -> int:
    """The one given, else 8, 9 or 10 (9 twice as likely) as long as the pods fit."""
    if params.host_subnet_length is not None:
        return params.host_subnet_length
    fits = [h for h in (8, 9, 10) if (1 << h) - 3 >= params.pods_per_node]
    return rng.choice(fits + [9] * (9 in fits)) if fits else max(2, bits(params.pods_per_node + 3))


def _disjoint(explicit: list[tuple[IPv4Network, int]]) -> list[IPv4Network]:
    taken: list[IPv4Network] = []
    for cidr, _ in explicit:
        for other in taken:
            if cidr.overlaps(other):
                raise ValueError(f"{cidr} overlaps {other}")
        taken.append(cidr)
    return taken


def _underlay(params: Params, rng: random.Random, taken: list[IPv4Network]) -> IPv4Network:
    egress_blocks = math.ceil(params.egress_ips / HOSTS_PER_RACK)
    racks = math.ceil(params.nodes / HOSTS_PER_RACK)
    if params.underlay is not None:
        underlay = IPv4Network(params.underlay)
    else:
        prefix = 16 if racks + egress_blocks <= 254 else 8
        preferred = ["10.0.0.0/8"] if prefix == 8 else rng.choice(
            [["192.168.0.0/16"], ["172.16.0.0/16"], ["10.0.0.0/16"]])
        underlay = place(prefix, [IPv4Network(p) for p in preferred], taken, rng)
        taken.append(underlay)
    blocks = 1 << max(0, 24 - underlay.prefixlen)
    if underlay.prefixlen > 24 or racks + egress_blocks > blocks - 2:
        raise ValueError(f"underlay {underlay} is too small for {params.nodes} nodes "
                         f"and {params.egress_ips} egress IPs")
    return underlay


def _service_network(params: Params, rng: random.Random,
                     taken: list[IPv4Network]) -> IPv4Network:
    if params.service_cidr is not None:
        network = IPv4Network(params.service_cidr)
    else:
        prefix = min(16, 32 - bits(params.services * 5 // 4 + 4))
        preferred = rng.choice(["172.30.0.0/16", "172.21.0.0/16", "172.24.0.0/16"])
        network = place(prefix, [IPv4Network(preferred)], taken, rng)
        taken.append(network)
    if network.num_addresses - 3 < params.services:
        raise ValueError(f"service network {network} is too small for "
                         f"{params.services} services")
    return network


def _cluster_networks(params: Params, hsl: int, rng: random.Random,
                      taken: list[IPv4Network]) -> list[tuple[IPv4Network, int]]:
    """One or two networks, the second right after the first when that is free."""
    count = 1 if params.nodes < 2 else rng.choice([1, 2])
    per = math.ceil(params.nodes / count)
    prefix = min(14, 32 - hsl - bits(per + per // 8 + 1))
    if prefix < 8:
        raise ValueError(f"{params.nodes} nodes of /{32 - hsl} do not fit")
    base = IPv4Network(rng.choice(["10.128.0.0/14", "10.64.0.0/14", "10.200.0.0/14",
                                  "10.32.0.0/14"]))
    networks: list[tuple[IPv4Network, int]] = []
    for _ in range(count):
        preferred = [base]
        if networks:
            last = networks[-1][0]
            preferred = [IPv4Network((int(last.broadcast_address) + 1, prefix))
                         if int(last.broadcast_address) + 1 < 1 << 32 else last]
        cidr = place(prefix, preferred, taken, rng)
        taken.append(cidr)
        networks.append((cidr, hsl))
    return networks


def _check_cluster_networks(params: Params, networks: list[tuple[IPv4Network, int]]) -> None:
    for cidr, length in networks:
        if not 2 <= length <= 32 - cidr.prefixlen:
            raise ValueError(f"hostSubnetLength {length} does not fit {cidr}")
        if (1 << length) - 3 < params.pods_per_node:
            raise ValueError(f"a /{32 - length} subnet cannot hold {params.pods_per_node} pods")
    capacity = sum(1 << (32 - c.prefixlen - h) for c, h in networks)
    if capacity < params.nodes:
        raise ValueError(f"the cluster networks hold {capacity} node subnets, "
                         f"not {params.nodes}")


def place(prefix: int, preferred: Sequence[IPv4Network], taken: list[IPv4Network],
          rng: random.Random) -> IPv4Network:
    """A /prefix block overlapping none of `taken`: a preferred one if free, else the first
    free aligned block of the private pools from a random starting point."""
    for want in preferred:
        block = want.supernet(new_prefix=prefix) if want.prefixlen > prefix else want
        if block.prefixlen == prefix and not any(block.overlaps(t) for t in taken):
            return block
    for pool in POOLS:
        if pool.prefixlen > prefix:
            continue
        count = 1 << (prefix - pool.prefixlen)
        size = 1 << (32 - prefix)
        start = rng.randrange(count)
        base = int(pool.network_address)
        for k in range(count):
            block = IPv4Network((base + ((start + k) % count) * size, prefix))
            if not any(block.overlaps(t) for t in taken):
                return block
    raise ValueError(f"no free /{prefix} left in the private address ranges")


def bits(count: int) -> int:
    """The address bits `count` addresses need."""
    return max(0, math.ceil(math.log2(max(count, 1))))
