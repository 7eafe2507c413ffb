"""The OpenFlow channel over TLS (issue 3), with certificates the test generates.

Nothing of osdn is involved in TLS: it is os-ken's own listener, configured by os-ken's
options (command line, or `[DEFAULT]` of a config file):

    osken-manager --config-file osdn.conf \
        --ofp-ssl-listen-port 6653 \
        --ctl-privkey controller.key --ctl-cert controller.pem --ca-certs ca.pem \
        controller.app

With `--ctl-privkey` and `--ctl-cert` os-ken listens with TLS only (no plain TCP listener),
and `--ca-certs` makes it require a client certificate signed by that CA.  The switch side:

    ovs-vsctl set-ssl switch.key switch.pem ca.pem
    ovs-vsctl set-controller br0 ssl:<controller address>:6653

The certificates: one test CA signs the controller's and the switch's; a second, unrelated
"rogue" CA signs a switch certificate the controller must refuse.  Generated with the
`openssl` command line tool (RSA 2048, SHA-256, valid for two days).
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from lab.harness import (
    ControllerProcess,
    flow_diff,
    free_port,
    normalized,
    reference_flows,
    wait_for_flows,
    wait_until,
)
from tests.support.seed_node import NODE2, NODE2_DPID, NODE2_IP, NODE2_PORTS, NODE2_SYNC, SEED

pytestmark = pytest.mark.ovs

REFUSED = r"CERTIFICATE_VERIFY_FAILED"  # how a refused TLS negotiation is logged
LEAF_EXTENSIONS = """\
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""
# Flows a bridge holds before its switch tries to connect (any content will do; none is ours).
PRELOADED = ("table=0,priority=1000,ip,nw_src=1.2.3.4,actions=drop\n"
             "cookie=0x1234,table=30,priority=77,ip,nw_dst=10.99.0.0/16,actions=drop\n")


# ------------------------------------------------------------------ certificates


def openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"openssl {' '.join(args)} failed:\n{proc.stderr}"


@dataclass(frozen=True)
class Pki:
    dir: Path

    def key(self, name: str) -> str:
        return str(self.dir / f"{name}.key")

    def cert(self, name: str) -> str:
        return str(self.dir / f"{name}.pem")

    def make_ca(self, name: str) -> None:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=osdn test {name}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)

    def make_leaf(self, name: str, ca: str, serial: int) -> None:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", f"/CN=osdn test {name}", cwd=self.dir)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-set_serial", str(serial), "-days", "2", "-sha256", "-extfile", "leaf.ext",
                "-out", f"{name}.pem", cwd=self.dir)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """ca: signs controller and switch; rogue-ca: signs rogue-switch."""
    pki = Pki(tmp_path_factory.mktemp("pki"))
    (pki.dir / "leaf.ext").write_text(LEAF_EXTENSIONS)
    pki.make_ca("ca")
    pki.make_ca("rogue-ca")
    pki.make_leaf("controller", "ca", 2)
    pki.make_leaf("switch", "ca", 3)
    pki.make_leaf("rogue-switch", "rogue-ca", 4)
    return pki


# ------------------------------------------------------------------ fixtures




