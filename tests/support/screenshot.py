"""A picture as a person sees it: an SVG opened in headless Chromium, saved as PNG.

`python -m tests.support.screenshot` redraws docs/pipeline.png (the README's picture): the
seed cluster's node2.ocp.cn under ovs-multitenant, through `osdn pipeline`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def svg_size(svg: bytes) -> tuple[int, int]:
    """The SVG's size in CSS pixels (Graphviz writes points)."""
    found = re.search(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if found is None:
        raise ValueError("no width/height in points: not an SVG from Graphviz")
    return tuple(round(float(v) * 4 / 3) + 1 for v in found.groups())  # type: ignore[return-value]


def screenshot(svg_path: Path, png_path: Path) -> None:
    """Open `svg_path` in headless Chromium at its own size and save what it shows."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        raise RuntimeError("no Chromium found (apt-get install chromium; scripts/setup-env)")
    width, height = svg_size(svg_path.read_bytes())
    with tempfile.TemporaryDirectory(prefix="osdn-chromium-") as profile:
        # --no-sandbox: tests run as root, where Chromium's sandbox refuses to start
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--user-data-dir={profile}",
                        f"--window-size={width},{height}",
                        f"--screenshot={png_path}", svg_path.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)


def main() -> int:
    from controller.cli import main as osdn
    with tempfile.TemporaryDirectory() as tmp:
        svg = Path(tmp) / "pipeline.svg"
        code = osdn(["pipeline", str(REPO / "examples" / "seed-cluster"), "--plugin",
                     "multitenant", "--node", "node2.ocp.cn", "--svg", str(svg)])
        if code:
            return code
        screenshot(svg, REPO / "docs" / "pipeline.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
