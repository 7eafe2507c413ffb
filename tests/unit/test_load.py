"""Reading topology YAML: files and directories, streams and Lists, defaults, the example
clusters, caching.  (The validation rules are in test_validate.py.)"""

from __future__ import annotations

import os
import uuid
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from topology.errors import OsdnError
from topology.load import (
    FileCache,
    FileList,
    TopologyError,
    YamlList,
    YamlMap,
    list_files,
    load_topology,
    parse_file,
    read_documents,
)
from topology.model import (
    EgressRule,
    LabelRequirement,
    LabelSelector,
    Origin,
    Plugin,
    PolicyPeer,
    PolicyPort,
    ServicePort,
    UnknownNamespace,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = EXAMPLES / "seed-cluster"
RICH = EXAMPLES / "rich-cluster"

CLUSTER = """\
apiVersion: network.openshift.io/v1
kind: ClusterNetwork
metadata: {name: default}
network: 10.128.0.0/14
hostsubnetlength: 9
serviceNetwork: 172.30.0.0/16
pluginName: redhat/openshift-ovs-subnet
"""

NODE = """\
apiVersion: network.openshift.io/v1
kind: HostSubnet
metadata: {name: n1}
host: n1
hostIP: 192.168.1.1
subnet: 10.128.0.0/23
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- the example clusters --------------------------------------------------------------------


@pytest.mark.skipif(not SEED.is_dir(), reason="examples/seed-cluster not written yet")
def test_seed_cluster_matches_the_reference_facts() -> None:
    """Values of the article's cluster (examples/README.md, "Cluster")."""
    t = load_topology([SEED])
    cn = t.cluster_network
    assert cn.plugin is Plugin.MULTITENANT
    assert [(e.cidr, e.host_subnet_length) for e in cn.networks] == [
        (IPv4Network("10.128.0.0/14"), 9)
    ]
    assert (cn.service_network, cn.vxlan_port, cn.mtu) == (IPv4Network("172.30.0.0/16"), 4789, 1450)
    nodes = {hs.host: (str(hs.host_ip), str(hs.subnet), str(hs.gateway)) for hs in t.host_subnets}
    assert nodes == {
        "master.ocp.cn": ("192.168.108.110", "10.128.0.0/23", "10.128.0.1"),
        "node1.ocp.cn": ("192.168.108.111", "10.131.0.0/23", "10.131.0.1"),
        "node2.ocp.cn": ("192.168.108.112", "10.130.0.0/23", "10.130.0.1"),
        "infra.ocp.cn": ("192.168.108.113", "10.129.0.0/23", "10.129.0.1"),
    }
    assert t.host_subnet("infra.ocp.cn").egress_ips == (IPv4Address("192.168.108.200"),)  # type: ignore[union-attr]
    assert {ns.name: ns.netid for ns in t.net_namespaces} == {
        "default": 0,
        "kube-public": 0x82F8B2,
        "kube-system": 272037,
        "management-infra": 2347918,
    }
    kube_public = next(ns for ns in t.net_namespaces if ns.name == "kube-public")
    assert kube_public.egress_ips == (IPv4Address("192.168.108.200"),)
    pods = {(p.namespace, p.node, str(p.ip), p.ofport) for p in t.pods}
    assert pods == {
        ("default", "node2.ocp.cn", "10.130.0.5", 3),
        ("default", "node2.ocp.cn", "10.130.0.6", 4),
        ("default", "node1.ocp.cn", "10.131.0.4", 3),
        ("kube-public", "master.ocp.cn", "10.128.0.56", 4),
    }
    by_ip = {str(p.ip): p for p in t.pods}
    assert by_ip["10.130.0.5"].name == "web-76c94f7546-t8pfq"
    assert by_ip["10.130.0.6"].name.startswith("tomcat-nginx-6cf8c89cd7")  # the article cuts it
    assert by_ip["10.131.0.4"].name == "tomcat-7f646bb995-b8bhr"
    assert by_ip["10.128.0.56"].name == "tomcat-nginx-6cf8c89cd7-6hhmf"
    assert (by_ip["10.130.0.5"].interface, by_ip["10.130.0.6"].interface) == (
        "veth92727375", "vethd83c05d3",
    )  # fmt: skip
    [service] = t.services
    assert (service.namespace, service.name, str(service.cluster_ip)) == (
        "default", "tomcat-service", "172.30.161.148",
    )  # fmt: skip
    assert service.ports == (ServicePort("TCP", 8080, service.ports[0].name),)
    assert t.warnings == ()


@pytest.mark.skipif(not SEED.is_dir(), reason="examples/seed-cluster not written yet")
@pytest.mark.parametrize("plugin", list(Plugin))
def test_seed_cluster_renders_under_every_plugin(plugin: Plugin) -> None:
    t = load_topology([SEED], plugin)
    assert t.cluster_network.plugin is plugin
    expected = 0 if plugin is Plugin.SUBNET else 0x82F8B2
    assert t.vnid_of("kube-public") == expected


def test_vnid_of_an_unknown_namespace() -> None:
    t = load_topology([SEED], cache=None)
    with pytest.raises(UnknownNamespace, match="no NetNamespace 'nope'") as caught:
        t.vnid_of("nope")
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, OsdnError)
    assert load_topology([SEED], Plugin.SUBNET, cache=None).vnid_of("nope") == 0

