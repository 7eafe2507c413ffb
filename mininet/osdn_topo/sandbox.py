"""The Mininet sandbox and Debian's Mininet: where things live inside `mininet/run`'s
namespaces, the check that we are inside them, and importing Debian's `mininet` package into
the project's interpreter."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OVS_START = REPO / "scripts" / "ovs-start"
SANDBOX_MARK = b"--osdn-mininet-sandbox"
SANDBOX_DIR = Path("/run/osdn-mininet")
DEBIAN_MININET = Path(os.environ.get("MININET_PACKAGE", "/usr/lib/python3/dist-packages/mininet"))


def import_mininet() -> Any:
    """Debian's `mininet` package, imported into the running interpreter.

    Debian installs Mininet for /usr/bin/python3; the project runs in its own virtualenv.
    Both are CPython 3.11 and Mininet is pure Python (its only binary, mnexec, is on PATH),
    so the package is loaded from its Debian directory by file location: nothing is installed
    into the virtualenv, nothing else of Debian's dist-packages becomes importable, and the
    Python code is always the one that matches Debian's mnexec.  A regular `mininet` package
    already importable (say, installed into the venv) is used instead.  The repository's
    `mininet/` directory has no __init__.py, so it can never shadow the real package."""
    loaded = sys.modules.get("mininet")
    if loaded is not None and getattr(loaded, "__file__", None):
        return loaded
    spec = importlib.util.find_spec("mininet")
    if spec is not None and spec.origin and spec.origin.endswith("__init__.py"):
        return importlib.import_module("mininet")
    init = DEBIAN_MININET / "__init__.py"
    if not init.exists():
        raise SystemExit(f"Mininet's Python package not found at {DEBIAN_MININET}: "
                         "apt-get install mininet (or run scripts/setup-env)")
    spec = importlib.util.spec_from_file_location(
        "mininet", init, submodule_search_locations=[str(DEBIAN_MININET)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mininet"] = module
    spec.loader.exec_module(module)
    return module



class SandboxError(SystemExit):
    pass


def require_sandbox() -> None:
    """Refuse to run Mininet anywhere but inside `mininet/run`'s namespaces."""
    try:
        with open("/proc/1/cmdline", "rb") as f:
            init = f.read()
    except OSError:
        init = b""
    if SANDBOX_MARK not in init:
        raise SandboxError(
            "refusing to run Mininet outside its sandbox: run this through mininet/run "
            "(own network, mount and PID namespaces and a private OVS), e.g.\n"
            f"  {REPO / 'mininet' / 'run'} isolation examples/seed-cluster")
    if os.geteuid() != 0:
        raise SandboxError("Mininet needs root")

