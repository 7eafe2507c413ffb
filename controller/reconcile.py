"""Diff a bridge's installed flows against the desired set: no I/O, bytes in, plan out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from controller.cookies import is_ours
from controller.flow import Flow
from controller.wire import InstalledFlow, encode


@dataclass
class Plan:
    adds: list[Flow] = field(default_factory=list)  # new keys
    modifies: list[Flow] = field(default_factory=list)  # same key, other cookie or actions
    deletes: list[InstalledFlow] = field(default_factory=list)  # ours, no longer desired
    foreign: list[InstalledFlow] = field(default_factory=list)  # not in our cookie space

    @property
    def flow_mods(self) -> int:
        return len(self.adds) + len(self.modifies) + len(self.deletes) + len(self.foreign)

    def __bool__(self) -> bool:
        return self.flow_mods > 0


def diff(desired: Iterable[Flow], installed: Iterable[InstalledFlow],
         remove_foreign: bool = True) -> Plan:
    """What to send so that the bridge holds exactly `desired` (plus foreign flows, unless
    `remove_foreign`).  A changed flow is re-added: OFPFC_ADD replaces the flow with the same
    (table, priority, match) and, unlike MODIFY, also replaces its cookie."""
    plan = Plan()
    have = {flow.key: flow for flow in installed}
    for flow in desired:
        encoded = encode(flow)
        current = have.pop(encoded.key, None)
        if current is None:
            plan.adds.append(flow)
        elif (current.cookie, current.instructions) != (encoded.cookie, encoded.instructions):
            plan.modifies.append(flow)
    for leftover in have.values():
        if is_ours(leftover.cookie):
            plan.deletes.append(leftover)
        elif remove_foreign:
            plan.foreign.append(leftover)
    return plan
