"""A watch blocked on its stream does not block the controller's other green threads.

osken-manager patches the standard library with eventlet: `hub.patch(thread=False)` when
`os_ken.cmd.manager` is imported (socket, select, time, os, subprocess), then
`hub.patch(thread=True)` in its main (threading).  So the urllib3 socket under
`KubeClient.watch` is a green socket.  A child process patched the same way runs a watch
against a server (here, in the test's process) that holds the stream open and silent for a
while, next to a green thread ticking every 10 ms: the ticks must go on while the watch waits.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SILENCE = 1.5  # seconds the watch stream stays open without a byte


class SlowWatch(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(SILENCE)
        event = json.dumps({"type": "BOOKMARK", "object": {
            "kind": "Pod", "metadata": {"resourceVersion": "7"}}}).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SlowWatch)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


CHILD = textwrap.dedent("""
    import json, sys, time
    from os_ken.lib import hub
    # as osken-manager does: os_ken.cmd.manager patches all but threads when imported
    # (thread=False leaves the others on), then threads in main()
    hub.patch(thread=False)
    hub.patch(thread=True)
    import socket
    assert "GreenSocket" in repr(socket.socket), socket.socket
    from controller.kube.client import KubeClient
    client = KubeClient(sys.argv[1])
    ticks = []
    done = []

    def ticker():
        while not done:
            ticks.append(time.monotonic())
            hub.sleep(0.01)

    def watcher():
        started = time.monotonic()
        events = list(client.watch("Pod", "1"))
        done.append((started, time.monotonic(), events))

    hub.spawn(ticker)
    hub.joinall([hub.spawn(watcher)])
    started, ended, events = done[0]
    during = [t for t in ticks if started < t < ended]
    print(json.dumps({"seconds": ended - started, "ticks": len(during), "events": events}))
""")


def test_a_silent_watch_leaves_other_green_threads_running(server: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    child = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, str(kubeconfig)],
                           capture_output=True, text=True, timeout=60,
                           cwd=Path(__file__).resolve().parents[2])
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["events"] == [["BOOKMARK", {"kind": "Pod",
                                              "metadata": {"resourceVersion": "7"}}]]
    assert result["seconds"] >= SILENCE - 0.1
    # ~150 ticks of 10 ms if nothing blocks; a blocking read would allow none.  Half of that
    # leaves room for a loaded machine.
    assert result["ticks"] >= SILENCE / 0.01 / 2, result
