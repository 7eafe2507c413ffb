"""EgressNetworkPolicy in table 101 (3.11 `UpdateEgressNetworkPolicyRules`).

Flows are per VNID: rule i of N gets priority N - i, Allow -> tun0, Deny -> drop.  A policy
without rules is ignored (3.11 keeps one only if `len(spec.egress) > 0`).  A VNID shared by
several namespaces, or holding several policies, drops all egress (priority 1); a policy in
the global VNID 0 is ignored.  dnsName rules use the resolver in the settings;
a name that does not resolve yields no flow and a warning, never a crash.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Network

from controller.compiler.context import NodeContext
from controller.compiler.unit import UnitKind
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import Action, Match, Output, Proto
from controller.pipeline.tables import Table
from topology.model import GLOBAL_VNID, TUN0_OFPORT, EgressNetworkPolicy, EgressRule

EVERYWHERE = IPv4Network("0.0.0.0/0")
LEGACY_EVERYWHERE = IPv4Network("0.0.0.0/32")


def owner(vnid: int) -> Owner:
    return Owner(OwnerKind.EGRESS_FIREWALL, str(vnid))


def compile_egress_firewalls(ctx: NodeContext) -> None:
    if not ctx.plugin.supports_vnids:
        return
    by_vnid: dict[int, list[EgressNetworkPolicy]] = defaultdict(list)
    for enp in ctx.topology.egress_network_policies:
        if not enp.rules:
            continue  # 3.11 `handleEgressNetworkPolicy`: kept only if len(spec.egress) > 0
        by_vnid[ctx.vnid(enp.namespace)].append(enp)
    for vnid, policies in sorted(by_vnid.items()):
        _compile_vnid(ctx, vnid, policies)


def _names(policies: list[EgressNetworkPolicy]) -> str:
    return ", ".join(f"EgressNetworkPolicy/{p.namespace}/{p.name}" for p in policies)


def _compile_vnid(ctx: NodeContext, vnid: int, policies: list[EgressNetworkPolicy]) -> None:
    own, warn = owner(vnid), ctx.out.warnings.append
    namespaces = ctx.namespaces_by_vnid.get(vnid, [])
    if vnid == GLOBAL_VNID:
        warn(f"{_names(policies)}: not allowed in the global network namespace; ignored")
    elif len(namespaces) > 1:
        warn(f"{_names(policies)}: not allowed in a shared NetNamespace "
             f"({', '.join(namespaces)}); dropping all its egress")
        ctx.out.add(own, Table.EGRESS_FIREWALL, 1, Match(reg0=vnid))
    elif len(policies) > 1:
        warn(f"{_names(policies)}: several in one namespace; dropping all its egress")
        ctx.out.add(own, Table.EGRESS_FIREWALL, 1, Match(reg0=vnid))
    else:
        rules = policies[0].rules
        for index, rule in enumerate(rules):
            action: tuple[Action, ...] = (Output(TUN0_OFPORT),) if rule.action == "Allow" else ()
            for dst in _destinations(ctx, policies[0], rule):
                match = Match(proto=Proto.IP, reg0=vnid, nw_dst=dst)
                ctx.out.add(own, Table.EGRESS_FIREWALL, len(rules) - index, match, action)


def _destinations(ctx: NodeContext, enp: EgressNetworkPolicy,
                  rule: EgressRule) -> list[IPv4Network | None]:
    if rule.cidr is not None:
        if rule.cidr == LEGACY_EVERYWHERE:
            ctx.out.warnings.append(f"EgressNetworkPolicy/{enp.namespace}/{enp.name}: "
                                    "cidrSelector 0.0.0.0/32 read as 0.0.0.0/0")
        return [None] if rule.cidr in (EVERYWHERE, LEGACY_EVERYWHERE) else [rule.cidr]
    assert rule.dns_name is not None
    resolver = ctx.settings.resolver
    addresses = resolver(rule.dns_name) if resolver else []
    if not addresses:
        ctx.out.warnings.append(f"EgressNetworkPolicy/{enp.namespace}/{enp.name}: dnsName "
                                f"{rule.dns_name} did not resolve; its rule has no flow")
    return [IPv4Network(ip) for ip in sorted(set(addresses))]


UNIT = UnitKind.whole("egress-firewall", compile_egress_firewalls)
