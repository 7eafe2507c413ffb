"""The master's VNID allocation and change-network requests (topology.master)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from topology.load import load_topology
from topology.master import (
    ALLOCATED,
    VnidNote,
    VnidRequest,
    allocate_vnid,
    assign_vnids,
    preferred_vnid,
)
from topology.model import MAX_VNID, MIN_VNID, Plugin

RICH = Path(__file__).resolve().parents[2] / "examples" / "rich-cluster"


def at(day: int) -> datetime:
    return datetime(2019, 3, day, tzinfo=UTC)


def vnids(*requests: VnidRequest, plugin: Plugin = Plugin.MULTITENANT) -> dict[str, int]:
    result = assign_vnids(requests, plugin)
    assert result.problems == ()
    return result.vnids


# --- allocation ------------------------------------------------------------------------------


def test_preferred_vnid_is_the_documented_hash() -> None:
    digest = int.from_bytes(hashlib.sha256(b"db").digest(), "big")
    assert preferred_vnid("db") == MIN_VNID + digest % (MAX_VNID - MIN_VNID + 1)


# Two names whose preferred VNIDs collide (found by search), and one preferring MAX_VNID - 1.
TWIN_A, TWIN_B, TWINS_VNID = "team-4491", "team-6911", 8944227
NEAR_THE_TOP = "ns5462283"


def test_collisions_probe_upwards_and_wrap() -> None:
    assert preferred_vnid(TWIN_A) == preferred_vnid(TWIN_B) == TWINS_VNID
    assert allocate_vnid(TWIN_A, {TWINS_VNID}) == TWINS_VNID + 1
    assert allocate_vnid(TWIN_A, {TWINS_VNID, TWINS_VNID + 1}) == TWINS_VNID + 2
    assert preferred_vnid(NEAR_THE_TOP) == MAX_VNID - 1
    assert allocate_vnid(NEAR_THE_TOP, {MAX_VNID - 1, MAX_VNID, MIN_VNID}) == MIN_VNID + 1


def test_explicit_netids_are_claimed_before_allocation() -> None:
    result = vnids(VnidRequest(TWIN_A), VnidRequest(TWIN_B, netid=TWINS_VNID))
    assert result == {TWIN_B: TWINS_VNID, TWIN_A: TWINS_VNID + 1}


def test_older_namespaces_are_allocated_first() -> None:
    older_a = vnids(VnidRequest(TWIN_A, created=at(1)), VnidRequest(TWIN_B, created=at(2)))
    older_b = vnids(VnidRequest(TWIN_A, created=at(2)), VnidRequest(TWIN_B, created=at(1)))
    assert older_a == {TWIN_A: TWINS_VNID, TWIN_B: TWINS_VNID + 1}
    assert older_b == {TWIN_B: TWINS_VNID, TWIN_A: TWINS_VNID + 1}


def test_namespaces_without_timestamp_come_after_all_with_one() -> None:
    # TWIN_A sorts first by name, but has no timestamp.
    result = vnids(VnidRequest(TWIN_A), VnidRequest(TWIN_B, created=at(9)))
    assert result == {TWIN_B: TWINS_VNID, TWIN_A: TWINS_VNID + 1}


def test_adding_a_namespace_keeps_every_other_vnid() -> None:
    existing = [VnidRequest(f"ns{i}", created=at(1 + i % 20)) for i in range(200)]
    existing.append(VnidRequest(TWIN_A, created=at(3)))  # the newcomer collides with it
    before = vnids(*existing)
    after = vnids(*existing, VnidRequest(TWIN_B, created=at(28)))
    assert {name: after[name] for name in before} == before
    assert after[TWIN_B] == TWINS_VNID + 1


def test_sources_tell_explicit_from_allocated() -> None:
    result = assign_vnids([VnidRequest("a", netid=42), VnidRequest("b")], Plugin.MULTITENANT)
    assert result.sources == {"a": "", "b": ALLOCATED}


# --- change-network --------------------------------------------------------------------------


def test_global_join_and_isolate() -> None:
    result = assign_vnids(
        [
            VnidRequest("default", netid=0),
            VnidRequest("infra", netid=50, change_network="global"),
            VnidRequest("web", netid=60),
            VnidRequest("api", netid=70, change_network="join:web"),
            VnidRequest("solo", netid=80, change_network="isolate"),  # alone: keeps 80
        ],
        Plugin.MULTITENANT,
    )
    assert result.vnids == {"default": 0, "infra": 0, "web": 60, "api": 60, "solo": 80}
    assert result.sources == {
        "default": "", "infra": "global", "web": "", "api": "join:web", "solo": "isolate",
    }  # fmt: skip


def test_isolating_a_shared_vnid_allocates_a_fresh_one() -> None:
    # TWIN_B's own candidate is the VNID it shares; the next one is c's.
    result = vnids(VnidRequest(TWIN_A, netid=TWINS_VNID),
                   VnidRequest(TWIN_B, netid=TWINS_VNID, change_network="isolate"),
                   VnidRequest("c", netid=TWINS_VNID + 1))  # fmt: skip
    assert result == {TWIN_A: TWINS_VNID, TWIN_B: TWINS_VNID + 2, "c": TWINS_VNID + 1}


def test_joins_resolve_after_their_target_changes() -> None:
    result = vnids(
        VnidRequest("a", netid=11, change_network="join:b"),
        VnidRequest("b", netid=12, change_network="join:c"),
        VnidRequest("c", netid=13, change_network="global"),
    )
    assert result == {"a": 0, "b": 0, "c": 0}


def test_joining_itself_changes_nothing() -> None:
    assert vnids(VnidRequest("a", netid=11, change_network="join:a")) == {"a": 11}


@pytest.mark.parametrize(
    ("requests", "problems"),
    [
        (
            [VnidRequest("a", 11, "join:b"), VnidRequest("b", 12, "join:a")],
            [VnidNote("a", "join cycle: a -> b -> a", "join:b"),
             VnidNote("b", "join cycle: a -> b -> a", "join:a")],
        ),
        (
            [VnidRequest("a", 11, "join:nope")],
            [VnidNote("a", 'join target NetNamespace "nope" does not exist', "join:nope")],
        ),
        (
            [VnidRequest("default", 0, "join:a"), VnidRequest("a", 11)],
            [VnidNote("default", 'namespace "default" cannot be joined to another network',
                      "join:a")],
        ),
        (
            [VnidRequest("a", 11, "merge")],
            [VnidNote("a", "must be global, isolate or join:<namespace>", "merge")],
        ),
        (
            [VnidRequest("a", 11, "global:x")],
            [VnidNote("a", "must be global, isolate or join:<namespace>", "global:x")],
        ),
    ],
)  # fmt: skip
def test_change_network_errors(requests: list[VnidRequest], problems: list[VnidNote]) -> None:
    assert list(assign_vnids(requests, Plugin.MULTITENANT).problems) == problems


def test_a_missing_join_target_is_no_error_when_the_input_was_not_read_whole() -> None:
    result = assign_vnids([VnidRequest("a", 11, "join:nope")], Plugin.MULTITENANT, complete=False)
    assert result.problems == () and result.vnids == {"a": 11}


@pytest.mark.parametrize(
    ("plugin", "why"),
    [
        (Plugin.NETWORKPOLICY, "ovs-networkpolicy does not renumber namespaces "
                               "(3.11 strips the annotation and logs an error)"),
        (Plugin.SUBNET, "ovs-subnet has no VNIDs"),
    ],
)  # fmt: skip
def test_other_plugins_ignore_change_network_with_a_note(plugin: Plugin, why: str) -> None:
    result = assign_vnids([VnidRequest("a", 11, "global")], plugin)
    assert result.vnids == {"a": 11} and result.problems == ()
    assert result.notes == (VnidNote("a", f"ignored: {why}", "global"),)


@pytest.mark.skipif(not RICH.is_dir(), reason="examples/rich-cluster not written yet")
def test_networkpolicy_plugin_keeps_the_vnid_and_warns() -> None:
    t = load_topology([RICH], Plugin.NETWORKPOLICY)
    assert t.vnid_of("analytics") == 0x7D91A4
    [warning] = [w for w in t.warnings if "analytics" in w]
    lines = (RICH / "network.yaml").read_text().splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if "change-network: join:backend" in text)
    assert warning == (
        f"{RICH}/network.yaml:{line}: NetNamespace/analytics: "
        "metadata.annotations[pod.network.openshift.io/multitenant.change-network]: ignored: "
        "ovs-networkpolicy does not renumber namespaces (3.11 strips the annotation and logs an "
        'error) ("join:backend")'
    )
