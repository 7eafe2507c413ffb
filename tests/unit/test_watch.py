"""TopologyWatcher: stat-only polls, re-parsing only changed files, half-written files."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

import controller.watch
import topology.load
import topology.load.filecache
from controller.watch import TopologyWatcher
from topology.load import FileCache
from topology.model import Plugin

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SEED, tmp_path / "cluster"))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each file is parsed (FileCache calls topology.load.filecache.parse_content
    on a miss)."""
    counts: Counter[str] = Counter()
    real_parse_content = topology.load.filecache.parse_content

    def counting(path: str, content: bytes) -> topology.load.ParsedFile:
        counts[path] += 1
        return real_parse_content(path, content)

    monkeypatch.setattr(topology.load.filecache, "parse_content", counting)
    return counts


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every call of load_topology the watcher makes."""
    calls: list[object] = []
    real_load = controller.watch.load_topology

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(controller.watch, "load_topology", counting)
    return calls


def rewrite(path: Path, text: str) -> None:
    """Write `text` and move the mtime on by a second, so that even a same-size rewrite
    within the file system's timestamp granularity is a visible change."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    later = max(path.stat().st_mtime_ns, before + 1_000_000_000)
    os.utime(path, ns=(later, later))


def yaml_files(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.rglob("*.yaml"))


def test_first_poll_loads_everything(cluster: Path) -> None:
    result = TopologyWatcher([cluster]).poll()
    assert result is not None and result.ok and result.topology is not None and result.issues == []
    assert {s.host for s in result.topology.host_subnets} == {
        "infra.ocp.cn", "master.ocp.cn", "node1.ocp.cn", "node2.ocp.cn"}
    assert result.changed_files == yaml_files(cluster)


def test_nothing_changed_means_none_without_loading(
        cluster: Path, parses: Counter[str], loads: list[object]) -> None:
    watcher = TopologyWatcher([cluster])
    assert watcher.poll() is not None
    parses.clear()
    assert watcher.poll() is None
    assert watcher.poll() is None
    assert len(loads) == 1 and not parses


def test_only_the_changed_file_is_parsed_again(cluster: Path, parses: Counter[str]) -> None:
    watcher = TopologyWatcher([cluster])
    watcher.poll()
    assert set(parses) == set(yaml_files(cluster)) and set(parses.values()) == {1}
    parses.clear()
    pods = cluster / "pods.yaml"
    rewrite(pods, pods.read_text().replace("app: web\n", "app: website\n"))
    result = watcher.poll()
    assert result is not None and result.ok and result.topology is not None
    assert result.changed_files == [str(pods)]
    assert parses == Counter({str(pods): 1})
    assert any(("app", "website") in pod.labels for pod in result.topology.pods)


def test_a_half_written_file_yields_issues_then_the_topology(cluster: Path) -> None:
    watcher = TopologyWatcher([cluster])
    watcher.poll()
    hostsubnets = cluster / "hostsubnets.yaml"
    whole = hostsubnets.read_text()
    rewrite(hostsubnets, whole[: whole.index("subnet:")] + "subnet: [10.128")
    partial = watcher.poll()
    assert partial is not None and partial.topology is None and not partial.ok
    assert partial.changed_files == [str(hostsubnets)]
    assert partial.issues and all(str(hostsubnets) in str(i) for i in partial.issues)
    assert watcher.poll() is None  # still half-written: no new load
    rewrite(hostsubnets, whole)
    complete = watcher.poll()
    assert complete is not None and complete.ok and complete.issues == []


def test_an_invalid_topology_reports_every_issue_as_topology_error_does(cluster: Path) -> None:
    netnamespaces = cluster / "netnamespaces.yaml"
    netnamespaces.write_text(netnamespaces.read_text().replace("netid: 0", 'netid: "zero"', 1))
    with pytest.raises(topology.load.TopologyError) as caught:
        topology.load.load_topology([cluster], cache=None)
    result = TopologyWatcher([cluster]).poll()
    assert result is not None and result.topology is None
    assert [str(i) for i in result.issues] == [str(i) for i in caught.value.issues]


def test_added_and_removed_files_are_changes(cluster: Path) -> None:
    cache = FileCache()
    watcher = TopologyWatcher([cluster], cache=cache)
    watcher.poll()
    entries = len(cache)
    extra = cluster / "more" / "namespace.yaml"
    extra.parent.mkdir()
    rewrite(extra, "apiVersion: v1\nkind: Namespace\nmetadata: {name: extra}\n")
    added = watcher.poll()
    assert added is not None and added.changed_files == [str(extra)]
    assert len(cache) == entries + 1
    extra.unlink()
    removed = watcher.poll()
    assert removed is not None and removed.changed_files == [str(extra)]
    assert len(cache) == entries  # the vanished file's entry is forgotten
    assert watcher.poll() is None


def test_files_of_other_extensions_are_not_watched(cluster: Path) -> None:
    watcher = TopologyWatcher([cluster])
    watcher.poll()
    (cluster / "README.txt").write_text("notes")
    assert watcher.poll() is None


def test_a_missing_path_is_reported_until_it_appears(tmp_path: Path) -> None:
    cluster = tmp_path / "later"
    watcher = TopologyWatcher([cluster])
    missing = watcher.poll()
    assert missing is not None and missing.topology is None
    assert [str(i) for i in missing.issues] == [f"{cluster}: no such file or directory"]
    assert watcher.poll() is None
    shutil.copytree(SEED, cluster)
    appeared = watcher.poll()
    assert appeared is not None and appeared.ok
    assert appeared.changed_files == sorted([str(cluster), *yaml_files(cluster)])


def test_single_files_and_the_plugin_override(cluster: Path) -> None:
    files = [cluster / name for name in ("clusternetwork.yaml", "hostsubnets.yaml")]
    result = TopologyWatcher(files, plugin=Plugin.SUBNET).poll()
    assert result is not None and result.ok and result.topology is not None
    assert result.topology.cluster_network.plugin is Plugin.SUBNET
    assert result.changed_files == sorted(str(f) for f in files)


def test_watchers_do_not_share_a_cache(cluster: Path) -> None:
    assert TopologyWatcher([cluster]).cache is not TopologyWatcher([cluster]).cache
