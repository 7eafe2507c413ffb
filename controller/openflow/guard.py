"""The OpenFlow channel guard: every message a peer sends is checked before os-ken parses it.

os-ken's parsers trust the lengths inside a message.  Where one walks a list of elements
(``while offset < end: ...; offset += element_length``) an element length of 0 never moves
`offset`, and the controller's one event loop spins at 100% CPU for good: a 16-byte HELLO
whose hello element has length 0 is enough, sent by anyone who reaches the OpenFlow port
before any handshake.  The guard makes a malformed message cost only its own connection:

1. `check_message` (pure, on the bytes): the header's length is at least the header and no
   more than what was read; a HELLO's elements (any version that has them) and an OpenFlow
   1.3 QUEUE_GET_CONFIG_REPLY's queues and queue properties each have a length that is at
   least their header and fits in what contains them; any other message is of a version we
   speak (a peer talks another version only in its HELLO, which os-ken answers with an error).
2. `bounded` runs os-ken's parse under a step budget proportional to the message's length
   (`parse_budget`), counted with a profile hook: every loop of an os-ken parser calls at
   least one function per element, so a parse that does not advance exhausts the budget
   instead of the CPU.  This is the generic backstop for the parsers step 1 does not walk
   explicitly (flow-removed and packet-in matches, multipart bodies, instructions, actions,
   properties, experimenter messages).  A legitimate message uses well under a tenth of it
   (`tests/unit/test_guard.py` measures real replies).

`controller.openflow.osken_guard` hooks both into os-ken; what is rejected is logged,
counted and its connection closed.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Collection, Iterator
from types import FrameType
from typing import Any, TypeVar

from os_ken.ofproto import ofproto_common
from os_ken.ofproto import ofproto_v1_3 as ofp

from topology.errors import OsdnError

__all__ = [
    "BudgetExceeded",
    "MalformedMessage",
    "bounded",
    "check_message",
    "parse_budget",
]

HEADER = struct.Struct("!BBHI")  # ofp_header: version, type, length, xid
_U16 = struct.Struct("!H")
HELLO_ELEMENTS_FROM = 0x04  # OpenFlow 1.3: the first version whose HELLO carries elements
# The queue properties os-ken's OF1.3 parser knows; it never advances past any other one.
_QUEUE_PROPERTY_SIZES = {
    ofp.OFPQT_MIN_RATE: ofp.OFP_QUEUE_PROP_MIN_RATE_SIZE,
    ofp.OFPQT_MAX_RATE: ofp.OFP_QUEUE_PROP_MAX_RATE_SIZE,
    ofp.OFPQT_EXPERIMENTER: ofp.OFP_QUEUE_PROP_EXPERIMENTER_SIZE,
}
# Profile events a parse may use: a fixed part plus so many per byte.  The largest legitimate
# ratio measured (tests/unit/test_guard.py) is 3.3 events per byte (a flow entry with a rich
# match and actions; a port description: 1.0); 64 leaves room for os-ken versions that parse
# more finely, and a hostile 65,535-byte message is still cut after about 4 million events.
BUDGET_BASE = 20_000
BUDGET_PER_BYTE = 64


class MalformedMessage(OsdnError):
    """A message the guard refuses; the connection it came on is to be closed."""

    def __init__(self, reason: str, version: int | None = None,
                 msg_type: int | None = None) -> None:
        self.reason = reason
        self.version = version
        self.msg_type = msg_type
        what = "" if version is None else f"version 0x{version:02x} type {msg_type}: "
        super().__init__(what + reason)


class BudgetExceeded(OsdnError):
    """A parse used more steps than its budget (a parser loop that does not advance)."""


# ---------------------------------------------------------------------------------------------
# Byte checks


def _walk(buf: bytes, start: int, end: int, header_size: int, length_offset: int,
          what: str) -> Iterator[tuple[int, int]]:
    """(offset, length) of each element of a list that fills buf[start:end] exactly; every
    element begins with a `header_size`-byte header whose u16 at `length_offset` is the
    element's whole length.  Refuses a length below the header (0 included: the parser would
    never advance) or beyond the end, and trailing bytes too short for a header."""
    offset = start
    while offset < end:
        if end - offset < header_size:
            raise MalformedMessage(f"{end - offset} trailing bytes at offset {offset}, "
                                   f"shorter than a {what} header ({header_size})")
        (length,) = _U16.unpack_from(buf, offset + length_offset)
        if length < header_size:
            raise MalformedMessage(f"{what} at offset {offset} has length {length}, "
                                   f"less than its header ({header_size})")
        if length > end - offset:
            raise MalformedMessage(f"{what} at offset {offset} has length {length}, "
                                   f"beyond the {end - offset} bytes left")
        yield offset, length
        offset += length


def _check_hello(buf: bytes) -> None:
    for _ in _walk(buf, ofp.OFP_HELLO_HEADER_SIZE, len(buf), ofp.OFP_HELLO_ELEM_HEADER_SIZE,
                   2, "hello element"):
        pass


def _check_queue_config_reply(buf: bytes) -> None:
    if len(buf) < ofp.OFP_QUEUE_GET_CONFIG_REPLY_SIZE:
        raise MalformedMessage(f"{len(buf)} bytes, shorter than a queue config reply "
                               f"({ofp.OFP_QUEUE_GET_CONFIG_REPLY_SIZE})")
    for queue, length in _walk(buf, ofp.OFP_QUEUE_GET_CONFIG_REPLY_SIZE, len(buf),
                               ofp.OFP_PACKET_QUEUE_SIZE, 8, "queue"):
        end = queue + length
        for prop, prop_length in _walk(buf, queue + ofp.OFP_PACKET_QUEUE_SIZE, end,
                                       ofp.OFP_QUEUE_PROP_HEADER_SIZE, 2, "queue property"):
            (kind,) = _U16.unpack_from(buf, prop)
            size = _QUEUE_PROPERTY_SIZES.get(kind)
            if size is None:
                raise MalformedMessage(f"queue property at offset {prop} has unknown type "
                                       f"{kind} (os-ken cannot step over it)")
            if prop_length < size:
                raise MalformedMessage(f"queue property at offset {prop} (type {kind}) has "
                                       f"length {prop_length}, less than its size ({size})")


def check_message(buf: bytes, versions: Collection[int]) -> None:
    """Raise MalformedMessage unless `buf`, one whole message as read from the peer, is safe
    to hand to os-ken's parser.  `versions`: the OpenFlow versions this controller speaks."""
    if len(buf) < ofproto_common.OFP_HEADER_SIZE:
        raise MalformedMessage(f"{len(buf)} bytes, shorter than an OpenFlow header")
    version, msg_type, length, _ = HEADER.unpack_from(buf)
    try:
        if length < ofproto_common.OFP_HEADER_SIZE:
            raise MalformedMessage(f"header length {length}, less than the header itself")
        if length > len(buf):
            raise MalformedMessage(f"header length {length}, more than the {len(buf)} "
                                   f"bytes read")
        buf = buf[:length]
        if msg_type == ofp.OFPT_HELLO:
            if version >= HELLO_ELEMENTS_FROM:
                _check_hello(buf)
        elif version not in versions:
            raise MalformedMessage("not a HELLO, and not of a version this controller speaks "
                                   f"({', '.join(f'0x{v:02x}' for v in sorted(versions))})")
        elif version == ofp.OFP_VERSION and msg_type == ofp.OFPT_QUEUE_GET_CONFIG_REPLY:
            _check_queue_config_reply(buf)
    except MalformedMessage as error:
        raise MalformedMessage(error.reason, version, msg_type) from None


# ---------------------------------------------------------------------------------------------
# The step budget

T = TypeVar("T")


def parse_budget(length: int) -> int:
    """The profile events a parse of a `length`-byte message may use."""
    return BUDGET_BASE + BUDGET_PER_BYTE * length


def bounded(parse: Callable[..., T], budget: int, *args: Any) -> T:
    """`parse(*args)`, stopped with BudgetExceeded after `budget` profile events (calls and
    returns of Python and C functions).  Only for code that does not switch green threads
    (os-ken's parsers only compute): the profile hook belongs to the running OS thread."""
    steps = 0

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal steps
        steps += 1
        if steps > budget:
            raise BudgetExceeded(f"parse stopped after {budget} steps")

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        return parse(*args)
    finally:
        sys.setprofile(previous)
