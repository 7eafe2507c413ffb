"""Following one packet across the cluster: br0 by br0 (OVS traces), and past tun0 through
the node's host side, modelled after what `controller.hostside` programs.

Each br0 pass is a real `ofproto/trace` (a `Tracer`); what happens between passes is decided
here from the trace's datapath actions and the topology:

* out vxlan0 with a tunnel destination that is a node: the next pass is that node's br0, with
  `in_port=1,tun_id=<as set>,tun_src=<this node's hostIP>` and the packet as it left;
* out tun0: the host side (iptables as `controller.hostside` plans it): kube-proxy's DNAT of a
  ClusterIP to its endpoints (the first is followed, every one as a branch), REJECT of a
  Service without endpoints, openshift-sdn's MASQUERADE (pod-to-service outside conntrack
  mode, pod-to-outside), egress-IP SNAT by the packet mark, delivery to the node's own
  addresses; a DNATed packet re-enters br0 from tun0;
* out a pod's port: delivered.

Under ovs-networkpolicy the input carries no ct_state: table 0's `ct_state=-trk` flow sends
it through conntrack, and OVS resumes every recirculation with `trk|new` (its default for
ofproto/trace), i.e. the packet is traced as the first of a new connection.

Not modelled: iptables' filter rules an administrator adds, hairpin/NodePort/externalIPs,
the egress-IP REJECT of inbound connections, ARP, multicast replication beyond the first copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from controller.compiler import Settings, compile_node
from controller.compiler.egress_ip import egress_nodes, mark_for_vnid
from controller.explain.endpoint import DEFAULT_PORT, Endpoint, EndpointError, parse_endpoint
from controller.explain.objects import ObjectNames
from controller.explain.result import Delivered, Explanation, Hop, Step
from controller.explain.tracer import Tracer
from controller.hostside.kubeproxy import endpoints, sep_chain, svc_chain
from controller.ovs.trace import TraceResult, TraceStep, parse_flow_fields
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.tables import Table, meaning
from topology.model import (
    TUN0_OFPORT,
    VXLAN_OFPORT,
    HostSubnet,
    NetworkPolicy,
    Plugin,
    Pod,
    Service,
    ServicePort,
    Topology,
    mac_for_ip,
)

MAX_PASSES = 8  # br0 and host-side passes together; a loop would be a compiler bug
_REG_LOAD = re.compile(r"(?:load|set_field):(0x[0-9a-f]+|\d+)->(?:NXM_NX_REG(\d+)\[\]|reg(\d+))")
_REG_MOVE = re.compile(r"move:\S+->NXM_NX_REG(\d+)\[\]")
_REG_NOW = re.compile(r"-> NXM_NX_REG\d+\[\] is now (\S+)")


@dataclass(frozen=True)
class Packet:
    """The packet as it enters a bridge: what the ofproto/trace input says."""

    node: str
    in_port: int
    proto: str  # tcp, udp, icmp
    nw_src: IPv4Address
    nw_dst: IPv4Address
    dst_port: int | None
    dl_src: str
    dl_dst: str
    tun_id: int | None = None
    tun_src: IPv4Address | None = None
    ct_state: str | None = None  # None: none given (conntrack flows recirculate as trk|new)

    def flow_spec(self) -> str:
        parts = [f"in_port={self.in_port}"]
        if self.tun_id is not None:
            parts.append(f"tun_id=0x{self.tun_id:x}")
        if self.tun_src is not None:
            parts.append(f"tun_src={self.tun_src}")
        parts.append(self.proto)
        parts += [f"{name}={value}" for name, value in (("dl_src", self.dl_src),
                                                        ("dl_dst", self.dl_dst)) if value]
        parts += [f"nw_src={self.nw_src}", f"nw_dst={self.nw_dst}"]
        if self.proto == "icmp":
            parts.append("icmp_type=8")
        elif self.dst_port is not None:
            parts.append(f"{self.proto}_dst={self.dst_port}")
        if self.ct_state:
            parts.append(f"ct_state={self.ct_state}")
        return ",".join(parts)

    def leaving(self, result: TraceResult) -> Packet:
        """The packet as `result` (a trace of it) sends it out: addresses as rewritten."""
        final = result.final_flow
        return replace(self, nw_src=IPv4Address(final.get("nw_src", str(self.nw_src))),
                       nw_dst=IPv4Address(final.get("nw_dst", str(self.nw_dst))),
                       dl_dst=final.get("dl_dst", self.dl_dst),
                       dl_src=final.get("dl_src", self.dl_src))


def across_tunnel(topology: Topology, packet: Packet,
                  result: TraceResult) -> tuple[HostSubnet | None, Packet]:
    """Where a packet `result` sends out vxlan0 arrives: the node whose hostIP is the tunnel
    destination (None: no node has it), and the packet as that node's br0 receives it
    (in_port vxlan0, the tun_id the sender set, tun_src = the sender's hostIP)."""
    dst = result.tunnel.get("dst", "")
    remote = next((hs for hs in topology.host_subnets if str(hs.host_ip) == dst), None)
    sender = topology.host_subnet(packet.node)
    assert sender is not None, packet.node
    arriving = replace(packet.leaving(result), node=remote.host if remote else packet.node,
                       in_port=VXLAN_OFPORT, tun_id=int(result.tunnel.get("tun_id", "0"), 0),
                       tun_src=sender.host_ip)
    return remote, arriving


@dataclass
class _Ending:
    verdict: str
    sentence: str
    reason: str = ""
    drop_node: str | None = None
    drop_table: int | None = None
    delivered_to: Delivered | None = None


class _Walk:
    def __init__(self, topology: Topology, tracer: Tracer, settings: Settings) -> None:
        self.topology = topology
        self.tracer = tracer
        self.settings = settings
        self.names = ObjectNames(topology)
        self.plugin = topology.cluster_network.plugin
        self.cidrs = [e.cidr for e in topology.cluster_network.networks]
        self.hops: list[Hop] = []
        self.notes: list[str] = []
        self.backend: str | None = None  # the endpoint the DNAT picks (None: the first)
        self.dnat_endpoints: list[str] = []  # set once a Service's DNAT was reached

    # -- helpers -----------------------------------------------------------------------------
    def in_cluster(self, ip: IPv4Address) -> bool:
        return any(ip in cidr for cidr in self.cidrs)

    def node_by_ip(self, ip: IPv4Address | str) -> HostSubnet | None:
        return next((hs for hs in self.topology.host_subnets if str(hs.host_ip) == str(ip)),
                    None)

    def hs(self, host: str) -> HostSubnet:
        hs = self.topology.host_subnet(host)
        assert hs is not None, host
        return hs

    def pod_at(self, host: str, ofport: int) -> Pod | None:
        return next((p for p in self.topology.pods if p.node == host and p.ofport == ofport),
                    None)

    # -- br0 ---------------------------------------------------------------------------------
    def br0(self, packet: Packet, spec: str | None = None) -> Packet | _Ending:
        """One pass through `packet.node`'s br0 (traced as `spec` when given)."""
        spec = spec or packet.flow_spec()
        refused = self.refusal(packet.node)
        if refused is not None:
            self.hops.append(Hop(packet.node, "br0", spec, [], "not traced: br0 holds no "
                                 "flows", bridge="", raw=""))
            return _Ending("dropped", f"dropped on {packet.node}: {refused}", refused,
                           packet.node, Table.CLASSIFIER)
        result = self.tracer.trace(packet.node, spec)
        hop = Hop(packet.node, "br0", spec,
                  [self.step(packet.node, s, result) for s in result.steps], "",
                  bridge=result.bridge or "", raw=result.raw)
        if len(result.passes) > 1:
            hop.notes.append(f"{len(result.passes) - 1} conntrack recirculation(s), each "
                             "resumed as ct_state=trk|new (a new connection)")
        self.hops.append(hop)
        if result.dropped:
            hop.outcome = "dropped"
            return self.drop(packet, result)
        ports = [p for p in result.output_ports() if p is not None]
        if not ports and VXLAN_OFPORT in result.of_output_ports():
            hop.outcome = "output to vxlan0 (port 1), not sent by the datapath"
            reason = self.tunnel_failed(result)
            return _Ending("dropped", f"dropped on {packet.node}: {reason}", reason,
                           packet.node, result.tables[-1] if result.tables else None)
        if not ports:
            hop.outcome = f"leaves by datapath actions {result.datapath_actions}"
            return _Ending("dropped", f"on {packet.node} the packet leaves br0 by no known "
                           f"port ({result.datapath_actions})", "no known output port",
                           packet.node, result.tables[-1] if result.tables else None)
        if len(set(ports)) > 1:
            self.notes.append(f"{packet.node}: br0 sends copies to ports {ports}; "
                              f"following port {ports[0]}")
        port = ports[0]
        if port == VXLAN_OFPORT:
            return self.tunnel(hop, packet, result)
        moved = packet.leaving(result)
        if port == TUN0_OFPORT:
            hop.outcome = "output to tun0 (port 2): into the node's host network stack"
            mark = result.field("pkt_mark")
            return self.host_side(moved, int(mark, 0) if mark else 0)
        pod = self.pod_at(packet.node, port)
        hop.outcome = f"output to port {port} ({self.names.port(packet.node, port)})"
        if pod is None:
            return _Ending("dropped", f"br0 on {packet.node} outputs to port {port}, where "
                           "no pod is", f"port {port} has no pod", packet.node,
                           result.tables[-1] if result.tables else None)
        via = "" if packet.in_port != VXLAN_OFPORT else ", through VXLAN"
        return _Ending("delivered", f"delivered to Pod {pod.key} ({pod.ip}) on "
                       f"{packet.node}{via}", delivered_to=Delivered(packet.node, pod.key,
                                                                      str(pod.ip)))

    def refusal(self, host: str) -> str | None:
        """Why `host`'s br0 is empty (3.11's node refuses to start there), or None."""
        hs = self.hs(host)
        conflict = self.topology.cluster_network.node_ip_conflict(hs.host_ip)
        if conflict is None:
            return None
        return (f"its br0 holds no flows: HostSubnet {hs.name}'s hostIP {hs.host_ip} "
                f"{conflict}, so 3.11's node refuses to start there (ValidateNodeIP)")

    def step(self, host: str, s: TraceStep, result: TraceResult) -> Step:
        registers = []
        final = result.passes[s.pass_index].final_flow if result.passes else {}
        for action in s.actions:
            m = _REG_LOAD.search(action)
            if m:
                registers.append(self.names.register(host, f"reg{m.group(2) or m.group(3)}",
                                                     int(m.group(1), 0)))
                continue
            m = _REG_MOVE.search(action)
            if m:  # OVS notes the value moved in; else the pass's final flow has it
                reg = f"reg{m.group(1)}"
                noted = next((n.group(1) for n in map(_REG_NOW.fullmatch, s.notes)
                              if n and n.group(0).startswith(f"-> NXM_NX_REG{m.group(1)}[]")),
                             None)
                value = noted or final.get(reg, "0")
                registers.append(self.names.register(host, reg, int(value, 0)))
        return Step(s.table, meaning(s.table),
                    s.rule if s.matched else "No match (the table's miss: drop)",
                    list(s.actions), s.cookie if s.matched else None,
                    self.names.describe_cookie(s.cookie) if s.matched else "",
                    registers, s.pass_index)

    def tunnel(self, hop: Hop, packet: Packet, result: TraceResult) -> Packet | _Ending:
        remote, arriving = across_tunnel(self.topology, packet, result)
        dst = result.tunnel.get("dst", "")
        hop.outcome = (f"output to vxlan0 (port 1): VXLAN to {dst}"
                       f"{' (' + remote.host + ')' if remote else ''}, "
                       f"tun_id=0x{arriving.tun_id or 0:x}")
        if remote is None:
            return _Ending("left the cluster", f"tunnelled from {packet.node} to {dst}, "
                           "which is not a node", f"VXLAN to {dst}, not a node")
        return arriving

    # -- drops -------------------------------------------------------------------------------
    def drop(self, packet: Packet, result: TraceResult) -> _Ending:
        steps = result.steps
        last = steps[-1] if steps else None
        table = last.table if last else None
        reason = self.drop_reason(packet, result, last) if last else "no table matched"
        where = f"table {table} ({meaning(table).split(' ', 1)[1]})" if table is not None \
            else "br0"
        return _Ending("dropped", f"dropped on {packet.node} at {where}: {reason}", reason,
                       packet.node, table)

    def drop_reason(self, packet: Packet, result: TraceResult, last: TraceStep) -> str:
        table = last.table
        owner = self.names.owner(last.cookie) if last.matched else None
        if any("skipping output to input port" in n for n in last.notes):
            return (f"br0 would send it back out port {packet.in_port}, where it came from, "
                    "which OpenFlow never does (a pod reaches itself over its own loopback, "
                    "not through br0)")
        if VXLAN_OFPORT in result.of_output_ports():
            return self.tunnel_failed(result)
        if table == Table.VXLAN_INGRESS:
            return self.not_a_node(packet)
        if table == Table.POD_INGRESS:
            return (f"the packet from port {packet.in_port} (nw_src {packet.nw_src}, dl_src "
                    f"{packet.dl_src}) is not that port's pod's address: anti-spoofing")
        if table == Table.SERVICE_RETURN:
            return f"{packet.nw_src} is not a pod on {packet.node} (table 25 knows local pods)"
        if table == Table.IP_LOCAL:
            return f"no pod on {packet.node} has address {packet.nw_dst}"
        if table == Table.IP_REMOTE:
            return self.no_remote_subnet(packet)
        if table == Table.SERVICE:
            return self.service_drop(packet)
        if table == Table.INGRESS_POLICY:
            return self.isolation(packet, result)
        if table == Table.EGRESS_IP and owner is not None:
            return (f"{self.names.describe_cookie(last.cookie)} have no usable egress node "
                    "(an egress IP not held by exactly one HostSubnet, or claimed twice): "
                    "the namespace's outside traffic is dropped")
        if table == Table.EGRESS_FIREWALL:
            return self.firewall(packet, result, last)
        if table == Table.CLASSIFIER:
            return f"table 0 takes nothing like this from port {packet.in_port}"
        what = last.rule if last.matched else "no flow matched"
        return f"{what} ({self.names.describe_cookie(last.cookie)})" if last.matched else what

    def tunnel_failed(self, result: TraceResult) -> str:
        """br0 output to vxlan0 but the datapath sent nothing: the host could not route or
        resolve the tunnel's destination (OVS's native tunnelling says which)."""
        said = [re.sub(r"^[->\s]+", "", n) for s in result.all_steps for n in s.notes
                if "tunnel" in n or "neighbor" in n or "route" in n]
        dst = next((a.split("->", 1)[0].split(":", 1)[1] for s in result.steps
                    for a in s.actions if a.endswith("->tun_dst")), "the tunnel destination")
        why = f" (OVS: {'; '.join(dict.fromkeys(said))})" if said else ""
        return (f"br0 outputs it to vxlan0 toward {dst}, but the node's host network could not "
                f"send the VXLAN packet there{why}")

    def no_remote_subnet(self, packet: Packet) -> str:
        holder = next((hs for hs in self.topology.host_subnets
                       if packet.nw_dst in hs.subnet), None)
        if holder is None:
            return f"no HostSubnet's subnet contains {packet.nw_dst}"
        conflict = self.topology.cluster_network.node_ip_conflict(holder.host_ip)
        if conflict is not None:
            return (f"{packet.nw_dst} is in HostSubnet {holder.name} ({holder.subnet}), whose "
                    f"hostIP {holder.host_ip} {conflict}: 3.11 ignores that HostSubnet on "
                    "every other node (no table-90 flow) and does not start on that node")
        return f"no table-90 flow for HostSubnet {holder.name} ({holder.subnet})"

    def not_a_node(self, packet: Packet) -> str:
        here = self.hs(packet.node)
        if packet.tun_src == here.host_ip:
            return (f"table 10: {packet.tun_src} is {packet.node}'s own address; a node "
                    "accepts VXLAN only from the other nodes")
        other = self.node_by_ip(packet.tun_src) if packet.tun_src else None
        if other is not None:
            return (f"table 10: {packet.tun_src} (HostSubnet {other.name}) is not a node "
                    "3.11 accepts: its hostIP lies in the cluster or service network")
        return f"table 10: {packet.tun_src} is not a node"

    def vnids(self, result: TraceResult) -> tuple[int | None, int | None]:
        def reg(name: str) -> int | None:
            value = result.field(name)
            return None if value is None else int(value, 0)
        return reg("reg0"), reg("reg1")

    def isolation(self, packet: Packet, result: TraceResult) -> str:
        src_vnid, dst_vnid = self.vnids(result)
        src_names = self.names.namespace_list(src_vnid or 0)
        dst_names = self.names.namespace_list(dst_vnid or 0)
        if self.plugin is Plugin.MULTITENANT:
            plural = "," in dst_names
            return (f"namespace{'s' if plural else ''} {dst_names} (VNID {dst_vnid}) "
                    f"{'are' if plural else 'is'} isolated from {src_names} (VNID {src_vnid}) "
                    "under ovs-multitenant")
        if self.plugin is Plugin.NETWORKPOLICY:
            dst_pod = next((p for p in self.topology.pods if p.ip == packet.nw_dst), None)
            selecting = self.selecting(dst_pod) if dst_pod else []
            names = ", ".join(p.key for p in selecting) or "none"
            reason = (f"no NetworkPolicy in {dst_names} admits traffic from {src_names}"
                      f" ({packet.nw_src}) to {packet.proto}/{packet.dst_port or '-'}; "
                      f"policies that select the destination: {names}")
            unsupported = self.unsupported_policies(packet.node, dst_vnid or 0)
            if unsupported:
                reason += "; " + "; ".join(unsupported)
            return reason
        return "table 80 drops it (ovs-subnet admits everything: unexpected)"

    def unsupported_policies(self, host: str, vnid: int) -> list[str]:
        """The compiler's warnings about policies of `vnid`'s namespaces 3.11 cannot express
        (each makes its namespace deny-all)."""
        spaces = self.names.by_vnid.get(vnid, [])
        return [w.removeprefix("NetworkPolicy/") for w in
                compile_node(self.topology, host, self.settings).warnings
                if any(w.startswith(f"NetworkPolicy/{ns}/") for ns in spaces)]

    def selecting(self, pod: Pod) -> list[NetworkPolicy]:
        return [p for p in self.topology.network_policies if p.namespace == pod.namespace
                and p.pod_selector.matches(pod.label_map)]

    def service_drop(self, packet: Packet) -> str:
        svc = self.service_at(packet.nw_dst)
        if svc is None:
            return f"no Service has ClusterIP {packet.nw_dst}"
        ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) or "none"
        return (f"Service {svc.namespace}/{svc.name} has no port "
                f"{packet.dst_port}/{packet.proto} (ports: {ports})")

    def firewall(self, packet: Packet, result: TraceResult, last: TraceStep) -> str:
        owner = self.names.owner(last.cookie)
        if owner is None or owner.kind is not OwnerKind.EGRESS_FIREWALL:
            return "table 101 drops it"
        vnid = int(owner.name)
        spaces = self.names.by_vnid.get(vnid, [])
        for enp in self.topology.egress_network_policies:
            if enp.namespace not in spaces:
                continue
            for rule in enp.rules:
                if rule.cidr is not None and packet.nw_dst in rule.cidr:
                    target = str(rule.cidr)
                elif rule.dns_name and self.settings.resolver is not None and \
                        packet.nw_dst in self.settings.resolver(rule.dns_name):
                    target = f"dnsName {rule.dns_name}"
                else:
                    continue
                verb = "denies" if rule.action == "Deny" else "allows"
                return (f"EgressNetworkPolicy {enp.namespace}/{enp.name} {verb} "
                        f"{packet.nw_dst} (rule {rule.action} to {target})")
        return f"{self.names.describe_cookie(last.cookie)} denies {packet.nw_dst}"

    # -- the host side -----------------------------------------------------------------------
    def service_at(self, ip: IPv4Address) -> Service | None:
        return next((s for s in self.topology.services if s.cluster_ip == ip), None)

    def host_side(self, packet: Packet, mark: int) -> Packet | _Ending:
        hs = self.hs(packet.node)
        hop = Hop(packet.node, "host", f"{packet.proto} {packet.nw_src} -> {packet.nw_dst}"
                  f"{':' + str(packet.dst_port) if packet.dst_port else ''}"
                  f"{f', pkt_mark 0x{mark:x}' if mark else ''}", [], "")
        self.hops.append(hop)
        svc = self.service_at(packet.nw_dst)
        if svc is not None:
            return self.dnat(hop, packet, svc)
        if packet.nw_dst in (hs.host_ip, hs.gateway) or packet.nw_dst in hs.egress_ips:
            hop.steps.append(Step(None, "filter INPUT", f"-d {packet.nw_dst}: local address",
                                  object=f"HostSubnet {hs.name}"))
            hop.outcome = f"delivered to {packet.node}'s own network stack"
            return _Ending("delivered", f"delivered to the host network of {packet.node} "
                           f"({packet.nw_dst})", delivered_to=Delivered(packet.node, None,
                                                                        str(packet.nw_dst)))
        if self.in_cluster(packet.nw_dst):
            hop.outcome = "routed back to tun0: no pod owns it"
            return _Ending("dropped", f"on {packet.node}, {packet.nw_dst} is in the cluster "
                           "network but no br0 flow delivers it", "no route to a pod",
                           packet.node, None)
        snat = self.masquerade(hop, packet, mark)
        other = self.node_by_ip(packet.nw_dst)
        if other is not None:
            hop.outcome = f"out of {packet.node}'s uplink to {other.host}"
            return _Ending("delivered", f"delivered to the host network of {other.host} "
                           f"({packet.nw_dst}) over the node network from {packet.node}"
                           f"{', ' + snat if snat else ''}",
                           delivered_to=Delivered(other.host, None, str(packet.nw_dst)))
        hop.outcome = f"out of {packet.node}'s uplink"
        return _Ending("left the cluster", f"left the cluster from {packet.node} to "
                       f"{packet.nw_dst}{', ' + snat if snat else ''}", snat)

    def masquerade(self, hop: Hop, packet: Packet, mark: int) -> str:
        """POSTROUTING's OPENSHIFT-MASQUERADE for a packet leaving by the uplink."""
        hs = self.hs(packet.node)
        if not self.in_cluster(packet.nw_src):
            return ""
        for nn, node in egress_nodes(self.topology).items():
            if node is None or node.host != packet.node or not mark:
                continue
            if mark_for_vnid(nn.netid, self.settings.masquerade_bit) != mark:
                continue
            ip = next((e for e in nn.egress_ips if e in hs.egress_ips), None)
            if ip is None:
                continue
            hop.steps.append(Step(None, "nat OPENSHIFT-MASQUERADE",
                                  f"-s <cluster network> -m mark --mark 0x{mark:08x} -j SNAT "
                                  f"--to-source {ip}",
                                  object=self.names.describe_cookie(
                                      _egress_owner_cookie(nn.name))))
            return (f"SNAT to egress IP {ip} by mark 0x{mark:x} "
                    f"({self.names.netnamespaces(nn.netid)})")
        chain = "OPENSHIFT-MASQUERADE-2" if self.plugin.uses_conntrack else \
            "OPENSHIFT-MASQUERADE"
        hop.steps.append(Step(None, f"nat {chain}", "-s <cluster network> -j MASQUERADE",
                              object=f"HostSubnet {hs.name}"))
        return f"MASQUERADEd to the node IP {hs.host_ip}"

    def dnat(self, hop: Hop, packet: Packet, svc: Service) -> Packet | _Ending:
        name = f"{svc.namespace}/{svc.name}"
        port = next((p for p in svc.ports if p.protocol.lower() == packet.proto
                     and p.port == packet.dst_port), None)
        if port is None:
            hop.outcome = "no kube-proxy rule matches"
            return _Ending("dropped", f"on {packet.node}: Service {name} has no port "
                           f"{packet.dst_port}/{packet.proto}; nothing DNATs it",
                           f"Service {name} has no port {packet.dst_port}/{packet.proto}",
                           packet.node, None)
        eps = endpoints(self.topology, svc, port)
        if not eps:
            hop.steps.append(Step(None, "filter KUBE-SERVICES",
                                  f"-d {svc.cluster_ip}/32 --dport {port.port} -j REJECT",
                                  object=f"Service {name} ({svc.cluster_ip})"))
            hop.outcome = "REJECTed"
            return _Ending("dropped", f"on {packet.node}: Service {name} has no endpoints "
                           "(kube-proxy REJECTs)", f"Service {name} has no endpoints",
                           packet.node, None)
        chain = svc_chain(svc, port)
        self.dnat_endpoints = eps
        first = self.backend if self.backend in eps else eps[0]
        if len(eps) > 1 and self.backend is None:
            self.notes.append(f"Service {name} has {len(eps)} endpoints ({', '.join(eps)}); "
                              f"kube-proxy picks one at random; following {first}, the others "
                              "as branches")
        hop.steps.append(Step(None, "nat KUBE-SERVICES",
                              f"-d {svc.cluster_ip}/32 -p {packet.proto} --dport {port.port} "
                              f"-j {chain}", object=f"Service {name} ({svc.cluster_ip})"))
        return self._after_dnat(hop, packet, svc, port, first)

    def _after_dnat(self, hop: Hop, packet: Packet, svc: Service, port: ServicePort,
                    endpoint: str) -> Packet | _Ending:
        ip_text, _, port_text = endpoint.rpartition(":")
        backend = IPv4Address(ip_text)
        hop.steps.append(Step(None, f"nat {sep_chain(svc, port, endpoint)}",
                              f"-j DNAT --to-destination {endpoint}",
                              object=self.names.describe_cookie(_pod_cookie(self.topology,
                                                                            backend))))
        hs = self.hs(packet.node)
        src = packet.nw_src
        if not self.plugin.uses_conntrack and self.in_cluster(src):
            hop.steps.append(Step(None, "nat OPENSHIFT-MASQUERADE",
                                  "-s <cluster network> -j MASQUERADE (pod-to-service)",
                                  object=f"HostSubnet {hs.name}"))
            src = hs.gateway
        elif backend == src:
            hop.steps.append(Step(None, "nat KUBE-POSTROUTING",
                                  "hairpin: -m mark (KUBE-MARK-MASQ) -j MASQUERADE"))
            src = hs.gateway
        hop.outcome = (f"DNAT to {endpoint}; routed back into br0 through tun0 from {src}")
        return replace(packet, in_port=TUN0_OFPORT, nw_src=src, nw_dst=backend,
                       dst_port=int(port_text), dl_src=hs.tun0_mac,
                       dl_dst=mac_for_ip(backend), tun_id=None, tun_src=None)


