"""One connected bridge, seen through os-ken: requests with replies, and bundled plans.

The app's event handlers feed replies in (`on_*`); a green thread per operation sends bytes
from `controller.wire` and waits on events keyed by xid.  Errors the switch sends back are
mapped by xid to the flow that caused them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller.flow import Flow
from controller.reconcile import Plan
from controller.tables import Table
from controller.wire import (HEADER, OFP_VERSION, InstalledFlow, Key, bundle_add,
                             bundle_control, delete_strict, encode, flow_stats_request,
                             parse_flow_stats)

log = logging.getLogger(__name__)
REPLY_TIMEOUT = 60.0
CHUNK = 64 * 1024


class SwitchError(RuntimeError):
    """The switch refused something; `rejected` names each offending flow-mod."""

    def __init__(self, message: str, rejected: list[str]) -> None:
        super().__init__(message + "".join(f"\n  {line}" for line in rejected))
        self.rejected = rejected


class Disconnected(RuntimeError):
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


@dataclass
class _Waiter:
    event: Any
    parts: list[Any] = field(default_factory=list)


@dataclass
class ApplyResult:
    flow_mods: int
    seconds: float


class BridgeSession:
    def __init__(self, datapath: Any, host: str) -> None:
        self.datapath = datapath
        self.dpid: int = datapath.id
        self.host = host
        self.ports: dict[str, int] = {}
        self.installed: dict[Key, InstalledFlow] = {}
        self.lock = hub.Semaphore(1)  # one reconcile at a time per bridge
        self.alive = True
        self._xid = 0x40000000  # above os-ken's own counter, which starts at 0
        self._waiters: dict[int, _Waiter] = {}
        self._errors: dict[int, tuple[int, int]] = {}
        self._bundle_ids = 0

    # ----------------------------------------------------------------- plumbing

    def next_xid(self) -> int:
        self._xid = self._xid + 1 if self._xid < 0x7FFFFFFF else 0x40000000
        return self._xid

    def _send(self, data: bytes) -> None:
        if not self.alive or not self.datapath.send(data):
            raise Disconnected(f"{self.host}: connection lost")

    def _send_chunked(self, messages: Iterable[bytes]) -> None:
        buffer: list[bytes] = []
        size = 0
        for message in messages:
            buffer.append(message)
            size += len(message)
            if size >= CHUNK:
                self._send(b"".join(buffer))
                buffer, size = [], 0
        if buffer:
            self._send(b"".join(buffer))

    def _wait(self, xid: int) -> list[Any]:
        waiter = self._waiters[xid]
        try:
            if not waiter.event.wait(timeout=REPLY_TIMEOUT):
                raise TimeoutError(f"{self.host}: no reply to xid {xid} in {REPLY_TIMEOUT} s")
            if not self.alive:
                raise Disconnected(f"{self.host}: connection lost")
            return waiter.parts
        finally:
            self._waiters.pop(xid, None)

    def _expect(self, xid: int) -> None:
        self._waiters[xid] = _Waiter(hub.Event())

    # ----------------------------------------------------------------- replies

    def on_reply(self, xid: int, part: Any, last: bool = True) -> None:
        waiter = self._waiters.get(xid)
        if waiter is not None:
            waiter.parts.append(part)
            if last:
                waiter.event.set()

    def on_error(self, xid: int, err_type: int, code: int) -> bool:
        """Record an error; True if it belongs to one of our requests."""
        if xid < 0x40000000:
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

    # ----------------------------------------------------------------- requests

    def barrier(self) -> None:
        xid = self.next_xid()
        self._expect(xid)
        self._send(HEADER.pack(OFP_VERSION, ofp.OFPT_BARRIER_REQUEST, 8, xid))
        self._wait(xid)

    def request_ports(self, parser: Any) -> dict[str, int]:
        xid = self.next_xid()
        self._expect(xid)
        request = parser.OFPPortDescStatsRequest(self.datapath, 0)
        request.set_xid(xid)
        request.serialize()
        self._send(bytes(request.buf))
        ports = {}
        for reply in self._wait(xid):
            for port in reply.body:
                name = port.name.decode() if isinstance(port.name, bytes) else port.name
                if port.port_no <= ofp.OFPP_MAX:
                    ports[name] = port.port_no
        self.ports = ports
        return ports

    def dump_flows(self) -> list[InstalledFlow]:
        xid = self.next_xid()
        self._expect(xid)
        self._send(flow_stats_request(xid))
        flows: list[InstalledFlow] = []
        for raw in self._wait(xid):
            flows += parse_flow_stats(raw)[0]
        self.installed = {flow.key: flow for flow in flows}
        return flows

    # ----------------------------------------------------------------- bundles

    def apply(self, plan: Plan, clock: Callable[[], float]) -> ApplyResult:
        """The plan in one ONF bundle: open, add all, barrier, check errors, commit.

        Deletes go first, then adds and modifies, the table-253 note last (a half-applied
        bridge never carries the version stamp).  On any error the bundle is discarded, the
        bridge keeps its old flows and SwitchError names each rejected flow."""
        started = clock()
        self._bundle_ids += 1
        bundle = self._bundle_ids
        blamed: dict[int, str] = {}
        messages = []
        for old in plan.deletes + plan.foreign:
            xid = self.next_xid()
            blamed[xid] = f"delete of table={old.table}, priority={old.priority}, " \
                          f"cookie=0x{old.cookie:x}"
            messages.append(bundle_add(bundle, delete_strict(old), xid))
        changes = sorted(plan.adds + plan.modifies,
                         key=lambda f: f.table is Table.VERSION_NOTE)
        for flow in changes:
            xid = self.next_xid()
            blamed[xid] = f"{flow.to_ofctl()}  (owner {flow.owner})"
            messages.append(bundle_add(bundle, encode(flow).flow_mod, xid))
        self._errors.clear()
        open_xid = self.next_xid()
        self._send(bundle_control(bundle, ofp.ONF_BCT_OPEN_REQUEST, open_xid))
        self._send_chunked(messages)
        self.barrier()
        if self._errors:
            discard = self.next_xid()
            self._send(bundle_control(bundle, ofp.ONF_BCT_DISCARD_REQUEST, discard))
            self.barrier()
            rejected = [f"{error_name(*err)}: {blamed.get(xid, f'xid {xid}')}"
                        for xid, err in sorted(self._errors.items())]
            raise SwitchError(f"{self.host}: switch rejected the bundle; discarded, "
                              f"old flows kept", rejected)
        commit = self.next_xid()
        self._send(bundle_control(bundle, ofp.ONF_BCT_COMMIT_REQUEST, commit))
        self.barrier()
        if self._errors:  # OVS checks some things (table limits) only at commit
            failed = self._errors.pop(commit, None)
            rejected = [f"{error_name(*err)}: {blamed.get(xid, f'xid {xid}')}"
                        for xid, err in sorted(self._errors.items())]
            raise SwitchError(f"{self.host}: switch refused the bundle at commit"
                              f"{' (' + error_name(*failed) + ')' if failed else ''}; "
                              f"nothing applied, old flows kept", rejected)
        self._remember(plan, changes)
        return ApplyResult(plan.flow_mods, clock() - started)

    def _remember(self, plan: Plan, changes: list[Flow]) -> None:
        for old in plan.deletes + plan.foreign:
            self.installed.pop(old.key, None)
        for flow in changes:
            encoded = encode(flow)
            self.installed[encoded.key] = InstalledFlow.from_encoded(encoded)
