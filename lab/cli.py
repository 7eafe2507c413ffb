"""The lab's `osdn` commands: `osdn cluster up|down|status|exec|trace|explain` and `osdn demo`.

Registered in the `osdn.commands` entry-point group (setup.cfg), so that the product's
`controller.cli` offers them when the lab is installed without importing it."""

from __future__ import annotations

import argparse
import json
import sys
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from controller.cli import load
from lab.cluster.state import DEFAULT_DIR as DEFAULT_STATE_DIR
from lab.errors import LabUsageError
from topology.model import PLUGIN_NAMES


def add_demo_command(sub: Any) -> None:
    demo = sub.add_parser("demo", help="bring the example cluster up with real packets, run "
                                       "its acceptance traces, traffic and experiments")
    demo.add_argument("path", nargs="?", default="examples/seed-cluster")
    demo.add_argument("--keep", action="store_true",
                      help="leave the emulated cluster up (then: osdn cluster status|exec|down)")
    demo.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    demo.add_argument("--prefix", default="osdn", help="network namespace name prefix")
    demo.set_defaults(handler=cmd_demo)


def add_cluster_commands(sub: Any) -> None:
    cluster = sub.add_parser("cluster", help="an emulated cluster with real packets")
    cluster.set_defaults(handler=cmd_cluster)
    csub = cluster.add_subparsers(dest="cluster_command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = csub.add_parser(name, help=help, description=help)
        p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                       help=f"where the cluster's state lives (default {DEFAULT_STATE_DIR})")
        return p

    up = add("up", "build the cluster a topology describes and connect it to a controller")
    up.add_argument("paths", nargs="+", metavar="PATH")
    up.add_argument("--plugin", choices=sorted(PLUGIN_NAMES))
    up.add_argument("--controller", metavar="TARGET",
                    help="OpenFlow target reachable from the node namespaces (default: start "
                         "one on the underlay's last address)")
    up.add_argument("--underlay", type=network, metavar="CIDR",
                    help="the nodes' network (default: the /24 of the first hostIP)")
    up.add_argument("--prefix", default="osdn", help="network namespace name prefix")
    add("down", "remove everything `up` created, and nothing else")
    add("status", "show the cluster's nodes, pods and controller")
    ex = add("exec", "run a command in a pod (NAMESPACE/NAME), a node or 'external'")
    ex.add_argument("target")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    tr = add("trace", "ofproto/trace a TCP packet from a pod on its node's br0")
    tr.add_argument("pod", metavar="NAMESPACE/POD")
    tr.add_argument("dest", metavar="DEST", help="a pod, a service NAMESPACE/NAME:PORT or an IP")
    xp = add("explain", "why a packet from SRC to DST is delivered or dropped, as `osdn "
                        "explain` says it, traced on the running nodes' own br0")
    xp.add_argument("src", metavar="SRC", help="a pod NAMESPACE/NAME, a node, external[:IP] "
                                               "or an IP")
    xp.add_argument("dst", metavar="DST[:PORT][/PROTO]",
                    help="the same, or a Service svc/NAMESPACE/NAME[:PORT]; PROTO tcp, udp or "
                         "icmp")
    xp.add_argument("--json", action="store_true", help="the explanation as JSON")
    xp.add_argument("--raw", action="store_true", help="also print ofproto/trace's text")


def network(text: str) -> IPv4Network:
    try:
        return IPv4Network(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_cluster(args: argparse.Namespace) -> int:
    from lab.cluster import ops
    from lab.cluster.build import BuildError, ClusterBuilder
    from lab.prerequisites import CLUSTER_TOOLS, require
    try:
        if args.cluster_command == "up":
            require(CLUSTER_TOOLS)
            topology = load(args.paths, args.plugin)
            if topology is None:
                return 1
            builder = ClusterBuilder(topology, args.paths, args.state_dir, args.prefix,
                                     args.underlay, args.controller, plugin=args.plugin)
            try:
                builder.up()
                counts = builder.wait_in_sync()
            except BaseException:
                print(f"cluster up failed; removing what was created ({args.state_dir})",
                      file=sys.stderr)
                ops.down(args.state_dir, log=lambda m: print(m, file=sys.stderr))
                raise
            print(f"cluster up: {len(counts)} nodes in sync "
                  f"({', '.join(f'{h} {n} flows' for h, n in counts.items())})")
            return 0
        if args.cluster_command == "down":
            return ops.down(args.state_dir)
        if args.cluster_command == "status":
            print(ops.status(args.state_dir))
            return 0
        if args.cluster_command == "exec":
            command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not command:
                print("osdn cluster exec: give a command after --", file=sys.stderr)
                return 2
            return ops.exec_in(args.state_dir, args.target, command)
        if args.cluster_command == "explain":
            explanation = ops.explain(args.state_dir, args.src, args.dst)
            if args.json:
                print(json.dumps(explanation.to_json(), indent=2))
            else:
                sys.stdout.write(explanation.text(raw=args.raw))
            return 0
        print(ops.trace(args.state_dir, args.pod, args.dest).raw)
        return 0
    except (BuildError, LabUsageError) as error:
        print(f"osdn cluster {args.cluster_command}: {error}", file=sys.stderr)
        return 1


def cmd_demo(args: argparse.Namespace) -> int:
    from lab.demo import run_demo
    try:
        return run_demo(args.path, keep=args.keep, state_dir=args.state_dir,
                        prefix=args.prefix)
    except LabUsageError as error:
        print(f"osdn demo: {error}", file=sys.stderr)
        return 1