@pytest.mark.skipif(not RICH.is_dir(), reason="examples/rich-cluster not written yet")
def test_rich_cluster_loads() -> None:
    t = load_topology([RICH])
    cn = t.cluster_network
    assert (str(cn.networks[0].cidr), cn.vxlan_port, cn.mtu) == ("10.64.0.0/16", 4790, 1400)
    assert t.host_subnet("node-b").datapath_id == 0xB0B  # type: ignore[union-attr]
    assert t.vnid_of("analytics") == t.vnid_of("backend") == 0xC3A0D8
    db = next(ns for ns in t.net_namespaces if ns.name == "db")
    assert db.netid_source == "allocated" and 10 <= db.netid < 1 << 24
    assert len(t.pods) == 16 and len(t.services) == 10
    frontend = next(ns for ns in t.net_namespaces if ns.name == "frontend")
    assert frontend.multicast_enabled


# --- files, directories, documents -----------------------------------------------------------


def test_directories_are_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path, "b/node.yml", NODE)
    write(tmp_path, "a/cluster.yaml", CLUSTER)
    write(tmp_path, "b/notes.txt", "not: yaml: at all: [")
    write(
        tmp_path,
        "z.yaml",
        NODE.replace("n1", "n2").replace(".1.1", ".1.2").replace("0.0/23", "2.0/23"),
    )
    t = load_topology([tmp_path], cache=None)
    assert [(hs.host, hs.origin) for hs in t.host_subnets] == [
        ("n1", Origin(f"{tmp_path}/b/node.yml", 1)),
        ("n2", Origin(f"{tmp_path}/z.yaml", 1)),
    ]


def test_list_files_names_what_a_load_reads(tmp_path: Path) -> None:
    write(tmp_path, "d/b.yml", NODE)
    write(tmp_path, "d/a/c.yaml", CLUSTER)
    write(tmp_path, "d/notes.txt", "not read")
    single = write(tmp_path, "single.txt", CLUSTER)  # a file named as given is read
    listing = list_files([tmp_path / "d", str(single), tmp_path / "nope"])
    assert listing == FileList(
        [f"{tmp_path}/d/a/c.yaml", f"{tmp_path}/d/b.yml", str(single)], [f"{tmp_path}/nope"],
        []
    )

def test_multi_document_streams_lists_and_empty_documents(tmp_path: Path) -> None:
    nested_list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n"
    nested_list += "".join(
        "  " + line + "\n" for line in ("- " + NODE.replace("\n", "\n  ")).splitlines()
    )
    path = write(tmp_path, "all.yaml", "---\n" + CLUSTER + "---\n" + nested_list + "---\n")
    t = load_topology([path], cache=None)
    assert [hs.host for hs in t.host_subnets] == ["n1"]
    assert t.host_subnets[0].origin == Origin(str(path), 16)


