"""The Mininet experiments, run as users run them: `mininet/run isolation ...`.

Experiment 1 (pingall against the plugin's isolation matrix) on the seed cluster, and on the
rich cluster under ovs-multitenant, whose matrix has both outcomes.  Each run is a whole
sandbox (own network, mount and PID namespaces, private OVS instances, the controller):
nothing of it may survive, which the last test checks.  Missing tools fail the tests (they
are installed by scripts/setup-env), they never skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ovs
REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "mininet" / "run"
TOOLS = ("unshare", "mnexec", "ovs-vswitchd", "ovsdb-server", "iperf", "ethtool", "tc",
         "telnet", "ping", "ss", "iptables")


def require_tools() -> None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [tool for tool in TOOLS if shutil.which(tool, path=path) is None]
    assert not missing, (f"missing {missing}: apt-get install mininet iperf openvswitch-switch "
                         "(scripts/setup-env installs them)")
    assert Path("/usr/lib/python3/dist-packages/mininet/net.py").exists() or \
        os.environ.get("MININET_PACKAGE"), "Debian's mininet package is not installed"
    assert os.geteuid() == 0, "the Mininet sandbox needs root"


def run(*args: str, timeout: float = 150, log_dir: Path | None = None
        ) -> tuple[subprocess.CompletedProcess[str], float]:
    require_tools()
    argv = [str(RUN), "--python", sys.executable]
    if log_dir is not None:
        argv += ["--log-dir", str(log_dir)]
    started = time.monotonic()
    proc = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, stdin=subprocess.DEVNULL)
    return proc, time.monotonic() - started


def sandbox_leftovers() -> list[str]:
    """Processes of any sandbox still alive (there should be none once `run` returned)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "--osdn-mininet-sandbox" in cmdline or "/run/osdn-mininet/" in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_experiment_1_seed_cluster_pingall_matches_isolation(tmp_path: Path) -> None:
    before = sandbox_leftovers()
    proc, elapsed = run("isolation", str(REPO / "examples" / "seed-cluster"),
                        log_dir=tmp_path / "logs")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "PASS: pingall matches the multitenant isolation matrix (12 pairs)" in out, out
    # Mininet's own pingall printed its matrix: every pod reaches the 3 others (VNID 0 is
    # global; kube-public's pod is reached from and reaches default's pods)
    matrix = re.findall(r"^(\w+) -> (.*)$", out[out.index("*** Ping:"):], re.M)[:4]
    assert len(matrix) == 4 and all(len(row.split()) == 3 and "X" not in row
                                    for _, row in matrix), out
    assert "cluster up: 4 nodes, 4 pods" in out
    logs = {p.name for p in (tmp_path / "logs" / "isolation").iterdir()}
    assert {"c0-1.log", "node2-ovs-vswitchd.log", "sandbox-ovs-vswitchd.log"} <= logs, logs
    print(f"experiment 1, seed cluster: {elapsed:.1f} s")
    assert sandbox_leftovers() == before


def test_experiment_1_rich_cluster_shows_isolation(tmp_path: Path) -> None:
    proc, elapsed = run("isolation", str(REPO / "examples" / "rich-cluster"),
                        "--plugin", "multitenant", "--parallel")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    m = re.search(r"(\d+) ordered pairs in [\d.]+ s: (\d+) should answer, (\d+) should be "
                  r"isolated", out)
    assert m, out
    pairs, answer, isolated = map(int, m.groups())
    assert pairs == answer + isolated and answer > 0 and isolated > 0, out
    assert "PASS: pingall matches the multitenant isolation matrix" in out, out
    print(f"experiment 1, rich cluster (multitenant, {pairs} pairs): {elapsed:.1f} s")


