"""br0's tables under their openshift-sdn 3.11 numbers, with the graph between them.

Other nodes and the host's iptables depend on these numbers, so they are kept exactly; code
refers to them only by name.  `NEXT` declares which tables a table may continue to, so that
a goto typo fails when the flow is built instead of in ovs-ofctl.

Adding a table: add the member with a docstring-style comment (purpose, who fills it, an
example), declare its successors in NEXT and its miss action in MISS, then bump
RULE_VERSION in `controller.compiler.static` if existing nodes must notice.
"""

from __future__ import annotations

import enum

from topology.errors import OsdnError


class Table(enum.IntEnum):
    # Dispatch by in_port: vxlan0 (1) -> 10, tun0 (2) -> 30 (or 25 in conntrack mode), pods -> 20.
    CLASSIFIER = 0
    # VXLAN source check: one tun_src flow per remote HostSubnet, else drop.
    VXLAN_INGRESS = 10
    # From a pod: anti-spoofing (in_port + nw_src / arp_sha) and load of the source VNID into reg0.
    POD_INGRESS = 20
    # NetworkPolicy conntrack hook: commit pod->cluster connections (ovs-networkpolicy only).
    CONNTRACK_COMMIT = 21
    # Pod->service traffic back from tun0 after iptables DNAT: reload reg0 (conntrack mode).
    SERVICE_RETURN = 25
    # General routing by destination.
    ROUTING = 30
    # ARP to a local pod.
    ARP_LOCAL = 40
    # ARP to a remote subnet: through the tunnel.
    ARP_REMOTE = 50
    # IP to a service: tun0, and the service's VNID in non-conntrack mode.
    SERVICE = 60
    # IP to a local pod: destination VNID into reg1, ofport into reg2.
    IP_LOCAL = 70
    # Ingress isolation: VNIDs (multitenant) or NetworkPolicy; output to reg2.
    INGRESS_POLICY = 80
    # IP to a remote subnet: through the tunnel.
    IP_REMOTE = 90
    # Egress routing: egress IPs, DNS to the node, VXLAN sent by pods.
    EGRESS_IP = 100
    # Egress firewall (EgressNetworkPolicy).
    EGRESS_FIREWALL = 101
    # Multicast from local pods: is the VNID multicast-enabled?
    MULTICAST_OUT = 110
    # Multicast head-end replication to every remote node.
    MULTICAST_VXLAN = 111
    # Multicast delivery to the local pods of the VNID.
    MULTICAST_LOCAL = 120
    # The version note: note:<plugin id>.<rule version>.
    VERSION_NOTE = 253


class Miss(enum.Enum):
    """What a table's priority-0 flow does; None in MISS means the table has none."""

    DROP = "drop"
    NEXT = "next"  # continue to the single declared successor
    TUN0 = "tun0"  # output:2


NEXT: dict[Table, frozenset[Table]] = {
    Table.CLASSIFIER: frozenset({Table.CLASSIFIER, Table.VXLAN_INGRESS, Table.POD_INGRESS,
                                 Table.SERVICE_RETURN, Table.ROUTING}),
    Table.VXLAN_INGRESS: frozenset({Table.ROUTING}),
    Table.POD_INGRESS: frozenset({Table.CONNTRACK_COMMIT}),
    Table.CONNTRACK_COMMIT: frozenset({Table.ROUTING}),
    Table.SERVICE_RETURN: frozenset({Table.ROUTING}),
    Table.ROUTING: frozenset({Table.ARP_LOCAL, Table.ARP_REMOTE, Table.SERVICE, Table.IP_LOCAL,
                              Table.IP_REMOTE, Table.EGRESS_IP, Table.MULTICAST_OUT,
                              Table.MULTICAST_LOCAL}),
    Table.ARP_LOCAL: frozenset(),
    Table.ARP_REMOTE: frozenset(),
    Table.SERVICE: frozenset({Table.INGRESS_POLICY}),
    Table.IP_LOCAL: frozenset({Table.INGRESS_POLICY}),
    Table.INGRESS_POLICY: frozenset(),
    Table.IP_REMOTE: frozenset(),
    Table.EGRESS_IP: frozenset({Table.EGRESS_FIREWALL}),
    Table.EGRESS_FIREWALL: frozenset(),
    Table.MULTICAST_OUT: frozenset({Table.MULTICAST_VXLAN}),
    Table.MULTICAST_VXLAN: frozenset({Table.MULTICAST_LOCAL}),
    Table.MULTICAST_LOCAL: frozenset(),
    Table.VERSION_NOTE: frozenset(),
}

