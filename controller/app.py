"""The os-ken shell: `osken-manager --config-file osdn.conf controller.app`.

Keeps every connected br0 equal to `compile_node` for its HostSubnet.  Handlers only route
events to a `BridgeSession`; reconciliation (dump, diff, one bundle) runs in a green thread
per bridge, serialized by the session's lock.  Settings: `controller.config`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, \
    set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from controller.cli import PLUGIN_NAMES
from controller.compiler import Settings, compile_node
from controller.config import ConfigError, ControllerSettings, load_settings, register_options
from prometheus_client import REGISTRY

from controller.metrics import Metrics, start_http_server
from controller.reconcile import diff
from controller.switch import BridgeSession, Disconnected, SwitchError, error_name
from controller.watch import TopologyWatcher
from topology.model import HostSubnet, Topology

log = logging.getLogger("osdn")


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
        self.metrics = Metrics(REGISTRY)
        start_http_server(self.settings.metrics_port, self.settings.metrics_address, REGISTRY)
        self.resolver = self.settings.make_resolver()  # one, so its TTL cache lives on
        plugin = PLUGIN_NAMES[self.settings.plugin] if self.settings.plugin else None
        self.watcher = TopologyWatcher(list(self.settings.topology), plugin)
        self.topology: Topology | None = None
        self.sessions: dict[int, BridgeSession] = {}
        self.unserved: dict[int, Any] = {}  # connected bridges no HostSubnet claims (yet)
        self._load_topology()
        if self.settings.watch:
            hub.spawn(self._watch_loop)

    # ----------------------------------------------------------------- topology

    def _compile_settings(self) -> Settings:
        return Settings(self.settings.masquerade_bit, self.resolver)

    def _load_topology(self) -> bool:
        """Poll the files; True when a new valid topology replaced the old one."""
        result = self.watcher.poll()
        if result is None:
            return False
        if result.topology is None:
            self.metrics.topology_rejected(len(result.issues))
            log.error("topology %s is invalid; keeping the last good one (%s):\n%s",
                      ", ".join(result.changed_files) or "files",
                      "none yet" if self.topology is None else "still applied",
                      "\n".join(str(issue) for issue in result.issues))
            return False
        self.metrics.topology_loaded()
        self.topology = result.topology
        log.info("topology loaded: %d nodes, %d pods, %d services (%s)",
                 len(self.topology.host_subnets), len(self.topology.pods),
                 len(self.topology.services), ", ".join(result.changed_files))
        for warning in self.topology.warnings:
            log.warning("%s", warning)
        return True

    def _watch_loop(self) -> None:
        while True:
            hub.sleep(self.settings.watch_interval)
            try:
                if self._load_topology():
                    for datapath in list(self.unserved.values()):
                        self._serve(datapath)
                    for session in list(self.sessions.values()):
                        hub.spawn(self._reconcile, session, "topology changed")
            except Exception:  # keep watching whatever happened
                log.exception("topology watch failed")

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
        hub.spawn(self._reconcile, session, f"port {name} changed")

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
            self._apply(session, "connected")

    def _reconcile(self, session: BridgeSession, reason: str) -> None:
        with session.lock:
            if session.alive:
                self._apply(session, reason)

    def _apply(self, session: BridgeSession, reason: str) -> None:
        """Make the bridge equal to the desired set: one bundle, or nothing if in sync."""
        if self.topology is None or self.topology.host_subnet(session.host) is None:
            log.warning("%s: not in the current topology; flows left as they are", session.host)
            return
        desired = compile_node(self.topology, session.host, self._compile_settings(),
                               port_numbers=session.ports)
        plan = diff(desired.flows, session.installed.values())
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
        self.metrics.set_flows(session.host, Counter(int(f.table) for f in desired.flows))
        if result is None:
            self.metrics.count_reconcile(session.host, "unchanged")
        else:
            self.metrics.observe_bundle(session.host, result.seconds)
            for op, count in (("add", len(plan.adds)), ("modify", len(plan.modifies)),
                              ("delete", len(plan.deletes) + len(plan.foreign))):
                self.metrics.count_flow_mods(session.host, op, count)
            self.metrics.count_reconcile(session.host, "ok")
        log.info("%s (dpid 0x%016x): in sync, %d flow-mods (%d add, %d modify, %d delete, "
                 "%d foreign) after %s", session.host, session.dpid, plan.flow_mods,
                 len(plan.adds), len(plan.modifies), len(plan.deletes), len(plan.foreign),
                 reason)
