"""The Open vSwitch tools (ovs-vsctl, ovs-ofctl, ovs-appctl) against one instance's directory.

An instance lives in one directory (database, sockets, pidfiles, logs): `PrivateOvs` starts
one, scripts/ovs-start and `osdn cluster up` start others.  `OvsCommands(directory)` talks to
any of them without owning it.  Every child command gets explicit sockets *and*
OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR, because the OVS tools silently fall back to
/var/run/openvswitch (a system OVS) when a path is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from controller.ovs.flowdump import normalize_flow_dump
from controller.ovs.trace import TraceResult, parse_dpif_show, parse_trace
from topology.errors import OsdnError

OVS_TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl",
             "ovs-appctl")
OVS_PACKAGE = "openvswitch-switch"
_SBIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class OvsError(OsdnError):
    """Something about an OVS instance itself went wrong."""


class OvsNotInstalledError(OvsError):
    """Raised (never skipped) when the OVS binaries are missing: tests must fail loudly."""


class OvsCommandError(OvsError):
    """An OVS tool exited non-zero; carries what is needed to understand why."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, stdout: str = ""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(
            f"command failed (exit {returncode}): {' '.join(self.argv)}\n"
            f"stderr: {stderr.strip()}" + (f"\nstdout: {stdout.strip()}" if stdout.strip() else "")
        )


def find_ovs_binary(name: str, path: str | None = None) -> str:
    """Locate an OVS tool on `path` (default: PATH), also in sbin dirs that a non-login PATH
    may lack."""
    found = shutil.which(name, path=path)
    if found:
        return found
    for d in _SBIN_DIRS:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise OvsNotInstalledError(
        f"Open vSwitch tool {name!r} not found; install it with "
        f"`apt-get install {OVS_PACKAGE}` (or run scripts/setup-env, which does)"
    )


class OvsCommands:
    """The OVS tools bound to the instance in `directory` (which need not be running yet)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 timeout: float = 30.0) -> None:
        self.dir: Path | None = Path(directory).resolve() if directory is not None else None
        self.timeout = timeout
        self._bins: dict[str, str] = {}

    # -- paths -------------------------------------------------------------------------------
    def _p(self, name: str) -> str:
        if self.dir is None:
            raise OvsError(f"{type(self).__name__} has no directory yet (not started)")
        return str(self.dir / name)

    @property
    def db_sock(self) -> str:
        return self._p("db.sock")

    @property
    def vswitchd_ctl(self) -> str:
        return self._p("ovs-vswitchd.ctl")

    @property
    def ovsdb_ctl(self) -> str:
        return self._p("ovsdb-server.ctl")

    def mgmt_target(self, bridge: str) -> str:
        """ovs-ofctl target for a bridge: its management socket in our run directory."""
        return f"unix:{self._p(bridge + '.mgmt')}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for every child: all OVS_* dirs point into our directory."""
        d = self._p("")
        env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR", "OVS_PKGDATADIR"):
            env.pop(var, None)
        env.update(OVS_RUNDIR=d, OVS_DBDIR=d, OVS_LOGDIR=d, OVS_SYSCONFDIR=d)
        return env

    def tool(self, name: str) -> str:
        """The path of an OVS tool (looked up once)."""
        if name not in self._bins:
            self._bins[name] = find_ovs_binary(name)
        return self._bins[name]

    # -- running the tools -------------------------------------------------------------------
    def _run(self, argv: list[str], input: str | None = None,
             timeout: float | None = None) -> str:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True,
                              env=self.env, timeout=timeout or self.timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if proc.returncode != 0:
            raise OvsCommandError(argv, proc.returncode, proc.stderr, proc.stdout)
        return proc.stdout

    def vsctl(self, *args: str) -> str:
        """ovs-vsctl against our database only."""
        return self._run([self.tool("ovs-vsctl"), f"--db=unix:{self.db_sock}",
                          f"--timeout={int(self.timeout)}", *args])

    def ofctl(self, bridge: str, *args: str, input: str | None = None) -> str:
        """ovs-ofctl -O OpenFlow13 on `bridge`: leading '-' options, then the command, then
        the bridge (as its management socket), then the remaining args."""
        args_l = list(args)
        opts: list[str] = []
        while args_l and args_l[0].startswith("-"):
            opts.append(args_l.pop(0))
        if not args_l:
            raise ValueError("ofctl needs a command, e.g. ofctl('br0', 'dump-flows')")
        command = args_l.pop(0)
        return self._run([self.tool("ovs-ofctl"), "-O", "OpenFlow13", *opts, command,
                          self.mgmt_target(bridge), *args_l], input=input)

    def appctl(self, *args: str, target: str = "ovs-vswitchd",
               timeout: float | None = None) -> str:
        """ovs-appctl to our vswitchd (or target='ovsdb-server'), always by absolute socket."""
        ctl = self.vswitchd_ctl if target == "ovs-vswitchd" else self.ovsdb_ctl
        return self._run([self.tool("ovs-appctl"), "-t", ctl, *args], timeout=timeout)

    # -- bridges and ports -------------------------------------------------------------------
    def interface_names(self) -> set[str]:
        return set(self.vsctl("--bare", "--columns=name", "list", "interface").split())

    def del_bridge(self, bridge: str) -> None:
        self.vsctl("--if-exists", "del-br", bridge)

    def ofports(self, bridge: str) -> dict[str, int]:
        """Interface name -> ofport for the ports of `bridge` (-1 where OVS refused it)."""
        out = self.vsctl("--format=csv", "--data=bare", "--no-headings",
                         "--columns=name,ofport", "list", "interface",
                         *self.vsctl("list-ifaces", bridge).split())
        result: dict[str, int] = {}
        for line in out.splitlines():
            if line.strip():
                name, ofport = line.rsplit(",", 1)
                result[name.strip('"')] = int(ofport or -1)
        return result

    # -- flows -------------------------------------------------------------------------------
    def load_flows(self, bridge: str, flows_text: str) -> None:
        """Add flows atomically, the way openshift-sdn does (ovs-ofctl --bundle add-flows -)."""
        self.ofctl(bridge, "--bundle", "add-flows", "-", input=flows_text)

    def dump_flows(self, bridge: str, table: int | None = None) -> list[str]:
        """Flows as ovs-ofctl text without counters, so two bridges compare as sets."""
        args = ["--no-names", "dump-flows"] + ([f"table={table}"] if table is not None else [])
        return normalize_flow_dump(self.ofctl(bridge, *args))

    def trace(self, bridge: str, flow_spec: str,
              ct_next: str | Iterable[str] | None = None) -> TraceResult:
        """ofproto/trace a flow (ovs-ofctl flow syntax) and parse it.

        ct_next: ct_state(s) to use at successive conntrack recirculations, e.g. "trk,est";
        OVS's default is trk,new.
        """
        args = ["ofproto/trace", bridge, flow_spec]
        if ct_next is not None:
            for state in [ct_next] if isinstance(ct_next, str) else ct_next:
                args += ["--ct-next", state]
        raw = self.appctl(*args)
        return parse_trace(raw, dp_ports=parse_dpif_show(self.appctl("dpif/show")),
                           bridge=bridge)
