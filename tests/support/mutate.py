"""Mutants of topology YAML files, for fuzzing the loader (deterministic for a given seed).

`mutants(files, count, seed)` yields `Mutant`s: one file of a cluster replaced by a damaged
copy.  Each mutant applies one to three of the `MUTATIONS` to the file's bytes: deleting
and duplicating lines, swapping a value for one of another type, deep nesting, huge
numbers, anchors and aliases (billion laughs, recursive ones), bad bytes and encodings,
truncation, stray YAML indicators and tags, dense lists, many documents.  Sizes stay small
(at most a few MB) so that a few hundred mutants load in well under a minute.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

Mutation = Callable[[random.Random, bytes], bytes]

_VALUE = re.compile(rb"^(?P<head>\s*(?:- )?[\w./-]+: )(?P<value>\S.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Mutant:
    file: str  # the name of the file replaced, relative to the cluster
    content: bytes
    mutations: tuple[str, ...]  # what was done, for a failure message

    def describe(self) -> str:
        return f"{self.file}: {', '.join(self.mutations)}"


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pick_value(rng: random.Random, data: bytes) -> re.Match[bytes] | None:
    matches = list(_VALUE.finditer(data))
    return rng.choice(matches) if matches else None


def _replace_value(rng: random.Random, data: bytes, new: bytes) -> bytes:
    match = _pick_value(rng, data)
    if match is None:
        return data + b"\nx: " + new + b"\n"
    return data[:match.start("value")] + new + data[match.end("value"):]


def delete_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    start = rng.randrange(len(lines))
    del lines[start:start + rng.choice((1, 1, 2, 5, 20))]
    return b"\n".join(lines)


def duplicate_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    start = rng.randrange(len(lines))
    block = lines[start:start + rng.choice((1, 3, 10, 40))]
    at = rng.randrange(len(lines) + 1)
    return b"\n".join(lines[:at] + block + lines[at:])


def duplicate_file(rng: random.Random, data: bytes) -> bytes:
    return data + b"\n---\n" + data


def swap_type(rng: random.Random, data: bytes) -> bytes:
    new = rng.choice((b"42", b"-1", b"3.5", b"true", b"null", b"~", b"[]", b"{}", b"[a, b]",
                      b"{a: 1}", b'"text"', b"''", b"0x1f", b"2019-05-26T04:28:27Z", b"yes",
                      b"1e400", b".nan", b"-.inf", b"|\n  block\n", b">-\n  folded\n"))
    return _replace_value(rng, data, new)


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice((65, 100, 498, 600, 999, 1001, 5000))
    style = rng.randrange(3)
    if style == 0:
        nested = b"[" * depth + b"]" * depth
    elif style == 1:
        nested = b"{a: " * depth + b"1" + b"}" * depth
    else:  # block style: one more level per line
        depth = min(depth, 300)
        nested = b"\n" + b"".join(b"  " * (i + 1) + b"k:\n" for i in range(depth)) \
            + b"  " * (depth + 1) + b"v"
    return _replace_value(rng, data, nested)


def huge_number(rng: random.Random, data: bytes) -> bytes:
    new = rng.choice((b"9" * 5000, b"1" * 100_000, b"-" + b"9" * 4301, b"1e999999",
                      b"0x" + b"f" * 5000, b"18446744073709551616", b"0o777777777777777777",
                      b"1_000_000", b"4294967296", b"65536", b"0"))
    return _replace_value(rng, data, new)


def aliases(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # billion laughs
        laughs = b"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + b"".join(
            b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 9))
            for i in range(rng.choice((4, 6, 9))))
        return laughs + b"---\n" + data
    if kind == 1:  # a recursive alias
        return _replace_value(rng, data, b"&r [1, *r]")
    if kind == 2:  # a NetworkPolicy whose rules all name one big list of peers
        rules, peers = rng.choice(((30, 30), (400, 400), (3000, 3000)))
        return data + _policy_with_aliased_peers(rules, peers)
    if kind == 3:  # an alias to an anchor that does not exist
        return _replace_value(rng, data, b"*nowhere")
    # a merge key
    return data + b"\n---\nbase: &base {kind: Pod}\nother:\n  <<: *base\n"


def _policy_with_aliased_peers(rules: int, peers: int) -> bytes:
    peer_list = b", ".join([b"{podSelector: {}}"] * peers)
    return (b"\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
            b"  name: blow-up\n  namespace: default\nspec:\n  podSelector: {}\n"
            b"  ingress:\n  - from: &peers [" + peer_list + b"]\n"
            + b"  - from: *peers\n" * (rules - 1))


def bad_bytes(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return data.decode("utf-8", "replace").encode(rng.choice(("utf-16", "utf-32",
                                                                  "utf-16-be")))
    garbage = rng.choice((b"\xff", b"\x00", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf",
                          b"\x07", b"\x1b[31m", b"\xfe\xff", b"\x85", b"\xe2\x80\xa8"))
    at = rng.randrange(len(data) + 1)
    return data[:at] + garbage + data[at:]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def empty(rng: random.Random, data: bytes) -> bytes:
    return rng.choice((b"", b"\n", b"---\n", b"...\n", b"# nothing\n", b"null\n", b"[]\n"))


def stray_indicator(rng: random.Random, data: bytes) -> bytes:
    token = rng.choice((b":", b"- ", b"{", b"}", b"[", b"]", b"&", b"*", b"!", b"|", b">",
                        b"%YAML 1.1\n", b"---", b"...", b"? ", b"#", b"'", b'"', b"\t", b",",
                        b"@", b"`", b"  "))
    at = rng.randrange(len(data) + 1)
    return data[:at] + token + data[at:]


def tags(rng: random.Random, data: bytes) -> bytes:
    tag = rng.choice((b"!!binary", b"!!set", b"!!omap", b"!!pairs", b"!!python/object:os.system",
                      b"!custom", b"!!int", b"!!float", b"!!bool", b"!!timestamp", b"!!str",
                      b"!!map", b"!!seq", b"!!null", b"!<tag:example.com,2000:x>"))
    match = _pick_value(rng, data)
    if match is None:
        return data
    return data[:match.start("value")] + tag + b" " + data[match.start("value"):]


def reindent(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    at = rng.randrange(len(lines))
    lines[at] = rng.choice((b" ", b"   ", b"\t")) + lines[at] if rng.random() < 0.5 \
        else lines[at].lstrip()
    return b"\n".join(lines)


def change_kind(rng: random.Random, data: bytes) -> bytes:
    kinds = (b"Pod", b"Service", b"List", b"NetworkPolicy", b"HostSubnet", b"NetNamespace",
             b"ClusterNetwork", b"Namespace", b"EgressNetworkPolicy", b"Unknown", b"")
    matches = list(re.finditer(rb"(?m)^(\s*(?:- )?kind: )(\S*)$", data))
    if not matches:
        return data
    match = rng.choice(matches)
    return data[:match.start(2)] + rng.choice(kinds) + data[match.end(2):]


def dense_list(rng: random.Random, data: bytes) -> bytes:
    items = rng.choice((1_000, 200_000, 600_000))
    return _replace_value(rng, data, b"[" + b"1," * items + b"1]")


def many_documents(rng: random.Random, data: bytes) -> bytes:
    return data + b"\n" + b"---\n" * rng.choice((10, 10_000, 200_000))


def long_string(rng: random.Random, data: bytes) -> bytes:
    return _replace_value(rng, data, b"x" * rng.choice((300, 70_000, 2_000_000)))


def duplicate_key(rng: random.Random, data: bytes) -> bytes:
    match = _pick_value(rng, data)
    if match is None:
        return data
    line_end = data.find(b"\n", match.end())
    line_end = len(data) if line_end < 0 else line_end
    return data[:line_end] + b"\n" + data[match.start():line_end] + data[line_end:]


MUTATIONS: Mapping[str, Mutation] = {
    "delete lines": delete_lines,
    "duplicate lines": duplicate_lines,
    "duplicate file": duplicate_file,
    "swap type": swap_type,
    "deep nesting": deep_nesting,
    "huge number": huge_number,
    "aliases": aliases,
    "bad bytes": bad_bytes,
    "truncate": truncate,
    "empty": empty,
    "stray indicator": stray_indicator,
    "tag": tags,
    "reindent": reindent,
    "change kind": change_kind,
    "dense list": dense_list,
    "many documents": many_documents,
    "long string": long_string,
    "duplicate key": duplicate_key,
}


def mutate(rng: random.Random, data: bytes, count: int) -> tuple[bytes, tuple[str, ...]]:
    names = tuple(rng.choice(sorted(MUTATIONS)) for _ in range(count))
    for name in names:
        data = MUTATIONS[name](rng, data)
    return data, names


def mutants(files: Mapping[str, bytes], count: int, seed: int) -> Iterator[Mutant]:
    """`count` mutants of the cluster whose files (name -> content) are given; every
    mutation is used about equally often as the first one."""
    rng = random.Random(seed)
    names = sorted(files)
    order = sorted(MUTATIONS)
    for index in range(count):
        file = rng.choice(names)
        first = order[index % len(order)]
        data = MUTATIONS[first](rng, files[file])
        data, more = mutate(rng, data, rng.choice((0, 0, 1, 2)))
        yield Mutant(file, data, (first, *more))
