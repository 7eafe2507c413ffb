"""Realistic generated clusters, written the way `oc get … -o yaml` prints them.

`generate(...)` returns ``{file name: YAML text}``: one ``kind: List`` per kind
(``clusternetwork.yaml``, ``hostsubnets.yaml``, ``netnamespaces.yaml``, ``namespaces.yaml``,
``pods.yaml`` — or ``pods/<host>.yaml`` with ``pods_by_node=True`` — ``services.yaml``,
``networkpolicies.yaml``, ``egressnetworkpolicies.yaml``), every one of which
`topology.load.load_topology` reads without an issue.  The same seed and parameters always give
byte-identical files.

What a generated cluster looks like (the defaults; every choice is drawn from the seed):

* ClusterNetwork: one or two cluster CIDRs (10.128.0.0/14-style, grown to fit the nodes),
  hostSubnetLength 8, 9 or 10 (whichever hold `pods_per_node`), a service network such as
  172.30.0.0/16 (grown to fit the services), VXLAN port 4789 unless given.
* Nodes: masters, infra and compute nodes (or EC2-style ``ip-a-b-c-d`` names), hostIPs in an
  underlay /16 (a /8 when more than ~50,000 nodes), 200 per /24; HostSubnets allocated in order
  inside the cluster networks, split evenly over them, with an occasional hole (a deleted node);
  about a quarter carry an ``osdn.dev/datapath-id`` annotation (a MAC-derived id, as OVS picks).
* Namespaces: OpenShift's own (``default``, ``openshift-monitoring``, …, a few global with netid
  0) and projects named like ``payments-api-prod``; NetNamespaces with random netids, about one
  in ten without a netid (the master allocates it), and under ovs-multitenant a few with the
  change-network annotation (``join:<ns>``, ``global``, ``isolate``).
* Pods: Deployments of 1–10 replicas (app and tier labels, ReplicaSet owner, containerPorts)
  spread over the nodes, exactly `pods_per_node` per node, IPs handed out upward from the
  node's second address (the first is tun0's) with the gaps pod churn leaves, ofports from 3
  upward, interfaces ``veth`` + 8 hex digits.  Plus, when ``openshift-sdn`` is one of the
  namespaces, its host-network ``sdn``/``ovs`` pods on every node (they have no br0 port).
* Services: ``kubernetes`` (the service network's first address, no selector) and services
  selecting Deployments with 1–3 TCP/UDP ports; a few headless ones.
* Egress IPs: HostSubnets (infra nodes first) holding them, half of those also with
  egressCIDRs, and one namespace per IP using it, all in the underlay's top /24s.
* NetworkPolicies (only under ovs-networkpolicy unless `policies_always`): per project
  deny-all, allow-from-namespace-label on a port, allow-from-pod-selector, allow-from-default,
  allow-same-namespace, in that order, `policies_per_namespace` of them.
* EgressNetworkPolicies (cidrSelector rules only, so nothing needs DNS) in a few projects whose
  VNID is theirs alone.

CLI: ``python -m bench.generate --nodes 1000 --namespaces 2000 --services 10000
--pods-per-node 110 --plugin multitenant --out DIR [--seed N]`` (``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network
from pathlib import Path

from topology.model import Plugin

PLUGINS = {
    "subnet": Plugin.SUBNET,
    "multitenant": Plugin.MULTITENANT,
    "networkpolicy": Plugin.NETWORKPOLICY,
}
DETAILS = ("minimal", "standard", "full")

_POOLS = tuple(ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10",
                                       "192.168.0.0/16"))
_HOSTS_PER_RACK = 200  # hostIPs .10-.209 of each /24 of the underlay
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet
_EPOCH = 1551665592  # 2019-03-04T02:13:12Z, when the cluster was installed

# (name, netid 0?) — OpenShift 3.11's own namespaces, the global ones as an admin makes them.
_SYSTEM_NAMESPACES = (
    ("default", True), ("openshift-monitoring", True), ("kube-system", False),
    ("openshift-infra", True), ("openshift-sdn", False), ("openshift-node", False),
    ("openshift-console", False), ("openshift-web-console", False), ("kube-public", False),
    ("openshift", False), ("openshift-logging", True), ("kube-service-catalog", False),
    ("openshift-template-service-broker", False), ("management-infra", False),
)
# App catalogue: (app, tier, image, [(port name, containerPort, protocol, service port)]).
_Port = tuple[str, int, str, int]
_SYSTEM_APPS: dict[str, list[tuple[str, str, str, list[_Port]]]] = {
    "default": [("docker-registry", "infra", "openshift3/ose-docker-registry:v3.11",
                 [("5000-tcp", 5000, "TCP", 5000)]),
                ("registry-console", "infra", "openshift3/registry-console:v3.11",
                 [("registry-console", 9090, "TCP", 9000)])],
    "openshift-monitoring": [
        ("prometheus-k8s", "monitoring", "openshift3/prometheus:v3.11",
         [("web", 9091, "TCP", 9091)]),
        ("alertmanager-main", "monitoring", "openshift3/prometheus-alertmanager:v3.11",
         [("web", 9094, "TCP", 9094)]),
        ("grafana", "monitoring", "openshift3/grafana:v3.11", [("https", 3000, "TCP", 3000)])],
    "openshift-console": [("console", "frontend", "openshift3/ose-console:v3.11",
                           [("https", 8443, "TCP", 443)])],
    "openshift-web-console": [("webconsole", "frontend", "openshift3/ose-web-console:v3.11",
                               [("https", 8443, "TCP", 443)])],
    "openshift-logging": [
        ("logging-kibana", "logging", "openshift3/logging-kibana5:v3.11",
         [("kibana", 5601, "TCP", 443)]),
        ("logging-es", "logging", "openshift3/logging-elasticsearch5:v3.11",
         [("restapi", 9200, "TCP", 9200), ("cluster", 9300, "TCP", 9300)])],
    "kube-service-catalog": [("apiserver", "infra", "openshift3/ose-service-catalog:v3.11",
                              [("secure", 6443, "TCP", 443)])],
}
_APPS: list[tuple[str, str, str, list[_Port]]] = [
    ("web", "frontend", "nginx:1.15", [("http", 8080, "TCP", 80)]),
    ("frontend", "frontend", "node:10", [("http", 8080, "TCP", 8080),
                                         ("https", 8443, "TCP", 8443)]),
    ("api", "backend", "openjdk:8", [("http", 8080, "TCP", 8080), ("grpc", 9090, "TCP", 9090)]),
    ("orders", "backend", "golang:1.11", [("http", 8080, "TCP", 8080)]),
    ("auth", "backend", "keycloak:4.5", [("http", 8080, "TCP", 8080),
                                         ("https", 8443, "TCP", 8443)]),
    ("postgres", "db", "postgresql:10", [("postgresql", 5432, "TCP", 5432)]),
    ("mysql", "db", "mysql:5.7", [("mysql", 3306, "TCP", 3306)]),
    ("mongodb", "db", "mongodb:3.6", [("mongodb", 27017, "TCP", 27017)]),
    ("redis", "cache", "redis:5", [("redis", 6379, "TCP", 6379)]),
    ("memcached", "cache", "memcached:1.5", [("memcache", 11211, "TCP", 11211),
                                             ("memcache-udp", 11211, "UDP", 11211)]),
    ("kafka", "queue", "strimzi/kafka:0.8", [("clients", 9092, "TCP", 9092),
                                             ("replication", 9091, "TCP", 9091)]),
    ("zookeeper", "queue", "zookeeper:3.4", [("client", 2181, "TCP", 2181),
                                             ("peer", 2888, "TCP", 2888),
                                             ("election", 3888, "TCP", 3888)]),
    ("rabbitmq", "queue", "rabbitmq:3.7", [("amqp", 5672, "TCP", 5672),
                                           ("management", 15672, "TCP", 15672)]),
    ("worker", "worker", "python:3.6", [("metrics", 9100, "TCP", 9100)]),
    ("statsd", "monitoring", "statsd:0.8", [("statsd", 8125, "UDP", 8125),
                                            ("admin", 8126, "TCP", 8126)]),
    ("dns", "infra", "coredns:1.2", [("dns", 5353, "UDP", 53), ("dns-tcp", 5353, "TCP", 53),
                                     ("metrics", 9153, "TCP", 9153)]),
    ("syslog", "infra", "rsyslog:8", [("syslog", 514, "UDP", 514)]),
    ("elasticsearch", "db", "elasticsearch:6.4", [("http", 9200, "TCP", 9200),
                                                  ("transport", 9300, "TCP", 9300)]),
    ("jenkins", "ci", "openshift3/jenkins-2-rhel7:v3.11", [("web", 8080, "TCP", 80),
                                                           ("jnlp", 50000, "TCP", 50000)]),
    ("reports", "analytics", "quay.io/example/reports:3.0.0", [("http", 8080, "TCP", 8080),
                                                               ("statsd", 8125, "UDP", 8125)]),
]
_PROJECT_WORDS = ("payments", "billing", "shop", "catalog", "checkout", "search", "inventory",
                  "shipping", "accounts", "identity", "media", "reporting", "analytics", "crm",
                  "ledger", "pricing", "booking", "loyalty", "claims", "portal", "gateway",
                  "notify", "content", "insight", "fraud", "risk", "orders", "quotes", "hr",
                  "payroll", "support", "docs", "wiki", "data", "ml", "etl", "iot", "fleet",
                  "maps", "video")
_PROJECT_PARTS = ("api", "web", "backend", "services", "platform", "core", "app", "team",
                  "batch", "stream")
_ENVS = ("dev", "test", "stage", "prod")
_TEAMS = ("frontend", "backend", "data", "platform", "payments", "mobile", "ops", "security")
_WORDS = ("alpha", "blue", "green", "red", "v2", "admin", "internal", "public", "batch", "edge")
_SERVICE_SUFFIXES = ("metrics", "internal", "headless", "v2", "admin", "peer")
_EXTERNAL_NETS = (8, 13, 23, 34, 52, 104, 151, 185, 198)


# ------------------------------------------------------------------ small helpers

def _ip(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _stamp(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


_PLAIN = re.compile(r"[a-zA-Z_/][a-zA-Z0-9_./-]*")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _q(text: str) -> str:
    """A YAML scalar for `text` that reads back as that string."""
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


class _Ids:
    """UIDs, resourceVersions and random names, all from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._version = 1000

    def uid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def version(self) -> str:
        self._version += self.rng.randrange(1, 40)
        return f'"{self._version}"'

    def token(self, length: int) -> str:
        return "".join(self.rng.choices(_HASH_ALPHABET, k=length))


