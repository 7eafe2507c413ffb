"""Drift between a real node's br0 and `osdn render`: pure, no OVS needed.

A saved `ovs-ofctl -O OpenFlow13 dump-flows br0` of a 3.11 node is compared with the flows
the project renders for that node, both reduced to `FlowKey`s (cookies and counters left
out: 3.11 puts a cookie only on HostSubnet flows, so cookies cannot be compared).  What
differs is grouped by the object it belongs to:

* a **missing** flow (rendered, not on the node) by its render cookie's owner;
* an **extra** flow (on the node, not rendered) by what it names: the first IP address,
  ofport or VNID in it that an object of the topology has; when nothing has it, the flow
  is probably left behind by an object that is gone ("unknown (stale?)");
* a **changed** flow is a missing and an extra one in the same slot (table, priority,
  match): the node holds the rule with other actions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controller.compiler import NodeFlows
from controller.ovs.flowdump import DumpedFlow, FlowKey, flow_key
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import Flow
from topology.model import TUN0_OFPORT, VXLAN_OFPORT, Topology

UNKNOWN = "unknown (stale?)"


@dataclass(frozen=True)
class Difference:
    """One flow that differs: its text (render line, or dump line without counters) and,
    for a dump flow, its line number in the dump."""

    text: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.text, **({"line": self.line} if self.line is not None else {})}


@dataclass
class Drift:
    node: str
    rendered: int
    dumped: int
    missing: dict[str, list[Difference]] = field(default_factory=dict)
    extra: dict[str, list[Difference]] = field(default_factory=dict)
    changed: dict[str, list[tuple[Difference, Difference]]] = field(default_factory=dict)

    @property
    def same(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def counts(self) -> tuple[int, int, int]:
        """How many flows are missing, extra and changed."""
        return (sum(map(len, self.missing.values())), sum(map(len, self.extra.values())),
                sum(map(len, self.changed.values())))

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node, "same": self.same,
            "flows": {"render": self.rendered, "dump": self.dumped},
            "missing": [{"object": o, "flows": [d.as_dict() for d in ds]}
                        for o, ds in self.missing.items()],
            "extra": [{"object": o, "flows": [d.as_dict() for d in ds]}
                      for o, ds in self.extra.items()],
            "changed": [{"object": o, "flows": [{"render": r.as_dict(), "dump": d.as_dict()}
                                                for r, d in pairs]}
                        for o, pairs in self.changed.items()],
        }

    def to_text(self) -> str:
        missing, extra, changed = self.counts()
        lines = [f"{self.node}: {missing} missing, {extra} extra, {changed} changed "
                 f"(render {self.rendered} flows, dump {self.dumped})"]
        if self.same:
            lines[0] = (f"{self.node}: no drift (render {self.rendered} flows, "
                        f"dump {self.dumped})")
        for title, groups in (("missing (in the render, not on the node)", self.missing),
                              ("extra (on the node, not in the render)", self.extra)):
            if groups:
                lines += ["", f"{title}:"]
                for owner, diffs in groups.items():
                    lines.append(f"  {owner}")
                    lines += [f"    {_shown(d)}" for d in diffs]
        if self.changed:
            lines += ["", "changed (same table, priority and match; other actions):"]
            for owner, pairs in self.changed.items():
                lines.append(f"  {owner}")
                for render, dump in pairs:
                    lines += [f"    render: {render.text}", f"    node:   {_shown(dump)}"]
        return "\n".join(lines) + "\n"


def _shown(diff: Difference) -> str:
    return diff.text + (f"  (dump line {diff.line})" if diff.line is not None else "")


def _render_text(flow: Flow) -> str:
    """The render's line without its cookie, which is not compared."""
    return flow.to_ofctl().split(", ", 1)[1]


def port_names(topology: Topology, node: str) -> dict[str, int]:
    """Port names a dump may show instead of numbers (dumps made without --no-names)."""
    names = {"vxlan0": VXLAN_OFPORT, "tun0": TUN0_OFPORT}
    for pod in topology.pods:
        if pod.node == node and pod.interface and pod.ofport is not None:
            names[pod.interface] = pod.ofport
    return names


