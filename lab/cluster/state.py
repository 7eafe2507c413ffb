"""The one emulated cluster's state directory and its ledger of created resources.

Every resource is written to the ledger *before* it is created, so `down` can remove all of
it and nothing else, even after `up` crashed half-way.  Removal walks the ledger backwards
and tolerates what is already gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.ovs.netns import in_netns
from controller.ovs.pids import stop_pid
from lab.errors import LabUsageError

DEFAULT_DIR = Path(os.environ.get("OSDN_CLUSTER_DIR", "/run/osdn-cluster"))
LEDGER = "ledger.jsonl"
CLUSTER = "cluster.json"


class ClusterStateError(LabUsageError):
    """No cluster is up in the state directory, or one already is."""


@dataclass
class Ledger:
    directory: Path

    @property
    def path(self) -> Path:
        return self.directory / LEDGER

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def record(self, kind: str, **details: Any) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps({"kind": kind, **details}) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def netns(self, name: str) -> None:
        self.record("netns", name=name)
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        subprocess.run([*in_netns(name), "ip", "link", "set", "lo", "up"], check=True)

    def process(self, pidfile: Path, marker: str) -> None:
        """Remember a daemon by pidfile (written by the daemon or by us)."""
        self.record("process", pidfile=str(pidfile), marker=marker)

    def teardown(self, log: Any = print) -> None:
        """Undo every ledger entry, newest first, then remove the state directory."""
        for entry in reversed(self.entries()):
            try:
                _undo(entry)
            except Exception as error:  # keep going: remove everything else
                log(f"down: {entry}: {error}")
        shutil.rmtree(self.directory, ignore_errors=True)


def _undo(entry: dict[str, Any]) -> None:
    if entry["kind"] == "process":
        pidfile = Path(entry["pidfile"])
        if pidfile.exists():
            text = pidfile.read_text().strip()
            if text:
                stop_pid(int(text), entry["marker"])
    elif entry["kind"] == "netns":
        name = entry["name"]
        if subprocess.run(["ip", "netns", "pids", name], capture_output=True).returncode == 0:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def save_cluster(directory: Path, data: dict[str, Any]) -> None:
    (directory / CLUSTER).write_text(json.dumps(data, indent=2))


def load_cluster(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / CLUSTER).read_text())
    except FileNotFoundError:
        raise ClusterStateError(f"no emulated cluster is up (no {directory / CLUSTER})") from None
