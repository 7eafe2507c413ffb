"""Parsing `ovs-appctl ofproto/trace` (OVS 3.1) and `dpif/show` text: pure, no OVS needed.

`OvsCommands.trace` runs the tools and hands their text to `parse_trace`; the unit tests
feed it outputs captured from a real OVS (tests/unit/data/traces/).

What the text looks like, and what the parser relies on:

* the first pass starts with "Flow: ..." and a `bridge("NAME")` header; every OpenFlow
  lookup is a line "<indent>N. <match>, priority P, cookie 0xC" (or "N. No match."); the
  lines under it, indented deeper, are its actions and "-> ..." / ">> ..." notes, and the
  lookup a resubmit() makes is indented deeper too, while the one a goto_table makes follows
  at the same indentation; a pass ends with "Final flow:", "Megaflow:" and
  "Datapath actions:";
* a conntrack recirculation starts a new pass between two lines of '=' around a header
  ("recirc(0x1) - resume conntrack with default ct_state=trk|new ..."), and its first lines
  ("thaw", "Resuming from table N") precede any lookup;
* datapath actions name datapath port numbers (4789 for every vxlan port; on the dummy
  datapath a port takes the number in its name where it can), which `dpif/show` maps back to
  OpenFlow ports, per bridge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from os_ken.ofproto.ofproto_v1_0 import OFPP_LOCAL

from topology.errors import OsdnError

# OVS numbers ports the OpenFlow 1.0 way in OVSDB and in dpif/show: LOCAL is 0xfffe there.
LOCAL_OFPORT = OFPP_LOCAL


class TraceParseError(OsdnError):
    """The text is not `ofproto/trace` output this parser understands."""


@dataclass
class TraceStep:
    """One OpenFlow table lookup in a trace: the rule that matched and what it did."""

    table: int
    rule: str  # as OVS prints it: "ip,in_port=2, priority 100, cookie 0x2", or "No match."
    match: str  # "ip,in_port=2" ("" for a catch-all rule)
    priority: int | None  # None when no rule matched
    cookie: int
    actions: list[str] = field(default_factory=list)  # e.g. "load:0x3->NXM_NX_REG2[]"
    notes: list[str] = field(default_factory=list)  # "-> output port is 3", ">> ..." lines
    bridge: str = ""
    depth: int = 0  # resubmit nesting level, from indentation
    pass_index: int = 0  # 0 = first pass, 1.. = after each conntrack recirculation

    @property
    def matched(self) -> bool:
        return self.priority is not None


@dataclass
class TraceOutput:
    """A packet leaving the switch, from the datapath actions, in OpenFlow terms."""

    port: int | None  # OpenFlow port on the bridge; None if the dp port is unknown
    dp_port: int
    bridge: str | None
    tunnel: dict[str, str]  # set(tunnel(...)) in force: tun_id, src, dst, tp_dst, ...
    sets: dict[str, str]  # other set()s in force, e.g. {"eth.dst": ..., "skb_mark": ...}


@dataclass
class TracePass:
    """One translation: the first pass, or one resumed after a ct() recirculation."""

    header: str  # "" or e.g. "recirc(0x1) - resume conntrack with ct_state=new|trk"
    flow: dict[str, str]
    final_flow: dict[str, str]
    megaflow: str
    datapath_actions: str
    steps: list[TraceStep]
    outputs: list[TraceOutput]


@dataclass
class TraceResult:
    """Parsed `ofproto/trace`; `raw` is kept for failure messages."""

    raw: str
    passes: list[TracePass]
    bridge: str | None = None  # the traced bridge; others appear with userspace tunnels

    @property
    def steps(self) -> list[TraceStep]:
        """Lookups in the traced bridge (a native tunnel continues into the underlay bridge,
        whose lookups are in `all_steps`)."""
        return [s for s in self.all_steps if self.bridge is None or s.bridge in ("", self.bridge)]

    @property
    def all_steps(self) -> list[TraceStep]:
        return [s for p in self.passes for s in p.steps]

    @property
    def tables(self) -> list[int]:
        """Tables looked up, in order, over all passes (goto, resubmit and no-match included)."""
        return [s.table for s in self.steps]

    @property
    def datapath_actions(self) -> str:
        """The last pass's "Datapath actions:" (the final one when ct() recirculates)."""
        return self.passes[-1].datapath_actions if self.passes else ""

    @property
    def final_flow(self) -> dict[str, str]:
        return self.passes[-1].final_flow if self.passes else {}

    @property
    def outputs(self) -> list[TraceOutput]:
        return [o for p in self.passes for o in p.outputs]

    @property
    def dropped(self) -> bool:
        """True when no pass sends the packet out of any port."""
        return not self.outputs

    def output_ports(self) -> list[int | None]:
        """OpenFlow ports of the traced bridge the packet really leaves on (datapath actions
        mapped back; a native tunnel counts as its tunnel port)."""
        return [o.port for o in self.outputs
                if self.bridge is None or o.bridge in (None, self.bridge)]

    def of_output_ports(self) -> list[int]:
        """Ports named by OpenFlow output actions (output:N, output:REG resolved by OVS)."""
        ports: list[int] = []
        for s in self.steps:
            for a in s.actions:
                m = re.fullmatch(r"output:(\d+)", a)
                if m:
                    ports.append(int(m.group(1)))
            for n in s.notes:
                m = re.fullmatch(r"-> output port is (\d+)", n)
                if m:
                    ports.append(int(m.group(1)))
        return ports

    @property
    def tunnel(self) -> dict[str, str]:
        """The set(tunnel(...)) fields of the first tunnelled output ({} if none)."""
        return next((o.tunnel for o in self.outputs if o.tunnel), {})

    def step(self, table: int) -> TraceStep:
        """The first lookup in `table` (KeyError if the trace never reached it)."""
        for s in self.steps:
            if s.table == table:
                return s
        raise KeyError(f"table {table} not visited; tables {self.tables}\n{self.raw}")

    def actions(self, table: int) -> list[str]:
        return [a for s in self.steps if s.table == table for a in s.actions]

    def field(self, name: str) -> str | None:
        """A field of the final flow, e.g. field("reg0"), field("pkt_mark"), field("dl_dst")."""
        return self.final_flow.get(name)

    def __str__(self) -> str:
        return self.raw


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses/brackets."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur or parts:
        parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_flow_fields(text: str) -> dict[str, str]:
    """"ip,in_port=2,nw_src=10.0.0.1" -> {"ip": "", "in_port": "2", "nw_src": "10.0.0.1"}."""
    fields: dict[str, str] = {}
    for part in split_top(text):
        key, _, value = part.partition("=")
        fields[key] = value
    return fields


