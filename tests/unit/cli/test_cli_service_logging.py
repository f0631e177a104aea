"""`service create|update --log-driver --log-opt` against a fake daemon: the log driver each
sends, and the flags that can never make one, refused before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from swarmlite.api import ContainerSpec, LogDriver, ServiceSpec, TaskTemplate

from .test_cli_service_spec import create, update

SYSLOG = LogDriver(name="syslog", options={"syslog-address": "udp://10.0.0.1:514"})
LOGGED = ServiceSpec(
    name="web", task=TaskTemplate(container=ContainerSpec(image="nginx:1.27"), log_driver=SYSLOG)
)


def create_web(daemon: Any, run: Any, *flags: str) -> tuple[Any, ServiceSpec | None]:
    return create(daemon, run, "--name", "web", *flags, "nginx:1.27")


def update_logged(daemon: Any, run: Any, *flags: str) -> tuple[Any, ServiceSpec | None]:
    """``service update`` of a service logging to syslog."""
    return update(daemon, run, LOGGED, *flags)


def test_create_sends_the_driver_with_its_options(daemon, run) -> None:
    result, spec = create_web(
        daemon, run, "--log-driver", "json-file", "--log-opt", "max-size=1m",
        "--log-opt", "max-file=5", "--log-opt", "labels=",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert spec is not None
    assert spec.task.log_driver == LogDriver(
        name="json-file", options={"max-size": "1m", "max-file": "5", "labels": ""}
    )


def test_create_without_the_flags_leaves_the_default_to_the_runtime(daemon, run) -> None:
    result, spec = create_web(daemon, run)
    assert result.exit_code == 0, result.stderr
    assert spec is not None and spec.task.log_driver is None


def test_update_replaces_the_driver_and_its_options_together(daemon, run) -> None:
    result, spec = update_logged(daemon, run, "--log-driver", "local", "--log-opt", "max-size=20m")
    assert result.exit_code == 0, result.stderr
    assert spec is not None
    assert spec.task.log_driver == LogDriver(name="local", options={"max-size": "20m"})


def test_update_without_the_flags_keeps_the_driver(daemon, run) -> None:
    result, spec = update_logged(daemon, run, "--env-add", "A=1")
    assert result.exit_code == 0, result.stderr
    assert spec is not None and spec.task.log_driver == SYSLOG


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--log-opt", "max-size"], "invalid log option 'max-size': expected key=value"),
        (["--log-opt", "=1m"], "invalid log option '=1m': expected key=value"),
        (["--log-opt", "max-size=1m"], "error: --log-opt needs --log-driver"),
        (["--log-driver", ""], "error: --log-driver must not be empty"),
    ],
)
def test_flags_that_can_never_make_a_driver_are_refused(daemon, run, args, error) -> None:
    for command in (create_web, update_logged):
        result, spec = command(daemon, run, *args)
        assert result.exit_code == 2, result.stdout
        assert error in result.stderr
        assert spec is None
