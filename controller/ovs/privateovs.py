"""A private, throw-away Open vSwitch instance: offline traces, tests, the demo, CI.

Each `PrivateOvs` runs its own ovsdb-server and ovs-vswitchd out of one directory (database,
sockets, pidfiles, logs), so nothing ever talks to, or depends on, a system OVS; the tools
reach it through `OvsCommands`, which it extends with the daemons' lifecycle.

vswitchd runs with `--disable-system --enable-dummy` (OVS 3.1, userspace only, no kernel
module).  Plain `--enable-dummy` (not `=override`) adds the `dummy` datapath and port types
while keeping the real netdev classes: with `override` every class, vxlan included, is
replaced by a dummy one, so a `type=vxlan` port would silently not be a tunnel and netdev
bridges could not have real ports.  (`controller.ovs.nodebridge` builds 3.11's br0 on it.)
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from controller.ovs.netns import in_netns
from controller.ovs.ovscommands import (
    OVS_PACKAGE,
    OVS_TOOLS,
    OvsCommands,
    OvsError,
    OvsNotInstalledError,
)
from controller.ovs.pids import pid_alive, stop_pid

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


class PrivateOvs(OvsCommands):
    """One private ovsdb-server + ovs-vswitchd living entirely in `directory`.

    `dummy=True` (default) registers the dummy datapath/port types so trace-only bridges create
    no kernel interfaces; `dummy=False` gives a plain userspace (netdev) instance.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, dummy: bool = True,
                 keep_dir: bool = False, timeout: float = 30.0, netns: str | None = None,
                 stop_at_exit: bool = True):
        """`netns`: run both daemons inside this network namespace (an emulated node), so
        that the devices vswitchd creates (tun0, internal ports) live there.  The tools still
        reach them from anywhere through the unix sockets in `directory`."""
        super().__init__(None, timeout=timeout)  # the directory exists once started
        self._requested_dir = Path(directory) if directory is not None else None
        self.netns = netns
        self.stop_at_exit = stop_at_exit  # False: the daemons outlive this process (cluster)
        self.dummy = dummy
        self.keep_dir = keep_dir
        self._created_dir = False
        self._preexisting: set[str] = set()
        self._pids: dict[str, int] = {}
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> PrivateOvs:
        """Create the database and start both daemons; returns self."""
        if self._started:
            return self
        for name in OVS_TOOLS:
            self.tool(name)  # fail before creating anything
        if not SCHEMA.exists():
            raise OvsNotInstalledError(
                f"{SCHEMA} missing; install it with `apt-get install {OVS_PACKAGE}`")
        if self._requested_dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="privateovs-"))
            self._created_dir = True
        else:
            self.dir = self._requested_dir.resolve()
            self._created_dir = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
            self._preexisting = set(os.listdir(self.dir))
        self._started = True
        if self.stop_at_exit:
            atexit.register(self.stop)
        try:
            self._run([self.tool("ovsdb-tool"), "create", self._p("conf.db"), str(SCHEMA)])
            self._start_daemon("ovsdb-server", [
                self._p("conf.db"), f"--remote=punix:{self.db_sock}",
                f"--unixctl={self.ovsdb_ctl}"])
            self.vsctl("--no-wait", "init")
            self._start_daemon("ovs-vswitchd", self._vswitchd_args())
        except BaseException:
            self.stop()
            raise
        return self

    def _vswitchd_args(self) -> list[str]:
        args = [f"unix:{self.db_sock}", "--disable-system", f"--unixctl={self.vswitchd_ctl}"]
        if self.dummy:
            args.append("--enable-dummy")
        return args

    def _start_daemon(self, name: str, args: list[str]) -> None:
        # --detach returns only once the daemon is ready (vswitchd: after its first db read).
        pidfile = self._p(f"{name}.pid")
        prefix = in_netns(self.netns) if self.netns else []
        self._run([*prefix, self.tool(name), *args, f"--pidfile={pidfile}",
                   f"--log-file={self._p(name + '.log')}", "--detach", "--no-chdir",
                   "-vconsole:off"])
        self._pids[name] = int(Path(pidfile).read_text().strip())

    def stop(self) -> None:
        """Stop our two daemons (by their pids only), wait for them, remove what we created."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pid = self._pids.pop(name, None)
            if pid is None:
                continue
            if pid_alive(pid):
                try:
                    self.appctl("exit", *(["--cleanup"] if name == "ovs-vswitchd" else []),
                                target=name, timeout=10)
                except (OvsError, subprocess.TimeoutExpired):
                    pass
            self._wait_gone(pid)
        self._remove_what_we_created()

    def _wait_gone(self, pid: int) -> None:
        """Until `pid` (one of our daemons, asked to exit) is gone: TERM/KILL after 5 s."""
        if not stop_pid(pid, str(self.dir), grace=5.0):
            raise OvsError(f"process {pid} did not exit")

    def _remove_what_we_created(self) -> None:
        if self.dir is None or self.keep_dir:
            return
        if self._created_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            return
        for entry in set(os.listdir(self.dir)) - self._preexisting:
            path = self.dir / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    @property
    def pids(self) -> dict[str, int]:
        return dict(self._pids)

    def __enter__(self) -> PrivateOvs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
