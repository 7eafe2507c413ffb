"""ovs-networkpolicy's table 80 (3.11 `parseNetworkPolicy` + `syncNamespace`), minus its bugs.

3.11 keeps its policy state per VNID (`npNamespace`, keyed by VNID): namespaces sharing a
VNID (the same `netid`, e.g. several at 0) share one set of policies.  For each VNID with a
pod on this node ("in use"), over the policies of all its namespaces:
* every allowed (selected pod x peer x port) combination: priority 150, reg1=V, -> reg2;
* if some policy selects all pods: nothing else (table 80's drop denies the rest), so one
  namespace's deny-all isolates every pod of the VNID (fail closed, as 3.11);
* else a priority-100 drop per selected pod IP and a priority-50 allow for the rest.
A policy's pod selectors pick pods of its own namespace (3.11 picked them in whichever
namespace of the VNID its `npNamespace` was named after: the order of watch events).

Departures from 3.11, on purpose: an egress-only policy selects no pods for ingress (3.11
wrote an invalid `nw_dst=` flow); flows are derived from the whole topology, so deleting one
pod never removes another pod's policy flows.  An unsupported policy (named or missing port,
a protocol other than TCP/UDP) still makes its namespace deny-all, as 3.11 does, with a
warning naming the policy and the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind, itself
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import Match, OutputReg, Proto
from controller.pipeline.registers import OUT_PORT
from controller.pipeline.tables import Table
from topology.errors import OsdnError
from topology.model import IngressRule, LabelSelector, NetworkPolicy, Plugin, PolicyPeer

PROTOCOLS = {"TCP": Proto.TCP, "UDP": Proto.UDP}


class Unsupported(OsdnError, ValueError):
    pass


@dataclass(frozen=True)
class ParsedPolicy:
    matches: tuple[Match, ...]  # without reg1
    selected_ips: tuple[IPv4Address, ...] | None  # None = every pod of the namespace


def policy_owner(policy: NetworkPolicy) -> Owner:
    return Owner(OwnerKind.NETWORK_POLICY, policy.key)


def namespace_owner(namespaces: Sequence[str]) -> Owner:
    """The owner of a VNID's drops and allow-rest: its namespaces, sorted, by name (one
    namespace's name alone when it has its VNID to itself)."""
    return Owner(OwnerKind.POLICY_NAMESPACE, ",".join(namespaces))


def vnids_in_use(ctx: NodeContext) -> list[int]:
    """The VNIDs of the pods on this node, sorted (ovs-networkpolicy only)."""
    if ctx.plugin is not Plugin.NETWORKPOLICY:
        return []
    return sorted({ctx.vnid(pod.namespace) for pod, _ in ctx.local_pods})


def sync_vnid(ctx: NodeContext, vnid: int) -> None:
    """The table-80 flows of one VNID in use: the allows of the policies of all its
    namespaces, then its drops."""
    namespaces = sorted(ctx.namespaces_by_vnid.get(vnid, ()))
    policies = [policy for namespace in namespaces
                for policy in sorted(ctx.policies_by_namespace.get(namespace, ()),
                                     key=lambda p: p.name)]
    all_selected = False
    selected: list[IPv4Address] = []
    for policy in policies:
        parsed = _parse_or_deny(ctx, policy)
        own, allow = policy_owner(policy), (OutputReg(OUT_PORT),)
        for match in parsed.matches:
            # dataclasses.replace(match, reg1=vnid), without its per-field introspection
            ctx.out.add(own, Table.INGRESS_POLICY, 150, Match(**{**match.__dict__, "reg1": vnid}),
                        allow)
        if parsed.selected_ips is None:
            all_selected = True
        else:
            selected += [ip for ip in parsed.selected_ips if ip not in selected]
    if all_selected:
        return
    own = namespace_owner(namespaces)
    for ip in selected:
        ctx.out.add(own, Table.INGRESS_POLICY, 100,
                    Match(proto=Proto.IP, reg1=vnid, nw_dst=IPv4Network(int(ip))))
    ctx.out.add(own, Table.INGRESS_POLICY, 50, Match(reg1=vnid), (OutputReg(OUT_PORT),))


