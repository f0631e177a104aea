"""Generic resources on the command line: `--node-generic-resource` of init and join
(dockerd's flag), and `service create --generic-resource` / `service update
--generic-resource-add|-rm` (docker's), against the recorder and fake daemon of the other
CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.api import (
    ContainerSpec,
    DiscreteResource,
    NamedResource,
    ResourceRequirements,
    Resources,
    ServiceSpec,
    TaskTemplate,
)

from .test_cli_service_spec import create, update
from .test_cli_swarm import WORKER_TOKEN, recorder  # noqa: F401  (a fixture)

WEB = ("--name", "web")
IMAGE = "nginx:1.27"


# --------------------------------------------------------------------------- init and join


def test_init_and_join_pass_the_nodes_generic_resources_on(run, recorder, tmp_path) -> None:  # noqa: F811
    result = run(
        "init", "--foreground", "--data-dir", str(tmp_path / "a"),
        "--node-generic-resource", "gpu=GPU-1f3a",
        "--node-generic-resource", "gpu=GPU-77c0",
        "--node-generic-resource", "ssd=2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    opts = recorder.calls[0][1][0]
    assert opts.generic_resources == (
        NamedResource(kind="gpu", value="GPU-1f3a"),
        NamedResource(kind="gpu", value="GPU-77c0"),
        DiscreteResource(kind="ssd", value=2),
    )

    result = run(
        "join", "--token", WORKER_TOKEN, "--data-dir", str(tmp_path / "b"),
        "--node-generic-resource", "fpga=1", "10.0.0.1:2377",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    opts = recorder.calls[2][1][0]
    assert opts.generic_resources == (DiscreteResource(kind="fpga", value=1),)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (["gpu"], "--node-generic-resource 'gpu' is not KIND=VALUE"),
        (["=GPU-1"], "--node-generic-resource '=GPU-1' has an empty kind"),
        (["gpu="], "--node-generic-resource 'gpu=' is not KIND=VALUE"),
        (["gpu=-1"], "the count of gpu must be at least 1, got -1"),
        (["gpu=0"], "the count of gpu must be at least 1, got 0"),
        (["g pu=1"], "has a kind 'g pu' that is not letters, digits"),
        (["gpu=a,b"], "a resource name may not hold spaces, ',' or '='"),
        (["gpu=2", "gpu=GPU-1"], "gpu is given both as a count and as named resources"),
        (["gpu=GPU-1", "gpu=GPU-1"], "'gpu=GPU-1' is given twice"),
        (["gpu=1", "gpu=2"], "gpu is given a count twice"),
    ],
)
def test_init_and_join_refuse_bad_values_before_anything_is_written(
    run,
    recorder,  # noqa: F811
    tmp_path: Path,
    values: list[str],
    words: str,
) -> None:
    flags = [arg for value in values for arg in ("--node-generic-resource", value)]
    for command in (
        ["init", "--data-dir", str(tmp_path / "a"), *flags],
        ["join", "--token", WORKER_TOKEN, "--data-dir", str(tmp_path / "b"), *flags, "m1"],
    ):
        result = run(*command)
        assert result.exit_code == 2, result.stdout
        assert words in result.stderr
    assert recorder.calls == []
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --------------------------------------------------------------------------- services


def _spec(*reserved: DiscreteResource) -> ServiceSpec:
    return ServiceSpec(
        name="web",
        task=TaskTemplate(
            container=ContainerSpec(image="nginx:1.27"),
            resources=ResourceRequirements(
                reservations=Resources(memory_bytes=1 << 30, generic_resources=list(reserved))
            ),
        ),
    )


def test_create_reserves_each_generic_resource(daemon, run) -> None:
    result, spec = create(
        daemon, run, *WEB, "--generic-resource", "gpu=2", "--generic-resource", "ssd=1", IMAGE
    )
    assert result.exit_code == 0, result.stderr
    assert spec is not None
    assert spec.task.resources.reservations.generic_resources == [
        DiscreteResource(kind="gpu", value=2),
        DiscreteResource(kind="ssd", value=1),
    ]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("gpu", "--generic-resource 'gpu' is not KIND=COUNT"),
        ("gpu=GPU-1", "--generic-resource 'gpu=GPU-1' is not KIND=COUNT"),
        ("gpu=-1", "the count of gpu must be at least 1, got -1"),
        ("=1", "has an empty kind"),
    ],
)
def test_create_refuses_a_bad_generic_resource(daemon, run, value: str, words: str) -> None:
    result, spec = create(daemon, run, *WEB, "--generic-resource", value, IMAGE)
    assert result.exit_code == 2
    assert words in result.stderr
    assert spec is None


def test_update_removes_by_kind_then_adds_replacing_a_kinds_count(daemon, run) -> None:
    before = _spec(DiscreteResource(kind="gpu", value=1), DiscreteResource(kind="ssd", value=1))
    result, spec = update(
        daemon, run, before,
        "--generic-resource-rm", "ssd",
        "--generic-resource-add", "gpu=2",
        "--generic-resource-add", "fpga=1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    reservations = spec.task.resources.reservations
    assert reservations.generic_resources == [
        DiscreteResource(kind="gpu", value=2),
        DiscreteResource(kind="fpga", value=1),
    ]
    assert reservations.memory_bytes == 1 << 30  # the rest of the reservation is kept


def test_update_refuses_to_remove_a_kind_not_reserved(daemon, run) -> None:
    before = _spec(DiscreteResource(kind="gpu", value=1))
    result, spec = update(daemon, run, before, "--generic-resource-rm", "tpu")
    assert result.exit_code == 2
    assert "could not find generic-resource `tpu` to remove it" in result.stderr
    assert spec is None
