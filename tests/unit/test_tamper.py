"""A bridge changed behind the controller's back (controller.tamper), on the fake switch.

The fake switch reports the removal of flows that asked for it, as OVS does, whoever removed
them; flows added behind the agent's back are reported to nobody.  Each test checks the
bridge is back to `compile_node`, that only what was missing or extra was sent, and the
repair metric and log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from controller.openflow.wire import encode_flow
from controller.pipeline.cookies import Owner, OwnerKind
from controller.pipeline.flow import Flow, Match, Note
from controller.pipeline.tables import Table
from controller.reconcile import Plan
from controller.tamper import count_differences, describe_repair
from lab.harness import copy_cluster
from tests.support.seed_node import NODE2, SEED
from tests.unit.test_agent import (
    PORTS,
    expected,
    foreign_flow,
    in_sync_lines,
    programmed,
    table,
    write,
)

TUN0_TABLE = 10  # a table with a few flows of the seed's node2


@pytest.fixture(autouse=True)
def agent_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="osdn")
    return caplog


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    return copy_cluster(SEED, tmp_path / "cluster")


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def test_all_flows_deleted_behind_our_back_are_restored_at_once(agent_log) -> None:
    ctl, switch = programmed(SEED)
    want = table(switch)
    sent = switch.received.copy()

    deleted = switch.delete_behind()  # ovs-ofctl del-flows br0
    assert deleted == len(want) and switch.removals_reported == deleted
    ctl.tasks.run()

    assert table(switch) == want
    new = switch.received - sent
    assert new["bundle-add"] == len(want) and new["bundle-commit"] == 1
    assert new["flow-stats"] == 1  # one repair for all the removals, one dump
    assert ctl.metric("osdn_bridge_repairs_total", node=NODE2, trigger="flow_removed") == 1
    last = in_sync_lines(agent_log)[-1]
    assert last["reason"] == "repair (flow removed)" and int(last["add"]) == len(want)
    assert any(m.startswith(f"{NODE2} (dpid 0x00000000c0a86c70): repairing the bridge: "
                            f"restored {len(want)} (table 0: ") for m in messages(agent_log))


def test_one_table_deleted_only_its_flows_are_sent_again(agent_log) -> None:
    ctl, switch = programmed(SEED)
    want = table(switch)
    in_table = sum(1 for key in want if key[0] == TUN0_TABLE)
    assert in_table >= 2
    sent = switch.received.copy()

    switch.delete_behind(keep=lambda flow: flow.table != TUN0_TABLE)
    ctl.tasks.run()

    assert table(switch) == want
    assert (switch.received - sent)["bundle-add"] == in_table
    assert ctl.metric("osdn_bridge_repairs_total", node=NODE2, trigger="flow_removed") == 1
    assert f"repairing the bridge: restored {in_table} (table {TUN0_TABLE}: {in_table})" in \
        " ".join(messages(agent_log))


def test_our_own_deletes_are_not_taken_for_tampering(cluster, agent_log) -> None:
    ctl, switch = programmed(cluster)
    (cluster / "services.yaml").unlink()  # the Service's flows go, in our bundle
    ctl.agent.check_topology()
    dumps = switch.received["flow-stats"]
    ctl.tasks.run()

    assert table(switch) == expected(cluster, PORTS)
    assert switch.removals_reported >= 1  # reported to us, as OVS does
    assert switch.received["flow-stats"] == dumps  # no repair, no dump
    assert ctl.metric("osdn_bridge_repairs_total", node=NODE2, trigger="flow_removed") == 0
    assert not messages(agent_log)


def test_audit_of_an_untouched_bridge_is_two_small_requests(agent_log) -> None:
    ctl, switch = programmed(SEED)
    sent = switch.received.copy()
    ctl.agent.audit_bridges()
    ctl.tasks.run()
    assert switch.received - sent == {"table-stats": 1, "flow-stats": 1}  # table 253 only
    assert not messages(agent_log)


def test_foreign_flow_added_behind_our_back_is_removed_by_the_audit(agent_log) -> None:
    ctl, switch = programmed(SEED)
    want = table(switch)
    switch.add_behind([foreign_flow(1000, 0x1234)])  # ovs-ofctl add-flow: nobody is told
    ctl.tasks.run()
    assert len(table(switch)) == len(want) + 1

    ctl.agent.audit_bridges()
    ctl.tasks.run()
    assert table(switch) == want
    assert ctl.metric("osdn_bridge_repairs_total", node=NODE2, trigger="audit") == 1
    assert ctl.metric("osdn_flow_mods_total", node=NODE2, op="delete") == 1
    text = " ".join(messages(agent_log))
    assert "audit: the bridge changed behind our back (table 0: " in text
    assert "repairing the bridge: removed foreign 1 (table 0: 1)" in text


def test_a_changed_version_note_is_found_by_the_audit(agent_log) -> None:
    ctl, switch = programmed(SEED)
    want = table(switch)
    [note_key] = [key for key in want if key[0] == Table.VERSION_NOTE]
    forged = Flow(Table.VERSION_NOTE, note_key[1], Match(), Owner(OwnerKind.STATIC, "forged"),
                  (Note(b"\x09\x09"),))
    assert encode_flow(forged).key == note_key  # same flow, other note: counts unchanged
    switch.add_behind([encode_flow(forged)])
    assert table(switch) != want

    ctl.agent.audit_bridges()
    ctl.tasks.run()
    assert table(switch) == want
    assert "table 253: the version note differs" in " ".join(messages(agent_log))
    assert ctl.metric("osdn_bridge_repairs_total", node=NODE2, trigger="audit") == 1


def test_update_after_an_unreported_change_repairs_it_before_saying_in_sync(
        cluster, agent_log) -> None:
    """Flows gone without a word (no audit yet, no removal reported): the next topology
    change must not log "in sync" while the bridge lacks them."""
    ctl, switch = programmed(cluster)
    for key in [key for key in switch.flows if key[0] == TUN0_TABLE]:
        del switch.flows[key]  # silently
    (cluster / "services.yaml").unlink()
    write(cluster / "pods-extra.yaml", "")
    ctl.agent.check_topology()
    ctl.tasks.run()

    assert table(switch) == expected(cluster, PORTS)
    last = in_sync_lines(agent_log)[-1]
    assert last["reason"] == "topology changed" and int(last["add"]) >= 2
    assert ctl.metric("osdn_bridge_repairs_total", node=NODE2, trigger="update_check") == 1


def test_differences_and_repairs_are_described_per_table() -> None:
    assert count_differences({0: 3, 20: 2}, {0: 3, 20: 1, 99: 1}) == [
        "table 20: 1 flows, expected 2", "table 99: 1 flows, expected 0"]
    assert describe_repair(Plan()) == "nothing to change"
