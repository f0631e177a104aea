"""Placement constraints: parsing, matching on nodes, and the words of a mismatch."""

from __future__ import annotations

import pytest

from swarmlite.errors import InvalidArgument
from swarmlite.manager.constraints import (
    first_unmet,
    invalid_constraint,
    node_matches,
    parse_constraint,
    parse_constraints,
    unmet_constraint,
)
from swarmlite.testing.factories import make_node

NODE = make_node(
    "n1",
    hostname="web-1",
    role="manager",
    labels={"zone": "b", "Disk": "ssd"},
    os="linux",
    arch="aarch64",
)


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("node.labels.zone==b", True),
        ("node.labels.zone == B", True),
        ("node.labels.zone!=b", False),
        ("node.labels.Disk==SSD", True),
        ("node.labels.disk==ssd", False),  # label names are case-sensitive
        ("node.labels.rack==1", False),
        ("node.labels.rack!=1", True),  # a missing label equals nothing
        ("node.role==manager", True),
        ("node.role!=worker", True),
        ("node.hostname==web-1", True),
        ("node.id==n1", True),
        ("NODE.PLATFORM.ARCH==aarch64", True),
        ("node.platform.os==windows", False),
        ("engine.labels.kind==x", False),
    ],
)
def test_constraint_matches(text: str, holds: bool) -> None:
    assert parse_constraint(text).matches(NODE) is holds


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("node.labels.zone", "expected == or !="),
        ("==b", "expected key==value"),
        ("node.labels.zone==", "expected key==value"),
        ("node.labels.==x", "no label name"),
        ("node.colour==red", "unknown key"),
        ("node.role===manager", "expected key==value"),
    ],
)
def test_invalid_constraint_says_why(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_constraint(text)
    assert words in info.value.message
    assert "node.labels.<name>" in (info.value.hint or "")
    assert invalid_constraint(["node.role==worker", text]) == info.value.message


def test_first_unmet_and_its_explanation() -> None:
    constraints = parse_constraints(["node.role==manager", "node.labels.zone==a"])
    unmet = first_unmet(NODE, constraints)
    assert unmet is not None and unmet.text == "node.labels.zone==a"
    assert unmet.explain(NODE) == (
        "constraint 'node.labels.zone==a' not met: node.labels.zone is 'b' on node n1"
    )
    assert not node_matches(NODE, constraints)
    assert node_matches(NODE, constraints[:1])
    missing = parse_constraint("node.labels.rack==1")
    assert "node.labels.rack is not set" in missing.explain(NODE)


def test_unmet_constraint_on_texts() -> None:
    assert unmet_constraint(NODE, ["node.labels.zone==b"]) is None
    assert unmet_constraint(NODE, [" node.role==worker "]) == "node.role==worker"
    assert unmet_constraint(NODE, ["bogus"]) == "bogus"  # unreadable holds nowhere
    assert invalid_constraint(["node.labels.zone==b"]) is None


def test_make_node_reads_sizes() -> None:
    assert make_node(memory="2G").status.memory_bytes == 2 << 30
    assert make_node(memory="512Mi").status.memory_bytes == 512 << 20
    assert make_node(memory=1000).status.memory_bytes == 1000
    with pytest.raises(ValueError):
        make_node(memory="lots")
