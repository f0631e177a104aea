"""Docker's ServiceSpec JSON -> swarmlite's ServiceSpec (dockerapi/spec.py).

The bodies are those the clients sent on the wire (recorded from the docker CLI 28.2.2
and 20.10.24 and docker-py 7.1.0 against a request logger); only the ids the logger
handed out are replaced by ids of the lookup below.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from swarmlite.api import (
    Config,
    ConfigSpec,
    FailureAction,
    FileRef,
    HealthCheck,
    Mount,
    Network,
    NetworkAttachment,
    NetworkSpec,
    Platform,
    RestartCondition,
    Secret,
    SecretSpec,
    Service,
    ServiceMode,
    Ulimit,
    UpdateOrder,
)
from swarmlite.api.dockerjson import Lookup, service_json
from swarmlite.dockerapi.spec import empty, service_spec
from swarmlite.errors import InvalidArgument, NotFound

TESTNET = "k1y8f2c0mqk4u1w8v9x7y6z5a"
OTHER = "p3q4r5s6t7u8v9w0x1y2z3a4b"
SECRET = "vup5cw0r4pjd0n2q3x9m7l1ka"
CONFIG = "7p0nzq2w4e6r8t0y1u3i5o7pa"

LOOKUP = Lookup(
    networks=[
        Network(id=TESTNET, spec=NetworkSpec(name="testnet")),
        Network(id=OTHER, spec=NetworkSpec(name="other")),
        Network(id="k1zzzzzzzzzzzzzzzzzzzzzzz", spec=NetworkSpec(name="third")),
    ],
    secrets=[Secret(id=SECRET, spec=SecretSpec(name="s1", data=b"pw"))],
    configs=[Config(id=CONFIG, spec=ConfigSpec(name="c1", data=b"x"))],
)

# `docker service create -d --name full <every flag below> busybox:1.36 -c "sleep 1000"`,
# CLI 28.2.2 (20.10 sends the same but for StartInterval and OomScoreAdj, which it lacks).
FLAGS = (
    "--label a=b --container-label c=d --env A=1 --env B=2 --workdir /w --user 1000:1000 "
    "--group 2000 --hostname h --stop-signal SIGTERM --stop-grace-period 20s --init "
    "--read-only --tty --cap-add NET_ADMIN --cap-drop MKNOD --sysctl net.core.somaxconn=1024 "
    "--ulimit nofile=1024:2048 --health-cmd true --health-interval 5s --health-timeout 2s "
    "--health-retries 3 --health-start-period 1s --health-start-interval 1s "
    "--mount type=volume,source=v1,target=/data "
    "--mount type=bind,source=/tmp,target=/host,readonly "
    "--mount type=tmpfs,target=/tmpfs,tmpfs-size=1048576 --secret s1 "
    "--secret source=s1,target=other,mode=0400 --config source=c1,target=/etc/c1 "
    "--host example.com:10.0.0.9 --dns 8.8.8.8 --dns-search example.com --dns-option ndots:2 "
    "--oom-score-adj 100 --limit-cpu 0.5 --limit-memory 64M --limit-pids 100 "
    "--reserve-cpu 0.1 --reserve-memory 32M --restart-condition on-failure --restart-delay 3s "
    "--restart-max-attempts 4 --restart-window 10s --constraint node.role==worker "
    "--placement-pref spread=node.labels.zone --replicas-max-per-node 2 --network testnet "
    "--network name=other,alias=x --replicas 3 --update-parallelism 2 --update-delay 10s "
    "--update-failure-action rollback --update-monitor 7s --update-max-failure-ratio 0.2 "
    "--update-order start-first --rollback-parallelism 1 --rollback-delay 1s "
    "--rollback-failure-action continue --rollback-monitor 2s --rollback-order stop-first "
    "--endpoint-mode vip --publish 8080:80 "
    "--publish published=9000,target=90,protocol=udp,mode=host --entrypoint /bin/sh"
)
FULL_28 = (
    '{"Name":"full","Labels":{"a":"b"},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:1.36",'
    '"Labels":{"c":"d"},"Command":["/bin/sh"],"Args":["-c","sleep 1000"],"Hostname":"h",'
    '"Env":["A=1","B=2"],"Dir":"/w","User":"1000:1000","Groups":["2000"],"Init":true,'
    '"StopSignal":"SIGTERM","TTY":true,"ReadOnly":true,"Mounts":[{"Type":"volume",'
    '"Source":"v1","Target":"/data"},{"Type":"bind","Source":"/tmp","Target":"/host",'
    '"ReadOnly":true},{"Type":"tmpfs","Target":"/tmpfs","TmpfsOptions":{"SizeBytes":1048576}}],'
    '"StopGracePeriod":20000000000,"Healthcheck":{"Test":["CMD-SHELL","true"],'
    '"Interval":5000000000,"Timeout":2000000000,"StartPeriod":1000000000,'
    '"StartInterval":1000000000,"Retries":3},"Hosts":["10.0.0.9 example.com"],'
    '"DNSConfig":{"Nameservers":["8.8.8.8"],"Search":["example.com"],"Options":["ndots:2"]},'
    '"Secrets":[{"File":{"Name":"s1","UID":"0","GID":"0","Mode":292},"SecretID":"SECRET",'
    '"SecretName":"s1"},{"File":{"Name":"other","UID":"0","GID":"0","Mode":256},'
    '"SecretID":"SECRET","SecretName":"s1"}],"Configs":[{"File":{"Name":"/etc/c1","UID":"0",'
    '"GID":"0","Mode":292},"ConfigID":"CONFIG","ConfigName":"c1"}],'
    '"Sysctls":{"net.core.somaxconn":"1024"},"CapabilityAdd":["CAP_NET_ADMIN"],'
    '"CapabilityDrop":["CAP_MKNOD"],"Ulimits":[{"Name":"nofile","Hard":2048,"Soft":1024}],'
    '"OomScoreAdj":100},"Resources":{"Limits":{"NanoCPUs":500000000,"MemoryBytes":67108864,'
    '"Pids":100},"Reservations":{"NanoCPUs":100000000,"MemoryBytes":33554432}},'
    '"RestartPolicy":{"Condition":"on-failure","Delay":3000000000,"MaxAttempts":4,'
    '"Window":10000000000},"Placement":{"Constraints":["node.role==worker"],'
    '"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.zone"}}],"MaxReplicas":2},'
    '"Networks":[{"Target":"OTHER","Aliases":["x"]},{"Target":"TESTNET"}],"ForceUpdate":0},'
    '"Mode":{"Replicated":{"Replicas":3}},"UpdateConfig":{"Parallelism":2,'
    '"Delay":10000000000,"FailureAction":"rollback","Monitor":7000000000,'
    '"MaxFailureRatio":0.2,"Order":"start-first"},"RollbackConfig":{"Parallelism":1,'
    '"Delay":1000000000,"FailureAction":"continue","Monitor":2000000000,"MaxFailureRatio":0,'
    '"Order":"stop-first"},"EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp",'
    '"TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"},{"Protocol":"udp",'
    '"TargetPort":90,"PublishedPort":9000,"PublishMode":"host"}]}}'
)
# `docker service create -d busybox` (28.2.2 and 20.10 alike; 20.10 named it plain20).
PLAIN = (
    '{"Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:latest","Init":false,'
    '"DNSConfig":{}},"Resources":{"Limits":{},"Reservations":{}},"Placement":{},'
    '"ForceUpdate":0},"Mode":{"Replicated":{}},"EndpointSpec":{"Mode":"vip"}}'
)
# `docker service update -d --force g` on 20.10 (a global service created by 28.2.2).
FORCED_20 = (
    '{"Name":"g","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:1.37",'
    '"Init":false,"DNSConfig":{}},"Resources":{"Limits":{},"Reservations":{}},'
    '"Placement":{},"ForceUpdate":2},"Mode":{"Global":{}},"EndpointSpec":{"Mode":"vip"}}'
)
# docker-py 7.1.0: services.create("busybox", command=[...], name="pysvc",
# mode=ServiceMode("replicated", 1)), then svc.scale(2).
PY_CREATE = (
    '{"Name": "pysvc", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": '
    '["sleep", "100"], "Args": null}}, "Mode": {"replicated": {"Replicas": 1}}}'
)
PY_SCALE = (
    '{"Name": "pysvc", "Mode": {"replicated": {"Replicas": 2}}, "TaskTemplate": '
    '{"ContainerSpec": {"Image": "busybox", "Command": ["sleep", "100"], "Args": null}}}'
)
PY_GLOBAL = (
    '{"Name": "pyg", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": null, '
    '"Args": null, "Env": ["A=1"]}, "RestartPolicy": {"Condition": "on-failure", "Delay": 5, '
    '"MaxAttempts": 0, "Window": 0}, "Networks": [{"Target": "testnet"}]}, "Mode": '
    '{"global": {}}, "EndpointSpec": {"Ports": [{"Protocol": "tcp", "PublishedPort": 8080, '
    '"TargetPort": 80}]}}'
)
# `docker stack deploy` (28.2.2) of a compose service: reference §4, verbatim.
STACK_WEB = (
    '{"Name":"app_web","Labels":{"com.docker.stack.image":"nginx:1.25",'
    '"com.docker.stack.namespace":"app"},"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1.25",'
    '"Labels":{"com.docker.stack.namespace":"app"},"Env":["A=1"],"Privileges":'
    '{"CredentialSpec":null,"SELinuxContext":null,"NoNewPrivileges":false},"Secrets":[{"File":'
    '{"Name":"dbpass","UID":"0","GID":"0","Mode":292},"SecretID":"SECRET","SecretName":"s1"}],'
    '"Configs":[{"File":{"Name":"/etc/nginx/conf.d/x.conf","UID":"0","GID":"0","Mode":292},'
    '"ConfigID":"CONFIG","ConfigName":"c1"}]},"Resources":{"Limits":{"NanoCPUs":500000000,'
    '"MemoryBytes":67108864}},"RestartPolicy":{"Condition":"on-failure","Delay":5000000000},'
    '"Placement":{"Constraints":["node.role==manager"]},"Networks":[{"Target":"testnet",'
    '"Aliases":["web"]}],"ForceUpdate":0},"Mode":{"Replicated":{"Replicas":2}},'
    '"UpdateConfig":{"Parallelism":1,"Delay":10000000000,"MaxFailureRatio":0,'
    '"Order":"start-first"},"EndpointSpec":{"Ports":[{"Protocol":"tcp","TargetPort":80,'
    '"PublishedPort":8080,"PublishMode":"ingress"}]}}'
)


def body(text: str) -> dict[str, Any]:
    for name, value in (("SECRET", SECRET), ("CONFIG", CONFIG)):
        text = text.replace(f'"{name}"', f'"{value}"')
    text = text.replace('"OTHER"', f'"{OTHER}"').replace('"TESTNET"', f'"{TESTNET}"')
    decoded: dict[str, Any] = json.loads(text)
    return decoded


def back(data: dict[str, Any]) -> dict[str, Any]:
    """Docker JSON -> swarmlite -> Docker JSON, as `service inspect` (no defaults) shows it."""
    spec = service_spec(data, LOOKUP)
    out: dict[str, Any] = service_json(
        Service(id="s" * 25, spec=spec), lookup=LOOKUP, insert_defaults=False
    )["Spec"]
    return out


def with_runtime(data: dict[str, Any]) -> dict[str, Any]:
    """What dockerd adds to every spec it shows: the task runtime."""
    out = copy.deepcopy(data)
    out["TaskTemplate"]["Runtime"] = "container"
    return out


# --------------------------------------------------------------------------- what clients send


def test_every_flag_of_the_28_cli_maps_field_by_field() -> None:
    spec = service_spec(body(FULL_28), LOOKUP)
    c = spec.task.container
    assert (spec.name, spec.labels, spec.mode, spec.replicas) == (
        "full",
        {"a": "b"},
        ServiceMode.REPLICATED,
        3,
    )
    assert c.image == "busybox:1.36"
    assert (c.entrypoint, c.command) == (["/bin/sh"], ["-c", "sleep 1000"])
    assert (c.hostname, c.working_dir, c.user, c.groups) == ("h", "/w", "1000:1000", ["2000"])
    assert (c.env, c.labels) == (["A=1", "B=2"], {"c": "d"})
    assert (c.init, c.stop_signal, c.stop_grace_period) == (True, "SIGTERM", 20.0)
    assert (c.tty, c.read_only, c.stdin_open) == (True, True, False)
    assert c.mounts == [
        Mount(type="volume", source="v1", target="/data", volume_driver=""),
        Mount(type="bind", source="/tmp", target="/host", read_only=True, volume_driver=""),
        Mount(type="tmpfs", target="/tmpfs", tmpfs_size=1048576, volume_driver=""),
    ]
    assert c.healthcheck == HealthCheck(
        test=["CMD-SHELL", "true"],
        interval=5.0,
        timeout=2.0,
        retries=3,
        start_period=1.0,
        start_interval=1.0,
    )
    assert c.extra_hosts == ["example.com:10.0.0.9"]
    assert (c.dns, c.dns_search, c.dns_options) == (["8.8.8.8"], ["example.com"], ["ndots:2"])
    assert c.secrets == [
        FileRef(name="s1", target="s1", mode=0o444),
        FileRef(name="s1", target="other", mode=0o400),
    ]
    assert c.configs == [FileRef(name="c1", target="/etc/c1", mode=0o444)]
    assert c.sysctls == {"net.core.somaxconn": "1024"}
    assert (c.cap_add, c.cap_drop) == (["CAP_NET_ADMIN"], ["CAP_MKNOD"])
    assert c.ulimits == [Ulimit(name="nofile", soft=1024, hard=2048)]
    assert c.oom_score_adj == 100
    limits, reserved = spec.task.resources.limits, spec.task.resources.reservations
    assert (limits.nano_cpus, limits.memory_bytes, limits.pids) == (500_000_000, 64 << 20, 100)
    assert (reserved.nano_cpus, reserved.memory_bytes) == (100_000_000, 32 << 20)
    policy = spec.task.restart_policy
    assert (policy.condition, policy.delay, policy.max_attempts, policy.window) == (
        RestartCondition.ON_FAILURE,
        3.0,
        4,
        10.0,
    )
    placement = spec.task.placement
    assert placement.constraints == ["node.role==worker"]
    assert placement.preferences == ["node.labels.zone"]
    assert placement.max_replicas_per_node == 2
    assert spec.task.networks == [  # ids resolved to names
        NetworkAttachment(target="other", aliases=["x"]),
        NetworkAttachment(target="testnet"),
    ]
    update, rollback = spec.update_config, spec.rollback_config
    assert update is not None and rollback is not None
    assert (update.parallelism, update.delay, update.monitor) == (2, 10.0, 7.0)
    assert (update.failure_action, update.order) == (
        FailureAction.ROLLBACK,
        UpdateOrder.START_FIRST,
    )
    assert update.max_failure_ratio == pytest.approx(0.2)
    assert (rollback.failure_action, rollback.order) == (
        FailureAction.CONTINUE,
        UpdateOrder.STOP_FIRST,
    )
    assert [(p.protocol, p.target, p.published, p.mode) for p in spec.endpoint.ports] == [
        ("tcp", 80, 8080, "ingress"),
        ("udp", 90, 9000, "host"),
    ]


def test_the_20_cli_sends_the_same_but_what_it_lacks() -> None:
    old = body(FULL_28)
    del old["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["StartInterval"]
    del old["TaskTemplate"]["ContainerSpec"]["OomScoreAdj"]
    spec = service_spec(old, LOOKUP)
    assert spec.task.container.healthcheck is not None
    assert spec.task.container.healthcheck.start_interval == 0.0
    assert spec.task.container.oom_score_adj == 0


def test_the_defaults_of_a_bare_cli_create_are_docker_s() -> None:
    spec = service_spec(body(PLAIN), LOOKUP)
    assert (spec.name, spec.mode, spec.replicas) == ("", ServiceMode.REPLICATED, 1)
    c = spec.task.container
    assert (c.image, c.init, c.entrypoint, c.command) == ("busybox:latest", False, None, None)
    assert c.stop_grace_period == 10.0  # swarmkit's default
    assert spec.task.restart_policy.condition is RestartCondition.ANY
    assert spec.task.restart_policy.delay == 5.0
    assert spec.update_config is None and spec.rollback_config is None
    assert spec.endpoint.mode == "vip" and spec.endpoint.ports == []


@pytest.mark.parametrize(
    ("mode", "expected", "replicas", "job"),
    [
        ({"Global": {}}, ServiceMode.GLOBAL, 1, (1, 1)),
        ({"GlobalJob": {}}, ServiceMode.GLOBAL_JOB, 1, (1, 1)),
        ({"ReplicatedJob": {}}, ServiceMode.REPLICATED_JOB, 1, (1, 1)),
        ({"ReplicatedJob": {"MaxConcurrent": 3}}, ServiceMode.REPLICATED_JOB, 3, (3, 3)),
        (
            {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 5}},
            ServiceMode.REPLICATED_JOB,
            5,
            (2, 5),
        ),
        ({"Replicated": {"Replicas": 0}}, ServiceMode.REPLICATED, 0, (1, 1)),
        ({}, ServiceMode.REPLICATED, 1, (1, 1)),
        (None, ServiceMode.REPLICATED, 1, (1, 1)),
        ({"replicated": {"replicas": 4}}, ServiceMode.REPLICATED, 4, (1, 1)),
    ],
)
def test_modes_as_dockerd_reads_them(
    mode: dict[str, Any] | None, expected: ServiceMode, replicas: int, job: tuple[int, int]
) -> None:
    data = body(PLAIN)
    data["Mode"] = mode
    spec = service_spec(data, LOOKUP)
    assert (spec.mode, spec.replicas) == (expected, replicas)
    assert (spec.job.max_concurrent, spec.job.total_completions) == job


def test_docker_py_lower_case_mode_and_null_args() -> None:
    created = service_spec(body(PY_CREATE), LOOKUP)
    assert (created.mode, created.replicas) == (ServiceMode.REPLICATED, 1)
    assert (created.task.container.entrypoint, created.task.container.command) == (
        ["sleep", "100"],
        None,
    )
    scaled = service_spec(body(PY_SCALE), LOOKUP)
    assert scaled.replicas == 2 and scaled.task == created.task


def test_docker_py_global_with_network_names_and_bare_ports() -> None:
    spec = service_spec(body(PY_GLOBAL), LOOKUP)
    assert spec.mode is ServiceMode.GLOBAL
    assert spec.task.networks == [NetworkAttachment(target="testnet")]
    assert spec.task.restart_policy.delay == 5e-9  # docker-py passes nanoseconds through
    port = spec.endpoint.ports[0]
    assert (port.protocol, port.target, port.published, port.mode) == ("tcp", 80, 8080, "ingress")


def test_a_stack_deploy_body_with_the_zero_privileges_it_always_sends() -> None:
    spec = service_spec(body(STACK_WEB), LOOKUP)
    assert spec.stack == "app"
    assert spec.task.container.secrets == [FileRef(name="s1", target="dbpass")]
    assert spec.task.networks == [NetworkAttachment(target="testnet", aliases=["web"])]
    assert spec.update_config is not None
    assert spec.update_config.failure_action is FailureAction.PAUSE


def test_keys_match_case_insensitively_the_exact_spelling_first() -> None:
    data = {"name": "x", "taskTemplate": {"containerspec": {"image": "busybox", "TTY": True}}}
    spec = service_spec(data, LOOKUP)
    assert (spec.name, spec.image, spec.task.container.tty) == ("x", "busybox", True)
    both = {"Name": "exact", "name": "other", "TaskTemplate": {"ContainerSpec": {"Image": "i"}}}
    assert service_spec(both, LOOKUP).name == "exact"


def test_an_image_digest_is_kept() -> None:
    data = body(PLAIN)
    image = "busybox:1.36@sha256:" + "a" * 64
    data["TaskTemplate"]["ContainerSpec"]["Image"] = image
    assert service_spec(data, LOOKUP).image == image


def test_network_targets_by_id_name_or_unique_prefix() -> None:
    data = body(PLAIN)
    data["TaskTemplate"]["Networks"] = [
        {"Target": TESTNET},
        {"Target": "other"},
        {"Target": "p3q4"},
    ]
    names = [n.target for n in service_spec(data, LOOKUP).task.networks]
    assert names == ["testnet", "other", "other"]
    data["TaskTemplate"]["Networks"] = [{"Target": "k1"}]
    with pytest.raises(InvalidArgument, match="network k1 is ambiguous"):
        service_spec(data, LOOKUP)
    data["TaskTemplate"]["Networks"] = [{"Target": "nope"}]
    with pytest.raises(NotFound, match="network nope not found"):
        service_spec(data, LOOKUP)


def test_the_deprecated_spec_networks_of_old_clients() -> None:
    data = body(PLAIN)
    data["Networks"] = [{"Target": "testnet"}]
    assert service_spec(data, LOOKUP).task.networks == [NetworkAttachment(target="testnet")]
    data["TaskTemplate"]["Networks"] = [{"Target": "other"}]
    with pytest.raises(InvalidArgument, match=r"Networks and TaskTemplate\.Networks differ"):
        service_spec(data, LOOKUP)


def test_secret_references_go_by_id_and_must_carry_its_name() -> None:
    data = body(STACK_WEB)
    ref = data["TaskTemplate"]["ContainerSpec"]["Secrets"][0]
    ref["SecretName"] = "renamed"
    with pytest.raises(InvalidArgument, match="secret not found: renamed"):
        service_spec(data, LOOKUP)
    ref["SecretID"], ref["SecretName"] = "", "s1"  # hand-written: a name alone will do
    assert service_spec(data, LOOKUP).task.container.secrets[0].name == "s1"
    del ref["File"]
    with pytest.raises(InvalidArgument, match=r"Secrets\[0\]\.File\.Name is required"):
        service_spec(data, LOOKUP)


def test_hosts_lines_become_one_entry_per_name() -> None:
    data = body(PLAIN)
    data["TaskTemplate"]["ContainerSpec"]["Hosts"] = ["10.0.0.9 db db.local", "::1 six"]
    hosts = service_spec(data, LOOKUP).task.container.extra_hosts
    assert hosts == ["db:10.0.0.9", "db.local:10.0.0.9", "six:::1"]
    data["TaskTemplate"]["ContainerSpec"]["Hosts"] = ["10.0.0.9"]
    with pytest.raises(InvalidArgument, match=r"Hosts\[0\] must be"):
        service_spec(data, LOOKUP)


def test_health_none_disables_the_image_s_check() -> None:
    data = body(PLAIN)
    data["TaskTemplate"]["ContainerSpec"]["HealthCheck"] = {"Test": ["NONE"]}  # swagger's case
    check = service_spec(data, LOOKUP).task.container.healthcheck
    assert check == HealthCheck(test=["NONE"], disable=True)


def test_platforms_are_kept_for_the_scheduler() -> None:
    data = body(PLAIN)
    data["TaskTemplate"]["Placement"] = {
        "Platforms": [{"Architecture": "amd64", "OS": "linux"}, {"Architecture": "arm64"}]
    }
    assert service_spec(data, LOOKUP).task.placement.platforms == [
        Platform(os="linux", architecture="amd64"),
        Platform(architecture="arm64"),
    ]


# --------------------------------------------------------------------------- refusals


REFUSED = [
    (("TaskTemplate", "PluginSpec"), {"Name": "p"}, "TaskTemplate.PluginSpec"),
    (
        ("TaskTemplate", "NetworkAttachmentSpec"),
        {"ContainerID": "c"},
        "TaskTemplate.NetworkAttachmentSpec",
    ),
    (("TaskTemplate", "Runtime"), "plugin", 'TaskTemplate.Runtime "plugin"'),
    (
        ("TaskTemplate", "ContainerSpec", "Privileges"),
        {"CredentialSpec": {"File": "spec.json"}},
        "TaskTemplate.ContainerSpec.Privileges.CredentialSpec",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Privileges"),
        {"NoNewPrivileges": True},
        "TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Privileges"),
        {"SELinuxContext": {"User": "u"}},
        "TaskTemplate.ContainerSpec.Privileges.SELinuxContext",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Privileges"),
        {"Seccomp": {"Mode": "unconfined"}},
        "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Privileges"),
        {"Seccomp": {"Mode": "default", "Profile": "e30="}},
        "TaskTemplate.ContainerSpec.Privileges.Seccomp.Profile",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Privileges"),
        {"AppArmor": {"Mode": "disabled"}},
        "TaskTemplate.ContainerSpec.Privileges.AppArmor.Mode",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Isolation"),
        "hyperv",
        'TaskTemplate.ContainerSpec.Isolation "hyperv"',
    ),
    (
        ("TaskTemplate", "Resources"),
        {"Limits": {"SwapBytes": 1024}},
        "TaskTemplate.Resources.Limits.SwapBytes",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Mounts"),
        [{"Type": "volume", "Target": "/d", "VolumeOptions": {"Subpath": "x"}}],
        "TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions.Subpath",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Mounts"),
        [
            {
                "Type": "volume",
                "Target": "/d",
                "VolumeOptions": {"DriverConfig": {"Name": "nfs", "Options": {"o": "x"}}},
            }
        ],
        "TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions.DriverConfig.Options",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Mounts"),
        [{"Type": "npipe", "Target": "/d"}],
        'TaskTemplate.ContainerSpec.Mounts[0].Type "npipe"',
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Mounts"),
        [{"Type": "bind", "Source": "/s", "Target": "/d", "BindOptions": {"NonRecursive": True}}],
        "TaskTemplate.ContainerSpec.Mounts[0].BindOptions.NonRecursive",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Mounts"),
        [{"Type": "tmpfs", "Target": "/d", "TmpfsOptions": {"Options": [["exec"]]}}],
        "TaskTemplate.ContainerSpec.Mounts[0].TmpfsOptions.Options",
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Mounts"),
        [{"Type": "bind", "Source": "/s", "Target": "/d", "Consistency": "cached"}],
        'TaskTemplate.ContainerSpec.Mounts[0].Consistency "cached"',
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Configs"),
        [{"Runtime": {}, "ConfigID": CONFIG, "ConfigName": "c1"}],
        None,  # an empty Runtime is no target: refused as malformed, below
    ),
    (
        ("TaskTemplate", "ContainerSpec", "Configs"),
        [{"Runtime": {"x": 1}, "ConfigID": CONFIG, "ConfigName": "c1"}],
        "TaskTemplate.ContainerSpec.Configs[0].Runtime",
    ),
    (
        ("TaskTemplate", "Networks"),
        [{"Target": "testnet", "DriverOpts": {"com.example": "1"}}],
        "TaskTemplate.Networks[0].DriverOpts",
    ),
    (
        ("EndpointSpec",),
        {"Ports": [{"Protocol": "sctp", "TargetPort": 1}]},
        'EndpointSpec.Ports[0].Protocol "sctp"',
    ),
]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


@pytest.mark.parametrize(("path", "value", "named"), REFUSED)
def test_what_swarmlite_cannot_honour_is_refused_by_its_path(
    path: tuple[str, ...], value: Any, named: str | None
) -> None:
    data = body(PLAIN)
    _set(data, path, value)
    with pytest.raises(InvalidArgument) as caught:
        service_spec(data, LOOKUP)
    if named is None:
        assert "is required" in caught.value.message
    else:
        assert caught.value.message == f"{named} is not supported by swarmlite"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("TaskTemplate", "LogDriver"), {"Name": "", "Options": None}),
        (("TaskTemplate", "LogDriver"), {}),
        (("TaskTemplate", "PluginSpec"), None),
        (("TaskTemplate", "Runtime"), "container"),
        (("TaskTemplate", "ContainerSpec", "Isolation"), "default"),
        (
            ("TaskTemplate", "ContainerSpec", "Privileges"),
            {"CredentialSpec": None, "SELinuxContext": None, "NoNewPrivileges": False},
        ),
        (
            ("TaskTemplate", "ContainerSpec", "Privileges"),
            {"Seccomp": {"Mode": "default"}, "AppArmor": {"Mode": ""}},
        ),
        (("TaskTemplate", "Resources"), {"Reservations": {"GenericResources": []}}),
        (("TaskTemplate", "Placement"), {"Platforms": None, "Preferences": [{}]}),
        (
            ("TaskTemplate", "ContainerSpec", "Mounts"),
            [{"Type": "bind", "Source": "/s", "Target": "/d", "Consistency": "default"}],
        ),
        (("TaskTemplate", "Networks"), [{"Target": "testnet", "DriverOpts": {}}]),
        (("TaskTemplate", "ForceUpdate"), 0),
        (("Networks",), []),
    ],
)
def test_zero_values_are_not_refusals(path: tuple[str, ...], value: Any) -> None:
    data = body(PLAIN)
    _set(data, path, value)
    service_spec(data, LOOKUP)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("Mode",), {"Replicated": {}, "Global": {}}, "must specify only one service mode"),
        (("UpdateConfig",), {"FailureAction": "explode"}, "unrecognized update failure action"),
        (("UpdateConfig",), {"Order": "sideways"}, "unrecognized update order sideways"),
        (("TaskTemplate", "RestartPolicy"), {"Condition": "always"}, "invalid RestartCondition"),
        (("EndpointSpec",), {"Mode": "round-robin"}, 'invalid resolution mode: "round-robin"'),
        (("TaskTemplate", "ContainerSpec", "Env"), "A=1", r"ContainerSpec\.Env of type \[\]"),
        (
            ("TaskTemplate", "RestartPolicy"),
            {"Delay": 5.0},
            r"number 5\.0 into Go struct field ServiceSpec\.TaskTemplate\.RestartPolicy\.Delay",
        ),
        (("Mode",), {"Replicated": {"Replicas": -1}}, r"Replicas of type uint64"),
        (("Labels",), [], r"Labels of type map\[string\]string"),
        (("TaskTemplate", "ContainerSpec"), None, r"TaskTemplate\.ContainerSpec is required"),
        (("TaskTemplate", "ContainerSpec", "Mounts"), [None], r"Mounts\[0\] must not be null"),
        (("TaskTemplate", "ContainerSpec", "Mounts"), [{"Target": "/d"}], "Type is required"),
        (
            ("TaskTemplate", "ContainerSpec", "Mounts"),
            [{"Type": "tmpfs", "Target": "/d", "BindOptions": {"Propagation": "rshared"}}],
            r"Mounts\[0\]\.BindOptions is only for bind mounts",
        ),
    ],
)
def test_malformed_specs_are_refused_in_dockerd_s_words(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    data = body(PLAIN)
    _set(data, path, value)
    with pytest.raises(InvalidArgument, match=message):
        service_spec(data, LOOKUP)


def test_empty_is_go_s_zero_value_all_the_way_down() -> None:
    assert empty({"A": None, "B": {"C": [], "D": "", "E": 0, "F": False}})
    assert not empty({"A": {"B": "x"}})
    assert not empty({"NoNewPrivileges": True})


# --------------------------------------------------------------------------- round trips


def test_round_trip_of_every_flag_is_the_identity() -> None:
    sent = body(FULL_28)
    assert back(sent) == with_runtime(sent)


def test_round_trip_of_a_bare_create_adds_only_swarmkit_s_defaults() -> None:
    sent = body(PLAIN)
    expected = with_runtime(sent)
    template, container = expected["TaskTemplate"], expected["TaskTemplate"]["ContainerSpec"]
    container["StopGracePeriod"] = 10_000_000_000
    del container["DNSConfig"]  # empty: Docker leaves it out too, but for insertDefaults
    template["RestartPolicy"] = {
        "Condition": "any",
        "Delay": 5_000_000_000,
        "MaxAttempts": 0,
        "Window": 0,
    }
    expected["Mode"] = {"Replicated": {"Replicas": 1}}
    assert back(sent) == expected


def test_round_trip_of_what_the_service_shows_is_a_fixed_point() -> None:
    """What `service update` sends back (the spec it read, edited) reads as it was: every
    shape swarmlite shows is one it accepts."""
    for text in (FULL_28, PLAIN, FORCED_20, PY_CREATE, PY_GLOBAL, STACK_WEB):
        shown = back(body(text))
        assert back(shown) == shown, text


def test_shown_with_defaults_reads_back_the_same() -> None:
    spec = service_spec(body(PY_CREATE), LOOKUP)
    shown = service_json(Service(id="s" * 25, spec=spec), lookup=LOOKUP)["Spec"]
    again = service_spec(shown, LOOKUP)
    assert again.task == spec.task and again.mode == spec.mode
    assert again.update_config is not None  # insertDefaults wrote the default in
