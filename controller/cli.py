"""`osdn`: check a cluster definition, render a node's flows, explain a packet's fate,
compare a node's saved flows with the render (diff), draw a node's pipeline, from files or
from the API server (`--kubeconfig`); export the API's objects as files.

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

from controller.compiler import NodeFlows, Settings, UnknownNode, compile_node
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
        add_topology_arguments(p)
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
    diff.set_defaults(handler=cmd_diff, intermixed=True)
    diff.usage = "osdn diff [options] PATH... --node NAME DUMP"
    diff.epilog = "DUMP: the saved dump-flows output ('-': stdin), after the PATHs."
    diff.add_argument("--node", required=True, help="the HostSubnet's host the dump is from")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.add_argument("--masquerade-bit", type=masquerade_bit, default=0, metavar="N",
                      help="kube-proxy's iptables masquerade bit (default 0)")
    diff.add_argument("--dns", choices=("system", "off"), default="off",
                      help="resolve EgressNetworkPolicy dnsNames, or not (default)")
    picture = with_topology("pipeline", "draw a node's br0 pipeline as SVG (Graphviz): tables, "
                            "declared edges, ports, flow counts")
    picture.set_defaults(handler=cmd_pipeline)
    picture.add_argument("--node", help="the HostSubnet's host (with --explain: also drawn, "
                         "beside the nodes the packet visits)")
    picture.add_argument("--svg", required=True, metavar="FILE", help="where to write the SVG")
    picture.add_argument("--dot", metavar="FILE", help="also write the Graphviz source")
    picture.add_argument("--explain", nargs=2, metavar=("SRC", "DST"),
                         help="highlight this packet's path across nodes, as `osdn explain "
                              "SRC DST` finds it (traced on a private Open vSwitch)")
    explain = with_topology("explain", "why a packet from SRC to DST is delivered or dropped, "
                            "table by table, across nodes")
    explain.set_defaults(handler=cmd_explain, intermixed=True)
    explain.usage = ("osdn explain [options] PATH... SRC DST[:PORT][/PROTO]\n"
                     "       osdn explain [options] PATH... --node NAME --flow SPEC")
    explain.epilog = ("SRC: NAMESPACE/POD, a node (HostSubnet host) or an IP.  DST: "
                      "NAMESPACE/POD, svc/NAMESPACE/NAME[:PORT], a node, external[:IP] or an "
                      "IP; PROTO tcp (default), udp or icmp.")
    explain.add_argument("--json", action="store_true", help="the explanation as JSON")
    explain.add_argument("--raw", action="store_true", help="also print ofproto/trace's text")
    explain.add_argument("--bridge", metavar="BR",
                         help="live: trace this bridge of the node's running vswitchd "
                              "(needs --node); other nodes are traced offline")
    explain.add_argument("--ovs-appctl-target", metavar="T",
                         help="live: ovs-appctl -t T (pid file or control socket of the "
                              "node's vswitchd; implies --bridge br0)")
    explain.add_argument("--node", metavar="NAME",
                         help="live: the HostSubnet host whose vswitchd is traced; with "
                              "--flow: the node whose br0 the flow enters")
    explain.add_argument("--flow", metavar="SPEC",
                         help="start from this ofproto/trace flow on --node's br0 (e.g. "
                              "in_port=1,tcp,tun_src=10.9.0.99,nw_dst=10.64.1.4) instead of "
                              "SRC DST")
    explain.add_argument("--masquerade-bit", type=masquerade_bit, default=0, metavar="N",
                         help="kube-proxy's iptables masquerade bit (default 0)")
    explain.add_argument("--dns", choices=("system", "off"), default="system",
                         help="resolve EgressNetworkPolicy dnsNames (default) or not, "
                              "as render does")
    export = sub.add_parser("export", help=EXPORT_HELP, description=EXPORT_HELP)
    export.set_defaults(handler=cmd_export)
    export.add_argument("directory", metavar="DIR", help="where to write <kind>.yaml files")
    export.add_argument("--kubeconfig", metavar="FILE",
                        help="the API server's kubeconfig (default: in-cluster service "
                             "account, then $KUBECONFIG, then ~/.kube/config)")
    for add_commands in extension_commands():
        add_commands(sub)
    return parser


EXPORT_HELP = ("write the API server's objects (the fields osdn reads) as oc get -o yaml "
               "does, one List file per kind")


def add_topology_arguments(parser: argparse.ArgumentParser) -> None:
    """PATH... or --kubeconfig FILE, and --plugin: where a command's topology comes from
    (read by `load_from_args`)."""
    parser.add_argument("paths", nargs="*", metavar="PATH", help="YAML files or directories")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="list the objects from this API server instead (read-only)")
    parser.add_argument("--plugin", choices=sorted(PLUGIN_NAMES),
                        help="override the ClusterNetwork's pluginName")


def load_from_args(args: argparse.Namespace) -> Topology | None:
    """The topology of `add_topology_arguments`' arguments, or None after printing every
    problem to stderr."""
    if bool(args.paths) == bool(args.kubeconfig):
        print(f"osdn {args.command}: give either PATH... or --kubeconfig FILE", file=sys.stderr)
        return None
    if args.kubeconfig:
        return load_api(args.kubeconfig, args.plugin)
    return load(args.paths, args.plugin)


def load(paths: Sequence[str], plugin: str | None) -> Topology | None:
    """The topology, or None after printing every problem to stderr."""
    from topology.load import TopologyError, load_topology
    try:
        return load_topology(paths, plugin=PLUGIN_NAMES[plugin] if plugin else None)
    except TopologyError as error:
        _print_issues(error)
        return None


def load_api(kubeconfig: str | None, plugin: str | None) -> Topology | None:
    """The topology listed from the API server (objects it finds invalid are skipped with a
    warning, as the controller does), or None after printing the problems."""
    from controller.kube.client import KubeConfigError
    from controller.kube.source import load_from_api
    from topology.load import TopologyError
    _log_warnings()
    try:
        topology, _ = load_from_api(kubeconfig, PLUGIN_NAMES[plugin] if plugin else None)
    except KubeConfigError as error:
        print(f"osdn: --kubeconfig: {error}", file=sys.stderr)
        return None
    except TopologyError as error:
        _print_issues(error)
        return None
    return topology


def _print_issues(error: Any) -> None:
    for issue in error.issues:
        print(issue, file=sys.stderr)
    print(f"{len(error.issues)} problem(s); nothing rendered", file=sys.stderr)


def _log_warnings() -> None:
    """The API source's warnings (skipped objects) on stderr."""
    import logging
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("osdn.kube")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


