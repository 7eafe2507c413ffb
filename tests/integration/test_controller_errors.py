"""OpenFlow errors from a real switch (issue 3): mapped back to the flow that caused them,
the bundle discarded, the bridge keeping its old flows, the controller running on.

A real, valid flow that OVS refuses: table 70 (pod IP -> port) gets an OVSDB `Flow_Table`
with `flow_limit` = its current number of flows and `overflow_policy=refuse`.  OVS checks the
limit when the bundle is committed, not when a message is added, so it answers the commit
with `OFPFMFC_TABLE_FULL` for the offending bundle-add (its xid) followed by the ONF error
`OFPBFC_MSG_FAILED` for the commit request; nothing of the bundle is applied.  This is what
`ovs-ofctl -O OpenFlow13 --bundle add-flows` prints for the same situation:

    Error OFPFMFC_TABLE_FULL for: OFPT_FLOW_MOD (OF1.3) (xid=0x7): ADD table:70 ...
    Error OFPBFC_MSG_FAILED for: ONFT_BUNDLE_CONTROL (OF1.3) (xid=0xa): ... COMMIT_REQUEST
"""

from __future__ import annotations

import re
import time

import pytest

from controller.ovs.nodebridge import add_node_bridge
from controller.ovs.privateovs import PrivateOvs
from lab.harness import (
    add_pod_port,
    assert_durations_kept,
    attach_controller,
    copy_cluster,
    flow_diff,
    flow_durations,
    free_port,
    normalized,
    reference_flows,
    scrape_metrics,
    wait_for_flows,
    wait_until,
    write_atomic,
)
from tests.support.seed_node import (
    NEW_POD,
    NEW_POD_IP,
    NEW_POD_OFPORT,
    NEW_POD_PORT,
    NEW_SERVICE,
    NODE2,
    NODE2_DPID,
    NODE2_IP,
    NODE2_PORTS,
    POD_TABLE,
    SEED,
)

pytestmark = pytest.mark.ovs


