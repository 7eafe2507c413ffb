"""One kind's objects kept up to date from the API server: list, then watch from there.

The informer (client-go's reflector, in small):

* **List** (paginated) at start, remembering the list's resourceVersion; the objects are
  slimmed (`slim`) before they are stored, keyed "namespace/name" (or "name").
* **Watch** from that resourceVersion with bookmarks: ADDED/MODIFIED/DELETED change the store
  one object at a time; a BOOKMARK only moves the resourceVersion forward, so the next watch
  starts from a recent point even when nothing of ours changed.
* The server **ends a watch** (its timeoutSeconds): watch again from the last
  resourceVersion, at once.  A **broken connection** or an error status: watch again from the
  last resourceVersion after a backoff.  Never a relist for those.
* **410 Gone** (the resourceVersion was compacted away): list again and apply only the
  difference: objects whose slimmed content is unchanged keep their stored dict (so nothing
  downstream sees them change); the others are reported as changed.
* **Backoff**: capped exponential with jitter (`Backoff`), reset by a watch that delivered
  an event or lasted; a failing list is retried the same way.

`on_change(kind, keys)` is called after each change of the store, with the keys that changed.
The store is read through `snapshot()` (a copy, taken under the lock).  The informer runs in
whatever thread `list_watch_loop` is called from: a green thread in the controller.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.kube.client import CONNECTION_ERRORS, KINDS, ApiError, Gone
from controller.kube.slim import slim

__all__ = ["Backoff", "Informer", "KubeMetrics", "ListWatch", "object_key"]

log = logging.getLogger("osdn.kube")

WATCH_TIMEOUT = 300  # seconds the server is asked to keep a watch open (it may end it sooner)
HEALTHY_WATCH = 10.0  # seconds a watch must last (or deliver an event) to reset the backoff


class ListWatch(Protocol):
    """What the informer needs of `KubeClient`."""

    def list(self, kind: str, field_selector: str | None = None,
             limit: int = 500) -> tuple[list[dict[str, Any]], str]: ...

    def watch(self, kind: str, resource_version: str, field_selector: str | None = None,
              timeout_seconds: int = WATCH_TIMEOUT) -> Iterator[tuple[str, dict[str, Any]]]: ...


class KubeMetrics(Protocol):
    def count_relist(self, kind: str, reason: str) -> None: ...

    def count_watch_restart(self, kind: str, reason: str) -> None: ...


class _NoMetrics:
    def count_relist(self, kind: str, reason: str) -> None:
        pass

    def count_watch_restart(self, kind: str, reason: str) -> None:
        pass


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: the n-th consecutive failure waits a random
    time in [½, 1] × min(cap, first × 2ⁿ⁻¹), so that many nodes do not reconnect in step."""

    first: float = 0.5
    cap: float = 30.0
    random: Callable[[], float] = random.random
    failures: int = field(default=0)

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.first * 2 ** min(self.failures - 1, 30))
        return ceiling * (0.5 + 0.5 * self.random())

    def reset(self) -> None:
        self.failures = 0


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return ""
    name, namespace = meta.get("name"), meta.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def _resource_version(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata")
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return version if isinstance(version, str) and version else None


class Informer:
    """Keeps `store` equal to the API's objects of `kind` (slimmed)."""

    def __init__(self, client: ListWatch, kind: str, on_change: Callable[[str, list[str]], None],
                 *, field_selector: str | None = None, metrics: KubeMetrics | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 backoff: Backoff | None = None, watch_timeout: int = WATCH_TIMEOUT) -> None:
        self.client = client
        self.kind = kind
        self.api_version = KINDS[kind].api_version
        self.field_selector = field_selector
        self.on_change = on_change
        self.metrics = metrics or _NoMetrics()
        self.sleep = sleep
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.watch_timeout = watch_timeout
        self.store: dict[str, dict[str, Any]] = {}
        self.resource_version: str | None = None  # None: list (again) before watching
        self.synced = False  # listed at least once
        self.stopped = False
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self.store)

    # ------------------------------------------------------------------ list

    def sync(self, reason: str = "initial") -> list[str]:
        """List and replace the store by the difference; the keys that changed."""
        items, version = self.client.list(self.kind, self.field_selector)
        self.metrics.count_relist(self.kind, reason)
        fresh: dict[str, dict[str, Any]] = {}
        for item in items:
            obj = slim(self.kind, self.api_version, item)
            fresh[object_key(obj)] = obj
        with self._lock:
            old = self.store
            changed = []
            for key, obj in fresh.items():
                before = old.get(key)
                if before == obj:
                    fresh[key] = before  # the stored dict stays: nothing downstream changes
                else:
                    changed.append(key)
            changed += [key for key in old if key not in fresh]
            self.store = fresh
            self.resource_version = version
        first = not self.synced
        self.synced = True
        if changed or first:
            self.on_change(self.kind, changed)
        return changed

    # ------------------------------------------------------------------ watch

    def list_watch_loop(self) -> None:
        """List (unless `sync` already did) and watch, forever or until `stop`."""
        while not self.stopped:
            try:
                if self.resource_version is None:
                    reason = "initial" if not self.synced else "gone"
                    changed = self.sync(reason)
                    if reason == "gone":
                        log.info("%s: listed again after 410 Gone: %d changed", self.kind,
                                 len(changed))
                if self.watch_once():
                    continue
                delay = self.backoff.next_delay()
            except Gone as error:
                self._failed("gone", error)
                self.resource_version = None
                if self.backoff.failures == 0:
                    self.backoff.failures = 1  # relist at once; a second 410 in a row waits
                    continue
                delay = self.backoff.next_delay()
            except ApiError as error:
                self._failed("error", error)
                delay = self.backoff.next_delay()
            except CONNECTION_ERRORS as error:
                self._failed("dropped", error)
                delay = self.backoff.next_delay()
            self.sleep(delay)

    def stop(self) -> None:
        self.stopped = True

    def _failed(self, reason: str, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        self.metrics.count_watch_restart(self.kind, reason)
        log.warning("%s: watch %s (%s); %s", self.kind, reason, self.last_error,
                    "listing again" if reason == "gone" else "reconnecting")

    def watch_once(self) -> bool:
        """One watch until the server ends it.  True: it was healthy (delivered an event or
        lasted `HEALTHY_WATCH`), so watch again at once; False: back off first."""
        assert self.resource_version is not None
        started = self.clock()
        events = 0
        for event_type, obj in self.client.watch(self.kind, self.resource_version,
                                                 self.field_selector, self.watch_timeout):
            if self.stopped:
                return True
            events += 1
            self.backoff.reset()
            self._apply(event_type, obj)
        self.metrics.count_watch_restart(self.kind, "closed")
        healthy = events > 0 or self.clock() - started >= HEALTHY_WATCH
        if healthy:
            self.backoff.reset()
        return healthy

    def _apply(self, event_type: str, obj: dict[str, Any]) -> None:
        version = _resource_version(obj)
        if event_type == "BOOKMARK":
            if version is not None:
                self.resource_version = version
            return
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            log.warning("%s: watch event of unknown type %r ignored", self.kind, event_type)
            return
        slimmed = slim(self.kind, self.api_version, obj)
        key = object_key(slimmed)
        with self._lock:
            if event_type == "DELETED":
                changed = self.store.pop(key, None) is not None
            else:
                changed = self.store.get(key) != slimmed
                if changed:
                    self.store[key] = slimmed
            if version is not None:
                self.resource_version = version
        if changed:
            self.on_change(self.kind, [key])

