"""The Kubernetes source against the file source, on one generated cluster, in one process:
``python -m bench.run --source kubernetes`` (no Open vSwitch needed).

The cluster (`bench.generate`, as `bench.run` makes it) is written as files and also served,
as API objects, by the lab's API double (`lab.kubeapi.KubeApiServer`, a thread of this
process, its JSON encoded beforehand so that it costs the client nothing it would not cost
against a real API server's watch cache).  For one node it measures, each for both sources:

1. **initial sync**: files: `TopologyWatcher.poll()` (read, parse, validate every file);
   kubernetes: `KubeSource.poll()` (list every kind over HTTP in pages of 500 with the
   official client's connection pool, slim, parse, validate); then, for both, the node's flows
   compiled (`NodeCompiler.update`).  The kubernetes source is measured as the controller runs
   it (pods of the node only under subnet and multitenant) and, where that differs, with every
   pod (as under networkpolicy, and as `osdn check --kubeconfig` lists them);
2. **memory** the source holds after that sync (its cache and the topology; not the
   compiler's flows, which are the same for both): Python allocations still live after the
   sync, measured with tracemalloc in a second, untimed run;
3. **per-event latency**: a pod added on the node, that pod deleted, a NetNamespace's netid
   changed.  Files: from the file written to the watcher's reload and the compiler's changed
   flow keys; kubernetes: from the object put into the double to the informer's watch event,
   the source's new topology and the compiler's changed flow keys (without the agent's 50 ms
   batching wait).  Median of `--repeat` rounds.

After each step the two compilers' flows are compared, key by key: the sources must agree.
Figures are printed side by side, kubernetes / files as a ratio.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.common import Result, log, measured_host, timed, write_cluster
from controller.compiler import Settings
from controller.compiler.incremental import NodeCompiler
from controller.kube.client import KubeClient
from controller.kube.source import KubeSource
from controller.openflow.wire import encode_flow
from controller.watch import TopologyWatcher
from lab.kubeapi import ApiStore, KubeApiServer, api_objects
from topology.model import Topology

NO_DNS = Settings(resolver=lambda name: ())
__all__ = ["KubeBench", "table"]

EVENT_TIMEOUT = 60.0  # seconds an API change may take to reach the source


def _traced(function: Callable[[], Any]) -> tuple[Any, int]:
    """`function()` and the bytes it allocated that are still live afterwards."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        value = function()
        gc.collect()
        return value, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


