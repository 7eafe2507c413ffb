"""The loader's lean Pod path (`topology.load.leanpod`) against the general one: the same
objects, values, origins and issues for every pod, well-formed or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate import generate, write
from tests.golden.update import CLUSTERS
from topology.load import ParsedFile, ParsedObject, YamlMap, parse_file, parsefile
from topology.model import Pod

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p{n}
{meta}spec:
{spec}{status}"""

VARIANTS = [
    # (metadata lines, spec lines, status lines)
    ("  namespace: app\n  uid: u1\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.5\n"),
    ("", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.6\n"),  # default namespace, uid
    ("  namespace: ''\n  uid: ''\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.7\n"),
    ("  namespace: 5\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.8\n"),
    ("  uid: 5\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.9\n"),
    ("  labels: null\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.10\n"),
    ("  labels: ''\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.11\n"),
    ("  labels: {b: '2', a: '1', c: ''}\n", "  nodeName: node1\n",
     "status:\n  podIP: 10.128.0.12\n"),
    ("  labels: {a: 1}\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.13\n"),
    ("  labels: {a: null}\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.14\n"),
    ("  labels: [a]\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.15\n"),
    ("  annotations: null\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.16\n"),
    ("  annotations: ''\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.17\n"),
    ("  annotations: [x]\n", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.18\n"),
    ("  annotations:\n    osdn.dev/interface: veth1\n    osdn.dev/ofport: '7'\n",
     "  nodeName: node1\n", "status:\n  podIP: 10.128.0.19\n"),
    ("  annotations:\n    osdn.dev/ofport: 7\n", "  nodeName: node1\n",
     "status:\n  podIP: 10.128.0.20\n"),
    ("  annotations:\n    osdn.dev/ofport: '1'\n", "  nodeName: node1\n",
     "status:\n  podIP: 10.128.0.21\n"),
    ("  annotations:\n    osdn.dev/ofport: abc\n", "  nodeName: node1\n",
     "status:\n  podIP: 10.128.0.22\n"),
    ("  annotations:\n    osdn.dev/interface: a/b\n", "  nodeName: node1\n",
     "status:\n  podIP: 10.128.0.23\n"),
    ("  annotations:\n    osdn.dev/interface: ''\n    osdn.dev/ofport: ''\n",
     "  nodeName: node1\n", "status:\n  podIP: 10.128.0.24\n"),
    ("  annotations:\n    osdn.dev/ofport: bad\n", "  nodeName: node1\n  hostNetwork: true\n",
     "status:\n  podIP: 10.128.0.25\n"),  # host network: annotations not read
    ("", "  nodeName: node1\n  hostNetwork: 'yes'\n", "status:\n  podIP: 10.128.0.26\n"),
    ("", "  nodeName: node1\n  hostNetwork: false\n", "status:\n  podIP: 10.128.0.27\n"),
    ("", "  nodeName: node1\n", ""),  # no status: not running
    ("", "  nodeName: node1\n", "status: {}\n"),
    ("", "  nodeName: node1\n", "status:\n  podIP: ''\n"),
    ("", "  nodeName: node1\n", "status: []\n"),
    ("", "  nodeName: node1\n", "status:\n  podIP: 5\n"),
    ("", "  nodeName: node1\n", "status:\n  podIP: 10.128.0.300\n"),
    ("", "  nodeName: ''\n", "status:\n  podIP: 10.128.0.28\n"),
    ("", "  hostNetwork: null\n", "status:\n  podIP: 10.128.0.29\n"),
    ("", "  nodeName: node1\n  containers:\n  - name: c\n    ports:\n    - containerPort: 80\n"
         "      name: http\n    - containerPort: 53\n      protocol: UDP\n      name: dns\n"
         "    - containerPort: 9000\n  - name: d\n", "status:\n  podIP: 10.128.0.30\n"),
    ("", "  nodeName: node1\n  containers:\n  - ports:\n    - containerPort: '80'\n"
         "      name: http\n", "status:\n  podIP: 10.128.0.31\n"),
    ("", "  nodeName: node1\n  containers:\n  - ports:\n    - containerPort: 80\n"
         "      protocol: tcp\n      name: http\n", "status:\n  podIP: 10.128.0.32\n"),
    ("", "  nodeName: node1\n  containers:\n  - ports:\n    - containerPort: 0\n"
         "      name: http\n", "status:\n  podIP: 10.128.0.33\n"),
    ("", "  nodeName: node1\n  containers:\n  - ports:\n    - containerPort: 80\n"
         "      name: 5\n", "status:\n  podIP: 10.128.0.34\n"),
    ("", "  nodeName: node1\n  containers: {}\n", "status:\n  podIP: 10.128.0.35\n"),
    ("", "  nodeName: node1\n  containers:\n  - ports: x\n", "status:\n  podIP: 10.128.0.36\n"),
    ("", "  nodeName: node1\n  containers:\n  - 5\n", "status:\n  podIP: 10.128.0.37\n"),
    ("", "  nodeName: node1\n  containers:\n  - ports: [5]\n",
     "status:\n  podIP: 10.128.0.38\n"),
    ("", "  nodeName: node1\n  containers:\n  - ports:\n    - containerPort: true\n"
         "      name: http\n", "status:\n  podIP: 10.128.0.39\n"),
]


def parse(path: Path, lean: bool, monkeypatch: pytest.MonkeyPatch) -> ParsedFile:
    with monkeypatch.context() as patch:
        if not lean:
            patch.setattr(parsefile, "lean_pod", lambda path, raw: None)
        return parse_file(str(path))


def same(a: ParsedFile, b: ParsedFile) -> None:
    assert a.issues == b.issues
    assert a.ignored == b.ignored and a.complete == b.complete
    assert len(a.objects) == len(b.objects)
    for x, y in zip(a.objects, b.objects, strict=True):
        assert (x.kind, x.identity, x.name, x.namespace, x.origin, x.raw) == \
            (y.kind, y.identity, y.name, y.namespace, y.origin, y.raw)
        assert x.value == y.value
        if isinstance(x.value, Pod):
            assert (x.value.origin, x.value.container_ports) == \
                (y.value.origin, y.value.container_ports)
        else:
            assert type(x.value) is type(y.value)


def test_every_variant_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "---\n".join(POD.format(n=n, meta=meta, spec=spec, status=status)
                        for n, (meta, spec, status) in enumerate(VARIANTS))
    path = tmp_path / "pods.yaml"
    path.write_text(text + "---\napiVersion: v1\nkind: Pod\nspec: {}\n---\n"
                    "apiVersion: v1\nkind: Pod\nmetadata: {name: ''}\nspec: {nodeName: n}\n")
    taken: list[ParsedObject | None] = []
    original = parsefile.lean_pod

    def recording(path: str, raw: YamlMap) -> ParsedObject | None:
        taken.append(original(path, raw))
        return taken[-1]

    monkeypatch.setattr(parsefile, "lean_pod", recording)
    lean, general = parse(path, True, monkeypatch), parse(path, False, monkeypatch)
    same(lean, general)
    assert sum(t is not None for t in taken) >= 15  # the lean path reads most of them
    assert general.issues  # the variants do exercise the issues
    assert sum(isinstance(o.value, Pod) for o in general.objects) >= 12


@pytest.mark.parametrize("detail", ["minimal", "standard", "full"])
def test_generated_pods_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      detail: str) -> None:
    write(generate(nodes=3, namespaces=6, pods_per_node=8, detail=detail, seed=2), tmp_path)
    for path in sorted(tmp_path.rglob("*.yaml")):
        same(parse(path, True, monkeypatch), parse(path, False, monkeypatch))


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_example_clusters_read_the_same(monkeypatch: pytest.MonkeyPatch, cluster: str) -> None:
    for path in sorted(CLUSTERS[cluster].rglob("*.yaml")):
        same(parse(path, True, monkeypatch), parse(path, False, monkeypatch))
