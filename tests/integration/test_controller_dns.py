"""dnsNames follow their TTL on real Open vSwitch: the controller process (`osken-manager`)
asks a name server again when an answer's TTL runs out and sends table 101 the difference.

The name server is a double in this test process: a small UDP server (dnspython builds and
reads the messages) on 127.0.0.1 whose answers the test changes.  The controller is pointed
at it with its `dns` setting (`dns = 127.0.0.1:<port>`), the same setting that points a real
node at a name server other than /etc/resolv.conf's: the product's whole resolving path runs
(query, answer, TTL), nothing in it is replaced for the test.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import pytest

from controller.ovs.nodebridge import add_node_bridge
from lab.harness import attach_controller, copy_cluster, normalized, wait_until
from tests.support.seed_node import NODE2_DPID, NODE2_IP, NODE2_PORTS, NODE2_SYNC, SEED

pytestmark = pytest.mark.ovs

NAME = "api.example.test"
POLICY = f"""\
apiVersion: network.openshift.io/v1
kind: EgressNetworkPolicy
metadata:
  name: default
  namespace: kube-public
  uid: 7e57c0de-0000-4000-8000-0000000000d1
spec:
  egress:
  - to:
      dnsName: {NAME}
    type: Allow
  - to:
      cidrSelector: 0.0.0.0/0
    type: Deny
"""


class NameServer:
    """Answers A queries from `answers` (name -> addresses), with TTL `ttl`; SERVFAIL for
    a name it has no answer for.  Counts the queries."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.ttl = 1
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            name = query.question[0].name.to_text(omit_final_dot=True)
            addresses = self.answers.get(name)
            self.queries += 1
            if addresses:
                reply.answer.append(dns.rrset.from_text(query.question[0].name, self.ttl,
                                                        "IN", "A", *addresses))
            else:
                reply.set_rcode(dns.rcode.SERVFAIL)
            self.sock.sendto(reply.to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def name_server() -> Iterator[NameServer]:
    server = NameServer()
    yield server
    server.stop()


def table_101(ovs, bridge: str) -> list[str]:
    return sorted(line for line in normalized(ovs, bridge) if "table=101," in line)


def allowed(ovs, bridge: str) -> set[str]:
    """The destinations table 101 lets kube-public (VNID 8583346) reach."""
    return {line.split("nw_dst=")[1].split()[0] for line in table_101(ovs, bridge)
            if "reg0=0x82f8b2" in line and "nw_dst=" in line and "output:2" in line}


def test_table_101_follows_the_answers(node_ovs, make_controller, name_server,
                                       tmp_path: Path) -> None:
    cluster = copy_cluster(SEED, tmp_path / "cluster")
    (cluster / "egress.yaml").write_text(POLICY)
    name_server.answers[NAME] = ["192.0.2.10"]
    add_node_bridge(node_ovs, "br0", NODE2_DPID, NODE2_PORTS, host_ip=NODE2_IP,
                    port_name_prefix="")
    ctl = make_controller({"topology": cluster, "watch": False,
                           "dns": f"127.0.0.1:{name_server.port}"}).start()
    ctl.wait_listening()
    attach_controller(node_ovs, "br0", ctl.port)
    ctl.wait_for_log(NODE2_SYNC)
    assert allowed(node_ovs, "br0") == {"192.0.2.10"}
    others = [line for line in normalized(node_ovs, "br0") if "table=101," not in line]

    name_server.answers[NAME] = ["192.0.2.11", "192.0.2.12"]  # at the TTL (1 s): asked again
    wait_until(lambda: allowed(node_ovs, "br0") == {"192.0.2.11", "192.0.2.12"}, 15, 0.2,
               lambda: f"table 101: {table_101(node_ovs, 'br0')}\n{ctl.log_tail(30)}")
    [line] = ctl.wait_for_log(rf"{NODE2_SYNC}.*after dnsName {NAME} changed")
    assert "3 flow-mods (2 add, 0 modify, 1 delete, 0 foreign)" in line, line
    assert [line for line in normalized(node_ovs, "br0") if "table=101," not in line] == others

    name_server.answers.pop(NAME)  # the name server fails: the last good answer stays
    asked = name_server.queries
    wait_until(lambda: name_server.queries > asked, 15, 0.2, lambda: ctl.log_tail(30))
    ctl.wait_for_log(rf"dnsName {NAME} did not resolve.*keeping 192\.0\.2\.11, 192\.0\.2\.12, "
                     r"asking again in 5 s")
    assert allowed(node_ovs, "br0") == {"192.0.2.11", "192.0.2.12"}
    assert len(ctl.log_lines(rf"after dnsName {NAME} changed")) == 1
    assert ctl.running