def metric_samples(port: int, name: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample of metric family `name` (any suffix)."""
    return {series: value
            for series, value in scrape_metrics(f"http://127.0.0.1:{port}/metrics").items()
            if series.startswith(name)}


def switch_errors(port: int, node: str) -> dict[str, float]:
    """osdn_switch_errors_total samples of `node` (label text -> count)."""
    return {key: value for key, value in metric_samples(port, "osdn_switch_errors_total").items()
            if f'node="{node}"' in key}


def limit_table(ovs: PrivateOvs, bridge: str, table: int, limit: int) -> None:
    ovs.vsctl("--", "--id=@ft", "create", "Flow_Table", f"flow_limit={limit}",
              "overflow_policy=refuse", "--", "set", "Bridge", bridge,
              f"flow_tables:{table}=@ft")


def unlimit_table(ovs: PrivateOvs, bridge: str, table: int) -> None:
    ovs.vsctl("remove", "Bridge", bridge, "flow_tables", str(table))


def test_switch_error_discards_the_bundle_and_names_the_flow(
        node_ovs, ref_ovs, make_controller, tmp_path) -> None:
    ovs = node_ovs
    cluster = copy_cluster(SEED, tmp_path / "cluster")
    br = "br0"
    add_node_bridge(ovs, br, NODE2_DPID, dict(NODE2_PORTS), host_ip=NODE2_IP,
                    port_name_prefix="")
    ports = dict(NODE2_PORTS)
    expected = reference_flows(cluster, NODE2, ref_ovs, ports)
    metrics_port = free_port()
    ctl = make_controller({"topology": cluster, "watch": True, "watch_interval": 0.2,
                           "metrics_port": metrics_port}).start()
    ctl.wait_listening()
    attach_controller(ovs, br, ctl.port)
    wait_for_flows(ovs, br, expected, ctl, what="first connect")
    ctl.wait_for_log(r"node2\.ocp\.cn.*in sync")

    # Table 70 may hold no more flows than it has now: one per pod of node2 plus the drop.
    in_table = ovs.dump_flows(br, table=POD_TABLE)
    assert len(in_table) == len(ports) + 1, in_table
    limit_table(ovs, br, POD_TABLE, len(in_table))
    errors_before = sum(switch_errors(metrics_port, NODE2).values())

    # The new pod's port appears first (no pod object yet: nothing to do, nothing sent) ...
    add_pod_port(ovs, br, NEW_POD_PORT, NEW_POD_OFPORT)
    ports[NEW_POD_PORT] = NEW_POD_OFPORT
    time.sleep(1.0)
    assert normalized(ovs, br) == expected, flow_diff(normalized(ovs, br), expected)
    time.sleep(0.5)
    before = (time.monotonic(), flow_durations(ovs, br))
    failures_logged = len(ctl.log_lines(r"(?i)reject|fail"))

    # ... then the pod object: its flows (tables 20, 25, 40, 70, ...) go in one bundle, and
    # the table-70 one is refused at commit.
    write_atomic(cluster / "refused-pod.yaml", NEW_POD)
    with_pod = reference_flows(cluster, NODE2, ref_ovs, ports)
    new_lines = set(with_pod) - set(expected)
    assert any(f"table={POD_TABLE}," in line and NEW_POD_IP in line for line in new_lines)
    assert any("table=20," in line and NEW_POD_IP in line for line in new_lines), new_lines

    # The log names the refused flow, in ovs-ofctl text, with the error.
    def refused_lines() -> list[str]:
        return [line for line in ctl.log_text().splitlines()
                if f"table={POD_TABLE}" in line and f"nw_dst={NEW_POD_IP}" in line
                and "TABLE_FULL" in line]
    found = wait_until(refused_lines, 20, 0.2,
                       lambda: "no log line names the refused table-70 flow of "
                               f"{NEW_POD_IP} with OFPFMFC_TABLE_FULL\n" + ctl.log_tail(60))
    assert re.search(r"OFPFMFC_TABLE_FULL", found[0]), found
    assert len(ctl.log_lines(r"(?i)reject|fail")) > failures_logged

    # Nothing half-applied: the bridge holds exactly its old flows, untouched (durations),
    # none of the new pod's (its table-20 ARP/IP flows included).
    time.sleep(1.0)
    assert normalized(ovs, br) == expected, flow_diff(normalized(ovs, br), expected)
    assert not [line for line in normalized(ovs, br) if NEW_POD_IP in line]
    t1, after = time.monotonic(), flow_durations(ovs, br)
    assert_durations_kept(before[1], after, t1 - before[0], set(expected))
    assert ctl.running, ctl.log_tail()

    # The switch-error metric counted it (by error type).
    errors = switch_errors(metrics_port, NODE2)
    assert sum(errors.values()) > errors_before, errors
    assert any("TABLE_FULL" in key and value >= 1 for key, value in errors.items()), errors

    # The controller keeps working: the table limit is lifted (OVSDB only: no OpenFlow
    # event, so no resync by itself), then a topology change that needs no table-70 flow
    # (a new Service) makes the controller reconcile again; this time the bundle commits and
    # carries both the Service's flows and the pod's flows that were refused before.
    unlimit_table(ovs, br, POD_TABLE)
    time.sleep(0.5)
    assert normalized(ovs, br) == expected
    syncs = len(ctl.log_lines(r"node2\.ocp\.cn.*in sync"))
    write_atomic(cluster / "after-error-service.yaml", NEW_SERVICE)
    final = reference_flows(cluster, NODE2, ref_ovs, ports)
    service_lines = set(final) - set(with_pod)
    assert service_lines and not [line for line in service_lines
                                  if f"table={POD_TABLE}," in line], service_lines
    wait_for_flows(ovs, br, final, ctl, what="after the limit was lifted")
    ctl.wait_for_log(r"node2\.ocp\.cn.*in sync", count=syncs + 1)
    assert ctl.running, ctl.log_tail()
    reconciles = metric_samples(metrics_port, "osdn_reconciles_total")
    assert sum(v for k, v in reconciles.items()
               if NODE2 in k and 'outcome="error"' in k) >= 1, reconciles
