"""A plain-text summary of a validated topology, for ``osdn check``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from topology.master import ALLOCATED
from topology.model import Plugin, Topology

_NONE = "-"


def summarize(t: Topology) -> str:
    sections = [
        _overview(t),
        _nodes(t),
        _namespaces(t),
        _pods_per_node(t),
        _services(t),
        _egress_ips(t),
        _tun0_macs(t),
        _multicast(t),
        _dns_names(t),
        _policies(t),
        _listing("Ignored objects", t.ignored),
        _listing("Warnings", t.warnings),
    ]
    return "\n\n".join(section for section in sections if section)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Rows under headers, each column padded to its widest cell."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _overview(t: Topology) -> str:
    cn = t.cluster_network
    networks = ", ".join(f"{e.cidr} (hostSubnetLength {e.host_subnet_length})" for e in cn.networks)
    rows = [
        ("plugin", cn.plugin.value),
        ("cluster networks", networks),
        ("service network", cn.service_network),
        ("VXLAN port", cn.vxlan_port),
        ("MTU", cn.mtu),
    ]
    return _labelled(rows)


def _labelled(rows: Sequence[tuple[str, object]]) -> str:
    """``label:  value`` lines, the values aligned."""
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label + ':':<{width}}{value}" for label, value in rows)


def _nodes(t: Topology) -> str:
    rows = [
        (
            hs.host,
            hs.host_ip,
            hs.subnet,
            hs.gateway,
            f"0x{hs.datapath_id:016x}",
            ", ".join(map(str, hs.egress_ips)) or _NONE,
        )
        for hs in t.host_subnets
    ]
    headers = ("HOST", "HOST IP", "SUBNET", "GATEWAY", "DATAPATH ID", "EGRESS IPS")
    return _section(f"Nodes ({len(rows)})", table(headers, rows))


def _namespaces(t: Topology) -> str:
    rows = [(ns.name, ns.netid, f"0x{ns.netid:06x}", _vnid_note(ns.netid_source))
            for ns in sorted(t.net_namespaces, key=lambda ns: ns.name)]  # fmt: skip
    lines = table(("NAMESPACE", "VNID", "HEX", "HOW"), rows)
    if t.cluster_network.plugin is Plugin.SUBNET:
        lines.insert(0, "(ovs-subnet does not use VNIDs: every namespace is treated as VNID 0)")
    return _section(f"NetNamespaces ({len(rows)})", lines)


def _vnid_note(source: str) -> str:
    if source == "":
        return "netid"
    if source == ALLOCATED:
        return "allocated"
    return f"changed ({source})"


def _pods_per_node(t: Topology) -> str:
    counts = Counter(pod.node for pod in t.pods)
    rows = [(hs.host, counts[hs.host]) for hs in t.host_subnets]
    return _section(f"Pods per node ({len(t.pods)} pods)", table(("HOST", "PODS"), rows))


def _services(t: Topology) -> str:
    rows = [
        (
            f"{svc.namespace}/{svc.name}",
            svc.cluster_ip if svc.cluster_ip is not None else "None",
            ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) or _NONE,
        )
        for svc in t.services
    ]
    return _section(f"Services ({len(rows)})", table(("SERVICE", "CLUSTER IP", "PORTS"), rows))


def _egress_ips(t: Topology) -> str:
    hosts = {ip: hs.host for hs in t.host_subnets for ip in hs.egress_ips}
    rows = [
        (ns.name, ip, hosts.get(ip, "(no node)")) for ns in t.net_namespaces for ip in ns.egress_ips
    ]
    if not rows:
        return ""
    return _section(f"Egress IPs ({len(rows)})", table(("NAMESPACE", "EGRESS IP", "NODE"), rows))


def _tun0_macs(t: Topology) -> str:
    """The MAC table 100 writes on each egress node, as `osdn render` knows it."""
    if not t.cluster_network.plugin.supports_vnids:
        return ""
    rows = [(hs.host, hs.tun0_mac,
             "annotation osdn.dev/tun0-mac" if hs.annotated_tun0_mac else "0a:58 + gateway")
            for hs in t.host_subnets if hs.egress_ips]
    if not rows:
        return ""
    note = ("(osdn render writes these; the controller writes the MAC the switch reports "
            "for tun0, and logs it if it differs)")
    return _section(f"tun0 MAC on egress nodes ({len(rows)})",
                    [note, *table(("HOST", "TUN0 MAC", "FROM"), rows)])


def _multicast(t: Topology) -> str:
    """VNIDs with a multicast-enabled namespace: enabled only if all their namespaces are."""
    by_vnid: dict[int, list[tuple[str, bool]]] = {}
    for nn in t.net_namespaces:
        by_vnid.setdefault(nn.netid, []).append((nn.name, nn.multicast_enabled))
    rows = [(vnid, ", ".join(name + ("" if on else " (not annotated)") for name, on in spaces),
             "yes" if all(on for _, on in spaces) else "no")
            for vnid, spaces in sorted(by_vnid.items()) if any(on for _, on in spaces)]
    if not rows:
        return ""
    plugin = t.cluster_network.plugin
    if not plugin.supports_vnids:
        rows = [(vnid, names, "no (ovs-subnet has no multicast)") for vnid, names, _ in rows]
    lines = table(("VNID", "NAMESPACES", "ENABLED"), rows)
    if plugin is Plugin.NETWORKPOLICY:
        lines.insert(0, "(multicast is not subject to NetworkPolicy, as in 3.11)")
    return _section(f"Multicast ({len(rows)} VNIDs annotated)", lines)


def _dns_names(t: Topology) -> str:
    entries = [f"  {enp.namespace}/{enp.name}: {rule.dns_name}"
               for enp in t.egress_network_policies for rule in enp.rules if rule.dns_name]
    if not entries:
        return ""
    note = ("(the controller resolves each when its policy arrives and again when the "
            "answer's TTL runs out; a failure keeps the last addresses; osdn render resolves "
            "once)")
    return _section(f"EgressNetworkPolicy dnsNames ({len(entries)})", [note, *entries])


def _policies(t: Topology) -> str:
    return _labelled([
        ("NetworkPolicies", len(t.network_policies)),
        ("EgressNetworkPolicies", len(t.egress_network_policies)),
    ])  # fmt: skip


def _listing(title: str, entries: Sequence[str]) -> str:
    return (
        _section(f"{title} ({len(entries)})", [f"  {entry}" for entry in entries])
        if entries
        else ""
    )


def _section(title: str, lines: Sequence[str]) -> str:
    return "\n".join([title, *lines])
