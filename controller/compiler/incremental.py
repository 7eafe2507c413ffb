"""One node's flows kept up to date by owner: what the controller compiles with.

`compile_node` is the reference (`osdn render` prints it).  `NodeCompiler` yields the same
flows, owners and warnings (tests/unit/test_incremental.py compares both after random
changes), already encoded, but after its first build it recomputes only the *units* whose
inputs changed, and it reports which flow keys changed: a pod added costs that pod's flows,
not the cluster's.

A unit is one call of the compiler's own per-object code, with everything it reads:

| unit            | code                        | inputs                                          |
|-----------------|-----------------------------|-------------------------------------------------|
| static          | compile_static              | ClusterNetwork, this node's HostSubnet          |
| hs/<name>       | add_remote                  | that remote HostSubnet                          |
| repl            | multicast_replication       | the remote nodes' IPs                           |
| pod/<ns/name>   | add_pod                     | the local pod, its ofport, its namespace's VNID |
| svc/<ns/name>   | add_service                 | the Service, its namespace's VNID               |
| vnid/<v>        | add_vnid_rule               | v in use by a local pod or any Service          |
| np/<ns>         | networkpolicy's namespace   | its policies, the namespace's pods (any node),  |
|                 |                             | VNIDs, and Namespaces if a policy selects them  |
| eip, efw, mc    | egress IPs, egress firewall,| HostSubnets + NetNamespaces; ENPs + NetNamespaces|
|                 | multicast                   | (+ DNS); NetNamespaces + local pods             |

Anything else changing (the ClusterNetwork, this node's own HostSubnet) rebuilds everything.
Changed objects are found by value, fast: the loader's `FileCache` hands back the very same
objects for files that did not change, so a chunked prefix/suffix comparison of each object
tuple (C speed for identical objects) finds the changed stretch without hashing the cluster.

Merging units: each flow key normally has one unit.  When several units want one key (two
namespaces sharing a VNID can), the unit that comes first in `compile_node`'s order wins, as
`FlowSet` keeps the first add; `node_flows()` replays all units in that order, warnings
included.
"""

from __future__ import annotations

import gc
import hashlib
import operator
from collections.abc import Mapping, Sequence
from typing import Any

from controller.compiler import NodeFlows, UnknownNode
from controller.compiler.context import FlowSet, NodeContext, Settings
from controller.compiler.egress_firewall import compile_egress_firewalls
from controller.compiler.egress_ip import compile_egress_ips
from controller.compiler.hostsubnet import add_remote, multicast_replication
from controller.compiler.multicast import compile_multicast, enabled_vnids
from controller.compiler.networkpolicy import _sync_namespace
from controller.compiler.pod import add_pod
from controller.compiler.service import add_service
from controller.compiler.static import compile_static
from controller.compiler.vnid import add_vnid_rule
from controller.pipeline.cookies import ID_BITS, OURS_VALUE, CookieCollision, Owner
from controller.pipeline.flow import Action, Flow, Match, sort_key
from controller.pipeline.tables import Table
from controller.openflow.wire import Encoded, Key, encode_flow
from topology.gcpause import gc_paused
from topology.model import GLOBAL_VNID, HostSubnet, NetworkPolicy, Plugin, Pod, Service, \
    Topology

UnitId = tuple[Any, ...]
_PART = {"static": 0, "hs": 1, "repl": 1, "pod": 2, "svc": 3, "vnid": 4, "np": 5, "eip": 6,
         "efw": 7, "mc": 8}
_LAST = float("inf")


def cookie_of(owner: Owner) -> int:
    """`Owner.cookie`, computed here once per owner and unit."""
    digest = hashlib.sha256(f"{owner.kind.name}:{owner.name}".encode()).digest()
    return OURS_VALUE | (int(owner.kind) << ID_BITS) | int.from_bytes(digest[:6], "big")


