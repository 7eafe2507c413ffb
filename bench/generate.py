"""Realistic generated clusters, written the way `oc get … -o yaml` prints them.

`generate(...)` returns ``{file name: YAML text}``: one ``kind: List`` per kind
(``clusternetwork.yaml``, ``hostsubnets.yaml``, ``netnamespaces.yaml``, ``namespaces.yaml``,
``pods.yaml`` — or ``pods/<host>.yaml`` with ``pods_by_node=True`` — ``services.yaml``,
``networkpolicies.yaml``, ``egressnetworkpolicies.yaml``), every one of which
`topology.load.load_topology` reads without an issue.  The same seed and parameters always give
byte-identical files.

What a generated cluster looks like (the defaults; every choice is drawn from the seed):

* ClusterNetwork: one or two cluster CIDRs (10.128.0.0/14-style, grown to fit the nodes),
  hostSubnetLength 8, 9 or 10 (whichever hold `pods_per_node`), a service network such as
  172.30.0.0/16 (grown to fit the services), VXLAN port 4789 unless given.
* Nodes: masters, infra and compute nodes (or EC2-style ``ip-a-b-c-d`` names), hostIPs in an
  underlay /16 (a /8 when more than ~50,000 nodes), 200 per /24; HostSubnets allocated in order
  inside the cluster networks, split evenly over them, with an occasional hole (a deleted node);
  about a quarter carry an ``osdn.dev/datapath-id`` annotation (a MAC-derived id, as OVS picks).
* Namespaces: OpenShift's own (``default``, ``openshift-monitoring``, …, a few global with netid
  0) and projects named like ``payments-api-prod``; NetNamespaces with random netids, about one
  in ten without a netid (the master allocates it), and under ovs-multitenant a few with the
  change-network annotation (``join:<ns>``, ``global``, ``isolate``).
* Pods: Deployments of 1–10 replicas (app and tier labels, ReplicaSet owner, containerPorts)
  spread over the nodes, exactly `pods_per_node` per node, IPs handed out upward from the
  node's second address (the first is tun0's) with the gaps pod churn leaves, ofports from 3
  upward, interfaces ``veth`` + 8 hex digits.  Plus, when ``openshift-sdn`` is one of the
  namespaces, its host-network ``sdn``/``ovs`` pods on every node (they have no br0 port).
* Services: ``kubernetes`` (the service network's first address, no selector) and services
  selecting Deployments with 1–3 TCP/UDP ports; a few headless ones.
* Egress IPs: HostSubnets (infra nodes first) holding them, half of those also with
  egressCIDRs, and one namespace per IP using it, all in the underlay's top /24s.
* NetworkPolicies (only under ovs-networkpolicy unless `policies_always`): per project
  deny-all, allow-from-namespace-label on a port, allow-from-pod-selector, allow-from-default,
  allow-same-namespace, in that order, `policies_per_namespace` of them.
* EgressNetworkPolicies (cidrSelector rules only, so nothing needs DNS) in a few projects whose
  VNID is theirs alone.

How: `bench.params` checks the arguments and fills in defaults, `bench.addressplan` lays out
the networks, `bench.populate` makes the objects (`bench.objects`) from per-part random
streams, `bench.manifests` and `bench.policies` write them as YAML, and this module puts the
files together and writes them out.

CLI: ``python -m bench.generate --nodes 1000 --namespaces 2000 --services 10000
--pods-per-node 110 --plugin multitenant --out DIR [--seed N]`` (``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import manifests, policies
from bench.addressplan import plan_addresses
from bench.manifests import as_list
from bench.objects import Cluster, Ids
from bench.params import DETAILS, PLUGINS, ClusterCidr, Params, plugin_of
from bench.populate import build_cluster
from topology.model import Plugin

__all__ = ["DETAILS", "PLUGINS", "generate", "main", "plugin_of", "write"]


def generate(nodes: int = 3, namespaces: int = 5, pods_per_node: int = 3,
             services: int | None = None, egress_ips: int | None = None,
             policies_per_namespace: int = 3, plugin: str | Plugin = "multitenant",
             seed: int = 0, *,
             cluster_cidrs: Sequence[ClusterCidr] | None = None,
             host_subnet_length: int | None = None, service_cidr: str | None = None,
             vxlan_port: int = 4789, underlay: str | None = None, mtu: int = 1450,
             egress_firewalls: int | None = None, policies_always: bool = False,
             host_network_pods: bool = True, pods_by_node: bool = False,
             detail: str = "standard") -> dict[str, str]:
    """A cluster as ``{relative file name: YAML text}``; see the module docstring.

    nodes, namespaces, pods_per_node: exact counts (pod-network pods; `pods_per_node` per node).
    services: total, ``kubernetes`` included (default 2 per namespace).
    egress_ips: how many (default one per 20 namespaces).
    policies_per_namespace: NetworkPolicies per project, written only under ovs-networkpolicy
        unless `policies_always`.
    plugin: "subnet", "multitenant", "networkpolicy", a `Plugin` or its pluginName.
    cluster_cidrs: CIDRs ("10.128.0.0/14") or (CIDR, hostSubnetLength) pairs; default: one or
        two chosen from the seed, large enough.  host_subnet_length: for the CIDRs given without
        one (default 8, 9 or 10, from the seed, as long as pods_per_node fit).
    service_cidr, underlay (the hostIPs' network, /24 or larger): default from the seed.
    egress_firewalls: EgressNetworkPolicies (default one per 40 eligible projects, at least 1).
    host_network_pods: add openshift-sdn's host-network sdn/ovs pods (if that namespace exists).
    pods_by_node: write pods as pods/<host>.yaml, one file per node.
    detail: "minimal" (only what the loader reads, plus identity), "standard" (what `oc get`
        prints, without probes, volumes and conditions) or "full".
    Raises ValueError when the parameters cannot make a valid cluster (pods that do not fit a
    node subnet, nodes that do not fit the cluster networks, overlapping CIDRs, ...).
    """
    params = Params.of(
        nodes=nodes, namespaces=namespaces, pods_per_node=pods_per_node, services=services,
        egress_ips=egress_ips, policies_per_namespace=policies_per_namespace, plugin=plugin,
        seed=seed, cluster_cidrs=cluster_cidrs, host_subnet_length=host_subnet_length,
        service_cidr=service_cidr, underlay=underlay, vxlan_port=vxlan_port, mtu=mtu,
        egress_firewalls=egress_firewalls, policies_always=policies_always,
        host_network_pods=host_network_pods, pods_by_node=pods_by_node, detail=detail)
    ids = Ids(params.rng("ids"))
    cluster = build_cluster(params, plan_addresses(params), ids)
    return _files(cluster, ids)


def _files(cluster: Cluster, ids: Ids) -> dict[str, str]:
    """The cluster's files, written in this order: `ids` hands out UIDs and versions."""
    files = {
        "clusternetwork.yaml": manifests.cluster_network(cluster),
        "hostsubnets.yaml": as_list(manifests.host_subnets(cluster)),
        "netnamespaces.yaml": as_list(manifests.net_namespaces(cluster)),
        "namespaces.yaml": as_list(manifests.namespace_items(cluster)),
    }
    pods = manifests.pod_items(cluster, ids)
    if cluster.params.pods_by_node:
        for host, items in sorted(pods.items()):
            files[f"pods/{host}.yaml"] = as_list([t for _, _, t in sorted(items)])
    else:
        every = sorted(item for items in pods.values() for item in items)
        files["pods.yaml"] = as_list([t for _, _, t in every])
    files["services.yaml"] = as_list(manifests.service_items(cluster, ids))
    network_policies = policies.network_policies(cluster, ids)
    if network_policies:
        files["networkpolicies.yaml"] = as_list(network_policies)
    firewalls = policies.egress_firewalls(cluster, ids)
    if firewalls:
        files["egressnetworkpolicies.yaml"] = as_list(firewalls)
    return files


def write(files: dict[str, str], out: str | os.PathLike[str]) -> int:
    """Write `files` under `out` (created); returns the bytes written."""
    total = 0
    root = Path(out)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode()
        path.write_bytes(data)
        total += len(data)
    return total


def _cidr_arg(text: str) -> ClusterCidr:
    cidr, _, length = text.partition(":")
    return (cidr, int(length)) if length else cidr


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate",
        description="Write a realistic generated cluster as oc-style YAML files.")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--pods-per-node", type=int, default=3)
    parser.add_argument("--services", type=int, default=None, help="default: 2 per namespace")
    parser.add_argument("--egress-ips", type=int, default=None,
                        help="default: one per 20 namespaces")
    parser.add_argument("--policies-per-namespace", type=int, default=3)
    parser.add_argument("--plugin", choices=sorted(PLUGINS), default="multitenant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cluster-cidr", action="append", type=_cidr_arg, default=None,
                        metavar="CIDR[:HOSTSUBNETLENGTH]", help="repeatable")
    parser.add_argument("--host-subnet-length", type=int, default=None)
    parser.add_argument("--service-cidr", default=None)
    parser.add_argument("--underlay", default=None, help="the hostIPs' network")
    parser.add_argument("--vxlan-port", type=int, default=4789)
    parser.add_argument("--mtu", type=int, default=1450)
    parser.add_argument("--egress-firewalls", type=int, default=None)
    parser.add_argument("--policies-always", action="store_true",
                        help="write NetworkPolicies under every plugin")
    parser.add_argument("--no-host-network-pods", action="store_true")
    parser.add_argument("--pods-by-node", action="store_true",
                        help="pods/<host>.yaml per node instead of one pods.yaml")
    parser.add_argument("--detail", choices=DETAILS, default="standard")
    parser.add_argument("--out", required=True, help="output directory (created)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        files = generate(args.nodes, args.namespaces, args.pods_per_node, args.services,
                         args.egress_ips, args.policies_per_namespace, args.plugin, args.seed,
                         cluster_cidrs=args.cluster_cidr,
                         host_subnet_length=args.host_subnet_length,
                         service_cidr=args.service_cidr, vxlan_port=args.vxlan_port,
                         underlay=args.underlay, mtu=args.mtu,
                         egress_firewalls=args.egress_firewalls,
                         policies_always=args.policies_always,
                         host_network_pods=not args.no_host_network_pods,
                         pods_by_node=args.pods_by_node, detail=args.detail)
    except ValueError as error:
        print(f"bench.generate: {error}", file=sys.stderr)
        return 2
    generated = time.perf_counter() - started
    size = write(files, args.out)
    print(f"{len(files)} files, {size / 1e6:.1f} MB in {args.out}: generated in "
          f"{generated:.1f} s, written in {time.perf_counter() - started - generated:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
