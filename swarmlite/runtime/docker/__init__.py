"""The Docker runtime: swarmlite tasks as containers on a dockerd, over its Engine API socket.

`DockerDriver` implements `agent.driver.RuntimeDriver`; `engine` translates Docker's errors.
"""

from swarmlite.runtime.docker.driver import DockerDriver, container_config, state_from_inspect

__all__ = ["DockerDriver", "container_config", "state_from_inspect"]
