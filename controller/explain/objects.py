"""The topology objects behind flows and registers, as `ovn-detrace` names northbound rows.

A flow's cookie names its owner (`controller.pipeline.cookies`): the cookie is a pure function
of the owner, so every owner the topology can produce is enumerated once and looked up by
cookie.  Registers carry VNIDs (reg0 source, reg1 destination) and an ofport (reg2).  Pure.
"""

from __future__ import annotations

from collections import defaultdict

from controller.pipeline.cookies import Owner, OwnerKind, is_ours, kind_of
from topology.model import TUN0_OFPORT, VXLAN_OFPORT, Topology


def _hex(vnid: int) -> str:
    return f"0x{vnid:x}"


class ObjectNames:
    """Cookie -> "Pod default/web-1", VNID -> "namespace red", ofport -> its port."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.by_vnid: dict[int, list[str]] = defaultdict(list)
        for nn in sorted(topology.net_namespaces, key=lambda n: n.name):
            self.by_vnid[nn.netid].append(nn.name)
        self._owners: dict[int, tuple[Owner, str]] = {}
        for owner, text in self._all_owners():
            self._owners[owner.cookie] = (owner, text)

    # -- cookies -----------------------------------------------------------------------------
    def _all_owners(self) -> list[tuple[Owner, str]]:
        t = self.topology
        found: list[tuple[Owner, str]] = [
            (Owner(OwnerKind.STATIC, "setup"), "static flows (the node's br0 setup)"),
            (Owner(OwnerKind.VERSION_NOTE, "table-253"), "the version note"),
            (Owner(OwnerKind.MULTICAST, "vxlan-replication"), "multicast replication list"),
        ]
        for hs in t.host_subnets:
            found.append((Owner(OwnerKind.HOST_SUBNET, hs.name),
                          f"HostSubnet {hs.name} ({hs.subnet} on {hs.host_ip})"))
        for pod in t.pods:
            found.append((Owner(OwnerKind.POD, pod.key), f"Pod {pod.key} ({pod.ip})"))
        for svc in t.services:
            found.append((Owner(OwnerKind.SERVICE, f"{svc.namespace}/{svc.name}"),
                          f"Service {svc.namespace}/{svc.name} ({svc.cluster_ip})"))
        for nn in t.net_namespaces:
            found.append((Owner(OwnerKind.EGRESS_IP, nn.name),
                          f"NetNamespace {nn.name} (VNID {_hex(nn.netid)}) egress IPs "
                          f"{', '.join(map(str, nn.egress_ips)) or 'none'}"))
        for vnid, names in self.by_vnid.items():
            found.append((Owner(OwnerKind.VNID, str(vnid)), self.netnamespaces(vnid)))
            found.append((Owner(OwnerKind.POLICY_NAMESPACE, ",".join(names)),
                          f"NetworkPolicy isolation of {self.namespaces(vnid)}"))
            found.append((Owner(OwnerKind.MULTICAST, str(vnid)),
                          f"multicast of {self.netnamespaces(vnid)}"))
            enps = [f"{e.namespace}/{e.name}" for e in t.egress_network_policies
                    if e.namespace in names]
            found.append((Owner(OwnerKind.EGRESS_FIREWALL, str(vnid)),
                          f"EgressNetworkPolicy {', '.join(enps)}" if enps
                          else f"egress firewall of {self.namespaces(vnid)}"))
        for policy in t.network_policies:
            found.append((Owner(OwnerKind.NETWORK_POLICY, policy.key),
                          f"NetworkPolicy {policy.key}"))
        return found

    def owner(self, cookie: int) -> Owner | None:
        known = self._owners.get(cookie)
        return known[0] if known else None

    def describe_cookie(self, cookie: int) -> str:
        """The object behind a flow, by its cookie."""
        known = self._owners.get(cookie)
        if known is not None:
            return known[1]
        if not is_ours(cookie):
            # 3.11 itself marks only HostSubnet flows (a hash of the subnet), the rest with 0
            return "openshift-sdn flow (cookie 0: no owner recorded)" if cookie == 0 \
                else f"foreign flow (cookie 0x{cookie:x})"
        kind = kind_of(cookie)
        return f"{kind.name if kind else 'unknown'} object not in this topology " \
               f"(cookie 0x{cookie:016x})"

    # -- VNIDs, ports ------------------------------------------------------------------------
    def namespaces(self, vnid: int) -> str:
        """"namespace red", "namespaces backend, analytics", "VNID 0x7 (no namespace)"."""
        names = self.by_vnid.get(vnid, [])
        if not names:
            return f"VNID {_hex(vnid)} (no NetNamespace)"
        return ("namespace " if len(names) == 1 else "namespaces ") + ", ".join(names)

    def namespace_list(self, vnid: int) -> str:
        """"red", "analytics, backend" (namespaces sharing a VNID), "VNID 0x7"."""
        return ", ".join(self.by_vnid.get(vnid, [])) or f"VNID {_hex(vnid)}"

    def netnamespaces(self, vnid: int) -> str:
        """"NetNamespace kube-public (VNID 0x82f8b2)"."""
        names = self.by_vnid.get(vnid, [])
        return f"NetNamespace {', '.join(names) or '?'} (VNID {_hex(vnid)})"

    def port(self, host: str, ofport: int) -> str:
        if ofport == VXLAN_OFPORT:
            return "vxlan0"
        if ofport == TUN0_OFPORT:
            return "tun0"
        pod = next((p for p in self.topology.pods if p.node == host and p.ofport == ofport),
                   None)
        return f"port of Pod {pod.key}" if pod else f"port {ofport} (no pod)"

    def register(self, host: str, reg: str, value: int) -> str:
        """"reg0 = 100 (namespace red)"; reg2 is an output port."""
        if reg in ("reg0", "reg1"):
            shown = f"{value}" if value < 10 else f"{value} = {_hex(value)}"
            return f"{reg} = {shown} ({self.namespaces(value)})"
        if reg == "reg2":
            return f"{reg} = {value} ({self.port(host, value)})"
        return f"{reg} = {value}"
