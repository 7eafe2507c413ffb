"""The seed cluster's node2, as the controller tests attach it (datapath id = hostIP)."""

from pathlib import Path

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"
NODE2 = "node2.ocp.cn"
NODE2_DPID, NODE2_IP = 0xC0A86C70, "192.168.108.112"
NODE2_PORTS = {"veth92727375": 3, "vethd83c05d3": 4}
NODE2_SYNC = r"node2\.ocp\.cn.*in sync"

# A pod the seed cluster lacks, on node2 (its flows land in table 70, POD_TABLE), and a change
# that needs no table-70 flow (a second Service: its flows are in table 60). The error tests
# make the switch refuse table 70, then check the pod is retried and the Service applied.
POD_TABLE = 70
NEW_POD_IP, NEW_POD_PORT, NEW_POD_OFPORT = "10.130.0.7", "vethlimit01", 5

NEW_POD = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: refused-pod
  namespace: default
  uid: 7e57c0de-0000-4000-8000-0000000000e1
  creationTimestamp: "2019-03-20T00:00:00Z"
  annotations:
    osdn.dev/interface: {NEW_POD_PORT}
    osdn.dev/ofport: "{NEW_POD_OFPORT}"
spec:
  nodeName: {NODE2}
status:
  podIP: {NEW_POD_IP}
"""

# A change that needs no table-70 flow: a second Service (its flows are in table 60).
NEW_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: after-error-service
  namespace: default
  uid: 7e57c0de-0000-4000-8000-0000000000e2
  creationTimestamp: "2019-03-20T00:00:00Z"
spec:
  clusterIP: 172.30.7.7
  ports:
  - port: 9090
    protocol: TCP
    targetPort: 9090
  type: ClusterIP
"""
