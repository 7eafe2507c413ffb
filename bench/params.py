"""What a generated cluster is asked to be: its sizes and options, checked, with the defaults
filled in, and the seeded random streams every part is drawn from."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from topology.model import PLUGIN_NAMES, Plugin

PLUGINS = PLUGIN_NAMES  # subnet, multitenant, networkpolicy
DETAILS = ("minimal", "standard", "full")

ClusterCidr = str | tuple[str, int]  # a CIDR, or a (CIDR, hostSubnetLength) pair


def plugin_of(plugin: str | Plugin) -> Plugin:
    if isinstance(plugin, Plugin):
        return plugin
    if plugin in PLUGINS:
        return PLUGINS[plugin]
    try:
        return Plugin(plugin)
    except ValueError:
        raise ValueError(f"unknown plugin {plugin!r}: one of {', '.join(PLUGINS)}") from None


@dataclass(frozen=True)
class Params:
    """`bench.generate.generate`'s arguments, with `services`, `egress_ips` and `policies`
    resolved; the ``None`` left are choices made from the seed."""

    nodes: int
    namespaces: int
    pods_per_node: int
    services: int  # kubernetes included
    egress_ips: int
    policies_per_namespace: int
    plugin: Plugin
    seed: int
    cluster_cidrs: Sequence[ClusterCidr] | None
    host_subnet_length: int | None
    service_cidr: str | None
    underlay: str | None
    vxlan_port: int
    mtu: int
    egress_firewalls: int | None
    policies: bool  # write NetworkPolicies
    host_network_pods: bool
    pods_by_node: bool
    detail: str

    @classmethod
    def of(cls, *, nodes: int, namespaces: int, pods_per_node: int, services: int | None,
           egress_ips: int | None, policies_per_namespace: int, plugin: str | Plugin,
           seed: int, cluster_cidrs: Sequence[ClusterCidr] | None,
           host_subnet_length: int | None, service_cidr: str | None, underlay: str | None,
           vxlan_port: int, mtu: int, egress_firewalls: int | None, policies_always: bool,
           host_network_pods: bool, pods_by_node: bool, detail: str) -> Params:
        """The checked parameters; ValueError for those no cluster can have."""
        plugin = plugin_of(plugin)
        if nodes < 1 or namespaces < 1 or pods_per_node < 0:
            raise ValueError("need at least one node and one namespace, pods_per_node >= 0")
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}")
        if not 1 <= vxlan_port <= 65535:
            raise ValueError(f"vxlan_port {vxlan_port} is not a UDP port")
        return cls(
            nodes=nodes, namespaces=namespaces, pods_per_node=pods_per_node,
            services=max(1, namespaces * 2) if services is None else services,
            egress_ips=max(1, namespaces // 20) if egress_ips is None else egress_ips,
            policies_per_namespace=policies_per_namespace, plugin=plugin, seed=seed,
            cluster_cidrs=cluster_cidrs, host_subnet_length=host_subnet_length,
            service_cidr=service_cidr, underlay=underlay, vxlan_port=vxlan_port, mtu=mtu,
            egress_firewalls=egress_firewalls,
            policies=policies_always or plugin is Plugin.NETWORKPOLICY,
            host_network_pods=host_network_pods, pods_by_node=pods_by_node, detail=detail)

    def rng(self, part: str) -> random.Random:
        """One generator per part, so that e.g. more services do not move every pod."""
        return random.Random(f"osdn-bench:{self.seed}:{part}")
