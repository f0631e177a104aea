"""`--node-generic-resource` given to init is checked before any state is written, kept in
node.json for the next start, and in the first node's description."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.api import DiscreteResource, GenericResource, NamedResource, Node
from swarmlite.bootstrap import NodeOptions, init_cluster, load_options, read_node
from swarmlite.errors import InvalidArgument
from swarmlite.raft import EntryKind, RaftStorage
from swarmlite.raft.sealing import load_keys
from swarmlite.store import MemoryStore

ADVERTISED: tuple[GenericResource, ...] = (
    NamedResource(kind="gpu", value="GPU-1f3a"),
    NamedResource(kind="gpu", value="GPU-77c0"),
    DiscreteResource(kind="ssd", value=2),
)


def _init(data_dir: Path, resources: tuple[GenericResource, ...]) -> None:
    init_cluster(
        NodeOptions(data_dir=data_dir, listen_addr="127.0.0.1:0", generic_resources=resources)
    )


def _stored_nodes(data_dir: Path) -> list[Node]:
    raft_dir = data_dir / "raft"
    storage = RaftStorage.open(raft_dir, keys=load_keys(raft_dir))
    recovered = storage.recover()
    storage.close()
    memory = MemoryStore()
    for entry in recovered.entries:
        if entry.kind is EntryKind.NORMAL:
            memory.apply(entry.index, entry.data).unwrap()
    return memory.list(Node)


def test_the_resources_are_kept_for_the_next_start_and_in_the_first_node(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "node"
    _init(data_dir, ADVERTISED)
    assert read_node(data_dir).generic_resources == list(ADVERTISED)
    assert load_options(data_dir).generic_resources == ADVERTISED
    (node,) = _stored_nodes(data_dir)
    assert node.status.generic_resources == list(ADVERTISED)


@pytest.mark.parametrize(
    ("resources", "words"),
    [
        ((DiscreteResource(kind="gpu", value=-1),), "a count must be at least 1"),
        ((NamedResource(kind="", value="GPU-1"),), "has an empty kind"),
        (
            (DiscreteResource(kind="gpu", value=1), NamedResource(kind="gpu", value="a")),
            "gpu is given both as a count and as named resources",
        ),
    ],
)
def test_bad_resources_are_refused_and_nothing_is_written(
    tmp_path: Path, resources: tuple[GenericResource, ...], words: str
) -> None:
    data_dir = tmp_path / "node"
    with pytest.raises(InvalidArgument, match=words):
        _init(data_dir, resources)
    left = list(data_dir.iterdir()) if data_dir.exists() else []
    assert left == []
