"""`osdn`: check a cluster definition, render a node's flows, run the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from controller.compiler import Settings, UnknownNode, compile_node
from controller.dns import DnsResolver, no_dns
from topology.model import Plugin, Topology

from controller.cluster.state import DEFAULT_DIR as DEFAULT_STATE_DIR
PLUGIN_NAMES = {"subnet": Plugin.SUBNET, "multitenant": Plugin.MULTITENANT,
                "networkpolicy": Plugin.NETWORKPOLICY}


def masquerade_bit(text: str) -> int:
    try:
        bit = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= bit <= 31:
        raise argparse.ArgumentTypeError(f"must be a bit number 0..31, got {bit}")
    return bit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="osdn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_topology(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or directories")
        p.add_argument("--plugin", choices=sorted(PLUGIN_NAMES),
                       help="override the ClusterNetwork's pluginName")
        return p

    with_topology("check", "validate a cluster definition and summarize it")
    render = with_topology("render", "print a node's complete br0 flow set")
    render.add_argument("--node", required=True, help="the HostSubnet's host")
    render.add_argument("--masquerade-bit", type=masquerade_bit, default=0, metavar="N",
                        help="kube-proxy's iptables masquerade bit (default 0, as OpenShift 3.x)")
    render.add_argument("--dns", choices=("system", "off"), default="system",
                        help="resolve EgressNetworkPolicy dnsNames (default) or not")
    _cluster_parsers(sub)
    demo = sub.add_parser("demo", help="bring the example cluster up with real packets, run "
                                       "its acceptance traces, traffic and experiments")
    demo.add_argument("path", nargs="?", default="examples/seed-cluster")
    demo.add_argument("--keep", action="store_true",
                      help="leave the emulated cluster up (then: osdn cluster status|exec|down)")
    demo.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    demo.add_argument("--prefix", default="osdn", help="network namespace name prefix")
    return parser


def _cluster_parsers(sub: Any) -> None:
    cluster = sub.add_parser("cluster", help="an emulated cluster with real packets")
    csub = cluster.add_subparsers(dest="cluster_command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = csub.add_parser(name, help=help, description=help)
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


def network(text: str) -> IPv4Network:
    try:
        return IPv4Network(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_cluster(args: argparse.Namespace) -> int:
    from controller.cluster import ops
    from controller.cluster.build import BuildError, ClusterBuilder
    from controller.cluster.state import ClusterStateError
    try:
        if args.cluster_command == "up":
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
        print(ops.trace(args.state_dir, args.pod, args.dest).raw)
        return 0
    except (BuildError, ClusterStateError, KeyError) as error:
        print(f"osdn cluster {args.cluster_command}: {error.args[0]}", file=sys.stderr)
        return 1


def load(paths: Sequence[str], plugin: str | None) -> Topology | None:
    """The topology, or None after printing every problem to stderr."""
    from topology.load import TopologyError, load_topology
    try:
        return load_topology(paths, plugin=PLUGIN_NAMES[plugin] if plugin else None)
    except TopologyError as error:
        for issue in error.issues:
            print(issue, file=sys.stderr)
        print(f"{len(error.issues)} problem(s); nothing rendered", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    from topology.summary import summarize
    topology = load(args.paths, args.plugin)
    if topology is None:
        return 1
    print(summarize(topology))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    topology = load(args.paths, args.plugin)
    if topology is None:
        return 1
    resolver = DnsResolver() if args.dns == "system" else no_dns
    try:
        flows = compile_node(topology, args.node, Settings(args.masquerade_bit, resolver))
    except UnknownNode as error:
        print(f"osdn render: --node: {error.args[0]}", file=sys.stderr)
        return 1
    for warning in flows.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(flows.to_ofctl())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.demo import run_demo
    return run_demo(args.path, keep=args.keep, state_dir=args.state_dir, prefix=args.prefix)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"check": cmd_check, "render": cmd_render, "demo": cmd_demo,
                "cluster": cmd_cluster}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
