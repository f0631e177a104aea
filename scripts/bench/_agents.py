"""Many real swarmlite agents in one process: the worker side of `scale.py --agents`.

Each agent is a node as the managers see it: it joins with the worker token as `swarmlite
join` does (fetches the CA and checks it against the token's digest, makes its own key and
CSR, has the cluster CA sign it through the JOIN endpoint), then runs a real
`swarmlite.agent.session.Session` (mutual TLS stream to the leader's dispatcher,
heartbeats, failover) and a real `swarmlite.agent.worker.Worker` on a
`swarmlite.testing.fakeruntime.FakeRuntime` (so Assignments are answered with status
reports). Nothing is written to disk but the TLS contexts' short-lived temporary files.

Each agent speaks from its own loopback address (127.1.0.1, 127.1.0.2, ...: Linux answers
all of 127.0.0.0/8), as 1,000 hosts would: the managers limit connections and
certificate-less calls per source address, and one address for every agent would measure
that limit, not the cluster. Every TCP connection an agent's task opens (its join, its
session) binds its address: `aiohttp.TCPConnector` is given `local_addr` from a context
variable that each agent's task sets (its child tasks inherit it).

    python scripts/bench/_agents.py '{"token": ..., "managers": [...], "prefix": "agent-",
                                      "first": 0, "count": 250, "joins_in_flight": 8,
                                      "t0": <wall time of the start>}'

Owns only its agents. Writes JSON lines on stdout (the protocol with scale.py):
  {"ready": HOSTNAME, "s": S}    the agent's first SessionInfo came S s after t0 (the
                                  dispatcher sends it once the node is READY in the store)
  {"status": {"joined": J, "connected": C, "informed": I, "lost": L, "errors": E,
              "period_ms": P}, "by_manager": {ADDR: N}}
                                  every 2 s: sessions up now, sessions lost since start,
                                  the longest heartbeat period a manager asked for, and
                                  how many sessions each manager holds
It runs until killed (scale.py SIGKILLs it by pid).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from swarmlite import __version__
from swarmlite.agent.session import Session
from swarmlite.agent.worker import Worker
from swarmlite.api.control import JoinReply, JoinRequest, ManagerMessage, SessionHello, SessionInfo
from swarmlite.api.routes import JOIN
from swarmlite.ca import (
    NodeCredentials,
    anonymous_client_context,
    client_context,
    fetch_pinned_ca,
    new_key_and_csr,
    parse_token,
)
from swarmlite.clock import SystemClock
from swarmlite.errors import SwarmliteError
from swarmlite.rpc import RpcClient
from swarmlite.testing.fakeruntime import FakeRuntime

JOIN_ATTEMPTS = 20  # a loaded leader may answer Unavailable for a while

_source: contextvars.ContextVar[str | None] = contextvars.ContextVar("source", default=None)
_connector_init = aiohttp.TCPConnector.__init__


def _bound_connector_init(self: aiohttp.TCPConnector, *args: Any, **kwargs: Any) -> None:
    source = _source.get()
    if source is not None:
        kwargs.setdefault("local_addr", (source, 0))
    _connector_init(self, *args, **kwargs)


aiohttp.TCPConnector.__init__ = _bound_connector_init  # type: ignore[method-assign]


def source_addr(index: int) -> str:
    """Agent `index`'s own loopback address: 127.1.0.1 for 0; distinct up to 62,500."""
    return f"127.{1 + index // 62_500}.{index // 250 % 250}.{index % 250 + 1}"


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


@dataclass
class Counters:
    joined: int = 0
    informed: int = 0
    lost: int = 0  # sessions that were up and went down
    errors: int = 0
    sessions: list[Session] = field(default_factory=list)


