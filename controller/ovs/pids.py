"""Processes the lab started, handled by pid only: is it alive, is it still ours, stop it.

A process that has exited but was not reaped yet is a zombie: it keeps its pid (so
`os.kill(pid, 0)` still succeeds) until its parent waits for it.  Detached daemons are
reparented to pid 1, and in a container whose pid 1 is not an init that reaps, they stay
zombies for good; so "alive" here means "exists and is not a zombie".
"""

from __future__ import annotations

import os
import signal
import time

_GONE_STATES = ("Z", "X")  # zombie, dead (see proc(5), /proc/PID/stat field 3)


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and has not exited (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # "PID (COMM) STATE ...": COMM may hold spaces and parentheses, STATE follows
            # the last ")"
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in _GONE_STATES


def pid_is_ours(pid: int, marker: str) -> bool:
    """Guard against pid reuse: only a process whose command line holds `marker` (e.g. our
    directory) is ours to signal.  A zombie has an empty command line: never ours."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def stop_pid(pid: int, marker: str, *, grace: float = 0.0, wait: float = 5.0) -> bool:
    """Stop a process we started: give it `grace` seconds to exit by itself (after being
    asked to some other way), then SIGTERM, then SIGKILL, waiting up to `wait` seconds after
    each; a signal is sent only while the process is still ours.  True once it is gone,
    False if it outlived SIGKILL (e.g. stuck in the kernel)."""
    for sig, timeout in ((None, grace), (signal.SIGTERM, wait), (signal.SIGKILL, wait)):
        if sig is not None:
            if not pid_is_ours(pid, marker):
                return True  # ours is gone (a zombie, or the pid now names another process)
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not pid_alive(pid):
            return True
    return False
