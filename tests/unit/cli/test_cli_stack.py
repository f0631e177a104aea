"""`swarmlite stack ...` against a fake daemon and real compose files: what each command
sends and prints, deploys that wait (converged, rolled back, stuck), depends_on waves, compose
errors with file:line, and `stack config` offline."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from swarmlite.api import (
    STACK_LABEL,
    ContainerSpec,
    Service,
    ServiceMode,
    ServiceSpec,
    Task,
    TaskState,
    TaskStatus,
    TaskTemplate,
    UpdateState,
    UpdateStatus,
)
from swarmlite.api.control import (
    Empty,
    NameRef,
    NodeList,
    ServiceFilter,
    ServiceList,
    ServiceView,
    StackDeploy,
    StackDeployReply,
    StackInfo,
    StackList,
    TaskFilter,
    TaskList,
)
from swarmlite.api.routes import NODE_LS, SERVICE_LS, STACK_DEPLOY, STACK_LS, STACK_RM, TASK_LS
from swarmlite.cli import converge
from swarmlite.errors import NotFound


@pytest.fixture
def daemon(daemon: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The conftest's fake daemon; waits poll at once."""
    monkeypatch.setattr(converge, "POLL_SECONDS", 0.0)
    return daemon


@pytest.fixture
def compose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``compose(text, name="compose.yml")`` writes a compose file in the working directory."""
    monkeypatch.chdir(tmp_path)

    def write(text: str, name: str = "compose.yml") -> str:
        (tmp_path / name).write_text(textwrap.dedent(text))
        return name

    return write


class FakeCluster:
    """Services deployed through STACK_DEPLOY come up one poll at a time: their tasks are
    pending at the first poll after the deploy, running at the next (``starting`` when the
    service has a healthcheck), healthy at the one after; a job's tasks complete then."""

    def __init__(self, daemon: Any, *, existing: tuple[Service, ...] = ()) -> None:
        self.polls = 0
        self.deploys: list[StackDeploy] = []
        self.services: dict[str, tuple[Service, int]] = {s.spec.name: (s, -10) for s in existing}
        self.after_deploy: UpdateStatus | None = None  # status of every updated service
        self.fail_jobs = False
        self.seen_at_deploy: list[dict[str, str]] = []  # state of each service, per deploy
        daemon.on(STACK_DEPLOY, self.deploy)
        daemon.on(SERVICE_LS, self.service_ls)
        daemon.on(TASK_LS, lambda request: TaskList(tasks=self.tasks()))

    def deploy(self, request: StackDeploy) -> StackDeployReply:
        self.deploys.append(request)
        self.seen_at_deploy.append({name: self.state(name) for name in self.services})
        created, updated, unchanged = [], [], []
        for spec in request.services:
            old = self.services.get(spec.name)
            if old is not None and old[0].spec == spec:
                unchanged.append(spec.name)
                continue
            service = Service(
                id=spec.name.ljust(25, "0"),
                spec=spec,
                spec_version=old[0].spec_version + 1 if old else 1,
                update_status=self.after_deploy if old else None,
            )
            self.services[spec.name] = (service, self.polls)
            (updated if old else created).append(spec.name)
        return StackDeployReply(created=created, updated=updated, unchanged=unchanged)

    def age(self, name: str) -> int:
        return self.polls - self.services[name][1]

    def state(self, name: str) -> str:
        service, _ = self.services[name]
        age = self.age(name)
        if age <= 1:
            return "pending"
        if service.spec.mode.is_job:
            return "failed" if self.fail_jobs else "complete"
        healthcheck = service.spec.task.container.healthcheck is not None
        return "starting" if healthcheck and age == 2 else "healthy" if healthcheck else "running"

    def tasks(self) -> list[Task]:
        tasks = []
        for name, (service, _) in self.services.items():
            state = self.state(name)
            count = (
                service.spec.job.total_completions
                if service.spec.mode.is_job
                else service.spec.replicas
            )
            for slot in range(1, count + 1):
                tasks.append(
                    Task(
                        id=f"{name}{slot}".ljust(25, "0"),
                        service_id=service.id,
                        service_name=name,
                        slot=slot,
                        spec=service.spec.task,
                        spec_version=service.spec_version,
                        status=TaskStatus(
                            state={
                                "pending": TaskState.PENDING,
                                "complete": TaskState.COMPLETE,
                                "failed": TaskState.FAILED,
                            }.get(state, TaskState.RUNNING),
                            health=state if state in ("starting", "healthy") else "",
                            err="exit 3" if state == "failed" else "",
                        ),
                    )
                )
        return tasks

    def service_ls(self, request: ServiceFilter) -> ServiceList:
        self.polls += 1
        views = []
        for name, (service, _) in self.services.items():
            if service.spec.mode.is_job:
                desired = (
                    0 if self.state(name) == "complete" else service.spec.job.total_completions
                )
            else:
                desired = service.spec.replicas
            views.append(ServiceView(service=service, running=0, desired=desired))
        return ServiceList(services=views)


