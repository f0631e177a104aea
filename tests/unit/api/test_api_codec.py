import msgspec
import pytest

from swarmlite.api import (
    KINDS,
    Cluster,
    Config,
    ContainerSpec,
    Network,
    Node,
    NodeRole,
    NodeSpec,
    NodeStatus,
    Secret,
    SecretSpec,
    Service,
    ServiceSpec,
    Task,
    TaskState,
    TaskStatus,
    TaskTemplate,
    decode,
    decode_json,
    decode_object,
    encode,
    encode_json,
    encode_object,
    kind_type,
    to_builtins,
)
from swarmlite.errors import InvalidArgument

SAMPLES = [
    Node(
        id="n1",
        spec=NodeSpec(role=NodeRole.MANAGER, labels={"zone": "a"}),
        status=NodeStatus(hostname="server-1", addresses=("10.0.0.1",)),
    ),
    Service(
        id="s1",
        spec=ServiceSpec(
            name="web", task=TaskTemplate(container=ContainerSpec(image="nginx")), replicas=3
        ),
    ),
    Task(id="t1", service_id="s1", slot=2, status=TaskStatus(state=TaskState.RUNNING)),
    Network(id="w1"),
    Secret(id="x1", spec=SecretSpec(name="db", data=b"\x00\xffpw")),
    Config(id="c1"),
    Cluster(id="k1"),
]


def test_registry_names_every_kind_once() -> None:
    assert set(KINDS) == {"node", "service", "task", "network", "secret", "config", "cluster"}
    assert {type(obj) for obj in SAMPLES} == set(KINDS.values())
    assert kind_type("task") is Task


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: o.KIND)
def test_every_kind_round_trips_through_msgpack_and_json(obj: msgspec.Struct) -> None:
    assert decode_object(encode_object(obj)) == obj  # type: ignore[arg-type]
    assert decode(encode(obj), type(obj)) == obj
    assert decode_json(encode_json(obj), type(obj)) == obj


def test_json_shows_kind_and_state_names() -> None:
    doc = to_builtins(SAMPLES[2])
    assert doc["kind"] == "task"
    assert doc["status"]["state"] == "running"
    assert b'"desired_state":"running"' in encode_json(SAMPLES[2])


def test_old_data_without_new_fields_still_decodes() -> None:
    service = decode_json(b'{"kind": "service", "id": "s1", "spec": {"name": "web"}}', Service)
    assert service.spec.replicas == 1 and service.version == 0


def test_malformed_bytes_are_invalid_argument_saying_what() -> None:
    with pytest.raises(InvalidArgument, match="malformed object"):
        decode_object(b"\xc1\x00")
    with pytest.raises(InvalidArgument, match="malformed node"):
        decode(b"\x93\x01", Node, what="node")


def test_mistyped_field_names_its_path() -> None:
    bad = b'{"kind": "service", "id": "s1", "spec": {"replicas": "three"}}'
    with pytest.raises(InvalidArgument, match=r"\$\.spec\.replicas"):
        decode_json(bad, Service, what="service")


def test_unknown_kind_is_invalid_argument_listing_known_kinds() -> None:
    data = encode({"kind": "volume", "id": "v1"})
    with pytest.raises(InvalidArgument, match="'volume'") as info:
        decode_object(data)
    assert info.value.hint is not None and "service" in info.value.hint
    with pytest.raises(InvalidArgument, match="unknown object kind 'volume'") as info:
        kind_type("volume")
    assert info.value.hint is not None and "node" in info.value.hint


def test_objects_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SAMPLES[1].version = 3  # type: ignore[misc]
