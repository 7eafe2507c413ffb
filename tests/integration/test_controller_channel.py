"""The OpenFlow channel under hostile peers (issue 10): the real controller process, a real
node2 bridge in a private OVS instance, and raw sockets (`lab.rawswitch`) sending what a
hostile or broken peer would.

After each attack the controller must still serve: the bridge holds exactly the render, and a
pod added to the topology (file and port) reaches the bridge within `PROMPT` seconds.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from lab.harness import (
    ControllerProcess,
    add_pod_port,
    attach_controller,
    copy_cluster,
    free_port,
    metric_total,
    reference_flows,
    scrape_metrics,
    wait_for_flows,
    wait_until,
    write_atomic,
)
from lab.rawswitch import FakeSwitch, RawPeer, message
from tests.support.seed_node import (
    NEW_POD,
    NEW_POD_OFPORT,
    NEW_POD_PORT,
    NODE2,
    NODE2_DPID,
    NODE2_IP,
    NODE2_PORTS,
    NODE2_SYNC,
    SEED,
)

pytestmark = pytest.mark.ovs

PROMPT = 5.0  # seconds from a pod's file and port to its flows (measured: 0.03-0.35 s)
LOCALHOST = "127.0.0.1"
# The reproducers, sent before any handshake: each wedged the controller for good.
HELLO_ZERO_ELEMENT = bytes.fromhex("04000010000000050001000000000000")
QUEUE_REPLY_ZERO_QUEUE = bytes.fromhex(
    "0417002000000006000000010000000000000001000000010000000000000000")


@pytest.fixture(scope="module")
def ref_ovs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateOvs]:
    with PrivateOvs(tmp_path_factory.mktemp("refovs")) as ovs:
        yield ovs


@dataclass
class Node:
    """node2's bridge served by a controller, with what the checks need."""

    ovs: PrivateOvs
    bridge: str
    ctl: ControllerProcess
    cluster: Path
    ref_ovs: PrivateOvs
    metrics_port: int

    def metric(self, name: str, **labels: str) -> float:
        samples = scrape_metrics(f"http://{LOCALHOST}:{self.metrics_port}/metrics")
        return metric_total(samples, name, **labels)

    def expected(self, ports: dict[str, int] | None = None,
                 cluster: Path | None = None) -> list[str]:
        return reference_flows(cluster or self.cluster, NODE2, self.ref_ovs,
                               ports or NODE2_PORTS)

    def assert_still_serving(self) -> float:
        """The bridge holds the render, and a new pod's flows arrive within PROMPT seconds;
        returns the seconds the pod took."""
        assert self.ctl.running, self.ctl.log_tail()
        wait_for_flows(self.ovs, self.bridge, self.expected(), self.ctl, timeout=10,
                       what="after the attack")
        planned = copy_cluster(self.cluster, self.cluster.with_name("cluster-with-pod"))
        (planned / "new-pod.yaml").write_text(NEW_POD)
        with_pod = self.expected({**NODE2_PORTS, NEW_POD_PORT: NEW_POD_OFPORT}, planned)
        started = time.monotonic()
        write_atomic(self.cluster / "new-pod.yaml", NEW_POD)
        add_pod_port(self.ovs, self.bridge, NEW_POD_PORT, NEW_POD_OFPORT)
        wait_for_flows(self.ovs, self.bridge, with_pod, self.ctl, timeout=PROMPT,
                       what="a pod added after the attack")
        return time.monotonic() - started


@pytest.fixture
def serve_node2(tmp_path: Path, ref_ovs: PrivateOvs) -> Iterator[Callable[..., Node]]:
    made: list[tuple[PrivateOvs, ControllerProcess]] = []

    def serve(**config: Any) -> Node:
        cluster = copy_cluster(SEED, tmp_path / "cluster")
        metrics_port = free_port()
        ctl = ControllerProcess({"topology": cluster, "node": NODE2, "watch": True,
                                 "watch_interval": 0.2, "metrics_port": metrics_port,
                                 **config}, tmp_path / "controller")
        ovs = PrivateOvs(tmp_path / "ovs-node2")
        made.append((ovs, ctl))
        ovs.start()
        add_node_bridge(ovs, "br0", NODE2_DPID, NODE2_PORTS, host_ip=NODE2_IP,
                        port_name_prefix="")
        ctl.start()
        ctl.wait_listening()
        node = Node(ovs, "br0", ctl, cluster, ref_ovs, metrics_port)
        attach_controller(ovs, "br0", ctl.port)
        wait_for_flows(ovs, "br0", node.expected(), ctl)
        ctl.wait_for_log(NODE2_SYNC)
        return node

    yield serve
    for ovs, ctl in made:
        ctl.stop()
        ovs.stop()


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# ------------------------------------------------------------------ malformed messages