SHOP = """\
    services:
      db:
        image: postgres:16
        healthcheck:
          test: ["CMD", "pg_isready"]
      api:
        image: shop/api:1
        depends_on:
          db:
            condition: service_healthy
      web:
        image: shop/web:1
        depends_on: [api]
        deploy:
          replicas: 2
"""


# --------------------------------------------------------------------------- deploy


def test_deploy_sends_the_stack_and_waits_until_it_converges(daemon, run, compose) -> None:
    cluster = FakeCluster(daemon)
    path = compose(
        """\
        services:
          web:
            image: shop/web:1
            ports: ["8080:80"]
            deploy:
              replicas: 2
        """
    )

    result = run("stack", "deploy", "-c", path, "shop")

    assert result.exit_code == 0, result.stderr
    (request,) = cluster.deploys
    assert request.name == "shop" and not request.prune
    assert [spec.name for spec in request.services] == ["shop_web"]
    assert request.services[0].labels[STACK_LABEL] == "shop"
    assert result.stdout.splitlines() == [
        "Creating service shop_web",
        "shop_web: 0/2 running, 2 pending",
        "shop_web: 2/2 running",
        "verify: Stack shop converged",
    ]
    assert daemon.requests(TASK_LS)[0] == TaskFilter(stack="shop")
    assert daemon.requests(SERVICE_LS)[0] == ServiceFilter(stack="shop")


def test_deploy_honours_depends_on_in_waves(daemon, run, compose) -> None:
    cluster = FakeCluster(daemon)
    path = compose(SHOP)

    result = run("stack", "deploy", "--prune", "-c", path, "shop")

    assert result.exit_code == 0, result.stderr
    sent = [[spec.name for spec in request.services] for request in cluster.deploys]
    assert sent == [["shop_db"], ["shop_api", "shop_db"], ["shop_api", "shop_db", "shop_web"]]
    # only the last call, which names every service, may prune
    assert [request.prune for request in cluster.deploys] == [False, False, True]
    # api went out once db was healthy, web once api ran
    assert cluster.seen_at_deploy[1]["shop_db"] == "healthy"
    assert cluster.seen_at_deploy[2]["shop_api"] == "running"
    lines = result.stdout.splitlines()
    assert lines.index("Creating service shop_db") < lines.index("shop_db: 1/1 running")
    assert lines.index("shop_db: 1/1 running") < lines.index("Creating service shop_api")
    assert lines.index("shop_api: 1/1 running") < lines.index("Creating service shop_web")
    assert lines[-1] == "verify: Stack shop converged"


def test_deploy_with_registry_auth_sends_each_service_its_registry_s_credentials(
    daemon, run, compose, tmp_path
) -> None:
    """Read from DOCKER_CONFIG, per service by its image's registry, in every wave only for
    the services that wave sends; a registry the config has nothing for is said once."""
    import base64
    import json

    from swarmlite.api.registryauth import RegistryAuth

    cluster = FakeCluster(daemon)
    path = compose(
        SHOP.replace("shop/api:1", "reg:5000/api:1").replace("shop/web:1", "reg:5000/web:1")
    )
    basic = base64.b64encode(b"ci:pw").decode()
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text(
        json.dumps({"auths": {"reg:5000": {"auth": basic}}})
    )
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}

    result = run("stack", "deploy", "--with-registry-auth", "-c", path, "shop", env=env)

    assert result.exit_code == 0, result.stderr
    login = RegistryAuth(server="reg:5000", username="ci", password="pw")
    assert [request.registry_auth for request in cluster.deploys] == [
        {},
        {"shop_api": login},
        {"shop_api": login, "shop_web": login},
    ]
    warning = "warning: no credentials for registry https://index.docker.io/v1/ in "
    assert result.stderr.count(warning) == 1
    assert "pw" not in result.stdout

    result = run("stack", "deploy", "-c", path, "shop", env=env)  # without: none sent
    assert all(request.registry_auth == {} for request in cluster.deploys[3:])


