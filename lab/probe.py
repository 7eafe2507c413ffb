"""Real-packet probes for an emulated cluster (`osdn cluster up`): listeners, concurrent
ping/TCP matrices, and hand-made frames, all run inside the cluster's network namespaces.

The file is two things:

* a script (standard library only, so it starts fast) that runs *inside* a namespace through
  ``nsenter --net=/run/netns/NS python -I probe.py ...``:

  - ``serve NAME TOKEN PORT...``: accept TCP on every PORT and answer each connection with
    ``NAME\\n`` (so a client learns which pod answered: a service's backend); prints
    ``ready`` once listening; exits on SIGTERM or when its parent (the test) is gone;
  - ``probe``: reads a JSON list of probes on stdin (``{"kind": "ping", "ip": ...}`` or
    ``{"kind": "tcp", "ip": ..., "port": ...}``), runs them all at once with short timeouts
    (``ping -c1 -W1``; a TCP connect with 1 s for the handshake and 1 s for the answer) and
    prints a JSON list of results (ping: true/false; tcp: the answer, ``""`` for a
    connection that sent nothing, or null);
  - ``send IFACE HEXFRAME COUNT``: writes a raw Ethernet frame COUNT times (AF_PACKET);
  - ``mcast-listen GROUP PORT LOCAL_IP SECONDS``: joins GROUP on the interface holding
    LOCAL_IP, prints ``ready``, then for SECONDS collects the UDP datagrams to GROUP:PORT and
    prints them as a JSON list of strings;
  - ``mcast-send GROUP PORT LOCAL_IP COUNT TOKEN``: sends COUNT datagrams ``TOKEN-<i>`` to
    GROUP:PORT from LOCAL_IP's interface, TTL 1 (no router between pods), no loopback;

* helpers for the test process: `Listeners` (start/stop those servers by pid), `run_probes`
  (one prober per source namespace, all of them concurrently) and frame builders.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = str(Path(__file__).resolve())
PYTHON = sys.executable
TIMEOUT = 1.0

# ------------------------------------------------------------------------------ in-namespace side


def _serve(name: str, ports: Sequence[int]) -> int:
    import selectors

    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    selector = selectors.DefaultSelector()
    for port in ports:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(128)
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ)
    print("ready", flush=True)
    answer = f"{name}\n".encode()
    while os.getppid() == parent:  # the test died: do not outlive it
        for key, _ in selector.select(timeout=1.0):
            try:
                conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
            except OSError:
                continue
            try:
                conn.setblocking(True)
                conn.settimeout(0.5)
                conn.sendall(answer)
            except OSError:
                pass
            finally:
                conn.close()
    return 0


def _ping(ip: str) -> bool:
    return subprocess.run(["ping", "-n", "-q", "-c1", "-W1", ip], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _tcp(ip: str, port: int) -> str | None:
    """The server's answer; "" if it connected but said nothing; None if no connection."""
    try:
        conn = socket.create_connection((ip, port), timeout=TIMEOUT)
    except OSError:
        return None
    data = b""
    with conn:
        conn.settimeout(TIMEOUT)
        try:
            while not data.endswith(b"\n"):
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    return data.decode(errors="replace").strip()


def _probe(probes: list[dict[str, Any]]) -> list[Any]:
    def one(probe: dict[str, Any]) -> Any:
        if probe["kind"] == "ping":
            return _ping(probe["ip"])
        return _tcp(probe["ip"], int(probe["port"]))

    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=min(64, len(probes))) as pool:
        return list(pool.map(one, probes))


def _send(iface: str, frame: bytes, count: int) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
        raw.bind((iface, 0))
        for _ in range(count):
            raw.send(frame)
            time.sleep(0.01)


def _mcast_listen(group: str, port: int, local_ip: str, seconds: float) -> list[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((group, port))  # only this group's datagrams, not other groups' on port
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(group) + socket.inet_aton(local_ip))
        print("ready", flush=True)
        got: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                got.append(sock.recv(2048).decode(errors="replace"))
            except TimeoutError:
                break
        return got


