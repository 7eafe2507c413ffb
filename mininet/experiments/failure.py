"""Experiment 2: failures while traffic runs -- the controller restarted, an underlay link cut,
Open vSwitch restarted.

    mininet/run failure examples/seed-cluster
    mininet/run failure examples/seed-cluster --src web --dst tomcat --outage 3

A ping stream (100 packets/s by default) runs between two pods on different nodes, through
VXLAN, while:

  A. the controller is killed (SIGKILL) and started again: br0 is fail_mode=secure, so its
     flows stay and forward meanwhile; the new controller reconciles every bridge by diff.
     Expected: no packet lost, and zero flow-mods on reconnect (the bridges were in sync);
  B. the destination node's underlay link is cut (Mininet's `link NODE u0 down`) for
     --outage seconds, then restored.  Expected: the packets sent during the cut are lost,
     and traffic resumes at once when the link is back (nothing to relearn: static tunnel
     neighbours, unchanged flows).

  C. the destination node's ovs-vswitchd is restarted, twice: (1) SIGKILL and started again
     by scripts/ovs-start (a crash: br0 comes back empty and the controller programs it
     again), (2) `ovs-start --restart` (planned: flow-restore-wait, br0's flows saved and
     loaded back before vswitchd talks to the controller).  Printed: the time from the
     kill to br0 holding every flow again, and the packets lost.  Expected: traffic back
     within 3 s in both, and fewer packets lost by (2) than by (1).

Prints, for each phase, packets sent and lost, how long no reply came (from ping -D's
timestamps), and the verdict.  Exit status 0 iff every phase behaves as expected.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osdn_topo import (  # noqa: E402
    OsdnNet,
    Pod,
    add_cluster_arguments,
    expected_reachable,
    osdn_network,
    setLogLevel,
)


def pick_pair(osnet: OsdnNet, src: str | None, dst: str | None) -> tuple[Pod, Pod]:
    pods = osnet.pods()
    a = osnet.find_pod(src) if src else None
    b = osnet.find_pod(dst) if dst else None
    for s in [a] if a else pods:
        for d in [b] if b else pods:
            if s.node != d.node and expected_reachable(osnet.topology, s, d):
                return s, d
    raise SystemExit("no pair of pods on different nodes that may ping each other")


class PingStream:
    """`ping -D -i INTERVAL -c COUNT` from a pod, in the background; `result()` parses it.
    Times are wall-clock (time.time()), as ping -D prints them."""

    def __init__(self, host: Any, ip: str, count: int, interval: float) -> None:
        self.count, self.interval = count, interval
        self.started = time.time()
        self.proc = host.popen(["ping", "-n", "-D", "-i", str(interval), "-c", str(count),
                                "-W", "1", ip], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def result(self) -> PingResult:
        out, _ = self.proc.communicate(timeout=self.count * self.interval * 3 + 30)
        text = out.decode(errors="replace")
        replies = {int(seq): float(ts) for ts, seq in
                   re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) ttl=", text,
                              re.M)}
        m = re.search(r"(\d+) packets transmitted", text)
        return PingResult(int(m.group(1)) if m else 0, replies, text, self.started)


class PingResult:
    def __init__(self, sent: int, replies: dict[int, float], text: str, started: float):
        self.sent, self.replies, self.text, self.started = sent, replies, text, started
        self.lost = set(range(1, sent + 1)) - set(replies)

    def gaps(self) -> list[tuple[int, int, float, float]]:
        """Runs of lost packets: (first seq, last seq, last reply before, first reply after),
        wall-clock; between those two replies the traffic stood still."""
        runs: list[tuple[int, int, float, float]] = []
        seqs = sorted(self.lost)
        i = 0
        while i < len(seqs):
            j = i
            while j + 1 < len(seqs) and seqs[j + 1] == seqs[j] + 1:
                j += 1
            first, last = seqs[i], seqs[j]
            runs.append((first, last, self.replies.get(first - 1, self.started),
                         self.replies.get(last + 1, float("nan"))))
            i = j + 1
        return runs

    def describe(self) -> str:
        lost = len(self.lost)
        text = f"{self.sent} sent, {lost} lost ({100.0 * lost / max(self.sent, 1):.1f} %)"
        runs = [f"seq {a}-{b}: no reply for {after - before:.2f} s "
                f"(t={before - self.started:.2f}-{after - self.started:.2f} s)"
                for a, b, before, after in self.gaps()]
        return text + ("; " + ", ".join(runs) if runs else "")


def in_sync_lines(osnet: OsdnNet) -> dict[str, int]:
    """host -> flow-mods of its first 'in sync' line in the controller's current log."""
    seen: dict[str, int] = {}
    for line in osnet.controller.log_text().splitlines():
        m = re.search(r"(\S+) \(dpid 0x[0-9a-f]+\): in sync, (\d+) flow-mods", line)
        if m and m.group(1) not in seen:
            seen[m.group(1)] = int(m.group(2))
    return seen


