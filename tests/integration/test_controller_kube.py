"""`source = kubernetes` on real Open vSwitch: a real `osken-manager` fed over HTTP by the
API double (lab/kubeapi.py) keeps node2's br0 equal to `osdn render` of
the same objects (kept as files beside it), through pod adds and deletes, a NetNamespace's
netid change, cut watches, a 410 relist and an API outage, sending only the difference; and
`osdn export` of the API's objects renders what the bridge holds."""

from __future__ import annotations

import copy
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from lab.harness import (
    OSDN,
    ControllerProcess,
    attach_controller,
    copy_cluster,
    free_port,
    metric_total,
    normalized,
    reference_flows,
    scrape_metrics,
    wait_for_flows,
    wait_until,
)
from lab.kubeapi import ApiStore, KubeApiServer, api_objects
from tests.support.seed_node import (
    NEW_POD,
    NEW_POD_OFPORT,
    NEW_POD_PORT,
    NEW_SERVICE,
    NODE2,
    NODE2_DPID,
    NODE2_IP,
    NODE2_PORTS,
    SEED,
)

pytestmark = pytest.mark.ovs

BRIDGE = "br0"
PORTS = {**NODE2_PORTS, NEW_POD_PORT: NEW_POD_OFPORT}
_COOKIE = re.compile(r"cookie=0x[0-9a-f]+,\s*")


def flow_key(line: str) -> str:
    """A normalized flow line without its cookie and actions: what OVS keys a flow by."""
    return _COOKIE.sub("", line.split(" actions=", 1)[0])


def minimal_mods(before: list[str], after: list[str]) -> int:
    """Flow-mods turning `before` into `after`: one per added, deleted or changed flow."""
    old = {flow_key(line): line for line in before}
    new = {flow_key(line): line for line in after}
    return len(old.keys() ^ new.keys()) + sum(old[k] != new[k] for k in old.keys() & new.keys())


class Served:
    """node2's bridge, its controller (source = kubernetes), the API and its file mirror."""

    def __init__(self, tmp_path: Path, node_ovs: PrivateOvs, ref_ovs: PrivateOvs,
                 make_controller: Callable[..., ControllerProcess],
                 edit: Callable[[Path], None] = lambda cluster: None) -> None:
        self.cluster = copy_cluster(SEED, tmp_path / "cluster")
        edit(self.cluster)
        self.tmp_path, self.node_ovs, self.ref_ovs = tmp_path, node_ovs, ref_ovs
        self.api = KubeApiServer(ApiStore(api_objects(self.cluster)))
        self.kubeconfig = self.api.kubeconfig(tmp_path / "kubeconfig")
        add_node_bridge(node_ovs, BRIDGE, NODE2_DPID, dict(PORTS), host_ip=NODE2_IP,
                        port_name_prefix="")
        self.expected = reference_flows(self.cluster, NODE2, ref_ovs, PORTS)
        self.metrics_port = free_port()
        self.ctl = make_controller({"source": "kubernetes", "kubeconfig": self.kubeconfig,
                                    "node": NODE2, "metrics_port": self.metrics_port}).start()
        self.ctl.wait_listening()
        attach_controller(node_ovs, BRIDGE, self.ctl.port)
        wait_for_flows(node_ovs, BRIDGE, self.expected, self.ctl, what="first connect")
        self.ctl.wait_for_log(r"node2\.ocp\.cn.*in sync")

    def metric(self, name: str, **labels: str) -> float:
        return metric_total(scrape_metrics(f"http://127.0.0.1:{self.metrics_port}/metrics"),
                            name, **labels)

    def flow_mods(self) -> float:
        return self.metric("osdn_flow_mods_total", node=NODE2)

    def change(self, what: str, edit: Callable[[], None]) -> int:
        """`edit` the API and the file mirror alike; the bridge must follow with exactly the
        minimal flow-mods.  Returns them."""
        before, mods = self.expected, self.flow_mods()
        edit()
        self.expected = reference_flows(self.cluster, NODE2, self.ref_ovs, PORTS)
        wait_for_flows(self.node_ovs, BRIDGE, self.expected, self.ctl, what=what)
        time.sleep(1.0)  # anything more would arrive now
        sent = self.flow_mods() - mods
        assert sent == minimal_mods(before, self.expected), (what, sent)
        assert sorted(normalized(self.node_ovs, BRIDGE)) == sorted(self.expected)
        return int(sent)

    def api_object(self, kind: str, name: str) -> dict[str, Any]:
        return next(o for o in api_objects(self.cluster)[kind] if o["metadata"]["name"] == name)


@pytest.fixture
def served(tmp_path: Path, node_ovs: PrivateOvs, ref_ovs: PrivateOvs,
           make_controller: Callable[..., ControllerProcess]) -> Iterator[Served]:
    node = Served(tmp_path, node_ovs, ref_ovs, make_controller)
    yield node
    node.api.stop()


def edit_netid(cluster: Path, name: str, netid: int) -> None:
    path = cluster / "netnamespaces.yaml"
    documents = list(yaml.safe_load_all(path.read_text()))
    for document in documents:
        for item in document["items"] if document.get("kind") == "List" else [document]:
            if item["metadata"]["name"] == name:
                item["netid"] = netid
    path.write_text(yaml.safe_dump_all(documents))


