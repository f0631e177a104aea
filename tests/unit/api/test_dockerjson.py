import base64
import json
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    Attachment,
    Cluster,
    ClusterSettings,
    ClusterSpec,
    Config,
    ConfigSpec,
    ContainerSpec,
    EndpointSpec,
    EndpointStatus,
    FailureAction,
    FileRef,
    HealthCheck,
    JobSpec,
    Mount,
    Network,
    NetworkAttachment,
    NetworkSpec,
    NetworkStatus,
    NodeRole,
    Placement,
    PortConfig,
    ResourceRequirements,
    Resources,
    RestartCondition,
    RestartPolicy,
    RootCAMaterial,
    Secret,
    SecretSpec,
    Service,
    ServiceMode,
    ServiceSpec,
    Task,
    TaskState,
    TaskStatus,
    TaskTemplate,
    Ulimit,
    UpdateConfig,
    UpdateOrder,
    UpdateState,
    UpdateStatus,
    VirtualIP,
)
from swarmlite.api.control import ManagerStatus
from swarmlite.api.dockerjson import (
    GO_ZERO_TIME,
    Lookup,
    config_json,
    network_json,
    node_json,
    rfc3339,
    secret_json,
    service_json,
    swarm_json,
    task_json,
)
from swarmlite.testing.factories import make_network, make_node, make_service, make_task

T0 = 1796593111.123456  # 2026-12-06T21:38:31.123456Z
SECRET_ID = "s" * 25
CONFIG_ID = "c" * 25


def _front() -> Network:
    return Network(
        id="n" * 25,
        version=7,
        created_at=T0,
        updated_at=T0,
        spec=NetworkSpec(name="shop_front", labels={"com.docker.stack.namespace": "shop"}),
        status=NetworkStatus(vni=4097, subnet="10.0.1.0/24", gateway="10.0.1.1"),
    )


def _lookup() -> Lookup:
    return Lookup(
        networks=[_front()],
        secrets=[Secret(id=SECRET_ID, spec=SecretSpec(name="shop_db", data=b"pw"))],
        configs=[Config(id=CONFIG_ID, spec=ConfigSpec(name="shop_conf", data=b"x"))],
    )


def _full_service() -> Service:
    container = ContainerSpec(
        image="nginx:1.27",
        entrypoint=["/docker-entrypoint.sh"],
        command=["nginx", "-g", "daemon off;"],
        env=["A=1"],
        labels={"c": "1"},
        working_dir="/srv",
        user="www",
        groups=["adm"],
        hostname="web",
        stop_signal="SIGQUIT",
        stop_grace_period=2.5,
        init=True,
        read_only=True,
        tty=True,
        stdin_open=True,
        cap_add=["NET_ADMIN"],
        cap_drop=["ALL"],
        sysctls={"net.core.somaxconn": "1024"},
        ulimits=[Ulimit(name="nofile", soft=1024, hard=2048)],
        healthcheck=HealthCheck(
            test=["CMD", "true"],
            interval=30.0,
            timeout=0.5,
            retries=3,
            start_period=1.0,
            start_interval=0.25,
        ),
        mounts=[
            Mount(type="volume", source="data", target="/data", volume_labels={"l": "v"}),
            Mount(
                type="bind",
                source="/etc/x",
                target="/x",
                read_only=True,
                bind_propagation="rprivate",
            ),
            Mount(type="tmpfs", target="/tmp", tmpfs_size=1 << 20, tmpfs_mode=0o1777),
        ],
        secrets=[FileRef(name="shop_db", target="db")],
        configs=[FileRef(name="shop_conf", target="/etc/nginx/conf.d/x.conf", uid="1", mode=0o440)],
        extra_hosts=["db:10.0.0.9", "cache=10.0.0.8"],
        dns=["1.1.1.1"],
    )
    spec = ServiceSpec(
        name="shop_web",
        labels={"com.docker.stack.namespace": "shop"},
        mode=ServiceMode.REPLICATED,
        replicas=3,
        task=TaskTemplate(
            container=container,
            resources=ResourceRequirements(
                limits=Resources(nano_cpus=500_000_000, memory_bytes=64 << 20, pids=100),
                reservations=Resources(nano_cpus=250_000_000, memory_bytes=32 << 20),
            ),
            restart_policy=RestartPolicy(
                condition=RestartCondition.ON_FAILURE, delay=5.0, max_attempts=3, window=60.0
            ),
            placement=Placement(
                constraints=["node.role==worker"],
                preferences=["node.labels.zone"],
                max_replicas_per_node=2,
            ),
            networks=[NetworkAttachment(target="shop_front", aliases=["web"])],
            force_update=2,
        ),
        update_config=UpdateConfig(
            parallelism=2,
            delay=10.0,
            failure_action=FailureAction.ROLLBACK,
            monitor=7.5,
            max_failure_ratio=0.25,
            order=UpdateOrder.START_FIRST,
        ),
        rollback_config=UpdateConfig(parallelism=0, monitor=0.0),
        endpoint=EndpointSpec(
            mode="vip",
            ports=[
                PortConfig(target=80, published=8080),
                PortConfig(target=53, protocol="udp", mode="host", name="dns"),
            ],
        ),
    )
    return Service(
        id="w" * 25,
        version=42,
        created_at=T0,
        updated_at=T0 + 1,
        spec=spec,
        previous_spec=msgspec.structs.replace(spec, replicas=2),
        update_status=UpdateStatus(
            state=UpdateState.UPDATING, message="update in progress", started_at=T0
        ),
        endpoint=EndpointStatus(
            vips=[VirtualIP(network_id="n" * 25, address="10.0.1.2/24")],
            ports=[PortConfig(target=80, published=8080)],
        ),
    )


