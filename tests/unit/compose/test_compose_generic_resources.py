"""deploy.resources.reservations.generic_resources becomes the spec's reservation; devices
and misplaced or malformed generic resources are refused where they are written."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from swarmlite.api import DiscreteResource
from swarmlite.compose import load_stack, to_stack_deploy
from swarmlite.errors import ComposeError

RESERVED = "reservations:\n  generic_resources:\n    - discrete_resource_spec: {}"


def _deploy(tmp_path: Path, resources: str) -> Path:
    """A one-service file whose deploy.resources is ``resources`` (YAML at that indent)."""
    body = dedent(resources).strip("\n").replace("\n", "\n        ")
    path = tmp_path / "compose.yml"
    path.write_text(
        "services:\n  train:\n    image: trainer:1\n    deploy:\n      resources:\n"
        f"        {body}\n"
    )
    return path


def _refusal(path: Path) -> ComposeError:
    with pytest.raises(ComposeError) as caught:
        load_stack([path], env={})
    return caught.value


def test_generic_resources_become_the_reservation(tmp_path: Path) -> None:
    path = _deploy(
        tmp_path,
        """
        reservations:
          memory: 1G
          generic_resources:
            - discrete_resource_spec: {kind: gpu, value: 2}
            - discrete_resource_spec:
                kind: ssd
                value: 1
        """,
    )
    (service,) = to_stack_deploy(load_stack([path], env={}), "ml").services
    reservations = service.task.resources.reservations
    assert reservations.generic_resources == [
        DiscreteResource(kind="gpu", value=2),
        DiscreteResource(kind="ssd", value=1),
    ]
    assert reservations.memory_bytes == 1 << 30
    assert service.task.resources.limits.generic_resources == []


def test_devices_are_refused_with_the_generic_resources_way(tmp_path: Path) -> None:
    path = _deploy(
        tmp_path,
        """
        reservations:
          devices:
            - capabilities: [gpu]
              count: 1
        """,
    )
    error = _refusal(path)
    assert error.line == 7
    assert "services.train.deploy.resources.reservations.devices: swarm mode has no device " in (
        error.message
    )
    assert error.hint is not None
    assert "--node-generic-resource gpu=GPU-<uuid>" in error.hint
    assert "discrete_resource_spec: {kind: gpu, value: 1}" in error.hint


@pytest.mark.parametrize(
    ("resources", "line", "words"),
    [
        (
            "limits:\n  generic_resources:\n    - discrete_resource_spec: {kind: gpu, value: 1}",
            7,
            "limits.generic_resources: generic resources are reserved, not limited",
        ),
        (
            RESERVED.format("{kind: gpu, value: 0}"),
            8,
            "discrete_resource_spec.value must be at least 1, got 0",
        ),
        (
            RESERVED.format("{kind: gpu, value: -2}"),
            8,
            "discrete_resource_spec.value must be at least 1, got -2",
        ),
        (
            RESERVED.format("{kind: '', value: 1}"),
            8,
            "discrete_resource_spec.kind must be a non-empty string",
        ),
        (
            "reservations:\n  generic_resources:\n    - discrete_resource_spec: {value: 1}",
            8,
            "discrete_resource_spec.kind is required",
        ),
        (
            "reservations:\n  generic_resources:\n    - named_resource_spec: {kind: gpu, value: a}",
            8,
            "generic_resources[0].named_resource_spec is not a known key",
        ),
        (
            "reservations:\n  generic_resources:\n"
            "    - discrete_resource_spec: {kind: gpu, value: 1}\n"
            "    - discrete_resource_spec: {kind: gpu, value: 2}",
            9,
            "generic_resources[1].discrete_resource_spec.kind: gpu is reserved twice",
        ),
    ],
)
def test_malformed_generic_resources_are_refused_where_they_are(
    tmp_path: Path, resources: str, line: int, words: str
) -> None:
    error = _refusal(_deploy(tmp_path, resources))
    assert words in error.message
    assert error.line == line
