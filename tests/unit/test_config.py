"""Controller settings: [osdn] in the config file, OSDN_* over it, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from oslo_config import cfg

from controller.config import (
    ConfigError,
    ControllerSettings,
    listener_warning,
    load_settings,
    ofp_listen_host,
    register_options,
)

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-cluster"


def configured(*files: Path) -> cfg.ConfigOpts:
    """A fresh ConfigOpts called as osken-manager calls cfg.CONF, with these files."""
    conf = cfg.ConfigOpts()
    args = [arg for path in files for arg in ("--config-file", str(path))]
    conf(args=args, default_config_files=[])
    return conf


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def problems(conf: cfg.ConfigOpts, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(conf, environ)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in tmp_path so config files can be named relatively, as users write them."""
    monkeypatch.chdir(tmp_path)


def test_defaults_with_only_the_topology(tmp_path: Path) -> None:
    conf = configured(write(tmp_path / "osdn.conf", f"[osdn]\ntopology = {SEED}\n"))
    assert load_settings(conf, {}) == ControllerSettings(topology=(str(SEED),))
    assert load_settings(conf, {}) == ControllerSettings(
        topology=(str(SEED),), node=None, masquerade_bit=0, metrics_port=0,
        metrics_address="127.0.0.1", watch=True, watch_interval=1.0, dns="system")


def test_every_option_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "extra.yaml").write_text("")
    conf = configured(write(Path("osdn.conf"), f"""\
[DEFAULT]
ofp_tcp_listen_port = 6653

[osdn]
topology = {SEED}, extra.yaml
node = node2.ocp.cn
masquerade_bit = 14
metrics_port = 9100
metrics_address = 0.0.0.0
watch = no
watch_interval = 0.25
dns = off
handshake_timeout = 2.5
max_pending_handshakes = 10
"""))
    assert load_settings(conf, {}) == ControllerSettings(
        topology=(str(SEED), "extra.yaml"), node="node2.ocp.cn", masquerade_bit=14,
        metrics_port=9100, metrics_address="0.0.0.0", watch=False, watch_interval=0.25,
        dns="off", handshake_timeout=2.5, max_pending_handshakes=10)


def test_environment_alone_without_a_config_file() -> None:
    settings = load_settings(configured(), {"OSDN_TOPOLOGY": str(SEED), "OSDN_WATCH": "off",
                                            "OSDN_MASQUERADE_BIT": "0x0e", "PATH": "/bin"})
    assert settings == ControllerSettings(topology=(str(SEED),), watch=False, masquerade_bit=14)


def test_environment_overrides_the_file() -> None:
    conf = configured(write(Path("osdn.conf"), """\
[osdn]
topology = missing-dir
node = node1.ocp.cn
metrics_port = 70000
dns = off
"""))
    settings = load_settings(conf, {"OSDN_TOPOLOGY": str(SEED), "OSDN_METRICS_PORT": "9100",
                                    "OSDN_NODE": ""})
    # The file's bad values are never used, so they are not errors; dns still comes from it.
    assert settings == ControllerSettings(topology=(str(SEED),), metrics_port=9100, dns="off")


def test_a_later_config_file_overrides_an_earlier_one() -> None:
    first = write(Path("base.conf"), f"[osdn]\ntopology = {SEED}\nmetrics_port = 1\n")
    second = write(Path("site.conf"), "[osdn]\nmetrics_port = 2\n")
    assert load_settings(configured(first, second), {}).metrics_port == 2


def test_every_bad_setting_at_once_each_with_its_source() -> None:
    conf = configured(write(Path("osdn.conf"), """\
[osdn]
topology = cluster, more.yaml
metrics_port = 70000
metrics_address = not an address!
watch = perhaps
watch_interval = 0
dns = google
metrics_prot = 9100
"""))
    environ = {"OSDN_MASQUERADE_BIT": "abc", "OSDN_NODES": "node1"}
    assert problems(conf, environ) == [
        "osdn.conf [osdn] topology = cluster, more.yaml: topology path cluster does not exist",
        "osdn.conf [osdn] topology = cluster, more.yaml: topology path more.yaml does not exist",
        "OSDN_MASQUERADE_BIT=abc: masquerade_bit must be an integer 0..31",
        "osdn.conf [osdn] metrics_port = 70000: metrics_port must be an integer 0..65535 "
        "(0 = off)",
        "osdn.conf [osdn] metrics_address = not an address!: metrics_address must be an IP "
        "address or a host name",
        "osdn.conf [osdn] watch = perhaps: watch must be true or false (also yes/no, on/off, "
        "1/0)",
        "osdn.conf [osdn] watch_interval = 0: watch_interval must be a number of seconds > 0",
        "osdn.conf [osdn] dns = google: dns must be system, off, or a name server's IPv4 "
            "address[:port]",
        "osdn.conf [osdn] metrics_prot = 9100: unknown setting (did you mean metrics_port?)",
        "OSDN_NODES=node1: unknown setting (did you mean OSDN_NODE?)",
    ]


