"""The contract suite's private dockerd and Podman, one each per session, started and cleaned
up by us.

The Docker half of tests/contract is not optional and not skipped: it carries the `docker`
marker, so a plain `pytest` leaves it out and `scripts/test` runs it. The daemon is our
child (its own socket, data root and cgroup parent under /tmp/swld-*, no bridge, no
iptables changes), the small test images are imported into it, and it is stopped and
cleaned up at the end. If dockerd cannot start, every Docker case fails with the reason
and what to install (.ci/run installs docker.io and busybox-static). Fake-only runs (a
plain `pytest`, or ``-k fake``) never start it.

The Podman half is the same suite against Debian's Podman through its Docker-compatible
API service (``podman system service``, `testing.podman`: its own configuration, storage
and socket under /tmp/swlp-*, runc, cgroupfs), with the test images loaded into it. It
carries the same `docker` marker (a real Engine API daemon); ``-k podman`` runs it alone,
``-k docker`` the dockerd half alone. If Podman cannot start, every Podman case fails with
the reason and what to install (scripts/setup installs podman).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from swarmlite.testing.dockerd import Dockerd
from swarmlite.testing.images import ensure_test_images
from swarmlite.testing.podman import PodmanService, load_test_images

RunningEngine = Callable[..., AbstractContextManager[Any]]  # tests/conftest.py's


@pytest.fixture(scope="session")
def private_dockerd(running_engine: RunningEngine) -> Iterator[Dockerd]:
    with running_engine(
        Dockerd.in_temp_dir(), ensure_test_images, "the Docker half of the runtime contract"
    ) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def private_podman(running_engine: RunningEngine) -> Iterator[PodmanService]:
    with running_engine(
        PodmanService.in_temp_dir(), load_test_images, "the Podman half of the runtime contract"
    ) as service:
        yield service
