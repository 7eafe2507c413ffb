"""An osdn cluster as a Mininet network: Topo, Node/Host/Controller classes and the build.

Run only inside the sandbox of `mininet/run` (its own network, mount and PID namespaces with a
private OVS at OVS's default paths); `require_sandbox()` refuses anything else, because
Mininet's clean-up kills processes and deletes bridges machine-wide.

What a topology YAML becomes (`OsdnTopo`):

* every HostSubnet -> an `OsdnNode`: a Mininet *switch* in its own network namespace running
  its own ovsdb-server + ovs-vswitchd, started by `scripts/ovs-start` (the container's start-up
  script): br-phy holding the node's uplink with the node IP (OVS's userspace-tunnelling
  pattern), br0 as 3.11's SetupOVS builds it (vxlan0 = 1, tun0 = 2, the HostSubnet's
  datapath ID, fail_mode secure), the pods' ports at their ofports, and the node's host side
  (`controller.hostside`: tun0 address and routes, iptables). One OVS instance per node gives
  each node its own tunnel endpoint, kernel routing table and neighbour cache, exactly as on
  a real cluster (and as `osdn cluster up` does);
* the underlay -> `u0`, Mininet's own `OVSBridge` (standalone, userspace datapath) in the
  sandbox's root namespace, linked to every node's uplink by a `TCLink` (so delay, loss and
  bandwidth are Mininet link options) and holding the controller's address on its LOCAL port;
  where the kernel lacks sch_netem (these machines), delay and loss are done by a
  `DelayLine` node inserted into each uplink, bandwidth still by the TCLink's htb;
* every pod with an ofport -> a `PodHost` (a Mininet Host) whose eth0 is linked to its node,
  with the pod's IP, 0a:58 MAC, MTU and openshift-sdn's routes;
* the controller -> `OsdnController`, a Mininet Controller running
  `osken-manager controller.app` from this interpreter's environment on a copy of the topology.

Mininet's own `pingall`, `iperf`, `link`, `dpctl`, `net`, `nodes` work on the result;
`OsdnMininet` only fixes what does not work here (see its docstring).

The parts: `sandbox` (the sandbox check, Debian's Mininet imported), `names` (Mininet names),
`nodes` (the node, underlay, pod, delay-line and controller classes), `network` (the Topo and
bringing a cluster up), `traffic` (expected reachability from `lab.policy_oracle`, pings, the
CLI).  Experiments import everything from here (`from osdn_topo import ...`, with mininet/ on
sys.path).
"""

from .sandbox import (
    DEBIAN_MININET,
    OVS_START,
    REPO,
    SANDBOX_DIR,
    SANDBOX_MARK,
    SandboxError,
    import_mininet,
    require_sandbox,
)

import_mininet()  # before anything below imports from Debian's `mininet`

from mininet.cli import CLI  # noqa: E402
from mininet.log import info, output, setLogLevel  # noqa: E402

from topology.model import Pod  # noqa: E402

from .names import mininet_names, pod_base_name  # noqa: E402
from .network import (  # noqa: E402
    PLUGINS,
    OsdnMininet,
    OsdnNet,
    OsdnTopo,
    add_cluster_arguments,
    copy_topology,
    osdn_network,
)
from .nodes import (  # noqa: E402
    CONTROLLER_PORT,
    DelayLine,
    NodeSpec,
    OsdnController,
    OsdnNode,
    PodHost,
    Underlay,
    netem_available,
)
from .traffic import RULES, expected_reachable, ping_pairs, run_cli  # noqa: E402

__all__ = [
    "CLI", "CONTROLLER_PORT", "DEBIAN_MININET", "OVS_START", "PLUGINS", "REPO", "RULES",
    "SANDBOX_DIR", "SANDBOX_MARK", "DelayLine", "NodeSpec", "OsdnController", "OsdnMininet",
    "OsdnNet", "OsdnNode", "OsdnTopo", "Pod", "PodHost", "SandboxError", "Underlay",
    "add_cluster_arguments", "copy_topology", "expected_reachable", "import_mininet", "info",
    "mininet_names", "netem_available", "osdn_network", "output", "ping_pairs",
    "pod_base_name", "require_sandbox", "run_cli", "setLogLevel",
]
