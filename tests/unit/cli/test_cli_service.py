"""`swarmlite service ...` against a fake daemon: what is sent, what is printed, and how a
change is waited for (converged, paused, rolled back, failing, pending past the timeout)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from swarmlite.api import (
    ContainerSpec,
    EndpointSpec,
    FailureAction,
    Node,
    NodeSpec,
    NodeStatus,
    Placement,
    PortConfig,
    RestartCondition,
    RestartPolicy,
    Service,
    ServiceMode,
    ServiceSpec,
    Task,
    TaskState,
    TaskStatus,
    TaskTemplate,
    UpdateConfig,
    UpdateOrder,
    UpdateState,
    UpdateStatus,
)
from swarmlite.api.control import (
    Empty,
    LogLine,
    LogsRequest,
    NameRef,
    NodeList,
    NodeView,
    ServiceFilter,
    ServiceList,
    ServiceScale,
    ServiceUpdate,
    ServiceView,
    TaskFilter,
    TaskList,
)
from swarmlite.api.routes import (
    NODE_LS,
    SERVICE_INSPECT,
    SERVICE_LOGS,
    SERVICE_LS,
    SERVICE_RM,
    SERVICE_ROLLBACK,
    SERVICE_SCALE,
    SERVICE_UPDATE,
    TASK_LS,
)
from swarmlite.cli import converge
from swarmlite.errors import Conflict, NotFound

WEB_ID = "web00000000000000000000001"[:25]
NOW = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _poll_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(converge, "POLL_SECONDS", 0.0)


# --------------------------------------------------------------------------- factories


def make_service(
    name: str = "shop_web",
    *,
    service_id: str = WEB_ID,
    replicas: int = 3,
    mode: ServiceMode = ServiceMode.REPLICATED,
    image: str = "shop/web:1",
    status: UpdateStatus | None = None,
    spec_version: int = 1,
    ports: list[PortConfig] | None = None,
    restart: RestartCondition = RestartCondition.ANY,
    constraints: list[str] | None = None,
    env: list[str] | None = None,
) -> Service:
    spec = ServiceSpec(
        name=name,
        labels={"com.docker.stack.namespace": "shop", "tier": "front"},
        mode=mode,
        replicas=replicas,
        task=TaskTemplate(
            container=ContainerSpec(image=image, env=env or []),
            restart_policy=RestartPolicy(condition=restart),
            placement=Placement(constraints=constraints or []),
        ),
        endpoint=EndpointSpec(ports=ports or []),
    )
    return Service(
        id=service_id, version=10, spec=spec, spec_version=spec_version, update_status=status
    )


def make_task(
    service: Service,
    slot: int,
    *,
    state: TaskState = TaskState.RUNNING,
    task_id: str | None = None,
    node: str = "n1",
    health: str = "",
    err: str = "",
    pending: str = "",
    old: bool = False,
    created_at: float = NOW,
) -> Task:
    spec = service.spec.task
    if old:  # a task of the spec before the change
        spec = msgspec.structs.replace(
            spec, container=msgspec.structs.replace(spec.container, image="shop/web:0")
        )
    return Task(
        id=task_id or f"task{slot}{state.value}{'old' if old else ''}".ljust(25, "0"),
        created_at=created_at,
        service_id=service.id,
        service_name=service.spec.name,
        slot=slot,
        node_id=node,
        spec=spec,
        spec_version=service.spec_version - 1 if old else service.spec_version,
        status=TaskStatus(
            state=state,
            timestamp=NOW,
            health=health,
            err=err,
            pending_reason=pending,
        ),
    )


def view_of(service: Service, tasks: list[Task], desired: int | None = None) -> ServiceView:
    running = sum(task.status.state is TaskState.RUNNING for task in tasks)
    return ServiceView(
        service=service,
        running=running,
        desired=service.spec.replicas if desired is None else desired,
    )


def nodes() -> NodeList:
    return NodeList(
        nodes=[
            NodeView(
                node=Node(id=f"n{i}", spec=NodeSpec(), status=NodeStatus(hostname=f"node-{i}"))
            )
            for i in (1, 2)
        ]
    )


def script(daemon: Any, states: list[tuple[Service, list[Task]]]) -> None:
    """SERVICE_LS and TASK_LS answer ``states`` in turn, one per poll, then the last one."""
    polls: Iterator[tuple[Service, list[Task]]] = iter(states)
    current: list[tuple[Service, list[Task]]] = [states[0]]

    def services(request: ServiceFilter) -> ServiceList:
        current[0] = next(polls, current[0])
        service, tasks = current[0]
        return ServiceList(services=[view_of(service, tasks)])

    daemon.on(SERVICE_LS, services)
    daemon.on(TASK_LS, lambda request: TaskList(tasks=current[0][1]))


def running(service: Service, count: int = 3) -> list[Task]:
    return [make_task(service, slot) for slot in range(1, count + 1)]


# --------------------------------------------------------------------------- listings


def test_service_ls_table_counts_replicas_and_job_completions(daemon, run) -> None:
    web = make_service(ports=[PortConfig(target=80, published=8080)])
    api = make_service("shop_api", service_id="api".ljust(25, "0"), mode=ServiceMode.GLOBAL)
    job = make_service(
        "shop_migrate", service_id="job".ljust(25, "0"), mode=ServiceMode.REPLICATED_JOB
    )
    job = msgspec.structs.replace(
        job,
        spec=msgspec.structs.replace(
            job.spec, job=msgspec.structs.replace(job.spec.job, total_completions=2)
        ),
    )
    daemon.on(
        SERVICE_LS,
        lambda request: ServiceList(
            services=[
                view_of(web, running(web, 2)),
                view_of(job, [], desired=1),
                view_of(api, running(api, 2), desired=2),
            ]
        ),
    )
    daemon.on(
        TASK_LS, lambda request: TaskList(tasks=[make_task(job, 1, state=TaskState.COMPLETE)])
    )

    result = run("service", "ls")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_LS) == [ServiceFilter()]
    assert daemon.requests(TASK_LS) == [TaskFilter(service=job.id)]  # only jobs need tasks
    assert result.stdout.splitlines() == [
        "ID             NAME           MODE             REPLICAS        IMAGE        PORTS",
        "api000000000   shop_api       global           2/2             shop/web:1",
        "job000000000   shop_migrate   replicated job   1/2 completed   shop/web:1",
        "web000000000   shop_web       replicated       2/3             shop/web:1   "
        "*:8080->80/tcp",
    ]


def test_service_ls_quiet_json_and_templates(daemon, run) -> None:
    web = make_service(ports=[PortConfig(target=80, published=8080)])
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=[view_of(web, running(web))]))

    quiet = run("service", "ls", "-q")
    as_json = run("service", "ls", "--format", "json")
    template = run("service", "ls", "--format", "{{.Name}} {{.Replicas}}")
    table = run("service", "ls", "--format", "table {{.ID}}\t{{.Ports}}")

    assert quiet.stdout == "web000000000\n"
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {
            "ID": "web000000000",
            "Image": "shop/web:1",
            "Mode": "replicated",
            "Name": "shop_web",
            "Ports": "*:8080->80/tcp",
            "Replicas": "3/3",
        }
    ]
    assert template.stdout == "shop_web 3/3\n"
    assert run("service", "ls", "-q", "--no-trunc").stdout == f"{WEB_ID}\n"
    assert table.stdout == "ID             PORTS\nweb000000000   *:8080->80/tcp\n"


def test_service_ls_sends_the_filters(daemon, run) -> None:
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=[]))

    result = run("service", "ls", "-f", "mode=global", "--filter", "label=tier=front", "-q")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_LS) == [
        ServiceFilter(filters={"mode": ["global"], "label": ["tier=front"]})
    ]
    assert result.stdout == ""


def test_service_ps_shows_hostnames_history_errors_and_host_ports(daemon, run) -> None:
    web = make_service(ports=[PortConfig(target=80, published=8080, mode="host")])
    failed = make_task(
        web,
        1,
        state=TaskState.FAILED,
        node="n2",
        err="task: non-zero exit (137): the container was killed",
        created_at=NOW - 60,
    )
    tasks = [failed, make_task(web, 1), make_task(web, 2, node="n2")]
    daemon.on(TASK_LS, lambda request: TaskList(tasks=tasks))
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=[view_of(web, tasks)]))
    daemon.on(NODE_LS, lambda request: nodes())

    result = run("service", "ps", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(TASK_LS) == [TaskFilter(service="shop_web")]
    assert daemon.requests(SERVICE_LS) == [ServiceFilter(names=["shop_web"])]
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "NAME", "IMAGE", "NODE", "DESIRED", "STATE", "CURRENT", "STATE", "ERROR", "PORTS"
    ]  # fmt: skip
    assert lines[1].split()[:5] == ["task1running", "shop_web.1", "shop/web:1", "node-1", "Running"]
    assert lines[1].endswith("*:8080->80/tcp")
    # the older task of slot 1 sits under the current one, its error cut as docker cuts it
    assert lines[2].split()[:3] == ["task1failed0", "\\_", "shop_web.1"]
    assert '"task: non-zero exit (137): th\u2026"' in lines[2]
    assert lines[3].split()[:4] == ["task2running", "shop_web.2", "shop/web:1", "node-2"]


def test_service_ps_no_trunc_and_quiet(daemon, run) -> None:
    web = make_service()
    failed = make_task(web, 1, state=TaskState.FAILED, err="x" * 40)
    daemon.on(TASK_LS, lambda request: TaskList(tasks=[failed]))
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=[view_of(web, [failed])]))
    daemon.on(NODE_LS, lambda request: nodes())

    full = run("service", "ps", "--no-trunc", "shop_web")
    quiet = run("service", "ps", "-q", "shop_web")

    assert failed.id in full.stdout and f'"{"x" * 40}"' in full.stdout
    assert quiet.stdout == failed.id + "\n"  # docker's -q prints whole ids


def test_service_ps_filters_no_resolve_and_format(daemon, run) -> None:
    web = make_service()
    tasks = [make_task(web, 1, old=True, state=TaskState.SHUTDOWN), make_task(web, 1)]
    daemon.on(TASK_LS, lambda request: TaskList(tasks=tasks))
    daemon.on(SERVICE_LS, lambda request: ServiceList(services=[view_of(web, tasks)]))

    result = run(
        "service", "ps", "--no-resolve", "-f", "desired-state=running",
        "--format", "{{.Name}} {{.Node}} {{.DesiredState}}", "shop_web",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(TASK_LS) == [
        TaskFilter(service="shop_web", filters={"desired-state": ["running"]})
    ]
    assert daemon.requests(NODE_LS) == []  # --no-resolve: ids, not names
    # no " \_ " indent outside a table; the service named by its id
    assert result.stdout.splitlines() == [f"{WEB_ID}.1 n1 Running", f"{WEB_ID}.1 n1 Running"]


def test_service_ps_of_an_unknown_service_fails_with_the_servers_error(daemon, run) -> None:
    def tasks(request: TaskFilter) -> TaskList:
        raise NotFound(f'service "{request.service}" not found', hint="`swarmlite service ls`")

    daemon.on(TASK_LS, tasks)

    result = run("service", "ps", "ghost")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        'error: service "ghost" not found',
        "hint: `swarmlite service ls`",
    ]


def test_service_inspect_json_and_pretty(daemon, run) -> None:
    web = make_service(
        ports=[PortConfig(target=80, published=8080)],
        constraints=["node.role==worker"],
        env=["MODE=prod"],
        status=UpdateStatus(state=UpdateState.COMPLETED, message="update completed"),
    )
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))

    as_json = run("service", "inspect", "shop_web")
    pretty = run("service", "inspect", "--pretty", "shop_web")

    assert daemon.requests(SERVICE_INSPECT) == [NameRef(ref="shop_web")] * 2
    document = json.loads(as_json.stdout)  # docker's shape
    assert document[0]["ID"] == web.id
    assert document[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "shop/web:1"
    lines = pretty.stdout.splitlines()
    assert lines[:5] == [
        f"ID:                     {web.id}",
        "Name:                   shop_web",
        "Labels:",
        " com.docker.stack.namespace=shop",
        " tier=front",
    ]
    for expected in (
        "Service Mode:           Replicated",
        " Replicas:              3",
        " Message:               update completed",
        " Constraints:           [node.role==worker]",
        " Image:                 shop/web:1",
        " Env:                   MODE=prod",
        " PublishedPort = 8080",
    ):
        assert expected in lines


def test_service_inspect_format_and_its_conflict_with_pretty(daemon, run) -> None:
    web = make_service()
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))

    fmt = "{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}}"
    template = run("service", "inspect", "-f", fmt, "shop_web", "shop_web")
    both = run("service", "inspect", "--pretty", "--format", "{{.ID}}", "shop_web")

    assert template.stdout == "shop_web 3\nshop_web 3\n"
    assert both.exit_code == 2
    assert both.stderr.startswith("error: --format is incompatible with human friendly format")


# --------------------------------------------------------------------------- scale and update


def test_scale_sends_a_merge_of_the_replicas_without_a_version(daemon, run) -> None:
    web = make_service()
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_SCALE, lambda request: view_of(web, []))

    result = run("service", "scale", "--detach", "shop_web=6")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_SCALE) == [ServiceScale(ref=web.id, replicas=6)]
    assert daemon.requests(SERVICE_UPDATE) == []
    assert result.stdout == "shop_web scaled to 6\n"


def test_scale_waits_until_the_new_replicas_run(daemon, run) -> None:
    web = make_service()
    scaled = msgspec.structs.replace(
        web, spec=msgspec.structs.replace(web.spec, replicas=5), spec_version=2
    )
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_SCALE, lambda request: view_of(web, []))
    # the old tasks have the same template, so they count for the scaled service too
    script(
        daemon,
        [
            (web, running(web)),
            (scaled, [*running(web), make_task(scaled, 4, state=TaskState.PENDING)]),
            (scaled, [*running(web), make_task(scaled, 4), make_task(scaled, 5)]),
        ],
    )

    result = run("service", "scale", "shop_web=5")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "shop_web scaled to 5",
        "shop_web: 3/5 running, 1 pending",
        "shop_web: 5/5 running",
        "verify: Service shop_web converged",
    ]


def test_scale_of_a_replicated_job_sends_its_completions(daemon, run) -> None:
    job = make_service("shop_migrate", mode=ServiceMode.REPLICATED_JOB)
    daemon.on(SERVICE_INSPECT, lambda request: view_of(job, []))
    daemon.on(SERVICE_SCALE, lambda request: view_of(job, []))

    result = run("service", "scale", "-d", "shop_migrate=4")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_SCALE) == [ServiceScale(ref=job.id, replicas=4)]


def test_scale_refuses_a_global_service_with_dockers_words(daemon, run) -> None:
    api = make_service("shop_api", mode=ServiceMode.GLOBAL)
    daemon.on(SERVICE_INSPECT, lambda request: view_of(api, []))

    result = run("service", "scale", "shop_api=2")

    assert result.exit_code == 1
    assert result.stderr == (
        "error: shop_api: scale can only be used with replicated or replicated-job mode\n"
    )
    assert daemon.requests(SERVICE_UPDATE) == []


def test_scale_needs_service_equals_number(daemon, run) -> None:
    result = run("service", "scale", "shop_web")

    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid scale specifier 'shop_web'\n")
    assert daemon.calls == []


def test_update_flags_edit_the_spec_read(daemon, run) -> None:
    web = make_service(env=["A=1", "B=2"], constraints=["node.role==worker"])
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))

    result = run(
        "service", "update", "--detach",
        "--image", "shop/web:2", "--force", "--replicas", "4",
        "--env-add", "A=9", "--env-add", "C=3", "--env-rm", "B",
        "--label-add", "team=shop", "--label-rm", "tier",
        "--constraint-add", "node.labels.zone==a", "--constraint-rm", "node.role==worker",
        "--update-parallelism", "2", "--update-order", "start-first",
        "--update-failure-action", "rollback",
        "shop_web",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "shop_web\n"
    (sent,) = daemon.requests(SERVICE_UPDATE)
    assert (sent.ref, sent.version) == (web.id, 10)
    spec = sent.spec
    assert spec.image == "shop/web:2"
    assert spec.replicas == 4
    assert spec.task.force_update == 1
    assert spec.task.container.env == ["A=9", "C=3"]
    assert spec.labels == {"com.docker.stack.namespace": "shop", "team": "shop"}
    assert spec.task.placement.constraints == ["node.labels.zone==a"]
    assert spec.update_config == UpdateConfig(
        parallelism=2, order=UpdateOrder.START_FIRST, failure_action=FailureAction.ROLLBACK
    )


def test_update_retries_on_a_stale_version(daemon, run) -> None:
    web = make_service()
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    answers = iter([Conflict("service changed since it was read"), None])

    def update(request: ServiceUpdate) -> ServiceView:
        answer = next(answers)
        if answer is not None:
            raise answer
        return view_of(web, [])

    daemon.on(SERVICE_UPDATE, update)

    result = run("service", "update", "-d", "--image", "shop/web:2", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert len(daemon.requests(SERVICE_INSPECT)) == 2
    assert len(daemon.requests(SERVICE_UPDATE)) == 2


def updated(web: Service, state: UpdateState, message: str = "") -> Service:
    return msgspec.structs.replace(
        web,
        spec_version=web.spec_version + 1,
        spec=msgspec.structs.replace(
            web.spec,
            task=msgspec.structs.replace(
                web.spec.task,
                container=msgspec.structs.replace(web.spec.task.container, image="shop/web:2"),
            ),
        ),
        update_status=UpdateStatus(state=state, message=message, started_at=NOW),
    )


def test_update_waits_for_the_rolling_update_to_converge(daemon, run) -> None:
    web = make_service(status=UpdateStatus(state=UpdateState.COMPLETED, started_at=NOW - 99))
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    new = updated(web, UpdateState.UPDATING)
    done = msgspec.structs.replace(new, update_status=UpdateStatus(state=UpdateState.COMPLETED))
    old = [make_task(new, slot, old=True) for slot in (1, 2, 3)]
    script(
        daemon,
        [
            (web, running(web)),  # the baseline, before the update
            (new, old),  # the old tasks run, but are not of the new spec
            (new, [make_task(new, 1), *old[1:]]),
            (done, running(new)),
        ],
    )

    result = run("service", "update", "--image", "shop/web:2", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "shop_web",
        "shop_web: updating 0/3",
        "shop_web: updating 1/3",
        "shop_web: 3/3 running",
        "verify: Service shop_web converged",
    ]
    assert daemon.requests(TASK_LS)[0] == TaskFilter(service=web.id)


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (UpdateState.PAUSED, "error: update of shop_web paused: update paused: task failed"),
        (
            UpdateState.ROLLBACK_COMPLETED,
            "error: update of shop_web failed and is rolled back: update paused: task failed",
        ),
    ],
)
def test_update_that_pauses_or_rolls_back_exits_1(daemon, run, state, words) -> None:
    web = make_service()
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    script(daemon, [(web, running(web)), (updated(web, state, "update paused: task failed"), [])])

    result = run("service", "update", "--image", "shop/web:2", "shop_web")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == words


def test_an_update_that_rolls_back_is_waited_for_until_the_rollback_completes(daemon, run) -> None:
    web = make_service()
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    started = updated(web, UpdateState.ROLLBACK_STARTED, "task failed: unhealthy container")
    done = updated(web, UpdateState.ROLLBACK_COMPLETED, "task failed: unhealthy container")
    script(daemon, [(web, running(web)), (started, running(web, 1)), (done, running(web))])

    result = run("service", "update", "--image", "shop/web:bad", "shop_web")

    assert result.exit_code == 1
    # It showed the rollback going on, and only then failed.
    assert any(line.startswith("shop_web: rolling back") for line in result.stdout.splitlines())
    assert result.stderr.splitlines()[0] == (
        "error: update of shop_web failed and is rolled back: task failed: unhealthy container"
    )


def test_a_pause_from_before_the_command_is_not_blamed_on_it(daemon, run) -> None:
    paused = UpdateStatus(state=UpdateState.PAUSED, message="old news", started_at=NOW - 99)
    web = make_service(status=paused)
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    script(daemon, [(web, running(web))])

    result = run("service", "update", "--label-add", "a=b", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "verify: Service shop_web converged"


def test_tasks_that_keep_failing_end_the_wait(daemon, run) -> None:
    web = make_service(replicas=1)
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    new = updated(web, UpdateState.UPDATING)
    old_failure = make_task(web, 1, state=TaskState.FAILED, task_id="oldfail".ljust(25, "0"))
    failures = [
        make_task(new, 1, state=TaskState.FAILED, task_id=f"fail{i}".ljust(25, "0"), err="exit 1")
        for i in range(3)
    ]
    script(
        daemon,
        [
            (web, [old_failure, make_task(web, 1)]),
            (new, [old_failure, *failures[:1]]),
            (new, [old_failure, *failures]),
        ],
    )

    result = run("service", "update", "--image", "shop/web:2", "shop_web")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: 3 tasks of shop_web failed: exit 1",
        "hint: `swarmlite service ps shop_web` shows its tasks",
    ]
    assert "shop_web: updating 0/1, 1 failed (exit 1)" in result.stdout


def test_one_failure_is_enough_without_restarts(daemon, run) -> None:
    web = make_service(replicas=1, restart=RestartCondition.NONE)
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    new = updated(web, UpdateState.UPDATING)
    script(daemon, [(web, []), (new, [make_task(new, 1, state=TaskState.FAILED, err="boom")])])

    result = run("service", "update", "--image", "shop/web:2", "shop_web")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: 1 task of shop_web failed: boom"


def test_pending_past_the_timeout_says_why(daemon, run) -> None:
    web = make_service(replicas=2)
    reason = "no suitable node (scheduling constraints not satisfied on 2 nodes)"
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    stuck = [make_task(web, slot, state=TaskState.PENDING, pending=reason) for slot in (1, 2)]
    script(daemon, [(web, stuck)])

    result = run("service", "update", "--timeout", "0.2", "--constraint-add", "x==y", "shop_web")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: services did not converge within 200ms: "
        f"shop_web: 0/2 running, 2 pending ({reason})",
        "hint: `swarmlite service ps shop_web` shows its tasks",
    ]


def test_update_quiet_prints_no_progress(daemon, run) -> None:
    web = make_service()
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_UPDATE, lambda request: view_of(web, []))
    script(daemon, [(web, running(web))])

    result = run("service", "update", "-q", "--force", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "shop_web\n"


def test_rollback_waits_for_the_rollback_to_complete(daemon, run) -> None:
    web = updated(make_service(), UpdateState.PAUSED, "update paused")
    back = msgspec.structs.replace(
        make_service(spec_version=3),
        update_status=UpdateStatus(state=UpdateState.ROLLBACK_STARTED),
    )
    finished = msgspec.structs.replace(
        back, update_status=UpdateStatus(state=UpdateState.ROLLBACK_COMPLETED)
    )
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_ROLLBACK, lambda request: view_of(web, []))
    script(daemon, [(web, []), (back, running(back, 1)), (finished, running(finished))])

    result = run("service", "rollback", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_ROLLBACK) == [NameRef(ref=web.id)]
    assert result.stdout.splitlines() == [
        "shop_web",
        "rollback: manually requested rollback",
        "shop_web: rolling back 1/3",
        "shop_web: 3/3 running",
        "verify: Service shop_web converged",
    ]


def test_rollback_that_pauses_exits_1(daemon, run) -> None:
    web = make_service()
    daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
    daemon.on(SERVICE_ROLLBACK, lambda request: view_of(web, []))
    stuck = msgspec.structs.replace(
        web, update_status=UpdateStatus(state=UpdateState.ROLLBACK_PAUSED, message="no luck")
    )
    script(daemon, [(web, running(web)), (stuck, [])])

    result = run("service", "rollback", "shop_web")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "error: rollback of shop_web paused: no luck"


def test_rm_removes_each_and_reports_every_failure(daemon, run) -> None:
    def remove(request: NameRef) -> Empty:
        if request.ref == "ghost":
            raise NotFound('service "ghost" not found')
        return Empty()

    daemon.on(SERVICE_RM, remove)

    result = run("service", "rm", "shop_web", "ghost", "shop_api")

    assert result.exit_code == 1
    assert daemon.requests(SERVICE_RM) == [
        NameRef(ref=r) for r in ("shop_web", "ghost", "shop_api")
    ]
    assert result.stdout == "shop_web\nshop_api\n"
    assert result.stderr == 'error: service "ghost" not found\n'


# --------------------------------------------------------------------------- logs


def log(task: str, line: str, *, node: str = "n1", stream: str = "stdout") -> LogLine:
    return LogLine(
        task_id=task.ljust(25, "0"),
        task_name=f"shop_web.{task[-1]}",
        node_id=node,
        stream=stream,
        timestamp=NOW + 0.5,
        line=line,
    )


@pytest.fixture
def logged(daemon: Any) -> Callable[..., None]:
    """``logged(lines, replicas=3)``: shop_web and its LogLines, the nodes n1 and n2."""

    def serve(lines: list[LogLine], replicas: int = 3) -> None:
        web = make_service(replicas=replicas)
        daemon.on(SERVICE_INSPECT, lambda request: view_of(web, []))
        daemon.on(NODE_LS, lambda request: nodes())
        daemon.on(SERVICE_LOGS, lambda request: lines)

    return serve


def test_logs_prints_lines_with_dockers_prefix(daemon, run, logged) -> None:
    logged([log("abc1", "GET / 200"), log("abc2", "oops", node="n2", stream="stderr")])

    result = run("service", "logs", "--tail", "10", "-t", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_LOGS) == [
        LogsRequest(service=WEB_ID, follow=False, tail=10, timestamps=True)
    ]
    assert result.stdout == (
        "2023-11-14T22:13:20.500000000Z shop_web.1.abc100000000@node-1    | GET / 200\n"
    )
    assert result.stderr == (
        "2023-11-14T22:13:20.500000000Z shop_web.2.abc200000000@node-2    | oops\n"
    )


def test_logs_follow_since_and_padding(daemon, run, logged) -> None:
    logged([log("abc1", "hello")], replicas=10)

    result = run("service", "logs", "-f", "--since", "2023-11-14T22:13:20Z", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_LOGS) == [
        LogsRequest(service=WEB_ID, follow=True, tail=-1, since=NOW)
    ]
    # up to 10 replicas: slot 1's node padded by one blank, as docker lines the bars up
    assert result.stdout == "shop_web.1.abc100000000@node-1     | hello\n"


def test_logs_since_a_relative_duration(daemon, run, logged, monkeypatch) -> None:
    logged([])
    monkeypatch.setattr("time.time", lambda: NOW)

    result = run("service", "logs", "--since", "10m", "shop_web")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_LOGS)[0].since == NOW - 600


def test_logs_raw_details_no_resolve_no_task_ids(daemon, run, logged) -> None:
    logged([log("abc1", "hello")])

    raw = run("service", "logs", "--raw", "shop_web")
    details = run("service", "logs", "--raw", "--details", "shop_web")
    ids = run("service", "logs", "--no-resolve", "--no-trunc", "shop_web")
    bare = run("service", "logs", "--no-task-ids", "--details", "shop_web")

    assert raw.stdout == "hello\n"
    task = "abc1".ljust(25, "0")
    swarm = f"com.docker.swarm.node.id=n1,com.docker.swarm.service.id={WEB_ID},"
    assert details.stdout == f"{swarm}com.docker.swarm.task.id={task} hello\n"
    assert ids.stdout == f"{WEB_ID}.1.{task}@n1    | hello\n"
    assert bare.stdout == f"shop_web.1@node-1    | {swarm}com.docker.swarm.task.id={task} hello\n"


def test_logs_refuses_a_bad_since_or_tail(daemon, run) -> None:
    since = run("service", "logs", "--since", "yesterday", "shop_web")
    tail = run("service", "logs", "--tail", "ten", "shop_web")

    assert since.exit_code == tail.exit_code == 2
    assert "failed to parse value as time or duration: 'yesterday'" in since.stderr
    assert tail.stderr.startswith("error: --tail ten: expected a number of lines or 'all'")
    assert daemon.calls == []


def test_logs_of_an_unknown_service_shows_the_servers_error(daemon, run) -> None:
    def inspect(request: NameRef) -> ServiceView:
        raise NotFound(f'service "{request.ref}" not found')

    daemon.on(SERVICE_INSPECT, inspect)

    result = run("service", "logs", "ghost")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == 'error: service "ghost" not found'
