"""br0 as OpenShift 3.11's node lays it out (SetupOVS): fail_mode secure, OpenFlow13, the
HostSubnet's datapath ID, vxlan0 at ofport 1 (`remote_ip=flow, key=flow`), tun0 at ofport 2,
each pod's port at its own ofport.  The port numbers are `topology.model`'s, which the
compiled flows use too.

`node_bridge_args` is that layout as ovs-vsctl arguments, for every bridge the lab builds:
the emulated cluster's real br0 (`datapath_type=netdev`, tun0 an internal port) and the
trace-only bridges of `add_node_bridge` (dummy datapath and ports, no kernel devices).

Findings the trace-only bridges rely on (OVS 3.1, userspace only):

* Interface names are unique per OVS instance (the schema indexes Interface.name), so several
  node bridges in one instance cannot all hold `vxlan0`/`tun0`/`vethX`; see
  `add_node_bridge` for the naming rule.
* A real `type=vxlan` port with `remote_ip=flow,key=flow` works on a dummy bridge.  Two such
  ports in one instance collide ("attempting to add tunnel port with same config") unless
  their `local_ip` differs, so `add_node_bridge` sets `local_ip=<host_ip>`.
* With native (userspace) tunnelling, `output:1` to the vxlan port needs a route and a
  neighbour entry and then re-enters the routing bridge's own pipeline: traces end in
  "native tunnel routing failed / drop".  Turning the dummy backer's `tnl_push_pop` feature
  off makes OVS use "kernel-style" tunnel output instead, and the trace then says exactly what
  a test wants: `set(tunnel(tun_id=0x0,src=...,dst=192.168.108.111,...)),4789`.
* A trace input with `tun_src=` but no `tun_dst=` still matches `tun_src` flows, although
  OVS's "Flow:" line then omits the tunnel fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.ovs.ovscommands import OvsCommandError, OvsError
from controller.ovs.privateovs import PrivateOvs
from controller.ovs.trace import LOCAL_OFPORT
from topology.model import TUN0_OFPORT, VXLAN_OFPORT

__all__ = ["LOCAL_OFPORT", "TUN0_OFPORT", "VXLAN_OFPORT", "NodeBridge", "add_node_bridge",
           "node_bridge_args"]

RESERVED_OFPORTS = (VXLAN_OFPORT, TUN0_OFPORT, LOCAL_OFPORT)


def node_bridge_args(bridge: str, datapath_id: int, *, datapath_type: str, vxlan_port: int,
                     tun0_type: str, vxlan_name: str = "vxlan0", tun0_name: str = "tun0",
                     local_ip: str | None = None, mtu: int | None = None) -> list[str]:
    """ovs-vsctl arguments (one transaction) creating `bridge` with vxlan0 and tun0."""
    args = ["--", "add-br", bridge,
            "--", "set", "bridge", bridge, f"datapath_type={datapath_type}",
            "fail_mode=secure", "protocols=OpenFlow13",
            f"other-config:datapath-id={datapath_id:016x}",
            "--", "add-port", bridge, vxlan_name,
            "--", "set", "interface", vxlan_name, "type=vxlan", "options:remote_ip=flow",
            "options:key=flow", f"options:dst_port={vxlan_port}",
            f"ofport_request={VXLAN_OFPORT}"]
    if local_ip:
        args.append(f"options:local_ip={local_ip}")
    args += ["--", "add-port", bridge, tun0_name,
             "--", "set", "interface", tun0_name, f"type={tun0_type}",
             f"ofport_request={TUN0_OFPORT}"]
    if mtu is not None:
        args.append(f"mtu_request={mtu}")
    return args


@dataclass
class NodeBridge:
    """What `add_node_bridge` built: OpenFlow port numbers and the real interface names."""

    bridge: str
    datapath_id: int
    ofports: dict[str, int]  # logical name ("vxlan0", "tun0", pod port) -> ofport
    port_names: dict[str, str]  # logical name -> interface name in this OVS instance
    host_ip: str | None = None


def _check_pod_ports(pod_ports: dict[str, int]) -> None:
    for name, ofport in pod_ports.items():
        if name in ("vxlan0", "tun0"):
            raise ValueError(f"pod port name {name!r} is reserved")
        if ofport in RESERVED_OFPORTS or not 0 < ofport < 0xff00:
            raise ValueError(f"pod port {name!r}: ofport {ofport} is reserved or invalid")
    if len(set(pod_ports.values())) != len(pod_ports):
        raise ValueError(f"duplicate pod ofports in {pod_ports}")


def add_node_bridge(ovs: PrivateOvs, bridge: str, datapath_id: int, pod_ports: dict[str, int],
                    vxlan_port: int = 4789, host_ip: str | None = None,
                    port_name_prefix: str | None = None) -> NodeBridge:
    """Create one emulated node's br0 on the dummy datapath (trace-only, no kernel devices).

    Ports: vxlan0 = ofport 1 (real type=vxlan, remote_ip=flow, key=flow, dst_port,
    local_ip=host_ip), tun0 = ofport 2, each pod port at its ofport (type=dummy).
    Interface names are unique per OVS instance, so: port_name_prefix=None keeps the real
    names if none is taken yet in this instance, otherwise names every port
    "<bridge>-<name>"; pass a string to force a prefix ("" = real names or fail).
    Traces and flows only use ofport numbers, so names matter only for humans.
    Two bridges' vxlan ports may coexist only if their host_ip (local_ip) differ.
    """
    if not ovs.dummy:
        raise OvsError("add_node_bridge needs a dummy-enabled instance (dummy=True)")
    _check_pod_ports(pod_ports)
    logical = ["vxlan0", "tun0", *pod_ports]
    if port_name_prefix is None:
        port_name_prefix = f"{bridge}-" if ovs.interface_names() & set(logical) else ""
    names = {n: port_name_prefix + n for n in logical}
    ofports = {"vxlan0": VXLAN_OFPORT, "tun0": TUN0_OFPORT, **pod_ports}

    args = node_bridge_args(bridge, datapath_id, datapath_type="dummy", vxlan_port=vxlan_port,
                            tun0_type="dummy", vxlan_name=names["vxlan0"],
                            tun0_name=names["tun0"], local_ip=host_ip)
    for n in pod_ports:
        args += ["--", "add-port", bridge, names[n],
                 "--", "set", "interface", names[n], "type=dummy",
                 f"ofport_request={ofports[n]}"]
    if bridge in ovs.vsctl("list-br").split():
        raise OvsError(f"bridge {bridge} already exists in this instance")
    try:
        hint = ("hint: two vxlan ports in one OVS instance need distinct host_ip "
                "(options:local_ip)")
        try:
            ovs.vsctl(*args)
        except OvsCommandError as e:
            if "File exists" in e.stderr:
                e.args = (f"{e.args[0]}\n{hint}",)
            raise
        # Kernel-style tunnel output: traces then show set(tunnel(...)) instead of trying
        # to route the encapsulated packet (see module docstring). Per backer, idempotent.
        ovs.appctl("dpif/set-dp-features", bridge, "tnl_push_pop", "false")
        got = ovs.ofports(bridge)
        for n in logical:
            if got.get(names[n]) != ofports[n]:
                error = ovs.vsctl("get", "interface", names[n], "error").strip()
                raise OvsError(f"{bridge}: {names[n]} got ofport {got.get(names[n])}, "
                               f"wanted {ofports[n]}: {error}"
                               + (f"\n{hint}" if n == "vxlan0" else ""))
    except BaseException:
        ovs.del_bridge(bridge)  # leave no half-built bridge behind
        raise
    return NodeBridge(bridge, datapath_id, ofports, names, host_ip)