def _pod_cookie(topology: Topology, ip: IPv4Address) -> int:
    pod = next((p for p in topology.pods if p.ip == ip), None)
    return Owner(OwnerKind.POD, pod.key).cookie if pod else 0


def _egress_owner_cookie(name: str) -> int:
    return Owner(OwnerKind.EGRESS_IP, name).cookie


# ---------------------------------------------------------------------------------- start

def _dst_port(dst: Endpoint, proto: str) -> int | None:
    if proto == "icmp":
        return None
    if dst.port is not None:
        return dst.port
    if dst.pod is not None and dst.pod.container_ports:
        return dst.pod.container_ports[0].port
    return DEFAULT_PORT


def _first_packet(walk: _Walk, src: Endpoint, dst: Endpoint, proto: str) -> Packet:
    port = _dst_port(dst, proto)
    if src.pod is not None:
        pod = src.pod
        if pod.ofport is None:
            raise EndpointError(f"{src.text!r}: pod {pod.key} has no ofport (osdn.dev/ofport) "
                                "so it has no port on br0 to send from")
        hs = walk.hs(pod.node)
        local = dst.ip in hs.subnet
        dl_dst = mac_for_ip(dst.ip) if local else hs.tun0_mac
        return Packet(pod.node, pod.ofport, proto, pod.ip, dst.ip, port, pod.mac, dl_dst)
    assert src.node is not None
    hs = src.node
    # the host reaches the cluster network through tun0, with tun0's address as source
    return Packet(hs.host, TUN0_OFPORT, proto, hs.gateway, dst.ip, port, hs.tun0_mac,
                  mac_for_ip(dst.ip))


