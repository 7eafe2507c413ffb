"""The channel guard hooked into os-ken: checked parsing, and unfinished handshakes.

How it hooks in, and why there: os-ken's `Datapath._recv_loop` cuts the byte stream into
messages and hands each one to the module function `os_ken.ofproto.ofproto_parser.msg`,
which it looks up on that module at every call.  `install_parse_guard` replaces that one
function by `_guarded_msg`: the bytes are checked (`controller.openflow.guard.check_message`)
and only then parsed, by the same per-version parser os-ken would use, under a step budget.
That is the narrowest point every received byte passes through, before any parser and any
handler (os-ken's own HELLO and echo handlers included), and it needs no copy or subclass of
os-ken's connection code.  A refused message closes its connection (`close_connection`):
the receive loop stops at once, and other connections never notice.

Messages os-ken fails to parse with an ordinary exception (a field it does not know) are
dropped with a warning, as os-ken itself does, and the connection stays: a real switch may
send something os-ken's parser lacks, and dropping one message costs less than a reconnect.

`HandshakeGuard` closes connections that do not finish their handshake in time, and the
oldest unfinished one when too many are pending (`controller.openflow.handshakes`).
`settle_listener` applies the listen address default (`controller.config.ofp_listen_host`).

A TLS listener negotiates TLS before os-ken creates its connection object, so a peer that
opens a TCP connection to it and says nothing is invisible to the above.
`install_tls_handshake_timeout` gives that negotiation the handshake timeout: os-ken's
controller module looks its `StreamServer` class up by name when it starts listening, and the
subclass put there only wraps the TLS connection handler (plain TCP is left as it is).
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable, Collection
from typing import Any

from os_ken.controller.handler import DEAD_DISPATCHER
from os_ken.ofproto import ofproto_parser
from oslo_config import cfg

from controller.config import ControllerSettings, listener_warning, ofp_listen_host
from controller.metrics import Metrics
from controller.openflow.guard import (
    BudgetExceeded,
    MalformedMessage,
    bounded,
    check_message,
    parse_budget,
)
from controller.openflow.handshakes import PendingHandshakes

__all__ = ["HandshakeGuard", "close_connection", "describe_peer", "install_parse_guard",
           "install_tls_handshake_timeout", "parse_checked", "settle_listener"]

log = logging.getLogger("osdn")
SWEEP_INTERVAL = 0.5  # seconds between checks for handshakes past their time


def describe_peer(datapath: Any) -> str:
    """"peer 127.0.0.1:41234" (and its datapath id once known)."""
    address = getattr(datapath, "address", None)
    where = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
    dpid = getattr(datapath, "id", None)
    return f"peer {where}" + ("" if dpid is None else f" (dpid 0x{dpid:016x})")


def close_connection(datapath: Any) -> None:
    """Close a connection now, whatever it is doing: os-ken's `close` (state DEAD, so the
    receive loop stops and the handlers hear of it), and a shutdown of both directions, so a
    receive that is waiting on a silent peer returns at once."""
    datapath.close()
    try:
        datapath.socket.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the peer
        pass


def install_parse_guard(versions: Collection[int], metrics: Metrics) -> None:
    """Make os-ken check every received message before parsing it (see the module
    docstring).  `versions`: what this controller speaks.  A refused message is logged and
    counted (``osdn_openflow_refused_connections_total{reason="malformed"}``), and its
    connection closed.  Affects the whole process; installing again replaces the guard."""
    original = getattr(ofproto_parser.msg, "unguarded", ofproto_parser.msg)
    allowed = frozenset(versions)

    def _guarded_msg(datapath: Any, version: int, msg_type: int, msg_len: int, xid: int,
                     buf: Any) -> Any:
        if datapath.state == DEAD_DISPATCHER:
            return None  # refused or closing: parse nothing more it sent
        try:
            return parse_checked(datapath, version, msg_type, msg_len, xid, bytes(buf), allowed)
        except MalformedMessage as error:
            log.warning("%s: malformed OpenFlow message (%s); connection closed",
                        describe_peer(datapath), error)
            metrics.count_refused("malformed")
            close_connection(datapath)
            return None

    _guarded_msg.unguarded = original  # type: ignore[attr-defined]
    ofproto_parser.msg = _guarded_msg


def parse_checked(datapath: Any, version: int, msg_type: int, msg_len: int, xid: int,
                  buf: bytes, allowed: Collection[int]) -> Any:
    """os-ken's parse of one message (None: dropped), after `check_message` and under the
    step budget; MalformedMessage if the connection is to be closed."""
    check_message(buf, allowed)
    # os-ken's own registry of per-version parsers (what ofproto_parser.msg dispatches on)
    parser = ofproto_parser._MSG_PARSERS.get(version)
    if parser is None:
        raise MalformedMessage("a version os-ken does not know", version, msg_type)
    try:
        return bounded(parser, parse_budget(len(buf)), datapath, version, msg_type, msg_len,
                       xid, buf)
    except BudgetExceeded as error:
        raise MalformedMessage(f"os-ken's parser did not finish ({error})", version,
                               msg_type) from None
    except Exception as error:  # noqa: BLE001 - os-ken's parsers raise anything on bad input
        if type(error).__name__ == "OFPTruncatedMessage":  # os-ken drops the connection too
            raise MalformedMessage(f"truncated: {error}", version, msg_type) from None
        log.warning("%s: dropped a message os-ken could not parse (version 0x%02x type %d, "
                    "%d bytes): %r", describe_peer(datapath), version, msg_type, len(buf), error)
        return None


class HandshakeGuard:
    """Closes connections whose handshake takes longer than `timeout` seconds, and the
    oldest unfinished one when more than `limit` are pending; counts both."""

    def __init__(self, timeout: float, limit: int, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pending = PendingHandshakes(timeout, limit)
        self.metrics = metrics
        self.clock = clock

    def opened(self, datapath: Any) -> None:
        for old in self.pending.opened(datapath, self.clock()):
            self._refuse(old, "too_many_handshakes",
                         f"more than {self.pending.limit} handshakes pending")
        self.metrics.pending_handshakes.set(len(self.pending))

    def finished(self, datapath: Any) -> None:
        """Its features reply arrived, or it is gone."""
        self.pending.finished(datapath)
        self.metrics.pending_handshakes.set(len(self.pending))

    def sweep(self) -> None:
        for late in self.pending.expired(self.clock()):
            self._refuse(late, "handshake_timeout",
                         f"no handshake within {self.pending.timeout:g} s")
        self.metrics.pending_handshakes.set(len(self.pending))

    def run(self, sleep: Callable[[float], None]) -> None:
        """The sweeping loop (a green thread of its own)."""
        while True:
            sleep(SWEEP_INTERVAL)
            try:
                self.sweep()
            except Exception:  # keep sweeping whatever happened
                log.exception("handshake sweep failed")

    def _refuse(self, datapath: Any, reason: str, why: str) -> None:
        log.warning("%s: %s; connection closed", describe_peer(datapath), why)
        self.metrics.count_refused(reason)
        close_connection(datapath)


def settle_listener(conf: cfg.ConfigOpts, settings: ControllerSettings) -> None:
    """Before os-ken's listener starts: 127.0.0.1 when `node` is set and os-ken's
    ``ofp_listen_host`` was not given; log the address, and warn if other hosts can reach it
    without TLS client certificates."""
    host = ofp_listen_host(conf, settings)
    if host is not None:
        conf.set_override("ofp_listen_host", host)
    log.info("OpenFlow listener on %s", conf.ofp_listen_host)
    warning = listener_warning(conf.ofp_listen_host,
                               bool(conf.ctl_privkey and conf.ctl_cert and conf.ca_certs))
    if warning:
        log.warning("%s", warning)


_STREAM_SERVER_SSL_ARGS = ("ssl_ctx", "certfile", "keyfile", "cert_reqs", "ca_certs")


def _tls_in_time(context: ssl.SSLContext, handle: Callable[[Any, Any], None],
                 wrap_args: dict[str, Any], timeout: float) -> Callable[[Any, Any], None]:
    """os-ken's TLS connection handler (wrap, then `handle(tls_socket, address)`), with the
    TLS negotiation bounded by `timeout` seconds; a failed one is one warning line."""

    def handle_in_time(sock: Any, address: Any) -> None:
        tls = context.wrap_socket(sock, do_handshake_on_connect=False, **wrap_args)
        tls.settimeout(timeout)
        try:
            tls.do_handshake()
        except (TimeoutError, ssl.SSLError, OSError) as error:
            log.warning("peer %s:%s: TLS negotiation failed: %s; connection closed",
                        address[0], address[1], error or type(error).__name__)
            tls.close()
            return
        handle(tls, address)  # os-ken's connection sets its own socket timeout

    return handle_in_time


def install_tls_handshake_timeout(timeout: float) -> None:
    """Bound the TLS negotiation of each connection to os-ken's TLS listener by `timeout`
    seconds (see the module docstring).  Installing again replaces the previous bound."""
    # imported here: os-ken's controller module, imported first, hits an import cycle of
    # os-ken's own (controller -> app_manager -> controller); osken-manager imports it early
    from os_ken.controller import controller as osken_controller

    base = getattr(osken_controller.StreamServer, "unguarded", osken_controller.StreamServer)

    class TimedTlsStreamServer(base):  # type: ignore[misc, valid-type]
        unguarded = base

        def __init__(self, listen_info: Any, handle: Any = None, backlog: Any = None,
                     spawn: str = "default", **ssl_args: Any) -> None:
            super().__init__(listen_info, handle, backlog, spawn, **ssl_args)
            if ssl_args:  # as os-ken's: what it does not take for the context goes to wrap
                wrap_args = {"server_side": True, **{k: v for k, v in ssl_args.items()
                                                     if k not in _STREAM_SERVER_SSL_ARGS}}
                self.handle = _tls_in_time(ssl_args["ssl_ctx"], handle, wrap_args, timeout)

    osken_controller.StreamServer = TimedTlsStreamServer
