"""`python -m bench.run --source kubernetes` runs end to end on a tiny cluster (no OVS): the
API source, served by the lab's double, against the file source, with ratios, and both
sources' flows equal after the sync and after every event (the bench fails otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("plugin", ["multitenant", "networkpolicy"])
def test_the_kubernetes_bench_runs_and_reports(tmp_path: Path, plugin: str) -> None:
    """Under networkpolicy the API source watches the node's pods and the pods of the
    namespaces that have policies: the bench's flow comparison holds it to the file source."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--source", "kubernetes",
                           "--plugin", plugin, "--nodes", "4", "--namespaces", "8",
                           "--services", "10", "--pods-per-node", "5", "--repeat", "2",
                           "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())["results"][plugin]
    listed = result["pods_listed"]
    assert listed["every pod"] == result["cluster"]["pods"] > listed["watched pods"] > 0
    assert set(result["kube_sync_s"]) == set(result["kube_memory_b"]) == set(listed)
    assert result["file_memory_b"] > 0 and all(result["kube_memory_b"].values())
    events = result["events"]
    assert set(events) == {"pod added", "pod deleted", "netid changed"}
    for what, figures in events.items():  # the same minimal difference from either source
        assert figures["kube_flows"] == figures["file_flows"] > 0, what
        assert figures["kube_s"] > 0 and figures["file_s"] > 0
    assert "watch dropped" not in proc.stderr  # the informers were stopped cleanly
    table = proc.stdout
    for row in ("initial sync", "memory held", "pod added", "pod deleted", "netid changed"):
        assert row in table, row
    assert table.count("ratio") >= 7