def test_rfc3339_is_utc_with_go_style_fraction() -> None:
    assert rfc3339(T0) == "2026-12-06T21:38:31.123456Z"
    assert rfc3339(T0, fixed=True) == "2026-12-06T21:38:31.123456000Z"
    assert rfc3339(1796593111.0) == "2026-12-06T21:38:31Z"
    assert rfc3339(1796593111.5) == "2026-12-06T21:38:31.5Z"
    assert rfc3339(1796593111.9999999) == "2026-12-06T21:38:32Z"  # rounds to the microsecond


def test_a_fully_populated_service_maps_every_field() -> None:
    out = service_json(_full_service(), lookup=_lookup())
    assert out["ID"] == "w" * 25
    assert out["Version"] == {"Index": 42}
    assert out["CreatedAt"] == "2026-12-06T21:38:31.123456Z"
    assert out["UpdatedAt"] == "2026-12-06T21:38:32.123456Z"
    spec = out["Spec"]
    assert spec["Name"] == "shop_web"
    assert spec["Labels"] == {"com.docker.stack.namespace": "shop"}
    template = spec["TaskTemplate"]
    assert template["ContainerSpec"] == {
        "Image": "nginx:1.27",
        "Labels": {"c": "1"},
        "Command": ["/docker-entrypoint.sh"],  # Docker's Command is the entrypoint
        "Args": ["nginx", "-g", "daemon off;"],
        "Hostname": "web",
        "Env": ["A=1"],
        "Dir": "/srv",
        "User": "www",
        "Groups": ["adm"],
        "Init": True,
        "StopSignal": "SIGQUIT",
        "TTY": True,
        "OpenStdin": True,
        "ReadOnly": True,
        "Mounts": [
            {
                "Type": "volume",
                "Source": "data",
                "Target": "/data",
                "VolumeOptions": {"Labels": {"l": "v"}, "DriverConfig": {"Name": "local"}},
            },
            {
                "Type": "bind",
                "Source": "/etc/x",
                "Target": "/x",
                "ReadOnly": True,
                "BindOptions": {"Propagation": "rprivate"},
            },
            {
                "Type": "tmpfs",
                "Target": "/tmp",
                "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777},
            },
        ],
        "StopGracePeriod": 2_500_000_000,
        "Healthcheck": {
            "Test": ["CMD", "true"],
            "Interval": 30_000_000_000,
            "Timeout": 500_000_000,
            "StartPeriod": 1_000_000_000,
            "StartInterval": 250_000_000,
            "Retries": 3,
        },
        "Hosts": ["10.0.0.9 db", "10.0.0.8 cache"],
        "DNSConfig": {"Nameservers": ["1.1.1.1"]},
        "Secrets": [
            {
                "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292},
                "SecretID": SECRET_ID,
                "SecretName": "shop_db",
            }
        ],
        "Configs": [
            {
                "File": {"Name": "/etc/nginx/conf.d/x.conf", "UID": "1", "GID": "0", "Mode": 288},
                "ConfigID": CONFIG_ID,
                "ConfigName": "shop_conf",
            }
        ],
        "Sysctls": {"net.core.somaxconn": "1024"},
        "CapabilityAdd": ["NET_ADMIN"],
        "CapabilityDrop": ["ALL"],
        "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}],
    }
    assert template["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 67108864, "Pids": 100},
        "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 33554432},
    }
    assert template["RestartPolicy"] == {
        "Condition": "on-failure",
        "Delay": 5_000_000_000,
        "MaxAttempts": 3,
        "Window": 60_000_000_000,
    }
    assert template["Placement"] == {
        "Constraints": ["node.role==worker"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
        "MaxReplicas": 2,
    }
    assert template["Networks"] == [{"Target": "n" * 25, "Aliases": ["web"]}]  # the id
    assert template["ForceUpdate"] == 2
    assert template["Runtime"] == "container"
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    assert spec["UpdateConfig"] == {
        "Parallelism": 2,
        "Delay": 10_000_000_000,
        "FailureAction": "rollback",
        "Monitor": 7_500_000_000,
        "MaxFailureRatio": 0.25,
        "Order": "start-first",
    }
    # zero durations are left out, as Go's omitempty does; Parallelism 0 is kept
    assert spec["RollbackConfig"] == {
        "Parallelism": 0,
        "FailureAction": "pause",
        "MaxFailureRatio": 0.0,
        "Order": "stop-first",
    }
    assert spec["EndpointSpec"] == {
        "Mode": "vip",
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"Name": "dns", "Protocol": "udp", "TargetPort": 53, "PublishMode": "host"},
        ],
    }
    assert out["PreviousSpec"]["Mode"] == {"Replicated": {"Replicas": 2}}
    assert out["Endpoint"] == {
        "Spec": spec["EndpointSpec"],
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
        ],
        "VirtualIPs": [{"NetworkID": "n" * 25, "Addr": "10.0.1.2/24"}],
    }
    assert out["UpdateStatus"] == {
        "State": "updating",
        "StartedAt": "2026-12-06T21:38:31.123456Z",
        "Message": "update in progress",
    }
    assert "ServiceStatus" not in out and "JobStatus" not in out
    # JSON-clean: no float where Docker has an integer
    json.dumps(out)
    for key in ("Delay", "Window"):
        assert isinstance(template["RestartPolicy"][key], int)


