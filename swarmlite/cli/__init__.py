"""cli: the `swarmlite` command (click + rich): argument parsing and rendering only.

Reaches a daemon through the control API (``cli.client``, over ``rpc``) and starts one
through ``swarmlite.daemon``; never touches the store, raft or the manager. Only this
package prints. ``main`` is the console script; ``cli`` the click group (for tests).
"""

from swarmlite.cli.main import cli, main

__all__ = ["cli", "main"]
