"""The pipeline as a picture: br0's tables as boxes, the declared table graph as edges, the
ports, and optionally one packet's path across nodes; drawn by Graphviz's `dot`.

`pipeline_dot` is pure (DOT text from the node's rendered flows); `render_svg` runs `dot`.
Every table of `controller.pipeline.tables` gets a box (number, meaning, how many flows this
node holds in it); every edge of `NEXT` is drawn, solid where one of the node's flows takes
it and dotted where none does (a declared continuation this node does not use).  Ports are
drawn twice, packets coming in on the left and going out on the right, so the graph reads
left to right without loops.  With a highlighted path (`Highlight`, from `osdn explain`),
each involved node is its own cluster, the tables the packet visits are filled, the edges
it takes are thick, and the hand-over between nodes goes from one node's vxlan0 to the
next's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise
from typing import Any

from controller.compiler import NodeFlows
from controller.pipeline.flow import Conntrack, Output, OutputReg
from controller.pipeline.tables import MEANING, NEXT, Table
from topology.errors import OsdnError
from topology.model import TUN0_OFPORT, VXLAN_OFPORT, Topology

MAX_PODS_SHOWN = 8
PATH_COLOUR = "#d62728"
VISITED_FILL = "#ffe3e0"
DROP_FILL = "#ff9896"


class PictureError(OsdnError):
    """Graphviz is missing or refused the graph."""


@dataclass(frozen=True)
class Highlight:
    """One packet's way to draw: (node, table) of every br0 lookup in order, a caption,
    and where it was dropped (node, table), if it was."""

    path: Sequence[tuple[str, int]]
    caption: str = ""
    drop: tuple[str, int] | None = None
    entry: str | None = None  # the port the packet enters the first br0 by: "pods", "tun0"…
    exit: str | None = None  # the port it leaves the last br0 by, when it is delivered


def highlight_of(explanation: Any) -> Highlight:
    """The `Highlight` of an `osdn explain` answer (`controller.explain.Explanation`): its
    br0 path, a caption with the verdict, the drop, and the ports it enters and leaves by."""
    hops = [hop for hop in explanation.hops if hop.kind == "br0"]
    entry = None
    if hops:
        found = re.search(r"\bin_port=(\d+)", hops[0].input)
        if found:
            entry = _PORT_NODE.get(int(found.group(1)), "pods")
    exit_port = None
    if explanation.verdict == "delivered" and explanation.delivered_to is not None:
        exit_port = "pods" if explanation.delivered_to.pod else "tun0"
    elif explanation.verdict != "dropped" and hops and "tun0" in hops[-1].outcome:
        exit_port = "tun0"  # left the cluster through the host side
    drop = None
    if explanation.drop_node is not None and explanation.drop_table is not None:
        drop = (explanation.drop_node, explanation.drop_table)
    caption = (f"{explanation.src['label']} → {explanation.dst['label']}: "
               f"{explanation.verdict}: {explanation.sentence}")
    return Highlight(explanation.path(), caption, drop, entry, exit_port)


_PORT_NODE = {VXLAN_OFPORT: "vxlan0", TUN0_OFPORT: "tun0"}


@dataclass
class _Graph:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def _id(prefix: str, name: str | int) -> str:
    return f'"{prefix}:{name}"'


def _port_label(topology: Topology, node: str, direction: str) -> dict[str, str]:
    """Port node name -> HTML label: vxlan0, tun0 and the node's pods."""
    pods = sorted((p.ofport, p.key) for p in topology.pods
                  if p.node == node and p.ofport is not None)
    shown = [f"{ofport} {escape(key)}" for ofport, key in pods[:MAX_PODS_SHOWN]]
    if len(pods) > MAX_PODS_SHOWN:
        shown.append(f"… and {len(pods) - MAX_PODS_SHOWN} more")
    arrow = "in" if direction == "in" else "out"
    return {
        "vxlan0": f"<<b>vxlan0</b>&nbsp;(ofport {VXLAN_OFPORT})<br/>"
                  f"<font point-size='10'>VXLAN {arrow}</font>>",
        "tun0": f"<<b>tun0</b>&nbsp;(ofport {TUN0_OFPORT})<br/>"
                f"<font point-size='10'>host {arrow}</font>>",
        "pods": "<<b>pod ports</b><br/><font point-size='10'>"
                + ("<br/>".join(shown) or "none") + "</font>>",
    }


