"""A bridge for the node agent's unit tests: OpenFlow bytes in, replies out; no OVS, no sockets.

`FakeSwitch` is to the agent what os-ken's Datapath is (`controller.agent.Switch`): the agent
sends it bytes, it reads them (message envelopes with `controller.openflow.wire`'s structs,
each flow-mod with os-ken's parser), keeps ONF bundles until they are committed (applied to
its flow table in one go) or discarded, and answers at once by calling the agent's event
methods the way `controller.app` does: port-desc and barrier replies, flow-stats replies as
the raw multipart messages OVS sends (match fields in another order than ours, several parts),
and OpenFlow errors for the flows it was told to refuse (`refuse`).  The test moves ports
(`set_port`, `delete_port`: port-status events) and connects and disconnects it.  As OVS
does, it reports the removal of every flow that asked for it (OFPFF_SEND_FLOW_REM) to the
agent, whoever removed it: its own bundles or the test behind its back (`delete_behind`;
`add_behind` adds silently, as `ovs-ofctl add-flow` would), and answers table-stats
requests with each table's flow count.

`Tasks` stands in for green threads (`spawn` queues, `run` runs the queue empty), and
`fake_runtime` makes the agent's `Runtime` from it: everything runs in the test's thread.
The agent's endless loops (methods named `*_loop`) are kept aside, not run: a test calls
their step (`check_topology`, `refresh_dns`) itself.
"""

from __future__ import annotations

import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.agent import NodeAgent, Runtime
from controller.openflow.wire import (
    BUNDLE_ADD,
    BUNDLE_CTRL,
    FLOW_STATS_FIXED,
    HEADER,
    MATCH_HEADER,
    OFP_VERSION,
    ONF_EXPERIMENTER_ID,
    Encoded,
    InstalledFlow,
    Key,
    match_tlvs,
)

TABLE_FULL = (ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_TABLE_FULL)
BUNDLE_FAILED = (ofp.OFPET_EXPERIMENTER, ofp.ONFERR_ET_FAILED)  # ovs-ofctl: OFPBFC_MSG_FAILED
MULTIPART_HEAD = struct.Struct("!HH4x")  # type, flags


class Tasks:
    """Green threads, run one after the other: `spawn` queues a call, `run` makes them."""

    def __init__(self) -> None:
        self.queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self.loops: list[str] = []  # the endless loops spawned, by name, never run

    def spawn(self, function: Callable[..., Any], *args: Any) -> None:
        name = getattr(function, "__name__", "")
        if name.endswith("_loop"):
            self.loops.append(name)
        else:
            self.queue.append((function, args))

    def run(self, limit: int = 100) -> int:
        """Run queued calls (and those they queue) until none is left; how many ran."""
        ran = 0
        while self.queue:
            function, args = self.queue.popleft()
            function(*args)
            ran += 1
            assert ran <= limit, f"more than {limit} tasks: a loop?"
        return ran


class Flag:
    """A reply event.  The fake switch answers inside `send`, so a reply is in by the time
    the session waits; one that is not never comes (wait returns False at once: a timeout)."""

    def __init__(self) -> None:
        self.is_set = False

    def set(self) -> None:
        self.is_set = True

    def wait(self, timeout: float | None = None) -> bool:
        return self.is_set


class Lock:
    """A bridge's reconcile lock.  Tasks run one after the other, so it is never contended;
    being taken twice means a task started another one's work inside its own."""

    def __init__(self) -> None:
        self.held = False

    def __enter__(self) -> Lock:
        assert not self.held, "reconcile lock taken twice"
        self.held = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.held = False


def fake_runtime(tasks: Tasks, clock: Callable[[], float] = time.monotonic) -> Runtime:
    return Runtime(spawn=tasks.spawn, clock=clock, sleep=lambda seconds: None, event=Flag,
                   lock=Lock, disconnect=lambda switch: switch.disconnect())


class _Datapath:
    """What os-ken's parsers read of a datapath."""

    ofproto = ofp
    ofproto_parser = parser


