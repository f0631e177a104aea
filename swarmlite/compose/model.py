"""What loading compose files gives: a LoadedStack of ServiceDefs, definitions and warnings.

Owns the public result shapes and their rendering (``to_yaml``, the output of
``swarmlite stack config``). Does not own loading (stack.py) nor conversion to the API
(convert.py). Invariant: two stacks are equal when their canonical content is equal
(positions, warnings and the environment are not compared), and loading ``to_yaml()``
gives an equal stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmlite.compose.loader import Mark, dump


@dataclass(frozen=True)
class ComposeWarning:
    """Something the stack file says that the cluster ignores or does its own way (a bind
    of Docker's socket), and where it says it."""

    path: str
    line: int
    column: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass
class ServiceDef:
    """One service after merging, extends and profiles, in compose's canonical form.

    ``config`` holds compose keys with one form each: ``command``/``entrypoint`` lists,
    ``environment``/``labels`` mappings, long-form ``ports``/``volumes``/``secrets``/
    ``configs``, ``networks`` and ``depends_on`` mappings, durations as "1m30s", sizes in
    bytes. Absent keys take their defaults at deploy.
    """

    name: str
    config: dict[str, Any]
    mark: Mark | None = field(default=None, compare=False, repr=False)
    marks: dict[str, Mark] = field(default_factory=dict, compare=False, repr=False)

    @property
    def image(self) -> str:
        return str(self.config.get("image", ""))

    @property
    def deploy(self) -> dict[str, Any]:
        value = self.config.get("deploy", {})
        return value if isinstance(value, dict) else {}


@dataclass
class LoadedStack:
    services: dict[str, ServiceDef]
    networks: dict[str, dict[str, Any]]
    volumes: dict[str, dict[str, Any]]
    secrets: dict[str, dict[str, Any]]
    configs: dict[str, dict[str, Any]]
    extensions: dict[str, Any] = field(default_factory=dict)  # top-level x-* fields
    warnings: list[ComposeWarning] = field(default_factory=list, compare=False)
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    def_marks: dict[str, Mark] = field(default_factory=dict, compare=False, repr=False)
    # Secret and config data taken from variables while loading ("secrets.<name>").
    def_data: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def to_yaml(self) -> str:
        """The stack as one compose file: sorted keys, ``$`` written as ``$$``, a port
        published nowhere (the cluster chooses) without ``published``, as Docker writes it."""
        services = {name: _rendered(s.config) for name, s in self.services.items()}
        data: dict[str, Any] = {"services": services}
        for kind in ("networks", "volumes", "secrets", "configs"):
            defs = getattr(self, kind)
            if defs:
                data[kind] = defs
        data.update(self.extensions)
        return dump(_escape(data))

    def dependencies(self) -> dict[str, dict[str, str]]:
        """service -> {dependency: condition}, for the order of deploy."""
        result: dict[str, dict[str, str]] = {}
        for name, service in self.services.items():
            depends = service.config.get("depends_on", {})
            result[name] = {
                dep: str(spec.get("condition", "service_started")) for dep, spec in depends.items()
            }
        return result


def _rendered(config: dict[str, Any]) -> dict[str, Any]:
    ports = config.get("ports")
    if not ports:
        return config
    shown = [{k: v for k, v in p.items() if k != "published" or v} for p in ports]
    return {**config, "ports": shown}


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    return value
