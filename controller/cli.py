"""`osdn`: check a cluster definition and render a node's flows.

Further command groups (the emulation lab's `osdn cluster` and `osdn demo`) plug in through
the `osdn.commands` entry-point group: each entry point is a function that adds its
sub-parsers and sets `handler` on them.  The product never imports them; where they are not
installed (the controller image), `osdn` offers check and render only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from controller.compiler import Settings, UnknownNode, compile_node
from controller.dns import dns_query, no_dns, resolve_now
from topology.model import PLUGIN_NAMES, Topology


def masquerade_bit(text: str) -> int:
    try:
        bit = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= bit <= 31:
        raise argparse.ArgumentTypeError(f"must be a bit number 0..31, got {bit}")
    return bit


COMMAND_GROUP = "osdn.commands"
AddCommands = Callable[[Any], None]  # given argparse's sub-parsers object


def extension_commands() -> list[AddCommands]:
    """The installed command groups that can be loaded (a missing module is not an error:
    the product image lists the lab's entry points but does not ship the lab)."""
    found = []
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            found.append(entry.load())
        except ImportError:
            continue
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="osdn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_topology(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or directories")
        p.add_argument("--plugin", choices=sorted(PLUGIN_NAMES),
                       help="override the ClusterNetwork's pluginName")
        return p

    with_topology("check", "validate a cluster definition and summarize it") \
        .set_defaults(handler=cmd_check)
    render = with_topology("render", "print a node's complete br0 flow set")
    render.set_defaults(handler=cmd_render)
    render.add_argument("--node", required=True, help="the HostSubnet's host")
    render.add_argument("--masquerade-bit", type=masquerade_bit, default=0, metavar="N",
                        help="kube-proxy's iptables masquerade bit (default 0, as OpenShift 3.x)")
    render.add_argument("--dns", choices=("system", "off"), default="system",
                        help="resolve EgressNetworkPolicy dnsNames (default) or not")
    for add_commands in extension_commands():
        add_commands(sub)
    return parser


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
    resolver = resolve_now(dns_query()) if args.dns == "system" else no_dns
    try:
        flows = compile_node(topology, args.node, Settings(args.masquerade_bit, resolver))
    except UnknownNode as error:
        print(f"osdn render: --node: {error.args[0]}", file=sys.stderr)
        return 1
    for warning in flows.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(flows.to_ofctl())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
