"""OpenFlow 1.3 bytes on the bulk path: flow-mods, bundle wrappers, flow-stats read-back.

Building one os-ken message object per flow costs 66-83 µs (real-ovs-here.md), and os-ken's
generic flow-stats parser needs seconds for 50,000 flows.  Here a Flow's flow-mod is packed
directly (`controller.openflow.encoding`) and cached; bundle-add wrappers and deletes are packed
directly; flow-stats replies are sliced, not parsed into objects.

Read-back relies on a property shown by tests/integration/test_wire.py: for every flow we
generate, OVS reports exactly the match TLVs (in its own order) and instruction bytes we sent.
So a flow's identity is (table, priority, sorted match TLVs) and its content is
(cookie, instruction bytes, flags): all comparable as bytes or integers.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto.ofproto_common import ONF_EXPERIMENTER_ID

from controller.openflow.encoding import flow_mod_bytes
from controller.pipeline.encoded import Key
from controller.pipeline.flow import Flow

OFP_VERSION = ofp.OFP_VERSION
HEADER = struct.Struct("!BBHI")
FLOW_STATS_FIXED = struct.Struct("!HBxIIHHHH4xQQQ")  # up to the match, 48 bytes
MATCH_HEADER = struct.Struct("!HH")
BUNDLE_ADD = struct.Struct("!BBHIIIIxxH")  # header, experimenter, exp_type, id, pad, flags
BUNDLE_CTRL = struct.Struct("!BBHIIIIHH")  # header, experimenter, exp_type, id, type, flags
# a bundle-add header followed by the header of the message it carries
_BUNDLE_ADD_INNER = struct.Struct("!BBHIIIIxxHBBHI")


def match_tlvs(match: bytes) -> tuple[bytes, ...]:
    """OXM TLVs of a match body, sorted: OVS reports them in its own order."""
    tlvs, offset = [], 0
    while offset + 4 <= len(match):
        length = match[offset + 3]
        tlvs.append(match[offset:offset + 4 + length])
        offset += 4 + length
    return tuple(sorted(tlvs))


class Encoded(NamedTuple):
    """A flow's OFPFC_ADD message and the parts reconciliation compares."""

    flow_mod: bytes  # xid 0; patched per send
    key: Key
    instructions: bytes
    cookie: int
    flow: Flow | None = None  # what it encodes (for messages about it)


def encode_flow(flow: Flow, cookie: int | None = None) -> Encoded:
    """`flow` encoded, uncached; `cookie` when the caller knows it already."""
    raw = flow_mod_bytes(flow, 0, cookie)
    match_length = (raw[50] << 8) | raw[51]
    padded = (match_length + 7) & ~7
    key = (int(flow.table), flow.priority, match_tlvs(raw[52:48 + match_length]))
    return Encoded(raw, key, raw[48 + padded:], flow.cookie if cookie is None else cookie, flow)


def encode(flow: Flow) -> Encoded:
    """`flow` encoded, cached.  Flows compare equal whatever their owner, so the cookie is part
    of the cache key: an equal flow of another owner gets its own cookie."""
    return _encode_cached(flow, flow.cookie)


@lru_cache(maxsize=1 << 17)
def _encode_cached(flow: Flow, cookie: int) -> Encoded:
    return encode_flow(flow, cookie)


class InstalledFlow(NamedTuple):
    """One entry of a flow-stats reply, kept as bytes."""

    table: int
    priority: int
    cookie: int
    match: bytes  # the ofp_match body as OVS sent it (TLVs, no header, no padding)
    instructions: bytes
    duration_sec: int
    flags: int = 0  # OFPFF_*; every flow we install has `encoding.FLOW_MOD_FLAGS`

    @property
    def key(self) -> Key:
        return (self.table, self.priority, match_tlvs(self.match))

    @classmethod
    def from_encoded(cls, encoded: Encoded) -> InstalledFlow:
        """What the bridge holds after `encoded` was added (duration unknown: 0)."""
        match_length = MATCH_HEADER.unpack_from(encoded.flow_mod, 48)[1]
        table, priority, _ = encoded.key
        flags = struct.unpack_from("!H", encoded.flow_mod, _FLOW_MOD_FLAGS_AT)[0]
        return cls(table, priority, encoded.cookie, encoded.flow_mod[52:48 + match_length],
                   encoded.instructions, 0, flags)


_FLOW_MOD_FLAGS_AT = 44  # ofp_flow_mod: header 8, cookie and mask 16, table ... out_group 20


def with_xid(message: bytes, xid: int) -> bytes:
    return message[:4] + struct.pack("!I", xid) + message[8:]


def bundle_add(bundle_id: int, message: bytes, xid: int, flags: int = ofp.ONF_BF_ATOMIC) -> bytes:
    """ONF bundle-add wrapping `message`; both carry `xid` (OF1.3 bundle extension 3.3)."""
    inner = with_xid(message, xid)
    head = BUNDLE_ADD.pack(OFP_VERSION, ofp.OFPT_EXPERIMENTER, BUNDLE_ADD.size + len(inner), xid,
                           ONF_EXPERIMENTER_ID, ofp.ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, flags)
    return head + inner


def bundle_control(bundle_id: int, control: int, xid: int,
                   flags: int = ofp.ONF_BF_ATOMIC) -> bytes:
    return BUNDLE_CTRL.pack(OFP_VERSION, ofp.OFPT_EXPERIMENTER, BUNDLE_CTRL.size, xid,
                            ONF_EXPERIMENTER_ID, ofp.ONF_ET_BUNDLE_CONTROL, bundle_id, control,
                            flags)


