"""Shared pytest set-up: the `ovs` marker on integration tests, and `private_ovs`, one private
OVS instance for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.ovs.privateovs import PrivateOvs

INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration needs the machine's system parts (root, Open
    vSwitch, namespaces, Mininet): mark it `ovs`, so that `-m "not ovs"` runs anywhere."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.ovs)


@pytest.fixture(scope="session")
def private_ovs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateOvs]:
    """A dummy-datapath OVS instance under a session tmp dir; tests use unique bridge names."""
    with PrivateOvs(tmp_path_factory.mktemp("ovs")) as ovs:
        yield ovs
