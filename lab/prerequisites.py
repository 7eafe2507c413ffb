"""What `osdn cluster up` and `osdn demo` need on this machine, checked before they create
anything, so that a missing tool is named with the package that has it instead of failing
half-way ("nsenter: failed to execute ethtool: No such file or directory").

The lists are the programs the code runs: `lab.cluster.build` (ip, ethtool, sysctl, iptables
in the node namespaces, entered with nsenter), `controller.hostside` (ip, sysctl, iptables,
iptables-save, iptables-restore), `PrivateOvs` (the OVS daemons and tools), the controller
(osken-manager beside the running Python) and, for the demo, `lab.demo` (ping, nc, sh,
traceroute, tcpdump).  Package names are Debian 12's, as scripts/setup-env installs them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.ovs.ovscommands import OVS_PACKAGE, OVS_TOOLS, OvsNotInstalledError, find_ovs_binary
from lab.errors import LabUsageError

SETUP_HINT = "or run scripts/setup-env"


@dataclass(frozen=True)
class Tool:
    name: str
    install: str  # how to get it, e.g. "apt-get install ethtool"


def _apt(package: str, *names: str) -> tuple[Tool, ...]:
    return tuple(Tool(name, f"apt-get install {package}") for name in names)


OVS = _apt(OVS_PACKAGE, *OVS_TOOLS)
CLUSTER_TOOLS: tuple[Tool, ...] = (
    *_apt("iproute2", "ip"), *_apt("util-linux", "nsenter"), *_apt("ethtool", "ethtool"),
    *_apt("procps", "sysctl"), *_apt("iptables", "iptables", "iptables-save", "iptables-restore"),
    *OVS, Tool("osken-manager", "pip install -e ."))
DEMO_TOOLS: tuple[Tool, ...] = (
    *CLUSTER_TOOLS, *_apt("iputils-ping", "ping"), *_apt("netcat-openbsd", "nc"),
    *_apt("dash", "sh"), *_apt("traceroute", "traceroute"), *_apt("tcpdump", "tcpdump"))


class MissingPrerequisites(LabUsageError):
    """Some prerequisites are missing; the message names each with how to get it."""


def find_tool(name: str, path: str | None = None) -> str | None:
    """Where the lab will find `name`: OVS tools as `PrivateOvs` looks them up (PATH and the
    sbin directories), osken-manager beside the running Python, the rest on PATH (as
    subprocess and nsenter do)."""
    if name in OVS_TOOLS:
        try:
            return find_ovs_binary(name, path)
        except OvsNotInstalledError:
            return None
    if name == "osken-manager":
        beside = Path(sys.executable).with_name(name)
        return str(beside) if beside.exists() else None
    return shutil.which(name, path=path)


def missing_prerequisites(tools: Sequence[Tool], *, path: str | None = None,
                          is_root: Callable[[], bool] = lambda: os.geteuid() == 0) -> list[str]:
    """One line per problem: not root, then each package with its missing programs."""
    problems = []
    if not is_root():
        problems.append("not running as root: the emulated cluster creates network "
                        "namespaces, links and iptables rules; run it as root (sudo)")
    missing: dict[str, list[str]] = {}
    for tool in tools:
        if find_tool(tool.name, path) is None:
            missing.setdefault(tool.install, []).append(tool.name)
    for install, names in missing.items():
        problems.append(f"{', '.join(names)}: not found; install "
                        f"{'it' if len(names) == 1 else 'them'} with `{install}`, {SETUP_HINT}")
    return problems


def require(tools: Sequence[Tool]) -> None:
    """Raise MissingPrerequisites naming everything missing, all at once."""
    problems = missing_prerequisites(tools)
    if problems:
        raise MissingPrerequisites("missing prerequisites:\n"
                                   + "\n".join(f"  {p}" for p in problems))