@pytest.mark.parametrize("payload", [HELLO_ZERO_ELEMENT, QUEUE_REPLY_ZERO_QUEUE],
                         ids=["hello-zero-element", "queue-config-zero-queue"])
def test_a_malformed_message_costs_only_its_connection(serve_node2, payload: bytes) -> None:
    node = serve_node2()
    peer = RawPeer(LOCALHOST, node.ctl.port)
    peer.send(payload)
    assert peer.closed_by_controller(5.0), "the controller kept the connection"
    peer.close()
    node.ctl.wait_for_log(r"peer 127\.0\.0\.1:\d+: malformed OpenFlow message \(version 0x04")
    assert node.metric("osdn_openflow_refused_connections_total", reason="malformed") == 1
    print(f"pod applied {node.assert_still_serving():.3f} s after its change")


# ------------------------------------------------------------------ handshakes


def test_idle_connections_are_bounded_and_timed_out(serve_node2) -> None:
    node = serve_node2(handshake_timeout=1.5, max_pending_handshakes=20)
    pid = node.ctl.pid
    assert pid is not None
    before = open_files(pid)
    peers = [RawPeer(LOCALHOST, node.ctl.port) for _ in range(200)]
    time.sleep(0.5)  # let the controller accept them all
    held = open_files(pid) - before
    assert held <= 20 + 5, f"{held} more open files for 200 idle connections"
    assert all(peer.closed_by_controller(4.0) for peer in peers), "an idle peer stayed"
    for peer in peers:
        peer.close()
    assert node.metric("osdn_openflow_refused_connections_total",
                       reason="too_many_handshakes") >= 150
    assert node.metric("osdn_openflow_refused_connections_total",
                       reason="too_many_handshakes") + node.metric(
        "osdn_openflow_refused_connections_total", reason="handshake_timeout") == 200
    assert node.metric("osdn_openflow_pending_handshakes") == 0
    wait_until(lambda: open_files(pid) <= before + 2, 5.0,
               describe=lambda: f"{open_files(pid) - before} more open files than before")
    print(f"{held} files held at most; pod applied {node.assert_still_serving():.3f} s after")


# ------------------------------------------------------------------ duplicate datapath id


# What would carry flows to it (bundles are experimenter messages) or read them back.
FLOW_BEARING = {ofp.OFPT_EXPERIMENTER, ofp.OFPT_FLOW_MOD, ofp.OFPT_BARRIER_REQUEST}


def test_a_fake_switch_claiming_the_served_dpid_is_refused(serve_node2) -> None:
    node = serve_node2()
    fake = FakeSwitch(LOCALHOST, node.ctl.port, NODE2_DPID)
    fake.handshake()
    assert fake.closed.wait(6.0), "the fake switch was not refused"
    fake.close()
    assert not FLOW_BEARING & set(fake.types), f"the fake switch was sent {dict(fake.types)}"
    node.ctl.wait_for_log(r"refused a second connection claiming this datapath id "
                          r"\(from 127\.0\.0\.1:\d+\): the served connection answers echo")
    assert node.metric("osdn_openflow_refused_connections_total",
                       reason="duplicate_datapath_id") == 1
    print(f"pod applied {node.assert_still_serving():.3f} s after")


def test_a_switch_takes_over_from_a_connection_that_no_longer_answers(
        tmp_path: Path, ref_ovs: PrivateOvs) -> None:
    """A connection of node2's dpid that stopped answering (half-open) gives way to the
    bridge when it connects: the bridge is served after the echo probe."""
    cluster = copy_cluster(SEED, tmp_path / "cluster")
    metrics_port = free_port()
    with ControllerProcess({"topology": cluster, "node": NODE2, "watch": False,
                            "metrics_port": metrics_port}, tmp_path / "controller") as ctl, \
            PrivateOvs(tmp_path / "ovs-node2") as ovs:
        ctl.wait_listening()
        stale = FakeSwitch(LOCALHOST, ctl.port, NODE2_DPID, answer_echo=False)
        stale.handshake()
        ctl.wait_for_log(r"node2\.ocp\.cn \(dpid 0x00000000c0a86c70\): connected")
        add_node_bridge(ovs, "br0", NODE2_DPID, NODE2_PORTS, host_ip=NODE2_IP,
                        port_name_prefix="")
        expected = reference_flows(cluster, NODE2, ref_ovs, NODE2_PORTS)
        attach_controller(ovs, "br0", ctl.port)
        wait_for_flows(ovs, "br0", expected, ctl, timeout=15)
        assert stale.closed.wait(5.0)
        stale.close()
        ctl.wait_for_log(r"does not answer echo requests; closed, the new one")