def test_without_a_lookup_targets_stay_names_and_ids_are_empty() -> None:
    template = service_json(_full_service())["Spec"]["TaskTemplate"]
    assert template["Networks"] == [{"Target": "shop_front", "Aliases": ["web"]}]
    assert template["ContainerSpec"]["Secrets"][0]["SecretID"] == ""


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ServiceMode.REPLICATED, {"Replicated": {"Replicas": 0}}),
        (ServiceMode.GLOBAL, {"Global": {}}),
        (
            ServiceMode.REPLICATED_JOB,
            {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 5}},
        ),
        (ServiceMode.GLOBAL_JOB, {"GlobalJob": {}}),
    ],
)
def test_mode_forms(mode: ServiceMode, expected: dict[str, Any]) -> None:
    service = make_service(mode=mode, replicas=0, max_concurrent=2, total_completions=5)
    out = service_json(service)
    assert out["Spec"]["Mode"] == expected
    assert ("JobStatus" in out) is mode.is_job


def test_replicated_job_without_total_completions_runs_replicas() -> None:
    spec = ServiceSpec(
        mode=ServiceMode.REPLICATED_JOB, replicas=4, job=JobSpec(total_completions=0)
    )
    out = service_json(Service(id="j" * 25, spec=spec, job_iteration=3))
    assert out["Spec"]["Mode"]["ReplicatedJob"]["TotalCompletions"] == 4
    assert out["JobStatus"] == {"JobIteration": {"Index": 3}}


