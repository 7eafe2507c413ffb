"""A node's desired flows, merged from compiler units as compile_node merges them.

Each unit is run with a recorder in place of `FlowSet`: its adds and warnings are kept in
order (to replay them as compile_node would), and its flows encoded, by key.  Each flow key
normally has one unit.  When several units want one key (two namespaces sharing a VNID
can), the unit that comes first in compile_node's order wins, as `FlowSet` keeps the first
add; `replay()` runs all units' adds in that order, warnings included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic

from controller.compiler.context import FlowSet, NodeContext
from controller.compiler.unit import UnitId, UnitKind
from controller.pipeline.cookies import CookieRegistry, Owner
from controller.pipeline.encoded import E, FlowEncoder, Key
from controller.pipeline.flow import Action, Flow, Match
from controller.pipeline.tables import Table


class _Warnings(list[str]):
    """A unit's `out.warnings`: each warning also goes into the unit's log, in order."""

    def __init__(self, log: list[Any]) -> None:
        super().__init__()
        self._log = log

    def append(self, text: str) -> None:
        super().append(text)
        self._log.append(text)


class _Recorder:
    """Stands in for `FlowSet` while a unit runs: records each add and warning in order."""

    def __init__(self) -> None:
        self.log: list[Flow | str] = []
        self.warnings: list[str] = _Warnings(self.log)

    def add(self, owner: Owner, table: Table, priority: int, match: Match,
            actions: Sequence[Action] = (), goto: Table | None = None) -> None:
        self.log.append(Flow(table, priority, match, owner, tuple(actions), goto))


class Unit(Generic[E]):
    __slots__ = ("uid", "log", "flows", "owners")

    def __init__(self, uid: UnitId, log: list[Flow | str], flows: dict[Key, E],
                 owners: dict[Owner, int]) -> None:
        self.uid = uid
        self.log = log  # what the unit's code did: Flows added and warnings, in order
        self.flows = flows  # its flows by key, the first add of a key kept (as FlowSet does)
        self.owners = owners  # owner -> cookie


def _unordered(uid: UnitId) -> Any:
    raise AssertionError("no unit order: no topology yet")


class DesiredFlows(Generic[E]):
    """The merged flows of a node's units: `flows` (key -> encoded flow), how many per table,
    and the keys whose flow changed (`dirty`).  `order` says which unit comes first."""

    def __init__(self, encode: FlowEncoder[E]) -> None:
        self.encode = encode
        self.order: Callable[[UnitId], Any] = _unordered  # set for each topology
        self.dirty: set[Key] = set()
        self._empty()

    def _empty(self) -> None:
        self.flows: dict[Key, E] = {}
        self.table_counts: dict[int, int] = {}
        self.units: dict[UnitId, Unit[E]] = {}
        self.contested: dict[Key, list[UnitId]] = {}  # key -> every unit that wants it
        self._holder: dict[Key, UnitId] = {}  # key -> the unit whose flow is desired
        self._owner_refs: dict[Owner, int] = {}  # owner -> how many units have its flows
        self._cookies = CookieRegistry()

    def clear(self) -> None:
        """No units any more; every key desired so far is dirty."""
        self.dirty.update(self.flows)
        self._empty()

    def idents(self, kind: UnitKind[Any]) -> set[Any]:
        """The idents of the units of `kind` there are."""
        return {ident for unit_kind, ident in self.units if unit_kind is kind}

    def run(self, uid: UnitId, member: Any, ctx: NodeContext) -> None:
        """Unit `uid` computed anew for `member` and merged in place of what it had."""
        if uid in self.units:
            self.remove(uid)
        self._add(self._compute(uid, member, ctx))

    def _compute(self, uid: UnitId, member: Any, ctx: NodeContext) -> Unit[E]:
        recorder = _Recorder()
        ctx.out = recorder
        uid[0].compute(ctx, member)
        owners: dict[Owner, int] = {}
        flows: dict[Key, E] = {}
        encode = self.encode
        for item in recorder.log:
            if isinstance(item, str):
                continue
            owner = item.owner
            cookie = owners.get(owner)
            if cookie is None:
                cookie = owners[owner] = owner.cookie
            encoded = encode(item, cookie)
            flows.setdefault(encoded.key, encoded)
        return Unit(uid, recorder.log, flows, owners)

    def _add(self, unit: Unit[E]) -> None:
        refs = self._owner_refs
        for owner, cookie in unit.owners.items():
            count = refs.get(owner)
            if count is None:
                self._cookies.register(owner, cookie)
                refs[owner] = 1
            else:
                refs[owner] = count + 1
        uid = unit.uid
        self.units[uid] = unit
        holder, desired, dirty, counts = self._holder, self.flows, self.dirty, self.table_counts
        for key, encoded in unit.flows.items():
            current = holder.get(key)
            if current is None:
                holder[key] = uid
                desired[key] = encoded
                counts[key[0]] = counts.get(key[0], 0) + 1
            else:
                holders = self.contested.setdefault(key, [current])
                holders.append(uid)
                winner = min(holders, key=self.order)
                holder[key] = winner
                desired[key] = self.units[winner].flows[key]
            dirty.add(key)

    def remove(self, uid: UnitId) -> None:
        """Unit `uid` gone, with the flows that only it wanted."""
        unit = self.units.pop(uid, None)
        if unit is None:
            return
        refs = self._owner_refs
        for owner, cookie in unit.owners.items():
            count = refs[owner] - 1
            if count:
                refs[owner] = count
            else:
                del refs[owner]
                self._cookies.forget(cookie)
        holder, desired, dirty, counts = self._holder, self.flows, self.dirty, self.table_counts
        for key in unit.flows:
            holders = self.contested.get(key)
            if holders is None:
                del holder[key]
                del desired[key]
                counts[key[0]] -= 1
                if not counts[key[0]]:
                    del counts[key[0]]
            else:
                holders.remove(uid)
                winner = min(holders, key=self.order)
                if len(holders) == 1:
                    del self.contested[key]
                holder[key] = winner
                desired[key] = self.units[winner].flows[key]
            dirty.add(key)

    def replay(self) -> FlowSet:
        """Every unit's adds and warnings replayed in compile_node's order through a FlowSet."""
        out = FlowSet()
        for uid in sorted(self.units, key=self.order):
            for item in self.units[uid].log:
                if isinstance(item, str):
                    out.warnings.append(item)
                else:
                    out.add(item.owner, item.table, item.priority, item.match, item.actions,
                            item.goto)
        return out
