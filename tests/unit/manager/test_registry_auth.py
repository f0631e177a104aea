"""`--with-registry-auth` on the manager: the control API keeps a service's registry
credentials with it (a new set replaces the old, none keeps them, a change of only them
replaces no task) and never shows them; the dispatcher sends them only to the nodes that
are to run the service's tasks. A real store (LocalProposer), no server."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from swarmlite.api import STACK_LABEL, Service, TaskState
from swarmlite.api.control import (
    Assignments,
    ManagerMessage,
    NameRef,
    ServiceCreate,
    ServiceFilter,
    ServiceUpdate,
    StackDeploy,
)
from swarmlite.api.registryauth import RegistryAuth
from swarmlite.errors import InvalidArgument
from swarmlite.manager.context import ManagerContext
from swarmlite.manager.controlapi.services import ServiceAPI
from swarmlite.manager.dispatcher.dispatcher import Dispatcher, _Session
from swarmlite.rpc import Peer
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_service, make_task

LOGIN = RegistryAuth(server="reg:5000", username="ci", password="s3cret")
NEWER = RegistryAuth(server="reg:5000", username="ci", password="n3wer")
PEER = Peer(identity=None, address="local")
replace = msgspec.structs.replace


@pytest.fixture
def ctx() -> ManagerContext:
    memory = MemoryStore()
    clock = FakeClock()
    raft: Any = None  # the calls tested here need no raft member
    return ManagerContext(
        node_id="m1",
        cluster_id="c1",
        addr="10.0.0.1:2377",
        store=Store(memory, LocalProposer(memory), clock=clock),
        raft=raft,
        clock=clock,
        client_ssl=lambda: pytest.fail("no call leaves this manager"),
    )


def _stored(ctx: ManagerContext, name: str) -> Service:
    found = ctx.store.memory.get_by_name(Service, name)
    assert found is not None
    return found


async def test_credentials_are_kept_with_the_service_and_never_shown(ctx: ManagerContext) -> None:
    api = ServiceAPI(ctx, logs=None)  # type: ignore[arg-type]
    spec = make_service("web", image="reg:5000/web:1").spec
    view = await api.service_create(ServiceCreate(spec=spec, registry_auth=LOGIN), PEER)
    assert view.service.registry_auth is None
    assert _stored(ctx, "web").registry_auth == LOGIN
    assert (await api.service_inspect(NameRef(ref="web"), PEER)).service.registry_auth is None
    listed = await api.service_ls(ServiceFilter(), PEER)
    assert [v.service.registry_auth for v in listed.services] == [None]
    assert "s3cret" not in repr(_stored(ctx, "web"))

    # An update without credentials keeps them; with new ones, and nothing else, it
    # replaces them and no task (the spec and its version stay).
    before = _stored(ctx, "web")
    scaled = replace(before.spec, replicas=2)
    await api.service_update(ServiceUpdate(ref="web", spec=scaled), PEER)
    assert _stored(ctx, "web").registry_auth == LOGIN
    same = _stored(ctx, "web")
    await api.service_update(ServiceUpdate(ref="web", spec=scaled, registry_auth=NEWER), PEER)
    after = _stored(ctx, "web")
    assert after.registry_auth == NEWER
    assert (after.spec, after.spec_version) == (same.spec, same.spec_version)


async def test_a_stack_deploy_gives_each_named_service_its_credentials(
    ctx: ManagerContext,
) -> None:
    api = ServiceAPI(ctx, logs=None)  # type: ignore[arg-type]

    def spec(name: str, image: str) -> Any:
        made = make_service(f"shop_{name}", image=image).spec
        return replace(made, labels={STACK_LABEL: "shop"})

    services = [spec("web", "reg:5000/web:1"), spec("db", "postgres:16")]
    request = StackDeploy(name="shop", services=services, registry_auth={"shop_web": LOGIN})
    await api.stack_deploy(request, PEER)
    assert _stored(ctx, "shop_web").registry_auth == LOGIN
    assert _stored(ctx, "shop_db").registry_auth is None
    # Deployed again, unchanged, with new credentials: only they change.
    again = replace(request, registry_auth={"shop_web": NEWER})
    reply = await api.stack_deploy(again, PEER)
    assert sorted(reply.unchanged) == ["shop_db", "shop_web"]
    assert _stored(ctx, "shop_web").registry_auth == NEWER
    # ... and without any, they stay.
    await api.stack_deploy(replace(request, registry_auth={}), PEER)
    assert _stored(ctx, "shop_web").registry_auth == NEWER


async def test_credentials_that_cannot_work_are_refused_up_front(ctx: ManagerContext) -> None:
    api = ServiceAPI(ctx, logs=None)  # type: ignore[arg-type]
    spec = replace(make_service("shop_web").spec, labels={STACK_LABEL: "shop"})
    with pytest.raises(InvalidArgument, match="service shop_api, which the stack does not"):
        await api.stack_deploy(
            StackDeploy(name="shop", services=[spec], registry_auth={"shop_api": LOGIN}), PEER
        )
    with pytest.raises(InvalidArgument, match="hold no user name, password or token"):
        await api.service_create(
            ServiceCreate(spec=make_service("web").spec, registry_auth=RegistryAuth(server="r")),
            PEER,
        )
    assert ctx.store.memory.list(Service) == []


class Stream:
    def __init__(self) -> None:
        self.sent: list[ManagerMessage] = []

    async def send(self, frame: bytes) -> None:
        self.sent.append(msgspec.msgpack.decode(frame, type=ManagerMessage))


async def test_credentials_go_only_to_nodes_that_are_to_run_the_services_tasks(
    ctx: ManagerContext,
) -> None:
    private = replace(make_service("private", id="s1"), registry_auth=LOGIN)
    public = make_service("public", id="s2")
    tx = Tx().create(private).create(public)
    tx.create(make_task(private, id="t1", node_id="n1", state=TaskState.RUNNING))
    tx.create(make_task(public, id="t2", node_id="n2", state=TaskState.RUNNING))
    # A task of the private service that n3 still has to stop: nothing to pull there.
    tx.create(
        make_task(
            private, id="t3", node_id="n3", state=TaskState.RUNNING, desired=TaskState.SHUTDOWN
        )
    )
    await ctx.store.propose(tx)
    dispatcher = Dispatcher(ctx, logs=None, heartbeats=None)  # type: ignore[arg-type]
    sent: dict[str, Stream] = {}
    sessions: dict[str, _Session] = {}
    for node in ("n1", "n2", "n3"):
        sent[node] = Stream()
        sessions[node] = _Session(node, sent[node])  # type: ignore[arg-type]
        await dispatcher.push_assignments(sessions[node])

    def auth(node: str) -> dict[str, RegistryAuth]:
        (message,) = [m for m in sent[node].sent if isinstance(m, Assignments)][-1:]
        return message.registry_auth

    assert auth("n1") == {"s1": LOGIN}
    assert auth("n2") == {} and auth("n3") == {}

    # New credentials reach n1 although its tasks did not change.
    await ctx.store.propose(Tx().update(replace(_stored(ctx, "private"), registry_auth=NEWER)))
    await dispatcher.push_assignments(sessions["n1"])
    assert auth("n1") == {"s1": NEWER}
    assert len([m for m in sent["n1"].sent if isinstance(m, Assignments)]) == 2
