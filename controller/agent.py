"""The node agent: all the controller's state and decisions, without os-ken.

Keeps every connected br0 equal to `compile_node` for its HostSubnet (faucet's
ValvesManager role).  The os-ken app (`controller.app`) only forwards events to it; what the
agent does to the world goes through what it is given: a `Runtime` (green threads, the clock,
sleeping, events and locks) and, per bridge, a `Switch` to send bytes to.  So the unit tests
run it on a fake switch, synchronously (tests/support/fakeswitch.py).

Reconciliation (dump, diff, one bundle) runs in a task per bridge, serialized by the bridge's
lock.  Each bridge's flows come from a `NodeCompiler` (the same flows as `compile_node`, kept
encoded, updated by owner), compiled at start for the configured `node`, so a bridge that
connects only waits for its bundle; after a change only the flows whose keys changed are
compared.  Each "in sync" line says how long it took from the switch's connection, the
topology change being read, or the port change, to the bridge holding the flows.

A second connection claiming the datapath ID of a bridge already served (`_contest`): the
served connection is sent an echo request.  If it answers within `DUPLICATE_PROBE_TIMEOUT`
seconds it stays, and the newcomer is refused: closed, logged, counted
(``osdn_openflow_refused_connections_total{reason="duplicate_datapath_id"}``), never sent a
flow or a request.  If it does not answer (or its connection is gone) it is closed and the
newcomer served: a switch that reconnects while its old connection is still half-open takes
over after that probe.  While a probe runs, further claimants of that datapath ID are refused
at once.  A bridge not served (no HostSubnet claims it) has no such protection: it gets no
flows either way.

Two things the topology cannot tell come from outside it: tun0's MAC, as each switch reports
it (table 100), and the answers for EgressNetworkPolicy dnsNames, which a DNS loop of its own
renews at their TTL (`controller.dns.EgressDns`; table 101).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from controller.compiler import Settings, UnknownNode
from controller.compiler.incremental import NodeCompiler
from controller.config import ControllerSettings
from controller.dns import EgressDns, Query, no_dns
from controller.metrics import Metrics
from controller.openflow.session import (
    BridgeSession,
    Disconnected,
    PortEntry,
    SwitchError,
    Waitable,
    error_name,
)
from controller.openflow.wire import encode_flow, parse_flow_removed
from controller.pipeline.cookies import CookieCollision
from controller.pipeline.tables import Table
from controller.reconcile import diff_encoded
from controller.tamper import (
    count_differences,
    describe_repair,
    note_differs,
    removed_by_someone_else,
    table_counts,
)
from controller.watch import TopologyWatcher, WatchResult
from topology.model import PLUGIN_NAMES, HostSubnet, Plugin, Topology

__all__ = ["Bridge", "BridgeLog", "NodeAgent", "Runtime", "Switch"]

log = logging.getLogger("osdn")
_SINCE = {"connected": "connect", "topology": "change read", "port": "port event",
          "dnsName": "answer", "repair": "detection"}
DUPLICATE_PROBE_TIMEOUT = 3.0  # seconds a served bridge has to answer the echo request
TUN0 = "tun0"  # the port whose MAC table 100 writes (3.11 `ensureTunMAC`)
DNS_IDLE_WAKE = 30 * 60.0  # the DNS loop's wait when no name is followed (3.11's too)


def _peer(switch: Switch) -> str:
    """Where a connection comes from: os-ken's datapath has the peer's address."""
    address = getattr(switch, "address", None)
    return f"from {address[0]}:{address[1]}" if isinstance(address, tuple) else repr(switch)


class TopologySource(Protocol):
    """Where topologies come from: `TopologyWatcher` (files) or `KubeSource` (the API)."""

    def poll(self) -> WatchResult | None: ...  # None: nothing new

    def due_in(self) -> float | None: ...  # seconds until a pending change settles


class Switch(Protocol):
    """A connected bridge as the agent holds it: os-ken's Datapath, or a fake in tests."""

    id: int  # the datapath id

    def send(self, buf: bytes) -> bool: ...  # False once the connection is gone


