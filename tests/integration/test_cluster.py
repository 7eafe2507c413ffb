"""The emulated cluster with real packets (`osdn cluster up` on the rich example cluster).

One build per plugin (a class each, so only one cluster is up at a time), every pod a network
namespace with a TCP listener answering with its pod's name (`clusterprobe serve`), probes
run concurrently from inside the pod namespaces (`clusterprobe probe`):

* ovs-subnet: every pod pair answers ping and TCP; Services; the outside sees node IPs;
  a node whose hostIP 3.11 refuses (inside a cluster network) is ignored by the others and
  gets no flows: its pods are cut off, the rest still reach each other;
* ovs-multitenant: the pair matrix follows the VNIDs (equal, or one of them 0); the egress IP
  is the source the external host sees for frontend pods on every node, node IPs for the
  others; Services within the VNID rules; forged frames (spoofed IP source, spoofed ARP
  sender, VXLAN sent to another node) are dropped and counted at tables 20 and 100; join /
  isolate / make-global applied live through the NetNamespace annotation change the matrix;
* ovs-networkpolicy: pod<->pod only, against an independent NetworkPolicy oracle, with no
  policy, a deny-all, a policy allowing one namespace on one port, the example's full set,
  and two namespaces sharing a VNID (one policy state, as 3.11).
  Services and traffic to the outside are not tested under ovs-networkpolicy: its flows rely
  on OVS and the kernel sharing one conntrack (table 30's ct(nat) undoing kube-proxy's DNAT,
  replies from outside seen as +rpl), and the userspace datapath's conntrack is OVS's own.
  Pod<->pod traffic goes through OVS's conntrack in both directions, so policy is real there.

Expected outcomes are computed from the topology as `topology.load.load_topology` reads the
(edited) files, never from the flows; except in `check_explained`, where the expectation is
`osdn explain`'s verdict (issue 13's Done-means: it must agree with the real packets).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.cli import main as cli_main
from controller.compiler import Settings, compile_node
from controller.explain import Explanation, ScratchTracer, Tracer, explain
from controller.ovs.netns import in_netns
from controller.ovs.ovscommands import OvsCommands
from controller.ovs.trace import TraceResult
from lab.cluster import ops
from lab.cluster.build import ClusterBuilder, underlay_mac
from lab.cluster.state import Ledger, load_cluster
from lab.policy_oracle import plugin_allows, policy_allows, vnids_allow
from lab.probe import (
    Listeners,
    arp_request,
    multicast_stream,
    run_probes,
    send_frames,
    udp_frame,
    vxlan_frame,
)
from topology.load import load_topology
from topology.model import ANNOTATION_CHANGE_NETWORK, Pod, Topology

pytestmark = pytest.mark.ovs
RICH = Path(__file__).resolve().parents[2] / "examples" / "rich-cluster"
PREFIX = "osdntc"  # every namespace of this module starts with it
PORTS = (8080, 5432, 9090)  # every pod listens on all of them
PLUGINS = {"subnet": "redhat/openshift-ovs-subnet",
           "multitenant": "redhat/openshift-ovs-multitenant",
           "networkpolicy": "redhat/openshift-ovs-networkpolicy"}
NO_DNS = Settings(resolver=lambda name: ())


class BareTracer:
    """Each node's running br0 traced once, as `ovs-appctl ofproto/trace` does by hand (no
    wait for a tunnel neighbour, unlike `ops.ClusterTracer`)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def trace(self, host: str, flow_spec: str) -> TraceResult:
        return self.cluster.ovs(host).trace("br0", flow_spec)


BUILT: list[Path] = []  # every state directory this module used (the final check reads it)


# ------------------------------------------------------------------------------ the cluster

@dataclass
class Cluster:
    builder: ClusterBuilder
    state: Path
    topo_dir: Path
    topology: Topology
    listeners: Listeners

    @property
    def plan(self):
        return self.builder.plan

    @property
    def pods(self) -> list[Pod]:
        return [p for p in self.topology.pods if p.ofport is not None]

    def netns(self, pod: Pod) -> str:
        return self.plan.pods[pod.key]["netns"]

    def ovs(self, host: str) -> OvsCommands:
        return OvsCommands(self.plan.nodes[host]["ovs_dir"])

    @property
    def log(self) -> Path:
        return self.state / "controller.log"

    def edit(self, change: Callable[[Path], None], timeout: float = 30.0) -> Topology:
        """Change the topology files live; wait until the controller has reloaded them and
        reconciled every bridge; the new topology (the test's oracle input)."""
        offset = self.log.stat().st_size
        change(self.topo_dir)
        expected = load_topology([self.topo_dir], cache=None)
        counts = {h: len(compile_node(expected, h, NO_DNS).flows) for h in self.plan.nodes}
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            loaded = text.find("topology loaded")
            synced = {h for h in self.plan.nodes if loaded >= 0 and re.search(
                rf"^.*{re.escape(h)} \(dpid 0x[0-9a-f]+\): in sync.*after topology changed",
                text[loaded:], re.M)}
            if synced == set(self.plan.nodes) and all(
                    len(self.ovs(h).dump_flows("br0")) == n for h, n in counts.items()):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"bridges not in sync after the edit (synced: "
                                     f"{sorted(synced)}); controller log since:\n{text[-4000:]}")
            time.sleep(0.1)
        self.topology = expected
        return expected


