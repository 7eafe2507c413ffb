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

`plan_host` (`plan`, with `kubeproxy` for the services) computes all of it from a `Topology`
without any I/O; `apply_host` (`apply`) applies a plan through injected runners (the emulated
cluster prefixes ``nsenter --net=/run/netns/<ns>``; on a real node they run the commands as
they are).  Applying is idempotent: ``ip addr/route replace``,
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

from controller.hostside.apply import Runners, apply_host, subprocess_runners
from controller.hostside.kubeproxy import (
    KUBE_MARK_MASQ,
    KUBE_POSTROUTING,
    KUBE_PROTOCOLS,
    KUBE_SERVICES,
    NamedPortResolver,
    endpoints,
    port_proto_hash,
    sep_chain,
    service_port_name,
    svc_chain,
)
from controller.hostside.plan import (
    ADMIN_OUTPUT_RULES,
    FIREWALL_ALLOW,
    FIREWALL_FORWARD,
    MASQUERADE,
    MASQUERADE_2,
    MAX_CHAIN_NAME,
    HostPlan,
    Jump,
    UnknownHost,
    plan_host,
)

__all__ = [
    "ADMIN_OUTPUT_RULES", "FIREWALL_ALLOW", "FIREWALL_FORWARD", "KUBE_MARK_MASQ",
    "KUBE_POSTROUTING", "KUBE_PROTOCOLS", "KUBE_SERVICES", "MASQUERADE", "MASQUERADE_2",
    "MAX_CHAIN_NAME", "HostPlan", "Jump", "NamedPortResolver", "Runners", "UnknownHost",
    "apply_host", "endpoints", "plan_host", "port_proto_hash", "sep_chain",
    "service_port_name", "subprocess_runners", "svc_chain",
]
