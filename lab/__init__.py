"""The emulation lab: private OVS instances, trace parsing, the emulated cluster, the demo.

It proves the product (`controller`, `topology`) with real Open vSwitch and real packets; it may
import the product, never the reverse."""