def copy_topology(dst: Path, plugin: str, drop: tuple[str, ...] = ()) -> Path:
    """The rich cluster under `plugin`, written into its ClusterNetwork: the controller that
    `ClusterBuilder` starts reads only the files (it has no plugin setting), so loading with
    `load_topology(plugin=...)` would leave it compiling the file's plugin."""
    dst.mkdir(parents=True)
    for f in RICH.glob("*.yaml"):
        if f.name not in drop:
            shutil.copy(f, dst / f.name)
    net = dst / "network.yaml"
    net.write_text(re.sub(r"pluginName: .*", f"pluginName: {PLUGINS[plugin]}", net.read_text()))
    return dst


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")  # not *.yaml: the watcher never reads it
    tmp.write_text(text)
    os.replace(tmp, path)


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the module: no namespace of ours, no process started for it (OVS daemons and
    controllers are recognised by their state directory in their command line), and none of
    the clusters' interface names in the root namespace."""
    before = set(netns_names())
    assert not [n for n in before if n.startswith(PREFIX)], \
        f"namespaces {PREFIX}* exist before the tests; remove them first"
    yield
    left = [n for n in netns_names() if n.startswith(PREFIX)]
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(str(state) in cmdline for state in BUILT) or "probe.py" in cmdline:
            procs.append(f"{pid}: {cmdline}")
    topology = load_topology([RICH])
    ifnames = {p.interface for p in topology.pods if p.interface} | {"br-u", "br-phy", "tun0"}
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True,
                           text=True).stdout
    root_ifs = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    assert not left and not procs and not (ifnames & root_ifs), (left, procs,
                                                                  ifnames & root_ifs)


def build(tmp: Path, plugin: str, prefix: str, drop: tuple[str, ...] = (),
          edit: Callable[[Path], None] | None = None) -> Iterator[Cluster]:
    """Build the rich cluster under `plugin` (its files changed by `edit`), start the
    listeners; tear everything down after, whatever happened."""
    topo_dir = copy_topology(tmp / "topology", plugin, drop)
    if edit is not None:
        edit(topo_dir)
    topology = load_topology([topo_dir], cache=None)
    state = tmp / "state"
    BUILT.append(state)
    builder = ClusterBuilder(topology, [str(topo_dir)], state, prefix=prefix,
                             log=lambda *a: None)
    listeners = Listeners(token=f"osdn-test-listener-{uuid.uuid4().hex}")
    problems: list[str] = []
    try:
        started = time.monotonic()
        builder.up()
        builder.wait_in_sync(timeout=60)
        listeners.start({info["netns"]: key for key, info in builder.plan.pods.items()},
                        PORTS, state, register=Ledger(state).process)
        print(f"\n{plugin} cluster up and in sync, listeners ready: "
              f"{time.monotonic() - started:.1f} s")
        yield Cluster(builder, state, topo_dir, topology, listeners)
    finally:
        listeners.stop()
        ops.down(state, log=problems.append)
        left = [n for n in netns_names() if n.startswith(prefix + "-")]
        assert not left, f"namespaces left after down: {left}"
        assert not [p for p in problems if p.startswith("down:")], problems


# ------------------------------------------------------------------------------ probing

def check_matrix(cluster: Cluster, expect: Callable[[Pod, Pod, int | None], bool],
                 ports: tuple[int, ...] = (8080,),
                 detail: Callable[[Pod, Pod, int | None], str] | None = None) -> set[bool]:
    """Ping and TCP on `ports` for every ordered pod pair, all at once; assert each outcome.
    A TCP success must be answered by the destination pod itself.  Returns the outcomes
    seen (a guard that the matrix proves something).  `detail` adds to each wrong outcome's
    line why it was expected."""
    pods = cluster.pods
    cases: dict[str, list[tuple[Pod, int | None]]] = {}
    probes: dict[str, list[dict[str, Any]]] = {}
    for src, dst in itertools.permutations(pods, 2):
        for port in (None, *ports):
            cases.setdefault(cluster.netns(src), []).append((dst, port))
            probes.setdefault(cluster.netns(src), []).append(
                {"kind": "ping", "ip": str(dst.ip)} if port is None else
                {"kind": "tcp", "ip": str(dst.ip), "port": port})
    by_netns = {cluster.netns(p): p for p in pods}
    started = time.monotonic()
    results = run_probes(probes)
    elapsed = time.monotonic() - started
    wrong, outcomes = [], set()
    for netns, answers in results.items():
        src = by_netns[netns]
        for (dst, port), got in zip(cases[netns], answers, strict=True):
            want = expect(src, dst, port)
            outcomes.add(want)
            ok = got is want if port is None else (got == dst.key if want else got is None)
            if not ok:
                what = "ping" if port is None else f"tcp/{port}"
                wrong.append(f"{src.key} ({src.node}) -> {dst.key} ({dst.node}) {what}: "
                             f"expected {'open' if want else 'closed'}, got {got!r}"
                             + (f"\n    {detail(src, dst, port)}" if detail else ""))
    total = sum(map(len, probes.values()))
    print(f"{total} probes in {elapsed:.1f} s")
    assert not wrong, f"{len(wrong)} of {total} probes wrong:\n" + "\n".join(sorted(wrong))
    return outcomes