def _source(topology: Topology, src: Endpoint) -> Endpoint:
    if src.pod is not None:
        return src
    if src.node is not None:
        if topology.cluster_network.node_ip_conflict(src.node.host_ip) is not None:
            raise EndpointError(f"{src.text!r}: node {src.node.host} would not start (its "
                                "hostIP conflicts with the cluster or service network)")
        return src
    raise EndpointError(f"{src.text!r}: SRC must be a pod or a node ({src.label} is neither); "
                        "traffic from outside reaches pods only through a node")


def _endpoints(topology: Topology, src: str | Endpoint,
               dst: str | Endpoint) -> tuple[Endpoint, Endpoint]:
    """Both ends, or one EndpointError naming every problem with either."""
    errors: list[str] = []
    ends: list[Endpoint] = []
    for which, end in (("SRC", src), ("DST", dst)):
        try:
            parsed = end if isinstance(end, Endpoint) else parse_endpoint(topology, end)
            ends.append(_source(topology, parsed) if which == "SRC" else parsed)
        except EndpointError as error:
            errors.append(f"{which} {error}")
    if errors:
        raise EndpointError("; ".join(errors))
    return ends[0], ends[1]


def explain(topology: Topology, src: str | Endpoint, dst: str | Endpoint, tracer: Tracer,
            settings: Settings | None = None) -> Explanation:
    """Follow a packet from `src` to `dst` across the cluster (see the module docstring)."""
    settings = settings if settings is not None else Settings()
    src_ep, dst_ep = _endpoints(topology, src, dst)
    proto = dst_ep.protocol or "tcp"
    walk = _Walk(topology, tracer, settings)
    if walk.plugin.uses_conntrack:
        walk.notes.append("ovs-networkpolicy: traced as the first packet of a new connection "
                          "(ct_state=trk|new after each conntrack recirculation)")
    ending = _run(walk, src_ep, dst_ep, proto)
    explanation = Explanation(
        src_ep.to_json(), dst_ep.to_json(), walk.plugin.value, ending.verdict, ending.sentence,
        walk.hops, ending.reason, ending.drop_node, ending.drop_table, ending.delivered_to,
        walk.notes)
    explanation.branches = [_branch(topology, src_ep, dst_ep, proto, tracer, settings, e)
                            for e in walk.dnat_endpoints[1:]]
    return explanation


