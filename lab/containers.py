"""The compose stack (docker-compose.yml + docker/ci.yml + docker/ci.env) built, started,
checked and torn down on podman, for real: what `scripts/test-containers` runs.

Everything this creates is its own: a compose project named ``osdn-ci-<pid>`` (containers,
volumes and networks carry its label), images tagged ``:test-containers`` (kept, so the next
run reuses their layers), the base image ``debian:12-slim`` only when none is there, and a
temporary directory holding the run's podman configuration and the Docker API socket of a
``podman system service`` it starts and stops.  Nothing else of the machine's podman is
touched, and the machine's /etc/containers/containers.conf is neither read nor changed: podman
gets the run's own through CONTAINERS_CONF (and, nested, a storage.conf through
CONTAINERS_STORAGE_CONF).

Checks (the numbers of issue 12), each failing loudly with what it saw:
  1. br0 in the ovs container holds exactly `osdn render` of its node (loaded into an empty
     bridge of a private OVS, both dumped, counters and ages dropped);
  2. both health checks pass under `podman healthcheck run`;
  3. a restarted controller container leaves br0 unchanged (no flow re-added) and sends no
     flow-mod (its own counters, read from its metrics);
  4. a restarted ovs container gets its flows back, equal, within 5 s;
  5. with --profile metrics, Prometheus (Debian's) scrapes the controller and its HTTP API
     returns the controller's flow count for the node;
  6. `down` leaves no container, volume or network of the project.
docker-compose (over podman's Docker API) runs them all; a second project, with
podman-compose, runs 1, 2 and 6.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from controller.ovs.flowdump import normalize_flow_dump
from controller.ovs.privateovs import PrivateOvs
from lab.harness import assert_durations_kept, flow_diff, reference_flows, scrape_metrics
from topology.load import load_topology

REPO = Path(__file__).resolve().parents[1]
CI_ENV = REPO / "docker" / "ci.env"
COMPOSE_FILES = ("docker-compose.yml", "docker/ci.yml")
BASE_IMAGE = "debian:12-slim"
REGISTRY_BASE_IMAGE = "docker.io/library/debian:12-slim"
IMAGE_TAG = "test-containers"
IMAGES = ("ovs", "controller", "prometheus")
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
METRICS_PORT = 9105  # docker/controller/osdn.conf
PROMETHEUS_PORT = 9090  # docker/prometheus/Dockerfile
FLOWS_BACK_WITHIN = 5.0  # check 4
PROJECT_LABELS = ("com.docker.compose.project", "io.podman.compose.project")


class CheckFailed(AssertionError):
    """A check of the stack did not hold; the message says what was seen."""


def log(message: str) -> None:
    print(f"test-containers: {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 600, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """A command, its output captured; on failure the message has its output."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise CheckFailed(f"{' '.join(argv)} exited {proc.returncode}:\n"
                          f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    if not quiet and proc.returncode != 0:
        log(f"(exit {proc.returncode}) {' '.join(argv)}: {proc.stderr.strip()[-500:]}")
    return proc


def wait_until(condition: Callable[[], bool], timeout: float, describe: Callable[[], str],
               interval: float = 0.2) -> float:
    """Seconds until `condition` held; CheckFailed with `describe()` after `timeout`."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise CheckFailed(f"after {timeout:.0f} s: {describe()}")
        time.sleep(interval)


# ------------------------------------------------------------------ the run's podman


# Container ulimits known to start on this machine type without CAP_SYS_RESOURCE (higher
# ones, even the host's own nproc, fail in runc with "error setting rlimit type 6").
ULIMITS = {"nofile": (resource.RLIMIT_NOFILE, 20000), "nproc": (resource.RLIMIT_NPROC, 32768)}


PODMAN_SUBNET = ipaddress.ip_network("10.88.0.0/16")  # podman's default bridge network
SPARE_SUBNETS = [ipaddress.ip_network(f"10.{n}.0.0/24") for n in range(89, 100)]


def routed_elsewhere() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks this machine routes through devices other than podman's bridges."""
    routes = run(["ip", "-4", "-o", "route", "show"]).stdout.splitlines()
    networks = []
    for route in routes:
        words = route.split()
        device = words[words.index("dev") + 1] if "dev" in words else ""
        if words and words[0] != "default" and not device.startswith("podman"):
            networks.append(ipaddress.ip_network(words[0], strict=False))
    return networks


