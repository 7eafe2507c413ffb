"""What the loader accepts at most: every limit on the topology files, in one place.

A topology file may come from anyone who can write to the directory (a ConfigMap, a CI job,
a hostile neighbour).  Beyond these limits it is rejected with a located issue (file, line,
the limit, the value) before it can cost the controller unbounded memory or time; the README
("Security and failure behaviour") lists them.

Sized against the largest cluster the benchmark generates (`python -m bench.generate
--nodes 1000 --namespaces 2000 --services 10000 --pods-per-node 110 --detail full`):
its pods.yaml is one ``kind: List`` of 110,000 pods, 263 MB (251 MiB) and 20 million YAML
nodes at about 13 characters per node (minified JSON of the same: 11.6); its largest nesting
is 10; it uses no aliases.
"""

from __future__ import annotations

MiB = 1024 * 1024

MAX_FILE_BYTES = 512 * MiB
"""A larger file is not read at all (checked on the open file, and at most this many bytes
plus one are ever read)."""

MAX_NODES_PER_FILE = 32_000_000
"""YAML nodes (mappings, sequences, scalars) composed from one file: OpenShift 3.11's tested
maximum of 150,000 pods, at the benchmark's full detail in one file, would be 27 million."""

NODES_FREE = 100_000
MIN_CHARS_PER_NODE = 6
"""Beyond the first `NODES_FREE` nodes, a file must hold at least `MIN_CHARS_PER_NODE`
characters per node so far (real cluster files: 10 to 15).  Checked while libyaml composes,
so that a dense list of small scalars (``[1,1,1,...]``: 2 characters per node, about 400
bytes of memory each) is refused after a fraction of a second instead of after minutes."""

DENSITY_CHECK_EVERY = 4_096
"""How often (in nodes) the composer checks the two limits above."""

MAX_NESTING_DEPTH = 64
"""Mappings and sequences inside each other (libyaml itself stops at 1,000)."""

MAX_ALIAS_NODES = 100_000
"""Nodes that YAML aliases (``*name``) add to a file, counting each alias as the whole
subtree it repeats.  Kubernetes never writes aliases; this admits hand-written anchors and
refuses "billion laughs" style expansion.  An alias inside the node it names is refused."""

MAX_OBJECTS_PER_FILE = 500_000
MAX_OBJECTS_TOTAL = 1_000_000
"""API objects (documents and ``kind: List`` items).  The benchmark's largest cluster has
131,000 (110,000 pods in one file); OpenShift 3.11's tested maximum is 150,000 pods."""

MAX_POLICY_PEERS = 10_000
"""(ingress rule, ``from`` peer) pairs in one NetworkPolicy: each pair yields flows."""