def parse_dpif_show(text: str) -> dict[str, dict[int, int]]:
    """`dpif/show` -> {bridge: {dp_port: ofport}} (dp ports differ from ofports on dummy)."""
    result: dict[str, dict[int, int]] = {}
    bridge = None
    for line in text.splitlines():
        m = re.fullmatch(r"  (\S+):", line)
        if m:
            bridge = m.group(1)
            result[bridge] = {}
            continue
        m = re.match(r"\s{4,}\S+ (\d+|LOCAL)/(\d+):", line)
        if m and bridge is not None:
            ofport = LOCAL_OFPORT if m.group(1) == "LOCAL" else int(m.group(1))
            result[bridge][int(m.group(2))] = ofport
    return result


_TABLE_RE = re.compile(r"^(\s*)(\d+)\. (.*)$")
_RULE_RE = re.compile(r"^(?P<match>.*?)(?:, )?priority (?P<prio>\d+)"
                      r"(?:, cookie (?P<cookie>0x[0-9a-fA-F]+))?$")


def _parse_dp_actions(actions: str, dp_ports: dict[str, dict[int, int]],
                      bridge: str | None) -> list[TraceOutput]:
    """Walk datapath actions in order, tracking set()s, and record each port output."""
    outputs: list[TraceOutput] = []

    def lookup(dp: int) -> tuple[int | None, str | None]:
        if bridge and dp in dp_ports.get(bridge, {}):
            return dp_ports[bridge][dp], bridge
        for br, ports in dp_ports.items():
            if dp in ports:
                return ports[dp], br
        return None, None

    def walk(text: str, tunnel: dict[str, str], sets: dict[str, str]) -> None:
        tunnel, sets = dict(tunnel), dict(sets)
        for act in split_top(text):
            if act.isdigit():
                port, br = lookup(int(act))
                outputs.append(TraceOutput(port, int(act), br, dict(tunnel), dict(sets)))
            elif act.startswith("set(tunnel(") or act.startswith("set(tunnel6("):
                inner = act[act.index("(", 4) + 1:-2]
                tunnel = {}
                for part in split_top(inner):
                    k, _, v = part.partition("=")
                    m = re.fullmatch(r"(\w+)\((.*)\)", k)  # flags(df|key)
                    tunnel[m.group(1) if m else k] = m.group(2) if m else v
            elif act.startswith(("set(", "set_masked(")):
                inner = act[act.index("(") + 1:-1]  # e.g. eth(dst=..) / skb_mark(0x1)
                m = re.fullmatch(r"(\w+)\((.*)\)", inner)
                if m:
                    name, body = m.groups()
                    if "=" in body:
                        for part in split_top(body):
                            k, _, v = part.partition("=")
                            sets[f"{name}.{k}"] = v
                    else:
                        sets[name] = body
            elif act.startswith("tnl_push("):
                # userspace (native) tunnelling: the packet leaves through the tunnel port
                # with this header; the outputs after it carry the encapsulated packet
                tnl_port = re.search(r"tnl_port\((\d+)\)", act)
                pushed = {"src": re.search(r"ipv4\(src=([^,]+)", act),
                          "dst": re.search(r"ipv4\(src=[^,]+,dst=([^,]+)", act),
                          "tun_id": re.search(r"vni=(0x[0-9a-f]+)", act),
                          "tp_dst": re.search(r"udp\(src=\d+,dst=(\d+)", act)}
                tunnel = {k: m.group(1) for k, m in pushed.items() if m}
                if tnl_port:
                    dp_port = int(tnl_port.group(1))
                    of_port, br = lookup(dp_port)
                    outputs.append(TraceOutput(of_port, dp_port, br, dict(tunnel), dict(sets)))
            elif act.startswith("clone("):
                walk(act[len("clone("):-1], tunnel, sets)

    if actions and actions != "drop":
        walk(actions, {}, {})
    return outputs


