"""What changed between two tuples of topology objects, found fast.

Unchanged objects are mostly the very same objects in the same order (the loader's
`FileCache` hands back the objects of unchanged files), so the common prefix and suffix are
found a chunk at a time by tuple comparison, which is C speed for identical elements; only
the stretch between them is compared object by object.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_CHUNK = 1024


def changed_objects(old: Sequence[Any], new: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(removed, added) between two tuples of objects, by value."""
    if old is new:
        return [], []
    shortest = min(len(old), len(new))
    start = _common_prefix(old, new, shortest)
    if start == shortest and len(old) == len(new):
        return [], []
    tail = _common_suffix(old, new, shortest - start)
    old_middle, new_middle = old[start:len(old) - tail], new[start:len(new) - tail]
    if not old_middle or not new_middle:
        return list(old_middle), list(new_middle)
    old_set, new_set = set(old_middle), set(new_middle)
    return ([o for o in old_middle if o not in new_set],
            [n for n in new_middle if n not in old_set])


def _common_prefix(a: Sequence[Any], b: Sequence[Any], limit: int) -> int:
    i = 0
    while i < limit:
        j = min(i + _CHUNK, limit)
        if a[i:j] != b[i:j]:
            while a[i] is b[i] or a[i] == b[i]:
                i += 1
            return i
        i = j
    return limit


def _common_suffix(a: Sequence[Any], b: Sequence[Any], limit: int) -> int:
    """How many trailing elements are equal, at most `limit`."""
    la, lb, i = len(a), len(b), 0
    while i < limit:
        j = min(i + _CHUNK, limit)
        if a[la - j:la - i] != b[lb - j:lb - i]:
            while a[la - 1 - i] is b[lb - 1 - i] or a[la - 1 - i] == b[lb - 1 - i]:
                i += 1
            return i
        i = j
    return limit
