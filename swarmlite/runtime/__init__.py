"""Container runtimes behind `agent.driver.RuntimeDriver`; only `daemon.py` picks one.

Owns the drivers (Docker now, over its Engine API socket, which Podman serves too); owns no
task logic: the agent's executor decides what to create, start and stop, and when.
"""

from swarmlite.runtime.docker import DockerDriver

__all__ = ["DockerDriver"]
