"""The programming benchmark: one node of a generated cluster, the controller against
`ovs-ofctl --bundle`, on a private Open vSwitch.

    python -m bench.run                      # multitenant, networkpolicy and subnet
    python -m bench.run --plugin multitenant --nodes 1000 --namespaces 2000 \\
        --services 10000 --pods-per-node 110 --json bench.json

For each plugin it generates a cluster (`bench.generate`, pods in one file per node, minimal
detail) and measures, for one node:

1. full programming of an empty bridge: the controller (`osken-manager controller.app`,
   topology loaded and the node's flows compiled before the bridge connects), from the switch's
   connection to the commit barrier of its bundle, as the controller logs it; against
   `ovs-ofctl -O OpenFlow13 --bundle add-flows` of the same `osdn render` text into an empty
   bridge of the same OVS, process start to exit.  Median of `--repeat` runs each; the bridge
   is then checked equal to the ovs-ofctl one, flow for flow;
2. load + validate of the whole topology, and compiling the node's flows (`compile_node`, as
   `osdn render` does, and `NodeCompiler`, as the controller does), in this process;
3. a controller restart (SIGKILL, start) on the unchanged bridge: connect to in sync, and the
   flow-mods sent;
4. incremental updates through the topology directory (the controller watches it): pods added
   (their port first), a Service, a node (HostSubnet), under multitenant a namespace joining
   another, under networkpolicy a NetworkPolicy: flow-mods sent, the files re-read, the time to
   read and validate the changed topology, and the time from the change being read to the
   bridge holding it (as the controller logs them); at the end the bridge is checked equal to
   a full compile of the final topology;
5. the controller's peak memory (VmHWM).

Everything runs in a temporary directory (private OVS daemons, controller, cluster files),
removed at the end.  Results are printed side by side and, with --json, written as JSON.

    python -m bench.run --source kubernetes [--plugin P] [scale options]

measures instead the Kubernetes source against the file source on the same generated cluster,
served by the lab's API double in this process (`bench.kube`; no OVS): initial sync, memory
held, and the latency of a pod added, a pod deleted and a netid changed, as ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from bench.common import Result, log, measured_host, timed, write_cluster
from bench.kube import KubeBench
from bench.kube import table as kube_table
from controller.compiler import Settings, compile_node
from controller.compiler.incremental import NodeCompiler
from controller.openflow.wire import encode_flow
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from controller.reconcile import diff
from lab.harness import (
    ControllerProcess,
    add_pod_port,
    attach_controller,
    detach_controller,
    write_atomic,
)
from lab.ofclient import OfClient
from topology.load import FileCache, load_topology
from topology.model import HostSubnet, Topology

NO_DNS = Settings(resolver=lambda name: ())
IN_SYNC = re.compile(
    r"(?P<host>\S+) \(dpid 0x[0-9a-f]+\): in sync, (?P<mods>\d+) flow-mods \((?P<add>\d+) add, "
    r"(?P<modify>\d+) modify, (?P<delete>\d+) delete, (?P<foreign>\d+) foreign\) after "
    r"(?P<reason>.+?); (?P<seconds>[0-9.]+) s from .+? to in sync \(compile "
    r"(?P<compile>[0-9.]+) s, bundle (?P<bundle>[0-9.]+) s, (?P<flows>\d+) flows\)")
LOADED = re.compile(r"topology loaded: .*\((?P<files>.*)\); read and checked in "
                    r"(?P<seconds>[0-9.]+) s")
COMPILED = re.compile(r": (?P<flows>\d+) flows compiled in (?P<seconds>[0-9.]+) s")

DEFAULTS = {  # plugin -> generator parameters
    "multitenant": dict(nodes=1000, namespaces=2000, services=10000, pods_per_node=110),
    "networkpolicy": dict(nodes=200, namespaces=400, services=2000, pods_per_node=110,
                          policies_per_namespace=3),
    "subnet": dict(nodes=1000, namespaces=2000, services=10000, pods_per_node=110),
}


# ------------------------------------------------------------------------------ one plugin

class PluginBench:
    def __init__(self, plugin: str, params: dict[str, Any], work: Path, repeat: int,
                 seed: int) -> None:
        self.plugin, self.params, self.work, self.repeat, self.seed = \
            plugin, params, work, repeat, seed
        self.cluster = work / "cluster"
        self.result = Result(plugin)
        self.ovs: PrivateOvs | None = None
        self.controller: ControllerProcess | None = None

    # -- the cluster, in this process -----------------------------------------------------
    def prepare(self) -> None:
        size = write_cluster(self.plugin, self.params, self.seed, self.cluster)
        self.cache = FileCache()
        topology, load_s = timed(load_topology, [self.cluster], cache=self.cache)
        gc.freeze()
        self.topology: Topology = topology
        self.host: HostSubnet = measured_host(topology)
        node = self.host.host
        self.pod_ports = {p.interface: p.ofport for p in topology.pods
                          if p.node == node and p.interface and p.ofport}
        reference, render_s = timed(compile_node, topology, node, NO_DNS)
        compiler = NodeCompiler(node, NO_DNS, encode_flow)
        _, build_s = timed(compiler.update, topology)
        text, text_s = timed(reference.to_ofctl)
        self.flows_file = self.work / "node.flows"
        self.flows_file.write_text(text)
        r = self.result
        r.node, r.flows = node, len(reference.flows)
        r.cluster = dict(self.params, files=len(list(self.cluster.rglob("*.yaml"))),
                         megabytes=round(size / 1e6, 1), pods=len(topology.pods),
                         services=len(topology.services),
                         network_policies=len(topology.network_policies))
        r.numbers["load_validate_s"] = load_s
        r.numbers["compile_node_s"] = render_s
        r.numbers["node_compiler_build_s"] = build_s
        r.numbers["render_text_s"] = text_s
        log(f"{self.plugin}: {len(topology.pods)} pods loaded in {load_s:.1f} s; {node}: "
            f"{len(reference.flows)} flows, compile_node {render_s:.2f} s, NodeCompiler "
            f"{build_s:.2f} s")

    # -- OVS ------------------------------------------------------------------------------
    def start_ovs(self) -> None:
        self.ovs = PrivateOvs(self.work / "ovs").start()
        vxlan = self.topology.cluster_network.vxlan_port
        add_node_bridge(self.ovs, "br0", self.host.datapath_id, self.pod_ports,
                        vxlan_port=vxlan, host_ip=str(self.host.host_ip), port_name_prefix="")
        add_node_bridge(self.ovs, "ref", 0xFEED, self.pod_ports, vxlan_port=vxlan,
                        host_ip="192.0.2.1", port_name_prefix="r-")
        if self.host.egress_ips:  # table 100 carries tun0's MAC, which br0's tun0 decides
            flows = compile_node(self.topology, self.host.host, NO_DNS,
                                 tun0_mac=self.tun0_mac()).to_ofctl()
            self.flows_file.write_text(flows)

    def tun0_mac(self) -> str:
        """br0's tun0 MAC (a dummy port's own), which the controller writes into table 100."""
        assert self.ovs is not None
        return self.ovs.vsctl("get", "Interface", "tun0", "mac_in_use").strip().strip('"')

    def ovs_ofctl(self) -> float:
        """`ovs-ofctl --bundle add-flows` of the rendered flows into the empty ref bridge."""
        assert self.ovs is not None
        self.ovs.ofctl("ref", "del-flows")
        _, seconds = timed(self.ovs.ofctl, "ref", "--bundle", "add-flows", str(self.flows_file))
        return seconds

    # -- the controller -------------------------------------------------------------------
    def start_controller(self) -> ControllerProcess:
        config = {"topology": self.cluster, "node": self.host.host, "watch": True,
                  "watch_interval": 0.1, "dns": "off"}
        self.controller = ControllerProcess(config, self.work / "controller")
        self.controller.start()
        self.controller.wait_listening(timeout=600)
        return self.controller

    def in_sync_lines(self) -> list[re.Match[str]]:
        assert self.controller is not None
        return [m for line in self.controller.log_text().splitlines()
                if (m := IN_SYNC.search(line))]

    def wait_in_sync(self, count: int, reason: str, timeout: float = 120) -> re.Match[str]:
        """The first "in sync" line after the first `count` ones whose reason starts with
        `reason`."""
        assert self.controller is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.in_sync_lines()[count:]
            found = [m for m in lines if m["reason"].startswith(reason)]
            if found:
                return found[0]
            if not self.controller.running:
                raise RuntimeError("controller exited\n" + self.controller.log_tail(40))
            time.sleep(0.02)
        raise TimeoutError(f"no 'in sync ... after {reason}' line\n"
                           + self.controller.log_tail(40))

    def flow_count(self, bridge: str) -> int:
        assert self.ovs is not None
        with OfClient(self.ovs.mgmt_target(bridge), timeout=120) as client:
            return len(client.dump_flows())

    def full_programming(self) -> tuple[list[float], list[re.Match[str]]]:
        """ovs-ofctl and the controller in turn (so that both see the same machine load),
        `repeat` times; the controller's bridge emptied before each run by removing its
        controller (OVS flushes a bridge's flows when its last controller goes)."""
        assert self.ovs is not None and self.controller is not None
        ofctl, runs = [], []
        for attempt in range(self.repeat):
            ofctl.append(self.ovs_ofctl())
            if attempt:
                detach_controller(self.ovs, "br0")
                if self.flow_count("br0"):
                    raise RuntimeError("br0 not empty after detaching its controller")
            seen = len(self.in_sync_lines())
            attach_controller(self.ovs, "br0", self.controller.port)
            runs.append(self.wait_in_sync(seen, "connected"))
            log(f"{self.plugin}: ovs-ofctl {ofctl[-1]:.3f} s, controller {runs[-1]['seconds']} s")
        if sorted(self.ovs.dump_flows("br0")) != sorted(self.ovs.dump_flows("ref")):
            raise RuntimeError("the controller's bridge differs from ovs-ofctl's")
        if len(self.ovs.dump_flows("ref")) != self.result.flows:
            raise RuntimeError("ovs-ofctl did not load every flow")
        return ofctl, runs

    def restart(self) -> tuple[re.Match[str], float]:
        assert self.controller is not None
        self.controller.kill(signal.SIGKILL)
        started = time.monotonic()
        self.controller.start()
        line = self.wait_in_sync(0, "connected", timeout=900)
        return line, time.monotonic() - started

    def peak_memory_mb(self) -> float:
        assert self.controller is not None and self.controller.pid is not None
        for line in Path(f"/proc/{self.controller.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    # -- incremental changes --------------------------------------------------------------
    def change(self, what: str, apply: Any) -> dict[str, Any]:
        assert self.controller is not None
        seen_sync = len(self.in_sync_lines())
        seen_loads = len(self.controller.log_lines(LOADED.pattern))
        written = time.monotonic()
        apply()
        line = self.wait_in_sync(seen_sync, "topology changed")
        wall = time.monotonic() - written
        loads = [LOADED.search(text) for text in self.controller.log_lines(LOADED.pattern)]
        load = loads[seen_loads] if len(loads) > seen_loads else None
        files = [] if load is None else [Path(f).name for f in load["files"].split(", ")]
        record = {"change": what, "flow_mods": int(line["mods"]),
                  "add": int(line["add"]), "modify": int(line["modify"]),
                  "delete": int(line["delete"]), "files_read": files,
                  "read_validate_s": None if load is None else float(load["seconds"]),
                  "change_to_in_sync_s": float(line["seconds"]),
                  "compile_s": float(line["compile"]), "bundle_s": float(line["bundle"]),
                  "write_to_in_sync_s": wall}
        log(f"{self.plugin}: {what}: {record['flow_mods']} flow-mods, read+check "
            f"{record['read_validate_s']} s, change->in sync {record['change_to_in_sync_s']} s")
        return record

    def incremental(self) -> list[dict[str, Any]]:
        assert self.ovs is not None and self.controller is not None
        topology, host = self.topology, self.host
        records = []
        local = [p for p in topology.pods if p.node == host.host and p.interface]
        namespace = local[0].namespace
        used_ips = {p.ip for p in topology.pods}
        free_ips = (ip for ip in host.subnet.hosts() if ip != host.gateway and ip not in used_ips)
        ofport = max(self.pod_ports.values())
        for n in range(1, 4):
            interface, ofport, ip = f"vethbench{n:04d}", ofport + 1, next(free_ips)
            seen = len(self.in_sync_lines())
            add_pod_port(self.ovs, "br0", interface, ofport)
            self.wait_in_sync(seen, f"port {interface} changed")
            self.pod_ports[interface] = ofport
            pod = POD.format(name=f"bench-pod-{n}", namespace=namespace, interface=interface,
                             ofport=ofport, node=host.host, ip=ip)
            records.append(self.change("pod added", lambda pod=pod, n=n: write_atomic(
                self.cluster / f"bench-pod-{n}.yaml", pod)))
        service_ips = {s.cluster_ip for s in topology.services}
        network = topology.cluster_network.service_network
        cluster_ip = next(IPv4Address(int(network.broadcast_address) - k) for k in range(1, 1000)
                          if IPv4Address(int(network.broadcast_address) - k) not in service_ips)
        service = SERVICE.format(namespace=namespace, ip=cluster_ip)
        records.append(self.change("service added", lambda: write_atomic(
            self.cluster / "bench-service.yaml", service)))
        hostsubnet = HOSTSUBNET.format(**self._free_node())
        records.append(self.change("node added", lambda: write_atomic(
            self.cluster / "bench-node.yaml", hostsubnet)))
        if self.plugin == "multitenant":
            records.append(self.change("namespace joined", self._join))
        if self.plugin == "networkpolicy":
            policy = POLICY.format(namespace=namespace)
            records.append(self.change("policy added", lambda: write_atomic(
                self.cluster / "bench-policy.yaml", policy)))
        return records

    def _free_node(self) -> dict[str, Any]:
        topology = self.topology
        used = {hs.subnet for hs in topology.host_subnets}
        subnet: IPv4Network | None = None
        for entry in topology.cluster_network.networks:
            prefix = 32 - entry.host_subnet_length
            subnet = next((s for s in entry.cidr.subnets(new_prefix=prefix)
                           if not any(s.overlaps(u) for u in used)), None)
            if subnet is not None:
                break
        if subnet is None:
            raise RuntimeError("no free HostSubnet left in the cluster networks")
        ips = {hs.host_ip for hs in topology.host_subnets}
        host_ip = max(ips) + 1
        while host_ip in ips:
            host_ip += 1
        return {"name": "bench-node-1.example", "ip": host_ip, "subnet": subnet}

    def _join(self) -> None:
        """A namespace with pods on this node joins another one's network."""
        topology, node = self.topology, self.host.host
        vnids = {nn.name: nn.netid for nn in topology.net_namespaces}
        shared = {v for v, n in Counter(vnids.values()).items() if n > 1}
        local = {p.namespace for p in topology.pods if p.node == node and p.interface}
        candidates = sorted(ns for ns in local if vnids.get(ns) and vnids[ns] not in shared)
        if len(candidates) < 2:
            raise SystemExit("bench: the cluster is too small for the 'namespace joined' step "
                             "(two namespaces of their own with pods on the node); raise "
                             "--namespaces or --pods-per-node")
        joiner, target = candidates[0], candidates[1]
        path = self.cluster / "netnamespaces.yaml"
        document = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        for item in document["items"]:
            if item["metadata"]["name"] == joiner:
                annotations = item["metadata"].setdefault("annotations", {})
                annotations["pod.network.openshift.io/multitenant.change-network"] = \
                    f"join:{target}"
        write_atomic(path, yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False))

    def verify(self) -> None:
        """The bridge equals a full compile of the final topology (with its real ports)."""
        assert self.ovs is not None
        topology = load_topology([self.cluster], cache=self.cache)
        ports = {name: port for name, port in self.ovs.ofports("br0").items() if port > 2}
        flows = compile_node(topology, self.host.host, NO_DNS, port_numbers=ports,
                             tun0_mac=self.tun0_mac()).flows
        with OfClient(self.ovs.mgmt_target("br0"), timeout=120) as client:
            plan = diff(flows, client.dump_flows())
        if plan:
            raise RuntimeError(f"bridge differs from a full compile after the changes: "
                               f"{len(plan.adds)} missing, {len(plan.modifies)} different, "
                               f"{len(plan.deletes) + len(plan.foreign)} extra")
        self.result.numbers["final_flows"] = len(flows)

    # -- all of it ------------------------------------------------------------------------
    def run(self) -> Result:
        numbers = self.result.numbers
        try:
            self.prepare()
            self.start_ovs()
            controller = self.start_controller()
            compiled = controller.wait_for_log(COMPILED.pattern, timeout=60)
            found = COMPILED.search(compiled[0])
            assert found is not None, compiled[0]
            numbers["controller_precompile_s"] = float(found["seconds"])
            ofctl, runs = self.full_programming()
            numbers["ovs_ofctl_s"] = ofctl
            numbers["controller_program_s"] = [float(m["seconds"]) for m in runs]
            numbers["controller_bundle_s"] = [float(m["bundle"]) for m in runs]
            numbers["program_flow_mods"] = [int(m["mods"]) for m in runs]
            numbers["ratio"] = statistics.median(numbers["controller_program_s"]) \
                / statistics.median(ofctl)
            log(f"{self.plugin}: controller: " + ", ".join(
                f"{t:.3f}" for t in numbers["controller_program_s"]) + " s; ratio "
                f"{numbers['ratio']:.2f}")
            line, wall = self.restart()
            numbers["restart_in_sync_s"] = float(line["seconds"])
            numbers["restart_flow_mods"] = int(line["mods"])
            numbers["restart_compile_s"] = float(line["compile"])
            numbers["restart_process_to_in_sync_s"] = wall
            log(f"{self.plugin}: restart: {line['mods']} flow-mods, {line['seconds']} s from "
                f"connect to in sync ({wall:.1f} s from process start)")
            numbers["incremental"] = self.incremental()
            self.verify()
            numbers["controller_peak_memory_mb"] = self.peak_memory_mb()
        finally:
            if self.controller is not None:
                self.controller.stop()
            if self.ovs is not None:
                self.ovs.stop()
            gc.unfreeze()
        return self.result


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  annotations:
    osdn.dev/interface: {interface}
    osdn.dev/ofport: "{ofport}"
  labels:
    app: bench
spec:
  nodeName: {node}
status:
  podIP: {ip}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: bench-service
  namespace: {namespace}
spec:
  clusterIP: {ip}
  ports:
  - {{name: http, port: 8080, protocol: TCP}}
  - {{name: dns, port: 53, protocol: UDP}}
  selector:
    app: bench
"""
HOSTSUBNET = """\
apiVersion: network.openshift.io/v1
kind: HostSubnet
metadata:
  name: {name}
host: {name}
hostIP: {ip}
subnet: {subnet}
"""
POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: bench-allow-web
  namespace: {namespace}
spec:
  podSelector:
    matchLabels:
      app: bench
  ingress:
  - ports:
    - {{port: 8080, protocol: TCP}}
    from:
    - podSelector: {{}}
"""


# ------------------------------------------------------------------------------ report

def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _changes(result: Result, what: str) -> list[dict[str, Any]]:
    return [c for c in result.numbers.get("incremental", []) if c["change"] == what]


def table(results: list[Result]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell: Any) -> None:
        rows.append((label, [cell(r) for r in results]))

    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds * 1000:.1f} ms"

    def change_cells(what: str) -> None:
        def fmt(r: Result) -> str:
            found = _changes(r, what)
            if not found:
                return "n/a"
            mods = "/".join(str(c["flow_mods"]) for c in found)
            return (f"{mods} mods, {ms(max(c['change_to_in_sync_s'] for c in found))}")
        row(f"{what}: flow-mods, change read -> in sync", fmt)

    row("cluster (nodes/namespaces/services/pods)", lambda r: (
        f"{r.cluster['nodes']}/{r.cluster['namespaces']}/{r.cluster['services']}/"
        f"{r.cluster['pods']}"))
    row("topology files, MB", lambda r: f"{r.cluster['files']}, {r.cluster['megabytes']}")
    row("flows on the node", lambda r: str(r.flows))
    row("1. ovs-ofctl --bundle add-flows (median)",
        lambda r: f"{_median(r.numbers['ovs_ofctl_s']):.3f} s")
    row("1. controller: connect -> all flows (median)",
        lambda r: f"{_median(r.numbers['controller_program_s']):.3f} s")
    row("1. ratio controller / ovs-ofctl", lambda r: f"{r.numbers['ratio']:.2f}")
    row("2. load + validate whole topology", lambda r: f"{r.numbers['load_validate_s']:.1f} s")
    row("2. compile node (compile_node, render)",
        lambda r: f"{r.numbers['compile_node_s']:.2f} s")
    row("2. compile node (NodeCompiler, encoded)",
        lambda r: f"{r.numbers['node_compiler_build_s']:.2f} s")
    row("3. restart: connect -> in sync", lambda r: f"{r.numbers['restart_in_sync_s']:.3f} s")
    row("3. restart: flow-mods", lambda r: str(r.numbers["restart_flow_mods"]))
    for what in ("pod added", "service added", "node added", "namespace joined",
                 "policy added"):
        if any(_changes(r, what) for r in results):
            change_cells(what)
    row("4. files re-read per change", lambda r: str(max(
        (len(c["files_read"]) for c in r.numbers["incremental"]), default=0)))
    row("4. read + validate after a change (max)", lambda r: ms(max(
        c["read_validate_s"] or 0 for c in r.numbers["incremental"])))
    row("5. controller peak memory",
        lambda r: f"{r.numbers['controller_peak_memory_mb']:.0f} MB")
    width = max(len(label) for label, _ in rows)
    widths = [max(len(r.plugin), *(len(cells[i]) for _, cells in rows))
              for i, r in enumerate(results)]
    lines = ["| " + "metric".ljust(width) + " | " + " | ".join(
        r.plugin.ljust(w) for r, w in zip(results, widths, strict=False)) + " |",
             "|" + "-" * (width + 2) + "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for label, cells in rows:
        lines.append("| " + label.ljust(width) + " | " + " | ".join(
            c.ljust(w) for c, w in zip(cells, widths, strict=False)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", choices=[*DEFAULTS, "all"], default="all")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--namespaces", type=int)
    parser.add_argument("--services", type=int)
    parser.add_argument("--pods-per-node", type=int)
    parser.add_argument("--policies-per-namespace", type=int)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each full programming")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--source", choices=["files", "kubernetes"], default="files",
                        help="kubernetes: the API source against the file source, served by "
                             "the lab's API double (bench/kube.py; no OVS); --repeat: rounds "
                             "of its events")
    args = parser.parse_args(argv)
    plugins = list(DEFAULTS) if args.plugin == "all" else [args.plugin]
    overrides = {k: v for k, v in (("nodes", args.nodes), ("namespaces", args.namespaces),
                                   ("services", args.services),
                                   ("pods_per_node", args.pods_per_node),
                                   ("policies_per_namespace", args.policies_per_namespace))
                 if v is not None}
    work = Path(tempfile.mkdtemp(prefix="osdn-bench-"))
    results: list[Any] = []
    started = time.monotonic()
    bench = KubeBench if args.source == "kubernetes" else PluginBench
    try:
        for plugin in plugins:
            params = dict(DEFAULTS[plugin], **overrides)
            if plugin != "networkpolicy":
                params.pop("policies_per_namespace", None)
            results.append(bench(plugin, params, work / plugin, args.repeat, args.seed).run())
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n{command.strip()}  ({elapsed:.0f} s, {os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{_ovs_version() if args.source == 'files' else 'no OVS'})\n")
    print(kube_table(results) if args.source == "kubernetes" else table(results))
    if args.json:
        data = {"command": command.strip(), "seconds": elapsed, "cpus": os.cpu_count(),
                "python": platform.python_version(), "ovs": _ovs_version(),
                "results": {r.plugin: {"cluster": r.cluster, "node": r.node, "flows": r.flows,
                                       **r.numbers} for r in results}}
        Path(args.json).write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0


def _ovs_version() -> str:
    try:
        out = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except OSError:
        return "OVS ?"
    return out.splitlines()[0].replace("ovs-vswitchd (Open vSwitch)", "OVS").strip() \
        if out else "OVS ?"


if __name__ == "__main__":
    sys.exit(main())
