"""`python -m swarmlite ...` is the `swarmlite` command (used to start detached daemons)."""

from swarmlite.cli.main import main

main()
