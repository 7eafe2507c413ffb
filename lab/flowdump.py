"""`ovs-ofctl dump-flows` text made comparable: pure, no OVS needed.

A dump carries per-flow counters and ages that change all the time; without them two
bridges holding the same flows dump the same lines, so they compare as (multi)sets.
"""

from __future__ import annotations

import re

_STAT_RE = re.compile(
    r"\b(?:duration=[0-9.]+s|n_packets=\d+|n_bytes=\d+|idle_age=\d+|hard_age=\d+),\s*")


def normalize_flow_dump(text: str) -> list[str]:
    """Strip the reply header and per-flow counters/ages from ovs-ofctl dump-flows output."""
    flows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("OFPST_FLOW", "NXST_FLOW")):
            continue
        flows.append(_STAT_RE.sub("", line))
    return flows
