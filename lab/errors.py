"""The lab's user errors: what `osdn cluster ...` and `osdn demo` report in one message and
exit 1 for, instead of a traceback."""

from __future__ import annotations

from topology.errors import OsdnError


class LabUsageError(OsdnError):
    """A lab command cannot do what it was asked: an unknown pod or target, no cluster (or
    one already) in the state directory, a prerequisite missing on this machine."""
