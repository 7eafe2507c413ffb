"""The controller's Prometheus metrics, on a registry the caller owns.

The registry is injected rather than prometheus-client's global ``REGISTRY`` so that tests
(and several controllers in one process) each get their own, without "Duplicated timeseries"
errors.  Label values that come from a fixed set (``op``, ``outcome``) are checked here, so a
typo in the controller cannot invent a new time series; a node's series of those sets are
created at zero by `add_node`, so that ``rate()`` and alerts see them before the first event.

`metrics_markdown` renders the table of metrics for the docs from a registry, so the docs
cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

__all__ = [
    "BUNDLE_BUCKETS",
    "FLOW_MOD_OPS",
    "RECONCILE_OUTCOMES",
    "REFUSAL_REASONS",
    "RELIST_REASONS",
    "REPAIR_TRIGGERS",
    "WATCH_RESTART_REASONS",
    "TOPOLOGY_LOAD_OUTCOMES",
    "Metrics",
    "metrics_markdown",
    "start_http_server",
]

PREFIX = "osdn_"
FLOW_MOD_OPS = ("add", "modify", "delete")
RECONCILE_OUTCOMES = ("ok", "error", "unchanged")
TOPOLOGY_LOAD_OUTCOMES = ("ok", "error")
# Why the controller closed an OpenFlow connection itself (controller.openflow.osken_guard,
# and the agent's duplicate datapath ID policy).
REFUSAL_REASONS = ("malformed", "handshake_timeout", "too_many_handshakes",
                   "duplicate_datapath_id")
# how a bridge changed behind the controller's back was noticed (controller.tamper):
# OVS reported a flow removal; the periodic audit saw other counts or another table-253
# note; the check before applying a topology or port change saw other counts
REPAIR_TRIGGERS = ("flow_removed", "audit", "update_check")
# source = kubernetes (controller.kube.informer): why a kind was listed; why its watch began
# again (the server ended it, the connection broke, an error status, 410 Gone)
RELIST_REASONS = ("initial", "gone")
WATCH_RESTART_REASONS = ("closed", "dropped", "error", "gone")
# A bundle of a few flows commits in about a millisecond; a first connect of a big node
# (tens of thousands of flows) takes seconds.  Roughly 1-2.5-5 per decade from 1 ms to 10 s.
BUNDLE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _check(value: str, allowed: tuple[str, ...], label: str) -> str:
    if value not in allowed:
        raise ValueError(f"{label} must be one of {', '.join(allowed)}, not {value!r}")
    return value


class Metrics:
    """Every metric of the controller; the attributes are prometheus-client objects, the
    methods the operations the controller performs."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.connected_bridges = Gauge(
            PREFIX + "connected_bridges", "OpenFlow bridges connected to the controller.",
            registry=registry)
        self.flows = Gauge(
            PREFIX + "flows", "Flows the controller keeps on a node's bridge, per table.",
            ["node", "table"], registry=registry)
        self.flow_mods = Counter(
            PREFIX + "flow_mods", "Flow-mods sent to bridges (op: add, modify, delete).",
            ["node", "op"], registry=registry)
        self.bundle_latency = Histogram(
            PREFIX + "bundle_duration_seconds",
            "Time from a bundle's open to its commit reply (or discard).",
            ["node"], buckets=BUNDLE_BUCKETS, registry=registry)
        self.reconciles = Counter(
            PREFIX + "reconciles",
            "Reconciliations of a bridge with its desired flows (outcome: ok, error, unchanged).",
            ["node", "outcome"], registry=registry)
        self.topology_loads = Counter(
            PREFIX + "topology_loads", "Attempts to load the topology (outcome: ok, error).",
            ["outcome"], registry=registry)
        self.topology_load_error = Gauge(
            PREFIX + "topology_load_error",
            "1 while the topology on disk is invalid (the last good one stays in force).",
            registry=registry)
        self.topology_issues = Gauge(
            PREFIX + "topology_issues", "Problems found in the topology on disk (0 when valid).",
            registry=registry)
        self.switch_errors = Counter(
            PREFIX + "switch_errors", "OpenFlow error messages received from a bridge, by type.",
            ["node", "type"], registry=registry)
        self.refused_connections = Counter(
            PREFIX + "openflow_refused_connections",
            "OpenFlow connections the controller closed itself (reason: malformed, "
            "handshake_timeout, too_many_handshakes, duplicate_datapath_id).",
            ["reason"], registry=registry)
        self.pending_handshakes = Gauge(
            PREFIX + "openflow_pending_handshakes",
            "OpenFlow connections that have not finished their handshake yet.",
            registry=registry)
        self.repairs = Counter(
            PREFIX + "bridge_repairs",
            "Repairs of a bridge changed behind the controller's back (flows deleted, added or "
            "changed by another connection), by how it was noticed (trigger: flow_removed, "
            "audit, update_check).", ["node", "trigger"], registry=registry)
        self.kube_relists = Counter(
            PREFIX + "kube_relists",
            "source = kubernetes: lists of a kind (reason: initial, gone = after 410 Gone).",
            ["kind", "reason"], registry=registry)
        self.kube_watch_restarts = Counter(
            PREFIX + "kube_watch_restarts",
            "source = kubernetes: watches that ended and began again (reason: closed by the "
            "server, dropped connection, error status, gone = 410).",
            ["kind", "reason"], registry=registry)
        self.kube_invalid_objects = Counter(
            PREFIX + "kube_invalid_objects",
            "source = kubernetes: API objects left out of the topology as invalid.",
            ["kind"], registry=registry)
        self.kube_objects = Gauge(
            PREFIX + "kube_objects", "source = kubernetes: objects held per kind (slimmed).",
            ["kind"], registry=registry)
        for outcome in TOPOLOGY_LOAD_OUTCOMES:
            self.topology_loads.labels(outcome)
        for reason in REFUSAL_REASONS:
            self.refused_connections.labels(reason)

    def add_node(self, node: str) -> None:
        """Create a node's series of known label sets at zero."""
        for op in FLOW_MOD_OPS:
            self.flow_mods.labels(node, op)
        for outcome in RECONCILE_OUTCOMES:
            self.reconciles.labels(node, outcome)
        for trigger in REPAIR_TRIGGERS:
            self.repairs.labels(node, trigger)
        self.bundle_latency.labels(node)

    def set_flows(self, node: str, per_table: Mapping[int, int]) -> None:
        """A node's flow count per table; tables no longer in `per_table` are dropped."""
        wanted = {str(table) for table in per_table}
        for label in self._tables_of(node) - wanted:
            self.flows.remove(node, label)
        for table, count in per_table.items():
            self.flows.labels(node, str(table)).set(count)

    def forget_flows(self, node: str) -> None:
        """Drop a node's flow gauges (its bridge went away: we no longer know its flows)."""
        for table in self._tables_of(node):
            self.flows.remove(node, table)

    def _tables_of(self, node: str) -> set[str]:
        return {sample.labels["table"] for family in self.flows.collect()
                for sample in family.samples if sample.labels["node"] == node}

    def count_flow_mods(self, node: str, op: str, count: int = 1) -> None:
        self.flow_mods.labels(node, _check(op, FLOW_MOD_OPS, "op")).inc(count)

    def observe_bundle(self, node: str, seconds: float) -> None:
        self.bundle_latency.labels(node).observe(seconds)

    def count_reconcile(self, node: str, outcome: str) -> None:
        self.reconciles.labels(node, _check(outcome, RECONCILE_OUTCOMES, "outcome")).inc()

    def topology_loaded(self) -> None:
        self.topology_loads.labels("ok").inc()
        self.topology_load_error.set(0)
        self.topology_issues.set(0)

    def topology_rejected(self, issue_count: int) -> None:
        self.topology_loads.labels("error").inc()
        self.topology_load_error.set(1)
        self.topology_issues.set(issue_count)

    def count_repair(self, node: str, trigger: str) -> None:
        self.repairs.labels(node, _check(trigger, REPAIR_TRIGGERS, "trigger")).inc()

    def count_switch_error(self, node: str, error_type: str) -> None:
        self.switch_errors.labels(node, error_type).inc()

    def count_refused(self, reason: str) -> None:
        self.refused_connections.labels(_check(reason, REFUSAL_REASONS, "reason")).inc()

    def count_relist(self, kind: str, reason: str) -> None:
        self.kube_relists.labels(kind, _check(reason, RELIST_REASONS, "reason")).inc()

    def count_watch_restart(self, kind: str, reason: str) -> None:
        self.kube_watch_restarts.labels(
            kind, _check(reason, WATCH_RESTART_REASONS, "reason")).inc()

    def count_invalid_object(self, kind: str) -> None:
        self.kube_invalid_objects.labels(kind).inc()

    def set_kube_objects(self, kind: str, count: int) -> None:
        self.kube_objects.labels(kind).set(count)


