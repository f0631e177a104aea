"""Generic resources in Docker's JSON: a service's TaskTemplate.Resources.Reservations.
GenericResources read and shown back the same, a named one in a service refused by its
path, a node's Description.Resources.GenericResources and a task's
AssignedGenericResources as `docker node inspect` and `docker inspect <task>` show them."""

from __future__ import annotations

from typing import Any

import pytest

from swarmlite.api import (
    DiscreteResource,
    NamedResource,
    Node,
    NodeStatus,
    Service,
    Task,
)
from swarmlite.api.dockerjson import node_json, service_json, task_json
from swarmlite.dockerapi.spec import service_spec
from swarmlite.errors import InvalidArgument

RESERVED = [
    {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 2}},
    {"DiscreteResourceSpec": {"Kind": "ssd", "Value": 1}},
]


def _body(generic: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Name": "train",
        "TaskTemplate": {
            "ContainerSpec": {"Image": "trainer:1"},
            "Resources": {"Reservations": {"MemoryBytes": 1 << 30, "GenericResources": generic}},
        },
    }


def test_reservations_are_read_and_shown_back_the_same() -> None:
    spec = service_spec(_body(RESERVED))
    assert spec.task.resources.reservations.generic_resources == [
        DiscreteResource(kind="gpu", value=2),
        DiscreteResource(kind="ssd", value=1),
    ]
    shown = service_json(Service(id="s" * 25, spec=spec), insert_defaults=False)["Spec"]
    assert shown["TaskTemplate"]["Resources"]["Reservations"] == {
        "MemoryBytes": 1 << 30,
        "GenericResources": RESERVED,
    }
    assert service_spec(shown) == spec


def test_a_service_without_generic_resources_shows_none() -> None:
    spec = service_spec(_body([]))
    shown = service_json(Service(id="s" * 25, spec=spec), insert_defaults=False)["Spec"]
    assert "GenericResources" not in shown["TaskTemplate"]["Resources"]["Reservations"]


@pytest.mark.parametrize(
    ("generic", "words"),
    [
        (
            [{"NamedResourceSpec": {"Kind": "gpu", "Value": "GPU-1"}}],
            "TaskTemplate.Resources.Reservations.GenericResources[0].NamedResourceSpec: a "
            "service reserves a count of a kind",
        ),
        (
            [{}],
            "TaskTemplate.Resources.Reservations.GenericResources[0].DiscreteResourceSpec "
            "is required",
        ),
        (
            [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": "2"}}],
            "cannot unmarshal string into Go struct field ServiceSpec.TaskTemplate.Resources."
            "Reservations.GenericResources[0].DiscreteResourceSpec.Value of type int64",
        ),
    ],
)
def test_what_is_no_count_of_a_kind_is_refused_by_its_path(
    generic: list[dict[str, Any]], words: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        service_spec(_body(generic))
    assert words in caught.value.message


def test_a_node_shows_what_it_advertises() -> None:
    node = Node(
        id="n" * 25,
        status=NodeStatus(
            nano_cpus=2_000_000_000,
            generic_resources=[
                NamedResource(kind="gpu", value="GPU-1f3a"),
                DiscreteResource(kind="ssd", value=2),
            ],
        ),
    )
    assert node_json(node)["Description"]["Resources"] == {
        "NanoCPUs": 2_000_000_000,
        "GenericResources": [
            {"NamedResourceSpec": {"Kind": "gpu", "Value": "GPU-1f3a"}},
            {"DiscreteResourceSpec": {"Kind": "ssd", "Value": 2}},
        ],
    }


def test_a_task_shows_what_it_was_assigned_and_only_then() -> None:
    task = Task(
        id="t" * 25,
        assigned_generic_resources=[NamedResource(kind="gpu", value="GPU-1f3a")],
    )
    assert task_json(task)["AssignedGenericResources"] == [
        {"NamedResourceSpec": {"Kind": "gpu", "Value": "GPU-1f3a"}}
    ]
    assert "AssignedGenericResources" not in task_json(Task(id="u" * 25))
