"""Small hand-built topologies for compiler unit tests (no YAML, no loader)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from topology.model import (
    ClusterNetwork,
    ClusterNetworkEntry,
    EgressNetworkPolicy,
    EgressRule,
    HostSubnet,
    Namespace,
    NetNamespace,
    NetworkPolicy,
    Plugin,
    Pod,
    Service,
    ServicePort,
    Topology,
)


def node(host: str, ip: str, subnet: str, egress_ips: tuple[str, ...] = (),
         fixed_vnid: int | None = None) -> HostSubnet:
    return HostSubnet(host, f"uid-{host}", host, IPv4Address(ip), IPv4Network(subnet),
                      int(IPv4Address(ip)), tuple(IPv4Address(e) for e in egress_ips),
                      fixed_vnid=fixed_vnid)


def netns(name: str, netid: int, egress_ips: tuple[str, ...] = (),
          multicast: bool = False) -> NetNamespace:
    return NetNamespace(name, f"uid-{name}", netid, tuple(IPv4Address(e) for e in egress_ips),
                        multicast)


def pod(namespace: str, name: str, host: str, ip: str, ofport: int | None,
        **labels: str) -> Pod:
    return Pod(namespace, name, f"uid-{name}", host, IPv4Address(ip), tuple(labels.items()),
               f"veth-{name}"[:15], ofport)


def service(namespace: str, name: str, ip: str, *ports: tuple[str, int]) -> Service:
    return Service(namespace, name, f"uid-{name}", IPv4Address(ip),
                   tuple(ServicePort(proto, port) for proto, port in ports))


SEED_NODES = (node("master", "192.168.108.110", "10.128.0.0/23"),
              node("node1", "192.168.108.111", "10.131.0.0/23"),
              node("node2", "192.168.108.112", "10.130.0.0/23"),
              node("infra", "192.168.108.113", "10.129.0.0/23", ("192.168.108.200",)))
SEED_SPACES = (netns("default", 0), netns("kube-public", 0x82F8B2, ("192.168.108.200",)),
               netns("kube-system", 272037))
SEED_PODS = (pod("default", "web", "node2", "10.130.0.5", 3, app="web"),
             pod("default", "tomcat-nginx", "node2", "10.130.0.6", 4),
             pod("default", "tomcat", "node1", "10.131.0.4", 3, app="tomcat"),
             pod("kube-public", "tn", "master", "10.128.0.56", 4))
SEED_SERVICES = (service("default", "tomcat-service", "172.30.161.148", ("TCP", 8080)),)


def seed(plugin: Plugin = Plugin.MULTITENANT, **changes: object) -> Topology:
    cluster = ClusterNetwork("default", "uid-cn",
                             (ClusterNetworkEntry(IPv4Network("10.128.0.0/14"), 9),),
                             IPv4Network("172.30.0.0/16"), plugin)
    topology = Topology(cluster, SEED_NODES, SEED_SPACES,
                        tuple(Namespace(nn.name) for nn in SEED_SPACES), SEED_PODS,
                        SEED_SERVICES)
    return replace(topology, **changes)  # type: ignore[arg-type]


__all__ = ["node", "netns", "pod", "service", "seed", "EgressNetworkPolicy", "EgressRule",
           "NetworkPolicy", "Namespace"]
