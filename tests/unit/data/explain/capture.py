"""Capture the `ofproto/trace` and `dpif/show` texts `osdn explain` reads, for the pure tests
of tests/unit/test_explain.py.

    sudo .venv/bin/python tests/unit/data/explain/capture.py   (from the repository root)

Each case below is explained once on a private OVS (ScratchTracer: throw-away bridges loaded
with `compile_node`'s flows); every trace the walk asks for is written to <case>.json as
{host, flow, bridge, trace, dpif}: OVS's output as is.  The unit tests replay them, so the
walk, the cookie and register names and the sentences are tested without OVS; the sentences
they expect are written there from the clusters' objects and the reference traces.
Re-capture only on purpose (another OVS version, new cases) and review the tests again.
"""

from __future__ import annotations

import json
from pathlib import Path

from controller.compiler import Settings
from controller.explain import ScratchTracer, explain, explain_flow
from controller.ovs.trace import TraceResult
from topology.load import load_topology
from topology.model import PLUGIN_NAMES

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[3] / "examples"

# case -> (cluster, plugin, SRC, DST) or (cluster, plugin, "flow@HOST", SPEC)
CASES = {
    "seed-t1": ("seed-cluster", None, "default/tomcat-nginx-6cf8c89cd7-lw4zd",
                "default/web-76c94f7546-t8pfq"),
    "seed-t2-t3": ("seed-cluster", None, "default/tomcat-nginx-6cf8c89cd7-lw4zd",
                   "default/tomcat-7f646bb995-b8bhr"),
    "seed-t6": ("seed-cluster", None, "default/tomcat-nginx-6cf8c89cd7-lw4zd",
                "svc/default/tomcat-service"),
    "seed-t7-t8": ("seed-cluster", None, "kube-public/tomcat-nginx-6cf8c89cd7-6hhmf",
                   "external:192.168.108.1"),
    "seed-t4": ("seed-cluster", None, "flow@node1.ocp.cn",
                "in_port=1,tcp,tun_src=192.168.108.111,nw_dst=10.131.0.4,ct_state=trk"),
    "rich-mt-isolated": ("rich-cluster", "multitenant", "frontend/web-6d9b7f5c48-k7tqz",
                         "db/postgres-0:5432"),
    "rich-np-denied": ("rich-cluster", "networkpolicy", "analytics/reports-6b8d5c7f94-hx7rv",
                       "backend/api-58c4f7d9b6-zr4m9:8080"),
    "rich-mt-enp": ("rich-cluster", "multitenant", "frontend/web-6d9b7f5c48-k7tqz",
                    "external:8.8.8.8:53/udp"),
}


class Recorder:
    def __init__(self, inner: ScratchTracer) -> None:
        self.inner = inner
        self.calls: list[dict[str, str]] = []

    def trace(self, host: str, flow_spec: str) -> TraceResult:
        result = self.inner.trace(host, flow_spec)
        self.calls.append({"host": host, "flow": flow_spec, "bridge": result.bridge or "",
                           "trace": result.raw,
                           "dpif": self.inner.ovs.appctl("dpif/show")})
        return result


def main() -> None:
    for case, (cluster, plugin, src, dst) in CASES.items():
        topology = load_topology([EXAMPLES / cluster],
                                 plugin=PLUGIN_NAMES[plugin] if plugin else None)
        settings = Settings(resolver=lambda name: ())
        with ScratchTracer(topology, settings) as scratch:
            recorder = Recorder(scratch)
            if src.startswith("flow@"):
                explain_flow(topology, src[len("flow@"):], dst, recorder, settings)
            else:
                explain(topology, src, dst, recorder, settings)
        (HERE / f"{case}.json").write_text(json.dumps(recorder.calls, indent=1) + "\n")


if __name__ == "__main__":
    main()