class _Warnings(list[str]):
    """A unit's `out.warnings`: each warning also goes into the unit's log, in order."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self._log = log

    def append(self, text: str) -> None:
        super().append(text)
        self._log.append(text)


class _UnitOut:
    """Stands in for `FlowSet` while a unit runs: records each add and warning in order."""

    def __init__(self) -> None:
        self.log: list[Flow | str] = []
        self.warnings = _Warnings(self.log)

    def add(self, owner: Owner, table: Table, priority: int, match: Match,
            actions: Sequence[Action] = (), goto: Table | None = None) -> None:
        self.log.append(Flow(table, priority, match, owner, tuple(actions), goto))


class _Unit:
    __slots__ = ("uid", "log", "flows", "owners")

    def __init__(self, uid: UnitId, log: list[Flow | str], flows: dict[Key, Encoded],
                 owners: dict[Owner, int]) -> None:
        self.uid = uid
        self.log = log  # what the unit's code did: Flows added and warnings, in order
        self.flows = flows  # its flows by key, the first add of a key kept (as FlowSet does)
        self.owners = owners  # owner -> cookie


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


_CHUNK = 1024


def changed_objects(old: Sequence[Any], new: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(removed, added) between two tuples of objects, by value.

    Unchanged objects are mostly the very same objects in the same order (the loader's
    `FileCache` hands back the objects of unchanged files), so the common prefix and suffix
    are found a chunk at a time by tuple comparison, which is C speed for identical elements;
    only the stretch between them is compared object by object."""
    if old is new:
        return [], []
    shortest = min(len(old), len(new))
    start = _common_prefix(old, new, shortest)
    if start == shortest and len(old) == len(new):
        return [], []
    tail = _common_suffix(old, new, shortest - start)
    old_middle, new_middle = old[start:len(old) - tail], new[start:len(new) - tail]
    if not old_middle or not new_middle:
        return list(old_middle), list(new_middle)
    old_set, new_set = set(old_middle), set(new_middle)
    return ([o for o in old_middle if o not in new_set],
            [n for n in new_middle if n not in old_set])


def _common_prefix(a: Sequence[Any], b: Sequence[Any], limit: int) -> int:
    i = 0
    while i < limit:
        j = min(i + _CHUNK, limit)
        if a[i:j] != b[i:j]:
            while a[i] is b[i] or a[i] == b[i]:
                i += 1
            return i
        i = j
    return limit


def _common_suffix(a: Sequence[Any], b: Sequence[Any], limit: int) -> int:
    """How many trailing elements are equal, at most `limit`."""
    la, lb, i = len(a), len(b), 0
    while i < limit:
        j = min(i + _CHUNK, limit)
        if a[la - j:la - i] != b[lb - j:lb - i]:
            while a[la - 1 - i] is b[lb - 1 - i] or a[la - 1 - i] == b[lb - 1 - i]:
                i += 1
            return i
        i = j
    return limit


