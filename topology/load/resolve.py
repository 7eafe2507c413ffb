"""Stage 4: the SDN master's work (`topology.master`: VNIDs, change-network requests), and
the warnings for what 3.11 accepts but ignores or punishes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from topology import master
from topology.load.checks import ANNOTATIONS, Checks, Objects
from topology.load.kinds import NetNamespaceDraft
from topology.load.yamlreader import Key
from topology.model import (
    ANNOTATION_CHANGE_NETWORK,
    GLOBAL_VNID,
    ClusterNetwork,
    EgressNetworkPolicy,
    HostSubnet,
    NetNamespace,
    Plugin,
    egress_ip_sources,
)

_CHANGE_NETWORK: tuple[Key, ...] = (*ANNOTATIONS, ANNOTATION_CHANGE_NETWORK)


def resolve_net_namespaces(
    objects: Objects, plugin: Plugin, checks: Checks, warnings: list[str]
) -> tuple[NetNamespace, ...]:
    drafts = objects.usable("NetNamespace")
    requests = [
        master.VnidRequest(d.name, d.value.netid, d.value.change_network, d.value.created)
        for d in drafts
    ]
    # A join to a NetNamespace that could not be read is not a join to a missing one.
    all_read = checks.complete and len(drafts) == len(objects.of("NetNamespace"))
    result = master.assign_vnids(requests, plugin, complete=all_read)
    by_name = {obj.name: obj for obj in drafts}
    for problem in result.problems:
        checks.report(by_name[problem.namespace], _CHANGE_NETWORK, problem.message, problem.value)
    for note in result.notes:
        issue = checks.issue(by_name[note.namespace], _CHANGE_NETWORK, note.message, note.value)
        warnings.append(str(issue))
    return tuple(_net_namespace(obj.value, result) for obj in drafts)


def _net_namespace(draft: NetNamespaceDraft, result: master.VnidResult) -> NetNamespace:
    return NetNamespace(
        draft.name, draft.uid, result.vnids[draft.name], draft.egress_ips,
        draft.multicast_enabled, draft.origin, result.sources[draft.name],
    )  # fmt: skip


def shared_policy_state_warnings(net_namespaces: Sequence[NetNamespace]) -> list[str]:
    """ovs-networkpolicy: 3.11 keeps NetworkPolicy state per VNID (`npNamespace`), so the
    namespaces sharing one (the same `netid`, e.g. several at 0) share their policies."""
    by_vnid: dict[int, list[str]] = {}
    for ns in net_namespaces:
        by_vnid.setdefault(ns.netid, []).append(ns.name)
    return [
        f"namespaces {', '.join(sorted(names))} share VNID {vnid}; 3.11's ovs-networkpolicy "
        "keeps one NetworkPolicy state per VNID: a policy in any of them (a deny-all, an "
        "unsupported one) isolates the pods of all of them"
        for vnid, names in sorted(by_vnid.items()) if len(names) > 1
    ]


def host_subnet_warnings(subnets: Sequence[HostSubnet], network: ClusterNetwork) -> list[str]:
    """HostSubnets whose hostIP 3.11's `ValidateNodeIP` refuses: every other node ignores
    them (no tunnel, ARP or multicast flows to them), and their own node does not start."""
    warnings = []
    for subnet in subnets:
        conflict = network.node_ip_conflict(subnet.host_ip)
        if conflict is not None:
            where = f" ({subnet.origin})" if subnet.origin is not None else ""
            warnings.append(
                f"HostSubnet/{subnet.name}{where}: hostIP {subnet.host_ip} {conflict}; 3.11's "
                "nodes ignore this HostSubnet (no VXLAN, ARP or multicast flows to it) and its "
                "own node does not start"
            )
    return warnings


def egress_ip_warnings(
    net_namespaces: Sequence[NetNamespace], subnets: Sequence[HostSubnet]
) -> list[str]:
    """Egress IPs 3.11 accepts but does not use: its tracker keeps one list per VNID (the
    last NetNamespace's by name) and needs exactly one node and one VNID per IP."""
    hosted = {ip for subnet in subnets for ip in subnet.egress_ips}
    sources = egress_ip_sources(net_namespaces)
    claims = Counter(ip for ns in sources.values() for ip in set(ns.egress_ips))
    warnings = []
    for ns in net_namespaces:
        source = sources.get(ns.netid)
        if ns.egress_ips and source is not ns:
            warnings.append(_unused_list_warning(ns, source, net_namespaces))
        for ip in ns.egress_ips:
            if ip not in hosted:
                warnings.append(f"NetNamespace/{ns.name}: egress IP {ip} is on no HostSubnet")
            if source is ns and claims[ip] > 1:
                warnings.append(
                    f"NetNamespace/{ns.name}: egress IP {ip} is claimed by {claims[ip]} "
                    "VNIDs; 3.11 uses it for none of them"
                )
    for subnet in subnets:
        if subnet.fixed_vnid is not None and subnet.egress_ips:
            warnings.append(
                f"HostSubnet/{subnet.name}: a fixed-VNID host ({subnet.fixed_vnid}) with egress "
                "IPs; 3.11 tunnels egress-IP traffic to it with the pod's VNID, not the fixed one"
            )
    return warnings


def _unused_list_warning(
    ns: NetNamespace, source: NetNamespace | None, net_namespaces: Sequence[NetNamespace]
) -> str:
    """For a NetNamespace whose egressIPs lose to another of its VNID's (3.11 keeps one list
    per VNID, the last NetNamespace's by name, as a node reads them at start)."""
    last = source or max((other for other in net_namespaces if other.netid == ns.netid),
                         key=lambda other: other.name)  # fmt: skip
    empty = "" if source is not None else f"; {last.name} lists none, so the VNID has none"
    return (
        f"NetNamespace/{ns.name}: shares VNID {ns.netid} with NetNamespace/{last.name}; 3.11 "
        f"keeps one egress-IP list per VNID and uses {last.name}'s (the last by name), not "
        f"{ns.name}'s{empty}"
    )


def egress_policy_warnings(
    policies: Sequence[EgressNetworkPolicy], net_namespaces: Sequence[NetNamespace]
) -> list[str]:
    """The EgressNetworkPolicy cases 3.11 ignores or treats as errors (pipeline, table 101).
    A policy without rules is ignored first, as 3.11 keeps only `len(spec.egress) > 0`."""
    vnids = {ns.name: ns.netid for ns in net_namespaces}
    sharing = Counter(vnids.values())
    per_namespace = Counter(policy.namespace for policy in policies if policy.rules)
    warnings = [
        f"EgressNetworkPolicy/{policy.namespace}/{policy.name} has no egress rules; "
        "3.11 ignores it"
        for policy in policies if not policy.rules
    ]
    for namespace in sorted(per_namespace):
        vnid = vnids.get(namespace)
        subject = f'namespace "{namespace}"'
        if per_namespace[namespace] > 1:
            warnings.append(f"{subject} has {per_namespace[namespace]} EgressNetworkPolicies; "
                            "3.11 then drops all its external traffic")  # fmt: skip
        if vnid == GLOBAL_VNID:
            warnings.append(f"{subject} is global (VNID 0); 3.11 ignores its EgressNetworkPolicy")
        elif vnid is not None and sharing[vnid] > 1:
            warnings.append(f"{subject} shares VNID {vnid} with other namespaces; 3.11 then "
                            "drops all external traffic of that VNID")  # fmt: skip
    return warnings
