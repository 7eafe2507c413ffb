"""A Kubernetes API server double: the kinds the node reads, in memory, served over HTTP the
way a real API server serves them, so that the real client (the official `kubernetes`
package, urllib3, eventlet in the controller) can be tested and measured against it.

Two parts:

* `ApiStore`: objects per kind, each change numbered with a resourceVersion, a history of
  changes that can be compacted (`compact`, or a bounded `history_limit`).  It also answers
  list/watch in-process (the informer's `ListWatch`), with failures queued by tests
  (`fail_next`, `down`), for unit tests that need no HTTP.
* `KubeApiServer`: that store behind HTTP/1.1 on 127.0.0.1 (a thread), speaking the protocol:

  - **LIST** ``GET /api/v1/pods``, ``/apis/network.openshift.io/v1/hostsubnets``,
    ``/api/v1/namespaces/<ns>/pods`` …: ``{"kind": "PodList", "apiVersion": "v1",
    "metadata": {"resourceVersion", "continue", "remainingItemCount"}, "items": [...]}``,
    items without kind/apiVersion, in key order; ``limit`` and ``continue`` page through a
    consistent snapshot (the token is the API server's: base64 JSON of the list's
    resourceVersion and the next key; one whose version was compacted is ``410 Expired``);
    ``fieldSelector`` on ``spec.nodeName``, ``metadata.name``, ``metadata.namespace``
    (``=``, ``==``, ``!=``, comma-separated); any other field is a 400, as the server says
    (a ``labelSelector`` is a 400 too: the double does not serve it).
  - **WATCH** ``?watch=true&resourceVersion=N``: a chunked stream (Transfer-Encoding:
    chunked), one JSON event per line (``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|
    "ERROR", "object": {...}}``, objects with kind and apiVersion); version ``""``/``"0"``
    starts with an ADDED event per object; with ``allowWatchBookmarks=true`` a BOOKMARK
    every `bookmark_interval` seconds and one before the server ends the stream at
    ``timeoutSeconds``; a version older than the history is an ERROR event holding a
    ``410`` Status (reason `gone_reason`: ``Expired`` as the etcd3 store says it, or
    ``Gone`` as older watch caches did), or with ``gone_as = "status"`` a plain ``410``
    response, as a watch cache that refuses the watch before it starts.
  - **Statuses** of the real shape (``{"kind": "Status", "apiVersion": "v1", "metadata":
    {}, "status": "Failure", "message", "reason", "code"}``) for 400, 401 (when `token` is
    set and the bearer token differs), 404, 410 and injected errors; ``GET /version``.
  - **Faults**: `delay` (seconds before each response starts), `stall` (seconds in the
    middle of each list body), `cut_watches` (open streams dropped without their last
    chunk), `end_watches` (open streams ended cleanly, as at their timeout), `drop_next`
    (the next requests dropped after their headers and part of the body),
    `fail_next_status` (the next requests answered with an error status), `stop`/`start`
    (no server: connections refused).  Requests are logged (`requests`).

Lists are served from a per-object JSON cache (`warm` fills it), so a list of 100,000 pods
costs the double a sort and a join, not an encoding: what is measured is the client.
"""

from __future__ import annotations

import base64
import bisect
import copy
import datetime
import json
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

from controller.kube.client import KINDS, Gone

__all__ = ["ApiStore", "KubeApiServer", "NAMESPACED", "api_objects", "object_key", "status"]

NAMESPACED = frozenset({"Pod", "Service", "NetworkPolicy", "EgressNetworkPolicy"})
_BY_PATH = {(info.base, info.plural): kind for kind, info in KINDS.items()}
_FIELDS = ("spec.nodeName", "metadata.name", "metadata.namespace")
SNAPSHOTS = 16  # list snapshots kept for `continue` tokens (older ones are 410 Expired)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You "
    "can start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list.")


# ------------------------------------------------------------------------------ objects