def _place(prefix: int, preferred: Sequence[IPv4Network], taken: list[IPv4Network],
           rng: random.Random) -> IPv4Network:
    """A /prefix block overlapping none of `taken`: a preferred one if free, else the first
    free aligned block of the private pools from a random starting point."""
    for want in preferred:
        block = want.supernet(new_prefix=prefix) if want.prefixlen > prefix else want
        if block.prefixlen == prefix and not any(block.overlaps(t) for t in taken):
            return block
    for pool in _POOLS:
        if pool.prefixlen > prefix:
            continue
        count = 1 << (prefix - pool.prefixlen)
        size = 1 << (32 - prefix)
        start = rng.randrange(count)
        base = int(pool.network_address)
        for k in range(count):
            block = IPv4Network((base + ((start + k) % count) * size, prefix))
            if not any(block.overlaps(t) for t in taken):
                return block
    raise ValueError(f"no free /{prefix} left in the private address ranges")


def _bits(count: int) -> int:
    return max(0, math.ceil(math.log2(max(count, 1))))


# ------------------------------------------------------------------ the cluster's parts

@dataclass
class _Node:
    host: str
    ip: int
    role: str
    created: int
    uid: str
    node_uid: str
    version: str
    subnet: int = 0  # network address
    prefix: int = 0
    datapath_id: str | None = None
    egress_ips: list[int] = field(default_factory=list)
    egress_cidrs: list[str] = field(default_factory=list)


@dataclass
class _Namespace:
    name: str
    system: bool
    created: int
    labels: dict[str, str]
    global_: bool = False  # netid 0 written in the NetNamespace
    netid: int | None = None
    change: str | None = None  # change-network annotation
    join_target: bool = False
    egress_ips: list[int] = field(default_factory=list)
    multicast: bool = False
    apps: list["_Deployment"] = field(default_factory=list)
    index: int = 0
    uid_nn: str = ""  # the NetNamespace's
    uid_ns: str = ""  # the Namespace's
    version_nn: str = ""
    version_ns: str = ""

    @property
    def own_vnid(self) -> bool:
        """Its VNID is its own and not 0 (egress IPs and firewalls need that)."""
        return not (self.system or self.global_ or self.change or self.join_target)


@dataclass
class _Deployment:
    namespace: _Namespace
    app: str
    tier: str
    image: str
    ports: list[_Port]
    hash: str
    uid: str
    created: int
    replicas: int
    pods: list["_Pod"] = field(default_factory=list)


@dataclass
class _Pod:
    deployment: _Deployment
    name: str
    uid: str
    created: int
    node: _Node | None = None
    ip: int = 0
    ofport: int = 0
    interface: str = ""


