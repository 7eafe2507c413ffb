"""The one reachability oracle (`lab.policy_oracle`) the real-packet matrices and the Mininet
experiments check against: each plugin's rule, on small hand-built clusters."""

from __future__ import annotations

from dataclasses import replace

from lab.policy_oracle import PING_RULES, plugin_allows, policy_allows, vnids_allow
from tests.support.builders import NetworkPolicy, netns, pod, seed
from topology.model import IngressRule, LabelSelector, Plugin, PolicyPeer, PolicyPort

# default (VNID 0, global), kube-public and kube-system (their own VNIDs)
WEB = pod("default", "web", "node2", "10.130.0.5", 3, app="web")
TN = pod("kube-public", "tn", "master", "10.128.0.56", 4)
SYS = pod("kube-system", "sys", "node1", "10.131.0.9", 5)
PAIRS = [(a, b) for a in (WEB, TN, SYS) for b in (WEB, TN, SYS) if a is not b]


def test_every_plugin_has_a_rule_line() -> None:
    assert set(PING_RULES) == set(Plugin)


def test_subnet_reaches_everything() -> None:
    topology = seed(Plugin.SUBNET)
    assert all(plugin_allows(topology, a, b, port) for a, b in PAIRS for port in (None, 80))


def test_multitenant_same_vnid_or_global() -> None:
    topology = seed(Plugin.MULTITENANT)
    assert not plugin_allows(topology, TN, SYS) and not plugin_allows(topology, SYS, TN)
    assert all(plugin_allows(topology, a, b) for a, b in PAIRS if WEB in (a, b))
    joined = replace(topology, net_namespaces=(netns("default", 0), netns("kube-public", 7),
                                               netns("kube-system", 7)))
    assert vnids_allow(joined, TN, SYS) and plugin_allows(joined, SYS, TN, 8080)


def test_networkpolicy_ignores_vnids_and_follows_policies() -> None:
    topology = seed(Plugin.NETWORKPOLICY)
    assert all(plugin_allows(topology, a, b) for a, b in PAIRS)  # no policy: open
    deny_all = NetworkPolicy("kube-system", "deny-all", "uid-deny", LabelSelector())
    closed = replace(topology, network_policies=(deny_all,))
    for src in (WEB, TN):
        assert plugin_allows(closed, src, SYS) is policy_allows(closed, src, SYS, None) is False
    assert plugin_allows(closed, SYS, TN)
    on_8080 = replace(deny_all, name="on-8080", ingress=(IngressRule((PolicyPort("TCP", 8080),)),))
    opened = replace(topology, network_policies=(deny_all, on_8080))
    assert plugin_allows(opened, WEB, SYS, 8080)
    assert not plugin_allows(opened, WEB, SYS, 5432) and not plugin_allows(opened, WEB, SYS)


def test_networkpolicy_state_is_per_vnid() -> None:
    # 3.11 keeps policy state per VNID: kube-system's deny-all isolates kube-public's pods
    # too when both have VNID 7 (fail closed); an empty pod-selector peer admits the VNID
    shared = replace(seed(Plugin.NETWORKPOLICY), net_namespaces=(
        netns("default", 0), netns("kube-public", 7), netns("kube-system", 7)))
    deny_all = NetworkPolicy("kube-system", "deny-all", "uid-deny", LabelSelector())
    closed = replace(shared, network_policies=(deny_all,))
    assert not plugin_allows(closed, WEB, TN) and not plugin_allows(closed, WEB, SYS)
    same_vnid = replace(deny_all, name="same", ingress=(IngressRule(peers=(
        PolicyPeer(pod_selector=LabelSelector()),)),))
    opened = replace(shared, network_policies=(same_vnid,))
    assert plugin_allows(opened, TN, SYS) and plugin_allows(opened, SYS, TN)
    assert not plugin_allows(opened, WEB, TN)
    # a selector naming pods picks them in the policy's own namespace only
    web_only = NetworkPolicy("kube-system", "web-only", "uid-web", LabelSelector((("app", "x"),)))
    assert plugin_allows(replace(shared, network_policies=(web_only,)), WEB, TN)
