"""The scheduler's one door to placement constraints: which constraint a node fails.

Owns only the two questions the scheduler asks, so that the constraints filter does not
depend on the constraint language's shapes: is a list of constraints valid, and which one,
if any, does a node not satisfy. Until ``swarmlite.manager.constraints`` (the language's
owner) lands, a minimal evaluator here answers: ``key==value`` / ``key!=value`` over
node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<k>
and engine.labels.<k> (a missing label equals nothing, so ``!=`` holds).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from swarmlite.api import Node

_Parsed = tuple[str, str, str]  # key, operator, value


@functools.lru_cache(maxsize=1024)
def _parse(expr: str) -> _Parsed | str:
    """The parsed constraint, or the error text for an invalid one."""
    for op in ("==", "!="):
        key, sep, value = expr.partition(op)
        if sep:
            key, value = key.strip(), value.strip()
            if not key or not value:
                return f"invalid constraint {expr!r}: expected key{op}value"
            return key.lower(), op, value
    return f"invalid constraint {expr!r}: expected == or !="


def _value(node: Node, key: str) -> str | None:
    if key.startswith("node.labels."):
        return node.spec.labels.get(key.removeprefix("node.labels."))
    if key.startswith("engine.labels."):
        return None  # nodes do not report engine labels yet
    fields = {
        "node.id": node.id,
        "node.hostname": node.status.hostname,
        "node.role": node.spec.role.value,
        "node.platform.os": node.status.os,
        "node.platform.arch": node.status.arch,
    }
    return fields.get(key)


def invalid_constraint(constraints: Sequence[str]) -> str | None:
    """Why the first invalid constraint of ``constraints`` is invalid, or None."""
    for expr in constraints:
        parsed = _parse(expr)
        if isinstance(parsed, str):
            return parsed
    return None


def unmet_constraint(node: Node, constraints: Sequence[str]) -> str | None:
    """The first constraint (as written) that ``node`` does not satisfy, or None."""
    for expr in constraints:
        parsed = _parse(expr)
        if isinstance(parsed, str):
            return expr
        key, op, want = parsed
        have = _value(node, key)
        equal = have is not None and have.lower() == want.lower()
        if equal != (op == "=="):
            return expr.strip()
    return None
