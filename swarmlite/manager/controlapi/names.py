"""The rules for the names users give stacks, services, networks, secrets and configs, as
Docker has them.

- networks, secrets, configs: letters, digits, ``_``, ``.`` and ``-``, starting with a
  letter or digit, at most 64 characters.
- services: a DNS label as swarm mode allows it, since tasks find a service by its name:
  letters and digits, with ``-`` or ``_`` between them (never first or last), at most 63
  characters.
- stacks: the service rule, at most 61 characters. Docker's CLI itself only refuses an
  empty stack name, but a stack's services are named ``<stack>_<service>`` and each of
  those must be a valid service name, so a stack name that breaks the rule (or leaves no
  room for ``_`` and a one-letter service) can never be deployed.
"""

from __future__ import annotations

import re

from swarmlite.errors import InvalidArgument

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 64
_DNS_NAME = re.compile(r"[A-Za-z0-9](?:[-_]*[A-Za-z0-9])*")
MAX_SERVICE_NAME = 63
MAX_STACK_NAME = MAX_SERVICE_NAME - 2  # room for "_" and a one-letter service name


def check_name(kind: str, name: str) -> None:
    """InvalidArgument naming ``kind`` ("stack", "service", "network", "secret", ...) unless
    ``name`` follows that kind's rule."""
    if kind in ("service", "stack"):
        limit = MAX_SERVICE_NAME if kind == "service" else MAX_STACK_NAME
        if not _DNS_NAME.fullmatch(name) or len(name) > limit:
            raise InvalidArgument(
                f"{kind} name {name!r} is not valid",
                hint=f"use letters, digits, '-' and '_', starting and ending with a letter or "
                f"digit, at most {limit} characters",
            )
        return
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise InvalidArgument(
            f"{kind} name {name!r} is not valid",
            hint=f"use letters, digits, '_', '.' and '-', starting with a letter or digit, "
            f"at most {MAX_NAME} characters",
        )
