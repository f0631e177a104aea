"""What a worker's daemon process loads: no manager code (raft, the store, the manager's
loops) until the node is a manager; each module is memory held for the process's life
(issue 14, item 5; scripts/bench/cluster.py measures the RSS)."""

from __future__ import annotations

import subprocess
import sys

MANAGER_ONLY = ("swarmlite.manager", "swarmlite.raft", "swarmlite.store")


def loaded_after(code: str) -> list[str]:
    probe = (
        f"import sys\n{code}\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.startswith({MANAGER_ONLY!r}))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_the_daemon_command_loads_no_manager_code() -> None:
    # What `python -m swarmlite daemon` imports before it runs (cli/commands/daemon.py).
    assert loaded_after("import swarmlite.cli.commands.daemon, swarmlite.daemon") == []


def test_a_manager_loads_it_when_it_starts() -> None:
    # The probe is live: the same check sees the manager's modules once they are imported.
    assert "swarmlite.manager.manager" in loaded_after("import swarmlite.manager.manager")
