"""`osdn explain`: why a packet is delivered or dropped, table by table, across nodes.

`endpoint` parses SRC/DST as users name them; `tracer` gets OVS's own `ofproto/trace`
(offline on throw-away bridges, or live on a node); `walk` follows the packet from bridge to
bridge and through the host side; `objects` names the topology objects behind cookies and
registers; `result` holds the answer and renders it as text or JSON.
"""

from controller.explain.endpoint import Endpoint, EndpointError, parse_endpoint
from controller.explain.objects import ObjectNames
from controller.explain.result import VERDICTS, Delivered, Explanation, Hop, Step
from controller.explain.tracer import (
    AppctlTracer,
    ElsewhereError,
    LiveThenScratch,
    ScratchTracer,
    Tracer,
    bridge_name,
    build_node_bridge,
)
from controller.explain.walk import explain, explain_flow

__all__ = ["VERDICTS", "AppctlTracer", "Delivered", "ElsewhereError", "Endpoint",
           "EndpointError", "Explanation", "Hop", "LiveThenScratch", "ObjectNames",
           "ScratchTracer", "Step", "Tracer", "bridge_name", "build_node_bridge", "explain",
           "explain_flow", "parse_endpoint"]
