"""The controller's settings: an ``[osdn]`` section of the os-ken config file, overridden by
``OSDN_<NAME>`` environment variables, validated all at once before anything starts.

Where values come from, strongest first:

1. ``OSDN_<NAME>`` in the environment (``OSDN_TOPOLOGY``, ``OSDN_METRICS_PORT``, ...), so a
   container or a systemd unit can override a shared file.  A variable that is set but empty
   counts as set (``OSDN_NODE=`` clears ``node``).
2. Whatever oslo.config resolves for ``[osdn] <name>``: the ``--config-file`` files (a later
   file overrides an earlier one), ``--config-dir``, and oslo's own ``OS_OSDN__<NAME>``.
3. The defaults below.

Choices made here, and why:

* Every option is registered as a *string* option.  oslo.config's typed options raise on the
  first bad value they meet, with its own wording and without saying which file held it;
  validating here lets `load_settings` report every bad setting at once, each with its exact
  source (``OSDN_MASQUERADE_BIT=abc: ...`` or ``osdn.conf [osdn] metrics_port = 70000: ...``).
* ``topology`` is one comma-separated list of files and directories (paths containing a
  comma are not supported).  Relative paths are relative to the working directory, as for
  ``osdn check``.
* Unknown keys in ``[osdn]`` are **errors**, with a "did you mean" hint.  oslo.config ignores
  them silently, so ``metrics_prot = 9100`` would leave the exporter off without a word.  They
  are found by re-reading the section from every config file (oslo.config keeps no public
  list of the keys it parsed).  A key given twice in one file is an error too: oslo keeps the
  last one silently.  Other sections belong to os-ken and are left alone.
* Likewise an ``OSDN_*`` environment variable that names no option is an error: the prefix
  is ours, and a typo there would otherwise be just as silent.
"""

from __future__ import annotations

import difflib
import glob
import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from oslo_config import cfg

from controller.dns import Query, dns_query
from topology.errors import OsdnError
from topology.model import PLUGIN_NAMES

__all__ = [
    "ENV_PREFIX",
    "LOOPBACK",
    "GROUP",
    "ConfigError",
    "ControllerSettings",
    "load_settings",
    "listener_warning",
    "ofp_listen_host",
    "register_options",
]

GROUP = "osdn"
LOOPBACK = "127.0.0.1"
ENV_PREFIX = "OSDN_"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class ConfigError(OsdnError):
    """Bad settings; `problems` lists every one, each naming where the value came from."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ControllerSettings:
    topology: tuple[str, ...] = ()  # files and directories, as given (source = files)
    source: str = "files"  # "files" or "kubernetes" (the API server: controller.kube)
    kubeconfig: str | None = None  # None: in-cluster, then $KUBECONFIG, then ~/.kube/config
    node: str | None = None  # serve only this HostSubnet host; None = every node
    masquerade_bit: int = 0
    metrics_port: int = 0  # 0 = no exporter
    metrics_address: str = "127.0.0.1"
    watch: bool = True
    watch_interval: float = 1.0  # seconds between polls of the topology files
    watch_settle: float = 0.3  # seconds a change must be stable before it is read
    dns: str = "system"  # "system", "off", or a name server "address[:port]"
    plugin: str | None = None  # subnet|multitenant|networkpolicy overrides pluginName
    handshake_timeout: float = 5.0  # seconds a connection may take for HELLO + features
    max_pending_handshakes: int = 64  # unfinished handshakes at once; the oldest goes first
    audit_interval: float = 1.0  # seconds between audits of each bridge's flows; 0 = none

    def make_dns_query(self) -> Query | None:
        """How dnsNames are resolved (`dns`); None when they are not."""
        if self.dns == "off":
            return None
        return dns_query(None if self.dns == "system" else self.dns)


# ---------------------------------------------------------------------------------------------
# Value parsers: text -> value, or _Invalid with the message that follows the source.


class _Invalid(OsdnError, ValueError):
    """One setting's bad value; `load_settings` gathers them into a ConfigError."""


def _integer_between(low: int, high: int, note: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 0)  # as the osdn CLI and pflag: 14, 0x0e
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise _Invalid(f"must be an integer {low}..{high}{note}")
        return value
    return parse


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise _Invalid("must be true or false (also yes/no, on/off, 1/0)")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _Invalid("must be a number of seconds > 0")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise _Invalid("must be a number of seconds >= 0")
    return value


