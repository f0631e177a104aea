"""A task's log driver: the default keeps rotation on, what dockerd would refuse on a node
is refused before it is stored (by the control API, naming the field), and the Docker
JSON of ``TaskTemplate.LogDriver`` goes both ways unchanged."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from swarmlite.api import LogDriver, Service, ServiceSpec
from swarmlite.api.dockerjson import service_json
from swarmlite.api.logdriver import check_log_driver, effective, parse_size, readable
from swarmlite.dockerapi.spec import service_spec
from swarmlite.errors import InvalidArgument
from swarmlite.manager.controlapi.checks import check_service
from swarmlite.runtime.docker.driver import log_config
from swarmlite.testing.factories import make_service

# --------------------------------------------------------------------------- the default


def test_a_service_that_names_no_driver_logs_to_a_rotated_json_file() -> None:
    assert effective(None) == LogDriver(
        name="json-file", options={"max-size": "10m", "max-file": "3"}
    )
    assert log_config(None) == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "3"},
    }


def test_json_file_without_a_max_size_gets_the_rotation_too() -> None:
    assert effective(LogDriver(name="json-file")).options == {"max-size": "10m", "max-file": "3"}
    # only options (compose without driver:): the default driver, its rotation filled in
    assert effective(LogDriver(options={"max-file": "5", "tag": "x"})) == LogDriver(
        name="json-file", options={"max-size": "10m", "max-file": "5", "tag": "x"}
    )


def test_what_the_service_says_is_kept() -> None:
    # a max-size alone keeps Docker's meaning: one file of that size
    assert log_config(LogDriver(name="json-file", options={"max-size": "1m"})) == {
        "Type": "json-file",
        "Config": {"max-size": "1m"},
    }
    # other drivers get no json-file options
    assert log_config(LogDriver(name="local")) == {"Type": "local", "Config": {}}
    syslog = LogDriver(name="syslog", options={"syslog-address": "udp://10.0.0.1:514"})
    assert log_config(syslog) == {"Type": "syslog", "Config": dict(syslog.options)}


def test_only_the_none_driver_keeps_nothing_to_read() -> None:
    assert not readable(LogDriver(name="none"))
    assert readable(None) and readable(LogDriver(name="syslog"))  # dockerd's dual logging


def test_sizes_are_dockers() -> None:
    assert parse_size("10m") == 10 << 20
    assert parse_size("1.5g") == int(1.5 * (1 << 30))
    assert parse_size("10 MiB") == 10 << 20
    assert parse_size("1024") == 1024
    for bad in ("10q", "-1", "", "1.5.2m", "m"):
        assert parse_size(bad) is None, bad


# --------------------------------------------------------------------------- refusals


def spec_with(driver: LogDriver) -> ServiceSpec:
    spec = make_service("shop_web").spec
    return msgspec.structs.replace(spec, task=msgspec.structs.replace(spec.task, log_driver=driver))


REFUSED = [
    (LogDriver(name="json file"), 'logging.driver "json file" is not a log driver or plugin name'),
    (
        LogDriver(name="json-file", options={"max-size": "10q"}),
        'logging.options.max-size must be a size such as "10m" or "1g", got "10q"',
    ),
    (
        LogDriver(name="json-file", options={"max-size": "0"}),
        "logging.options.max-size must be more than 0",
    ),
    (
        LogDriver(name="local", options={"max-file": "0"}),
        'logging.options.max-file must be a whole number of at least 1, got "0"',
    ),
    (
        LogDriver(name="json-file", options={"max-size": "1m", "max-file": "x"}),
        'logging.options.max-file must be a whole number of at least 1, got "x"',
    ),
    (
        LogDriver(name="json-file", options={"compress": "yes"}),
        'logging.options.compress must be "true" or "false", got "yes"',
    ),
    (
        LogDriver(name="json-file", options={"max-size": "1m", "compress": "true"}),
        "logging.options.compress needs max-size and a max-file of 2 or more",
    ),
    (
        LogDriver(name="local", options={"tag": "x"}),
        "logging.options.tag is not an option of the local driver (it has compress, max-buffer-"
        "size, max-file, max-size, mode)",
    ),
    (LogDriver(options={"": "x"}), "logging.options has an option with an empty name"),
    (
        LogDriver(name="syslog", options={"mode": "fast"}),
        'logging.options.mode must be "blocking" or "non-blocking", got "fast"',
    ),
    (
        LogDriver(name="json-file", options={"max-buffer-size": "4m"}),
        "logging.options.max-buffer-size needs mode=non-blocking",
    ),
]


@pytest.mark.parametrize(("driver", "reason"), REFUSED)
def test_the_control_api_refuses_what_dockerd_would_refuse(driver: LogDriver, reason: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_service(spec_with(driver))
    assert refused.value.message.startswith(f"service shop_web: {reason}")


ACCEPTED = [
    LogDriver(name="json-file"),
    LogDriver(name="json-file", options={"max-size": "1m", "max-file": "3", "compress": "true"}),
    LogDriver(name="json-file", options={"mode": "non-blocking", "max-buffer-size": "4m"}),
    LogDriver(name="local", options={"max-size": "0"}),  # local takes 0: its own default
    LogDriver(name="none"),
    LogDriver(name="syslog", options={"syslog-address": "udp://10.0.0.1:514", "tag": "{{.Name}}"}),
    LogDriver(name="grafana/loki-docker-driver:2.9", options={"loki-url": "http://l/push"}),
    LogDriver(options={"max-size": "5m"}),
]


@pytest.mark.parametrize("driver", ACCEPTED, ids=lambda d: d.name or "default")
def test_what_can_work_passes(driver: LogDriver) -> None:
    check_service(spec_with(driver))
    check_log_driver(driver)


# --------------------------------------------------------------------------- Docker JSON


def test_docker_json_round_trips_the_log_driver() -> None:
    body: dict[str, Any] = {
        "Name": "web",
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox"},
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "5m", "max-file": "2"}},
        },
    }
    spec = service_spec(body)
    assert spec.task.log_driver == LogDriver(
        name="json-file", options={"max-size": "5m", "max-file": "2"}
    )
    shown = service_json(Service(id="s" * 25, spec=spec))["Spec"]["TaskTemplate"]
    assert shown["LogDriver"] == body["TaskTemplate"]["LogDriver"]
    assert service_spec(json.loads(json.dumps({"Name": "web", "TaskTemplate": shown}))) == spec


def test_docker_json_without_a_log_driver_shows_none() -> None:
    spec = service_spec({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "b"}}})
    assert spec.task.log_driver is None
    shown = service_json(Service(id="s" * 25, spec=spec))["Spec"]["TaskTemplate"]
    assert "LogDriver" not in shown  # Go's nil *Driver, as dockerd shows a service without one
    only_name = service_spec(
        {
            "Name": "web",
            "TaskTemplate": {"ContainerSpec": {"Image": "b"}, "LogDriver": {"Name": "none"}},
        }
    )
    assert service_json(Service(id="s" * 25, spec=only_name))["Spec"]["TaskTemplate"][
        "LogDriver"
    ] == {"Name": "none"}


def test_a_log_driver_of_the_wrong_type_is_refused_by_its_path() -> None:
    body = {
        "Name": "web",
        "TaskTemplate": {"ContainerSpec": {"Image": "b"}, "LogDriver": {"Options": ["a=b"]}},
    }
    with pytest.raises(InvalidArgument) as refused:
        service_spec(body)
    assert "TaskTemplate.LogDriver.Options" in refused.value.message


def test_a_node_with_another_default_driver_keeps_it_for_services_that_name_none() -> None:
    # daemon.json "log-driver": "journald": no LogConfig, so dockerd's own choice and options
    assert log_config(None, "journald") is None
    assert log_config(LogDriver(), "journald") is None
    # what a service names still wins, and options alone go to the node's driver
    assert log_config(LogDriver(name="json-file"), "journald") == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "3"},
    }
    assert log_config(LogDriver(options={"tag": "x"}), "local") == {
        "Type": "local",
        "Config": {"tag": "x"},
    }
