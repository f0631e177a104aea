"""The autoscaler on a real cluster: a service that burns CPU while the test says so grows
to its maximum, keeps a scale by hand for a cool-down, and shrinks to its minimum once the
load stops; the events, `service inspect` and `service ps` say why each change happened.

m1 (manager), w1 and w2, each with a private dockerd (the `stacks` fixture). The load is
switched by a file in a directory every task binds: while /ctl/burn exists each task spins
(a shell loop without forks), limited to a tenth of a core so the machine stays usable.
Marked `integration` (tests/integration/conftest.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(420)

StackCluster = Any  # conftest.StackCluster, through the `stacks` fixture
SERVICE = "auto_burner"
WAIT = 120.0
SPIN = (
    "while :; do if [ -e /ctl/burn ]; then while [ -e /ctl/burn ]; do :; done; "
    "else sleep 0.2; fi; done"
)


def compose(ctl: Path) -> str:
    return f"""\
services:
  burner:
    image: swl/busybox:1
    command: ["sh", "-c", {json.dumps(SPIN)}]
    volumes: ["{ctl}:/ctl:ro"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      resources: {{limits: {{cpus: "0.1"}}}}
      x-autoscale: {{min: 1, max: 3, cpu: 50, cooldown_up: 2s, cooldown_down: 8s}}
"""


def running(stacks: StackCluster) -> int:
    return sum(
        1
        for t in stacks.tasks(SERVICE)
        if t["desired_state"] == "running" and t["status"]["state"] == "running"
    )


def replicas_and_running(stacks: StackCluster, wanted: int) -> bool:
    spec = stacks.inspect(SERVICE)["spec"]
    return bool(spec["replicas"] == wanted and running(stacks) == wanted)


def test_grows_under_load_keeps_a_hand_scale_and_shrinks_after(
    stacks: StackCluster, tmp_path: Path
) -> None:
    stacks.cluster.heal()
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    (tmp_path / "auto.yml").write_text(compose(ctl))
    done = stacks.deploy("auto", tmp_path / "auto.yml")
    assert done.returncode == 0, f"stack deploy exited {done.returncode}: {done.stderr}"
    since = f"{time.time() - 1:.3f}"
    try:
        (ctl / "burn").touch()
        stacks.cluster.wait("3 busy tasks", lambda: replicas_and_running(stacks, 3), WAIT)

        # A scale by hand within the bounds is kept for a cool-down, then the load wins;
        # one outside them is refused up front.
        stacks.ok("service", "scale", "--detach", f"{SERVICE}=2")
        status = stacks.inspect(SERVICE)
        assert status["spec"]["replicas"] == 2
        outside = stacks.swl("service", "scale", f"{SERVICE}=5")
        assert outside.returncode == 1
        assert "autoscaled between 1 and 3 replicas; 5 is outside" in outside.stderr
        stacks.cluster.wait(
            "the hand scale noticed",
            lambda: (stacks.inspect(SERVICE).get("autoscale") or {}).get("by_hand"),
            WAIT,
        )
        stacks.cluster.wait("3 busy tasks again", lambda: replicas_and_running(stacks, 3), WAIT)
    finally:
        (ctl / "burn").unlink(missing_ok=True)
    stacks.cluster.wait("back to 1 task", lambda: replicas_and_running(stacks, 1), WAIT)
    until = f"{time.time():.3f}"

    out = stacks.ok(
        "events", "--since", since, "--until", until,
        "--filter", "type=service", "--filter", f"service={SERVICE}", "--format", "{{json .}}",
    )  # fmt: skip
    changes = [
        json.loads(line)["Actor"]["Attributes"]
        for line in out.splitlines()
        if "replicas.new" in line
    ]
    seen = [(a["replicas.old"], a["replicas.new"], a["by"].split("@")[0]) for a in changes]
    assert seen[0][2] == "autoscaler" and int(seen[0][1]) > 1, out
    hand = seen.index(("3", "2", "admin"))
    assert all(who == "autoscaler" for _, _, who in seen[:hand]), out
    after = seen[hand + 1 :]  # back up under the load, then down (in one step or a few)
    assert {who for _, _, who in after} == {"autoscaler"}, out
    assert after[0][:2] == ("2", "3") and after[-1][1] == "1", out
    shrinking = [int(new) for _, new, _ in after[1:]]
    assert shrinking == sorted(shrinking, reverse=True), out
    reasons = [a.get("reason", "") for a in changes]
    assert "cpu" in reasons[0] and "target 50%" in reasons[0], out
    assert reasons[-1].startswith("cpu ") and reasons[-1].endswith(" -> 1 replicas"), out
    noticed = [json.loads(line) for line in out.splitlines() if "scaled by hand" in line]
    assert noticed, out
    assert noticed[0]["Actor"]["Attributes"]["reason"] == "scaled by hand from 3 to 2 replicas"

    pretty = stacks.ok("service", "inspect", "--pretty", SERVICE)
    assert "Autoscale:" in pretty and " Replicas:" in pretty and "1 to 3" in pretty, pretty
    assert reasons[-1] in pretty, pretty
    ps = stacks.ok("service", "ps", SERVICE)
    assert ps.splitlines()[-1].startswith("Autoscaled to 1 replicas "), ps
    stacks.ok("stack", "rm", "auto")
