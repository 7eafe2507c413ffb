"""Mininet's CLI on an osdn cluster.

    mininet/run cli examples/seed-cluster
    mininet/run cli examples/rich-cluster --plugin networkpolicy --delay 2ms --bw 200

Builds the cluster as the experiments do, waits until every br0 is in sync, prints the pods
and opens Mininet's CLI: `pingall`, `iperf web tomcat`, `link node1 u0 down`,
`dpctl dump-flows table=0`, `web curl ...`, `node2 ovs-appctl ...`, `nodes`, `net`, `links`.
Leaving the CLI removes everything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osdn_topo import add_cluster_arguments, osdn_network, run_cli, setLogLevel  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mininet/run cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cluster_arguments(parser)
    parser.add_argument("--delay", help="underlay delay per link end, e.g. 5ms")
    parser.add_argument("--bw", type=float, help="underlay bandwidth, Mbit/s")
    parser.add_argument("--loss", type=float, help="underlay loss, %%")
    args = parser.parse_args(argv)
    setLogLevel("info" if args.verbose else "output")
    shape = {k: v for k, v in (("delay", args.delay), ("bw", args.bw), ("loss", args.loss))
             if v}
    with osdn_network(args.paths, args.plugin, underlay_link=shape or None, name="cli") as osnet:
        print(f"\n*** pods:\n{osnet.describe()}\n*** nodes: "
              + ", ".join(f"{name} ({host})" for host, name in osnet.node_names.items())
              + "; underlay switch u0; controller c0\n", flush=True)
        run_cli(osnet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
