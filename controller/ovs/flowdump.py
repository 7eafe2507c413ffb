"""`ovs-ofctl dump-flows` text made comparable: pure, no OVS needed.

A dump carries per-flow counters and ages that change all the time; without them two
bridges holding the same flows dump the same lines, so they compare as (multi)sets.

The `send_flow_rem` flag is dropped too, deliberately: the controller sets it on every flow
so that OVS reports deletions by other connections (controller.tamper), while `osdn render`
prints the pipeline as openshift-sdn writes it, without it (it means nothing to a bridge
loaded by hand, where no controller listens).  Comparing the controller's bridge with the
render loaded by ovs-ofctl is about the pipeline; that the controller's flows carry the
flag is checked on its own (tests/integration/test_tamper.py).  Any other flag still shows.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

_STAT_RE = re.compile(
    r"\b(?:duration=[0-9.]+s|n_packets=\d+|n_bytes=\d+|idle_age=\d+|hard_age=\d+),\s*"
    r"|\bsend_flow_rem ")


def normalize_flow_dump(text: str) -> list[str]:
    """Strip the reply header, per-flow counters/ages and the controller's `send_flow_rem`
    flag from ovs-ofctl dump-flows output."""
    flows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("OFPST_FLOW", "NXST_FLOW")):
            continue
        flows.append(_STAT_RE.sub("", line))
    return flows


# ------------------------------------------------------------------ flows as comparable values
#
# `ovs-ofctl` prints a flow differently from how it was written: `reg0=8583346` comes back
# as `reg0=0x82f8b2`, `tcp_dst=53` as `tp_dst=53`, `ip_frag` as `nw_frag`, a note padded
# with zero bytes, `priority=32768` left out, the match fields in its own order; a 3.11
# node's ovs-ofctl (OVS 2.9-2.11) and ours (3.x) differ again in small ways.  `FlowKey` is
# one spelling of a flow's (table, priority, match, actions) that both sides reduce to, so a
# saved dump compares with `osdn render` without any OVS at hand.

DEFAULT_PRIORITY = 32768
_IGNORED = frozenset({"cookie", "duration", "n_packets", "n_bytes", "idle_age", "hard_age",
                      "importance"})
_FLAGS = frozenset({"send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts",
                    "no_byte_counts"})
# protocol shorthands, as the fields they stand for
_PROTOCOLS: dict[str, tuple[tuple[str, str], ...]] = {
    "ip": (("dl_type", "0x800"),),
    "ipv6": (("dl_type", "0x86dd"),),
    "arp": (("dl_type", "0x806"),),
    "icmp": (("dl_type", "0x800"), ("nw_proto", "0x1")),
    "tcp": (("dl_type", "0x800"), ("nw_proto", "0x6")),
    "udp": (("dl_type", "0x800"), ("nw_proto", "0x11")),
    "sctp": (("dl_type", "0x800"), ("nw_proto", "0x84")),
}
# other spellings of one field, as ovs-ofctl prints it
_FIELD_ALIASES = {
    "tcp_dst": "tp_dst", "udp_dst": "tp_dst", "sctp_dst": "tp_dst",
    "tcp_src": "tp_src", "udp_src": "tp_src", "sctp_src": "tp_src",
    "ip_frag": "nw_frag", "ip_src": "nw_src", "ip_dst": "nw_dst", "ip_proto": "nw_proto",
    "eth_type": "dl_type", "eth_src": "dl_src", "eth_dst": "dl_dst",
    "tun_ipv4_src": "tun_src", "tun_ipv4_dst": "tun_dst", "tunnel_id": "tun_id",
}
# the same aliases for register-like fields named in actions (`load`, `move`, `set_field`)
_ACTION_FIELD_ALIASES = {"tun_ipv4_dst": "tun_dst", "tun_ipv4_src": "tun_src",
                         "dl_dst": "eth_dst", "dl_src": "eth_src", "tunnel_id": "tun_id"}
_WHOLE_32 = re.compile(r"^(reg\d+|pkt_mark|tun_src|tun_dst)\[0\.\.31\]$")
_PORT_FIELDS = frozenset({"in_port"})


class FlowTextError(ValueError):
    """One line that is not a flow as ovs-ofctl prints or reads it."""


@dataclass(frozen=True, order=True)
class FlowKey:
    """A flow without cookie and counters, in one spelling: what two flow texts share
    exactly when OVS would hold the same flow."""

    table: int
    priority: int
    match: tuple[tuple[str, str], ...]  # sorted (field, value)
    actions: tuple[str, ...]  # in order; () is drop

    @property
    def slot(self) -> tuple[int, int, tuple[tuple[str, str], ...]]:
        """The flow's identity on a switch: a second flow with this slot replaces it."""
        return (self.table, self.priority, self.match)

    def field(self, name: str) -> str | None:
        return next((v for k, v in self.match if k == name), None)


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and brackets: `ct(commit,table=25),output:2`."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _value(text: str) -> str:
    """One spelling of a value: integers in hex, addresses without a /32, MACs lower-case."""
    value, _, mask = text.partition("/")
    try:
        if mask:
            net = ipaddress.ip_network(f"{value}/{mask}", strict=False)
            return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        number = int(value, 0)
        return f"{number:#x}" + (f"/{int(mask, 0):#x}" if mask else "")
    except ValueError:
        return text.lower()


