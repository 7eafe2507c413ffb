"""A private, throw-away Open vSwitch instance for tests, the demo and CI.

Each `PrivateOvs` runs its own ovsdb-server and ovs-vswitchd out of one directory (database,
sockets, pidfiles, logs), so nothing ever talks to, or depends on, a system OVS. Every child
command gets explicit sockets *and* OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR, because the
OVS tools silently fall back to /var/run/openvswitch when a path is missing.

Findings this module is built on (OVS 3.1, userspace only, no kernel module):

* vswitchd runs with `--disable-system --enable-dummy`. Plain `--enable-dummy` (not
  `=override`) adds the `dummy` datapath and port types while keeping the real netdev classes:
  with `override` every class, vxlan included, is replaced by a dummy one, so a `type=vxlan`
  port would silently not be a tunnel and netdev bridges could not have real ports.
* Interface names are unique per instance (the schema indexes Interface.name), so several node
  bridges cannot all hold `vxlan0`/`tun0`/`vethX`; see `add_node_bridge` for the naming rule.
* A real `type=vxlan` port with `remote_ip=flow,key=flow` works on a dummy bridge. Two such
  ports in one instance collide ("attempting to add tunnel port with same config") unless
  their `local_ip` differs, so `add_node_bridge` sets `local_ip=<host_ip>`.
* With native (userspace) tunnelling, `output:1` to the vxlan port needs a route and a
  neighbour entry and then re-enters the routing bridge's own pipeline: traces end in
  "native tunnel routing failed / drop". Turning the dummy backer's `tnl_push_pop` feature off
  makes OVS use "kernel-style" tunnel output instead, and the trace then says exactly what a
  test wants: `set(tunnel(tun_id=0x0,src=...,dst=192.168.108.111,...)),4789`.
* Datapath actions name datapath port numbers (4789 for every vxlan port, 101.. for dummy
  ports), not ofports; `trace` maps them back through `dpif/show`.
* A trace input with `tun_src=` but no `tun_dst=` still matches `tun_src` flows, although
  OVS's "Flow:" line then omits the tunnel fields.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence
from lab.netns import in_netns
from topology.errors import OsdnError

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
_BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
_SBIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
VXLAN_OFPORT = 1
TUN0_OFPORT = 2
LOCAL_OFPORT = 65534


class OvsError(OsdnError):
    """Something about the private OVS instance itself went wrong."""


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


def find_ovs_binary(name: str) -> str:
    """Locate an OVS tool, also in sbin dirs that a non-login PATH may lack."""
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN_DIRS:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise OvsNotInstalledError(
        f"Open vSwitch tool {name!r} not found; install it with "
        "`apt-get install openvswitch-switch` (or run scripts/test, which does)"
    )


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (detached daemons are reaped lazily by init)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def pid_is_ours(pid: int, marker: str) -> bool:
    """Guard against pid reuse: only signal a process whose command line names our directory."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


@dataclass
class NodeBridge:
    """What `add_node_bridge` built: OpenFlow port numbers and the real interface names."""

    bridge: str
    datapath_id: int
    ofports: dict[str, int]  # logical name ("vxlan0", "tun0", pod port) -> ofport
    port_names: dict[str, str]  # logical name -> interface name in this OVS instance
    host_ip: str | None = None


