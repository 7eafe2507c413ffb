"""A generated cluster as YAML, the way `oc get … -o yaml` prints it: the ClusterNetwork, and one
item text per HostSubnet, NetNamespace, Namespace, Pod and Service, to go in a ``kind: List``
(`as_list`).  Text is written directly rather than through a YAML library, for speed and so
that the bytes are exactly oc's layout."""

from __future__ import annotations

import json
import re
import time

from bench.catalogue import EPOCH
from bench.objects import Cluster, Deployment, Ids, Node, Pod, dotted

PodItem = tuple[str, str, str]  # (namespace, name, YAML item)

_PLAIN = re.compile(r"[a-zA-Z_/][a-zA-Z0-9_./-]*")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def scalar(text: str) -> str:
    """A YAML scalar for `text` that reads back as that string."""
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)


def stamp(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def as_list(items: list[str]) -> str:
    body = "items:\n" + "".join(items) if items else "items: []\n"
    return f'apiVersion: v1\n{body}kind: List\nmetadata:\n  resourceVersion: ""\n  selfLink: ""\n'


def cluster_network(cluster: Cluster) -> str:
    params = cluster.params
    networks = cluster.plan.networks
    first, first_hsl = networks[0]
    entries = "".join(f"- CIDR: {cidr}\n  hostSubnetLength: {hsl}\n" for cidr, hsl in networks)
    return (
        "apiVersion: network.openshift.io/v1\n"
        f"clusterNetworks:\n{entries}hostsubnetlength: {first_hsl}\n"
        "kind: ClusterNetwork\nmetadata:\n"
        f'  creationTimestamp: "{stamp(EPOCH)}"\n  name: default\n'
        '  resourceVersion: "1003"\n'
        "  selfLink: /apis/network.openshift.io/v1/clusternetworks/default\n"
        f"  uid: {Ids(params.rng('cn')).uid()}\n"
        f"mtu: {params.mtu}\nnetwork: {first}\npluginName: {params.plugin.value}\n"
        f"serviceNetwork: {cluster.plan.service_network}\nvxlanPort: {params.vxlan_port}\n")


def host_subnets(cluster: Cluster) -> list[str]:
    out = []
    for node in sorted(cluster.nodes, key=lambda n: n.host):
        egress = ""
        if node.egress_cidrs:
            egress += "  egressCIDRs:\n" + "".join(f"  - {c}\n" for c in node.egress_cidrs)
        if node.egress_ips:
            egress += "  egressIPs:\n" + "".join(f"  - {dotted(i)}\n" for i in node.egress_ips)
        dpid = (f"      osdn.dev/datapath-id: {scalar(node.datapath_id)}\n"
                if node.datapath_id else "")
        out.append(
            f"- apiVersion: network.openshift.io/v1\n{egress}  host: {node.host}\n"
            f"  hostIP: {dotted(node.ip)}\n  kind: HostSubnet\n  metadata:\n"
            f"    annotations:\n{dpid}"
            f"      pod.network.openshift.io/node-uid: {node.node_uid}\n"
            f'    creationTimestamp: "{stamp(node.created)}"\n    name: {node.host}\n'
            f"    resourceVersion: {node.version}\n"
            f"    selfLink: /apis/network.openshift.io/v1/hostsubnets/{node.host}\n"
            f"    uid: {node.uid}\n  subnet: {dotted(node.subnet)}/{node.prefix}\n")
    return out


def net_namespaces(cluster: Cluster) -> list[str]:
    out = []
    for ns in sorted(cluster.namespaces, key=lambda n: n.name):
        egress = ("  egressIPs:\n" + "".join(f"  - {dotted(i)}\n" for i in ns.egress_ips)
                  if ns.egress_ips else "")
        notes = []
        if ns.multicast:
            notes.append('      netnamespace.network.openshift.io/multicast-enabled: "true"\n')
        if ns.change:
            notes.append("      pod.network.openshift.io/multitenant.change-network: "
                         f"{scalar(ns.change)}\n")
        annotations = "    annotations:\n" + "".join(notes) if notes else ""
        netid = ("  netid: 0\n" if ns.global_ else
                 f"  netid: {ns.netid}\n" if ns.netid is not None else "")
        out.append(
            f"- apiVersion: network.openshift.io/v1\n{egress}  kind: NetNamespace\n"
            f"  metadata:\n{annotations}"
            f'    creationTimestamp: "{stamp(ns.created + 2)}"\n    name: {ns.name}\n'
            f"    resourceVersion: {ns.version_nn}\n"
            f"    selfLink: /apis/network.openshift.io/v1/netnamespaces/{ns.name}\n"
            f"    uid: {ns.uid_nn}\n{netid}  netname: {ns.name}\n")
    return out


def namespace_items(cluster: Cluster) -> list[str]:
    out = []
    for ns in sorted(cluster.namespaces, key=lambda n: n.name):
        labels = ("    labels:\n" + "".join(f"      {k}: {scalar(v)}\n"
                                             for k, v in sorted(ns.labels.items()))
                  if ns.labels else "")
        index = ns.index
        annotations = ""
        if cluster.params.detail != "minimal":
            display = "" if ns.system else ns.name.replace("-", " ").title()
            annotations = (
                "    annotations:\n      openshift.io/description: \"\"\n"
                f"      openshift.io/display-name: {scalar(display)}\n"
                + ("" if ns.system else "      openshift.io/requester: developer\n")
                + f"      openshift.io/sa.scc.mcs: s0:c{10 + index // 5},c{index % 5}\n"
                f"      openshift.io/sa.scc.supplemental-groups: "
                f"{1000000000 + index * 10000}/10000\n"
                f"      openshift.io/sa.scc.uid-range: {1000000000 + index * 10000}/10000\n")
        out.append(
            f"- apiVersion: v1\n  kind: Namespace\n  metadata:\n{annotations}"
            f'    creationTimestamp: "{stamp(ns.created)}"\n{labels}    name: {ns.name}\n'
            f"    resourceVersion: {ns.version_ns}\n"
            f"    selfLink: /api/v1/namespaces/{ns.name}\n    uid: {ns.uid_ns}\n"
            "  spec:\n    finalizers:\n    - kubernetes\n"
            + ("" if ns.system else "    - openshift.io/origin\n")
            + "  status:\n    phase: Active\n")
    return out


# ------------------------------------------------------------------ pods

def pod_items(cluster: Cluster, ids: Ids) -> dict[str, list[PodItem]]:
    """host -> its pods' items: the Deployments' pods, then the host-network ones."""
    by_node: dict[str, list[PodItem]] = {n.host: [] for n in cluster.nodes}
    detail = cluster.params.detail
    for d in cluster.deployments:
        rs_uid = ids.uid()  # the ReplicaSet's
        for pod in d.pods:
            node = pod.node
            assert node is not None
            text = (_minimal_pod(d, pod, node) if detail == "minimal" else
                    _pod(d, pod, node, rs_uid, detail == "full", ids))
            by_node[node.host].append((d.namespace.name, pod.name, text))
    if (cluster.params.host_network_pods
            and any(ns.name == "openshift-sdn" for ns in cluster.namespaces)):
        for host, item in _host_network_pods(cluster, ids):
            by_node[host].append(item)
    return by_node


def _labels(d: Deployment) -> str:
    return f"      app: {d.app}\n      pod-template-hash: {scalar(d.hash)}\n      tier: {d.tier}\n"


def _minimal_pod(d: Deployment, pod: Pod, node: Node) -> str:
    """Only what the loader reads, plus identity."""
    return (
        "- apiVersion: v1\n  kind: Pod\n  metadata:\n    annotations:\n"
        f"      osdn.dev/interface: {pod.interface}\n"
        f'      osdn.dev/ofport: "{pod.ofport}"\n'
        f'    creationTimestamp: "{stamp(pod.created)}"\n    labels:\n{_labels(d)}'
        f"    name: {pod.name}\n    namespace: {d.namespace.name}\n    uid: {pod.uid}\n"
        f"  spec:\n    nodeName: {node.host}\n"
        f"  status:\n    podIP: {dotted(pod.ip)}\n")


def _pod(d: Deployment, pod: Pod, node: Node, rs_uid: str, full: bool, ids: Ids) -> str:
    """What `oc get` prints, with probes, volumes and conditions when `full`."""
    ns = d.namespace.name
    rs = f"{d.app}-{d.hash}"
    created = stamp(pod.created)
    ports = "".join(f"      - containerPort: {port}\n        name: {name}\n"
                    f"        protocol: {proto}\n" for name, port, proto, _ in d.ports)
    container = f"    - image: {d.image}\n      name: {d.app}\n      ports:\n{ports}"
    return (
        "- apiVersion: v1\n  kind: Pod\n  metadata:\n    annotations:\n"
        "      openshift.io/scc: restricted\n"
        f"      osdn.dev/interface: {pod.interface}\n"
        f'      osdn.dev/ofport: "{pod.ofport}"\n'
        f'    creationTimestamp: "{created}"\n    generateName: {rs}-\n'
        f"    labels:\n{_labels(d)}    name: {pod.name}\n    namespace: {ns}\n"
        "    ownerReferences:\n    - apiVersion: apps/v1\n"
        "      blockOwnerDeletion: true\n      controller: true\n"
        f"      kind: ReplicaSet\n      name: {rs}\n      uid: {rs_uid}\n"
        f"    resourceVersion: {ids.version()}\n"
        f"    selfLink: /api/v1/namespaces/{ns}/pods/{pod.name}\n"
        f"    uid: {pod.uid}\n  spec:\n    containers:\n{container}"
        + (_full_container() if full else "")
        + "    dnsPolicy: ClusterFirst\n"
        f"    nodeName: {node.host}\n    restartPolicy: Always\n"
        "    schedulerName: default-scheduler\n"
        "    serviceAccountName: default\n"
        "    terminationGracePeriodSeconds: 30\n  status:\n"
        + (_full_status(d, created) if full else "")
        + f"    hostIP: {dotted(node.ip)}\n    phase: Running\n"
        f"    podIP: {dotted(pod.ip)}\n    qosClass: BestEffort\n"
        f'    startTime: "{created}"\n')


def _full_container() -> str:
    return ("      resources: {}\n      securityContext:\n        capabilities:\n"
            "          drop:\n          - KILL\n          - MKNOD\n          - SETGID\n"
            "          - SETUID\n      terminationMessagePath: /dev/termination-log\n"
            "      terminationMessagePolicy: File\n      volumeMounts:\n"
            "      - mountPath: /var/run/secrets/kubernetes.io/serviceaccount\n"
            "        name: default-token\n        readOnly: true\n")


def _full_status(d: Deployment, created: str) -> str:
    conditions = "".join(
        f"    - lastProbeTime: null\n      lastTransitionTime: \"{created}\"\n"
        f"      status: \"True\"\n      type: {kind}\n"
        for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled"))
    return (f"    conditions:\n{conditions}    containerStatuses:\n"
            f"    - image: {d.image}\n      lastState: {{}}\n      name: {d.app}\n"
            f"      ready: true\n      restartCount: 0\n      state:\n        running:\n"
            f"          startedAt: \"{created}\"\n")


def _host_network_pods(cluster: Cluster, ids: Ids) -> list[tuple[str, PodItem]]:
    """openshift-sdn's sdn and ovs pods on every node: host network, no br0 port."""
    out = []
    names: set[str] = set()
    for node in cluster.nodes:
        for app in ("ovs", "sdn"):
            name = f"{app}-{ids.token(5)}"
            while name in names:
                name = f"{app}-{ids.token(5)}"
            names.add(name)
            text = (
                "- apiVersion: v1\n  kind: Pod\n  metadata:\n"
                f'    creationTimestamp: "{stamp(node.created + 30)}"\n'
                f"    generateName: {app}-\n    labels:\n      app: {app}\n"
                "      component: network\n      openshift.io/component: network\n"
                f"    name: {name}\n    namespace: openshift-sdn\n"
                f"    resourceVersion: {ids.version()}\n"
                f"    selfLink: /api/v1/namespaces/openshift-sdn/pods/{name}\n"
                f"    uid: {ids.uid()}\n  spec:\n    containers:\n"
                f"    - image: openshift3/ose-node:v3.11\n      name: {app}\n"
                "    hostNetwork: true\n    hostPID: true\n"
                f"    nodeName: {node.host}\n    restartPolicy: Always\n"
                f"  status:\n    hostIP: {dotted(node.ip)}\n    phase: Running\n"
                f"    podIP: {dotted(node.ip)}\n")
            out.append((node.host, ("openshift-sdn", name, text)))
    return out


# ------------------------------------------------------------------ services

def service_items(cluster: Cluster, ids: Ids) -> list[str]:
    out = []
    for service in sorted(cluster.services, key=lambda s: (s.namespace.name, s.name)):
        ns, name, selector = service.namespace, service.name, service.selector
        port_text = "".join(f"    - name: {pname}\n      port: {sport}\n"
                            f"      protocol: {proto}\n      targetPort: {cport}\n"
                            for pname, cport, proto, sport in service.ports)
        select = ("    selector:\n" + "".join(f"      {k}: {v}\n" for k, v in selector)
                  if selector else "")
        labels = (f"    labels:\n      app: {selector[0][1]}\n" if selector else
                  "    labels:\n      component: apiserver\n      provider: kubernetes\n")
        out.append(
            f'- apiVersion: v1\n  kind: Service\n  metadata:\n'
            f'    creationTimestamp: "{stamp(service.created)}"\n{labels}    name: {name}\n'
            f"    namespace: {ns.name}\n    resourceVersion: {ids.version()}\n"
            f"    selfLink: /api/v1/namespaces/{ns.name}/services/{name}\n"
            f"    uid: {service.uid}\n  spec:\n    clusterIP: {service.ip or 'None'}\n"
            f"    ports:\n{port_text}{select}    sessionAffinity: None\n    type: ClusterIP\n"
            "  status:\n    loadBalancer: {}\n")
    return out
