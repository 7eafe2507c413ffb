"""One node's flows kept up to date by unit: what the controller compiles with.

`compile_node` is the reference (`osdn render` prints it).  `NodeCompiler` yields the same
flows, owners and warnings (tests/unit/test_incremental.py compares both after random
changes), already encoded, but after its first build it recomputes only the units
(`controller.compiler.unit`) whose inputs changed, and it reports which flow keys changed: a
pod added costs that pod's flows, not the cluster's.

What each kind of unit reads, and so when it is recomputed:

| unit kind             | inputs                                                          |
|-----------------------|-----------------------------------------------------------------|
| static                | ClusterNetwork, this node's HostSubnet                          |
| remote-node (per HS)  | that remote HostSubnet                                          |
| replication           | the remote nodes' IPs                                           |
| pod (per local pod)   | the local pod, its ofport, its namespace's VNID                 |
| service (per Service) | the Service, its namespace's VNID                               |
| vnid-rule (per VNID)  | the VNID in use by a local pod or any Service                   |
| policy-vnid (per VNID | the policies of its namespaces, their pods (any node), VNIDs,   |
|   in use)             | and Namespaces if a policy selects them                         |
| egress-ip             | HostSubnets, NetNamespaces, tun0's MAC as the switch reports it |
| egress-firewall       | EgressNetworkPolicies, NetNamespaces, DNS answers (dns_changed) |
| multicast             | NetNamespaces, local pods                                       |

Anything else changing (the ClusterNetwork, this node's own HostSubnet) rebuilds everything.
Changed objects are found by value, fast (`controller.compiler.diff`); the units' flows are
merged as compile_node merges them (`controller.compiler.desired`).  The compiler does not
encode: it is handed the encoder (`controller.openflow.wire.encode_flow` in the controller).
"""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from controller.compiler import NodeFlows
from controller.compiler.context import (
    NodeContext,
    Settings,
    host_subnet_of,
    is_remote_node,
    ofport_of,
)
from controller.compiler.desired import DesiredFlows
from controller.compiler.diff import changed_objects
from controller.compiler.egress_firewall import UNIT as EGRESS_FIREWALL
from controller.compiler.egress_ip import UNIT as EGRESS_IP
from controller.compiler.hostsubnet import REPLICATION_UNIT as REPLICATION
from controller.compiler.hostsubnet import UNIT as REMOTE_NODE
from controller.compiler.multicast import UNIT as MULTICAST
from controller.compiler.multicast import enabled_vnids
from controller.compiler.networkpolicy import UNIT as POLICY_VNID
from controller.compiler.pod import UNIT as POD
from controller.compiler.registry import UNIT_KINDS, UnitOrder
from controller.compiler.service import UNIT as SERVICE
from controller.compiler.service import key as service_key
from controller.compiler.unit import WHOLE, UnitId
from controller.compiler.vnid import UNIT as VNID_RULE
from controller.pipeline.encoded import E, FlowEncoder, Key
from topology.gcpause import gc_paused
from topology.model import GLOBAL_VNID, HostSubnet, NetworkPolicy, Plugin, Pod, Service, Topology


class _PodsByNamespace:
    """`NodeContext.pods_by_namespace` kept incrementally: namespace -> pods (any node)."""

    def __init__(self, pods: Sequence[Pod]) -> None:
        self._by: dict[str, dict[str, Pod]] = {}
        for pod in pods:
            self.add(pod)

    def add(self, pod: Pod) -> None:
        self._by.setdefault(pod.namespace, {})[pod.name] = pod

    def remove(self, pod: Pod) -> None:
        pods = self._by.get(pod.namespace)
        if pods is not None and pods.get(pod.name) == pod:
            del pods[pod.name]
            if not pods:
                del self._by[pod.namespace]

    def get(self, namespace: str, default: Any = ()) -> Any:
        pods = self._by.get(namespace)
        return default if pods is None else pods.values()


