"""The rules of `swarmlite secret|config create|rm` without a server: which names and
contents `create` refuses (``check_create``), which services use a secret or a config
(``users``: a secret and a config of the same name are different things), and that a
reply never carries a secret's content (``shown``)."""

from __future__ import annotations

import msgspec
import pytest

from swarmlite.api import Config, ConfigSpec, FileRef, Secret, SecretSpec, Service
from swarmlite.api.secret import MAX_CONTENT
from swarmlite.errors import InvalidArgument
from swarmlite.manager.controlapi.blobs import check_create, shown, users
from swarmlite.manager.controlapi.names import MAX_NAME
from swarmlite.store import LocalProposer, MemoryStore, Store, Tx
from swarmlite.testing.clock import FakeClock
from swarmlite.testing.factories import make_service

replace = msgspec.structs.replace


def using(
    service: Service, *, secrets: tuple[str, ...] = (), configs: tuple[str, ...] = ()
) -> Service:
    container = replace(
        service.spec.task.container,
        secrets=[FileRef(name=n, target=n) for n in secrets],
        configs=[FileRef(name=n, target=f"/etc/{n}") for n in configs],
    )
    task = replace(service.spec.task, container=container)
    return replace(service, spec=replace(service.spec, task=task))


@pytest.mark.parametrize("name", ["db_pass", "a", "site.conf-v2", "0token", "x" * MAX_NAME])
def test_good_names_and_contents_pass(name: str) -> None:
    check_create(Secret, name, b"x")
    check_create(Config, name, b"y" * MAX_CONTENT)


@pytest.mark.parametrize(
    "name", ["", "db pass", "-lead", "_lead", "a/b", "é", "x" * (MAX_NAME + 1)]
)
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_create(Config, name, b"x")
    assert refused.value.message == f"config name {name!r} is not valid"
    assert refused.value.hint is not None and "at most 64 characters" in refused.value.hint


@pytest.mark.parametrize("size", [0, MAX_CONTENT + 1])
def test_empty_or_too_large_content_is_refused(size: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_create(Secret, "db_pass", b"x" * size)
    assert refused.value.message == (
        f"secret db_pass: the content is {size} bytes; it must be 1 byte to 500 KiB"
    )


async def test_users_are_the_services_that_name_it_of_its_own_kind() -> None:
    memory = MemoryStore()
    store = Store(memory, LocalProposer(memory), clock=FakeClock())
    db_secret = Secret(id="s1", spec=SecretSpec(name="shared", data=b"1"))
    db_config = Config(id="c1", spec=ConfigSpec(name="shared", data=b"2"))
    tx = Tx().create(db_secret).create(db_config)
    tx.create(using(make_service("shop_db", id="v1"), secrets=("shared", "other")))
    tx.create(using(make_service("shop_api", id="v2"), secrets=("shared",), configs=("site",)))
    tx.create(using(make_service("shop_web", id="v3"), configs=("shared",)))
    tx.create(make_service("lonely", id="v4"))
    await store.propose(tx)

    assert users(memory, db_secret) == ["shop_api", "shop_db"]
    assert users(memory, db_config) == ["shop_web"]


def test_a_secret_is_shown_without_its_content_a_config_with_it() -> None:
    secret = Secret(id="s1", spec=SecretSpec(name="db_pass", data=b"hunter2", labels={"a": "b"}))
    config = Config(id="c1", spec=ConfigSpec(name="site", data=b"listen 80;"))

    view = shown(secret, ["shop_db"])
    assert view.object.spec == SecretSpec(name="db_pass", data=b"", labels={"a": "b"})
    assert view.services == ["shop_db"]
    assert b"hunter2" not in msgspec.msgpack.encode(view)
    assert shown(config, []).object == config
