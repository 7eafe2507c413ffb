"""`osdn`: check a cluster definition, render a node's flows, compare a node's saved flows
with the render (diff).

Further command groups (the emulation lab's `osdn cluster` and `osdn demo`) plug in through
the `osdn.commands` entry-point group: each entry point is a function that adds its
sub-parsers and sets `handler` on them.  The product never imports them; where they are not
installed (the controller image), `osdn` offers the product commands only."""

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
    diff = with_topology("diff", "compare a node's saved `ovs-ofctl -O OpenFlow13 dump-flows "
                         "br0` with its render: missing and extra flows by object "
                         "(exit 0 same, 1 drift, 2 error)")
    diff.set_defaults(handler=cmd_diff)
    diff.add_argument("dump", metavar="DUMP", help="the saved dump-flows output ('-': stdin)")
    diff.add_argument("--node", required=True, help="the HostSubnet's host the dump is from")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.add_argument("--masquerade-bit", type=masquerade_bit, default=0, metavar="N",
                      help="kube-proxy's iptables masquerade bit (default 0)")
    diff.add_argument("--dns", choices=("system", "off"), default="off",
                      help="resolve EgressNetworkPolicy dnsNames, or not (default)")
    picture = with_topology("pipeline", "draw a node's br0 pipeline as SVG (Graphviz): tables, "
                            "declared edges, ports, flow counts")
    picture.set_defaults(handler=cmd_pipeline)
    picture.add_argument("--node", required=True, help="the HostSubnet's host")
    picture.add_argument("--svg", required=True, metavar="FILE", help="where to write the SVG")
    picture.add_argument("--dot", metavar="FILE", help="also write the Graphviz source")
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


def cmd_diff(args: argparse.Namespace) -> int:
    """0: the node holds exactly the render; 1: drift; 2: the input is bad."""
    import json

    from controller.drift import compare, port_names
    from controller.ovs.flowdump import DumpError, parse_flow_dump
    topology = load(args.paths, args.plugin)
    if topology is None:
        return 2
    resolver = resolve_now(dns_query()) if args.dns == "system" else no_dns
    try:
        rendered = compile_node(topology, args.node, Settings(args.masquerade_bit, resolver))
    except UnknownNode as error:
        print(f"osdn diff: --node: {error.args[0]}", file=sys.stderr)
        return 2
    try:
        if args.dump == "-":
            text, source = sys.stdin.read(), "<stdin>"
        else:
            with open(args.dump, encoding="utf-8") as file:
                text, source = file.read(), args.dump
        dumped = parse_flow_dump(text, source, port_names(topology, args.node))
    except (OSError, UnicodeDecodeError) as error:
        print(f"osdn diff: {args.dump}: {error}", file=sys.stderr)
        return 2
    except DumpError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"{len(error.problems)} problem(s) in {args.dump}; nothing compared",
              file=sys.stderr)
        return 2
    drift = compare(topology, rendered, dumped)
    if args.json:
        print(json.dumps(drift.as_dict(), indent=2))
    else:
        sys.stdout.write(drift.to_text())
    return 0 if drift.same else 1


def cmd_pipeline(args: argparse.Namespace) -> int:
    from controller.picture import PictureError, pipeline_dot, render_svg
    topology = load(args.paths, args.plugin)
    if topology is None:
        return 1
    try:
        flows = {args.node: compile_node(topology, args.node, Settings(resolver=no_dns))}
    except UnknownNode as error:
        print(f"osdn pipeline: --node: {error.args[0]}", file=sys.stderr)
        return 1
    dot_text = pipeline_dot(topology, flows, args.node)
    try:
        svg = render_svg(dot_text)
    except PictureError as error:
        print(f"osdn pipeline: {error}", file=sys.stderr)
        return 1
    try:
        if args.dot:
            with open(args.dot, "w", encoding="utf-8") as file:
                file.write(dot_text)
        with open(args.svg, "wb") as binary:
            binary.write(svg)
    except OSError as error:
        print(f"osdn pipeline: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
