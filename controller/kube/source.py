"""The API server as the topology source: informers in, `Topology` values out.

`KubeSource` offers the agent what `controller.watch.TopologyWatcher` offers for files:
`poll()` returns None when nothing changed since the last topology, else a `WatchResult`
(a new topology, or none and the issues).  Each poll after a change builds the topology from
the informers' stores through the loader's own stages (`topology.load.apiobjects`,
`build_topology`), so an object is valid from the API exactly when it would be in a file, and
the agent's `NodeCompiler` turns the new topology into the minimal flow difference, as it does
for a file edit.  An object is parsed once per version: the parse is cached against the
stored dict, which the informer keeps as long as the object's slimmed content is unchanged.

Which objects are watched (`watched_kinds`): ClusterNetwork, HostSubnet, NetNamespace,
EgressNetworkPolicy, Namespace, Service and NetworkPolicy whole; Pods with the field selector
``spec.nodeName=<node>`` (a pod's own flows are its node's; Services are flows by
themselves).  Under networkpolicy a node's flows also name the addresses of the pods that
policies select, on any node, and a policy selects pods of its own namespace only: so each
namespace that has a NetworkPolicy gets one more Pod watch (``metadata.namespace=<ns>,
spec.nodeName!=<node>``: its pods elsewhere), started when its first policy appears and
stopped when its last one goes (`policy_namespaces`).  Pods of the other namespaces on other
nodes are never listed (3.11's networkpolicy node watched every pod of the cluster).  With
more than MAX_NAMESPACE_WATCHES such namespaces, one watch of every pod on the other nodes
replaces theirs (a node's watches stay bounded), and only the policy namespaces' pods of it
reach the topology.  Without a node (`osdn check --kubeconfig`) every pod is listed.
Endpoints are not watched: no flow depends on them.

Invalid objects (3.11 logs and ignores them): an object whose own fields are invalid is
left out of the topology, logged once per version with its issues (kind namespace/name, field,
value) and counted (``osdn_kube_invalid_objects_total{kind}``).  An object that the checks
across objects reject (a pod IP outside its node's subnet, a duplicate) is left out the same
way, and the checks run again without it.  Only a problem of the whole (no valid
ClusterNetwork) leaves the source without a topology: the agent then keeps the last good one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.kube.client import RETRYABLE, KubeClient
from controller.kube.informer import Informer, KubeMetrics, ListWatch
from controller.watch import WatchResult
from topology.load import Issue, ParsedFile, TopologyError, build_topology
from topology.load.apiobjects import parse_api_object
from topology.model import PLUGIN_NAMES, Plugin, Topology

__all__ = ["KubeSource", "ORIGIN", "SourceMetrics", "load_from_api", "pod_selector"]

log = logging.getLogger("osdn.kube")

ORIGIN = "kubernetes"  # where issues of API objects say they are
FROM_API = "from the API server"  # what changed, as the agent's log lines say it
# The order the kinds are listed in (ClusterNetwork first: it decides the pods' selector).
KIND_ORDER = ("ClusterNetwork", "HostSubnet", "NetNamespace", "Namespace", "Service",
              "NetworkPolicy", "EgressNetworkPolicy", "Pod")
# More namespaces with policies than this: one watch of every pod on the other nodes instead
# of one per namespace (a node's watches on the API server stay bounded; the pods of
# namespaces without policies are still left out of the topology).
MAX_NAMESPACE_WATCHES = 32
OTHER_NODES = "*"  # policy_pods' key of that one watch
MAX_CHECK_ROUNDS = 20  # rounds of leaving out objects the cross-object checks reject
BATCH = 0.05  # seconds the agent waits after a first event, so that a burst is one change


class SourceMetrics(KubeMetrics, Protocol):
    def count_invalid_object(self, kind: str) -> None: ...

    def set_kube_objects(self, kind: str, count: int) -> None: ...


def pod_selector(plugin: Plugin | None, node: str | None) -> str | None:
    """The main Pod watch's field selector: `node`'s pods (every pod without a node, or
    before the plugin is known)."""
    if node is None or plugin is None:
        return None
    return f"spec.nodeName={node}"


def namespace_selector(namespace: str, node: str) -> str:
    """The field selector of the Pod watch of a namespace that has NetworkPolicies: its pods
    on the other nodes (the node's own are the main watch's: no pod is in two stores, so
    one event changes one store, and a pod deleted is gone at once)."""
    return f"metadata.namespace={namespace},spec.nodeName!={node}"


def policy_namespaces(policies: dict[str, dict[str, Any]]) -> set[str]:
    """The namespaces whose pods policies can select (a policy's pod selectors, for the pods
    it applies to and for its peers, pick pods of its own namespace)."""
    return {obj.get("metadata", {}).get("namespace", "") for obj in policies.values()} - {""}


@dataclass
class _Parsed:
    obj: dict[str, Any]  # the stored dict this parse is of (compared by identity)
    parsed: ParsedFile


class KubeSource:
    """The topology as the API server has it, kept current by one informer per kind."""

    def __init__(self, client: ListWatch, node: str | None = None,
                 plugin: Plugin | None = None, metrics: SourceMetrics | None = None, *,
                 spawn: Callable[..., object] | None = None,
                 sleep: Callable[[float], None] | None = None,
                 wake: Callable[[], None] = lambda: None) -> None:
        """`plugin` overrides the ClusterNetwork's; `spawn` runs an informer's loop (a
        green thread); `wake` is called on every change (the agent's loop waits on it)."""
        self.client = client
        self.node = node
        self.plugin = plugin
        self.metrics = metrics
        self.spawn = spawn
        self.sleep = sleep
        self.wake = wake
        self.informers: dict[str, Informer] = {}
        # networkpolicy with a node: namespace (or OTHER_NODES) -> its Pod watch
        self.policy_pods: dict[str, Informer] = {}
        self.policy_namespaces: set[str] = set()
        self._parsed: dict[tuple[str, str], _Parsed] = {}
        self._dirty = True
        self._running = False
        self._reported: set[str] = set()  # identities the cross-object checks reject, logged
        for kind in KIND_ORDER:
            if kind != "Pod":
                self.informers[kind] = self._informer(kind, None)

    def _informer(self, kind: str, selector: str | None) -> Informer:
        extra: dict[str, Any] = {} if self.sleep is None else {"sleep": self.sleep}
        return Informer(self.client, kind, self._changed, field_selector=selector,
                        metrics=self.metrics, **extra)

    def _changed(self, kind: str, keys: list[str]) -> None:
        self._dirty = True
        self.wake()

    # ----------------------------------------------------------------- syncing

    def sync(self) -> list[Issue]:
        """List every kind not listed yet (ClusterNetwork first, then pods with the selector
        its plugin calls for); the problems of the lists that failed."""
        problems: list[Issue] = []
        for kind in KIND_ORDER:
            if kind == "Pod":
                self._ensure_pod_informer()
            informer = self.informers.get(kind)
            if informer is None:
                problems.append(Issue(ORIGIN, 0, message="Pod: not listed: the pods to "
                                                         "watch depend on the ClusterNetwork"))
                continue
            if not informer.synced:
                problems += _list(informer)
        self._ensure_policy_pods()
        for informer in self.policy_pods.values():
            if not informer.synced:
                problems += _list(informer)
        return problems

    def _effective_plugin(self) -> Plugin | None:
        if self.plugin is not None:
            return self.plugin
        for obj in self.informers["ClusterNetwork"].snapshot().values():
            name = obj.get("pluginName")
            if isinstance(name, str):
                return next((p for p in PLUGIN_NAMES.values() if p.value == name), None)
        return None

    def _wanted_pod_selector(self) -> str | None:
        return pod_selector(self._effective_plugin(), self.node)

    def start(self) -> None:
        """Run every informer's list-and-watch loop in a task of its own."""
        assert self.spawn is not None
        self._running = True
        for informer in [*self.informers.values(), *self.policy_pods.values()]:
            self.spawn(informer.list_watch_loop)

    def stop(self) -> None:
        """Stop every informer (each loop ends when its current watch does)."""
        for informer in [*self.informers.values(), *self.policy_pods.values()]:
            informer.stop()

    def _ensure_policy_pods(self) -> None:
        """The Pod watches of the namespaces that have a NetworkPolicy (networkpolicy, with a
        node): one per namespace, started with its first policy and stopped after its last;
        beyond MAX_NAMESPACE_WATCHES namespaces, one of every pod on the other nodes."""
        wanted: set[str] = set()
        node, policies = self.node, self.informers["NetworkPolicy"]
        if node is not None and self._effective_plugin() is Plugin.NETWORKPOLICY \
                and policies.synced:
            wanted = policy_namespaces(policies.snapshot())
        if wanted != self.policy_namespaces:
            self._dirty = True  # the pods kept from a wide watch change too
        self.policy_namespaces = wanted
        selectors: dict[str, str] = {}
        if node is not None and len(wanted) > MAX_NAMESPACE_WATCHES:
            selectors[OTHER_NODES] = f"spec.nodeName!={node}"
        elif node is not None:
            selectors = {namespace: namespace_selector(namespace, node) for namespace in wanted}
        for key in sorted(self.policy_pods.keys() - selectors.keys()):
            self.policy_pods.pop(key).stop()
            log.info("Pod watch %s stopped", self._watch_name(key))
        for key in sorted(selectors.keys() - self.policy_pods.keys()):
            informer = self.policy_pods[key] = self._informer("Pod", selectors[key])
            if self._running and self.spawn is not None:
                log.info("Pod watch %s started", self._watch_name(key))
                self.spawn(informer.list_watch_loop)

    def _watch_name(self, key: str) -> str:
        if key == OTHER_NODES:
            return (f"of every pod on the other nodes ({len(self.policy_namespaces)} namespaces "
                    f"have NetworkPolicies, more than {MAX_NAMESPACE_WATCHES})")
        return f"of namespace {key} (it has {'a' if key in self.policy_namespaces else 'no'} " \
               "NetworkPolicy)"

    def _ensure_pod_informer(self) -> None:
        """The Pod informer, with the field selector the plugin calls for: made once the
        plugin is known (given, or the ClusterNetwork listed), made again if it changes."""
        if self.plugin is None and not self.informers["ClusterNetwork"].synced:
            return
        wanted = self._wanted_pod_selector()
        current = self.informers.get("Pod")
        if current is not None and current.field_selector == wanted:
            return
        if current is not None:
            log.warning("Pod watch: field selector now %s (the plugin changed); listing again",
                        wanted or "none")
            current.stop()
        informer = self.informers["Pod"] = self._informer("Pod", wanted)
        if self._running and self.spawn is not None:
            self.spawn(informer.list_watch_loop)

    # ----------------------------------------------------------------- topology

    def poll(self) -> WatchResult | None:
        """None if nothing changed since the last topology; else the new one, or none and
        the issues (an API not reachable yet, no valid ClusterNetwork)."""
        if not self._dirty:
            return None
        problems = self.sync() if not self._running else []
        self._ensure_pod_informer()
        self._ensure_policy_pods()
        unsynced = [kind for kind in KIND_ORDER
                    if kind not in self.informers or not self.informers[kind].synced]
        unsynced += [f"Pod in {namespace}" for namespace, informer in self.policy_pods.items()
                     if not informer.synced]
        if self._running and unsynced:
            return None  # the informers are listing; their success wakes the agent
        if problems or unsynced:
            self._dirty = False  # until an informer, once started, brings news
            return WatchResult(None, problems, [FROM_API])
        self._dirty = False
        try:
            return WatchResult(self.topology(), [], [FROM_API])
        except TopologyError as error:
            return WatchResult(None, error.issues, [FROM_API])

    def due_in(self) -> float | None:
        return None

    def topology(self) -> Topology:
        """The topology of the stores now (TopologyError: nothing usable as a whole)."""
        parsed = self._parse_all()
        dropped: set[str] = set()
        for _ in range(MAX_CHECK_ROUNDS):
            try:
                kept = [p for p in parsed if not _named(p, dropped)] if dropped else parsed
                topology = build_topology(kept, self.plugin, ORIGIN)
            except TopologyError as error:
                named = {issue.object for issue in error.issues if issue.object}
                named -= dropped
                whole = [issue for issue in error.issues if not issue.object]
                if whole or not named:  # and why: the objects left out as invalid
                    raise TopologyError([*error.issues, *self._skipped_issues()]) from None
                self._reject(error.issues, named)
                dropped |= named
                continue
            self._reported &= dropped  # one rejected again later is logged again
            return topology
        raise TopologyError([Issue(ORIGIN, 0, message="too many objects rejected by the "
                                                      "checks across objects")])

    def _parse_all(self) -> list[ParsedFile]:
        """Every stored object parsed (once per version); the invalid ones left out."""
        usable: list[ParsedFile] = []
        seen: set[tuple[str, str]] = set()
        for kind in KIND_ORDER:
            store = self.store(kind)
            if self.metrics is not None:
                self.metrics.set_kube_objects(kind, len(store))
            for key, obj in store.items():
                cache_key = (kind, key)
                seen.add(cache_key)
                entry = self._parsed.get(cache_key)
                if entry is None or entry.obj is not obj:
                    entry = self._parsed[cache_key] = _Parsed(obj, parse_api_object(obj, ORIGIN))
                    if entry.parsed.issues:
                        self._invalid(kind, entry.parsed.issues)
                if not entry.parsed.issues:
                    usable.append(entry.parsed)
        for gone in self._parsed.keys() - seen:
            del self._parsed[gone]
        return usable

    def store(self, kind: str) -> dict[str, dict[str, Any]]:
        """The objects of `kind` held now, by key (Pods: the node's watch and the policy
        namespaces' watches together)."""
        informer = self.informers.get(kind)
        store = informer.snapshot() if informer is not None else {}
        if kind == "Pod":
            for key, extra in self.policy_pods.items():
                pods = extra.snapshot()
                if key == OTHER_NODES:
                    pods = {k: pod for k, pod in pods.items()
                            if k.split("/", 1)[0] in self.policy_namespaces}
                store.update(pods)
        return store

    def _skipped_issues(self) -> list[Issue]:
        return [issue for entry in self._parsed.values() for issue in entry.parsed.issues]

    def _invalid(self, kind: str, issues: Sequence[Issue]) -> None:
        log.warning("skipped an invalid %s from the API:\n%s", kind,
                    "\n".join(str(issue) for issue in issues))
        if self.metrics is not None:
            self.metrics.count_invalid_object(kind)

    def _reject(self, issues: Sequence[Issue], named: set[str]) -> None:
        for identity in sorted(named):
            if identity in self._reported:
                continue
            self._reported.add(identity)
            kind = identity.split("/", 1)[0]
            log.warning("skipped %s from the API:\n%s", identity,
                        "\n".join(str(i) for i in issues if i.object == identity))
            if self.metrics is not None:
                self.metrics.count_invalid_object(kind)


def _list(informer: Informer) -> list[Issue]:
    """List `informer`'s objects; the problem if the API cannot be listed."""
    try:
        informer.sync()
    except RETRYABLE as error:
        what = informer.kind if informer.field_selector is None or informer.kind != "Pod" \
            else f"Pod ({informer.field_selector})"
        return [Issue(ORIGIN, 0, message=f"cannot list {what}: {error}")]
    return []


def _named(parsed: ParsedFile, identities: set[str]) -> bool:
    return any(obj.identity in identities for obj in parsed.objects)


def load_from_api(kubeconfig: str | None, plugin: Plugin | None = None,
                  node: str | None = None) -> tuple[Topology, KubeSource]:
    """One read-only list of every kind (for `osdn check|render|export --kubeconfig`):
    the topology, and the source holding the listed objects.  Raises TopologyError (the
    issues, including an API that cannot be listed) or KubeConfigError."""
    source = KubeSource(KubeClient(kubeconfig), node, plugin)
    problems = source.sync()
    if problems:
        raise TopologyError(problems)
    return source.topology(), source