class PrivateOvs:
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
        self._requested_dir = Path(directory) if directory is not None else None
        self.netns = netns
        self.stop_at_exit = stop_at_exit  # False: the daemons outlive this process (cluster)
        self.dummy = dummy
        self.keep_dir = keep_dir
        self.timeout = timeout
        self.dir: Path | None = None
        self._created_dir = False
        self._preexisting: set[str] = set()
        self._pids: dict[str, int] = {}
        self._bins: dict[str, str] = {}
        self._started = False

    @classmethod
    def attach(cls, directory: str | os.PathLike[str]) -> "PrivateOvs":
        """Talk to an instance started elsewhere (e.g. by `osdn cluster up`) without owning
        it: `stop()` on the result does nothing."""
        ovs = cls(directory, dummy=False, keep_dir=True)
        ovs.dir = Path(directory).resolve()
        ovs._bins = {b: find_ovs_binary(b) for b in _BINARIES}
        return ovs

    # -- paths -------------------------------------------------------------------------------
    def _p(self, name: str) -> str:
        if self.dir is None:
            raise OvsError("PrivateOvs is not started")
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

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "PrivateOvs":
        """Create the database and start both daemons; returns self."""
        if self._started:
            return self
        self._bins = {b: find_ovs_binary(b) for b in _BINARIES}
        if not SCHEMA.exists():
            raise OvsNotInstalledError(
                f"{SCHEMA} missing; install it with `apt-get install openvswitch-switch`")
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
            self._run([self._bins["ovsdb-tool"], "create", self._p("conf.db"), str(SCHEMA)])
            self._start_daemon("ovsdb-server", [
                self._p("conf.db"), f"--remote=punix:{self.db_sock}",
                f"--unixctl={self.ovsdb_ctl}"])
            self.vsctl("--no-wait", "init")
            args = [f"unix:{self.db_sock}", "--disable-system", f"--unixctl={self.vswitchd_ctl}"]
            if self.dummy:
                args.append("--enable-dummy")
            self._start_daemon("ovs-vswitchd", args)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_daemon(self, name: str, args: list[str]) -> None:
        # --detach returns only once the daemon is ready (vswitchd: after its first db read).
        pidfile = self._p(f"{name}.pid")
        prefix = in_netns(self.netns) if self.netns else []
        self._run([*prefix, self._bins[name], *args, f"--pidfile={pidfile}",
                   f"--log-file={self._p(name + '.log')}", "--detach", "--no-chdir",
                   "-vconsole:off"])
        self._pids[name] = int(Path(pidfile).read_text().strip())

    def stop(self) -> None:
        """Stop our two daemons (by their pids only), wait for them, remove what we created."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        marker = str(self.dir)
        for name, ctl in (("ovs-vswitchd", self.vswitchd_ctl), ("ovsdb-server", self.ovsdb_ctl)):
            pid = self._pids.pop(name, None)
            if pid is None:
                continue
            if pid_alive(pid):
                try:
                    self._run([self._bins["ovs-appctl"], "-t", ctl, "exit"]
                              + (["--cleanup"] if name == "ovs-vswitchd" else []), timeout=10)
                except (OvsError, subprocess.TimeoutExpired):
                    pass
            self._wait_gone(pid, marker)
        if self.dir is not None and not self.keep_dir:
            if self._created_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                for entry in set(os.listdir(self.dir)) - self._preexisting:
                    path = self.dir / entry
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)

    @staticmethod
    def _wait_gone(pid: int, marker: str) -> None:
        for sig, wait in ((None, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if sig is not None and pid_alive(pid) and pid_is_ours(pid, marker):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not pid_alive(pid):
                return
        raise OvsError(f"process {pid} did not exit")

    @property
    def pids(self) -> dict[str, int]:
        return dict(self._pids)

    def __enter__(self) -> "PrivateOvs":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- commands ----------------------------------------------------------------------------
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
        return self._run([self._bins["ovs-vsctl"], f"--db=unix:{self.db_sock}",
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
        return self._run([self._bins["ovs-ofctl"], "-O", "OpenFlow13", *opts, command,
                          self.mgmt_target(bridge), *args_l], input=input)

    def appctl(self, *args: str, target: str = "ovs-vswitchd") -> str:
        """ovs-appctl to our vswitchd (or target='ovsdb-server'), always by absolute socket."""
        ctl = self.vswitchd_ctl if target == "ovs-vswitchd" else self.ovsdb_ctl
        return self._run([self._bins["ovs-appctl"], "-t", ctl, *args])

    # -- bridges -----------------------------------------------------------------------------
    def interface_names(self) -> set[str]:
        return set(self.vsctl("--bare", "--columns=name", "list", "interface").split())

    def add_node_bridge(self, bridge: str, datapath_id: int, pod_ports: dict[str, int],
                        vxlan_port: int = 4789, host_ip: str | None = None,
                        port_name_prefix: str | None = None) -> NodeBridge:
        """Create one emulated node's br0 on the dummy datapath (trace-only, no kernel devices).

        Ports: vxlan0 = ofport 1 (real type=vxlan, remote_ip=flow, key=flow, dst_port,
        local_ip=host_ip), tun0 = ofport 2, each pod port at its ofport (type=dummy).
        Interface names are unique per OVS instance, so: port_name_prefix=None keeps the real
        names if none is taken yet in this instance, otherwise names every port
        "<bridge>-<name>"; pass a string to force a prefix ("" = real names or fail).
        Traces and flows only use ofport numbers, so names matter only for humans.
        Two bridges' vxlan ports may coexist only if their host_ip (local_ip) differ.
        """
        if not self.dummy:
            raise OvsError("add_node_bridge needs a dummy-enabled instance (dummy=True)")
        logical = ["vxlan0", "tun0", *pod_ports]
        for name, ofport in pod_ports.items():
            if name in ("vxlan0", "tun0"):
                raise ValueError(f"pod port name {name!r} is reserved")
            if ofport in (VXLAN_OFPORT, TUN0_OFPORT, LOCAL_OFPORT) or not 0 < ofport < 0xff00:
                raise ValueError(f"pod port {name!r}: ofport {ofport} is reserved or invalid")
        if len(set(pod_ports.values())) != len(pod_ports):
            raise ValueError(f"duplicate pod ofports in {pod_ports}")
        if port_name_prefix is None:
            port_name_prefix = f"{bridge}-" if self.interface_names() & set(logical) else ""
        names = {n: port_name_prefix + n for n in logical}
        ofports = {"vxlan0": VXLAN_OFPORT, "tun0": TUN0_OFPORT, **pod_ports}

        vx = names["vxlan0"]
        args = ["--", "add-br", bridge,
                "--", "set", "bridge", bridge, "datapath_type=dummy", "fail_mode=secure",
                "protocols=OpenFlow13", f"other-config:datapath-id={datapath_id:016x}",
                "--", "add-port", bridge, vx,
                "--", "set", "interface", vx, "type=vxlan", "options:remote_ip=flow",
                "options:key=flow", f"options:dst_port={vxlan_port}",
                f"ofport_request={VXLAN_OFPORT}"]
        if host_ip:
            args.append(f"options:local_ip={host_ip}")
        for n in logical[1:]:
            args += ["--", "add-port", bridge, names[n],
                     "--", "set", "interface", names[n], "type=dummy",
                     f"ofport_request={ofports[n]}"]
        if bridge in self.vsctl("list-br").split():
            raise OvsError(f"bridge {bridge} already exists in this instance")
        try:
            hint = ("hint: two vxlan ports in one OVS instance need distinct host_ip "
                    "(options:local_ip)")
            try:
                self.vsctl(*args)
            except OvsCommandError as e:
                if "File exists" in e.stderr:
                    e.args = (f"{e.args[0]}\n{hint}",)
                raise
            # Kernel-style tunnel output: traces then show set(tunnel(...)) instead of trying
            # to route the encapsulated packet (see module docstring). Per backer, idempotent.
            self.appctl("dpif/set-dp-features", bridge, "tnl_push_pop", "false")
            got = self.ofports(bridge)
            for n in logical:
                if got.get(names[n]) != ofports[n]:
                    error = self.vsctl("get", "interface", names[n], "error").strip()
                    raise OvsError(f"{bridge}: {names[n]} got ofport {got.get(names[n])}, "
                                   f"wanted {ofports[n]}: {error}"
                                   + (f"\n{hint}" if n == "vxlan0" else ""))
        except BaseException:
            self.del_bridge(bridge)  # leave no half-built bridge behind
            raise
        return NodeBridge(bridge, datapath_id, ofports, names, host_ip)

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

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(Path(self._p("ovs-vswitchd.log")).read_text().splitlines()[-lines:])
        except OSError:
            return ""

    # -- flows -------------------------------------------------------------------------------
    def load_flows(self, bridge: str, flows_text: str) -> None:
        """Add flows atomically, the way openshift-sdn does (ovs-ofctl --bundle add-flows -)."""
        self.ofctl(bridge, "--bundle", "add-flows", "-", input=flows_text)

    def dump_flows(self, bridge: str, table: int | None = None) -> list[str]:
        """Flows as ovs-ofctl text without counters, so two bridges compare as sets."""
        args = ["--no-names", "dump-flows"] + ([f"table={table}"] if table is not None else [])
        return normalize_flow_dump(self.ofctl(bridge, *args))

    def trace(self, bridge: str, flow_spec: str,
              ct_next: str | Iterable[str] | None = None) -> "TraceResult":
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


_STAT_RE = re.compile(
    r"\b(?:duration=[0-9.]+s|n_packets=\d+|n_bytes=\d+|idle_age=\d+|hard_age=\d+),\s*")


def normalize_flow_dump(text: str) -> list[str]:
    """Strip the reply header and per-flow counters/ages from ovs-ofctl dump-flows output."""
    flows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("OFPST_FLOW", "NXST_FLOW")):
            continue
        flows.append(_STAT_RE.sub("", line))
    return flows


# -- ofproto/trace parsing ---------------------------------------------------------------------

@dataclass
class TraceStep:
    """One OpenFlow table lookup in a trace: the rule that matched and what it did."""

    table: int
    rule: str  # as OVS prints it: "ip,in_port=2, priority 100, cookie 0x2", or "No match."
    match: str  # "ip,in_port=2" ("" for a catch-all rule)
    priority: int | None  # None when no rule matched
    cookie: int
    actions: list[str] = field(default_factory=list)  # e.g. "load:0x3->NXM_NX_REG2[]"
    notes: list[str] = field(default_factory=list)  # "-> output port is 3", ">> ..." lines
    bridge: str = ""
    depth: int = 0  # resubmit nesting level, from indentation
    pass_index: int = 0  # 0 = first pass, 1.. = after each conntrack recirculation

    @property
    def matched(self) -> bool:
        return self.priority is not None


@dataclass
class TraceOutput:
    """A packet leaving the switch, from the datapath actions, in OpenFlow terms."""

    port: int | None  # OpenFlow port on the bridge; None if the dp port is unknown
    dp_port: int
    bridge: str | None
    tunnel: dict[str, str]  # set(tunnel(...)) in force: tun_id, src, dst, tp_dst, ...
    sets: dict[str, str]  # other set()s in force, e.g. {"eth.dst": ..., "skb_mark": ...}


@dataclass
class TracePass:
    """One translation: the first pass, or one resumed after a ct() recirculation."""

    header: str  # "" or e.g. "recirc(0x1) - resume conntrack with ct_state=new|trk"
    flow: dict[str, str]
    final_flow: dict[str, str]
    megaflow: str
    datapath_actions: str
    steps: list[TraceStep]
    outputs: list[TraceOutput]


@dataclass
class TraceResult:
    """Parsed `ofproto/trace`; `raw` is kept for failure messages."""

    raw: str
    passes: list[TracePass]
    bridge: str | None = None  # the traced bridge; others appear with userspace tunnels

    @property
    def steps(self) -> list[TraceStep]:
        """Lookups in the traced bridge (a native tunnel continues into the underlay bridge,
        whose lookups are in `all_steps`)."""
        return [s for s in self.all_steps if self.bridge is None or s.bridge in ("", self.bridge)]

    @property
    def all_steps(self) -> list[TraceStep]:
        return [s for p in self.passes for s in p.steps]

    @property
    def tables(self) -> list[int]:
        """Tables looked up, in order, over all passes (goto, resubmit and no-match included)."""
        return [s.table for s in self.steps]

    @property
    def datapath_actions(self) -> str:
        """The last pass's "Datapath actions:" (the final one when ct() recirculates)."""
        return self.passes[-1].datapath_actions if self.passes else ""

    @property
    def final_flow(self) -> dict[str, str]:
        return self.passes[-1].final_flow if self.passes else {}

    @property
    def outputs(self) -> list[TraceOutput]:
        return [o for p in self.passes for o in p.outputs]

    @property
    def dropped(self) -> bool:
        """True when no pass sends the packet out of any port."""
        return not self.outputs

    def output_ports(self) -> list[int | None]:
        """OpenFlow ports of the traced bridge the packet really leaves on (datapath actions
        mapped back; a native tunnel counts as its tunnel port)."""
        return [o.port for o in self.outputs
                if self.bridge is None or o.bridge in (None, self.bridge)]

    def of_output_ports(self) -> list[int]:
        """Ports named by OpenFlow output actions (output:N, output:REG resolved by OVS)."""
        ports: list[int] = []
        for s in self.steps:
            for a in s.actions:
                m = re.fullmatch(r"output:(\d+)", a)
                if m:
                    ports.append(int(m.group(1)))
            for n in s.notes:
                m = re.fullmatch(r"-> output port is (\d+)", n)
                if m:
                    ports.append(int(m.group(1)))
        return ports

    @property
    def tunnel(self) -> dict[str, str]:
        """The set(tunnel(...)) fields of the first tunnelled output ({} if none)."""
        return next((o.tunnel for o in self.outputs if o.tunnel), {})

    def step(self, table: int) -> TraceStep:
        """The first lookup in `table` (KeyError if the trace never reached it)."""
        for s in self.steps:
            if s.table == table:
                return s
        raise KeyError(f"table {table} not visited; tables {self.tables}\n{self.raw}")

    def actions(self, table: int) -> list[str]:
        return [a for s in self.steps if s.table == table for a in s.actions]

    def field(self, name: str) -> str | None:
        """A field of the final flow, e.g. field("reg0"), field("pkt_mark"), field("dl_dst")."""
        return self.final_flow.get(name)

    def __str__(self) -> str:
        return self.raw


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses/brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur or parts:
        parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_flow_fields(text: str) -> dict[str, str]:
    """"ip,in_port=2,nw_src=10.0.0.1" -> {"ip": "", "in_port": "2", "nw_src": "10.0.0.1"}."""
    fields: dict[str, str] = {}
    for part in split_top(text):
        key, _, value = part.partition("=")
        fields[key] = value
    return fields