def test_defaults_are_inserted_only_when_asked() -> None:
    service = make_service()
    with_defaults = service_json(service)["Spec"]
    assert with_defaults["UpdateConfig"] == {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0.0,
        "Order": "stop-first",
    }
    assert with_defaults["RollbackConfig"] == with_defaults["UpdateConfig"]
    assert with_defaults["TaskTemplate"]["ContainerSpec"]["DNSConfig"] == {}
    plain = service_json(service, insert_defaults=False)["Spec"]
    assert "UpdateConfig" not in plain and "RollbackConfig" not in plain
    assert "DNSConfig" not in plain["TaskTemplate"]["ContainerSpec"]
    assert plain["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:1"


def test_service_status_when_counts_are_given() -> None:
    out = service_json(make_service(), running=1, desired=3)
    assert out["ServiceStatus"] == {"RunningTasks": 1, "DesiredTasks": 3, "CompletedTasks": 0}


def test_a_new_service_has_docker_zero_times_and_empty_version() -> None:
    out = service_json(make_service())
    assert out["Version"] == {}
    assert out["CreatedAt"] == GO_ZERO_TIME
    assert "UpdateStatus" not in out and "PreviousSpec" not in out


# --------------------------------------------------------------------------- tasks


def test_task_json() -> None:
    service = _full_service()
    task = Task(
        id="t" * 25,
        version=9,
        created_at=T0,
        updated_at=T0,
        service_id=service.id,
        service_name="shop_web",
        slot=2,
        node_id="m" * 25,
        desired_state=TaskState.RUNNING,
        spec=service.spec.task,
        networks=[Attachment(network_id="n" * 25, address="10.0.1.7/24")],
        status=TaskStatus(
            state=TaskState.FAILED,
            message="started",
            err="exit 3",
            timestamp=T0,
            exit_code=3,
            container_id="abc",
        ),
    )
    out = task_json(task, lookup=_lookup())
    assert out["ID"] == "t" * 25 and out["Version"] == {"Index": 9} and out["Labels"] == {}
    assert out["Spec"]["ContainerSpec"]["Image"] == "nginx:1.27"
    assert out["Spec"]["Networks"] == [{"Target": "n" * 25, "Aliases": ["web"]}]
    assert "UpdateConfig" not in out["Spec"]
    assert (out["ServiceID"], out["Slot"], out["NodeID"]) == (service.id, 2, "m" * 25)
    assert out["Status"] == {
        "Timestamp": "2026-12-06T21:38:31.123456Z",
        "State": "failed",
        "Message": "started",
        "Err": "exit 3",
        "ContainerStatus": {"ContainerID": "abc", "ExitCode": 3},
        "PortStatus": {},
    }
    assert out["DesiredState"] == "running"
    (attachment,) = out["NetworksAttachments"]
    assert attachment["Addresses"] == ["10.0.1.7/24"]
    network = attachment["Network"]
    assert network["ID"] == "n" * 25
    assert network["Spec"]["Name"] == "shop_front"
    assert network["Spec"]["Scope"] == "swarm"
    assert network["DriverState"] == {
        "Name": "overlay",
        "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
    }
    assert network["IPAMOptions"]["Configs"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
    assert "JobIteration" not in out


def test_global_task_has_no_slot_and_unknown_network_keeps_its_id() -> None:
    task = msgspec.structs.replace(
        make_task(make_service(mode="global"), slot=0, node_id="m" * 25),
        networks=[Attachment(network_id="x" * 25, address="10.0.9.2/24")],
    )
    out = task_json(task)
    assert "Slot" not in out
    assert out["Status"]["State"] == "pending"
    assert out["Status"]["ContainerStatus"] == {}
    assert out["NetworksAttachments"][0]["Network"]["ID"] == "x" * 25


def test_job_tasks_carry_their_iteration_even_the_first() -> None:
    job = make_service(mode="replicated-job")
    task = make_task(job)
    assert task_json(task, lookup=Lookup(services=[job]))["JobIteration"] == {}
    assert "JobIteration" not in task_json(task)


@pytest.mark.parametrize("state", list(TaskState))
def test_task_states_are_dockers_lower_case_words(state: TaskState) -> None:
    out = task_json(make_task(state=state))
    assert out["Status"]["State"] == state.name.lower()


# --------------------------------------------------------------------------- nodes


def test_node_json() -> None:
    node = msgspec.structs.replace(
        make_node(
            "m" * 25,
            hostname="host1",
            role=NodeRole.MANAGER,
            availability="drain",
            labels={"zone": "a"},
            cpus=2,
            memory=8_000_000_000,
            addr="10.0.0.1:2377",
        ),
        version=9,
        created_at=T0,
        updated_at=T0,
    )
    node = msgspec.structs.replace(
        node, status=msgspec.structs.replace(node.status, version="0.1.0")
    )
    out = node_json(
        node, ManagerStatus(addr="10.0.0.1:2377", leader=True, reachability="reachable")
    )
    assert out == {
        "ID": "m" * 25,
        "Version": {"Index": 9},
        "CreatedAt": "2026-12-06T21:38:31.123456Z",
        "UpdatedAt": "2026-12-06T21:38:31.123456Z",
        "Spec": {"Labels": {"zone": "a"}, "Role": "manager", "Availability": "drain"},
        "Description": {
            "Hostname": "host1",
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": 2_000_000_000, "MemoryBytes": 8_000_000_000},
            "Engine": {"EngineVersion": "0.1.0"},
            "TLSInfo": {},
        },
        "Status": {"State": "ready", "Addr": "10.0.0.1"},
        "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": "10.0.0.1:2377"},
    }


def test_worker_node_has_no_manager_status_and_down_state() -> None:
    out = node_json(make_node(state="down", addr="[fd00::1]:2377"))
    assert "ManagerStatus" not in out
    assert out["Status"] == {"State": "down", "Addr": "fd00::1"}


# --------------------------------------------------------------------------- networks


def test_network_json() -> None:
    out = network_json(_front())
    assert out == {
        "Name": "shop_front",
        "Id": "n" * 25,
        "Created": "2026-12-06T21:38:31.123456Z",
        "Scope": "swarm",
        "Driver": "overlay",
        "EnableIPv4": True,
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": None,
            "Config": [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}],
        },
        "Internal": False,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
        "Labels": {"com.docker.stack.namespace": "shop"},
    }


