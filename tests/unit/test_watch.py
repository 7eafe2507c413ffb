"""TopologyWatcher: stat-only polls, re-parsing only changed files, half-written files."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import controller.watch
import topology.load
import topology.load.filecache
from controller.agent import NodeAgent
from controller.config import ControllerSettings
from controller.metrics import Metrics
from controller.watch import TopologyWatcher
from tests.support.configmap import configmap_mount
from tests.support.fakeswitch import Tasks, fake_runtime
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


# --- issue 10: changes that settle, stamps that cannot be put back, ConfigMap mounts ----------


class Clocks:
    """The watcher's monotonic clock and wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = time.time()

    def advance(self, seconds: float, wall: bool = True) -> None:
        self.now += seconds
        if wall:
            self.wall += seconds


def settling_watcher(cluster: Path, clocks: Clocks, settle: float = 0.3) -> TopologyWatcher:
    watcher = TopologyWatcher([cluster], settle=settle, clock=lambda: clocks.now,
                              wall_clock=lambda: clocks.wall)
    assert watcher.poll() is not None  # the first poll loads at once
    return watcher


def test_a_change_is_loaded_once_it_has_been_stable_for_the_settle_time(cluster: Path) -> None:
    clocks = Clocks()
    watcher = settling_watcher(cluster, clocks)
    pods = cluster / "pods.yaml"
    pods.write_text(pods.read_text().replace("app: web\n", "app: website\n"))
    clocks.wall = time.time()  # the file's ctime is now
    assert watcher.poll() is None
    assert watcher.due_in() == pytest.approx(0.3, abs=0.05)
    clocks.advance(0.2)
    assert watcher.poll() is None and watcher.due_in() == pytest.approx(0.1, abs=0.05)
    clocks.advance(0.11)
    result = watcher.poll()
    assert result is not None and result.ok and result.changed_files == [str(pods)]
    assert watcher.due_in() is None and watcher.poll() is None


def test_a_change_older_than_the_settle_time_is_loaded_at_once(cluster: Path) -> None:
    clocks = Clocks()
    watcher = settling_watcher(cluster, clocks)
    pods = cluster / "pods.yaml"
    pods.write_text(pods.read_text().replace("app: web\n", "app: website\n"))
    clocks.wall = time.time() + 0.5  # written half a second before this poll (ctime)
    result = watcher.poll()
    assert result is not None and result.ok