def test_deploy_waits_for_a_job_to_complete_before_its_dependents(daemon, run, compose) -> None:
    cluster = FakeCluster(daemon)
    path = compose(
        """\
        services:
          migrate:
            image: shop/migrate:1
            deploy:
              mode: replicated-job
          api:
            image: shop/api:1
            depends_on:
              migrate:
                condition: service_completed_successfully
        """
    )

    result = run("stack", "deploy", "-c", path, "shop")

    assert result.exit_code == 0, result.stderr
    assert [len(request.services) for request in cluster.deploys] == [1, 2]
    assert cluster.services["shop_migrate"][0].spec.mode is ServiceMode.REPLICATED_JOB
    assert cluster.seen_at_deploy[1]["shop_migrate"] == "complete"
    assert "shop_migrate: 1/1 completed" in result.stdout.splitlines()


def test_a_failed_job_stops_the_deploy_of_its_dependents(daemon, run, compose) -> None:
    cluster = FakeCluster(daemon)
    cluster.fail_jobs = True
    path = compose(
        """\
        services:
          migrate:
            image: shop/migrate:1
            deploy:
              mode: replicated-job
              restart_policy:
                condition: on-failure
          api:
            image: shop/api:1
            depends_on:
              migrate:
                condition: service_completed_successfully
        """
    )

    result = run("stack", "deploy", "--timeout", "10", "-c", path, "shop")

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "error: shop_migrate did not complete successfully: exit 3"
    )
    assert len(cluster.deploys) == 1  # api was never sent


def test_detach_deploys_everything_at_once_and_says_ordering_needs_waiting(
    daemon, run, compose
) -> None:
    cluster = FakeCluster(daemon)
    path = compose(SHOP)

    result = run("stack", "deploy", "-d", "-c", path, "shop")

    assert result.exit_code == 0, result.stderr
    (request,) = cluster.deploys
    assert len(request.services) == 3
    assert result.stderr == (
        "warning: depends_on orders a deploy only when it waits; with --detach every "
        "service is deployed at once\n"
    )
    assert result.stdout.splitlines() == [
        "Creating service shop_api",
        "Creating service shop_db",
        "Creating service shop_web",
    ]
    assert daemon.requests(TASK_LS) == []


def test_deploy_reads_the_compose_file_from_stdin(daemon, run) -> None:
    cluster = FakeCluster(daemon)

    result = run("stack", "deploy", "-d", "-c", "-", "shop", input=SHOP.encode())

    assert result.exit_code == 0, result.stderr
    (request,) = cluster.deploys
    assert sorted(s.name for s in request.services) == ["shop_api", "shop_db", "shop_web"]


def test_a_broken_file_on_stdin_is_named_dash_and_nothing_is_sent(daemon, run) -> None:
    result = run("stack", "deploy", "-c", "-", "shop", input=b"services:\n  web: [\n")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: -:3:1: invalid YAML")
    assert daemon.calls == []


def web_service(image: str, status: UpdateStatus | None = None) -> Service:
    spec = ServiceSpec(
        name="shop_web",
        labels={STACK_LABEL: "shop"},
        task=TaskTemplate(container=ContainerSpec(image=image)),
    )
    return Service(id="shop_web".ljust(25, "0"), spec=spec, update_status=status)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (UpdateState.PAUSED, "error: update of shop_web paused"),
        (UpdateState.ROLLBACK_COMPLETED, "error: update of shop_web failed and is rolled back"),
    ],
)
def test_deploy_exits_1_when_its_update_rolls_back_or_pauses(
    daemon, run, compose, state, expected
) -> None:
    cluster = FakeCluster(daemon, existing=(web_service("shop/web:1"),))
    cluster.after_deploy = UpdateStatus(state=state)
    path = compose("services:\n  web:\n    image: shop/web:2\n")

    result = run("stack", "deploy", "-c", path, "shop")

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "Updating service shop_web"
    assert result.stderr.splitlines()[0] == expected


