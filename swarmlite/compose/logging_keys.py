"""A compose service's ``logging:`` (``driver`` and ``options``), read and checked.

Owns the canonical form of the key: ``{"driver": "json-file", "options": {"max-size":
"10m"}}``, option values as text (``max-file: 3`` becomes ``"3"``, as Docker's loader
reads them), ``driver`` left out when the file leaves it out (the default driver with
these options, as ``docker stack deploy`` sends it), and its refusals with file:line: a
``driver`` that is empty or malformed, and whatever ``api.logdriver`` says can never
work. A file that names no driver is checked only for the forms of its values, since a
file merged over it may name the driver. Does not own the default driver or rotation
(``api.logdriver``), nor the ServiceSpec field (convert.py).
"""

from __future__ import annotations

from typing import Any

from swarmlite.api.logdriver import LogDriverProblem, check_log_driver
from swarmlite.api.service import LogDriver
from swarmlite.compose.context import Context
from swarmlite.compose.loader import Mark, Node, Scalar
from swarmlite.compose.validate import as_map, as_scalar_text, as_str, check_keys


def read_logging(node: Node, path: str, ctx: Context, marks: dict[str, Mark]) -> dict[str, Any]:
    """The canonical ``logging`` of one service (see the module docstring)."""
    spec = as_map(node, path)
    check_keys(spec, path, ("driver", "options"))
    result: dict[str, Any] = {}
    where: dict[str, Mark] = {"driver": spec.mark, "options": spec.mark}
    driver_node = spec.items.get("driver")
    if driver_node is not None:
        name = as_str(driver_node, f"{path}.driver")
        if not name.strip():
            raise driver_node.mark.error(
                f"{path}.driver must not be empty",
                hint="leave driver out for the default driver (json-file, rotated)",
            )
        result["driver"] = name
        where["driver"] = driver_node.mark
    options: dict[str, str] = {}
    options_node = spec.items.get("options")
    if options_node is not None and not (
        isinstance(options_node, Scalar) and options_node.value is None
    ):
        found = as_map(options_node, f"{path}.options")
        where["options"] = found.mark
        for key, value in found.items.items():
            empty = isinstance(value, Scalar) and value.value is None
            options[key] = "" if empty else as_scalar_text(value, f"{path}.options.{key}")
            where[f"options.{key}"] = value.mark
        result["options"] = options
    try:
        check_log_driver(
            LogDriver(name=result.get("driver", ""), options=options),
            partial=driver_node is None,
        )
    except LogDriverProblem as exc:
        mark = where.get(exc.field, spec.mark)
        raise mark.error(f"{path}.{exc.field} {exc.reason}") from None
    return result