class _Sources:
    """The file watcher and the API source, each with its node compiler."""

    def __init__(self, bench: KubeBench, every_pod: bool) -> None:
        self.bench = bench
        self.files = TopologyWatcher([bench.cluster])
        self.file_compiler = NodeCompiler(bench.node, NO_DNS, encode_flow)
        self.woken = threading.Event()
        self.client = KubeClient(str(bench.kubeconfig))
        self.api = KubeSource(self.client, None if every_pod else bench.node,
                              spawn=self._spawn, wake=self.woken.set)
        self.kube_compiler = NodeCompiler(bench.node, NO_DNS, encode_flow)
        self.threads: list[threading.Thread] = []

    def _spawn(self, loop: Callable[[], None]) -> None:
        thread = threading.Thread(target=loop, daemon=True, name="informer")
        thread.start()
        self.threads.append(thread)

    def file_topology(self) -> Topology:
        result = self.files.poll()
        if result is None or result.topology is None:
            raise RuntimeError(f"the files gave no topology: {result}")
        return result.topology

    def kube_topology(self) -> Topology:
        result = self.api.poll()
        if result is None or result.topology is None:
            raise RuntimeError(f"the API gave no topology: {result}")
        return result.topology

    def file_sync(self) -> int:
        self.file_compiler.update(self.file_topology())
        return len(self.file_compiler.take_dirty())

    def kube_sync(self) -> int:
        self.kube_compiler.update(self.kube_topology())
        return len(self.kube_compiler.take_dirty())

    def check_equal(self, what: str) -> None:
        if self.file_compiler.desired != self.kube_compiler.desired:
            file_keys, kube_keys = set(self.file_compiler.desired), \
                set(self.kube_compiler.desired)
            raise RuntimeError(f"{what}: the sources' flows differ: {len(file_keys - kube_keys)}"
                               f" only from files, {len(kube_keys - file_keys)} only from the "
                               f"API")

    def start(self) -> None:
        self.api.start()

    def kube_event(self, change: Callable[[], object]) -> tuple[float, int]:
        """Seconds from `change` (to the double) to the changed flow keys computed."""
        self.woken.clear()
        started = time.perf_counter()
        change()
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:
            if not self.woken.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("the API change did not reach the source")
            self.woken.clear()
            result = self.api.poll()
            if result is not None:
                break
        if result.topology is None:
            raise RuntimeError(f"the API gave no topology: {result.issues}")
        self.kube_compiler.update(result.topology)
        changed = len(self.kube_compiler.take_dirty())
        return time.perf_counter() - started, changed

    def file_event(self, change: Callable[[], object]) -> tuple[float, int]:
        """Seconds from the file written to the changed flow keys computed."""
        change()
        started = time.perf_counter()
        self.file_compiler.update(self.file_topology())
        changed = len(self.file_compiler.take_dirty())
        return time.perf_counter() - started, changed

    def stop(self) -> None:
        """The informers stopped, their watches ended as a server ends them, the threads
        joined."""
        self.api.stop()
        if self.threads:
            assert self.bench.server is not None
            deadline = time.monotonic() + 10
            while any(t.is_alive() for t in self.threads) and time.monotonic() < deadline:
                # again and again: an informer may have begun a watch just after the last
                # ending (between its `stopped` check and its request)
                self.bench.server.end_watches()
                for thread in self.threads:
                    thread.join(timeout=0.1)
        self.client.close()


