"""Flow -> OFPFlowMod bytes without os-ken objects (the bulk path).

Building and serializing one os-ken message costs 66-83 µs per flow; packing the few match
fields and actions openshift-sdn uses directly costs a few µs: every OXM header and every
fixed-size action is one precomputed prefix or one `struct` call, and the cookie (a SHA-256
of the owner's name) can be passed in by a caller that already knows it.  The numbers
(message types, field headers, action types) are os-ken's.  `osken_flow.flow_mod` (os-ken)
stays the reference: tests/unit/test_encoding.py compares both byte for byte for every flow
kind, and tests/integration/test_wire.py shows OVS reads back exactly these bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from os_ken.ofproto import nicira_ext
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto.nicira_ext import (
    NX_CT_F_COMMIT,
    NX_CT_RECIRC_NONE,
    NXAST_CT,
    NXAST_NAT,
    NXAST_NOTE,
    NXAST_OUTPUT_REG,
    NXAST_REG_LOAD,
    NXAST_REG_MOVE,
)
from os_ken.ofproto.ofproto_common import NX_EXPERIMENTER_ID as NX_VENDOR
from os_ken.ofproto.ofproto_v1_3 import OFPAT_EXPERIMENTER

from controller.openflow.osken_flow import IP_FRAG_LATER, TUN_ID, ct_state_bits
from controller.pipeline.flow import (
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
    Proto,
    SetField,
    SetFieldName,
)
from controller.pipeline.registers import RegField

FLOW_MOD_HEAD = struct.Struct("!BBHIQQBBHHHIIIH2x")
# Every flow the controller installs asks OVS to report its removal: a flow deleted by
# another connection (`ovs-ofctl del-flows`) then reaches the controller at once as
# OFPT_FLOW_REMOVED and the bridge is repaired (controller.tamper).  The flag is the
# channel's business, not the pipeline's: `osdn render` text leaves it out.
FLOW_MOD_FLAGS = ofp.OFPFF_SEND_FLOW_REM
NX_HEAD = struct.Struct("!HHIH")


def field_header(name: str, masked: bool = False) -> int:
    """The OXM/NXM TLV header os-ken writes for match field `name` (its own field table)."""
    number, value_type = ofp.oxm_get_field_info_by_name(name)
    zero = bytes(value_type.size)
    tlv = bytearray()
    ofp.oxm_serialize(number, zero, zero if masked else None, tlv, 0)
    header: int = struct.unpack_from("!I", tlv)[0]
    return header


def _h(name: str, masked: bool = False) -> bytes:
    return struct.pack("!I", field_header(name, masked))


_REG_HEADERS = tuple(field_header(f"reg{reg}") for reg in range(16))


def reg_header(reg: int) -> int:
    return _REG_HEADERS[reg]


TUN_ID_HEADER = field_header(TUN_ID)


# ---------------------------------------------------------------------------- match

_U16 = struct.Struct("!H").pack
_U32 = struct.Struct("!I").pack
_IN_PORT = _h("in_port")
_REG = tuple(struct.pack("!I", header) for header in _REG_HEADERS)
_CT_STATE = _h("ct_state", True)
_TUN_SRC = _h("tun_ipv4_src")
_ARP_SHA = _h("arp_sha", True)
_IP_FRAG_LATER = _h("ip_frag") + bytes([IP_FRAG_LATER])
_TP_DST = {Proto.TCP.ip_proto: _h("tcp_dst"), Proto.UDP.ip_proto: _h("udp_dst")}
# arp_spa, arp_tpa, nw_src, nw_dst: (header of an exact value, header of a masked one)
_ARP_SPA, _ARP_TPA, _NW_SRC, _NW_DST = ((_h(name), _h(name, True))
                                        for name in ("arp_spa", "arp_tpa", "ipv4_src",
                                                     "ipv4_dst"))
_PROTO = {proto: _h("eth_type") + _U16(proto.eth_type)
          + (b"" if proto.ip_proto is None else _h("ip_proto") + bytes([proto.ip_proto]))
          for proto in Proto}
_PAD = tuple(b"\0" * n for n in range(8))
_MATCH_HEAD = struct.Struct("!HH").pack
_ct_states: dict[str, bytes] = {}


def _ipv4(headers: tuple[bytes, bytes], net: IPv4Network) -> bytes:
    if net.prefixlen == 32:
        return headers[0] + net.network_address.packed
    return headers[1] + net.network_address.packed + net.netmask.packed


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _ct_state_tlv(text: str) -> bytes:
    tlv = _ct_states.get(text)
    if tlv is None:
        value, mask = ct_state_bits(text)
        tlv = _ct_states[text] = _CT_STATE + _U32(value) + _U32(mask)
    return tlv


def match_bytes(match: Match) -> bytes:
    """The ofp_match: OXM TLVs in the order `osken_flow.match_fields` uses (prerequisites
    first)."""
    out = []
    if match.in_port is not None:
        out.append(_IN_PORT + _U32(match.in_port))
    proto = match.proto
    if proto is not None:
        out.append(_PROTO[proto])
    if match.reg0 is not None:
        out.append(_REG[0] + _U32(match.reg0))
    if match.reg1 is not None:
        out.append(_REG[1] + _U32(match.reg1))
    if match.ct_state is not None:
        out.append(_ct_state_tlv(match.ct_state))
    if match.tun_src is not None:
        out.append(_TUN_SRC + match.tun_src.packed)
    if match.arp_spa is not None:
        out.append(_ipv4(_ARP_SPA, match.arp_spa))
    if match.arp_tpa is not None:
        out.append(_ipv4(_ARP_TPA, match.arp_tpa))
    if match.nw_src is not None:
        out.append(_ipv4(_NW_SRC, match.nw_src))
    if match.nw_dst is not None:
        out.append(_ipv4(_NW_DST, match.nw_dst))
    if match.arp_sha is not None:
        out.append(_ARP_SHA + _mac(match.arp_sha[0]) + _mac(match.arp_sha[1]))
    if match.ip_frag_later:
        out.append(_IP_FRAG_LATER)
    if match.tp_dst is not None:
        assert proto is not None and proto.ip_proto is not None
        out.append(_TP_DST[proto.ip_proto] + _U16(match.tp_dst))
    body = b"".join(out)
    length = 4 + len(body)
    return _MATCH_HEAD(ofp.OFPMT_OXM, length) + body + _PAD[-length % 8]


# ---------------------------------------------------------------------------- actions

def _nx(subtype: int, body: bytes) -> bytes:
    length = NX_HEAD.size + len(body)
    padding = -length % 8
    return NX_HEAD.pack(OFPAT_EXPERIMENTER, length + padding, NX_VENDOR, subtype) + body \
        + b"\0" * padding


# The 24-byte NX actions, each one struct: experimenter header + body (no padding needed).
_NX_OUTPUT_REG = struct.Struct("!HHIHHIH6x")
_NX_REG_LOAD = struct.Struct("!HHIHHIQ")
_NX_REG_MOVE = struct.Struct("!HHIHHHHII")
_OUTPUT = struct.Struct("!HHIH6x")
_outputs: dict[int, bytes] = {}

SET_FIELD_HEADERS = {name: field_header(name.osken) for name in SetFieldName}
# set_field: ofp_action_set_field header, then the OXM TLV, padded to 16 bytes
_SET_FIELD_HEAD = {name: struct.pack("!HHI", ofp.OFPAT_SET_FIELD, 16, header)
                   for name, header in SET_FIELD_HEADERS.items()}


def _output(action: Output) -> bytes:
    encoded = _outputs.get(action.port)
    if encoded is None:
        encoded = _OUTPUT.pack(ofp.OFPAT_OUTPUT, 16, action.port, 0)
        if len(_outputs) < 4096:
            _outputs[action.port] = encoded
    return encoded


_regs: dict[int, tuple[RegField, int, int, bytes]] = {}


def _reg(reg: RegField) -> tuple[RegField, int, int, bytes]:
    """(reg, ofs_nbits, NXM header, output:reg action) by identity; the entry holds `reg`
    itself, so its id cannot be reused while cached."""
    entry = _regs.get(id(reg))
    if entry is None or entry[0] is not reg:
        ofs_nbits, header = nicira_ext.ofs_nbits(reg.lo, reg.hi), reg_header(reg.reg)
        entry = (reg, ofs_nbits, header, _NX_OUTPUT_REG.pack(
            OFPAT_EXPERIMENTER, 24, NX_VENDOR, NXAST_OUTPUT_REG, ofs_nbits, header, 0xFFFF))
        if len(_regs) < 256:
            _regs[id(reg)] = entry
    return entry


def _output_reg(action: OutputReg) -> bytes:
    return _reg(action.reg)[3]


def _load_reg(action: LoadReg) -> bytes:
    _, ofs_nbits, header, _ = _reg(action.reg)
    return _NX_REG_LOAD.pack(OFPAT_EXPERIMENTER, 24, NX_VENDOR, NXAST_REG_LOAD, ofs_nbits,
                             header, action.value)


def _load_tun_id(action: LoadTunId) -> bytes:
    return _NX_REG_LOAD.pack(OFPAT_EXPERIMENTER, 24, NX_VENDOR, NXAST_REG_LOAD,
                             nicira_ext.ofs_nbits(0, 31), TUN_ID_HEADER, action.value)


def _move_tun_id_to_reg(action: MoveTunIdToReg) -> bytes:
    return _NX_REG_MOVE.pack(OFPAT_EXPERIMENTER, 24, NX_VENDOR, NXAST_REG_MOVE, 32, 0,
                             action.reg.lo, TUN_ID_HEADER, reg_header(action.reg.reg))


def _move_reg_to_tun_id(action: MoveRegToTunId) -> bytes:
    return _NX_REG_MOVE.pack(OFPAT_EXPERIMENTER, 24, NX_VENDOR, NXAST_REG_MOVE,
                             action.reg.n_bits, action.reg.lo, 0, reg_header(action.reg.reg),
                             TUN_ID_HEADER)


def _set_field(action: SetField) -> bytes:
    if action.name is SetFieldName.ETH_DST:
        return _SET_FIELD_HEAD[action.name] + _mac(str(action.value)) + b"\0\0"
    if action.name is SetFieldName.TUN_DST:
        value = IPv4Address(str(action.value)).packed
    else:
        value = _U32(int(action.value))
    return _SET_FIELD_HEAD[action.name] + value + b"\0\0\0\0"


def _note(action: Note) -> bytes:
    return _nx(NXAST_NOTE, action.data)


def _conntrack(action: Conntrack) -> bytes:
    nat = _nx(NXAST_NAT, struct.pack("!2xHH", 0, 0)) if action.nat else b""
    table = NX_CT_RECIRC_NONE if action.table is None else int(action.table)
    flags = NX_CT_F_COMMIT if action.commit else 0
    return _nx(NXAST_CT, struct.pack("!HIHB3xH", flags, 0, 0, table, 0) + nat)


_ACTIONS: dict[type, Callable[[Any], bytes]] = {
    Output: _output, OutputReg: _output_reg, LoadReg: _load_reg, LoadTunId: _load_tun_id,
    MoveTunIdToReg: _move_tun_id_to_reg, MoveRegToTunId: _move_reg_to_tun_id,
    SetField: _set_field, Note: _note, Conntrack: _conntrack,
}


def action_bytes(action: object) -> bytes:
    encode = _ACTIONS.get(type(action))
    if encode is None:
        raise TypeError(f"no encoding for {action!r}")
    return encode(action)


_APPLY_HEAD = struct.Struct("!HH4x").pack
_GOTO = tuple(struct.pack("!HHB3x", ofp.OFPIT_GOTO_TABLE, 8, table) for table in range(256))


def instruction_bytes(flow: Flow) -> bytes:
    out = b""
    if flow.actions:
        actions = b"".join([_ACTIONS[type(a)](a) if type(a) in _ACTIONS else action_bytes(a)
                            for a in flow.actions])
        out = _APPLY_HEAD(ofp.OFPIT_APPLY_ACTIONS, 8 + len(actions)) + actions
    if flow.goto is not None:
        out += _GOTO[int(flow.goto)]
    return out


def flow_mod_bytes(flow: Flow, xid: int = 0, cookie: int | None = None) -> bytes:
    """OFPFC_ADD for `flow`, byte-identical to os-ken's serialization of `osken_flow.flow_mod`.
    `cookie`: the flow's cookie when the caller knows it already (it is a SHA-256 away)."""
    tail = match_bytes(flow.match) + instruction_bytes(flow)
    head = FLOW_MOD_HEAD.pack(ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD, FLOW_MOD_HEAD.size + len(tail),
                              xid,
                              flow.cookie if cookie is None else cookie, 0, int(flow.table),
                              ofp.OFPFC_ADD, 0, 0, flow.priority, ofp.OFP_NO_BUFFER, ofp.OFPP_ANY,
                              ofp.OFPG_ANY,
                              FLOW_MOD_FLAGS)
    return head + tail
