"""What the compiler keeps of an encoded flow, whoever encodes it.

Encoding is OpenFlow's business (`controller.openflow.wire.encode_flow`); the compiler is
handed the encoder and keeps what it returns by the flow's identity on the switch, which is
all it needs to know of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from controller.pipeline.flow import Flow

# A flow's identity on the switch: (table, priority, match TLVs sorted), all as OVS sees them.
Key = tuple[int, int, tuple[bytes, ...]]


class EncodedFlow(Protocol):
    @property
    def key(self) -> Key: ...


E = TypeVar("E", bound=EncodedFlow)

# (flow, its cookie) -> the encoded flow
FlowEncoder = Callable[[Flow, int], E]
