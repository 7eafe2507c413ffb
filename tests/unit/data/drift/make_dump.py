"""Remake node2-multitenant.dump (run by hand, as root, with Open vSwitch installed):

    python -m tests.unit.data.drift.make_dump > tests/unit/data/drift/node2-multitenant.dump

How the dump is made (see README.md beside it):
1. the seed cluster under ovs-multitenant, plus one more pod on node2.ocp.cn
   (default/old-web-0, 10.130.0.7, ofport 5) that stands for a pod deleted since;
2. node2.ocp.cn's render loaded into br0 of a private OVS instance (dummy datapath, the
   node's port layout) with `ovs-ofctl --bundle add-flows`, and dumped back with
   `ovs-ofctl -O OpenFlow13 --no-names dump-flows br0`: the text is OVS's own;
3. then edited as 3.11's node would show it: cookie 0x0 on every flow except the HostSubnet
   flows of tables 10, 50 and 90, which carry the first 4 bytes of SHA-256 of the
   HostSubnet's metadata.uid; durations and counters of a node up for a day;
4. one flow removed: table 70 of pod default/tomcat-nginx-6cf8c89cd7-lw4zd (10.130.0.6).
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import replace
from pathlib import Path

from controller.compiler import Settings, compile_node
from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from topology.load import load_topology
from topology.model import Plugin

SEED = Path(__file__).resolve().parents[4] / "examples" / "seed-cluster"
NODE = "node2.ocp.cn"
REMOVED = "table=70, n_packets={}, n_bytes={}, priority=100,ip,nw_dst=10.130.0.6 "


def main() -> None:
    topology = load_topology([str(SEED)], plugin=Plugin.MULTITENANT)
    web = next(p for p in topology.pods if p.name.startswith("web-"))
    stale = replace(web, name="old-web-0", uid="0", ip=type(web.ip)("10.130.0.7"),
                    interface="vethdeadbeef", ofport=5)
    topology = replace(topology, pods=(*topology.pods, stale))
    hs = next(h for h in topology.host_subnets if h.host == NODE)
    cookies = {str(h.host_ip): hashlib.sha256(h.uid.encode()).hexdigest()[:8]
               for h in topology.host_subnets}
    ports = {p.interface or f"pod{p.ofport}": p.ofport
             for p in topology.pods if p.node == NODE and p.ofport}
    with PrivateOvs() as ovs:
        add_node_bridge(ovs, "br0", hs.datapath_id, ports, host_ip=str(hs.host_ip))
        flows = compile_node(topology, NODE, Settings(resolver=lambda name: ()))
        ovs.load_flows("br0", flows.to_ofctl())
        text = ovs.ofctl("br0", "--no-names", "dump-flows")
    out = []
    for n, line in enumerate(text.splitlines()):
        table = re.search(r"table=(\d+)", line)
        remote = re.search(r"tun_src=([\d.]+)|->tun_dst", line)
        cookie = "0x0"
        if table and table.group(1) in ("10", "50", "90") and remote:
            ip = remote.group(1) or re.findall(r"set_field:([\d.]+)->tun_dst", line)[0]
            cookie = "0x" + cookies[ip].lstrip("0")
        line = re.sub(r"cookie=0x[0-9a-f]+", f"cookie={cookie}", line)
        packets = (n * 7919) % 4000 if "drop" not in line else 0
        line = re.sub(r"duration=[0-9.]+s", f"duration={86400 + n * 0.137:.3f}s", line)
        line = line.replace("n_packets=0, n_bytes=0",
                            f"n_packets={packets}, n_bytes={packets * 98}")
        if "table=70," in line and "nw_dst=10.130.0.6 " in line:
            continue  # the missing flow
        out.append(line)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
