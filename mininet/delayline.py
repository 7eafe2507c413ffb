"""A delay line between two interfaces, for kernels without sch_netem (standard library only).

    python3 delayline.py IFACE_A IFACE_B --delay-ms 5 [--loss 0.1]

Every frame arriving on one interface leaves by the other `--delay-ms` later (first in, first
out, so order is kept), or is dropped with probability `--loss` percent: what Mininet's
TCLink does with netem's `delay` and `loss` when the kernel has sch_netem.  `OsdnTopo` puts
one into each node's uplink when a delay or loss is asked for and netem is missing (this
project's machines run a kernel built without CONFIG_NET_SCH_NETEM); TCLink's htb still does
the bandwidth.  It runs inside its own Mininet node's namespace, prints "ready" once both
sockets are bound, and stops on SIGTERM or when its parent is gone.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0, help="percent")
    args = parser.parse_args(argv)
    delay = args.delay_ms / 1000.0
    loss = args.loss / 100.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    parent = os.getppid()

    socks = {}
    for name in (args.a, args.b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        s.bind((name, 0))
        s.setblocking(False)
        socks[name] = s
    sa, sb = socks[args.a], socks[args.b]
    peer = {sa.fileno(): sb, sb.fileno(): sa}
    by_fd = {sa.fileno(): sa, sb.fileno(): sb}
    queue: collections.deque[tuple[float, socket.socket, bytes]] = collections.deque()
    poller = select.poll()
    for s in socks.values():
        poller.register(s, select.POLLIN)
    print("ready", flush=True)
    last_check = time.monotonic()
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, out, frame = queue.popleft()
            try:
                out.send(frame)
            except OSError:
                pass  # link down, buffer full: the frame is lost, as on a wire
        timeout = max(0.0, queue[0][0] - now) if queue else 0.5
        for fd, _ in poller.poll(timeout * 1000.0):
            s = by_fd[fd]
            for _ in range(256):  # drain a burst
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if addr[2] == PACKET_OUTGOING or (loss and random.random() < loss):
                    continue
                queue.append((time.monotonic() + delay, peer[fd], frame))
        if now - last_check > 1.0:
            last_check = now
            if os.getppid() != parent:
                return 0


if __name__ == "__main__":
    sys.exit(main())
