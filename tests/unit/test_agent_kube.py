"""The node agent with `source = kubernetes` on a fake switch, fed by an in-memory list/watch
(lab/kubeapi.py's `ApiStore`), the informers driven by hand (their endless loops are not run
by the fake runtime): the bridge equals `compile_node` of the same objects as files, and each
API event reaches the bridge as the minimal difference.  The same over HTTP and real OVS:
tests/integration/test_controller_kube.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from prometheus_client import CollectorRegistry

from controller.agent import NodeAgent
from controller.config import ControllerSettings
from controller.metrics import Metrics
from lab.harness import copy_cluster
from lab.kubeapi import ApiStore, api_objects
from tests.support.fakeswitch import FakeSwitch, Tasks, fake_runtime
from tests.support.seed_node import NEW_POD, NEW_POD_OFPORT, NEW_POD_PORT, NODE2, NODE2_DPID, SEED
from tests.unit.test_agent import PORTS, Table_, expected, table


class KubeController:
    def __init__(self, api: ApiStore) -> None:
        self.api = api
        self.registry = CollectorRegistry()
        self.tasks = Tasks()
        self.agent = NodeAgent(
            ControllerSettings(source="kubernetes", node=NODE2, dns="off", audit_interval=0),
            Metrics(self.registry), fake_runtime(self.tasks), kube_client=api)
        self.agent.start()
        assert "event_loop" in self.tasks.loops

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def flow_mods(self) -> float:
        return sum(self.metric("osdn_flow_mods_total", node=NODE2, op=op)
                   for op in ("add", "modify", "delete"))

    def deliver(self, *kinds: str) -> None:
        """The informers of `kinds` take the API's news; the agent then applies them."""
        for kind in kinds:
            self.agent.watcher.informers[kind].watch_once()  # type: ignore[attr-defined]
        self.agent.check_topology()
        self.tasks.run()


def differences(before: Table_, after: Table_) -> int:
    """Flow-mods that turn `before` into `after`: one per added, deleted or changed key."""
    return len(before.keys() ^ after.keys()) + sum(
        before[key] != after[key] for key in before.keys() & after.keys())


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    return copy_cluster(SEED, tmp_path / "cluster")


def test_the_bridge_gets_what_the_files_give_and_each_event_its_difference(
        cluster: Path) -> None:
    ports = {**PORTS, NEW_POD_PORT: NEW_POD_OFPORT}
    api = ApiStore(api_objects(cluster))
    ctl = KubeController(api)
    switch = FakeSwitch(NODE2_DPID, ports)
    switch.connect(ctl.agent)
    ctl.tasks.run()
    before = expected(cluster, ports)
    assert table(switch) == before
    mods = ctl.flow_mods()

    # a pod added on node2
    (cluster / "new-pod.yaml").write_text(NEW_POD)
    [pod] = [p for p in api_objects(cluster)["Pod"] if p["metadata"]["name"] == "refused-pod"]
    api.put(pod)
    ctl.deliver("Pod")
    after = expected(cluster, ports)
    assert table(switch) == after
    assert ctl.flow_mods() - mods == differences(before, after) > 0
    mods, before = ctl.flow_mods(), after

    # a NetNamespace's netid changed
    objects = api_objects(cluster)
    netns = next(n for n in objects["NetNamespace"] if n["metadata"]["name"] == "default")
    changed = copy.deepcopy(netns)
    changed["netid"] = 4242
    api.put(changed)
    _edit_netid(cluster, "default", 4242)
    ctl.deliver("NetNamespace")
    after = expected(cluster, ports)
    assert table(switch) == after
    assert ctl.flow_mods() - mods == differences(before, after) > 0
    mods, before = ctl.flow_mods(), after

    # the pod deleted
    api.delete("Pod", "default/refused-pod")
    (cluster / "new-pod.yaml").unlink()
    ctl.deliver("Pod")
    after = expected(cluster, ports)
    assert table(switch) == after
    assert ctl.flow_mods() - mods == differences(before, after) > 0


def test_an_event_about_another_node_or_a_dropped_field_sends_nothing(cluster: Path) -> None:
    api = ApiStore(api_objects(cluster))
    ctl = KubeController(api)
    switch = FakeSwitch(NODE2_DPID, PORTS)
    switch.connect(ctl.agent)
    ctl.tasks.run()
    mods = ctl.flow_mods()
    pod = copy.deepcopy(api_objects(cluster)["Pod"][0])
    pod.setdefault("status", {})["phase"] = "Succeeded"  # a field the compiler never reads
    api.put(pod)
    ctl.deliver("Pod")
    assert ctl.agent.watcher.poll() is None
    assert ctl.flow_mods() == mods
    assert table(switch) == expected(cluster, PORTS)


def test_an_api_outage_leaves_the_bridge_alone(cluster: Path) -> None:
    api = ApiStore(api_objects(cluster))
    ctl = KubeController(api)
    switch = FakeSwitch(NODE2_DPID, PORTS)
    switch.connect(ctl.agent)
    ctl.tasks.run()
    want, mods = table(switch), ctl.flow_mods()
    api.down = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        ctl.agent.watcher.informers["Pod"].watch_once()  # type: ignore[attr-defined]
    ctl.agent.check_topology()
    ctl.tasks.run()
    assert table(switch) == want and ctl.flow_mods() == mods
    assert ctl.agent.topology is not None


def test_no_api_at_start_then_the_informers_bring_the_topology(cluster: Path) -> None:
    api = ApiStore(api_objects(cluster))
    api.down = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    ctl = KubeController(api)
    assert ctl.agent.topology is None
    assert ctl.metric("osdn_topology_loads_total", outcome="error") == 1
    switch = FakeSwitch(NODE2_DPID, PORTS)
    switch.connect(ctl.agent)
    ctl.tasks.run()
    assert not switch.flows  # nothing known, nothing sent
    api.down = None
    source: Any = ctl.agent.watcher
    assert "Pod" not in source.informers  # its selector waits for the plugin
    for informer in source.informers.values():  # what their loops do once the API is back
        informer.sync()
    ctl.agent.check_topology()
    assert ctl.agent.topology is None  # the pods are not listed yet...
    pods = source.informers["Pod"]  # ...but now their informer exists, node2's pods only
    assert pods.field_selector == f"spec.nodeName={NODE2}" and not pods.synced
    pods.sync()
    ctl.agent.check_topology()
    ctl.tasks.run()
    assert table(switch) == expected(cluster, PORTS)


def _edit_netid(cluster: Path, name: str, netid: int) -> None:
    path = cluster / "netnamespaces.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    for document in documents:
        items = document["items"] if document.get("kind") == "List" else [document]
        for item in items:
            if item["metadata"]["name"] == name:
                item["netid"] = netid
    path.write_text(yaml.safe_dump_all(documents))
