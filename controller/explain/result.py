"""What `explain` answers: the verdict, one sentence, and every bridge (or host-side) pass.

`Explanation.text()` walks it the way one explains br0 by hand: per node, each table visited
with what the table is for, the flow that matched, the object the flow belongs to and the
registers it set; then what happens after the packet leaves; then the verdict.
`to_json()` is the same as data.  Pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("delivered", "dropped", "left the cluster")


@dataclass
class Step:
    """One table lookup (br0) or one host-side rule (then `table` is None)."""

    table: int | None
    meaning: str  # "20 pod ingress: source checked, source VNID loaded", or "nat PREROUTING"
    flow: str  # the matched flow as OVS prints it ("No match." on a miss), or the rule
    actions: list[str] = field(default_factory=list)
    cookie: int | None = None
    object: str = ""  # "Pod default/web-1 (10.130.0.5)"
    registers: list[str] = field(default_factory=list)  # "reg0 = 100 (namespace red)"
    pass_index: int = 0  # 0, or 1.. after each conntrack recirculation


@dataclass
class Hop:
    """One pass through one node: its br0 (`kind` "br0") or its host side ("host")."""

    node: str
    kind: str  # "br0" or "host"
    input: str  # the ofproto/trace flow, or the packet as the host side sees it
    steps: list[Step]
    outcome: str  # "output to port 3 (port of Pod default/web)", "tunnelled to node1 ..."
    bridge: str = ""
    notes: list[str] = field(default_factory=list)  # conntrack passes, registers at the end
    raw: str = ""  # ofproto/trace's text (br0 hops)

    @property
    def tables(self) -> list[int]:
        return [s.table for s in self.steps if s.table is not None]


@dataclass
class Delivered:
    """Where a delivered packet ends: a pod (`pod` = its key) or a node's host network."""

    node: str
    pod: str | None
    address: str


@dataclass
class Explanation:
    src: dict[str, Any]  # Endpoint.to_json()
    dst: dict[str, Any]
    plugin: str
    verdict: str  # one of VERDICTS
    sentence: str
    hops: list[Hop]
    reason: str = ""  # why it was dropped (or how it left); "" when delivered
    drop_node: str | None = None
    drop_table: int | None = None  # None: dropped on the host side, not in br0
    delivered_to: Delivered | None = None
    notes: list[str] = field(default_factory=list)
    branches: list[Explanation] = field(default_factory=list)  # other Service backends

    def path(self) -> list[tuple[str, int]]:
        """(node, table) of every br0 lookup, in order, across nodes."""
        return [(hop.node, t) for hop in self.hops if hop.kind == "br0" for t in hop.tables]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = [[node, table] for node, table in self.path()]
        for hop in data["hops"]:
            for step in hop["steps"]:
                if step["cookie"] is not None:
                    step["cookie"] = f"0x{step['cookie']:x}"
        data["branches"] = [b.to_json() for b in self.branches]
        return data

    def text(self, raw: bool = False) -> str:
        lines = [f"{self.src['label']} -> {self.dst['label']}"
                 f"{' ' + self.dst['protocol'] if self.dst.get('protocol') else ''}"
                 f", under {self.plugin}"]
        lines += [f"  note: {n}" for n in self.notes]
        for hop in self.hops:
            lines.append("")
            where = f"br0 ({hop.bridge})" if hop.kind == "br0" and hop.bridge not in (
                "", "br0") else ("br0" if hop.kind == "br0" else "host side (iptables)")
            lines.append(f"{hop.node}, {where}: {hop.input}")
            for step in hop.steps:
                lines.extend(_step_lines(step))
            lines += [f"  . {n}" for n in hop.notes]
            lines.append(f"  => {hop.outcome}")
            if raw and hop.raw:
                lines += ["  | " + r for r in hop.raw.splitlines()]
        lines += ["", f"Verdict: {self.verdict}: {self.sentence}"]
        for branch in self.branches:
            lines += ["", "--- another backend ---", branch.text(raw)]
        return "\n".join(lines) + "\n"


def _step_lines(step: Step) -> list[str]:
    head = f"  table {step.meaning}" if step.table is not None else f"  {step.meaning}"
    if step.pass_index:
        head += f"   [after conntrack, pass {step.pass_index + 1}]"
    lines = [head, f"      flow:   {step.flow}"]
    if step.actions:
        lines.append(f"      does:   {', '.join(step.actions)}")
    if step.object:
        lines.append(f"      object: {step.object}")
    lines += [f"      sets:   {r}" for r in step.registers]
    return lines
