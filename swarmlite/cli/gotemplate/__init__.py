"""gotemplate: Go's text/template, the part that docker's ``--format`` reaches, in Python.

``Template(source)`` parses (TemplateError with ``syntax`` set if it cannot), and
``.execute(data)`` runs it on what JSON holds (mappings, lists, strings, numbers,
booleans, None) and on ``Record``s, the rows of a listing (Go structs with methods). The
functions are docker's (json, join, split, title, lower, upper, pad, truncate) and the
Go built-ins people use with them (index, len, printf, print, println, eq, ne, lt, le,
gt, ge, and, or, not). Modules: ``parse`` (syntax), ``execute`` (meaning), ``functions``
(functions and how values print). Pure; ``cli.format`` is its one user.
"""

from swarmlite.cli.gotemplate.execute import Record, Template
from swarmlite.cli.gotemplate.functions import (
    FUNCTIONS,
    HEADER_FUNCTIONS,
    TemplateError,
    to_json,
)

__all__ = ["FUNCTIONS", "HEADER_FUNCTIONS", "Record", "Template", "TemplateError", "to_json"]