def test_the_file_that_set_a_bad_value_is_named() -> None:
    first = write(Path("base.conf"), f"[osdn]\ntopology = {SEED}\n")
    second = write(Path("site.conf"), "[osdn]\nwatch_interval = -1\n")
    assert problems(configured(first, second), {}) == [
        "site.conf [osdn] watch_interval = -1: watch_interval must be a number of seconds > 0"]


def test_missing_topology_names_the_config_files() -> None:
    conf = configured(write(Path("osdn.conf"), "[osdn]\nnode = node1\n"))
    assert problems(conf, {}) == [
        "topology is required: set [osdn] topology in osdn.conf or OSDN_TOPOLOGY"]


def test_missing_topology_without_any_config_file() -> None:
    assert problems(configured(), {}) == [
        "topology is required: set OSDN_TOPOLOGY or [osdn] topology in a config file "
        "(--config-file)"]


def test_an_empty_topology_list() -> None:
    assert problems(configured(), {"OSDN_TOPOLOGY": " , "}) == [
        "OSDN_TOPOLOGY= , : topology must name at least one file or directory"]


def test_a_key_given_twice_in_one_file() -> None:
    conf = configured(write(Path("osdn.conf"), f"[osdn]\ntopology = {SEED}\nnode = a\nnode = b\n"))
    assert problems(conf, {}) == ["osdn.conf [osdn] node: given 2 times in one file (a, b); "
                                  "give it once"]


@pytest.mark.parametrize(("name", "text"), [
    ("MASQUERADE_BIT", "32"), ("MASQUERADE_BIT", "-1"), ("MASQUERADE_BIT", "1.5"),
    ("METRICS_PORT", "-1"), ("METRICS_PORT", "65536"), ("WATCH_INTERVAL", "nan"),
    ("WATCH_INTERVAL", "inf"), ("WATCH_INTERVAL", "soon"), ("WATCH", ""), ("DNS", "SYSTEM"),
    ("HANDSHAKE_TIMEOUT", "0"), ("MAX_PENDING_HANDSHAKES", "0"),
])
def test_out_of_range_values_are_rejected(name: str, text: str) -> None:
    found = problems(configured(), {"OSDN_TOPOLOGY": str(SEED), f"OSDN_{name}": text})
    assert len(found) == 1 and found[0].startswith(f"OSDN_{name}={text}: {name.lower()} must ")


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("Yes", True), ("on", True), ("1", True),
    ("false", False), ("NO", False), ("off", False), ("0", False),
])
def test_booleans_as_oslo_config_spells_them(text: str, expected: bool) -> None:
    environ = {"OSDN_TOPOLOGY": str(SEED), "OSDN_WATCH": text}
    assert load_settings(configured(), environ).watch is expected


def test_other_sections_belong_to_os_ken(tmp_path: Path) -> None:
    conf = configured(write(Path("osdn.conf"),
                            f"[DEFAULT]\nwhatever = 1\n[ssl]\nx = 2\n[osdn]\ntopology = {SEED}\n"))
    assert load_settings(conf, {}).topology == (str(SEED),)


def test_options_can_be_registered_after_the_files_were_parsed() -> None:
    """osken-manager parses cfg.CONF before it imports the app that registers them."""
    conf = configured(write(Path("osdn.conf"), f"[osdn]\ntopology = {SEED}\nmetrics_port = 9\n"))
    register_options(conf)
    register_options(conf)  # idempotent
    assert conf.osdn.metrics_port == "9"
    assert load_settings(conf, {}).metrics_port == 9


def test_dns_maps_to_a_query() -> None:
    assert callable(ControllerSettings(topology=("x",)).make_dns_query())
    assert callable(ControllerSettings(topology=("x",), dns="127.0.0.1:5353").make_dns_query())
    assert ControllerSettings(topology=("x",), dns="off").make_dns_query() is None