@dataclass(frozen=True)
class Runtime:
    """The agent's side effects, given by its host: os-ken's hub in the controller."""

    spawn: Callable[..., object]  # run fn(*args) in a task of its own (a green thread)
    clock: Callable[[], float]  # monotonic seconds
    sleep: Callable[[float], None]  # wait; sleep(0) lets other tasks run
    event: Callable[[], Waitable]  # what a request waits on for the switch's reply
    lock: Callable[[], AbstractContextManager[Any]]  # one reconcile at a time per bridge
    disconnect: Callable[[Any], None]  # close a switch's connection (its end is reported)


class BridgeLog(logging.LoggerAdapter[logging.Logger]):
    """Messages about one bridge: "node2.ocp.cn (dpid 0x00000000c0a86c70): <message>", and the
    node and datapath id as the record's `node` and `dpid` attributes."""

    def __init__(self, logger: logging.Logger, node: str, dpid: int) -> None:
        super().__init__(logger, {"node": node, "dpid": dpid})
        self.prefix = f"{node} (dpid 0x{dpid:016x}): "

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return self.prefix + str(msg), kwargs


@dataclass(eq=False)
class Bridge:
    """A bridge the agent serves: its connection, the conversation with it, and what the
    agent keeps about it."""

    switch: Switch
    host: str  # the HostSubnet host it is the br0 of
    session: BridgeSession
    lock: AbstractContextManager[Any]
    log: BridgeLog
    connected_at: float  # the clock at the switch's features reply
    compiler: NodeCompiler | None = None  # serving this bridge (see `NodeAgent._compiler_for`)
    full_diff: bool = True  # compare every flow next time (else only the changed keys)
    repair_pending: bool = False  # a repair task is queued (controller.tamper)


