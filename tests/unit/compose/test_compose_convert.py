"""A loaded stack to the API's StackDeploy: names, labels, and each key's mapping."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from swarmlite.api.control import StackDeploy
from swarmlite.api.service import (
    STACK_LABEL,
    FailureAction,
    FileRef,
    HealthCheck,
    Mount,
    NetworkAttachment,
    PortConfig,
    Resources,
    RestartCondition,
    ServiceMode,
    Ulimit,
    UpdateOrder,
)
from swarmlite.compose import LoadedStack, load_stack, to_stack_deploy
from swarmlite.errors import ComposeError

COMPOSE = """\
services:
  web:
    image: shop/web:1
    command: ["serve", "--port", "80"]
    entrypoint: /bin/entry --flag
    environment: {B: "2", A: "1"}
    labels: {container: "yes"}
    working_dir: /app
    user: "1000:1000"
    hostname: web-host
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    init: true
    read_only: true
    tmpfs: /run
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 64}
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    sysctls: [net.core.somaxconn=1024]
    healthcheck:
      test: curl -f http://localhost/
      interval: 10s
      timeout: 500ms
      retries: 3
      start_period: 1m
      start_interval: 2s
    ports:
      - "8080:80"
      - "127.0.0.1:5353:53/udp"
      - target: 443
        published: 8443
        mode: host
    volumes:
      - data:/var/lib/x
      - ./conf:/etc/conf:ro
      - type: tmpfs
        target: /cache
        tmpfs: {size: 64M}
      - /anonymous
    secrets:
      - db_pw
      - {source: api_key, target: /etc/key, uid: "10", gid: "20", mode: 0400}
    configs: [site]
    networks:
      front: {aliases: [www]}
      outside:
    depends_on:
      db: {condition: service_healthy}
    deploy:
      mode: replicated
      replicas: 3
      labels: {team: shop}
      placement:
        constraints: [node.role==worker, node.labels.zone != b]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 512M, pids: 100}
        reservations: {cpus: 0.25, memory: 1g}
      restart_policy: {condition: on-failure, delay: 10s, max_attempts: 3, window: 2m}
      update_config:
        parallelism: 2
        delay: 5s
        order: start-first
        failure_action: rollback
        monitor: 30s
        max_failure_ratio: 0.25
      rollback_config: {parallelism: 0, failure_action: continue}
  db:
    image: postgres
    healthcheck: {disable: true}
  once:
    image: migrate
    deploy: {mode: replicated-job, replicas: 4}
  agent:
    image: agent
    deploy: {mode: global-job}
volumes:
  data: {labels: {kept: "true"}}
secrets:
  db_pw: {file: ./pw.txt}
  api_key: {external: true}
configs:
  site: {file: ./site.conf, name: site-v1}
networks:
  front: {}
  outside: {external: true, name: host-net}
