"""Every validation rule of `topology.load`, each asserting its full message.

A valid base cluster is split over five files in cluster/; a test replaces one of them or
adds extra.yaml (read after them: paths are sorted), so that the line numbers it asserts are
those of the YAML it wrote.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from topology.load import Issue, TopologyError, load_topology
from topology.model import Plugin, Topology

CLUSTER_NETWORK = """\
apiVersion: network.openshift.io/v1
kind: ClusterNetwork
metadata:
  name: default
clusterNetworks:
- CIDR: 10.128.0.0/14
  hostSubnetLength: 9
serviceNetwork: 172.30.0.0/16
pluginName: redhat/openshift-ovs-multitenant
"""

HOST_SUBNETS = """\
apiVersion: v1
kind: List
items:
- apiVersion: network.openshift.io/v1
  kind: HostSubnet
  metadata: {name: node1}
  host: node1
  hostIP: 192.168.1.1
  subnet: 10.128.0.0/23
- apiVersion: network.openshift.io/v1
  kind: HostSubnet
  metadata: {name: node2}
  host: node2
  hostIP: 192.168.1.2
  subnet: 10.128.2.0/23
"""

NET_NAMESPACES = """\
apiVersion: network.openshift.io/v1
kind: NetNamespace
metadata: {name: default}
netname: default
netid: 0
---
apiVersion: network.openshift.io/v1
kind: NetNamespace
metadata: {name: app}
netname: app
netid: 100
"""

PODS = """\
apiVersion: v1
kind: Pod
metadata:
  name: a
  namespace: app
  annotations: {osdn.dev/ofport: "3", osdn.dev/interface: veth-a}
spec: {nodeName: node1}
status: {podIP: 10.128.0.5}
"""

SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec:
  clusterIP: 172.30.0.10
  ports:
  - {port: 80}
"""

BASE = {
    "clusternetwork": CLUSTER_NETWORK,
    "hostsubnets": HOST_SUBNETS,
    "netnamespaces": NET_NAMESPACES,
    "pods": PODS,
    "services": SERVICES,
}


def write_cluster(tmp_path: Path, **files: str | None) -> Path:
    """The base cluster in tmp_path, with `files` (stem → YAML, None = left out) replacing
    or adding to it."""
    (tmp_path / "cluster").mkdir(exist_ok=True)
    for stem, text in {**BASE, **files}.items():
        if text is not None:
            (tmp_path / ("extra.yaml" if stem == "extra" else f"cluster/{stem}.yaml")).write_text(
                text
            )
    return tmp_path


def load(tmp_path: Path, plugin: Plugin | None = None, **files: str | None) -> Topology:
    return load_topology([write_cluster(tmp_path, **files)], plugin, cache=None)


def problems(tmp_path: Path, plugin: Plugin | None = None, **files: str | None) -> list[str]:
    """The issues' lines, with file names relative to tmp_path."""
    with pytest.raises(TopologyError) as caught:
        load(tmp_path, plugin, **files)
    return [str(issue).replace(f"{tmp_path}/", "") for issue in caught.value.issues]


def pod(name: str, ip: str, node: str = "node1", namespace: str = "app", **annotations: str) -> str:
    """One pod document (8 lines, or 7 without annotations)."""
    lines = ["apiVersion: v1", "kind: Pod", "metadata:", f"  name: {name}",
             f"  namespace: {namespace}"]  # fmt: skip
    if annotations:
        lines.append(
            "  annotations: {" + ", ".join(f'{k}: "{v}"' for k, v in annotations.items()) + "}"
        )
    lines += [f"spec: {{nodeName: {node}}}", f"status: {{podIP: {ip}}}"]
    return "\n".join(lines) + "\n"


def docs(*documents: str) -> str:
    return "---\n".join(documents)


def test_base_cluster_is_valid(tmp_path: Path) -> None:
    topology = load(tmp_path)
    assert [hs.host for hs in topology.host_subnets] == ["node1", "node2"]
    assert topology.vnid_of("app") == 100


# --- YAML ------------------------------------------------------------------------------------


def test_syntax_error_has_its_line_and_other_files_are_still_checked(tmp_path: Path) -> None:
    broken = "apiVersion: v1\nkind: Pod\nmetadata: {name: x\n"
    bad_service = SERVICES.replace("172.30.0.10", "172.30.0.300")
    assert problems(tmp_path, extra=broken, services=bad_service) == [
        'cluster/services.yaml:5: Service/app/web: spec.clusterIP: invalid IPv4 address ("172.30.0.300")',
        "extra.yaml:4: YAML syntax error: did not find expected ',' or '}' "
        "(while parsing a flow mapping at line 3)",
    ]


