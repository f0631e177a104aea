"""``attachable`` reaches the NetworkSpec from each front end: compose ``attachable: true``
(no warning any more, and refused beside ``external``), and Docker's ``Attachable`` on
``POST /networks/create``."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlite.compose import load_stack, to_stack_deploy
from swarmlite.dockerapi.http import Body
from swarmlite.dockerapi.networks import network_spec
from swarmlite.errors import ComposeError

COMPOSE = """\
services:
  web:
    image: nginx
    networks: [tools, plain]
networks:
  tools:
    attachable: true
  plain: {}
"""


def test_compose_attachable_reaches_the_network_spec(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(COMPOSE)
    stack = load_stack([tmp_path / "compose.yml"], env={})
    assert [w.key for w in stack.warnings if "attachable" in w.key] == []
    deployed = to_stack_deploy(stack, "s")
    attachable = {n.spec.name: n.spec.attachable for n in deployed.networks}
    assert attachable == {"s_tools": True, "s_plain": False}


def test_compose_attachable_is_the_owners_business_for_an_external_network(
    tmp_path: Path,
) -> None:
    text = COMPOSE.replace("attachable: true", "attachable: true\n    external: true")
    (tmp_path / "compose.yml").write_text(text)
    with pytest.raises(ComposeError) as refused:
        load_stack([tmp_path / "compose.yml"], env={})
    assert "networks.tools is external: it cannot also set attachable" in refused.value.message


def test_docker_attachable_reaches_the_network_spec() -> None:
    spec = network_spec(Body({"Name": "tools", "Driver": "overlay", "Attachable": True}, "req"))
    assert spec.attachable is True
    spec = network_spec(Body({"Name": "plain", "Driver": "overlay"}, "req"))
    assert spec.attachable is False
