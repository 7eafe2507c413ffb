"""Mininet names for a cluster's nodes and pods: short, unique, parseable by Mininet's CLI."""

from __future__ import annotations

import re

# Debian's mininet is importable: the package's __init__ has run import_mininet().
from mininet.cli import CLI

from topology.model import Topology

_CLI_WORDS = {name[3:] for name in dir(CLI) if name.startswith("do_")}


def _sanitize(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "x"
    return name if name[0].isalpha() else "p" + name


def pod_base_name(name: str) -> str:
    """web-76c94f7546-t8pfq -> web, docker-registry-1-x2vq7 -> docker_registry."""
    for pattern in (r"^(.*)-[0-9a-f]{8,10}-[0-9a-z]{5}$", r"^(.*)-\d+-[0-9a-z]{5}$"):
        m = re.match(pattern, name)
        if m:
            return _sanitize(m.group(1))
    return _sanitize(name)


def mininet_names(topology: Topology) -> tuple[dict[str, str], dict[str, str]]:
    """(HostSubnet host -> Mininet node name, pod key -> Mininet host name): short names
    that Mininet's CLI can parse (letters, digits, _), unique, never a CLI command."""
    taken = set(_CLI_WORDS) | {"u0", "c0"}
    nodes: dict[str, str] = {}
    for hs in topology.host_subnets:
        base = _sanitize(hs.host.split(".")[0])
        name, i = base, 2
        while name in taken:
            name, i = f"{base}{i}", i + 1
        nodes[hs.host] = name
        taken.add(name)
    pods = [p for p in topology.pods if p.ofport is not None]
    counts: dict[str, int] = {}
    for pod in pods:
        counts[pod_base_name(pod.name)] = counts.get(pod_base_name(pod.name), 0) + 1
    seen: dict[str, int] = {}
    names: dict[str, str] = {}
    for pod in pods:
        base = pod_base_name(pod.name)
        if counts[base] > 1:
            seen[base] = seen.get(base, 0) + 1
            base = f"{base}{seen[base]}"
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        names[pod.key] = name
        taken.add(name)
    return nodes, names