async def _join(manager: str, token: str, hostname: str, addr: str) -> tuple[bytes, JoinReply]:
    """What `swarmlite join` does: the CA pinned by the token, a key, the CSR signed."""
    for attempt in range(JOIN_ATTEMPTS):
        try:
            ca_pem = await fetch_pinned_ca(manager, parse_token(token).ca_digest_hex)
            key_pem, csr_pem = new_key_and_csr()
            request = JoinRequest(
                token=token, csr_pem=csr_pem, hostname=hostname, addr=addr, version=__version__
            )
            client = RpcClient(f"https://{manager}", anonymous_client_context(ca_pem), timeout=30)
            try:
                return key_pem, await client.request(JOIN, request)
            finally:
                await client.close()
        except SwarmliteError as exc:
            if not exc.retryable or attempt == JOIN_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


async def _agent(
    index: int, config: dict[str, Any], gate: asyncio.Semaphore, counters: Counters
) -> None:
    source = source_addr(index)
    _source.set(source)  # this task's context: its connections and its children's
    hostname = f"{config['prefix']}{index:04d}"
    addr = f"{source}:2377"  # never dialled: a worker listens on nothing
    managers: list[str] = config["managers"]
    async with gate:
        manager = managers[index % len(managers)]  # followers forward the join
        key_pem, reply = await _join(manager, config["token"], hostname, addr)
    counters.joined += 1
    creds = NodeCredentials(cert_pem=reply.cert_pem, key_pem=key_pem, ca_cert_pem=reply.ca_cert_pem)
    context = client_context(creds)
    clock = SystemClock()
    runtime = FakeRuntime.with_test_images(
        clock, cluster_id=reply.cluster_id, node_id=reply.node_id
    )
    info = await runtime.info()
    t0: float = config["t0"]
    worker: Worker | None = None
    first = True

    async def on_info(message: SessionInfo) -> None:
        nonlocal first
        if first:
            first = False
            counters.informed += 1
            _emit({"ready": hostname, "s": round(time.time() - t0, 3)})

    async def on_message(message: ManagerMessage) -> None:
        if worker is not None:
            await worker.on_message(message)

    session = Session(
        SessionHello(
            node_id=reply.node_id,
            hostname=hostname,
            addr=addr,
            version=__version__,
            runtime=f"{info.name} {info.version}",
            os=info.os,
            arch=info.arch,
            nano_cpus=info.nano_cpus,
            memory_bytes=info.memory_bytes,
        ),
        reply.managers or managers,
        lambda: context,
        clock,
        on_info,
        on_message=on_message,
    )
    counters.sessions.append(session)
    worker = Worker(reply.node_id, reply.cluster_id, runtime, clock, session.send)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(session.run())
        tasks.create_task(worker.run())


async def _report(counters: Counters) -> None:
    was_up: dict[int, bool] = {}
    while True:
        connected = 0
        period = max((s.heartbeat_period for s in counters.sessions), default=0.0)
        by_manager: dict[str, int] = {}
        for position, session in enumerate(counters.sessions):
            up = session.connected_to is not None
            if was_up.get(position) and not up:
                counters.lost += 1
            was_up[position] = up
            connected += up
            if session.connected_to is not None:
                by_manager[session.connected_to] = by_manager.get(session.connected_to, 0) + 1
        _emit(
            {
                "status": {
                    "joined": counters.joined,
                    "connected": connected,
                    "informed": counters.informed,
                    "lost": counters.lost,
                    "errors": counters.errors,
                    "period_ms": round(period * 1000),
                },
                "by_manager": by_manager,
            }
        )
        await asyncio.sleep(2.0)


async def main(config: dict[str, Any]) -> None:
    counters = Counters()
    gate = asyncio.Semaphore(int(config.get("joins_in_flight", 8)))
    order = list(range(config["first"], config["first"] + config["count"]))
    random.Random(config["first"]).shuffle(order)  # joins spread over the managers

    async def one(index: int) -> None:
        try:
            await _agent(index, config, gate, counters)
        except* SwarmliteError as group:
            counters.errors += 1
            for exc in group.exceptions:
                print(f"agent {index}: {exc}", file=sys.stderr, flush=True)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(_report(counters))
        for index in order:
            tasks.create_task(one(index))


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("SWARMLITE_BENCH_LOG", "WARNING"))
    asyncio.run(main(json.loads(sys.argv[1])))