def parse_trace(raw: str, dp_ports: dict[str, dict[int, int]] | None = None,
                bridge: str | None = None) -> TraceResult:
    """Parse OVS 3.1 `ofproto/trace` text into passes of table steps.

    Table lines look like " 0. ip,in_port=2, priority 100, cookie 0x2" (or "20. No match."),
    indented deeper for resubmits; the lines under them are actions, "-> ..." notes, or a
    nested table. A line of '=' starts a new pass (a ct() recirculation being resumed).
    """
    dp_ports = dp_ports or {}
    passes: list[TracePass] = []
    chunks: list[tuple[str, list[str]]] = [("", [])]
    lines = raw.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"=+", line.strip()) and line.strip():
            # "=====" / header / "=====": start a new pass
            header = lines[i + 1].strip() if i + 1 < len(lines) else ""
            chunks.append((header, []))
            i += 3
            continue
        chunks[-1][1].append(line)
        i += 1

    for index, (header, body) in enumerate(chunks):
        flow: dict[str, str] = {}
        final_text = ""
        megaflow = ""
        dp_actions = ""
        steps: list[TraceStep] = []
        stack: list[tuple[TraceStep, int | None, int]] = []  # (step, action indent, line indent)
        cur_bridge = bridge or ""
        for line in body:
            if not line.strip() or re.fullmatch(r"-+", line.strip()):
                continue
            if line.startswith("Flow: "):
                flow = parse_flow_fields(line[len("Flow: "):])
                continue
            if line.startswith("Final flow: "):
                final_text = line[len("Final flow: "):]
                continue
            if line.startswith("Megaflow: "):
                megaflow = line[len("Megaflow: "):]
                continue
            if line.startswith("Datapath actions: "):
                dp_actions = line[len("Datapath actions: "):].strip()
                continue
            stripped = line.strip()
            indent = len(line) - len(line.lstrip(" "))
            m = re.fullmatch(r'bridge\("([^"]+)"\)', stripped)
            if m:
                cur_bridge = m.group(1)
                continue
            m = _TABLE_RE.match(line)
            if m:
                rule = m.group(3).strip()
                rm = _RULE_RE.match(rule)
                # depth: how many open steps have a smaller line indent
                depth = sum(1 for _, _, li in stack if li < len(m.group(1)))
                step = TraceStep(
                    table=int(m.group(2)), rule=rule,
                    match=rm.group("match").rstrip(",") if rm else "",
                    priority=int(rm.group("prio")) if rm else None,
                    cookie=int(rm.group("cookie"), 16) if rm and rm.group("cookie") else 0,
                    bridge=cur_bridge, depth=depth, pass_index=index)
                steps.append(step)
                stack.append((step, None, len(m.group(1))))
                continue
            if not stack:
                continue  # "thaw" / "Resuming from table N" before the first step
            if stack[-1][1] is None:
                s, _, li = stack[-1]
                stack[-1] = (s, indent, li)
            while len(stack) > 1 and (stack[-1][1] or 0) > indent:
                stack.pop()
            owner = stack[-1][0]
            if stripped.startswith(("->", ">>")):
                owner.notes.append(stripped)
            else:
                owner.actions.append(stripped)
        final_flow = dict(flow) if final_text in ("", "unchanged") else parse_flow_fields(
            final_text)
        passes.append(TracePass(header, flow, final_flow, megaflow, dp_actions, steps,
                                _parse_dp_actions(dp_actions, dp_ports, bridge)))
    if not passes[0].datapath_actions and not passes[0].steps:
        raise TraceParseError(f"unrecognised ofproto/trace output:\n{raw}")
    return TraceResult(raw, passes, bridge)