def test_syntax_error_suppresses_checks_for_missing_objects(tmp_path: Path) -> None:
    # The ClusterNetwork and node1 might be in the unreadable part: no "missing" errors.
    assert problems(tmp_path, clusternetwork="a: [", hostsubnets=None) == [
        "cluster/clusternetwork.yaml:2: YAML syntax error: did not find expected node content"
    ]


def test_duplicate_key(tmp_path: Path) -> None:
    text = PODS.replace("spec: {nodeName: node1}", "spec:\n  nodeName: node1\n  nodeName: node2")
    assert problems(tmp_path, pods=text) == [
        "cluster/pods.yaml:9: Pod/app/a: spec.nodeName: duplicate key (first at line 8)"
    ]


def test_duplicate_key_inside_a_list_item_names_the_item(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("  hostIP: 192.168.1.2\n", "  hostIP: 192.168.1.2\n  host: node2\n")
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:15: HostSubnet/node2: host: duplicate key (first at line 13)"
    ]


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert problems(tmp_path, extra="- a\n- b\n") == [
        "extra.yaml:1: a document must be a mapping, not a list"
    ]


def test_unsupported_yaml_features(tmp_path: Path) -> None:
    text = "base: &b {x: 1}\nother:\n  <<: *b\n  y: !custom 2\n"
    assert problems(tmp_path, extra=text) == [
        "extra.yaml:3: YAML merge keys (<<) are not supported",
        "extra.yaml:4: unsupported YAML tag !custom",
    ]


def test_document_without_kind_or_api_version(tmp_path: Path) -> None:
    text = "apiVersion: v1\nmetadata: {name: x}\n---\nkind: Pod\nmetadata: {name: y}\n"
    assert problems(tmp_path, extra=text) == [
        "extra.yaml:1: object/x: kind: required",
        "extra.yaml:4: Pod/y: apiVersion: required",
    ]


# --- types and required fields ---------------------------------------------------------------


def test_wrong_types(tmp_path: Path) -> None:
    cluster = CLUSTER_NETWORK.replace("hostSubnetLength: 9", 'hostSubnetLength: "9"')
    pods = PODS.replace("spec: {nodeName: node1}", "spec: [node1]")
    assert problems(tmp_path, clusternetwork=cluster, pods=pods) == [
        "cluster/clusternetwork.yaml:7: ClusterNetwork/default: clusterNetworks[0].hostSubnetLength: "
        'must be an integer, not a string ("9")',
        "cluster/pods.yaml:7: Pod/app/a: spec: must be a mapping, not a list",
    ]


def test_label_and_annotation_values_must_be_strings(tmp_path: Path) -> None:
    text = PODS.replace('osdn.dev/ofport: "3"', "osdn.dev/ofport: 3").replace(
        "  namespace: app\n", "  namespace: app\n  labels: {enabled: yes}\n"
    )
    assert problems(tmp_path, pods=text) == [
        "cluster/pods.yaml:6: Pod/app/a: metadata.labels.enabled: must be a string, not a boolean (True)",
        "cluster/pods.yaml:7: Pod/app/a: metadata.annotations[osdn.dev/ofport]: "
        "must be a string, not an integer (3)",
    ]


def test_missing_required_fields(tmp_path: Path) -> None:
    text = "apiVersion: network.openshift.io/v1\nkind: HostSubnet\nmetadata: {name: node3}\nhost: node3\n"
    assert problems(tmp_path, extra=text) == [
        "extra.yaml:1: HostSubnet/node3: hostIP: required",
        "extra.yaml:1: HostSubnet/node3: subnet: required",
    ]


def test_missing_name(tmp_path: Path) -> None:
    assert problems(tmp_path, extra="apiVersion: v1\nkind: Namespace\nmetadata: {}\n") == [
        "extra.yaml:3: Namespace: metadata.name: required"
    ]


# --- addresses -------------------------------------------------------------------------------


