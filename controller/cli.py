"""`osdn`: check a cluster definition and render a node's flows, from files or from the
API server (`--kubeconfig`); export the API's objects as files.

Further command groups (the emulation lab's `osdn cluster` and `osdn demo`) plug in through
the `osdn.commands` entry-point group: each entry point is a function that adds its
sub-parsers and sets `handler` on them.  The product never imports them; where they are not
installed (the controller image), `osdn` offers check, render and export only."""

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


def cmd_render(args: argparse.Namespace) -> int:
    topology = load_from_args(args)
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
