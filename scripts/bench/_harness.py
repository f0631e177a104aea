"""The tests' harnesses, loaded into a benchmark: a benchmark drives the same daemons,
stacks and labs as the integration tests, from their conftest files, loaded by path (they
are not importable modules) under a name of their own, once per process.

    from _harness import CLUSTER, load
    harness = load(CLUSTER)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_TESTS = Path(__file__).resolve().parents[2] / "tests" / "integration"
CLUSTER = _TESTS / "conftest.py"  # daemons on loopback (test_cluster.py's)
STACKS = _TESTS / "stacks" / "conftest.py"  # nodes on private dockerds
NETWORK = _TESTS / "network" / "conftest.py"  # the lab's hosts and their tools

_NAMES = {
    CLUSTER: "swarmlite_cluster_harness",
    STACKS: "swarmlite_stack_harness",
    NETWORK: "swarmlite_network_helpers",
}


def load(path: Path, name: str | None = None) -> ModuleType:
    """The module in ``path`` (loaded on the first call, then the same one)."""
    name = name or _NAMES.get(path) or f"swarmlite_harness_{path.parent.name}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module
