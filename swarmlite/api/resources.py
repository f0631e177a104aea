"""Generic resources: what a node advertises beyond CPU and memory, and what a task reserves.

Owns their shape and their words, as Docker's swarm mode has them (swarmkit's
``GenericResource``): a node advertises a *discrete* resource (a count: ``ssd=2``) or
*named* ones (``gpu=GPU-1f3a``, repeated for each, exclusive to one task at a time); a
service reserves a count of a kind (always discrete, ``--generic-resource gpu=1``), whichever
form the node has. The scheduler assigns specific resources to each task (a count, or which
named ones), and the task finds them in its environment: ``DOCKER_RESOURCE_<KIND>`` (kind
upper-cased) = the assigned names joined by commas, or the count for a discrete kind.

Also owns the text syntax ``KIND=VALUE`` of dockerd's ``--node-generic-resource`` and of
``service create --generic-resource``, and the checks of a set of them: a kind is letters,
digits, ``_``, ``.`` or ``-``; a count is a whole number of at least 1; a named value has no
space, comma or ``=``; a kind is either counted or named on one node, never both; a name is
given once per kind; a service reserves a kind once. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import msgspec

from swarmlite.errors import InvalidArgument

ENV_PREFIX = "DOCKER_RESOURCE_"
_KIND = re.compile(r"[A-Za-z0-9_.-]+")
_NAME = re.compile(r"[^\s,=]+")
_INTEGER = re.compile(r"[+-]?\d+")


class DiscreteResource(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="discrete"):
    """A count of a kind: what a node has (``ssd=2``), or what a task reserves or was given."""

    kind: str
    value: int


class NamedResource(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="named"):
    """One named resource of a kind (``gpu=GPU-1f3a``), given whole to one task at a time."""

    kind: str
    value: str


GenericResource = DiscreteResource | NamedResource


def resource_text(resource: GenericResource) -> str:
    """``gpu=GPU-1f3a``, ``ssd=2``: the syntax the flags take."""
    return f"{resource.kind}={resource.value}"


def _kind_problem(kind: str) -> str | None:
    if not kind:
        return "has an empty kind"
    if not _KIND.fullmatch(kind):
        return f"has a kind {kind!r} that is not letters, digits, '_', '.' or '-'"
    return None


def parse_generic_resource(text: str, *, flag: str) -> GenericResource:
    """``KIND=VALUE`` as dockerd reads ``--node-generic-resource``: a whole number is a
    count (discrete), anything else one named resource. Raises InvalidArgument naming
    ``flag``."""
    kind, sep, value = text.partition("=")
    kind, value = kind.strip(), value.strip()
    hint = "write KIND=COUNT (gpu=2) or KIND=NAME (gpu=GPU-1f3a), one flag per named resource"
    if not sep or not value:
        raise InvalidArgument(f"{flag} {text!r} is not KIND=VALUE", hint=hint)
    problem = _kind_problem(kind)
    if problem is not None:
        raise InvalidArgument(f"{flag} {text!r} {problem}", hint=hint)
    if _INTEGER.fullmatch(value):
        count = int(value)
        if count < 1:
            raise InvalidArgument(
                f"{flag} {text!r}: the count of {kind} must be at least 1, got {count}"
            )
        return DiscreteResource(kind=kind, value=count)
    if not _NAME.fullmatch(value):
        raise InvalidArgument(
            f"{flag} {text!r}: a resource name may not hold spaces, ',' or '='", hint=hint
        )
    return NamedResource(kind=kind, value=value)


def parse_node_resources(texts: Iterable[str], *, flag: str) -> list[GenericResource]:
    """Every ``--node-generic-resource`` of a node, parsed and checked as a set."""
    resources = [parse_generic_resource(text, flag=flag) for text in texts]
    check_node_resources(resources, flag=flag)
    return resources


def check_node_resources(resources: Sequence[GenericResource], *, flag: str) -> None:
    """Refuse a set a node cannot advertise (see the module docstring)."""
    counted: set[str] = set()
    named: dict[str, set[str]] = {}
    for resource in resources:
        text = resource_text(resource)
        problem = _kind_problem(resource.kind)
        if problem is not None:
            raise InvalidArgument(f"{flag} {text!r} {problem}")
        if isinstance(resource, DiscreteResource):
            if resource.value < 1:
                raise InvalidArgument(f"{flag} {text!r}: a count must be at least 1")
            if resource.kind in counted:
                raise InvalidArgument(f"{flag}: {resource.kind} is given a count twice")
            counted.add(resource.kind)
        else:
            if not _NAME.fullmatch(resource.value):
                raise InvalidArgument(
                    f"{flag} {text!r}: a resource name may not hold spaces, ',' or '='"
                )
            names = named.setdefault(resource.kind, set())
            if resource.value in names:
                raise InvalidArgument(f"{flag} {text!r} is given twice")
            names.add(resource.value)
        if resource.kind in counted and resource.kind in named:
            raise InvalidArgument(
                f"{flag}: {resource.kind} is given both as a count and as named resources",
                hint=f"advertise either {resource.kind}=N or one {resource.kind}=NAME per resource",
            )


def parse_reservation(text: str, *, flag: str) -> DiscreteResource:
    """``KIND=COUNT`` as ``service create --generic-resource`` reads it."""
    kind, sep, value = text.partition("=")
    kind, value = kind.strip(), value.strip()
    if not sep or not _INTEGER.fullmatch(value):
        raise InvalidArgument(
            f"{flag} {text!r} is not KIND=COUNT",
            hint="a service reserves a number of a kind (gpu=1); the scheduler picks which",
        )
    resource = DiscreteResource(kind=kind, value=int(value))
    problem = reservations_problem([resource])
    if problem is not None:
        raise InvalidArgument(f"{flag} {text!r}: {problem}")
    return resource


def reservations_problem(reservations: Sequence[DiscreteResource]) -> str | None:
    """What is wrong with a service's generic reservations, in words; None if nothing."""
    seen: set[str] = set()
    for resource in reservations:
        problem = _kind_problem(resource.kind)
        if problem is not None:
            return f"{resource_text(resource)!r} {problem}"
        if resource.value < 1:
            return f"the count of {resource.kind} must be at least 1, got {resource.value}"
        if resource.kind in seen:
            return f"{resource.kind} is reserved twice"
        seen.add(resource.kind)
    return None


def resource_env(assigned: Iterable[GenericResource]) -> list[str]:
    """The environment Docker gives a task for what it was assigned:
    ``DOCKER_RESOURCE_GPU=GPU-1,GPU-2`` (named), ``DOCKER_RESOURCE_SSD=2`` (a count); kinds
    in the order first assigned."""
    values: dict[str, list[str]] = {}
    for resource in assigned:
        values.setdefault(resource.kind, []).append(str(resource.value))
    return [f"{ENV_PREFIX}{kind.upper()}={','.join(found)}" for kind, found in values.items()]
