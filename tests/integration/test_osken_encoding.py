"""Both renderings of every golden flow mean the same to Open vSwitch.

`ovs-ofctl parse-flows` reads our ovs-ofctl text; `ovs-ofctl ofp-parse` decodes the binary
OFPFlowMod messages os-ken builds from the same Flow values.  OVS prints both in its own
canonical form, which must be identical flow for flow.  The text gets the one flag the
controller adds to every flow (`send_flow_rem`, see controller.tamper), which `osdn render`
leaves out.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from controller.compiler import compile_node
from controller.openflow.osken_flow import flow_mod
from controller.ovs.ovscommands import find_ovs_binary
from tests.golden.update import CLUSTERS, SETTINGS
from tests.unit.test_golden import CASES, FakeDatapath
from topology.load import load_topology
from topology.model import Plugin

pytestmark = pytest.mark.ovs


def canonical(output: str) -> list[str]:
    return [re.sub(r" \(xid=0x[0-9a-f]+\)", "", line) for line in output.splitlines()
            if line.startswith("OFPT_FLOW_MOD")]


@pytest.mark.parametrize("cluster, plugin", CASES, ids=lambda v: getattr(v, "name", v))
def test_text_and_os_ken_bytes_are_the_same_flows(tmp_path: Path, cluster: str,
                                                  plugin: Plugin) -> None:
    ofctl = find_ovs_binary("ovs-ofctl")
    topology = load_topology([CLUSTERS[cluster]], plugin=plugin)
    flows = [f for hs in topology.host_subnets
             for f in compile_node(topology, hs.host, SETTINGS).flows]
    text, binary = tmp_path / "flows.txt", tmp_path / "flows.bin"
    text.write_text("".join(f"send_flow_rem,{f.to_ofctl()}\n" for f in flows))
    with binary.open("wb") as out:
        for flow in flows:
            message = flow_mod(flow, FakeDatapath())
            message.serialize()
            out.write(bytes(message.buf))
    from_text = canonical(subprocess.run([ofctl, "-O", "OpenFlow13", "parse-flows", str(text)],
                                         capture_output=True, text=True, check=True).stdout)
    from_bytes = canonical(subprocess.run([ofctl, "ofp-parse", str(binary)],
                                          capture_output=True, text=True, check=True).stdout)
    assert len(from_text) == len(flows)
    mismatches = [(a, b) for a, b in zip(from_text, from_bytes, strict=False) if a != b]
    assert not mismatches, "\n".join(f"text:  {a}\nbytes: {b}" for a, b in mismatches[:5])