def test_dns_takes_a_name_server() -> None:
    env = {"OSDN_TOPOLOGY": str(SEED)}
    assert load_settings(configured(), {**env, "OSDN_DNS": "10.0.0.2:5353"}).dns == "10.0.0.2:5353"
    assert problems(configured(), {**env, "OSDN_DNS": "dns.example:53"}) == [
        "OSDN_DNS=dns.example:53: dns must be system, off, or a name server's IPv4 "
        "address[:port]"]


def test_oslo_config_s_own_environment_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_OSDN__METRICS_PORT", "http")
    assert problems(configured(), {"OSDN_TOPOLOGY": str(SEED)}) == [
        "OS_OSDN__METRICS_PORT=http: metrics_port must be an integer 0..65535 (0 = off)"]


# ------------------------------------------------------------------ the OpenFlow listener


def with_listen_option(*args: str) -> cfg.ConfigOpts:
    """A ConfigOpts with os-ken's ``ofp-listen-host`` (as os-ken registers it), parsed."""
    conf = cfg.ConfigOpts()
    conf.register_cli_opt(cfg.StrOpt("ofp-listen-host", default="0.0.0.0"))
    conf(args=list(args), default_config_files=[])
    return conf


NODE_SET = ControllerSettings(topology=("x",), node="node2.ocp.cn")


def test_with_node_set_the_listener_defaults_to_loopback() -> None:
    assert ofp_listen_host(with_listen_option(), NODE_SET) == "127.0.0.1"


def test_an_explicit_listen_host_wins(tmp_path: Path) -> None:
    assert ofp_listen_host(with_listen_option("--ofp-listen-host", "0.0.0.0"), NODE_SET) is None
    conf_file = write(tmp_path / "os-ken.conf", "[DEFAULT]\nofp_listen_host = 10.0.0.1\n")
    assert ofp_listen_host(with_listen_option("--config-file", str(conf_file)),
                           NODE_SET) is None


def test_without_node_os_ken_s_listener_setting_stands() -> None:
    assert ofp_listen_host(with_listen_option(), ControllerSettings(topology=("x",))) is None
    assert ofp_listen_host(cfg.ConfigOpts(), NODE_SET) is None  # os-ken's option absent


def test_a_listener_other_hosts_reach_without_a_ca_is_warned_about() -> None:
    assert listener_warning("127.0.0.1", False) is None
    assert listener_warning("::1", False) is None
    assert listener_warning("localhost", False) is None
    assert listener_warning("10.0.0.1", True) is None
    assert "0.0.0.0 without TLS client certificates" in (listener_warning("0.0.0.0", False) or "")


def test_source_kubernetes_needs_no_topology_and_takes_a_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = write(tmp_path / "kubeconfig", "apiVersion: v1\nkind: Config\n")
    conf = configured(write(Path("osdn.conf"), f"""\
[osdn]
source = kubernetes
kubeconfig = {kubeconfig}
node = node2.ocp.cn
"""))
    assert load_settings(conf, {}) == ControllerSettings(
        source="kubernetes", kubeconfig=str(kubeconfig), node="node2.ocp.cn")
    # unset kubeconfig: the client's default resolution (in-cluster, $KUBECONFIG, ~/.kube)
    assert load_settings(configured(), {"OSDN_SOURCE": "kubernetes"}) == ControllerSettings(
        source="kubernetes")
    assert load_settings(configured(), {"OSDN_SOURCE": "kubernetes", "OSDN_KUBECONFIG": ""}) \
        == ControllerSettings(source="kubernetes")


def test_bad_source_and_kubeconfig_are_named_with_their_origin() -> None:
    conf = configured(write(Path("osdn.conf"), "[osdn]\nsource = etcd\n"))
    assert problems(conf, {"OSDN_KUBECONFIG": "/nonexistent/kubeconfig"}) == [
        "osdn.conf [osdn] source = etcd: source must be files or kubernetes",
        "topology is required: set [osdn] topology in osdn.conf or OSDN_TOPOLOGY",
        "OSDN_KUBECONFIG=/nonexistent/kubeconfig: kubeconfig /nonexistent/kubeconfig is not "
        "a file",
    ]
    # files stays the default, and with it the topology is required
    assert problems(configured(), {}) == [
        "topology is required: set OSDN_TOPOLOGY or [osdn] topology in a config file "
        "(--config-file)"]
