"""What both benchmarks (`bench.run`'s controller against `ovs-ofctl`, and `bench.kube`'s API
source against the file source) share: the result record, the log line, timing, the
generated cluster on disk, and the node they measure."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.generate import generate, write
from topology.model import HostSubnet, Topology

__all__ = ["Result", "log", "measured_host", "timed", "write_cluster"]


@dataclass
class Result:
    plugin: str
    cluster: dict[str, Any] = field(default_factory=dict)
    node: str = ""
    flows: int = 0
    numbers: dict[str, Any] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """`function(*args, **kwargs)` and the seconds it took."""
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


def write_cluster(plugin: str, params: dict[str, Any], seed: int, directory: Path) -> int:
    """Generate the cluster (one pod file per node, minimal detail) into `directory`; its
    size in bytes."""
    log(f"{plugin}: generating {params}")
    files = generate(plugin=plugin, seed=seed, pods_by_node=True, detail="minimal", **params)
    return write(files, directory)


def measured_host(topology: Topology) -> HostSubnet:
    """The node a benchmark measures: the middle one of those with attached pods."""
    hosts = [hs for hs in topology.host_subnets
             if any(p.node == hs.host and p.interface for p in topology.pods)]
    return hosts[len(hosts) // 2]
