"""`osdn cluster down|status|exec|trace`: work on the cluster recorded in the state directory."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from controller.ovs.netns import in_netns
from controller.ovs.ovscommands import OvsCommands
from controller.ovs.pids import pid_alive
from controller.ovs.trace import TraceResult
from lab.cluster.state import Ledger, load_cluster
from lab.errors import LabUsageError
from topology.load import load_topology
from topology.model import Topology


def down(state_dir: Path, log: Any = print) -> int:
    ledger = Ledger(state_dir)
    entries = ledger.entries()
    if not entries:
        log(f"no emulated cluster recorded in {state_dir}; nothing to do")
        return 0
    ledger.teardown(log)
    log(f"removed {sum(e['kind'] == 'netns' for e in entries)} namespaces and "
        f"{sum(e['kind'] == 'process' for e in entries)} processes recorded in {state_dir}")
    return 0


def node_ovs(cluster: dict[str, Any], host: str) -> OvsCommands:
    return OvsCommands(cluster["nodes"][host]["ovs_dir"])


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def status(state_dir: Path) -> str:
    cluster = load_cluster(state_dir)
    lines = [f"cluster in {state_dir}: underlay {cluster['underlay']}, external host "
             f"{cluster['external_ip']}, controller {cluster['controller_target']}"]
    for name in ("controller", "agent"):
        pid = _pid(state_dir / f"{name}.pid")
        if pid is not None:
            lines.append(f"  {name} pid {pid}: {'running' if pid_alive(pid) else 'NOT RUNNING'} "
                         f"(log {state_dir / (name + '.log')})")
    for host, info in cluster["nodes"].items():
        ovs = node_ovs(cluster, host)
        daemons = [name for name in ("ovsdb-server", "ovs-vswitchd")
                   if (p := _pid(Path(info["ovs_dir"]) / f"{name}.pid")) and pid_alive(p)]
        try:
            flows = f"{len(ovs.dump_flows('br0'))} flows on br0"
        except Exception as error:  # a dead vswitchd is what status must show
            flows = f"br0 unreachable ({str(error).splitlines()[0]})"
        lines.append(f"  node {host:24} {info['host_ip']:16} netns {info['netns']:12} "
                     f"{'+'.join(daemons) or 'OVS NOT RUNNING'}; {flows}")
    for key, info in cluster["pods"].items():
        lines.append(f"  pod  {key:40} {info['ip']:15} on {info['node']} port "
                     f"{info['interface']} ({info['ofport']}) netns {info['netns']}")
    return "\n".join(lines)


def netns_of(cluster: dict[str, Any], target: str) -> str:
    if target == "external":
        return f"{cluster['prefix']}-x"
    if target in cluster["nodes"]:
        return str(cluster["nodes"][target]["netns"])
    if target in cluster["pods"]:
        return str(cluster["pods"][target]["netns"])
    known = ", ".join(["external", *cluster["nodes"], *cluster["pods"]])
    raise LabUsageError(f"{target!r} is not a pod (NAMESPACE/NAME), a node or 'external'; "
                   f"known: {known}")


def exec_in(state_dir: Path, target: str, command: list[str]) -> int:
    netns = netns_of(load_cluster(state_dir), target)
    return subprocess.run([*in_netns(netns), *command]).returncode


def topology_of(cluster: dict[str, Any]) -> Topology:
    return load_topology(cluster["topology"])


def trace_spec(topology: Topology, cluster: dict[str, Any], pod_key: str, dest: str) -> str:
    """The ofproto/trace flow for a TCP packet from the pod to DEST (pod, ns/svc:port, IP)."""
    info = cluster["pods"][pod_key]
    hs = topology.host_subnet(info["node"])
    assert hs is not None
    port = 80
    if dest in cluster["pods"]:
        ip = cluster["pods"][dest]["ip"]
    elif ":" in dest and "/" in dest:
        name, _, port_text = dest.rpartition(":")
        namespace, _, svc_name = name.partition("/")
        svc = next((s for s in topology.services
                    if (s.namespace, s.name) == (namespace, svc_name)), None)
        if svc is None or svc.cluster_ip is None:
            raise LabUsageError(f"no Service {name} with a ClusterIP")
        if not port_text.isdigit():
            raise LabUsageError(f"{dest!r}: the port after ':' must be a number")
        ip, port = str(svc.cluster_ip), int(port_text)
    else:
        try:
            ip = str(IPv4Address(dest))
        except ValueError:
            raise LabUsageError(f"{dest!r} is not a pod (NAMESPACE/NAME), a service "
                                "(NAMESPACE/NAME:PORT) or an IPv4 address") from None
    return (f"in_port={info['ofport']},tcp,dl_src={info['mac']},dl_dst={hs.tun0_mac},"
            f"nw_src={info['ip']},nw_dst={ip},tcp_dst={port},ct_state=new|trk")


def trace(state_dir: Path, pod_key: str, dest: str) -> TraceResult:
    cluster = load_cluster(state_dir)
    if pod_key not in cluster["pods"]:
        raise LabUsageError(f"no pod {pod_key!r}; known: {', '.join(cluster['pods'])}")
    spec = trace_spec(topology_of(cluster), cluster, pod_key, dest)
    return node_ovs(cluster, cluster["pods"][pod_key]["node"]).trace("br0", spec)

