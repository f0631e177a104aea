"""Fixtures shared by every test directory.

`running_engine` starts a private Engine API daemon (`testing.dockerd.Dockerd`,
`testing.podman.PodmanService`) with the test images in it, for as long as a fixture's
``with`` block lasts, and stops it afterwards whatever happened; a daemon that cannot start
fails every test that needs it, with the reason and what to install (never a skip).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from swarmlite.errors import FailedPrecondition
from swarmlite.testing.engineproc import EngineProcess

E = TypeVar("E", bound=EngineProcess)


@contextlib.contextmanager
def _running(engine: E, load_images: Callable[[Path], object], who: str) -> Iterator[E]:
    try:
        engine.start()
        load_images(engine.socket)
    except FailedPrecondition as exc:
        engine.stop()
        pytest.fail(
            f"{who} needs a private {engine.name}: {exc.message}\nhint: {exc.hint}",
            pytrace=False,
        )
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def running_engine() -> Callable[..., contextlib.AbstractContextManager[Any]]:
    """``with running_engine(Dockerd.in_temp_dir(), ensure_test_images, "the X tests") as
    daemon:`` started with the test images loaded (``load_images(socket)``), or the test
    fails saying who needs which daemon, why it did not start and what to install."""
    return _running