def test_bad_ip_and_cidr(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("192.168.1.2", "192.168.1.256").replace(
        "10.128.2.0/23", "10.128.2.0/33"
    )
    assert problems(tmp_path, hostsubnets=text) == [
        'cluster/hostsubnets.yaml:14: HostSubnet/node2: hostIP: invalid IPv4 address ("192.168.1.256")',
        'cluster/hostsubnets.yaml:15: HostSubnet/node2: subnet: invalid IPv4 CIDR ("10.128.2.0/33")',
    ]


def test_cidr_with_host_bits_set(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("10.128.2.0/23", "10.128.3.0/23")
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:15: HostSubnet/node2: subnet: host bits set; did you mean 10.128.2.0/23? "
        '("10.128.3.0/23")'
    ]


def test_host_subnets_overlapping(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("10.128.2.0/23", "10.128.0.0/23")
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:15: HostSubnet/node2: subnet: overlaps 10.128.0.0/23 of "
        'HostSubnet/node1 (cluster/hostsubnets.yaml:9) ("10.128.0.0/23")'
    ]


def test_host_subnet_outside_the_cluster_networks(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("10.128.2.0/23", "10.132.0.0/23")
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:15: HostSubnet/node2: subnet: outside every cluster network "
        '(10.128.0.0/14) ("10.132.0.0/23")'
    ]


def test_host_subnet_prefix_must_match_host_subnet_length(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("10.128.2.0/23", "10.128.2.0/24")
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:15: HostSubnet/node2: subnet: prefix length must be /23 "
        '(cluster network 10.128.0.0/14 has hostSubnetLength 9) ("10.128.2.0/24")'
    ]


def test_service_network_overlapping_a_cluster_network(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK.replace("172.30.0.0/16", "10.130.0.0/16")
    assert problems(tmp_path, clusternetwork=text, services=None) == [
        "cluster/clusternetwork.yaml:8: ClusterNetwork/default: serviceNetwork: overlaps the cluster "
        'network 10.128.0.0/14 ("10.130.0.0/16")'
    ]


def test_cluster_networks_overlapping_each_other(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK.replace(
        "  hostSubnetLength: 9\n",
        "  hostSubnetLength: 9\n- CIDR: 10.130.0.0/16\n  hostSubnetLength: 8\n",
    )
    assert problems(tmp_path, clusternetwork=text) == [
        "cluster/clusternetwork.yaml:8: ClusterNetwork/default: clusterNetworks[1].CIDR: overlaps the "
        'cluster network 10.128.0.0/14 ("10.130.0.0/16")'
    ]


def test_host_subnet_length_too_large(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK.replace("hostSubnetLength: 9", "hostSubnetLength: 19")
    assert problems(tmp_path, clusternetwork=text) == [
        "cluster/clusternetwork.yaml:7: ClusterNetwork/default: clusterNetworks[0].hostSubnetLength: "
        "must be between 2 and 18 for a /14 network (19)"
    ]


def test_legacy_fields_must_match_cluster_networks(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK + "network: 10.0.0.0/14\nhostsubnetlength: 9\n"
    assert problems(tmp_path, clusternetwork=text) == [
        "cluster/clusternetwork.yaml:10: ClusterNetwork/default: network: must equal "
        'clusterNetworks[0].CIDR (10.128.0.0/14) ("10.0.0.0/14")'
    ]


def test_no_cluster_network_at_all(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK.replace(
        "clusterNetworks:\n- CIDR: 10.128.0.0/14\n  hostSubnetLength: 9\n", ""
    )
    assert problems(tmp_path, clusternetwork=text) == [
        "cluster/clusternetwork.yaml:1: ClusterNetwork/default: clusterNetworks: "
        "required (or the legacy network and hostsubnetlength)"
    ]


# --- duplicates ------------------------------------------------------------------------------


def test_duplicate_host_ips(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("192.168.1.2", "192.168.1.1")
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:14: HostSubnet/node2: hostIP: already used by HostSubnet/node1 "
        '(cluster/hostsubnets.yaml:8) ("192.168.1.1")'
    ]


def test_duplicate_host(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("  host: node2", "  host: node1")
    assert problems(tmp_path, hostsubnets=text) == [
        'cluster/hostsubnets.yaml:13: HostSubnet/node2: host: must be the same as metadata.name: "node2" '
        '("node1")',
        "cluster/hostsubnets.yaml:13: HostSubnet/node2: host: already used by HostSubnet/node1 "
        '(cluster/hostsubnets.yaml:7) ("node1")',
    ]


def test_duplicate_pod_ips(tmp_path: Path) -> None:
    assert problems(tmp_path, extra=pod("b", "10.128.0.5")) == [
        'extra.yaml:7: Pod/app/b: status.podIP: already used by Pod/app/a (cluster/pods.yaml:8) ("10.128.0.5")'
    ]


def test_duplicate_objects(tmp_path: Path) -> None:
    assert problems(tmp_path, extra=pod("a", "10.128.0.9")) == [
        "extra.yaml:1: Pod/app/a: duplicate object (first at cluster/pods.yaml:1)"
    ]


def test_duplicate_cluster_ips(tmp_path: Path) -> None:
    text = SERVICES.replace("name: web", "name: web2")
    assert problems(tmp_path, extra=text) == [
        "extra.yaml:5: Service/app/web2: spec.clusterIP: already used by Service/app/web "
        '(cluster/services.yaml:5) ("172.30.0.10")'
    ]


def test_egress_ip_claimed_by_two_host_subnets(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace(
        "hostIP: 192.168.1.1", "hostIP: 192.168.1.1\n  egressIPs: [192.168.1.9]"
    )
    text = text.replace("hostIP: 192.168.1.2", "hostIP: 192.168.1.2\n  egressIPs: [192.168.1.9]")
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:16: HostSubnet/node2: egressIPs[0]: already used by HostSubnet/node1 "
        '(cluster/hostsubnets.yaml:9) ("192.168.1.9")'
    ]


def test_ofport_and_interface_unique_per_node(tmp_path: Path) -> None:
    same_node = pod("b", "10.128.0.6", **{"osdn.dev/ofport": "3", "osdn.dev/interface": "veth-a"})
    other_node = pod(
        "c", "10.128.2.6", "node2", **{"osdn.dev/ofport": "3", "osdn.dev/interface": "veth-a"}
    )
    assert problems(tmp_path, extra=docs(same_node, other_node)) == [
        "extra.yaml:6: Pod/app/b: metadata.annotations[osdn.dev/ofport]: already used by Pod/app/a "
        "(cluster/pods.yaml:6) (3)",
        "extra.yaml:6: Pod/app/b: metadata.annotations[osdn.dev/interface]: already used by "
        'Pod/app/a (cluster/pods.yaml:6) ("veth-a")',
    ]


def test_duplicate_datapath_ids(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace("metadata: {name: node2}",
                                "metadata: {name: node2, annotations: {osdn.dev/datapath-id: c0a80101}}")  # fmt: skip
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:12: HostSubnet/node2: metadata.annotations[osdn.dev/datapath-id]: "
        'already used by HostSubnet/node1 (cluster/hostsubnets.yaml:8) ("0x00000000c0a80101")'
    ]


# --- pods ------------------------------------------------------------------------------------


def test_pod_ip_outside_its_node_subnet(tmp_path: Path) -> None:
    assert problems(tmp_path, extra=pod("b", "10.128.2.9")) == [
        "extra.yaml:7: Pod/app/b: status.podIP: outside the subnet 10.128.0.0/23 of node node1 "
        '("10.128.2.9")'
    ]


@pytest.mark.parametrize(
    ("ip", "what"),
    [
        ("10.128.0.0", "the network address of node node1's subnet 10.128.0.0/23"),
        ("10.128.0.1", "node node1's gateway (tun0) address"),
        ("10.128.1.255", "the broadcast address of node node1's subnet 10.128.0.0/23"),
    ],
)
def test_pod_ip_reserved_in_its_subnet(tmp_path: Path, ip: str, what: str) -> None:
    assert problems(tmp_path, extra=pod("b", ip)) == [
        f'extra.yaml:7: Pod/app/b: status.podIP: {what} ("{ip}")'
    ]


def test_pod_on_unknown_node(tmp_path: Path) -> None:
    assert problems(tmp_path, extra=pod("b", "10.128.4.5", "node9")) == [
        'extra.yaml:6: Pod/app/b: spec.nodeName: unknown node: no HostSubnet has this host ("node9")'
    ]


@pytest.mark.parametrize(
    ("ofport", "message"),
    [
        ("1", "ofport 1 is vxlan0's"),
        ("2", "ofport 2 is tun0's"),
        ("0", "must be between 1 and 65279 (OVS's ofport range)"),
        ("65280", "must be between 1 and 65279 (OVS's ofport range)"),
        ("3a", "must be an integer"),
    ],
)
def test_bad_ofport(tmp_path: Path, ofport: str, message: str) -> None:
    assert problems(tmp_path, extra=pod("b", "10.128.0.6", **{"osdn.dev/ofport": ofport})) == [
        f'extra.yaml:6: Pod/app/b: metadata.annotations[osdn.dev/ofport]: {message} ("{ofport}")'
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("veth0123456789ab", "interface names are at most 15 characters"),
        ("veth/1", "an interface name must not contain '/', ':' or whitespace"),
        ("veth 1", "an interface name must not contain '/', ':' or whitespace"),
    ],
)
def test_bad_interface_name(tmp_path: Path, name: str, message: str) -> None:
    assert problems(tmp_path, extra=pod("b", "10.128.0.6", **{"osdn.dev/interface": name})) == [
        f'extra.yaml:6: Pod/app/b: metadata.annotations[osdn.dev/interface]: {message} ("{name}")'
    ]


def test_host_network_pods_and_pods_without_ip_are_not_checked(tmp_path: Path) -> None:
    host_network = pod("h", "192.168.1.1").replace(
        "{nodeName: node1}", "{nodeName: node1, hostNetwork: true}"
    )
    pending = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: app}\nspec: {}\n"
    topology = load(tmp_path, extra=docs(host_network, pending))
    assert [p.name for p in topology.pods] == ["a"]


# --- VNIDs and namespaces --------------------------------------------------------------------


@pytest.mark.parametrize("netid", [5, 1 << 24])
def test_vnid_out_of_range(tmp_path: Path, netid: int) -> None:
    text = NET_NAMESPACES.replace("netid: 100", f"netid: {netid}")
    assert problems(tmp_path, netnamespaces=text) == [
        f"cluster/netnamespaces.yaml:11: NetNamespace/app: netid: VNID must be 0 (global) or between 10 "
        f"and 16777215 ({netid})"
    ]


def test_netname_must_equal_name(tmp_path: Path) -> None:
    text = NET_NAMESPACES.replace("netname: app", "netname: ap")
    assert problems(tmp_path, netnamespaces=text) == [
        'cluster/netnamespaces.yaml:10: NetNamespace/app: netname: must be the same as metadata.name: "app" ("ap")'
    ]


def test_two_net_namespaces_may_share_a_netid(tmp_path: Path) -> None:
    joined = "apiVersion: network.openshift.io/v1\nkind: NetNamespace\nmetadata: {name: app2}\nnetname: app2\nnetid: 100\n"
    assert load(tmp_path, extra=joined).vnid_of("app2") == 100


def test_namespace_without_net_namespace(tmp_path: Path) -> None:
    extra = docs(
        pod("b", "10.128.0.6", namespace="other"), pod("c", "10.128.0.7", namespace="other")
    )
    assert problems(tmp_path, extra=extra) == [
        'extra.yaml:5: Pod/other/b: metadata.namespace: no NetNamespace "other" '
        "(redhat/openshift-ovs-multitenant needs one per namespace)"
    ]
    assert load(tmp_path, Plugin.SUBNET, extra=extra).vnid_of("other") == 0


def test_join_to_a_missing_namespace(tmp_path: Path) -> None:
    text = NET_NAMESPACES.replace(
        "metadata: {name: app}",
        "metadata:\n  name: app\n  annotations:\n    pod.network.openshift.io/multitenant.change-network: join:nope",
    )
    assert problems(tmp_path, netnamespaces=text) == [
        "cluster/netnamespaces.yaml:12: NetNamespace/app: "
        "metadata.annotations[pod.network.openshift.io/multitenant.change-network]: "
        'join target NetNamespace "nope" does not exist ("join:nope")'
    ]


def test_default_cannot_be_isolated(tmp_path: Path) -> None:
    text = NET_NAMESPACES.replace(
        "metadata: {name: default}",
        "metadata: {name: default, annotations: "
        "{pod.network.openshift.io/multitenant.change-network: isolate}}",
    )
    assert problems(tmp_path, netnamespaces=text) == [
        "cluster/netnamespaces.yaml:3: NetNamespace/default: "
        "metadata.annotations[pod.network.openshift.io/multitenant.change-network]: "
        'namespace "default" cannot be isolated ("isolate")'
    ]


def test_fixed_vnid_host_annotation_in_range(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace(
        "metadata: {name: node2}",
        "metadata: {name: node2, annotations: {pod.network.openshift.io/fixed-vnid-host: '7'}}",
    )
    assert problems(tmp_path, hostsubnets=text) == [
        "cluster/hostsubnets.yaml:12: HostSubnet/node2: metadata.annotations[pod.network.openshift.io/fixed-vnid-host]: "
        'VNID must be 0 (global) or between 10 and 16777215 ("7")'
    ]


# --- ClusterNetwork settings -----------------------------------------------------------------


@pytest.mark.parametrize("port", [0, 65536])
def test_vxlan_port_out_of_range(tmp_path: Path, port: int) -> None:
    text = CLUSTER_NETWORK + f"vxlanPort: {port}\n"
    assert problems(tmp_path, clusternetwork=text) == [
        f"cluster/clusternetwork.yaml:10: ClusterNetwork/default: vxlanPort: must be between 1 and 65535 ({port})"
    ]


@pytest.mark.parametrize(
    ("mtu", "why"),
    [
        (575, "must be at least 576, the datagram size every IPv4 host must accept (RFC 791)"),
        (9001, "must be at most 9000, the largest jumbo frame common NICs carry"),
    ],
)
def test_mtu_out_of_range(tmp_path: Path, mtu: int, why: str) -> None:
    text = CLUSTER_NETWORK + f"mtu: {mtu}\n"
    assert problems(tmp_path, clusternetwork=text) == [
        f"cluster/clusternetwork.yaml:10: ClusterNetwork/default: mtu: {why} ({mtu})"
    ]


def test_unknown_plugin(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK.replace("ovs-multitenant", "ovs-multi")
    assert problems(tmp_path, clusternetwork=text) == [
        "cluster/clusternetwork.yaml:9: ClusterNetwork/default: pluginName: unknown plugin; must be one of "
        "redhat/openshift-ovs-subnet, redhat/openshift-ovs-multitenant, "
        'redhat/openshift-ovs-networkpolicy ("redhat/openshift-ovs-multi")'
    ]


def test_plugin_override_makes_an_unknown_plugin_name_irrelevant(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK.replace("ovs-multitenant", "ovs-multi")
    assert (
        load(tmp_path, Plugin.SUBNET, clusternetwork=text).cluster_network.plugin is Plugin.SUBNET
    )


def test_missing_cluster_network(tmp_path: Path) -> None:
    assert problems(tmp_path, clusternetwork=None) == [
        f"{tmp_path}: no ClusterNetwork (exactly one is needed)"]


def test_second_cluster_network(tmp_path: Path) -> None:
    text = CLUSTER_NETWORK.replace("name: default", "name: other")
    assert problems(tmp_path, extra=text) == [
        "extra.yaml:1: ClusterNetwork/other: a second ClusterNetwork (first at "
        "cluster/clusternetwork.yaml:1); exactly one is allowed",
        "extra.yaml:4: ClusterNetwork/other: metadata.name: the SDN reads only the ClusterNetwork "
        'named "default" ("other")',
    ]


# --- services --------------------------------------------------------------------------------


def test_cluster_ip_outside_the_service_network(tmp_path: Path) -> None:
    text = SERVICES.replace("172.30.0.10", "172.31.0.10")
    assert problems(tmp_path, services=text) == [
        "cluster/services.yaml:5: Service/app/web: spec.clusterIP: outside the service network 172.30.0.0/16 "
        '("172.31.0.10")'
    ]


def test_service_port_and_protocol(tmp_path: Path) -> None:
    text = SERVICES.replace(
        "  - {port: 80}", "  - {port: 80}\n  - {port: 0}\n  - {port: 53, protocol: ICMP}"
    )
    assert problems(tmp_path, services=text) == [
        "cluster/services.yaml:8: Service/app/web: spec.ports[1].port: must be between 1 and 65535 (0)",
        'cluster/services.yaml:9: Service/app/web: spec.ports[2].protocol: must be TCP or UDP or SCTP ("ICMP")',
    ]


def test_headless_services_have_no_cluster_ip(tmp_path: Path) -> None:
    text = docs(
        SERVICES.replace("172.30.0.10", "None"),
        SERVICES.replace("web", "w2").replace("  clusterIP: 172.30.0.10\n", ""),
    )
    assert [s.cluster_ip for s in load(tmp_path, services=text).services] == [None, None]


# --- policies --------------------------------------------------------------------------------

ENP = """\
apiVersion: network.openshift.io/v1
kind: EgressNetworkPolicy
metadata: {name: fw, namespace: app}
spec:
  egress:
  - {type: Allow, to: {cidrSelector: 10.0.0.0/8, dnsName: example.com}}
  - {type: Deny, to: {}}
  - {type: Reject, to: {dnsName: Example_com}}
"""


def test_egress_network_policy_rules(tmp_path: Path) -> None:
    assert problems(tmp_path, extra=ENP) == [
        "extra.yaml:6: EgressNetworkPolicy/app/fw: spec.egress[0].to: either specify "
        "cidrSelector or dnsName but not both",
        "extra.yaml:7: EgressNetworkPolicy/app/fw: spec.egress[1].to: must specify cidrSelector or dnsName",
        'extra.yaml:8: EgressNetworkPolicy/app/fw: spec.egress[2].type: must be Allow or Deny ("Reject")',
        "extra.yaml:8: EgressNetworkPolicy/app/fw: spec.egress[2].to.dnsName: must conform to DNS 952 "
        'subdomain conventions ("Example_com")',
    ]


def test_egress_network_policy_rule_limit(tmp_path: Path) -> None:
    rules = "".join(
        f"  - {{type: Allow, to: {{cidrSelector: 10.0.{i}.0/24}}}}\n" for i in range(51)
    )
    text = ENP[: ENP.index("  egress:")] + "  egress:\n" + rules
    assert problems(tmp_path, extra=text) == [
        "extra.yaml:5: EgressNetworkPolicy/app/fw: spec.egress: too many egress rules (max 50) (51)"
    ]


def test_network_policy_errors(tmp_path: Path) -> None:
    text = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: app}
spec:
  podSelector:
    matchExpressions:
    - {key: app, operator: In}
    - {key: app, operator: Exists, values: [x]}
    - {key: app, operator: Near, values: [x]}
  ingress:
  - from:
    - {ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}
    - {}
    ports:
    - {protocol: ICMP, port: 1}
    - {port: 70000}
"""
    prefix = "extra.yaml:{}: NetworkPolicy/app/np: spec."
    assert problems(tmp_path, extra=text) == [
        prefix.format(7)
        + "podSelector.matchExpressions[0].values: must be non-empty for operator In",
        prefix.format(8)
        + "podSelector.matchExpressions[1].values: must be empty for operator Exists",
        prefix.format(9) + "podSelector.matchExpressions[2].operator: "
        'must be In or NotIn or Exists or DoesNotExist ("Near")',
        prefix.format(12)
        + "ingress[0].from[0].ipBlock: cannot be combined with podSelector or namespaceSelector",
        prefix.format(13)
        + "ingress[0].from[1]: must specify podSelector, namespaceSelector or ipBlock",
        prefix.format(15) + 'ingress[0].ports[0].protocol: must be TCP or UDP or SCTP ("ICMP")',
        prefix.format(16) + "ingress[0].ports[1].port: must be between 1 and 65535 (70000)",
    ]


def test_network_policy_needs_a_pod_selector(tmp_path: Path) -> None:
    text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: app}\nspec: {}\n"
    assert problems(tmp_path, extra=text) == [
        "extra.yaml:4: NetworkPolicy/app/np: spec.podSelector: required"
    ]


# --- datapath ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dpid", "message"),
    [
        ("xyz", "must be a hexadecimal datapath id"),
        ("0", "must be between 0x1 and 0xffffffffffffffff"),
        ("10000000000000000", "must be between 0x1 and 0xffffffffffffffff"),
    ],
)
def test_bad_datapath_id(tmp_path: Path, dpid: str, message: str) -> None:
    text = HOST_SUBNETS.replace(
        "metadata: {name: node2}",
        f"metadata: {{name: node2, annotations: {{osdn.dev/datapath-id: '{dpid}'}}}}",
    )
    assert problems(tmp_path, hostsubnets=text) == [
        f'cluster/hostsubnets.yaml:12: HostSubnet/node2: metadata.annotations[osdn.dev/datapath-id]: {message} ("{dpid}")'
    ]


@pytest.mark.parametrize(
    ("mac", "message"),
    [
        ("0a:58:0a:80:00", "must be a MAC address written as six hex pairs, e.g. 0a:58:0a:80:00:01"),
        ("01:00:5e:00:00:01", "must be a unicast MAC address (the first octet's low bit clear)"),
    ],
)
def test_bad_tun0_mac(tmp_path: Path, mac: str, message: str) -> None:
    text = HOST_SUBNETS.replace(
        "metadata: {name: node2}",
        f"metadata: {{name: node2, annotations: {{osdn.dev/tun0-mac: '{mac}'}}}}",
    )
    assert problems(tmp_path, hostsubnets=text) == [
        f'cluster/hostsubnets.yaml:12: HostSubnet/node2: metadata.annotations[osdn.dev/tun0-mac]: {message} ("{mac}")'
    ]


def test_tun0_mac_annotation_is_read_in_lower_case(tmp_path: Path) -> None:
    text = HOST_SUBNETS.replace(
        "metadata: {name: node2}",
        "metadata: {name: node2, annotations: {osdn.dev/tun0-mac: '6E:1F:00:AA:BB:CC'}}",
    )
    node2 = load(tmp_path, hostsubnets=text).host_subnet("node2")
    assert node2 is not None and node2.tun0_mac == "6e:1f:00:aa:bb:cc"
    node1 = load(tmp_path, hostsubnets=text).host_subnet("node1")
    assert node1 is not None and node1.tun0_mac == "0a:58:" + ":".join(
        f"{b:02x}" for b in node1.gateway.packed)


# --- everything at once ----------------------------------------------------------------------

MANY_ERRORS = """\
apiVersion: v1
kind: List
items:
- apiVersion: network.openshift.io/v1
  kind: HostSubnet
  metadata: {name: node3}
  host: node3
  hostIP: 192.168.1.1
  subnet: 10.128.4.0/24
- apiVersion: v1
  kind: Pod
  metadata:
    name: b
    namespace: app
    annotations:
      osdn.dev/ofport: "2"
  spec:
    nodeName: node3
    nodeName: node2
  status: {podIP: 10.128.2.1}
- apiVersion: v1
  kind: Service
  metadata: {name: s, namespace: app}
  spec:
    clusterIP: 10.0.0.1
    ports: [{port: http}]
- apiVersion: network.openshift.io/v1
  kind: NetNamespace
  metadata: {name: app}
  netname: app
  netid: 3
"""


def test_many_errors_are_reported_together_with_their_lines(tmp_path: Path) -> None:
    cluster = CLUSTER_NETWORK + "mtu: 100\n"
    assert problems(tmp_path, clusternetwork=cluster, extra=MANY_ERRORS) == [
        "cluster/clusternetwork.yaml:10: ClusterNetwork/default: mtu: must be at least 576, the datagram "
        "size every IPv4 host must accept (RFC 791) (100)",
        'extra.yaml:8: HostSubnet/node3: hostIP: already used by HostSubnet/node1 (cluster/hostsubnets.yaml:8) ("192.168.1.1")',
        "extra.yaml:9: HostSubnet/node3: subnet: prefix length must be /23 (cluster network "
        '10.128.0.0/14 has hostSubnetLength 9) ("10.128.4.0/24")',
        'extra.yaml:16: Pod/app/b: metadata.annotations[osdn.dev/ofport]: ofport 2 is tun0\'s ("2")',
        "extra.yaml:19: Pod/app/b: spec.nodeName: duplicate key (first at line 18)",
        'extra.yaml:20: Pod/app/b: status.podIP: outside the subnet 10.128.4.0/24 of node node3 ("10.128.2.1")',
        'extra.yaml:25: Service/app/s: spec.clusterIP: outside the service network 172.30.0.0/16 ("10.0.0.1")',
        'extra.yaml:26: Service/app/s: spec.ports[0].port: must be an integer, not a string ("http")',
        "extra.yaml:27: NetNamespace/app: duplicate object (first at cluster/netnamespaces.yaml:7)",
        "extra.yaml:31: NetNamespace/app: netid: VNID must be 0 (global) or between 10 and 16777215 (3)",
    ]


def test_issue_format_omits_empty_parts() -> None:
    assert (
        str(Issue("f.yaml", 3, "Pod/ns/p", "spec.x", "bad", 5))
        == "f.yaml:3: Pod/ns/p: spec.x: bad (5)"
    )
    assert str(Issue("f.yaml", 0, message="cannot read: Permission denied")) == (
        "f.yaml: cannot read: Permission denied"
    )
