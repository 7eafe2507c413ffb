"""deploy/: the OpenShift manifests are valid Kubernetes objects, and they say what the code
does: the ClusterRole grants list/watch of exactly the kinds `controller.kube` reads, the
ConfigMap's osdn.conf loads with the product's own settings loader as `source = kubernetes`,
the DaemonSet sets only variables that loader reads and mounts the config where the image
reads it.  Each check is also run on a broken copy, to show it can fail.

Schemas: `kubernetes-validate` bundles Kubernetes 1.25 and later only, none as old as
OpenShift 3.11's 1.11; the manifests are checked against the oldest bundled, in strict mode
(unknown fields are errors), and use only API versions and fields that 1.11 has too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from os_ken.ofproto.ofproto_common import OFP_TCP_PORT
from oslo_config import cfg

from controller.config import OPTIONS, ConfigError, ControllerSettings, load_settings
from controller.kube.client import KINDS, KindInfo

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "docker" / "controller" / "Dockerfile"
SCHEMA_VERSION = "1.25"  # the oldest kubernetes-validate bundles (3.11 is Kubernetes 1.11)
NODE = "node1.example.com"  # what the downward API would give for spec.nodeName
READ_VERBS = ["list", "watch"]  # the client lists and watches collections; it never gets one


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    return found


DOCUMENTS = _documents()


def one(kind: str) -> dict[str, Any]:
    matches = [doc for _, doc in DOCUMENTS if doc["kind"] == kind]
    assert len(matches) == 1, f"deploy/ should hold one {kind}, holds {len(matches)}"
    return copy.deepcopy(matches[0])


def container(daemonset: dict[str, Any]) -> dict[str, Any]:
    containers = daemonset["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


# ---------------------------------------------------------------------------------------------
# The checks, as functions returning every problem, so that each can be shown to fail


def rbac_problems(role: dict[str, Any], kinds: dict[str, KindInfo]) -> list[str]:
    """What the ClusterRole grants beyond, or short of, list+watch of each kind in `kinds`."""
    problems = []
    granted: set[tuple[str, str]] = set()
    for number, rule in enumerate(role.get("rules", [])):
        where = f"rules[{number}]"
        if sorted(rule.get("verbs", [])) != READ_VERBS:
            problems.append(f"{where}: verbs {rule.get('verbs')}, want exactly {READ_VERBS}")
        for field in ("resourceNames", "nonResourceURLs"):
            if field in rule:
                problems.append(f"{where}: {field} {rule[field]}: not needed")
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                if (group, resource) in granted:
                    problems.append(f"{where}: {group or 'core'}/{resource} granted twice")
                granted.add((group, resource))
    wanted = {(info.group, info.plural) for info in kinds.values()}
    for group, resource in sorted(wanted - granted):
        problems.append(f"{group or 'core'}/{resource}: watched by the controller, not granted")
    for group, resource in sorted(granted - wanted):
        problems.append(f"{group or 'core'}/{resource}: granted, not watched by the controller")
    return problems


def environment(daemonset: dict[str, Any]) -> dict[str, str]:
    """The controller's environment as the kubelet would set it on NODE."""
    values = {}
    for variable in container(daemonset).get("env", []):
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        else:
            field = variable["valueFrom"]["fieldRef"]["fieldPath"]
            assert field == "spec.nodeName", f"{variable['name']}: from {field}"
            values[variable["name"]] = NODE
    return values


def env_problems(daemonset: dict[str, Any]) -> list[str]:
    """The DaemonSet's variables that the settings loader does not read."""
    read = {option.env for option in OPTIONS}
    return [f"env {name}: not a setting the controller reads"
            for name in environment(daemonset) if name not in read]


def config_path(configmap: dict[str, Any], daemonset: dict[str, Any]) -> dict[str, str]:
    """Where in the container each of the ConfigMap's keys appears."""
    pod = daemonset["spec"]["template"]["spec"]
    volumes = [v["name"] for v in pod.get("volumes", [])
               if v.get("configMap", {}).get("name") == configmap["metadata"]["name"]]
    return {key: f"{mount['mountPath']}/{key}"
            for mount in container(daemonset).get("volumeMounts", [])
            if mount["name"] in volumes for key in configmap["data"]}