def free_subnet() -> str | None:
    """A subnet for podman's bridge when its default is taken, else None.  Nested in a
    podman container, that container's own network is podman's default 10.88.0.0/16: a
    bridge of the same subnet inside it cuts the containers off (DNS fails in the builds)."""
    taken = routed_elsewhere()
    if not any(PODMAN_SUBNET.overlaps(net) for net in taken):
        return None
    for subnet in SPARE_SUBNETS:
        if not any(subnet.overlaps(net) for net in taken):
            return str(subnet)
    raise CheckFailed(f"no free subnet for podman's bridge among {SPARE_SUBNETS}")


def containers_conf() -> str:
    """podman's settings for this run: runc (crun refuses a hybrid cgroup layout), a free
    subnet for its bridge when the default one is taken (see free_subnet), and
    ulimits no higher than this process's own (a container may not raise them: no
    CAP_SYS_RESOURCE, as when nested in a container; podman's defaults ask for more)."""
    ulimits = []
    for name, (which, wanted) in ULIMITS.items():
        hard = resource.getrlimit(which)[1]
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        ulimits.append(f"{name}={value}:{value}")
    subnet = free_subnet()
    network = f'[network]\ndefault_subnet = "{subnet}"\n' if subnet else ""
    return ("[containers]\n"
            f"default_ulimits = {json.dumps(ulimits)}\n"
            "[engine]\n"
            'runtime = "runc"\n' + network)


GRAPHROOT = Path("/var/lib/containers/storage")  # podman's default, as root


def filesystem_type(path: Path) -> str:
    """The type of the file system holding `path` (or its nearest existing parent)."""
    while not path.exists():
        path = path.parent
    return run(["stat", "-f", "-c", "%T", str(path)]).stdout.strip()


def storage_conf() -> str | None:
    """Storage settings when podman's own do not work here, else None.  Nested in a
    container whose root is an overlayfs, podman's kernel overlay driver refuses to stack
    ("'overlay' is not supported over overlayfs, a mount_program is required"):
    fuse-overlayfs does it (the same storage, in user space)."""
    if filesystem_type(GRAPHROOT) != "overlayfs":
        return None
    return ("[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{GRAPHROOT}"\n'
            'runroot = "/run/containers/storage"\n'
            "[storage.options.overlay]\n"
            'mount_program = "/usr/bin/fuse-overlayfs"\n')


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


def api_answers(socket_path: Path) -> bool:
    try:
        connection = _UnixHTTPConnection(str(socket_path))
        connection.request("GET", "/_ping")
        return connection.getresponse().status == 200
    except OSError:
        return False


