"""Test harness for the os-ken controller: real `osken-manager` processes and private OVS bridges.

* `ControllerProcess` starts `osken-manager --config-file <tmp>/osdn.conf controller.app` the way
  users do (cwd = the repository, settings in an `[osdn]` section), logs to a file in the test's
  tmp dir, and only ever signals its own pid.
* `attach_controller` / `park_controller` point a bridge at a controller. Adding the FIRST
  controller to a bridge flushes its flows (OVS `bridge_configure_remotes`); changing the target
  of an existing one does not. So to pre-load flows that a controller must find, park the bridge
  on a closed port first, load the flows, then attach it to the real port.
* `reference_flows` is the oracle: `osdn render` (the CLI, as a subprocess) loaded with
  `ovs-ofctl --bundle add-flows` into an EMPTY bridge with the same ports in a separate OVS
  instance, dumped and normalized. Equality of bridges = equality of `Counter`s of lines.
* `RestartableOvs` adds what the OVS-restart test needs to `PrivateOvs`: kill ovs-vswitchd (the
  pid this instance started) and start it again on the same database.
"""

from __future__ import annotations

import atexit
import difflib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from controller.ovs.flowdump import normalize_flow_dump
from controller.ovs.nodebridge import RESERVED_OFPORTS, add_node_bridge
from controller.ovs.ovscommands import OvsCommandError, OvsCommands, OvsError
from controller.ovs.pids import pid_alive, pid_is_ours
from controller.ovs.privateovs import PrivateOvs

REPO = Path(__file__).resolve().parents[1]

VENV_BIN = Path(os.environ.get("OSDN_TEST_VENV_BIN", REPO / ".venv" / "bin"))


def _tool(name: str) -> str:
    """A console script of the project's venv: beside the running interpreter, else VENV_BIN."""
    import sys

    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = VENV_BIN / name
    if found.exists():
        return str(found)
    return shutil.which(name) or name


OSKEN_MANAGER = _tool("osken-manager")
OSDN = _tool("osdn")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# waiting


