"""Stage 3: the rules across objects (overlaps, duplicates, references).

Checks for a *missing* object are skipped when part of the input could not be read: the
object may just be in the unread part.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from topology.load.fields import join_path
from topology.load.issues import Issue
from topology.load.kinds import SKIPPED, ClusterNetworkDraft, ParsedObject
from topology.load.parsefile import ParsedFile
from topology.load.yamlreader import Container, Key, YamlList, YamlMap
from topology.model import (
    ANNOTATION_DATAPATH_ID,
    ANNOTATION_INTERFACE,
    ANNOTATION_OFPORT,
    ClusterNetwork,
    HostSubnet,
    Plugin,
    Pod,
)

Entry = tuple[Hashable, ParsedObject, tuple[Key, ...]]  # (value, object, path to the field)
ANNOTATIONS: tuple[Key, ...] = ("metadata", "annotations")


class Checks:
    """The cross-object stage: where its issues go, and whether the input was read whole."""

    def __init__(self, issues: list[Issue], complete: bool, paths_read: str = "") -> None:
        self.issues = issues
        self.paths_read = paths_read  # for a problem of the whole input
        # When part of the input could not be read, a "missing" object may just be unread:
        # checks for absent objects are skipped rather than reported wrongly.
        self.complete = complete

    def report(
        self, obj: ParsedObject, keys: Sequence[Key], message: str, value: object = None
    ) -> None:
        self.issues.append(self.issue(obj, keys, message, value))

    @staticmethod
    def issue(obj: ParsedObject, keys: Sequence[Key], message: str, value: object = None) -> Issue:
        line = _line_at(obj.raw, keys)
        return Issue(obj.origin.file, line, obj.identity, join_path(keys), message, value)

    @staticmethod
    def where(obj: ParsedObject, keys: Sequence[Key]) -> str:
        return f"{obj.identity} ({obj.origin.file}:{_line_at(obj.raw, keys)})"

    def duplicates(self, entries: Iterable[Entry], shown: Callable[[Any], object] = str) -> None:
        """Report every entry whose value an earlier entry already has."""
        first: dict[Hashable, tuple[ParsedObject, tuple[Key, ...]]] = {}
        for value, obj, keys in entries:
            earlier = first.setdefault(value, (obj, keys))
            if earlier[0] is not obj or earlier[1] != keys:
                self.report(obj, keys, f"already used by {self.where(*earlier)}", shown(value))


def _line_at(raw: YamlMap, keys: Sequence[Key]) -> int:
    """The line of the field at `keys`, or of its closest written ancestor."""
    node: Container = raw
    for key in keys[:-1]:
        if isinstance(node, YamlMap):
            child = node.get(key) if isinstance(key, str) else None
        else:
            child = node[key] if isinstance(key, int) and 0 <= key < len(node) else None
        if not isinstance(child, (YamlMap, YamlList)):
            return node.line_of(key)
        node = child
    return node.line_of(keys[-1]) if keys else raw.line


def unique_objects(files: Sequence[ParsedFile], checks: Checks) -> list[ParsedObject]:
    """All objects, without the repeats of an identity (each repeat is an error)."""
    first: dict[str, ParsedObject] = {}
    for parsed in files:
        for obj in parsed.objects:
            earlier = first.setdefault(obj.identity, obj)
            if earlier is not obj:
                checks.report(obj, (), f"duplicate object (first at {earlier.origin})")
    return list(first.values())


class Objects:
    """The unique objects by kind."""

    def __init__(self, objects: list[ParsedObject]) -> None:
        self.all = objects
        self._by_kind: dict[str, list[ParsedObject]] = defaultdict(list)
        self._usable: dict[str, list[ParsedObject]] = {}
        for obj in objects:
            self._by_kind[obj.kind].append(obj)

    def of(self, kind: str) -> list[ParsedObject]:
        """Every object of the kind, whether or not it could be read."""
        return self._by_kind[kind]

    def usable(self, kind: str) -> list[ParsedObject]:
        """The objects of the kind that were read into a value (a shared list: read only)."""
        found = self._usable.get(kind)
        if found is None:
            found = self._usable[kind] = [
                obj for obj in self._by_kind[kind]
                if obj.value is not None and obj.value is not SKIPPED
            ]
        return found

    def names(self, kind: str) -> set[str]:
        return {obj.name for obj in self._by_kind[kind]}


_PLUGIN_NAMES = ", ".join(plugin.value for plugin in Plugin)


def cluster_network(
    objects: Objects, override: Plugin | None, checks: Checks
) -> ClusterNetwork | None:
    found = objects.of("ClusterNetwork")
    if not found:
        if checks.complete:
            message = "no ClusterNetwork (exactly one is needed)"
            checks.issues.append(Issue(checks.paths_read, 0, message=message))
        return None
    for extra in found[1:]:
        message = f"a second ClusterNetwork (first at {found[0].origin}); exactly one is allowed"
        checks.report(extra, (), message)
    draft: ClusterNetworkDraft | None = found[0].value
    plugin = override or _plugin(found[0], checks)
    if draft is None or plugin is None:
        return None
    return ClusterNetwork(
        draft.name, draft.uid, draft.networks, draft.service_network, plugin,
        draft.vxlan_port, draft.mtu, draft.origin,
    )  # fmt: skip


def _plugin(obj: ParsedObject, checks: Checks) -> Plugin | None:
    name = obj.raw.get("pluginName")
    if name in (None, ""):
        checks.report(obj, ("pluginName",), f"required: one of {_PLUGIN_NAMES}")
        return None
    try:
        return Plugin(name)
    except ValueError:  # includes a value of the wrong type, reported already
        if isinstance(name, str):
            message = f"unknown plugin; must be one of {_PLUGIN_NAMES}"
            checks.report(obj, ("pluginName",), message, name)
        return None


def check_host_subnets(
    subnets: list[ParsedObject], network: ClusterNetwork | None, checks: Checks
) -> None:
    checks.duplicates((obj.value.host_ip, obj, ("hostIP",)) for obj in subnets)
    checks.duplicates((obj.value.host, obj, ("host",)) for obj in subnets)
    checks.duplicates(_datapath_ids(subnets), shown=lambda dpid: f"0x{dpid:016x}")
    checks.duplicates(
        (ip, obj, ("egressIPs", index))
        for obj in subnets
        for index, ip in enumerate(obj.value.egress_ips)
    )
    _check_subnet_overlaps(subnets, checks)
    if network is not None:
        for obj in subnets:
            _check_subnet_in_cluster_network(obj, network, checks)


def _datapath_ids(subnets: list[ParsedObject]) -> Iterator[Entry]:
    """Each node's datapath id, at its annotation or else at the hostIP it derives from.  A
    derived id that repeats an earlier hostIP is left out: the hostIP is reported already."""
    host_ips: set[IPv4Address] = set()
    for obj in subnets:
        annotations = obj.raw["metadata"].get("annotations")
        if isinstance(annotations, YamlMap) and ANNOTATION_DATAPATH_ID in annotations:
            yield obj.value.datapath_id, obj, (*ANNOTATIONS, ANNOTATION_DATAPATH_ID)
        elif obj.value.host_ip not in host_ips:
            yield obj.value.datapath_id, obj, ("hostIP",)
        host_ips.add(obj.value.host_ip)


def _check_subnet_overlaps(subnets: list[ParsedObject], checks: Checks) -> None:
    """Sort by address and sweep: O(n log n) for clusters of thousands of nodes.  Each
    overlap is reported on the subnet that comes later in the input."""
    position = {id(obj): index for index, obj in enumerate(subnets)}
    widest: ParsedObject | None = None  # the subnet reaching furthest so far
    by_address = sorted(subnets, key=lambda obj: obj.value.subnet)
    for obj in by_address:
        subnet: IPv4Network = obj.value.subnet
        if widest is not None and subnet.network_address <= widest.value.subnet.broadcast_address:
            later, earlier = sorted((obj, widest), key=lambda o: position[id(o)], reverse=True)
            message = f"overlaps {earlier.value.subnet} of {checks.where(earlier, ('subnet',))}"
            checks.report(later, ("subnet",), message, str(later.value.subnet))
        if widest is None or subnet.broadcast_address > widest.value.subnet.broadcast_address:
            widest = obj


def _check_subnet_in_cluster_network(
    obj: ParsedObject, network: ClusterNetwork, checks: Checks
) -> None:
    subnet: IPv4Network = obj.value.subnet
    entry = next((e for e in network.networks if subnet.subnet_of(e.cidr)), None)
    if entry is None:
        cidrs = ", ".join(str(e.cidr) for e in network.networks)
        checks.report(obj, ("subnet",), f"outside every cluster network ({cidrs})", str(subnet))
    elif subnet.prefixlen != 32 - entry.host_subnet_length:
        message = (
            f"prefix length must be /{32 - entry.host_subnet_length} "
            f"(cluster network {entry.cidr} has hostSubnetLength {entry.host_subnet_length})"
        )
        checks.report(obj, ("subnet",), message, str(subnet))


def check_pods(pods: list[ParsedObject], objects: Objects, checks: Checks) -> None:
    """Pod IPs inside their node's subnet, unknown nodes, and what must be unique (IPs in the
    cluster, ofports and interfaces per node).  The hot loop of a reload (every pod, on every
    change): the common case, nothing wrong, costs a few integer comparisons and dict
    insertions per pod; the checks that report are the general ones."""
    nodes: dict[str, HostSubnet] = {}
    for obj in objects.usable("HostSubnet"):
        nodes.setdefault(obj.value.host, obj.value)  # a duplicate host is reported elsewhere
    known_hosts = nodes.keys() | objects.names("HostSubnet")
    # host -> (network address, broadcast address, gateway) as integers
    bounds = {host: (int(hs.subnet.network_address), int(hs.subnet.broadcast_address),
                     int(hs.subnet.network_address) + 1) for host, hs in nodes.items()}
    ips: dict[int, ParsedObject] = {}
    ofports: set[tuple[str, int]] = set()
    interfaces: set[tuple[str, str]] = set()
    with_ofport = with_interface = 0
    repeated_ip = False
    for obj in pods:
        pod: Pod = obj.value
        # int(pod.ip) without the method call (110,000 times per reload): CPython's
        # ipaddress keeps the integer in _ip, which typeshed does not declare.
        ip: int = pod.ip._ip  # type: ignore[attr-defined]
        host = pod.node
        node = bounds.get(host)
        if node is not None:
            if not (node[0] < ip < node[1] and ip != node[2]):
                _check_pod_ip(obj, nodes[host], checks)
        elif host not in known_hosts and checks.complete:
            message = "unknown node: no HostSubnet has this host"
            checks.report(obj, ("spec", "nodeName"), message, host)
        if ips.setdefault(ip, obj) is not obj:
            repeated_ip = True
        if pod.ofport is not None:
            ofports.add((host, pod.ofport))
            with_ofport += 1
        if pod.interface is not None:
            interfaces.add((host, pod.interface))
            with_interface += 1
    if repeated_ip:  # rare: report them as the general check does
        checks.duplicates((obj.value.ip, obj, ("status", "podIP")) for obj in pods)
    if len(ofports) != with_ofport:
        _report_repeats_per_node(pods, "ofport", ANNOTATION_OFPORT, checks)
    if len(interfaces) != with_interface:
        _report_repeats_per_node(pods, "interface", ANNOTATION_INTERFACE, checks)


def _report_repeats_per_node(
    pods: list[ParsedObject], attribute: str, annotation: str, checks: Checks
) -> None:
    keys = (*ANNOTATIONS, annotation)
    entries = (
        ((obj.value.node, getattr(obj.value, attribute)), obj, keys)
        for obj in pods
        if getattr(obj.value, attribute) is not None
    )
    checks.duplicates(entries, shown=lambda node_and_value: node_and_value[1])


def _check_pod_ip(obj: ParsedObject, node: HostSubnet, checks: Checks) -> None:
    ip: IPv4Address = obj.value.ip
    subnet = node.subnet
    problem = None
    if ip not in subnet:
        problem = f"outside the subnet {subnet} of node {node.host}"
    elif ip == subnet.network_address:
        problem = f"the network address of node {node.host}'s subnet {subnet}"
    elif ip == node.gateway:
        problem = f"node {node.host}'s gateway (tun0) address"
    elif ip == subnet.broadcast_address:
        problem = f"the broadcast address of node {node.host}'s subnet {subnet}"
    if problem:
        checks.report(obj, ("status", "podIP"), problem, str(ip))


def check_services(
    services: list[ParsedObject], network: ClusterNetwork | None, checks: Checks
) -> None:
    with_ip = [obj for obj in services if obj.value.cluster_ip is not None]
    checks.duplicates((obj.value.cluster_ip, obj, ("spec", "clusterIP")) for obj in with_ip)
    if network is None:
        return
    service_network = network.service_network
    for obj in with_ip:
        if obj.value.cluster_ip not in service_network:
            message = f"outside the service network {service_network}"
            checks.report(obj, ("spec", "clusterIP"), message, str(obj.value.cluster_ip))


def check_namespaces_have_vnids(objects: Objects, plugin: Plugin, checks: Checks) -> None:
    """Under multitenant and networkpolicy every namespace in use needs a NetNamespace; one
    issue per namespace, at its first object."""
    if not plugin.supports_vnids or not checks.complete:
        return
    known = objects.names("NetNamespace")
    if {obj.namespace for obj in objects.all} - {""} <= known:
        return  # the usual case: every namespace in use has its NetNamespace
    for obj in objects.all:
        if obj.namespace and obj.namespace not in known and obj.value is not SKIPPED:
            known.add(obj.namespace)
            message = f'no NetNamespace "{obj.namespace}" ({plugin.value} needs one per namespace)'
            checks.report(obj, ("metadata", "namespace"), message)
