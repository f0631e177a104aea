"""The rule for the names users give networks, secrets and configs, as Docker has it:
letters, digits, ``_``, ``.`` and ``-``, starting with a letter or digit, at most 64
characters."""

from __future__ import annotations

import re

from swarmlite.errors import InvalidArgument

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 64


def check_name(kind: str, name: str) -> None:
    """InvalidArgument naming ``kind`` ("network", "secret", ...) unless ``name`` is good."""
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise InvalidArgument(
            f"{kind} name {name!r} is not valid",
            hint=f"use letters, digits, '_', '.' and '-', starting with a letter or digit, "
            f"at most {MAX_NAME} characters",
        )
