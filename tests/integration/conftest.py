"""Fixtures shared by the controller tests (a module may define its own to override them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.ovs.privateovs import PrivateOvs
from lab.harness import ControllerProcess


@pytest.fixture
def ref_ovs(tmp_path: Path) -> Iterator[PrivateOvs]:
    with PrivateOvs(tmp_path / "refovs") as ovs:
        yield ovs


@pytest.fixture
def node_ovs(tmp_path: Path) -> Iterator[PrivateOvs]:
    with PrivateOvs(tmp_path / "ovs-node2") as ovs:
        yield ovs


@pytest.fixture
def make_controller(tmp_path: Path) -> Iterator[Callable[..., ControllerProcess]]:
    made: list[ControllerProcess] = []

    def make(config: dict[str, Any], **kwargs: Any) -> ControllerProcess:
        ctl = ControllerProcess(config, tmp_path / "controller", **kwargs)
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        ctl.stop()
