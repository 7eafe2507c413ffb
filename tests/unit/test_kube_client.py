"""`KubeClient` over real HTTP (the API double, lab/kubeapi.py): pages,
field selectors, watch streams with bookmarks, 410 as an ERROR event, a cut stream, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import urllib3

from controller.kube.client import CONNECTION_ERRORS, ApiError, Gone, KubeClient
from controller.kube.informer import Informer
from lab.kubeapi import ApiStore, KubeApiServer, api_objects
from tests.golden.update import CLUSTERS


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[KubeApiServer, KubeClient]]:
    front = KubeApiServer(ApiStore(api_objects(CLUSTERS["rich"])))
    yield front, KubeClient(str(front.kubeconfig(tmp_path / "kubeconfig")))
    front.stop()


def test_a_list_is_read_page_by_page(served: tuple[KubeApiServer, KubeClient]) -> None:
    front, client = served
    items, version = client.list("Pod", limit=5)
    assert len(items) == 16 and version == str(front.store.version)
    pages = [parse_qs(urlparse(r).query) for r in front.requests if "/pods" in r]
    tokens = [page.get("continue") for page in pages]
    assert tokens[0] is None and len(tokens) == 4 and all(tokens[1:])
    assert all(page["limit"] == ["5"] for page in pages)
    node, _ = client.list("Pod", field_selector="spec.nodeName=node-b")
    assert {item["spec"]["nodeName"] for item in node} == {"node-b"} and len(node) == 6


def test_a_watch_streams_events_then_a_bookmark(served: tuple[KubeApiServer, KubeClient]) -> None:
    front, client = served
    _, version = client.list("Service")
    key = next(iter(front.store.objects["Service"]))
    service = dict(front.store.objects["Service"][key])
    front.delete("Service", key)
    events = list(client.watch("Service", version, timeout_seconds=1))
    assert [kind for kind, _ in events] == ["DELETED", "BOOKMARK"]
    assert events[0][1]["metadata"]["name"] == service["metadata"]["name"]
    query = parse_qs(urlparse(front.requests[-1]).query)
    assert query["allowWatchBookmarks"] == ["true"] and query["resourceVersion"] == [version]


def test_410_cut_streams_and_a_missing_server_raise_what_the_informer_retries(
        served: tuple[KubeApiServer, KubeClient]) -> None:
    front, client = served
    _, version = client.list("Pod")
    front.compact()
    with pytest.raises(Gone):
        list(client.watch("Pod", version))
    _, version = client.list("Pod")
    stream = client.watch("Pod", version, timeout_seconds=30)
    front.put(dict(front.store.objects["Pod"][next(iter(front.store.objects["Pod"]))]))
    assert next(stream)[0] == "MODIFIED"
    front.cut_watches()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        next(stream)
    front.stop()
    with pytest.raises(CONNECTION_ERRORS):
        client.list("Pod")
    front.start()


def test_an_error_status_names_the_server_message(served: tuple[KubeApiServer, KubeClient]) -> None:
    _, client = served
    with pytest.raises(ApiError, match="HTTP 404: the server could not find the requested"):
        client._get("/api/v1/nothings", [], 5.0)


def test_a_slow_server_is_waited_for_and_one_too_slow_retried(
        served: tuple[KubeApiServer, KubeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    front, client = served
    front.delay = 0.3
    items, _ = client.list("Pod")
    assert len(items) == 16
    monkeypatch.setattr("controller.kube.client.LIST_READ_TIMEOUT", 0.1)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the informer's backoff; the server speeds up
        sleeps.append(seconds)
        front.delay = 0.0
        monkeypatch.setattr("controller.kube.client.LIST_READ_TIMEOUT", 5.0)

    changes: list[str] = []
    informer = Informer(client, "Pod", lambda kind, keys: changes.extend(keys), sleep=sleep)
    with pytest.raises(urllib3.exceptions.HTTPError):  # the read timeout, as the loop sees it
        informer.sync()
    def watch_once() -> bool:
        informer.stop()
        return True

    monkeypatch.setattr(informer, "watch_once", watch_once)
    informer.list_watch_loop()  # times out, backs off once, lists, "watches"
    assert len(sleeps) == 1 and informer.synced and len(changes) == 16