def _mcast_send(group: str, port: int, local_ip: str, count: int, token: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        for i in range(count):
            sock.sendto(f"{token}-{i}".encode(), (group, port))
            time.sleep(0.02)


def main(argv: list[str]) -> int:
    command = argv[0]
    if command == "serve":
        return _serve(argv[1], [int(p) for p in argv[3:]])  # argv[2]: the owner's token
    if command == "probe":
        json.dump(_probe(json.load(sys.stdin)), sys.stdout)
        return 0
    if command == "send":
        _send(argv[1], bytes.fromhex(argv[2]), int(argv[3]))
        return 0
    if command == "mcast-listen":
        json.dump(_mcast_listen(argv[1], int(argv[2]), argv[3], float(argv[4])), sys.stdout)
        return 0
    if command == "mcast-send":
        _mcast_send(argv[1], int(argv[2]), argv[3], int(argv[4]), argv[5])
        return 0
    print(f"unknown command {command!r}", file=sys.stderr)
    return 2


# ------------------------------------------------------------------------------ test-process side


def script_in_netns(netns: str, *args: str) -> list[str]:
    """This script, run inside `netns` (controller.ovs.netns imported lazily: the script itself runs
    isolated, `python -I`, where the project is not importable)."""
    from controller.ovs.netns import in_netns
    return [*in_netns(netns), PYTHON, "-I", SCRIPT, *args]


@dataclass
class Listeners:
    """One `serve` process per namespace, stopped by the pids we started (and nothing else).

    `register(pidfile, marker)` is called for each one before it starts (e.g. the cluster
    ledger's `process`), so that `osdn cluster down` removes them even if the test crashed."""

    token: str  # in every server's command line, so a reused pid is never signalled
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start(self, targets: Mapping[str, str], ports: Iterable[int], pid_dir: Path,
              register: Any = None) -> None:
        """targets: netns -> the name its server answers with."""
        port_args = [str(p) for p in ports]
        for netns, name in targets.items():
            pidfile = pid_dir / f"listener-{netns}.pid"
            if register is not None:
                register(pidfile, self.token)
            proc = subprocess.Popen(script_in_netns(netns, "serve", name, self.token,
                                                    *port_args),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
            pidfile.write_text(str(proc.pid))
            self.procs[netns] = proc
        for netns, proc in self.procs.items():
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "ready", or "" if it died
            if line.strip() != "ready":
                err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
                raise RuntimeError(f"listener in {netns} did not start: {line!r} {err}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.procs.clear()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs.values()]


def run_probes(by_source: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, list[Any]]:
    """netns -> probes to run from it; all namespaces at once. Returns netns -> results."""
    def one(netns: str) -> list[Any]:
        probes = list(by_source[netns])
        proc = subprocess.run(script_in_netns(netns, "probe"), input=json.dumps(probes),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"prober in {netns} failed: {proc.stderr}")
        results = json.loads(proc.stdout)
        assert len(results) == len(probes)
        return results

    names = list(by_source)
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def send_frames(netns: str, frame: bytes, count: int, iface: str = "eth0") -> None:
    subprocess.run(script_in_netns(netns, "send", iface, frame.hex(), str(count)), check=True,
                   capture_output=True, timeout=30)


def multicast_stream(sender: tuple[str, str], receivers: Mapping[str, str], group: str,
                     port: int, count: int, token: str, window: float = 6.0) -> dict[str, int]:
    """`sender` (netns, pod IP) sends `count` datagrams to group:port while every receiver
    (netns -> pod IP) has joined the group; how many of them each receiver got."""
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for netns, ip in receivers.items():
            procs[netns] = subprocess.Popen(
                script_in_netns(netns, "mcast-listen", group, str(port), ip, str(window)),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for netns, proc in procs.items():
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"multicast receiver in {netns} did not start: "
                                   f"{proc.communicate(timeout=5)[1]}")
        subprocess.run(script_in_netns(sender[0], "mcast-send", group, str(port), sender[1],
                                       str(count), token), check=True, capture_output=True,
                       timeout=30)
        counts = {}
        for netns, proc in procs.items():
            out, err = proc.communicate(timeout=window + 10)
            if proc.returncode != 0:
                raise RuntimeError(f"multicast receiver in {netns} failed: {err}")
            counts[netns] = len({m for m in json.loads(out) if m.startswith(token + "-")})
        return counts
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)


# ------------------------------------------------------------------------------ frames


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _ip(text: str) -> bytes:
    return socket.inet_aton(text)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ether(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return _mac(dst) + _mac(src) + struct.pack("!H", ethertype) + payload


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes, ttl: int = 64) -> bytes:
    """An IPv4 header and a UDP datagram (UDP checksum 0: none, which IPv4 allows)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x1234, 0, ttl, 17, 0,
                         _ip(src), _ip(dst))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def udp_frame(src_mac: str, dst_mac: str, src: str, dst: str, sport: int, dport: int,
              payload: bytes = b"osdn-forged") -> bytes:
    return ether(dst_mac, src_mac, 0x0800, ipv4_udp(src, dst, sport, dport, payload))


def arp_request(src_mac: str, sender_mac: str, sender_ip: str, target_ip: str) -> bytes:
    """Ethernet source `src_mac`; the ARP payload claims `sender_mac` / `sender_ip`."""
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, _mac(sender_mac), _ip(sender_ip),
                      b"\0" * 6, _ip(target_ip))
    return ether("ff:ff:ff:ff:ff:ff", src_mac, 0x0806, arp)


def vxlan_frame(src_mac: str, dst_mac: str, src: str, dst: str, vxlan_port: int, vni: int,
                inner: bytes) -> bytes:
    """A VXLAN packet as a node would send it (flags I, the VNI), carrying `inner`."""
    header = struct.pack("!B3xI", 0x08, vni << 8)
    return udp_frame(src_mac, dst_mac, src, dst, 40000, vxlan_port, header + inner)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
