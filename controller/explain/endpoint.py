"""SRC and DST as users name them: a pod, a Service, a node, the outside world, or an address.

    NAMESPACE/NAME            a pod
    svc/NAMESPACE/NAME[:PORT] a Service (its ClusterIP; PORT: a port number or name)
    HOST                      a node, by HostSubnet host: its host network (the hostIP)
    external[:IP]             an address outside the cluster (default 203.0.113.10)
    IP                        any address; a pod's, a node's or a ClusterIP is named as such

DST may end in `:PORT` (pods, IPs, external with an IP: `external:1.2.3.4:443`) and in
`/tcp`, `/udp` or `/icmp`.  Pure: no OVS, no I/O.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from topology.errors import OsdnError
from topology.model import HostSubnet, Pod, Service, ServicePort, Topology

PROTOCOLS = ("tcp", "udp", "icmp")
DEFAULT_EXTERNAL = IPv4Address("203.0.113.10")  # TEST-NET-3: outside any cluster
DEFAULT_PORT = 80  # a TCP/UDP destination with no port given and none to infer


class EndpointError(OsdnError, ValueError):
    """SRC or DST names nothing in the topology, or is malformed."""


@dataclass(frozen=True)
class Endpoint:
    """One end of the packet.  `kind`: "pod", "service", "node", "external" or "ip"."""

    kind: str
    text: str  # as the user wrote it
    ip: IPv4Address
    pod: Pod | None = None
    service: Service | None = None
    service_port: ServicePort | None = None
    node: HostSubnet | None = None
    port: int | None = None  # L4 destination port (DST only)
    protocol: str | None = None  # "tcp", "udp" or "icmp" when DST named one

    @property
    def label(self) -> str:
        """"Pod default/web (10.130.0.5)", "Service default/tomcat-service (172.30.1.2:8080)"."""
        if self.pod is not None:
            return f"Pod {self.pod.key} ({self.ip})"
        if self.service is not None:
            port = f":{self.port}" if self.port is not None else ""
            return f"Service {self.service.namespace}/{self.service.name} ({self.ip}{port})"
        if self.node is not None:
            return f"node {self.node.host} ({self.ip})"
        return f"{'external address' if self.kind == 'external' else 'address'} {self.ip}"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "text": self.text, "ip": str(self.ip), "label": self.label,
                "pod": self.pod.key if self.pod else None,
                "service": f"{self.service.namespace}/{self.service.name}"
                if self.service else None,
                "node": self.node.host if self.node else None,
                "port": self.port, "protocol": self.protocol}


def _split_protocol(text: str) -> tuple[str, str | None]:
    head, sep, proto = text.rpartition("/")
    if sep and proto.lower() in PROTOCOLS:
        return head, proto.lower()
    return text, None


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise EndpointError(f"{text!r}: port {value!r} is not a number 1..65535")
    return int(value)


def _close(word: str, candidates: list[str]) -> str:
    near = difflib.get_close_matches(word, candidates, n=5, cutoff=0.5)
    if not near:  # also names that merely contain what was typed
        near = [c for c in candidates if word and word.lower() in c.lower()][:5]
    return f"; did you mean {', '.join(near)}?" if near else ""


def _by_ip(topology: Topology, text: str, ip: IPv4Address, port: int | None,
           protocol: str | None) -> Endpoint:
    """An address, named after what owns it when something in the topology does."""
    pod = next((p for p in topology.pods if p.ip == ip), None)
    if pod is not None:
        return Endpoint("pod", text, ip, pod=pod, port=port, protocol=protocol)
    node = next((hs for hs in topology.host_subnets if hs.host_ip == ip), None)
    if node is not None:
        return Endpoint("node", text, ip, node=node, port=port, protocol=protocol)
    svc = next((s for s in topology.services if s.cluster_ip == ip), None)
    if svc is not None:
        return _service_endpoint(text, svc, None if port is None else str(port), protocol)
    return Endpoint("ip", text, ip, port=port, protocol=protocol)


def _service_endpoint(text: str, svc: Service, port_text: str | None,
                      protocol: str | None) -> Endpoint:
    assert svc.cluster_ip is not None
    ports = [p for p in svc.ports
             if protocol in (None, "icmp") or p.protocol.lower() == protocol]
    chosen: ServicePort | None
    if port_text is None:
        chosen = ports[0] if ports else None
    else:
        chosen = next((p for p in ports if str(p.port) == port_text or p.name == port_text),
                      None)
        if chosen is None:
            known = ", ".join(f"{p.port}/{p.protocol}" + (f" ({p.name})" if p.name else "")
                              for p in svc.ports) or "none"
            raise EndpointError(f"{text!r}: Service {svc.namespace}/{svc.name} has no port "
                                f"{port_text}{'/' + protocol if protocol else ''} "
                                f"(ports: {known})")
    return Endpoint("service", text, svc.cluster_ip, service=svc, service_port=chosen,
                    port=chosen.port if chosen else None,
                    protocol=protocol or (chosen.protocol.lower() if chosen else None))


def _service(topology: Topology, text: str, rest: str, protocol: str | None) -> Endpoint:
    name, _, port_text = rest.partition(":")
    if name.count("/") != 1:
        raise EndpointError(f"{text!r}: a Service is svc/NAMESPACE/NAME[:PORT]")
    namespace, svc_name = name.split("/")
    svc = next((s for s in topology.services
                if s.namespace == namespace and s.name == svc_name), None)
    if svc is None:
        known = sorted(f"svc/{s.namespace}/{s.name}" for s in topology.services)
        raise EndpointError(f"{text!r}: no Service {name}{_close('svc/' + name, known)}")
    if svc.cluster_ip is None:
        raise EndpointError(f"{text!r}: Service {name} is headless (no ClusterIP)")
    return _service_endpoint(text, svc, port_text or None, protocol)


def _external(text: str, rest: str, protocol: str | None) -> Endpoint:
    if not rest:
        return Endpoint("external", text, DEFAULT_EXTERNAL, protocol=protocol)
    addr, _, port_text = rest.partition(":")
    try:
        ip = ip_address(addr)
    except ValueError:
        raise EndpointError(f"{text!r}: {addr!r} is not an IPv4 address") from None
    if not isinstance(ip, IPv4Address):
        raise EndpointError(f"{text!r}: only IPv4 addresses exist in openshift-sdn")
    return Endpoint("external", text, ip, port=_port(text, port_text) if port_text else None,
                    protocol=protocol)


def parse_endpoint(topology: Topology, text: str) -> Endpoint:
    """What `text` names (see the module docstring); EndpointError listing close names."""
    body, protocol = _split_protocol(text.strip())
    if not body:
        raise EndpointError(f"{text!r}: empty endpoint")
    if body.startswith("svc/"):
        return _service(topology, text, body[len("svc/"):], protocol)
    if body == "external" or body.startswith("external:"):
        return _external(text, body[len("external:"):] if ":" in body else "", protocol)
    name, _, port_text = body.partition(":")
    port = _port(text, port_text) if port_text else None
    try:
        ip = ip_address(name)
    except ValueError:
        ip = None
    if ip is not None:
        if not isinstance(ip, IPv4Address):
            raise EndpointError(f"{text!r}: only IPv4 addresses exist in openshift-sdn")
        return _by_ip(topology, text, ip, port, protocol)
    if "/" in name:
        namespace, _, pod_name = name.partition("/")
        pod = next((p for p in topology.pods
                    if p.namespace == namespace and p.name == pod_name), None)
        if pod is None:
            known = sorted(p.key for p in topology.pods)
            raise EndpointError(f"{text!r}: no pod {name}{_close(name, known)}")
        return Endpoint("pod", text, pod.ip, pod=pod, port=port, protocol=protocol)
    node = topology.host_subnet(name)
    if node is None:
        node = next((hs for hs in topology.host_subnets if hs.name == name), None)
    if node is None:
        hosts = sorted(hs.host for hs in topology.host_subnets)
        pods = sorted(p.key for p in topology.pods)
        raise EndpointError(
            f"{text!r}: not a node (hosts: {', '.join(hosts)}), nor NAMESPACE/NAME, "
            f"svc/NAMESPACE/NAME, external[:IP] or an IP{_close(name, hosts + pods)}")
    return Endpoint("node", text, node.host_ip, node=node, port=port, protocol=protocol)
