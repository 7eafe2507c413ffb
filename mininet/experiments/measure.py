"""Experiment 3: latency and throughput through VXLAN over a shaped underlay, against one node.

    mininet/run measure examples/seed-cluster                      # 5 ms, 100 Mbit/s links
    mininet/run measure examples/seed-cluster --delay 10ms --bw 50 --loss 0.1 --seconds 10

Every node's uplink is a Mininet TCLink with the given delay/bandwidth/loss (netem + htb on
both ends; on a kernel without sch_netem, like this project's machines, a delay line --
mininet/delayline.py -- in each uplink does delay and loss, the TCLink's htb the bandwidth).
From one source pod it measures, to a pod on the SAME node (br0 only: pod ->
table 70 -> pod) and to a pod on ANOTHER node (br0 -> vxlan0 -> br-phy -> uplink -> u0 ->
uplink -> br-phy -> vxlan0 -> br0):

  * round-trip time: `ping -c N -i 0.05` (min/avg/max/mdev); across nodes a request and its
    reply each cross two shaped links, so the underlay adds 4 x delay;
  * TCP throughput: iperf 2 for --seconds, run by the fixed `net.iperf` of OsdnMininet (the
    same command the CLI's `iperf` uses); across nodes at most --bw less VXLAN's 50 bytes.

Prints one table.  Exit status 0 iff every measurement produced a number and the cross-node
RTT shows the configured delay (>= 4 x delay).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osdn_topo import (  # noqa: E402
    OsdnNet,
    Pod,
    add_cluster_arguments,
    expected_reachable,
    netem_available,
    osdn_network,
    setLogLevel,
)


def delay_ms(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a delay: {text!r} (e.g. 5ms)")
    value, unit = float(m.group(1)), m.group(2) or "ms"
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def pick(osnet: OsdnNet, src: str | None) -> tuple[Pod, Pod, Pod]:
    """A source pod with a reachable pod on its own node and one on another node."""
    topology = osnet.topology
    for s in [osnet.find_pod(src)] if src else osnet.pods():
        same = [d for d in osnet.pods() if d is not s and d.node == s.node
                and expected_reachable(topology, s, d)]
        cross = [d for d in osnet.pods() if d.node != s.node
                 and expected_reachable(topology, s, d)]
        if same and cross:
            return s, same[0], cross[0]
    raise SystemExit("no pod has a reachable peer both on its own node and on another node")


def rtt(osnet: OsdnNet, src: Pod, dst: Pod, count: int) -> tuple[float, float, float, float, int]:
    """(min, avg, max, mdev) in ms and packets lost."""
    host = osnet.host(src)
    host.cmd(f"ping -n -q -c 2 -W 1 {dst.ip}")  # ARP, conntrack: out of the measurement
    out = host.cmd(f"ping -n -q -c {count} -i 0.05 -W 2 {dst.ip}")
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", out)
    sent = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    if not m or not sent:
        raise RuntimeError(f"ping {src.key} -> {dst.ip} failed:\n{out}")
    lost = int(sent.group(1)) - int(sent.group(2))
    return (*(float(x) for x in m.groups()), lost)  # type: ignore[return-value]


def mbits(text: str) -> float:
    m = re.match(r"([\d.]+) (\w)bits/sec", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"K": 0.001, "M": 1.0, "G": 1000.0}.get(m.group(2), 1e-6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mininet/run measure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cluster_arguments(parser)
    parser.add_argument("--delay", default="5ms", help="one-way delay of each underlay link "
                        "end (netem), e.g. 5ms (default)")
    parser.add_argument("--bw", type=float, default=100.0,
                        help="underlay link bandwidth in Mbit/s (100; 0 = unshaped)")
    parser.add_argument("--loss", type=float, default=0.0, help="underlay loss in %% (0)")
    parser.add_argument("--seconds", type=int, default=5, help="iperf duration (5)")
    parser.add_argument("--pings", type=int, default=40, help="pings per RTT measurement (40)")
    parser.add_argument("--src", help="source pod (Mininet name, NAMESPACE/NAME or IP)")
    args = parser.parse_args(argv)
    setLogLevel("info" if args.verbose else "output")
    delay = delay_ms(args.delay)
    shape: dict[str, object] = {"delay": f"{delay:g}ms"}
    if args.bw > 0:
        shape["bw"] = args.bw
    if args.loss > 0:
        shape["loss"] = args.loss

    with osdn_network(args.paths, args.plugin, underlay_link=shape, name="measure") as osnet:
        src, same, cross = pick(osnet, args.src)
        name = osnet.pod_names
        how = ("TCLink (netem + htb) on both ends of every node's uplink" if netem_available()
               else "no sch_netem in this kernel: a delay line in every node's uplink delays "
                    "each direction, TCLink's htb shapes the bandwidth")
        print(f"\n*** underlay links: {shape} ({how})")
        print(f"*** from {name[src.key]} ({src.key} on {src.node}): same node -> "
              f"{name[same.key]} ({same.key}); across nodes -> {name[cross.key]} "
              f"({cross.key} on {cross.node}, through VXLAN)", flush=True)
        results = {}
        for label, dst in (("same node", same), ("across nodes", cross)):
            r = rtt(osnet, src, dst, args.pings)
            server, client = osnet.net.iperf([osnet.host(src), osnet.host(dst)], fmt="m",
                                             seconds=args.seconds)
            results[label] = (r, mbits(server), mbits(client))

        (s_rtt, s_srv, s_cli), (c_rtt, c_srv, c_cli) = results["same node"], results["across nodes"]
        rows = [
            ("", "same node", "across nodes (VXLAN)"),
            ("RTT min/avg/max ms", f"{s_rtt[0]:.3f}/{s_rtt[1]:.3f}/{s_rtt[2]:.3f}",
             f"{c_rtt[0]:.3f}/{c_rtt[1]:.3f}/{c_rtt[2]:.3f}"),
            ("RTT mdev ms", f"{s_rtt[3]:.3f}", f"{c_rtt[3]:.3f}"),
            ("pings lost", f"{s_rtt[4]}/{args.pings}", f"{c_rtt[4]}/{args.pings}"),
            ("TCP Mbit/s (receiver)", f"{s_srv:.1f}", f"{c_srv:.1f}"),
            ("TCP Mbit/s (sender)", f"{s_cli:.1f}", f"{c_cli:.1f}"),
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        print("\n*** results")
        for row in rows:
            print("  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(row, widths, strict=False))))
        floor = 4 * delay
        print(f"\n  the underlay adds 4 x {delay:g} ms = {floor:g} ms to the cross-node RTT "
              f"(measured {c_rtt[1] - s_rtt[1]:+.2f} ms over the same-node RTT)")
        if args.bw > 0:
            print(f"  cross-node TCP reaches {100 * c_srv / args.bw:.0f} % of the {args.bw:g} "
                  f"Mbit/s link (VXLAN adds 50 bytes per {osnet.topology.cluster_network.mtu}"
                  "-byte packet); same-node TCP is limited only by the userspace datapath")
        numbers = [x for x in (*s_rtt[:4], *c_rtt[:4], s_srv, c_srv, s_cli, c_cli)]
        ok = all(x == x for x in numbers) and c_rtt[0] >= floor * 0.95
        print(("PASS" if ok else "FAIL") + ": measured latency and throughput, same node "
              "against across nodes")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
