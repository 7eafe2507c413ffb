"""`controller.ovs.pids` on real processes: a zombie is gone, only our own pids are signalled."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from controller.ovs.pids import pid_alive, pid_is_ours, stop_pid


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def sleeper(marker: str) -> subprocess.Popen[bytes]:
    """A child that sleeps with `marker` in its command line, returned once it runs (between
    fork and exec, /proc shows the parent's command line)."""
    proc = subprocess.Popen([sys.executable, "-c",
                             "import time; print('up', flush=True); time.sleep(60)", marker],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    return proc


def test_a_zombie_is_gone() -> None:
    """An exited child nobody reaped yet (what a daemon becomes under a pid 1 that does not
    reap) keeps its pid; it is not alive, and no longer ours to signal."""
    proc = subprocess.Popen(["true"])
    try:
        # wait for the exit without reaping it (WNOWAIT): the child stays a zombie
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        assert state_of(proc.pid) == "Z"
        assert not pid_alive(proc.pid)
        assert not pid_is_ours(proc.pid, "true")  # a zombie's command line is empty
        assert stop_pid(proc.pid, "true")
    finally:
        proc.wait()
    assert not pid_alive(proc.pid)  # reaped: no /proc entry at all


def test_a_running_process_is_alive_and_ours_by_marker() -> None:
    marker = f"osdn-test-{uuid.uuid4().hex}"
    proc = sleeper(marker)
    try:
        assert pid_alive(proc.pid)
        assert pid_is_ours(proc.pid, marker) and not pid_is_ours(proc.pid, marker + "x")
        assert stop_pid(proc.pid, marker, wait=10)  # SIGTERM; then a zombie until reaped
        assert proc.wait(10) == -15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stop_pid_never_signals_a_process_that_is_not_ours() -> None:
    marker = f"osdn-test-{uuid.uuid4().hex}"
    proc = sleeper(marker)
    try:
        # the pid names another process now (as after pid reuse): ours is gone
        assert stop_pid(proc.pid, "some-other-marker")
        assert proc.poll() is None and pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