def read_flow_mod(message: bytes) -> tuple[int, InstalledFlow]:
    """(command, the flow it adds or deletes) of one OFPT_FLOW_MOD.  os-ken parses it (so a
    message it cannot read fails the test); the match and instructions are kept as bytes."""
    version, msg_type, length, xid = HEADER.unpack_from(message)
    assert msg_type == ofp.OFPT_FLOW_MOD, f"bundled message of type {msg_type}"
    mod = parser.OFPFlowMod.parser(_Datapath(), version, msg_type, length, xid, message)
    match_length = MATCH_HEADER.unpack_from(message, 48)[1]
    instructions = message[48 + (match_length + 7) // 8 * 8:]
    return mod.command, InstalledFlow(mod.table_id, mod.priority, mod.cookie,
                                      message[52:48 + match_length], instructions, 0, mod.flags)


def flow_removed_message(flow: InstalledFlow, reason: int = ofp.OFPRR_DELETE) -> bytes:
    """OFPT_FLOW_REMOVED for `flow`, its match TLVs in another order than ours (as OVS)."""
    body = b"".join(reversed(match_tlvs(flow.match)))
    match = MATCH_HEADER.pack(ofp.OFPMT_OXM, 4 + len(body)) + body
    match += b"\0" * (-len(match) % 8)
    fixed = struct.pack("!QHBBIIHHQQ", flow.cookie, flow.priority, reason, flow.table,
                        flow.duration_sec, 0, 0, 0, 0, 0)
    return HEADER.pack(OFP_VERSION, ofp.OFPT_FLOW_REMOVED, HEADER.size + len(fixed) + len(match),
                       0) + fixed + match


def flow_stats_entry(flow: InstalledFlow) -> bytes:
    """One ofp_flow_stats as OVS reports it: match TLVs in its own order (here: reversed)."""
    body = b"".join(reversed(match_tlvs(flow.match)))
    match = MATCH_HEADER.pack(ofp.OFPMT_OXM, 4 + len(body)) + body
    match += b"\0" * (-len(match) % 8)
    return FLOW_STATS_FIXED.pack(FLOW_STATS_FIXED.size + len(match) + len(flow.instructions),
                                 flow.table, flow.duration_sec, 0, flow.priority, 0, 0,
                                 flow.flags, flow.cookie, 0, 0) + match + flow.instructions


class FakeSwitch:
    """One bridge: `flows` (key -> InstalledFlow) and `ports` (name -> ofport) are its state;
    `received` counts the messages the agent sent it by kind ("bundle-add" is one flow-mod)."""

    def __init__(self, dpid: int, ports: dict[str, int] | None = None,
                 stats_part: int = 50, macs: dict[str, str] | None = None) -> None:
        self.id = dpid
        self.ports: dict[str, int] = {"br0": ofp.OFPP_LOCAL, **(ports or {})}
        self.macs: dict[str, str] = dict(macs or {})  # port -> MAC; "" (unknown) if absent
        self.flows: dict[Key, InstalledFlow] = {}
        self.received: Counter[str] = Counter()
        self.commits = 0  # bundles applied
        self.removals_reported = 0  # OFPT_FLOW_REMOVED messages sent
        self.stats_part = stats_part  # flows per flow-stats reply message
        self.agent: NodeAgent | None = None  # connected to
        self._bundles: dict[int, list[tuple[int, int, InstalledFlow]]] = {}
        self._refused_table: int | None = None
        self._refusal = TABLE_FULL
        self._refuse_at_commit = True
        self.answers_echo = True  # False: a half-open connection (echo requests unanswered)

    # ----------------------------------------------------------------- the test's side

    def connect(self, agent: NodeAgent) -> None:
        """The connection's handshake is done (os-ken's features reply)."""
        self.agent = agent
        agent.switch_connected(self)

    def disconnect(self) -> None:
        agent, self.agent = self.agent, None
        assert agent is not None, "not connected"
        agent.switch_gone(self)

    def load(self, flows: Iterable[Encoded]) -> None:
        """Put flows in the table directly (as ovs-ofctl would)."""
        for encoded in flows:
            self.flows[encoded.key] = InstalledFlow.from_encoded(encoded)

    def delete_behind(self, keep: Callable[[InstalledFlow], bool] = lambda flow: False) -> int:
        """Delete every flow not kept, as another connection would (`ovs-ofctl del-flows`):
        each removal is reported as OVS reports it.  How many were deleted."""
        gone = [key for key, flow in self.flows.items() if not keep(flow)]
        for key in gone:
            self._remove(key)
        return len(gone)

    def add_behind(self, flows: Iterable[Encoded]) -> None:
        """Add flows as another connection would: nobody is told."""
        self.load(flows)

    def _remove(self, key: Key) -> None:
        flow = self.flows.pop(key)
        self.removals_reported += bool(flow.flags & ofp.OFPFF_SEND_FLOW_REM)
        if flow.flags & ofp.OFPFF_SEND_FLOW_REM and self.agent is not None:
            self.agent.flow_removed(self, flow_removed_message(flow))

    def set_port(self, name: str, ofport: int, mac: str = "") -> None:
        """A port is added (or changed): port-status event."""
        self.ports[name] = ofport
        if mac:
            self.macs[name] = mac
        if self.agent is not None:
            self.agent.port_status(self, name, ofport, deleted=False,
                                   mac=self.macs.get(name, ""))

    def delete_port(self, name: str) -> None:
        ofport = self.ports.pop(name)
        if self.agent is not None:
            self.agent.port_status(self, name, ofport, deleted=True)

    def refuse(self, table: int | None, error: tuple[int, int] = TABLE_FULL,
               at_commit: bool = True) -> None:
        """Answer each flow-mod for `table` with `error` (None: accept everything again).
        `at_commit`: as OVS checks table limits, at the bundle's commit (the commit then
        fails too), else as soon as the flow-mod is added to the bundle."""
        self._refused_table, self._refusal, self._refuse_at_commit = table, error, at_commit

    # ----------------------------------------------------------------- the agent's side

    def send(self, buf: bytes) -> bool:
        if self.agent is None:
            return False
        offset = 0
        while offset < len(buf):
            length = HEADER.unpack_from(buf, offset)[2]
            self._receive(bytes(buf[offset:offset + length]))
            offset += length
        return True

    def _receive(self, message: bytes) -> None:
        version, msg_type, _, xid = HEADER.unpack_from(message)
        assert version == OFP_VERSION, version
        if msg_type == ofp.OFPT_BARRIER_REQUEST:
            self.received["barrier"] += 1
            self._agent().barrier_reply(self, xid)
        elif msg_type == ofp.OFPT_ECHO_REQUEST:
            self.received["echo"] += 1
            if self.answers_echo:
                self._agent().echo_reply(self, xid)
        elif msg_type == ofp.OFPT_MULTIPART_REQUEST:
            self._multipart(message, xid)
        elif msg_type == ofp.OFPT_EXPERIMENTER:
            self._bundle_message(message, xid)
        else:
            raise AssertionError(f"unexpected message type {msg_type}")

    def _agent(self) -> NodeAgent:
        assert self.agent is not None
        return self.agent

    def _multipart(self, message: bytes, xid: int) -> None:
        kind = MULTIPART_HEAD.unpack_from(message, HEADER.size)[0]
        if kind == ofp.OFPMP_PORT_DESC:
            self.received["port-desc"] += 1
            ports = [(name, ofport, self.macs.get(name, ""))
                     for name, ofport in self.ports.items()]
            self._agent().port_desc_reply(self, xid, ports, more=False)
        elif kind == ofp.OFPMP_FLOW:
            self.received["flow-stats"] += 1
            table = message[HEADER.size + MULTIPART_HEAD.size]
            for part, more in self.flow_stats_replies(xid, table):
                self._agent().flow_stats_reply(self, xid, part, more=more)
        elif kind == ofp.OFPMP_TABLE:
            self.received["table-stats"] += 1
            counts = Counter(flow.table for flow in self.flows.values())
            self._agent().table_stats_reply(self, xid, [(t, counts[t]) for t in range(254)],
                                            more=False)
        else:
            raise AssertionError(f"unexpected multipart request {kind}")

    def flow_stats_replies(self, xid: int, table: int = ofp.OFPTT_ALL) -> list[tuple[bytes, bool]]:
        """The flows of `table` (default: all) as OFPMP_FLOW reply messages of `stats_part`
        flows, and whether more follow each."""
        flows = [flow for flow in self.flows.values()
                 if table == ofp.OFPTT_ALL or flow.table == table]
        chunks = [flows[i:i + self.stats_part] for i in range(0, len(flows), self.stats_part)]
        replies = []
        for number, chunk in enumerate(chunks or [[]]):
            more = number < len(chunks) - 1
            body = MULTIPART_HEAD.pack(ofp.OFPMP_FLOW, ofp.OFPMPF_REPLY_MORE if more else 0) \
                + b"".join(flow_stats_entry(flow) for flow in chunk)
            replies.append((HEADER.pack(OFP_VERSION, ofp.OFPT_MULTIPART_REPLY,
                                        HEADER.size + len(body), xid) + body, more))
        return replies

    def _bundle_message(self, message: bytes, xid: int) -> None:
        experimenter, exp_type = struct.unpack_from("!II", message, HEADER.size)
        assert experimenter == ONF_EXPERIMENTER_ID, hex(experimenter)
        if exp_type == ofp.ONF_ET_BUNDLE_ADD_MESSAGE:
            bundle = BUNDLE_ADD.unpack_from(message)[6]
            inner = message[BUNDLE_ADD.size:]
            assert HEADER.unpack_from(inner)[3] == xid, "bundled message's xid differs"
            self._bundle_add(bundle, xid, *read_flow_mod(inner))
        elif exp_type == ofp.ONF_ET_BUNDLE_CONTROL:
            bundle, control = BUNDLE_CTRL.unpack_from(message)[6:8]
            self._bundle_control(bundle, control, xid)
        else:
            raise AssertionError(f"unexpected experimenter message {exp_type}")

    def _bundle_add(self, bundle: int, xid: int, command: int, flow: InstalledFlow) -> None:
        self.received["bundle-add"] += 1
        assert bundle in self._bundles, f"bundle {bundle} not open"
        assert command in (ofp.OFPFC_ADD, ofp.OFPFC_DELETE_STRICT), command
        if self._refused(flow) and not self._refuse_at_commit:
            self._agent().switch_error(self, xid, *self._refusal)
            return
        self._bundles[bundle].append((xid, command, flow))

    def _bundle_control(self, bundle: int, control: int, xid: int) -> None:
        if control == ofp.ONF_BCT_OPEN_REQUEST:
            self.received["bundle-open"] += 1
            assert bundle not in self._bundles, f"bundle {bundle} open already"
            self._bundles[bundle] = []
        elif control == ofp.ONF_BCT_DISCARD_REQUEST:
            self.received["bundle-discard"] += 1
            del self._bundles[bundle]
        elif control == ofp.ONF_BCT_COMMIT_REQUEST:
            self.received["bundle-commit"] += 1
            self._commit(self._bundles.pop(bundle), xid)
        else:
            raise AssertionError(f"unexpected bundle control {control}")

    def _commit(self, messages: list[tuple[int, int, InstalledFlow]], commit_xid: int) -> None:
        """All or nothing, as OVS: a refused flow-mod fails the commit, nothing is applied."""
        refused = [xid for xid, _, flow in messages if self._refused(flow)]
        if refused:
            for xid in refused:
                self._agent().switch_error(self, xid, *self._refusal)
            self._agent().switch_error(self, commit_xid, *BUNDLE_FAILED)
            return
        for _, command, flow in messages:
            key = flow.key
            if command == ofp.OFPFC_ADD:
                self.flows[key] = flow
            elif key in self.flows and self.flows[key].cookie == flow.cookie:
                self._remove(key)  # DELETE_STRICT with the cookie, all its bits
        self.commits += 1

    def _refused(self, flow: InstalledFlow) -> bool:
        return flow.table == self._refused_table
