"""`osdn demo`: check the example cluster, render every node, load the flows into a private
real OVS and run the cluster's acceptance traces (T1-T8 for the seed cluster)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from controller.compiler import Settings
from controller.dns import no_dns
from controller.privateovs import PrivateOvs
from controller.tracelab import TraceLab, build_lab, check_case, describe_final, load_cases


def run_demo(path: str, keep: bool = False) -> int:
    from topology.load import TopologyError, load_topology
    from topology.summary import summarize
    cluster = Path(path)
    print(f"== osdn check {cluster}")
    try:
        topology = load_topology([cluster])
    except TopologyError as error:
        print(error, file=sys.stderr)
        return 1
    print(summarize(topology))
    directory = tempfile.mkdtemp(prefix="osdn-demo-")
    ovs = PrivateOvs(directory, keep_dir=keep).start()
    try:
        print(f"\n== private OVS in {directory}: one bridge per node, flows from osdn render")
        lab = build_lab(ovs, topology, Settings(resolver=no_dns))
        for host, bridge in lab.bridges.items():
            print(f"  {host:24} {bridge:14} {len(lab.flows[host].flows):4} flows loaded "
                  f"({len(ovs.dump_flows(bridge))} on the bridge)")
        traces = cluster / "traces.yaml"
        return _run_traces(lab, traces) if traces.exists() else 0
    finally:
        if keep:
            print(f"\nkept: OVS pids {ovs.pids}; stop with kill, directory {directory}")
        else:
            ovs.stop()


def _run_traces(lab: TraceLab, traces: Path) -> int:
    failures = 0
    print(f"\n== acceptance traces ({traces})")
    cases = load_cases(traces)
    for case in cases:
        result = lab.trace(case.node, case.flow)
        problems = check_case(case, result)
        failures += bool(problems)
        print(f"\n{case.name} on {case.node}: {case.flow}\n  {case.description}")
        print(f"  path:  {' -> '.join(str(t) for t in result.tables)}")
        for step in result.steps:
            print(f"    {step.table:>3}. {step.rule}")
        print(f"  final: {describe_final(result)}")
        print("  " + ("PASS" if not problems else "FAIL: " + "; ".join(problems)))
    print(f"\n{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0