def controller_restart(osnet: OsdnNet, src: Pod, dst: Pod, rate: int, before: float) -> bool:
    interval, hosts = 1.0 / rate, osnet.topology.host_subnets
    count = int((before + 6.0) * rate)
    print(f"\n*** A. controller restart: {count} pings at {rate}/s "
          f"{osnet.pod_names[src.key]} -> {osnet.pod_names[dst.key]}; SIGKILL and start "
          f"again at t={before:.1f} s", flush=True)
    stream = PingStream(osnet.host(src), str(dst.ip), count, interval)
    time.sleep(before)
    killed = time.time()
    osnet.controller.restart()
    synced: dict[str, int] = {}
    deadline = time.monotonic() + 30
    while len(synced) < len(hosts) and time.monotonic() < deadline:
        synced = in_sync_lines(osnet)
        time.sleep(0.1)
    resync = time.time() - killed
    result = stream.result()
    flow_mods = sum(synced.values())
    print(f"    controller back: {len(synced)}/{len(hosts)} bridges re-synced "
          f"{resync:.1f} s after the kill, {flow_mods} flow-mods in all "
          f"({', '.join(f'{h}: {n}' for h, n in sorted(synced.items()))})")
    print(f"    packets: {result.describe()}")
    ok = len(synced) == len(hosts) and not result.lost and flow_mods == 0 and result.sent > 0
    if ok:
        print("    PASS: traffic never stopped (fail_mode=secure keeps the flows) and the new "
              "controller found every bridge in sync (0 flow-mods)")
    else:
        print("    FAIL: expected 0 lost, every bridge re-synced with 0 flow-mods\n"
              f"    ping tail:\n{result.text[-600:]}\n    controller log tail:\n"
              f"{osnet.controller.log_tail()}")
    return ok


def link_cut(osnet: OsdnNet, src: Pod, dst: Pod, rate: int, before: float,
             outage: float) -> bool:
    interval = 1.0 / rate
    node = osnet.node_names[dst.node]
    count = int((before + outage + 3.0) * rate)
    print(f"\n*** B. underlay link cut: {count} pings at {rate}/s "
          f"{osnet.pod_names[src.key]} -> {osnet.pod_names[dst.key]}; link {node}<->u0 "
          f"down at t={before:.1f} s for {outage:.1f} s", flush=True)
    stream = PingStream(osnet.host(src), str(dst.ip), count, interval)
    time.sleep(before)
    down_at = time.time()
    peer = osnet.uplink_peer(dst.node)
    osnet.net.configLinkStatus(node, peer, "down")
    time.sleep(outage)
    up_at = time.time()
    osnet.net.configLinkStatus(node, peer, "up")
    result = stream.result()
    gaps = result.gaps()
    print(f"    link down t={down_at - result.started:.2f}-{up_at - result.started:.2f} s "
          f"({up_at - down_at:.2f} s)")
    print(f"    packets: {result.describe()}")
    # Expected: one gap, inside [down - a reply interval, up + 1 s], and none elsewhere.
    ok = result.sent > 0 and len(gaps) <= 1 and all(
        before_ >= down_at - 0.5 and after_ <= up_at + 1.0 for _, _, before_, after_ in gaps)
    if gaps and ok:
        resumed = gaps[0][3] - up_at
        print(f"    PASS: packets were lost only while the link was down; traffic resumed "
              f"{max(resumed, 0.0):.2f} s after the link came back")
    elif ok:
        print("    FAIL: no packet lost although the link was down")
        ok = False
    else:
        print("    FAIL: expected one gap within the cut (+1 s to resume)\n"
              f"    ping tail:\n{result.text[-600:]}")
    return ok


