"""Stage 2, per object: the parsers of the kinds we read, and what they produce.

Each kind's parser reads one API object's fields into a model object (`topology.model`) or a
draft the later stages complete, checking types, formats and the rules that concern that
object alone.  `KINDS` names the parser of each (apiVersion, kind).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from topology.load.converters import (
    PORT_RANGE,
    PROTOCOL,
    datapath_id_text,
    dns_name_text,
    interface_text,
    mac_text,
    ofport_text,
    one_of,
    parse_cidr,
    parse_ipv4,
    timestamp_text,
    vnid_problem,
    vnid_text,
)
from topology.load.fields import Fields, present
from topology.load.limits import MAX_POLICY_PEERS
from topology.load.yamlreader import YamlList, YamlMap
from topology.model import (
    ANNOTATION_CHANGE_NETWORK,
    ANNOTATION_DATAPATH_ID,
    ANNOTATION_FIXED_VNID_HOST,
    ANNOTATION_INTERFACE,
    ANNOTATION_MULTICAST,
    ANNOTATION_OFPORT,
    ANNOTATION_TUN0_MAC,
    ClusterNetworkEntry,
    ContainerPort,
    EgressNetworkPolicy,
    EgressRule,
    HostSubnet,
    IngressRule,
    LabelRequirement,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    Origin,
    Pod,
    PolicyPeer,
    PolicyPort,
    Service,
    ServicePort,
)

T = TypeVar("T")


@dataclass(frozen=True)
class ClusterNetworkDraft:
    """A ClusterNetwork before its plugin is settled (`load_topology` may override it)."""

    name: str
    uid: str
    networks: tuple[ClusterNetworkEntry, ...]
    service_network: IPv4Network
    plugin_name: str | None
    vxlan_port: int
    mtu: int
    origin: Origin


@dataclass(frozen=True)
class NetNamespaceDraft:
    """A NetNamespace before the master's work: `netid` may be unset."""

    name: str
    uid: str
    netid: int | None
    egress_ips: tuple[IPv4Address, ...]
    multicast_enabled: bool
    change_network: str | None
    created: datetime | None
    origin: Origin


class _Skipped:
    """The value of a valid object that has no part in the pipeline (a pod without a br0 port)."""


SKIPPED = _Skipped()


@dataclass(frozen=True)
class ParsedObject:
    """One API object as read from its file.

    `value` is the model object (or a draft), built from the fields that could be read; it is
    None only when a field the cross-object checks need could not be read.  Either way, the
    object's problems are already in the file's issues.
    """

    kind: str
    identity: str  # "Kind/name" or "Kind/namespace/name"
    name: str
    namespace: str  # "" for cluster-scoped kinds
    origin: Origin
    raw: YamlMap
    value: Any


@dataclass(frozen=True)
class Meta:
    name: str
    namespace: str
    uid: str
    labels: tuple[tuple[str, str], ...]
    annotations: Fields | None
    fields: Fields
    origin: Origin

    def annotation(self, key: str, convert: Callable[[str], T]) -> T | None:
        return None if self.annotations is None else self.annotations.converted(key, convert)


def read_meta(obj: Fields, kind: str, namespaced: bool, origin: Origin) -> Meta | None:
    meta = obj.mapping("metadata", required=True)
    if meta is None:
        return None
    name = meta.string("name", required=True)
    namespace = (meta.string("namespace") or "default") if namespaced else ""
    labels = meta.string_map("labels")
    annotations = meta.mapping("annotations")
    uid = meta.string("uid")
    if name is None:
        return None
    if uid is None:  # stable across loads, so that UID-derived cookies are too
        uid = derived_uid(_identity(kind, namespace, name))
    return Meta(name, namespace, uid, labels, annotations, meta, origin)


