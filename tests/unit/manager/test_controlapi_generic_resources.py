"""The control API refuses malformed generic reservations up front, and only those: a
reservation more than any node has today is accepted (nodes may join later; swarm leaves
its tasks pending with the reason)."""

from __future__ import annotations

import msgspec
import pytest

from swarmlite.api import DiscreteResource, ResourceRequirements, Resources, ServiceSpec
from swarmlite.errors import InvalidArgument
from swarmlite.manager.controlapi.checks import check_service
from swarmlite.testing.factories import make_service

replace = msgspec.structs.replace


def _with(resources: ResourceRequirements) -> ServiceSpec:
    spec = make_service("ml_train").spec
    return replace(spec, task=replace(spec.task, resources=resources))


def _reserving(*reserved: DiscreteResource) -> ServiceSpec:
    return _with(ResourceRequirements(reservations=Resources(generic_resources=list(reserved))))


def test_any_count_of_any_kind_is_accepted() -> None:
    check_service(_reserving(DiscreteResource(kind="gpu", value=1000)))


@pytest.mark.parametrize(
    ("reserved", "message"),
    [
        (
            [DiscreteResource(kind="gpu", value=-1)],
            "service ml_train: deploy.resources.reservations.generic_resources: the count of "
            "gpu must be at least 1, got -1",
        ),
        (
            [DiscreteResource(kind="", value=1)],
            "service ml_train: deploy.resources.reservations.generic_resources: '=1' has an "
            "empty kind",
        ),
        (
            [DiscreteResource(kind="gpu", value=1), DiscreteResource(kind="gpu", value=1)],
            "service ml_train: deploy.resources.reservations.generic_resources: gpu is "
            "reserved twice",
        ),
    ],
)
def test_malformed_reservations_are_refused(reserved: list[DiscreteResource], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_service(_reserving(*reserved))
    assert caught.value.message == message


def test_generic_resources_as_a_limit_are_refused() -> None:
    spec = _with(
        ResourceRequirements(
            limits=Resources(generic_resources=[DiscreteResource(kind="gpu", value=1)])
        )
    )
    with pytest.raises(InvalidArgument) as caught:
        check_service(spec)
    assert caught.value.message == (
        "service ml_train: deploy.resources.limits.generic_resources: generic resources are "
        "reserved, not limited"
    )
    assert caught.value.hint == "move them to deploy.resources.reservations.generic_resources"