@dataclass
class _Change:
    """What one update found so far, filled in kind by kind."""

    recompute: dict[UnitId, Any] = field(default_factory=dict)  # unit -> its member
    net_namespaces: bool = False  # the NetNamespaces changed
    vnid_namespaces: set[str] = field(default_factory=set)  # namespaces whose VNID changed
    policy_namespaces: set[str] = field(default_factory=set)  # whose policy flows may change
    pod_vnids: set[int] = field(default_factory=set)  # of local pods that came, went or moved
    vnid_uses: dict[int, int] = field(default_factory=dict)  # VNID -> change in its users

    def use(self, vnid: int, delta: int) -> None:
        self.vnid_uses[vnid] = self.vnid_uses.get(vnid, 0) + delta


class NodeCompiler(Generic[E]):
    """`compile_node(topology, node, settings, ports)` for a sequence of topologies and port
    maps, by difference, encoded with `encode`.  `update()` then `desired` (key -> encoded
    flow) and `take_dirty()` (the keys whose desired flow changed, or vanished, since the
    last call)."""

    def __init__(self, node: str, settings: Settings, encode: FlowEncoder[E]) -> None:
        self.node = node
        self.settings = settings
        self.tun0_mac: str | None = None  # as the switch reported it (None: not known)
        self._merged = DesiredFlows(encode)
        self._reset()

    @property
    def desired(self) -> dict[Key, E]:
        return self._merged.flows

    @property
    def table_counts(self) -> dict[int, int]:
        """Desired flows per table."""
        return self._merged.table_counts

    def take_dirty(self) -> set[Key]:
        dirty, self._merged.dirty = self._merged.dirty, set()
        return dirty

    def update(self, topology: Topology, ports: Mapping[str, int] | None = None,
               tun0_mac: str | None = None) -> None:
        """Bring `desired` to `compile_node(topology, node, settings, ports, tun0_mac)`.
        Raises what compile_node raises (UnknownNode, CookieCollision); the next update then
        rebuilds."""
        host = host_subnet_of(topology, self.node)
        port_map = None if ports is None else dict(ports)
        with gc_paused():
            try:
                old = self.topology
                if old is None or host != self._host \
                        or topology.cluster_network != old.cluster_network:
                    self._reset()
                    self.tun0_mac = tun0_mac
                    self._build(topology, host, port_map)
                    # Tens of thousands of flows that live as long as the compiler: out of
                    # the collector's generations, or the next collections walk them all.
                    gc.freeze()
                else:
                    self._update(old, topology, host, port_map, tun0_mac)
            except BaseException:
                self._reset()
                raise

    def dns_changed(self) -> None:
        """The resolver's answers changed: the next update recomputes the egress firewall
        (the only unit that reads them), whatever else changed."""
        self._dns_dirty = True

    def node_flows(self) -> NodeFlows:
        """The result as `compile_node` returns it: every unit's adds and warnings replayed
        in compile_node's order, flows sorted for rendering."""
        assert self.topology is not None
        self._merged.order = UnitOrder(self.topology)
        return NodeFlows.of(self.topology, self.node, self._merged.replay())

    # ------------------------------------------------------------------------- state

    def _reset(self) -> None:
        self._merged.clear()
        self.topology: Topology | None = None
        self.ports: dict[str, int] | None = None
        self.tun0_mac = None
        self._dns_dirty = False
        self._host: HostSubnet | None = None
        self._remote: dict[str, HostSubnet] = {}
        self._local_all: dict[str, Pod] = {}  # this node's pods, port or not
        self._local: dict[str, tuple[Pod, int]] = {}  # ... with their ofport
        self._services: dict[str, Service] = {}  # those with flows, by key
        self._services_by_ns: dict[str, set[str]] = {}
        self._vnid_count: dict[int, int] = {}
        self._pods_by_ns: _PodsByNamespace | None = None
        self._policies_by_ns: dict[str, list[NetworkPolicy]] = {}
        self._vnids: dict[str, int] = {}
        self._multicast: set[int] = set()

    def _context(self, topology: Topology, host: HostSubnet,
                 ports: dict[str, int] | None) -> NodeContext:
        ctx = NodeContext(topology, host, self.settings, ports, switch_tun0_mac=self.tun0_mac)
        ctx.local_pods = list(self._local.values())
        ctx.remote_subnets = list(self._remote.values())
        ctx.vnids_in_use = set(self._vnid_count)
        if self._pods_by_ns is not None:
            ctx.pods_by_namespace = self._pods_by_ns  # type: ignore[assignment]
            ctx.policies_by_namespace = self._policies_by_ns
        return ctx

    def _run(self, units: Iterable[tuple[UnitId, Any]], ctx: NodeContext) -> None:
        for uid, member in units:
            self._merged.run(uid, member, ctx)

    # ------------------------------------------------------------------------- full build

    def _build(self, topology: Topology, host: HostSubnet, ports: dict[str, int] | None) -> None:
        self.topology, self._host, self.ports = topology, host, ports
        self._merged.order = UnitOrder(topology)
        plugin = topology.cluster_network.plugin
        self._remote = {hs.name: hs for hs in topology.host_subnets
                        if is_remote_node(topology, host, hs)}
        self._local_all = {pod.key: pod for pod in topology.pods if pod.node == host.host}
        for key, pod in self._local_all.items():
            port = ofport_of(pod, ports)
            if port is not None:
                self._local[key] = (pod, port)
        if not plugin.uses_conntrack:
            for svc in topology.services:
                if svc.cluster_ip is not None:
                    self._add_service_index(svc)
        if plugin is Plugin.NETWORKPOLICY:
            self._pods_by_ns = _PodsByNamespace(topology.pods)
            for policy in topology.network_policies:
                self._policies_by_ns.setdefault(policy.namespace, []).append(policy)
        self._vnids = {nn.name: nn.netid for nn in topology.net_namespaces}
        self._vnid_count = self._count_vnids(topology)
        ctx = self._context(topology, host, ports)
        self._multicast = set(enabled_vnids(ctx))
        self._run((((kind, kind.ident(member)), member)
                   for kind in UNIT_KINDS for member in kind.members(ctx)), ctx)

    def _add_service_index(self, svc: Service) -> None:
        key = service_key(svc)
        self._services[key] = svc
        self._services_by_ns.setdefault(svc.namespace, set()).add(key)

    def _remove_service_index(self, svc: Service) -> None:
        key = service_key(svc)
        if self._services.get(key) == svc:
            del self._services[key]
            keys = self._services_by_ns[svc.namespace]
            keys.discard(key)
            if not keys:
                del self._services_by_ns[svc.namespace]

    def _count_vnids(self, topology: Topology) -> dict[int, int]:
        """How many local pods (with a port) and Services use each VNID (multitenant)."""
        counts: dict[int, int] = {}
        if topology.cluster_network.plugin is not Plugin.MULTITENANT:
            return counts
        vnids = self._vnids
        for pod, _ in self._local.values():
            vnid = vnids[pod.namespace]
            counts[vnid] = counts.get(vnid, 0) + 1
        for svc in topology.services:
            if svc.cluster_ip is not None:
                vnid = vnids[svc.namespace]
                counts[vnid] = counts.get(vnid, 0) + 1
        counts.pop(GLOBAL_VNID, None)
        return counts

    # ------------------------------------------------------------------------- by difference

    def _update(self, old: Topology, topology: Topology, host: HostSubnet,
                ports: dict[str, int] | None, tun0_mac: str | None) -> None:
        plugin = topology.cluster_network.plugin
        self._merged.order = UnitOrder(topology)
        change = _Change()
        if tun0_mac != self.tun0_mac:  # only the local egress-IP flow carries it
            self.tun0_mac = tun0_mac
            change.recompute[(EGRESS_IP, WHOLE)] = WHOLE
        self._update_net_namespaces(old, topology, change)
        self._update_host_subnets(old, topology, host, change)
        self._update_pods(old, topology, host, ports, change)
        if not plugin.uses_conntrack:
            self._update_services(old, topology, change)
        if plugin is Plugin.MULTITENANT:
            self._update_vnid_rules(topology, change)
        if plugin is Plugin.NETWORKPOLICY:
            self._update_policy_vnids(old, topology, change)
        self._update_egress_firewall(old, topology, change)
        self.topology = topology
        ctx = self._context(topology, host, ports)
        self._update_multicast(ctx, change)
        self._run(change.recompute.items(), ctx)

    def _update_net_namespaces(self, old: Topology, topology: Topology,
                               change: _Change) -> None:
        """VNIDs, multicast flags, egress IPs."""
        if old.net_namespaces == topology.net_namespaces:
            return
        change.net_namespaces = True
        vnids = {nn.name: nn.netid for nn in topology.net_namespaces}
        if topology.cluster_network.plugin.supports_vnids:
            change.vnid_namespaces = {ns for ns in self._vnids.keys() | vnids.keys()
                                      if self._vnids.get(ns) != vnids.get(ns)}
        self._vnids = vnids
        change.recompute[(EGRESS_IP, WHOLE)] = change.recompute[(EGRESS_FIREWALL, WHOLE)] = WHOLE

    def _update_host_subnets(self, old: Topology, topology: Topology, host: HostSubnet,
                             change: _Change) -> None:
        removed, added = changed_objects(old.host_subnets, topology.host_subnets)
        if not removed and not added:
            return
        change.recompute[(EGRESS_IP, WHOLE)] = WHOLE
        remote_ips = sorted(str(hs.host_ip) for hs in self._remote.values())
        for hs in removed:
            if self._remote.get(hs.name) == hs:
                del self._remote[hs.name]
                self._merged.remove((REMOTE_NODE, hs.name))
        for hs in added:
            if is_remote_node(topology, host, hs):
                self._remote[hs.name] = hs
                change.recompute[(REMOTE_NODE, hs.name)] = hs
        if remote_ips != sorted(str(hs.host_ip) for hs in self._remote.values()):
            change.recompute[(REPLICATION, WHOLE)] = WHOLE

    def _update_pods(self, old: Topology, topology: Topology, host: HostSubnet,
                     ports: dict[str, int] | None, change: _Change) -> None:
        removed, added = changed_objects(old.pods, topology.pods)
        touched: set[str] = set()  # local pods whose flows may change
        pods_by_ns = self._pods_by_ns
        for pod in removed:
            if pods_by_ns is not None:
                pods_by_ns.remove(pod)
                change.policy_namespaces.add(pod.namespace)
            if pod.node == host.host and self._local_all.get(pod.key) == pod:
                del self._local_all[pod.key]
                touched.add(pod.key)
        for pod in added:
            if pods_by_ns is not None:
                pods_by_ns.add(pod)
                change.policy_namespaces.add(pod.namespace)
            if pod.node == host.host:
                self._local_all[pod.key] = pod
                touched.add(pod.key)
        if ports != self.ports:
            for key, pod in self._local_all.items():
                if ofport_of(pod, ports) != ofport_of(pod, self.ports):
                    touched.add(key)
        for ns in change.vnid_namespaces:  # a VNID changed: its pods' flows carry it
            touched |= {key for key, pod in self._local_all.items() if pod.namespace == ns}
        self.ports = ports
        for key in touched:
            self._update_local_pod(old, key, ports, change)

    def _update_local_pod(self, old: Topology, key: str, ports: dict[str, int] | None,
                          change: _Change) -> None:
        before = self._local.pop(key, None)
        pod = self._local_all.get(key)
        port = None if pod is None else ofport_of(pod, ports)
        if before is not None:
            vnid = _vnid_of(old, before[0].namespace)
            change.pod_vnids.add(vnid)
            change.use(vnid, -1)
        if pod is None or port is None:
            if before is not None:
                self._merged.remove((POD, key))
            return
        self._local[key] = member = (pod, port)
        vnid = self._vnids.get(pod.namespace, GLOBAL_VNID)
        change.pod_vnids.add(vnid)
        change.use(vnid, +1)
        change.recompute[(POD, key)] = member

    def _update_services(self, old: Topology, topology: Topology, change: _Change) -> None:
        """Services (non-conntrack plugins)."""
        removed, added = changed_objects(old.services, topology.services)
        for svc in removed:
            key = service_key(svc)
            if self._services.get(key) == svc:
                self._remove_service_index(svc)
                self._merged.remove((SERVICE, key))
                change.use(_vnid_of(old, svc.namespace), -1)
        for svc in added:
            if svc.cluster_ip is not None:
                self._add_service_index(svc)
                change.recompute[(SERVICE, service_key(svc))] = svc
                change.use(self._vnids.get(svc.namespace, GLOBAL_VNID), +1)
        for ns in change.vnid_namespaces:
            for key in self._services_by_ns.get(ns, ()):
                change.recompute[(SERVICE, key)] = self._services[key]

    def _update_vnid_rules(self, topology: Topology, change: _Change) -> None:
        """The multitenant same-VNID rules: one per VNID in use."""
        if change.net_namespaces:
            counts = self._count_vnids(topology)
        else:
            counts = dict(self._vnid_count)
            for vnid, delta in change.vnid_uses.items():
                if vnid != GLOBAL_VNID and delta:
                    counts[vnid] = counts.get(vnid, 0) + delta
                    if not counts[vnid]:
                        del counts[vnid]
        for vnid in self._vnid_count.keys() - counts.keys():
            self._merged.remove((VNID_RULE, vnid))
        for vnid in counts.keys() - self._vnid_count.keys():
            change.recompute[(VNID_RULE, vnid)] = vnid
        self._vnid_count = counts

    def _update_policy_vnids(self, old: Topology, topology: Topology, change: _Change) -> None:
        """ovs-networkpolicy's VNIDs in use (a local pod) and their policy flows: a VNID's
        flows read the policies and pods of every namespace that has it."""
        namespaces = change.policy_namespaces
        removed, added = changed_objects(old.network_policies, topology.network_policies)
        if removed or added:
            self._policies_by_ns = {}
            for policy in topology.network_policies:
                self._policies_by_ns.setdefault(policy.namespace, []).append(policy)
            namespaces |= {p.namespace for p in removed} | {p.namespace for p in added}
        vnids = self._vnids
        dirty = {vnids[ns] for ns in namespaces if ns in vnids}
        for ns in change.vnid_namespaces:  # its VNIDs, before and after, changed members
            dirty.add(_vnid_of(old, ns))
            if ns in vnids:
                dirty.add(vnids[ns])
        existing = self._merged.idents(POLICY_VNID)
        if change.net_namespaces or old.namespaces != topology.namespaces:
            dirty |= existing & self._vnids_selecting_namespaces()
        in_use = {vnids[pod.namespace] for pod, _ in self._local.values()}
        for vnid in existing - in_use:
            self._merged.remove((POLICY_VNID, vnid))
        for vnid in (in_use - existing) | (dirty & in_use):
            change.recompute[(POLICY_VNID, vnid)] = vnid

    def _vnids_selecting_namespaces(self) -> set[Hashable]:
        """The VNIDs with a policy whose peers select namespaces (by label)."""
        return {self._vnids.get(namespace) for namespace, policies in self._policies_by_ns.items()
                if any(peer.namespace_selector is not None for policy in policies
                       for rule in policy.ingress for peer in rule.peers)}

    def _update_egress_firewall(self, old: Topology, topology: Topology,
                                change: _Change) -> None:
        """Its policies, or the DNS answers (`dns_changed`)."""
        if old.egress_network_policies != topology.egress_network_policies or self._dns_dirty:
            self._dns_dirty = False
            change.recompute[(EGRESS_FIREWALL, WHOLE)] = WHOLE

    def _update_multicast(self, ctx: NodeContext, change: _Change) -> None:
        """The enabled VNIDs, and their local pods' ports."""
        if change.net_namespaces:
            self._multicast = set(enabled_vnids(ctx))
            change.recompute[(MULTICAST, WHOLE)] = WHOLE
        elif change.pod_vnids & self._multicast:
            change.recompute[(MULTICAST, WHOLE)] = WHOLE


def _vnid_of(topology: Topology, namespace: str) -> int:
    try:
        return topology.vnid_of(namespace)
    except KeyError:
        return GLOBAL_VNID
