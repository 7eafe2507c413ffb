"""Rewrite the golden flow files: `python -m tests.golden.update`.

Only after reviewing the diff against docs/pipeline.md: the
golden files are the reviewed statement of what each node's br0 holds.
"""

from __future__ import annotations

from pathlib import Path

from controller.compiler import Settings, compile_node
from topology.load import load_topology
from topology.model import Plugin

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"
CLUSTERS = {"seed": EXAMPLES / "seed-cluster", "rich": EXAMPLES / "rich-cluster"}
DNS = {"example.com": ["93.184.215.14"]}  # a fixed answer so goldens do not depend on DNS
SETTINGS = Settings(resolver=lambda name: [__import__("ipaddress").IPv4Address(a)
                                           for a in DNS.get(name, [])])


def golden_path(cluster: str, plugin: Plugin) -> Path:
    return HERE / f"{cluster}-{plugin.name.lower()}.flows"


def render(cluster: str, plugin: Plugin) -> str:
    topology = load_topology([CLUSTERS[cluster]], plugin=plugin)
    out = []
    for hs in sorted(topology.host_subnets, key=lambda h: h.host):
        flows = compile_node(topology, hs.host, SETTINGS)
        out.append(f"# node {hs.host} ({len(flows.flows)} flows)\n")
        out += [f"# warning: {w.replace(str(EXAMPLES.parent) + '/', '')}\n"
                for w in flows.warnings]
        out.append(flows.to_ofctl())
    return "".join(out)


def main() -> None:
    for cluster in CLUSTERS:
        for plugin in Plugin:
            golden_path(cluster, plugin).write_text(render(cluster, plugin))


if __name__ == "__main__":
    main()