def compare(topology: Topology, rendered: NodeFlows, dumped: list[DumpedFlow]) -> Drift:
    """What `dumped` (the node's flows) lacks and has beyond `rendered`, grouped by object."""
    want: dict[FlowKey, list[Flow]] = {}
    for flow in rendered.flows:
        want.setdefault(flow_key(flow.to_ofctl()), []).append(flow)
    have: dict[FlowKey, list[DumpedFlow]] = {}
    for dflow in dumped:
        have.setdefault(dflow.key, []).append(dflow)
    extra_count = Counter({k: len(v) for k, v in have.items()}) \
        - Counter({k: len(v) for k, v in want.items()})
    missing_count = Counter({k: len(v) for k, v in want.items()}) \
        - Counter({k: len(v) for k, v in have.items()})
    names = ObjectNames(topology, rendered.node)
    drift = Drift(rendered.node, len(rendered.flows), len(dumped))
    extra_by_slot: dict[tuple[Any, ...], list[DumpedFlow]] = {}
    for key, n in sorted(extra_count.items()):
        extra_by_slot.setdefault(key.slot, []).extend(have[key][-n:])
    for key, n in sorted(missing_count.items()):
        for flow in want[key][-n:]:
            owner = names.owner(flow.owner)
            rendered_diff = Difference(_render_text(flow))
            node_side = extra_by_slot.get(key.slot)
            if node_side:
                dflow = node_side.pop(0)
                drift.changed.setdefault(owner, []).append(
                    (rendered_diff, Difference(dflow.text, dflow.line)))
            else:
                drift.missing.setdefault(owner, []).append(rendered_diff)
    for flows in extra_by_slot.values():
        for dflow in flows:
            drift.extra.setdefault(names.attribute(dflow.key), []).append(
                Difference(dflow.text, dflow.line))
    for groups in (drift.missing, drift.extra):
        for diffs in groups.values():
            diffs.sort(key=lambda d: (d.line or 0, d.text))
    return drift


