"""Secret and Config: named blobs handed to tasks as files.

Owns both shapes (they differ only in how they are handled, not in what they hold).
``spec.name`` is unique among secrets and, separately, among configs. Secret data is
never shown by the CLI, nor by a SecretSpec's repr.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from swarmlite.api.meta import Meta

MAX_CONTENT = 500 * 1024  # bytes: the most a secret or a config made by hand may hold


class SecretSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    name: str = ""
    data: bytes = b""
    labels: dict[str, str] = {}

    # Never the content, should a secret end up in a log line, an error or a traceback.
    def __repr__(self) -> str:
        return (
            f"SecretSpec(name={self.name!r}, data=<{len(self.data)} bytes>, labels={self.labels!r})"
        )

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("name", self.name), ("data", f"<{len(self.data)} bytes>"), ("labels", self.labels)]


class Secret(Meta, frozen=True, kw_only=True, tag="secret"):
    KIND: ClassVar[str] = "secret"
    NAMED: ClassVar[bool] = True

    spec: SecretSpec = msgspec.field(default_factory=SecretSpec)

    def unique_name(self) -> str | None:
        return self.spec.name


class ConfigSpec(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    name: str = ""
    data: bytes = b""
    labels: dict[str, str] = {}


class Config(Meta, frozen=True, kw_only=True, tag="config"):
    KIND: ClassVar[str] = "config"
    NAMED: ClassVar[bool] = True

    spec: ConfigSpec = msgspec.field(default_factory=ConfigSpec)

    def unique_name(self) -> str | None:
        return self.spec.name
