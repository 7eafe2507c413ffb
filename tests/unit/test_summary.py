"""`summarize`: the text of ``osdn check``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.builders import seed
from topology.load import load_topology
from topology.model import Plugin
from topology.summary import summarize, table

RICH = Path(__file__).resolve().parents[2] / "examples" / "rich-cluster"


def section(text: str, title: str) -> list[str]:
    """The lines of the section whose title starts with `title`, up to the blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def test_table_aligns_columns() -> None:
    assert table(("A", "LONGER"), [("xyz", 1), ("q", 22)]) == [
        "A    LONGER",
        "xyz  1",
        "q    22",
    ]


def test_overview_and_nodes() -> None:
    text = summarize(seed())
    assert text.splitlines()[:5] == [
        "plugin:           redhat/openshift-ovs-multitenant",
        "cluster networks: 10.128.0.0/14 (hostSubnetLength 9)",
        "service network:  172.30.0.0/16",
        "VXLAN port:       4789",
        "MTU:              1450",
    ]
    assert section(text, "Nodes") == [
        "Nodes (4)",
        "HOST    HOST IP          SUBNET         GATEWAY     DATAPATH ID         EGRESS IPS",
        "master  192.168.108.110  10.128.0.0/23  10.128.0.1  0x00000000c0a86c6e  -",
        "node1   192.168.108.111  10.131.0.0/23  10.131.0.1  0x00000000c0a86c6f  -",
        "node2   192.168.108.112  10.130.0.0/23  10.130.0.1  0x00000000c0a86c70  -",
        "infra   192.168.108.113  10.129.0.0/23  10.129.0.1  0x00000000c0a86c71  192.168.108.200",
    ]


def test_namespaces_pods_services_egress_and_counts() -> None:
    text = summarize(seed())
    assert section(text, "NetNamespaces") == [
        "NetNamespaces (3)",
        "NAMESPACE    VNID     HEX       HOW",
        "default      0        0x000000  netid",
        "kube-public  8583346  0x82f8b2  netid",
        "kube-system  272037   0x0426a5  netid",
    ]
    assert section(text, "Pods per node") == [
        "Pods per node (4 pods)", "HOST    PODS",
        "master  1", "node1   1", "node2   2", "infra   0",
    ]  # fmt: skip
    assert section(text, "Services") == [
        "Services (1)",
        "SERVICE                 CLUSTER IP      PORTS",
        "default/tomcat-service  172.30.161.148  8080/TCP",
    ]
    assert section(text, "Egress IPs") == [
        "Egress IPs (1)",
        "NAMESPACE    EGRESS IP        NODE",
        "kube-public  192.168.108.200  infra",
    ]
    assert section(text, "NetworkPolicies") == [
        "NetworkPolicies:       0",
        "EgressNetworkPolicies: 0",
    ]
    assert "Ignored" not in text and "Warnings" not in text


def test_ignored_objects_and_warnings_are_listed() -> None:
    text = summarize(seed(ignored=("Deployment/a/b (x.yaml:1)",), warnings=("careful",)))
    assert section(text, "Ignored objects") == [
        "Ignored objects (1)",
        "  Deployment/a/b (x.yaml:1)",
    ]
    assert section(text, "Warnings") == ["Warnings (1)", "  careful"]


def test_subnet_plugin_says_vnids_are_unused() -> None:
    topology = seed()
    topology = replace(
        topology, cluster_network=replace(topology.cluster_network, plugin=Plugin.SUBNET)
    )
    assert section(summarize(topology), "NetNamespaces")[1] == (
        "(ovs-subnet does not use VNIDs: every namespace is treated as VNID 0)"
    )


@pytest.mark.skipif(not RICH.is_dir(), reason="examples/rich-cluster not written yet")
def test_allocated_and_changed_vnids_are_marked() -> None:
    lines = section(summarize(load_topology([RICH])), "NetNamespaces")
    how = {line.split()[0]: line.split(None, 3)[3] for line in lines[2:]}
    assert how["analytics"] == "changed (join:backend)"
    assert how["db"] == "allocated"
    assert how["backend"] == "netid"


def test_tun0_mac_of_egress_nodes_and_where_it_comes_from() -> None:
    topology = seed()
    assert section(summarize(topology), "tun0 MAC")[2:] == [
        "HOST   TUN0 MAC           FROM",
        "infra  0a:58:0a:81:00:01  0a:58 + gateway",
    ]
    annotated = replace(topology, host_subnets=tuple(
        replace(hs, annotated_tun0_mac="6e:1f:00:aa:bb:cc") if hs.egress_ips else hs
        for hs in topology.host_subnets))
    assert section(summarize(annotated), "tun0 MAC")[3] \
        == "infra  6e:1f:00:aa:bb:cc  annotation osdn.dev/tun0-mac"
    assert "tun0 MAC" not in summarize(seed(Plugin.SUBNET))


def test_multicast_and_dns_names() -> None:
    text = summarize(load_topology([RICH]))
    assert section(text, "Multicast") == [
        "Multicast (1 VNIDs annotated)",
        "VNID     NAMESPACES  ENABLED",
        "6167367  frontend    yes",
    ]
    assert section(text, "EgressNetworkPolicy dnsNames")[2:] == ["  frontend/default: example.com"]
    topology = seed()
    spaces = tuple(replace(nn, netid=8583346, multicast_enabled=nn.name == "kube-system")
                   if nn.name != "default" else nn for nn in topology.net_namespaces)
    assert section(summarize(replace(topology, net_namespaces=spaces)), "Multicast")[2] == \
        "8583346  kube-public (not annotated), kube-system  no"
