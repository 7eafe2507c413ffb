"""Frozen value objects for the cluster objects openshift-sdn's node reads.

Only the fields the 3.11 node (and its master) act upon are modelled; everything else an
API object carries is accepted by the loader and dropped.  Every object remembers where it
was defined (`Origin`) so that validation and the compiler can name file and line.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network

from topology.errors import OsdnError

GLOBAL_VNID = 0
MIN_VNID = 10
MAX_VNID = (1 << 24) - 1

ANNOTATION_INTERFACE = "osdn.dev/interface"
ANNOTATION_OFPORT = "osdn.dev/ofport"
ANNOTATION_DATAPATH_ID = "osdn.dev/datapath-id"
ANNOTATION_MULTICAST = "netnamespace.network.openshift.io/multicast-enabled"
ANNOTATION_CHANGE_NETWORK = "pod.network.openshift.io/multitenant.change-network"
ANNOTATION_FIXED_VNID_HOST = "pod.network.openshift.io/fixed-vnid-host"
ANNOTATION_TUN0_MAC = "osdn.dev/tun0-mac"
# Every annotation the loader reads (the API source drops all others as objects arrive).
READ_ANNOTATIONS = frozenset({
    ANNOTATION_INTERFACE, ANNOTATION_OFPORT, ANNOTATION_DATAPATH_ID, ANNOTATION_MULTICAST,
    ANNOTATION_CHANGE_NETWORK, ANNOTATION_FIXED_VNID_HOST, ANNOTATION_TUN0_MAC})

LOOPBACK_NODE_IP = IPv4Address("127.0.0.1")  # the one loopback address ValidateNodeIP names

VXLAN_OFPORT = 1
TUN0_OFPORT = 2


class Plugin(enum.Enum):
    """The three 3.11 plugins; `plugin_id` is what the table-253 note records."""

    SUBNET = "redhat/openshift-ovs-subnet"
    MULTITENANT = "redhat/openshift-ovs-multitenant"
    NETWORKPOLICY = "redhat/openshift-ovs-networkpolicy"

    @property
    def short_name(self) -> str:
        """What `--plugin` and the `plugin` setting call it: subnet, multitenant, networkpolicy."""
        return self.value.rsplit("-", 1)[1]

    @property
    def plugin_id(self) -> int:
        return {Plugin.SUBNET: 0, Plugin.MULTITENANT: 1, Plugin.NETWORKPOLICY: 2}[self]

    @property
    def uses_conntrack(self) -> bool:
        """3.11 runs conntrack mode only under ovs-networkpolicy."""
        return self is Plugin.NETWORKPOLICY

    @property
    def supports_vnids(self) -> bool:
        """Egress IPs, egress firewall and multicast need per-namespace VNIDs."""
        return self is not Plugin.SUBNET


# The short names users type (`--plugin`, the `plugin` setting), the one place they are listed.
PLUGIN_NAMES: dict[str, Plugin] = {plugin.short_name: plugin for plugin in Plugin}


@dataclass(frozen=True)
class Origin:
    """Where an object (or a field of it) was written: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ClusterNetworkEntry:
    cidr: IPv4Network
    host_subnet_length: int


@dataclass(frozen=True)
class ClusterNetwork:
    name: str
    uid: str
    networks: tuple[ClusterNetworkEntry, ...]
    service_network: IPv4Network
    plugin: Plugin
    vxlan_port: int = 4789
    mtu: int = 1450
    origin: Origin | None = field(default=None, compare=False)

    def node_ip_conflict(self, ip: IPv4Address) -> str | None:
        """Why 3.11's `ValidateNodeIP` refuses `ip` as a node's IP, or None.  A node IP inside
        the pod or service network would route the node's VXLAN into the SDN (rhbz#1295486)."""
        if ip == LOOPBACK_NODE_IP:
            return f"is {ip}, not a node IP"
        for entry in self.networks:
            if ip in entry.cidr:
                return f"lies inside the cluster network {entry.cidr}"
        if ip in self.service_network:
            return f"lies inside the service network {self.service_network}"
        return None


@dataclass(frozen=True)
class HostSubnet:
    name: str
    uid: str
    host: str
    host_ip: IPv4Address
    subnet: IPv4Network
    datapath_id: int
    egress_ips: tuple[IPv4Address, ...] = ()
    egress_cidrs: tuple[IPv4Network, ...] = ()
    fixed_vnid: int | None = None
    origin: Origin | None = field(default=None, compare=False)
    annotated_tun0_mac: str | None = None  # osdn.dev/tun0-mac, lower case

    @property
    def gateway(self) -> IPv4Address:
        """tun0's address: the first host of the subnet."""
        return self.subnet.network_address + 1

    @property
    def tun0_mac(self) -> str:
        """tun0's MAC as far as the topology tells: the `osdn.dev/tun0-mac` annotation, else
        the CNI convention for the gateway (0a:58 + its address).  3.11 reads the real one
        from OVS (`ensureTunMAC`); the controller uses what the switch reports."""
        return self.annotated_tun0_mac or mac_for_ip(self.gateway)