def parse_dpif_show(text: str) -> dict[str, dict[int, int]]:
    """`dpif/show` -> {bridge: {dp_port: ofport}} (dp ports differ from ofports on dummy)."""
    result: dict[str, dict[int, int]] = {}
    bridge = None
    for line in text.splitlines():
        m = re.fullmatch(r"  (\S+):", line)
        if m:
            bridge = m.group(1)
            result[bridge] = {}
            continue
        m = re.match(r"\s{4,}\S+ (\d+|LOCAL)/(\d+):", line)
        if m and bridge is not None:
            ofport = LOCAL_OFPORT if m.group(1) == "LOCAL" else int(m.group(1))
            result[bridge][int(m.group(2))] = ofport
    return result


_TABLE_RE = re.compile(r"^(\s*)(\d+)\. (.*)$")
_RULE_RE = re.compile(r"^(?P<match>.*?)(?:, )?priority (?P<prio>\d+)"
                      r"(?:, cookie (?P<cookie>0x[0-9a-fA-F]+))?$")


def _parse_dp_actions(actions: str, dp_ports: dict[str, dict[int, int]],
                      bridge: str | None) -> list[TraceOutput]:
    """Walk datapath actions in order, tracking set()s, and record each port output."""
    outputs: list[TraceOutput] = []

    def lookup(dp: int) -> tuple[int | None, str | None]:
        if bridge and dp in dp_ports.get(bridge, {}):
            return dp_ports[bridge][dp], bridge
        for br, ports in dp_ports.items():
            if dp in ports:
                return ports[dp], br
        return None, None

    def walk(text: str, tunnel: dict[str, str], sets: dict[str, str]) -> None:
        tunnel, sets = dict(tunnel), dict(sets)
        for act in split_top(text):
            if act.isdigit():
                port, br = lookup(int(act))
                outputs.append(TraceOutput(port, int(act), br, dict(tunnel), dict(sets)))
            elif act.startswith("set(tunnel(") or act.startswith("set(tunnel6("):
                inner = act[act.index("(", 4) + 1:-2]
                tunnel = {}
                for part in split_top(inner):
                    k, _, v = part.partition("=")
                    m = re.fullmatch(r"(\w+)\((.*)\)", k)  # flags(df|key)
                    tunnel[m.group(1) if m else k] = m.group(2) if m else v
            elif act.startswith(("set(", "set_masked(")):
                inner = act[act.index("(") + 1:-1]  # e.g. eth(dst=..) / skb_mark(0x1)
                m = re.fullmatch(r"(\w+)\((.*)\)", inner)
                if m:
                    name, body = m.groups()
                    if "=" in body:
                        for part in split_top(body):
                            k, _, v = part.partition("=")
                            sets[f"{name}.{k}"] = v
                    else:
                        sets[name] = body
            elif act.startswith("tnl_push("):
                # userspace (native) tunnelling: the packet leaves through the tunnel port
                # with this header; the outputs after it carry the encapsulated packet
                port = re.search(r"tnl_port\((\d+)\)", act)
                pushed = {"src": re.search(r"ipv4\(src=([^,]+)", act),
                          "dst": re.search(r"ipv4\(src=[^,]+,dst=([^,]+)", act),
                          "tun_id": re.search(r"vni=(0x[0-9a-f]+)", act),
                          "tp_dst": re.search(r"udp\(src=\d+,dst=(\d+)", act)}
                tunnel = {k: m.group(1) for k, m in pushed.items() if m}
                if port:
                    of_port, br = lookup(int(port.group(1)))
                    outputs.append(TraceOutput(of_port, int(port.group(1)), br, dict(tunnel),
                                               dict(sets)))
            elif act.startswith("clone("):
                walk(act[len("clone("):-1], tunnel, sets)

    if actions and actions != "drop":
        walk(actions, {}, {})
    return outputs


