"""`osdn demo`: the seed article's cluster with real packets.

Checks the cluster, brings it up as an emulated cluster (`osdn cluster up`: a namespace and
an Open vSwitch per node, pods, an underlay and an external host) with its own controller,
waits until every br0 holds its pipeline, runs the acceptance traces on the real bridges,
then sends real traffic and replays the article's experiments.  Everything is removed at
the end unless --keep.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from controller.ovs.netns import in_netns
from lab.cluster import ops
from lab.cluster.build import ClusterBuilder
from lab.cluster.state import DEFAULT_DIR
from lab.prerequisites import DEMO_TOOLS, require
from lab.tracelab import check_case, describe_final, load_cases

RECEIVED = re.compile(r"Connection received on (\S+) ")


class Demo:
    def __init__(self, builder: ClusterBuilder) -> None:
        self.builder = builder
        self.plan = builder.plan
        self.failures: list[str] = []

    # ------------------------------------------------------------------ helpers

    def netns(self, target: str) -> str:
        return ops.netns_of(self.plan.to_json(), target)

    def run(self, target: str, *command: str, timeout: float = 10) -> str:
        proc = subprocess.run([*in_netns(self.netns(target)), *command],
                              capture_output=True, text=True, timeout=timeout)
        return proc.stdout + proc.stderr

    def spawn(self, target: str, *command: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*in_netns(self.netns(target)), *command],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def check(self, ok: bool, what: str) -> None:
        print(f"  {'PASS' if ok else 'FAIL'}: {what}")
        if not ok:
            self.failures.append(what)

    @staticmethod
    def collect(proc: subprocess.Popen[str], timeout: float = 5) -> str:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return out

    def pod(self, key_prefix: str) -> str:
        return next(key for key in self.plan.pods if key.startswith(key_prefix))

    def connect_and_see(self, client: str, server: str, ip: str, port: int,
                        message: str = "hello", answer: str = "") -> tuple[str | None, str, str]:
        """A TCP connection from `client` to ip:port, where `server` listens and sends
        `answer`: the source address the server saw, what it received, what came back."""
        listener = self.spawn(server, "sh", "-c", f"echo '{answer}' | nc -vn -l -p {port}")
        time.sleep(0.3)
        reply = subprocess.run([*in_netns(self.netns(client)), "nc", "-N", "-w", "3",
                                ip, str(port)], input=message + "\n", capture_output=True,
                               text=True, timeout=10).stdout
        out = self.collect(listener)
        seen = RECEIVED.search(out)
        return (seen.group(1) if seen else None), out, reply.strip()

    # ------------------------------------------------------------------ parts

    def traces(self, cases_file: Path) -> None:
        print(f"\n== the acceptance traces ({cases_file}) on the nodes' real br0")
        for case in load_cases(cases_file):
            result = self.builder.ovs[case.node].trace("br0", case.flow)
            problems = check_case(case, result)
            print(f"\n{case.name} on {case.node}: {case.flow}\n  {case.description}")
            print(f"  path:  {' -> '.join(str(t) for t in result.tables)}")
            for step in result.steps:
                print(f"    {step.table:>3}. {step.rule}")
            print(f"  final: {describe_final(result)}")
            self.check(not problems, f"{case.name} " + "; ".join(problems))

    def traffic(self) -> None:
        web, nginx = self.pod("default/web-"), self.pod("default/tomcat-nginx-")
        tomcat, public = self.pod("default/tomcat-7"), self.pod("kube-public/")
        pods, nodes = self.plan.pods, self.plan.nodes
        external = str(self.plan.external_ip)
        print("\n== real traffic")
        for title, target in (("pod to pod on one node (node2)", web),
                              ("pod to pod across nodes through VXLAN (node2 -> node1)", tomcat)):
            out = self.run(nginx, "ping", "-c", "2", "-W", "2", pods[target]["ip"])
            print(f"\n{title}: ping {pods[target]['ip']} from {nginx}\n"
                  + "\n".join("    " + line for line in out.strip().splitlines()[-2:]))
            self.check(" 0% packet loss" in out, title)

        node2_ip = nodes[pods[nginx]["node"]]["host_ip"]
        seen, _, _ = self.connect_and_see(nginx, "external", external, 9000)
        print(f"\nto the external host {external}: it sees the connection from {seen}")
        self.check(seen == node2_ip, f"external host sees node2's IP {node2_ip} (saw {seen})")

        service = next(s for s in self.builder.topology.services if s.cluster_ip is not None)
        port = service.ports[0].port
        backend = [k for k, p in pods.items() if k.startswith(f"{service.namespace}/")
                   and all(self._labels(k).get(a) == b for a, b in service.selector)]
        seen, got, reply = self.connect_and_see(nginx, backend[0], str(service.cluster_ip),
                                                port, "GET / from " + nginx,
                                                answer=f"200 OK from {backend[0]}")
        print(f"\nto Service {service.namespace}/{service.name} {service.cluster_ip}:{port} "
              f"from {nginx}: {reply!r} (the backend {pods[backend[0]]['ip']} saw the "
              f"connection from {seen}: iptables DNAT, then masquerade at tun0)")
        self.check("GET / from" in got and reply == f"200 OK from {backend[0]}",
                   "the service's ClusterIP is answered by its backend pod")

        egress = self._egress_ip(public)
        seen, _, _ = self.connect_and_see(public, "external", external, 9001)
        print(f"\nfrom {public} (kube-public, egress IP {egress}) to {external}: "
              f"the external host sees {seen}")
        self.check(seen == egress, f"external host sees the egress IP {egress} (saw {seen})")

    def _labels(self, pod_key: str) -> dict[str, str]:
        pod = next(p for p in self.builder.topology.pods if p.key == pod_key)
        return pod.label_map

    def _egress_ip(self, pod_key: str) -> str | None:
        namespace = pod_key.split("/")[0]
        spaces = [nn for nn in self.builder.topology.net_namespaces if nn.name == namespace]
        return str(spaces[0].egress_ips[0]) if spaces and spaces[0].egress_ips else None

    def experiments(self) -> None:
        web, nginx = self.pod("default/web-"), self.pod("default/tomcat-nginx-")
        tomcat = self.pod("default/tomcat-7")
        pods, external = self.plan.pods, str(self.plan.external_ip)
        print("\n== the article's experiments")
        listener = self.spawn(web, "nc", "-l", "127.0.0.1", "7000")
        time.sleep(0.3)
        subprocess.run([*in_netns(self.netns(web)), "nc", "-N", "127.0.0.1",
                        "7000"], input="over localhost\n", capture_output=True, text=True)
        got = self.collect(listener).strip()
        print(f"\ntwo processes in {web} talk over 127.0.0.1 (a pod is one network namespace):"
              f" received {got!r}")
        self.check(got == "over localhost", "two processes in one pod share localhost")

        for title, dest, hops in (("across nodes", pods[tomcat]["ip"], 1),
                                  ("to the outside", external, 2)):
            out = self.run(nginx, "traceroute", "-n", "-q", "1", "-w", "1", "-m", "5", dest)
            lines = [line for line in out.splitlines()[1:] if line.strip()]
            print(f"\ntraceroute {title} ({dest}) from {nginx}:\n"
                  + "\n".join("    " + line for line in lines))
            self.check(len(lines) == hops and dest in lines[-1],
                       f"traceroute {title}: {hops} hop(s)")

        node = pods[nginx]["node"]
        node_ip = self.plan.nodes[node]["host_ip"]
        dumps = [self.spawn(node, "tcpdump", "-n", "-l", "-c", "1", "-i", ifname,
                            "tcp dst port 9002 and tcp[tcpflags] & tcp-syn != 0")
                 for ifname in ("tun0", "br-phy")]
        time.sleep(1.0)
        self.connect_and_see(nginx, "external", external, 9002)
        tun0, uplink = (self.collect(d) for d in dumps)
        print(f"\ntcpdump on {node} while {nginx} connects to {external}:9002")
        for name, out in (("tun0", tun0), ("uplink (br-phy)", uplink)):
            line = next((seen for seen in out.splitlines() if " > " in seen), "(nothing)")
            print(f"    {name:16} {line}")
        self.check(pods[nginx]["ip"] in tun0 and node_ip in uplink,
                   "the source address changes from the pod's to the node's at tun0")


def run_demo(path: str, keep: bool = False, state_dir: Path = DEFAULT_DIR,
             prefix: str = "osdn") -> int:
    """The demo; 0 when every check passed.  Raises MissingPrerequisites (a LabUsageError)
    before doing anything when this machine lacks what it needs."""
    from topology.load import TopologyError, load_topology
    from topology.summary import summarize
    require(DEMO_TOOLS)
    cluster = Path(path)
    print(f"== osdn check {cluster}")
    try:
        topology = load_topology([cluster])
    except TopologyError as error:
        print(error, file=sys.stderr)
        return 1
    print(summarize(topology))
    builder = ClusterBuilder(topology, [str(cluster)], state_dir, prefix)
    print(f"\n== osdn cluster up {cluster} (state in {state_dir})")
    try:
        builder.up()
        counts = builder.wait_in_sync()
        for host, count in counts.items():
            print(f"  {host:24} br0 in sync with the controller: {count} flows")
        demo = Demo(builder)
        traces = cluster / "traces.yaml"
        if traces.exists():
            demo.traces(traces)
        demo.traffic()
        demo.experiments()
    except BaseException:
        if not keep:
            ops.down(state_dir, log=lambda message: None)
        raise
    if keep:
        print(f"\nkept: try `osdn cluster status`, `osdn cluster exec {demo.pod('default/web')}"
              " -- ip addr`, and `osdn cluster down` when done")
    else:
        ops.down(state_dir)
    verdict = "all checks passed" if not demo.failures else "FAILED: " + "; ".join(demo.failures)
    print(f"\n{verdict}")
    return 1 if demo.failures else 0

