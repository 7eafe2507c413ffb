"""The os-ken shell: `osken-manager --config-file osdn.conf controller.app`.

Keeps every connected br0 equal to `compile_node` for its HostSubnet.  Handlers only route
events to a `BridgeSession`; reconciliation (dump, diff, one bundle) runs in a green thread
per bridge, serialized by the session's lock.  Settings: `controller.config`.

Speed: each bridge's flows come from a `NodeCompiler` (the same flows as `compile_node`, kept
encoded, updated by owner), compiled at start for the configured `node`, so a bridge that
connects only waits for its bundle; after a change only the flows whose keys changed are
compared.  Flow-stats replies reach us unparsed (`use_raw_flow_stats`).  Each "in sync" line
says how long it took from the switch's connection, the topology change being read, or the
port change, to the bridge holding the flows.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, \
    set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from controller.compiler import Settings, UnknownNode
from controller.compiler.incremental import NodeCompiler
from controller.openflow.wire import encode_flow
from controller.config import ConfigError, ControllerSettings, load_settings, register_options
from prometheus_client import REGISTRY

from controller.pipeline.cookies import CookieCollision
from controller.metrics import Metrics, start_http_server
from controller.reconcile import diff_encoded
from controller.openflow.session import BridgeSession, Disconnected, SwitchError, error_name, \
    use_raw_flow_stats
from controller.watch import TopologyWatcher
from topology.model import PLUGIN_NAMES, HostSubnet, Topology

log = logging.getLogger("osdn")
_SINCE = {"connected": "connect", "topology": "change read", "port": "port event"}


class OsdnController(app_manager.OSKenApp):  # type: ignore[misc]
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        register_options(cfg.CONF)
        try:
            self.settings: ControllerSettings = load_settings(cfg.CONF)
        except ConfigError as error:
            log.error("bad settings, not starting:\n%s", error)
            raise SystemExit(2) from error
        use_raw_flow_stats()
        self.metrics = Metrics(REGISTRY)
        start_http_server(self.settings.metrics_port, self.settings.metrics_address, REGISTRY)
        self.resolver = self.settings.make_resolver()  # one, so its TTL cache lives on
        plugin = PLUGIN_NAMES[self.settings.plugin] if self.settings.plugin else None
        self.watcher = TopologyWatcher(list(self.settings.topology), plugin)
        self.topology: Topology | None = None
        self.sessions: dict[int, BridgeSession] = {}
        self.unserved: dict[int, Any] = {}  # connected bridges no HostSubnet claims (yet)
        # one NodeCompiler per node served (or configured), kept across reconnects
        self.compilers: dict[str, NodeCompiler] = {}
        self._changed_at = 0.0  # when the current topology was read
        self._load_topology()
        if self.settings.node and self.topology is not None \
                and self.topology.host_subnet(self.settings.node) is not None:
            self._precompile(self.settings.node)
        gc.freeze()  # the topology and flows live on: keep them out of every collection
        if self.settings.watch:
            hub.spawn(self._watch_loop)

    # ----------------------------------------------------------------- topology

    def _compile_settings(self) -> Settings:
        return Settings(self.settings.masquerade_bit, self.resolver)

    def _load_topology(self) -> bool:
        """Poll the files; True when a new valid topology replaced the old one."""
        started = time.monotonic()
        result = self.watcher.poll()
        if result is None:
            return False
        self._changed_at = time.monotonic()
        if result.topology is None:
            self.metrics.topology_rejected(len(result.issues))
            log.error("topology %s is invalid; keeping the last good one (%s):\n%s",
                      ", ".join(result.changed_files) or "files",
                      "none yet" if self.topology is None else "still applied",
                      "\n".join(str(issue) for issue in result.issues))
            return False
        self.metrics.topology_loaded()
        self.topology = result.topology
        log.info("topology loaded: %d nodes, %d pods, %d services (%s); read and checked "
                 "in %.4f s", len(self.topology.host_subnets), len(self.topology.pods),
                 len(self.topology.services), ", ".join(result.changed_files),
                 self._changed_at - started)
        for warning in self.topology.warnings:
            log.warning("%s", warning)
        return True

    def _watch_loop(self) -> None:
        while True:
            hub.sleep(self.settings.watch_interval)
            try:
                if self._load_topology():
                    changed_at = self._changed_at
                    for datapath in list(self.unserved.values()):
                        self._serve(datapath)
                    for session in list(self.sessions.values()):
                        hub.spawn(self._reconcile, session, "topology changed", changed_at)
                    hub.spawn(self._update_idle_compilers)
                    gc.freeze()
            except Exception:  # keep watching whatever happened
                log.exception("topology watch failed")

    def _precompile(self, host: str) -> None:
        """Compile `host`'s flows now (pod ports as annotated), so that its bridge, when it
        connects, gets them without waiting for a compile."""
        assert self.topology is not None
        started = time.monotonic()
        compiler = self.compilers.setdefault(
            host, NodeCompiler(host, self._compile_settings(), encode_flow))
        try:
            compiler.update(self.topology, compiler.ports)
        except (UnknownNode, CookieCollision) as error:
            log.error("%s: cannot compile: %s", host, error)
            return
        compiler.take_dirty()
        log.info("%s: %d flows compiled in %.4f s", host, len(compiler.desired),
                 time.monotonic() - started)

    def _update_idle_compilers(self) -> None:
        """Keep the compilers of nodes without a bridge (the configured node before its bridge
        connects, nodes whose bridge went away) up to date, so that a connect is fast."""
        busy = {id(s.compiler) for s in self.sessions.values()}
        for host, compiler in list(self.compilers.items()):
            if id(compiler) in busy or self.topology is None:
                continue
            if self.topology.host_subnet(host) is None:
                del self.compilers[host]
                continue
            self._precompile(host)

    def _compiler_for(self, session: BridgeSession) -> NodeCompiler:
        if session.compiler is None:
            compiler = self.compilers.get(session.host)
            taken = compiler is not None and any(
                other.compiler is compiler for other in self.sessions.values()
                if other is not session)
            if compiler is None or taken:  # two bridges for one node: each its own
                compiler = NodeCompiler(session.host, self._compile_settings(), encode_flow)
                if not taken:
                    self.compilers[session.host] = compiler
            session.compiler = compiler
        return session.compiler

    def _host_for(self, dpid: int) -> HostSubnet | None:
        if self.topology is None:
            return None
        if self.settings.node:
            return self.topology.host_subnet(self.settings.node)
        return next((hs for hs in self.topology.host_subnets if hs.datapath_id == dpid), None)

    # ----------------------------------------------------------------- switch lifecycle

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _on_features(self, ev: Any) -> None:
        datapath = ev.msg.datapath
        old = self.sessions.pop(datapath.id, None)
        if old is not None:
            old.on_disconnect()
        self._serve(datapath)

    def _serve(self, datapath: Any) -> None:
        """Start serving `datapath` if a HostSubnet claims it; otherwise leave it alone."""
        host = self._host_for(datapath.id)
        if host is None:
            if datapath.id not in self.unserved:
                log.warning("bridge with datapath id 0x%016x connected: no HostSubnet has "
                            "that datapath id%s; left untouched", datapath.id,
                            "" if self.topology else " (no valid topology yet)")
            self.unserved[datapath.id] = datapath
            return
        self.unserved.pop(datapath.id, None)
        session = BridgeSession(datapath, host.host)
        session.connected_at = time.monotonic()
        self.sessions[datapath.id] = session
        self.metrics.connected_bridges.set(len(self.sessions))
        self.metrics.add_node(host.host)
        log.info("%s (dpid 0x%016x) connected", host.host, datapath.id)
        hub.spawn(self._first_sync, session)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _on_dead(self, ev: Any) -> None:
        datapath = ev.datapath
        if self.unserved.get(datapath.id) is datapath:
            del self.unserved[datapath.id]
        session = self.sessions.get(datapath.id)
        if session is not None and session.datapath is datapath:
            session.on_disconnect()
            del self.sessions[datapath.id]
            if session.host != self.settings.node and all(
                    other.host != session.host for other in self.sessions.values()):
                self.compilers.pop(session.host, None)  # only the configured node's stays
            self.metrics.connected_bridges.set(len(self.sessions))
            self.metrics.forget_flows(session.host)
            log.info("%s (dpid 0x%016x) disconnected", session.host, datapath.id)

    def _session(self, ev: Any) -> BridgeSession | None:
        session = self.sessions.get(ev.msg.datapath.id)
        return session if session is not None and session.datapath is ev.msg.datapath else None

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _on_port_desc(self, ev: Any) -> None:
        session = self._session(ev)
        if session is not None:
            session.on_reply(ev.msg.xid, ev.msg, last=not ev.msg.flags & 1)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _on_flow_stats(self, ev: Any) -> None:
        session = self._session(ev)
        if session is not None:
            session.on_reply(ev.msg.xid, bytes(ev.msg.buf), last=not ev.msg.flags & 1)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _on_barrier(self, ev: Any) -> None:
        session = self._session(ev)
        if session is not None:
            session.on_reply(ev.msg.xid, ev.msg)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _on_error(self, ev: Any) -> None:
        msg = ev.msg
        # os-ken leaves `code` None for experimenter errors (ONF bundle errors)
        code = msg.exp_type if msg.type == ofproto_v1_3.OFPET_EXPERIMENTER else msg.code
        session = self._session(ev)
        if session is None or not session.on_error(msg.xid, msg.type, code):
            log.warning("switch 0x%016x: OpenFlow error %s for xid %d",
                        msg.datapath.id, error_name(msg.type, code), msg.xid)
        else:
            self.metrics.count_switch_error(session.host, error_name(msg.type, code))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _on_port_status(self, ev: Any) -> None:
        session = self._session(ev)
        if session is None:
            return
        port, ofp = ev.msg.desc, ev.msg.datapath.ofproto
        name = port.name.decode() if isinstance(port.name, bytes) else port.name
        if ev.msg.reason == ofp.OFPPR_DELETE:
            session.ports.pop(name, None)
        elif port.port_no <= ofp.OFPP_MAX:
            session.ports[name] = port.port_no
        hub.spawn(self._reconcile, session, f"port {name} changed", time.monotonic())

    # ----------------------------------------------------------------- reconciliation

    def _first_sync(self, session: BridgeSession) -> None:
        with session.lock:
            try:
                session.request_ports(session.datapath.ofproto_parser)
                installed = session.dump_flows()
            except (Disconnected, TimeoutError) as error:
                log.warning("%s: %s", session.host, error)
                return
            log.info("%s: %d ports, %d flows installed", session.host, len(session.ports),
                     len(installed))
            session.full_diff = True
            self._apply(session, "connected", session.connected_at)

    def _reconcile(self, session: BridgeSession, reason: str, since: float) -> None:
        with session.lock:
            if session.alive:
                self._apply(session, reason, since)

    def _apply(self, session: BridgeSession, reason: str, since: float) -> None:
        """Make the bridge equal to the desired set: one bundle, or nothing if in sync.
        `since`: when what we react to happened (connect, topology read, port event)."""
        if self.topology is None or self.topology.host_subnet(session.host) is None:
            log.warning("%s: not in the current topology; flows left as they are", session.host)
            return
        compiler = self._compiler_for(session)
        started = time.monotonic()
        try:
            compiler.update(self.topology, session.ports)
        except (UnknownNode, CookieCollision) as error:
            session.full_diff = True
            self.metrics.count_reconcile(session.host, "error")
            log.error("%s (%s): cannot compile: %s", session.host, reason, error)
            return
        changed = compiler.take_dirty()
        compiled = time.monotonic() - started
        plan = diff_encoded(compiler.desired, session.installed,
                            None if session.full_diff else changed)
        session.full_diff = True  # until the plan is applied
        if plan.foreign:
            log.info("%s: removing %d flows outside our cookie space", session.host,
                     len(plan.foreign))
        try:
            result = session.apply(plan, time.monotonic) if plan else None
        except SwitchError as error:
            self.metrics.count_reconcile(session.host, "error")
            log.error("%s (%s): %s", session.host, reason, error)
            return
        except (Disconnected, TimeoutError) as error:
            self.metrics.count_reconcile(session.host, "error")
            log.warning("%s (%s): %s", session.host, reason, error)
            return
        session.full_diff = False
        self.metrics.set_flows(session.host, compiler.table_counts)
        if result is None:
            self.metrics.count_reconcile(session.host, "unchanged")
        else:
            self.metrics.observe_bundle(session.host, result.seconds)
            for op, count in (("add", len(plan.adds)), ("modify", len(plan.modifies)),
                              ("delete", len(plan.deletes) + len(plan.foreign))):
                self.metrics.count_flow_mods(session.host, op, count)
            self.metrics.count_reconcile(session.host, "ok")
        log.info("%s (dpid 0x%016x): in sync, %d flow-mods (%d add, %d modify, %d delete, "
                 "%d foreign) after %s; %.4f s from %s to in sync (compile %.4f s, bundle "
                 "%.4f s, %d flows)", session.host, session.dpid, plan.flow_mods,
                 len(plan.adds), len(plan.modifies), len(plan.deletes), len(plan.foreign),
                 reason, (time.monotonic() if result is None else result.finished) - since,
                 _SINCE.get(reason.split()[0], "event"),
                 compiled, 0.0 if result is None else result.seconds, len(compiler.desired))
