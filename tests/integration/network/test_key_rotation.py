"""The mesh's keys rotate on a schedule without dropping traffic, on a 3-host lab.

Every daemon rotates its WireGuard key pair every few seconds here
(SWARMLITE_MESH_KEY_ROTATION); meanwhile requests go through the routing mesh to `web`,
which calls `api` by name: both legs cross the mesh between hosts. Every request must be
answered, and every node must have published new keys.

Marked `integration` (by tests/integration/conftest.py): `scripts/test` runs it, a plain
`pytest` does not. It needs root and what `scripts/setup` installs (CI has both).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlite.api.control import ListRequest
from swarmlite.api.routes import NODE_LS
from swarmlite.lab import load
from swarmlite.rpc import ControlClient

ROTATION_SECONDS = 8
RUN_SECONDS = 30.0


def swarmlite(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "swarmlite", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"swarmlite {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Path, dict[str, object]]]:
    directory = Path(tempfile.mkdtemp(prefix="swl-rot-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMLITE_")}
    env["SWARMLITE_MESH_KEY_ROTATION"] = str(ROTATION_SECONDS)
    try:
        swarmlite("lab", "up", "--nodes", "3", "--dir", str(directory), env=env)
        state = json.loads((directory / "lab.json").read_text())
        yield directory, state
    finally:
        subprocess.run(
            [sys.executable, "-m", "swarmlite", "lab", "down", "--dir", str(directory)],
            capture_output=True,
            timeout=240,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(directory)], check=False)


def keys(directory: Path) -> dict[str, str]:
    """Each node's published WireGuard public key, as the managers know it (NODE_LS on h1's
    unix socket, with the client the CLI uses)."""
    state = load(directory)
    assert state is not None, directory
    client = ControlClient.unix(state.host("h1").swarmlite_socket, timeout=60.0)
    views = client.call(NODE_LS, ListRequest()).nodes
    return {view.node.id: view.node.status.mesh_public_key for view in views}


def mesh_log(directory: Path) -> str:
    """What each daemon logged about its mesh and its session, to read beside a failure."""
    lines = []
    for log in sorted(directory.glob("h*/swarmlite/swarmlite.log")):
        host = log.parts[-3]
        for line in log.read_text(errors="replace").splitlines():
            if " swarmlite.network.mesh: " in line or " swarmlite.agent.session: " in line:
                lines.append((line, host))
    return "\n".join(f"{host} {line}" for line, host in sorted(lines)[-120:])


def test_keys_rotate_while_the_routing_mesh_keeps_answering(
    lab: tuple[Path, dict[str, object]],
) -> None:
    directory, state = lab
    repo = Path(__file__).resolve().parents[3]
    env = dict(os.environ, REGISTRY=str(state["registry"]))
    swarmlite("lab", "exec", "--dir", str(directory), "h1", "--", "swarmlite", "stack", "deploy",
              "-c", str(repo / "compose-samples/demo/compose.yml"), "demo", env=env)  # fmt: skip
    hosts = state["hosts"]
    assert isinstance(hosts, list)
    h1 = hosts[0]["addr"]
    before = keys(directory)
    assert len(before) == 3 and all(before.values())

    answers, failures = 0, []
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-m", "swarmlite", "lab", "exec", "--dir", str(directory), "h1",
             "--", "curl", "-s", "-m", "3", f"http://{h1}:8080/cgi-bin/hello"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode == 0 and "-> api" in done.stdout and done.stdout.rstrip().endswith("v2"):
            answers += 1
        else:
            failures.append((time.strftime("%H:%M:%S"), done.stdout, done.stderr))
        time.sleep(0.1)

    after = keys(directory)
    assert answers >= 20, answers
    assert failures == [], (failures[:5], mesh_log(directory))
    # Every node published a new key (most rotated several times during the run).
    assert all(after[node] != before[node] for node in before), (before, after)