def entrypoint_config_file() -> str:
    """The --config-file of the controller image's ENTRYPOINT."""
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENTRYPOINT "):
            words = json.loads(line.removeprefix("ENTRYPOINT "))
            return str(words[words.index("--config-file") + 1])
    raise AssertionError(f"{DOCKERFILE}: no ENTRYPOINT")


def load(configmap: dict[str, Any], daemonset: dict[str, Any],
         tmp_path: Path) -> tuple[ControllerSettings, cfg.ConfigOpts]:
    """The settings the controller would start with, by the product's own loader."""
    path = tmp_path / "osdn.conf"
    path.write_text(configmap["data"]["osdn.conf"])
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("ofp_listen_host"))  # os-ken's, in [DEFAULT]
    conf(args=["--config-file", str(path)], default_config_files=[])
    return load_settings(conf, environment(daemonset)), conf


def broken(doc: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(doc)
    change(copied)
    return copied


# ---------------------------------------------------------------------------------------------
# Against the Kubernetes schemas


def test_the_manifests_are_the_objects_the_readme_creates() -> None:
    kinds = [doc["kind"] for _, doc in DOCUMENTS]
    assert kinds == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                     "ConfigMap", "DaemonSet"]  # `oc create -f deploy/` goes by file name


@pytest.mark.parametrize("name, doc", DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_each_manifest_validates_against_the_kubernetes_schema(
        name: str, doc: dict[str, Any]) -> None:
    assert kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True) == SCHEMA_VERSION


def broken_daemonsets() -> Iterator[tuple[str, dict[str, Any]]]:
    daemonset = one("DaemonSet")
    yield "hostNetwork as a string", broken(
        daemonset, lambda d: d["spec"]["template"]["spec"].update(hostNetwork="true"))
    yield "a misspelt field", broken(
        daemonset, lambda d: d["spec"]["template"]["spec"].update(
            hostNetwrok=d["spec"]["template"]["spec"].pop("hostNetwork")))
    yield "a variable without a name", broken(
        daemonset, lambda d: container(d)["env"][0].pop("name"))
    yield "no selector", broken(daemonset, lambda d: d["spec"].pop("selector"))


BROKEN = list(broken_daemonsets())


@pytest.mark.parametrize("what, doc", BROKEN, ids=[what for what, _ in BROKEN])
def test_the_schema_check_rejects_a_broken_daemonset(what: str, doc: dict[str, Any]) -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True)


# ---------------------------------------------------------------------------------------------
# RBAC: exactly what controller.kube watches


def test_the_clusterrole_grants_list_and_watch_of_exactly_the_watched_kinds() -> None:
    assert rbac_problems(one("ClusterRole"), KINDS) == []


def test_the_rbac_check_notices_too_much_and_too_little() -> None:
    role = one("ClusterRole")
    extra_verb = broken(role, lambda r: r["rules"][0]["verbs"].append("get"))
    assert rbac_problems(extra_verb, KINDS) == [
        "rules[0]: verbs ['list', 'watch', 'get'], want exactly ['list', 'watch']"]
    no_pods = broken(role, lambda r: r["rules"][0]["resources"].remove("pods"))
    assert rbac_problems(no_pods, KINDS) == [
        "core/pods: watched by the controller, not granted"]
    with_endpoints = broken(role, lambda r: r["rules"][0]["resources"].append("endpoints"))
    assert rbac_problems(with_endpoints, KINDS) == [
        "core/endpoints: granted, not watched by the controller"]
    # a kind the controller started watching would need a grant
    more = {**KINDS, "Node": KindInfo("Node", "v1", "nodes")}
    assert rbac_problems(role, more) == ["core/nodes: watched by the controller, not granted"]


def test_the_binding_gives_the_role_to_the_daemonsets_service_account() -> None:
    namespace = one("Namespace")["metadata"]["name"]
    account = one("ServiceAccount")["metadata"]
    binding = one("ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole",
                                  "name": one("ClusterRole")["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": namespace}]
    daemonset = one("DaemonSet")
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]
    for kind in ("ServiceAccount", "ConfigMap", "DaemonSet"):
        assert one(kind)["metadata"]["namespace"] == namespace, kind