@dataclass
class Podman:
    """The run's podman: its configuration file and its Docker API service."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    service: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        conf = self.workdir / "containers.conf"
        conf.write_text(containers_conf())
        self.socket = self.workdir / "podman.sock"
        # Variables that would bend the compose file away from docker/ci.env are dropped.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("OSDN_", "OVS_", "COMPOSE_", "DOCKER_"))}
        self.env.update(CONTAINERS_CONF=str(conf), DOCKER_HOST=f"unix://{self.socket}",
                        OSDN_TAG=IMAGE_TAG)
        storage = storage_conf()
        if storage is not None:
            log("podman's storage is on an overlayfs (nested): overlay through fuse-overlayfs")
            (self.workdir / "storage.conf").write_text(storage)
            self.env["CONTAINERS_STORAGE_CONF"] = str(self.workdir / "storage.conf")

    def __call__(self, *args: str, check: bool = True, timeout: float = 600,
                 quiet: bool = False) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], env=self.env, check=check, timeout=timeout, quiet=quiet)

    def start_service(self) -> None:
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            env=self.env, stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "service.log", "wb"))
        wait_until(lambda: api_answers(self.socket), 30,
                   lambda: "podman system service does not answer: "
                   + (self.workdir / "service.log").read_text()[-2000:])

    def stop_service(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()


# ------------------------------------------------------------------ images


def provide_base_image(podman: Podman, workdir: Path) -> None:
    """debian:12-slim as the Dockerfiles' FROM: the one there, else the registry's, else
    made here (debootstrap minbase, imported under that name)."""
    if podman("image", "exists", BASE_IMAGE, check=False, quiet=True).returncode == 0:
        log(f"base image {BASE_IMAGE}: present")
        return
    pulled = podman("pull", "-q", REGISTRY_BASE_IMAGE, check=False, timeout=300)
    if pulled.returncode == 0:
        log(f"base image {BASE_IMAGE}: pulled from the registry")
        return
    log(f"base image {BASE_IMAGE}: no registry reachable, making it with debootstrap")
    root = workdir / "rootfs"
    run(["debootstrap", "--variant=minbase", "bookworm", str(root),
         "http://deb.debian.org/debian"], timeout=900)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (root / cache).glob("*"):
            if item.is_file():
                item.unlink()
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(["podman", "import", "-q", "--change", 'CMD ["bash"]', "-",
                               f"localhost/{BASE_IMAGE}"], stdin=tar.stdout,
                              capture_output=True, text=True, env=podman.env)
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise CheckFailed(f"podman import of the debootstrap tree failed: {imported.stderr}")
    shutil.rmtree(root, ignore_errors=True)


def build_images(podman: Podman) -> None:
    """The stack's three images, from the local base only, HEALTHCHECK kept (docker format);
    pip's steps get the host's CA bundle as a build secret (never stored in the image)."""
    secret = ["--secret", f"id=host-ca,src={HOST_CA}"] if HOST_CA.exists() else []
    for name in IMAGES:
        started = time.monotonic()
        tag = f"localhost/osdn/{name}:{IMAGE_TAG}"
        previous = podman("image", "inspect", "-f", "{{.Id}}", tag, check=False,
                          quiet=True).stdout.strip()
        podman("build", "--pull=never", "--format", "docker", *secret,
               "-f", f"docker/{name}/Dockerfile", "-t", f"localhost/osdn/{name}:{IMAGE_TAG}",
               ".", timeout=1200)
        log(f"image osdn/{name}:{IMAGE_TAG} built in {time.monotonic() - started:.0f} s")
        current = podman("image", "inspect", "-f", "{{.Id}}", tag).stdout.strip()
        if previous and previous != current:
            # our own previous build, now untagged: it would pile up run after run
            podman("rmi", previous, check=False, quiet=True)


# ------------------------------------------------------------------ the stack


@dataclass
class Stack:
    """One compose project of the CI stack, driven by `tool` (docker-compose or
    podman-compose)."""

    podman: Podman
    tool: list[str]
    project: str

    def compose(self, *args: str, metrics: bool = False,
                check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        files = [word for name in COMPOSE_FILES for word in ("-f", name)]
        profile = ["--profile", "metrics"] if metrics else []
        return run([*self.tool, "-p", self.project, *files, "--env-file", str(CI_ENV),
                    *profile, *args], env=self.podman.env, check=check, timeout=timeout)

    def down(self, check: bool = True) -> None:
        """`down -v`, the dependants removed first: docker-compose 1.29 removes a project's
        containers all at once, and podman refuses to remove the holder of a network
        namespace that others still use ("has dependent containers")."""
        if self.tool[0] == "docker-compose":
            self.compose("rm", "-f", "-s", "-v", "ovs", "controller", "prometheus",
                         metrics=True, check=check, timeout=180)
        self.compose("down", "-v", metrics=True, check=check, timeout=180)

    def container(self, service: str) -> str:
        """The id of the service's container (docker-compose and podman-compose name them
        differently; both label them)."""
        out = self.podman("ps", "-a", "-q", "--filter", f"label={self._label()}",
                          "--filter", f"label=com.docker.compose.service={service}").stdout
        ids = out.split()
        if len(ids) != 1:
            raise CheckFailed(f"{self.project}: {len(ids)} containers of service {service}")
        return ids[0]

    def _label(self) -> str:
        return f"com.docker.compose.project={self.project}"

    def exec(self, service: str, *argv: str, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        return self.podman("exec", self.container(service), *argv, check=check)

    def node_address(self) -> str:
        """The address of the stack's network namespace (the `netns` container's)."""
        address = self.podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}",
                              self.container("netns")).stdout.strip()
        if not address:
            raise CheckFailed("the netns container has no address on podman's bridge")
        return address

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks that carry this project's label."""
        found: dict[str, list[str]] = {}
        for kind, listing in (("container", ["ps", "-a", "--format", "{{.Names}}"]),
                              ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
                              ("network", ["network", "ls", "--format", "{{.Name}}"])):
            for label in PROJECT_LABELS:
                names = self.podman(*listing, "--filter", f"label={label}={self.project}",
                                    check=False, quiet=True).stdout.split()
                found.setdefault(kind, [])
                found[kind] += [n for n in names if n not in found[kind]]
        return {kind: names for kind, names in found.items() if names}

    def remove_leftovers(self) -> None:
        """Whatever `down` left of this project (never anything else): dependants first,
        the namespace holder last, then volumes and networks."""
        left = self.leftovers()
        containers = sorted(left.get("container", []), key=lambda n: "netns" in n)
        for name in containers:
            self.podman("rm", "-f", "-t", "5", name, check=False)
        for name in left.get("volume", []):
            self.podman("volume", "rm", "-f", name, check=False)
        for name in left.get("network", []):
            self.podman("network", "rm", "-f", name, check=False)


