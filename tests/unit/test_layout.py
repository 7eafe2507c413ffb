"""The declared directions of imports (docs/architecture.md), enforced.

The product (`controller`, `topology`) never imports the lab, the Mininet experiments, the
benchmark or the tests; the topology model and the compiler are pure (no os-ken, no
processes, no sockets), which is what lets `osdn render` and the unit tests run anywhere.
Every import counts, lazy ones inside functions included, and a pure package may not reach
a forbidden module through another module of the project either."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = ("controller", "topology", "lab", "bench", "mininet", "tests")

# package -> top-level modules it must never import (directly or through the project)
RULES: dict[str, tuple[str, ...]] = {
    "controller": ("lab", "mininet", "bench", "tests"),
    "topology": ("controller", "lab", "mininet", "bench", "tests", "os_ken", "subprocess",
                 "socket", "kubernetes"),
    # the API source: plain HTTP through the kubernetes package, green under os-ken's
    # eventlet patching but never tied to os-ken or the flows
    "controller.kube": ("lab", "mininet", "bench", "tests", "os_ken", "controller.openflow",
                        "controller.compiler", "controller.agent"),
    "controller.compiler": ("lab", "mininet", "bench", "tests", "os_ken", "subprocess",
                            "socket", "controller.openflow", "eventlet"),
    "controller.pipeline": ("lab", "mininet", "bench", "tests", "os_ken", "subprocess",
                            "socket", "controller.openflow", "controller.compiler"),
    # the host side's planning is pure: only `controller.hostside.apply` runs commands
    "controller.hostside.plan": ("subprocess", "socket"),
    "controller.hostside.kubeproxy": ("subprocess", "socket", "os_ken"),
    # the parsers of OVS text: unit-tested on captured output, without OVS
    "controller.ovs.trace": ("subprocess", "socket", "controller.ovs.ovscommands",
                             "controller.ovs.privateovs"),
    "controller.ovs.flowdump": ("subprocess", "socket", "controller.ovs.ovscommands",
                                "controller.ovs.privateovs"),
    # drift against a saved dump: offline, on a copy of a node's dump
    "controller.drift": ("subprocess", "socket", "os_ken", "controller.ovs.ovscommands",
                         "controller.ovs.privateovs", "controller.openflow"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for top in PROJECT:
        for path in (REPO / top).rglob("*.py"):
            found[module_name(path)] = path
    return found


@cache
def imports_of(name: str) -> frozenset[str]:
    """Every module `name` imports, anywhere in its source (lazy imports included)."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


def project_module(imported: str) -> str | None:
    """The project module an import names (`a.b.C` -> `a.b` when `a.b` is a module)."""
    known = modules()
    while imported:
        if imported in known:
            return imported
        imported = imported.rpartition(".")[0]
    return None


def reachable(name: str) -> dict[str, list[str]]:
    """Every import reachable from module `name` through project modules, with the chain."""
    chains: dict[str, list[str]] = {}
    todo = [(name, [name])]
    seen = {name}
    while todo:
        current, chain = todo.pop()
        for imported in imports_of(current):
            chains.setdefault(imported, chain)
            inner = project_module(imported)
            if inner is not None and inner not in seen:
                seen.add(inner)
                todo.append((inner, chain + [inner]))
    return chains


def forbidden(imported: str, banned: str) -> bool:
    return imported == banned or imported.startswith(banned + ".")


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_keeps_its_direction(package: str) -> None:
    banned = RULES[package]
    broken = []
    for name in sorted(modules()):
        if name != package and not name.startswith(package + "."):
            continue
        for imported, chain in sorted(reachable(name).items()):
            if any(forbidden(imported, b) for b in banned):
                broken.append(f"{' -> '.join(chain)} imports {imported}")
    assert not broken, "imports against the declared directions:\n" + "\n".join(broken)


def test_the_rules_see_imports() -> None:
    """The checker finds lazy and relative imports (it must be able to fail)."""
    assert "lab.cluster.state" in reachable("lab.cli")
    assert "os_ken.lib.hub" in reachable("controller.app")
    assert any(forbidden(i, "subprocess") for i in reachable("controller.ovs.privateovs"))
