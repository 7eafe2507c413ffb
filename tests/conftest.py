"""Shared pytest fixtures. `private_ovs`: one private OVS instance for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.privateovs import PrivateOvs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ovs: needs real Open vSwitch (fails if missing)")


@pytest.fixture(scope="session")
def private_ovs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateOvs]:
    """A dummy-datapath OVS instance under a session tmp dir; tests use unique bridge names."""
    with PrivateOvs(tmp_path_factory.mktemp("ovs")) as ovs:
        yield ovs
