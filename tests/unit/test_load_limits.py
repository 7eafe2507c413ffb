"""Hostile or broken topology files (issue 10): limits, files that are not regular, unreadable
directories, ConfigMap mounts, bad bytes.  Each is a located problem, found fast, and never
a traceback or a blocked read."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

import topology.load.kinds
import topology.load.parsefile
import topology.load.readfile
import topology.load.yamlreader
from controller.cli import main as osdn
from tests.support.configmap import configmap_mount
from topology.load import TopologyError, list_files, load_topology, parse_file
from topology.load import limits as limits_module
from topology.load.readfile import read_file

T = TypeVar("T")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED = EXAMPLES / "seed-cluster"


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SEED, tmp_path / "cluster"))


def problems(paths: list[Path] | Path) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load_topology(paths if isinstance(paths, list) else [paths], cache=None)
    return [str(issue) for issue in caught.value.issues]


def osdn_check(path: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = osdn(["check", str(path)])
    return code, err.getvalue()


def timed(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    started = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - started


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nested, line", [
    ("[" * 600 + "]" * 600, 5),
    ("{a: " * 500 + "1" + "}" * 500, 5),
    ("\n" + "".join("  " * (i + 1) + "k:\n" for i in range(200)) + "  " * 201 + "v", 69),
], ids=["flow-sequences", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_a_located_problem_not_a_recursion_error(
        cluster: Path, nested: str, line: int) -> None:
    (cluster / "deep.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                       f"  name: deep\n  labels: {nested}\n")
    code, err = osdn_check(cluster)
    assert code == 1
    assert f"{cluster}/deep.yaml:{line}: nested deeper than {limits_module.MAX_NESTING_DEPTH} " \
           "mappings and sequences (MAX_NESTING_DEPTH)" in err, err


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    depth = limits_module.MAX_NESTING_DEPTH
    path = tmp_path / "ok.yaml"
    path.write_text("a: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n")
    assert parse_file(str(path)).issues == ()


# --- nodes, aliases, objects, peers ----------------------------------------------------------


def test_a_dense_list_of_small_scalars_is_refused_fast(tmp_path: Path) -> None:
    """The issue's 50 MB list took 82 s and 7.7 GB; this one has 1.5 million items."""
    path = tmp_path / "dense.yaml"
    path.write_text("a: [" + "1," * 1_500_000 + "1]\n")
    parsed, seconds = timed(parse_file, str(path))
    assert [str(i) for i in parsed.issues] == [
        f"{path}:1: {i.message}" for i in parsed.issues]
    (issue,) = parsed.issues
    assert "(NODES_FREE, MIN_CHARS_PER_NODE)" in issue.message and issue.line == 1
    assert seconds < 2.0, seconds


def test_real_cluster_files_are_far_from_the_node_density_limit() -> None:
    """The example clusters and the benchmark's files hold 10 to 15 characters per node."""
    for path in sorted(EXAMPLES.glob("*/*.yaml")):
        loader = topology.load.yamlreader._Loader(path.read_bytes())
        while loader.check_node():
            loader.get_node()
        assert loader.nodes * limits_module.MIN_CHARS_PER_NODE * 1.5 < path.stat().st_size, path


def test_the_node_limit_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topology.load.yamlreader, "MAX_NODES_PER_FILE", 5000)
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"key{i}: value number {i}\n" for i in range(3000)))
    (issue,) = parse_file(str(path)).issues  # checked at the end of the document
    assert issue.message == "more than 5000 YAML nodes in the file (MAX_NODES_PER_FILE)"
    monkeypatch.setattr(topology.load.yamlreader, "DENSITY_CHECK_EVERY", 100)
    (issue,) = parse_file(str(path)).issues  # and while composing
    assert issue.message == "more than 5000 YAML nodes in the file (MAX_NODES_PER_FILE)"
    assert 2450 < issue.line < 2550, issue


def test_billion_laughs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
        for i in range(9)))
    parsed, seconds = timed(parse_file, str(path))
    (issue,) = parsed.issues
    assert "more than 100000 nodes to the file (MAX_ALIAS_NODES)" in issue.message, issue
    assert issue.line in range(2, 11) and seconds < 1


