"""The lab's API double (lab/kubeapi.py) speaks the protocol as the official `kubernetes`
client expects it: typed lists (kind, resourceVersion, continue, remainingItemCount) read page
by page from one consistent snapshot, field selectors, chunked watch streams read by the
package's own `Watch`, bookmarks, 410 as the API server words it, and its injected faults
(dropped connections, slow responses, error statuses)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import pytest
import urllib3

from lab.kubeapi import ApiStore, KubeApiServer, api_objects
from tests.golden.update import CLUSTERS

Api = tuple[KubeApiServer, kubernetes.client.ApiClient]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    server = KubeApiServer(ApiStore(api_objects(CLUSTERS["rich"])), token="secret")
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(str(server.kubeconfig(tmp_path / "kubeconfig")),
                                       client_configuration=configuration)
    client = kubernetes.client.ApiClient(configuration)
    yield server, client
    client.close()
    server.stop()


def raw(server: KubeApiServer, path: str,
        token: str = "secret") -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    return connection.getresponse(), connection


def all_pages(core: Any, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """Every pod of a paged list, and the pages."""
    pages = [core.list_pod_for_all_namespaces(**kwargs)]
    while pages[-1].metadata._continue:
        pages.append(core.list_pod_for_all_namespaces(_continue=pages[-1].metadata._continue,
                                                      **kwargs))
    return [item for page in pages for item in page.items], pages


def test_a_paged_list_is_one_consistent_snapshot(api: Api) -> None:
    server, client = api
    core: Any = kubernetes.client.CoreV1Api(client)
    first = core.list_pod_for_all_namespaces(limit=5)
    assert first.kind == "PodList" and first.api_version == "v1"
    assert len(first.items) == 5 and first.metadata.remaining_item_count == 11
    pod = next(iter(server.store.objects["Pod"].values()))
    server.put(dict(pod, metadata=dict(pod["metadata"], name="zz-added")))  # between pages
    rest = core.list_pod_for_all_namespaces(limit=100, _continue=first.metadata._continue)
    assert rest.metadata._continue is None and rest.metadata.resource_version == \
        first.metadata.resource_version  # the first page's version, not the newest
    names = [(p.metadata.namespace, p.metadata.name) for p in first.items + rest.items]
    assert len(names) == 16 and names == sorted(names) and "zz-added" not in str(names)
    assert int(server.store.version) > int(first.metadata.resource_version)
    items, _ = all_pages(core, limit=7)
    assert len(items) == 17  # a new list sees the new pod


def test_items_lack_kind_and_openshift_kinds_carry_their_group(api: Api) -> None:
    server, client = api
    custom: Any = kubernetes.client.CustomObjectsApi(client)
    subnets = custom.list_cluster_custom_object("network.openshift.io", "v1", "hostsubnets")
    assert subnets["kind"] == "HostSubnetList"
    assert subnets["apiVersion"] == "network.openshift.io/v1"
    assert subnets["metadata"]["resourceVersion"] == str(server.store.version)
    assert len(subnets["items"]) == len(server.store.objects["HostSubnet"]) > 0
    assert all("kind" not in item and "apiVersion" not in item for item in subnets["items"])
    assert all(item["metadata"]["resourceVersion"] for item in subnets["items"])
    networking: Any = kubernetes.client.NetworkingV1Api(client)
    policies = networking.list_network_policy_for_all_namespaces()
    assert policies.kind == "NetworkPolicyList" and policies.api_version == "networking.k8s.io/v1"


def test_field_selectors_and_namespaced_paths(api: Api) -> None:
    server, client = api
    core: Any = kubernetes.client.CoreV1Api(client)
    node_b, _ = all_pages(core, field_selector="spec.nodeName=node-b", limit=4)
    assert {p.spec.node_name for p in node_b} == {"node-b"} and len(node_b) == 6
    others, _ = all_pages(core, field_selector="spec.nodeName!=node-b")
    assert len(others) == 10 and "node-b" not in {p.spec.node_name for p in others}
    namespace = next(iter(server.store.objects["Pod"].values()))["metadata"]["namespace"]
    local = core.list_namespaced_pod(namespace).items
    assert local and {p.metadata.namespace for p in local} == {namespace}
    with pytest.raises(kubernetes.client.ApiException) as error:
        core.list_pod_for_all_namespaces(field_selector="spec.hostNetwork=true")
    assert error.value.status == 400
    body = json.loads(error.value.body or "")
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"
    assert "spec.hostNetwork" in body["message"]
    with pytest.raises(kubernetes.client.ApiException) as error:  # not silently ignored
        core.list_pod_for_all_namespaces(label_selector="app=web")
    assert error.value.status == 400


def test_a_watch_is_a_chunked_stream_of_one_event_per_line(api: Api) -> None:
    server, _ = api
    version = server.store.version
    key = next(iter(server.store.objects["Service"]))
    server.delete("Service", key)
    response, connection = raw(server, "/api/v1/services?watch=true&allowWatchBookmarks=true"
                                       f"&resourceVersion={version}&timeoutSeconds=1")
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    lines = response.read().decode().splitlines()
    connection.close()
    events = [json.loads(line) for line in lines]
    assert [e["type"] for e in events] == ["DELETED", "BOOKMARK"]
    deleted = events[0]["object"]
    assert deleted["kind"] == "Service" and deleted["apiVersion"] == "v1"
    assert deleted["metadata"]["resourceVersion"] == str(version + 1)
    assert events[1]["object"]["metadata"] == {"resourceVersion": str(version + 1)}


def test_the_official_watch_reads_events_as_they_happen(api: Api) -> None:
    server, client = api
    core: Any = kubernetes.client.CoreV1Api(client)
    listed = core.list_pod_for_all_namespaces()
    pod = next(iter(server.store.objects["Pod"].values()))
    key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    server.bookmark_interval = 0.2

    def changes() -> None:
        time.sleep(0.3)
        server.put(dict(pod, metadata=dict(pod["metadata"], labels={"changed": "yes"})))
        server.delete("Pod", key)

    threading.Thread(target=changes).start()
    events = list(kubernetes.watch.Watch().stream(
        core.list_pod_for_all_namespaces, resource_version=listed.metadata.resource_version,
        allow_watch_bookmarks=True, timeout_seconds=1))
    types = [event["type"] for event in events]
    assert [t for t in types if t != "BOOKMARK"] == ["MODIFIED", "DELETED"]
    assert types.count("BOOKMARK") >= 3  # a quiet watch's, and the one before the end
    assert events[types.index("MODIFIED")]["object"].metadata.labels == {"changed": "yes"}


def test_a_watch_from_version_0_starts_with_the_current_objects(api: Api) -> None:
    server, _ = api
    response, connection = raw(server, "/apis/network.openshift.io/v1/netnamespaces"
                                       "?watch=1&resourceVersion=0&timeoutSeconds=0")
    events = [json.loads(line) for line in response.read().decode().splitlines()]
    connection.close()
    assert [e["type"] for e in events] == ["ADDED"] * len(server.store.objects["NetNamespace"])
    assert {e["object"]["apiVersion"] for e in events} == {"network.openshift.io/v1"}


def gone_body(server: KubeApiServer, path: str) -> dict[str, Any]:
    response, connection = raw(server, path)
    body = response.read()
    connection.close()
    if response.status == 410:
        return dict(json.loads(body))
    assert response.status == 200, body
    [event] = [json.loads(line) for line in body.decode().splitlines()]
    assert event["type"] == "ERROR"
    return dict(event["object"])


@pytest.mark.parametrize("reason, gone_as", [("Expired", "event"), ("Gone", "status")])
def test_a_compacted_version_is_410_as_the_server_words_it(
        api: Api, reason: str, gone_as: str) -> None:
    server, client = api
    server.gone_reason, server.gone_as = reason, gone_as
    old = server.store.version
    server.compact()
    body = gone_body(server, f"/api/v1/pods?watch=true&resourceVersion={old}")
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f"too old resource version: {old} ({server.store.version})",
                    "reason": reason, "code": 410}
    with pytest.raises(kubernetes.client.ApiException) as error:  # the package's own reading
        list(kubernetes.watch.Watch().stream(
            kubernetes.client.CoreV1Api(client).list_pod_for_all_namespaces,
            resource_version=str(old), timeout_seconds=1))
    assert error.value.status == 410


def test_a_bounded_history_compacts_itself(api: Api) -> None:
    server, _ = api
    server.store.history_limit = 2
    old = server.store.version
    pod = next(iter(server.store.objects["Pod"].values()))
    for n in range(3):
        server.put(dict(pod, metadata=dict(pod["metadata"], labels={"n": str(n)})))
    assert gone_body(server, f"/api/v1/pods?watch=true&resourceVersion={old}")["code"] == 410
    response, connection = raw(server, f"/api/v1/pods?watch=true&resourceVersion={old + 1}"
                                       "&timeoutSeconds=0")
    assert [json.loads(line)["type"] for line in response.read().splitlines()] == \
        ["MODIFIED", "MODIFIED"]
    connection.close()


def test_an_expired_continue_token_is_410_expired(api: Api) -> None:
    server, client = api
    core: Any = kubernetes.client.CoreV1Api(client)
    first = core.list_pod_for_all_namespaces(limit=5)
    server.compact()
    with pytest.raises(kubernetes.client.ApiException) as error:
        core.list_pod_for_all_namespaces(limit=5, _continue=first.metadata._continue)
    body = json.loads(error.value.body or "")
    assert error.value.status == 410 and body["reason"] == "Expired"
    assert body["message"].startswith("The provided continue parameter is too old")


def test_dropped_connections_and_cut_streams(api: Api) -> None:
    server, client = api
    core: Any = kubernetes.client.CoreV1Api(client)
    server.drop_next()
    with pytest.raises(urllib3.exceptions.ProtocolError):  # half a body, then nothing
        core.list_pod_for_all_namespaces()
    assert len(core.list_pod_for_all_namespaces().items) == 16  # only the next one
    version = core.list_pod_for_all_namespaces().metadata.resource_version
    stream = kubernetes.watch.Watch().stream(core.list_pod_for_all_namespaces,
                                             resource_version=version, timeout_seconds=30)
    pod = next(iter(server.store.objects["Pod"].values()))
    server.put(pod)
    assert next(stream)["type"] == "MODIFIED"
    server.cut_watches()
    with pytest.raises(urllib3.exceptions.ProtocolError):  # no last chunk
        next(stream)


def test_slow_responses_and_injected_statuses(api: Api) -> None:
    server, client = api
    core: Any = kubernetes.client.CoreV1Api(client)
    server.delay = 0.5
    with pytest.raises(urllib3.exceptions.HTTPError, match="timed out"):  # retried, in vain
        core.list_pod_for_all_namespaces(_request_timeout=(5, 0.2))
    server.delay, server.stall = 0.0, 0.5
    with pytest.raises(urllib3.exceptions.HTTPError, match="timed out"):  # the body stalls
        core.list_pod_for_all_namespaces(_request_timeout=(5, 0.2))
    assert len(core.list_pod_for_all_namespaces(_request_timeout=(5, 5)).items) == 16
    server.stall = 0.0
    server.fail_next_status(503)
    with pytest.raises(kubernetes.client.ApiException) as error:
        core.list_namespace()
    assert error.value.status == 503
    assert json.loads(error.value.body or "")["reason"] == "ServiceUnavailable"
    assert core.list_namespace().kind == "NamespaceList"


def test_unknown_paths_and_a_wrong_token(api: Api) -> None:
    server, _ = api
    response, connection = raw(server, "/api/v1/endpoints")
    assert response.status == 404 and json.loads(response.read())["reason"] == "NotFound"
    connection.close()
    response, connection = raw(server, "/api/v1/pods", token="wrong")
    assert response.status == 401 and json.loads(response.read())["code"] == 401
    connection.close()


def test_ending_the_watches_ends_them_cleanly(api: Api) -> None:
    server, client = api
    core: Any = kubernetes.client.CoreV1Api(client)
    version = core.list_pod_for_all_namespaces().metadata.resource_version
    events: list[str] = []
    watch = threading.Thread(target=lambda: events.extend(e["type"] for e in kubernetes.watch.Watch(
    ).stream(core.list_pod_for_all_namespaces, resource_version=version,
             allow_watch_bookmarks=True, timeout_seconds=30)))
    watch.start()
    time.sleep(0.3)
    server.end_watches()
    watch.join(timeout=5)
    assert not watch.is_alive() and events == ["BOOKMARK"]  # a last bookmark, then the end


def test_a_quiet_watch_answers_at_once(api: Api) -> None:
    server, _ = api
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
    connection.request("GET", f"/api/v1/pods?watch=true&resourceVersion={server.store.version}"
                              "&timeoutSeconds=30", headers={"Authorization": "Bearer secret"})
    response = connection.getresponse()  # the headers, though no event is due for 30 s
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    connection.close()