def _outputs(flows: NodeFlows) -> set[tuple[int, str]]:
    """(table, port node) for every output action of the node's flows."""
    found: set[tuple[int, str]] = set()
    for flow in flows.flows:
        for action in flow.actions:
            if isinstance(action, Output):
                port = _PORT_NODE.get(action.port, "pods")
                found.add((int(flow.table), port))
            elif isinstance(action, OutputReg):
                found.add((int(flow.table), "pods"))
    return found


def _used_edges(flows: NodeFlows) -> set[tuple[int, int]]:
    used: set[tuple[int, int]] = set()
    for flow in flows.flows:
        if flow.goto is not None:
            used.add((int(flow.table), int(flow.goto)))
        for action in flow.actions:
            if isinstance(action, Conntrack) and action.table is not None:
                used.add((int(flow.table), int(action.table)))
    return used


def _table_label(table: Table, count: int) -> str:
    flows = f"{count} flow{'s' if count != 1 else ''}"
    # "pod ingress: source checked, …" on two lines: boxes half as wide, the picture too
    meaning = "<br/>".join(escape(part) for part in MEANING[table].split(": ", 1))
    return (f"<<b>table {int(table)}</b><br/>{meaning}<br/>"
            f"<font point-size='10' color='#555555'>{flows}</font>>")


def _node_graph(g: _Graph, topology: Topology, flows: NodeFlows, prefix: str,
                visited: set[int], taken: set[tuple[int, int]], drop: int | None,
                exits: set[tuple[int | str, str]]) -> None:
    """One node's tables, edges and ports, inside the current (sub)graph."""
    counts = Counter(int(f.table) for f in flows.flows)
    for direction in ("in", "out"):
        for name, label in _port_label(topology, flows.node, direction).items():
            g.add(f'{_id(prefix, direction + "-" + name)} [shape=box, style="rounded,filled", '
                  f'fillcolor="#e8f0fe", color="#4a6fa5", label={label}];')
    for table in Table:
        fill = DROP_FILL if int(table) == drop else (
            VISITED_FILL if int(table) in visited else "white")
        pen = f', color="{PATH_COLOUR}", penwidth=2.5' if int(table) in visited else ""
        g.add(f'{_id(prefix, int(table))} [shape=box, style=filled, fillcolor="{fill}"'
              f'{pen}, label={_table_label(table, counts[int(table)])}];')
    for port in ("vxlan0", "tun0", "pods"):
        g.add(f'{_id(prefix, "in-" + port)} -> {_id(prefix, int(Table.CLASSIFIER))} '
              f'[color="#4a6fa5"{_path_style(("in", port) in exits)}];')
    used = _used_edges(flows)
    for source, targets in sorted(NEXT.items()):
        for target in sorted(targets):
            edge = (int(source), int(target))
            style = _path_style(edge in taken) if edge in taken else (
                "" if edge in used else ', style=dotted, color="#999999"')
            constraint = ", constraint=false" if source == target else ""
            g.add(f"{_id(prefix, int(source))} -> {_id(prefix, int(target))} "
                  f"[{style.lstrip(', ')}{constraint}];")
    for number, port in sorted(_outputs(flows)):
        style = _path_style((number, port) in exits)
        g.add(f'{_id(prefix, number)} -> {_id(prefix, "out-" + port)} '
              f'[color="#4a6fa5"{style}];')


def _path_style(on: bool) -> str:
    return f', color="{PATH_COLOUR}", penwidth=3' if on else ""


