"""A `Flow` as os-ken builds it: an OFPFlowMod with os-ken's own match and action objects.

This is the reference rendering: `controller.openflow.encoding` packs the same bytes without
os-ken objects (tests/unit/test_encoding.py compares both for every flow kind), and
tests/integration/test_osken_encoding.py shows OVS reads it as the ovs-ofctl text of the flow.
The compiler never sees this module: its flows are plain values (`controller.pipeline.flow`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

from os_ken.ofproto import nicira_ext
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.pipeline.flow import (
    Action,
    Conntrack,
    Flow,
    LoadReg,
    LoadTunId,
    Match,
    MoveRegToTunId,
    MoveTunIdToReg,
    Note,
    Output,
    OutputReg,
    SetField,
)

TUN_ID = "tunnel_id_nxm"  # os-ken's name of NXM_NX_TUN_ID
CT_STATE_BITS = {"trk": 0x20, "rpl": 0x08}  # OVS CS_TRACKED, CS_REPLY_DIR (os-ken names none)
# ip_frag=later: both bits set under a mask covering both, i.e. the whole field: OVS stores
# and reports it unmasked, so it is sent that way
IP_FRAG_LATER = nicira_ext.FLOW_NW_FRAG_ANY | nicira_ext.FLOW_NW_FRAG_LATER


def ct_state_bits(text: str) -> tuple[int, int]:
    """'+trk-rpl' style flags -> (value, mask)."""
    value = mask = 0
    for sign, name in re.findall(r"([+-])([a-z]+)", text):
        bit = CT_STATE_BITS[name]
        mask |= bit
        if sign == "+":
            value |= bit
    return value, mask


def _net(net: IPv4Network) -> str | tuple[str, str]:
    if net.prefixlen == 32:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


def match_fields(match: Match) -> list[tuple[str, Any]]:
    """os-ken OFPMatch fields (OpenFlow 1.3 + NXM), prerequisites before dependents."""
    fields: list[tuple[str, Any]] = []
    if match.in_port is not None:
        fields.append(("in_port", match.in_port))
    if match.proto is not None:
        fields.append(("eth_type", match.proto.eth_type))
        if match.proto.ip_proto is not None:
            fields.append(("ip_proto", match.proto.ip_proto))
    if match.reg0 is not None:
        fields.append(("reg0", match.reg0))
    if match.reg1 is not None:
        fields.append(("reg1", match.reg1))
    if match.ct_state is not None:
        fields.append(("ct_state", ct_state_bits(match.ct_state)))
    if match.tun_src is not None:
        fields.append(("tun_ipv4_src", str(match.tun_src)))
    for name, oxm in (("arp_spa", "arp_spa"), ("arp_tpa", "arp_tpa"),
                      ("nw_src", "ipv4_src"), ("nw_dst", "ipv4_dst")):
        net = getattr(match, name)
        if net is not None:
            fields.append((oxm, _net(net)))
    if match.arp_sha is not None:
        fields.append(("arp_sha", match.arp_sha))
    if match.ip_frag_later:
        fields.append(("ip_frag", IP_FRAG_LATER))
    if match.tp_dst is not None:
        assert match.proto is not None
        fields.append((f"{match.proto.text}_dst", match.tp_dst))
    return fields


# ---------------------------------------------------------------------------- actions

def _output(action: Output) -> Any:
    return parser.OFPActionOutput(action.port, 0)


def _output_reg(action: OutputReg) -> Any:
    reg = action.reg
    return parser.NXActionOutputReg(ofs_nbits=nicira_ext.ofs_nbits(reg.lo, reg.hi),
                                    src=reg.oxm_name, max_len=0xFFFF)


def _load_reg(action: LoadReg) -> Any:
    reg = action.reg
    return parser.NXActionRegLoad(ofs_nbits=nicira_ext.ofs_nbits(reg.lo, reg.hi),
                                  dst=reg.oxm_name, value=action.value)


def _load_tun_id(action: LoadTunId) -> Any:
    return parser.NXActionRegLoad(ofs_nbits=nicira_ext.ofs_nbits(0, 31), dst=TUN_ID,
                                  value=action.value)


def _move_tun_id_to_reg(action: MoveTunIdToReg) -> Any:
    return parser.NXActionRegMove(src_field=TUN_ID, dst_field=action.reg.oxm_name, n_bits=32,
                                  src_ofs=0, dst_ofs=action.reg.lo)


def _move_reg_to_tun_id(action: MoveRegToTunId) -> Any:
    reg = action.reg
    return parser.NXActionRegMove(src_field=reg.oxm_name, dst_field=TUN_ID, n_bits=reg.n_bits,
                                  src_ofs=reg.lo, dst_ofs=0)


def _set_field(action: SetField) -> Any:
    return parser.OFPActionSetField(**{action.name.osken: action.value})


def _conntrack(action: Conntrack) -> Any:
    nat = [parser.NXActionNAT(flags=0)] if action.nat else []
    table = nicira_ext.NX_CT_RECIRC_NONE if action.table is None else int(action.table)
    return parser.NXActionCT(flags=nicira_ext.NX_CT_F_COMMIT if action.commit else 0,
                             zone_src="", zone_ofs_nbits=0, recirc_table=table, alg=0,
                             actions=nat)


def _note(action: Note) -> Any:
    return parser.NXActionNote(note=list(action.data))


ACTIONS: dict[type, Callable[[Any], Any]] = {
    Output: _output, OutputReg: _output_reg, LoadReg: _load_reg, LoadTunId: _load_tun_id,
    MoveTunIdToReg: _move_tun_id_to_reg, MoveRegToTunId: _move_reg_to_tun_id,
    SetField: _set_field, Conntrack: _conntrack, Note: _note,
}


def osken_action(action: Action) -> Any:
    """The os-ken action object of `action`."""
    return ACTIONS[type(action)](action)


# ---------------------------------------------------------------------------- flow

def flow_mod(flow: Flow, datapath: Any, command: int = ofp.OFPFC_ADD) -> Any:
    """An OFPFlowMod of `flow` (default OFPFC_ADD) for `datapath` (may be None for tests)."""
    instructions = []
    if flow.actions:
        instructions.append(parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [osken_action(a) for a in flow.actions]))
    if flow.goto is not None:
        instructions.append(parser.OFPInstructionGotoTable(int(flow.goto)))
    return parser.OFPFlowMod(
        datapath=datapath, cookie=flow.cookie, cookie_mask=0, table_id=int(flow.table),
        command=command, idle_timeout=0, hard_timeout=0, priority=flow.priority,
        buffer_id=ofp.OFP_NO_BUFFER, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        flags=ofp.OFPFF_SEND_FLOW_REM,  # as encoding.FLOW_MOD_FLAGS
        # Our field order puts prerequisites first; os-ken's own sort by OXM class would
        # put NXM fields such as ip_frag before eth_type, which OVS rejects (BAD_PREREQ).
        match=parser.OFPMatch(_ordered_fields=match_fields(flow.match)),
        instructions=instructions)
