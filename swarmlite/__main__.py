"""`python -m swarmlite ...` is the `swarmlite` command (used to start detached daemons).

`python -m swarmlite daemon ...`, what `init` and `join` spawn on every node, loads the
daemon command alone (``cli.commands.daemon.main_alone``), not the whole CLI.
"""

import sys

if sys.argv[1:2] == ["daemon"]:
    from swarmlite.cli.commands.daemon import main_alone as main
else:
    from swarmlite.cli.main import main

main()
