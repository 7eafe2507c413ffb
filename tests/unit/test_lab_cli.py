"""The lab commands' user errors and prerequisite checks: one message, exit 1, nothing
created (no root, no OVS needed: every case fails before touching the machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.ovs import ovscommands
from lab.prerequisites import CLUSTER_TOOLS, DEMO_TOOLS, missing_prerequisites

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed-cluster"
OSDN = str(Path(sys.executable).with_name("osdn"))
WEB = "default/web-76c94f7546-t8pfq"
HINT = "or run scripts/setup-env"


def osdn(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) if path is None else {**os.environ, "PATH": path}
    return subprocess.run([OSDN, *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=60)


def fake_path(directory: Path, *programs: str) -> str:
    """A PATH of one directory holding do-nothing executables named `programs`."""
    directory.mkdir()
    for name in programs:
        program = directory / name
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
    return str(directory)


def fake_cluster(state: Path) -> Path:
    """A state directory as `osdn cluster up` leaves it (nothing behind it is running)."""
    state.mkdir()
    (state / "cluster.json").write_text(json.dumps({
        "prefix": "osdnfake", "topology": [str(SEED)], "plugin": None,
        "nodes": {"node2.ocp.cn": {"netns": "osdnfake-n0", "host_ip": "192.168.108.112"}},
        "pods": {WEB: {"netns": "osdnfake-p0", "node": "node2.ocp.cn", "ip": "10.130.0.5",
                       "mac": "0a:58:0a:82:00:05", "ofport": 3,
                       "interface": "veth92727375"}}}))
    return state


def one_line_error(proc: subprocess.CompletedProcess[str], prefix: str) -> str:
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
    return lines[0]


def test_exec_without_a_cluster(tmp_path: Path) -> None:
    line = one_line_error(osdn("cluster", "exec", "--state-dir", str(tmp_path / "none"),
                               "nosuch/pod", "--", "true"), "osdn cluster exec: ")
    assert "no emulated cluster is up" in line and str(tmp_path / "none") in line


def test_exec_in_an_unknown_target(tmp_path: Path) -> None:
    state = fake_cluster(tmp_path / "state")
    line = one_line_error(osdn("cluster", "exec", "--state-dir", str(state), "nosuch/pod",
                               "--", "true"), "osdn cluster exec: ")
    assert "'nosuch/pod' is not a pod" in line and WEB in line and "node2.ocp.cn" in line


def test_trace_of_an_unknown_pod_or_destination(tmp_path: Path) -> None:
    state = fake_cluster(tmp_path / "state")
    line = one_line_error(osdn("cluster", "trace", "--state-dir", str(state), "nosuch/pod",
                               "10.130.0.6"), "osdn cluster trace: ")
    assert "no pod 'nosuch/pod'" in line and WEB in line
    for dest, message in (("nonsense", "is not a pod"),
                          ("default/nosuch:80", "no Service default/nosuch"),
                          ("default/tomcat-service:http", "must be a number")):
        line = one_line_error(osdn("cluster", "trace", "--state-dir", str(state), WEB, dest),
                              "osdn cluster trace: ")
        assert message in line, (dest, line)


def test_missing_prerequisites_are_all_named_with_their_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ovscommands, "_SBIN_DIRS", ())  # PATH only
    path = fake_path(tmp_path / "bin", "ip", "nsenter", "ovs-vsctl", "iptables")
    problems = missing_prerequisites(CLUSTER_TOOLS, path=path, is_root=lambda: False)
    assert problems == [
        "not running as root: the emulated cluster creates network namespaces, links and "
        "iptables rules; run it as root (sudo)",
        f"ethtool: not found; install it with `apt-get install ethtool`, {HINT}",
        f"sysctl: not found; install it with `apt-get install procps`, {HINT}",
        "iptables-save, iptables-restore: not found; install them with "
        f"`apt-get install iptables`, {HINT}",
        "ovsdb-tool, ovsdb-server, ovs-vswitchd, ovs-ofctl, ovs-appctl: not found; install "
        f"them with `apt-get install openvswitch-switch`, {HINT}",
    ]  # osken-manager is found beside this Python
    demo = missing_prerequisites(DEMO_TOOLS, path=path, is_root=lambda: True)
    assert demo[:4] == problems[1:]
    assert demo[4:] == [f"{name}: not found; install it with `apt-get install {package}`, {HINT}"
                        for name, package in (("ping", "iputils-ping"), ("nc", "netcat-openbsd"),
                                              ("sh", "dash"), ("traceroute", "traceroute"),
                                              ("tcpdump", "tcpdump"))]
    everything = fake_path(tmp_path / "all", *(t.name for t in DEMO_TOOLS))
    assert missing_prerequisites(DEMO_TOOLS, path=everything, is_root=lambda: True) == []


@pytest.mark.parametrize("command", [
    ["cluster", "up", str(SEED), "--prefix", "osdnpre"], [
        "demo", str(SEED), "--prefix", "osdnpre"]], ids=["cluster-up", "demo"])
def test_commands_check_prerequisites_before_anything(tmp_path: Path,
                                                      command: list[str]) -> None:
    """Without ethtool (and the rest) on PATH, nothing is created and all is named at once
    (the sbin directories may still hold OVS: those tools are not asserted on)."""
    state = tmp_path / "state"
    proc = osdn(*command, "--state-dir", str(state), path=fake_path(tmp_path / "bin", "ip"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    name = "osdn cluster up" if command[0] == "cluster" else "osdn demo"
    assert proc.stderr.startswith(f"{name}: missing prerequisites:\n")
    for line in (f"  ethtool: not found; install it with `apt-get install ethtool`, {HINT}",
                 f"  nsenter: not found; install it with `apt-get install util-linux`, {HINT}"):
        assert line in proc.stderr.splitlines()
    assert ("tcpdump: not found" in proc.stderr) == (command[0] == "demo")
    assert proc.stdout == "" and not state.exists()