class NodeAgent:
    """Serves the bridges of the topology's nodes (only `settings.node`'s when set)."""

    def __init__(self, settings: ControllerSettings, metrics: Metrics, runtime: Runtime,
                 dns_query: Query | None = None, kube_client: Any = None) -> None:
        """`dns_query`: how dnsNames are resolved; by default as `settings.dns` says.
        `kube_client`: with source = kubernetes, the list/watch to use (`ListWatch`); by
        default a `KubeClient` of `settings.kubeconfig`."""
        self._kube_client = kube_client
        self.settings = settings
        self.metrics = metrics
        self.runtime = runtime
        query = dns_query or settings.make_dns_query()
        self.dns = None if query is None else EgressDns(query, runtime.clock)
        self._dns_wake: Waitable | None = None  # set: the DNS loop looks at its names again
        plugin = PLUGIN_NAMES[settings.plugin] if settings.plugin else None
        self._wake: Waitable = runtime.event()  # set: the topology source has news
        self.watcher: TopologySource = self._topology_source(plugin)
        self.topology: Topology | None = None
        self.bridges: dict[int, Bridge] = {}  # by datapath id
        self.unserved: dict[int, Switch] = {}  # connected bridges no HostSubnet claims (yet)
        self.claimants: dict[int, Switch] = {}  # a second connection of a served dpid, probed
        # one NodeCompiler per node served (or configured), kept across reconnects
        self.compilers: dict[str, NodeCompiler] = {}
        self._changed_at = 0.0  # when the current topology was read
        self._tun0_macs_said: dict[str, str] = {}  # host -> the differing tun0 MAC logged

    def _topology_source(self, plugin: Plugin | None) -> TopologySource:
        """The topology files (`controller.watch`), or the API server (`controller.kube`)."""
        if self.settings.source != "kubernetes":
            return TopologyWatcher(list(self.settings.topology), plugin,
                                   settle=self.settings.watch_settle, clock=self.runtime.clock)
        from controller.kube.client import KubeClient
        from controller.kube.source import KubeSource
        client = self._kube_client or KubeClient(self.settings.kubeconfig)
        return KubeSource(client, self.settings.node, plugin,
                          self.metrics, spawn=self.runtime.spawn, sleep=self.runtime.sleep,
                          wake=lambda: self._wake.set())

    def start(self) -> None:
        """Load the topology, compile the configured node, start watching the files (or the
        API server)."""
        self._load_topology()
        if self.settings.node and self.topology is not None \
                and self.topology.host_subnet(self.settings.node) is not None:
            self._precompile(self.settings.node)
        gc.freeze()  # the topology and flows live on: keep them out of every collection
        if self.settings.source == "kubernetes":
            self.watcher.start()  # type: ignore[attr-defined]
            self.runtime.spawn(self.event_loop)
        elif self.settings.watch:
            self.runtime.spawn(self.watch_loop)
        if self.dns is not None:
            self.runtime.spawn(self.dns_loop)
        if self.settings.audit_interval:
            self.runtime.spawn(self.audit_loop)

    # ----------------------------------------------------------------- topology

    def _load_topology(self) -> bool:
        """Poll the files; True when a new valid topology replaced the old one."""
        started = self.runtime.clock()
        result = self.watcher.poll()
        if result is None:
            return False
        self._changed_at = self.runtime.clock()
        if result.topology is None:
            self.metrics.topology_rejected(len(result.issues))
            log.error("topology %s is invalid; keeping the last good one (%s):\n%s",
                      ", ".join(result.changed_files) or "files",
                      "none yet" if self.topology is None else "still applied",
                      "\n".join(str(issue) for issue in result.issues))
            return False
        self.metrics.topology_loaded()
        self.topology = result.topology
        self._follow_dns_names()
        log.info("topology loaded: %d nodes, %d pods, %d services (%s); read and checked "
                 "in %.4f s", len(self.topology.host_subnets), len(self.topology.pods),
                 len(self.topology.services), ", ".join(result.changed_files),
                 self._changed_at - started)
        for warning in self.topology.warnings:
            log.warning("%s", warning)
        return True

    def watch_loop(self) -> None:
        while True:
            settling = self.watcher.due_in()  # a change seen, waiting to be stable
            interval = self.settings.watch_interval
            self.runtime.sleep(interval if settling is None else min(interval, settling))
            self.check_topology()

    def event_loop(self) -> None:
        """source = kubernetes: wait for the informers' news, let a burst gather for a
        moment (`BATCH`), then take the topology as it is (one change for the burst)."""
        from controller.kube.source import BATCH
        while True:
            self._wake.wait(self.settings.watch_interval)
            self._wake = self.runtime.event()
            self.runtime.sleep(BATCH)
            self.check_topology()

    def check_topology(self) -> None:
        """One poll of the watch loop: on a new topology, serve the bridges it now claims and
        reconcile every served one."""
        try:
            if self._load_topology():
                changed_at = self._changed_at
                for switch in list(self.unserved.values()):
                    self._serve(switch)
                for bridge in list(self.bridges.values()):
                    self.runtime.spawn(self._reconcile, bridge, "topology changed", changed_at)
                self.runtime.spawn(self._update_idle_compilers)
                gc.freeze()
        except Exception:  # keep watching whatever happened
            log.exception("topology watch failed")

    def _new_compiler(self, host: str) -> NodeCompiler:
        """The one place compilers are made."""
        resolver = no_dns if self.dns is None else self.dns.lookup
        return NodeCompiler(host, Settings(self.settings.masquerade_bit, resolver), encode_flow)

    def _precompile(self, host: str) -> None:
        """Compile `host`'s flows now (pod ports as annotated), so that its bridge, when it
        connects, gets them without waiting for a compile."""
        assert self.topology is not None
        started = self.runtime.clock()
        compiler = self.compilers.get(host)
        if compiler is None:
            compiler = self.compilers[host] = self._new_compiler(host)
        try:
            compiler.update(self.topology, compiler.ports, compiler.tun0_mac)
        except (UnknownNode, CookieCollision) as error:
            log.error("%s: cannot compile: %s", host, error)
            return
        compiler.take_dirty()
        log.info("%s: %d flows compiled in %.4f s", host, len(compiler.desired),
                 self.runtime.clock() - started)

    def _update_idle_compilers(self) -> None:
        """Keep the compilers of nodes without a bridge (the configured node before its bridge
        connects, nodes whose bridge went away) up to date, so that a connect is fast."""
        busy = {id(bridge.compiler) for bridge in self.bridges.values()}
        for host, compiler in list(self.compilers.items()):
            if id(compiler) in busy or self.topology is None:
                continue
            if self.topology.host_subnet(host) is None:
                del self.compilers[host]
                continue
            self._precompile(host)

    def _compiler_for(self, bridge: Bridge) -> NodeCompiler:
        if bridge.compiler is None:
            compiler = self.compilers.get(bridge.host)
            taken = compiler is not None and any(
                other.compiler is compiler for other in self.bridges.values()
                if other is not bridge)
            if compiler is None or taken:  # two bridges for one node: each its own
                compiler = self._new_compiler(bridge.host)
                if not taken:
                    self.compilers[bridge.host] = compiler
            bridge.compiler = compiler
        return bridge.compiler

    def _host_for(self, dpid: int) -> HostSubnet | None:
        if self.topology is None:
            return None
        if self.settings.node:
            return self.topology.host_subnet(self.settings.node)
        return next((hs for hs in self.topology.host_subnets if hs.datapath_id == dpid), None)

    # ----------------------------------------------------------------- switch events

    def switch_connected(self, switch: Switch) -> None:
        """A switch finished its handshake (its features reply)."""
        old = self.bridges.get(switch.id)
        if old is not None and old.switch is not switch and old.session.alive:
            self._contest(old, switch)
            return
        self._drop(old)
        self._serve(switch)

    def _drop(self, bridge: Bridge | None) -> None:
        """Stop serving `bridge` (replaced by a new connection of its switch)."""
        if bridge is not None and self.bridges.get(bridge.switch.id) is bridge:
            del self.bridges[bridge.switch.id]
            bridge.session.on_disconnect()

    def _contest(self, served: Bridge, claimant: Switch) -> None:
        """A second connection claims `served`'s datapath id: probe the served one first
        (the policy is in the module docstring)."""
        checked = self.claimants.get(claimant.id)
        if checked is not None:
            self._refuse(served, claimant, f"another claimant ({_peer(checked)}) is being "
                         "checked")
            return
        self.claimants[claimant.id] = claimant
        served.log.warning("a second connection (%s) claims this datapath id; checking that "
                           "the served one answers an echo request", _peer(claimant))
        self.runtime.spawn(self._settle_claim, served, claimant)

    def _settle_claim(self, served: Bridge, claimant: Switch) -> None:
        alive = served.session.echo(DUPLICATE_PROBE_TIMEOUT)
        if self.claimants.get(claimant.id) is not claimant:
            return  # the claimant went away meanwhile
        del self.claimants[claimant.id]
        still_served = self._bridge(served.switch) is served
        if alive and still_served:
            self._refuse(served, claimant, "the served connection answers echo requests")
            return
        if still_served:
            served.log.warning("the served connection does not answer echo requests; closed, "
                               "the new one (%s) takes over", _peer(claimant))
            self._drop(served)
            self.runtime.disconnect(served.switch)
        self._serve(claimant)

    def _refuse(self, served: Bridge, claimant: Switch, why: str) -> None:
        served.log.warning("refused a second connection claiming this datapath id (%s): %s; "
                           "connection closed", _peer(claimant), why)
        self.metrics.count_refused("duplicate_datapath_id")
        self.runtime.disconnect(claimant)

    def _serve(self, switch: Switch) -> None:
        """Start serving `switch` if a HostSubnet claims it; otherwise leave it alone."""
        host = self._host_for(switch.id)
        if host is None:
            if switch.id not in self.unserved:
                log.warning("bridge with datapath id 0x%016x connected: no HostSubnet has "
                            "that datapath id%s; left untouched", switch.id,
                            "" if self.topology else " (no valid topology yet)")
            self.unserved[switch.id] = switch
            return
        self.unserved.pop(switch.id, None)
        runtime = self.runtime
        bridge = Bridge(switch, host.host, BridgeSession(switch.send, runtime.event, runtime.sleep),
                        runtime.lock(), BridgeLog(log, host.host, switch.id), runtime.clock())
        self.bridges[switch.id] = bridge
        self.metrics.connected_bridges.set(len(self.bridges))
        self.metrics.add_node(host.host)
        bridge.log.info("connected")
        runtime.spawn(self._first_sync, bridge)

    def switch_gone(self, switch: Switch) -> None:
        """The connection to `switch` was lost."""
        if self.unserved.get(switch.id) is switch:
            del self.unserved[switch.id]
        if self.claimants.get(switch.id) is switch:
            del self.claimants[switch.id]
        bridge = self._bridge(switch)
        if bridge is None:
            return
        bridge.session.on_disconnect()
        del self.bridges[switch.id]
        if bridge.host != self.settings.node and all(
                other.host != bridge.host for other in self.bridges.values()):
            self.compilers.pop(bridge.host, None)  # only the configured node's stays
        self.metrics.connected_bridges.set(len(self.bridges))
        self.metrics.forget_flows(bridge.host)
        bridge.log.info("disconnected")

    def _bridge(self, switch: Switch) -> Bridge | None:
        """The bridge served over this very connection (not an older one of its dpid)."""
        bridge = self.bridges.get(switch.id)
        return bridge if bridge is not None and bridge.switch is switch else None

    def port_desc_reply(self, switch: Switch, xid: int, ports: Iterable[PortEntry],
                        more: bool) -> None:
        bridge = self._bridge(switch)
        if bridge is not None:
            bridge.session.on_reply(xid, list(ports), last=not more)

    def flow_stats_reply(self, switch: Switch, xid: int, message: bytes, more: bool) -> None:
        """One OFPMP_FLOW reply message, as bytes (`controller.openflow.wire.iter_flow_stats`)."""
        bridge = self._bridge(switch)
        if bridge is not None:
            bridge.session.on_reply(xid, message, last=not more)

    def echo_reply(self, switch: Switch, xid: int) -> None:
        bridge = self._bridge(switch)
        if bridge is not None:
            bridge.session.on_reply(xid, None)

    def barrier_reply(self, switch: Switch, xid: int) -> None:
        bridge = self._bridge(switch)
        if bridge is not None:
            bridge.session.on_reply(xid, None)

    def switch_error(self, switch: Switch, xid: int, err_type: int, code: int) -> None:
        """An OpenFlow error message (`code`: the exp_type of an experimenter error)."""
        bridge = self._bridge(switch)
        if bridge is None:
            log.warning("switch 0x%016x: OpenFlow error %s for xid %d", switch.id,
                        error_name(err_type, code), xid)
        elif not bridge.session.on_error(xid, err_type, code):
            bridge.log.warning("OpenFlow error %s for xid %d", error_name(err_type, code), xid)
        else:
            self.metrics.count_switch_error(bridge.host, error_name(err_type, code))

    def port_status(self, switch: Switch, name: str | bytes, port_no: int,
                    deleted: bool, mac: str = "") -> None:
        """A port was added, changed or deleted (`mac`: its hardware address)."""
        bridge = self._bridge(switch)
        if bridge is None:
            return
        name = bridge.session.on_port_status(name, port_no, deleted, mac)
        self.runtime.spawn(self._reconcile, bridge, f"port {name} changed", self.runtime.clock())

    # ----------------------------------------------------------------- reconciliation

    def _first_sync(self, bridge: Bridge) -> None:
        session = bridge.session
        with bridge.lock:
            try:
                session.request_ports()
                installed = session.dump_flows()
            except (Disconnected, TimeoutError) as error:
                bridge.log.warning("%s", error)
                return
            bridge.log.info("%d ports, %d flows installed", len(session.ports), len(installed))
            bridge.full_diff = True
            self._apply(bridge, "connected", bridge.connected_at)

    def _reconcile(self, bridge: Bridge, reason: str, since: float) -> None:
        with bridge.lock:
            if not bridge.session.alive:
                return
            try:
                repair = self._check_counts(bridge)
            except (Disconnected, TimeoutError) as error:
                bridge.log.warning("%s: %s", reason, error)
                return
            self._apply(bridge, reason, since, repair)

    def _apply(self, bridge: Bridge, reason: str, since: float,
               repair: str | None = None) -> None:
        """Make the bridge equal to the desired set: one bundle, or nothing if in sync.
        `since`: when what we react to happened (connect, topology read, port event).
        `repair`: the bridge was found changed behind our back (a `REPAIR_TRIGGERS` name):
        say what the bundle restores, and count it once applied."""
        session, host, clock = bridge.session, bridge.host, self.runtime.clock
        if self.topology is None or self.topology.host_subnet(host) is None:
            bridge.log.warning("not in the current topology; flows left as they are")
            return
        compiler = self._compiler_for(bridge)
        started = clock()
        try:
            compiler.update(self.topology, session.ports, self._tun0_mac(bridge))
        except (UnknownNode, CookieCollision) as error:
            bridge.full_diff = True
            self.metrics.count_reconcile(host, "error")
            bridge.log.error("%s: cannot compile: %s", reason, error)
            return
        changed = compiler.take_dirty()
        compiled = clock() - started
        plan = diff_encoded(compiler.desired, session.installed,
                            None if bridge.full_diff else changed)
        bridge.full_diff = True  # until the plan is applied
        if repair and plan:
            bridge.log.warning("repairing the bridge: %s", describe_repair(plan))
        if plan.foreign:
            bridge.log.info("removing %d flows outside our cookie space", len(plan.foreign))
        try:
            result = session.apply(plan, clock) if plan else None
        except SwitchError as error:
            self.metrics.count_reconcile(host, "error")
            bridge.log.error("%s: %s", reason, error)
            return
        except (Disconnected, TimeoutError) as error:
            self.metrics.count_reconcile(host, "error")
            bridge.log.warning("%s: %s", reason, error)
            return
        bridge.full_diff = False
        self.metrics.set_flows(host, compiler.table_counts)
        if result is None:
            self.metrics.count_reconcile(host, "unchanged")
        else:
            self.metrics.observe_bundle(host, result.seconds)
            for op, count in (("add", len(plan.adds)), ("modify", len(plan.modifies)),
                              ("delete", len(plan.deletes) + len(plan.foreign))):
                self.metrics.count_flow_mods(host, op, count)
            self.metrics.count_reconcile(host, "ok")
            if repair:
                self.metrics.count_repair(host, repair)
        bridge.log.info("in sync, %d flow-mods (%d add, %d modify, %d delete, %d foreign) "
                        "after %s; %.4f s from %s to in sync (compile %.4f s, bundle %.4f s, "
                        "%d flows)", plan.flow_mods, len(plan.adds), len(plan.modifies),
                        len(plan.deletes), len(plan.foreign), reason,
                        (clock() if result is None else result.finished) - since,
                        _SINCE.get(reason.split()[0], "event"), compiled,
                        0.0 if result is None else result.seconds, len(compiler.desired))

    # ----------------------------------------------------------------- tun0's MAC

    def _tun0_mac(self, bridge: Bridge) -> str | None:
        """tun0's MAC as the switch reports it (None: no tun0 port).  3.11 reads the real
        MAC for table 100 (`ensureTunMAC`); `osdn render` can only know the HostSubnet's
        `osdn.dev/tun0-mac` annotation or the 0a:58 convention, so say once when they
        differ."""
        mac = bridge.session.macs.get(TUN0)
        assert self.topology is not None
        host = self.topology.host_subnet(bridge.host)
        if mac and host is not None and mac != host.tun0_mac \
                and self._tun0_macs_said.get(bridge.host) != mac:
            self._tun0_macs_said[bridge.host] = mac
            bridge.log.warning("tun0's MAC is %s, not %s as the HostSubnet says (annotation "
                               "osdn.dev/tun0-mac, else 0a:58 + gateway): table 100 uses %s; "
                               "annotate the HostSubnet with osdn.dev/tun0-mac: %s so that "
                               "`osdn render` shows the same", mac, host.tun0_mac, mac, mac)
        return mac or None

    # ----------------------------------------------------------------- dnsNames

    def _follow_dns_names(self) -> None:
        """Tell the DNS cache which dnsNames the new topology uses; wake the DNS loop for
        new ones (3.11 resolves a policy's names when the policy arrives)."""
        if self.dns is None or self.topology is None:
            return
        names = {rule.dns_name for enp in self.topology.egress_network_policies
                 for rule in enp.rules if rule.dns_name}
        if self.dns.follow(names):
            # before the new topology is compiled (the caller then reconciles every
            # bridge), as 3.11's Add resolves before it writes the policy's flows
            self._refresh_answers()
            if self._dns_wake is not None:
                self._dns_wake.set()

    def dns_loop(self) -> None:
        """Re-resolve each dnsName when its TTL runs out (3.11 `EgressDNS.Sync`)."""
        while True:
            self._dns_wake = self.runtime.event()
            self._dns_wake.wait(timeout=self.refresh_dns())

    def refresh_dns(self) -> float:
        """One step of the DNS loop: ask again for the names that are due; for a changed
        answer, recompute the egress firewall and send every bridge the difference.  The
        seconds until the next name is due."""
        assert self.dns is not None
        changed = self._refresh_answers()
        if changed:
            now = self.runtime.clock()
            for bridge in list(self.bridges.values()):
                self.runtime.spawn(self._reconcile, bridge,
                                   f"dnsName {', '.join(changed)} changed", now)
            self.runtime.spawn(self._update_idle_compilers)
        due = self.dns.next_due()
        return DNS_IDLE_WAKE if due is None else max(0.0, due - self.runtime.clock())

    def _refresh_answers(self) -> list[str]:
        """Ask for the names that are due; if an answer changed, every compiler recomputes
        its egress firewall at its next update.  The names whose answer changed."""
        assert self.dns is not None
        try:
            changed = self.dns.refresh()
        except Exception:  # keep following whatever happened
            log.exception("dnsName refresh failed")
            return []
        if changed:
            compilers = {id(c): c for c in self.compilers.values()}
            compilers.update((id(b.compiler), b.compiler) for b in self.bridges.values()
                             if b.compiler is not None)
            for compiler in compilers.values():
                compiler.dns_changed()
        return changed

    # ----------------------------------------------------------------- tampering
    # A bridge changed behind our back (controller.tamper): noticed by a flow-removed
    # message, by the periodic audit, or by the check before an incremental update, and
    # repaired by the ordinary dump + diff + bundle.

    def flow_removed(self, switch: Switch, message: bytes) -> None:
        """An OFPT_FLOW_REMOVED message, as bytes (`controller.openflow.wire`)."""
        bridge = self._bridge(switch)
        if bridge is None or bridge.repair_pending:
            return
        removed = parse_flow_removed(message)
        if removed_by_someone_else(removed, bridge.session.installed, bridge.session.in_flight):
            bridge.log.warning("flow removed behind our back (table %d, priority %d, cookie "
                               "0x%x); repairing", removed.key[0], removed.key[1],
                               removed.cookie)
            bridge.repair_pending = True
            self.runtime.spawn(self._repair, bridge, "flow_removed", self.runtime.clock())

    def table_stats_reply(self, switch: Switch, xid: int, counts: Iterable[tuple[int, int]],
                          more: bool) -> None:
        """One OFPMP_TABLE reply message: (table id, active flow count) per table."""
        bridge = self._bridge(switch)
        if bridge is not None:
            bridge.session.on_reply(xid, list(counts), last=not more)

    def audit_loop(self) -> None:
        while True:
            self.runtime.sleep(self.settings.audit_interval)
            self.audit_bridges()

    def audit_bridges(self) -> None:
        """One round of the audit: a task per served bridge (none waiting for a repair)."""
        for bridge in list(self.bridges.values()):
            if not bridge.repair_pending:
                self.runtime.spawn(self._audit, bridge)

    def _audit(self, bridge: Bridge) -> None:
        """Counts per table and the table-253 note against what we believe; repair if not."""
        session = bridge.session
        with bridge.lock:
            if not session.alive or bridge.repair_pending:
                return
            started = self.runtime.clock()
            try:
                differences = count_differences(table_counts(session.installed.values()),
                                                 session.table_counts())
                if not differences and note_differs(session.installed,
                                                    session.dump_table(Table.VERSION_NOTE)):
                    differences = ["table 253: the version note differs"]
            except (Disconnected, TimeoutError) as error:
                bridge.log.warning("audit: %s", error)
                return
            if differences:
                bridge.log.warning("audit: the bridge changed behind our back (%s)",
                                   "; ".join(differences))
                self._repair_locked(bridge, "audit", started)

    def _repair(self, bridge: Bridge, trigger: str, since: float) -> None:
        with bridge.lock:
            if bridge.session.alive:
                self._repair_locked(bridge, trigger, since)

    def _repair_locked(self, bridge: Bridge, trigger: str, since: float) -> None:
        """Read every flow again and apply the diff (the bridge's lock held)."""
        bridge.repair_pending = False  # removals from now on are after this dump
        try:
            bridge.session.dump_flows()
        except (Disconnected, TimeoutError) as error:
            bridge.log.warning("repair: %s", error)
            return
        bridge.full_diff = True
        self._apply(bridge, f"repair ({trigger.replace('_', ' ')})", since, repair=trigger)

    def _check_counts(self, bridge: Bridge) -> str | None:
        """Before an incremental update: if the switch's counts differ from what we believe,
        read every flow again, so that the update repairs them too and its "in sync" is
        true; then the repair's trigger.  Raises Disconnected or TimeoutError."""
        if bridge.full_diff:
            return None  # every flow is compared anyway
        session = bridge.session
        differences = count_differences(table_counts(session.installed.values()),
                                        session.table_counts())
        if not differences:
            return None
        bridge.log.warning("the bridge changed behind our back (%s); reading it again",
                           "; ".join(differences))
        session.dump_flows()
        bridge.full_diff = True
        return "update_check"