# ------------------------------------------------------------------ listen addresses


def listening_address(port: int) -> str:
    """The local address a TCP socket listens on `port` with (IPv4, from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].split(":")
        if int(hex_port, 16) == port and fields[3] == "0A":
            return socket.inet_ntoa(struct.pack("<I", int(address, 16)))
    raise AssertionError(f"nothing listens on port {port}")


@pytest.mark.parametrize(("node", "listen_host", "expected"), [
    (NODE2, None, "127.0.0.1"),  # one controller per node: loopback by default
    (NODE2, "0.0.0.0", "0.0.0.0"),  # --ofp-listen-host says otherwise
    (None, None, "0.0.0.0"),  # remote bridges: os-ken's default (use TLS with a CA)
], ids=["node-set", "node-set-explicit", "no-node"])
def test_listen_addresses(tmp_path: Path, node: str | None, listen_host: str | None,
                          expected: str) -> None:
    metrics_port = free_port()
    with ControllerProcess({"topology": SEED, "node": node, "watch": False,
                            "metrics_port": metrics_port}, tmp_path,
                           listen_host=listen_host) as ctl:
        ctl.wait_for_log(r"OpenFlow listener on ")
        ctl.wait_listening()
        assert listening_address(ctl.port) == expected
        assert listening_address(metrics_port) == "127.0.0.1"  # metrics_address's default
        warned = bool(ctl.log_lines(r"without TLS client certificates \(--ca-certs\)"))
        assert warned == (expected != "127.0.0.1"), ctl.log_tail()


# ------------------------------------------------------------------ held, keep it so


def test_hostile_bytes_are_held(serve_node2) -> None:
    """Random bytes, an OpenFlow 1.0 HELLO (error reply, closed), an OpenFlow 1.3 HELLO then
    garbage of every message type, and a 65,535-byte message."""
    node = serve_node2()
    port = node.ctl.port
    rng = random.Random(10)
    for _ in range(20):
        peer = RawPeer(LOCALHOST, port)
        peer.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
        peer.close()

    peer = RawPeer(LOCALHOST, port)
    peer.send(message(0x01, 0, xid=7))  # OpenFlow 1.0 HELLO
    hello, error = (peer.read_message(5.0) for _ in range(2))  # os-ken's HELLO, the error
    assert hello is not None and hello[1] == ofp.OFPT_HELLO, hello
    assert error is not None and error[1] == ofp.OFPT_ERROR, error
    assert struct.unpack_from("!HH", error, 8) == (ofp.OFPET_HELLO_FAILED,
                                                   ofp.OFPHFC_INCOMPATIBLE), error
    assert peer.closed_by_controller(5.0)
    peer.close()

    for msg_type in range(0, 36):
        peer = RawPeer(LOCALHOST, port)
        peer.send(message(0x04, 0, xid=1))
        for body in (bytes(32), b"\xff" * 64, bytes(rng.randrange(256) for _ in range(100))):
            peer.send(message(0x04, msg_type, body, xid=2))
        peer.close()

    peer = RawPeer(LOCALHOST, port)
    peer.send(message(0x04, 0, xid=1))
    peer.send(message(0x04, 10, bytes(rng.randrange(256) for _ in range(65535 - 8))))
    peer.close()
    print(f"pod applied {node.assert_still_serving():.3f} s after")


def test_a_flood_of_zero_length_messages_is_held(serve_node2) -> None:
    node = serve_node2()
    zero = bytes.fromhex("0400000000000001") * 8192
    sent, connections = 0, 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        peer = RawPeer(LOCALHOST, node.ctl.port)
        connections += 1
        while time.monotonic() < deadline and peer.send(zero):
            sent += 8192
        peer.close()
    print(f"{sent * 8 // 2**20} MiB of zero-length messages written on {connections} "
          "connections in 3 s")
    assert node.metric("osdn_openflow_refused_connections_total", reason="malformed") >= 1
    print(f"pod applied {node.assert_still_serving():.3f} s after")