def delete_strict(flow: InstalledFlow, xid: int = 0) -> bytes:
    """OFPFC_DELETE_STRICT of exactly this flow (table, priority, match, cookie)."""
    match_length = 4 + len(flow.match)
    padding = b"\0" * ((match_length + 7) // 8 * 8 - match_length)
    body = struct.pack("!QQBBHHHIIIH2x", flow.cookie, 0xFFFFFFFFFFFFFFFF, flow.table,
                       ofp.OFPFC_DELETE_STRICT, 0, 0, flow.priority, ofp.OFP_NO_BUFFER,
                       ofp.OFPP_ANY, ofp.OFPG_ANY, 0)
    match = MATCH_HEADER.pack(ofp.OFPMT_OXM, match_length) + flow.match + padding
    return HEADER.pack(OFP_VERSION, ofp.OFPT_FLOW_MOD, 8 + len(body) + len(match), xid) \
        + body + match


def flow_stats_request(xid: int, table: int = ofp.OFPTT_ALL) -> bytes:
    """All flows of `table` (default: of all tables)."""
    body = struct.pack("!HH4xB3xII4xQQ", ofp.OFPMP_FLOW, 0, table, ofp.OFPP_ANY,
                       ofp.OFPG_ANY, 0, 0) + MATCH_HEADER.pack(ofp.OFPMT_OXM, 4) + b"\0" * 4
    return HEADER.pack(OFP_VERSION, ofp.OFPT_MULTIPART_REQUEST, 8 + len(body), xid) + body


def port_desc_request(xid: int) -> bytes:
    """All ports (OFPMP_PORT_DESC, no flags): what os-ken's OFPPortDescStatsRequest packs."""
    body = struct.pack("!HH4x", ofp.OFPMP_PORT_DESC, 0)
    return HEADER.pack(OFP_VERSION, ofp.OFPT_MULTIPART_REQUEST, 8 + len(body), xid) + body


def table_stats_request(xid: int) -> bytes:
    """OFPMP_TABLE: each table's active flow count, in one small reply (the audit's probe)."""
    body = struct.pack("!HH4x", ofp.OFPMP_TABLE, 0)
    return HEADER.pack(OFP_VERSION, ofp.OFPT_MULTIPART_REQUEST, 8 + len(body), xid) + body


# ofp_flow_removed up to and including its match header: cookie, priority, reason, table,
# (durations, timeouts, counters), match type, match length (52 bytes with the header)
_FLOW_REMOVED_HEAD = struct.Struct("!8xQHBB28xHH")


class RemovedFlow(NamedTuple):
    """An OFPT_FLOW_REMOVED message: which flow went (its key and cookie) and why."""

    key: Key
    cookie: int
    reason: int  # OFPRR_*


def parse_flow_removed(message: bytes) -> RemovedFlow:
    cookie, priority, reason, table, _, match_length = _FLOW_REMOVED_HEAD.unpack_from(message)
    return RemovedFlow((table, priority, match_tlvs(message[52:48 + match_length])), cookie,
                       reason)


def parse_flow_stats(message: bytes) -> tuple[list[InstalledFlow], bool]:
    """Entries of one OFPMP_FLOW reply message, and whether more parts follow."""
    flows = [flow for _, flow in iter_flow_stats(message)]
    return flows, bool(message[11] & ofp.OFPMPF_REPLY_MORE)


# ofp_flow_stats up to and including its match header: length, table, duration_sec,
# priority, flags, cookie, match type, match length (52 bytes)
_FLOW_STATS_HEAD = struct.Struct("!HBxI4xH4xH4xQ16xHH")


def iter_flow_stats(message: bytes) -> list[tuple[Key, InstalledFlow]]:
    """(key, flow) for each entry of one OFPMP_FLOW reply message: the read-back hot path
    (tens of thousands of flows per dump), so one struct call and inline TLV sorting."""
    out = []
    unpack, size, offset = _FLOW_STATS_HEAD.unpack_from, len(message), 16
    while offset < size:
        length, table, duration, priority, flags, cookie, _, match_length = unpack(message,
                                                                                   offset)
        match = message[offset + 52:offset + 48 + match_length]
        tlvs, position, end = [], 0, match_length - 4
        while position < end:
            step = 4 + match[position + 3]
            tlvs.append(match[position:position + step])
            position += step
        tlvs.sort()
        flow = InstalledFlow(table, priority, cookie, match,
                             message[offset + ((match_length + 55) & ~7):offset + length],
                             duration, flags)
        out.append(((table, priority, tuple(tlvs)), flow))
        offset += length
    return out


def bundle_adds(bundle_id: int, messages: Sequence[bytes], first_xid: int,
                flags: int = ofp.ONF_BF_ATOMIC) -> bytes:
    """`bundle_add` of each message, with consecutive xids from `first_xid`, as one buffer."""
    pack = _BUNDLE_ADD_INNER.pack
    parts: list[bytes | memoryview] = []
    xid = first_xid
    for message in messages:
        size = len(message)
        parts.append(pack(OFP_VERSION, ofp.OFPT_EXPERIMENTER, BUNDLE_ADD.size + size, xid,
                          ONF_EXPERIMENTER_ID, ofp.ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, flags,
                          message[0], message[1], size, xid))
        parts.append(memoryview(message)[8:])
        xid += 1
    return b"".join(parts)