def test_a_policy_of_3000_rules_naming_3000_aliased_peers_is_refused_fast(
        cluster: Path) -> None:
    """The issue's ~25 KB policy: accepted after 64 s and 1.9 GB."""
    peers = ", ".join(["{podSelector: {}}"] * 3000)
    policy = cluster / "policy.yaml"
    policy.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
                      "  name: blow-up\n  namespace: default\nspec:\n  podSelector: {}\n"
                      f"  ingress:\n  - from: &peers [{peers}]\n" + "  - from: *peers\n" * 2999)
    found, seconds = timed(problems, cluster)
    assert seconds < 3, seconds
    assert found == [f"{policy}:9: YAML aliases (here, or of the node here) add more than "
                     "100000 nodes to the file (MAX_ALIAS_NODES)"]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("a: 1\nb: &r [1, *r]\n")
    assert [str(i) for i in parse_file(str(path)).issues] == [
        f"{path}:2: a YAML alias inside the node it names (recursive alias)"]


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("apiVersion: v1\nkind: List\nitems:\n"
                    "- {apiVersion: v1, kind: Namespace, metadata: {name: a, labels: &l {t: b}}}\n"
                    "- {apiVersion: v1, kind: Namespace, metadata: {name: b, labels: *l}}\n")
    parsed = parse_file(str(path))
    assert parsed.issues == () and len(parsed.objects) == 2


def test_rule_peer_pairs_per_policy(cluster: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topology.load.kinds, "MAX_POLICY_PEERS", 5)
    policy = cluster / "policy.yaml"
    rule = "  - from: [{podSelector: {}}, {podSelector: {}}]\n"
    policy.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
                      "  name: wide\n  namespace: default\nspec:\n  podSelector: {}\n"
                      "  ingress:\n" + rule * 3)
    assert problems(cluster) == [
        f"{policy}:8: NetworkPolicy/default/wide: spec.ingress: more than 5 (rule, peer) "
        "pairs (MAX_POLICY_PEERS) (6)"]


def test_objects_per_file_and_in_all(cluster: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespaces = "".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}}}\n"
                         for i in range(4))
    (cluster / "more.yaml").write_text(namespaces)
    monkeypatch.setattr(topology.load.parsefile, "MAX_OBJECTS_PER_FILE", 3)
    found = problems(cluster)
    assert f"{cluster}/more.yaml:14: more than 3 objects in the file " \
           "(MAX_OBJECTS_PER_FILE)" in found, found
    monkeypatch.setattr(topology.load.parsefile, "MAX_OBJECTS_PER_FILE", 1000)
    monkeypatch.setattr(topology.load, "MAX_OBJECTS_TOTAL", 10)
    found = problems(cluster)
    assert len(found) == 1 and found[0].endswith(
        "more than 10 objects in all files (MAX_OBJECTS_TOTAL)"), found


def test_the_limits_admit_the_benchmark_clusters() -> None:
    """The figures in limits.py's docstring (bench.generate --detail full, 110,000 pods)."""
    assert limits_module.MAX_FILE_BYTES > 263_411_089 * 1.5
    assert limits_module.MAX_NODES_PER_FILE > 20_000_000
    assert limits_module.MAX_OBJECTS_PER_FILE > 110_001 * 3
    assert limits_module.MAX_OBJECTS_TOTAL > 131_000 * 5


# --- what is read ----------------------------------------------------------------------------


