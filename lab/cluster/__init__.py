"""An emulated OpenShift cluster on one machine: nodes, pods and an external host as network
namespaces, each node with its own Open vSwitch, VXLAN between them over an underlay."""
