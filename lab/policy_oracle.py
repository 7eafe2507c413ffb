"""The project's one oracle for which pod may reach which under openshift-sdn 3.11's plugins:
an independent reading of the plugins' isolation and of Kubernetes NetworkPolicy with 3.11's
restrictions, written from their documented semantics, not from the compiler.  The real-OVS
and real-packet matrices (tests/integration) and the Mininet experiments check against it.

ovs-subnet: every pod reaches every pod.  ovs-multitenant: two pods reach each other when their
namespaces share a VNID or either VNID is 0 (a global namespace).  ovs-networkpolicy (no VNID
isolation between namespaces, only policies): a pod selected by some ingress policy of its
namespace accepts only what one of those policies allows; a pod no policy selects accepts
everything.  3.11 narrows it: ingress only; a peer with
both a pod and a namespace selector, or an ipBlock, allows nothing; a policy with a named or
missing port, or a protocol other than TCP/UDP, makes its whole namespace deny-all.

3.11 keeps policy state per VNID, not per namespace: namespaces sharing a VNID (the same
netid) share their policies.  A policy with an empty pod selector selects every pod of the
VNID (so one namespace's deny-all isolates them all), an unsupported policy makes the whole
VNID deny-all, an empty pod-selector peer admits every pod of the VNID, and a namespace
selector admits the VNIDs of the namespaces it selects.  A non-empty pod selector (of the
policy or of a peer) picks pods of the policy's own namespace.
"""

from __future__ import annotations

from topology.model import NetworkPolicy, Plugin, Pod, PolicyPeer, Topology

# Each plugin's rule for a ping (ICMP) in one line, for reports that print the expectation.
PING_RULES = {
    Plugin.SUBNET: "ovs-subnet: every pod reaches every pod",
    Plugin.MULTITENANT: "ovs-multitenant: same VNID, or VNID 0 (global) on either side",
    Plugin.NETWORKPOLICY: "ovs-networkpolicy: a pod selected by an ingress policy admits only "
                          "what a rule without ports allows",
}


def plugin_allows(topology: Topology, src: Pod, dst: Pod, port: int | None = None) -> bool:
    """May `src` reach `dst` under the cluster's plugin: open a TCP connection on `port`, or
    ping it when `port` is None?"""
    plugin = topology.cluster_network.plugin
    if plugin is Plugin.SUBNET:
        return True
    if plugin is Plugin.MULTITENANT:
        return vnids_allow(topology, src, dst)
    return policy_allows(topology, src, dst, port)


def vnids_allow(topology: Topology, src: Pod, dst: Pod) -> bool:
    """ovs-multitenant: the same VNID, or VNID 0 on either side."""
    a, b = topology.vnid_of(src.namespace), topology.vnid_of(dst.namespace)
    return a == b or 0 in (a, b)


def unsupported(policy: NetworkPolicy) -> bool:
    return any(not isinstance(pp.port, int) or pp.protocol not in ("TCP", "UDP")
               for rule in policy.ingress for pp in rule.ports)


def peer_allows(topology: Topology, policy: NetworkPolicy, peer: PolicyPeer, src: Pod) -> bool:
    if peer.ip_block is not None or (peer.pod_selector is not None
                                     and peer.namespace_selector is not None):
        return False
    if peer.pod_selector is not None:
        if peer.pod_selector.is_empty:  # every pod of the policy's VNID
            return topology.vnid_of(src.namespace) == topology.vnid_of(policy.namespace)
        return src.namespace == policy.namespace and peer.pod_selector.matches(src.label_map)
    if peer.namespace_selector is None:
        return False
    selected = {topology.vnid_of(ns.name) for ns in topology.namespaces
                if ns.name in _net_namespace_names(topology)
                and peer.namespace_selector.matches(ns.label_map)}
    return peer.namespace_selector.is_empty or topology.vnid_of(src.namespace) in selected


def _net_namespace_names(topology: Topology) -> set[str]:
    return {nn.name for nn in topology.net_namespaces}


def selects(policy: NetworkPolicy, dst: Pod) -> bool:
    """Does `policy` (of dst's VNID) select `dst`?  An empty selector selects the VNID."""
    if policy.pod_selector.is_empty:
        return True
    return policy.namespace == dst.namespace and policy.pod_selector.matches(dst.label_map)


def policy_allows(topology: Topology, src: Pod, dst: Pod, port: int | None) -> bool:
    """May `src` open a TCP connection to `dst` on `port`?  `port` None stands for ICMP:
    only a rule without ports lets it through."""
    vnid = topology.vnid_of(dst.namespace)
    policies = [p for p in topology.network_policies
                if topology.vnid_of(p.namespace) == vnid and "Ingress" in p.policy_types]
    if any(unsupported(p) for p in policies):
        return False
    selecting = [p for p in policies if selects(p, dst)]
    if not selecting:
        return True
    return any((not rule.ports or (port is not None and any(
                    pp.port == port and pp.protocol == "TCP" for pp in rule.ports)))
               and (not rule.peers or any(peer_allows(topology, p, peer, src)
                                          for peer in rule.peers))
               for p in selecting for rule in p.ingress)