def _parse_or_deny(ctx: NodeContext, policy: NetworkPolicy) -> ParsedPolicy:
    try:
        return parse_policy(ctx, policy)
    except Unsupported as reason:
        ctx.out.warnings.append(f"NetworkPolicy/{policy.key}: unsupported by 3.11 ({reason}); "
                                f"treating its namespace as deny-all")
        return ParsedPolicy((), None)


def parse_policy(ctx: NodeContext, policy: NetworkPolicy) -> ParsedPolicy:
    if "Ingress" not in policy.policy_types:
        return ParsedPolicy((), ())  # egress-only: selects no pod for ingress
    if policy.pod_selector.is_empty:
        selected: tuple[IPv4Address, ...] | None = None
        destinations: list[Match] = [Match()]
    else:
        selected = tuple(_pod_ips(ctx, policy.namespace, policy.pod_selector))
        destinations = [Match(proto=Proto.IP, nw_dst=IPv4Network(int(ip))) for ip in selected]
    matches: list[Match] = []
    for rule in policy.ingress:
        ports, peers = _port_matches(rule), _peer_matches(ctx, policy, rule)
        for dst, peer, port in itertools.product(destinations, peers, ports):
            matches.append(_merge(dst, peer, port))
    return ParsedPolicy(tuple(dict.fromkeys(matches)), selected)


def _port_matches(rule: IngressRule) -> list[Match]:
    if not rule.ports:
        return [Match()]
    matches = []
    for port in rule.ports:
        proto = PROTOCOLS.get(port.protocol)
        if proto is None:
            raise Unsupported(f"protocol {port.protocol}")
        if port.port is None:
            raise Unsupported("a port without a port number")
        if isinstance(port.port, str):
            raise Unsupported(f"named port {port.port!r}")
        matches.append(Match(proto=proto, tp_dst=port.port))
    return matches


def _peer_matches(ctx: NodeContext, policy: NetworkPolicy, rule: IngressRule) -> list[Match]:
    if not rule.peers:
        return [Match()]
    matches: list[Match] = []
    for peer in rule.peers:
        matches += _one_peer(ctx, policy, peer)
    return matches


def _one_peer(ctx: NodeContext, policy: NetworkPolicy, peer: PolicyPeer) -> list[Match]:
    own_vnid = ctx.vnid(policy.namespace)
    if peer.pod_selector is not None and peer.namespace_selector is None:
        if peer.pod_selector.is_empty:
            return [Match(reg0=own_vnid)]
        return [Match(reg0=own_vnid, proto=Proto.IP, nw_src=IPv4Network(int(ip)))
                for ip in _pod_ips(ctx, policy.namespace, peer.pod_selector)]
    if peer.namespace_selector is not None and peer.pod_selector is None:
        if peer.namespace_selector.is_empty:
            return [Match()]
        return [Match(reg0=vnid) for vnid in _namespace_vnids(ctx, peer.namespace_selector)]
    return []  # pod+namespace selectors together, or ipBlock: 3.11 ignores the peer


def _pod_ips(ctx: NodeContext, namespace: str, selector: LabelSelector) -> list[IPv4Address]:
    return [pod.ip for pod in ctx.pods_by_namespace.get(namespace, ())
            if selector.matches(pod.label_map)]


def _namespace_vnids(ctx: NodeContext, selector: LabelSelector) -> list[int]:
    known = ctx.net_namespace_names
    return sorted({ctx.vnid(ns.name) for ns in ctx.topology.namespaces
                   if ns.name in known and selector.matches(ns.label_map)})


def _merge(*parts: Match) -> Match:
    """Combine match fragments as 3.11 concatenates its "ip, nw_dst=..., " strings."""
    fields: dict[str, object] = {}
    for part in parts:
        for name, value in part.__dict__.items():  # the dataclass fields, in their order
            if value is None or value is False:
                continue
            if name == "proto" and fields.get("proto") in (Proto.TCP, Proto.UDP) \
                    and value is Proto.IP:
                continue  # "tcp" already implies "ip"
            fields[name] = value
    return Match(**fields)  # type: ignore[arg-type]


UNIT = UnitKind("policy-vnid", vnids_in_use, sync_vnid, itself)
