"""`osdn pipeline --svg` drawn by Graphviz's `dot` and looked at as a person would: the SVG
opened in headless Chromium and saved as PNG.  Graphviz and Chromium are Debian packages
that scripts/setup-env installs; these tests fail, never skip, where they are missing."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from controller.cli import main
from controller.picture import tables_in_svg
from controller.pipeline.tables import Table
from tests.support.screenshot import screenshot, svg_size

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed-cluster"
NODE = "node2.ocp.cn"


def test_svg_screenshot_as_a_person_sees_it(tmp_path) -> None:
    """The seed node's picture, drawn by `osdn pipeline`, opened in Chromium: a picture of
    sensible size with every table's box, and not blank."""
    svg_path, png_path = tmp_path / "pipeline.svg", tmp_path / "pipeline.png"
    assert main(["pipeline", str(SEED), "--plugin", "multitenant", "--node", NODE,
                 "--svg", str(svg_path)]) == 0
    svg = svg_path.read_bytes()
    assert tables_in_svg(svg) == {int(t) for t in Table}
    assert b"br0 of node2.ocp.cn under multitenant" in svg
    width, height = svg_size(svg)
    assert 800 <= width <= 6000 and 300 <= height <= 3000, (width, height)
    looks_like_a_picture(svg_path, png_path)


def looks_like_a_picture(svg_path: Path, png_path: Path) -> Image.Image:
    """Chromium's screenshot of the SVG: at the SVG's size, some ink, several colours."""
    width, height = svg_size(svg_path.read_bytes())
    screenshot(svg_path, png_path)
    image = Image.open(png_path).convert("RGB")
    assert image.size == (width, height)
    histogram = image.convert("L").histogram()
    inked = sum(histogram[:200]) / (width * height)  # pixels clearly darker than paper
    assert 0.01 < inked < 0.5, f"{inked:.3f} of the picture is ink"
    colours = len(image.getcolors(1 << 20) or ())
    assert colours > 20  # text, blue ports, grey counts: not a flat image
    return image


def test_pipeline_cli_errors(tmp_path, capsys) -> None:
    assert main(["pipeline", str(SEED), "--node", "nodeX", "--svg",
                 str(tmp_path / "x.svg")]) == 1
    assert "--node: no HostSubnet with host 'nodeX'" in capsys.readouterr().err
    assert main(["pipeline", str(SEED), "--node", NODE, "--svg",
                 str(tmp_path / "no" / "x.svg")]) == 1
    assert "No such file or directory" in capsys.readouterr().err


# ------------------------------------------------------------------ --explain: a packet's path

RICH = REPO / "examples" / "rich-cluster"


def red_edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r'^"(n\d:[\w-]+)" -> "(n\d:[\w-]+)" \[[^\]]*#d62728', dot, re.M))


def filled(dot: str, colour: str) -> set[str]:
    return set(re.findall(rf'^"(n\d:\d+)" \[shape=box, style=filled, fillcolor="{colour}"',
                          dot, re.M))


def test_explain_through_a_service_across_nodes(tmp_path) -> None:
    """web (node2) to the Service: br0, tun0 and the host's DNAT, br0 again, VXLAN to node1,
    the backend pod; traced by `osdn explain`'s engine on a private OVS."""
    svg, dot = tmp_path / "path.svg", tmp_path / "path.dot"
    assert main(["pipeline", str(SEED), "--explain", "default/web-76c94f7546-t8pfq",
                 "svc/default/tomcat-service:8080", "--svg", str(svg), "--dot", str(dot)]) == 0
    text = dot.read_text()
    assert '"cluster_n0"' in text and '"cluster_n1"' in text and '"cluster_n2"' not in text
    assert "<b>node2.ocp.cn</b>" in text and "<b>node1.ocp.cn</b>" in text
    assert "delivered: delivered to Pod default/tomcat-7f646bb995-b8bhr" in text
    assert red_edges(text) == {
        ("n0:in-pods", "n0:0"), ("n0:0", "n0:20"), ("n0:20", "n0:21"), ("n0:21", "n0:30"),
        ("n0:30", "n0:60"), ("n0:60", "n0:out-tun0"), ("n0:out-tun0", "n0:in-tun0"),
        ("n0:in-tun0", "n0:0"), ("n0:0", "n0:30"), ("n0:30", "n0:90"),
        ("n0:90", "n0:out-vxlan0"), ("n0:out-vxlan0", "n1:in-vxlan0"),
        ("n1:in-vxlan0", "n1:0"), ("n1:0", "n1:10"), ("n1:10", "n1:30"), ("n1:30", "n1:70"),
        ("n1:70", "n1:80"), ("n1:80", "n1:out-pods")}
    assert tables_in_svg(svg.read_bytes()) == {int(t) for t in Table}
    image = looks_like_a_picture(svg, tmp_path / "path.png")
    red = 0
    for count, colour in image.getcolors(1 << 24) or ():
        r, g, b = colour  # type: ignore[misc]  # RGB: a tuple, whatever the stubs say
        red += count if r > 180 and g < 90 and b < 90 else 0
    assert red > 500, f"{red} red pixels: the path does not show"


def test_explain_drop_is_marked_on_its_node(tmp_path) -> None:
    svg, dot = tmp_path / "drop.svg", tmp_path / "drop.dot"
    assert main(["pipeline", str(RICH), "--plugin", "multitenant", "--node", "node-c",
                 "--explain", "frontend/web-6d9b7f5c48-k7tqz", "db/postgres-0:5432",
                 "--svg", str(svg), "--dot", str(dot)]) == 0
    text = dot.read_text()
    # node-a and node-b on the path, node-c because --node asked for it
    assert [m for m in re.findall(r"<b>(node-\w)</b>", text)] == ["node-a", "node-b", "node-c"]
    assert filled(text, "#ff9896") == {"n1:80"}  # dropped on node-b at table 80
    assert "dropped on node-b at table 80" in text
    assert not any(a.startswith("n2") or b.startswith("n2") for a, b in red_edges(text))
    assert not any(b.startswith("n1:out") for _, b in red_edges(text))


def test_explain_errors(tmp_path, capsys) -> None:
    assert main(["pipeline", str(SEED), "--explain", "default/nope", "default/web-x",
                 "--svg", str(tmp_path / "x.svg")]) == 1
    assert "osdn pipeline: --explain: " in capsys.readouterr().err
    assert not (tmp_path / "x.svg").exists()
    assert main(["pipeline", str(SEED), "--svg", str(tmp_path / "x.svg")]) == 2
    assert "give --node NAME, --explain SRC DST, or both" in capsys.readouterr().err