def test_api_events_reach_the_bridge_as_the_minimal_difference(served: Served) -> None:
    pod_file = served.cluster / "new-pod.yaml"

    def add_pod() -> None:
        pod_file.write_text(NEW_POD)
        served.api.put(served.api_object("Pod", "refused-pod"))

    assert served.change("pod added", add_pod) > 0

    def change_netid() -> None:
        netns = copy.deepcopy(served.api_object("NetNamespace", "default"))
        netns["netid"] = 4242
        served.api.put(netns)
        edit_netid(served.cluster, "default", 4242)

    assert served.change("netid changed", change_netid) > 0

    def delete_pod() -> None:
        served.api.delete("Pod", "default/refused-pod")
        pod_file.unlink()

    assert served.change("pod deleted", delete_pod) > 0

    # every watch cut: they reconnect from their resourceVersion; nothing to send
    restarts = served.metric("osdn_kube_watch_restarts_total", reason="dropped")
    assert served.change("watches cut", served.api.cut_watches) == 0
    wait_until(lambda: served.metric("osdn_kube_watch_restarts_total", reason="dropped")
               >= restarts + 8, 15, 0.2, lambda: served.ctl.log_tail())
    assert served.metric("osdn_kube_relists_total", reason="gone") == 0

    # 410: the versions are compacted away while a Service is added; the relist of every
    # kind passes on the Service alone
    def service_while_compacted() -> None:
        served.api.compact()
        (served.cluster / "new-service.yaml").write_text(NEW_SERVICE)
        served.api.put(served.api_object("Service", "after-error-service"))

    assert served.change("410 relist", service_while_compacted) > 0
    wait_until(lambda: served.metric("osdn_kube_relists_total", reason="gone") >= 8, 15, 0.2,
               lambda: served.ctl.log_tail())

    # osdn export of the API's objects renders what the bridge holds
    exported = served.tmp_path / "export"
    subprocess.run([OSDN, "export", "--kubeconfig", str(served.kubeconfig), str(exported)],
                   check=True, capture_output=True, timeout=60)
    assert reference_flows(exported, NODE2, served.ref_ovs, PORTS) == served.expected
    live = subprocess.run([OSDN, "render", "--kubeconfig", str(served.kubeconfig), "--node",
                           NODE2, "--dns", "off"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    from_files = subprocess.run([OSDN, "render", str(exported), "--node", NODE2, "--dns",
                                 "off"], check=True, capture_output=True, text=True,
                                timeout=60).stdout
    assert live == from_files


def test_an_api_outage_leaves_the_bridge_alone_and_the_controller_reconnects(
        served: Served) -> None:
    mods = served.flow_mods()
    served.api.stop()
    time.sleep(3.0)
    assert served.ctl.running
    assert sorted(normalized(served.node_ovs, BRIDGE)) == sorted(served.expected)
    assert served.flow_mods() == mods
    assert served.metric("osdn_kube_watch_restarts_total", reason="dropped") >= 1
    served.api.start()  # the same port; the informers come back on their own

    def add_pod() -> None:
        (served.cluster / "new-pod.yaml").write_text(NEW_POD)
        served.api.put(served.api_object("Pod", "refused-pod"))

    assert served.change("pod added after the outage", add_pod) > 0
    assert served.ctl.running


POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-tomcat
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: tomcat
    ports:
    - protocol: TCP
      port: 8080
"""
TOMCAT_ON_NODE1 = "10.131.0.4"  # default/tomcat-7f646bb995-b8bhr


def networkpolicy(cluster: Path) -> None:
    path = cluster / "clusternetwork.yaml"
    path.write_text(path.read_text().replace("redhat/openshift-ovs-multitenant",
                                             "redhat/openshift-ovs-networkpolicy"))


def test_networkpolicy_watches_the_pods_its_policies_select_on_other_nodes(
        tmp_path: Path, node_ovs: PrivateOvs, ref_ovs: PrivateOvs,
        make_controller: Callable[..., ControllerProcess]) -> None:
    """Under networkpolicy node2 watches its own pods, and a namespace's pods on other nodes
    only while the namespace has a policy: a policy admitting default's tomcat (node1) to web
    (node2) brings tomcat's address onto node2's bridge; deleting it takes it away again."""
    served = Served(tmp_path, node_ovs, ref_ovs, make_controller, edit=networkpolicy)
    try:
        assert not any(TOMCAT_ON_NODE1 in line for line in served.expected)
        policy_file = served.cluster / "policy.yaml"

        def add_policy() -> None:
            policy_file.write_text(POLICY)
            served.api.put(yaml.safe_load(POLICY))

        assert served.change("policy added", add_policy) > 0
        assert any(f"nw_src={TOMCAT_ON_NODE1}" in line for line in served.expected)
        served.ctl.wait_for_log(r"Pod watch of namespace default \(it has a NetworkPolicy\) "
                                r"started")

        def delete_policy() -> None:
            served.api.delete("NetworkPolicy", "default/web-from-tomcat")
            policy_file.unlink()

        assert served.change("policy deleted", delete_policy) > 0
        assert not any(TOMCAT_ON_NODE1 in line for line in served.expected)
        served.ctl.wait_for_log(r"Pod watch of namespace default \(it has no NetworkPolicy\) "
                                r"stopped")
    finally:
        served.api.stop()
