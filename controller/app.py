"""The os-ken shell: `osken-manager --config-file osdn.conf controller.app`.

Reads the settings (`controller.config`), starts the metrics exporter, and forwards each
OpenFlow event, as plain values, to the `NodeAgent` (`controller.agent`), which holds all
state and decisions; the agent's green threads, clock and locks are os-ken's hub.
Flow-stats replies reach us unparsed (`use_raw_flow_stats`).  Every received message is
checked before os-ken parses it, and unfinished handshakes are bounded
(`controller.openflow.osken_guard`); with `node` set os-ken listens on 127.0.0.1 unless told
otherwise (`controller.config.ofp_listen_host`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (
    CONFIG_DISPATCHER,
    DEAD_DISPATCHER,
    HANDSHAKE_DISPATCHER,
    MAIN_DISPATCHER,
    set_ev_cls,
)
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3 as ofp
from prometheus_client import REGISTRY

from controller.agent import NodeAgent, Runtime
from controller.config import ConfigError, ControllerSettings, load_settings, register_options
from controller.metrics import Metrics, start_http_server
from controller.openflow.osken_guard import (
    HandshakeGuard,
    close_connection,
    install_parse_guard,
    install_tls_handshake_timeout,
    settle_listener,
)
from controller.openflow.session import use_raw_flow_stats
from topology.errors import OsdnError

log = logging.getLogger("osdn")
GREEN = Runtime(spawn=hub.spawn, clock=time.monotonic, sleep=hub.sleep, event=hub.Event,
                lock=lambda: hub.Semaphore(1), disconnect=close_connection)


def _settings() -> ControllerSettings:
    register_options(cfg.CONF)
    try:
        return load_settings(cfg.CONF)
    except ConfigError as error:
        log.error("bad settings, not starting:\n%s", error)
        raise SystemExit(2) from error


class OsdnController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofp.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = _settings()
        use_raw_flow_stats()
        metrics = Metrics(REGISTRY)
        install_parse_guard(self.OFP_VERSIONS, metrics)
        settle_listener(cfg.CONF, settings)
        install_tls_handshake_timeout(settings.handshake_timeout)
        start_http_server(settings.metrics_port, settings.metrics_address, REGISTRY)
        self.handshakes = HandshakeGuard(settings.handshake_timeout,
                                         settings.max_pending_handshakes, metrics)
        hub.spawn(self.handshakes.run, hub.sleep)
        try:
            self.agent = NodeAgent(settings, metrics, GREEN)
        except OsdnError as error:  # source = kubernetes: no usable kubeconfig
            log.error("cannot start: %s", error)
            raise SystemExit(2) from error
        self.agent.start()

    @set_ev_cls(ofp_event.EventOFPStateChange, HANDSHAKE_DISPATCHER)
    def _on_connect(self, ev: Any) -> None:
        self.handshakes.opened(ev.datapath)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _on_features(self, ev: Any) -> None:
        self.handshakes.finished(ev.msg.datapath)
        self.agent.switch_connected(ev.msg.datapath)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _on_dead(self, ev: Any) -> None:
        self.handshakes.finished(ev.datapath)
        self.agent.switch_gone(ev.datapath)

    @set_ev_cls(ofp_event.EventOFPEchoReply, MAIN_DISPATCHER)
    def _on_echo_reply(self, ev: Any) -> None:
        self.agent.echo_reply(ev.msg.datapath, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _on_port_desc(self, ev: Any) -> None:
        msg = ev.msg
        ports = [(p.name, p.port_no, p.hw_addr) for p in msg.body]
        self.agent.port_desc_reply(msg.datapath, msg.xid, ports,
                                   more=bool(msg.flags & ofp.OFPMPF_REPLY_MORE))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _on_flow_stats(self, ev: Any) -> None:
        msg = ev.msg
        self.agent.flow_stats_reply(msg.datapath, msg.xid, bytes(msg.buf),
                                    more=bool(msg.flags & ofp.OFPMPF_REPLY_MORE))

    @set_ev_cls(ofp_event.EventOFPTableStatsReply, MAIN_DISPATCHER)
    def _on_table_stats(self, ev: Any) -> None:
        msg = ev.msg
        self.agent.table_stats_reply(msg.datapath, msg.xid,
                                     [(t.table_id, t.active_count) for t in msg.body],
                                     more=bool(msg.flags & ofp.OFPMPF_REPLY_MORE))

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _on_flow_removed(self, ev: Any) -> None:
        self.agent.flow_removed(ev.msg.datapath, bytes(ev.msg.buf))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _on_barrier(self, ev: Any) -> None:
        self.agent.barrier_reply(ev.msg.datapath, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _on_error(self, ev: Any) -> None:
        msg = ev.msg  # os-ken leaves `code` None for experimenter errors (ONF bundle errors)
        code = msg.exp_type if msg.type == ofp.OFPET_EXPERIMENTER else msg.code
        self.agent.switch_error(msg.datapath, msg.xid, msg.type, code)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _on_port_status(self, ev: Any) -> None:
        msg = ev.msg
        self.agent.port_status(msg.datapath, msg.desc.name, msg.desc.port_no,
                               deleted=msg.reason == ofp.OFPPR_DELETE, mac=msg.desc.hw_addr)
