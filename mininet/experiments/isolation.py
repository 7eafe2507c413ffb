"""Experiment 1: Mininet's pingall on the cluster against the plugin's isolation matrix.

    mininet/run isolation examples/seed-cluster
    mininet/run isolation examples/rich-cluster --plugin multitenant --parallel

Builds the cluster (one OVS per node, VXLAN between them, the controller programming every
br0), runs Mininet's own pingall (`net.pingFull`, ping -c1 -W1 for every ordered pod pair;
`--parallel` runs the same pings all at once, for big clusters with many isolated pairs),
prints Mininet's matrix, the expected one (from the VNIDs / policies, not from the flows) and
every pair where they differ.  Exit status 0 iff they are equal.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osdn_topo import (  # noqa: E402
    RULES,
    add_cluster_arguments,
    expected_reachable,
    osdn_network,
    output,
    ping_pairs,
    run_cli,
    setLogLevel,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mininet/run isolation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cluster_arguments(parser)
    parser.add_argument("--parallel", action="store_true",
                        help="ping every pair at once instead of Mininet's sequential pingall")
    parser.add_argument("--cli", action="store_true", help="open Mininet's CLI afterwards")
    args = parser.parse_args(argv)
    setLogLevel("info" if args.verbose else "output")

    with osdn_network(args.paths, args.plugin, name="isolation") as osnet:
        topology, net = osnet.topology, osnet.net
        pods = osnet.pods()
        print(f"\n*** pods ({len(pods)}):\n{osnet.describe()}\n", flush=True)
        started = time.monotonic()
        if args.parallel:
            hosts = list(net.hosts)
            got = ping_pairs([(a, b) for a, b in itertools.permutations(hosts, 2)])
            output("*** Ping: testing ping reachability (all pairs at once)\n")
            for a in hosts:
                output(f"{a.name} -> " + " ".join(b.name if got[(a.name, b.name)] else "X"
                                                  for b in hosts if b is not a) + "\n")
        else:
            got = {(src.name, dst.name): outputs[1] > 0
                   for src, dst, outputs in net.pingFull(timeout="1")}
        elapsed = time.monotonic() - started

        expected = {}
        for src, dst in itertools.permutations(pods, 2):
            expected[(osnet.pod_names[src.key], osnet.pod_names[dst.key])] = \
                expected_reachable(topology, src, dst)
        plugin = topology.cluster_network.plugin
        print(f"\n*** expected ({RULES[plugin]}):")
        names = [host.name for host in net.hosts]  # Mininet's order, as pingall prints
        for a in names:
            print(f"{a} -> " + " ".join(b if expected[(a, b)] else "X" for b in names if b != a))

        wrong = sorted(pair for pair in expected if expected[pair] != got.get(pair))
        reachable = sum(expected.values())
        print(f"\n*** {len(expected)} ordered pairs in {elapsed:.1f} s: {reachable} should "
              f"answer, {len(expected) - reachable} should be isolated")
        for a, b in wrong:
            src, dst = osnet.pod_of(a), osnet.pod_of(b)
            print(f"  MISMATCH {a} ({src.key}, VNID {topology.vnid_of(src.namespace)}) -> "
                  f"{b} ({dst.key}, VNID {topology.vnid_of(dst.namespace)}): expected "
                  f"{'reply' if expected[(a, b)] else 'isolation'}, got "
                  f"{'reply' if got.get((a, b)) else 'no reply'}")
        if wrong:
            print(f"FAIL: pingall differs from the isolation matrix in {len(wrong)} of "
                  f"{len(expected)} pairs\ncontroller log tail:\n{osnet.controller.log_tail()}")
        else:
            print(f"PASS: pingall matches the {plugin.name.lower()} isolation matrix "
                  f"({len(expected)} pairs)")
        sys.stdout.flush()
        if args.cli:
            run_cli(osnet)
        return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