@contextmanager
def stack_up(podman: Podman, tool: list[str], project: str) -> Iterator[Stack]:
    stack = Stack(podman, tool, project)
    try:
        started = time.monotonic()
        stack.compose("up", "-d", "--no-build")
        log(f"{project}: up in {time.monotonic() - started:.1f} s ({tool[0]})")
        yield stack
    finally:
        # Down even when a check failed; and whatever down leaves is removed too.
        stack.down(check=False)
        stack.remove_leftovers()


# ------------------------------------------------------------------ checks


def node_flows(stack: Stack) -> list[str]:
    out = stack.exec("ovs", "ovs-ofctl", "-O", "OpenFlow13", "--no-names",
                     "dump-flows", "br0").stdout
    return sorted(normalize_flow_dump(out))


def flow_ages(stack: Stack) -> dict[str, float]:
    """normalized flow -> its duration, as lab.harness.flow_durations reads them."""
    out = stack.exec("ovs", "ovs-ofctl", "-O", "OpenFlow13", "--no-names",
                     "dump-flows", "br0").stdout
    ages: dict[str, float] = {}
    for line in out.splitlines():
        norm = normalize_flow_dump(line)
        if norm and "duration=" in line:
            ages[norm[0]] = float(line.split("duration=", 1)[1].split("s", 1)[0])
    return ages


def pod_ports(topology: Path, node: str) -> dict[str, int]:
    """The node's pods' interfaces and their ofports, as the topology declares them."""
    return {pod.interface: pod.ofport for pod in load_topology([topology]).pods
            if pod.node == node and pod.interface and pod.ofport}


def expected_flows(topology: Path, node: str) -> list[str]:
    """`osdn render` of the node loaded into an empty bridge of a private OVS with the ports
    the ovs container's br0 has (vxlan0 = 1, tun0 = 2, the pods'), dumped and normalized."""
    with PrivateOvs() as reference:
        return sorted(reference_flows(topology, node, reference, pod_ports(topology, node)))


