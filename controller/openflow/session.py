"""The conversation with one connected bridge: requests with replies, and bundled plans.

A session only sends bytes (from `controller.openflow.wire`) through the `send` it is given
and waits for the replies fed into it (`on_*`), on events keyed by xid: it knows nothing of
os-ken's datapath, so the node agent's tests drive it with a fake switch.  Errors the switch
sends back are mapped by xid to the flow that caused them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from os_ken.ofproto import ofproto_v1_3 as ofp

from controller.openflow.wire import (
    HEADER,
    OFP_VERSION,
    Encoded,
    InstalledFlow,
    Key,
    bundle_adds,
    bundle_control,
    delete_strict,
    encode,
    flow_stats_request,
    iter_flow_stats,
    port_desc_request,
    table_stats_request,
)
from controller.pipeline.tables import Table
from controller.reconcile import Plan
from topology.errors import OsdnError
from topology.gcpause import gc_paused

REPLY_TIMEOUT = 60.0
BATCH = 512  # bundle-add messages per write (about 64 KiB of flow-mods)
XID_FIRST, XID_LAST = 0x40000000, 0x7FFFFFFF  # ours; os-ken's own counter starts at 0


def use_raw_flow_stats() -> None:
    """Make os-ken hand OFPMP_FLOW replies over unparsed.

    os-ken parses every entry of a flow-stats reply into OFPFlowStats objects (matches,
    instructions, actions) before any handler runs: seconds for 50,000 flows, and we only
    read the raw bytes (`controller.openflow.wire.iter_flow_stats`).  This swaps the reply class for
    one whose body is a single opaque entry spanning the message; the class keeps os-ken's
    name, so `EventOFPFlowStatsReply` is still what handlers receive.  Affects the whole
    process (the osken-manager running this app); idempotent."""
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    current = parser.OFPMultipartReply._STATS_MSG_TYPES[ofp.OFPMP_FLOW]
    if getattr(current, "raw_body", False):
        return

    class _OpaqueBody:
        """The rest of the message as one 'entry' of `length` bytes, not parsed."""

        __slots__ = ("length",)

        def __init__(self, length: int) -> None:
            self.length = length

        @classmethod
        def parser(cls, buf: Any, offset: int) -> _OpaqueBody:
            return cls(len(buf) - offset)

    raw = type("OFPFlowStatsReply", (current,), {"cls_stats_body_cls": _OpaqueBody,
                                                  "raw_body": True})
    parser.OFPMultipartReply._STATS_MSG_TYPES[ofp.OFPMP_FLOW] = raw


class SwitchError(OsdnError):
    """The switch refused something; `rejected` names each offending flow-mod."""

    def __init__(self, message: str, rejected: list[str]) -> None:
        super().__init__(message + "".join(f"\n  {line}" for line in rejected))
        self.rejected = rejected


class Disconnected(OsdnError):
    pass


def error_name(err_type: int, code: int) -> str:
    """OFPET_FLOW_MOD_FAILED/OFPFMFC_BAD_COMMAND style names from os-ken's constants."""
    types = {v: k for k, v in vars(ofp).items() if k.startswith("OFPET_") and isinstance(v, int)}
    type_name = types.get(err_type, f"type {err_type}")
    prefix = {"OFPET_BAD_REQUEST": "OFPBRC_", "OFPET_BAD_ACTION": "OFPBAC_",
              "OFPET_BAD_INSTRUCTION": "OFPBIC_", "OFPET_BAD_MATCH": "OFPBMC_",
              "OFPET_FLOW_MOD_FAILED": "OFPFMFC_", "OFPET_TABLE_FULL": "OFPTFFC_",
              "OFPET_EXPERIMENTER": "ONFERR_ET_"}.get(type_name)
    codes = {v: k for k, v in vars(ofp).items()
             if prefix and k.startswith(prefix) and isinstance(v, int)}
    return f"{type_name}/{codes.get(code, f'code {code}')}"


class Waitable(Protocol):
    """What a session waits on for a reply (os-ken's `hub.Event` in the controller)."""

    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


# A port as a port-desc reply lists it: (name, ofport, MAC "xx:xx:xx:xx:xx:xx"); os-ken gives
# names as str or bytes.
PortEntry = tuple[str | bytes, int, str]


def port_name(name: str | bytes) -> str:
    return name.decode() if isinstance(name, bytes) else name


@dataclass
class _Waiter:
    event: Waitable
    parts: list[Any] = field(default_factory=list)


@dataclass
class ApplyResult:
    flow_mods: int
    seconds: float
    finished: float = 0.0  # the clock when the commit was confirmed (the bridge has it all)


