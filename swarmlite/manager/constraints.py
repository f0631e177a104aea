"""Placement constraints: parse ``node.labels.zone==b`` and friends, test them on a Node.

Owns the constraint language, shared by the orchestrator and the control API (which nodes
get a global task: ``takes_global_task``) and the scheduler (which nodes may take a task):
``<key> == <value>`` or ``<key> != <value>`` where key is one of ``node.id``,
``node.hostname``, ``node.role``, ``node.platform.os``, ``node.platform.arch``,
``node.labels.<label>`` or ``engine.labels.<label>``. As in swarm mode, keys and values
compare case-insensitively (label *names* are case-sensitive), and a missing label equals
nothing, so ``!=`` holds on a node without it. Nodes report no engine labels, so
``engine.labels.x==y`` never holds. Pure: reads nodes, writes nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from swarmlite.api import Node, NodeAvailability, NodeState
from swarmlite.errors import InvalidArgument

EQ = "=="
NE = "!="

_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")
_FIELDS = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")
_LABEL_PREFIXES = ("node.labels.", "engine.labels.")
_HINT = (
    "write key==value or key!=value with key one of "
    + ", ".join(_FIELDS)
    + ", node.labels.<name>, engine.labels.<name>"
)


@dataclass(frozen=True, slots=True)
class Constraint:
    """One parsed constraint; ``text`` is the expression as written."""

    key: str  # normalised: the fixed part lowercased, a label name as written
    op: str  # EQ or NE
    value: str
    text: str

    def value_on(self, node: Node) -> str | None:
        """What the node has for this key; None for a missing label."""
        lowered = self.key.lower()
        if lowered.startswith("node.labels."):
            return node.spec.labels.get(self.key[len("node.labels.") :])
        if lowered.startswith("engine.labels."):
            return None
        fields = {
            "node.id": node.id,
            "node.hostname": node.status.hostname,
            "node.role": node.spec.role.value,
            "node.platform.os": node.status.os,
            "node.platform.arch": node.status.arch,
        }
        return fields[lowered]

    def matches(self, node: Node) -> bool:
        have = self.value_on(node)
        equal = have is not None and have.lower() == self.value.lower()
        return equal if self.op == EQ else not equal

    def explain(self, node: Node) -> str:
        """Why ``node`` fails this constraint, in words (meaningful only if it does)."""
        have = self.value_on(node)
        shown = "not set" if have is None else f"{have!r}"
        return f"constraint {self.text!r} not met: {self.key} is {shown} on node {node.id}"


@functools.lru_cache(maxsize=1024)
def parse_constraint(text: str) -> Constraint:
    """Parse one expression; InvalidArgument saying what is wrong otherwise."""
    for op in (EQ, NE):
        key, sep, value = text.partition(op)
        if sep:
            break
    else:
        raise InvalidArgument(f"invalid constraint {text!r}: expected == or !=", hint=_HINT)
    key, value = key.strip(), value.strip()
    if not key or not value or not _KEY.match(key) or value.startswith(("=", "!")):
        raise InvalidArgument(f"invalid constraint {text!r}: expected key{op}value", hint=_HINT)
    lowered = key.lower()
    for prefix in _LABEL_PREFIXES:
        if lowered.startswith(prefix):
            label = key[len(prefix) :]
            if not label:
                raise InvalidArgument(f"invalid constraint {text!r}: no label name", hint=_HINT)
            return Constraint(prefix + label, op, value, text.strip())
    if lowered not in _FIELDS:
        raise InvalidArgument(f"invalid constraint {text!r}: unknown key {key!r}", hint=_HINT)
    return Constraint(lowered, op, value, text.strip())


def parse_constraints(texts: Iterable[str]) -> tuple[Constraint, ...]:
    """Parse every expression; the first invalid one raises InvalidArgument."""
    return tuple(parse_constraint(text) for text in texts)


def first_unmet(node: Node, constraints: Sequence[Constraint]) -> Constraint | None:
    """The first constraint ``node`` fails, or None when it satisfies them all."""
    for constraint in constraints:
        if not constraint.matches(node):
            return constraint
    return None


def node_matches(node: Node, constraints: Sequence[Constraint]) -> bool:
    return first_unmet(node, constraints) is None


def takes_global_task(node: Node, constraints: Sequence[Constraint]) -> bool:
    """Whether a global service with ``constraints`` should run a task on ``node``: it is
    ACTIVE (a PAUSE node keeps a task it has, gets no new one), not DOWN, and matches."""
    return (
        node.spec.availability is NodeAvailability.ACTIVE
        and node.status.state is not NodeState.DOWN
        and node_matches(node, constraints)
    )


def invalid_constraint(texts: Sequence[str]) -> str | None:
    """Why the first invalid expression of ``texts`` is invalid, or None when all parse."""
    try:
        parse_constraints(texts)
    except InvalidArgument as exc:
        return exc.message
    return None


def unmet_constraint(node: Node, texts: Sequence[str]) -> str | None:
    """The first expression (as written, stripped) that ``node`` fails, or None.

    An invalid expression counts as failed: a constraint that cannot be read holds nowhere.
    """
    for text in texts:
        try:
            constraint = parse_constraint(text)
        except InvalidArgument:
            return text.strip()
        if not constraint.matches(node):
            return constraint.text
    return None
