"""The daemon's C allocator (`swarmlite.malloc`): what its process starts with, and that its
children do not inherit the preload. `tests/integration/test_cluster.py` checks running
daemons."""

from __future__ import annotations

import os
import sys

import pytest

from swarmlite import malloc
from swarmlite.malloc import (
    JEMALLOC_CONF,
    MALLOC_ENV,
    daemon_env,
    runs_as_asked,
    unpreload,
)

LIB = "libjemalloc.so.2"


def test_jemalloc_is_preloaded_with_its_purge_settings_when_the_system_has_it() -> None:
    env = daemon_env({}, LIB)

    assert env == {
        "PYTHONMALLOC": "malloc",
        MALLOC_ENV: "jemalloc",
        "LD_PRELOAD": LIB,
        "MALLOC_CONF": JEMALLOC_CONF,
    }
    assert runs_as_asked(env)


def test_without_jemalloc_or_when_told_glibc_the_daemon_runs_on_glibc() -> None:
    for env in (daemon_env({}, None), daemon_env({MALLOC_ENV: "glibc"}, LIB)):
        assert env == {"PYTHONMALLOC": "malloc", MALLOC_ENV: "glibc"}
        assert runs_as_asked(env)


def test_a_users_preload_and_malloc_conf_are_kept() -> None:
    env = daemon_env({"LD_PRELOAD": "libmine.so", "MALLOC_CONF": "narenas:1"}, LIB)

    assert env["LD_PRELOAD"] == f"{LIB} libmine.so"
    assert env["MALLOC_CONF"] == "narenas:1"
    assert daemon_env({"LD_PRELOAD": f"libmine.so {LIB}"}, LIB)["LD_PRELOAD"] == (
        f"libmine.so {LIB}"
    )


def test_a_process_not_started_so_is_started_again() -> None:
    assert not runs_as_asked({})
    assert not runs_as_asked({"PYTHONMALLOC": "malloc"})  # the old unit's line alone
    assert not runs_as_asked({"PYTHONMALLOC": "malloc", MALLOC_ENV: "jemalloc"})  # no preload
    assert not runs_as_asked({MALLOC_ENV: "glibc"})  # Python's allocator still


def test_the_daemons_children_do_not_inherit_the_preload() -> None:
    environ = {"LD_PRELOAD": f"/usr/lib/{LIB} libmine.so", "PATH": "/bin"}
    unpreload(environ)
    assert environ == {"LD_PRELOAD": "libmine.so", "PATH": "/bin"}

    environ = {"LD_PRELOAD": LIB}
    unpreload(environ)
    assert environ == {}


class Exec(Exception):
    pass


def test_the_daemon_command_starts_again_on_jemalloc(monkeypatch: pytest.MonkeyPatch) -> None:
    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        raise Exec(argv, env)

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(malloc, "find_jemalloc", lambda: LIB)
    monkeypatch.setattr(sys, "argv", ["swarmlite", "daemon", "--data-dir", "/x"])
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    monkeypatch.delenv("LD_PRELOAD", raising=False)

    with pytest.raises(Exec) as started:
        malloc.use_daemon_malloc()

    argv, env = started.value.args
    assert argv == [sys.executable, "-m", "swarmlite", "daemon", "--data-dir", "/x"]
    assert (env["PYTHONMALLOC"], env["LD_PRELOAD"], env[MALLOC_ENV]) == ("malloc", LIB, "jemalloc")


def started_again(monkeypatch: pytest.MonkeyPatch, *, preloaded: bool) -> None:
    """This process as `use_daemon_malloc` started it again, jemalloc mapped or not."""
    monkeypatch.setattr(sys, "argv", ["swarmlite", "daemon"])
    for name, value in daemon_env({}, LIB).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(malloc, "_mapped", lambda name: preloaded and name == "jemalloc")


def test_the_started_daemon_keeps_the_preload_from_its_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started_again(monkeypatch, preloaded=True)

    malloc.use_daemon_malloc()  # runs as asked: no exec

    assert "LD_PRELOAD" not in os.environ
    assert os.environ[MALLOC_ENV] == "jemalloc"


def test_a_preload_the_linker_refused_is_said_to_be_glibc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started_again(monkeypatch, preloaded=False)  # ld.so said "cannot be preloaded: ignored"

    malloc.use_daemon_malloc()

    assert os.environ[MALLOC_ENV] == "glibc"  # so tune_glibc tunes the allocator in use
