"""The contract suite's private dockerd, one per session, started and cleaned up by us.

The Docker half of tests/contract is not optional and not skipped: it carries the `docker`
marker, so a plain `pytest` leaves it out and `scripts/test` runs it. The daemon is our
child (its own socket, data root and cgroup parent under /tmp/swld-*, no bridge, no
iptables changes), the small test images are imported into it, and it is stopped and
cleaned up at the end. If dockerd cannot start, every Docker case fails with the reason
and what to install (.ci/run installs docker.io and busybox-static). Fake-only runs (a
plain `pytest`, or ``-k fake``) never start it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swarmlite.errors import FailedPrecondition
from swarmlite.testing.dockerd import Dockerd
from swarmlite.testing.images import ensure_test_images


@pytest.fixture(scope="session")
def private_dockerd() -> Iterator[Dockerd]:
    daemon = Dockerd.in_temp_dir()
    try:
        daemon.start()
        ensure_test_images(daemon.socket)
    except FailedPrecondition as exc:
        daemon.stop()
        pytest.fail(
            f"the Docker half of the runtime contract needs a private dockerd: {exc.message}\n"
            f"hint: {exc.hint}",
            pytrace=False,
        )
    try:
        yield daemon
    finally:
        daemon.stop()
