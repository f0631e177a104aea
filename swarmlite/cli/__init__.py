"""cli: the `swarmlite` command (click + rich): argument parsing and rendering only.

Reaches a daemon through the control API (``cli.client``, over ``rpc``) and starts one
through ``swarmlite.daemon``; never touches the store, raft or the manager. Only this
package prints. ``cli.main.main`` is the console script; ``cli.main.cli`` the click group
(for tests). This file imports nothing, so that one command's module (the daemon's, which
``python -m swarmlite daemon`` runs on every node) can be loaded without the whole CLI.
"""
