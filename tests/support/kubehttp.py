"""The in-memory list/watch (`fakekube.FakeApi`) behind a small HTTP front speaking the
Kubernetes list/watch protocol, so that a real controller process (the official client,
urllib3, eventlet) can be fed over HTTP in the integration tests.

A stand-in for the lab's API double (`lab/kubeapi.py`, built on another branch): it serves
lists with their resourceVersion (in pages: `limit`, and `continue` an offset), chunked
watch streams from a resourceVersion (events as they happen, then a bookmark), 410 Gone for
a compacted version (as an ERROR event, as the API server sends it in a watch),
`cut_watches` (every open stream dropped without a last chunk), `stop`/`start` (no server
at all: connections refused) and `delay` (a slow server).  Requests are logged.  It is not
fast (each page copies the whole list): measure the client with the lab's double.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from controller.kube.client import KINDS
from tests.support.fakekube import FakeApi

_BY_PLURAL = {info.plural: kind for kind, info in KINDS.items()}


class _Expired(Exception):
    """The watched resourceVersion was compacted away (410)."""


class KubeHttp:
    """`api` served on 127.0.0.1:`port` (chosen when 0) until `stop`."""

    def __init__(self, api: FakeApi, port: int = 0) -> None:
        self.api = api
        self.lock = threading.Condition()
        self.requests: list[str] = []
        self.connections: set[socket.socket] = set()
        self.generation = 0  # `cut_watches` ends the streams of older generations
        self.delay = 0.0  # seconds before each response starts (a slow server)
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.start()

    # ---------------------------------------------------------------- control

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"front": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """No server: new connections are refused, open streams dropped."""
        self.cut_watches()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for connection in list(self.connections):  # kept-alive ones too
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut_watches(self) -> None:
        with self.lock:
            self.generation += 1
            self.lock.notify_all()

    def put(self, obj: dict[str, Any]) -> None:
        with self.lock:
            self.api.put(obj)
            self.lock.notify_all()

    def delete(self, kind: str, key: str) -> None:
        with self.lock:
            self.api.delete(kind, key)
            self.lock.notify_all()

    def compact(self) -> None:
        """Every version watched from so far is gone (410), and open watches end."""
        with self.lock:
            self.api.version += 1  # something else changed, and all before it is compacted
            self.api.compacted = self.api.version
        self.cut_watches()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test",
                          "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "users": [{"name": "test", "user": {"token": "test-token"}}]}))
        return path

    # ---------------------------------------------------------------- serving

    def events(self, kind: str, version: str, selector: str | None,
               timeout: float) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events after `version` as they happen, until `timeout` or a cut (then None)."""
        generation, deadline = self.generation, time.monotonic() + timeout
        last = int(version)
        while True:
            with self.lock:
                if int(version) < self.api.compacted:
                    raise _Expired(f"too old resource version: {version}")
                pending = [(v, t, o) for v, k, t, o in self.api.history
                           if k == kind and v > last]
                if self.generation != generation:
                    raise ConnectionAbortedError("watch cut")
                if not pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self.lock.wait(min(remaining, 0.5))
                    continue
            for event_version, event_type, obj in pending:
                last = event_version
                if FakeApi.selected(obj, selector):
                    yield event_type, obj


class _Handler(BaseHTTPRequestHandler):
    front: KubeHttp
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.front.connections.add(self.connection)

    def finish(self) -> None:
        self.front.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.front.requests.append(self.path)
        time.sleep(self.front.delay)
        url = urlparse(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        kind = _BY_PLURAL.get(url.path.rstrip("/").rsplit("/", 1)[-1])
        if kind is None:
            self._json(404, {"kind": "Status", "code": 404, "message": "not found"})
            return
        selector = query.get("fieldSelector")
        if query.get("watch") != "true":
            with self.front.lock:
                items, version = self.front.api.list(kind, selector)
            start = int(query.get("continue") or 0)  # the token: where the page starts
            end = start + int(query.get("limit") or len(items) or 1)
            metadata = {"resourceVersion": version}
            if end < len(items):
                metadata["continue"] = str(end)
            self._json(200, {"kind": f"{kind}List", "apiVersion": KINDS[kind].api_version,
                             "metadata": metadata, "items": items[start:end]})
            return
        self._watch(kind, query.get("resourceVersion", "0"), selector,
                    float(query.get("timeoutSeconds", "300")))

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _watch(self, kind: str, version: str, selector: str | None, timeout: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            for event_type, obj in self.front.events(kind, version, selector, timeout):
                self._chunk({"type": event_type, "object": obj})
            with self.front.lock:
                bookmark = str(self.front.api.version)
            self._chunk({"type": "BOOKMARK", "object": {
                "kind": kind, "apiVersion": KINDS[kind].api_version,
                "metadata": {"resourceVersion": bookmark}}})
        except _Expired as error:
            self._chunk({"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                                     "reason": "Expired",
                                                     "message": str(error)}})
        except ConnectionAbortedError:
            return  # dropped: no last chunk
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
