"""A small blocking OpenFlow 1.3 client for a bridge's management socket.

Tests and benchmarks use it to read flows back and to apply plans exactly as the controller
does (same bytes from `controller.openflow.wire`), without an os-ken event loop.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence

from os_ken.ofproto import ofproto_v1_3 as ofp

from controller.openflow.wire import (
    HEADER,
    OFP_VERSION,
    InstalledFlow,
    bundle_add,
    bundle_control,
    flow_stats_request,
    parse_flow_stats,
)
from topology.errors import OsdnError


class OpenFlowError(OsdnError):
    def __init__(self, xid: int, err_type: int, code: int, data: bytes) -> None:
        super().__init__(f"OpenFlow error type {err_type} code {code} for xid {xid}")
        self.xid, self.err_type, self.code, self.data = xid, err_type, code, data


class OfClient:
    def __init__(self, target: str, timeout: float = 30.0) -> None:
        """`target`: "unix:/path/br0.mgmt" or "tcp:host:port"."""
        kind, _, rest = target.partition(":")
        if kind == "unix":
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.connect(rest)
        else:
            host, _, port = rest.rpartition(":")
            self._sock = socket.create_connection((host, int(port)))
        self._sock.settimeout(timeout)
        self._xid = 0
        self._send(HEADER.pack(OFP_VERSION, ofp.OFPT_HELLO, 8, self.next_xid()))
        self._receive()  # the switch's hello

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> OfClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_xid(self) -> int:
        self._xid += 1
        return self._xid

    def _send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def _read(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self._sock.recv(left)
            if not chunk:
                raise ConnectionError("switch closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _receive(self) -> bytes:
        head = self._read(8)
        length = HEADER.unpack(head)[2]
        return head + self._read(length - 8)

    def _until(self, xid: int, msg_type: int) -> list[bytes]:
        """Messages answering `xid` up to one of `msg_type`; raises on an error reply."""
        replies = []
        while True:
            message = self._receive()
            _, mtype, _, rxid = HEADER.unpack_from(message)
            if mtype == ofp.OFPT_ECHO_REQUEST:
                self._send(HEADER.pack(OFP_VERSION, ofp.OFPT_ECHO_REPLY, 8, rxid))
                continue
            if mtype == ofp.OFPT_ERROR:
                err_type, code = struct.unpack_from("!HH", message, 8)
                raise OpenFlowError(rxid, err_type, code, message[12:])
            if rxid == xid:
                replies.append(message)
                if mtype == msg_type:
                    return replies

    def dump_flows(self) -> list[InstalledFlow]:
        xid = self.next_xid()
        self._send(flow_stats_request(xid))
        flows: list[InstalledFlow] = []
        while True:
            message = self._until(xid, ofp.OFPT_MULTIPART_REPLY)[-1]
            part, more = parse_flow_stats(message)
            flows += part
            if not more:
                return flows

    def barrier(self) -> None:
        xid = self.next_xid()
        self._send(HEADER.pack(OFP_VERSION, ofp.OFPT_BARRIER_REQUEST, 8, xid))
        self._until(xid, ofp.OFPT_BARRIER_REPLY)

    def bundle(self, messages: Sequence[bytes] | Iterable[bytes], bundle_id: int = 1) -> None:
        """Open, add all, barrier (errors surface here), commit — as ovs-ofctl --bundle."""
        xid = self.next_xid()
        self._send(bundle_control(bundle_id, ofp.ONF_BCT_OPEN_REQUEST, xid))
        self._until(xid, ofp.OFPT_EXPERIMENTER)
        self._send(b"".join(bundle_add(bundle_id, m, self.next_xid()) for m in messages))
        try:
            self.barrier()
        except OpenFlowError:
            discard = self.next_xid()
            self._send(bundle_control(bundle_id, ofp.ONF_BCT_DISCARD_REQUEST, discard))
            raise
        xid = self.next_xid()
        self._send(bundle_control(bundle_id, ofp.ONF_BCT_COMMIT_REQUEST, xid))
        self._until(xid, ofp.OFPT_EXPERIMENTER)
