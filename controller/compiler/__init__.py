"""The pure compiler: (topology, node, settings) -> the node's complete br0 flow set.

Nothing here does I/O or imports os-ken's controller: `osdn render` and the controller call
the same `compile_node`, so what is rendered is exactly what gets installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.compiler.context import (
    DEFAULT_SETTINGS,
    FlowSet,
    NodeContext,
    Settings,
    UnknownNode,
    host_subnet_of,
)
from controller.compiler.registry import compile_units
from controller.pipeline.cookies import Owner
from controller.pipeline.flow import Flow, sort_key
from topology.model import Topology


@dataclass(frozen=True)
class NodeFlows:
    node: str
    flows: tuple[Flow, ...]  # in render order
    warnings: tuple[str, ...]

    @classmethod
    def of(cls, topology: Topology, node: str, out: FlowSet) -> NodeFlows:
        """The result of compiling `node` into `out`: flows sorted for rendering, the
        topology's warnings then the compiler's."""
        flows = tuple(sorted(out.flows.values(), key=sort_key))
        return cls(node, flows, tuple(topology.warnings) + tuple(out.warnings))

    def by_owner(self) -> dict[Owner, list[Flow]]:
        owners: dict[Owner, list[Flow]] = {}
        for flow in self.flows:
            owners.setdefault(flow.owner, []).append(flow)
        return owners

    def to_ofctl(self) -> str:
        return "".join(flow.to_ofctl() + "\n" for flow in self.flows)


def compile_node(topology: Topology, node: str, settings: Settings = DEFAULT_SETTINGS,
                 port_numbers: Mapping[str, int] | None = None,
                 tun0_mac: str | None = None) -> NodeFlows:
    """All flows of `node`'s br0.  `port_numbers` (interface -> ofport, as the switch
    reports them) replaces the pods' `osdn.dev/ofport` annotations when given; `tun0_mac`
    (tun0's MAC, as the switch reports it) replaces the HostSubnet's `osdn.dev/tun0-mac`
    annotation or the 0a:58 convention."""
    out = FlowSet()
    compile_units(NodeContext(topology, host_subnet_of(topology, node), settings, port_numbers,
                              out, tun0_mac))
    return NodeFlows.of(topology, node, out)


__all__ = ["NodeFlows", "Settings", "compile_node", "UnknownNode"]