class KubeBench:
    def __init__(self, plugin: str, params: dict[str, Any], work: Path, repeat: int,
                 seed: int) -> None:
        self.plugin, self.params, self.work, self.repeat, self.seed = \
            plugin, params, work, repeat, seed
        self.cluster = work / "cluster"
        self.kubeconfig = work / "kubeconfig"
        self.result = Result(plugin)
        self.server: KubeApiServer | None = None
        self.node = ""

    def prepare(self) -> None:
        write_cluster(self.plugin, self.params, self.seed, self.cluster)
        objects, seconds = timed(lambda: api_objects(self.cluster))
        store = ApiStore()
        for items in objects.values():
            for obj in items:
                store.put(obj, record=False, copied=False)
        del objects
        store.warm()
        self.server = KubeApiServer(store)
        self.server.kubeconfig(self.kubeconfig)
        log(f"{self.plugin}: {sum(map(len, store.objects.values()))} API objects served "
            f"({seconds:.1f} s to read them)")
        topology = TopologyWatcher([self.cluster]).poll()
        assert topology is not None and topology.topology is not None
        self.topology = topology.topology
        self.host = measured_host(self.topology)
        self.node = self.host.host
        self.result.node = self.node
        self.result.cluster = dict(self.params, pods=len(self.topology.pods),
                                   services=len(self.topology.services),
                                   network_policies=len(self.topology.network_policies),
                                   objects=sum(map(len, store.objects.values())))

    def variants(self) -> list[tuple[str, bool]]:
        """(label, every pod): the controller's view (the node's pods, and under
        networkpolicy the pods of namespaces with policies), and every pod."""
        return [("watched pods", False), ("every pod", True)]

    def sync(self) -> None:
        numbers = self.result.numbers
        for label, every_pod in self.variants():
            sources = _Sources(self, every_pod)
            gc.collect()
            _, file_s = timed(sources.file_sync)
            numbers["file_sync_s"] = min(file_s, numbers.get("file_sync_s", file_s))
            gc.collect()
            _, kube_s = timed(sources.kube_sync)
            sources.check_equal(f"sync ({label})")
            pods = len(sources.api.store("Pod"))
            numbers.setdefault("kube_sync_s", {})[label] = kube_s
            numbers.setdefault("pods_listed", {})[label] = pods
            self.result.flows = len(sources.file_compiler.desired)
            sources.stop()
            del sources
            log(f"{self.plugin}: sync: files {file_s:.2f} s, kubernetes "
                f"({label}: {pods} pods) {kube_s:.2f} s")
            gc.unfreeze()

    def memory(self) -> None:
        numbers = self.result.numbers
        for label, every_pod in self.variants():
            sources = _Sources(self, every_pod)
            kept, numbers["file_memory_b"] = _traced(sources.file_topology)
            del kept
            sources.files = TopologyWatcher([self.cluster])  # its cache freed
            kept, kube_b = _traced(sources.kube_topology)
            del kept
            numbers.setdefault("kube_memory_b", {})[label] = kube_b
            sources.stop()
            del sources
            log(f"{self.plugin}: memory: files {numbers['file_memory_b'] / 1e6:.1f} MB, "
                f"kubernetes ({label}) {kube_b / 1e6:.1f} MB")

    def events(self) -> None:
        """Pod added, pod deleted, netid changed, `repeat` rounds, as the controller runs."""
        assert self.server is not None
        sources = _Sources(self, False)
        sources.file_sync()
        sources.kube_sync()
        sources.start()
        records: dict[str, list[tuple[float, int, float, int]]] = {}
        try:
            for round_ in range(self.repeat):
                for what, to_api, to_files in self._changes(round_):
                    file_s, file_n = sources.file_event(to_files)
                    kube_s, kube_n = sources.kube_event(to_api)
                    sources.check_equal(what)
                    records.setdefault(what, []).append((file_s, file_n, kube_s, kube_n))
        finally:
            sources.stop()
            gc.unfreeze()
        self.result.numbers["events"] = {
            what: {"file_s": statistics.median(r[0] for r in rows),
                   "kube_s": statistics.median(r[2] for r in rows),
                   "file_flows": rows[0][1], "kube_flows": rows[0][3]}
            for what, rows in records.items()}
        for what, figures in self.result.numbers["events"].items():
            log(f"{self.plugin}: {what}: files {figures['file_s'] * 1000:.1f} ms, kubernetes "
                f"{figures['kube_s'] * 1000:.1f} ms ({figures['kube_flows']} flows changed)")

    def _changes(self, round_: int) -> list[tuple[str, Callable[[], object],
                                                   Callable[[], object]]]:
        assert self.server is not None
        server, topology, host = self.server, self.topology, self.host
        local = [p for p in topology.pods if p.node == host.host and p.interface]
        used = {p.ip for p in topology.pods}
        ip = next(ip for ip in host.subnet.hosts() if ip != host.gateway and ip not in used)
        ofport = max(p.ofport or 0 for p in local) + 1
        name = f"bench-pod-{round_}"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": local[0].namespace,
                            "uid": f"bench-{round_}", "labels": {"app": "bench"},
                            "annotations": {"osdn.dev/interface": f"vethbench{round_:04d}",
                                            "osdn.dev/ofport": str(ofport)}},
               "spec": {"nodeName": host.host}, "status": {"podIP": str(ip)}}
        pod_file = self.cluster / f"{name}.yaml"
        key = f"{local[0].namespace}/{name}"
        netnamespace, netid = self._netid_change(round_)
        return [
            ("pod added", lambda: server.put(pod),
             lambda: _write(pod_file, yaml.safe_dump(pod))),
            ("pod deleted", lambda: server.delete("Pod", key), pod_file.unlink),
            ("netid changed", lambda: server.put(_with_netid(
                server.store.objects["NetNamespace"][netnamespace], netid)),
             lambda: self._write_netid(netnamespace, netid)),
        ]

    def _netid_change(self, round_: int) -> tuple[str, int]:
        """A NetNamespace with pods on the node and a netid of its own, and a new netid."""
        assert self.server is not None
        stored = self.server.store.objects["NetNamespace"]
        counts = Counter(obj.get("netid") for obj in stored.values())
        local = sorted({p.namespace for p in self.topology.pods
                        if p.node == self.node and p.interface})
        plain = [ns for ns in local if ns in stored and not any(  # the master keeps its netid
            "change-network" in a for a in stored[ns]["metadata"].get("annotations") or {})]
        own = [ns for ns in plain if stored[ns].get("netid")
               and counts[stored[ns]["netid"]] == 1]
        name = (own or plain)[0]  # a small cluster: any
        taken = {n for n in counts if isinstance(n, int)}
        netid = max(taken) + 1 + round_
        return name, netid

    def _write_netid(self, name: str, netid: int) -> None:
        path = self.cluster / "netnamespaces.yaml"
        document = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        for item in document["items"]:
            if item["metadata"]["name"] == name:
                item["netid"] = netid
        _write(path, yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False))

    def run(self) -> Result:
        try:
            self.prepare()
            self.sync()
            self.memory()
            self.events()
        finally:
            if self.server is not None:
                self.server.stop()
            gc.unfreeze()
        return self.result