def attach_pods(stack: Stack, ports: dict[str, int]) -> None:
    """What the CNI plugin does for each pod: its port on br0 at its ofport (the controller
    installs a pod's flows once its port is there, as 3.11 does)."""
    for name, ofport in ports.items():
        stack.exec("ovs", "ovs-vsctl", "--may-exist", "add-port", "br0", name, "--",
                   "set", "interface", name, "type=internal", f"ofport_request={ofport}")


def flows_equal(stack: Stack, expected: list[str]) -> bool:
    try:
        return node_flows(stack) == expected
    except CheckFailed:
        return False  # the ovs container is (re)starting


def describe_flows(stack: Stack, expected: list[str]) -> str:
    try:
        return "br0 is not `osdn render` of its node:\n" + flow_diff(node_flows(stack),
                                                                    expected)
    except CheckFailed as e:
        return f"cannot dump br0: {e}"


def check_render_equal(stack: Stack, expected: list[str], ports: dict[str, int],
                       timeout: float = 90) -> None:
    attach_pods(stack, ports)
    took = wait_until(lambda: flows_equal(stack, expected), timeout,
                      lambda: describe_flows(stack, expected))
    log(f"1. br0 (pods' ports: {ports}) = osdn render ({len(expected)} flows) "
        f"{took:.1f} s after they were added")


def check_health(stack: Stack, timeout: float = 60) -> None:
    for service in ("ovs", "controller"):
        took = wait_healthy(stack, service, timeout)
        log(f"2. {service}: healthy (podman healthcheck run) after {took:.1f} s")


def wait_healthy(stack: Stack, service: str, timeout: float) -> float:
    """Runs the container's own health check (podman runs none by itself without systemd)."""
    container = stack.container(service)
    last: list[str] = []

    def healthy() -> bool:
        proc = stack.podman("healthcheck", "run", container, check=False, quiet=True)
        last[:] = [f"exit {proc.returncode}: {proc.stdout.strip()} {proc.stderr.strip()}"]
        return proc.returncode == 0

    return wait_until(healthy, timeout, lambda: f"{service}'s health check fails: {last}",
                      interval=1.0)


def metrics(stack: Stack) -> dict[str, float]:
    """The controller's exporter, fetched from outside the stack's namespace (so that its
    address, not only 127.0.0.1, is shown to answer): series text -> value."""
    return scrape_metrics(f"http://{stack.node_address()}:{METRICS_PORT}/metrics")


def metrics_or_empty(stack: Stack) -> dict[str, float]:
    try:
        return metrics(stack)
    except OSError:
        return {}


def check_controller_restart(stack: Stack, expected: list[str], node: str) -> None:
    before = flow_ages(stack)
    started = time.monotonic()
    stack.compose("restart", "controller")
    stop_start = time.monotonic() - started
    unchanged = f'osdn_reconciles_total{{node="{node}",outcome="unchanged"}}'
    took = wait_until(lambda: metrics_or_empty(stack).get(unchanged, 0) >= 1, 60,
                      lambda: f"the restarted controller never reconciled {node} "
                              f"as unchanged: {metrics_or_empty(stack)}")
    elapsed = time.monotonic() - started
    after = flow_ages(stack)
    if sorted(after) != expected:
        raise CheckFailed("after the controller's restart: " + describe_flows(stack, expected))
    assert_durations_kept(before, after, elapsed, expected, slack=1.0)
    sent = {series: value for series, value in metrics(stack).items()
            if series.startswith("osdn_flow_mods_total") and f'node="{node}"' in series}
    if not sent or any(sent.values()):
        raise CheckFailed(f"the restarted controller sent flow-mods: {sent}")
    log(f"3. controller restarted in {stop_start:.1f} s (stop + start), reconciled "
        f"{took:.1f} s later: br0 unchanged, 0 flow-mods ({', '.join(sent)})")


def check_ovs_restart(stack: Stack, expected: list[str]) -> None:
    stack.compose("restart", "ovs")
    took = wait_until(lambda: flows_equal(stack, expected), FLOWS_BACK_WITHIN,
                      lambda: "after the ovs container's restart: "
                              + describe_flows(stack, expected), interval=0.1)
    log(f"4. ovs restarted: flows back and equal {took:.1f} s after its start "
        f"(limit {FLOWS_BACK_WITHIN:.0f} s)")


