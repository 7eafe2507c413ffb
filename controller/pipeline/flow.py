"""One Flow value type, and its ovs-ofctl text.

os-ken message objects are poor values (no equality before serialization, costly to
build), so the compiler produces these frozen dataclasses instead, and `controller.openflow`
turns them into OpenFlow (`osken_flow` as os-ken objects, `encoding` as bytes).  A flow's
identity on the switch is `(table, priority, match)` (`Flow.key`); the cookie and the
actions are what an update may change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from controller.pipeline.cookies import Owner
from controller.pipeline.registers import RegField
from controller.pipeline.tables import Table, check_goto

DEFAULT_PRIORITY = 32768  # OpenFlow's default, used where openshift-sdn names none
ETH_IP = 0x0800
ETH_ARP = 0x0806


class Proto(enum.Enum):
    """ovs-ofctl's protocol shorthands, with what they stand for."""

    IP = ("ip", ETH_IP, None)
    ARP = ("arp", ETH_ARP, None)
    TCP = ("tcp", ETH_IP, 6)
    UDP = ("udp", ETH_IP, 17)

    def __init__(self, text: str, eth_type: int, ip_proto: int | None) -> None:
        self.text = text
        self.eth_type = eth_type
        self.ip_proto = ip_proto


def _net_text(net: IPv4Network) -> str:
    return str(net.network_address) if net.prefixlen == 32 else str(net)


@dataclass(frozen=True)
class Match:
    """The match fields openshift-sdn 3.11 uses; None means wildcarded."""

    in_port: int | None = None
    proto: Proto | None = None
    reg0: int | None = None
    reg1: int | None = None
    ct_state: str | None = None  # e.g. "-trk", "+rpl"
    tun_src: IPv4Address | None = None
    arp_spa: IPv4Network | None = None
    arp_tpa: IPv4Network | None = None
    arp_sha: tuple[str, str] | None = None  # (value, mask)
    nw_src: IPv4Network | None = None
    nw_dst: IPv4Network | None = None
    ip_frag_later: bool = False
    tp_dst: int | None = None

    def __post_init__(self) -> None:
        if (self.nw_src, self.nw_dst) != (None, None) and self.proto in (None, Proto.ARP):
            raise ValueError("nw_src/nw_dst need an IP protocol")
        if any(v is not None for v in (self.arp_spa, self.arp_tpa, self.arp_sha)) \
                and self.proto is not Proto.ARP:
            raise ValueError("arp_* fields need proto ARP")
        if self.tp_dst is not None and self.proto not in (Proto.TCP, Proto.UDP):
            raise ValueError("tp_dst needs tcp or udp")
        if self.ip_frag_later and self.proto is None:
            raise ValueError("ip_frag needs an IP protocol")

    def to_ofctl(self) -> str:
        parts: list[str] = []
        if self.reg0 is not None:
            parts.append(f"reg0={self.reg0}")
        if self.reg1 is not None:
            parts.append(f"reg1={self.reg1}")
        if self.in_port is not None:
            parts.append(f"in_port={self.in_port}")
        if self.proto is not None:
            parts.append(self.proto.text)
        if self.ct_state is not None:
            parts.append(f"ct_state={self.ct_state}")
        if self.tun_src is not None:
            parts.append(f"tun_src={self.tun_src}")
        for name in ("arp_spa", "arp_tpa", "nw_src", "nw_dst"):
            net = getattr(self, name)
            if net is not None:
                parts.append(f"{name}={_net_text(net)}")
        if self.arp_sha is not None:
            parts.append(f"arp_sha={self.arp_sha[0]}/{self.arp_sha[1]}")
        if self.ip_frag_later:
            parts.append("ip_frag=later")
        if self.tp_dst is not None:
            assert self.proto is not None
            parts.append(f"{self.proto.text}_dst={self.tp_dst}")
        return ", ".join(parts)


# ---------------------------------------------------------------------------- actions

@dataclass(frozen=True)
class Output:
    port: int

    def to_ofctl(self) -> str:
        return f"output:{self.port}"


@dataclass(frozen=True)
class OutputReg:
    reg: RegField

    def to_ofctl(self) -> str:
        return f"output:{self.reg.nxm}"