def tls_controller(make: Callable[..., ControllerProcess], pki: Pki,
                   tmp_path: Path, via_config_file: bool, **config: Any) -> ControllerProcess:
    """A controller listening with TLS only, on one port (the harness's
    --ofp-tcp-listen-port is then unused: os-ken serves TLS *instead of* TCP)."""
    port = free_port()
    options = {"ofp_ssl_listen_port": str(port), "ctl_privkey": pki.key("controller"),
               "ctl_cert": pki.cert("controller"), "ca_certs": pki.cert("ca")}
    if via_config_file:  # as a user would write them: [DEFAULT] of a second config file
        tls_conf = tmp_path / "tls.conf"
        tls_conf.write_text("[DEFAULT]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()))
        extra = ["--config-file", str(tls_conf)]
    else:
        extra = [arg for key, value in options.items()
                 for arg in ("--" + key.replace("_", "-"), value)]
    ctl = make({"topology": SEED, "watch": False, **config}, port=port,
               extra_args=extra).start()
    wait_tls_listening(ctl, pki)
    return ctl


def tls_handshake(port: int, pki: Pki, client: str) -> dict[str, Any]:
    """A TLS handshake with the controller as switch `client`; returns the controller's
    certificate (verified against the test CA)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(pki.cert("ca"))
    context.load_cert_chain(pki.cert(client), pki.key(client))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            certificate = tls.getpeercert()
            assert certificate is not None, "the controller sent no certificate"
            return dict(certificate)


def wait_tls_listening(ctl: ControllerProcess, pki: Pki, timeout: float = 20.0) -> None:
    """Until the controller completes a TLS handshake and shows the test CA's controller
    certificate (a plain TCP probe would only leave a failed handshake in its log)."""
    def check() -> dict[str, Any] | None:
        if not ctl.running:
            raise AssertionError(f"controller exited\n{ctl.log_tail(80)}")
        try:
            return tls_handshake(ctl.port, pki, "switch")
        except OSError:
            return None
    cert = wait_until(check, timeout, 0.2,
                      lambda: f"no TLS on port {ctl.port}\n" + ctl.log_tail(60))
    subject = dict(item for rdn in cert["subject"] for item in rdn)
    assert subject.get("commonName") == "osdn test controller", cert


def node_bridge(ovs: PrivateOvs) -> str:
    add_node_bridge(ovs, "br0", NODE2_DPID, dict(NODE2_PORTS), host_ip=NODE2_IP,
                    port_name_prefix="")
    return "br0"


def set_ssl(ovs: PrivateOvs, pki: Pki, switch: str) -> None:
    ovs.vsctl("set-ssl", pki.key(switch), pki.cert(switch), pki.cert("ca"))


def attach_ssl(ovs: PrivateOvs, bridge: str, port: int) -> None:
    ovs.vsctl("set", "bridge", bridge, "other-config:disable-in-band=true")
    ovs.vsctl("set-controller", bridge, f"ssl:127.0.0.1:{port}")
    ovs.vsctl("set", "controller", bridge, "max_backoff=1000", "connection_mode=out-of-band")


def controller_status(ovs: PrivateOvs, bridge: str) -> str:
    return ovs.vsctl("--columns=target,is_connected,status", "list", "controller")


# ------------------------------------------------------------------ tests


def test_bridge_gets_its_pipeline_over_tls(pki, node_ovs, ref_ovs, make_controller,
                                           tmp_path) -> None:
    ovs = node_ovs
    br = node_bridge(ovs)
    ctl = tls_controller(make_controller, pki, tmp_path, via_config_file=False)
    set_ssl(ovs, pki, "switch")
    attach_ssl(ovs, br, ctl.port)
    expected = reference_flows(SEED, NODE2, ref_ovs, NODE2_PORTS)
    wait_for_flows(ovs, br, expected, ctl, what="over TLS")
    ctl.wait_for_log(NODE2_SYNC)
    time.sleep(1.0)
    assert normalized(ovs, br) == expected, flow_diff(normalized(ovs, br), expected)
    status = controller_status(ovs, br)
    assert f'"ssl:127.0.0.1:{ctl.port}"' in status, status
    assert ctl.running, ctl.log_tail()


def test_switch_with_a_certificate_of_another_ca_is_refused(
        pki, node_ovs, ref_ovs, make_controller, tmp_path) -> None:
    """The switch trusts the controller (same CA file), but presents a certificate signed by
    an unknown CA: the controller refuses the handshake, so the bridge is never served and
    keeps what it had.  Then the switch gets a good certificate: served at once (so it was
    the certificate, nothing else).  TLS settings here come from a config file."""
    ovs = node_ovs
    br = node_bridge(ovs)
    ovs.vsctl("set-controller", br, f"tcp:127.0.0.1:{free_port()}")  # first controller: flush
    ovs.load_flows(br, PRELOADED)
    before = normalized(ovs, br)
    assert len(before) == 2

    ctl = tls_controller(make_controller, pki, tmp_path, via_config_file=True)
    with pytest.raises((ssl.SSLError, OSError)):
        # Python as the rogue switch: refused (TLS 1.3 reports it at the first read).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.load_verify_locations(pki.cert("ca"))
        context.load_cert_chain(pki.cert("rogue-switch"), pki.key("rogue-switch"))
        with socket.create_connection(("127.0.0.1", ctl.port), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.settimeout(5)
                assert tls.recv(1) == b""  # closed without a word counts as refused too
                raise ConnectionResetError("controller closed the rogue connection")

    refused = len(ctl.wait_for_log(REFUSED))  # the Python rogue above
    set_ssl(ovs, pki, "rogue-switch")
    attach_ssl(ovs, br, ctl.port)
    # OVS tries again at least every second (max_backoff=1000): several refused attempts,
    # each logged ("peer ...: TLS negotiation failed: [SSL: CERTIFICATE_VERIFY_FAILED] ...").
    ctl.wait_for_log(REFUSED, count=refused + 3, timeout=20)
    assert normalized(ovs, br) == before, flow_diff(normalized(ovs, br), before)
    assert not ctl.log_lines(r"node2\.ocp\.cn.*connected|dpid 0x0*c0a86c70"), ctl.log_tail()
    assert re.search(r"is_connected\s*:\s*false", controller_status(ovs, br)), \
        controller_status(ovs, br)
    assert ctl.running, ctl.log_tail()

    # The same switch with a certificate of the right CA: served.
    set_ssl(ovs, pki, "switch")
    expected = reference_flows(SEED, NODE2, ref_ovs, NODE2_PORTS)
    wait_for_flows(ovs, br, expected, ctl, what="after the good certificate")
    ctl.wait_for_log(NODE2_SYNC)


def test_idle_connections_to_the_tls_port_are_closed_after_the_handshake_timeout(
        pki, make_controller, tmp_path) -> None:
    """TLS is negotiated before os-ken creates a connection, so a peer that opens a TCP
    connection and says nothing would hold it for good: the negotiation gets the handshake
    timeout (issue 10), and a switch still gets through meanwhile."""
    ctl = tls_controller(make_controller, pki, tmp_path, via_config_file=False,
                         handshake_timeout=1.0)
    assert ctl.pid is not None
    files = Path(f"/proc/{ctl.pid}/fd")
    before = len(list(files.iterdir()))
    idle = [socket.create_connection(("127.0.0.1", ctl.port), timeout=5) for _ in range(50)]
    tls_handshake(ctl.port, pki, "switch")  # served meanwhile
    try:
        for peer in idle:
            peer.settimeout(5)
            assert peer.recv(1) == b"", "the controller sent something to an idle peer"
    finally:
        for peer in idle:
            peer.close()
    wait_until(lambda: len(list(files.iterdir())) <= before + 2, 5.0,
               describe=lambda: f"{len(list(files.iterdir())) - before} more open files")
    assert len(ctl.log_lines(r"TLS negotiation failed: .*timed out")) >= 50, ctl.log_tail()
