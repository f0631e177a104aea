"""A test harness file (a conftest.py, which no test can import) as a module of its own.

Owns `load_file`: tests and benchmarks that reuse another directory's harness (its cluster
class, its helpers) load that file by path, once per module name per process, so that every
user of one name shares one module and its classes. Does not own what the file does when
it runs; an error in it propagates as it is.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_file(name: str, path: Path) -> ModuleType:
    """The Python file at ``path`` as module ``name``: loaded the first time, then the same
    module again (from ``sys.modules``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be loaded as a Python module", path=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while decorating
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a failed load is tried again, not half-used
        raise
    return module