def pipeline_dot(topology: Topology, flows_by_node: dict[str, NodeFlows],
                 highlight: Highlight | None = None) -> str:
    """DOT text of the pipeline of each node in `flows_by_node` (in its order): one node
    alone, or one cluster per node when there are several or a path to highlight."""
    g = _Graph()
    nodes = list(flows_by_node)
    plugin = topology.cluster_network.plugin.short_name
    title = f"br0 of {nodes[0]} under {plugin}" if len(nodes) == 1 else \
        f"br0 of {', '.join(nodes)} under {plugin}"
    if highlight is not None and highlight.caption:
        title += f"<br/><font point-size='11'>{escape(highlight.caption)}</font>"
    g.add("digraph pipeline {")
    g.add('  graph [rankdir=LR, fontname="Helvetica", nodesep=0.25, ranksep=0.45, '
          f"labelloc=t, fontsize=16, label=<{title}>];")
    g.add('  node [fontname="Helvetica", fontsize=11];')
    g.add('  edge [fontname="Helvetica", arrowsize=0.7];')
    path = list(highlight.path) if highlight else []
    for index, host in enumerate(nodes):
        prefix = f"n{index}"
        visited = {t for h, t in path if h == host}
        taken = {(a[1], b[1]) for a, b in pairwise(path) if a[0] == b[0] == host
                 and b[1] in _successors(a[1])}
        drop = highlight.drop[1] if highlight and highlight.drop and \
            highlight.drop[0] == host else None
        exits: set[tuple[int | str, str]] = set()
        if highlight is not None and path:
            if highlight.entry and host == path[0][0]:
                exits.add(("in", highlight.entry))
            if highlight.exit and host == path[-1][0]:
                exits.add((path[-1][1], highlight.exit))
        if highlight is None and len(nodes) == 1:
            _node_graph(g, topology, flows_by_node[host], prefix, visited, taken, drop, exits)
            continue
        hs = next(h for h in topology.host_subnets if h.host == host)
        g.add(f'  subgraph "cluster_{prefix}" {{')
        g.add(f'    label=<<b>{escape(host)}</b> ({hs.subnet}, {hs.host_ip})>; '
              'style="rounded"; color="#888888";')
        _node_graph(g, topology, flows_by_node[host], prefix, visited, taken, drop, exits)
        g.add("  }")
    _hand_overs(g, nodes, path)
    g.add(_legend(highlight is not None))
    g.add("}")
    return "\n".join(g.lines) + "\n"


def _legend(with_path: bool) -> str:
    rows = [("black", "black line", "a flow of this node continues there (goto, ct)"),
            ("#999999", "dotted grey", "declared in the table graph; no flow of this node"),
            ("#4a6fa5", "blue line", "output to a port")]
    if with_path:
        rows.append((PATH_COLOUR, "thick red", "the packet's path; visited tables filled"))
    cells = "".join(f"<tr><td align='left'><font color='{colour}'><b>{name}</b></font></td>"
                    f"<td align='left'>{escape(text)}</td></tr>" for colour, name, text in rows)
    return (f'  legend [shape=plaintext, fontsize=10, label=<<table border="0" '
            f'cellspacing="0" cellpadding="2">{cells}</table>>];')


def _successors(number: int) -> set[int]:
    """The tables `number` may continue to; none for a table we do not define."""
    try:
        return {int(t) for t in NEXT[Table(number)]}
    except ValueError:
        return set()


def _hand_overs(g: _Graph, nodes: list[str], path: Sequence[tuple[str, int]]) -> None:
    """Edges where the packet leaves one pass of br0 and starts another: to another node
    through VXLAN, or back into the same node's br0 through tun0 (the host side)."""
    index = {host: f"n{i}" for i, host in enumerate(nodes)}
    for (host_a, table_a), (host_b, table_b) in pairwise(path):
        a, b = index[host_a], index[host_b]
        if host_a != host_b:
            hops = [(_id(a, table_a), _id(a, "out-vxlan0")),
                    (_id(a, "out-vxlan0"), _id(b, "in-vxlan0"), "VXLAN"),
                    (_id(b, "in-vxlan0"), _id(b, table_b))]
        elif table_b == 0 and 0 not in _successors(table_a):
            hops = [(_id(a, table_a), _id(a, "out-tun0")),
                    (_id(a, "out-tun0"), _id(a, "in-tun0"), "host side"),
                    (_id(a, "in-tun0"), _id(a, table_b))]
        else:
            continue
        for hop in hops:
            label = f', label="{hop[2]}", fontcolor="{PATH_COLOUR}"' if len(hop) > 2 else ""
            g.add(f"{hop[0]} -> {hop[1]} [color=\"{PATH_COLOUR}\", penwidth=3"
                  f"{label}, constraint=false];")


def render_svg(dot_text: str, timeout: float = 60.0) -> bytes:
    """The picture as SVG, drawn by Graphviz's `dot`."""
    dot = shutil.which("dot")
    if dot is None:
        raise PictureError("graphviz's `dot` is not installed (apt-get install graphviz)")
    proc = subprocess.run([dot, "-Tsvg"], input=dot_text.encode(), capture_output=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise PictureError(f"dot failed ({proc.returncode}): {proc.stderr.decode()[:500]}")
    return proc.stdout


def tables_in_svg(svg: bytes) -> set[int]:
    """Table numbers that have a box in an SVG drawn by `render_svg` (for checks)."""
    return {int(n) for n in re.findall(rb"<title>n\d+:(\d+)</title>", svg)}