def _run(walk: _Walk, src: Endpoint, dst: Endpoint, proto: str) -> _Ending:
    packet = _first_packet(walk, src, dst, proto)
    if src.pod is None and not walk.in_cluster(dst.ip) and dst.service is None:
        # the host's own traffic to a non-pod address never enters br0
        hop = Hop(packet.node, "host", f"{proto} {src.ip} -> {dst.ip}", [],
                  "out of the node's uplink")
        walk.hops.append(hop)
        other = walk.node_by_ip(dst.ip)
        if other is not None:
            return _Ending("delivered", f"delivered to the host network of {other.host} "
                           f"({dst.ip}) over the node network",
                           delivered_to=Delivered(other.host, None, str(dst.ip)))
        return _Ending("left the cluster", f"left the cluster from {packet.node} to {dst.ip} "
                       "(host network, no br0)")
    step: Packet | _Ending = packet
    if src.pod is None and dst.service is not None:
        # the host's OUTPUT DNAT; the source is tun0's address (the service network and
        # the cluster network are routed through tun0)
        step = walk.host_side(packet, 0)
    for _ in range(MAX_PASSES):
        if isinstance(step, _Ending):
            return step
        step = walk.br0(step)  # a live tracer's ElsewhereError goes to the caller
    if isinstance(step, _Ending):
        return step
    return _Ending("dropped", f"gave up after {MAX_PASSES} passes (a loop?)", "loop",
                   step.node, None)