def _one_of(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip() not in allowed:
            raise _Invalid(f"must be {' or '.join(allowed)}")
        return text.strip()
    return parse


def _address(text: str) -> str:
    text = text.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME.match(text):
            raise _Invalid("must be an IP address or a host name") from None
    return text


def _dns(text: str) -> str:
    text = text.strip()
    if text in ("system", "off"):
        return text
    address, _, port = text.partition(":")
    try:
        ipaddress.IPv4Address(address)
        valid_port = not port or 1 <= int(port) <= 65535
    except ValueError:
        valid_port = False
    if not valid_port:
        raise _Invalid("must be system, off, or a name server's IPv4 address[:port]")
    return text


def _node(text: str) -> str | None:
    return text.strip() or None


def _kubeconfig(text: str) -> str | None:
    path = text.strip()
    if path and not os.path.isfile(path):
        raise _Invalid(f"{path} is not a file")
    return path or None


def _path_list(text: str) -> tuple[str, ...]:
    paths = tuple(part.strip() for part in text.split(",") if part.strip())
    if not paths:
        raise _Invalid("must name at least one file or directory")
    return paths


@dataclass(frozen=True)
class _Option:
    name: str
    default: str | None
    parse: Callable[[str], Any]
    help: str
    required: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


OPTIONS: tuple[_Option, ...] = (
    _Option("source", "files", _one_of("files", "kubernetes"),
            "Where the topology comes from: the topology files (files), or the API server, "
            "listed and watched (kubernetes)."),
    _Option("topology", None, _path_list,
            "Required with source = files. Cluster YAML: files or directories "
            "(*.yaml/*.yml, recursively), comma-separated.", required=True),
    _Option("kubeconfig", None, _kubeconfig,
            "With source = kubernetes: the kubeconfig file. Unset: the in-cluster service "
            "account, then $KUBECONFIG, then ~/.kube/config."),
    _Option("node", None, _node,
            "Serve only this HostSubnet host, whatever bridge connects (one controller per "
            "node). Unset: every bridge whose datapath ID a HostSubnet defines."),
    _Option("masquerade_bit", "0", _integer_between(0, 31),
            "kube-proxy's --iptables-masquerade-bit, 0..31 (OpenShift 3.x: 0)."),
    _Option("metrics_port", "0", _integer_between(0, 65535, " (0 = off)"),
            "Port of the Prometheus exporter; 0 = off."),
    _Option("metrics_address", "127.0.0.1", _address,
            "Address the Prometheus exporter listens on."),
    _Option("watch", "true", _boolean, "Reload the topology when its files change."),
    _Option("watch_interval", "1.0", _positive_seconds,
            "Seconds between checks of the topology files for changes (> 0)."),
    _Option("watch_settle", "0.3", _seconds,
            "Seconds a changed topology file must stay unchanged before it is read (>= 0; "
            "a file emptied since the last load, ten times as long), so that a file being "
            "rewritten in place is not applied half-written."),
    _Option("dns", "system", _dns,
            "Resolve EgressNetworkPolicy dnsNames with the system's resolvers (system), with "
            "one name server (its IPv4 address, optionally :port), or not at all (off)."),
    _Option("handshake_timeout", "5.0", _positive_seconds,
            "Seconds an OpenFlow connection may take to finish its handshake (HELLO and the "
            "features reply) before it is closed (> 0)."),
    _Option("max_pending_handshakes", "64", _integer_between(1, 100_000),
            "OpenFlow connections that may be in their handshake at once; beyond it the "
            "oldest is closed."),
    _Option("audit_interval", "1.0", _seconds,
            "Seconds between audits of each bridge (its per-table flow counts and table-253 "
            "note, one small request; every flow read only when they disagree), so that flows "
            "added or lost behind the controller's back are repaired; 0 = no audit."),
    _Option("plugin", None, _one_of(*PLUGIN_NAMES),
            "Override the ClusterNetwork's pluginName (subnet, multitenant, networkpolicy); "
            "unset: as the topology says."),
)
_BY_NAME = {option.name: option for option in OPTIONS}


def register_options(conf: cfg.ConfigOpts) -> None:
    """Register the ``[osdn]`` options (as strings; see the module docstring).  Idempotent;
    works before or after ``conf()`` has parsed the files, as os-ken imports apps after."""
    opts = [cfg.StrOpt(option.name, default=option.default, help=option.help)
            for option in OPTIONS]
    conf.register_opts(opts, group=cfg.OptGroup(GROUP, help="osdn controller"))


# ---------------------------------------------------------------------------------------------
# Where a value came from


@dataclass(frozen=True)
class _Raw:
    text: str | None  # None: unset, no default
    source: str  # "OSDN_X=text", "FILE [osdn] x = text"; "" for a default


def _config_files(conf: cfg.ConfigOpts) -> list[str]:
    """The config files as conf lists them (``--config-file``s, then ``--config-dir``s'
    *.conf in oslo's order); empty when conf was never called."""
    try:
        files = list(conf.config_file or [])
        directories = conf.config_dir or []
    except cfg.NoSuchOptError:
        return []
    if isinstance(directories, str):
        directories = [directories]
    for directory in directories:
        files += sorted(glob.glob(os.path.join(directory, "*.conf")))
    return files


def _display_name(path: str, files: list[str]) -> str:
    """`path` as the user named it: oslo reports absolute paths, conf lists them as given."""
    for given in files:
        if os.path.abspath(os.path.expanduser(given)) == path:
            return given
    return path


def _file_source(conf: cfg.ConfigOpts, option: _Option, text: str, files: list[str]) -> str:
    setting = f"[{GROUP}] {option.name} = {text}"
    location = conf.get_location(option.name, GROUP)
    if location is None or location.location is cfg.Locations.opt_default:
        return ""
    if location.location is cfg.Locations.user:
        return f"{_display_name(location.detail, files)} {setting}"
    if location.location is cfg.Locations.environment:
        return f"{location.detail}={text}"
    return setting


def _raw_value(conf: cfg.ConfigOpts, option: _Option, environ: Mapping[str, str],
               files: list[str]) -> _Raw:
    if option.env in environ:
        text = environ[option.env]
        return _Raw(text, f"{option.env}={text}")
    text = getattr(conf[GROUP], option.name)
    if text is None:
        return _Raw(None, "")
    return _Raw(text, _file_source(conf, option, text, files))


# ---------------------------------------------------------------------------------------------
# Checks


def _missing_topology(files: list[str]) -> str:
    option = _BY_NAME["topology"]
    if not files:
        return (f"topology is required: set {option.env} or [{GROUP}] topology in a "
                f"config file (--config-file)")
    return (f"topology is required: set [{GROUP}] topology in {', '.join(files)} "
            f"or {option.env}")


def _missing_paths(paths: tuple[str, ...], source: str) -> Iterator[str]:
    for path in paths:
        if not os.path.exists(path):
            yield f"{source}: topology path {path} does not exist"


def _section_entries(path: str) -> dict[str, list[str]]:
    """The ``[osdn]`` keys of one config file with all their values; {} if unreadable
    (oslo.config has already reported a file it could not read or parse)."""
    sections: dict[str, dict[str, list[str]]] = {}
    try:
        cfg.ConfigParser(path, sections).parse()
    except (OSError, cfg.ParseError):
        return {}
    return sections.get(GROUP, {})


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _file_key_problems(files: list[str]) -> Iterator[str]:
    known = sorted(_BY_NAME)
    for path in files:
        for key, values in _section_entries(path).items():
            where = f"{path} [{GROUP}] {key} = {values[-1]}"
            if key not in _BY_NAME:
                yield f"{where}: unknown setting{_did_you_mean(key, known)}"
            elif len(values) > 1:
                yield (f"{path} [{GROUP}] {key}: given {len(values)} times in one file "
                       f"({', '.join(values)}); give it once")


def _environment_problems(environ: Mapping[str, str]) -> Iterator[str]:
    known = sorted(option.env for option in OPTIONS)
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            yield f"{name}={environ[name]}: unknown setting{_did_you_mean(name, known)}"


def _values(conf: cfg.ConfigOpts, environ: Mapping[str, str], files: list[str],
            problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        try:
            raw = _raw_value(conf, option, environ, files)
        except cfg.Error as error:  # e.g. a bad $substitution in the file
            problems.append(f"[{GROUP}] {option.name}: {error}")
            continue
        if raw.text is None:
            if option.required and values.get("source", "files") == "files":
                problems.append(_missing_topology(files))
            continue
        try:
            values[option.name] = option.parse(raw.text)
        except _Invalid as error:
            problems.append(f"{raw.source}: {option.name} {error}")
            continue
        if option.name == "topology":
            problems += _missing_paths(values["topology"], raw.source)
    return values


def load_settings(conf: cfg.ConfigOpts,
                  environ: Mapping[str, str] = os.environ) -> ControllerSettings:
    """The validated settings, or ConfigError listing every bad one at once.

    Registers the options on `conf` if needed; `conf` should already have been called (as
    osken-manager does with `cfg.CONF`) so that its config files are known.
    """
    register_options(conf)
    files = _config_files(conf)
    problems: list[str] = []
    values = _values(conf, environ, files, problems)
    problems += _file_key_problems(files)
    problems += _environment_problems(environ)
    if problems:
        raise ConfigError(problems)
    return ControllerSettings(**values)


# ---------------------------------------------------------------------------------------------
# The OpenFlow listener


def ofp_listen_host(conf: cfg.ConfigOpts, settings: ControllerSettings) -> str | None:
    """The address os-ken's OpenFlow listener should use instead of its own default
    (0.0.0.0), or None to leave it.

    With `node` set the controller serves the one bridge of its own host, so it listens on
    127.0.0.1, unless os-ken's ``ofp_listen_host`` was given (``--ofp-listen-host`` or
    ``ofp_listen_host`` in ``[DEFAULT]`` of a config file).  Without `node` it serves remote
    bridges and os-ken's setting stands: use TLS with a CA there (README, "Security and
    failure behaviour").
    """
    try:
        location = conf.get_location("ofp_listen_host")
    except cfg.NoSuchOptError:  # os-ken's options are not registered: nothing to adjust
        return None
    given = location is not None and location.location is not cfg.Locations.opt_default
    return LOOPBACK if settings.node and not given else None


def listener_warning(host: str, tls_with_ca: bool) -> str | None:
    """What to warn about an OpenFlow listener on `host`: one reachable from other hosts
    without TLS client certificates lets anyone claim to be a bridge."""
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if local or tls_with_ca:
        return None
    return (f"OpenFlow listener on {host} without TLS client certificates (--ca-certs): any "
            "host that reaches it can connect as a switch; listen on 127.0.0.1 (node set), "
            "or use TLS with a CA for remote switches")
