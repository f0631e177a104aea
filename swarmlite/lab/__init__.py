"""swarmlite lab: a whole cluster on one machine, one network namespace per host.

Each host ``hN`` is a network namespace ``swl-<id>-hN`` with ``eth0`` on an underlay
bridge that lives in a namespace of its own (``swl-<id>-sw``), its own dockerd and its own
swarmlite daemon; an image registry serves the test images on the underlay. Everything a
lab makes is recorded in ``<dir>/lab.json`` as it is made, and ``down`` removes all of it.

The public surface is below; ``swarmlite lab`` (``cli.commands.lab``) is its command line.
"""

from swarmlite.lab.lab import (
    DownReport,
    HostStatus,
    LabStatus,
    check_prerequisites,
    down,
    exec_command,
    kill_host,
    require_root,
    resolve_dir,
    restart_daemon,
    status,
    up,
)
from swarmlite.lab.netns import can_connect, in_netns
from swarmlite.lab.state import DEFAULT_DIR, DIR_ENV, Host, LabState, load

__all__ = [
    "DEFAULT_DIR",
    "DIR_ENV",
    "DownReport",
    "Host",
    "HostStatus",
    "LabState",
    "LabStatus",
    "can_connect",
    "check_prerequisites",
    "down",
    "exec_command",
    "in_netns",
    "kill_host",
    "load",
    "require_root",
    "resolve_dir",
    "restart_daemon",
    "status",
    "up",
]