def test_other_kinds_and_api_versions_are_ignored(tmp_path: Path) -> None:
    other = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: app}\n---\n"
        "apiVersion: v1\nkind: HostSubnet\nmetadata: {name: old}\n---\n"
        "note: kept beside the objects\n"
    )
    path = write(tmp_path, "other.yaml", other)
    t = load_topology([write(tmp_path, "c.yaml", CLUSTER), path], cache=None)
    assert t.ignored == (
        f"Deployment/app/d ({path}:1)",
        f"HostSubnet/old ({path}:5)",
        f"a document without apiVersion and kind ({path}:9)",
    )


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology([tmp_path / "nope.yaml"], cache=None)
    assert str(caught.value) == f"{tmp_path}/nope.yaml: no such file or directory"


def test_topology_error_lists_every_issue_one_per_line(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as caught:
        load_topology([write(tmp_path, "n.yaml", NODE.replace("192.168.1.1", "x"))], cache=None)
    assert str(caught.value).splitlines() == [str(issue) for issue in caught.value.issues]
    assert len(caught.value.issues) == 2  # the bad hostIP, and no ClusterNetwork


def test_yaml_keeps_lines_of_mappings_keys_and_items(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "a: 1\nb:\n  c: [x,\n      y]\n  d: 0x10\n")
    [document], issues, complete = read_documents(str(path))
    data = document.data
    assert issues == [] and complete
    assert isinstance(data, YamlMap) and data.line == 1 and data.key_lines == {"a": 1, "b": 2}
    assert data["b"].key_lines == {"c": 3, "d": 5} and data["b"]["d"] == 16
    items = data["b"]["c"]
    assert isinstance(items, YamlList) and items == ["x", "y"] and items.item_lines == [3, 4]


def test_yaml_1_1_scalars_and_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "a: yes\nb: ~\nc: 2019-03-04T02:13:13Z\nd: '010'\ne: 1.5\n")
    [document], _, _ = read_documents(str(path))
    assert dict(document.data) == {
        "a": True,
        "b": None,
        "c": "2019-03-04T02:13:13Z",
        "d": "010",
        "e": 1.5,
    }


# --- defaults --------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: n1}\n"
           "status: {podIP: 10.128.0.9}\n")
    service = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
               "spec: {clusterIP: 172.30.0.1, ports: [{port: 53}]}\n")
    path = write(tmp_path, "all.yaml", "---\n".join([CLUSTER, NODE, pod, service]))
    t = load_topology([path], cache=None)
    cn = t.cluster_network
    assert (cn.vxlan_port, cn.mtu, cn.networks[0].host_subnet_length) == (4789, 1450, 9)
    [p] = t.pods
    assert (p.namespace, p.interface, p.ofport) == ("default", None, None)
    assert p.uid == str(uuid.uuid5(uuid.NAMESPACE_URL, "Pod/default/p"))
    assert t.host_subnets[0].datapath_id == int(IPv4Address("192.168.1.1"))
    assert t.services[0].ports == (ServicePort("TCP", 53, ""),)


def test_network_policy_fields(tmp_path: Path) -> None:
    policy = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: default}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - podSelector: {matchExpressions: [{key: role, operator: In, values: [api]}]}
    - namespaceSelector: {}
    - ipBlock: {cidr: 10.0.0.0/8}
    ports: [{port: 5432}, {protocol: UDP, port: dns}, {}]
  egress: [{}]
"""
    t = load_topology([write(tmp_path, "all.yaml", CLUSTER + "---\n" + policy)], cache=None)
    [np] = t.network_policies
    assert np.pod_selector == LabelSelector((("app", "db"),))
    assert np.policy_types == ("Ingress", "Egress")
    [rule] = np.ingress
    assert rule.peers == (
        PolicyPeer(pod_selector=LabelSelector((), (LabelRequirement("role", "In", ("api",)),))),
        PolicyPeer(namespace_selector=LabelSelector()),
        PolicyPeer(ip_block="10.0.0.0/8"),
    )
    assert rule.ports == (
        PolicyPort("TCP", 5432),
        PolicyPort("UDP", "dns"),
        PolicyPort("TCP", None),
    )


def test_egress_network_policy_and_multicast(tmp_path: Path) -> None:
    objects = """\
apiVersion: network.openshift.io/v1
kind: EgressNetworkPolicy
metadata: {name: fw, namespace: default}
spec:
  egress:
  - {type: Allow, to: {dnsName: example.com}}
  - {type: Deny, to: {cidrSelector: 0.0.0.0/0}}
