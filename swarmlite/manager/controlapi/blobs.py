"""The control API for secrets and configs: what `swarmlite secret|config create|ls|inspect|rm`
call.

Owns the rules of secrets and configs made outside a stack, as a Swarm user knows them from
`docker secret create`: a name is unique among its kind and follows names.py's rule; the
content is 1 byte to 500 KiB and never changes (a new version is a new name); a secret's
content is never in a reply; one that a service uses cannot be removed. What a compose file
names with ``external: true`` is made here (and what it makes itself is held to the same
rules, by `stack deploy`). Calls reach the leader (a follower forwards them).
"""

from __future__ import annotations

import logging

import msgspec

from swarmlite.api import Config, ConfigSpec, Secret, SecretSpec, Service, new_id
from swarmlite.api.control import BlobCreate, BlobList, BlobView, ListRequest, NameRef
from swarmlite.api.filters import match_configs, match_secrets
from swarmlite.api.routes import CONFIG_ROUTES, SECRET_ROUTES
from swarmlite.api.secret import MAX_CONTENT
from swarmlite.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from swarmlite.log import kv
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.names import check_name
from swarmlite.manager.controlapi.router import Router
from swarmlite.rpc import Peer
from swarmlite.store import ReadTx, Tx

log = logging.getLogger(__name__)

Blob = Secret | Config


def users(state: ReadTx, blob: Blob) -> list[str]:
    """The names of the services whose tasks get ``blob`` as a file, sorted."""
    found = set()
    for service in state.list(Service):
        container = service.spec.task.container
        refs = container.secrets if isinstance(blob, Secret) else container.configs
        if any(ref.name == blob.spec.name for ref in refs):
            found.add(service.spec.name)
    return sorted(found)


def check_create(kind: type[Blob], name: str, data: bytes) -> None:
    """What a new secret or config needs before anything is looked up."""
    check_name(kind.KIND, name)
    if not 0 < len(data) <= MAX_CONTENT:
        raise InvalidArgument(
            f"{kind.KIND} {name}: the content is {len(data)} bytes; "
            f"it must be 1 byte to {MAX_CONTENT // 1024} KiB"
        )


def shown(blob: Blob, services: list[str]) -> BlobView:
    """What a reply may carry: a secret without its content."""
    if isinstance(blob, Secret):
        blob = msgspec.structs.replace(blob, spec=msgspec.structs.replace(blob.spec, data=b""))
    return BlobView(object=blob, services=services)


class BlobAPI:
    """One kind's calls: ``BlobAPI(ctx, Secret)`` serves the secret paths, ``Config`` the
    config ones."""

    def __init__(self, ctx: ManagerContext, kind: type[Blob]) -> None:
        self.ctx = ctx
        self.kind = kind
        self.routes = SECRET_ROUTES if kind is Secret else CONFIG_ROUTES

    def register(self, router: Router) -> None:
        router.unary(self.routes.create, self.create)
        router.unary(self.routes.ls, self.ls)
        router.unary(self.routes.inspect, self.inspect)
        router.unary(self.routes.rm, self.rm)

    def _make(self, req: BlobCreate) -> Blob:
        if self.kind is Secret:
            spec = SecretSpec(name=req.name, data=req.data, labels=req.labels)
            return Secret(id=new_id(), spec=spec)
        return Config(id=new_id(), spec=ConfigSpec(name=req.name, data=req.data, labels=req.labels))

    async def create(self, req: BlobCreate, peer: Peer) -> BlobView:
        check_create(self.kind, req.name, req.data)
        blob = self._make(req)
        kind = self.kind.KIND

        def write(state: ReadTx) -> Tx:
            if state.get_by_name(self.kind, req.name) is not None:
                raise AlreadyExists(
                    f"{kind} {req.name} already exists",
                    hint=f"{kind}s cannot change: give the new content another name "
                    f"(e.g. {req.name}_v2)",
                )
            return Tx().create(blob)

        await self.ctx.store.update(write)
        log.info("%s created %s", kind, kv(name=req.name, id=blob.id, size=len(req.data)))
        return shown(self.ctx.store.memory.get(self.kind, blob.id) or blob, [])

    async def ls(self, req: ListRequest, peer: Peer) -> BlobList:
        memory = self.ctx.store.memory
        blobs = sorted(memory.list(self.kind), key=lambda b: (b.spec.name, b.id))
        match = match_secrets if self.kind is Secret else match_configs
        return BlobList(items=match(req.filters, [shown(b, users(memory, b)) for b in blobs]))

    async def inspect(self, req: NameRef, peer: Peer) -> BlobView:
        memory = self.ctx.store.memory
        blob = self.ctx.resolve_named(memory, self.kind, req.ref)
        return shown(blob, users(memory, blob))

    async def rm(self, req: NameRef, peer: Peer) -> BlobView:
        removed: list[Blob] = []

        def write(state: ReadTx) -> Tx:
            removed.clear()
            blob = self.ctx.resolve_named(state, self.kind, req.ref)
            using = users(state, blob)
            if using:
                raise FailedPrecondition(
                    f"{blob.KIND} {blob.spec.name} is in use by service {', '.join(using)}",
                    hint="remove those services (or their stacks) first",
                    details={"services": using},
                )
            removed.append(blob)
            return Tx().delete(blob)

        await self.ctx.store.update(write)
        [blob] = removed
        log.info("%s removed %s", blob.KIND, kv(name=blob.spec.name, id=blob.id))
        return shown(blob, [])
