"""What the Docker driver does for Podman, shown on Podman's own answers (as 4.3.1 gives them);
the contract suite shows the same against a real Podman."""

from __future__ import annotations

import resource

import aiodocker

from swarmlite.errors import AlreadyExists, RuntimeFailure
from swarmlite.runtime.docker.driver import LineSplitter
from swarmlite.runtime.docker.engine import translate
from swarmlite.runtime.docker.podman import (
    DEFAULT_HEALTH_INTERVAL,
    PODMAN_NPROC,
    fill_ulimits,
    health_interval,
    is_podman,
)

PODMAN_VERSION = {
    "Version": "4.3.1",
    "Components": [
        {"Name": "Podman Engine", "Version": "4.3.1"},
        {"Name": "Conmon", "Version": "conmon version 2.1.6"},
    ],
}
DOCKER_VERSION = {"Version": "20.10.24", "Components": [{"Name": "Engine", "Version": "20.10.24"}]}


def test_podman_is_told_from_dockerd_by_its_engine_component() -> None:
    assert is_podman(PODMAN_VERSION)
    assert not is_podman(DOCKER_VERSION)
    assert not is_podman({})


def test_a_line_podman_sends_in_timestamped_pieces_reads_as_one_line() -> None:
    lines = LineSplitter()
    assert lines.feed(1, b"2026-12-07T11:58:59.1Z s3cret", frame=True) == []
    [entry] = lines.feed(1, b"2026-12-07T11:58:59.2Z \n", frame=True)
    assert entry.line == "s3cret"
    # A whole line in one frame, and text that only looks like a time mid-line, as sent.
    [whole] = lines.feed(1, b"2026-12-07T11:59:00Z 2026-12-07T11:59:00Z done\n", frame=True)
    assert whole.line == "2026-12-07T11:59:00Z done"


def test_missing_ulimits_are_filled_from_this_process_only_when_some_are_given() -> None:
    host: dict[str, object] = {"Ulimits": []}
    fill_ulimits(host)
    assert host["Ulimits"] == []  # Podman's configured defaults apply

    host = {"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]}
    fill_ulimits(host)
    by_name = {u["Name"]: u for u in host["Ulimits"]}  # type: ignore[attr-defined]
    assert by_name["nofile"] == {"Name": "nofile", "Soft": 1024, "Hard": 2048}
    nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    if nproc_hard != resource.RLIM_INFINITY:
        limit = min(nproc_hard, PODMAN_NPROC)
        assert by_name["nproc"] == {"Name": "nproc", "Soft": limit, "Hard": limit}


def test_the_health_interval_podman_must_be_driven_at() -> None:
    check = {"Test": ["CMD", "false"], "Interval": 1_000_000_000, "Retries": 1}
    assert health_interval({"Config": {"Healthcheck": check}}) == 1.0
    assert health_interval({"Config": {"Healthcheck": {"Test": ["CMD", "true"]}}}) == (
        DEFAULT_HEALTH_INTERVAL
    )
    assert health_interval({"Config": {"Healthcheck": {"Test": ["NONE"]}}}) is None
    assert health_interval({"Config": {}}) is None


def test_podman_s_500_for_a_taken_name_is_already_exists() -> None:
    message = (
        'container create: creating container storage: the container name "web" is already in '
        "use by 95b1d969. You have to remove that container to be able to reuse that name: "
        "that name is already in use"
    )
    error = aiodocker.DockerError(500, {"message": message})
    assert isinstance(translate(error, what="web", subject="container"), AlreadyExists)
    other = aiodocker.DockerError(500, {"message": "OCI permission denied"})
    assert type(translate(other, what="web", subject="container")) is RuntimeFailure