def api_objects(directory: Path | str) -> dict[str, list[dict[str, Any]]]:
    """A cluster directory's objects by kind, as the API would return them (JSON types,
    timestamps as RFC 3339 text)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(directory).rglob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=_LOADER):
            for obj in _unpacked(document):
                if obj.get("kind") in KINDS:
                    by_kind.setdefault(obj["kind"], []).append(_json(obj))
    return by_kind


def _unpacked(document: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(document, dict):
        return
    if document.get("kind") == "List":
        for item in document.get("items") or []:
            yield from _unpacked(item)
    else:
        yield document


def _text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _json(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=_text))


def object_key(kind: str, obj: dict[str, Any]) -> str:
    """"namespace/name" (a namespaced kind without a namespace is in "default"), or "name"."""
    meta = obj["metadata"]
    if kind in NAMESPACED:
        return f"{meta.get('namespace') or 'default'}/{meta['name']}"
    return str(meta["name"])


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A Status object as the API server sends it for an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class SelectorError(ValueError):
    """A field selector the API server would refuse (400)."""


def parse_selector(kind: str, selector: str | None) -> list[tuple[str, bool, str]]:
    """`selector` as (field, equal, value) terms; SelectorError for one the server refuses."""
    terms = []
    for term in (selector or "").split(","):
        if not term:
            continue
        operator = next((op for op in ("!=", "==", "=") if op in term), None)
        if operator is None:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
        field, _, value = term.partition(operator)
        equal = operator != "!="
        if field not in _FIELDS or (field == "spec.nodeName" and kind != "Pod"):
            raise SelectorError(f'"{field}" is not a known field selector: only '
                                f'"metadata.name", "metadata.namespace"')
        terms.append((field, equal, value))
    return terms


def _field(obj: dict[str, Any], field: str) -> str:
    section, name = field.split(".")
    value = (obj.get(section) or {}).get(name)
    return "" if value is None else str(value)


def selected(obj: dict[str, Any], terms: list[tuple[str, bool, str]]) -> bool:
    return all((_field(obj, field) == value) == equal for field, equal, value in terms)


# ------------------------------------------------------------------------------ the store

@dataclass(frozen=True)
class Change:
    version: int
    kind: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]  # with kind and apiVersion; never changed once recorded


class ApiStore:
    """Objects per kind with resourceVersions, the history of their changes, and list/watch
    in-process (the informer's `ListWatch`, for tests without HTTP)."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]] | None = None, *,
                 history_limit: int | None = None) -> None:
        self.version = 1
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.history: dict[str, list[Change]] = {kind: [] for kind in KINDS}
        self.history_limit = history_limit  # changes kept per kind (None: all)
        self.compacted = 0  # a watch from a version older than this is 410
        self.log: list[tuple[Any, ...]] = []  # ("list"|"watch", kind, selector, version)
        self.failures: list[tuple[int, BaseException]] = []  # in-process: (events, error)
        self.down: BaseException | None = None  # in-process: every request fails with it
        self._encoded: dict[str, dict[str, bytes]] = {kind: {} for kind in KINDS}
        self.lock = threading.Condition()  # held for every change; notified after it
        for items in (objects or {}).values():
            for obj in items:
                self.put(obj, record=False)

    # -- changes --------------------------------------------------------------------------
    def put(self, obj: dict[str, Any], record: bool = True, *, copied: bool = True) -> str:
        """Create or replace `obj` (a new resourceVersion); its key.  `copied=False` takes
        ownership of `obj` (bulk loads)."""
        with self.lock:
            obj = copy.deepcopy(obj) if copied else obj
            kind = obj["kind"]
            obj["apiVersion"] = KINDS[kind].api_version
            meta = obj.setdefault("metadata", {})
            if kind in NAMESPACED:
                meta.setdefault("namespace", "default")
            key = object_key(kind, obj)
            self.version += 1
            meta["resourceVersion"] = str(self.version)
            event = "MODIFIED" if key in self.objects[kind] else "ADDED"
            self.objects[kind][key] = obj
            self._encoded[kind].pop(key, None)
            if record:
                self._record(Change(self.version, kind, event, obj))
            self.lock.notify_all()
            return key

    def delete(self, kind: str, key: str) -> None:
        with self.lock:
            obj = copy.deepcopy(self.objects[kind].pop(key))
            self._encoded[kind].pop(key, None)
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)  # as the DELETED event's
            self._record(Change(self.version, kind, "DELETED", obj))
            self.lock.notify_all()

    def _record(self, change: Change) -> None:
        history = self.history[change.kind]
        history.append(change)
        if self.history_limit is not None and len(history) > self.history_limit:
            dropped = history[:len(history) - self.history_limit]
            del history[:len(dropped)]
            self.compacted = max(self.compacted, dropped[-1].version)

    def compact(self) -> None:
        """Every version watched or listed from so far is gone (410)."""
        with self.lock:
            self.version += 1  # something else changed, and all before it is compacted
            self.compacted = self.version
            for history in self.history.values():
                history.clear()
            self.lock.notify_all()

    # -- reading (callers hold the lock) --------------------------------------------------
    def changes_after(self, kind: str, version: int) -> list[Change]:
        """The changes of `kind` after `version`; Gone if some of them were compacted."""
        if version < self.compacted:
            raise Gone(410, f"too old resource version: {version} ({self.compacted})")
        history = self.history[kind]
        return history[self._bisect(history, version):]

    @staticmethod
    def _bisect(history: list[Change], version: int) -> int:
        """The index of the first change after `version`."""
        low, high = 0, len(history)
        while low < high:
            middle = (low + high) // 2
            if history[middle].version <= version:
                low = middle + 1
            else:
                high = middle
        return low

    def encoded(self, kind: str, key: str) -> bytes:
        """The object as a list item (JSON without kind and apiVersion), cached."""
        cache = self._encoded[kind]
        data = cache.get(key)
        if data is None:
            obj = self.objects[kind][key]
            data = cache[key] = json.dumps(
                {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")},
                separators=(",", ":")).encode()
        return data

    def warm(self) -> None:
        """Encode every object now (the JSON a list serves), so that lists cost no encoding."""
        with self.lock:
            for kind, objects in self.objects.items():
                for key in objects:
                    self.encoded(kind, key)

    # -- in-process ListWatch (no HTTP) ---------------------------------------------------
    def fail_next(self, error: BaseException, after_events: int = 0) -> None:
        """The next in-process watch raises `error` after `after_events` events."""
        self.failures.append((after_events, error))

    def list(self, kind: str, field_selector: str | None = None,
             limit: int = 500) -> tuple[list[dict[str, Any]], str]:
        self.log.append(("list", kind, field_selector, None))
        if self.down is not None:
            raise self.down
        terms = parse_selector(kind, field_selector)
        with self.lock:
            items = [copy.deepcopy(o) for o in self.objects[kind].values() if selected(o, terms)]
            version = str(self.version)
        for item in items:  # list items come without apiVersion and kind
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return items, version

    def watch(self, kind: str, resource_version: str, field_selector: str | None = None,
              timeout_seconds: int = 300) -> Iterator[tuple[str, dict[str, Any]]]:
        """The changes after `resource_version`, then a bookmark (and the end of the watch,
        as a server ending it)."""
        self.log.append(("watch", kind, field_selector, resource_version))
        if self.down is not None:
            raise self.down
        terms = parse_selector(kind, field_selector)
        with self.lock:
            changes = self.changes_after(kind, int(resource_version))
            version = self.version
        limit, error = self.failures.pop(0) if self.failures else (None, None)
        sent = 0
        for change in changes:
            if not selected(change.obj, terms):
                continue
            if limit is not None and sent >= limit:
                break
            sent += 1
            yield change.type, copy.deepcopy(change.obj)
        if error is not None:
            raise error
        yield "BOOKMARK", {"kind": kind, "apiVersion": KINDS[kind].api_version,
                           "metadata": {"resourceVersion": str(version)}}


# ------------------------------------------------------------------------------ HTTP

class _Dropped(Exception):
    """The connection is to be dropped without finishing the response."""


class KubeApiServer:
    """`store` served on 127.0.0.1:`port` (chosen when 0) until `stop`."""

    def __init__(self, store: ApiStore | None = None, port: int = 0, *,
                 token: str | None = None) -> None:
        self.store = store if store is not None else ApiStore()
        self.token = token  # the bearer token required (None: any or none)
        self.requests: list[str] = []
        self.connections: set[socket.socket] = set()
        self.generation = 0  # `cut_watches` ends the streams of older generations
        self.endings = 0  # `end_watches` ends them cleanly
        self.delay = 0.0  # seconds before each response starts (a slow server)
        self.stall = 0.0  # seconds in the middle of each list body (a slow transfer)
        self.bookmark_interval = 60.0  # seconds between bookmarks of a quiet watch
        self.gone_reason = "Expired"  # or "Gone"
        self.gone_as = "event"  # a too-old watch: an ERROR event, or "status": a 410 reply
        self.drops = 0  # the next requests dropped mid-response
        self.statuses: list[int] = []  # the next requests answered with these error codes
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        # (kind, version, selector) -> the keys listed and their items, for continue tokens
        self._snapshots: OrderedDict[tuple[str, int, str],
                                     tuple[list[str], list[bytes]]] = OrderedDict()
        self._mutex = threading.Lock()  # for the fault counters and snapshots
        self.start()

    # -- control --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubeApiServer:
        handler = type("Handler", (_Handler,), {"front": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True,
                         name=f"kubeapi:{self.port}").start()
        return self

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
        """Every open watch stream dropped, without its last chunk."""
        with self.store.lock:
            self.generation += 1
            self.store.lock.notify_all()

    def end_watches(self) -> None:
        """Every open watch ended as the server ends one at its timeout (a last bookmark if
        asked for, then the stream's last chunk)."""
        with self.store.lock:
            self.endings += 1
            self.store.lock.notify_all()

    def drop_next(self, count: int = 1) -> None:
        """The next `count` requests: headers and part of the body, then the connection
        closes (a list: half its body; a watch: after its first event or at once)."""
        with self._mutex:
            self.drops += count

    def fail_next_status(self, code: int, count: int = 1) -> None:
        """The next `count` requests answered with `code` (a Status of the usual reason)."""
        with self._mutex:
            self.statuses.extend([code] * count)

    def put(self, obj: dict[str, Any]) -> str:
        return self.store.put(obj)

    def delete(self, kind: str, key: str) -> None:
        self.store.delete(kind, key)

    def compact(self) -> None:
        """Every version watched from so far is gone (410), and open watches end."""
        self.store.compact()
        self.cut_watches()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "double",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "contexts": [{"name": "double", "context": {"cluster": "double",
                                                        "user": "double"}}],
            "users": [{"name": "double", "user": {"token": self.token or "double-token"}}]}))
        return path

    def _take_fault(self) -> tuple[bool, int | None]:
        with self._mutex:
            drop = self.drops > 0
            if drop:
                self.drops -= 1
            code = self.statuses.pop(0) if self.statuses else None
            return drop, code

    # -- lists ----------------------------------------------------------------------------
    def page(self, kind: str, query: dict[str, str]) -> dict[str, Any] | bytes:
        """One page of a list as its JSON bytes; a Status dict for an error."""
        try:
            terms = parse_selector(kind, query.get("fieldSelector"))
        except SelectorError as error:
            return status(400, "BadRequest", str(error))
        selector = query.get("fieldSelector") or ""
        token = query.get("continue")
        store = self.store
        if token:
            try:
                decoded = json.loads(base64.b64decode(token))
                version, start = int(decoded["rv"]), str(decoded["start"])
            except (ValueError, KeyError, TypeError):
                return status(400, "BadRequest", "continue key is not valid: malformed")
            with store.lock, self._mutex:
                snapshot = self._snapshots.get((kind, version, selector))
                if snapshot is None or version < store.compacted:
                    return status(410, "Expired", EXPIRED_CONTINUE)
        else:
            with store.lock:
                version, start = store.version, ""
                keys = sorted(k for k, o in store.objects[kind].items() if selected(o, terms))
                snapshot = keys, [store.encoded(kind, k) for k in keys]
        keys, items = snapshot
        first = bisect.bisect_left(keys, start)
        limit = int(query.get("limit") or 0)
        end = len(keys) if limit <= 0 else min(len(keys), first + limit)
        if not token and end < len(keys):  # kept for the continue tokens to come
            with self._mutex:
                self._snapshots[(kind, version, selector)] = snapshot
                while len(self._snapshots) > SNAPSHOTS:
                    self._snapshots.popitem(last=False)
        metadata: dict[str, Any] = {"resourceVersion": str(version)}
        if end < len(keys):  # the token says where the next page starts: after this key
            metadata["continue"] = base64.b64encode(json.dumps(
                {"v": "meta.k8s.io/v1", "rv": version, "start": keys[end - 1] + "\x00"},
                separators=(",", ":")).encode()).decode()
            metadata["remainingItemCount"] = len(keys) - end
        head = json.dumps({"kind": f"{kind}List", "apiVersion": KINDS[kind].api_version,
                           "metadata": metadata}, separators=(",", ":")).encode()
        return head[:-1] + b',"items":[' + b",".join(items[first:end]) + b"]}"

    # -- watches --------------------------------------------------------------------------
    def events(self, kind: str, version: str, terms: list[tuple[str, bool, str]],
               timeout: float, bookmarks: bool) -> Iterator[dict[str, Any]]:
        """The events of a watch from `version`, as they happen, until `timeout` (then a
        bookmark if asked for).  Gone at once (before any event is asked for) for a
        compacted version; the iterator raises ConnectionAbortedError for a cut."""
        store = self.store
        with store.lock:
            if version in ("", "0"):  # from "any" version: the current state first
                last = store.version
                initial = [{"type": "ADDED", "object": o}
                           for o in store.objects[kind].values() if selected(o, terms)]
            else:
                last, initial = int(version), []
                store.changes_after(kind, last)  # Gone now, before the stream starts
        return self._stream(kind, last, initial, terms, timeout, bookmarks)

    def _stream(self, kind: str, last: int, initial: list[dict[str, Any]],
                terms: list[tuple[str, bool, str]], timeout: float,
                bookmarks: bool) -> Iterator[dict[str, Any]]:
        store = self.store
        generation, deadline = self.generation, time.monotonic() + timeout
        endings = self.endings
        yield from initial
        next_bookmark = time.monotonic() + self.bookmark_interval
        while True:
            bookmark: int | None = None  # a version to bookmark (taken under the lock)
            with store.lock:
                if self.generation != generation:
                    raise ConnectionAbortedError("watch cut")
                pending = store.changes_after(kind, last)
                if pending:
                    last = pending[-1].version
                else:
                    now = time.monotonic()
                    if now >= deadline or self.endings != endings:
                        final = store.version
                        break
                    if bookmarks and now >= next_bookmark:
                        next_bookmark = now + self.bookmark_interval
                        bookmark = store.version
                    else:
                        store.lock.wait(min(deadline, next_bookmark) - now + 0.001)
                        continue
            if bookmark is not None:
                yield _bookmark(kind, bookmark)
            for change in pending:
                if selected(change.obj, terms):
                    yield {"type": change.type, "object": change.obj}
        if bookmarks:  # before the server ends the watch, as the watch cache does
            yield _bookmark(kind, final)