def test_a_file_rewritten_within_the_settle_time_is_loaded_once_whole(cluster: Path) -> None:
    clocks = Clocks()
    watcher = settling_watcher(cluster, clocks)
    pods = cluster / "pods.yaml"
    whole = pods.read_text()
    with open(pods, "w") as out:  # truncate, write half, pause, write the rest
        out.write(whole[: len(whole) // 2])
        out.flush()
        clocks.wall = time.time()
        assert watcher.poll() is None
        clocks.advance(0.2)
        assert watcher.poll() is None
        out.write(whole[len(whole) // 2:])
    clocks.wall = time.time()
    assert watcher.poll() is None  # changed again: settling starts over
    clocks.advance(0.31)
    result = watcher.poll()
    assert result is not None and result.ok and result.issues == []


def test_a_file_emptied_must_stay_empty_ten_times_as_long(cluster: Path) -> None:
    clocks = Clocks()
    watcher = settling_watcher(cluster, clocks)
    pods = cluster / "pods.yaml"
    whole = pods.read_text()
    pods.write_text("")  # truncated, its new content not written yet
    clocks.wall = time.time()
    assert watcher.poll() is None
    assert watcher.due_in() == pytest.approx(10 * 0.3, abs=0.05)
    clocks.advance(1.0)
    assert watcher.poll() is None  # 1 s empty: still held
    pods.write_text(whole)  # the rewrite comes
    clocks.wall = time.time()
    assert watcher.poll() is None and watcher.due_in() == pytest.approx(0.3, abs=0.05)
    clocks.advance(0.31, wall=False)
    result = watcher.poll()
    assert result is not None and result.ok and len(result.topology.pods) > 0  # type: ignore[union-attr]
    # Emptied on purpose: loaded after ten times the settle time.
    pods.write_text("")
    clocks.wall = time.time()
    assert watcher.poll() is None
    clocks.advance(3.01)
    emptied = watcher.poll()
    assert emptied is not None and emptied.ok and emptied.topology is not None
    assert emptied.topology.pods == ()


def test_a_same_size_edit_with_its_mtime_put_back_is_seen(cluster: Path) -> None:
    watcher = TopologyWatcher([cluster])
    watcher.poll()
    pods = cluster / "pods.yaml"
    before = pods.stat()
    text = pods.read_text()
    assert "app: web\n" in text
    pods.write_text(text.replace("app: web\n", "app: wab\n"))  # same size
    os.utime(pods, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old mtime
    assert (pods.stat().st_size, pods.stat().st_mtime_ns) == (before.st_size,
                                                              before.st_mtime_ns)
    result = watcher.poll()
    assert result is not None and result.ok and result.topology is not None
    assert any(("app", "wab") in pod.labels for pod in result.topology.pods)


def test_a_touched_file_is_read_but_not_parsed_again(
        cluster: Path, parses: Counter[str]) -> None:
    watcher = TopologyWatcher([cluster])
    watcher.poll()
    parses.clear()
    pods = cluster / "pods.yaml"
    os.utime(pods)
    result = watcher.poll()
    assert result is not None and result.ok and result.changed_files == [str(pods)]
    assert not parses  # same content hash: the cached parse is reused


def test_a_configmap_update_is_seen_through_the_swapped_data_symlink(tmp_path: Path) -> None:
    files = {path.name: path.read_bytes() for path in SEED.glob("*.yaml")}
    mount = tmp_path / "mount"
    configmap_mount(mount, files, "2026_12_05_10_00_00.000000001")
    watcher = TopologyWatcher([mount])
    first = watcher.poll()
    assert first is not None and first.ok and first.issues == []
    assert first.changed_files == sorted(str(mount / name) for name in files)
    assert watcher.poll() is None
    pods = files["pods.yaml"].replace(b"app: web\n", b"app: wab\n")  # same size
    configmap_mount(mount, {**files, "pods.yaml": pods}, "2026_12_05_10_01_00.000000002")
    stamp = os.stat(mount / "..data" / "pods.yaml")
    old_mtime = os.stat(SEED / "pods.yaml").st_mtime_ns
    os.utime(mount / "..data" / "pods.yaml", ns=(stamp.st_atime_ns, old_mtime))
    updated = watcher.poll()
    assert updated is not None and updated.ok and updated.topology is not None
    assert str(mount / "pods.yaml") in updated.changed_files
    assert any(("app", "wab") in pod.labels for pod in updated.topology.pods)
    assert not [path for path in updated.changed_files if "/.." in path]


class StopWatching(Exception):
    pass


def test_the_agent_polls_again_when_a_change_is_due_not_a_whole_interval_later(
        cluster: Path) -> None:
    clock = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        if len(slept) > 1 and slept[-1] == 1.0 or len(slept) == 10:
            raise StopWatching
        slept.append(seconds)
        clock[0] += seconds
        if len(slept) == 1:  # a change lands during the first interval
            pods = cluster / "pods.yaml"
            pods.write_text(pods.read_text().replace("app: web\n", "app: website\n"))

    runtime = dataclasses.replace(fake_runtime(Tasks(), clock=lambda: clock[0]), sleep=sleep)
    settings = ControllerSettings((str(cluster),), dns="off", watch_interval=1.0,
                                  watch_settle=0.3)
    agent = NodeAgent(settings, Metrics(CollectorRegistry()), runtime)
    agent._load_topology()
    with pytest.raises(StopWatching):
        agent.watch_loop()
    # Then only until the change is due (the fake clock moves, file times do not: a second
    # short sleep may follow), then the interval again.
    assert slept[0] == 1.0 and slept[-1] == 1.0 and 2 <= len(slept) - 1 <= 3, slept
    assert sum(slept[1:-1]) == pytest.approx(0.3, abs=0.05), slept
    assert agent.topology is not None
    assert any(("app", "website") in pod.labels for pod in agent.topology.pods)
