"""`osdn pipeline --svg` drawn by Graphviz's `dot` and looked at as a person would: the SVG
opened in headless Chromium and saved as PNG.  Graphviz and Chromium are Debian packages
that scripts/setup-env installs; these tests fail, never skip, where they are missing."""

from __future__ import annotations

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
    screenshot(svg_path, png_path)
    with Image.open(png_path) as image:
        assert image.size == (width, height)
        grey = image.convert("L")
        histogram = grey.histogram()
    inked = sum(histogram[:200]) / (width * height)  # pixels clearly darker than paper
    assert 0.01 < inked < 0.5, f"{inked:.3f} of the picture is ink"
    colours = len(Image.open(png_path).convert("RGB").getcolors(1 << 20) or ())
    assert colours > 20  # text, blue ports, grey counts: not a flat image


def test_pipeline_cli_errors(tmp_path, capsys) -> None:
    assert main(["pipeline", str(SEED), "--node", "nodeX", "--svg",
                 str(tmp_path / "x.svg")]) == 1
    assert "--node: no HostSubnet with host 'nodeX'" in capsys.readouterr().err
    assert main(["pipeline", str(SEED), "--node", NODE, "--svg",
                 str(tmp_path / "no" / "x.svg")]) == 1
    assert "No such file or directory" in capsys.readouterr().err
