"""Traffic and what it should do: the plugin's expected reachability (from the project's one
oracle, `lab.policy_oracle`), pings of many pairs at once, and Mininet's CLI on a cluster."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

# Debian's mininet is importable: the package's __init__ has run import_mininet().
from mininet.cli import CLI
from mininet.log import output

from lab.policy_oracle import PING_RULES, plugin_allows
from topology.model import Pod, Topology

from .network import OsdnNet
from .nodes import PodHost

RULES = PING_RULES  # each plugin's rule for a ping, in a line


def expected_reachable(topology: Topology, src: Pod, dst: Pod) -> bool:
    """Whether the plugin lets `src` ping `dst`."""
    return plugin_allows(topology, src, dst, None)


def ping_pairs(pairs: Sequence[tuple[PodHost, PodHost]], timeout: int = 1
               ) -> dict[tuple[str, str], bool]:
    """`ping -c1 -W timeout` for every pair at once (one process per pair, launched from
    each source host's namespace); {(src name, dst name): answered}."""
    procs = [(a, b, a.popen(["ping", "-n", "-q", "-c1", "-W", str(timeout), b.IP()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
             for a, b in pairs]
    return {(a.name, b.name): proc.wait() == 0 for a, b, proc in procs}


def run_cli(osnet: OsdnNet) -> None:
    output("*** Mininet CLI: pingall, iperf A B, link NODE u0 down|up, dpctl dump-flows, "
           "c0 / node / pod commands; exit or Ctrl-D leaves (and removes everything)\n")
    CLI(osnet.net)

