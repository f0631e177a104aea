"""runtime.taskfiles: a node's secret and config files, in memory only, as the spec says.

Runs in a directory under /dev/shm (a tmpfs on Linux), so nothing is mounted; the mount of
a tmpfs on a directory that is on a disk is checked with mount(2) replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmlite.agent.driver import FileData
from swarmlite.errors import AlreadyExists, InvalidArgument, RuntimeFailure
from swarmlite.runtime import taskfiles
from swarmlite.runtime.taskfiles import TaskFiles, memory_backed, mount_of

SECRET = FileData(target="/run/secrets/pw", data=b"CANARY-hunter2", uid=1000, gid=1001, mode=0o400)
CONFIG = FileData(target="/etc/app.conf", data=b"port=80\n", mode=0o444)


@pytest.fixture
def shm() -> Iterator[Path]:
    if not memory_backed(Path("/dev/shm")):
        pytest.skip("/dev/shm is not a tmpfs here")
    path = Path(tempfile.mkdtemp(prefix="swl-taskfiles-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_files_get_the_references_owner_and_mode_in_private_directories(shm: Path) -> None:
    files = TaskFiles(shm / "files")
    binds = files.write("shop_web.1.t1", [SECRET, CONFIG])
    folder = shm / "files" / "shop_web.1.t1"
    assert binds == [
        f"{folder / '0'}:/run/secrets/pw:ro",
        f"{folder / '1'}:/etc/app.conf:ro",
    ]
    for directory in (shm / "files", folder):
        info = directory.stat()
        assert info.st_mode & 0o777 == 0o700  # nobody but the agent's user gets in
        assert info.st_uid == os.geteuid()
    secret, config = (folder / "0").stat(), (folder / "1").stat()
    assert (folder / "0").read_bytes() == b"CANARY-hunter2"
    assert secret.st_mode & 0o7777 == 0o400
    assert config.st_mode & 0o7777 == 0o444
    if os.geteuid() == 0:
        assert (secret.st_uid, secret.st_gid) == (1000, 1001)
    assert files.names() == ["shop_web.1.t1"]


def test_drop_removes_a_containers_files_and_nothing_else(shm: Path) -> None:
    files = TaskFiles(shm)
    files.write("a", [SECRET])
    files.write("b", [CONFIG])
    files.drop("a")
    files.drop("a")  # twice: no error
    files.drop("never-had-any")
    files.drop("")  # not a name: nothing to do
    assert files.names() == ["b"]
    assert files.write("none", []) == []
    assert files.names() == ["b"]


def test_a_name_in_use_keeps_its_files(shm: Path) -> None:
    files = TaskFiles(shm)
    files.write("a", [SECRET])
    with pytest.raises(AlreadyExists):
        files.write("a", [CONFIG])
    assert (shm / "a" / "0").read_bytes() == b"CANARY-hunter2"


@pytest.mark.parametrize("name", ["../x", "a/b", ".", ".."])
def test_a_name_that_is_no_container_name_is_refused(shm: Path, name: str) -> None:
    with pytest.raises(InvalidArgument):
        TaskFiles(shm).write(name, [SECRET])


def test_a_relative_target_is_refused_before_anything_is_written(shm: Path) -> None:
    files = TaskFiles(shm / "files")
    with pytest.raises(InvalidArgument, match="must be absolute"):
        files.write("a", [SECRET, FileData(target="etc/x", data=b"")])
    assert files.names() == []


def test_a_directory_on_a_disk_gets_a_tmpfs_first(
    shm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted: list[Path] = []
    monkeypatch.setattr(taskfiles, "memory_backed", lambda path: path in mounted)
    monkeypatch.setattr(taskfiles.os, "geteuid", lambda: 0)
    monkeypatch.setattr(taskfiles, "mount_tmpfs", lambda path: mounted.append(path))
    monkeypatch.setattr(taskfiles.os, "fchown", lambda fd, uid, gid: None)
    files = TaskFiles(shm / "files")
    files.write("a", [SECRET])
    files.write("b", [SECRET])
    assert mounted == [shm / "files"]  # once, before the first file
    mounted.clear()  # someone unmounted it: the next write mounts again first
    files.write("c", [SECRET])
    assert mounted == [shm / "files"]


def test_without_root_a_directory_on_a_disk_gets_no_secret(
    shm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(taskfiles, "memory_backed", lambda path: False)
    monkeypatch.setattr(taskfiles.os, "geteuid", lambda: 1000)
    files = TaskFiles(shm / "files")
    with pytest.raises(RuntimeFailure) as refused:
        files.write("a", [SECRET])
    assert "memory-backed" in refused.value.message
    assert "CANARY" not in f"{refused.value.message} {refused.value.hint}"
    assert files.names() == []


def test_a_write_that_fails_leaves_nothing_and_names_no_content(
    shm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(taskfiles.os, "write", full)
    files = TaskFiles(shm)
    with pytest.raises(RuntimeFailure) as failed:
        files.write("a", [CONFIG, SECRET])
    assert "No space left on device" in failed.value.message
    assert "CANARY" not in failed.value.message
    assert files.names() == []


def test_file_data_never_shows_its_content() -> None:
    assert "CANARY" not in repr(SECRET)
    assert "CANARY" not in str([SECRET])


def test_mount_of_finds_the_innermost_mount(shm: Path) -> None:
    point, kind, _ = mount_of(shm / "not" / "made" / "yet")
    assert kind == "tmpfs"
    assert shm.is_relative_to(point)
    assert mount_of(Path("/"))[0] == "/"


def test_close_leaves_a_tmpfs_it_did_not_mount(shm: Path) -> None:
    files = TaskFiles(shm)
    files.write("a", [SECRET])
    files.drop("a")
    files.close()  # /dev/shm is the machine's: not unmounted
    assert memory_backed(shm) and shm.is_dir()
