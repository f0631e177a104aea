"""`swarmlite service` has docker's flags: the long flags of docker 28.2.2's `docker service`
commands (from their ``--help``, stored here: CI may have no docker) against swarmlite's
click commands. Prints what is missing; the flags of features swarmlite does not have yet
are the only ones allowed to be. When a docker 28.2.2 CLI is on PATH, the stored lists are
checked against its ``--help``."""

from __future__ import annotations

import re
import shutil
import subprocess

import click
import pytest

from swarmlite.cli.commands.service import service

DOCKER_VERSION = "28.2.2"


def _names(text: str) -> list[str]:
    return text.split()


# `docker service <command> --help` of docker 28.2.2: the long names, in its order.
DOCKER_FLAGS = {
    "create": _names(
        """
        cap-add cap-drop config constraint container-label credential-spec detach dns
        dns-option dns-search endpoint-mode entrypoint env env-file generic-resource group
        health-cmd health-interval health-retries health-start-interval health-start-period
        health-timeout host hostname init isolation label limit-cpu limit-memory limit-pids
        log-driver log-opt max-concurrent mode mount name network no-healthcheck
        no-resolve-image oom-score-adj placement-pref publish quiet read-only replicas
        replicas-max-per-node reserve-cpu reserve-memory restart-condition restart-delay
        restart-max-attempts restart-window rollback-delay rollback-failure-action
        rollback-max-failure-ratio rollback-monitor rollback-order rollback-parallelism
        secret stop-grace-period stop-signal sysctl tty ulimit update-delay
        update-failure-action update-max-failure-ratio update-monitor update-order
        update-parallelism user with-registry-auth workdir
        """
    ),
    "update": _names(
        """
        args cap-add cap-drop config-add config-rm constraint-add constraint-rm
        container-label-add container-label-rm credential-spec detach dns-add dns-option-add
        dns-option-rm dns-rm dns-search-add dns-search-rm endpoint-mode entrypoint env-add
        env-rm force generic-resource-add generic-resource-rm group-add group-rm health-cmd
        health-interval health-retries health-start-interval health-start-period
        health-timeout host-add host-rm hostname image init isolation label-add label-rm
        limit-cpu limit-memory limit-pids log-driver log-opt max-concurrent mount-add
        mount-rm network-add network-rm no-healthcheck no-resolve-image oom-score-adj
        placement-pref-add placement-pref-rm publish-add publish-rm quiet read-only replicas
        replicas-max-per-node reserve-cpu reserve-memory restart-condition restart-delay
        restart-max-attempts restart-window rollback rollback-delay rollback-failure-action
        rollback-max-failure-ratio rollback-monitor rollback-order rollback-parallelism
        secret-add secret-rm stop-grace-period stop-signal sysctl-add sysctl-rm tty
        ulimit-add ulimit-rm update-delay update-failure-action update-max-failure-ratio
        update-monitor update-order update-parallelism user with-registry-auth workdir
        """
    ),
    "ls": _names("filter format quiet"),
    "ps": _names("filter format no-resolve no-trunc quiet"),
    "inspect": _names("format pretty"),
    "logs": _names("details follow no-resolve no-task-ids no-trunc raw since tail timestamps"),
    "rollback": _names("detach quiet"),
    "scale": _names("detach"),
    "rm": _names(""),
}

# Flags of features that come with later work: Windows credential specs and isolation.
LATER = {
    "credential-spec",
    "isolation",
}

_FLAG = re.compile(r"^ {2,6}(?:-\w, )?--([a-z0-9-]+)", re.MULTILINE)  # not a wrapped line


def long_flags(command: click.Command) -> set[str]:
    return {
        name[2:]
        for param in command.params
        if isinstance(param, click.Option)
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("--")
    }


def command(name: str) -> click.Command:
    found = service.commands.get(name)
    assert found is not None, f"swarmlite has no `service {name}`"
    return found


@pytest.mark.parametrize("name", sorted(DOCKER_FLAGS))
def test_swarmlite_has_dockers_flags(name: str) -> None:
    docker = DOCKER_FLAGS[name]
    ours = long_flags(command(name))
    missing = [flag for flag in docker if flag not in ours]
    present = len(docker) - len(missing)
    print(f"service {name}: {present}/{len(docker)} of docker's flags; missing: {missing}")
    assert present >= 0.9 * len(docker), f"missing: {missing}"
    assert set(missing) <= LATER, f"missing, yet not a later feature: {set(missing) - LATER}"


def test_no_later_feature_flag_is_accepted_and_dropped() -> None:
    for name in ("create", "update"):
        assert not long_flags(command(name)) & LATER, "declare these only with the feature"


def _docker_version() -> str | None:
    if shutil.which("docker") is None:
        return None
    out = subprocess.run(
        ["docker", "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    found = re.search(r"version (\S+?),", out.stdout)
    return found.group(1) if found else None


@pytest.mark.parametrize("name", sorted(DOCKER_FLAGS))
def test_the_stored_lists_are_dockers(name: str) -> None:
    version = _docker_version()
    if version is None:
        pytest.skip("no docker CLI on PATH")
    if version != DOCKER_VERSION:
        pytest.skip(f"the lists are docker {DOCKER_VERSION}'s; this is {version}: regenerate them")
    out = subprocess.run(
        ["docker", "service", name, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert _FLAG.findall(out.stdout) == DOCKER_FLAGS[name]
