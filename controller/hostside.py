"""The node's host side, as openshift-sdn 3.11's node (and its kube-proxy) sets it.

Beside br0's flows, a 3.11 node programs its own kernel:

* tun0 (`sdn_controller.go` setup): the subnet gateway with the *subnet's* prefix, the link
  up, a route for every cluster CIDR (scope link) and one for the service network (scope
  universe, shown without a scope by `ip route`), and the local-subnet route the kernel
  adds with the address deleted again (pods are reached through the cluster-CIDR route);
* `iptables.go`: OPENSHIFT-FIREWALL-ALLOW (INPUT), OPENSHIFT-ADMIN-OUTPUT-RULES and
  OPENSHIFT-FIREWALL-FORWARD (FORWARD), OPENSHIFT-MASQUERADE (nat POSTROUTING) and, in
  conntrack mode (ovs-networkpolicy), OPENSHIFT-MASQUERADE-2 — rules, comments and jumps as
  3.11 writes them;
* `egressip.go`, on the node hosting an active egress IP: the address on the interface
  holding the node IP (with that network's prefix), the SNAT by packet mark prepended to
  OPENSHIFT-MASQUERADE and a REJECT for new inbound connections to it;
* kube-proxy (iptables mode, as in Kubernetes 1.11): KUBE-SERVICES → KUBE-SVC-<hash> →
  KUBE-SEP-<hash> DNAT to every pod the Service selects, spread with `statistic random`;
  KUBE-MARK-MASQ / KUBE-POSTROUTING for hairpin traffic; a REJECT for a Service without
  endpoints.

`plan_host` computes all of it from a `Topology` without any I/O; `apply_host` applies a plan
through injected runners (the emulated cluster prefixes ``nsenter --net=/run/netns/<ns>``; on a real
node they run the commands as they are).  Applying is idempotent: ``ip addr/route replace``,
our chains declared in one ``iptables-restore --noflush`` input (so they are flushed and
refilled, other chains untouched), and jumps from built-in chains inserted only when
``iptables -C`` does not find them, as 3.11's and kube-proxy's EnsureRule do.

Egress IPs and the userspace datapath: OVS's ``pkt_mark`` reaches the kernel only with the
kernel datapath.  `egress_by_mark=False` replaces 3.11's by-mark SNAT by one rule per pod
source address of the namespaces (VNID) that leave through this node's egress IP, limited to
packets leaving by the uplink (the marked packets are exactly the external ones, which leave
by the uplink; without ``-o`` a pod-to-service packet DNATed on this node would be SNATed
to the egress IP too).  Everything else is the same in both modes.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple

from controller.compiler.egress_ip import egress_nodes, mark_for_vnid
from topology.model import HostSubnet, NetNamespace, Pod, Service, ServicePort, Topology

MAX_CHAIN_NAME = 28  # iptables' limit (XT_EXTENSION_MAXNAMELEN - 1)

FIREWALL_ALLOW = "OPENSHIFT-FIREWALL-ALLOW"
ADMIN_OUTPUT_RULES = "OPENSHIFT-ADMIN-OUTPUT-RULES"
FIREWALL_FORWARD = "OPENSHIFT-FIREWALL-FORWARD"
MASQUERADE = "OPENSHIFT-MASQUERADE"
MASQUERADE_2 = "OPENSHIFT-MASQUERADE-2"
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"

KUBE_PROTOCOLS = ("TCP", "UDP")  # SCTP services arrived after 3.11's kube-proxy (1.11)

NamedPortResolver = Callable[[Pod, str, str], int | None]
"""(pod, protocol, port name) -> the pod's container port of that name, or None."""


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