def _action_field(text: str) -> str:
    """`NXM_NX_REG0[]` -> `reg0`, `NXM_NX_TUN_ID[0..31]` -> `tun_id[0..31]`."""
    name = re.sub(r"^(NXM_NX_|NXM_OF_|OXM_OF_)", "", text.strip()).lower().replace("[]", "")
    base, bracket, bits = name.partition("[")
    base = _ACTION_FIELD_ALIASES.get(base, base)
    name = base + bracket + bits
    if _WHOLE_32.match(name):
        name = base
    return name


def _action(text: str, ports: Mapping[str, int]) -> str | None:
    """One action in one spelling; None for `drop` (no actions)."""
    verb, sep, arg = text.partition(":")
    verb = verb.strip().lower()
    if text.strip().lower() == "drop":
        return None
    if sep and verb in ("load", "set_field"):
        value, arrow, dst = arg.partition("->")
        if not arrow:
            raise FlowTextError(f"{verb} without '->': {text!r}")
        return f"set:{_action_field(dst)}={_value(value)}"
    if sep and verb == "move":
        src, arrow, dst = arg.partition("->")
        if not arrow:
            raise FlowTextError(f"move without '->': {text!r}")
        return f"move:{_action_field(src)}->{_action_field(dst)}"
    if sep and verb == "output":
        is_field = re.match(r"(NXM_|OXM_|reg\d)", arg.strip())
        return f"output:{_action_field(arg) if is_field else _port(arg, ports)}"
    if sep and verb == "note":
        data = arg.strip().lower().split(".")
        while data and data[-1] == "00":  # OVS pads notes with zero bytes
            data.pop()
        return "note:" + ".".join(data)
    if sep and verb == "goto_table":
        return f"goto_table:{int(arg, 0)}"
    if text.startswith("ct(") and text.endswith(")"):
        return "ct(" + ",".join(sorted(_split_top(text[3:-1].replace(" ", "")))) + ")"
    if not sep and text.strip().isdigit():  # a bare port number is output
        return f"output:{int(text)}"
    return text.strip().replace(" ", "")


def _port(text: str, ports: Mapping[str, int]) -> str:
    """An ofport number, or a port name a dump printed (without --no-names) as its number."""
    text = text.strip().strip('"')
    if text.isdigit():
        return str(int(text))
    if text in ports:
        return str(ports[text])
    if text.upper() in ("LOCAL", "IN_PORT", "CONTROLLER", "NORMAL", "FLOOD", "ALL", "NONE"):
        return text.upper()
    raise FlowTextError(f"port name {text!r} is not vxlan0, tun0 or a pod's interface; "
                        "dump with `ovs-ofctl --no-names` to get numbers")