---
apiVersion: network.openshift.io/v1
kind: NetNamespace
metadata:
  name: default
  annotations: {netnamespace.network.openshift.io/multicast-enabled: "true"}
netname: default
netid: 0
"""
    t = load_topology([write(tmp_path, "all.yaml", CLUSTER + "---\n" + objects)], cache=None)
    assert t.egress_network_policies[0].rules == (
        EgressRule("Allow", dns_name="example.com"),
        EgressRule("Deny", cidr=IPv4Network("0.0.0.0/0")),
    )
    assert t.net_namespaces[0].multicast_enabled


# --- caching ---------------------------------------------------------------------------------


def test_cache_rereads_only_changed_files(tmp_path: Path) -> None:
    cluster = write(tmp_path, "cluster.yaml", CLUSTER)
    node = write(tmp_path, "node.yaml", NODE)
    cache = FileCache()
    first = load_topology([tmp_path], cache=cache)
    second = load_topology([tmp_path], cache=cache)
    assert second.host_subnets[0] is first.host_subnets[0]  # the cached object itself
    node.write_text(NODE.replace("192.168.1.1", "192.168.1.7"))
    os.utime(node, ns=(0, os.stat(cluster).st_mtime_ns + 1))
    third = load_topology([tmp_path], cache=cache)
    assert third.host_subnets[0].host_ip == IPv4Address("192.168.1.7")
    assert third.cluster_network == first.cluster_network and len(cache) == 2


def test_cache_keeps_a_files_issues(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "a: [")
    cache = FileCache()
    assert cache.parsed(str(path)) is cache.parsed(str(path))
    assert not cache.parsed(str(path)).complete
    assert parse_file(str(path)).issues == cache.parsed(str(path)).issues


def test_warnings_for_what_3_11_accepts_but_will_not_use(tmp_path: Path) -> None:
    def netns(name: str, netid: int, egress: str = "[]") -> str:
        return (
            f"apiVersion: network.openshift.io/v1\nkind: NetNamespace\nmetadata: {{name: {name}}}\n"
            f"netname: {name}\nnetid: {netid}\negressIPs: {egress}\n"
        )

    enp = (
        "apiVersion: network.openshift.io/v1\nkind: EgressNetworkPolicy\n"
        "metadata: {{name: {name}, namespace: {namespace}}}\n"
        "spec: {{egress: [{{type: Deny, to: {{cidrSelector: 0.0.0.0/0}}}}]}}\n"
    )
    empty_enp = enp.replace("[{{type: Deny, to: {{cidrSelector: 0.0.0.0/0}}}}]", "[]")
    objects = [
        CLUSTER.replace("ovs-subnet", "ovs-multitenant"),
        netns("default", 0),
        netns("a", 11, "[10.0.0.1]"),
        netns("b", 11, "[10.0.0.1]"),
        netns("d", 13, "[10.0.0.1]"),
        netns("e", 14, "[10.0.0.2]"),
        netns("f", 14),
        enp.format(name="x", namespace="a"),
        enp.format(name="y", namespace="a"),
        enp.format(name="z", namespace="default"),
        empty_enp.format(name="empty", namespace="c"),  # with a's two: still two, not three
        empty_enp.format(name="w", namespace="a"),
        netns("c", 12),
    ]
    t = load_topology([write(tmp_path, "all.yaml", "---\n".join(objects))], cache=None)
    assert t.warnings == (
        "NetNamespace/a: shares VNID 11 with NetNamespace/b; 3.11 keeps one egress-IP list per "
        "VNID and uses b's (the last by name), not a's",
        "NetNamespace/a: egress IP 10.0.0.1 is on no HostSubnet",
        "NetNamespace/b: egress IP 10.0.0.1 is on no HostSubnet",
        "NetNamespace/b: egress IP 10.0.0.1 is claimed by 2 VNIDs; 3.11 uses it for none of them",
        "NetNamespace/d: egress IP 10.0.0.1 is on no HostSubnet",
        "NetNamespace/d: egress IP 10.0.0.1 is claimed by 2 VNIDs; 3.11 uses it for none of them",
        "NetNamespace/e: shares VNID 14 with NetNamespace/f; 3.11 keeps one egress-IP list per "
        "VNID and uses f's (the last by name), not e's; f lists none, so the VNID has none",
        "NetNamespace/e: egress IP 10.0.0.2 is on no HostSubnet",
        "EgressNetworkPolicy/c/empty has no egress rules; 3.11 ignores it",
        "EgressNetworkPolicy/a/w has no egress rules; 3.11 ignores it",
        'namespace "a" has 2 EgressNetworkPolicies; 3.11 then drops all its external traffic',
        'namespace "a" shares VNID 11 with other namespaces; 3.11 then drops all external traffic '
        "of that VNID",
        'namespace "default" is global (VNID 0); 3.11 ignores its EgressNetworkPolicy',
    )


def test_egress_ip_on_a_fixed_vnid_host_is_named() -> None:
    from tests.support.builders import netns, node
    from topology.load.resolve import egress_ip_warnings
    f5 = node("f5", "192.168.1.9", "10.128.4.0/23", ("192.168.1.200",), fixed_vnid=77)
    assert egress_ip_warnings([netns("a", 20, ("192.168.1.200",))], [f5]) == [
        "HostSubnet/f5: a fixed-VNID host (77) with egress IPs; 3.11 tunnels egress-IP traffic "
        "to it with the pod's VNID, not the fixed one"]


def test_named_container_ports_are_read(tmp_path) -> None:
    from topology.load import load_topology
    from topology.model import ContainerPort
    topology = load_topology([Path(__file__).resolve().parents[2] / "examples" / "rich-cluster"])
    web = next(p for p in topology.pods if p.key.startswith("frontend/web-"))
    assert ContainerPort("http", 8080, "TCP") in web.container_ports
    assert web.named_port("http", "TCP") == 8080 and web.named_port("http", "UDP") is None


def test_host_ip_inside_the_cluster_or_service_network_is_named(tmp_path: Path) -> None:
    # 3.11 ValidateNodeIP: other nodes ignore such a HostSubnet, its own node does not start
    pod_network = NODE.replace("n1", "n2").replace("192.168.1.1", "10.131.0.9") \
        .replace("10.128.0.0/23", "10.128.2.0/23")
    service = NODE.replace("n1", "n3").replace("192.168.1.1", "172.30.0.7") \
        .replace("10.128.0.0/23", "10.128.4.0/23")
    path = write(tmp_path, "all.yaml", "---\n".join([CLUSTER, NODE, pod_network, service]))
    t = load_topology([path], cache=None)
    assert t.warnings == (
        f"HostSubnet/n2 ({path}:16): hostIP 10.131.0.9 lies inside the cluster network "
        "10.128.0.0/14; 3.11's nodes ignore this HostSubnet (no VXLAN, ARP or multicast flows "
        "to it) and its own node does not start",
        f"HostSubnet/n3 ({path}:23): hostIP 172.30.0.7 lies inside the service network "
        "172.30.0.0/16; 3.11's nodes ignore this HostSubnet (no VXLAN, ARP or multicast flows "
        "to it) and its own node does not start",
    )


def test_namespaces_sharing_a_vnid_under_networkpolicy_are_named(tmp_path: Path) -> None:
    def netns(name: str, netid: int) -> str:
        return (f"apiVersion: network.openshift.io/v1\nkind: NetNamespace\n"
                f"metadata: {{name: {name}}}\nnetname: {name}\nnetid: {netid}\n")

    objects = [CLUSTER.replace("ovs-subnet", "ovs-networkpolicy"), netns("default", 0),
               netns("infra", 0), netns("a", 11), netns("b", 11), netns("c", 12)]
    t = load_topology([write(tmp_path, "all.yaml", "---\n".join(objects))], cache=None)
    shared = ("keeps one NetworkPolicy state per VNID: a policy in any of them (a deny-all, an "
              "unsupported one) isolates the pods of all of them")
    assert t.warnings == (
        f"namespaces default, infra share VNID 0; 3.11's ovs-networkpolicy {shared}",
        f"namespaces a, b share VNID 11; 3.11's ovs-networkpolicy {shared}",
    )