def test_a_fifo_is_a_located_problem_and_never_opened(cluster: Path) -> None:
    fifo = cluster / "pipe.yaml"
    os.mkfifo(fifo)
    outcome: list[object] = []
    reader = threading.Thread(target=lambda: outcome.append(osdn_check(cluster)), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # blocked in open(): give it a writer so that the thread ends
        with open(os.open(fifo, os.O_WRONLY), "wb"):
            pass
        reader.join(5)
        pytest.fail("osdn check blocked on a FIFO")
    assert outcome[0] == (1, f"{fifo}: not read: a FIFO, not a regular file\n"
                             "1 problem(s); nothing rendered\n")


def test_devices_and_sockets_behind_yaml_names_are_not_read(cluster: Path) -> None:
    (cluster / "zero.yaml").symlink_to("/dev/zero")
    (cluster / "null.yml").symlink_to("/dev/null")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(cluster / "socket.yaml"))
        assert problems(cluster) == [
            f"{cluster}/null.yml: not read: a character device, not a regular file",
            f"{cluster}/socket.yaml: not read: a socket, not a regular file",
            f"{cluster}/zero.yaml: not read: a character device, not a regular file"]
    finally:
        server.close()


def test_a_file_over_the_size_limit_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topology.load.readfile, "MAX_FILE_BYTES", 1000)
    sparse = tmp_path / "sparse.yaml"
    with open(sparse, "wb") as out:
        out.truncate(3 * 1024**3)  # 3 GiB, no blocks
    reads: list[int] = []
    real_read = os.read

    def read(descriptor: int, size: int) -> bytes:
        reads.append(size)
        return real_read(descriptor, size)

    monkeypatch.setattr(topology.load.readfile.os, "read", read)
    assert [str(i) for i in parse_file(str(sparse)).issues] == [
        f"{sparse}: not read: larger than the limit of 1000 bytes (MAX_FILE_BYTES) "
        f"({3 * 1024**3})"]
    assert reads == []


def test_a_file_whose_size_is_not_known_is_read_up_to_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc files say size 0; reading stops one byte past the limit."""
    monkeypatch.setattr(topology.load.readfile, "MAX_FILE_BYTES", 100)
    proc = tmp_path / "maps.yaml"
    proc.symlink_to("/proc/self/maps")
    content = read_file(str(proc))
    assert content.data is None and content.issue is not None
    assert "larger than the limit of 100 bytes" in content.issue.message
    assert content.issue.value == 101


def test_an_unreadable_subdirectory_is_a_problem(
        cluster: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads any directory; os.scandir is made to refuse this one as it would refuse
    another user (EACCES)."""
    hidden = cluster / "more"
    hidden.mkdir()
    (hidden / "service.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: "
                                         "{name: more}\n")
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str] = ".") -> object:
        if os.fspath(path) == str(hidden):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert list_files([cluster]).unreadable[0].file == str(hidden)
    assert problems(cluster) == [f"{hidden}: cannot read directory: Permission denied"]


# --- a ConfigMap mount -----------------------------------------------------------------------


def test_a_configmap_mount_is_read_as_kubernetes_lays_it_out(tmp_path: Path) -> None:
    files = {path.name: path.read_bytes() for path in SEED.glob("*.yaml")}
    mount = tmp_path / "mount"
    configmap_mount(mount, files, "2026_12_05_10_00_00.123456789")
    assert list_files([mount]).files == sorted(str(mount / name) for name in files)
    read = load_topology([mount], cache=None)  # no "duplicate object" problems
    seed = load_topology([SEED], cache=None)
    assert [(p.namespace, p.name, str(p.origin)) for p in read.pods] == [
        (p.namespace, p.name, str(p.origin).replace(str(SEED), str(mount))) for p in seed.pods]


# --- bad bytes -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, reason", [
    (b"\xff", "invalid leading UTF-8 octet"),
    (b"\x00", "control characters are not allowed"),
    (b"\xc3(", "invalid trailing UTF-8 octet"),
])
def test_an_encoding_error_names_its_line(tmp_path: Path, bad: bytes, reason: str) -> None:
    path = tmp_path / "bytes.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x" + bad + b"\n")
    (issue,) = parse_file(str(path)).issues
    assert issue.line == 4 and reason in issue.message, issue


def test_numbers_python_will_not_convert_are_located(tmp_path: Path) -> None:
    path = tmp_path / "numbers.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"
                    f"  labels: {{a: {'9' * 5000}}}\n")
    (issue,) = parse_file(str(path)).issues
    assert issue.line == 5 and issue.message.startswith("not a valid int: "), issue
