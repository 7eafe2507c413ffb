"""One context manager for the product's "no garbage collection meanwhile" stretches."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (restored as it was).

    Loading a topology, compiling a node and reading a bridge's flows back each build up to
    millions of small objects that all stay alive: generational collections over them free
    nothing and cost about a third of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
