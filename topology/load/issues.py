"""What the loader reports: `Issue`s, and `TopologyError` carrying all of them."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass

from topology.errors import OsdnError


@dataclass(frozen=True)
class Issue:
    """One problem in the input, located as precisely as we can."""

    file: str
    line: int  # 1-based; 0 when the problem concerns a whole file or path
    object: str = ""  # "Kind/name" or "Kind/namespace/name"; "" for file-level problems
    field: str = ""  # "spec.ports[1].port", "metadata.annotations[osdn.dev/ofport]"
    message: str = ""
    value: builtins.object = None  # the offending scalar, shown after the message; None = not

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = ": ".join(part for part in (where, self.object, self.field, self.message) if part)
        return f"{text} ({_show(self.value)})" if self.value is not None else text


_SHOWN_INT_BITS = 256  # larger integers are shown by size (Python will not print > 4,300 digits)


def _show(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 200 else value[:200] + "...")
    if isinstance(value, int) and value.bit_length() > _SHOWN_INT_BITS:
        return f"an integer of {value.bit_length()} bits"
    return str(value)


class TopologyError(OsdnError):
    """The input is invalid; `issues` lists every problem found, sorted by file and line."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues: list[Issue] = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))
