"""`osdn check` over generated mutants of the example clusters: never a traceback, never a
hang, and every problem located (a file and line, or an object).

The mutants come from tests/support/mutate.py with a fixed seed, so a failure names a mutant
that can be made again: `mutants(files, count, seed)`, then its index.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli import main as osdn
from tests.support.mutate import MUTATIONS, Mutant, mutants

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLUSTERS = ("seed-cluster", "rich-cluster")
MUTANTS_PER_CLUSTER = 300
SEED = 10
SECONDS_PER_MUTANT = 10.0  # a hang is a mutant that takes longer than this
# "file:line: ...", or "file: Kind/[namespace/]name: ..."
LOCATED = re.compile(r"^[^:]+:[1-9]\d*: |^[^:]+: [A-Z]\w*/\S+: ")


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check(directory: Path) -> tuple[int, list[str]]:
    """`osdn check DIRECTORY` in this process: exit code and the problem lines."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = osdn(["check", str(directory)])
    lines = err.getvalue().splitlines()
    return code, [line for line in lines if not re.match(r"^\d+ problem\(s\);", line)]


def whole_input(line: str, directory: Path) -> bool:
    """A problem of the whole input (a missing ClusterNetwork) names the paths read."""
    return line.startswith(f"{directory}: ")


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_osdn_check_survives_every_mutant(cluster: str, tmp_path: Path) -> None:
    directory = Path(shutil.copytree(EXAMPLES / cluster, tmp_path / cluster))
    originals = {path.name: path.read_bytes() for path in directory.glob("*.yaml")}
    crashed: list[str] = []
    unlocated: list[str] = []
    rejected = accepted = 0
    slowest = (0.0, "")
    for index, mutant in enumerate(mutants(originals, MUTANTS_PER_CLUSTER, SEED)):
        target = directory / mutant.file
        target.write_bytes(mutant.content)
        started = time.monotonic()
        try:
            with time_bound(SECONDS_PER_MUTANT):
                code, problems = check(directory)
        except Exception as error:  # a traceback (or a hang) is what this test looks for
            crashed.append(f"#{index} {mutant.describe()}: {type(error).__name__}: {error}")
            continue
        finally:
            target.write_bytes(originals[mutant.file])
        slowest = max(slowest, (time.monotonic() - started, f"#{index} {mutant.describe()}"))
        assert code in (0, 1), (code, mutant.describe())
        if code == 0:
            accepted += 1
            continue
        rejected += 1
        assert problems, f"#{index} {mutant.describe()}: exit 1 without a problem"
        unlocated += [f"#{index} {mutant.describe()}: {line}" for line in problems
                      if not LOCATED.match(line) and not whole_input(line, directory)]
    assert not crashed, "\n".join(crashed)
    assert not unlocated, "\n".join(unlocated[:40])
    assert rejected > MUTANTS_PER_CLUSTER // 2, (rejected, accepted)
    assert slowest[0] < SECONDS_PER_MUTANT, slowest


def test_the_mutants_are_deterministic_and_use_every_mutation() -> None:
    files = {"a.yaml": (EXAMPLES / "seed-cluster" / "pods.yaml").read_bytes()}
    first: list[Mutant] = list(mutants(files, 60, SEED))
    assert first == list(mutants(files, 60, SEED))
    assert {m.mutations[0] for m in first} == set(MUTATIONS)
