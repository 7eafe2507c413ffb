"""Diff a bridge's installed flows against the desired set: no I/O, bytes in, plan out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.openflow.encoding import FLOW_MOD_FLAGS
from controller.openflow.wire import Encoded, InstalledFlow, Key, encode
from controller.pipeline.cookies import is_ours
from controller.pipeline.flow import Flow


@dataclass
class Plan:
    # adds and modifies hold Flows (from `diff`) or Encoded flows (from `diff_encoded`)
    adds: list[Any] = field(default_factory=list)  # new keys
    modifies: list[Any] = field(default_factory=list)  # same key, other cookie, actions, flags
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
    (table, priority, match) and, unlike MODIFY, also replaces its cookie and flags.  A flow
    without our flags (`FLOW_MOD_FLAGS`: put there by hand, or by an older controller) counts
    as changed, so that every flow of ours reports its removal."""
    return diff_encoded({(e := encode(flow)).key: e for flow in desired},
                        {flow.key: flow for flow in installed}, None, remove_foreign,
                        as_flows=True)


def diff_encoded(desired: Mapping[Key, Encoded], installed: Mapping[Key, InstalledFlow],
                 keys: Iterable[Key] | None = None, remove_foreign: bool = True, *,
                 as_flows: bool = False) -> Plan:
    """`diff` over flows already encoded and keyed (what `NodeCompiler` keeps and what a
    flow dump gives).  `keys`: only these keys can differ (the ones a `NodeCompiler` update
    reported), so only they are compared; None compares everything.  `as_flows`: put Flows
    rather than Encoded flows in `adds` and `modifies`."""
    plan = Plan()
    adds, modifies, deletes, foreign = plan.adds, plan.modifies, plan.deletes, plan.foreign
    if keys is None:
        for key, wanted in desired.items():
            current = installed.get(key)
            if current is None:
                adds.append(wanted)
            elif (current.cookie != wanted.cookie or current.instructions != wanted.instructions
                  or current.flags != FLOW_MOD_FLAGS):
                modifies.append(wanted)
        leftovers: Iterable[InstalledFlow] = (flow for key, flow in installed.items()
                                              if key not in desired)
    else:
        gone: list[InstalledFlow] = []
        for key in keys:
            maybe_wanted, current = desired.get(key), installed.get(key)
            if maybe_wanted is None:
                if current is not None:
                    gone.append(current)
            elif current is None:
                adds.append(maybe_wanted)
            elif (current.cookie != maybe_wanted.cookie
                  or current.instructions != maybe_wanted.instructions
                  or current.flags != FLOW_MOD_FLAGS):
                modifies.append(maybe_wanted)
        leftovers = gone
    for leftover in leftovers:
        if is_ours(leftover.cookie):
            deletes.append(leftover)
        elif remove_foreign:
            foreign.append(leftover)
    if as_flows:
        plan.adds = [e.flow for e in adds]
        plan.modifies = [e.flow for e in modifies]
    return plan