def test_deploy_that_stays_pending_times_out_with_the_reason(daemon, run, compose) -> None:
    never = "no suitable node (1 node out of memory)"

    def stuck(request: TaskFilter) -> TaskList:
        if not cluster.deploys:  # the baseline, before the deploy
            return TaskList()
        service = cluster.services["shop_web"][0]
        task = Task(
            id="t".ljust(25, "0"),
            service_id=service.id,
            service_name="shop_web",
            slot=1,
            spec=service.spec.task,
            spec_version=1,
            status=TaskStatus(state=TaskState.PENDING, pending_reason=never),
        )
        return TaskList(tasks=[task])

    cluster = FakeCluster(daemon)
    daemon.on(TASK_LS, stuck)
    path = compose("services:\n  web:\n    image: shop/web:1\n")

    result = run("stack", "deploy", "--timeout", "0.1", "-c", path, "shop")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: services did not converge within 100ms: "
        f"shop_web: 0/1 running, 1 pending ({never})",
        "hint: the cluster keeps trying; `swarmlite stack ps shop` shows the tasks",
    ]


def test_compose_error_shows_file_line_and_column_and_sends_nothing(daemon, run, compose) -> None:
    path = compose(
        """\
        services:
          web:
            image: shop/web:1
            deploy:
              replicas: three
        """
    )

    result = run("stack", "deploy", "-c", path, "shop")

    assert result.exit_code == 1
    assert result.stderr == (
        'error: compose.yml:5:17: services.web.deploy.replicas must be an integer, got "three"\n'
    )
    assert daemon.calls == []


def test_compose_warnings_go_to_stderr_and_the_deploy_goes_on(daemon, run, compose) -> None:
    cluster = FakeCluster(daemon)
    path = compose("services:\n  web:\n    image: shop/web:1\n    build: .\n")

    result = run("stack", "deploy", "-d", "-c", path, "shop")

    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: compose.yml:4: services.web.build: ignored")
    assert len(cluster.deploys) == 1


# --------------------------------------------------------------------------- config


def test_config_prints_the_merged_stack_without_a_daemon(daemon, run, compose) -> None:
    base = compose("services:\n  web:\n    image: shop/web:1\n")
    override = compose("services:\n  web:\n    image: shop/web:2\n", "override.yml")

    result = run(
        "stack",
        "config",
        "-c",
        base,
        "-c",
        override,
        env={"SWARMLITE_HOST": "unix:///nowhere.sock"},
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "services:\n  web:\n    image: shop/web:2\n"
    assert daemon.calls == []


@pytest.mark.parametrize("command", ["config", "deploy"])
def test_config_and_deploy_say_where_docker_socket_binds_get_swarmlite_s(
    daemon, run, compose, command
) -> None:
    cluster = FakeCluster(daemon)
    path = compose(
        "services:\n  viz:\n    image: viz:1\n    volumes:\n"
        "      - /var/run/docker.sock:/var/run/docker.sock\n"
    )
    args = ("-d", "-c", path, "tools") if command == "deploy" else ("-c", path)

    result = run("stack", command, *args)

    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "warning: compose.yml:5: services.viz.volumes[0]: /var/run/docker.sock is given "
        "swarmlite's Docker API socket (the cluster's services and this node's containers); "
        "label com.swarmlite.docker-socket=runtime keeps the runtime's"
    )
    mounts = [s.task.container.mounts for d in cluster.deploys for s in d.services]
    assert [[m.source for m in ms] for ms in mounts] == (
        [["/var/run/docker.sock"]] if command == "deploy" else []
    )


def test_config_error_exits_1(run, compose) -> None:
    path = compose("services:\n  web:\n    image: [1, 2\n")

    result = run("stack", "config", "-c", path)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: compose.yml:")


# --------------------------------------------------------------------------- listings


