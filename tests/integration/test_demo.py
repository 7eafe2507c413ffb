"""The README's first command, end to end: `osdn demo` on the seed cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ovs
REPO = Path(__file__).resolve().parents[2]


def test_demo_passes_and_leaves_nothing(tmp_path: Path) -> None:
    prefix = "osdnd"
    osdn = str(Path(sys.executable).with_name("osdn"))
    proc = subprocess.run([osdn, "demo", "examples/seed-cluster", "--state-dir",
                           str(tmp_path / "state"), "--prefix", prefix], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout
    for expected in ("PASS: T1", "PASS: T8", "sees the egress IP 192.168.108.200",
                     "answered by its backend pod", "all checks passed"):
        assert expected in out, out[-3000:]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [line for line in namespaces.splitlines() if line.startswith(prefix + "-")]
    assert not (tmp_path / "state").exists()