class _Generator:
    def __init__(self, nodes: int, namespaces: int, pods_per_node: int, services: int | None,
                 egress_ips: int | None, policies_per_namespace: int, plugin: Plugin,
                 seed: int, cluster_cidrs: Sequence[str | tuple[str, int]] | None,
                 host_subnet_length: int | None, service_cidr: str | None,
                 vxlan_port: int, underlay: str | None, mtu: int, egress_firewalls: int | None,
                 policies_always: bool, host_network_pods: bool, pods_by_node: bool,
                 detail: str) -> None:
        if nodes < 1 or namespaces < 1 or pods_per_node < 0:
            raise ValueError("need at least one node and one namespace, pods_per_node >= 0")
        if detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}")
        if not 1 <= vxlan_port <= 65535:
            raise ValueError(f"vxlan_port {vxlan_port} is not a UDP port")
        self.n_nodes, self.n_namespaces, self.ppn = nodes, namespaces, pods_per_node
        self.n_services = max(1, namespaces * 2) if services is None else services
        self.n_egress = (max(1, namespaces // 20) if egress_ips is None else egress_ips)
        self.ppns = policies_per_namespace
        self.plugin, self.seed = plugin, seed
        self.vxlan_port, self.mtu, self.detail = vxlan_port, mtu, detail
        self.n_firewalls = egress_firewalls
        self.policies = policies_always or plugin is Plugin.NETWORKPOLICY
        self.host_network_pods, self.pods_by_node = host_network_pods, pods_by_node
        self._cidrs_arg, self._hsl_arg = cluster_cidrs, host_subnet_length
        self._service_arg, self._underlay_arg = service_cidr, underlay

    def rng(self, part: str) -> random.Random:
        """One generator per part, so that e.g. more services do not move every pod."""
        return random.Random(f"osdn-bench:{self.seed}:{part}")

    # -------------------------------------------------------------- networks

    def plan_networks(self) -> None:
        rng = self.rng("networks")
        hsl = self._hsl_arg
        if hsl is None:
            fits = [h for h in (8, 9, 10) if (1 << h) - 3 >= self.ppn]
            hsl = rng.choice(fits + [9] * (9 in fits)) if fits else max(2, _bits(self.ppn + 3))
        taken: list[IPv4Network] = []
        explicit: list[tuple[IPv4Network, int]] = []
        for entry in self._cidrs_arg or ():
            cidr, length = (entry, hsl) if isinstance(entry, str) else entry
            explicit.append((ip_network(cidr), int(length)))
        for value, name in ((self._service_arg, "service_cidr"), (self._underlay_arg, "underlay")):
            if value is not None:
                explicit.append((ip_network(value), 0))
        for cidr, _ in explicit:
            for other in taken:
                if cidr.overlaps(other):
                    raise ValueError(f"{cidr} overlaps {other}")
            taken.append(cidr)

        # The underlay: racks of 200 hosts per /24, egress IPs in the top /24s.
        self.egress_blocks = math.ceil(self.n_egress / _HOSTS_PER_RACK)
        racks = math.ceil(self.n_nodes / _HOSTS_PER_RACK)
        if self._underlay_arg is not None:
            self.underlay = ip_network(self._underlay_arg)
        else:
            prefix = 16 if racks + self.egress_blocks <= 254 else 8
            preferred = ["10.0.0.0/8"] if prefix == 8 else rng.choice(
                [["192.168.0.0/16"], ["172.16.0.0/16"], ["10.0.0.0/16"]])
            self.underlay = _place(prefix, [ip_network(p) for p in preferred], taken, rng)
            taken.append(self.underlay)
        blocks = 1 << max(0, 24 - self.underlay.prefixlen)
        if self.underlay.prefixlen > 24 or racks + self.egress_blocks > blocks - 2:
            raise ValueError(f"underlay {self.underlay} is too small for {self.n_nodes} nodes "
                             f"and {self.n_egress} egress IPs")

        # The service network: the first address is the kubernetes service's.
        if self._service_arg is not None:
            self.service_network = ip_network(self._service_arg)
        else:
            prefix = min(16, 32 - _bits(self.n_services * 5 // 4 + 4))
            preferred = rng.choice(["172.30.0.0/16", "172.21.0.0/16", "172.24.0.0/16"])
            self.service_network = _place(prefix, [ip_network(preferred)], taken, rng)
            taken.append(self.service_network)
        if self.service_network.num_addresses - 3 < self.n_services:
            raise ValueError(f"service network {self.service_network} is too small for "
                             f"{self.n_services} services")

        # Cluster networks.
        if explicit and self._cidrs_arg:
            self.networks = explicit[:len(self._cidrs_arg)]
        else:
            count = 1 if self.n_nodes < 2 else rng.choice([1, 2])
            per = math.ceil(self.n_nodes / count)
            prefix = min(14, 32 - hsl - _bits(per + per // 8 + 1))
            if prefix < 8:
                raise ValueError(f"{self.n_nodes} nodes of /{32 - hsl} do not fit")
            base = ip_network(rng.choice(["10.128.0.0/14", "10.64.0.0/14", "10.200.0.0/14",
                                          "10.32.0.0/14"]))
            self.networks = []
            for _ in range(count):
                preferred = [base]
                if self.networks:
                    last = self.networks[-1][0]
                    preferred = [IPv4Network((int(last.broadcast_address) + 1, prefix))
                                 if int(last.broadcast_address) + 1 < 1 << 32 else last]
                cidr = _place(prefix, preferred, taken, rng)
                taken.append(cidr)
                self.networks.append((cidr, hsl))
        for cidr, length in self.networks:
            if not 2 <= length <= 32 - cidr.prefixlen:
                raise ValueError(f"hostSubnetLength {length} does not fit {cidr}")
            if (1 << length) - 3 < self.ppn:
                raise ValueError(f"a /{32 - length} subnet cannot hold {self.ppn} pods")
        capacity = sum(1 << (32 - c.prefixlen - h) for c, h in self.networks)
        if capacity < self.n_nodes:
            raise ValueError(f"the cluster networks hold {capacity} node subnets, "
                             f"not {self.n_nodes}")

    # -------------------------------------------------------------- nodes

    def make_nodes(self, ids: _Ids) -> None:
        rng = self.rng("nodes")
        style = rng.choice(["roles", "ec2", "roles"])
        domain = rng.choice(["ocp.example.com", "cluster.local", "prod.corp.example.net"])
        masters = 3 if self.n_nodes >= 8 else 0
        infras = min(max(1, self.n_nodes // 50), 12) if self.n_nodes >= 4 else 0
        base = int(self.underlay.network_address)
        self.nodes: list[_Node] = []
        dpids: set[int] = set()
        for i in range(self.n_nodes):
            ip = base + (1 + i // _HOSTS_PER_RACK) * 256 + 10 + i % _HOSTS_PER_RACK
            role = "master" if i < masters else "infra" if i < masters + infras else "compute"
            if style == "ec2":
                host = "ip-" + _ip(ip).replace(".", "-") + ".ec2.internal"
            else:
                number = i if role == "master" else i - masters if role == "infra" else \
                    i - masters - infras
                host = f"{role}-{number}.{domain}" if role != "compute" else \
                    f"node{number + 1:03d}.{domain}"
            node = _Node(host, ip, role, _EPOCH + 60 + i * 37, ids.uid(), ids.uid(),
                         ids.version())
            if rng.random() < 0.25:
                while True:  # locally administered MAC-like, always above any hostIP
                    dpid = (0x0200 << 32) | rng.getrandbits(40)
                    if dpid not in dpids:
                        dpids.add(dpid)
                        break
                node.datapath_id = f"{dpid:016x}"
            self.nodes.append(node)

        # HostSubnets: in order through each cluster network, nodes split evenly.
        count = len(self.networks)
        start = 0
        for index, (cidr, hsl) in enumerate(self.networks):
            share = self.n_nodes // count + (index < self.n_nodes % count)
            slots = 1 << (32 - cidr.prefixlen - hsl)
            share = min(share, slots)
            if index == count - 1:
                share = self.n_nodes - start
            spare = slots - share
            slot = 0
            for node in self.nodes[start:start + share]:
                while spare > 0 and rng.random() < 0.04:  # a deleted node's subnet
                    slot += 1
                    spare -= 1
                node.subnet = int(cidr.network_address) + (slot << hsl)
                node.prefix = 32 - hsl
                slot += 1
            start += share
            if start < self.n_nodes and index == count - 1:
                raise ValueError("cluster networks too small")  # checked in plan_networks

    # -------------------------------------------------------------- namespaces

    def make_namespaces(self, ids: _Ids) -> None:
        rng = self.rng("namespaces")
        system_count = min(len(_SYSTEM_NAMESPACES), max(1, self.n_namespaces // 5))
        self.namespaces: list[_Namespace] = []
        t = _EPOCH
        for name, is_global in _SYSTEM_NAMESPACES[:system_count]:
            t += rng.randrange(1, 5)
            self.namespaces.append(_Namespace(name, True, t, {"name": name} if name == "default"
                                              else {}, global_=is_global))
        used = {ns.name for ns in self.namespaces}
        t = _EPOCH + 86400 * 3
        while len(self.namespaces) < self.n_namespaces:
            name = f"{rng.choice(_PROJECT_WORDS)}-{rng.choice(_PROJECT_PARTS)}"
            if rng.random() < 0.6:
                name += "-" + rng.choice(_ENVS)
            if name in used:
                name += f"-{rng.randrange(2, 100)}"
                if name in used:
                    continue
            used.add(name)
            t += rng.randrange(60, 7200)
            labels = {"name": name, "team": rng.choice(_TEAMS)}
            if name.rsplit("-", 1)[-1] in _ENVS:
                labels["env"] = name.rsplit("-", 1)[-1]
            self.namespaces.append(_Namespace(name, False, t, labels))

        users = [ns for ns in self.namespaces if not ns.system]
        explicit = [ns for ns in self.namespaces if not ns.global_]
        netids = rng.sample(range(10, 1 << 24), len(explicit))
        for ns, netid in zip(explicit, netids):
            ns.netid = netid
        for ns in self._pick(rng, users, 0.1, 1 if len(users) >= 3 else 0):
            ns.netid = None  # the master allocates it
        if self.plugin is Plugin.MULTITENANT:
            plain = list(users)
            joiners = self._pick(rng, plain, 0.05, 1 if len(users) >= 3 else 0)
            for ns in joiners:
                plain.remove(ns)
            for ns in joiners:
                target = rng.choice(plain)
                target.join_target = True
                ns.change = f"join:{target.name}"
            plain = [ns for ns in plain if not ns.join_target]
            for ns in self._pick(rng, plain, 0.02, 1 if len(users) >= 8 else 0):
                ns.change = "global"
                plain.remove(ns)
            for ns in self._pick(rng, plain, 0.01, 0):
                ns.change = "isolate"  # already alone: the master keeps its VNID
        if self.plugin is not Plugin.SUBNET:
            for ns in self._pick(rng, users, 0.03, 0):
                ns.multicast = True
        for index, ns in enumerate(self.namespaces):
            ns.index = index
            ns.uid_nn, ns.uid_ns = ids.uid(), ids.uid()
            ns.version_nn, ns.version_ns = ids.version(), ids.version()

    @staticmethod
    def _pick(rng: random.Random, pool: list, fraction: float, at_least: int) -> list:
        count = min(len(pool), max(at_least, round(len(pool) * fraction)))
        return rng.sample(pool, count)

    # -------------------------------------------------------------- deployments and pods

    def make_pods(self, ids: _Ids) -> None:
        rng = self.rng("pods")
        total = self.n_nodes * self.ppn
        self.deployments: list[_Deployment] = []
        if total == 0:
            return
        # Namespaces with workloads: projects, and the system ones that run pods of their own.
        order = [ns for ns in self.namespaces if not ns.system or ns.name in _SYSTEM_APPS]
        weights = [1.0 / math.sqrt(rank + 1) for rank in range(len(order))]
        rng.shuffle(weights)  # a few big projects, many small ones
        cumulative = list(itertools.accumulate(weights))
        left = total
        first_round = iter(order)
        while left > 0:
            first = next(first_round, None)  # every namespace gets a Deployment first
            ns = first or rng.choices(order, cum_weights=cumulative)[0]
            replicas = min(left, rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8, 10)))
            if first is not None:  # leave pods for the namespaces after it
                replicas = min(replicas, max(1, total // len(order)))
            self._deployment(rng, ids, ns, replicas)
            left -= replicas

        # Spread the pods: exactly pods_per_node per node, replicas scattered.
        slots = [node for node in self.nodes for _ in range(self.ppn)]
        rng.shuffle(slots)
        pods = [pod for d in self.deployments for pod in d.pods]
        by_node: dict[str, list[_Pod]] = {}
        for pod, node in zip(pods, slots):
            pod.node = node
            by_node.setdefault(node.host, []).append(pod)
        interfaces: set[str] = set()
        for node in self.nodes:
            mine = sorted(by_node.get(node.host, ()), key=lambda p: p.created)
            size = 1 << (32 - node.prefix)
            window = min(size - 1, 2 + len(mine) + len(mine) // 8 + 2)
            offsets = sorted(rng.sample(range(2, window), len(mine)))
            ofport = 3
            for pod, offset in zip(mine, offsets):
                pod.ip = node.subnet + offset
                if rng.random() < 0.05:
                    ofport += rng.randrange(1, 4)  # ports of deleted pods
                pod.ofport = ofport
                ofport += 1
                while True:
                    name = f"veth{rng.getrandbits(32):08x}"
                    if name not in interfaces:
                        interfaces.add(name)
                        break
                pod.interface = name

    def _deployment(self, rng: random.Random, ids: _Ids, ns: _Namespace, replicas: int) -> None:
        catalogue = _SYSTEM_APPS.get(ns.name, _APPS) if ns.system else _APPS
        taken = {d.app for d in ns.apps}
        fresh = [entry for entry in catalogue if entry[0] not in taken]
        app, tier, image, ports = rng.choice(fresh or catalogue)
        while app in taken:
            app = f"{app}-{rng.choice(_WORDS)}"
        created = max(ns.created + 60, _EPOCH + 86400 * 3) + rng.randrange(0, 86400 * 60)
        deployment = _Deployment(ns, app, tier, image, ports, ids.token(10), ids.uid(), created,
                                 replicas)
        names: set[str] = set()
        for k in range(replicas):
            while True:
                name = f"{app}-{deployment.hash}-{ids.token(5)}"
                if name not in names:
                    names.add(name)
                    break
            deployment.pods.append(_Pod(deployment, name, ids.uid(), created + 5 + k * 3))
        ns.apps.append(deployment)
        self.deployments.append(deployment)

    # -------------------------------------------------------------- services

    def make_services(self, ids: _Ids) -> None:
        rng = self.rng("services")
        net = self.service_network
        base = int(net.network_address)
        self.services: list[tuple] = []  # (ns, name, ip or None, ports, selector, created, uid)
        if self.n_services == 0:
            return
        default = self.namespaces[0]
        self.services.append((default, "kubernetes", _ip(base + 1),
                              [("https", 8443, "TCP", 443)], None, _EPOCH + 2, ids.uid()))
        wanted = self.n_services - 1
        if wanted and not self.deployments:  # no pods at all: Deployments scaled to zero
            homes = [ns for ns in self.namespaces if not ns.system or ns.name in _SYSTEM_APPS]
            for ns in homes[:wanted]:
                self._deployment(rng, ids, ns, 0)
        chosen = rng.sample(self.deployments, min(wanted, len(self.deployments)))
        while len(chosen) < wanted and self.deployments:
            chosen.append(rng.choice(self.deployments))
        addresses = rng.sample(range(2, net.num_addresses - 1), wanted)
        names: set[tuple[str, str]] = {(default.name, "kubernetes")}
        for deployment, offset in zip(chosen, addresses):
            ns = deployment.namespace
            name = deployment.app
            while (ns.name, name) in names:
                name = f"{deployment.app}-{rng.choice(_SERVICE_SUFFIXES)}"
                if (ns.name, name) in names:
                    name += f"-{rng.randrange(2, 1000)}"
            names.add((ns.name, name))
            ports = list(deployment.ports)
            if len(ports) < 3 and rng.random() < 0.15:
                ports.append(("metrics", 9779, "TCP", 9779))
            headless = deployment.tier == "db" and rng.random() < 0.1
            ip = None if headless else _ip(base + offset)
            selector = [("app", deployment.app)]
            if rng.random() < 0.3:
                selector.append(("tier", deployment.tier))
            self.services.append((ns, name, ip, ports, selector,
                                  deployment.created + 1, ids.uid()))

    # -------------------------------------------------------------- egress

    def make_egress(self) -> None:
        rng = self.rng("egress")
        if self.n_egress == 0:
            return
        eligible = [ns for ns in self.namespaces if ns.own_vnid]
        if not eligible:
            return
        top = int(self.underlay.broadcast_address) + 1
        ips = [top - (1 + k // _HOSTS_PER_RACK) * 256 + 10 + k % _HOSTS_PER_RACK
               for k in range(self.n_egress)]
        holders = [n for n in self.nodes if n.role == "infra"] or self.nodes
        count = min(len(self.nodes), max(1, round(math.sqrt(self.n_egress))))
        holders = (holders + [n for n in self.nodes if n not in holders])[:count]
        for k, ip in enumerate(ips):
            holders[k % len(holders)].egress_ips.append(ip)
        blocks = sorted({f"{_ip(ip & ~255)}/24" for ip in ips})
        for node in holders[::2]:
            node.egress_cidrs = blocks  # 3.11's automatic mode
        users = rng.sample(eligible, min(len(eligible), len(ips)))
        for k, ip in enumerate(ips):
            users[k % len(users)].egress_ips.append(ip)

    # -------------------------------------------------------------- policies

    def network_policies(self, ids: _Ids) -> list[str]:
        if not self.policies or self.ppns <= 0:
            return []
        rng = self.rng("policies")
        items = []
        teams = sorted({ns.labels.get("team") for ns in self.namespaces} - {None})
        for ns in self.namespaces:
            if ns.system:
                continue
            for k in range(self.ppns):
                spec = self._policy(rng, ns, k, teams)
                items.append((ns.name, spec[0], spec[1]))
        items.sort(key=lambda item: (item[0], item[1]))
        out = []
        t = _EPOCH + 86400 * 70
        for namespace, name, spec in items:
            t += 7
            out.append(
                f"- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata:\n"
                f'    creationTimestamp: "{_stamp(t)}"\n    generation: 1\n    name: {name}\n'
                f"    namespace: {namespace}\n    resourceVersion: {ids.version()}\n"
                f"    selfLink: /apis/networking.k8s.io/v1/namespaces/{namespace}/"
                f"networkpolicies/{name}\n    uid: {ids.uid()}\n  spec:\n{spec}")
        return out

    @staticmethod
    def _policy(rng: random.Random, ns: _Namespace, k: int, teams: list[str]) -> tuple[str, str]:
        kind = k % 5
        round_ = "" if k < 5 else f"-{k // 5 + 1}"
        app = rng.choice(ns.apps) if ns.apps else None
        target = (f"    podSelector:\n      matchLabels:\n        app: {app.app}\n" if app
                  else "    podSelector: {}\n")
        types = "    policyTypes:\n    - Ingress\n"
        if kind == 0:
            return f"deny-all{round_}", "    podSelector: {}\n" + types
        if kind == 1:
            team = rng.choice(teams) if teams else "frontend"
            _, port, proto, _ = rng.choice(app.ports) if app else ("http", 8080, "TCP", 8080)
            return (f"allow-from-{team}-on-{port}{round_}",
                    f"    ingress:\n    - from:\n      - namespaceSelector:\n"
                    f"          matchLabels:\n            team: {team}\n"
                    f"      ports:\n      - port: {port}\n        protocol: {proto}\n"
                    + target + types)
        if kind == 2:
            peer = rng.choice(ns.apps).app if ns.apps else "client"
            name = f"allow-{peer}-to-{app.app}" if app else f"allow-from-{peer}"
            return (name + round_,
                    f"    ingress:\n    - from:\n      - podSelector:\n"
                    f"          matchLabels:\n            app: {peer}\n" + target + types)
        if kind == 3:
            return (f"allow-from-default-namespace{round_}",
                    "    ingress:\n    - from:\n      - namespaceSelector:\n"
                    "          matchLabels:\n            name: default\n"
                    "    podSelector: {}\n" + types)
        return (f"allow-same-namespace{round_}",
                "    ingress:\n    - from:\n      - podSelector: {}\n    podSelector: {}\n"
                + types)

    def egress_firewalls(self, ids: _Ids) -> list[str]:
        rng = self.rng("firewalls")
        eligible = [ns for ns in self.namespaces if ns.own_vnid]
        wanted = max(1, len(eligible) // 40) if self.n_firewalls is None else self.n_firewalls
        chosen = sorted(rng.sample(eligible, min(wanted, len(eligible))), key=lambda n: n.name)
        out = []
        for ns in chosen:
            rules = [f"  - to:\n      cidrSelector: {self.underlay}\n    type: Allow\n"]
            for _ in range(rng.randrange(1, 5)):
                net = f"{rng.choice(_EXTERNAL_NETS)}.{rng.randrange(256)}.{rng.randrange(256)}.0"
                bits = rng.choice((24, 24, 28, 32))
                if bits == 32:
                    net = net[:-1] + str(rng.randrange(1, 255))
                rules.append(f"  - to:\n      cidrSelector: {net}/{bits}\n"
                             f"    type: {rng.choice(('Allow', 'Allow', 'Deny'))}\n")
            rules.append("  - to:\n      cidrSelector: 0.0.0.0/0\n    type: Deny\n")
            t = _EPOCH + 86400 * 80 + rng.randrange(86400)
            out.append(
                f"- apiVersion: network.openshift.io/v1\n  kind: EgressNetworkPolicy\n"
                f'  metadata:\n    creationTimestamp: "{_stamp(t)}"\n    name: default\n'
                f"    namespace: {ns.name}\n    resourceVersion: {ids.version()}\n"
                f"    selfLink: /apis/network.openshift.io/v1/namespaces/{ns.name}/"
                f"egressnetworkpolicies/default\n    uid: {ids.uid()}\n  spec:\n    egress:\n"
                + "".join("  " + line for rule in rules for line in rule.splitlines(True)))
        return out

    # -------------------------------------------------------------- YAML

    def cluster_network(self) -> str:
        first, first_hsl = self.networks[0]
        entries = "".join(f"- CIDR: {cidr}\n  hostSubnetLength: {hsl}\n"
                          for cidr, hsl in self.networks)
        return (
            "apiVersion: network.openshift.io/v1\n"
            f"clusterNetworks:\n{entries}hostsubnetlength: {first_hsl}\n"
            "kind: ClusterNetwork\nmetadata:\n"
            f'  creationTimestamp: "{_stamp(_EPOCH)}"\n  name: default\n'
            '  resourceVersion: "1003"\n'
            "  selfLink: /apis/network.openshift.io/v1/clusternetworks/default\n"
            f"  uid: {_Ids(self.rng('cn')).uid()}\n"
            f"mtu: {self.mtu}\nnetwork: {first}\npluginName: {self.plugin.value}\n"
            f"serviceNetwork: {self.service_network}\nvxlanPort: {self.vxlan_port}\n")

    def host_subnets(self) -> list[str]:
        out = []
        for node in sorted(self.nodes, key=lambda n: n.host):
            egress = ""
            if node.egress_cidrs:
                egress += "  egressCIDRs:\n" + "".join(f"  - {c}\n" for c in node.egress_cidrs)
            if node.egress_ips:
                egress += "  egressIPs:\n" + "".join(f"  - {_ip(i)}\n" for i in node.egress_ips)
            dpid = (f"      osdn.dev/datapath-id: {_q(node.datapath_id)}\n"
                    if node.datapath_id else "")
            out.append(
                f"- apiVersion: network.openshift.io/v1\n{egress}  host: {node.host}\n"
                f"  hostIP: {_ip(node.ip)}\n  kind: HostSubnet\n  metadata:\n"
                f"    annotations:\n{dpid}"
                f"      pod.network.openshift.io/node-uid: {node.node_uid}\n"
                f'    creationTimestamp: "{_stamp(node.created)}"\n    name: {node.host}\n'
                f"    resourceVersion: {node.version}\n"
                f"    selfLink: /apis/network.openshift.io/v1/hostsubnets/{node.host}\n"
                f"    uid: {node.uid}\n  subnet: {_ip(node.subnet)}/{node.prefix}\n")
        return out

    def net_namespaces(self) -> list[str]:
        out = []
        for ns in sorted(self.namespaces, key=lambda n: n.name):
            egress = ("  egressIPs:\n" + "".join(f"  - {_ip(i)}\n" for i in ns.egress_ips)
                      if ns.egress_ips else "")
            notes = []
            if ns.multicast:
                notes.append('      netnamespace.network.openshift.io/multicast-enabled: "true"\n')
            if ns.change:
                notes.append("      pod.network.openshift.io/multitenant.change-network: "
                             f"{_q(ns.change)}\n")
            annotations = "    annotations:\n" + "".join(notes) if notes else ""
            netid = ("  netid: 0\n" if ns.global_ else
                     f"  netid: {ns.netid}\n" if ns.netid is not None else "")
            out.append(
                f"- apiVersion: network.openshift.io/v1\n{egress}  kind: NetNamespace\n"
                f"  metadata:\n{annotations}"
                f'    creationTimestamp: "{_stamp(ns.created + 2)}"\n    name: {ns.name}\n'
                f"    resourceVersion: {ns.version_nn}\n"
                f"    selfLink: /apis/network.openshift.io/v1/netnamespaces/{ns.name}\n"
                f"    uid: {ns.uid_nn}\n{netid}  netname: {ns.name}\n")
        return out

    def namespace_items(self) -> list[str]:
        out = []
        for ns in sorted(self.namespaces, key=lambda n: n.name):
            labels = ("    labels:\n" + "".join(f"      {k}: {_q(v)}\n"
                                                 for k, v in sorted(ns.labels.items()))
                      if ns.labels else "")
            index = ns.index
            annotations = ""
            if self.detail != "minimal":
                display = "" if ns.system else ns.name.replace("-", " ").title()
                annotations = (
                    "    annotations:\n      openshift.io/description: \"\"\n"
                    f"      openshift.io/display-name: {_q(display)}\n"
                    + ("" if ns.system else "      openshift.io/requester: developer\n")
                    + f"      openshift.io/sa.scc.mcs: s0:c{10 + index // 5},c{index % 5}\n"
                    f"      openshift.io/sa.scc.supplemental-groups: "
                    f"{1000000000 + index * 10000}/10000\n"
                    f"      openshift.io/sa.scc.uid-range: {1000000000 + index * 10000}/10000\n")
            out.append(
                f"- apiVersion: v1\n  kind: Namespace\n  metadata:\n{annotations}"
                f'    creationTimestamp: "{_stamp(ns.created)}"\n{labels}    name: {ns.name}\n'
                f"    resourceVersion: {ns.version_ns}\n"
                f"    selfLink: /api/v1/namespaces/{ns.name}\n    uid: {ns.uid_ns}\n"
                "  spec:\n    finalizers:\n    - kubernetes\n"
                + ("" if ns.system else "    - openshift.io/origin\n")
                + "  status:\n    phase: Active\n")
        return out

    def pod_items(self, ids: _Ids) -> dict[str, list[tuple[str, str, str]]]:
        """host -> [(namespace, name, YAML item)]."""
        by_node: dict[str, list[tuple[str, str, str]]] = {n.host: [] for n in self.nodes}
        detail = self.detail
        for d in self.deployments:
            ns = d.namespace.name
            rs = f"{d.app}-{d.hash}"
            rs_uid = ids.uid()
            labels = (f"      app: {d.app}\n      pod-template-hash: {_q(d.hash)}\n"
                      f"      tier: {d.tier}\n")
            ports = "".join(f"      - containerPort: {port}\n        name: {name}\n"
                            f"        protocol: {proto}\n" for name, port, proto, _ in d.ports)
            container = f"    - image: {d.image}\n      name: {d.app}\n      ports:\n{ports}"
            for pod in d.pods:
                node = pod.node
                assert node is not None
                created = _stamp(pod.created)
                if detail == "minimal":
                    text = (
                        "- apiVersion: v1\n  kind: Pod\n  metadata:\n    annotations:\n"
                        f"      osdn.dev/interface: {pod.interface}\n"
                        f'      osdn.dev/ofport: "{pod.ofport}"\n'
                        f'    creationTimestamp: "{created}"\n    labels:\n{labels}'
                        f"    name: {pod.name}\n    namespace: {ns}\n    uid: {pod.uid}\n"
                        f"  spec:\n    nodeName: {node.host}\n"
                        f"  status:\n    podIP: {_ip(pod.ip)}\n")
                else:
                    text = (
                        "- apiVersion: v1\n  kind: Pod\n  metadata:\n    annotations:\n"
                        "      openshift.io/scc: restricted\n"
                        f"      osdn.dev/interface: {pod.interface}\n"
                        f'      osdn.dev/ofport: "{pod.ofport}"\n'
                        f'    creationTimestamp: "{created}"\n    generateName: {rs}-\n'
                        f"    labels:\n{labels}    name: {pod.name}\n    namespace: {ns}\n"
                        "    ownerReferences:\n    - apiVersion: apps/v1\n"
                        "      blockOwnerDeletion: true\n      controller: true\n"
                        f"      kind: ReplicaSet\n      name: {rs}\n      uid: {rs_uid}\n"
                        f"    resourceVersion: {ids.version()}\n"
                        f"    selfLink: /api/v1/namespaces/{ns}/pods/{pod.name}\n"
                        f"    uid: {pod.uid}\n  spec:\n    containers:\n{container}"
                        + (self._full_container(d) if detail == "full" else "")
                        + "    dnsPolicy: ClusterFirst\n"
                        f"    nodeName: {node.host}\n    restartPolicy: Always\n"
                        "    schedulerName: default-scheduler\n"
                        "    serviceAccountName: default\n"
                        "    terminationGracePeriodSeconds: 30\n  status:\n"
                        + (self._full_status(d, created) if detail == "full" else "")
                        + f"    hostIP: {_ip(node.ip)}\n    phase: Running\n"
                        f"    podIP: {_ip(pod.ip)}\n    qosClass: BestEffort\n"
                        f'    startTime: "{created}"\n')
                by_node[node.host].append((ns, pod.name, text))
        if self.host_network_pods and any(ns.name == "openshift-sdn" for ns in self.namespaces):
            names: set[str] = set()
            for node in self.nodes:
                for app in ("ovs", "sdn"):
                    name = f"{app}-{ids.token(5)}"
                    while name in names:
                        name = f"{app}-{ids.token(5)}"
                    names.add(name)
                    text = (
                        "- apiVersion: v1\n  kind: Pod\n  metadata:\n"
                        f'    creationTimestamp: "{_stamp(node.created + 30)}"\n'
                        f"    generateName: {app}-\n    labels:\n      app: {app}\n"
                        "      component: network\n      openshift.io/component: network\n"
                        f"    name: {name}\n    namespace: openshift-sdn\n"
                        f"    resourceVersion: {ids.version()}\n"
                        f"    selfLink: /api/v1/namespaces/openshift-sdn/pods/{name}\n"
                        f"    uid: {ids.uid()}\n  spec:\n    containers:\n"
                        f"    - image: openshift3/ose-node:v3.11\n      name: {app}\n"
                        "    hostNetwork: true\n    hostPID: true\n"
                        f"    nodeName: {node.host}\n    restartPolicy: Always\n"
                        f"  status:\n    hostIP: {_ip(node.ip)}\n    phase: Running\n"
                        f"    podIP: {_ip(node.ip)}\n")
                    by_node[node.host].append(("openshift-sdn", name, text))
        return by_node

    @staticmethod
    def _full_container(d: _Deployment) -> str:
        return ("      resources: {}\n      securityContext:\n        capabilities:\n"
                "          drop:\n          - KILL\n          - MKNOD\n          - SETGID\n"
                "          - SETUID\n      terminationMessagePath: /dev/termination-log\n"
                "      terminationMessagePolicy: File\n      volumeMounts:\n"
                "      - mountPath: /var/run/secrets/kubernetes.io/serviceaccount\n"
                "        name: default-token\n        readOnly: true\n")

    @staticmethod
    def _full_status(d: _Deployment, created: str) -> str:
        conditions = "".join(
            f"    - lastProbeTime: null\n      lastTransitionTime: \"{created}\"\n"
            f"      status: \"True\"\n      type: {kind}\n"
            for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled"))
        return (f"    conditions:\n{conditions}    containerStatuses:\n"
                f"    - image: {d.image}\n      lastState: {{}}\n      name: {d.app}\n"
                f"      ready: true\n      restartCount: 0\n      state:\n        running:\n"
                f"          startedAt: \"{created}\"\n")

    def service_items(self, ids: _Ids) -> list[str]:
        out = []
        for ns, name, ip, ports, selector, created, uid in sorted(
                self.services, key=lambda s: (s[0].name, s[1])):
            port_text = "".join(f"    - name: {pname}\n      port: {sport}\n"
                                f"      protocol: {proto}\n      targetPort: {cport}\n"
                                for pname, cport, proto, sport in ports)
            select = ("    selector:\n" + "".join(f"      {k}: {v}\n" for k, v in selector)
                      if selector else "")
            labels = (f"    labels:\n      app: {selector[0][1]}\n" if selector else
                      "    labels:\n      component: apiserver\n      provider: kubernetes\n")
            out.append(
                f'- apiVersion: v1\n  kind: Service\n  metadata:\n'
                f'    creationTimestamp: "{_stamp(created)}"\n{labels}    name: {name}\n'
                f"    namespace: {ns.name}\n    resourceVersion: {ids.version()}\n"
                f"    selfLink: /api/v1/namespaces/{ns.name}/services/{name}\n"
                f"    uid: {uid}\n  spec:\n    clusterIP: {ip or 'None'}\n    ports:\n"
                f"{port_text}{select}    sessionAffinity: None\n    type: ClusterIP\n"
                "  status:\n    loadBalancer: {}\n")
        return out

    # -------------------------------------------------------------- all of it

    def run(self) -> dict[str, str]:
        ids = _Ids(self.rng("ids"))
        self.plan_networks()
        self.make_nodes(ids)
        self.make_namespaces(ids)
        self.make_pods(ids)
        self.make_services(ids)
        self.make_egress()
        files = {
            "clusternetwork.yaml": self.cluster_network(),
            "hostsubnets.yaml": _as_list(self.host_subnets()),
            "netnamespaces.yaml": _as_list(self.net_namespaces()),
            "namespaces.yaml": _as_list(self.namespace_items()),
        }
        pods = self.pod_items(ids)
        if self.pods_by_node:
            for host, items in sorted(pods.items()):
                files[f"pods/{host}.yaml"] = _as_list([t for _, _, t in sorted(items)])
        else:
            every = sorted(item for items in pods.values() for item in items)
            files["pods.yaml"] = _as_list([t for _, _, t in every])
        files["services.yaml"] = _as_list(self.service_items(ids))
        policies = self.network_policies(ids)
        if policies:
            files["networkpolicies.yaml"] = _as_list(policies)
        firewalls = self.egress_firewalls(ids)
        if firewalls:
            files["egressnetworkpolicies.yaml"] = _as_list(firewalls)
        return files


def _as_list(items: list[str]) -> str:
    body = "items:\n" + "".join(items) if items else "items: []\n"
    return f'apiVersion: v1\n{body}kind: List\nmetadata:\n  resourceVersion: ""\n  selfLink: ""\n'


# ------------------------------------------------------------------ API

def plugin_of(plugin: str | Plugin) -> Plugin:
    if isinstance(plugin, Plugin):
        return plugin
    if plugin in PLUGINS:
        return PLUGINS[plugin]
    try:
        return Plugin(plugin)
    except ValueError:
        raise ValueError(f"unknown plugin {plugin!r}: one of {', '.join(PLUGINS)}") from None


def generate(nodes: int = 3, namespaces: int = 5, pods_per_node: int = 3,
             services: int | None = None, egress_ips: int | None = None,
             policies_per_namespace: int = 3, plugin: str | Plugin = "multitenant",
             seed: int = 0, *,
             cluster_cidrs: Sequence[str | tuple[str, int]] | None = None,
             host_subnet_length: int | None = None, service_cidr: str | None = None,
             vxlan_port: int = 4789, underlay: str | None = None, mtu: int = 1450,
             egress_firewalls: int | None = None, policies_always: bool = False,
             host_network_pods: bool = True, pods_by_node: bool = False,
             detail: str = "standard") -> dict[str, str]:
    """A cluster as ``{relative file name: YAML text}``; see the module docstring.

    nodes, namespaces, pods_per_node: exact counts (pod-network pods; `pods_per_node` per node).
    services: total, ``kubernetes`` included (default 2 per namespace).
    egress_ips: how many (default one per 20 namespaces).
    policies_per_namespace: NetworkPolicies per project, written only under ovs-networkpolicy
        unless `policies_always`.
    plugin: "subnet", "multitenant", "networkpolicy", a `Plugin` or its pluginName.
    cluster_cidrs: CIDRs ("10.128.0.0/14") or (CIDR, hostSubnetLength) pairs; default: one or
        two chosen from the seed, large enough.  host_subnet_length: for the CIDRs given without
        one (default 8, 9 or 10, from the seed, as long as pods_per_node fit).
    service_cidr, underlay (the hostIPs' network, /24 or larger): default from the seed.
    egress_firewalls: EgressNetworkPolicies (default one per 40 eligible projects, at least 1).
    host_network_pods: add openshift-sdn's host-network sdn/ovs pods (if that namespace exists).
    pods_by_node: write pods as pods/<host>.yaml, one file per node.
    detail: "minimal" (only what the loader reads, plus identity), "standard" (what `oc get`
        prints, without probes, volumes and conditions) or "full".
    Raises ValueError when the parameters cannot make a valid cluster (pods that do not fit a
    node subnet, nodes that do not fit the cluster networks, overlapping CIDRs, ...).
    """
    return _Generator(nodes, namespaces, pods_per_node, services, egress_ips,
                      policies_per_namespace, plugin_of(plugin), seed, cluster_cidrs,
                      host_subnet_length, service_cidr, vxlan_port, underlay, mtu,
                      egress_firewalls, policies_always, host_network_pods, pods_by_node,
                      detail).run()


def write(files: dict[str, str], out: str | os.PathLike[str]) -> int:
    """Write `files` under `out` (created); returns the bytes written."""
    total = 0
    root = Path(out)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode()
        path.write_bytes(data)
        total += len(data)
    return total


def _cidr_arg(text: str) -> str | tuple[str, int]:
    cidr, _, length = text.partition(":")
    return (cidr, int(length)) if length else cidr


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate",
        description="Write a realistic generated cluster as oc-style YAML files.")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--pods-per-node", type=int, default=3)
    parser.add_argument("--services", type=int, default=None, help="default: 2 per namespace")
    parser.add_argument("--egress-ips", type=int, default=None,
                        help="default: one per 20 namespaces")
    parser.add_argument("--policies-per-namespace", type=int, default=3)
    parser.add_argument("--plugin", choices=sorted(PLUGINS), default="multitenant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cluster-cidr", action="append", type=_cidr_arg, default=None,
                        metavar="CIDR[:HOSTSUBNETLENGTH]", help="repeatable")
    parser.add_argument("--host-subnet-length", type=int, default=None)
    parser.add_argument("--service-cidr", default=None)
    parser.add_argument("--underlay", default=None, help="the hostIPs' network")
    parser.add_argument("--vxlan-port", type=int, default=4789)
    parser.add_argument("--mtu", type=int, default=1450)
    parser.add_argument("--egress-firewalls", type=int, default=None)
    parser.add_argument("--policies-always", action="store_true",
                        help="write NetworkPolicies under every plugin")
    parser.add_argument("--no-host-network-pods", action="store_true")
    parser.add_argument("--pods-by-node", action="store_true",
                        help="pods/<host>.yaml per node instead of one pods.yaml")
    parser.add_argument("--detail", choices=DETAILS, default="standard")
    parser.add_argument("--out", required=True, help="output directory (created)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        files = generate(args.nodes, args.namespaces, args.pods_per_node, args.services,
                         args.egress_ips, args.policies_per_namespace, args.plugin, args.seed,
                         cluster_cidrs=args.cluster_cidr,
                         host_subnet_length=args.host_subnet_length,
                         service_cidr=args.service_cidr, vxlan_port=args.vxlan_port,
                         underlay=args.underlay, mtu=args.mtu,
                         egress_firewalls=args.egress_firewalls,
                         policies_always=args.policies_always,
                         host_network_pods=not args.no_host_network_pods,
                         pods_by_node=args.pods_by_node, detail=args.detail)
    except ValueError as error:
        print(f"bench.generate: {error}", file=sys.stderr)
        return 2
    generated = time.perf_counter() - started
    size = write(files, args.out)
    print(f"{len(files)} files, {size / 1e6:.1f} MB in {args.out}: generated in "
          f"{generated:.1f} s, written in {time.perf_counter() - started - generated:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
