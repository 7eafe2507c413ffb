"""What a node's host side needs, computed from the topology without any I/O: tun0's address
and routes, openshift-sdn's iptables chains, egress IP addresses and SNAT, and (through
`kubeproxy`) the services' DNAT; as a `HostPlan` that `apply` applies."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from controller.compiler.egress_ip import egress_nodes, mark_for_vnid
from controller.hostside.kubeproxy import (
    KUBE_POSTROUTING,
    KUBE_SERVICES,
    NamedPortResolver,
    kube_proxy_rules,
)
from topology.errors import OsdnError
from topology.model import HostSubnet, NetNamespace, Pod, Topology, egress_ip_sources

MAX_CHAIN_NAME = 28  # iptables' limit (XT_EXTENSION_MAXNAMELEN - 1)

FIREWALL_ALLOW = "OPENSHIFT-FIREWALL-ALLOW"
ADMIN_OUTPUT_RULES = "OPENSHIFT-ADMIN-OUTPUT-RULES"
FIREWALL_FORWARD = "OPENSHIFT-FIREWALL-FORWARD"
MASQUERADE = "OPENSHIFT-MASQUERADE"
MASQUERADE_2 = "OPENSHIFT-MASQUERADE-2"


class UnknownHost(OsdnError, KeyError):
    """No HostSubnet for the host asked for."""


@dataclass(frozen=True)
class Jump:
    """A rule in a built-in chain jumping to one of ours (kept out of iptables-restore: a
    built-in chain is not ours to flush)."""

    table: str
    chain: str
    rule: tuple[str, ...]

    def argv(self, operation: str, *position: str) -> list[str]:
        return ["iptables", "-t", self.table, operation, self.chain, *position, *self.rule]


@dataclass(frozen=True)
class HostPlan:
    """Everything the host side of one node needs; `apply_host` applies it."""

    host: str
    ip_commands: list[list[str]]  # argv lists, in order, without any netns prefix
    sysctls: dict[str, str]
    iptables_restore: str  # for `iptables-restore --noflush`: *filter and *nat
    # Chains created when missing but never flushed (3.11 leaves their rules to the admin).
    ensure_chains: list[tuple[str, str]]  # (table, chain)
    # Jumps from built-in chains, per chain in the order they should head it.
    jumps: list[Jump]
    egress_ips: list[IPv4Address]  # claimed here: on the uplink, SNAT target, REJECTed inbound
    warnings: list[str] = field(default_factory=list)

    @property
    def chains(self) -> dict[str, list[str]]:
        """Table -> the chains the restore input declares (and so flushes and refills)."""
        result: dict[str, list[str]] = {}
        table = ""
        for line in self.iptables_restore.splitlines():
            if line.startswith("*"):
                table = line[1:]
                result[table] = []
            elif line.startswith(":"):
                result[table].append(line[1:].split()[0])
        return result



def plan_host(
    topology: Topology,
    host: str,
    *,
    tun0: str = "tun0",
    uplink: str,
    uplink_prefix: int = 24,
    egress_by_mark: bool = True,
    masquerade_bit: int = 0,
    named_port: NamedPortResolver | None = None,
) -> HostPlan:
    """The host side of HostSubnet `host`.

    `uplink` is the interface holding the node IP and `uplink_prefix` its network's prefix
    length (egress IPs are added there and must lie in that network).  `egress_by_mark`:
    3.11's SNAT by the egress mark (kernel datapath); False: by pod source address (see
    `controller.hostside`).  `masquerade_bit`: kube-proxy's --iptables-masquerade-bit (OpenShift
    3.x: 0).  `named_port` resolves a Service's named targetPort per pod; without it (the
    model does not carry container ports) the Service's own port number is used, with a
    warning.
    """
    hs = topology.host_subnet(host)
    if hs is None:
        raise UnknownHost(f"no HostSubnet for host {host!r}")
    if not 0 <= masquerade_bit <= 31:
        raise ValueError(f"masquerade bit {masquerade_bit} outside 0..31")
    network = topology.cluster_network
    cidrs = [str(entry.cidr) for entry in network.networks]
    warnings: list[str] = []

    claims = _claimed_egress_ips(topology, hs, IPv4Network(f"{hs.host_ip}/{uplink_prefix}",
                                                           strict=False), warnings)
    ip_commands = _ip_commands(topology, hs, tun0, uplink, uplink_prefix, claims)

    filter_chains: dict[str, list[list[str]]] = {}
    nat_chains: dict[str, list[list[str]]] = {}
    _openshift_rules(topology, hs, tun0, uplink, egress_by_mark, masquerade_bit, claims, cidrs,
                     filter_chains, nat_chains)
    kube_proxy_rules(topology, masquerade_bit, named_port, filter_chains, nat_chains, warnings)
    for name in (*filter_chains, *nat_chains):
        if len(name) > MAX_CHAIN_NAME:  # cannot happen with the names above; keep it so
            raise ValueError(f"iptables chain name {name!r} longer than {MAX_CHAIN_NAME}")
    restore = _restore_text("filter", filter_chains) + _restore_text("nat", nat_chains)

    return HostPlan(
        host=host,
        ip_commands=ip_commands,
        # 3.11 refuses to start unless forwarding is on (SetupSDN); it sets no other sysctl.
        sysctls={"net.ipv4.ip_forward": "1"},
        iptables_restore=restore,
        ensure_chains=[("filter", ADMIN_OUTPUT_RULES)],
        jumps=_jumps(tun0, topology),
        egress_ips=[ip for ip, _ in claims],
        warnings=warnings,
    )


def _ip_commands(topology: Topology, hs: HostSubnet, tun0: str, uplink: str,
                 uplink_prefix: int, claims: list[tuple[IPv4Address, NetNamespace]]
                 ) -> list[list[str]]:
    network = topology.cluster_network
    commands = [
        # tun0 is OVS's internal port: 3.11 sets its mtu_request; the link MTU is the same.
        ["ip", "link", "set", tun0, "mtu", str(network.mtu), "up"],
        ["ip", "addr", "replace", f"{hs.gateway}/{hs.subnet.prefixlen}", "dev", tun0],
    ]
    for entry in network.networks:
        commands.append(["ip", "route", "replace", str(entry.cidr), "dev", tun0,
                         "scope", "link"])
    # netlink's default scope (universe), as 3.11's RouteAdd leaves it
    commands.append(["ip", "route", "replace", str(network.service_network), "dev", tun0,
                     "scope", "global"])
    # 3.11 deletes the route the kernel added with the address; `flush` is a no-op (exit 0)
    # when it is already gone, and `proto kernel` spares our own routes.
    commands.append(["ip", "route", "flush", "exact", str(hs.subnet), "dev", tun0,
                     "proto", "kernel"])
    for ip, _ in claims:
        commands.append(["ip", "addr", "replace", f"{ip}/{uplink_prefix}", "dev", uplink])
    return commands


def _claimed_egress_ips(topology: Topology, hs: HostSubnet, uplink_net: IPv4Network,
                        warnings: list[str]) -> list[tuple[IPv4Address, NetNamespace]]:
    """The egress IPs 3.11's tracker has this node claim, each with its namespace, in
    address order: active = exactly one node and one namespace claim it, and that namespace
    has no second IP on the same node (`egressIPActive`).  Failover candidates a namespace
    does not currently use are claimed as well."""
    if not topology.cluster_network.plugin.supports_vnids:
        return []
    nodes: dict[IPv4Address, list[HostSubnet]] = defaultdict(list)
    for subnet in topology.host_subnets:
        for ip in set(subnet.egress_ips):
            nodes[ip].append(subnet)
    spaces: dict[IPv4Address, list[NetNamespace]] = defaultdict(list)
    for nn in egress_ip_sources(topology.net_namespaces).values():  # one list per VNID
        for ip in set(nn.egress_ips):
            spaces[ip].append(nn)
    claims = []
    for ip in sorted(set(hs.egress_ips)):
        if len(nodes[ip]) != 1 or len(spaces[ip]) != 1:
            continue
        nn = spaces[ip][0]
        if any(other != ip and nodes[other] == [hs] for other in nn.egress_ips):
            continue
        if ip not in uplink_net:  # assignEgressIP refuses it: no address, no rules
            warnings.append(f"egress IP {ip} is not in the uplink network {uplink_net}; "
                            "not claimed (as 3.11)")
            continue
        claims.append((ip, nn))
    return claims


def _openshift_rules(topology: Topology, hs: HostSubnet, tun0: str, uplink: str,
                     egress_by_mark: bool, masquerade_bit: int,
                     claims: list[tuple[IPv4Address, NetNamespace]], cidrs: list[str],
                     filter_chains: dict[str, list[list[str]]],
                     nat_chains: dict[str, list[list[str]]]) -> None:
    vxlan = str(topology.cluster_network.vxlan_port)
    allow = [
        ["-p", "udp", "--dport", vxlan, "-m", "comment", "--comment", "VXLAN incoming",
         "-j", "ACCEPT"],
        ["-i", tun0, "-m", "comment", "--comment", "from SDN to localhost", "-j", "ACCEPT"],
        ["-i", "docker0", "-m", "comment", "--comment", "from docker to localhost",
         "-j", "ACCEPT"],
    ]
    # AddEgressIPRules appends the REJECT; claimed in address order
    allow += [["-d", str(ip), "-m", "conntrack", "--ctstate", "NEW", "-j", "REJECT"]
              for ip, _ in claims]
    forward = []
    for cidr in cidrs:
        forward += [
            ["-s", cidr, "-m", "comment", "--comment", "attempted resend after connection close",
             "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"],
            ["-d", cidr, "-m", "comment", "--comment", "forward traffic from SDN", "-j", "ACCEPT"],
            ["-s", cidr, "-m", "comment", "--comment", "forward traffic to SDN", "-j", "ACCEPT"],
        ]
    filter_chains[FIREWALL_ALLOW] = allow
    filter_chains[FIREWALL_FORWARD] = forward

    masq: list[list[str]] = []
    # AddEgressIPRules prepends: the last IP claimed ends up first
    for ip, nn in claims:
        masq = _egress_snat(topology, hs, ip, nn, uplink, egress_by_mark, masquerade_bit,
                            cidrs) + masq
    conntrack = topology.cluster_network.plugin.uses_conntrack
    for cidr in cidrs:
        if not conntrack:  # masqueradeServices = !useConnTrack
            masq.append(["-s", cidr, "-m", "comment", "--comment",
                         "masquerade pod-to-service and pod-to-external traffic",
                         "-j", "MASQUERADE"])
        else:
            masq.append(["-s", cidr, "-m", "comment", "--comment",
                         "masquerade pod-to-external traffic", "-j", MASQUERADE_2])
    nat_chains[MASQUERADE] = masq
    if conntrack:
        nat_chains[MASQUERADE_2] = [
            *(["-d", cidr, "-m", "comment", "--comment", "masquerade pod-to-external traffic",
               "-j", "RETURN"] for cidr in cidrs),
            ["-j", "MASQUERADE"],
        ]


def _egress_snat(topology: Topology, hs: HostSubnet, ip: IPv4Address, nn: NetNamespace,
                 uplink: str, by_mark: bool, masquerade_bit: int, cidrs: list[str]
                 ) -> list[list[str]]:
    if by_mark:
        mark = f"0x{mark_for_vnid(nn.netid, masquerade_bit):08x}"  # getMarkForVNID's format
        rules: list[list[str]] = []
        for cidr in cidrs:  # prepended one by one: the last CIDR first
            rules.insert(0, ["-s", cidr, "-m", "mark", "--mark", mark, "-j", "SNAT",
                             "--to-source", str(ip)])
        return rules
    # By source: only when this IP is the one the namespace uses (table 100 sends its traffic
    # here); that is the namespace's first IP hosted by its egress node.
    if egress_nodes(topology).get(nn) != hs:
        return []
    if next((e for e in nn.egress_ips if e in hs.egress_ips), None) != ip:
        return []
    return [["-s", f"{pod.ip}/32", "-o", uplink, "-j", "SNAT", "--to-source", str(ip)]
            for pod in _pods_of_vnid(topology, nn.netid)]


def _pods_of_vnid(topology: Topology, vnid: int) -> list[Pod]:
    """Every pod, on any node, whose namespace has `vnid` (joined namespaces share it)."""
    vnids = {nn.name: nn.netid for nn in topology.net_namespaces}
    return sorted((pod for pod in topology.pods if vnids.get(pod.namespace) == vnid),
                  key=lambda pod: pod.ip)


def _jumps(tun0: str, topology: Topology) -> list[Jump]:
    """Built-in chains' jumps, per chain in their final order.  kube-proxy starts after the
    SDN setup and prepends too, so its jumps come first."""
    portals = ("-m", "comment", "--comment", "kubernetes service portals", "-j", KUBE_SERVICES)
    new = ("-m", "conntrack", "--ctstate", "NEW")
    overrides = ("-m", "comment", "--comment", "firewall overrides")
    return [
        Jump("filter", "INPUT", (*overrides, "-j", FIREWALL_ALLOW)),
        # kube-proxy 1.11 jumps to the filter KUBE-SERVICES from OUTPUT only; from FORWARD
        # too (as later versions do) so that pods get the REJECT of a Service without
        # endpoints (pod traffic is forwarded from tun0 to tun0).
        Jump("filter", "FORWARD", (*new, *portals)),
        Jump("filter", "FORWARD", ("-i", tun0, "!", "-o", tun0, "-m", "comment", "--comment",
                                   "administrator overrides", "-j", ADMIN_OUTPUT_RULES)),
        Jump("filter", "FORWARD", (*overrides, "-j", FIREWALL_FORWARD)),
        Jump("filter", "OUTPUT", (*new, *portals)),
        Jump("nat", "PREROUTING", portals),
        Jump("nat", "OUTPUT", portals),
        Jump("nat", "POSTROUTING", ("-m", "comment", "--comment", "kubernetes postrouting rules",
                                    "-j", KUBE_POSTROUTING)),
        Jump("nat", "POSTROUTING", ("-m", "comment", "--comment",
                                    "rules for masquerading OpenShift traffic", "-j", MASQUERADE)),
    ]


def _quote(arg: str) -> str:
    """iptables-restore splits on blanks and honours double quotes."""
    if arg and not any(c.isspace() or c in "\"'" for c in arg):
        return arg
    if '"' in arg:
        raise ValueError(f"cannot quote {arg!r} for iptables-restore")
    return f'"{arg}"'


def _restore_text(table: str, chains: dict[str, list[list[str]]]) -> str:
    lines = [f"*{table}"]
    lines += [f":{name} - [0:0]" for name in chains]
    for name, rules in chains.items():
        lines += [" ".join(["-A", name, *map(_quote, rule)]) for rule in rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"

