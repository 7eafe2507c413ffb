"""`osdn check|render --kubeconfig` and `osdn export`, with the client replaced by the
in-memory list/watch (lab/kubeapi.py's `ApiStore`; over HTTP: tests/unit/test_kube_client.py):
render from the API equals render of the files, and render of the export equals both."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import controller.kube.source  # noqa: F401 (imported before the fixture patches its client)
from controller import cli
from lab.kubeapi import ApiStore, api_objects
from tests.golden.update import CLUSTERS
from topology.model import Plugin

NODES = {"seed": "node2.ocp.cn", "rich": "node-b"}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> ApiStore:
    fake = ApiStore(api_objects(CLUSTERS[request.param]))
    monkeypatch.setattr("controller.kube.client.KubeClient", lambda kubeconfig: fake)
    monkeypatch.setattr("controller.kube.source.KubeClient", lambda kubeconfig: fake)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("api", sorted(CLUSTERS), indirect=True)
@pytest.mark.parametrize("plugin", [p.short_name for p in Plugin])
def test_render_from_the_api_and_from_its_export_equal_render_of_the_files(
        api: ApiStore, plugin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest) -> None:
    cluster = request.node.callspec.params["api"]
    node = NODES[cluster]
    status, files, _ = run(capsys, "render", str(CLUSTERS[cluster]), "--node", node,
                           "--plugin", plugin, "--dns", "off")
    assert status == 0
    status, live, _ = run(capsys, "render", "--kubeconfig", "kc", "--node", node,
                          "--plugin", plugin, "--dns", "off")
    assert status == 0
    assert live == files
    status, out, _ = run(capsys, "export", "--kubeconfig", "kc", str(tmp_path / "export"))
    assert status == 0 and "pods.yaml:" in out
    status, exported, _ = run(capsys, "render", str(tmp_path / "export"), "--node", node,
                              "--plugin", plugin, "--dns", "off")
    assert status == 0
    assert exported == files


@pytest.mark.parametrize("api", ["seed"], indirect=True)
def test_export_writes_one_list_per_kind_as_oc_does(
        api: ApiStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "export", "--kubeconfig", "kc", str(tmp_path))
    assert status == 0
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["clusternetworks.yaml", "egressnetworkpolicies.yaml", "hostsubnets.yaml",
                       "namespaces.yaml", "netnamespaces.yaml", "networkpolicies.yaml",
                       "pods.yaml", "services.yaml"]
    pods = yaml.safe_load((tmp_path / "pods.yaml").read_text())
    assert pods["kind"] == "List" and pods["apiVersion"] == "v1"
    assert {item["kind"] for item in pods["items"]} == {"Pod"}
    assert len(pods["items"]) == len(api.objects["Pod"])
    assert "pods.yaml: 4 Pod" in out


@pytest.mark.parametrize("api", ["seed"], indirect=True)
def test_check_from_the_api_skips_an_invalid_object_with_a_warning(
        api: ApiStore, capsys: pytest.CaptureFixture[str]) -> None:
    api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "x"},
             "spec": {"nodeName": "node2.ocp.cn"}, "status": {"podIP": "300.1.1.1"}})
    status, out, err = run(capsys, "check", "--kubeconfig", "kc")
    assert status == 0 and out
    assert 'kubernetes: Pod/x/bad: status.podIP: invalid IPv4 address ("300.1.1.1")' in err


def test_paths_or_kubeconfig_not_both_nor_neither(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check")[0] == 1
    status, _, err = run(capsys, "check", "x.yaml", "--kubeconfig", "kc")
    assert status == 1 and "either PATH... or --kubeconfig FILE" in err


def test_a_missing_kubeconfig_is_one_clear_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "check", "--kubeconfig", str(tmp_path / "none"))
    assert status == 1
    assert err.startswith(f"osdn: --kubeconfig: {tmp_path / 'none'}")


@pytest.mark.parametrize("api", ["seed"], indirect=True)
def test_diff_against_the_api_as_against_the_files(
        api: ApiStore, capsys: pytest.CaptureFixture[str]) -> None:
    """`osdn diff --kubeconfig FILE --node N DUMP` finds the saved dump's planted drift as
    `osdn diff PATH...` does."""
    dump = str(Path(__file__).parent / "data" / "drift" / "node2-multitenant.dump")
    seed = str(CLUSTERS["seed"])
    status, from_files, _ = run(capsys, "diff", seed, "--node", "node2.ocp.cn", dump)
    assert status == 1 and from_files.startswith("node2.ocp.cn: 1 missing, 4 extra, 0 changed")
    status, from_api, _ = run(capsys, "diff", "--kubeconfig", "kc", "--node", "node2.ocp.cn",
                              dump)
    assert status == 1 and from_api == from_files
