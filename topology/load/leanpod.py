"""Stage 2, the fast path for Pods: most of the loading time of a big cluster is its pods.

`lean_pod` reads a well-formed Pod straight from its mapping; anything unusual is left to the
general path (`kinds`), which then reads and reports it.  tests/unit/test_lean_pod.py checks
that both paths make the same objects and issues.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from topology.load.converters import interface_text, ofport_text
from topology.load.kinds import SKIPPED, ParsedObject, derived_uid
from topology.load.yamlreader import YamlList, YamlMap
from topology.model import ANNOTATION_INTERFACE, ANNOTATION_OFPORT, ContainerPort, Origin, Pod


def lean_pod(path: str, raw: YamlMap) -> ParsedObject | None:
    """A Pod read straight from its mapping: what the general path (`kinds`) would make of
    it, when every field it reads is present with its type (the case of all the 100,000 pods
    of a big cluster), in a fraction of the time.  None, for anything else (a field of another
    type, a value that does not convert): the general path then reads the pod and reports on
    it."""
    meta = raw.get("metadata")
    if type(meta) is not YamlMap:
        return None
    name, namespace, uid = meta.get("name"), meta.get("namespace"), meta.get("uid")
    if type(name) is not str or not name:
        return None
    if namespace is None or namespace == "":
        namespace = "default"
    elif type(namespace) is not str:
        return None
    if uid is None or uid == "":
        uid = derived_uid(f"Pod/{namespace}/{name}")
    elif type(uid) is not str:
        return None
    labels = meta.get("labels")
    if labels is None or labels == "":
        label_pairs: tuple[tuple[str, str], ...] = ()
    elif type(labels) is YamlMap and all(type(v) is str for v in labels.values()):
        label_pairs = tuple(sorted(labels.items()))
    else:
        return None
    annotations = meta.get("annotations")
    if annotations == "":
        annotations = None
    if annotations is not None and type(annotations) is not YamlMap:
        return None
    spec, status = raw.get("spec"), raw.get("status")
    if type(spec) is not YamlMap or (status is not None and status != ""
                                     and type(status) is not YamlMap):
        return None
    host_network = spec.get("hostNetwork")
    if host_network is not None and host_network != "" and type(host_network) is not bool:
        return None
    origin = Origin(path, raw.line)
    pod_ip = status.get("podIP") if type(status) is YamlMap else None
    if host_network is True or pod_ip is None or pod_ip == "":
        value: Any = SKIPPED  # no port on br0 (as kinds._parse_pod decides)
    else:
        node = spec.get("nodeName")
        if type(node) is not str or not node or type(pod_ip) is not str:
            return None
        try:
            ip = IPv4Address(pod_ip)
            interface = ofport = None
            if annotations is not None:
                text = annotations.get(ANNOTATION_INTERFACE)
                if text is not None and text != "":
                    interface = interface_text(text) if type(text) is str else _no(text)
                text = annotations.get(ANNOTATION_OFPORT)
                if text is not None and text != "":
                    ofport = ofport_text(text) if type(text) is str else _no(text)
            ports = _lean_container_ports(spec)
        except ValueError:
            return None
        value = Pod(namespace, name, uid, node, ip, label_pairs, interface, ofport, origin,
                    ports)
    return ParsedObject("Pod", f"Pod/{namespace}/{name}", name, namespace, origin, raw, value)


def _lean_container_ports(spec: YamlMap) -> tuple[ContainerPort, ...]:
    """`kinds._parse_pod`'s named container ports; ValueError where it would report an issue."""
    containers = spec.get("containers")
    if containers is None or containers == "":
        return ()
    if type(containers) is not YamlList:
        raise ValueError("containers")
    ports = []
    for container in containers:
        if type(container) is not YamlMap:
            raise ValueError("container")
        items = container.get("ports")
        if items is None or items == "":
            continue
        if type(items) is not YamlList:
            raise ValueError("ports")
        for port in items:
            if type(port) is not YamlMap:
                raise ValueError("port")
            number, protocol, name = port.get("containerPort"), port.get("protocol"), \
                port.get("name")
            if type(number) is not int or not 1 <= number <= 65535:
                raise ValueError("containerPort")
            if protocol is None or protocol == "":
                protocol = "TCP"
            elif protocol not in ("TCP", "UDP", "SCTP") or type(protocol) is not str:
                raise ValueError("protocol")
            if name is None or name == "":
                continue  # unnamed: no Service can name it
            if type(name) is not str:
                raise ValueError("name")
            ports.append(ContainerPort(name, number, protocol))
    return tuple(ports)


def _no(value: object) -> Any:
    raise ValueError(f"not a string: {value!r}")
