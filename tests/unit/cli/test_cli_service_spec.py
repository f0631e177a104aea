"""`service create` and `service update` flags against a fake daemon: the exact ServiceSpec
each sends, docker's rules between flags, and what the user sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    ContainerSpec,
    EndpointSpec,
    FailureAction,
    FileRef,
    HealthCheck,
    JobSpec,
    Mount,
    Network,
    NetworkAttachment,
    NetworkSpec,
    Placement,
    PortConfig,
    ResourceRequirements,
    Resources,
    RestartCondition,
    RestartPolicy,
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
)
from swarmlite.api.control import (
    NameRef,
    NetworkView,
    ServiceCreate,
    ServiceList,
    ServiceView,
    TaskList,
)
from swarmlite.api.routes import (
    NETWORK_INSPECT,
    SERVICE_CREATE,
    SERVICE_INSPECT,
    SERVICE_LS,
    SERVICE_ROLLBACK,
    SERVICE_UPDATE,
    TASK_LS,
)
from swarmlite.cli import converge
from swarmlite.errors import NotFound

WEB_ID = "web".ljust(25, "0")
GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture(autouse=True)
def _poll_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(converge, "POLL_SECONDS", 0.0)


@pytest.fixture
def networks(daemon: Any) -> None:
    """NETWORK_INSPECT knows `front` and `back` by name or id (`net-front`, ...)."""

    def inspect(request: NameRef) -> NetworkView:
        name = request.ref.removeprefix("net-")
        if name not in ("front", "back"):
            raise NotFound(f"network {request.ref} not found")
        return NetworkView(network=Network(id=f"net-{name}", spec=NetworkSpec(name=name)))

    daemon.on(NETWORK_INSPECT, inspect)


def create(daemon: Any, run: Any, *args: str) -> tuple[Any, ServiceSpec | None]:
    """``service create -d ARGS``: the result and the spec sent (None if none was)."""
    daemon.on(
        SERVICE_CREATE,
        lambda request: ServiceView(
            service=Service(id=WEB_ID, spec=request.spec), running=0, desired=0
        ),
    )
    before = len(daemon.requests(SERVICE_CREATE))
    result = run("service", "create", "-d", *args)
    sent: list[ServiceCreate] = daemon.requests(SERVICE_CREATE)[before:]
    return result, sent[0].spec if sent else None


def update(daemon: Any, run: Any, spec: ServiceSpec, *args: str) -> tuple[Any, ServiceSpec | None]:
    """``service update -d ARGS web`` of a service whose spec is ``spec``."""
    service = Service(id=WEB_ID, version=7, spec=spec)
    view = ServiceView(service=service, running=0, desired=0)
    daemon.on(SERVICE_INSPECT, lambda request: view)
    daemon.on(SERVICE_UPDATE, lambda request: view)
    before = len(daemon.requests(SERVICE_UPDATE))
    result = run("service", "update", "-d", *args, "web")
    sent = daemon.requests(SERVICE_UPDATE)[before:]
    return result, sent[0].spec if sent else None


def web_spec(**container: Any) -> ServiceSpec:
    return ServiceSpec(
        name="web", task=TaskTemplate(container=ContainerSpec(image="nginx:1.27", **container))
    )


# --------------------------------------------------------------------------- create


def test_create_sends_the_image_and_the_command_after_it(daemon, run) -> None:
    result, spec = create(
        daemon, run, "--name", "web", "busybox:1", "sh", "-c", "echo hi", "--init=false", "-e", "X"
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{WEB_ID}\n"  # docker prints the new service's id
    # everything after IMAGE belongs to the command, flags included
    assert spec == ServiceSpec(
        name="web",
        task=TaskTemplate(
            container=ContainerSpec(
                image="busybox:1", command=["sh", "-c", "echo hi", "--init=false", "-e", "X"]
            )
        ),
    )


def test_create_container_flags(daemon, run, tmp_path: Path, monkeypatch) -> None:
    env_file = tmp_path / "web.env"
    env_file.write_text("# settings\nA=1\n  B=from file\nFROM_SHELL\nMISSING\n")
    monkeypatch.setenv("FROM_SHELL", "shell")
    result, spec = create(
        daemon, run, "--name", "web",
        "--env-file", str(env_file), "-e", "B=2", "--env", "C=3",
        "--container-label", "team=shop", "--entrypoint", "/bin/sh -c",
        "-w", "/srv", "-u", "app:app", "--group", "audio", "--group", "video",
        "--hostname", "web-host", "--init", "--read-only", "-t",
        "--stop-signal", "SIGQUIT", "--stop-grace-period", "1m30s",
        "--cap-add", "net_admin", "--cap-add", "CAP_SYS_TIME", "--cap-drop", "mknod",
        "--sysctl", "net.core.somaxconn=1024", "--ulimit", "nofile=1024:2048",
        "--ulimit", "nproc=64", "--oom-score-adj", "-500",
        "--dns", "10.0.0.2", "--dns-option", "ndots:2", "--dns-search", "shop.internal",
        "--host", "db:10.0.0.5", "--host", "cache=10.0.0.6",
        "--mount", "type=bind,source=/srv/data,target=/data,readonly",
        "--mount", "type=tmpfs,target=/tmp,tmpfs-size=64m,tmpfs-mode=1770",
        "--mount", "source=logs,target=/logs,volume-label=keep=yes,volume-nocopy",
        "--secret", "db_password",
        "--secret", "source=tls,target=/etc/tls.pem,uid=1,gid=2,mode=0400",
        "--config", "src=nginx_conf,target=/etc/nginx/nginx.conf",
        "nginx:1.27", "nginx", "-g", "daemon off;",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert spec is not None
    assert spec.task.container == ContainerSpec(
        image="nginx:1.27",
        entrypoint=["/bin/sh", "-c"],
        command=["nginx", "-g", "daemon off;"],
        env=["A=1", "FROM_SHELL=shell", "B=2", "C=3"],  # the file, then -e; B set last by -e
        labels={"team": "shop"},
        working_dir="/srv",
        user="app:app",
        groups=["audio", "video"],
        hostname="web-host",
        stop_signal="SIGQUIT",
        stop_grace_period=90.0,
        init=True,
        read_only=True,
        tty=True,
        cap_add=["CAP_NET_ADMIN", "CAP_SYS_TIME"],
        cap_drop=["CAP_MKNOD"],
        sysctls={"net.core.somaxconn": "1024"},
        ulimits=[
            Ulimit(name="nofile", soft=1024, hard=2048),
            Ulimit(name="nproc", soft=64, hard=64),
        ],
        mounts=[
            Mount(type="bind", source="/srv/data", target="/data", read_only=True),
            Mount(type="tmpfs", target="/tmp", tmpfs_size=64 * MIB, tmpfs_mode=0o1770),
            Mount(source="logs", target="/logs", volume_labels={"keep": "yes"}, volume_nocopy=True),
        ],
        secrets=[
            FileRef(name="db_password", target="db_password"),
            FileRef(name="tls", target="/etc/tls.pem", uid="1", gid="2", mode=0o400),
        ],
        configs=[FileRef(name="nginx_conf", target="/etc/nginx/nginx.conf")],
        extra_hosts=["db:10.0.0.5", "cache:10.0.0.6"],
        dns=["10.0.0.2"],
        dns_options=["ndots:2"],
        dns_search=["shop.internal"],
        oom_score_adj=-500,
    )


def test_create_service_flags(daemon, run, networks) -> None:
    result, spec = create(
        daemon, run, "--name", "web", "-l", "tier=front", "--label", "bare",
        "-p", "8080:80", "--publish", "53:53/udp", "-p", "9000-9001:90-91",
        "-p", "published=443,target=8443,mode=host", "-p", "7000",
        "--endpoint-mode", "VIP",
        "--constraint", "node.role==worker", "--placement-pref", "spread=node.labels.zone",
        "--replicas-max-per-node", "2",
        "--network", "front", "--network", "name=net-back,alias=db,alias=pg",
        "--limit-cpu", "0.5", "--limit-memory", "512M", "--limit-pids", "100",
        "--reserve-cpu", "0.25", "--reserve-memory", "1g",
        "--restart-condition", "on-failure", "--restart-delay", "10s",
        "--restart-max-attempts", "3", "--restart-window", "2m",
        "--update-parallelism", "2", "--update-delay", "5s", "--update-monitor", "30s",
        "--update-failure-action", "rollback", "--update-max-failure-ratio", "0.25",
        "--update-order", "start-first",
        "--rollback-parallelism", "0", "--rollback-order", "start-first",
        "--replicas", "3", "--no-resolve-image", "-q",
        "nginx:1.27",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert spec == ServiceSpec(
        name="web",
        labels={"tier": "front", "bare": ""},
        replicas=3,
        task=TaskTemplate(
            container=ContainerSpec(image="nginx:1.27"),
            resources=ResourceRequirements(
                limits=Resources(nano_cpus=500_000_000, memory_bytes=512 * MIB, pids=100),
                reservations=Resources(nano_cpus=250_000_000, memory_bytes=GIB),
            ),
            restart_policy=RestartPolicy(
                condition=RestartCondition.ON_FAILURE, delay=10.0, max_attempts=3, window=120.0
            ),
            placement=Placement(
                constraints=["node.role==worker"],
                preferences=["node.labels.zone"],
                max_replicas_per_node=2,
            ),
            networks=[
                NetworkAttachment(target="front"),
                NetworkAttachment(target="back", aliases=["db", "pg"]),  # an id, resolved
            ],
        ),
        update_config=UpdateConfig(
            parallelism=2,
            delay=5.0,
            monitor=30.0,
            failure_action=FailureAction.ROLLBACK,
            max_failure_ratio=0.25,
            order=UpdateOrder.START_FIRST,
        ),
        rollback_config=UpdateConfig(parallelism=0, order=UpdateOrder.START_FIRST),
        endpoint=EndpointSpec(
            mode="vip",
            ports=[
                PortConfig(target=80, published=8080),
                PortConfig(target=53, published=53, protocol="udp"),
                PortConfig(target=90, published=9000),
                PortConfig(target=91, published=9001),
                PortConfig(target=8443, published=443, mode="host"),
                PortConfig(target=7000),
            ],
        ),
    )
    assert daemon.requests(NETWORK_INSPECT) == [NameRef(ref="front"), NameRef(ref="net-back")]


def test_create_healthcheck(daemon, run) -> None:
    result, spec = create(
        daemon, run, "--name", "web",
        "--health-cmd", "curl -f http://localhost/", "--health-interval", "10s",
        "--health-timeout", "2s", "--health-retries", "4", "--health-start-period", "1m",
        "--health-start-interval", "500ms", "nginx:1.27",
    )  # fmt: skip
    _, disabled = create(daemon, run, "--name", "web", "--no-healthcheck", "nginx:1.27")

    assert result.exit_code == 0, result.stderr
    assert spec is not None and spec.task.container.healthcheck == HealthCheck(
        test=["CMD-SHELL", "curl -f http://localhost/"],
        interval=10.0,
        timeout=2.0,
        retries=4,
        start_period=60.0,
        start_interval=0.5,
    )
    assert disabled is not None
    assert disabled.task.container.healthcheck == HealthCheck(test=["NONE"], disable=True)


@pytest.mark.parametrize(
    ("args", "mode", "replicas", "job"),
    [
        ([], ServiceMode.REPLICATED, 1, JobSpec()),
        (["--replicas", "0"], ServiceMode.REPLICATED, 0, JobSpec()),
        (["--mode", "global"], ServiceMode.GLOBAL, 1, JobSpec()),
        (["--mode", "global-job"], ServiceMode.GLOBAL_JOB, 1, JobSpec()),
        (["--mode", "replicated-job"], ServiceMode.REPLICATED_JOB, 1, JobSpec()),
        # a job's concurrency defaults to its completions, and the reverse
        (["--mode", "replicated-job", "--replicas", "5"], ServiceMode.REPLICATED_JOB, 1,
         JobSpec(max_concurrent=5, total_completions=5)),
        (["--mode", "replicated-job", "--max-concurrent", "2"], ServiceMode.REPLICATED_JOB, 1,
         JobSpec(max_concurrent=2, total_completions=2)),
        (["--mode", "replicated-job", "--replicas", "6", "--max-concurrent", "2"],
         ServiceMode.REPLICATED_JOB, 1, JobSpec(max_concurrent=2, total_completions=6)),
    ],
)  # fmt: skip
def test_create_modes(daemon, run, args, mode, replicas, job) -> None:
    result, spec = create(daemon, run, "--name", "web", *args, "nginx:1.27")

    assert result.exit_code == 0, result.stderr
    assert spec is not None
    assert (spec.mode, spec.replicas, spec.job) == (mode, replicas, job)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--mode", "global", "--replicas", "2"],
         "replicas can only be used with replicated or replicated-job mode"),
        (["--mode", "global", "--replicas-max-per-node", "1"],
         "replicas-max-per-node can only be used with replicated or replicated-job mode"),
        (["--max-concurrent", "2"], "max-concurrent can only be used with replicated-job mode"),
        (["--mode", "global-job", "--update-delay", "1s"],
         "update and rollback configuration is not supported for jobs"),
        (["--no-healthcheck", "--health-retries", "2"],
         "--no-healthcheck conflicts with --health-* options"),
        (["--mount", "target=/a", "--mount", "type=tmpfs,target=/a"], "duplicate mount target"),
    ],
)  # fmt: skip
def test_create_refuses_flags_that_do_not_go_together(daemon, run, args, error) -> None:
    result, spec = create(daemon, run, "--name", "web", *args, "nginx:1.27")

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"error: {error}"
    assert spec is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--publish", "1.2.3.4:80:80"], "hostip is not supported"),
        (["-p", "target=80,protocol=icmp"], "invalid protocol value 'icmp'"),
        (["-p", "published=80"], "missing mandatory field 'target'"),
        (["--mount", "type=bind,source=/x"], "target is required"),
        (["--mount", "type=bind,target=/x,volume-nocopy"],
         "cannot mix 'volume-*' options with mount type 'bind'"),
        (["--mount", "target=/x,volume-opt=o=bind"],
         "mount option volume-opt is not supported by swarmlite"),
        (["--secret", "target=/x"], "source is required"),
        (["--network", "name=front,ip=10.0.0.9"],
         "network option ip is not supported by swarmlite services"),
        (["--limit-memory", "lots"], "invalid size: 'lots'"),
        (["--limit-cpu", "0.0000000001"], "value is too precise"),
        (["--ulimit", "nofile=2048:1024"],
         "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
        (["--ulimit", "files=1"], "invalid ulimit type: files"),
        (["--placement-pref", "pack=node.labels.zone"],
         "unsupported placement preference pack (only spread is supported)"),
        (["--dns", "resolver"], "IP address is not correctly formatted: resolver"),
        (["--host", "db"], "bad format for add-host: 'db'"),
        (["--restart-delay", "5"], "'5' is not a duration"),
        (["--update-delay", "-1s"], "duration cannot be negative"),
        (["--mode", "daemon"], "'daemon' is not one of"),
    ],
)  # fmt: skip
def test_create_refuses_bad_values_with_dockers_words(daemon, run, args, words) -> None:
    result, spec = create(daemon, run, "--name", "web", *args, "nginx:1.27")

    assert result.exit_code == 2
    assert words in result.stderr
    assert spec is None


def test_create_waits_for_the_new_service_then_says_so(daemon, run) -> None:
    spec = web_spec()
    service = Service(id=WEB_ID, spec=msgspec.structs.replace(spec, replicas=2))
    daemon.on(SERVICE_CREATE, lambda request: ServiceView(service=service, running=0, desired=2))
    tasks = [
        Task(
            id=f"task{slot}".ljust(25, "0"),
            service_id=WEB_ID,
            service_name="web",
            slot=slot,
            spec=service.spec.task,
            spec_version=1,
            status=TaskStatus(state=state),
        )
        for slot, state in ((1, TaskState.RUNNING), (2, TaskState.RUNNING))
    ]
    polls = iter([[], tasks[:1]])

    def services(request: Any) -> ServiceList:
        return ServiceList(services=[ServiceView(service=service, running=0, desired=2)])

    daemon.on(SERVICE_LS, services)
    daemon.on(TASK_LS, lambda request: TaskList(tasks=next(polls, tasks)))

    result = run("service", "create", "--name", "web", "--replicas", "2", "nginx:1.27")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        WEB_ID,
        "web: 0/2 running",
        "web: 1/2 running",
        "web: 2/2 running",
        "verify: Service web converged",
    ]


# --------------------------------------------------------------------------- update

BUSY = ServiceSpec(
    name="web",
    labels={"tier": "front", "team": "shop"},
    task=TaskTemplate(
        container=ContainerSpec(
            image="nginx:1.27",
            command=["nginx"],
            entrypoint=["/docker-entrypoint.sh"],
            env=["A=1", "B=2"],
            labels={"x": "1", "y": "2"},
            groups=["audio"],
            sysctls={"net.core.somaxconn": "512", "kernel.shmmax": "1"},
            ulimits=[Ulimit(name="nofile", soft=1, hard=2), Ulimit(name="nproc", soft=5, hard=5)],
            mounts=[Mount(target="/data", source="data"), Mount(target="/logs", source="logs")],
            secrets=[FileRef(name="a", target="a"), FileRef(name="b", target="b")],
            configs=[FileRef(name="c", target="/c")],
            dns=["10.0.0.2"],
            dns_options=["ndots:2"],
            dns_search=["a.internal"],
            extra_hosts=["db:10.0.0.5", "db:10.0.0.7", "cache:10.0.0.6"],
            healthcheck=HealthCheck(test=["CMD", "true"], interval=30.0, retries=3),
        ),
        placement=Placement(constraints=["node.role==worker"], preferences=["node.labels.zone"]),
        networks=[NetworkAttachment(target="front"), NetworkAttachment(target="back")],
    ),
    endpoint=EndpointSpec(
        ports=[PortConfig(target=80, published=8080), PortConfig(target=53, protocol="udp")]
    ),
)


def test_update_list_flags_remove_then_add(daemon, run, networks) -> None:
    result, spec = update(
        daemon, run, BUSY,
        "--label-rm", "team", "--label-add", "tier=back",
        "--container-label-rm", "x", "--container-label-add", "z=3",
        "--env-rm", "A", "--env-add", "B=9", "--env-add", "C=3",
        "--group-rm", "audio", "--group-add", "video",
        "--sysctl-rm", "kernel.shmmax", "--sysctl-add", "net.core.somaxconn=1024",
        "--ulimit-rm", "nproc", "--ulimit-add", "nofile=10:20",
        "--mount-rm", "/logs", "--mount-add", "type=tmpfs,target=/data",
        "--secret-rm", "a", "--secret-add", "source=d,target=/d",
        "--config-rm", "c", "--config-add", "e",
        "--dns-rm", "10.0.0.2", "--dns-add", "10.0.0.3",
        "--dns-option-rm", "ndots:2", "--dns-option-add", "timeout:1",
        "--dns-search-rm", "a.internal", "--dns-search-add", "b.internal",
        "--host-rm", "db:10.0.0.5", "--host-add", "api:10.0.0.8",
        "--constraint-rm", "node.role==worker", "--constraint-add", "node.labels.ssd==true",
        "--placement-pref-rm", "spread=node.labels.zone",
        "--placement-pref-add", "spread=node.labels.rack",
        "--network-rm", "net-back", "--network-add", "name=net-back,alias=db",
        "--publish-rm", "80", "--publish-add", "8443:443",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "web\n"
    assert spec is not None
    container = spec.task.container
    assert spec.labels == {"tier": "back"}
    assert container.labels == {"y": "2", "z": "3"}
    assert container.env == ["B=9", "C=3"]
    assert container.groups == ["video"]
    assert container.sysctls == {"net.core.somaxconn": "1024"}
    assert container.ulimits == [Ulimit(name="nofile", soft=10, hard=20)]
    assert container.mounts == [Mount(type="tmpfs", target="/data")]  # replaced at its target
    assert container.secrets == [FileRef(name="b", target="b"), FileRef(name="d", target="/d")]
    assert container.configs == [FileRef(name="e", target="e")]
    assert (container.dns, container.dns_options, container.dns_search) == (
        ["10.0.0.3"],
        ["timeout:1"],
        ["b.internal"],
    )
    assert container.extra_hosts == ["db:10.0.0.7", "cache:10.0.0.6", "api:10.0.0.8"]
    assert spec.task.placement == Placement(
        constraints=["node.labels.ssd==true"], preferences=["node.labels.rack"]
    )
    assert spec.task.networks == [
        NetworkAttachment(target="front"),
        NetworkAttachment(target="back", aliases=["db"]),
    ]
    # -rm 80 matches target 80/tcp in ingress mode, whatever its published port
    assert spec.endpoint.ports == [
        PortConfig(target=53, protocol="udp"),
        PortConfig(target=443, published=8443),
    ]
    # nothing else moved
    assert container.command == ["nginx"] and container.entrypoint == ["/docker-entrypoint.sh"]
    assert container.healthcheck == BUSY.task.container.healthcheck


def test_update_scalar_flags(daemon, run) -> None:
    result, spec = update(
        daemon, run, BUSY,
        "--image", "nginx:1.28", "--args", "nginx -g 'daemon off;'", "--entrypoint", "",
        "--limit-cpu", "2", "--reserve-memory", "256MiB",
        "--restart-condition", "none", "--restart-max-attempts", "2",
        "--update-monitor", "1m", "--rollback-failure-action", "continue",
        "--replicas", "4", "--replicas-max-per-node", "1", "--endpoint-mode", "dnsrr",
        "--hostname", "h", "-u", "1000", "-w", "/app", "--stop-signal", "SIGINT",
        "--stop-grace-period", "3s", "--oom-score-adj", "100", "--init", "-t",
        "--force", "--no-resolve-image",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert spec is not None
    task, container = spec.task, spec.task.container
    assert (container.image, container.command, container.entrypoint) == (
        "nginx:1.28",
        ["nginx", "-g", "daemon off;"],
        None,  # --entrypoint "": back to the image's
    )
    assert task.resources == ResourceRequirements(
        limits=Resources(nano_cpus=2_000_000_000),
        reservations=Resources(memory_bytes=256 * MIB),
    )
    assert task.restart_policy == RestartPolicy(condition=RestartCondition.NONE, max_attempts=2)
    # a config the service did not have: docker's defaults, with the flag's change
    assert spec.update_config == UpdateConfig(monitor=60.0)
    assert spec.rollback_config == UpdateConfig(failure_action=FailureAction.CONTINUE)
    assert (spec.replicas, task.placement.max_replicas_per_node, spec.endpoint.mode) == (
        4,
        1,
        "dnsrr",
    )
    assert (container.hostname, container.user, container.working_dir) == ("h", "1000", "/app")
    assert (container.stop_signal, container.stop_grace_period) == ("SIGINT", 3.0)
    assert (container.oom_score_adj, container.init, container.tty) == (100, True, True)
    assert task.force_update == 1


def test_update_bool_flags_take_dockers_attached_values(daemon, run) -> None:
    spec = web_spec(init=True, read_only=True, tty=True)

    result, sent = update(daemon, run, spec, "--init=false", "--read-only=0", "--tty=False")
    again, unchanged = update(daemon, run, spec, "--detach=true", "--init=true")

    assert result.exit_code == 0, result.stderr
    assert sent is not None
    assert (sent.task.container.init, sent.task.container.read_only) == (False, False)
    assert sent.task.container.tty is False
    assert again.exit_code == 0, again.stderr
    assert unchanged == spec


@pytest.mark.parametrize(
    ("has_add", "has_drop", "args", "cap_add", "cap_drop"),
    [
        # adding one that was dropped un-drops it (and only that)
        ([], ["CAP_NET_RAW"], ["--cap-add", "net_raw"], [], []),
        ([], [], ["--cap-add", "net_raw"], ["CAP_NET_RAW"], []),
        (["CAP_NET_RAW"], [], ["--cap-drop", "NET_RAW"], [], []),
        ([], [], ["--cap-add", "x", "--cap-drop", "x"], ["CAP_X"], []),  # adding wins
        (["CAP_A"], ["CAP_B"], ["--cap-add", "RESET", "--cap-add", "c"], ["CAP_C"], ["CAP_B"]),
        (["CAP_A"], [], ["--cap-add", "all"], ["ALL"], []),
    ],
)
def test_update_capabilities_as_docker(daemon, run, has_add, has_drop, args, cap_add, cap_drop):
    result, spec = update(daemon, run, web_spec(cap_add=has_add, cap_drop=has_drop), *args)

    assert result.exit_code == 0, result.stderr
    assert spec is not None
    assert (spec.task.container.cap_add, spec.task.container.cap_drop) == (cap_add, cap_drop)


@pytest.mark.parametrize(
    ("before", "args", "after"),
    [
        (HealthCheck(test=["CMD", "true"], retries=3), ["--health-interval", "5s"],
         HealthCheck(test=["CMD", "true"], retries=3, interval=5.0)),
        (HealthCheck(test=["NONE"], disable=True), ["--health-cmd", "true"],
         HealthCheck(test=["CMD-SHELL", "true"])),
        (HealthCheck(test=["CMD", "true"]), ["--health-cmd", ""], HealthCheck()),
        (None, ["--no-healthcheck"], HealthCheck(test=["NONE"], disable=True)),
        (None, ["--health-start-interval", "1s"], HealthCheck(start_interval=1.0)),
    ],
)  # fmt: skip
def test_update_healthcheck_as_docker(daemon, run, before, args, after) -> None:
    result, spec = update(daemon, run, web_spec(healthcheck=before), *args)

    assert result.exit_code == 0, result.stderr
    assert spec is not None and spec.task.container.healthcheck == after


def test_update_with_no_flags_sends_the_spec_unchanged(daemon, run) -> None:
    result, spec = update(daemon, run, BUSY)

    assert result.exit_code == 0, result.stderr
    assert spec == BUSY


@pytest.mark.parametrize(
    ("spec", "args", "error"),
    [
        (msgspec.structs.replace(BUSY, mode=ServiceMode.GLOBAL), ["--replicas", "2"],
         "replicas can only be used with replicated mode"),
        (BUSY, ["--max-concurrent", "2"],
         "max-concurrent can only be used with replicated-job mode"),
        (BUSY, ["--network-add", "front"], "service is already attached to network front"),
        (BUSY, ["--mount-add", "target=/x", "--mount-add", "target=/x"],
         "duplicate mount target"),
    ],
)  # fmt: skip
def test_update_refuses_what_docker_refuses(daemon, run, networks, spec, args, error) -> None:
    result, sent = update(daemon, run, spec, *args)

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"error: {error}"
    assert sent is None


def test_update_max_concurrent_of_a_replicated_job(daemon, run) -> None:
    job = msgspec.structs.replace(web_spec(), mode=ServiceMode.REPLICATED_JOB)

    result, spec = update(daemon, run, job, "--max-concurrent", "4")

    assert result.exit_code == 0, result.stderr
    assert spec is not None and spec.job == JobSpec(max_concurrent=4)


def test_update_rollback_is_service_rollback(daemon, run) -> None:
    view = ServiceView(service=Service(id=WEB_ID, spec=web_spec()), running=0, desired=0)
    daemon.on(SERVICE_INSPECT, lambda request: view)
    daemon.on(SERVICE_ROLLBACK, lambda request: view)

    result = run("service", "update", "--rollback", "-d", "web")
    mixed = run("service", "update", "--rollback", "--image", "nginx:1", "web")
    zero = run("service", "update", "--rollback", "--update-parallelism", "0", "web")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_ROLLBACK) == [NameRef(ref=WEB_ID)]
    assert result.stdout == "web\nrollback: manually requested rollback\n"
    assert daemon.requests(SERVICE_UPDATE) == []
    for refused in (mixed, zero):
        assert refused.exit_code == 2
        assert refused.stderr.startswith("error: other flags may not be combined with --rollback")
