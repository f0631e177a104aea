"""Serving the route table on a manager: the leader answers, a follower forwards.

Owns the one prologue every control call shares. ``rpc`` has already checked the caller's
role against the route (``api.routes``); here a route marked ``leader`` is answered only
by a leader that has applied everything it committed (a read barrier), and a follower
sends it on to the leader as this node and hands back the leader's answer, so that every
client (the CLI, another manager, the Docker API front end) gets the same answer from any
manager. It also names who asked (``api/actor.py``) for the writes a call makes. Does not
own what a call does: the handlers in this package do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from swarmlite.api.actor import acting_as
from swarmlite.api.routes import Rep, Req, Route
from swarmlite.manager.context import ManagerContext
from swarmlite.rpc import Peer, RpcServer

Unary = Callable[[Req, Peer], Awaitable[Rep]]
Streaming = Callable[[Req, Peer], AsyncIterator[Rep]]


class Router:
    def __init__(self, ctx: ManagerContext, server: RpcServer) -> None:
        self.ctx = ctx
        self.server = server

    def unary(
        self,
        route: Route[Req, Rep],
        handler: Unary[Req, Rep],
        *,
        outgoing: Callable[[Req], Req] | None = None,
        incoming: Callable[[Rep], Rep] | None = None,
    ) -> None:
        """Serve ``route`` with ``handler`` on the leader. A follower forwards the request
        (first passed through ``outgoing``: what only this node can fill in, such as
        "this node") and passes the leader's answer through ``incoming`` (what differs
        when seen from here)."""

        async def serve(request: Req, peer: Peer) -> Rep:
            with acting_as(self.actor_of(peer)):
                if not route.leader or await self.ctx.answers_here():
                    return await handler(request, peer)
                sent = outgoing(request) if outgoing is not None else request
                reply = await self.ctx.forward(route, sent)
                return incoming(reply) if incoming is not None else reply

        self.server.add_route(route, serve)

    def actor_of(self, peer: Peer) -> str:
        """Who asked, as the store records it: the local admin (or the front end that says
        it calls for someone, e.g. ``docker-api``) at this node; the original caller of a
        call another manager forwarded; otherwise the calling node and its role."""
        claimed = peer.on_behalf_of
        if peer.local:
            return claimed if "@" in claimed else f"{claimed or 'admin'}@{self.ctx.node_id}"
        identity = peer.identity
        if identity is None:
            return f"anonymous@{peer.address}"
        if identity.role == "manager" and claimed:
            return claimed
        return f"{identity.role}@{identity.node_id}"

    def stream(self, route: Route[Req, Rep], handler: Streaming[Req, Rep]) -> None:
        """Serve the streaming ``route``; a follower relays the leader's items."""

        async def serve(request: Req, peer: Peer) -> AsyncIterator[Rep]:
            if not route.leader or await self.ctx.answers_here():
                items = handler(request, peer)
            else:
                items = self.ctx.relay(route, request)
            async for item in items:
                yield item

        self.server.add_route(route, serve)