def _packet_of(host: str, spec: str) -> Packet:
    """The packet an ofproto/trace flow describes, to carry it on to the next node."""
    fields = parse_flow_fields(spec)

    def ip(name: str) -> IPv4Address:
        return IPv4Address(fields.get(name) or "0.0.0.0")
    proto = next((p for p in ("tcp", "udp", "icmp") if p in fields), "ip")
    port = fields.get(f"{proto}_dst")
    tun_id = fields.get("tun_id")
    return Packet(host, int(fields.get("in_port", "0"), 0), proto, ip("nw_src"), ip("nw_dst"),
                  int(port) if port else None, fields.get("dl_src", "00:00:00:00:00:00"),
                  fields.get("dl_dst", "00:00:00:00:00:00"),
                  int(tun_id, 0) if tun_id else None,
                  IPv4Address(fields["tun_src"]) if fields.get("tun_src") else None)


def explain_flow(topology: Topology, host: str, flow_spec: str, tracer: Tracer,
                 settings: Settings | None = None) -> Explanation:
    """Follow a packet given as an ofproto/trace flow on `host`'s br0 (e.g. one arriving by
    VXLAN from an address that is not a node) across the cluster, like `explain`."""
    if topology.host_subnet(host) is None:
        known = ", ".join(sorted(hs.host for hs in topology.host_subnets))
        raise EndpointError(f"no HostSubnet with host {host!r} (known: {known})")
    walk = _Walk(topology, tracer, settings if settings is not None else Settings())
    packet = _packet_of(host, flow_spec)
    step: Packet | _Ending = walk.br0(packet, flow_spec)
    for _ in range(MAX_PASSES - 1):
        if isinstance(step, _Ending):
            break
        step = walk.br0(step)
    ending = step if isinstance(step, _Ending) else _Ending(
        "dropped", f"gave up after {MAX_PASSES} passes (a loop?)", "loop", step.node, None)
    src = {"kind": "flow", "text": flow_spec, "ip": str(packet.nw_src), "node": host,
           "label": f"flow {flow_spec} on {host}", "pod": None, "service": None,
           "port": None, "protocol": None}
    dst = {"kind": "ip", "text": str(packet.nw_dst), "ip": str(packet.nw_dst),
           "label": f"address {packet.nw_dst}", "pod": None, "service": None, "node": None,
           "port": packet.dst_port, "protocol": packet.proto}
    return Explanation(src, dst, walk.plugin.value, ending.verdict, ending.sentence,
                       walk.hops, ending.reason, ending.drop_node, ending.drop_table,
                       ending.delivered_to, walk.notes)


def _branch(topology: Topology, src: Endpoint, dst: Endpoint, proto: str, tracer: Tracer,
            settings: Settings, endpoint: str) -> Explanation:
    walk = _Walk(topology, tracer, settings)
    walk.backend = endpoint
    walk.notes.append(f"the branch where kube-proxy picks {endpoint}")
    ending = _run(walk, src, dst, proto)
    return Explanation(src.to_json(), dst.to_json(), walk.plugin.value, ending.verdict,
                       ending.sentence, walk.hops, ending.reason, ending.drop_node,
                       ending.drop_table, ending.delivered_to, walk.notes)


__all__ = ["MAX_PASSES", "Packet", "across_tunnel", "explain", "explain_flow"]