class WaitTimeout(AssertionError):
    """wait_until gave up; the message says what was awaited and what was seen."""


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.2,
               describe: Callable[[], str] | str | None = None) -> Any:
    """Poll `predicate` until it returns something truthy (returned); on timeout raise
    WaitTimeout with `describe()` (e.g. a flow diff plus the controller log tail)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
            last_error = None
        except OvsCommandError as e:  # e.g. vswitchd restarting: keep polling
            last_error = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    text = describe() if callable(describe) else (describe or "")
    if last_error is not None:
        text += f"\nlast error: {last_error}"
    raise WaitTimeout(f"timed out after {timeout:.1f}s\n{text}")


# ---------------------------------------------------------------------------------------------
# the controller process


class ControllerProcess:
    """One `osken-manager controller.app` process with its own config file and log file.

    config: the `[osdn]` settings (topology, node, metrics_port, watch, watch_interval, dns...);
    `dns = off` and `metrics_port = 0` are filled in unless given. `start()` may be called
    again after `stop()`/`kill()` (same port, same config file, a new log file per run).
    """

    def __init__(self, config: Mapping[str, Any], tmp_path: str | os.PathLike[str],
                 env: Mapping[str, str] | None = None, port: int | None = None,
                 listen_host: str | None = "127.0.0.1", name: str = "controller",
                 extra_args: Iterable[str] = ()):
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = {"dns": "off", "metrics_port": 0, **dict(config)}
        self.port = port or free_port()
        self.listen_host = listen_host
        self.name = name
        self.extra_args = list(extra_args)
        self.env_overrides = dict(env or {})
        self.config_path = self.dir / f"{name}-osdn.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path: Path | None = None
        self.log_paths: list[Path] = []
        self._log_file: Any = None

    # -- lifecycle ---------------------------------------------------------------------------
    def write_config(self) -> Path:
        lines = ["[osdn]"]
        for key, value in self.config.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append(f"{key} = {value}")
        self.config_path.write_text("\n".join(lines) + "\n")
        return self.config_path

    @property
    def argv(self) -> list[str]:
        argv = [OSKEN_MANAGER, "--config-file", str(self.config_path),
                "--ofp-tcp-listen-port", str(self.port)]
        if self.listen_host:
            argv += ["--ofp-listen-host", self.listen_host]
        return argv + self.extra_args + ["controller.app"]

    def start(self) -> ControllerProcess:
        if self.running:
            raise RuntimeError(f"{self.name} already running (pid {self.pid})")
        self.write_config()
        self.runs += 1
        self.log_path = self.dir / f"{self.name}-{self.runs}.log"
        self.log_paths.append(self.log_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSDN_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env_overrides)
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT)
        atexit.register(self.stop)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL, wait: float = 10.0) -> int | None:
        """Send `sig` to our own pid only; for SIGKILL/SIGTERM wait for it to exit."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                return proc.wait(wait)
            except subprocess.TimeoutExpired:
                return None
        return None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 5 s; always reaps the process and closes the log."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            rc = self.proc.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        atexit.unregister(self.stop)
        return rc

    def __enter__(self) -> ControllerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- log ---------------------------------------------------------------------------------
    def log_text(self) -> str:
        """This run's log (stdout + stderr)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def all_log_text(self) -> str:
        return "".join(f"===== {p.name}\n" + p.read_bytes().decode("utf-8", "replace")
                       for p in self.log_paths if p.exists())

    def log_tail(self, lines: int = 40) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        state = "running" if self.running else f"exited rc={self.proc and self.proc.returncode}"
        return f"--- {self.name} log tail ({self.log_path}, {state}):\n{tail}"

    def log_lines(self, pattern: str, flags: int = 0) -> list[str]:
        rx = re.compile(pattern, flags)
        return [line for line in self.log_text().splitlines() if rx.search(line)]

    def wait_for_log(self, pattern: str, timeout: float = 20.0, count: int = 1,
                     flags: int = 0) -> list[str]:
        """Wait until at least `count` log lines of this run match `pattern`; returns them.
        Fails at once (with the log tail) if the process exits."""
        def check() -> list[str] | None:
            found = self.log_lines(pattern, flags)
            if len(found) >= count:
                return found
            if not self.running:
                raise WaitTimeout(f"{self.name} exited while waiting for {pattern!r} "
                                  f"(x{count})\n{self.log_tail(80)}")
            return None
        return wait_until(check, timeout, 0.1,
                          lambda: f"waiting for {count} log line(s) matching {pattern!r}, "
                                  f"saw {len(self.log_lines(pattern, flags))}\n"
                                  + self.log_tail(60))

    def wait_listening(self, timeout: float = 20.0) -> None:
        """Until the OpenFlow port accepts connections (the controller is up)."""
        def check() -> bool:
            if not self.running:
                raise WaitTimeout(f"{self.name} exited before listening\n{self.log_tail(80)}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                return s.connect_ex((self.listen_host or "127.0.0.1", self.port)) == 0
        wait_until(check, timeout, 0.1, lambda: f"port {self.port} never listened\n"
                   + self.log_tail(60))


# ---------------------------------------------------------------------------------------------
# bridges and OVS


class RestartableOvs(PrivateOvs):
    """PrivateOvs whose ovs-vswitchd can be killed and started again on the same database
    (flows live only in vswitchd, so they are gone after the restart)."""

    def kill_vswitchd(self, sig: int = signal.SIGKILL) -> None:
        pid = self._pids.pop("ovs-vswitchd")
        if pid_alive(pid) and pid_is_ours(pid, str(self.dir)):
            os.kill(pid, sig)
        self._wait_gone(pid)
        Path(self._p("ovs-vswitchd.pid")).unlink(missing_ok=True)

    def start_vswitchd(self) -> None:
        self._start_daemon("ovs-vswitchd", self._vswitchd_args())

    def restart_vswitchd(self, sig: int = signal.SIGKILL) -> None:
        self.kill_vswitchd(sig)
        self.start_vswitchd()


def attach_controller(ovs: OvsCommands, bridge: str, port: int, host: str = "127.0.0.1",
                      max_backoff_ms: int = 1000) -> None:
    """Point `bridge` at tcp:host:port, out of band, reconnecting at least every second.
    If the bridge had no controller yet, OVS flushes its flows (see module docstring)."""
    ovs.vsctl("set", "bridge", bridge, "other-config:disable-in-band=true")
    ovs.vsctl("set-controller", bridge, f"tcp:{host}:{port}")
    ovs.vsctl("set", "controller", bridge, f"max_backoff={max_backoff_ms}",
              "inactivity_probe=5000", "connection_mode=out-of-band")


def park_controller(ovs: OvsCommands, bridge: str) -> int:
    """Give `bridge` a controller on a closed port (flushing its flows now, not later), so
    flows loaded afterwards survive `attach_controller`. Returns the closed port."""
    port = free_port()
    attach_controller(ovs, bridge, port)
    return port


def detach_controller(ovs: OvsCommands, bridge: str) -> None:
    ovs.vsctl("del-controller", bridge)


def add_pod_port(ovs: OvsCommands, bridge: str, name: str, ofport: int) -> None:
    ovs.vsctl("add-port", bridge, name, "--", "set", "interface", name, "type=dummy",
              f"ofport_request={ofport}")
    got = ovs.ofports(bridge).get(name)
    if got != ofport:
        raise OvsError(f"{bridge}: {name} got ofport {got}, wanted {ofport}")


def del_port(ovs: OvsCommands, bridge: str, name: str) -> None:
    ovs.vsctl("--if-exists", "del-port", bridge, name)


def pod_ports_of(ovs: OvsCommands, bridge: str) -> dict[str, int]:
    """The bridge's ports other than vxlan0/tun0 (by ofport), name -> ofport."""
    return {name: port for name, port in ovs.ofports(bridge).items()
            if port not in RESERVED_OFPORTS and port > 0}


