"""Open vSwitch's own tools on one instance, for the product's offline and live checks.

`ovscommands` runs ovs-vsctl/ovs-ofctl/ovs-appctl against one instance; `privateovs` starts
a throw-away instance (dummy datapath) in a directory of its own; `nodebridge` lays out
3.11's br0 on it; `trace` and `flowdump` parse `ofproto/trace` and flow-dump text (pure).
`osdn explain` and `osdn diff` use them on a node; the lab builds its clusters from them.
"""