def start_http_server(port: int, address: str, registry: CollectorRegistry) -> Any:
    """Serve `registry` on http://address:port/metrics; port 0 means no exporter (None).

    Returns prometheus-client's (server, thread) pair; its thread is a daemon, so it needs
    no stopping at exit.
    """
    if port == 0:
        return None
    return prometheus_client.start_http_server(port, addr=address, registry=registry)


# ---------------------------------------------------------------------------------------------
# Docs

_SUFFIX = {"counter": "_total"}
_STRUCTURAL_LABELS = frozenset({"le", "quantile"})


def _collectors(registry: CollectorRegistry) -> list[Any]:
    # prometheus-client offers no public way to list a registry's collectors, nor the label
    # names of a labelled metric that has no series yet; these two attributes have been stable
    # since its early releases.
    return list(registry._collector_to_names)


def _label_names(collector: Any, families: Iterable[Metric]) -> list[str]:
    names = list(getattr(collector, "_labelnames", ()))
    for family in families:
        for sample in family.samples:
            names += [n for n in sample.labels if n not in names and n not in _STRUCTURAL_LABELS]
    return names


def _rows(registry: CollectorRegistry) -> Iterator[tuple[str, str, str, str]]:
    for collector in _collectors(registry):
        described = list(collector.describe()) if hasattr(collector, "describe") else []
        families = described or list(collector.collect())
        labels = _label_names(collector, collector.collect())
        for family in families:
            name = family.name + _SUFFIX.get(family.type, "")
            yield name, family.type, family.documentation, ", ".join(labels)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def metrics_markdown(registry: CollectorRegistry) -> str:
    """A Markdown table of the registry's metrics (name, type, help, labels), sorted by name.
    Counters are named as exposed, with ``_total``; histograms expose ``_bucket``, ``_sum``
    and ``_count`` under the name shown."""
    lines = ["| name | type | help | labels |", "|---|---|---|---|"]
    for name, kind, help_text, labels in sorted(_rows(registry)):
        lines.append(f"| `{name}` | {kind} | {_cell(help_text)} | {labels} |")
    return "\n".join(lines) + "\n"