def test_unallocated_network_has_no_ipam_config_nor_options() -> None:
    out = network_json(make_network("x", ingress=True))
    assert out["IPAM"]["Config"] == [] and out["Options"] == {} and out["Ingress"] is True


# --------------------------------------------------------------------------- secrets, configs


def test_secrets_never_carry_their_data() -> None:
    data = b"hunter2-very-secret"
    secret = Secret(
        id=SECRET_ID,
        version=3,
        created_at=T0,
        spec=SecretSpec(name="db", data=data, labels={"a": "b"}),
    )
    out = secret_json(secret)
    assert out == {
        "ID": SECRET_ID,
        "Version": {"Index": 3},
        "CreatedAt": "2026-12-06T21:38:31.123456Z",
        "UpdatedAt": GO_ZERO_TIME,
        "Spec": {"Name": "db", "Labels": {"a": "b"}},
    }
    text = json.dumps(out)
    assert "Data" not in text
    assert data.decode() not in text and base64.b64encode(data).decode() not in text


def test_config_carries_its_data_in_base64() -> None:
    config = Config(id=CONFIG_ID, spec=ConfigSpec(name="conf", data=b"\x00hello"))
    assert config_json(config)["Spec"] == {"Name": "conf", "Labels": {}, "Data": "AGhlbGxv"}


# --------------------------------------------------------------------------- the swarm


def test_swarm_json_shows_the_ca_certificate_never_its_key() -> None:
    cluster = Cluster(
        id="k" * 25,
        version=10,
        created_at=T0,
        updated_at=T0,
        spec=ClusterSpec(
            labels={"x": "y"},
            settings=ClusterSettings(heartbeat_period=5.0, task_history_limit=3),
        ),
        root_ca=RootCAMaterial(cert_pem=b"-----BEGIN CERTIFICATE-----\nAA\n", key_pem=b"KEYBYTES"),
    )
    out = swarm_json(
        cluster,
        worker_token="SWMTKN-1-w",
        manager_token="SWMTKN-1-m",
        default_addr_pool=["10.0.0.0/8"],
        subnet_size=24,
        election_tick=10,
        heartbeat_tick=1,
        node_cert_expiry=90 * 24 * 3600.0,
    )
    assert out["ID"] == "k" * 25 and out["Version"] == {"Index": 10}
    assert out["Spec"] == {
        "Name": "default",
        "Labels": {"x": "y"},
        "Orchestration": {"TaskHistoryRetentionLimit": 3},
        "Raft": {"ElectionTick": 10, "HeartbeatTick": 1},
        "Dispatcher": {"HeartbeatPeriod": 5_000_000_000},
        "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": False},
    }
    assert out["TLSInfo"] == {"TrustRoot": "-----BEGIN CERTIFICATE-----\nAA\n"}
    assert out["DefaultAddrPool"] == ["10.0.0.0/8"] and out["SubnetSize"] == 24
    assert out["JoinTokens"] == {"Worker": "SWMTKN-1-w", "Manager": "SWMTKN-1-m"}
    assert "KEYBYTES" not in json.dumps(out)
    assert "JoinTokens" not in swarm_json(cluster)  # the Cluster of `docker info`
