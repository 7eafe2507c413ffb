"""The benchmark command runs end to end (tiny cluster) and reports what the issue asks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ovs
REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--plugin", "multitenant",
                           "--nodes", "4", "--namespaces", "30", "--services", "20",
                           "--pods-per-node", "5", "--repeat", "1", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = json.dumps(json.loads(out.read_text()))
    for word in ("ovs-ofctl", "restart", "flow"):
        assert word in text or word in proc.stdout, word
    assert "ratio" in proc.stdout