# ---------------------------------------------------------------------------------------------
# flows


def normalized(ovs: OvsCommands, bridge: str) -> list[str]:
    """dump-flows with counters and durations stripped, sorted."""
    return sorted(ovs.dump_flows(bridge))


_DURATION_RE = re.compile(r"\bduration=([0-9.]+)s")


def flow_durations(ovs: OvsCommands, bridge: str) -> dict[str, float]:
    """normalized flow line -> its `duration` in seconds (lines are unique in a bridge)."""
    raw = ovs.ofctl(bridge, "--no-names", "dump-flows")
    result: dict[str, float] = {}
    for line in raw.splitlines():
        norm = normalize_flow_dump(line)
        m = _DURATION_RE.search(line)
        if norm and m:
            result[norm[0]] = float(m.group(1))
    return result


def flow_diff(actual: Iterable[str], expected: Iterable[str], limit: int = 60) -> str:
    """What the bridge has too much (+) and too little (-), as a readable text."""
    a, e = Counter(actual), Counter(expected)
    extra = sorted((a - e).elements())
    missing = sorted((e - a).elements())
    lines = [f"bridge has {sum(a.values())} flows, expected {sum(e.values())}: "
             f"{len(extra)} unexpected (+), {len(missing)} missing (-)"]
    lines += [f"+ {f}" for f in extra[:limit]] + [f"- {f}" for f in missing[:limit]]
    if len(extra) > limit or len(missing) > limit:
        lines.append("... (truncated)")
    return "\n".join(lines)


def render(topology: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], host: str,
           extra: Iterable[str] = ()) -> str:
    """`osdn render PATH... --node host --dns off` through the CLI, as users run it."""
    paths = [str(topology)] if isinstance(topology, (str, os.PathLike)) else [
        str(p) for p in topology]
    argv = [OSDN, "render", *paths, "--node", host, "--dns", "off", *extra]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed (exit {proc.returncode}):\n"
                             f"{proc.stderr}")
    return proc.stdout