def _with_netid(obj: dict[str, Any], netid: int) -> dict[str, Any]:
    return dict(obj, netid=netid)


def _write(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


# ------------------------------------------------------------------------------ report

def table(results: list[Result]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell: Callable[[Result], str]) -> None:
        rows.append((label, [cell(r) for r in results]))

    def ratio(kube: float, files: float) -> str:
        return f"{kube / files:.2f}" if files else "-"

    row("cluster (nodes/namespaces/services/pods)", lambda r: (
        f"{r.cluster['nodes']}/{r.cluster['namespaces']}/{r.cluster['services']}/"
        f"{r.cluster['pods']}"))
    row("API objects served; flows on the node",
        lambda r: f"{r.cluster['objects']}; {r.flows}")
    row("1. initial sync + compile: files", lambda r: f"{r.numbers['file_sync_s']:.2f} s")
    row("2. memory held by the source: files",
        lambda r: f"{r.numbers['file_memory_b'] / 1e6:.1f} MB")
    for label in ("watched pods", "every pod"):
        if not any(label in r.numbers["kube_sync_s"] for r in results):
            continue

        def sync(r: Result, label: str = label) -> str:
            kube = r.numbers["kube_sync_s"].get(label)
            if kube is None:
                return "n/a"
            return (f"{kube:.2f} s ({r.numbers['pods_listed'][label]} pods), ratio "
                    f"{ratio(kube, r.numbers['file_sync_s'])}")

        def memory(r: Result, label: str = label) -> str:
            kube = r.numbers["kube_memory_b"].get(label)
            if kube is None:
                return "n/a"
            return f"{kube / 1e6:.1f} MB, ratio {ratio(kube, r.numbers['file_memory_b'])}"

        row(f"1. initial sync + compile: kubernetes, {label}", sync)
        row(f"2. memory held by the source: kubernetes, {label}", memory)
    for what in ("pod added", "pod deleted", "netid changed"):
        def event(r: Result, what: str = what) -> str:
            figures = r.numbers["events"][what]
            return (f"{figures['file_s'] * 1000:.1f} / {figures['kube_s'] * 1000:.1f} ms, "
                    f"ratio {ratio(figures['kube_s'], figures['file_s'])}, "
                    f"{figures['kube_flows']} flows")
        row(f"3. {what}: files / kubernetes (median)", event)
    width = max(len(label) for label, _ in rows)
    widths = [max(len(r.plugin), *(len(cells[i]) for _, cells in rows))
              for i, r in enumerate(results)]
    lines = ["| " + "metric".ljust(width) + " | " + " | ".join(
        r.plugin.ljust(w) for r, w in zip(results, widths, strict=True)) + " |",
             "|" + "-" * (width + 2) + "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for label, cells in rows:
        lines.append("| " + label.ljust(width) + " | " + " | ".join(
            c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
    return "\n".join(lines)


