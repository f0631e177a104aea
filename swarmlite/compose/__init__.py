"""Compose files to stacks: load, interpolate, merge, validate, normalise, convert.

The public surface: ``load_stack(files, env=, profiles=, project_dir=)`` gives a
``LoadedStack`` (services as ``ServiceDef``, definitions, ``ComposeWarning``s) whose
``to_yaml()`` is what ``swarmlite stack config`` prints; ``to_stack_deploy(loaded, stack)``
makes it the API's ``StackDeploy``. Every error is a ``ComposeError`` with file:line:column;
all the problems of the files at once are a ``ComposeErrors`` listing each. A file is at
most ``MAX_FILE_BYTES``.
keys.py tables what happens to every compose key.
"""

from swarmlite.compose.convert import to_stack_deploy
from swarmlite.compose.keys import BUILD_NEEDS_IMAGE, NOT_IN_CLUSTER
from swarmlite.compose.loader import MAX_FILE_BYTES
from swarmlite.compose.model import ComposeWarning, LoadedStack, ServiceDef
from swarmlite.compose.stack import load_stack

__all__ = [
    "BUILD_NEEDS_IMAGE",
    "MAX_FILE_BYTES",
    "NOT_IN_CLUSTER",
    "ComposeWarning",
    "LoadedStack",
    "ServiceDef",
    "load_stack",
    "to_stack_deploy",
]
