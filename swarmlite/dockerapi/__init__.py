"""dockerapi: the Docker Engine API as a second front end on the node's control API.

The stock docker CLI, docker-py and Portainer drive the cluster through it. Every call goes
through the node's own control socket (``http.Control``), so role checks, leader
forwarding and worker refusals are those of the control API. ``DockerApiServer`` serves it
on a unix socket (``docker.sock`` beside ``swarmlite.sock``) and, optionally, on TCP with
client-certificate TLS (``tls_context``).
"""

from swarmlite.dockerapi.server import DockerApiServer, build_app, tls_context

__all__ = ["DockerApiServer", "build_app", "tls_context"]