# ---------------------------------------------------------------------------------------------
# Planning


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
    3.11's SNAT by the egress mark (kernel datapath); False: by pod source address (see the
    module docstring).  `masquerade_bit`: kube-proxy's --iptables-masquerade-bit (OpenShift
    3.x: 0).  `named_port` resolves a Service's named targetPort per pod; without it (the
    model does not carry container ports) the Service's own port number is used, with a
    warning.
    """
    hs = topology.host_subnet(host)
    if hs is None:
        raise KeyError(f"no HostSubnet for host {host!r}")
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
    _kube_proxy_rules(topology, masquerade_bit, named_port, filter_chains, nat_chains, warnings)
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
    for nn in topology.net_namespaces:
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
        rules = []
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


# ---------------------------------------------------------------------------------------------
# kube-proxy (iptables mode, Kubernetes 1.11 as shipped with OpenShift 3.11)


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(name + protocol)), 16 characters."""
    digest = hashlib.sha256((service_port_name + protocol).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_port_name(svc: Service, port: ServicePort) -> str:
    """ServicePortName.String(): ``namespace/name:portname`` (the colon even when unnamed)."""
    return f"{svc.namespace}/{svc.name}:{port.name}"


def svc_chain(svc: Service, port: ServicePort) -> str:
    return "KUBE-SVC-" + port_proto_hash(service_port_name(svc, port), port.protocol.lower())


def sep_chain(svc: Service, port: ServicePort, endpoint: str) -> str:
    name, protocol = service_port_name(svc, port), port.protocol.lower()
    return "KUBE-SEP-" + port_proto_hash(name, protocol + endpoint)


def endpoints(topology: Topology, svc: Service, port: ServicePort,
              named_port: NamedPortResolver | None = None,
              warnings: list[str] | None = None) -> list[str]:
    """``ip:port`` of every pod the Service selects, by pod address (the endpoints
    controller's order).  A Service without a selector has no endpoints here."""
    if not svc.selector:
        return []
    result = []
    warned = False
    for pod in sorted(_selected(topology, svc), key=lambda pod: pod.ip):
        target = port.port if port.target_port is None else port.target_port
        if isinstance(target, str):
            resolver = named_port or (lambda p, protocol, name: p.named_port(name, protocol))
            resolved = resolver(pod, port.protocol, target)
            if resolved is None and (named_port is not None or pod.container_ports):
                continue  # the endpoints controller leaves a pod without that port out
            if resolved is None:
                if not warned and warnings is not None:
                    warnings.append(
                        f"Service/{svc.namespace}/{svc.name}: named targetPort {target!r} "
                        f"cannot be resolved (no container ports); using port {port.port}")
                warned = True
                resolved = port.port
            target = resolved
        result.append(f"{pod.ip}:{target}")
    return result


def _selected(topology: Topology, svc: Service) -> Iterable[Pod]:
    for pod in topology.pods:
        labels = pod.label_map
        if pod.namespace == svc.namespace and all(labels.get(k) == v for k, v in svc.selector):
            yield pod


def _kube_proxy_rules(topology: Topology, masquerade_bit: int,
                      named_port: NamedPortResolver | None,
                      filter_chains: dict[str, list[list[str]]],
                      nat_chains: dict[str, list[list[str]]], warnings: list[str]) -> None:
    value = 1 << masquerade_bit
    mark = f"0x{value:08x}/0x{value:08x}"  # Go's %#08x
    filter_services: list[list[str]] = []
    nat_services: list[list[str]] = []
    filter_chains[KUBE_SERVICES] = filter_services
    nat_chains[KUBE_SERVICES] = nat_services
    nat_chains[KUBE_POSTROUTING] = [
        ["-m", "comment", "--comment", "kubernetes service traffic requiring SNAT",
         "-m", "mark", "--mark", mark, "-j", "MASQUERADE"]]
    nat_chains[KUBE_MARK_MASQ] = [["-j", "MARK", "--set-xmark", mark]]

    services = sorted((svc for svc in topology.services if svc.cluster_ip is not None),
                      key=lambda svc: (svc.namespace, svc.name))
    for svc in services:
        for port in svc.ports:
            if port.protocol not in KUBE_PROTOCOLS:
                continue
            name, protocol = service_port_name(svc, port), port.protocol.lower()
            match = ["-m", protocol, "-p", protocol, "-d", f"{svc.cluster_ip}/32",
                     "--dport", str(port.port)]
            eps = endpoints(topology, svc, port, named_port, warnings)
            if not eps:
                filter_services.append(["-m", "comment", "--comment", f"{name} has no endpoints",
                                        *match, "-j", "REJECT"])
                continue
            chain = svc_chain(svc, port)
            nat_services.append(["-m", "comment", "--comment", f"{name} cluster IP", *match,
                                 "-j", chain])
            balance: list[list[str]] = []
            nat_chains[chain] = balance
            for i, endpoint in enumerate(eps):
                sep = sep_chain(svc, port, endpoint)
                rule = ["-m", "comment", "--comment", name]
                if i < len(eps) - 1:  # the last endpoint takes what is left
                    rule += ["-m", "statistic", "--mode", "random",
                             "--probability", f"{1.0 / (len(eps) - i):0.5f}"]
                balance.append([*rule, "-j", sep])
                nat_chains[sep] = [
                    ["-m", "comment", "--comment", name, "-s",
                     f"{endpoint.split(':')[0]}/32", "-j", KUBE_MARK_MASQ],
                    ["-m", "comment", "--comment", name, "-m", protocol, "-p", protocol,
                     "-j", "DNAT", "--to-destination", endpoint],
                ]


# ---------------------------------------------------------------------------------------------
# Rendering


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


# ---------------------------------------------------------------------------------------------
# Applying


def apply_host(
    plan: HostPlan,
    run: Callable[[list[str]], object],
    *,
    iptables_restore: Callable[[str], object],
    iptables_save: Callable[[], str] | None = None,
) -> None:
    """Apply `plan`.  `run` runs one argv and raises on a non-zero exit; `iptables_restore`
    feeds its text to ``iptables-restore --noflush``.  With `iptables_save` (returning
    ``iptables-save`` output) KUBE-SVC-/KUBE-SEP- chains the plan no longer has are deleted,
    as kube-proxy does.  Running it twice leaves the same state."""
    for key, value in plan.sysctls.items():
        run(["sysctl", "-w", f"{key}={value}"])
    for argv in plan.ip_commands:
        run(argv)
    iptables_restore(plan.iptables_restore)
    if iptables_save is not None:
        stale = _stale_kube_chains(iptables_save(), set(plan.chains.get("nat", ())))
        if stale:
            iptables_restore("*nat\n" + "".join(f":{c} - [0:0]\n" for c in stale)
                             + "".join(f"-X {c}\n" for c in stale) + "COMMIT\n")
    for table, chain in plan.ensure_chains:
        if not _succeeds(run, ["iptables", "-t", table, "-S", chain]):
            run(["iptables", "-t", table, "-N", chain])
    by_chain: dict[tuple[str, str], list[Jump]] = defaultdict(list)
    for jump in plan.jumps:
        by_chain[(jump.table, jump.chain)].append(jump)
    for jumps in by_chain.values():
        for jump in reversed(jumps):  # each inserted first: they end up in plan order
            if not _succeeds(run, jump.argv("-C")):
                run(jump.argv("-I", "1"))


def _succeeds(run: Callable[[list[str]], object], argv: list[str]) -> bool:
    try:
        run(argv)
    except Exception:  # a probe: whatever the runner raises for a non-zero exit
        return False
    return True


def _stale_kube_chains(saved: str, wanted: set[str]) -> list[str]:
    table, stale = "", []
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "nat" and line.startswith((":KUBE-SVC-", ":KUBE-SEP-")):
            name = line[1:].split()[0]
            if name not in wanted:
                stale.append(name)
    return stale


class Runners(NamedTuple):
    run: Callable[[list[str]], object]
    iptables_restore: Callable[[str], object]
    iptables_save: Callable[[], str]


def subprocess_runners(prefix: Sequence[str] = ()) -> Runners:
    """Runners executing the commands here, each preceded by `prefix` (for instance
    ``lab.netns.in_netns(name)``); `run` raises CalledProcessError on failure::

        r = subprocess_runners()
        apply_host(plan, r.run, iptables_restore=r.iptables_restore,
                   iptables_save=r.iptables_save)
    """

    def run(argv: list[str]) -> object:
        return subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True)

    def restore(text: str) -> object:
        return subprocess.run([*prefix, "iptables-restore", "--noflush"], input=text,
                              check=True, capture_output=True, text=True)

    def save() -> str:
        return subprocess.run([*prefix, "iptables-save"], check=True, capture_output=True,
                              text=True).stdout

    return Runners(run, restore, save)