MISS: dict[Table, Miss | None] = {
    Table.CLASSIFIER: Miss.DROP,
    Table.VXLAN_INGRESS: Miss.DROP,
    Table.POD_INGRESS: Miss.DROP,
    Table.CONNTRACK_COMMIT: Miss.NEXT,
    Table.SERVICE_RETURN: Miss.DROP,
    Table.ROUTING: None,  # split by protocol: ip -> 100, arp -> drop (see compiler.static)
    Table.ARP_LOCAL: Miss.DROP,
    Table.ARP_REMOTE: Miss.DROP,
    Table.SERVICE: Miss.DROP,
    Table.IP_LOCAL: Miss.DROP,
    Table.INGRESS_POLICY: Miss.DROP,
    Table.IP_REMOTE: Miss.DROP,
    Table.EGRESS_IP: Miss.NEXT,
    Table.EGRESS_FIREWALL: Miss.TUN0,
    Table.MULTICAST_OUT: Miss.DROP,
    Table.MULTICAST_VXLAN: None,  # its one priority-100 flow is the replication list
    Table.MULTICAST_LOCAL: Miss.DROP,
    Table.VERSION_NOTE: None,
}


class GotoError(OsdnError, ValueError):
    """A flow tried to continue to a table its table does not declare."""


def check_goto(source: Table, target: Table) -> None:
    if target not in NEXT[source]:
        raise GotoError(f"table {source.name} ({int(source)}) may not continue to "
                        f"{target.name} ({int(target)})")


# What each table is for, in a few words, as `osdn explain` and the pipeline picture name it.
MEANING: dict[Table, str] = {
    Table.CLASSIFIER: "classifier: dispatch by in_port",
    Table.VXLAN_INGRESS: "VXLAN ingress: tunnel source must be a node",
    Table.POD_INGRESS: "pod ingress: source checked, source VNID loaded",
    Table.CONNTRACK_COMMIT: "conntrack: commit the connection (networkpolicy)",
    Table.SERVICE_RETURN: "service return: source VNID reloaded after iptables DNAT",
    Table.ROUTING: "routing by destination",
    Table.ARP_LOCAL: "ARP to a local pod",
    Table.ARP_REMOTE: "ARP to a remote subnet: through the tunnel",
    Table.SERVICE: "to a service: destination VNID, out to tun0",
    Table.IP_LOCAL: "to a local pod: destination VNID and port loaded",
    Table.INGRESS_POLICY: "ingress isolation: VNIDs or NetworkPolicy, then output",
    Table.IP_REMOTE: "to a remote subnet: source VNID as tun_id, through the tunnel",
    Table.EGRESS_IP: "egress routing: egress IPs",
    Table.EGRESS_FIREWALL: "egress firewall (EgressNetworkPolicy), then out to tun0",
    Table.MULTICAST_OUT: "multicast from a local pod: is its VNID multicast-enabled?",
    Table.MULTICAST_VXLAN: "multicast replication to the other nodes",
    Table.MULTICAST_LOCAL: "multicast delivery to local pods of the VNID",
    Table.VERSION_NOTE: "version note",
}


def meaning(table: int) -> str:
    """"20 pod ingress: source checked, source VNID loaded"; a table we do not define (a
    foreign flow's) is named by its number only."""
    try:
        return f"{table} {MEANING[Table(table)]}"
    except ValueError:
        return f"{table} (not an openshift-sdn table)"
