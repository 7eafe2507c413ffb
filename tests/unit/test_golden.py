"""Golden flow files for the example clusters under each plugin, and the os-ken round trip.

The golden files were reviewed against docs/pipeline.md ("Table by table") and the
seed traces; a mismatch means the pipeline changed: review the diff, then run
`python -m tests.golden.update`.
"""

from __future__ import annotations

import difflib

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.compiler import compile_node
from controller.openflow.osken_flow import flow_mod
from controller.pipeline.flow import Flow
from tests.golden.update import CLUSTERS, SETTINGS, golden_path, render
from topology.load import load_topology
from topology.model import Plugin

CASES = [(cluster, plugin) for cluster in CLUSTERS for plugin in Plugin]


@pytest.mark.parametrize("cluster, plugin", CASES, ids=lambda v: getattr(v, "name", v))
def test_golden(cluster: str, plugin: Plugin) -> None:
    expected = golden_path(cluster, plugin).read_text()
    actual = render(cluster, plugin)
    diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                        str(golden_path(cluster, plugin)), "compiled"))
    assert not diff, f"pipeline changed; review, then python -m tests.golden.update\n{diff}"


class FakeDatapath:
    ofproto = ofp
    ofproto_parser = parser


def round_trip(flow: Flow) -> None:
    message = flow_mod(flow, FakeDatapath())
    message.serialize()
    back = parser.OFPFlowMod.parser(FakeDatapath(), ofp.OFP_VERSION, ofp.OFPT_FLOW_MOD,
                                    len(message.buf), 0, bytes(message.buf))
    assert back.match.to_jsondict() == message.match.to_jsondict(), flow.to_ofctl()
    assert [i.to_jsondict() for i in back.instructions] == \
        [i.to_jsondict() for i in message.instructions], flow.to_ofctl()
    assert (back.cookie, back.table_id, back.priority) == (flow.cookie, flow.table, flow.priority)


@pytest.mark.parametrize("cluster, plugin", CASES, ids=lambda v: getattr(v, "name", v))
def test_every_golden_flow_survives_os_ken(cluster: str, plugin: Plugin) -> None:
    topology = load_topology([CLUSTERS[cluster]], plugin=plugin)
    count = 0
    for hs in topology.host_subnets:
        for flow in compile_node(topology, hs.host, SETTINGS).flows:
            round_trip(flow)
            count += 1
    assert count > 200