@dataclass(frozen=True)
class LoadReg:
    """load:<value>->NXM_NX_REGn[] (the whole register, as openshift-sdn writes it)."""

    reg: RegField
    value: int

    def __post_init__(self) -> None:
        self.reg.check(self.value)

    def to_ofctl(self) -> str:
        return f"load:{self.value}->{self.reg.nxm}"


@dataclass(frozen=True)
class LoadTunId:
    """load:<vnid>->NXM_NX_TUN_ID[0..31] (the F5 fixed-VNID HostSubnet)."""

    value: int

    def to_ofctl(self) -> str:
        return f"load:{self.value}->NXM_NX_TUN_ID[0..31]"


@dataclass(frozen=True)
class MoveTunIdToReg:
    """move:NXM_NX_TUN_ID[0..31]->reg: the VNID a VXLAN packet carries."""

    reg: RegField

    def to_ofctl(self) -> str:
        return f"move:NXM_NX_TUN_ID[0..31]->{self.reg.nxm}"


@dataclass(frozen=True)
class MoveRegToTunId:
    """move:reg->NXM_NX_TUN_ID[0..31]: send the source VNID through the tunnel."""

    reg: RegField

    def to_ofctl(self) -> str:
        return f"move:{self.reg.nxm}->NXM_NX_TUN_ID[0..31]"


class SetFieldName(enum.Enum):
    TUN_DST = ("tun_dst", "tun_ipv4_dst")
    ETH_DST = ("eth_dst", "eth_dst")
    PKT_MARK = ("pkt_mark", "pkt_mark")

    def __init__(self, ofctl: str, osken: str) -> None:
        self.ofctl = ofctl
        self.osken = osken


@dataclass(frozen=True)
class SetField:
    name: SetFieldName
    value: str | int

    def to_ofctl(self) -> str:
        value = f"0x{self.value:08x}" if isinstance(self.value, int) else self.value
        return f"set_field:{value}->{self.name.ofctl}"


@dataclass(frozen=True)
class Conntrack:
    """ct(...): commit and/or nat, then optionally recirculate to a table."""

    commit: bool = False
    table: Table | None = None
    nat: bool = False

    def to_ofctl(self) -> str:
        args = [a for a, on in (("commit", self.commit), ("nat", self.nat)) if on]
        if self.table is not None:
            args.append(f"table={int(self.table)}")
        return f"ct({','.join(args)})"


@dataclass(frozen=True)
class Note:
    data: bytes

    def to_ofctl(self) -> str:
        return "note:" + ".".join(f"{b:02x}" for b in self.data)


Action = Output | OutputReg | LoadReg | LoadTunId | MoveTunIdToReg | MoveRegToTunId \
    | SetField | Conntrack | Note


# ---------------------------------------------------------------------------- flow

@dataclass(frozen=True)
class Flow:
    table: Table
    priority: int
    match: Match
    owner: Owner = field(compare=False)
    actions: tuple[Action, ...] = ()
    goto: Table | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.priority <= 0xFFFF:
            raise ValueError(f"priority {self.priority} outside 0..65535")
        if self.goto is not None:
            check_goto(self.table, self.goto)
        for action in self.actions:
            if isinstance(action, Conntrack) and action.table is not None:
                check_goto(self.table, action.table)

    @property
    def key(self) -> tuple[int, int, Match]:
        """Identity on the switch: a second add with this key replaces the flow."""
        return (int(self.table), self.priority, self.match)

    @property
    def cookie(self) -> int:
        return self.owner.cookie

    @property
    def is_drop(self) -> bool:
        return not self.actions and self.goto is None

    def actions_ofctl(self) -> str:
        parts = [a.to_ofctl() for a in self.actions]
        if self.goto is not None:
            parts.append(f"goto_table:{int(self.goto)}")
        return ",".join(parts) or "drop"

    def to_ofctl(self) -> str:
        """One line for `ovs-ofctl -O OpenFlow13 --bundle add-flows`."""
        head = f"cookie=0x{self.cookie:016x}, table={int(self.table)}, priority={self.priority}"
        match = self.match.to_ofctl()
        return f"{head}{', ' + match if match else ''}, actions={self.actions_ofctl()}"


def sort_key(flow: Flow) -> tuple[int, int, str]:
    """Stable render order: table, then priority descending, then match and actions text."""
    return (int(flow.table), -flow.priority, f"{flow.match.to_ofctl()} {flow.actions_ofctl()}")
