"""What every part of the compiler needs to know about the node being compiled."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from typing import Protocol

from controller.pipeline.cookies import CookieRegistry, Owner
from controller.pipeline.flow import Action, Flow, Match
from controller.pipeline.tables import Table
from topology.errors import OsdnError
from topology.model import GLOBAL_VNID, HostSubnet, NetworkPolicy, Plugin, Pod, Topology

Resolver = Callable[[str], Sequence[IPv4Address]]


@dataclass(frozen=True)
class Settings:
    """Node settings that change flows but are not part of the topology."""

    masquerade_bit: int = 0  # kube-proxy's --iptables-masquerade-bit; OpenShift 3.x uses 0
    resolver: Resolver | None = None  # EgressNetworkPolicy dnsName -> addresses

    def __post_init__(self) -> None:
        if not 0 <= self.masquerade_bit <= 31:
            raise ValueError(f"masquerade bit {self.masquerade_bit} outside 0..31")


DEFAULT_SETTINGS = Settings()


class UnknownNode(OsdnError, KeyError):
    pass


class RefusedNode(UnknownNode):
    """The node's own HostSubnet has a hostIP 3.11 refuses: its node would not start."""


def host_subnet_of(topology: Topology, node: str) -> HostSubnet:
    """The HostSubnet of `node`; UnknownNode if the topology has none, RefusedNode if its
    hostIP is one 3.11's `getLocalSubnet` refuses (`ValidateNodeIP`: the node exits)."""
    host_subnet = topology.host_subnet(node)
    if host_subnet is None:
        known = ", ".join(sorted(hs.host for hs in topology.host_subnets))
        raise UnknownNode(f"no HostSubnet with host {node!r} (known: {known})")
    conflict = topology.cluster_network.node_ip_conflict(host_subnet.host_ip)
    if conflict is not None:
        raise RefusedNode(f"HostSubnet {host_subnet.name}: hostIP {host_subnet.host_ip} "
                          f"{conflict}; 3.11's node does not start on it")
    return host_subnet


def is_remote_node(topology: Topology, local: HostSubnet, other: HostSubnet) -> bool:
    """Whether 3.11's HostSubnet watcher on `local` adds flows for `other`: another hostIP,
    and one `ValidateNodeIP` accepts (else it ignores that HostSubnet, with an error)."""
    return other.host_ip != local.host_ip \
        and topology.cluster_network.node_ip_conflict(other.host_ip) is None


def ofport_of(pod: Pod, port_numbers: Mapping[str, int] | None) -> int | None:
    """The pod's ofport: from the switch's port numbers when given, else as annotated."""
    if port_numbers is None:
        return pod.ofport
    return port_numbers.get(pod.interface or "")


class FlowSink(Protocol):
    """Where the compiler's code puts flows and warnings (a `FlowSet`, or a recorder)."""

    warnings: list[str]

    def add(self, owner: Owner, table: Table, priority: int, match: Match,
            actions: Sequence[Action] = (), goto: Table | None = None) -> None: ...


@dataclass
class FlowSet:
    """Flows collected by key; a second flow with the same key must be identical."""

    flows: dict[tuple[int, int, Match], Flow] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cookies: CookieRegistry = field(default_factory=CookieRegistry)
    _last_owner: Owner | None = field(default=None, repr=False, compare=False)

    def add(self, owner: Owner, table: Table, priority: int, match: Match,
            actions: Sequence[Action] = (), goto: Table | None = None) -> None:
        if owner is not self._last_owner:  # an owner's flows come in a row: one SHA-256
            self.cookies.register(owner)
            self._last_owner = owner
        flow = Flow(table, priority, match, owner, tuple(actions), goto)
        known = self.flows.setdefault(flow.key, flow)
        if known == flow:
            return  # new, or another owner wants the very same flow: the first keeps it
        self.warnings.append(
            f"{owner} wants '{flow.to_ofctl()}' but {known.owner} already has "
            f"'{known.to_ofctl()}' with the same match; keeping the latter")


@dataclass
class NodeContext:
    topology: Topology
    node: HostSubnet
    settings: Settings
    port_numbers: Mapping[str, int] | None = None  # interface -> ofport, from the switch
    out: FlowSink = field(default_factory=FlowSet)
    switch_tun0_mac: str | None = None  # tun0's MAC as the switch reports it, if known

    @property
    def tun0_mac(self) -> str:
        """What table 100 writes as eth_dst: tun0's real MAC (3.11 `ensureTunMAC`) when the
        switch told us, else what the HostSubnet says (annotation or convention)."""
        return self.switch_tun0_mac or self.node.tun0_mac

    @property
    def plugin(self) -> Plugin:
        return self.topology.cluster_network.plugin

    @property
    def conntrack(self) -> bool:
        return self.plugin.uses_conntrack

    @cached_property
    def cluster_cidrs(self) -> list[IPv4Network]:
        return [n.cidr for n in self.topology.cluster_network.networks]

    @property
    def service_network(self) -> IPv4Network:
        return self.topology.cluster_network.service_network

    @property
    def gateway_net(self) -> IPv4Network:
        return IPv4Network(self.node.gateway)

    @cached_property
    def remote_subnets(self) -> list[HostSubnet]:
        """Other nodes, as 3.11's HostSubnet watcher sees them (by hostIP, valid ones)."""
        return [hs for hs in self.topology.host_subnets
                if is_remote_node(self.topology, self.node, hs)]

    def ofport(self, pod: Pod) -> int | None:
        return ofport_of(pod, self.port_numbers)

    @cached_property
    def local_pods(self) -> list[tuple[Pod, int]]:
        """Pods of this node whose port is on the bridge, with their ofport."""
        pods = []
        for pod in self.topology.pods:
            if pod.node == self.node.host:
                port = self.ofport(pod)
                if port is not None:
                    pods.append((pod, port))
        return pods

    @cached_property
    def vnids_in_use(self) -> set[int]:
        """VNIDs (but the global one) of local pods and of Services (watched cluster-wide)."""
        vnid = self.vnid
        used = {vnid(pod.namespace) for pod, _ in self.local_pods}
        used |= {vnid(svc.namespace) for svc in self.topology.services if svc.cluster_ip}
        return used - {GLOBAL_VNID}

    @cached_property
    def pods_by_namespace(self) -> dict[str, list[Pod]]:
        """Every pod of the cluster (any node, port or not), by namespace, in topology order."""
        by_namespace: dict[str, list[Pod]] = {}
        for pod in self.topology.pods:
            by_namespace.setdefault(pod.namespace, []).append(pod)
        return by_namespace

    @cached_property
    def policies_by_namespace(self) -> dict[str, list[NetworkPolicy]]:
        by_namespace: dict[str, list[NetworkPolicy]] = {}
        for policy in self.topology.network_policies:
            by_namespace.setdefault(policy.namespace, []).append(policy)
        return by_namespace

    @cached_property
    def net_namespace_names(self) -> frozenset[str]:
        return frozenset(nn.name for nn in self.topology.net_namespaces)

    def vnid(self, namespace: str) -> int:
        return self.topology.vnid_of(namespace)

    @cached_property
    def namespaces_by_vnid(self) -> dict[int, list[str]]:
        by_vnid: dict[int, list[str]] = {}
        for nn in self.topology.net_namespaces:
            by_vnid.setdefault(nn.netid, []).append(nn.name)
        return by_vnid
