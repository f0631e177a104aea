"""Compose says where a bind of Docker's socket is given swarmlite's Docker API socket."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from swarmlite.api.dockersocket import DOCKER_SOCKET_LABEL
from swarmlite.compose import load_stack, to_stack_deploy
from swarmlite.errors import ComposeError

NOTICE = (
    "is given swarmlite's Docker API socket (the cluster's services and this node's "
    "containers); label com.swarmlite.docker-socket=runtime keeps the runtime's"
)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(dedent(text))
    return path


def notices(path: Path, *more: Path) -> list[str]:
    stack = load_stack([path, *more], env={})
    return [str(w) for w in stack.warnings if "Docker API socket" in w.message]


def test_each_bind_of_the_socket_is_named_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          traefik:
            image: traefik:3
            volumes:
              - ./traefik.yml:/etc/traefik/traefik.yml:ro
              - /var/run/docker.sock:/var/run/docker.sock:ro
          agent:
            image: portainer/agent
            volumes:
              - type: bind
                source: /run/docker.sock
                target: /var/run/docker.sock
              - data:/data
          web:
            image: nginx
            volumes: [/var/run:/host/run]
        volumes:
          data: {}
        """,
    )
    assert notices(path) == [
        f"{path}:10:9: services.agent.volumes[0]: /run/docker.sock {NOTICE}",
        f"{path}:6:9: services.traefik.volumes[1]: /var/run/docker.sock {NOTICE}",
    ]


@pytest.mark.parametrize(
    "labels",
    [
        f"labels: {{{DOCKER_SOCKET_LABEL}: runtime}}",
        f"labels: [{DOCKER_SOCKET_LABEL}=runtime]",
        f"deploy: {{labels: {{{DOCKER_SOCKET_LABEL}: runtime}}}}",
    ],
)
def test_the_label_runtime_opts_out_as_container_or_service_label(
    tmp_path: Path, labels: str
) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        f"""\
        services:
          cron:
            image: crazymax/swarm-cronjob
            volumes: [/var/run/docker.sock:/var/run/docker.sock]
            {labels}
        """,
    )
    assert notices(path) == []


def test_a_later_file_that_adds_the_bind_is_the_one_named(tmp_path: Path) -> None:
    base = write(tmp_path, "compose.yml", "services:\n  viz:\n    image: viz:1\n")
    override = write(
        tmp_path,
        "override.yml",
        "services:\n  viz:\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n",
    )
    assert notices(base, override) == [
        f"{override}:4:9: services.viz.volumes[0]: /var/run/docker.sock {NOTICE}"
    ]


def test_an_unknown_label_value_is_refused_where_it_is(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        f"""\
        services:
          viz:
            image: viz:1
            deploy:
              labels:
                {DOCKER_SOCKET_LABEL}: host
        """,
    )
    with pytest.raises(ComposeError) as caught:
        load_stack([path], env={})
    assert str(caught.value).startswith(
        f"{path}:6:9: services.viz.deploy.labels: {DOCKER_SOCKET_LABEL} must be swarmlite or "
        "runtime, got 'host'"
    )


def test_the_stored_spec_keeps_the_path_the_file_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        "services:\n  viz:\n    image: viz:1\n    volumes: [/var/run/docker.sock:/sock]\n",
    )
    deploy = to_stack_deploy(load_stack([path], env={}), "tools")
    (mount,) = deploy.services[0].task.container.mounts
    assert (mount.type, mount.source, mount.target) == ("bind", "/var/run/docker.sock", "/sock")