@dataclass(frozen=True)
class NetNamespace:
    """A NetNamespace after the master's work: `netid` is always set."""

    name: str
    uid: str
    netid: int
    egress_ips: tuple[IPv4Address, ...] = ()
    multicast_enabled: bool = False
    origin: Origin | None = field(default=None, compare=False)
    # How `netid` was set: "" = written in the YAML, "allocated" = by the master (no netid
    # given), or the change-network annotation the master applied ("global", "join:ns",
    # "isolate").  Informational (osdn check); not part of equality.
    netid_source: str = field(default="", compare=False)


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    origin: Origin | None = field(default=None, compare=False)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class ContainerPort:
    """spec.containers[].ports[]: what a Service's named targetPort resolves to."""

    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    uid: str
    node: str
    ip: IPv4Address
    labels: tuple[tuple[str, str], ...] = ()
    interface: str | None = None
    ofport: int | None = None
    origin: Origin | None = field(default=None, compare=False)
    container_ports: tuple[ContainerPort, ...] = ()

    def named_port(self, name: str, protocol: str) -> int | None:
        return next((p.port for p in self.container_ports
                     if p.name == name and p.protocol == protocol), None)

    @property
    def mac(self) -> str:
        return mac_for_ip(self.ip)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ServicePort:
    protocol: str  # "TCP", "UDP" or "SCTP"
    port: int
    name: str = ""
    # spec.ports[].targetPort: a number, or the name of a container port (IANA_SVC_NAME).
    # None when absent or equal to `port` (Kubernetes' default is the port itself).
    target_port: int | str | None = None


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    uid: str
    cluster_ip: IPv4Address | None  # None for headless services ("None") or no IP
    ports: tuple[ServicePort, ...] = ()
    selector: tuple[tuple[str, str], ...] = ()
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LabelRequirement:
    """One matchExpressions entry."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """metav1.LabelSelector: an empty selector selects everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[LabelRequirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True)
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None  # a str is a named port (unsupported in 3.11)


@dataclass(frozen=True)
class PolicyPeer:
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: str | None = None  # the CIDR; ignored by 3.11 (no flows)


@dataclass(frozen=True)
class IngressRule:
    ports: tuple[PolicyPort, ...] = ()
    peers: tuple[PolicyPeer, ...] = ()  # empty = from anywhere


@dataclass(frozen=True)
class NetworkPolicy:
    namespace: str
    name: str
    uid: str
    pod_selector: LabelSelector
    ingress: tuple[IngressRule, ...] = ()
    policy_types: tuple[str, ...] = ("Ingress",)
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EgressRule:
    action: str  # "Allow" or "Deny"
    cidr: IPv4Network | None = None
    dns_name: str | None = None


@dataclass(frozen=True)
class EgressNetworkPolicy:
    namespace: str
    name: str
    uid: str
    rules: tuple[EgressRule, ...] = ()
    origin: Origin | None = field(default=None, compare=False)


class UnknownNamespace(OsdnError, KeyError):
    """A namespace the topology has no NetNamespace for (a KeyError, as a lookup miss)."""


@dataclass(frozen=True)
class Topology:
    """A validated cluster: what the compiler reads.  Built only by `topology.load`."""

    cluster_network: ClusterNetwork
    host_subnets: tuple[HostSubnet, ...]
    net_namespaces: tuple[NetNamespace, ...]
    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[Pod, ...] = ()
    services: tuple[Service, ...] = ()
    network_policies: tuple[NetworkPolicy, ...] = ()
    egress_network_policies: tuple[EgressNetworkPolicy, ...] = ()
    ignored: tuple[str, ...] = ()  # "Kind/[ns/]name (file:line)" of kinds we do not read
    warnings: tuple[str, ...] = ()  # accepted but noteworthy, e.g. an ignored change-network

    def host_subnet(self, host: str) -> HostSubnet | None:
        return next((hs for hs in self.host_subnets if hs.host == host), None)

    def vnid_of(self, namespace: str) -> int:
        """The namespace's VNID; 0 for every namespace under ovs-subnet.  UnknownNamespace
        when a plugin with VNIDs has no NetNamespace of that name."""
        if not self.cluster_network.plugin.supports_vnids:
            return GLOBAL_VNID
        try:
            return self._vnids[namespace]
        except KeyError:
            raise UnknownNamespace(f"no NetNamespace {namespace!r}") from None

    @cached_property
    def _vnids(self) -> dict[str, int]:
        return {nn.name: nn.netid for nn in self.net_namespaces}


def egress_ip_sources(net_namespaces: Iterable[NetNamespace]) -> dict[int, NetNamespace]:
    """Per VNID, the NetNamespace whose egressIPs 3.11 uses, for the VNIDs where it lists any.

    3.11's EgressIPTracker keeps one egress-IP list per VNID (`namespacesByVNID`) and every
    NetNamespace event replaces it with that NetNamespace's list, an empty one included
    (`UpdateNetNamespaceEgress`).  A node reads the NetNamespaces at start in the API's order,
    by name, so of namespaces sharing a VNID (joined, or the same netid) the one whose name
    sorts last decides, even when it lists none."""
    last: dict[int, NetNamespace] = {}
    for nn in net_namespaces:
        known = last.get(nn.netid)
        if known is None or nn.name > known.name:
            last[nn.netid] = nn
    return {vnid: nn for vnid, nn in last.items() if nn.egress_ips}


def mac_for_ip(ip: IPv4Address) -> str:
    """openshift-sdn's CNI MAC: 0a:58 followed by the four bytes of the address."""
    return "0a:58:" + ":".join(f"{b:02x}" for b in ip.packed)
