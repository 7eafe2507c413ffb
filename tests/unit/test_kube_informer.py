"""The informer (list, watch, bookmarks, 410 relist with the difference only, reconnects with
backoff), slimming, and the API source's topology against the file loader's, on an in-memory
list/watch (lab/kubeapi.py's `ApiStore`).  The same behaviour over real HTTP, against the API
double, is in tests/unit/test_kube_client.py and tests/unit/test_kube_api.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import urllib3

from controller.compiler import Settings, compile_node
from controller.kube.client import ApiError, Gone
from controller.kube.informer import Backoff, Informer
from controller.kube.slim import slim
from controller.kube.source import KubeSource, pod_selector
from lab.kubeapi import ApiStore, api_objects
from tests.golden.update import CLUSTERS
from topology.load import load_topology
from topology.model import Plugin

NO_DNS = Settings(resolver=lambda name: ())


class Stop(Exception):
    """Ends an informer's run loop from its sleep (the test's way out)."""


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, list[str]]] = []
        self.relists: list[tuple[str, str]] = []
        self.restarts: list[tuple[str, str]] = []
        self.invalid: list[str] = []
        self.objects: dict[str, int] = {}
        self.sleeps: list[float] = []

    def __call__(self, kind: str, keys: list[str]) -> None:
        self.changes.append((kind, keys))

    def count_relist(self, kind: str, reason: str) -> None:
        self.relists.append((kind, reason))

    def count_watch_restart(self, kind: str, reason: str) -> None:
        self.restarts.append((kind, reason))

    def count_invalid_object(self, kind: str) -> None:
        self.invalid.append(kind)

    def set_kube_objects(self, kind: str, count: int) -> None:
        self.objects[kind] = count

    def sleep_then_stop_after(self, count: int) -> Any:
        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            if len(self.sleeps) >= count:
                raise Stop
        return sleep


def pod(name: str, node: str, ip: str, namespace: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "annotations": {"kubernetes.io/created-by": "x" * 100}},
            "spec": {"nodeName": node, "containers": [
                {"name": "c", "image": "registry/app:1", "env": [{"name": "A", "value": "b"}],
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"podIP": ip, "phase": "Running", "conditions": [{"type": "Ready"}]}}


def run_until_stop(informer: Informer) -> None:
    with pytest.raises(Stop):
        informer.list_watch_loop()


def test_list_then_watch_applies_events_and_follows_bookmarks() -> None:
    api = ApiStore({"Pod": [pod("a", "n1", "10.1.0.2")]})
    seen = Recorder()
    informer = Informer(api, "Pod", seen, metrics=seen, sleep=seen.sleep_then_stop_after(1),
                        backoff=Backoff(random=lambda: 1.0))
    informer.sync()
    api.put(pod("b", "n1", "10.1.0.3"))
    api.delete("Pod", "default/a")
    api.fail_next(urllib3.exceptions.ProtocolError("connection broken"), after_events=2)
    run_until_stop(informer)
    assert set(informer.store) == {"default/b"}
    assert seen.changes == [("Pod", ["default/a"]), ("Pod", ["default/b"]),
                            ("Pod", ["default/a"])]  # the list, then one change per event
    assert seen.relists == [("Pod", "initial")]  # the dropped watch did not relist
    assert seen.restarts == [("Pod", "dropped")]
    # the next watch resumes from the last event's version
    assert [entry for entry in api.log if entry[0] == "watch"] == [("watch", "Pod", None, "2")]
    assert informer.resource_version == str(api.version)


def test_a_bookmark_moves_the_resource_version_and_a_closed_watch_resumes_at_once() -> None:
    api = ApiStore({"Pod": [pod("a", "n1", "10.1.0.2")]})
    seen = Recorder()
    calls = []

    def watch(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        if len(calls) == 2:
            raise urllib3.exceptions.ProtocolError("gone away")
        return ApiStore.watch(api, *args, **kwargs)

    api.watch = watch  # type: ignore[method-assign]
    informer = Informer(api, "Pod", seen, metrics=seen, sleep=seen.sleep_then_stop_after(1))
    informer.sync()
    api.put({"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "s"}, "spec": {"clusterIP": "None"}})  # moves the version
    run_until_stop(informer)
    # the first watch saw no Pod event, only the bookmark at the Service's version: the
    # second watch starts there, without a relist and without waiting
    assert calls == ["2", "3"]
    assert seen.relists == [("Pod", "initial")]
    assert seen.restarts == [("Pod", "closed"), ("Pod", "dropped")]


def test_410_relists_and_reports_only_the_difference() -> None:
    pods = [pod(f"p{i}", "n1", f"10.1.0.{i + 2}") for i in range(5)]
    api = ApiStore({"Pod": pods})
    seen = Recorder()
    informer = Informer(api, "Pod", seen, metrics=seen, sleep=seen.sleep_then_stop_after(1))
    informer.sync()
    kept = informer.store["default/p0"]
    # while we were away: p1 changed, p2 deleted, p5 added, p3 changed only in a field we drop
    changed = copy.deepcopy(pods[1])
    changed["status"]["podIP"] = "10.1.0.99"
    api.put(changed)
    api.delete("Pod", "default/p2")
    api.put(pod("p5", "n1", "10.1.0.50"))
    irrelevant = copy.deepcopy(pods[3])
    irrelevant["status"]["phase"] = "Succeeded"
    api.put(irrelevant)
    api.compacted = api.version + 1  # every version we know is gone
    api.fail_next(ApiError(500, "internal"))  # the watch after the relist fails: stop there
    run_until_stop(informer)
    assert seen.relists == [("Pod", "initial"), ("Pod", "gone")]
    assert seen.changes[-1] == ("Pod", ["default/p1", "default/p5", "default/p2"])
    assert informer.store["default/p0"] is kept  # unchanged objects keep their dict
    assert ("Pod", "gone") in seen.restarts


def test_backoff_grows_capped_with_jitter_and_resets_after_a_good_watch() -> None:
    api = ApiStore({"Pod": [pod("a", "n1", "10.1.0.2")]})
    api.down = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    seen = Recorder()
    informer = Informer(api, "Pod", seen, metrics=seen, sleep=seen.sleep_then_stop_after(8),
                        backoff=Backoff(first=1.0, cap=8.0, random=lambda: 1.0))
    run_until_stop(informer)
    assert seen.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert not informer.synced and seen.changes == []
    low = Backoff(first=1.0, cap=8.0, random=lambda: 0.0)
    assert [low.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]  # jitter: down to half
    low.reset()
    assert low.next_delay() == 0.5


def test_a_watch_that_ends_at_once_without_events_backs_off() -> None:
    api = ApiStore({"Pod": [pod("a", "n1", "10.1.0.2")]})
    seen = Recorder()
    api.watch = lambda *args, **kwargs: iter(())  # type: ignore[method-assign]
    informer = Informer(api, "Pod", seen, metrics=seen, sleep=seen.sleep_then_stop_after(3),
                        backoff=Backoff(first=1.0, random=lambda: 1.0))
    run_until_stop(informer)
    assert seen.sleeps == [1.0, 2.0, 4.0]  # no busy loop of watches, no relists
    assert seen.relists == [("Pod", "initial")]


def test_a_second_410_in_a_row_waits() -> None:
    api = ApiStore({"Pod": [pod("a", "n1", "10.1.0.2")]})
    seen = Recorder()
    api.watch = lambda *a, **k: (_ for _ in ()).throw(Gone(410, "old"))  # type: ignore
    informer = Informer(api, "Pod", seen, metrics=seen, sleep=seen.sleep_then_stop_after(1),
                        backoff=Backoff(first=1.0, random=lambda: 1.0))
    run_until_stop(informer)
    # the first 410 relists at once; the second in a row backs off (before its relist)
    assert seen.relists == [("Pod", "initial"), ("Pod", "gone")]
    assert seen.sleeps == [2.0]


def test_slim_keeps_what_the_parsers_read_and_values_of_wrong_types() -> None:
    slimmed = slim("Pod", "v1", pod("a", "n1", "10.1.0.2", app="web"))
    assert slimmed == {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "a", "namespace": "default",
                                    "labels": {"app": "web"}},
                       "spec": {"nodeName": "n1", "containers": [{"ports": [
                           {"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
                       "status": {"podIP": "10.1.0.2"}}
    odd = pod("a", "n1", "10.1.0.2")
    odd["spec"]["containers"] = "not a list"
    odd["metadata"]["annotations"]["osdn.dev/ofport"] = "7"
    kept = slim("Pod", "v1", odd)
    assert kept["spec"]["containers"] == "not a list"
    assert kept["metadata"]["annotations"] == {"osdn.dev/ofport": "7"}


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
@pytest.mark.parametrize("plugin", list(Plugin))
def test_the_api_source_renders_what_the_files_render(cluster: str, plugin: Plugin) -> None:
    reference = load_topology([CLUSTERS[cluster]], plugin=plugin)
    objects = api_objects(CLUSTERS[cluster])
    for host_subnet in reference.host_subnets:
        node = host_subnet.host
        api = ApiStore(objects)
        source = KubeSource(api, node, plugin)
        result = source.poll()
        assert result is not None and result.topology is not None, result
        assert compile_node(result.topology, node, NO_DNS).to_ofctl() == \
            compile_node(reference, node, NO_DNS).to_ofctl()
        assert source.poll() is None  # nothing changed since
        pods_listed = [entry for entry in api.log if entry[:2] == ("list", "Pod")]
        # the node's pods; under networkpolicy also, elsewhere, those of namespaces that
        # have policies
        policy_namespaces = sorted({p.namespace for p in reference.network_policies}) \
            if plugin is Plugin.NETWORKPOLICY else []
        assert pods_listed == [("list", "Pod", f"spec.nodeName={node}", None)] + [
            ("list", "Pod", f"metadata.namespace={ns},spec.nodeName!={node}", None)
            for ns in policy_namespaces]
        assert pod_selector(plugin, node) == f"spec.nodeName={node}"


def test_networkpolicy_watches_the_pods_of_namespaces_with_policies_only() -> None:
    """node-a under networkpolicy: backend's pods elsewhere are watched while backend has
    a policy, not after its last one is deleted, and again once one is back; the flows are
    always those of a source that holds every pod."""
    objects = api_objects(CLUSTERS["rich"])
    api = ApiStore(objects)
    source = KubeSource(api, "node-a", Plugin.NETWORKPOLICY)
    everything = KubeSource(api, None, Plugin.NETWORKPOLICY)

    def flows(of: KubeSource) -> str:
        result = of.poll()
        assert result is not None and result.topology is not None, result
        return compile_node(result.topology, "node-a", NO_DNS).to_ofctl()

    def backend_elsewhere() -> set[str]:
        return {key for key, obj in source.store("Pod").items()
                if key.startswith("backend/") and obj["spec"]["nodeName"] != "node-a"}

    assert flows(source) == flows(everything)
    assert "backend" in source.policy_pods and backend_elsewhere()
    policies = [obj for obj in objects["NetworkPolicy"]
                if obj["metadata"]["namespace"] == "backend"]
    assert len(policies) == 2
    for policy in policies:
        api.delete("NetworkPolicy", f"backend/{policy['metadata']['name']}")
    for of in (source, everything):
        of.informers["NetworkPolicy"].watch_once()
    assert flows(source) == flows(everything)
    assert "backend" not in source.policy_pods and not backend_elsewhere()
    assert source.policy_pods  # the other namespaces' watches stay
    api.put(policies[0])
    for of in (source, everything):
        of.informers["NetworkPolicy"].watch_once()
    assert flows(source) == flows(everything)
    assert "backend" in source.policy_pods and backend_elsewhere()


def test_beyond_the_cap_one_watch_of_the_other_nodes_serves_the_policy_namespaces(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """More namespaces with policies (3 on the rich cluster) than MAX_NAMESPACE_WATCHES (here
    2): one Pod watch of every pod elsewhere instead; analytics (no policy) stays out."""
    monkeypatch.setattr("controller.kube.source.MAX_NAMESPACE_WATCHES", 2)
    api = ApiStore(api_objects(CLUSTERS["rich"]))
    source = KubeSource(api, "node-a", Plugin.NETWORKPOLICY)
    result = source.poll()
    assert result is not None and result.topology is not None
    assert list(source.policy_pods) == ["*"]
    assert source.policy_pods["*"].field_selector == "spec.nodeName!=node-a"
    assert source.policy_namespaces == {"backend", "db", "shared"}
    held = {pod.namespace for pod in result.topology.pods if pod.node != "node-a"}
    assert held == {"backend", "db", "shared"}
    pods_listed = [entry[2] for entry in api.log if entry[:2] == ("list", "Pod")]
    assert pods_listed == ["spec.nodeName=node-a", "spec.nodeName!=node-a"]
    everything = KubeSource(api, None, Plugin.NETWORKPOLICY).poll()
    assert everything is not None and everything.topology is not None
    assert compile_node(result.topology, "node-a", NO_DNS).to_ofctl() == \
        compile_node(everything.topology, "node-a", NO_DNS).to_ofctl()


def test_invalid_objects_are_skipped_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    objects = api_objects(CLUSTERS["seed"])
    seen = Recorder()
    api = ApiStore(objects)
    bad = pod("broken", "node2.ocp.cn", "not-an-ip")
    outside = pod("outside", "node2.ocp.cn", "10.200.0.9")  # outside node2's subnet
    api.put(bad)
    api.put(outside)
    source = KubeSource(api, "node2.ocp.cn", Plugin.MULTITENANT, seen)
    result = source.poll()
    assert result is not None and result.topology is not None
    names = {p.name for p in result.topology.pods}
    assert "broken" not in names and "outside" not in names and names
    assert seen.invalid == ["Pod", "Pod"]
    text = caplog.text
    assert "kubernetes: Pod/default/broken: status.podIP" in text and '"not-an-ip"' in text
    assert "Pod/default/outside" in text and "10.200.0.9" in text
    # a later change does not log or count them again
    source._changed("Pod", [])
    assert source.poll() is not None and seen.invalid == ["Pod", "Pod"]


def test_no_valid_cluster_network_means_no_topology() -> None:
    objects = api_objects(CLUSTERS["seed"])
    objects["ClusterNetwork"][0]["serviceNetwork"] = "nonsense"
    source = KubeSource(ApiStore(objects), "node2.ocp.cn")
    result = source.poll()
    assert result is not None and result.topology is None
    assert [str(issue) for issue in result.issues] == [
        "kubernetes: no ClusterNetwork (exactly one is needed)",
        'kubernetes: ClusterNetwork/default: serviceNetwork: invalid IPv4 CIDR ("nonsense")']


def test_an_api_that_cannot_be_listed_is_an_issue_not_a_crash() -> None:
    api = ApiStore(api_objects(CLUSTERS["seed"]))
    api.down = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    result = KubeSource(api, "node2.ocp.cn").poll()
    assert result is not None and result.topology is None
    assert "cannot list ClusterNetwork" in str(result.issues[0])