def test_stack_ls_table_and_json(daemon, run) -> None:
    stacks = [StackInfo(name="shop", services=3), StackInfo(name="blog", services=1)]
    daemon.on(STACK_LS, lambda request: StackList(stacks=stacks))

    table = run("stack", "ls")
    as_json = run("stack", "ls", "--format", "json")
    names = run("stack", "ls", "--format", "{{.Name}}: {{.Services}}")

    assert table.stdout.splitlines() == ["NAME   SERVICES", "blog   1", "shop   3"]
    assert as_json.stdout.splitlines() == [
        '{"Name":"blog","Services":"1"}',
        '{"Name":"shop","Services":"3"}',
    ]
    assert names.stdout == "blog: 1\nshop: 3\n"


def test_stack_services_and_ps(daemon, run) -> None:
    cluster = FakeCluster(daemon, existing=(web_service("shop/web:1"),))
    daemon.on(NODE_LS, lambda request: NodeList(nodes=[]))

    services = run("stack", "services", "shop")
    quiet = run("stack", "services", "-q", "shop")
    ps = run("stack", "ps", "shop")

    assert services.exit_code == 0, services.stderr
    assert services.stdout.splitlines() == [
        "ID             NAME       MODE         REPLICAS   IMAGE        PORTS",
        "shop_web0000   shop_web   replicated   0/1        shop/web:1",
    ]
    assert quiet.stdout == "shop_web0000\n"
    assert ps.exit_code == 0, ps.stderr
    assert ps.stdout.splitlines()[1].split()[:3] == ["shop_web1000", "shop_web.1", "shop/web:1"]
    assert daemon.requests(TASK_LS) == [TaskFilter(stack="shop")]
    assert cluster.deploys == []


def test_stack_services_and_ps_send_filters_and_take_formats(daemon, run) -> None:
    FakeCluster(daemon, existing=(web_service("shop/web:1"),))
    daemon.on(NODE_LS, lambda request: NodeList(nodes=[]))

    services = run("stack", "services", "-f", "mode=replicated", "--format", "{{.Name}}", "shop")
    ps = run("stack", "ps", "--filter", "desired-state=running", "-q", "--no-trunc", "shop")
    names = run("stack", "ps", "--no-resolve", "--format", "{{.Name}} {{.Node}}", "shop")

    assert services.exit_code == 0, services.stderr
    assert services.stdout == "shop_web\n"
    assert daemon.requests(SERVICE_LS)[0] == ServiceFilter(
        stack="shop", filters={"mode": ["replicated"]}
    )
    assert ps.exit_code == 0, ps.stderr
    assert ps.stdout == "shop_web" + "1".ljust(17, "0") + "\n"
    assert daemon.requests(TASK_LS)[0] == TaskFilter(
        stack="shop", filters={"desired-state": ["running"]}
    )
    assert names.exit_code == 0, names.stderr
    assert names.stdout == "shop_web".ljust(25, "0") + ".1 \n"  # ids; the task has no node


def test_stack_ps_and_services_of_an_empty_stack(daemon, run) -> None:
    FakeCluster(daemon)

    ps = run("stack", "ps", "ghost")
    services = run("stack", "services", "ghost")

    assert ps.exit_code == 1
    assert ps.stderr.splitlines()[0] == "error: nothing found in stack: ghost"
    assert services.exit_code == 0
    assert services.stderr == "Nothing found in stack: ghost\n"


def test_stack_rm_names_the_services_it_removes(daemon, run) -> None:
    FakeCluster(daemon, existing=(web_service("shop/web:1"),))
    daemon.on(STACK_RM, lambda request: Empty())

    result = run("stack", "rm", "shop")

    assert result.exit_code == 0, result.stderr
    assert daemon.requests(SERVICE_LS) == [ServiceFilter(stack="shop")]
    assert daemon.requests(STACK_RM) == [NameRef(ref="shop")]
    assert result.stdout == "Removing service shop_web\n"


def test_stack_rm_of_an_unknown_stack_says_nothing_was_found(daemon, run) -> None:
    FakeCluster(daemon)

    def remove(request: NameRef) -> Empty:
        raise NotFound(f'stack "{request.ref}" not found')

    daemon.on(STACK_RM, remove)

    result = run("stack", "rm", "ghost")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "Nothing found in stack: ghost\n"