class BridgeSession:
    """`send`: hands one buffer of OpenFlow messages to the switch, False once the connection
    is gone.  `event`: makes what a request waits on for its reply.  `sleep`: `sleep(0)` lets
    the other green threads run between batches of a big bundle."""

    def __init__(self, send: Callable[[bytes], bool], event: Callable[[], Waitable],
                 sleep: Callable[[float], None]) -> None:
        self._send_bytes = send
        self._event = event
        self._sleep = sleep
        self.ports: dict[str, int] = {}
        self.macs: dict[str, str] = {}  # port name -> its MAC, as the switch reports it
        self.installed: dict[Key, InstalledFlow] = {}
        # the keys of the bundle being applied: the switch reports their removal to us too
        self.in_flight: frozenset[Key] = frozenset()
        self.alive = True
        self._xid = XID_FIRST  # above os-ken's own counter, which starts at 0
        self._waiters: dict[int, _Waiter] = {}
        self._errors: dict[int, tuple[int, int]] = {}
        self._bundle_ids = 0

    # ----------------------------------------------------------------- plumbing

    def next_xid(self) -> int:
        self._xid = self._xid + 1 if self._xid < XID_LAST else XID_FIRST
        return self._xid

    def reserve_xids(self, count: int) -> int:
        """`count` consecutive xids (none wrapping around); the first one."""
        if self._xid + count > XID_LAST:
            self._xid = XID_FIRST - 1
        first = self._xid + 1
        self._xid += count
        return first

    def _send(self, data: bytes) -> None:
        if not self.alive or not self._send_bytes(data):
            raise Disconnected("connection lost")

    def _wait(self, xid: int, timeout: float = REPLY_TIMEOUT) -> list[Any]:
        waiter = self._waiters[xid]
        try:
            if not waiter.event.wait(timeout=timeout):
                raise TimeoutError(f"no reply to xid {xid} in {timeout} s")
            if not self.alive:
                raise Disconnected("connection lost")
            return waiter.parts
        finally:
            self._waiters.pop(xid, None)

    def _expect(self, xid: int) -> None:
        self._waiters[xid] = _Waiter(self._event())

    # ----------------------------------------------------------------- replies

    def on_reply(self, xid: int, part: Any, last: bool = True) -> None:
        waiter = self._waiters.get(xid)
        if waiter is not None:
            waiter.parts.append(part)
            if last:
                waiter.event.set()

    def on_error(self, xid: int, err_type: int, code: int) -> bool:
        """Record an error; True if it belongs to one of our requests."""
        if xid < XID_FIRST:
            return False
        self._errors[xid] = (err_type, code)
        waiter = self._waiters.get(xid)
        if waiter is not None:
            waiter.parts.append(("error", err_type, code))
            waiter.event.set()
        return True

    def on_disconnect(self) -> None:
        self.alive = False
        for waiter in self._waiters.values():
            waiter.event.set()

    def on_port_status(self, name: str | bytes, port_no: int, deleted: bool,
                       mac: str = "") -> str:
        """A port was added, changed or deleted; its name."""
        name = port_name(name)
        if deleted:
            self.ports.pop(name, None)
            self.macs.pop(name, None)
        elif port_no <= ofp.OFPP_MAX:
            self.ports[name] = port_no
            if mac:
                self.macs[name] = mac.lower()
        return name

    # ----------------------------------------------------------------- requests

    def barrier(self) -> None:
        xid = self.next_xid()
        self._expect(xid)
        self._send(HEADER.pack(OFP_VERSION, ofp.OFPT_BARRIER_REQUEST, 8, xid))
        self._wait(xid)

    def echo(self, timeout: float) -> bool:
        """Whether the switch answers an echo request within `timeout` seconds (its reply
        is fed in with `on_reply(xid, None)`)."""
        xid = self.next_xid()
        self._expect(xid)
        try:
            self._send(HEADER.pack(OFP_VERSION, ofp.OFPT_ECHO_REQUEST, 8, xid))
            self._wait(xid, timeout)
        except (Disconnected, TimeoutError):
            self._waiters.pop(xid, None)
            return False
        return True

    def request_ports(self) -> dict[str, int]:
        """The bridge's ports (name -> ofport, OFPP_LOCAL left out), from now on `ports`
        (and their MACs `macs`).  Each reply part fed in is an iterable of `PortEntry`."""
        xid = self.next_xid()
        self._expect(xid)
        self._send(port_desc_request(xid))
        ports, macs = {}, {}
        part: Iterable[PortEntry]
        for part in self._wait(xid):
            for name, port_no, mac in part:
                if port_no <= ofp.OFPP_MAX:
                    ports[port_name(name)] = port_no
                    macs[port_name(name)] = mac.lower()
        self.ports, self.macs = ports, macs
        return ports

    def dump_flows(self) -> list[InstalledFlow]:
        """Every flow of the bridge, read from raw flow-stats replies (`use_raw_flow_stats`);
        also what `installed` is from now on."""
        xid = self.next_xid()
        self._expect(xid)
        self._send(flow_stats_request(xid))
        parts = self._wait(xid)
        installed: dict[Key, InstalledFlow] = {}
        with gc_paused():  # tens of thousands of tuples that all stay
            for raw in parts:
                installed.update(iter_flow_stats(raw))
        self.installed = installed
        return list(installed.values())

    def dump_table(self, table: int) -> dict[Key, InstalledFlow]:
        """The flows of one table (`installed` is left as it is)."""
        xid = self.next_xid()
        self._expect(xid)
        self._send(flow_stats_request(xid, table))
        return {key: flow for raw in self._wait(xid) for key, flow in iter_flow_stats(raw)}

    def table_counts(self) -> dict[int, int]:
        """Flows per table, as the switch counts them (tables without flows left out).  Each
        reply part fed in is an iterable of (table id, active count)."""
        xid = self.next_xid()
        self._expect(xid)
        self._send(table_stats_request(xid))
        parts: list[Iterable[tuple[int, int]]] = self._wait(xid)
        return {table: count for part in parts for table, count in part if count}

    # ----------------------------------------------------------------- bundles

    def apply(self, plan: Plan, clock: Callable[[], float]) -> ApplyResult:
        """The plan in one ONF bundle: open, add all, barrier, check errors, commit.

        Deletes go first, then adds and modifies, the table-253 note last (a half-applied
        bridge never carries the version stamp).  On any error the bundle is discarded, the
        bridge keeps its old flows and SwitchError names each rejected flow.  The bundle's
        messages get consecutive xids, so an error's xid names its flow without a lookup
        table; the flows' texts are only made for errors."""
        started = clock()
        self._bundle_ids += 1
        bundle = self._bundle_ids
        removals = plan.deletes + plan.foreign
        changes = plan.adds + plan.modifies
        if changes and not isinstance(changes[0], Encoded):
            changes = [encode(flow) for flow in changes]
        note = [i for i, c in enumerate(changes) if c.key[0] == Table.VERSION_NOTE]
        if note and note != [len(changes) - 1]:
            changes = [c for c in changes if c.key[0] != Table.VERSION_NOTE] \
                + [changes[i] for i in note]
        first = self.reserve_xids(len(removals) + len(changes))
        self.in_flight = frozenset([old.key for old in removals] + [c.key for c in changes])
        try:
            return self._apply_bundle(bundle, removals, changes, first, clock, started)
        finally:
            self.in_flight = frozenset()

    def _apply_bundle(self, bundle: int, removals: list[InstalledFlow], changes: list[Encoded],
                      first: int, clock: Callable[[], float], started: float) -> ApplyResult:
        def blamed(xid: int) -> str:
            index = xid - first
            if 0 <= index < len(removals):
                old = removals[index]
                return (f"delete of table={old.table}, priority={old.priority}, "
                        f"cookie=0x{old.cookie:x}")
            if 0 <= index - len(removals) < len(changes):
                flow = changes[index - len(removals)].flow
                if flow is not None:
                    return f"{flow.to_ofctl()}  (owner {flow.owner})"
            return f"xid {xid}"

        messages = [delete_strict(old) for old in removals] + [c.flow_mod for c in changes]
        self._errors.clear()
        open_xid = self.next_xid()
        self._send(bundle_control(bundle, ofp.ONF_BCT_OPEN_REQUEST, open_xid))
        # in batches, each handed to the sender at once: the switch parses the first ones
        # while we pack the next
        for start in range(0, len(messages), BATCH):
            self._send(bundle_adds(bundle, messages[start:start + BATCH], first + start))
            self._sleep(0)
        self.barrier()
        if self._errors:
            discard = self.next_xid()
            self._send(bundle_control(bundle, ofp.ONF_BCT_DISCARD_REQUEST, discard))
            self.barrier()
            rejected = [f"{error_name(*err)}: {blamed(xid)}"
                        for xid, err in sorted(self._errors.items())]
            raise SwitchError("switch rejected the bundle; discarded, old flows kept", rejected)
        commit = self.next_xid()
        self._send(bundle_control(bundle, ofp.ONF_BCT_COMMIT_REQUEST, commit))
        self.barrier()
        if self._errors:  # OVS checks some things (table limits) only at commit
            failed = self._errors.pop(commit, None)
            rejected = [f"{error_name(*err)}: {blamed(xid)}"
                        for xid, err in sorted(self._errors.items())]
            raise SwitchError(f"switch refused the bundle at commit"
                              f"{' (' + error_name(*failed) + ')' if failed else ''}; "
                              f"nothing applied, old flows kept", rejected)
        finished = clock()
        seconds = finished - started
        self._remember(removals, changes)
        return ApplyResult(len(removals) + len(changes), seconds, finished)

    def _remember(self, removals: list[InstalledFlow], changes: list[Encoded]) -> None:
        installed = self.installed
        for old in removals:
            installed.pop(old.key, None)
        from_encoded = InstalledFlow.from_encoded
        for encoded in changes:
            installed[encoded.key] = from_encoded(encoded)
