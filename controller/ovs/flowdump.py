"""`ovs-ofctl dump-flows` text made comparable: pure, no OVS needed.

A dump carries per-flow counters and ages that change all the time; without them two
bridges holding the same flows dump the same lines, so they compare as (multi)sets.

The `send_flow_rem` flag is dropped too, deliberately: the controller sets it on every flow
so that OVS reports deletions by other connections (controller.tamper), while `osdn render`
prints the pipeline as openshift-sdn writes it, without it (it means nothing to a bridge
loaded by hand, where no controller listens).  Comparing the controller's bridge with the
render loaded by ovs-ofctl is about the pipeline; that the controller's flows carry the
flag is checked on its own (tests/integration/test_tamper.py).  Any other flag still shows.
"""

from __future__ import annotations

import re

_STAT_RE = re.compile(
    r"\b(?:duration=[0-9.]+s|n_packets=\d+|n_bytes=\d+|idle_age=\d+|hard_age=\d+),\s*"
    r"|\bsend_flow_rem ")


def normalize_flow_dump(text: str) -> list[str]:
    """Strip the reply header, per-flow counters/ages and the controller's `send_flow_rem`
    flag from ovs-ofctl dump-flows output."""
    flows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("OFPST_FLOW", "NXST_FLOW")):
            continue
        flows.append(_STAT_RE.sub("", line))
    return flows
