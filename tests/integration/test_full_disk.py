"""A full disk under a manager's Raft data: the write that hits it fails with an error that
names the path, the cluster goes on with the other managers, nothing acknowledged is lost,
and the manager starts again by itself once there is space.

Three managers on 127.0.0.1 (the harness of tests/integration/conftest.py); m1 (the first
leader) and m2 keep their data dirs on small tmpfs mounts of this test's own, which it
fills with a file and empties again. Needs root (mount). Marked `integration`.
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarmlite.api.control import Empty
from swarmlite.api.routes import INFO
from swarmlite.errors import SwarmliteError

Cluster = Any  # conftest.Cluster, through the `own_cluster` fixture
WAIT = 60.0

pytestmark = pytest.mark.timeout(360)


@contextlib.contextmanager
def tmpfs(path: Path, megabytes: int) -> Iterator[Path]:
    path.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(path)],
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """A file that takes every free byte of ``directory``'s file system."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb") as out:
        while True:
            try:
                out.write(chunk)
                out.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    with contextlib.suppress(OSError), filler.open("ab") as out:
        while True:  # the last few bytes too
            out.write(b"\0" * 4096)
            out.flush()
    return filler


def state(cluster: Cluster, node: Any) -> str | None:
    try:
        found: str = cluster.call(INFO, Empty(), via=node).state
    except SwarmliteError:
        return None
    return found


def test_a_full_disk_fails_writes_clearly_loses_nothing_and_heals(own_cluster: Cluster) -> None:
    cluster = own_cluster
    content = cluster.root / "config.txt"
    content.write_text("listen 80;\n")
    acknowledged: list[str] = []

    def write(name: str, via: Any) -> subprocess.CompletedProcess[str]:
        done: subprocess.CompletedProcess[str] = cluster.cli(
            "config", "create", name, str(content), host=via.host
        )
        if done.returncode == 0:
            acknowledged.append(name)
        return done

    def write_until_acknowledged(name: str, via: Any) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if write(name, via).returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} was never acknowledged")

    with tmpfs(cluster.root / "m1", 48), tmpfs(cluster.root / "m2", 48):
        m1 = cluster.init("m1")
        m2 = cluster.join("m2", "manager", via=m1)
        m3 = cluster.join("m3", "manager", via=m1)
        rows = cluster.heal()
        assert cluster.leaders(rows) == ["m1"]
        for n in range(3):
            write_until_acknowledged(f"before-{n}", m1)

        # The leader's disk fills: the next write fails naming the path, the others go on.
        filler = fill(cluster.root / "m1")
        # The last page a segment has may still take a record or two: write until one fails.
        for n in range(100):
            refused = write(f"on-full-leader-{n}", m1)
            if refused.returncode != 0:
                break
        assert refused.returncode == 1, refused.stdout
        assert "No space left on device" in refused.stderr, refused.stderr
        assert str(cluster.root / "m1" / "raft") in refused.stderr, refused.stderr
        cluster.wait("m1 to stop serving", lambda: state(cluster, m1) is None, WAIT)
        for n in range(3):
            write_until_acknowledged(f"leader-full-{n}", m3)

        filler.unlink()
        cluster.wait("m1 back by itself", lambda: state(cluster, m1) == "active", WAIT)
        cluster.heal()

        # A follower's disk fills: the cluster does not notice, the follower heals.
        filler = fill(cluster.root / "m2")
        for n in range(100):  # until the follower's last page is full too
            write_until_acknowledged(f"follower-full-{n}", m3)
            if state(cluster, m2) is None:
                break
        cluster.wait("m2 to stop serving", lambda: state(cluster, m2) is None, WAIT)
        filler.unlink()
        cluster.wait("m2 back by itself", lambda: state(cluster, m2) == "active", WAIT)
        cluster.heal()

        for node in (m1, m2, m3):
            listed = cluster.ok("config", "ls", "--format", "{{.Name}}", host=node.host)
            missing = set(acknowledged) - set(listed.split())
            assert not missing, f"{node.name} lost acknowledged writes: {sorted(missing)}"
        cluster.close()  # every daemon gone before the mounts go
