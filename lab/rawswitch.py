"""A raw-socket OpenFlow peer, for tests of the controller's channel: it sends whatever bytes
it is given, or plays a minimal OpenFlow 1.3 switch with a datapath ID of its choosing (the
"fake switch takes over a node" attack), and notes what the controller sends it.

`RawPeer` connects and sends bytes; `closed_by_controller` tells whether the controller has
closed the connection.  `FakeSwitch` completes the handshake (HELLO, features reply with its
datapath ID, an empty port description) and then, in a thread of its own, answers echo
requests (unless told not to: a half-open connection) and counts every message type received.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections import Counter

from os_ken.ofproto import ofproto_v1_3 as ofp

HEADER = struct.Struct("!BBHI")
FEATURES = struct.Struct("!QIBB2xII")  # datapath_id, n_buffers, n_tables, auxiliary_id, ...


def message(version: int, msg_type: int, body: bytes = b"", xid: int = 0) -> bytes:
    return HEADER.pack(version, msg_type, HEADER.size + len(body), xid) + body


class RawPeer:
    """One TCP connection to the controller's OpenFlow port."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.received = b""  # every byte the controller sent, until read by `read_message`

    def send(self, data: bytes) -> bool:
        """False if the controller has already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False at the end of the stream."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return True
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        self.received += data
        return bool(data)

    def read_message(self, timeout: float = 5.0) -> bytes | None:
        """The next whole message from the controller; None at the end of the stream or
        after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.received) >= HEADER.size:
                length = max(HEADER.unpack_from(self.received)[2], HEADER.size)
                if len(self.received) >= length:
                    msg, self.received = self.received[:length], self.received[length:]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                return None

    def closed_by_controller(self, timeout: float = 5.0) -> bool:
        """Whether the controller closes the connection within `timeout` (what it sends
        meanwhile is kept in `received`)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not self._fill(min(left, 0.2)):
                return True
        return False

    def close(self) -> None:
        self.sock.close()


class FakeSwitch(RawPeer):
    """A peer that completes the handshake as an OpenFlow 1.3 switch with `datapath_id`."""

    def __init__(self, host: str, port: int, datapath_id: int, answer_echo: bool = True) -> None:
        super().__init__(host, port)
        self.datapath_id = datapath_id
        self.answer_echo = answer_echo
        self.types: Counter[int] = Counter()  # message types received after the handshake
        self.closed = threading.Event()
        self._thread: threading.Thread | None = None

    def handshake(self, timeout: float = 5.0) -> None:
        """HELLO, then the features reply to the controller's request; the rest is answered
        by a thread (`serve`)."""
        self.send(message(ofp.OFP_VERSION, ofp.OFPT_HELLO, xid=1))
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read_message(deadline - time.monotonic())
            if msg is None:
                raise TimeoutError("no features request from the controller")
            if msg[1] == ofp.OFPT_FEATURES_REQUEST:
                break
        body = FEATURES.pack(self.datapath_id, 0, 254, 0, 0, 0)
        self.send(message(ofp.OFP_VERSION, ofp.OFPT_FEATURES_REPLY, body, HEADER.unpack(
            msg[:8])[3]))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._answer()
        except (OSError, ValueError):  # closed by the test meanwhile
            pass
        self.closed.set()

    def _answer(self) -> None:
        while True:
            msg = self.read_message(timeout=3600)
            if msg is None:
                return
            _, msg_type, _, xid = HEADER.unpack_from(msg)
            self.types[msg_type] += 1
            if msg_type == ofp.OFPT_ECHO_REQUEST and self.answer_echo:
                self.send(message(ofp.OFP_VERSION, ofp.OFPT_ECHO_REPLY, msg[8:], xid))
            elif msg_type == ofp.OFPT_MULTIPART_REQUEST \
                    and struct.unpack_from("!H", msg, 8)[0] == ofp.OFPMP_PORT_DESC:
                body = struct.pack("!HH4x", ofp.OFPMP_PORT_DESC, 0)
                self.send(message(ofp.OFP_VERSION, ofp.OFPT_MULTIPART_REPLY, body, xid))

    def close(self) -> None:
        super().close()
        if self._thread is not None:
            self._thread.join(5)
