"""The pure compiler: (topology, node, settings) -> the node's complete br0 flow set.

Nothing here does I/O or imports os-ken's controller: `osdn render` and the controller call
the same `compile_node`, so what is rendered is exactly what gets installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.compiler.context import FlowSet, NodeContext, Settings
from controller.compiler.egress_firewall import compile_egress_firewalls
from controller.compiler.egress_ip import compile_egress_ips
from controller.compiler.hostsubnet import compile_host_subnets
from controller.compiler.multicast import compile_multicast
from controller.compiler.networkpolicy import compile_network_policies
from controller.compiler.pod import compile_pods
from controller.compiler.service import compile_services
from controller.compiler.static import compile_static
from controller.compiler.vnid import compile_vnid_rules
from controller.pipeline.cookies import Owner
from controller.pipeline.flow import Flow, sort_key
from topology.model import Topology
from topology.errors import OsdnError

PARTS = (compile_static, compile_host_subnets, compile_pods, compile_services,
         compile_vnid_rules, compile_network_policies, compile_egress_ips,
         compile_egress_firewalls, compile_multicast)


class UnknownNode(OsdnError, KeyError):
    pass


@dataclass(frozen=True)
class NodeFlows:
    node: str
    flows: tuple[Flow, ...]  # in render order
    warnings: tuple[str, ...]

    def by_owner(self) -> dict[Owner, list[Flow]]:
        owners: dict[Owner, list[Flow]] = {}
        for flow in self.flows:
            owners.setdefault(flow.owner, []).append(flow)
        return owners

    def to_ofctl(self) -> str:
        return "".join(flow.to_ofctl() + "\n" for flow in self.flows)


def compile_node(topology: Topology, node: str, settings: Settings = Settings(),
                 port_numbers: Mapping[str, int] | None = None) -> NodeFlows:
    """All flows of `node`'s br0.  `port_numbers` (interface -> ofport, as the switch
    reports them) replaces the pods' `osdn.dev/ofport` annotations when given."""
    host_subnet = topology.host_subnet(node)
    if host_subnet is None:
        known = ", ".join(sorted(hs.host for hs in topology.host_subnets))
        raise UnknownNode(f"no HostSubnet with host {node!r} (known: {known})")
    ctx = NodeContext(topology, host_subnet, settings, port_numbers, FlowSet())
    for part in PARTS:
        part(ctx)
    flows = tuple(sorted(ctx.out.flows.values(), key=sort_key))
    return NodeFlows(node, flows, tuple(topology.warnings) + tuple(ctx.out.warnings))


__all__ = ["NodeFlows", "Settings", "compile_node", "UnknownNode"]
