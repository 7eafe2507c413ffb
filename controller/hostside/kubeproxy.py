"""kube-proxy's part of a node's host side (iptables mode, Kubernetes 1.11 as shipped with
OpenShift 3.11): KUBE-SERVICES -> KUBE-SVC-<hash> -> KUBE-SEP-<hash> DNAT to every pod a
Service selects, spread with `statistic random`; KUBE-MARK-MASQ / KUBE-POSTROUTING for hairpin
traffic; a REJECT for a Service without endpoints.  Pure: rules as argv lists, no I/O."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable

from topology.model import Pod, Service, ServicePort, Topology

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"

KUBE_PROTOCOLS = ("TCP", "UDP")  # SCTP services arrived after 3.11's kube-proxy (1.11)

NamedPortResolver = Callable[[Pod, str, str], int | None]
"""(pod, protocol, port name) -> the pod's container port of that name, or None."""


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(name + protocol)), 16 characters."""
    digest = hashlib.sha256((service_port_name + protocol).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_port_name(svc: Service, port: ServicePort) -> str:
    """ServicePortName.String(): ``namespace/name:portname`` (the colon even when unnamed)."""
    return f"{svc.namespace}/{svc.name}:{port.name}"


def svc_chain(svc: Service, port: ServicePort) -> str:
    return "KUBE-SVC-" + port_proto_hash(service_port_name(svc, port), port.protocol.lower())


def sep_chain(svc: Service, port: ServicePort, endpoint: str) -> str:
    name, protocol = service_port_name(svc, port), port.protocol.lower()
    return "KUBE-SEP-" + port_proto_hash(name, protocol + endpoint)


def endpoints(topology: Topology, svc: Service, port: ServicePort,
              named_port: NamedPortResolver | None = None,
              warnings: list[str] | None = None) -> list[str]:
    """``ip:port`` of every pod the Service selects, by pod address (the endpoints
    controller's order).  A Service without a selector has no endpoints here."""
    if not svc.selector:
        return []
    result = []
    warned = False
    for pod in sorted(_selected(topology, svc), key=lambda pod: pod.ip):
        target = port.port if port.target_port is None else port.target_port
        if isinstance(target, str):
            resolver = named_port or (lambda p, protocol, name: p.named_port(name, protocol))
            resolved = resolver(pod, port.protocol, target)
            if resolved is None and (named_port is not None or pod.container_ports):
                continue  # the endpoints controller leaves a pod without that port out
            if resolved is None:
                if not warned and warnings is not None:
                    warnings.append(
                        f"Service/{svc.namespace}/{svc.name}: named targetPort {target!r} "
                        f"cannot be resolved (no container ports); using port {port.port}")
                warned = True
                resolved = port.port
            target = resolved
        result.append(f"{pod.ip}:{target}")
    return result


def _selected(topology: Topology, svc: Service) -> Iterable[Pod]:
    for pod in topology.pods:
        labels = pod.label_map
        if pod.namespace == svc.namespace and all(labels.get(k) == v for k, v in svc.selector):
            yield pod


def kube_proxy_rules(topology: Topology, masquerade_bit: int,
                     named_port: NamedPortResolver | None,
                     filter_chains: dict[str, list[list[str]]],
                     nat_chains: dict[str, list[list[str]]], warnings: list[str]) -> None:
    """Add kube-proxy's chains (name -> rules as argv lists) to the filter and nat tables'."""
    value = 1 << masquerade_bit
    mark = f"0x{value:08x}/0x{value:08x}"  # Go's %#08x
    filter_services: list[list[str]] = []
    nat_services: list[list[str]] = []
    filter_chains[KUBE_SERVICES] = filter_services
    nat_chains[KUBE_SERVICES] = nat_services
    nat_chains[KUBE_POSTROUTING] = [
        ["-m", "comment", "--comment", "kubernetes service traffic requiring SNAT",
         "-m", "mark", "--mark", mark, "-j", "MASQUERADE"]]
    nat_chains[KUBE_MARK_MASQ] = [["-j", "MARK", "--set-xmark", mark]]

    services = sorted((svc for svc in topology.services if svc.cluster_ip is not None),
                      key=lambda svc: (svc.namespace, svc.name))
    for svc in services:
        for port in svc.ports:
            if port.protocol not in KUBE_PROTOCOLS:
                continue
            name, protocol = service_port_name(svc, port), port.protocol.lower()
            match = ["-m", protocol, "-p", protocol, "-d", f"{svc.cluster_ip}/32",
                     "--dport", str(port.port)]
            eps = endpoints(topology, svc, port, named_port, warnings)
            if not eps:
                filter_services.append(["-m", "comment", "--comment", f"{name} has no endpoints",
                                        *match, "-j", "REJECT"])
                continue
            chain = svc_chain(svc, port)
            nat_services.append(["-m", "comment", "--comment", f"{name} cluster IP", *match,
                                 "-j", chain])
            balance: list[list[str]] = []
            nat_chains[chain] = balance
            for i, endpoint in enumerate(eps):
                sep = sep_chain(svc, port, endpoint)
                rule = ["-m", "comment", "--comment", name]
                if i < len(eps) - 1:  # the last endpoint takes what is left
                    rule += ["-m", "statistic", "--mode", "random",
                             "--probability", f"{1.0 / (len(eps) - i):0.5f}"]
                balance.append([*rule, "-j", sep])
                nat_chains[sep] = [
                    ["-m", "comment", "--comment", name, "-s",
                     f"{endpoint.split(':')[0]}/32", "-j", KUBE_MARK_MASQ],
                    ["-m", "comment", "--comment", name, "-m", protocol, "-p", protocol,
                     "-j", "DNAT", "--to-destination", endpoint],
                ]

