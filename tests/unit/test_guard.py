"""The OpenFlow channel guard on byte strings (controller.openflow.guard, .osken_guard,
.handshakes): what is refused and why, that the step budget stops os-ken's non-advancing
parser loops, and that real messages stay far inside the budget."""

from __future__ import annotations

import ast
import inspect
import random
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from os_ken.ofproto import nx_actions, nx_match, oxm_fields
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

from controller.compiler import Settings, compile_node
from controller.dns import no_dns
from controller.openflow.guard import (
    BUDGET_PER_BYTE,
    BudgetExceeded,
    MalformedMessage,
    bounded,
    check_message,
    parse_budget,
)
from controller.openflow.handshakes import PendingHandshakes
from controller.openflow.osken_guard import parse_checked
from controller.openflow.wire import InstalledFlow, encode_flow
from tests.support.fakeswitch import flow_stats_entry
from topology.load import load_topology

V13 = frozenset({ofp.OFP_VERSION})
RICH = Path(__file__).resolve().parents[2] / "examples" / "rich-cluster"
# The reproducers: each wedged the controller at 100% CPU before any handshake.
HELLO_ZERO_ELEMENT = bytes.fromhex("04000010000000050001000000000000")
QUEUE_REPLY_ZERO_QUEUE = bytes.fromhex(
    "0417002000000006000000010000000000000001000000010000000000000000")
# What Open vSwitch sends: a HELLO with a version bitmap element (1.0 to 1.5).
OVS_HELLO = bytes.fromhex("04000010000000010001000800000072")


def header(version: int, msg_type: int, body: bytes = b"", xid: int = 1) -> bytes:
    return struct.pack("!BBHI", version, msg_type, 8 + len(body), xid) + body


def refusal(buf: bytes, versions: frozenset[int] = V13) -> str:
    with pytest.raises(MalformedMessage) as caught:
        check_message(buf, versions)
    return str(caught.value)


# ------------------------------------------------------------------ check_message


def test_the_reproducers_are_refused_with_their_reason() -> None:
    assert refusal(HELLO_ZERO_ELEMENT) == (
        "version 0x04 type 0: hello element at offset 8 has length 0, less than its header (4)")
    assert refusal(QUEUE_REPLY_ZERO_QUEUE) == (
        "version 0x04 type 23: queue at offset 16 has length 0, less than its header (16)")


@pytest.mark.parametrize("hello", [
    OVS_HELLO,
    header(0x01, ofp.OFPT_HELLO),  # OF1.0: no elements; os-ken answers with an error
    header(0x04, ofp.OFPT_HELLO),
    header(0x06, ofp.OFPT_HELLO, bytes.fromhex("0001000800000040")),
    header(0x04, ofp.OFPT_HELLO, bytes.fromhex("00010008000000100063000400010008000000ff")),
])
def test_good_hellos_pass(hello: bytes) -> None:
    check_message(hello, V13)


@pytest.mark.parametrize(("buf", "reason"), [
    (header(4, 0, bytes.fromhex("00010003")), "hello element at offset 8 has length 3"),
    (header(4, 0, bytes.fromhex("00010010000000ff")),
     "hello element at offset 8 has length 16, beyond the 8 bytes left"),
    (header(4, 0, bytes.fromhex("000100080000001000")),
     "1 trailing bytes at offset 16, shorter than a hello element header (4)"),
    (bytes.fromhex("0400000000000001"), "header length 0, less than the header itself"),
    (bytes.fromhex("0400000700000001"), "header length 7, less than the header itself"),
    (bytes.fromhex("040000ff00000001"), "header length 255, more than the 8 bytes read"),
    (bytes.fromhex("04000008"), "4 bytes, shorter than an OpenFlow header"),
    (header(0x01, ofp.OFPT_ECHO_REQUEST), "not a HELLO, and not of a version this controller "
                                          "speaks (0x04)"),
    (header(0x05, ofp.OFPT_QUEUE_GET_CONFIG_REPLY, bytes(24)), "not a HELLO"),
])
def test_bad_lengths_and_versions_are_refused(buf: bytes, reason: str) -> None:
    assert reason in refusal(buf)


def queue_reply(*queues: bytes) -> bytes:
    return header(4, ofp.OFPT_QUEUE_GET_CONFIG_REPLY, struct.pack("!I4x", 1) + b"".join(queues))


def queue(*properties: bytes, length: int | None = None) -> bytes:
    body = b"".join(properties)
    return struct.pack(ofp.OFP_PACKET_QUEUE_PACK_STR, 7, 1,
                       16 + len(body) if length is None else length) + body


def prop(kind: int, length: int, rest: bytes) -> bytes:
    return struct.pack(ofp.OFP_QUEUE_PROP_HEADER_PACK_STR, kind, length) + rest


MIN_RATE = prop(ofp.OFPQT_MIN_RATE, 16, struct.pack("!H6x", 500))


def test_a_good_queue_config_reply_passes_and_os_ken_reads_it() -> None:
    buf = queue_reply(queue(MIN_RATE), queue())
    check_message(buf, V13)
    msg = parse_checked(ProtocolDesc(4), 4, buf[1], len(buf), 1, buf, V13)
    assert [q.queue_id for q in msg.queues] == [7, 7]
    assert msg.queues[0].properties[0].rate == 500


