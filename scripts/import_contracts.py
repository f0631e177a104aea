"""Check the layer order of DESIGN.md: a module imports only from layers above its own.

Run by scripts/check. Exits 1 listing every import that reaches down (or sideways into
another manager loop), 0 otherwise.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "swarmlite"

# Each layer, with the layers it may import. testing/ and lab/ may import anything.
ORDER = [
    "errors",
    "clock",
    "log",
    "api",
    "rpc",
    "raft",
    "store",
    "ca",
    "compose",
    "manager",
    "agent",
    "runtime",
    "network",
    "metrics",
    "dockerapi",
    "dashboard",
    "cli",
]
BASE = {"errors", "clock", "log"}
ALLOWED: dict[str, set[str]] = {
    layer: set(ORDER[:i]) if layer not in BASE else set() for i, layer in enumerate(ORDER)
}
# The agent never touches the store (it talks to the dispatcher) nor the manager.
ALLOWED["agent"] -= {"store", "manager", "raft"}
# runtime/ and network/ implement the agent's Protocols; they reach nothing of the manager.
ALLOWED["runtime"] -= {"store", "manager", "raft"}
ALLOWED["network"] -= {"store", "manager", "raft", "runtime"}
# metrics/ reads the manager's and the agent's objects; it picks no runtime nor network
# (daemon.py hands it the driver), and only daemon.py and bootstrap.py import it.
ALLOWED["metrics"] -= {"runtime", "network"}
# The CLI reaches only the API (rpc, ca to talk to it, compose to read files); daemon.py
# and lab/ wire everything else.
ALLOWED["cli"] = BASE | {"api", "rpc", "ca", "compose", "daemon", "lab"}
# The Docker Engine API is a second front end on the control API: like the CLI it reaches
# nothing but the API (and rpc, to call it); daemon.py wires it.
ALLOWED["dockerapi"] = BASE | {"api", "rpc"}
# The dashboard reads the cluster through the control API only, as the CLI does.
ALLOWED["dashboard"] = BASE | {"api", "rpc"}
FREE = {"testing", "lab", "daemon", "bootstrap", "__init__", "__main__"}
# The manager's control loops meet in the store, never in each other's modules.
LOOPS = {"orchestrator", "scheduler", "allocator", "dispatcher", "controlapi"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def main() -> int:
    problems: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        layer = layer_of(module)
        if layer in FREE or layer not in ALLOWED:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if not name.startswith("swarmlite."):
                    continue
                parts, own = name.split("."), module.split(".")
                if (
                    layer == "manager"
                    and len(parts) > 2
                    and len(own) > 2
                    and parts[1] == "manager"
                    and {parts[2], own[2]} <= LOOPS
                    and parts[2] != own[2]
                ):
                    problems.append(f"{path}:{node.lineno}: {own[2]} may not import {name}")
                target = layer_of(name)
                if target != layer and target not in ALLOWED[layer]:
                    problems.append(f"{path}:{node.lineno}: {layer} may not import {name}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