def derived_uid(identity: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, identity))``, computed without building UUID
    objects (three times faster, which counts for 100,000 pods)."""
    digest = bytearray(hashlib.sha1(_UUID_URL_NAMESPACE + identity.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_UUID_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def _identity(kind: str, namespace: str, name: str | None) -> str:
    if not name:
        return kind
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


# Per-kind parsers: (object's fields, metadata) → model value, SKIPPED, or None.


def _parse_cluster_network(obj: Fields, meta: Meta) -> ClusterNetworkDraft | None:
    if meta.name != "default":
        message = 'the SDN reads only the ClusterNetwork named "default"'
        meta.fields.report("name", message, meta.name)
    networks = _cluster_network_entries(obj)
    service_network = obj.cidr("serviceNetwork", required=True)
    for entry in networks:
        if service_network is not None and service_network.overlaps(entry.cidr):
            message = f"overlaps the cluster network {entry.cidr}"
            obj.report("serviceNetwork", message, str(service_network))
    plugin_name = obj.string("pluginName")
    vxlan_port = obj.integer("vxlanPort", check=PORT_RANGE)
    mtu = obj.integer("mtu", check=_mtu_problem)
    if service_network is None or not networks:
        return None
    return ClusterNetworkDraft(
        meta.name, meta.uid, networks, service_network, plugin_name,
        4789 if vxlan_port is None else vxlan_port, 1450 if mtu is None else mtu, meta.origin,
    )  # fmt: skip


def _mtu_problem(mtu: int) -> str | None:
    if mtu < 576:
        return "must be at least 576, the datagram size every IPv4 host must accept (RFC 791)"
    if mtu > 9000:
        return "must be at most 9000, the largest jumbo frame common NICs carry"
    return None


def _cluster_network_entries(obj: Fields) -> tuple[ClusterNetworkEntry, ...]:
    if not obj.has("clusterNetworks"):
        return _legacy_cluster_network(obj)
    entries: list[ClusterNetworkEntry] = []
    for item in obj.mappings("clusterNetworks"):
        entry = _cluster_network_entry(item, "CIDR", "hostSubnetLength")
        if entry is None:
            continue
        for earlier in entries:
            if entry.cidr.overlaps(earlier.cidr):
                message = f"overlaps the cluster network {earlier.cidr}"
                item.report("CIDR", message, str(entry.cidr))
        entries.append(entry)
    _check_legacy_matches_first(obj, entries)
    return tuple(entries)


def _legacy_cluster_network(obj: Fields) -> tuple[ClusterNetworkEntry, ...]:
    if not obj.has("network"):
        obj.report("clusterNetworks", "required (or the legacy network and hostsubnetlength)")
        return ()
    entry = _cluster_network_entry(obj, "network", "hostsubnetlength")
    return () if entry is None else (entry,)


def _cluster_network_entry(
    fields: Fields, cidr_key: str, length_key: str
) -> ClusterNetworkEntry | None:
    cidr = fields.cidr(cidr_key, required=True)
    length = fields.integer(length_key, required=True)
    if cidr is None or length is None:
        return None
    longest = 32 - cidr.prefixlen
    if not 2 <= length <= longest:
        message = f"must be between 2 and {longest} for a /{cidr.prefixlen} network"
        fields.report(length_key, message, length)
        return None
    return ClusterNetworkEntry(cidr, length)


def _check_legacy_matches_first(obj: Fields, entries: list[ClusterNetworkEntry]) -> None:
    """3.11 keeps the legacy fields as a copy of clusterNetworks[0]; if set they must agree."""
    if not entries:
        return
    first = entries[0]
    network = obj.cidr("network")
    if network is not None and network != first.cidr:
        obj.report("network", f"must equal clusterNetworks[0].CIDR ({first.cidr})", str(network))
    length = obj.integer("hostsubnetlength")
    if length is not None and length != first.host_subnet_length:
        message = f"must equal clusterNetworks[0].hostSubnetLength ({first.host_subnet_length})"
        obj.report("hostsubnetlength", message, length)


def _parse_host_subnet(obj: Fields, meta: Meta) -> HostSubnet | None:
    host = obj.string("host", required=True)
    if host is not None and host != meta.name:
        obj.report("host", f'must be the same as metadata.name: "{meta.name}"', host)
    host_ip = obj.ip("hostIP", required=True)
    subnet = obj.cidr("subnet", required=True)
    egress_ips = obj.converted_list("egressIPs", parse_ipv4)
    egress_cidrs = obj.converted_list("egressCIDRs", parse_cidr)
    datapath_id = meta.annotation(ANNOTATION_DATAPATH_ID, datapath_id_text)
    fixed_vnid = meta.annotation(ANNOTATION_FIXED_VNID_HOST, vnid_text)
    tun0_mac = meta.annotation(ANNOTATION_TUN0_MAC, mac_text)
    if host is None or host_ip is None or subnet is None:
        return None
    return HostSubnet(
        meta.name, meta.uid, host, host_ip, subnet,
        int(host_ip) if datapath_id is None else datapath_id,
        egress_ips, egress_cidrs, fixed_vnid, meta.origin, tun0_mac,
    )  # fmt: skip


def _parse_net_namespace(obj: Fields, meta: Meta) -> NetNamespaceDraft | None:
    netname = obj.string("netname", required=True)
    if netname is not None and netname != meta.name:
        obj.report("netname", f'must be the same as metadata.name: "{meta.name}"', netname)
    netid = obj.integer("netid", check=vnid_problem)
    egress_ips = obj.converted_list("egressIPs", parse_ipv4)
    multicast = meta.annotation(ANNOTATION_MULTICAST, str) == "true"  # 3.11 compares to "true"
    change_network = meta.annotation(ANNOTATION_CHANGE_NETWORK, str)
    created = meta.fields.converted("creationTimestamp", timestamp_text)
    if netid is None and obj.has("netid"):
        return None
    return NetNamespaceDraft(
        meta.name, meta.uid, netid, egress_ips, multicast, change_network, created, meta.origin
    )


def _parse_namespace(obj: Fields, meta: Meta) -> Namespace:
    return Namespace(meta.name, meta.labels, meta.origin)


def _parse_pod(obj: Fields, meta: Meta) -> Pod | _Skipped | None:
    spec = obj.mapping("spec", required=True)
    status = obj.mapping("status")
    if spec is None:
        return None
    # Host-network pods and pods without an IP (not running yet) have no port on br0.
    if spec.boolean("hostNetwork") or status is None or not status.has("podIP"):
        return SKIPPED
    node = spec.string("nodeName", required=True)
    ip = status.ip("podIP")
    interface = meta.annotation(ANNOTATION_INTERFACE, interface_text)
    ofport = meta.annotation(ANNOTATION_OFPORT, ofport_text)
    if node is None or ip is None:
        return None
    ports = tuple(present(_container_port(port) for container in spec.mappings("containers")
                           for port in container.mappings("ports")))
    return Pod(meta.namespace, meta.name, meta.uid, node, ip, meta.labels, interface, ofport,
               meta.origin, ports)


def _container_port(port: Fields) -> ContainerPort | None:
    """A named container port (unnamed ones cannot be a Service's targetPort)."""
    number = port.integer("containerPort", required=True, check=PORT_RANGE)
    protocol = _protocol(port)
    name = port.string("name")
    if number is None or protocol is None or not name:
        return None
    return ContainerPort(name, number, protocol)


def _parse_service(obj: Fields, meta: Meta) -> Service | None:
    spec = obj.mapping("spec", required=True)
    if spec is None:
        return None
    headless = spec.string("clusterIP") in (None, "None")  # also ExternalName services
    cluster_ip = None if headless else spec.ip("clusterIP")
    if cluster_ip is None and not headless:
        return None
    ports = tuple(present(_service_port(port) for port in spec.mappings("ports")))
    selector = spec.string_map("selector")
    return Service(meta.namespace, meta.name, meta.uid, cluster_ip, ports, selector, meta.origin)


def _service_port(port: Fields) -> ServicePort | None:
    protocol = _protocol(port)
    number = port.integer("port", required=True, check=PORT_RANGE)
    name = port.string("name") or ""
    target = _target_port(port)
    if number is None or protocol is None or target is _BAD:
        return None
    return ServicePort(protocol, number, name, None if target == number else target)


_BAD: Any = object()
# Kubernetes' IsValidPortName (IANA_SVC_NAME): at most 15 characters of a-z, 0-9 and '-',
# at least one letter, no '-' at either end and no "--".
_PORT_NAME = re.compile(r"(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _target_port(port: Fields) -> int | str | None:
    """`targetPort`: a port number or a container port's name; None when absent."""
    raw = port.node.get("targetPort") if isinstance(port.node, YamlMap) else None
    if isinstance(raw, str) and raw != "":
        if len(raw) > 15 or not _PORT_NAME.fullmatch(raw) or not any(c.isalpha() for c in raw):
            port.report("targetPort", "must be a port number or an IANA_SVC_NAME", raw)
            return _BAD
        return raw
    if not port.has("targetPort"):
        return None
    number = port.integer("targetPort", check=PORT_RANGE)
    return _BAD if number is None else number


def _protocol(fields: Fields) -> str | None:
    """`protocol`, TCP by default; None if it is given but not TCP, UDP or SCTP."""
    return fields.converted("protocol", PROTOCOL) if fields.has("protocol") else "TCP"


def _parse_network_policy(obj: Fields, meta: Meta) -> NetworkPolicy | None:
    spec = obj.mapping("spec", required=True)
    if spec is None or _too_many_peers(spec):
        return None
    pod_selector = _label_selector(spec.mapping("podSelector", required=True))
    ingress = tuple(present(_ingress_rule(rule) for rule in spec.mappings("ingress")))
    policy_types = _policy_types(spec)
    if pod_selector is None:
        return None
    return NetworkPolicy(
        meta.namespace, meta.name, meta.uid, pod_selector, ingress, policy_types, meta.origin
    )


def _too_many_peers(spec: Fields) -> bool:
    """More (rule, peer) pairs than MAX_POLICY_PEERS: reported, and the rules not read."""
    rules = spec.node.get("ingress") if isinstance(spec.node, YamlMap) else None
    if not isinstance(rules, YamlList):
        return False
    pairs = sum(len(peers) for rule in rules if isinstance(rule, YamlMap)
                and isinstance(peers := rule.get("from"), YamlList))
    if pairs <= MAX_POLICY_PEERS:
        return False
    spec.report("ingress", f"more than {MAX_POLICY_PEERS} (rule, peer) pairs "
                           "(MAX_POLICY_PEERS)", pairs)
    return True


def _policy_types(spec: Fields) -> tuple[str, ...]:
    """As given, or Kubernetes' default: Ingress, plus Egress when egress rules are present."""
    if spec.has("policyTypes"):
        return spec.converted_list("policyTypes", one_of("Ingress", "Egress"))
    egress = spec.sequence("egress")
    return ("Ingress", "Egress") if egress is not None and egress.node else ("Ingress",)


def _label_selector(fields: Fields | None) -> LabelSelector | None:
    if fields is None:
        return None
    expressions = fields.mappings("matchExpressions")
    requirements = tuple(present(_label_requirement(item) for item in expressions))
    return LabelSelector(fields.string_map("matchLabels"), requirements)


_OPERATORS = one_of("In", "NotIn", "Exists", "DoesNotExist")


def _label_requirement(fields: Fields) -> LabelRequirement | None:
    key = fields.string("key", required=True)
    operator = fields.converted("operator", _OPERATORS, required=True)
    values = fields.converted_list("values", str)
    if operator in ("In", "NotIn") and not values:
        fields.report("values", f"must be non-empty for operator {operator}")
    elif operator in ("Exists", "DoesNotExist") and values:
        fields.report("values", f"must be empty for operator {operator}")
    elif key is not None and operator is not None:
        return LabelRequirement(key, operator, values)
    return None


def _ingress_rule(rule: Fields) -> IngressRule:
    ports = present(_policy_port(port) for port in rule.mappings("ports"))
    peers = present(_policy_peer(peer) for peer in rule.mappings("from"))
    return IngressRule(tuple(ports), tuple(peers))


def _policy_port(port: Fields) -> PolicyPort | None:
    protocol = _protocol(port)
    number: int | str | None = port.node.get("port") if isinstance(port.node, YamlMap) else None
    if not isinstance(number, str):  # a string is a named port: a containerPort's name
        number = port.integer("port", check=PORT_RANGE)
    return None if protocol is None else PolicyPort(protocol, number or None)


_SELECTORS = ("podSelector", "namespaceSelector")


def _policy_peer(peer: Fields) -> PolicyPeer | None:
    has_selector = any(peer.has(key) for key in _SELECTORS)
    if peer.has("ipBlock") and has_selector:
        peer.report("ipBlock", "cannot be combined with podSelector or namespaceSelector")
        return None
    if not peer.has("ipBlock") and not has_selector:
        peer.report(None, "must specify podSelector, namespaceSelector or ipBlock")
        return None
    ip_block = peer.mapping("ipBlock")
    cidr = ip_block.cidr("cidr", required=True) if ip_block is not None else None
    return PolicyPeer(
        _label_selector(peer.mapping("podSelector")),
        _label_selector(peer.mapping("namespaceSelector")),
        None if cidr is None else str(cidr),
    )


_MAX_EGRESS_RULES = 50  # networkapi.EgressNetworkPolicyMaxRules


def _parse_egress_network_policy(obj: Fields, meta: Meta) -> EgressNetworkPolicy | None:
    spec = obj.mapping("spec", required=True)
    if spec is None:
        return None
    rules = tuple(present(_egress_rule(rule) for rule in spec.mappings("egress")))
    egress = spec.sequence("egress")
    if egress is not None and len(egress.node) > _MAX_EGRESS_RULES:
        message = f"too many egress rules (max {_MAX_EGRESS_RULES})"
        spec.report("egress", message, len(egress.node))
    return EgressNetworkPolicy(meta.namespace, meta.name, meta.uid, rules, meta.origin)


def _egress_rule(rule: Fields) -> EgressRule | None:
    action = rule.converted("type", one_of("Allow", "Deny"), required=True)
    to = rule.mapping("to", required=True)
    if to is None:
        return None
    if to.has("cidrSelector") and to.has("dnsName"):
        rule.report("to", "either specify cidrSelector or dnsName but not both")
        return None
    if not to.has("cidrSelector") and not to.has("dnsName"):
        rule.report("to", "must specify cidrSelector or dnsName")
        return None
    cidr = to.cidr("cidrSelector")
    dns_name = to.converted("dnsName", dns_name_text)
    if action is None or (cidr is None and dns_name is None):
        return None
    return EgressRule(action, cidr, dns_name)


@dataclass(frozen=True)
class KindSpec:
    namespaced: bool
    parse: Callable[[Fields, Meta], Any]


_OPENSHIFT_NETWORK = "network.openshift.io/v1"
KINDS: dict[tuple[str, str], KindSpec] = {
    (_OPENSHIFT_NETWORK, "ClusterNetwork"): KindSpec(False, _parse_cluster_network),
    (_OPENSHIFT_NETWORK, "HostSubnet"): KindSpec(False, _parse_host_subnet),
    (_OPENSHIFT_NETWORK, "NetNamespace"): KindSpec(False, _parse_net_namespace),
    (_OPENSHIFT_NETWORK, "EgressNetworkPolicy"): KindSpec(True, _parse_egress_network_policy),
    ("v1", "Namespace"): KindSpec(False, _parse_namespace),
    ("v1", "Pod"): KindSpec(True, _parse_pod),
    ("v1", "Service"): KindSpec(True, _parse_service),
    ("networking.k8s.io/v1", "NetworkPolicy"): KindSpec(True, _parse_network_policy),
}


def raw_identity(raw: YamlMap) -> str:
    """The identity as written, before validation: it names the object in issues."""
    kind = _text(raw.get("kind")) or "object"
    meta = raw.get("metadata")
    name = _text(meta.get("name")) if isinstance(meta, YamlMap) else ""
    namespace = _text(meta.get("namespace")) if isinstance(meta, YamlMap) else ""
    spec = KINDS.get((_text(raw.get("apiVersion")), kind))
    if spec is not None:
        namespace = (namespace or "default") if spec.namespaced else ""
    return _identity(kind, namespace, name)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
