"""The seed cluster's node2, as the controller tests attach it (datapath id = hostIP)."""

from pathlib import Path

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"
NODE2 = "node2.ocp.cn"
NODE2_DPID, NODE2_IP = 0xC0A86C70, "192.168.108.112"
NODE2_PORTS = {"veth92727375": 3, "vethd83c05d3": 4}
NODE2_SYNC = r"node2\.ocp\.cn.*in sync"
