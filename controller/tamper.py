"""Noticing a bridge changed behind the controller's back; no I/O.

What the controller believes a bridge holds (`BridgeSession.installed`, updated by its own
bundles) can go stale when someone else changes the bridge: `ovs-ofctl del-flows br0`, one
table deleted, a foreign flow added.  openshift-sdn 3.11 looks at its table-253 version note
for this (every 30 s) and sets the whole bridge up again; here the node agent notices within
about a second and repairs by diff, from two signals:

* **Flow removed.** Every flow we install carries OFPFF_SEND_FLOW_REM
  (`controller.openflow.encoding.FLOW_MOD_FLAGS`), so OVS reports each deletion at once, to
  every controller connection, ours included.  A removal is somebody else's when the flow is
  one we believe installed (same key and cookie) and not one of the bundle we are applying
  right now (`BridgeSession.in_flight`: os-ken hands us the switch's messages in order, so
  the removals caused by our own commit arrive before its barrier reply ends the bundle).
* **Audit.** Added flows are never reported, and a removal could be missed; a periodic audit
  (`audit_interval`) compares the switch's per-table flow counts (one OFPMP_TABLE request)
  and its table-253 note with the model.  Only when they disagree does it dump every flow.

Either way the repair is the ordinary reconcile: dump, diff, one bundle of exactly what is
missing, changed or extra.  A false alarm costs one dump and sends nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from controller.openflow.wire import Encoded, InstalledFlow, Key, RemovedFlow
from controller.pipeline.tables import Table
from controller.reconcile import Plan

__all__ = ["count_differences", "describe_repair", "note_differs", "removed_by_someone_else",
           "table_counts"]


def removed_by_someone_else(removed: RemovedFlow, installed: Mapping[Key, InstalledFlow],
                            in_flight: frozenset[Key]) -> bool:
    """True when the switch removed a flow we believe it holds, and not by our bundle."""
    if removed.key in in_flight:
        return False
    current = installed.get(removed.key)
    return current is not None and current.cookie == removed.cookie


def table_counts(flows: Iterable[InstalledFlow]) -> Counter[int]:
    return Counter(flow.table for flow in flows)


def count_differences(expected: Mapping[int, int], actual: Mapping[int, int]) -> list[str]:
    """"table 20: 0 flows, expected 5" for each table whose counts differ, by table."""
    return [f"table {table}: {actual.get(table, 0)} flows, expected {expected.get(table, 0)}"
            for table in sorted(set(expected) | set(actual))
            if expected.get(table, 0) != actual.get(table, 0)]


def _content(flows: Mapping[Key, InstalledFlow]) -> dict[Key, tuple[int, bytes, int]]:
    return {key: (flow.cookie, flow.instructions, flow.flags) for key, flow in flows.items()}


def note_differs(installed: Mapping[Key, InstalledFlow],
                 note_table: Mapping[Key, InstalledFlow]) -> bool:
    """Whether table 253 as read from the switch differs from what we believe it holds."""
    believed = {key: flow for key, flow in installed.items()
                if key[0] == Table.VERSION_NOTE}
    return _content(believed) != _content(note_table)


def _by_table(flows: Iterable[Encoded | InstalledFlow]) -> str:
    tables = Counter(flow.key[0] for flow in flows)
    return ", ".join(f"table {table}: {count}" for table, count in sorted(tables.items()))


def describe_repair(plan: Plan) -> str:
    """What a repair changes, per table: "restored 5 (table 0: 2, table 20: 3); ...".
    `plan` from `diff_encoded` (its flows have keys)."""
    parts = []
    for what, flows in (("restored", plan.adds), ("rewrote", plan.modifies),
                        ("deleted stale", plan.deletes), ("removed foreign", plan.foreign)):
        if flows:
            parts.append(f"{what} {len(flows)} ({_by_table(flows)})")
    return "; ".join(parts) or "nothing to change"