def prometheus_query(stack: Stack, query: str) -> list[dict[str, object]]:
    url = (f"http://{stack.node_address()}:{PROMETHEUS_PORT}/api/v1/query?"
           + urllib.parse.urlencode({"query": query}))
    with urllib.request.urlopen(url, timeout=5) as response:
        reply = json.load(response)
    if reply.get("status") != "success":
        raise CheckFailed(f"Prometheus: {reply}")
    result: list[dict[str, object]] = reply["data"]["result"]
    return result


def check_prometheus(stack: Stack, expected: list[str], node: str) -> None:
    stack.compose("up", "-d", "--no-build", metrics=True)
    query = f'sum(osdn_flows{{node="{node}"}})'
    seen: list[object] = []

    def scraped() -> bool:
        try:
            seen[:] = prometheus_query(stack, query)
        except (OSError, ValueError) as e:
            seen[:] = [repr(e)]
            return False
        return bool(seen) and isinstance(seen[0], dict) and "value" in seen[0]

    took = wait_until(scraped, 90, lambda: f"Prometheus has no {query}: {seen}", interval=1.0)
    result = seen[0]
    assert isinstance(result, dict)
    value = float(result["value"][1])
    if value != len(expected):
        raise CheckFailed(f"Prometheus: {query} = {value}, the node has {len(expected)} flows")
    up = prometheus_query(stack, 'up{job="osdn-controller"}')
    log(f"5. Prometheus scraped the controller ({took:.0f} s): {query} = {value:.0f} "
        f"= the node's flows; up = {[r['value'][1] for r in up]}")  # type: ignore[index]


def check_down(stack: Stack) -> None:
    started = time.monotonic()
    stack.down()
    left = stack.leftovers()
    if left:
        raise CheckFailed(f"down left {left} behind")
    log(f"6. down in {time.monotonic() - started:.1f} s: no container, volume or network "
        f"of {stack.project} left")


# ------------------------------------------------------------------ main


def docker_compose_run(podman: Podman, expected: list[str], ports: dict[str, int],
                       node: str) -> None:
    project = f"osdn-ci-{os.getpid()}"
    with stack_up(podman, ["docker-compose"], project) as stack:
        check_render_equal(stack, expected, ports)
        check_health(stack)
        check_controller_restart(stack, expected, node)
        check_ovs_restart(stack, expected)
        check_prometheus(stack, expected, node)
        check_down(stack)


def podman_compose_run(podman: Podman, expected: list[str], ports: dict[str, int]) -> None:
    tool = [str(Path(sys.executable).with_name("podman-compose")), "--in-pod", "false"]
    project = f"osdn-ci-{os.getpid()}-pc"
    with stack_up(podman, tool, project) as stack:
        check_render_equal(stack, expected, ports)
        check_health(stack)
        check_down(stack)


def ci_setting(name: str) -> str:
    for line in CI_ENV.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip()
    raise CheckFailed(f"{CI_ENV}: no {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/test-containers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-podman-compose", action="store_true",
                        help="only the docker-compose run")
    args = parser.parse_args(argv)
    # A stop (SIGTERM, SIGHUP) unwinds like an error: everything started is stopped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: sys.exit(128 + s))
    node = ci_setting("OSDN_NODE")
    topology = REPO / ci_setting("TOPOLOGY")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="osdn-containers-"))
    podman = Podman(workdir)
    try:
        expected = expected_flows(topology, node)
        ports = pod_ports(topology, node)
        provide_base_image(podman, workdir)
        build_images(podman)
        podman.start_service()
        docker_compose_run(podman, expected, ports, node)
        if not args.skip_podman_compose:
            podman_compose_run(podman, expected, ports)
    except CheckFailed as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        podman.stop_service()
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"all checks passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