@pytest.mark.parametrize(("buf", "reason"), [
    (queue_reply(queue(MIN_RATE, length=8)), "queue at offset 16 has length 8"),
    (queue_reply(queue(prop(ofp.OFPQT_MIN_RATE, 0, bytes(8)))),
     "queue property at offset 32 has length 0, less than its header (8)"),
    (queue_reply(queue(prop(ofp.OFPQT_MIN_RATE, 8, b""))),
     "queue property at offset 32 (type 1) has length 8, less than its size (16)"),
    (queue_reply(queue(prop(99, 16, bytes(8)))),
     "queue property at offset 32 has unknown type 99 (os-ken cannot step over it)"),
    (header(4, ofp.OFPT_QUEUE_GET_CONFIG_REPLY, bytes(4)), "12 bytes, shorter than a queue"),
])
def test_bad_queue_config_replies_are_refused(buf: bytes, reason: str) -> None:
    assert reason in refusal(buf)


# ------------------------------------------------------------------ the step budget


def test_bounded_stops_a_loop_that_does_not_advance_and_restores_the_profile() -> None:
    def spin() -> None:
        offset = 0
        while offset < 10:
            offset += len(b"")

    started = time.monotonic()
    with pytest.raises(BudgetExceeded):
        bounded(spin, 10_000)
    assert time.monotonic() - started < 1.0
    assert sys.getprofile() is None
    assert bounded(sum, 10, [1, 2]) == 3


@pytest.mark.parametrize("buf", [HELLO_ZERO_ELEMENT, QUEUE_REPLY_ZERO_QUEUE],
                         ids=["hello", "queue-config-reply"])
def test_the_budget_alone_stops_os_kens_parser_on_the_reproducers(buf: bytes) -> None:
    """Without the byte checks, os-ken's own parser spins forever on these; the budget of
    their length stops it within a fraction of a second."""
    started = time.monotonic()
    with pytest.raises(BudgetExceeded):
        bounded(parser.msg_parser, parse_budget(len(buf)), ProtocolDesc(4), 4, buf[1],
                len(buf), 1, buf)
    assert time.monotonic() - started < 2.0


def steps_of(function: Any, *args: Any) -> int:
    steps = 0

    def count(*_: Any) -> None:
        nonlocal steps
        steps += 1

    sys.setprofile(count)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return steps


def test_real_flows_parse_far_inside_the_budget() -> None:
    """The richest messages os-ken parses for us in full are matches with instructions and
    actions (flow-removed, flow stats): every flow of the rich cluster's node, as OVS
    reports it, uses a small fraction of the per-byte budget."""
    topology = load_topology([RICH])
    worst = 0.0
    for host in [hs.host for hs in topology.host_subnets]:
        for flow in compile_node(topology, host, Settings(0, no_dns), {}).flows:
            entry = flow_stats_entry(InstalledFlow.from_encoded(encode_flow(flow, 0)))
            steps = steps_of(parser.OFPFlowStats.parser, entry, 0)
            worst = max(worst, steps / len(entry))
    assert 0 < worst < BUDGET_PER_BYTE / 4, worst


def test_os_kens_parsers_cannot_swallow_the_budget_exception() -> None:
    """The budget is sound only if no parser catches it and loops on (CPython drops the
    profile hook once it raises): os-ken's parsers catch only specific exceptions."""
    broad = {"Exception", "BaseException"}
    for module in (parser, nx_actions, nx_match, oxm_fields):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler):
                name = getattr(node.type, "id", None) if node.type is not None else "bare"
                assert name not in broad | {"bare"}, f"{module.__name__}:{node.lineno}"


# ------------------------------------------------------------------ every message type


def garbage(rng: random.Random) -> list[bytes]:
    """Bodies that trip length fields: zeros, ones, random, small lengths everywhere."""
    bodies = [bytes(n) for n in (0, 4, 8, 16, 40, 64)]
    bodies += [b"\xff" * n for n in (4, 16, 64)]
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
               for _ in range(6)]
    bodies += [(struct.pack("!HH", rng.randrange(4), rng.choice((0, 1, 4, 8))) * 16)
               for _ in range(4)]
    return bodies


@pytest.mark.parametrize("msg_type", range(0, 36))
def test_garbage_of_every_message_type_ends_in_a_parse_or_a_refusal(msg_type: int) -> None:
    rng = random.Random(msg_type)
    started = time.monotonic()
    datapath = ProtocolDesc(4)
    for body in garbage(rng):
        prefixes = [b""]
        if msg_type == ofp.OFPT_MULTIPART_REPLY:  # every body type, including unknown ones
            prefixes = [struct.pack("!HH4x", kind, 0) for kind in (*range(0, 16), 0xffff)]
        if msg_type == ofp.OFPT_EXPERIMENTER:  # Nicira and ONF experimenter messages
            prefixes = [struct.pack("!II", exp, kind) for exp in (0x2320, 0x4f4e4600)
                        for kind in (0, 16, 20, 23, 26, 2300, 2301)]
        for prefix in prefixes:
            buf = header(4, msg_type, prefix + body)
            try:
                parse_checked(datapath, 4, msg_type, len(buf), 1, buf, V13)
            except MalformedMessage:
                pass
    assert time.monotonic() - started < 20.0


# ------------------------------------------------------------------ pending handshakes


def test_pending_handshakes_expire_and_the_oldest_goes_beyond_the_limit() -> None:
    pending = PendingHandshakes(timeout=5.0, limit=2)
    assert pending.opened("a", 0.0) == []
    assert pending.opened("b", 1.0) == []
    assert pending.opened("c", 2.0) == ["a"]
    pending.finished("b")
    assert "b" not in pending and len(pending) == 1
    assert pending.expired(6.9) == []
    assert pending.expired(7.0) == ["c"]
    assert len(pending) == 0
    pending.finished("gone")  # unknown: nothing happens