def _bookmark(kind: str, version: int) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": KINDS[kind].api_version,
                                           "metadata": {"resourceVersion": str(version)}}}


def _kind_of(path: str) -> tuple[str | None, str | None]:
    """The kind a request path lists, and the namespace it is limited to."""
    parts = path.rstrip("/").split("/")
    namespace = None
    if len(parts) >= 3 and parts[-3] == "namespaces":
        namespace = parts[-2]
        parts = parts[:-3] + parts[-1:]
    base, plural = "/".join(parts[:-1]), parts[-1]
    return _BY_PATH.get((base, plural)), namespace


class _Handler(BaseHTTPRequestHandler):
    front: KubeApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.front.connections.add(self.connection)

    def finish(self) -> None:
        self.front.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        front = self.front
        front.requests.append(self.path)
        if front.delay:
            time.sleep(front.delay)
        drop, code = front._take_fault()
        try:
            self._serve(drop, code)
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _serve(self, drop: bool, code: int | None) -> None:
        front = self.front
        if front.token is not None and \
                self.headers.get("Authorization") != f"Bearer {front.token}":
            self._json(401, status(401, "Unauthorized", "Unauthorized"))
            return
        if code is not None:
            reasons = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                       403: "Forbidden", 504: "Timeout"}
            self._json(code, status(code, reasons.get(code, "Unknown"), f"injected {code}"))
            return
        url = urlparse(self.path)
        if url.path == "/version":
            self._json(200, {"major": "1", "minor": "11", "gitVersion": "v1.11.0+double",
                             "platform": "linux/amd64"})
            return
        kind, namespace = _kind_of(url.path)
        if kind is None or (namespace is not None and kind not in NAMESPACED):
            self._json(404, status(404, "NotFound",
                                   "the server could not find the requested resource"))
            return
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if query.get("labelSelector"):  # refused rather than ignored: a test would pass wrongly
            self._json(400, status(400, "BadRequest", "labelSelector: not served by the double"))
            return
        if namespace is not None:
            extra = f"metadata.namespace={namespace}"
            query["fieldSelector"] = ",".join(filter(None, [query.get("fieldSelector"), extra]))
        if query.get("watch") in ("true", "1"):
            self._watch(kind, query, drop)
        else:
            self._list(kind, query, drop)

    def _list(self, kind: str, query: dict[str, str], drop: bool) -> None:
        body = self.front.page(kind, query)
        if isinstance(body, dict):
            self._json(body["code"], body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        if drop:
            raise _Dropped()
        if self.front.stall:
            time.sleep(self.front.stall)
        self.wfile.write(body[half:])

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _watch(self, kind: str, query: dict[str, str], drop: bool) -> None:
        front = self.front
        try:
            terms = parse_selector(kind, query.get("fieldSelector"))
        except SelectorError as error:
            self._json(400, status(400, "BadRequest", str(error)))
            return
        version = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        events: Iterator[dict[str, Any]]
        try:
            events = front.events(kind, version, terms, timeout, bookmarks)
        except Gone as error:
            if front.gone_as == "status":
                self._json(410, status(410, front.gone_reason, str(error).split(": ", 1)[1]))
                return
            events = iter([{"type": "ERROR", "object": status(
                410, front.gone_reason, str(error).split(": ", 1)[1])}])
        self.send_response(200)  # at once: a quiet watch is an open stream, not a slow reply
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            for event in events:
                self._chunk(event)
                if drop:
                    raise _Dropped()
        except Gone as error:  # compacted while watching
            self._chunk({"type": "ERROR", "object": status(
                410, front.gone_reason, str(error).split(": ", 1)[1])})
        except ConnectionAbortedError:
            raise _Dropped() from None
        if drop:
            raise _Dropped()
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