def check_errors(topology: str | os.PathLike[str]) -> list[str]:
    """`osdn check` problem lines (stderr, without the "N problem(s)" summary); [] if valid."""
    proc = subprocess.run([OSDN, "check", str(topology)], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    if proc.returncode == 0:
        return []
    return [line for line in proc.stderr.splitlines()
            if line.strip() and not re.search(r"\d+ problem\(s\)", line)]


_ref_counter = iter(range(1, 1 << 30))


def reference_flows(topology: str | os.PathLike[str], host: str, ref_ovs: PrivateOvs,
                    pod_ports: Mapping[str, int] | None = None, *,
                    vxlan_port: int = 4789) -> list[str]:
    """`osdn render` for `host` loaded into an EMPTY bridge of `ref_ovs` (no controller) that has
    vxlan0, tun0 and `pod_ports`; its normalized dump, sorted. The bridge is deleted after."""
    text = render(topology, host)
    bridge = f"ref{next(_ref_counter)}"
    add_node_bridge(ref_ovs, bridge, 0xfeed0000 + int(bridge[3:]), dict(pod_ports or {}),
                    vxlan_port=vxlan_port, port_name_prefix=f"r{bridge[3:]}-")
    try:
        if normalized(ref_ovs, bridge):
            raise AssertionError(f"reference bridge {bridge} is not empty")
        ref_ovs.load_flows(bridge, text)
        return normalized(ref_ovs, bridge)
    finally:
        ref_ovs.del_bridge(bridge)


def flows_equal(ovs: OvsCommands, bridge: str, expected: Iterable[str]) -> bool:
    return Counter(ovs.dump_flows(bridge)) == Counter(expected)


def wait_for_flows(ovs: OvsCommands, bridge: str, expected: Iterable[str],
                   controller: ControllerProcess | None = None, timeout: float = 30.0,
                   what: str = "") -> list[str]:
    """Until the bridge's flows equal `expected` (as a multiset); on timeout the message has
    the flow diff and the controller log tail."""
    expected = sorted(expected)

    def describe() -> str:
        try:
            diff = flow_diff(ovs.dump_flows(bridge), expected)
        except OvsError as e:
            diff = f"(cannot dump {bridge}: {e})"
        return (f"{what or bridge}: flows never equal to the expected set\n{diff}\n"
                + (controller.log_tail(60) if controller else ""))

    wait_until(lambda: flows_equal(ovs, bridge, expected), timeout, 0.2, describe)
    return expected


def assert_durations_kept(before: Mapping[str, float], after: Mapping[str, float],
                          elapsed: float, lines: Iterable[str], slack: float = 0.25) -> None:
    """Each of `lines` was not re-added between two `flow_durations` snapshots `elapsed`
    seconds apart: its duration grew by about `elapsed` (a re-added flow's is smaller)."""
    reset = []
    for line in lines:
        if line in before and line in after and after[line] < before[line] + elapsed - slack:
            reset.append(f"{before[line]:.3f}s -> {after[line]:.3f}s: {line}")
    assert not reset, (f"{len(reset)} flow(s) were re-added (duration reset) although "
                       f"unchanged ({elapsed:.2f}s between snapshots):\n" + "\n".join(reset[:30]))


# ---------------------------------------------------------------------------------------------
# topology files


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace a file in one rename (the tmp name is not *.yaml, so no loader reads it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def edit_yaml(path: str | os.PathLike[str], edit: Callable[[list[Any]], list[Any] | None]) -> None:
    """Load every document of a YAML file, let `edit` change the list (in place or by
    returning a new one), write it back atomically."""
    path = Path(path)
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    new = edit(docs)
    write_atomic(path, yaml.safe_dump_all(new if new is not None else docs, sort_keys=False))


def list_items(doc: dict[str, Any]) -> list[Any]:
    """A `kind: List` document's items (or [doc])."""
    return doc["items"] if doc.get("kind") == "List" else [doc]


def copy_cluster(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy a cluster directory's YAML (not traces.yaml) to `dst`."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for f in Path(src).iterdir():
        if f.suffix in (".yaml", ".yml") and f.name != "traces.yaml":
            shutil.copy(f, dst / f.name)
    return dst


def diff_text(a: str, b: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm=""))


def scrape_metrics(url: str) -> dict[str, float]:
    """A Prometheus exporter's samples as exposed: series text (`name{labels}`) -> value."""
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


def metric_total(samples: Mapping[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(value for series, value in samples.items()
               if (series == name or series.startswith(name + "{"))
               and all(f'{label}="{wanted}"' in series for label, wanted in labels.items()))