def seen_from_outside(cluster: Cluster, pods: list[Pod]) -> dict[str, str | None]:
    """Each pod opens a TCP connection to the external host, where `nc -vn -l` (one per pod,
    on its own port) prints the source address it sees."""
    external = str(cluster.plan.external_ip)
    netns = f"{cluster.plan.prefix}-x"
    servers: dict[str, subprocess.Popen[str]] = {}
    try:
        for i, pod in enumerate(pods):
            servers[pod.key] = subprocess.Popen(
                [*in_netns(netns), "nc", "-vn", "-l", "-p", str(21000 + i)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
        for server in servers.values():
            assert server.stderr is not None
            assert "Listening on" in server.stderr.readline()
        results = run_probes({cluster.netns(pod): [
            {"kind": "tcp", "ip": external, "port": 21000 + i}] for i, pod in enumerate(pods)})
        seen: dict[str, str | None] = {}
        for pod in pods:
            server = servers[pod.key]
            if results[cluster.netns(pod)] != [""]:
                seen[pod.key] = None
                continue
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
            assert server.stderr is not None
            match = re.search(r"Connection received on (\S+) ", server.stderr.read())
            seen[pod.key] = match.group(1) if match else None
        return seen
    finally:
        for server in servers.values():
            if server.poll() is None:
                server.kill()
            server.wait(timeout=5)
            if server.stderr is not None:
                server.stderr.close()


def expected_source(topology: Topology, pod: Pod) -> str:
    """What the outside sees: the namespace's egress IP (ovs-multitenant/networkpolicy, a
    namespace with one), else the pod's node IP."""
    hs = topology.host_subnet(pod.node)
    assert hs is not None
    if topology.cluster_network.plugin.supports_vnids and topology.vnid_of(pod.namespace):
        nn = next(n for n in topology.net_namespaces if n.name == pod.namespace)
        hosted = [ip for ip in nn.egress_ips
                  if any(ip in h.egress_ips for h in topology.host_subnets)]
        if hosted:
            return str(hosted[0])
    return str(hs.host_ip)


# numeric target ports (hostside resolves a named one to the service port), and under
# ovs-multitenant a client allowed in on every node: default (VNID 0) reaches and is reached
# by all; backend/api has backend, analytics (joined to backend) or default pods everywhere
SERVICES = [("default", "registry-console"), ("backend", "api")]


def check_services(cluster: Cluster, open_: Callable[[Topology, Pod, Pod], bool]) -> None:
    """ClusterIP:port of SERVICES (numeric target ports) from every pod that is not one of the
    Service's backends: answered by one of its backends when the plugin lets the client reach
    the Service's namespace, no connection otherwise; and from every node someone gets in."""
    topology = cluster.topology
    probes: dict[str, list[dict[str, Any]]] = {}
    cases: dict[str, list[tuple[Any, set[str], bool]]] = {}
    reached: dict[str, set[str]] = {}
    names = []
    for namespace, name in SERVICES:
        svc = next(s for s in topology.services if (s.namespace, s.name) == (namespace, name))
        port = next(p for p in svc.ports if p.protocol == "TCP")
        assert isinstance(port.target_port, (int, type(None))), "pick numeric targetPorts"
        assert (port.target_port or port.port) in PORTS
        backends = {p.key for p in cluster.pods if p.namespace == svc.namespace
                    and all(p.label_map.get(k) == v for k, v in svc.selector)}
        assert backends
        names.append(f"{svc.namespace}/{svc.name}:{port.port}")
        for client in cluster.pods:
            if client.key in backends:
                continue
            backend = next(p for p in cluster.pods if p.key in backends)
            want = open_(topology, client, backend)
            probes.setdefault(cluster.netns(client), []).append(
                {"kind": "tcp", "ip": str(svc.cluster_ip), "port": port.port})
            cases.setdefault(cluster.netns(client), []).append(
                ((client, f"{svc.namespace}/{svc.name}:{port.port}"), backends, want))
    results = run_probes(probes)
    wrong = []
    for netns, answers in results.items():
        for ((client, svc_name), backends, want), got in zip(cases[netns], answers,
                                                              strict=True):
            if want and got in backends:
                reached.setdefault(svc_name, set()).add(client.node)
            elif want or got is not None:
                wrong.append(f"{client.key} ({client.node}) -> {svc_name}: expected "
                             f"{'one of ' + str(sorted(backends)) if want else 'no answer'}, "
                             f"got {got!r}")
    assert not wrong, "\n".join(wrong)
    nodes = set(cluster.plan.nodes)
    assert all(reached.get(name) == nodes for name in names), reached


# ------------------------------------------------------------------------------ explain

Probe = tuple[str, str, int | None]  # source pod, destination pod, TCP port (None: the ping)


def probe_dst(dst: Pod, port: int | None) -> str:
    """`osdn explain`'s DST for one probe of `check_matrix`: the ping is an ICMP echo, the
    other probes are TCP connections to `port`."""
    return f"{dst.key}/icmp" if port is None else f"{dst.key}:{port}/tcp"


def explain_probes(topology: Topology, tracer: Tracer, pods: list[Pod],
                   ports: tuple[int, ...], sources: Callable[[Pod], bool] = lambda pod: True
                   ) -> dict[Probe, Explanation]:
    """The explanation of every probe `check_matrix(ports=ports)` sends (from `sources`)."""
    return {(s.key, d.key, port): explain(topology, s.key, probe_dst(d, port), tracer, NO_DNS)
            for s, d in itertools.permutations(pods, 2) if sources(s)
            for port in (None, *ports)}


def unexplained(explanations: dict[Probe, Explanation]) -> list[str]:
    """What the explanations of pod-to-pod probes leave unsaid: a drop without its node,
    table or reason, a delivery to anyone but the destination pod, any other verdict."""
    problems = []
    for (src, dst, port), e in explanations.items():
        what = f"{src} -> {dst} {'ping' if port is None else f'tcp/{port}'}: {e.verdict}"
        if e.verdict == "dropped":
            missing = [name for name, value in (("node", e.drop_node), ("table", e.drop_table),
                                                ("reason", e.reason)) if value in (None, "")]
            if missing:
                problems.append(f"{what} without its {', '.join(missing)}: {e.sentence}")
        elif e.verdict != "delivered" or e.delivered_to is None \
                or e.delivered_to.pod != dst:
            problems.append(f"{what} to {e.delivered_to!r}: {e.sentence}")
    return problems


def verdicts(explanations: dict[Probe, Explanation]) -> dict[Probe, tuple[Any, ...]]:
    """What two tracers must agree on: the verdict, where a packet is dropped or delivered."""
    return {k: (e.verdict, e.drop_node, e.drop_table, e.delivered_to and e.delivered_to.pod)
            for k, e in explanations.items()}


def check_explained(cluster: Cluster, ports: tuple[int, ...] = (8080,)) -> set[bool]:
    """Issue 13's Done-means on the emulated cluster: for every probe of `check_matrix`, the
    explanation traced offline (the topology's rendered flows in throwaway bridges) is
    well said (`unexplained`), the one traced on the cluster's real bridges
    (`ops.ClusterTracer`) too, with the same verdicts and drops, and the real packets agree
    with them: delivered <=> the ping answered / the TCP connection answered by the pod
    itself."""
    topology = cluster.topology
    started = time.monotonic()
    with ScratchTracer(topology, NO_DNS) as tracer:
        offline = explain_probes(topology, tracer, cluster.pods, ports)
    offline_s = time.monotonic() - started
    started = time.monotonic()
    live = explain_probes(topology, ops.ClusterTracer(load_cluster(cluster.state)),
                          cluster.pods, ports)
    print(f"{len(live)} probes explained on the cluster's bridges in "
          f"{time.monotonic() - started:.1f} s, {len(offline)} of them offline in "
          f"{offline_s:.1f} s; {sum(e.verdict == 'delivered' for e in live.values())} "
          "delivered")
    problems = unexplained(offline) + [f"live: {p}" for p in unexplained(live)]
    assert not problems, "\n".join(problems)
    offline_v, live_v = verdicts(offline), verdicts(live)
    differ = [f"{k}: offline {offline_v[k]}, live {live_v[k]}\n  offline: "
              f"{offline[k].sentence}\n  live: {live[k].sentence}"
              for k in offline if offline_v[k] != live_v[k]]
    assert not differ, "\n".join(differ)

    def detail(src: Pod, dst: Pod, port: int | None) -> str:
        e = live[src.key, dst.key, port]
        return f"explain: {e.sentence}\n    path: {e.path()}"

    return check_matrix(cluster, lambda s, d, p: live[s.key, d.key, p].verdict == "delivered",
                        ports, detail)


def check_explained_services(cluster: Cluster) -> None:
    """`check_services` with `osdn explain svc/NAMESPACE/NAME:PORT` as the expectation (the
    host side's DNAT modelled, then br0 again), offline and on the cluster's bridges: each
    backend the DNAT may pick (the explanation's branches) gets the same verdict, and a
    client gets an answer from a backend exactly when the explanation says delivered."""
    topology = cluster.topology
    live_tracer = ops.ClusterTracer(load_cluster(cluster.state))
    service_of: dict[str, str] = {}  # backend pod -> its Service's DST
    said: dict[tuple[str, str], Explanation] = {}
    problems = []
    with ScratchTracer(topology, NO_DNS) as scratch:
        for namespace, name in SERVICES:
            svc = next(s for s in topology.services
                       if (s.namespace, s.name) == (namespace, name))
            port = next(p for p in svc.ports if p.protocol == "TCP")
            dst = f"svc/{namespace}/{name}:{port.port}"
            backends = {p.key for p in cluster.pods if p.namespace == namespace
                        and all(p.label_map.get(k) == v for k, v in svc.selector)}
            service_of.update(dict.fromkeys(backends, dst))
            for client in cluster.pods:
                offline = explain(topology, client.key, dst, scratch, NO_DNS)
                live = explain(topology, client.key, dst, live_tracer, NO_DNS)
                said[client.key, dst] = offline
                every = [offline, *offline.branches]
                if {e.verdict for e in every} != {live.verdict}:
                    problems.append(f"{client.key} -> {dst}: offline "
                                    f"{[e.sentence for e in every]}, live {live.sentence}")
                for e in every:
                    if e.verdict == "dropped" and not (e.drop_node and e.reason):
                        problems.append(f"{client.key} -> {dst}: {e.sentence}")
                    if e.verdict == "delivered" and (e.delivered_to is None
                                                     or e.delivered_to.pod not in backends):
                        problems.append(f"{client.key} -> {dst}: {e.sentence}")
    assert not problems, "\n".join(problems)
    print(f"{len(said)} Service probes explained; "
          f"{sum(e.verdict == 'delivered' for e in said.values())} delivered")
    check_services(cluster, lambda t, client, backend: said[
        client.key, service_of[backend.key]].verdict == "delivered")


# ------------------------------------------------------------------------------ ovs-subnet

class TestSubnet:
    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        yield from build(tmp_path_factory.mktemp("subnet"), "subnet", PREFIX + "s")

    def test_all_pairs_open(self, cluster: Cluster) -> None:
        assert check_matrix(cluster, lambda s, d, p: True) == {True}

    def test_explain_agrees_with_packets(self, cluster: Cluster) -> None:
        assert check_explained(cluster) == {True}

    def test_services_from_every_node(self, cluster: Cluster) -> None:
        check_services(cluster, plugin_allows)

    def test_explain_agrees_with_services(self, cluster: Cluster) -> None:
        check_explained_services(cluster)

    def test_outside_sees_node_ips(self, cluster: Cluster) -> None:
        seen = seen_from_outside(cluster, cluster.pods)
        expected = {p.key: str(cluster.topology.host_subnet(p.node).host_ip)  # type: ignore
                    for p in cluster.pods}
        assert seen == expected


class TestRefusedHostIP:
    """node-c's hostIP (moved to 192.168.50.17) inside a second cluster network: 3.11's
    ValidateNodeIP makes every other node ignore its HostSubnet, and node-c itself would not
    start (the controller cannot compile it; its br0 stays empty).  node-c's pods are cut
    off; the pods of node-a and node-b reach each other as before."""

    BAD_IP = "192.168.50.17"

    @staticmethod
    def refuse_node_c(topo_dir: Path) -> None:
        net = topo_dir / "network.yaml"
        text = net.read_text().replace("hostIP: 192.168.50.13", "hostIP: 192.168.50.17")
        text = text.replace("  - CIDR: 10.64.0.0/16\n    hostSubnetLength: 8\n",
                            "  - CIDR: 10.64.0.0/16\n    hostSubnetLength: 8\n"
                            "  - CIDR: 192.168.50.16/30\n    hostSubnetLength: 2\n")
        net.write_text(text)

    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        yield from build(tmp_path_factory.mktemp("refused"), "subnet", PREFIX + "r",
                         edit=cls.refuse_node_c)

    def test_node_c_is_ignored_and_cut_off(self, cluster: Cluster) -> None:
        topology = cluster.topology
        assert any("HostSubnet/node-c" in w and "does not start" in w for w in topology.warnings)
        assert not cluster.ovs("node-c").dump_flows("br0")
        for host, other in (("node-a", "192.168.50.12"), ("node-b", "192.168.50.11")):
            flows = " ".join(cluster.ovs(host).dump_flows("br0"))
            assert self.BAD_IP not in flows and f"tun_src={other}" in flows, host
        outcomes = check_matrix(cluster, lambda s, d, p: "node-c" not in (s.node, d.node))
        assert outcomes == {True, False}

    def test_explain_agrees_with_packets(self, cluster: Cluster) -> None:
        assert check_explained(cluster) == {True, False}

    def test_explain_names_the_refused_node(self, cluster: Cluster) -> None:
        """Offline and live alike: from node-c, its empty br0; toward it, the HostSubnet the
        other nodes ignore."""
        c_pod = next(p for p in cluster.pods if p.node == "node-c")
        a_pod = next(p for p in cluster.pods if p.node == "node-a")
        with ScratchTracer(cluster.topology, NO_DNS) as scratch:
            for tracer in (scratch, ops.ClusterTracer(load_cluster(cluster.state))):
                out = explain(cluster.topology, c_pod.key, a_pod.key, tracer, NO_DNS)
                assert (out.verdict, out.drop_node, out.drop_table) == \
                    ("dropped", "node-c", 0), out.text()
                assert f"hostIP {self.BAD_IP}" in out.reason \
                    and "refuses to start" in out.reason, out.reason
                into = explain(cluster.topology, a_pod.key, c_pod.key, tracer, NO_DNS)
                assert (into.verdict, into.drop_node, into.drop_table) == \
                    ("dropped", "node-a", 90), into.text()
                assert "HostSubnet node-c" in into.reason \
                    and "3.11 ignores that HostSubnet" in into.reason, into.reason


# ------------------------------------------------------------------------------ ovs-multitenant

def n_packets(ovs: OvsCommands, table: int, match: Callable[[str], bool]) -> int:
    lines = [line for line in ovs.ofctl("br0", "--no-names", "dump-flows",
                                        f"table={table}").splitlines() if match(line)]
    assert len(lines) == 1, lines
    return int(re.search(r"n_packets=(\d+)", lines[0]).group(1))  # type: ignore[union-attr]


def table20_drop(line: str) -> bool:
    return "priority=0" in line and "actions=drop" in line


def table100_vxlan_drop(line: str) -> bool:
    return "priority=300,udp," in line and "actions=drop" in line


class TestMultitenant:
    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        yield from build(tmp_path_factory.mktemp("multitenant"), "multitenant", PREFIX + "m")

    def test_isolated_by_vnid(self, cluster: Cluster) -> None:
        topology = cluster.topology
        kinds = {(vnids_allow(topology, s, d), s.node == d.node)
                 for s, d in itertools.permutations(cluster.pods, 2)}
        assert len(kinds) == 4  # open and isolated pairs, on one node and across nodes
        check_matrix(cluster, lambda s, d, p: vnids_allow(topology, s, d))

    def test_explain_agrees_with_packets(self, cluster: Cluster) -> None:
        assert check_explained(cluster) == {True, False}

    def test_cluster_explain_command(self, cluster: Cluster,
                                     capsys: pytest.CaptureFixture[str]) -> None:
        """`osdn cluster explain` on the running cluster: an isolated pair across nodes (the
        drop on the destination's node, at table 80, with its reason, as JSON), an open
        one (text), a DST that names nothing (exit 1, the name in the message)."""
        web = {p.node: p.key for p in cluster.pods if p.namespace == "frontend"}
        docs = next(p for p in cluster.pods if p.namespace == "shared" and p.node == "node-b")
        state = ["--state-dir", str(cluster.state)]
        assert cli_main(["cluster", "explain", *state, web["node-a"], f"{docs.key}:8080",
                         "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert (data["verdict"], data["drop_node"], data["drop_table"]) == (
            "dropped", "node-b", 80)
        assert "isolated" in data["reason"] and "frontend" in data["reason"], data["reason"]
        assert [h["node"] for h in data["hops"]] == ["node-a", "node-b"]
        assert any("emulated cluster's bridges" in n for n in data["notes"]), data["notes"]
        assert cli_main(["cluster", "explain", *state, web["node-a"],
                         f"{web['node-b']}:8080/tcp"]) == 0
        text = capsys.readouterr().out
        assert f"Verdict: delivered: delivered to Pod {web['node-b']}" in text, text
        assert cli_main(["cluster", "explain", *state, web["node-a"], "frontend/nosuch"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("osdn cluster explain: ") and "frontend/nosuch" in err, err

    def test_live_explain_waits_out_a_tunnel_neighbour_miss(self, cluster: Cluster) -> None:
        """node-a's userspace tunnel forgets node-b's VTEP MAC (as OVS ages it out after
        minutes without traffic): a bare trace then drops after br0's output to vxlan0, the
        cluster tracer's explanation still follows the packet to node-b."""
        web = next(p for p in cluster.pods if p.namespace == "frontend" and p.node == "node-a")
        peer = next(p for p in cluster.pods if p.namespace == "frontend" and p.node == "node-b")
        ovs, tracer = cluster.ovs("node-a"), ops.ClusterTracer(load_cluster(cluster.state))
        try:
            ovs.appctl("tnl/neigh/flush")
            e = explain(cluster.topology, web.key, f"{peer.key}:8080", tracer, NO_DNS)
            assert e.verdict == "delivered" and e.delivered_to is not None \
                and e.delivered_to.pod == peer.key, e.text()
            ovs.appctl("tnl/neigh/flush")
            bare = explain(cluster.topology, web.key, f"{peer.key}:8080", BareTracer(cluster),
                           NO_DNS)
            assert "neighbor cache miss" in bare.hops[0].raw, bare.hops[0].raw
            # without the wait, the drop is named for what it is, not as a br0 table's
            assert (bare.verdict, bare.drop_node) == ("dropped", "node-a"), bare.text()
            assert "outputs it to vxlan0 toward 192.168.50.12" in bare.reason, bare.reason
            assert "neighbor cache miss" in bare.reason, bare.reason
        finally:  # as `up` seeded them: the next tests' first packets must not be lost
            for hs in cluster.topology.host_subnets:
                if hs.host != "node-a":
                    ovs.appctl("tnl/neigh/set", "br-phy", str(hs.host_ip),
                               underlay_mac(hs.host_ip))

    def test_egress_ip_seen_from_outside(self, cluster: Cluster) -> None:
        topology = cluster.topology
        seen = seen_from_outside(cluster, cluster.pods)
        expected = {p.key: expected_source(topology, p) for p in cluster.pods}
        # the rich cluster's facts: frontend leaves by 192.168.50.100, hosted on node-c, from
        # node-c and from the other nodes
        frontend = {p.node for p in cluster.pods if p.namespace == "frontend"}
        assert "node-c" in frontend and len(frontend) > 1
        assert {expected[p.key] for p in cluster.pods if p.namespace == "frontend"} == {
            "192.168.50.100"}
        assert seen == expected

    def test_services_follow_vnids(self, cluster: Cluster) -> None:
        check_services(cluster, vnids_allow)

    def test_explain_agrees_with_services(self, cluster: Cluster) -> None:
        check_explained_services(cluster)

    def test_forged_frames_are_dropped_and_counted(self, cluster: Cluster) -> None:
        """From one pod per node (the nodes at once, the frames of a node one after the other,
        as they share table 20's drop counter): each frame sent `COUNT` times is counted by
        the drop flow of the expected table."""
        topology = cluster.topology
        vxlan_port = topology.cluster_network.vxlan_port
        count = 5

        def node(hs: Any) -> list[str]:
            pod = next(p for p in cluster.pods if p.node == hs.host)
            neighbour = next(p for p in cluster.pods if p.node == hs.host and p is not pod)
            remote = next(p for p in cluster.pods if p.node != hs.host)
            other_node = topology.host_subnet(remote.node)
            assert other_node is not None
            ovs, netns = cluster.ovs(hs.host), cluster.netns(pod)
            frames = {
                "spoofed IP source": (20, table20_drop, udp_frame(
                    pod.mac, hs.tun0_mac, str(neighbour.ip), str(remote.ip), 40000, 8080)),
                "spoofed ARP sender MAC": (20, table20_drop, arp_request(
                    pod.mac, "0a:58:0a:40:ff:fe", str(pod.ip), str(hs.gateway))),
                "spoofed ARP sender IP": (20, table20_drop, arp_request(
                    pod.mac, pod.mac, str(neighbour.ip), str(hs.gateway))),
                "VXLAN to another node": (100, table100_vxlan_drop, vxlan_frame(
                    pod.mac, hs.tun0_mac, str(pod.ip), str(other_node.host_ip), vxlan_port,
                    topology.vnid_of(remote.namespace),
                    udp_frame(hs.tun0_mac, remote.mac, str(pod.ip), str(remote.ip), 40000,
                              8080))),
            }
            wrong = []
            for what, (table, match, frame) in frames.items():
                before = n_packets(ovs, table, match)
                send_frames(netns, frame, count)
                # the datapath's flow cache reports to the OpenFlow counters every ~0.5 s
                deadline = time.monotonic() + 5
                while (delta := n_packets(ovs, table, match) - before) < count and \
                        time.monotonic() < deadline:
                    time.sleep(0.1)
                # pods' own IPv6 chatter (router solicitations) also ends in table 20's drop
                if not count <= delta <= count + (3 if table == 20 else 0):
                    wrong.append(f"{what} from {pod.key} on {hs.host}: sent {count}, "
                                 f"table {table}'s drop counted {delta}")
            return wrong

        with ThreadPoolExecutor(max_workers=len(topology.host_subnets)) as pool:
            wrong = [w for ws in pool.map(node, topology.host_subnets) for w in ws]
        assert not wrong, "\n".join(wrong)

    def test_egress_ip_follows_tun0_s_real_mac(self, cluster: Cluster) -> None:
        """node-c hosts frontend's egress IP.  Its tun0 gets another MAC (a real node's
        kernel picks one at random): the switch reports it, table 100 writes it as eth_dst,
        and frontend's traffic still leaves by the egress IP; with the 0a:58 guess the
        node's kernel would drop it as addressed to another host.  (The MAC is changed with
        `ip link`, live: OVS's `mac` column would take tun0 down and up, and the kernel
        would drop tun0's routes with it.)"""
        hs = cluster.topology.host_subnet("node-c")
        assert hs is not None and hs.egress_ips
        ovs, real_mac = cluster.ovs("node-c"), "0e:00:00:c0:ff:ee"
        node_netns = cluster.plan.nodes["node-c"]["netns"]

        def set_tun0_mac(mac: str) -> None:
            subprocess.run([*in_netns(node_netns), "ip", "link", "set", "tun0", "address", mac],
                           check=True)

        def table_100_writes(mac: str) -> bool:
            return any(f"set_field:{mac}->eth_dst" in line
                       for line in ovs.dump_flows("br0", table=100))

        frontend = [p for p in cluster.pods if p.namespace == "frontend"]
        try:
            offset = cluster.log.stat().st_size
            set_tun0_mac(real_mac)
            deadline = time.monotonic() + 20
            while not table_100_writes(real_mac):
                assert time.monotonic() < deadline, ovs.dump_flows("br0", table=100)
                time.sleep(0.1)
            assert not table_100_writes(hs.tun0_mac)
            log = cluster.log.read_bytes()[offset:].decode(errors="replace")
            assert f"tun0's MAC is {real_mac}, not {hs.tun0_mac}" in log
            assert seen_from_outside(cluster, frontend) == {
                p.key: "192.168.50.100" for p in frontend}
        finally:
            set_tun0_mac(hs.tun0_mac)
            deadline = time.monotonic() + 20
            while not table_100_writes(hs.tun0_mac) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert table_100_writes(hs.tun0_mac)

    def test_join_isolate_global_live(self, cluster: Cluster) -> None:
        original = (cluster.topo_dir / "network.yaml").read_text()

        def annotate(namespace: str, value: str) -> Callable[[Path], None]:
            def change(topo_dir: Path) -> None:
                path = topo_dir / "network.yaml"
                doc = yaml.safe_load(path.read_text())
                nn = next(i for i in doc["items"] if i["kind"] == "NetNamespace"
                          and i["metadata"]["name"] == namespace)
                nn["metadata"].setdefault("annotations", {})[ANNOTATION_CHANGE_NETWORK] = value
                write_atomic(path, yaml.safe_dump(doc, sort_keys=False))
            return change

        steps = [
            ("shared", "join:frontend", lambda t: t.vnid_of("shared") == t.vnid_of("frontend")),
            ("analytics", "isolate", lambda t: t.vnid_of("analytics") not in (
                t.vnid_of(n.name) for n in t.net_namespaces if n.name != "analytics")),
            ("db", "global", lambda t: t.vnid_of("db") == 0),
        ]
        try:
            for namespace, value, guard in steps:
                before = cluster.topology.vnid_of(namespace)
                topology = cluster.edit(annotate(namespace, value))
                assert topology.vnid_of(namespace) != before and guard(topology), (
                    namespace, value, before, topology.vnid_of(namespace))
                def expect(s: Pod, d: Pod, p: int | None, t: Topology = topology) -> bool:
                    return vnids_allow(t, s, d)
                assert check_matrix(cluster, expect) == {True, False}
                # the explanation follows the live change (flows and files) as well
                assert check_explained(cluster) == {True, False}
        finally:
            cluster.edit(lambda d: write_atomic(d / "network.yaml", original))
        check_matrix(cluster, lambda s, d, p: vnids_allow(cluster.topology, s, d))


    def test_multicast_reaches_the_enabled_namespace_only(self, cluster: Cluster) -> None:
        """A frontend pod (annotated multicast-enabled) sends a stream to a group every pod
        has joined: frontend pods on the other nodes get it (table 111 replicates it over
        VXLAN, 120 delivers it); pods of namespaces without the annotation, on every node,
        get nothing.  A stream from such a namespace (shared) reaches no one, its own
        namespace's pods included (table 110 drops it).  Last of the class: right after it,
        the first TCP connections of the shared sender to remote pods were seen to fail for
        a few seconds after a live VNID change (ping unaffected; not yet understood)."""
        topology = cluster.topology
        assert {nn.name for nn in topology.net_namespaces if nn.multicast_enabled} \
            == {"frontend"}
        count = 20

        def stream(sender: Pod) -> dict[str, int]:
            receivers = {cluster.netns(p): str(p.ip) for p in cluster.pods if p is not sender}
            got = multicast_stream((cluster.netns(sender), str(sender.ip)), receivers,
                                   "239.10.20.30", 5007, count, f"mc-{uuid.uuid4().hex[:8]}")
            return {p.key: got[cluster.netns(p)] for p in cluster.pods if p is not sender}

        sender = next(p for p in cluster.pods if p.namespace == "frontend"
                      and p.node == "node-a")
        got = stream(sender)
        frontend = {k for k in got if k.startswith("frontend/")}
        nodes = {p.key: p.node for p in cluster.pods}
        assert {nodes[k] for k in frontend} == {"node-b", "node-c"}
        # the userspace datapath may lose a first datagram while its flow cache fills
        assert all(got[k] >= count - 2 for k in frontend), got
        assert all(n == 0 for k, n in got.items() if k not in frontend), got

        shared = next(p for p in cluster.pods if p.namespace == "shared" and p.node == "node-a")
        got = stream(shared)
        assert any(k.startswith("shared/") for k in got) and set(got.values()) == {0}, got

# ------------------------------------------------------------------------------ ovs-networkpolicy

class TestNetworkPolicy:
    """Pod<->pod only (see the module docstring: OVS's userspace conntrack is not the
    kernel's, so services and replies from outside cannot work with faithful flows)."""

    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        yield from build(tmp_path_factory.mktemp("networkpolicy"), "networkpolicy",
                         PREFIX + "n", drop=("networkpolicies.yaml",))

    @staticmethod
    def policies(*names: str) -> Callable[[Path], None]:
        """networkpolicies.yaml with the example's policies of these names (none named: all)."""
        docs = [d for d in yaml.safe_load_all((RICH / "networkpolicies.yaml").read_text()) if d]

        def change(topo_dir: Path) -> None:
            chosen = [d for d in docs if not names or d["metadata"]["name"] in names]
            write_atomic(topo_dir / "networkpolicies.yaml",
                         yaml.safe_dump_all(chosen, sort_keys=False))
        return change

    def check(self, cluster: Cluster) -> set[bool]:
        topology = cluster.topology
        return check_matrix(cluster, lambda s, d, p: policy_allows(topology, s, d, p),
                            ports=(8080, 5432))

    def test_no_policy_is_open(self, cluster: Cluster) -> None:
        assert not cluster.topology.network_policies
        assert self.check(cluster) == {True}

    def test_deny_all(self, cluster: Cluster) -> None:
        cluster.edit(self.policies("deny-all"))
        assert self.check(cluster) == {True, False}

    def test_allow_one_namespace_one_port(self, cluster: Cluster) -> None:
        topology = cluster.edit(self.policies("deny-all", "allow-frontend-to-api"))
        api = next(p for p in cluster.pods if p.namespace == "backend"
                   and p.label_map.get("app") == "api")
        web = next(p for p in cluster.pods if p.namespace == "frontend")
        assert policy_allows(topology, web, api, 8080)
        assert not policy_allows(topology, web, api, 5432)
        assert not policy_allows(topology, web, api, None)
        assert self.check(cluster) == {True, False}

    def test_the_example_policies(self, cluster: Cluster) -> None:
        cluster.edit(self.policies())
        assert len(cluster.topology.network_policies) == 4
        assert self.check(cluster) == {True, False}

    def test_explain_agrees_with_packets(self, cluster: Cluster) -> None:
        """With the example's policies (the previous test's state; set here when run alone)."""
        if len(cluster.topology.network_policies) != 4:
            cluster.edit(self.policies())
        assert check_explained(cluster, ports=(8080, 5432)) == {True, False}

    def test_a_shared_vnid_shares_policy_state(self, cluster: Cluster) -> None:
        """analytics given backend's netid: 3.11 keeps policy state per VNID, so backend's
        deny-all isolates analytics' pods too (no priority-50 allow for the VNID)."""
        def share_backends_vnid(topo_dir: Path) -> None:
            net = topo_dir / "network.yaml"
            write_atomic(net, net.read_text().replace("netid: 8229284", "netid: 12820696"))
            self.policies("deny-all")(topo_dir)

        topology = cluster.edit(share_backends_vnid)
        assert topology.vnid_of("analytics") == topology.vnid_of("backend")
        analytics = [p for p in cluster.pods if p.namespace == "analytics"]
        web = next(p for p in cluster.pods if p.namespace == "frontend")
        assert analytics and not any(policy_allows(topology, web, p, 8080) for p in analytics)
        assert self.check(cluster) == {True, False}
        assert check_explained(cluster, ports=(8080, 5432)) == {True, False}