def parse_trace(raw: str, dp_ports: dict[str, dict[int, int]] | None = None,
                bridge: str | None = None) -> TraceResult:
    """Parse OVS 3.1 `ofproto/trace` text into passes of table steps.

    Table lines look like " 0. ip,in_port=2, priority 100, cookie 0x2" (or "20. No match."),
    indented deeper for resubmits; the lines under them are actions, "-> ..." notes, or a
    nested table. A line of '=' starts a new pass (a ct() recirculation being resumed).
    """
    dp_ports = dp_ports or {}
    passes: list[TracePass] = []
    chunks: list[tuple[str, list[str]]] = [("", [])]
    lines = raw.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"=+", line.strip()) and line.strip():
            # "=====" / header / "=====": start a new pass
            header = lines[i + 1].strip() if i + 1 < len(lines) else ""
            chunks.append((header, []))
            i += 3
            continue
        chunks[-1][1].append(line)
        i += 1

    for index, (header, body) in enumerate(chunks):
        flow: dict[str, str] = {}
        final_text = ""
        megaflow = ""
        dp_actions = ""
        steps: list[TraceStep] = []
        stack: list[tuple[TraceStep, int | None, int]] = []  # (step, action indent, line indent)
        cur_bridge = bridge or ""
        for line in body:
            if not line.strip() or re.fullmatch(r"-+", line.strip()):
                continue
            if line.startswith("Flow: "):
                flow = parse_flow_fields(line[len("Flow: "):])
                continue
            if line.startswith("Final flow: "):
                final_text = line[len("Final flow: "):]
                continue
            if line.startswith("Megaflow: "):
                megaflow = line[len("Megaflow: "):]
                continue
            if line.startswith("Datapath actions: "):
                dp_actions = line[len("Datapath actions: "):].strip()
                continue
            stripped = line.strip()
            indent = len(line) - len(line.lstrip(" "))
            m = re.fullmatch(r'bridge\("([^"]+)"\)', stripped)
            if m:
                cur_bridge = m.group(1)
                continue
            m = _TABLE_RE.match(line)
            if m:
                rule = m.group(3).strip()
                rm = _RULE_RE.match(rule)
                # depth: how many open steps have a smaller line indent
                depth = sum(1 for _, _, li in stack if li < len(m.group(1)))
                step = TraceStep(
                    table=int(m.group(2)), rule=rule,
                    match=rm.group("match").rstrip(",") if rm else "",
                    priority=int(rm.group("prio")) if rm else None,
                    cookie=int(rm.group("cookie"), 16) if rm and rm.group("cookie") else 0,
                    bridge=cur_bridge, depth=depth, pass_index=index)
                steps.append(step)
                stack.append((step, None, len(m.group(1))))
                continue
            if not stack:
                continue  # "thaw" / "Resuming from table N" before the first step
            if stack[-1][1] is None:
                s, _, li = stack[-1]
                stack[-1] = (s, indent, li)
            while len(stack) > 1 and (stack[-1][1] or 0) > indent:
                stack.pop()
            owner = stack[-1][0]
            if stripped.startswith(("->", ">>")):
                owner.notes.append(stripped)
            else:
                owner.actions.append(stripped)
        final_flow = dict(flow) if final_text in ("", "unchanged") else parse_flow_fields(
            final_text)
        passes.append(TracePass(header, flow, final_flow, megaflow, dp_actions, steps,
                                _parse_dp_actions(dp_actions, dp_ports, bridge)))
    if not passes[0].datapath_actions and not passes[0].steps:
        raise OvsError(f"unrecognised ofproto/trace output:\n{raw}")
    return TraceResult(raw, passes, bridge)
