"""Checks across a whole stack, once files are merged and profiles applied.

Owns: every service names an image; referenced secrets, configs, networks and named
volumes are defined; depends_on names active services and has no cycle; a job has no
update_config or rollback_config; a global service has no replicas; dnsrr has no
ingress-published port; the value of the label com.swarmlite.docker-socket. Says where a
bind of Docker's socket will be given swarmlite's Docker API socket (api.dockersocket: a
node also matches its own runtime path, which a file cannot know). Does not own the type
of single values (validate.py, at read time). Invariant: every failure is a ComposeError
at the position of the offending value.
"""

from __future__ import annotations

from collections.abc import Callable

from swarmlite.api.dockersocket import (
    DOCKER_SOCKET_LABEL,
    DOCKER_SOCKET_VALUES,
    KEEP_RUNTIME,
    binds_runtime_socket,
    keeps_runtime_socket,
)
from swarmlite.compose.loader import Mark
from swarmlite.compose.model import LoadedStack, ServiceDef
from swarmlite.compose.validate import did_you_mean, guard, report

Warn = Callable[[Mark, str, str], None]
_NOWHERE = Mark("-", 0, 0)


def _at(service: ServiceDef, key: str, *fallbacks: str) -> Mark:
    for candidate in (key, *fallbacks):
        if candidate in service.marks:
            return service.marks[candidate]
    return service.mark or _NOWHERE


def check_stack(stack: LoadedStack, inactive: dict[str, list[str]], warn: Warn) -> None:
    """Check the stack; inside validate.collecting() every problem is recorded (a cycle:
    the first one found), elsewhere the first is raised."""
    for name, service in stack.services.items():
        _check_service(stack, name, service, inactive, warn)
    with guard():
        _check_cycles(stack)


def _check_service(
    stack: LoadedStack,
    name: str,
    service: ServiceDef,
    inactive: dict[str, list[str]],
    warn: Warn,
) -> None:
    path = f"services.{name}"
    config = service.config
    if not config.get("image"):
        report(_at(service, "").error(f"{path}.image is required: the image every task runs"))
    for kind in ("secrets", "configs"):
        for ref in config.get(kind, []):
            if ref["source"] not in getattr(stack, kind):
                report(
                    _at(service, f"{kind}.{ref['source']}", kind).error(
                        f"{path}.{kind} refers to {ref['source']!r}, which the top-level "
                        f"{kind} do not define" + did_you_mean(ref["source"], getattr(stack, kind))
                    )
                )
    for network in config.get("networks", {}):
        if network not in stack.networks and network != "default":
            report(
                _at(service, f"networks.{network}", "networks").error(
                    f"{path}.networks refers to {network!r}, which the top-level networks do "
                    "not define" + did_you_mean(network, stack.networks)
                )
            )
    for volume in config.get("volumes", []):
        source = volume.get("source")
        if volume["type"] == "volume" and source and source not in stack.volumes:
            report(
                _at(service, f"volumes.{source}", "volumes").error(
                    f"{path}.volumes refers to {source!r}, which the top-level volumes do not "
                    "define" + did_you_mean(source, stack.volumes),
                    hint="declare it under the top-level volumes:, or write a path for a bind "
                    "mount",
                )
            )
    _check_deploy(name, service)
    _docker_socket(name, service, warn)
    depends = config.get("depends_on", {})
    for dep in list(depends):
        mark = _at(service, f"depends_on.{dep}", "depends_on")
        if dep in stack.services:
            continue
        if dep in inactive:
            if not depends[dep].get("required", True):
                warn(mark, f"{path}.depends_on.{dep}", "ignored: its profile is not enabled")
                del depends[dep]
                continue
            report(
                mark.error(
                    f"{path}.depends_on names {dep!r}, which is not enabled",
                    hint=f"enable one of its profiles: {', '.join(inactive[dep])}",
                )
            )
            continue
        report(
            mark.error(
                f"{path}.depends_on names {dep!r}, which is not a service of the stack"
                + did_you_mean(dep, stack.services)
            )
        )


def _check_deploy(name: str, service: ServiceDef) -> None:
    path = f"services.{name}.deploy"
    deploy = service.deploy
    mode = deploy.get("mode", "replicated")
    if mode.endswith("-job"):
        for key in ("update_config", "rollback_config"):
            if key in deploy:
                report(
                    _at(service, f"deploy.{key}").error(
                        f"{path}.{key} cannot be set for a job (mode {mode}): jobs are not "
                        "updated in place"
                    )
                )
    if mode in ("global", "global-job") and "replicas" in deploy:
        report(
            _at(service, "deploy.replicas").error(
                f"{path}.replicas cannot be set with mode {mode} (one task per node)"
            )
        )
    scale = service.config.get("scale")
    if scale is not None and "replicas" in deploy and deploy["replicas"] != scale:
        report(
            _at(service, "scale").error(
                f"services.{name}.scale ({scale}) and deploy.replicas ({deploy['replicas']}) differ"
            )
        )
    if deploy.get("endpoint_mode") == "dnsrr":
        for port in service.config.get("ports", []):
            if port["mode"] == "ingress":
                report(
                    _at(service, "deploy.endpoint_mode").error(
                        f"{path}.endpoint_mode dnsrr cannot be used with ingress-published ports "
                        f"(port {port['target']})",
                        hint="publish the ports with mode: host, or use endpoint_mode vip",
                    )
                )
                break


def _docker_socket(name: str, service: ServiceDef, warn: Warn) -> None:
    path = f"services.{name}"
    labels: dict[str, str] = service.config.get("labels", {})
    service_labels: dict[str, str] = service.deploy.get("labels", {})
    for key, found in (("labels", labels), ("deploy.labels", service_labels)):
        value = found.get(DOCKER_SOCKET_LABEL)
        if value is not None and value not in DOCKER_SOCKET_VALUES:
            report(
                _at(service, key).error(
                    f"{path}.{key}: {DOCKER_SOCKET_LABEL} must be "
                    f"{' or '.join(DOCKER_SOCKET_VALUES)}, got {value!r}",
                    hint=f"{KEEP_RUNTIME} keeps the container runtime's socket where the "
                    "service binds it; by default the service is given swarmlite's Docker API "
                    "socket",
                )
            )
    if keeps_runtime_socket(labels, service_labels):
        return
    for i, volume in enumerate(service.config.get("volumes", [])):
        source = volume.get("source", "")
        if binds_runtime_socket(volume["type"], source):
            warn(
                _at(service, f"volumes[{volume['target']}]", "volumes"),
                f"{path}.volumes[{i}]",
                f"{source} is given swarmlite's Docker API socket (the cluster's services and "
                f"this node's containers); label {DOCKER_SOCKET_LABEL}={KEEP_RUNTIME} keeps "
                "the runtime's",
            )


def _check_cycles(stack: LoadedStack) -> None:
    graph = {
        name: list(service.config.get("depends_on", {})) for name, service in stack.services.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in graph.get(name, []):
            if state.get(dep) == 1:
                cycle = [*trail[trail.index(dep) :], dep] if dep in trail else [name, dep]
                service = stack.services[name]
                raise _at(service, f"depends_on.{dep}", "depends_on").error(
                    f"services.{name}.depends_on forms a cycle: {' -> '.join(cycle)}"
                )
            if state.get(dep) is None and dep in graph:
                visit(dep, [*trail, dep])
        state[name] = 2

    for name in graph:
        if state.get(name) is None:
            visit(name, [name])