def test_experiments_refuse_to_run_outside_the_sandbox() -> None:
    """Mininet's clean-up acts machine-wide: the experiments only run under mininet/run."""
    proc = subprocess.run([sys.executable, str(REPO / "mininet" / "experiments" /
                                               "isolation.py"),
                           str(REPO / "examples" / "seed-cluster")],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode != 0
    assert "refusing to run Mininet outside its sandbox" in proc.stderr, proc.stderr


def test_wrapper_rejects_unknown_commands() -> None:
    proc = subprocess.run([str(RUN), "pingall"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unknown command" in proc.stderr


def test_mn_cleanup_inside_the_sandbox_touches_nothing_outside(tmp_path: Path) -> None:
    """`mn -c` kills every ping, deletes /tmp/*.log and every bridge it reaches: inside
    mininet/run it reaches only the sandbox.  A ping and a /tmp/*.log of ours outside
    survive it; Mininet's own `mn` then works in the sandbox with the userspace datapath."""
    require_tools()
    marker = Path("/tmp") / f"osdn-mininet-test-{os.getpid()}.log"
    marker.write_text("keep\n")
    ping = subprocess.Popen(["ping", "-q", "-i", "0.5", "-c", "600", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        script = (
            # refuse to go on unless this shell really is inside the sandbox
            "grep -q -- --osdn-mininet-sandbox /proc/1/cmdline || exit 9\n"
            "mn -c >/dev/null 2>&1\n"
            "mn --switch ovsbr,datapath=user --controller none --test pingall 2>&1 "
            "| grep 'Results'\n"
            "exit\n")
        proc = subprocess.run([str(RUN), "--python", sys.executable, "shell"], input=script,
                              capture_output=True, text=True, timeout=180, cwd=REPO)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "Results: 0% dropped (2/2 received)" in out, out
        assert ping.poll() is None, "mn -c in the sandbox killed a ping outside it"
        assert marker.read_text() == "keep\n", "mn -c in the sandbox deleted a /tmp/*.log"
    finally:
        ping.kill()
        ping.wait(10)
        marker.unlink(missing_ok=True)


def test_experiment_2_failures_lose_nothing_on_restart_and_only_the_cut() -> None:
    proc, elapsed = run("failure", str(REPO / "examples" / "seed-cluster"), "--outage", "1")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    restart = out[out.index("*** A."):out.index("*** B.")]
    assert re.search(r"packets: \d+ sent, 0 lost", restart), restart
    assert "4/4 bridges re-synced" in restart and "0 flow-mods in all" in restart, restart
    cut = out[out.index("*** B."):out.index("*** C.")]
    m = re.search(r"packets: (\d+) sent, (\d+) lost", cut)
    assert m and int(m.group(2)) > 0, cut
    ovs = out[out.index("*** C."):]
    assert len(re.findall(r"br0 holding all \d+ flows", ovs)) == 2, ovs
    assert "PASS: controller restart ok, underlay link cut ok, OVS restart ok" in out, out
    print(f"experiment 2: {elapsed:.1f} s")


def test_experiment_3_measures_vxlan_over_a_shaped_underlay() -> None:
    proc, elapsed = run("measure", str(REPO / "examples" / "seed-cluster"), "--delay", "5ms",
                        "--bw", "50", "--seconds", "2", "--pings", "10")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    rtt = re.search(r"RTT min/avg/max ms\s+([\d.]+)/([\d.]+)/[\d.]+\s+([\d.]+)/([\d.]+)/", out)
    tcp = re.search(r"TCP Mbit/s \(receiver\)\s+([\d.]+)\s+([\d.]+)", out)
    assert rtt and tcp, out
    same_avg, cross_min = float(rtt.group(2)), float(rtt.group(3))
    same_tcp, cross_tcp = float(tcp.group(1)), float(tcp.group(2))
    assert cross_min >= 19.0 > same_avg, out  # 4 x 5 ms across, well under 1 ms on one node
    assert 0 < cross_tcp <= 52.0 and 50.0 < same_tcp, out  # the 50 Mbit/s underlay limits
    print(f"experiment 3: {elapsed:.1f} s")
