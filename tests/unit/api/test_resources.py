"""api.resources: the KIND=VALUE syntax of dockerd's --node-generic-resource and of
--generic-resource, the checks of a service's reservations, and the environment a task
gets for what it was assigned, as swarm's daemon writes it (and the Docker driver's create
body carrying it after the spec's own)."""

from __future__ import annotations

import pytest

from swarmlite.agent.driver import ContainerRequest
from swarmlite.api import (
    ContainerSpec,
    DiscreteResource,
    NamedResource,
    Task,
    TaskTemplate,
)
from swarmlite.api.resources import (
    parse_generic_resource,
    parse_node_resources,
    parse_reservation,
    reservations_problem,
    resource_env,
)
from swarmlite.errors import InvalidArgument
from swarmlite.runtime.docker import container_config

FLAG = "--node-generic-resource"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("gpu=2", DiscreteResource(kind="gpu", value=2)),
        ("gpu=GPU-1f3a", NamedResource(kind="gpu", value="GPU-1f3a")),
        ("NVIDIA-GPU=GPU-1f3a", NamedResource(kind="NVIDIA-GPU", value="GPU-1f3a")),
        (" ssd = 1 ", DiscreteResource(kind="ssd", value=1)),
        ("gpu=2.5", NamedResource(kind="gpu", value="2.5")),  # not a whole number: a name
    ],
)
def test_a_whole_number_is_a_count_anything_else_a_name(text: str, parsed: object) -> None:
    assert parse_generic_resource(text, flag=FLAG) == parsed


def test_a_nodes_named_resources_of_one_kind_are_kept_in_order() -> None:
    assert parse_node_resources(["gpu=b", "gpu=a", "ssd=1"], flag=FLAG) == [
        NamedResource(kind="gpu", value="b"),
        NamedResource(kind="gpu", value="a"),
        DiscreteResource(kind="ssd", value=1),
    ]


@pytest.mark.parametrize(
    ("reserved", "problem"),
    [
        ([DiscreteResource(kind="gpu", value=1)], None),
        ([DiscreteResource(kind="gpu", value=-1)], "the count of gpu must be at least 1, got -1"),
        ([DiscreteResource(kind="gpu", value=0)], "the count of gpu must be at least 1, got 0"),
        ([DiscreteResource(kind="", value=1)], "'=1' has an empty kind"),
        (
            [DiscreteResource(kind="gpu", value=1), DiscreteResource(kind="gpu", value=2)],
            "gpu is reserved twice",
        ),
    ],
)
def test_reservations_problem(reserved: list[DiscreteResource], problem: str | None) -> None:
    assert reservations_problem(reserved) == problem


def test_a_reservation_is_a_count() -> None:
    assert parse_reservation("gpu=1", flag="--generic-resource") == DiscreteResource(
        kind="gpu", value=1
    )
    with pytest.raises(InvalidArgument, match="is not KIND=COUNT"):
        parse_reservation("gpu=GPU-1", flag="--generic-resource")


def test_the_environment_names_each_kind_once_with_its_assigned_ids_or_count() -> None:
    assigned = [
        NamedResource(kind="gpu", value="GPU-1f3a"),
        DiscreteResource(kind="ssd", value=2),
        NamedResource(kind="gpu", value="GPU-77c0"),
    ]
    assert resource_env(assigned) == [
        "DOCKER_RESOURCE_GPU=GPU-1f3a,GPU-77c0",
        "DOCKER_RESOURCE_SSD=2",
    ]
    assert resource_env([]) == []


def test_the_docker_create_body_carries_the_assigned_resources_after_the_spec_env() -> None:
    task = Task(
        id="t" * 25,
        spec=TaskTemplate(container=ContainerSpec(image="trainer:1", env=["A=1"])),
        assigned_generic_resources=[NamedResource(kind="gpu", value="GPU-1f3a")],
    )
    request = ContainerRequest(task=task, name="train.1", labels={})
    body = container_config(request, cluster_id="c", node_id="n")
    assert body["Env"] == ["A=1", "DOCKER_RESOURCE_GPU=GPU-1f3a"]