def _ct_state(value: str) -> str:
    flags = re.findall(r"[+-][a-z]+", value)
    return "".join(sorted(flags)) if flags and "".join(flags) == value else value


def flow_key(text: str, ports: Mapping[str, int] | None = None) -> FlowKey:
    """The `FlowKey` of one flow line, in `ovs-ofctl dump-flows` or `add-flows` syntax.

    `ports`: port names -> ofports, for dumps made with port names shown."""
    ports = ports or {}
    head, sep, actions_text = text.partition("actions=")
    if not sep:
        raise FlowTextError("no 'actions=': not a flow")
    table, priority = 0, DEFAULT_PRIORITY
    match: set[tuple[str, str]] = set()
    for token in (t for part in _split_top(head) for t in part.split()):  # `flag priority=`
        name, eq, value = token.partition("=")
        name = name.strip().lower()
        if not eq:
            if name in _PROTOCOLS:
                match.update(_PROTOCOLS[name])
            elif name not in _FLAGS:
                raise FlowTextError(f"unknown keyword {name!r}")
            continue
        if name in _IGNORED:
            continue
        try:
            if name == "table":
                table = int(value, 0)
            elif name == "priority":
                priority = int(value, 0)
            elif name in _PORT_FIELDS:
                match.add((name, _port(value, ports)))
            elif name == "ct_state":
                match.add((name, _ct_state(value.strip())))
            else:
                match.add((_FIELD_ALIASES.get(name, name), _value(value.strip())))
        except ValueError as error:
            raise FlowTextError(f"{name}={value}: {error}") from None
    try:
        actions = tuple(a for a in (_action(t, ports) for t in _split_top(actions_text)) if a)
    except FlowTextError:
        raise
    except ValueError as error:
        raise FlowTextError(f"actions={actions_text.strip()}: {error}") from None
    return FlowKey(table, priority, tuple(sorted(match)), actions)


@dataclass(frozen=True)
class DumpedFlow:
    """One flow of a saved dump: where it was, its text without counters, its key."""

    line: int
    text: str
    key: FlowKey


class DumpError(ValueError):
    """A file that is not (entirely) `ovs-ofctl dump-flows` output; `problems` lists every
    bad line as `file:line: what`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_flow_dump(text: str, source: str,
                    ports: Mapping[str, int] | None = None) -> list[DumpedFlow]:
    """Every flow of `ovs-ofctl [-O OpenFlow13] dump-flows` output saved in `source`; a
    `DumpError` naming every line that is not a flow."""
    flows: list[DumpedFlow] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("OFPST_FLOW", "NXST_FLOW", "#")):
            continue
        try:
            key = flow_key(line, ports)
        except FlowTextError as error:
            shown = line if len(line) <= 80 else line[:77] + "..."
            problems.append(f"{source}:{number}: {error}: {shown}")
            continue
        flows.append(DumpedFlow(number, _STAT_RE.sub("", _COOKIE_RE.sub("", line)), key))
    if len(flows) < len(problems) or not flows:
        # mostly not flows: some other file; one message, not one per line of it
        first = f" (line {problems[0].split(':')[1]} is not a flow)" if problems else ""
        what = f"{len(problems)} of {len(problems) + len(flows)} lines are not flows" \
            if flows else "no flows in it"
        problems = [f"{source}: not `ovs-ofctl -O OpenFlow13 dump-flows br0` output: "
                    f"{what}{first}"]
    if problems:
        raise DumpError(problems)
    return flows


_COOKIE_RE = re.compile(r"\bcookie=0x[0-9a-fA-F]+,\s*")
