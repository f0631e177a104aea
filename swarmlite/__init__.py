"""swarmlite: Swarm-style clustering for compose stacks."""

__version__ = "0.1.0"