class NodeCompiler:
    """`compile_node(topology, node, settings, ports)` for a sequence of topologies and port
    maps, by difference.  `update()` then `desired` (key -> Encoded) and `take_dirty()` (the
    keys whose desired flow changed, or vanished, since the last call)."""

    def __init__(self, node: str, settings: Settings = Settings()) -> None:
        self.node = node
        self.settings = settings
        self.desired: dict[Key, Encoded] = {}
        self.table_counts: dict[int, int] = {}
        self._dirty: set[Key] = set()
        self._reset()

    # ------------------------------------------------------------------------- state

    def _reset(self) -> None:
        for key in self.desired:
            self._dirty.add(key)
        self.desired = {}
        self.table_counts = {}
        self.topology: Topology | None = None
        self.ports: dict[str, int] | None = None
        self._host: HostSubnet | None = None
        self._units: dict[UnitId, _Unit] = {}
        self._holder: dict[Key, UnitId] = {}
        self._contested: dict[Key, list[UnitId]] = {}
        self._owner_refs: dict[Owner, int] = {}
        self._cookie_owner: dict[int, Owner] = {}
        self._remote: dict[str, HostSubnet] = {}
        self._local_all: dict[str, Pod] = {}  # this node's pods, port or not
        self._local: dict[str, tuple[Pod, int]] = {}  # ... with their ofport
        self._services: dict[str, Service] = {}
        self._services_by_ns: dict[str, set[str]] = {}
        self._vnid_count: dict[int, int] = {}
        self._pods_by_ns: _PodsByNamespace | None = None
        self._policies_by_ns: dict[str, list[NetworkPolicy]] = {}
        self._vnids: dict[str, int] = {}
        self._multicast: set[int] = set()
        self._order_cache: dict[str, dict[str, int]] = {}

    def take_dirty(self) -> set[Key]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def update(self, topology: Topology, ports: Mapping[str, int] | None = None) -> None:
        """Bring `desired` to `compile_node(topology, node, settings, ports)`.  Raises what
        compile_node raises (UnknownNode, CookieCollision); the next update then rebuilds."""
        host = topology.host_subnet(self.node)
        if host is None:
            known = ", ".join(sorted(hs.host for hs in topology.host_subnets))
            raise UnknownNode(f"no HostSubnet with host {self.node!r} (known: {known})")
        ports = None if ports is None else dict(ports)
        with gc_paused():
            try:
                old = self.topology
                if old is None or host != self._host \
                        or topology.cluster_network != old.cluster_network:
                    self._reset()
                    self._build(topology, host, ports)
                    # Tens of thousands of flows that live as long as the compiler: out of
                    # the collector's generations, or the next collections walk them all.
                    gc.freeze()
                else:
                    self._update(old, topology, host, ports)
            except BaseException:
                self._reset()
                raise

    @property
    def plugin(self) -> Plugin:
        assert self.topology is not None
        return self.topology.cluster_network.plugin

    def _ofport(self, pod: Pod, ports: dict[str, int] | None) -> int | None:
        return pod.ofport if ports is None else ports.get(pod.interface or "")

    def _context(self, topology: Topology, host: HostSubnet,
                 ports: dict[str, int] | None) -> NodeContext:
        ctx = NodeContext(topology, host, self.settings, ports, FlowSet())
        ctx.local_pods = list(self._local.values())
        ctx.remote_subnets = list(self._remote.values())
        if self._pods_by_ns is not None:
            ctx.pods_by_namespace = self._pods_by_ns  # type: ignore[assignment]
            ctx.policies_by_namespace = self._policies_by_ns
        return ctx

    # ------------------------------------------------------------------------- full build

    def _build(self, topology: Topology, host: HostSubnet, ports: dict[str, int] | None) -> None:
        self.topology, self._host, self.ports = topology, host, ports
        plugin = topology.cluster_network.plugin
        self._remote = {hs.name: hs for hs in topology.host_subnets
                        if hs.host_ip != host.host_ip}
        self._local_all = {pod.key: pod for pod in topology.pods if pod.node == host.host}
        for key, pod in self._local_all.items():
            port = self._ofport(pod, ports)
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
        ctx = self._context(topology, host, ports)
        self._multicast = set(enabled_vnids(ctx))
        units: list[UnitId] = [("static",)]
        units += [("hs", name) for name in self._remote]
        units.append(("repl",))
        units += [("pod", key) for key in self._local]
        units += [("svc", key) for key in self._services]
        self._vnid_count = self._count_vnids(topology)
        if plugin is Plugin.MULTITENANT:
            units += [("vnid", vnid) for vnid in sorted(self._vnid_count)]
        if plugin is Plugin.NETWORKPOLICY:
            units += [("np", ns) for ns in sorted(self._namespaces_in_use())]
        units += [("eip",), ("efw",), ("mc",)]
        for uid in units:
            self._add_unit(self._compute(uid, ctx))

    def _add_service_index(self, svc: Service) -> None:
        key = f"{svc.namespace}/{svc.name}"
        self._services[key] = svc
        self._services_by_ns.setdefault(svc.namespace, set()).add(key)

    def _remove_service_index(self, svc: Service) -> None:
        key = f"{svc.namespace}/{svc.name}"
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

    def _namespaces_in_use(self) -> set[str]:
        return {pod.namespace for pod, _ in self._local.values()}

    # ------------------------------------------------------------------------- by difference

    def _update(self, old: Topology, topology: Topology, host: HostSubnet,
                ports: dict[str, int] | None) -> None:
        plugin = topology.cluster_network.plugin
        self._order_cache = {}
        recompute: set[UnitId] = set()
        np_dirty: set[str] = set()
        changed_pod_vnids: set[int] = set()  # VNIDs of local pods that came, went or moved
        vnid_delta: dict[int, int] = {}  # VNID -> change in local pods + Services using it

        # NetNamespaces: VNIDs, multicast flags, egress IPs
        nn_changed = old.net_namespaces != topology.net_namespaces
        changed_ns: set[str] = set()
        if nn_changed:
            vnids = {nn.name: nn.netid for nn in topology.net_namespaces}
            if plugin.supports_vnids:
                changed_ns = {ns for ns in self._vnids.keys() | vnids.keys()
                              if self._vnids.get(ns) != vnids.get(ns)}
            self._vnids = vnids
            recompute |= {("eip",), ("efw",)}
        namespaces_changed = old.namespaces != topology.namespaces

        # HostSubnets
        removed, added = changed_objects(old.host_subnets, topology.host_subnets)
        if removed or added:
            recompute.add(("eip",))
            remote_ips = sorted(str(hs.host_ip) for hs in self._remote.values())
            for hs in removed:
                if self._remote.get(hs.name) == hs:
                    del self._remote[hs.name]
                    self._remove_unit(("hs", hs.name))
            for hs in added:
                if hs.host_ip != host.host_ip:
                    self._remote[hs.name] = hs
                    recompute.add(("hs", hs.name))
            if remote_ips != sorted(str(hs.host_ip) for hs in self._remote.values()):
                recompute.add(("repl",))

        # Pods
        removed, added = changed_objects(old.pods, topology.pods)
        touched: set[str] = set()  # local pods whose flows may change
        for pod in removed:
            if self._pods_by_ns is not None:
                self._pods_by_ns.remove(pod)
                np_dirty.add(pod.namespace)
            if pod.node == host.host and self._local_all.get(pod.key) == pod:
                del self._local_all[pod.key]
                touched.add(pod.key)
        for pod in added:
            if self._pods_by_ns is not None:
                self._pods_by_ns.add(pod)
                np_dirty.add(pod.namespace)
            if pod.node == host.host:
                self._local_all[pod.key] = pod
                touched.add(pod.key)
        if ports != self.ports:
            for key, pod in self._local_all.items():
                if self._ofport(pod, ports) != self._ofport(pod, self.ports):
                    touched.add(key)
        for ns in changed_ns:  # a VNID changed: its pods' flows carry it
            touched |= {key for key, pod in self._local_all.items() if pod.namespace == ns}
        self.ports = ports
        for key in touched:
            before = self._local.pop(key, None)
            pod = self._local_all.get(key)
            port = None if pod is None else self._ofport(pod, ports)
            if before is not None:
                vnid = self._vnid_of(old, before[0].namespace)
                changed_pod_vnids.add(vnid)
                vnid_delta[vnid] = vnid_delta.get(vnid, 0) - 1
            if pod is None or port is None:
                if before is not None:
                    self._remove_unit(("pod", key))
            else:
                self._local[key] = (pod, port)
                vnid = self._vnids.get(pod.namespace, GLOBAL_VNID)
                changed_pod_vnids.add(vnid)
                vnid_delta[vnid] = vnid_delta.get(vnid, 0) + 1
                recompute.add(("pod", key))

        # Services (non-conntrack plugins)
        removed, added = changed_objects(old.services, topology.services)
        if not plugin.uses_conntrack:
            for svc in removed:
                key = f"{svc.namespace}/{svc.name}"
                if self._services.get(key) == svc:
                    self._remove_service_index(svc)
                    self._remove_unit(("svc", key))
                    vnid = self._vnid_of(old, svc.namespace)
                    vnid_delta[vnid] = vnid_delta.get(vnid, 0) - 1
            for svc in added:
                if svc.cluster_ip is not None:
                    self._add_service_index(svc)
                    recompute.add(("svc", f"{svc.namespace}/{svc.name}"))
                    vnid = self._vnids.get(svc.namespace, GLOBAL_VNID)
                    vnid_delta[vnid] = vnid_delta.get(vnid, 0) + 1
            for ns in changed_ns:
                recompute |= {("svc", key) for key in self._services_by_ns.get(ns, ())}

        # VNID rules (multitenant)
        if plugin is Plugin.MULTITENANT:
            if nn_changed:
                counts = self._count_vnids(topology)
            else:
                counts = dict(self._vnid_count)
                for vnid, delta in vnid_delta.items():
                    if vnid != GLOBAL_VNID and delta:
                        counts[vnid] = counts.get(vnid, 0) + delta
                        if not counts[vnid]:
                            del counts[vnid]
            for vnid in self._vnid_count.keys() - counts.keys():
                self._remove_unit(("vnid", vnid))
            recompute |= {("vnid", vnid) for vnid in counts.keys() - self._vnid_count.keys()}
            self._vnid_count = counts

        # NetworkPolicy namespaces
        if plugin is Plugin.NETWORKPOLICY:
            removed, added = changed_objects(old.network_policies, topology.network_policies)
            if removed or added:
                self._policies_by_ns = {}
                for policy in topology.network_policies:
                    self._policies_by_ns.setdefault(policy.namespace, []).append(policy)
                np_dirty |= {p.namespace for p in removed} | {p.namespace for p in added}
            np_dirty |= changed_ns
            if nn_changed or namespaces_changed:
                np_dirty |= {uid[1] for uid in self._units if uid[0] == "np"
                             and self._selects_namespaces(uid[1])}
            in_use = self._namespaces_in_use()
            existing = {uid[1] for uid in self._units if uid[0] == "np"}
            for ns in existing - in_use:
                self._remove_unit(("np", ns))
            recompute |= {("np", ns) for ns in (in_use - existing) | (np_dirty & in_use)}

        # egress firewall: its policies, or DNS answers that may have changed
        if old.egress_network_policies != topology.egress_network_policies or (
                self.settings.resolver is not None
                and any(rule.dns_name for enp in topology.egress_network_policies
                        for rule in enp.rules)):
            recompute.add(("efw",))

        self.topology = topology
        ctx = self._context(topology, host, ports)
        # multicast: the enabled VNIDs, and their local pods' ports
        if nn_changed:
            multicast = set(enabled_vnids(ctx))
            if multicast != self._multicast:
                recompute.add(("mc",))
            self._multicast = multicast
        if nn_changed or changed_pod_vnids & self._multicast:
            recompute.add(("mc",))

        for uid in recompute:
            self._remove_unit(uid)
            self._add_unit(self._compute(uid, ctx))

    def _vnid_of(self, topology: Topology, namespace: str) -> int:
        try:
            return topology.vnid_of(namespace)
        except KeyError:
            return GLOBAL_VNID

    def _selects_namespaces(self, namespace: str) -> bool:
        return any(peer.namespace_selector is not None
                   for policy in self._policies_by_ns.get(namespace, ())
                   for rule in policy.ingress for peer in rule.peers)

    # ------------------------------------------------------------------------- units

    def _compute(self, uid: UnitId, ctx: NodeContext) -> _Unit:
        out = _UnitOut()
        ctx.out = out  # type: ignore[assignment]
        kind = uid[0]
        if kind == "static":
            compile_static(ctx)
        elif kind == "hs":
            add_remote(ctx, self._remote[uid[1]])
        elif kind == "repl":
            multicast_replication(ctx)
        elif kind == "pod":
            add_pod(ctx, *self._local[uid[1]])
        elif kind == "svc":
            add_service(ctx, self._services[uid[1]])
        elif kind == "vnid":
            add_vnid_rule(ctx, uid[1])
        elif kind == "np":
            _sync_namespace(ctx, uid[1])
        elif kind == "eip":
            compile_egress_ips(ctx)
        elif kind == "efw":
            compile_egress_firewalls(ctx)
        elif kind == "mc":
            compile_multicast(ctx)
        else:
            raise ValueError(f"unknown unit {uid!r}")
        owners: dict[Owner, int] = {}
        flows: dict[Key, Encoded] = {}
        for item in out.log:
            if type(item) is str:
                continue
            owner = item.owner
            cookie = owners.get(owner)
            if cookie is None:
                cookie = owners[owner] = cookie_of(owner)
            encoded = encode_flow(item, cookie)
            flows.setdefault(encoded.key, encoded)
        return _Unit(uid, out.log, flows, owners)

    def _order(self, uid: UnitId) -> tuple[int, Any]:
        """Where compile_node adds the unit's flows: part, then position within the part."""
        kind = uid[0]
        if kind in ("hs", "pod", "svc"):
            return (_PART[kind], self._position(kind, uid[1]))
        if kind == "repl":
            return (_PART[kind], _LAST)
        if kind in ("vnid", "np"):
            return (_PART[kind], uid[1])
        return (_PART[kind], 0)

    def _position(self, kind: str, name: str) -> int:
        positions = self._order_cache.get(kind)
        if positions is None:
            assert self.topology is not None
            objects: Sequence[Any]
            if kind == "hs":
                objects, key = self.topology.host_subnets, operator.attrgetter("name")
            elif kind == "pod":
                objects, key = self.topology.pods, operator.attrgetter("key")
            else:
                objects = self.topology.services
                key = lambda svc: f"{svc.namespace}/{svc.name}"  # noqa: E731
            positions = self._order_cache[kind] = {key(o): i for i, o in enumerate(objects)}
        return positions.get(name, -1)

    def _add_unit(self, unit: _Unit) -> None:
        for owner, cookie in unit.owners.items():
            refs = self._owner_refs.get(owner)
            if refs is None:
                known = self._cookie_owner.setdefault(cookie, owner)
                if known != owner:
                    raise CookieCollision(f"cookie 0x{cookie:016x} of {owner} collides with "
                                          f"{known}")
                self._owner_refs[owner] = 1
            else:
                self._owner_refs[owner] = refs + 1
        uid = unit.uid
        self._units[uid] = unit
        holder, desired, dirty, counts = self._holder, self.desired, self._dirty, self.table_counts
        for key, encoded in unit.flows.items():
            current = holder.get(key)
            if current is None:
                holder[key] = uid
                desired[key] = encoded
                counts[key[0]] = counts.get(key[0], 0) + 1
            else:
                holders = self._contested.setdefault(key, [current])
                holders.append(uid)
                winner = min(holders, key=self._order)
                holder[key] = winner
                desired[key] = self._units[winner].flows[key]
            dirty.add(key)

    def _remove_unit(self, uid: UnitId) -> None:
        unit = self._units.pop(uid, None)
        if unit is None:
            return
        for owner in unit.owners:
            refs = self._owner_refs[owner] - 1
            if refs:
                self._owner_refs[owner] = refs
            else:
                del self._owner_refs[owner]
                del self._cookie_owner[unit.owners[owner]]
        holder, desired, dirty, counts = self._holder, self.desired, self._dirty, self.table_counts
        for key in unit.flows:
            holders = self._contested.get(key)
            if holders is None:
                del holder[key]
                del desired[key]
                counts[key[0]] -= 1
                if not counts[key[0]]:
                    del counts[key[0]]
            else:
                holders.remove(uid)
                winner = min(holders, key=self._order)
                if len(holders) == 1:
                    del self._contested[key]
                holder[key] = winner
                desired[key] = self._units[winner].flows[key]
            dirty.add(key)

    # ------------------------------------------------------------------------- reference form

    def node_flows(self) -> NodeFlows:
        """The result as `compile_node` returns it: every unit's adds and warnings replayed
        in compile_node's order through a `FlowSet`, flows sorted for rendering."""
        assert self.topology is not None
        self._order_cache = {}
        out = FlowSet()
        for uid in sorted(self._units, key=self._order):
            for item in self._units[uid].log:
                if type(item) is str:
                    out.warnings.append(item)
                else:
                    out.add(item.owner, item.table, item.priority, item.match, item.actions,
                            item.goto)
        flows = tuple(sorted(out.flows.values(), key=sort_key))
        return NodeFlows(self.node, flows, tuple(self.topology.warnings) + tuple(out.warnings))
