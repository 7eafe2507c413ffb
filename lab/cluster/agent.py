"""The emulated nodes' host-side agent: what 3.11's node process does besides flows.

The controller keeps every br0 up to date; on a real node the openshift-sdn process also
keeps the host side (egress-IP addresses and SNAT, service DNAT) in step with the cluster.
This agent does that for every emulated node: it watches the topology files and re-applies
`controller.hostside` (idempotent) whenever they change.  `osdn cluster up` starts it;
`osdn cluster down` stops it.

    python -m lab.cluster.agent STATE_DIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from controller.watch import TopologyWatcher
from lab.cluster.build import apply_node_host_side
from lab.cluster.state import load_cluster


def run(state_dir: Path, interval: float = 0.5) -> None:
    cluster = load_cluster(state_dir)
    from topology.model import PLUGIN_NAMES
    plugin = PLUGIN_NAMES[cluster["plugin"]] if cluster.get("plugin") else None
    watcher = TopologyWatcher(cluster["topology"], plugin)
    watcher.poll()  # the topology `up` applied
    while True:
        time.sleep(interval)
        result = watcher.poll()
        if result is None:
            continue
        if result.topology is None:
            print(f"topology invalid, host side left as it was: {len(result.issues)} issue(s)",
                  flush=True)
            continue
        for host, info in cluster["nodes"].items():
            if result.topology.host_subnet(host) is None:
                continue
            try:
                apply_node_host_side(result.topology, host, info["netns"],
                                     int(cluster["underlay"].split("/")[1]))
            except Exception as error:  # keep serving the other nodes
                print(f"{host}: host side not applied: {error}", flush=True)
        print(f"host side re-applied after {', '.join(result.changed_files)}", flush=True)


if __name__ == "__main__":
    run(Path(sys.argv[1]))
