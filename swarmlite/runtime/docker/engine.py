"""The Docker Engine API over one unix socket, with Docker's errors turned into swarmlite's.

Owns the aiodocker client (created lazily inside the event loop, closed by `close`), the
translation of its exceptions, and the one raw call aiodocker has no public form for
(`stream`, for logs, whose stdout/stderr framing aiodocker would merge). Does not own what
a container looks like (`runtime.docker.driver`).

Translation, most specific first (``raise ... from exc`` always keeps the cause):

    connection refused, socket missing, timeout  -> RuntimeUnavailable (retryable)
    404 "No such image" / 404 for an image        -> ImageNotFound
    404 otherwise                                 -> NotFound
    409 "already in use"                          -> AlreadyExists
    500 "that name is already in use" (Podman)    -> AlreadyExists
    anything else                                 -> RuntimeFailure with the daemon's message

Podman's compatible API answers a taken container name with 500, not dockerd's 409; it is
recognised by Podman's own words for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from typing import Literal, TypeVar

import aiodocker
import aiohttp
from aiodocker.jsonstream import json_stream_stream

from swarmlite.errors import (
    AlreadyExists,
    ImageNotFound,
    NotFound,
    RuntimeFailure,
    RuntimeUnavailable,
    SwarmliteError,
)

T = TypeVar("T")
Subject = Literal["container", "image", "volume", "daemon"]
_CONNECTION_FAILED = 900  # aiodocker's status for "could not reach the daemon"


def translate(exc: BaseException, *, what: str, subject: Subject) -> SwarmliteError:
    """The swarmlite error for a failed Engine API call about `what` (a container id, ...)."""
    if isinstance(exc, aiodocker.DockerError):
        status, message = exc.status, str(exc.message).strip()
        if status == _CONNECTION_FAILED:
            return RuntimeUnavailable(
                f"Docker is not reachable: {message}",
                hint="is dockerd running, and is its socket path right?",
            )
        if status == 404 and (subject == "image" or "no such image" in message.lower()):
            return ImageNotFound(f"image {what} not found: {message}", details={"image": what})
        if status == 404:
            return NotFound(f"{subject} {what} not found: {message}", details={subject: what})
        if status == 409 and "already in use" in message:
            return AlreadyExists(message, details={subject: what})
        if status == 500 and "that name is already in use" in message:  # Podman's answer
            return AlreadyExists(message, details={subject: what})
        return RuntimeFailure(
            f"Docker refused the request for {subject} {what}: {message}",
            details={"status": status, subject: what},
        )
    if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
        return RuntimeUnavailable(f"Docker is not reachable: {exc!r}")
    return RuntimeFailure(f"Docker call for {subject} {what} failed: {exc!r}")


@contextlib.contextmanager
def translated(what: str, subject: Subject) -> Iterator[None]:
    """Run a block of aiodocker calls; raise swarmlite errors instead of Docker's."""
    try:
        yield
    except (TimeoutError, aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
        raise translate(exc, what=what, subject=subject) from exc


class Engine:
    """One daemon's Engine API; ``await engine.close()`` when done."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._docker: aiodocker.Docker | None = None

    @property
    def docker(self) -> aiodocker.Docker:
        # Created on first use so that the aiohttp session is born inside the running loop.
        if self._docker is None:
            self._docker = aiodocker.Docker(url=f"unix://{self.socket_path}")
        return self._docker

    async def close(self) -> None:
        if self._docker is not None:
            docker, self._docker = self._docker, None
            await docker.close()

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, str | int | bool], *, what: str, subject: Subject
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A GET whose body is read as it comes (no timeout); errors translated."""
        with translated(what, subject):
            # aiodocker's logs API merges stdout and stderr; its request helper does not.
            async with self.docker._query(path, "GET", params=dict(params), timeout=None) as resp:
                try:
                    yield resp
                finally:
                    resp.close()  # aiodocker's helper leaves a half-read response open

    async def pull(
        self, image: str, tag: str, *, registry_auth: str = ""
    ) -> AsyncIterator[dict[str, object]]:
        """``POST /images/create``: the pull's progress events, with ``registry_auth`` as
        its ``X-Registry-Auth`` header when given (aiodocker's own pull rewrites the header
        and refuses an image without a registry part); an error event is raised, translated
        like any other (the header is never part of an error)."""
        params = {"fromImage": image, **({"tag": tag} if tag else {})}
        headers = {"X-Registry-Auth": registry_auth} if registry_auth else {}
        with translated(image, "image"):
            async with self.docker._query(
                "images/create", "POST", params=params, headers=headers, timeout=None
            ) as resp:
                try:
                    async for event in json_stream_stream(resp):
                        yield event
                finally:
                    resp.close()

    async def get_json(
        self, path: str, params: Mapping[str, str], *, what: str, subject: Subject
    ) -> object:
        """A GET whose body is JSON, whatever its Content-Type says (Podman's stats come
        without one, which aiodocker's own JSON helper reads as empty text)."""
        with translated(what, subject):
            async with self.docker._query(path, "GET", params=dict(params)) as resp:
                body = await resp.read()
        try:
            return json.loads(body) if body.strip() else None
        except ValueError as exc:
            raise RuntimeFailure(f"the daemon's answer to {path} is not JSON: {exc}") from exc

    async def call(self, what: str, subject: Subject, awaitable: Awaitable[T]) -> T:
        """Await one aiodocker call with its errors translated."""
        with translated(what, subject):
            return await awaitable
