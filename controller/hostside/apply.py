"""Applying a `HostPlan` to a node's kernel: sysctls, ip commands, iptables-restore and the
jumps from built-in chains, through injected runners (`subprocess_runners` runs them here,
optionally inside a network namespace)."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import NamedTuple

from controller.hostside.plan import HostPlan, Jump


def apply_host(
    plan: HostPlan,
    run: Callable[[list[str]], object],
    *,
    iptables_restore: Callable[[str], object],
    iptables_save: Callable[[], str] | None = None,
) -> None:
    """Apply `plan`.  `run` runs one argv and raises on a non-zero exit; `iptables_restore`
    feeds its text to ``iptables-restore --noflush``.  With `iptables_save` (returning
    ``iptables-save`` output) KUBE-SVC-/KUBE-SEP- chains the plan no longer has are deleted,
    as kube-proxy does.  Running it twice leaves the same state."""
    for key, value in plan.sysctls.items():
        run(["sysctl", "-w", f"{key}={value}"])
    for argv in plan.ip_commands:
        run(argv)
    iptables_restore(plan.iptables_restore)
    if iptables_save is not None:
        stale = _stale_kube_chains(iptables_save(), set(plan.chains.get("nat", ())))
        if stale:
            iptables_restore("*nat\n" + "".join(f":{c} - [0:0]\n" for c in stale)
                             + "".join(f"-X {c}\n" for c in stale) + "COMMIT\n")
    for table, chain in plan.ensure_chains:
        if not _succeeds(run, ["iptables", "-t", table, "-S", chain]):
            run(["iptables", "-t", table, "-N", chain])
    by_chain: dict[tuple[str, str], list[Jump]] = defaultdict(list)
    for jump in plan.jumps:
        by_chain[(jump.table, jump.chain)].append(jump)
    for jumps in by_chain.values():
        for jump in reversed(jumps):  # each inserted first: they end up in plan order
            if not _succeeds(run, jump.argv("-C")):
                run(jump.argv("-I", "1"))


def _succeeds(run: Callable[[list[str]], object], argv: list[str]) -> bool:
    try:
        run(argv)
    except Exception:  # a probe: whatever the runner raises for a non-zero exit
        return False
    return True


def _stale_kube_chains(saved: str, wanted: set[str]) -> list[str]:
    table, stale = "", []
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "nat" and line.startswith((":KUBE-SVC-", ":KUBE-SEP-")):
            name = line[1:].split()[0]
            if name not in wanted:
                stale.append(name)
    return stale


class Runners(NamedTuple):
    run: Callable[[list[str]], object]
    iptables_restore: Callable[[str], object]
    iptables_save: Callable[[], str]


def subprocess_runners(prefix: Sequence[str] = ()) -> Runners:
    """Runners executing the commands here, each preceded by `prefix` (for instance
    ``controller.ovs.netns.in_netns(name)``); `run` raises CalledProcessError on failure::

        r = subprocess_runners()
        apply_host(plan, r.run, iptables_restore=r.iptables_restore,
                   iptables_save=r.iptables_save)
    """

    def run(argv: list[str]) -> object:
        return subprocess.run([*prefix, *argv], check=True, capture_output=True, text=True)

    def restore(text: str) -> object:
        return subprocess.run([*prefix, "iptables-restore", "--noflush"], input=text,
                              check=True, capture_output=True, text=True)

    def save() -> str:
        return subprocess.run([*prefix, "iptables-save"], check=True, capture_output=True,
                              text=True).stdout

    return Runners(run, restore, save)