# ---------------------------------------------------------------------------------------------
# The ConfigMap and the DaemonSet, read by the product's own settings loader


def test_the_configmaps_osdn_conf_loads_as_source_kubernetes(tmp_path: Path) -> None:
    settings, conf = load(one("ConfigMap"), one("DaemonSet"), tmp_path)
    assert settings.source == "kubernetes"
    assert settings.kubeconfig is None  # the pod's service account
    assert settings.node == NODE  # from the downward API
    assert conf.ofp_listen_host == "127.0.0.1"  # br0 on the same host; nobody else


def test_the_settings_check_fails_on_a_bad_osdn_conf(tmp_path: Path) -> None:
    typo = broken(one("ConfigMap"), lambda c: c["data"].update(
        {"osdn.conf": c["data"]["osdn.conf"].replace("source =", "sorce =")}))
    with pytest.raises(ConfigError) as caught:
        load(typo, one("DaemonSet"), tmp_path)
    assert "sorce = kubernetes: unknown setting (did you mean source?)" in str(caught.value)


def test_the_daemonset_sets_only_variables_the_loader_reads(tmp_path: Path) -> None:
    daemonset = one("DaemonSet")
    assert env_problems(daemonset) == []
    assert environment(daemonset) == {"OSDN_NODE": NODE}
    misspelt = broken(daemonset, lambda d: container(d)["env"][0].update(name="OSDN_NODES"))
    assert env_problems(misspelt) == ["env OSDN_NODES: not a setting the controller reads"]
    with pytest.raises(ConfigError) as caught:  # and the controller would not start
        load(one("ConfigMap"), misspelt, tmp_path)
    assert "OSDN_NODES=node1.example.com: unknown setting" in str(caught.value)
    other = broken(daemonset, lambda d: container(d)["env"].append(
        {"name": "NODE_NAME", "value": "x"}))
    assert env_problems(other) == ["env NODE_NAME: not a setting the controller reads"]


def test_the_probes_reach_what_the_settings_open(tmp_path: Path) -> None:
    daemonset = one("DaemonSet")
    settings, _ = load(one("ConfigMap"), daemonset, tmp_path)
    ready = container(daemonset)["readinessProbe"]["httpGet"]
    assert (ready["host"], ready["port"], ready["path"]) == (
        settings.metrics_address, settings.metrics_port, "/metrics")
    alive = container(daemonset)["livenessProbe"]["tcpSocket"]
    assert (alive["host"], alive["port"]) == ("127.0.0.1", OFP_TCP_PORT)


def test_the_config_is_mounted_where_the_image_reads_it() -> None:
    daemonset = one("DaemonSet")
    assert "command" not in container(daemonset) and "args" not in container(daemonset)
    assert config_path(one("ConfigMap"), daemonset) == {"osdn.conf": entrypoint_config_file()}
    moved = broken(daemonset, lambda d: container(d)["volumeMounts"][0].update(
        mountPath="/etc/osdn-config"))
    assert config_path(one("ConfigMap"), moved) != {"osdn.conf": entrypoint_config_file()}


def test_the_daemonset_runs_on_every_node_on_the_hosts_network() -> None:
    pod = one("DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert {"operator": "Exists"} in pod["tolerations"]  # every taint, masters' included
    assert "nodeSelector" not in pod and "affinity" not in pod
    annotations = one("Namespace")["metadata"]["annotations"]
    assert annotations["openshift.io/node-selector"] == ""  # no default project selector
    security = container(one("DaemonSet"))["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}  # OpenFlow over TCP needs none
    assert "privileged" not in security
    # the hostnetwork SCC allows no host paths, and the controller needs none
    assert all(set(volume) == {"name", "configMap"} for volume in pod["volumes"])


def test_the_image_user_satisfies_run_as_non_root() -> None:
    """The kubelet can check runAsNonRoot only against a numeric USER (else it refuses to
    start the container); OpenShift's SCC gives the pod a UID of its own anyway."""
    assert container(one("DaemonSet"))["securityContext"]["runAsNonRoot"] is True
    users = [line.split()[1] for line in DOCKERFILE.read_text().splitlines()
             if line.startswith("USER ")]
    assert len(users) == 1 and users[0].isdigit() and int(users[0]) > 0, users