class ObjectNames:
    """Objects of the topology by their cookie owner, and by the addresses, ofports and
    VNIDs a flow may name."""

    def __init__(self, topology: Topology, node: str) -> None:
        self.topology = topology
        self.by_ip: dict[str, str] = {}
        self.by_net: dict[str, str] = {}
        self.by_port: dict[int, str] = {}
        self.by_vnid: dict[int, list[str]] = {}
        cn = topology.cluster_network
        for entry in cn.networks:
            self.by_net[str(entry.cidr)] = f"ClusterNetwork {cn.name} ({entry.cidr})"
        self.by_net[str(cn.service_network)] = \
            f"ClusterNetwork {cn.name} (services {cn.service_network})"
        for nn in topology.net_namespaces:
            self.by_vnid.setdefault(nn.netid, []).append(nn.name)
            for ip in nn.egress_ips:
                self.by_ip[str(ip)] = f"NetNamespace {nn.name} (egress IP {ip})"
        for svc in topology.services:
            if svc.cluster_ip is not None:
                self.by_ip[str(svc.cluster_ip)] = f"Service {svc.namespace}/{svc.name}"
        for hs in topology.host_subnets:
            label = f"HostSubnet {hs.name}"
            self.by_ip[str(hs.host_ip)] = label
            self.by_ip[str(next(hs.subnet.hosts()))] = f"{label} (its tun0 gateway)"
            self.by_net[str(hs.subnet)] = label
        for pod in topology.pods:
            self.by_ip[str(pod.ip)] = f"Pod {pod.key}"
            if pod.node == node and pod.ofport is not None:
                self.by_port[pod.ofport] = f"Pod {pod.key}"

    def vnid(self, vnid: int) -> str:
        names = self.by_vnid.get(vnid)
        if not names:
            return f"VNID {vnid:#x} (no NetNamespace has it)"
        return f"NetNamespace {', '.join(sorted(names))} (VNID {vnid:#x})"

    def owner(self, owner: Owner) -> str:
        """The object behind a render cookie's owner, as a person names it."""
        kind, name = owner.kind, owner.name
        if kind is OwnerKind.STATIC:
            return "static pipeline (every node)"
        if kind is OwnerKind.VERSION_NOTE:
            return "version note (table 253)"
        if kind in (OwnerKind.VNID, OwnerKind.EGRESS_FIREWALL) or (
                kind is OwnerKind.MULTICAST and name.isdigit()):
            what = {OwnerKind.VNID: "", OwnerKind.EGRESS_FIREWALL: "EgressNetworkPolicy of ",
                    OwnerKind.MULTICAST: "multicast of "}[kind]
            return what + self.vnid(int(name))
        labels = {OwnerKind.HOST_SUBNET: "HostSubnet", OwnerKind.POD: "Pod",
                  OwnerKind.SERVICE: "Service", OwnerKind.EGRESS_IP: "NetNamespace",
                  OwnerKind.NETWORK_POLICY: "NetworkPolicy",
                  OwnerKind.POLICY_NAMESPACE: "NetworkPolicy namespaces",
                  OwnerKind.MULTICAST: "multicast"}
        return f"{labels[kind]} {name}" + (" (egress IP)" if kind is OwnerKind.EGRESS_IP
                                           else "")

    def attribute(self, key: FlowKey) -> str:
        """The object an extra flow belongs to.  The most specific kind of thing the flow
        names decides (addresses, else pod ofports, else VNIDs): the first of those that an
        object has, else `UNKNOWN` naming the first.  A flow for a deleted pod names its old
        IP and also VNID 0, which other objects have: the IP must decide."""
        for clues in _clues(key):
            for kind, value in clues:
                found = self._lookup(kind, value)
                if found is not None:
                    return found
            if clues:
                kind, value = clues[0]
                shown = f"{value:#x}" if kind == "vnid" and isinstance(value, int) else value
                return f"{UNKNOWN}: nothing in the topology has {kind} {shown}"
        return UNKNOWN

    def _lookup(self, kind: str, value: str | int) -> str | None:
        if kind == "ip":
            return self.by_ip.get(str(value))
        if kind == "network":
            return self.by_net.get(str(value))
        if kind == "ofport":
            return self.by_port.get(int(value))
        return self.vnid(int(value)) if int(value) in self.by_vnid else None


_IP_FIELDS = ("nw_src", "nw_dst", "arp_spa", "arp_tpa", "tun_src", "tun_dst")


def _clues(key: FlowKey) -> list[list[tuple[str, str | int]]]:
    """What an extra flow names, by kind, most specific first: addresses, pod ofports,
    VNIDs."""
    addresses = [_address(v) for v in map(key.field, _IP_FIELDS) if v is not None]
    addresses += [_address(a.partition("=")[2]) for a in key.actions
                  if a.startswith("set:tun_dst=")]
    vnids: list[tuple[str, str | int]] = [
        ("vnid", int(v, 16)) for v in map(key.field, ("reg0", "reg1"))
        if v is not None and "/" not in v]
    vnids += [("vnid", int(a.partition("=")[2], 16)) for a in key.actions
              if a.startswith(("set:reg0=", "set:reg1="))]
    return [list(addresses), list(_ports(key)), vnids]


def _address(text: str) -> tuple[str, str]:
    return ("network" if "/" in text else "ip", text)


def _ports(key: FlowKey) -> Iterable[tuple[str, int]]:
    candidates = []
    in_port = key.field("in_port")
    if in_port is not None and in_port.isdigit():
        candidates.append(int(in_port))
    for action in key.actions:
        if action.startswith("output:") and action[7:].isdigit():
            candidates.append(int(action[7:]))
        if action.startswith("set:reg2="):
            candidates.append(int(action.partition("=")[2], 16))
    return [("ofport", p) for p in candidates if p not in (VXLAN_OFPORT, TUN0_OFPORT)]