def cmd_export(args: argparse.Namespace) -> int:
    from controller.kube.client import KubeConfigError
    from controller.kube.export import export_objects, file_name
    from controller.kube.source import KubeSource
    _log_warnings()
    try:
        from controller.kube.client import KubeClient
        source = KubeSource(KubeClient(args.kubeconfig))
    except KubeConfigError as error:
        print(f"osdn export: --kubeconfig: {error}", file=sys.stderr)
        return 1
    problems = source.sync()
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print("nothing written", file=sys.stderr)
        return 1
    for kind, count in export_objects(source.informers, args.directory).items():
        print(f"{file_name(kind)}: {count} {kind}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from topology.summary import summarize
    topology = load_from_args(args)
    if topology is None:
        return 1
    print(summarize(topology))
    return 0


def settings_of(args: argparse.Namespace) -> Settings:
    """The compiler settings of --masquerade-bit and --dns."""
    resolver = resolve_now(dns_query()) if args.dns == "system" else no_dns
    return Settings(args.masquerade_bit, resolver)


def compiled(args: argparse.Namespace) -> tuple[Topology, NodeFlows] | None:
    """The arguments' topology and --node's flow set, or None after printing why not."""
    topology = load_from_args(args)
    if topology is None:
        return None
    try:
        return topology, compile_node(topology, args.node, settings_of(args))
    except UnknownNode as error:
        print(f"osdn {args.command}: --node: {error.args[0]}", file=sys.stderr)
        return None


def cmd_render(args: argparse.Namespace) -> int:
    done = compiled(args)
    if done is None:
        return 1
    _, flows = done
    for warning in flows.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(flows.to_ofctl())
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """0: the node holds exactly the render; 1: drift; 2: the input is bad."""
    import json

    from controller.drift import compare, port_names
    from controller.ovs.flowdump import DumpError, parse_flow_dump
    if not args.paths:
        print("osdn diff: give PATH... (or --kubeconfig FILE) and then DUMP", file=sys.stderr)
        return 2
    args.dump = args.paths.pop()
    done = compiled(args)
    if done is None:
        return 2
    topology, rendered = done
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
    if args.node is None and args.explain is None:
        print("osdn pipeline: give --node NAME, --explain SRC DST, or both", file=sys.stderr)
        return 2
    topology = load_from_args(args)
    if topology is None:
        return 1
    highlight = None
    if args.explain is not None:
        highlight = _explained(topology, *args.explain)
        if highlight is None:
            return 1
    hosts = list(dict.fromkeys([host for host, _ in (highlight.path if highlight else ())]
                               + ([args.node] if args.node else [])))
    try:
        flows = {host: compile_node(topology, host, Settings(resolver=no_dns)) for host in hosts}
    except UnknownNode as error:
        print(f"osdn pipeline: --node: {error.args[0]}", file=sys.stderr)
        return 1
    dot_text = pipeline_dot(topology, flows, highlight)
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


def _explained(topology: Topology, src: str, dst: str) -> Any:
    """The picture's `Highlight` of `osdn explain SRC DST`, or None after printing why not."""
    from controller.explain import EndpointError, ScratchTracer, explain
    from controller.ovs.ovscommands import OvsError
    from controller.picture import highlight_of
    settings = Settings(resolver=no_dns)
    try:
        with ScratchTracer(topology, settings) as tracer:
            return highlight_of(explain(topology, src, dst, tracer, settings))
    except (EndpointError, OvsError) as error:
        print(f"osdn pipeline: --explain: {error}", file=sys.stderr)
        return None


def cmd_explain(args: argparse.Namespace) -> int:
    from controller.explain import (
        AppctlTracer,
        EndpointError,
        LiveThenScratch,
        ScratchTracer,
        explain,
        explain_flow,
    )
    from controller.ovs.ovscommands import OvsError
    paths, ends = (args.paths, []) if args.flow else (args.paths[:-2], args.paths[-2:])
    no_ends = not args.flow and len(ends) < 2
    if no_ends or (not paths and not args.kubeconfig) or (args.flow and args.node is None):
        print("osdn explain: give PATH... (or --kubeconfig FILE) SRC DST, or PATH... "
              "--node NAME --flow SPEC", file=sys.stderr)
        return 2
    args.paths = paths
    topology = load_from_args(args)
    if topology is None:
        return 1
    live = args.bridge is not None or args.ovs_appctl_target is not None
    if live and (args.node is None or topology.host_subnet(args.node) is None):
        hosts = ", ".join(sorted(hs.host for hs in topology.host_subnets))
        print(f"osdn explain: --bridge/--ovs-appctl-target need --node, the HostSubnet host "
              f"whose vswitchd is traced (one of: {hosts}); got {args.node!r}", file=sys.stderr)
        return 2
    settings = settings_of(args)
    with ScratchTracer(topology, settings) as scratch:
        tracer: Any = scratch
        if live:
            tracer = LiveThenScratch(AppctlTracer(args.node, args.bridge or "br0",
                                                  args.ovs_appctl_target), scratch)
        try:
            if args.flow:
                result = explain_flow(topology, args.node, args.flow, tracer, settings)
            else:
                result = explain(topology, ends[0], ends[1], tracer, settings)
        except EndpointError as error:
            print(f"osdn explain: {error}", file=sys.stderr)
            return 2
        except OvsError as error:
            print(f"osdn explain: {error}", file=sys.stderr)
            return 1
        if live and tracer.offline:
            result.notes.append(f"live trace on {args.node} only; traced offline from the "
                                f"topology: {', '.join(tracer.offline)}")
    if args.json:
        import json
        print(json.dumps(result.to_json(), indent=2))
    else:
        sys.stdout.write(result.text(raw=args.raw))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "intermixed", False) and not any(
            e.startswith("-") and e != "-" for e in extra):
        # `osdn explain PATH --plugin P SRC DST`: argparse ends PATH... at the first option
        # ('-': diff's DUMP from stdin)
        args.paths += extra
    elif extra:
        parser.parse_args(argv)  # reports the unrecognized arguments and exits
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
