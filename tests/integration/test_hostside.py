"""The host side applied for real: `ip` and `iptables-restore` (nf_tables) inside a network
namespace this test creates and always deletes.  No traffic is sent."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from controller.hostside import HostPlan, apply_host, plan_host, subprocess_runners
from controller.ovs.netns import in_netns
from topology.load import load_topology
from topology.model import Topology

pytestmark = pytest.mark.ovs  # needs root, iproute2 and iptables, like the real-OVS tests

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"
INFRA = "infra.ocp.cn"
NODE_IP = "192.168.108.113"


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    """A node namespace with `tun0` and `uplink` (dummies, or veths where the dummy module
    is missing) and the node IP on the uplink, as the cluster builder leaves it."""
    name = f"osdn-t-{os.getpid()}-hs"
    _sh("ip", "netns", "add", name)
    try:
        for dev in ("tun0", "uplink"):
            try:
                _sh(*in_netns(name), "ip", "link", "add", dev, "type", "dummy")
            except subprocess.CalledProcessError:
                _sh(*in_netns(name), "ip", "link", "add", dev, "type", "veth", "peer", "name",
                    f"{dev}-peer")
                _sh(*in_netns(name), "ip", "link", "set", f"{dev}-peer", "up")
        _sh(*in_netns(name), "ip", "addr", "add", f"{NODE_IP}/24", "dev", "uplink")
        _sh(*in_netns(name), "ip", "link", "set", "uplink", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def seed() -> Topology:
    return load_topology([SEED])


def _apply(netns: str, plan: HostPlan) -> None:
    runners = subprocess_runners([*in_netns(netns)])
    apply_host(plan, runners.run, iptables_restore=runners.iptables_restore,
               iptables_save=runners.iptables_save)


def _save(netns: str) -> list[str]:
    """iptables-save without its time-stamped comment lines."""
    text = _sh(*in_netns(netns), "iptables-save")
    return [line for line in text.splitlines() if not line.startswith("#")]


def _plan(topology: Topology, by_mark: bool = True) -> HostPlan:
    return plan_host(topology, INFRA, uplink="uplink", uplink_prefix=24, egress_by_mark=by_mark)


# What iptables-save prints for the seed cluster's infra node (its normal form: -p before -m,
# marks without leading zeros, /32 added, REJECT's default spelled out).
EXPECTED = [
    "-A INPUT -m comment --comment \"firewall overrides\" -j OPENSHIFT-FIREWALL-ALLOW",
    "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
    "-j KUBE-SERVICES",
    "-A FORWARD -i tun0 ! -o tun0 -m comment --comment \"administrator overrides\" "
    "-j OPENSHIFT-ADMIN-OUTPUT-RULES",
    "-A FORWARD -m comment --comment \"firewall overrides\" -j OPENSHIFT-FIREWALL-FORWARD",
    "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
    "-j KUBE-SERVICES",
    "-A OPENSHIFT-FIREWALL-ALLOW -p udp -m udp --dport 4789 -m comment --comment "
    "\"VXLAN incoming\" -j ACCEPT",
    "-A OPENSHIFT-FIREWALL-ALLOW -i tun0 -m comment --comment \"from SDN to localhost\" -j ACCEPT",
    "-A OPENSHIFT-FIREWALL-ALLOW -i docker0 -m comment --comment \"from docker to localhost\" "
    "-j ACCEPT",
    "-A OPENSHIFT-FIREWALL-ALLOW -d 192.168.108.200/32 -m conntrack --ctstate NEW "
    "-j REJECT --reject-with icmp-port-unreachable",
    "-A OPENSHIFT-FIREWALL-FORWARD -s 10.128.0.0/14 -m comment --comment "
    "\"attempted resend after connection close\" -m conntrack --ctstate INVALID -j DROP",
    "-A OPENSHIFT-FIREWALL-FORWARD -d 10.128.0.0/14 -m comment --comment "
    "\"forward traffic from SDN\" -j ACCEPT",
    "-A OPENSHIFT-FIREWALL-FORWARD -s 10.128.0.0/14 -m comment --comment "
    "\"forward traffic to SDN\" -j ACCEPT",
    "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
    "-A POSTROUTING -m comment --comment \"rules for masquerading OpenShift traffic\" "
    "-j OPENSHIFT-MASQUERADE",
    "-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m mark --mark 0x82f8b2 "
    "-j SNAT --to-source 192.168.108.200",
    "-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m comment --comment "
    "\"masquerade pod-to-service and pod-to-external traffic\" -j MASQUERADE",
    "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x1/0x1",
    "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
    "-m mark --mark 0x1/0x1 -j MASQUERADE",
    "-A KUBE-SERVICES -d 172.30.161.148/32 -p tcp -m comment --comment "
    "\"default/tomcat-service: cluster IP\" -m tcp --dport 8080 -j KUBE-SVC-WEARAPTIMCF45GQ3",
    "-A KUBE-SVC-WEARAPTIMCF45GQ3 -m comment --comment \"default/tomcat-service:\" "
    "-j KUBE-SEP-2XETTXTEXBW5JWMI",
    "-A KUBE-SEP-2XETTXTEXBW5JWMI -s 10.131.0.4/32 -m comment --comment "
    "\"default/tomcat-service:\" -j KUBE-MARK-MASQ",
    "-A KUBE-SEP-2XETTXTEXBW5JWMI -p tcp -m comment --comment \"default/tomcat-service:\" "
    "-m tcp -j DNAT --to-destination 10.131.0.4:8080",
]


def _chain_rules(saved: list[str], table: str) -> list[str]:
    current, rules = "", []
    for line in saved:
        if line.startswith("*"):
            current = line[1:]
        elif current == table and line.startswith("-A "):
            rules.append(line)
    return rules


def test_infra_host_side_is_applied_and_idempotent(netns: str, seed: Topology) -> None:
    plan = _plan(seed)
    _apply(netns, plan)
    first = _save(netns)
    rules = _chain_rules(first, "filter") + _chain_rules(first, "nat")
    assert sorted(rules) == sorted(EXPECTED)
    # the built-in chains' jumps in 3.11's order (kube-proxy's first: it starts later)
    assert [r for r in rules if r.startswith("-A FORWARD")] == EXPECTED[1:4]
    assert [r for r in rules if r.startswith("-A POSTROUTING")] == EXPECTED[14:16]
    assert ":OPENSHIFT-ADMIN-OUTPUT-RULES - [0:0]" in first

    routes = _sh(*in_netns(netns), "ip", "route", "show").splitlines()
    assert [r.strip() for r in routes] == [
        "10.128.0.0/14 dev tun0 scope link",  # no 10.129.0.0/23 route: 3.11 deletes it
        "172.30.0.0/16 dev tun0",
        f"192.168.108.0/24 dev uplink proto kernel scope link src {NODE_IP}",
    ]
    tun0 = _sh(*in_netns(netns), "ip", "-o", "-4", "addr", "show", "dev", "tun0")
    assert "inet 10.129.0.1/23 " in tun0
    assert "mtu 1450 " in _sh(*in_netns(netns), "ip", "link", "show", "dev", "tun0")
    uplink = _sh(*in_netns(netns), "ip", "-o", "-4", "addr", "show", "dev", "uplink")
    assert f"inet {NODE_IP}/24 " in uplink and "inet 192.168.108.200/24 " in uplink
    forward = _sh(*in_netns(netns), "sysctl", "-n", "net.ipv4.ip_forward")
    assert forward.strip() == "1"

    _apply(netns, plan)  # twice: nothing changes
    assert _save(netns) == first
    assert _sh(*in_netns(netns), "ip", "route", "show").splitlines() == routes
    assert _sh(*in_netns(netns), "ip", "-o", "-4", "addr", "show", "dev", "uplink") == uplink


def test_admin_rules_survive_and_plans_replace_each_other(netns: str, seed: Topology) -> None:
    _apply(netns, _plan(seed))
    admin = ["iptables", "-t", "filter", "-A", "OPENSHIFT-ADMIN-OUTPUT-RULES", "-d",
             "192.0.2.1/32", "-j", "DROP"]
    _sh(*in_netns(netns), *admin)

    # the userspace-datapath variant replaces the by-mark SNAT; nothing else moves
    _apply(netns, _plan(seed, by_mark=False))
    nat = _chain_rules(_save(netns), "nat")
    masquerade = [r for r in nat if r.startswith("-A OPENSHIFT-MASQUERADE ")]
    assert masquerade == [
        "-A OPENSHIFT-MASQUERADE -s 10.128.0.56/32 -o uplink -j SNAT --to-source 192.168.108.200",
        "-A OPENSHIFT-MASQUERADE -s 10.128.0.0/14 -m comment --comment "
        "\"masquerade pod-to-service and pod-to-external traffic\" -j MASQUERADE",
    ]
    saved = _save(netns)
    assert "-A OPENSHIFT-ADMIN-OUTPUT-RULES -d 192.0.2.1/32 -j DROP" in saved
    assert sum(line.startswith("-A POSTROUTING") for line in saved) == 2

    # a Service gone: its KUBE-SVC/KUBE-SEP chains are deleted (with iptables_save)
    _apply(netns, _plan(replace(seed, services=())))
    saved = _save(netns)
    assert not [line for line in saved if "KUBE-SVC-" in line or "KUBE-SEP-" in line]
    assert ":KUBE-SERVICES - [0:0]" in saved