"""


def load(tmp_path: Path) -> tuple[LoadedStack, StackDeploy]:
    (tmp_path / "compose.yml").write_text(dedent(COMPOSE))
    (tmp_path / "pw.txt").write_text("s3cret")
    (tmp_path / "site.conf").write_text("listen 80;")
    stack = load_stack([tmp_path / "compose.yml"], env={})
    return stack, to_stack_deploy(stack, "shop")


def test_names_and_stack_labels(tmp_path: Path) -> None:
    _, deployed = load(tmp_path)
    assert deployed.name == "shop"
    services = {s.name: s for s in deployed.services}
    assert set(services) == {"shop_web", "shop_db", "shop_once", "shop_agent"}
    assert services["shop_web"].labels == {"team": "shop", STACK_LABEL: "shop"}
    assert services["shop_web"].task.container.labels == {"container": "yes", STACK_LABEL: "shop"}
    networks = {n.spec.name: n.spec for n in deployed.networks}
    # front is created; outside is external (referenced, not created); default is used by db.
    assert set(networks) == {"shop_front", "shop_default"}
    assert all(n.labels[STACK_LABEL] == "shop" and n.driver == "overlay" for n in networks.values())
    secrets = deployed.secrets
    assert [(s.spec.name, s.spec.data, s.spec.labels) for s in secrets] == [
        ("shop_db_pw", b"s3cret", {STACK_LABEL: "shop"})
    ]
    configs = deployed.configs
    assert [(c.spec.name, c.spec.data) for c in configs] == [("site-v1", b"listen 80;")]


def test_container_spec(tmp_path: Path) -> None:
    _, deployed = load(tmp_path)
    web = next(s for s in deployed.services if s.name == "shop_web")
    c = web.task.container
    assert c.image == "shop/web:1"
    assert c.command == ["serve", "--port", "80"]
    assert c.entrypoint == ["/bin/entry", "--flag"]
    assert c.env == ["A=1", "B=2"]
    assert (c.working_dir, c.user, c.hostname, c.stop_signal) == (
        "/app",
        "1000:1000",
        "web-host",
        "SIGINT",
    )
    assert c.stop_grace_period == 90.0
    assert c.init is True and c.read_only is True
    assert c.cap_add == ["NET_ADMIN"] and c.cap_drop == ["ALL"]
    assert c.sysctls == {"net.core.somaxconn": "1024"}
    assert c.ulimits == [
        Ulimit(name="nofile", soft=1024, hard=2048),
        Ulimit(name="nproc", soft=64, hard=64),
    ]
    assert c.healthcheck == HealthCheck(
        test=["CMD-SHELL", "curl -f http://localhost/"],
        interval=10.0,
        timeout=0.5,
        retries=3,
        start_period=60.0,
        start_interval=2.0,
    )
    assert c.mounts == [
        Mount(
            type="volume",
            source="shop_data",
            target="/var/lib/x",
            volume_labels={"kept": "true", STACK_LABEL: "shop"},
        ),
        Mount(type="bind", source=str(tmp_path / "conf"), target="/etc/conf", read_only=True),
        Mount(type="tmpfs", target="/cache", tmpfs_size=64 * 2**20),
        Mount(type="volume", target="/anonymous"),
        Mount(type="tmpfs", target="/run"),
    ]
    assert c.secrets == [
        FileRef(name="shop_db_pw", target="db_pw"),
        FileRef(name="api_key", target="/etc/key", uid="10", gid="20", mode=0o400),
    ]
    assert c.configs == [FileRef(name="site-v1", target="/site")]


def test_task_template_and_service_settings(tmp_path: Path) -> None:
    _, deployed = load(tmp_path)
    services = {s.name: s for s in deployed.services}
    web = services["shop_web"]
    assert web.mode is ServiceMode.REPLICATED and web.replicas == 3
    assert web.task.placement.constraints == ["node.role==worker", "node.labels.zone!=b"]
    assert web.task.placement.preferences == ["node.labels.zone"]
    assert web.task.placement.max_replicas_per_node == 2
    assert web.task.resources.limits == Resources(
        nano_cpus=500_000_000, memory_bytes=512 * 2**20, pids=100
    )
    assert web.task.resources.reservations == Resources(nano_cpus=250_000_000, memory_bytes=2**30)
    policy = web.task.restart_policy
    assert (policy.condition, policy.delay, policy.max_attempts, policy.window) == (
        RestartCondition.ON_FAILURE,
        10.0,
        3,
        120.0,
    )
    update = web.update_config
    assert update is not None
    assert (update.parallelism, update.delay, update.order, update.failure_action) == (
        2,
        5.0,
        UpdateOrder.START_FIRST,
        FailureAction.ROLLBACK,
    )
    assert (update.monitor, update.max_failure_ratio) == (30.0, 0.25)
    assert web.rollback_config is not None and web.rollback_config.parallelism == 0
    assert web.endpoint.mode == "vip"
    assert web.endpoint.ports == [
        PortConfig(target=80, published=8080),
        PortConfig(target=53, published=5353, protocol="udp"),
        PortConfig(target=443, published=8443, mode="host"),
    ]
    assert web.task.networks == [
        NetworkAttachment(target="shop_front", aliases=["www", "web"]),
        NetworkAttachment(target="host-net", aliases=["web"]),
    ]
    assert services["shop_db"].task.container.healthcheck == HealthCheck(
        test=["NONE"], disable=True
    )
    assert services["shop_db"].task.networks == [
        NetworkAttachment(target="shop_default", aliases=["db"])
    ]
    once = services["shop_once"]
    assert once.mode is ServiceMode.REPLICATED_JOB
    assert (once.job.total_completions, once.job.max_concurrent) == (4, 4)
    assert services["shop_agent"].mode is ServiceMode.GLOBAL_JOB


def test_dependencies_and_warnings(tmp_path: Path) -> None:
    stack, _ = load(tmp_path)
    assert stack.dependencies() == {
        "agent": {},
        "db": {},
        "once": {},
        "web": {"db": "service_healthy"},
    }
    warned = {w.key for w in stack.warnings}
    assert "services.web.ports[1]" in warned  # the host IP 127.0.0.1 is not honoured


def test_defaults_when_deploy_says_nothing(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: nginx\n")
    deployed = to_stack_deploy(load_stack([tmp_path / "compose.yml"], env={}), "s")
    (web,) = deployed.services
    assert web.mode is ServiceMode.REPLICATED and web.replicas == 1
    assert web.update_config is None and web.task.container.stop_grace_period == 10.0
    assert web.task.restart_policy.condition is RestartCondition.ANY
    assert [n.spec.name for n in deployed.networks] == ["s_default"]


def test_x_autoscale_becomes_the_autoscale_labels(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "services:\n  app:\n    image: app\n    deploy:\n"
        "      labels: {team: a}\n"
        "      x-autoscale: {min: 2, max: 6, cpu: 70, rps: 50, cooldown: 1m}\n"
    )
    deployed = to_stack_deploy(load_stack([tmp_path / "compose.yml"], env={}), "s")
    assert deployed.services[0].labels == {
        "team": "a",
        "swarmlite.autoscale.min": "2",
        "swarmlite.autoscale.max": "6",
        "swarmlite.autoscale.cpu": "70",
        "swarmlite.autoscale.rps": "50",
        "swarmlite.autoscale.cooldown": "1m",
        STACK_LABEL: "s",
    }


def test_a_wrong_x_autoscale_is_refused_where_it_is(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        "services:\n  app:\n    image: app\n    deploy:\n"
        "      x-autoscale:\n        max: 4\n        rps: 50\n        speed: 9\n"
    )
    with pytest.raises(ComposeError) as caught:
        load_stack([tmp_path / "compose.yml"], env={})
    assert "services.app.deploy.x-autoscale.speed is not a known key" in str(caught.value)
    assert caught.value.line == 8
    (tmp_path / "compose.yml").write_text(
        "services:\n  app:\n    image: app\n    deploy:\n      x-autoscale: {max: 4}\n"
    )
    with pytest.raises(ComposeError, match="autoscaling needs a target"):
        load_stack([tmp_path / "compose.yml"], env={})
