"""Controller metrics on an injected registry; the exporter wrapper; the docs table."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from controller.metrics import BUNDLE_BUCKETS, Metrics, metrics_markdown, start_http_server


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_registries_are_independent() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first).connected_bridges.set(2)
    Metrics(second)
    assert value(first, "osdn_connected_bridges") == 2
    assert value(second, "osdn_connected_bridges") == 0


def test_a_node_s_known_series_start_at_zero(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.add_node("node1")
    for op in ("add", "modify", "delete"):
        assert value(registry, "osdn_flow_mods_total", node="node1", op=op) == 0
    for outcome in ("ok", "error", "unchanged"):
        assert value(registry, "osdn_reconciles_total", node="node1", outcome=outcome) == 0
    assert value(registry, "osdn_bundle_duration_seconds_count", node="node1") == 0
    assert value(registry, "osdn_topology_loads_total", outcome="error") == 0


def test_counters(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.count_flow_mods("node1", "add", 120)
    metrics.count_flow_mods("node1", "delete")
    metrics.count_reconcile("node1", "unchanged")
    metrics.count_switch_error("node1", "OFPET_BAD_MATCH")
    assert value(registry, "osdn_flow_mods_total", node="node1", op="add") == 120
    assert value(registry, "osdn_flow_mods_total", node="node1", op="delete") == 1
    assert value(registry, "osdn_reconciles_total", node="node1", outcome="unchanged") == 1
    assert value(registry, "osdn_switch_errors_total", node="node1",
                 type="OFPET_BAD_MATCH") == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: m.count_flow_mods("n", "insert"),
     "op must be one of add, modify, delete, not 'insert'"),
    (lambda m: m.count_reconcile("n", "fine"),
     "outcome must be one of ok, error, unchanged, not 'fine'"),
])
def test_label_values_from_a_fixed_set_are_checked(metrics: Metrics, call, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        call(metrics)
    assert str(caught.value) == message


def test_flows_per_table_drop_tables_that_emptied(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_flows("node1", {0: 5, 10: 3, 253: 1})
    metrics.set_flows("node2", {0: 7})
    metrics.set_flows("node1", {0: 6, 253: 1})
    assert value(registry, "osdn_flows", node="node1", table="0") == 6
    assert value(registry, "osdn_flows", node="node1", table="10") is None
    assert value(registry, "osdn_flows", node="node2", table="0") == 7
    metrics.forget_flows("node1")
    assert value(registry, "osdn_flows", node="node1", table="253") is None
    assert value(registry, "osdn_flows", node="node2", table="0") == 7


def test_bundle_latency_buckets_span_1ms_to_10s(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    assert BUNDLE_BUCKETS[0] == 0.001 and BUNDLE_BUCKETS[-1] == 10.0
    metrics.observe_bundle("node1", 0.0004)
    metrics.observe_bundle("node1", 3.0)
    bucket = "osdn_bundle_duration_seconds_bucket"
    assert value(registry, bucket, node="node1", le="0.001") == 1
    assert value(registry, bucket, node="node1", le="2.5") == 1
    assert value(registry, bucket, node="node1", le="5.0") == 2


def test_topology_load_error_is_set_while_invalid(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.topology_loaded()
    metrics.topology_rejected(issue_count=3)
    assert value(registry, "osdn_topology_load_error") == 1
    assert value(registry, "osdn_topology_issues") == 3
    metrics.topology_loaded()
    assert value(registry, "osdn_topology_load_error") == 0
    assert value(registry, "osdn_topology_issues") == 0
    assert value(registry, "osdn_topology_loads_total", outcome="ok") == 2
    assert value(registry, "osdn_topology_loads_total", outcome="error") == 1


def test_port_zero_starts_no_exporter(registry: CollectorRegistry) -> None:
    assert start_http_server(0, "127.0.0.1", registry) is None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_exporter_serves_the_given_registry(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.connected_bridges.set(3)
    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            body = reply.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert "osdn_connected_bridges 3.0" in body.splitlines()


def test_markdown_table_of_all_metrics(registry: CollectorRegistry) -> None:
    Metrics(registry)
    assert metrics_markdown(registry) == """\
| name | type | help | labels |
|---|---|---|---|
| `osdn_bridge_repairs_total` | counter | Repairs of a bridge changed behind the controller's back (flows deleted, added or changed by another connection), by how it was noticed (trigger: flow_removed, audit, update_check). | node, trigger |
| `osdn_bundle_duration_seconds` | histogram | Time from a bundle's open to its commit reply (or discard). | node |
| `osdn_connected_bridges` | gauge | OpenFlow bridges connected to the controller. |  |
| `osdn_flow_mods_total` | counter | Flow-mods sent to bridges (op: add, modify, delete). | node, op |
| `osdn_flows` | gauge | Flows the controller keeps on a node's bridge, per table. | node, table |
| `osdn_kube_invalid_objects_total` | counter | source = kubernetes: API objects left out of the topology as invalid. | kind |
| `osdn_kube_objects` | gauge | source = kubernetes: objects held per kind (slimmed). | kind |
| `osdn_kube_relists_total` | counter | source = kubernetes: lists of a kind (reason: initial, gone = after 410 Gone). | kind, reason |
| `osdn_kube_watch_restarts_total` | counter | source = kubernetes: watches that ended and began again (reason: closed by the server, dropped connection, error status, gone = 410). | kind, reason |
| `osdn_openflow_pending_handshakes` | gauge | OpenFlow connections that have not finished their handshake yet. |  |
| `osdn_openflow_refused_connections_total` | counter | OpenFlow connections the controller closed itself (reason: malformed, handshake_timeout, too_many_handshakes, duplicate_datapath_id). | reason |
| `osdn_reconciles_total` | counter | Reconciliations of a bridge with its desired flows (outcome: ok, error, unchanged). | node, outcome |
| `osdn_switch_errors_total` | counter | OpenFlow error messages received from a bridge, by type. | node, type |
| `osdn_topology_issues` | gauge | Problems found in the topology on disk (0 when valid). |  |
| `osdn_topology_load_error` | gauge | 1 while the topology on disk is invalid (the last good one stays in force). |  |
| `osdn_topology_loads_total` | counter | Attempts to load the topology (outcome: ok, error). | outcome |
"""  # noqa: E501


def test_markdown_table_escapes_pipes_and_reads_any_collector(registry: CollectorRegistry) -> None:
    from prometheus_client import Gauge
    Gauge("other_thing", "a | b", ["x"], registry=registry)
    assert metrics_markdown(registry).splitlines()[2] == "| `other_thing` | gauge | a \\| b | x |"
