"""Running programs in a named network namespace (made with `ip netns add`).

`nsenter --net` enters only the network namespace.  `ip netns exec` and `ip -n` also
re-mount `/` and `/sys` in a private mount namespace, which fails where `/` is not a mount
point (a chroot, as some CI sandboxes use) — and nothing here needs that.
"""

from __future__ import annotations

NETNS_DIR = "/run/netns"


def in_netns(name: str) -> list[str]:
    """The command prefix that runs a program inside network namespace `name`."""
    return ["nsenter", f"--net={NETNS_DIR}/{name}", "--"]
