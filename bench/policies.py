"""A generated cluster's NetworkPolicies and EgressNetworkPolicies, chosen and written as YAML
items in one go (nothing else refers to them)."""

from __future__ import annotations

import random

from bench.catalogue import EPOCH, EXTERNAL_NETS
from bench.manifests import stamp
from bench.objects import Cluster, Ids, Namespace

_POLICY_KINDS = 5  # deny-all, from a team's namespaces, from an app, from default, same ns


def network_policies(cluster: Cluster, ids: Ids) -> list[str]:
    """`policies_per_namespace` per project, the kinds in turn; none unless asked for."""
    params = cluster.params
    if not params.policies or params.policies_per_namespace <= 0:
        return []
    rng = params.rng("policies")
    items = []
    teams = sorted({team for ns in cluster.namespaces
                    if (team := ns.labels.get("team")) is not None})
    for ns in cluster.namespaces:
        if ns.system:
            continue
        for k in range(params.policies_per_namespace):
            name, spec = _policy(rng, ns, k, teams)
            items.append((ns.name, name, spec))
    items.sort(key=lambda item: (item[0], item[1]))
    out = []
    t = EPOCH + 86400 * 70
    for namespace, name, spec in items:
        t += 7
        out.append(
            f"- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata:\n"
            f'    creationTimestamp: "{stamp(t)}"\n    generation: 1\n    name: {name}\n'
            f"    namespace: {namespace}\n    resourceVersion: {ids.version()}\n"
            f"    selfLink: /apis/networking.k8s.io/v1/namespaces/{namespace}/"
            f"networkpolicies/{name}\n    uid: {ids.uid()}\n  spec:\n{spec}")
    return out


def _policy(rng: random.Random, ns: Namespace, k: int, teams: list[str]) -> tuple[str, str]:
    """The k-th policy of `ns`: (name, spec YAML)."""
    kind = k % _POLICY_KINDS
    round_ = "" if k < _POLICY_KINDS else f"-{k // _POLICY_KINDS + 1}"
    app = rng.choice(ns.apps) if ns.apps else None
    target = (f"    podSelector:\n      matchLabels:\n        app: {app.app}\n" if app
              else "    podSelector: {}\n")
    types = "    policyTypes:\n    - Ingress\n"
    if kind == 0:
        return f"deny-all{round_}", "    podSelector: {}\n" + types
    if kind == 1:
        team = rng.choice(teams) if teams else "frontend"
        _, port, proto, _ = rng.choice(app.ports) if app else ("http", 8080, "TCP", 8080)
        return (f"allow-from-{team}-on-{port}{round_}",
                f"    ingress:\n    - from:\n      - namespaceSelector:\n"
                f"          matchLabels:\n            team: {team}\n"
                f"      ports:\n      - port: {port}\n        protocol: {proto}\n"
                + target + types)
    if kind == 2:
        peer = rng.choice(ns.apps).app if ns.apps else "client"
        name = f"allow-{peer}-to-{app.app}" if app else f"allow-from-{peer}"
        return (name + round_,
                f"    ingress:\n    - from:\n      - podSelector:\n"
                f"          matchLabels:\n            app: {peer}\n" + target + types)
    if kind == 3:
        return (f"allow-from-default-namespace{round_}",
                "    ingress:\n    - from:\n      - namespaceSelector:\n"
                "          matchLabels:\n            name: default\n"
                "    podSelector: {}\n" + types)
    return (f"allow-same-namespace{round_}",
            "    ingress:\n    - from:\n      - podSelector: {}\n    podSelector: {}\n"
            + types)


def egress_firewalls(cluster: Cluster, ids: Ids) -> list[str]:
    """cidrSelector rules only (nothing needs DNS): allow the underlay, a few public networks
    allowed or denied, deny the rest; in projects whose VNID is theirs alone."""
    rng = cluster.params.rng("firewalls")
    eligible = [ns for ns in cluster.namespaces if ns.own_vnid]
    asked = cluster.params.egress_firewalls
    wanted = max(1, len(eligible) // 40) if asked is None else asked
    chosen = sorted(rng.sample(eligible, min(wanted, len(eligible))), key=lambda n: n.name)
    out = []
    for ns in chosen:
        rules = [f"  - to:\n      cidrSelector: {cluster.plan.underlay}\n    type: Allow\n"]
        for _ in range(rng.randrange(1, 5)):
            net = f"{rng.choice(EXTERNAL_NETS)}.{rng.randrange(256)}.{rng.randrange(256)}.0"
            bits = rng.choice((24, 24, 28, 32))
            if bits == 32:
                net = net[:-1] + str(rng.randrange(1, 255))
            rules.append(f"  - to:\n      cidrSelector: {net}/{bits}\n"
                         f"    type: {rng.choice(('Allow', 'Allow', 'Deny'))}\n")
        rules.append("  - to:\n      cidrSelector: 0.0.0.0/0\n    type: Deny\n")
        t = EPOCH + 86400 * 80 + rng.randrange(86400)
        out.append(
            f"- apiVersion: network.openshift.io/v1\n  kind: EgressNetworkPolicy\n"
            f'  metadata:\n    creationTimestamp: "{stamp(t)}"\n    name: default\n'
            f"    namespace: {ns.name}\n    resourceVersion: {ids.version()}\n"
            f"    selfLink: /apis/network.openshift.io/v1/namespaces/{ns.name}/"
            f"egressnetworkpolicies/default\n    uid: {ids.uid()}\n  spec:\n    egress:\n"
            + "".join("  " + line for rule in rules for line in rule.splitlines(True)))
    return out
