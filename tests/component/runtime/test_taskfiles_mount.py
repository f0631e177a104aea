"""runtime.taskfiles with a real mount(2): a files directory on a disk gets its own tmpfs,
which the agent takes away again once it holds nothing, and leaves while it holds files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlite.agent.driver import FileData
from swarmlite.runtime.taskfiles import MOUNT_SOURCE, TaskFiles, memory_backed, mount_of, unmount

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")

SECRET = FileData(target="/run/secrets/pw", data=b"CANARY", mode=0o400)


@pytest.fixture
def on_disk(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "files"
    if memory_backed(tmp_path):
        pytest.skip("the test's tmp dir is memory-backed already")
    try:
        yield path
    finally:
        while mount_of(path)[0] == os.path.realpath(path):
            assert unmount(path)


def test_a_directory_on_a_disk_gets_a_tmpfs_that_close_removes_when_empty(on_disk: Path) -> None:
    files = TaskFiles(on_disk)
    files.write("a", [SECRET])
    point, kind, source = mount_of(on_disk)
    assert (point, kind, source) == (str(on_disk), "tmpfs", MOUNT_SOURCE)
    assert (on_disk / "a" / "0").read_bytes() == b"CANARY"

    files.close()  # a container waits for its file: the tmpfs stays
    assert memory_backed(on_disk)
    again = TaskFiles(on_disk)  # the next run of the agent uses it as it is
    assert again.names() == ["a"]
    again.drop("a")
    again.close()
    assert not memory_backed(on_disk)
    assert list(on_disk.iterdir()) == []  # nothing ever reached the disk under it
