"""Every refusal says where (file:line:column), what key, and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path
from textwrap import dedent

import pytest

from swarmlite.compose import load_stack
from swarmlite.errors import ComposeError


def error_of(tmp_path: Path, text: str) -> str:
    """The message of loading ``text`` as compose.yml, with the file named as a user would."""
    (tmp_path / "compose.yml").write_text(dedent(text))
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ComposeError) as error:
            load_stack([Path("compose.yml")], env={})
    finally:
        os.chdir(cwd)
    return str(error.value)


CASES = {
    "replicas not an integer": (
        """\
        services:
          web:
            image: nginx
            deploy:
              replicas: three
        """,
        'compose.yml:5:17: services.web.deploy.replicas must be an integer, got "three"',
    ),
    "negative replicas": (
        "services:\n  web:\n    image: nginx\n    deploy: {replicas: -1}\n",
        "compose.yml:4:24: services.web.deploy.replicas must be at least 0, got -1",
    ),
    "duplicate key": (
        "services:\n  web:\n    image: a\n    image: b\n",
        "compose.yml:4:5: duplicate key 'image' (first at line 3)",
    ),
    "unknown service key": (
        "services:\n  web:\n    image: a\n    imgae: b\n",
        "compose.yml:4:5: services.web.imgae is not a known service key",
    ),
    "unknown deploy key": (
        "services:\n  web:\n    image: a\n    deploy:\n      replica: 2\n",
        "compose.yml:5:7: services.web.deploy.replica is not a known key (allowed here:",
    ),
    "unknown top-level key": (
        "service:\n  web: {image: a}\n",
        "compose.yml:1:1: service is not a known top-level key",
    ),
    "empty file": ("", "compose.yml: empty compose file"),
    "top level not a mapping": ("- a\n- b\n", "compose.yml:1:1: the top level of a compose file"),
    "invalid YAML": ("services:\n  web: [a\n", "compose.yml:3:1: invalid YAML"),
    "unknown tag": (
        "services:\n  web: !frob {image: a}\n",
        "compose.yml:2:8: unknown YAML tag !frob",
    ),
    "port out of range": (
        "services:\n  web:\n    image: a\n    ports: ['70000:80']\n",
        "compose.yml:4:13: services.web.ports[0]: port 70000 is out of range (1-65535)",
    ),
    "long port out of range": (
        "services:\n  web:\n    image: a\n    ports: [{target: 0}]\n",
        "compose.yml:4:22: services.web.ports[0].target: port 0 is out of range (1-65535)",
    ),
    "port mode": (
        "services:\n  web:\n    image: a\n    ports: [{target: 80, mode: bridge}]\n",
        'services.web.ports[0].mode must be one of "ingress", "host", got "bridge"',
    ),
    "bad constraint": (
        """\
        services:
          web:
            image: a
            deploy:
              placement:
                constraints: ["node.zone == b"]
        """,
        "compose.yml:6:23: services.web.deploy.placement.constraints[0]: bad constraint "
        "'node.zone == b': it must be node.id|node.hostname|node.role",
    ),
    "constraint without operator": (
        "services:\n  web:\n    image: a\n    deploy:\n"
        "      placement: {constraints: [node.role manager]}\n",
        "compose.yml:5:33: services.web.deploy.placement.constraints[0]: bad constraint",
    ),
    "job with update_config": (
        """\
        services:
          once:
            image: a
            deploy:
              mode: replicated-job
              update_config: {parallelism: 2}
        """,
        "compose.yml:6:22: services.once.deploy.update_config cannot be set for a job",
    ),
    "dnsrr with ingress ports": (
        """\
        services:
          web:
            image: a
            ports: ["80:80"]
            deploy: {endpoint_mode: dnsrr}
        """,
        "compose.yml:5:29: services.web.deploy.endpoint_mode dnsrr cannot be used with "
        "ingress-published ports",
    ),
    "global with replicas": (
        "services:\n  web:\n    image: a\n    deploy: {mode: global, replicas: 2}\n",
        "services.web.deploy.replicas cannot be set with mode global",
    ),
    "bad mode": (
        "services:\n  web:\n    image: a\n    deploy: {mode: replicatd}\n",
        'compose.yml:4:20: services.web.deploy.mode must be one of "replicated", "global", '
        '"replicated-job", "global-job", got "replicatd"',
    ),
    "undefined secret": (
        "services:\n  web:\n    image: a\n    secrets: [db_pw]\n",
        "compose.yml:4:15: services.web.secrets refers to 'db_pw', which the top-level secrets "
        "do not define",
    ),
    "undefined config": (
        "services:\n  web:\n    image: a\n    configs: [{source: conf}]\n",
        "compose.yml:4:15: services.web.configs refers to 'conf'",
    ),
    "undefined network": (
        "services:\n  web:\n    image: a\n    networks: [front]\n",
        "compose.yml:4:16: services.web.networks refers to 'front'",
    ),
    "undefined volume": (
        "services:\n  web:\n    image: a\n    volumes: ['data:/data']\n",
        "compose.yml:4:15: services.web.volumes refers to 'data'",
    ),
    "unknown service in depends_on": (
        "services:\n  web:\n    image: a\n    depends_on: [db]\n",
        "compose.yml:4:18: services.web.depends_on names 'db', which is not a service",
    ),
    "depends_on cycle": (
        """\
        services:
          a: {image: x, depends_on: [b]}
          b: {image: x, depends_on: [a]}
        """,
        "compose.yml:3:30: services.b.depends_on forms a cycle: a -> b -> a",
    ),
    "bad depends_on condition": (
        "services:\n  web:\n    image: a\n    depends_on: {db: {condition: healthy}}\n"
        "  db: {image: b}\n",
        "compose.yml:4:34: services.web.depends_on.db.condition must be one of",
    ),
    "build without image": (
        "services:\n  web:\n    build: .\n",
        "compose.yml:3:12: services.web: build the image first; stack deploy needs image:",
    ),
    "no image": (
        "services:\n  web:\n    command: x\n",
        "compose.yml:3:5: services.web.image is required",
    ),
    "network_mode": (
        "services:\n  web:\n    image: a\n    network_mode: host\n",
        "compose.yml:4:5: services.web.network_mode is not supported in a cluster",
    ),
    "privileged": (
        "services:\n  web:\n    image: a\n    privileged: true\n",
        "compose.yml:4:5: services.web.privileged is not supported in a cluster",
    ),
    "bridge-less network driver": (
        "services:\n  web: {image: a}\nnetworks:\n  n: {driver: macvlan}\n",
        "compose.yml:4:15: networks.n.driver: driver 'macvlan' is not supported in a cluster",
    ),
    "bad duration": (
        "services:\n  web:\n    image: a\n    stop_grace_period: 10 seconds\n",
        'compose.yml:4:24: services.web.stop_grace_period must be a duration such as "10s", '
        '"1m30s" or "500ms", got "10 seconds"',
    ),
    "bad memory": (
        "services:\n  web:\n    image: a\n    deploy: {resources: {limits: {memory: lots}}}\n",
        'services.web.deploy.resources.limits.memory must be a size such as "512M"',
    ),
    "bad boolean": (
        "services:\n  web:\n    image: a\n    read_only: maybe\n",
        'compose.yml:4:16: services.web.read_only must be a boolean (true or false), got "maybe"',
    ),
    "environment not a mapping": (
        "services:\n  web:\n    image: a\n    environment: 3\n",
        "compose.yml:4:18: services.web.environment must be a mapping or a list",
    ),
    "secret without a source": (
        "services:\n  web: {image: a}\nsecrets:\n  s: {labels: {a: b}}\n",
        "compose.yml:4:6: secrets.s needs exactly one of file or environment",
    ),
    "secret file missing": (
        "services:\n  web: {image: a}\nsecrets:\n  s: {file: ./nope}\n",
        "compose.yml:4:13: secrets.s.file:",
    ),
    "secret from an unset variable": (
        "services:\n  web: {image: a}\nsecrets:\n  s: {environment: PASSWORD}\n",
        "compose.yml:4:20: secrets.s.environment: variable PASSWORD is not set",
    ),
    "bad volume option": (
        "services:\n  web:\n    image: a\n    volumes: ['./x:/x:rw,bogus']\n",
        "compose.yml:4:15: services.web.volumes[0]: unknown volume option 'bogus'",
    ),
    "update failure action": (
        "services:\n  web:\n    image: a\n    deploy:\n"
        "      rollback_config: {failure_action: rollback}\n",
        'services.web.deploy.rollback_config.failure_action must be one of "continue", "pause"',
    ),
    "max failure ratio": (
        "services:\n  web:\n    image: a\n    deploy:\n"
        "      update_config: {max_failure_ratio: 2}\n",
        "compose.yml:5:42: services.web.deploy.update_config.max_failure_ratio must be between",
    ),
    "healthcheck test": (
        "services:\n  web:\n    image: a\n    healthcheck: {test: [curl, x]}\n",
        "compose.yml:4:25: services.web.healthcheck.test must be a string or a list starting "
        'with "CMD"',
    ),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_error_names_file_line_column_and_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_error_details_carry_the_position(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    image: a\n    user: [x]\n")
    with pytest.raises(ComposeError) as error:
        load_stack([tmp_path / "compose.yml"], env={})
    assert error.value.details["line"] == 4
    assert error.value.details["column"] == 11
    assert str(error.value.details["path"]).endswith("compose.yml")


def test_a_missing_compose_file(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match="file not found"):
        load_stack([tmp_path / "absent.yml"], env={})
