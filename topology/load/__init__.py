"""Read cluster topology YAML into a validated `Topology`.

The way through, each stage reporting into one list of `Issue`s (`issues`):

1. `yamlreader.read_documents`: a file's YAML documents, composed by libyaml and built into
   `YamlMap` / `YamlList`, which remember the line of every mapping, key and list item.
   Syntax errors and duplicate keys become issues; a syntax error ends that file, the other
   files are still read.
2. `parsefile.parse_file`: one `ParsedObject` per API object (``kind: List`` is unpacked),
   each read by its kind's parser (`kinds`, reading fields through `fields` and `converters`;
   Pods through the fast `leanpod` when they are well-formed) into a model object
   (`topology.model`), checking types, formats and the rules that concern one object alone.
   Kinds (and API versions) we do not read are listed in `Topology.ignored`.
   `filecache.FileCache` keeps this stage's result per file.
3. `checks`: the rules across objects (overlaps, duplicates, references).  Checks for a
   *missing* object are skipped when part of the input could not be read.
4. `resolve`: the SDN master's VNID allocation and change-network requests
   (`topology.master`); then `Topology.warnings` for what 3.11 accepts but ignores or
   punishes (an ignored change-network, an egress IP no node hosts, several
   EgressNetworkPolicies in a namespace, a hostIP inside the cluster or service network).
5. No issue at all: a `Topology`.  Otherwise `TopologyError` carrying every issue, sorted by
   file and line.  Invalid input never yields a Topology.

Which files: `list_files`, the one listing both `load_topology` and a file watcher use.
Directories are read as Kubernetes mounts a ConfigMap: entries whose names start with ``..``
(the ``..data`` symlink and the timestamped directory it points to) are the mount's
implementation and are skipped; the top-level symlinks into ``..data`` are the content.  Only
regular files are read (`readfile`), within the limits of `limits`.

Caching: `FileCache` maps a path to its `ParsedFile`, reused while its stamp (device, inode,
size, mtime, ctime) or else its content hash is unchanged.  `load_topology` uses the
module-level `DEFAULT_CACHE` unless given another one (or ``cache=None``), so a file watcher
that calls it again after each change re-reads only the files that changed; the cross-object
checks are always re-run.

Defaults and conventions, where the API leaves a choice:

* ``metadata.namespace`` of a namespaced object defaults to ``default`` (as ``oc apply`` does).
* ``metadata.uid`` defaults to a UUID derived from the object's identity (uuid5), so cookies
  derived from UIDs stay stable across loads.
* ``field: null`` counts as an absent field, as Kubernetes' JSON decoding does.
* Annotation and label values must be strings, as in the API (quote ``"3"``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

from topology.gcpause import gc_paused
from topology.load.checks import (
    Checks,
    Objects,
    check_host_subnets,
    check_namespaces_have_vnids,
    check_pods,
    check_services,
    cluster_network,
    unique_objects,
)
from topology.load.filecache import DEFAULT_CACHE, FileCache
from topology.load.issues import Issue, TopologyError
from topology.load.kinds import ParsedObject
from topology.load.limits import MAX_OBJECTS_TOTAL
from topology.load.parsefile import ParsedFile, parse_file
from topology.load.resolve import (
    egress_ip_warnings,
    egress_policy_warnings,
    host_subnet_warnings,
    resolve_net_namespaces,
    shared_policy_state_warnings,
)
from topology.load.yamlreader import YamlList, YamlMap, read_documents
from topology.model import Plugin, Topology

__all__ = [
    "DEFAULT_CACHE",
    "FileCache",
    "FileList",
    "Issue",
    "ParsedFile",
    "ParsedObject",
    "TopologyError",
    "build_topology",
    "YamlList",
    "YamlMap",
    "list_files",
    "load_topology",
    "parse_file",
    "read_documents",
]

PathArg = str | os.PathLike[str]
YAML_SUFFIXES = (".yaml", ".yml")
MOUNT_INTERNALS = ".."  # prefix of a ConfigMap mount's ..data and ..<timestamp> entries


class FileList(NamedTuple):
    """The files a load reads, the given paths that do not exist, and the directories that
    could not be listed."""

    files: list[str]  # in the order they are read
    missing: list[str]
    unreadable: list[Issue]  # one per directory that could not be listed


def list_files(paths: Sequence[PathArg]) -> FileList:
    """The files `load_topology` reads for `paths`: a file as given; a directory as its
    *.yaml/*.yml files, recursively, sorted, without the entries starting with ``..``
    (`MOUNT_INTERNALS`).  A path that does not exist is in `missing`, a directory that cannot
    be listed in `unreadable` (`load_topology` reports both as issues).  A watcher that stats
    exactly these files sees every change a load would see."""
    listing = FileList([], [], [])
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            listing.files.extend(sorted(_yaml_files_under(path, listing.unreadable)))
        elif os.path.lexists(path):
            listing.files.append(path)  # even a dangling symlink: reading it says why not
        else:
            listing.missing.append(path)
    return listing


def _yaml_files_under(top: str, unreadable: list[Issue]) -> list[str]:
    def cannot_list(error: OSError) -> None:
        where = error.filename or top
        unreadable.append(Issue(where, 0, message=f"cannot read directory: {error.strerror}"))

    found = []
    for directory, subdirectories, names in os.walk(top, onerror=cannot_list):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(MOUNT_INTERNALS)]
        found += [os.path.join(directory, name) for name in names
                  if name.endswith(YAML_SUFFIXES) and not name.startswith(MOUNT_INTERNALS)]
    return found


def load_topology(
    paths: Sequence[PathArg],
    plugin: Plugin | None = None,
    *,
    cache: FileCache | None = DEFAULT_CACHE,
) -> Topology:
    """Read, validate and resolve a cluster; `plugin` overrides ClusterNetwork.pluginName.

    Raises TopologyError listing every problem.  `cache=None` re-reads every file.
    """
    if isinstance(paths, (str, os.PathLike)):  # a lone path, not a sequence of characters
        paths = [paths]
    with gc_paused():
        files, missing, unreadable = list_files(paths)
        issues = [Issue(path, 0, message="no such file or directory") for path in missing]
        issues += unreadable
        parsed = [parse_file(path) if cache is None else cache.parsed(path) for path in files]
        complete = not issues and all(file.complete for file in parsed)
        for file in parsed:
            issues += file.issues
        issues += _too_many_objects(parsed)
        where = ", ".join(os.fspath(path) for path in paths)
        return _checked(parsed, plugin, Checks(issues, complete, where))


def build_topology(parsed: Sequence[ParsedFile], plugin: Plugin | None = None,
                   where: str = "") -> Topology:
    """Stages 3 to 5 on objects already parsed (each API object of a live cluster as its own
    `ParsedFile`: `topology.load.apiobjects`); TopologyError as `load_topology` raises it."""
    issues = [issue for file in parsed for issue in file.issues]
    issues += _too_many_objects(parsed)
    with gc_paused():
        return _checked(parsed, plugin, Checks(issues, all(f.complete for f in parsed), where))


def _checked(parsed: Sequence[ParsedFile], plugin: Plugin | None, checks: Checks) -> Topology:
    topology = _assemble(parsed, plugin, checks)
    if checks.issues or topology is None:
        raise TopologyError(sorted(checks.issues, key=lambda issue: (issue.file, issue.line)))
    return topology


def _too_many_objects(files: Sequence[ParsedFile]) -> list[Issue]:
    """The object past MAX_OBJECTS_TOTAL, if there is one."""
    counted = 0
    for file in files:
        if counted + len(file.objects) > MAX_OBJECTS_TOTAL:
            past = file.objects[MAX_OBJECTS_TOTAL - counted]
            return [Issue(past.origin.file, past.origin.line, past.identity, message=f"more than "
                          f"{MAX_OBJECTS_TOTAL} objects in all files (MAX_OBJECTS_TOTAL)")]
        counted += len(file.objects)
    return []


def _assemble(
    files: Sequence[ParsedFile], plugin: Plugin | None, checks: Checks
) -> Topology | None:
    objects = Objects(unique_objects(files, checks))
    network = cluster_network(objects, plugin, checks)
    check_host_subnets(objects.usable("HostSubnet"), network, checks)
    check_pods(objects.usable("Pod"), objects, checks)
    check_services(objects.usable("Service"), network, checks)
    if network is None:
        return None
    check_namespaces_have_vnids(objects, network.plugin, checks)
    warnings: list[str] = []
    net_namespaces = resolve_net_namespaces(objects, network.plugin, checks, warnings)
    host_subnets = tuple(obj.value for obj in objects.usable("HostSubnet"))
    warnings += host_subnet_warnings(host_subnets, network)
    egress_policies = tuple(obj.value for obj in objects.usable("EgressNetworkPolicy"))
    if network.plugin is Plugin.NETWORKPOLICY:
        warnings += shared_policy_state_warnings(net_namespaces)
    if network.plugin.supports_vnids:
        warnings += egress_ip_warnings(net_namespaces, host_subnets)
        warnings += egress_policy_warnings(egress_policies, net_namespaces)
    return Topology(
        cluster_network=network,
        host_subnets=host_subnets,
        net_namespaces=net_namespaces,
        namespaces=tuple(obj.value for obj in objects.usable("Namespace")),
        pods=tuple(obj.value for obj in objects.usable("Pod")),
        services=tuple(obj.value for obj in objects.usable("Service")),
        network_policies=tuple(obj.value for obj in objects.usable("NetworkPolicy")),
        egress_network_policies=egress_policies,
        ignored=tuple(entry for file in files for entry in file.ignored),
        warnings=tuple(warnings),
    )
