"""`osdn pipeline`: the picture of a node's br0 (controller.picture) as Graphviz source.
The SVG itself and its look in a browser: tests/integration/test_picture.py."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from controller import picture
from controller.compiler import Settings, compile_node
from controller.picture import Highlight, PictureError, pipeline_dot, render_svg
from controller.pipeline.tables import MEANING, NEXT, Table
from topology.load import load_topology
from topology.model import Plugin

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed-cluster"
GOLDEN = REPO / "tests" / "golden"
NODE = "node2.ocp.cn"


def seed_dot(plugin: Plugin, highlight: Highlight | None = None) -> str:
    topology = load_topology([str(SEED)], plugin=plugin)
    hosts = dict.fromkeys([*(h for h, _ in (highlight.path if highlight else ())), NODE])
    flows = {h: compile_node(topology, h, Settings(resolver=lambda name: ())) for h in hosts}
    return pipeline_dot(topology, flows, highlight)


def golden_counts(plugin: Plugin) -> Counter[int]:
    """Flows per table of node2 in the reviewed golden render."""
    text = (GOLDEN / f"seed-{plugin.short_name}.flows").read_text()
    section = text.split(f"# node {NODE} ")[1].split("\n# node ")[0]
    return Counter(int(m) for m in re.findall(r"table=(\d+),", section))


def edges(dot: str) -> dict[tuple[str, str], str]:
    found = re.findall(r'^"n0:(\d+)" -> "n0:(\d+)" \[(.*)\];$', dot, re.M)
    return {(a, b): attrs for a, b, attrs in found}


@pytest.mark.parametrize("plugin", list(Plugin), ids=lambda p: p.short_name)
def test_every_table_is_a_box_with_its_flow_count(plugin: Plugin) -> None:
    dot = seed_dot(plugin)
    counts = golden_counts(plugin)
    for table in Table:
        count = counts[int(table)]
        box = re.search(rf'^"n0:{int(table)}" \[.*<b>table {int(table)}</b><br/>'
                        rf'(.*?)<br/><font[^>]*>{count} flows?</font>>\];$', dot, re.M)
        assert box is not None, f"no box for table {int(table)} with {count} flows"
        assert box.group(1).replace("<br/>", ": ") == MEANING[table]


def test_declared_edges_solid_where_a_flow_takes_them() -> None:
    multitenant, networkpolicy = edges(seed_dot(Plugin.MULTITENANT)), \
        edges(seed_dot(Plugin.NETWORKPOLICY))
    declared = {(str(int(a)), str(int(b))) for a, bs in NEXT.items() for b in bs}
    assert set(multitenant) == set(networkpolicy) == declared
    # table 25 and conntrack recirculation exist only under networkpolicy
    assert "dotted" in multitenant[("0", "25")] and "dotted" in multitenant[("0", "0")]
    assert "dotted" not in networkpolicy[("0", "25")]
    assert "dotted" not in networkpolicy[("0", "0")]
    assert "dotted" not in multitenant[("30", "70")]
    # no NetNamespace of the seed has multicast: 110 never continues to 111
    assert "dotted" in multitenant[("110", "111")]


def test_ports_and_where_tables_output() -> None:
    dot = seed_dot(Plugin.MULTITENANT)
    assert "3 default/web-76c94f7546-t8pfq" in dot and "4 default/tomcat-nginx" in dot
    outputs = set(re.findall(r'^"n0:(\d+)" -> "n0:out-(\w+)"', dot, re.M))
    assert outputs == {("30", "tun0"), ("40", "pods"), ("50", "vxlan0"), ("60", "tun0"),
                       ("80", "pods"), ("90", "vxlan0"), ("100", "tun0"),
                       ("100", "vxlan0"), ("101", "tun0"), ("111", "vxlan0")}


def test_a_path_across_two_nodes() -> None:
    path = [(NODE, 0), (NODE, 20), (NODE, 21), (NODE, 30), (NODE, 90),
            ("node1.ocp.cn", 0), ("node1.ocp.cn", 10), ("node1.ocp.cn", 30),
            ("node1.ocp.cn", 70), ("node1.ocp.cn", 80)]
    dot = seed_dot(Plugin.MULTITENANT, Highlight(path, "web -> node1's pod: delivered",
                                                 entry="pods", exit="pods"))
    assert 'subgraph "cluster_n0"' in dot and 'subgraph "cluster_n1"' in dot
    assert "<b>node2.ocp.cn</b> (10.130.0.0/23, 192.168.108.112)" in dot
    red = set(re.findall(r'^"(n\d:[\w-]+)" -> "(n\d:[\w-]+)" \[[^\]]*#d62728', dot, re.M))
    assert {("n0:in-pods", "n0:0"), ("n0:0", "n0:20"), ("n0:20", "n0:21"),
            ("n0:21", "n0:30"), ("n0:30", "n0:90"), ("n0:90", "n0:out-vxlan0"),
            ("n0:out-vxlan0", "n1:in-vxlan0"), ("n1:in-vxlan0", "n1:0"), ("n1:0", "n1:10"),
            ("n1:10", "n1:30"), ("n1:30", "n1:70"), ("n1:70", "n1:80"),
            ("n1:80", "n1:out-pods")} == red
    filled = set(re.findall(r'^"(n\d:\d+)" \[shape=box, style=filled, fillcolor="#ffe3e0"',
                            dot, re.M))
    assert filled == {f"n0:{t}" for t in (0, 20, 21, 30, 90)} | \
        {f"n1:{t}" for t in (0, 10, 30, 70, 80)}


def test_missing_graphviz_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(picture.shutil, "which", lambda name: None)
    with pytest.raises(PictureError, match="apt-get install graphviz"):
        render_svg("digraph {}")