def ovs_restart(osnet: OsdnNet, src: Pod, dst: Pod, rate: int, before: float) -> bool:
    interval, node = 1.0 / rate, osnet.node(dst.node)
    flows = node.flow_count()
    results = {}
    for kind, restart in (("crash (SIGKILL, start)", node.crash_vswitchd),
                          ("ovs-start --restart (flow-restore-wait)",
                           node.restart_vswitchd_keeping_flows)):
        count = int((before + 4.0) * rate)
        print(f"\n*** C. OVS restart, {kind}: {count} pings at {rate}/s "
              f"{osnet.pod_names[src.key]} -> {osnet.pod_names[dst.key]}; ovs-vswitchd of "
              f"{osnet.node_names[dst.node]} restarted at t={before:.1f} s", flush=True)
        stream = PingStream(osnet.host(src), str(dst.ip), count, interval)
        time.sleep(before)
        killed = time.monotonic()
        restart()
        back = time.monotonic() - killed
        while time.monotonic() - killed < 30:
            try:
                if node.flow_count() == flows:
                    break
            except Exception:  # vswitchd still starting
                pass
            time.sleep(0.01)
        equal = time.monotonic() - killed
        result = stream.result()
        results[kind] = (equal, result)
        print(f"    vswitchd back {back:.2f} s after the kill, br0 holding all {flows} flows "
              f"{equal:.2f} s after it")
        print(f"    packets: {result.describe()}")
        time.sleep(1.0)
    (crash_s, crash), (planned_s, planned) = results.values()
    ok = crash.sent > 0 and planned.sent > 0 and crash_s < 3.0 and planned_s < 3.0 \
        and len(planned.lost) < len(crash.lost)
    print(f"    {'PASS' if ok else 'FAIL'}: crash {crash_s:.2f} s / {len(crash.lost)} lost, "
          f"planned restart {planned_s:.2f} s / {len(planned.lost)} lost")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mininet/run failure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cluster_arguments(parser)
    parser.add_argument("--src", help="source pod (Mininet name, NAMESPACE/NAME or IP)")
    parser.add_argument("--dst", help="destination pod, on another node")
    parser.add_argument("--rate", type=int, default=100, help="pings per second (100)")
    parser.add_argument("--outage", type=float, default=2.0,
                        help="seconds the underlay link stays down (2)")
    args = parser.parse_args(argv)
    setLogLevel("info" if args.verbose else "output")
    with osdn_network(args.paths, args.plugin, name="failure") as osnet:
        src, dst = pick_pair(osnet, args.src, args.dst)
        print(f"\n*** traffic: {osnet.pod_names[src.key]} ({src.key}, {src.ip}, on "
              f"{src.node}) -> {osnet.pod_names[dst.key]} ({dst.key}, {dst.ip}, on {dst.node})")
        a = controller_restart(osnet, src, dst, args.rate, before=1.5)
        b = link_cut(osnet, src, dst, args.rate, before=1.5, outage=args.outage)
        c = ovs_restart(osnet, src, dst, args.rate, before=1.5)
        print(f"\n{'PASS' if a and b and c else 'FAIL'}: controller restart "
              f"{'ok' if a else 'FAILED'}, underlay link cut {'ok' if b else 'FAILED'}, "
              f"OVS restart {'ok' if c else 'FAILED'}")
        return 0 if a and b and c else 1


if __name__ == "__main__":
    sys.exit(main())
