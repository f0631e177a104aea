import msgspec
import pytest

from swarmlite.api import (
    Config,
    ConfigSpec,
    Node,
    NodeRole,
    Secret,
    SecretSpec,
    Service,
    ServiceMode,
    Task,
    TaskState,
)
from swarmlite.api.control import BlobView, ManagerStatus, NetworkView, NodeView, ServiceView
from swarmlite.api.filters import (
    NODE,
    filters_from_json,
    match_configs,
    match_networks,
    match_nodes,
    match_secrets,
    match_services,
    match_tasks,
    parse_filters,
)
from swarmlite.errors import InvalidArgument, NotFound
from swarmlite.testing.factories import (
    make_network,
    make_node,
    make_service,
    make_task,
    with_networks,
)

# --------------------------------------------------------------------------- parsing


def test_parse_filters_groups_values_by_key_as_docker_cli_does() -> None:
    assert parse_filters(["label=a=b", " Name =web ", "label=c", "label=c", ""]) == {
        "label": ["a=b", "c"],
        "name": ["web"],
    }


def test_parse_filters_refuses_an_argument_without_equals_in_dockers_words() -> None:
    with pytest.raises(InvalidArgument, match=r"^bad format of filter \(expected name=value\)$"):
        parse_filters(["name"])


def test_filters_from_json_takes_both_forms_of_the_engine_api() -> None:
    assert filters_from_json('{"label":{"a=b":true,"c":true}}') == {"label": ["a=b", "c"]}
    assert filters_from_json('{"service":["web"]}') == {"service": ["web"]}
    assert filters_from_json("") == {}


@pytest.mark.parametrize("text", ["{", "[]", '{"a": "b"}', '{"a": [1]}'])
def test_filters_from_json_refuses_other_shapes(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid filter$"):
        filters_from_json(text)


def test_an_unknown_key_is_refused_in_dockers_words_with_the_known_keys() -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'colour'$") as caught:
        match_nodes({"colour": ["red"]}, [])
    assert caught.value.hint is not None and "node.label" in caught.value.hint
    with pytest.raises(InvalidArgument, match=r"^invalid filter 'names'$"):
        match_configs({"names": ["x"]}, [])  # configs have no `names`, secrets do


def test_no_filters_select_everything_in_order() -> None:
    nodes = [make_node(hostname=h) for h in ("c", "a", "b")]
    assert match_nodes({}, nodes) == nodes
    NODE.check({})


# --------------------------------------------------------------------------- nodes


def test_node_name_is_a_hostname_prefix_and_id_an_id_prefix() -> None:
    a = make_node("aaa1" + "0" * 21, hostname="web-1")
    b = make_node("bbb1" + "0" * 21, hostname="web-2")
    c = make_node("aaa2" + "0" * 21, hostname="db-1")
    nodes = [a, b, c]
    assert match_nodes({"name": ["web"]}, nodes) == [a, b]
    assert match_nodes({"name": ["eb"]}, nodes) == []  # a prefix, not a substring
    assert match_nodes({"id": ["aaa"]}, nodes) == [a, c]
    # values of one key OR, keys AND
    assert match_nodes({"name": ["db", "web-2"]}, nodes) == [b, c]
    assert match_nodes({"name": ["web"], "id": ["aaa"]}, nodes) == [a]


def test_node_label_matches_spec_labels_every_value_holding() -> None:
    a = make_node(labels={"zone": "a", "ssd": "yes"})
    b = make_node(labels={"zone": "b", "ssd": "yes"})
    c = make_node(labels={"zone": "a"})
    nodes = [a, b, c]
    assert match_nodes({"node.label": ["zone=a"]}, nodes) == [a, c]
    assert match_nodes({"node.label": ["ssd"]}, nodes) == [a, b]
    assert match_nodes({"node.label": ["zone=a", "ssd"]}, nodes) == [a]  # ANDed, as swarmkit
    assert match_nodes({"node.label": ["ssd="]}, nodes) == [a, b]  # `k=`: present


def test_node_label_filter_reads_engine_labels_which_swarmlite_nodes_lack() -> None:
    assert match_nodes({"label": ["zone"]}, [make_node(labels={"zone": "a"})]) == []


def test_node_role_and_membership_are_checked_and_case_insensitive() -> None:
    manager = make_node(role=NodeRole.MANAGER)
    worker = make_node()
    assert match_nodes({"role": ["Manager"]}, [manager, worker]) == [manager]
    assert match_nodes({"role": [""]}, [manager, worker]) == [manager, worker]
    assert match_nodes({"membership": ["accepted"]}, [manager]) == [manager]
    assert match_nodes({"membership": ["pending"]}, [manager]) == []
    with pytest.raises(InvalidArgument, match=r"^Invalid role filter: 'boss'$"):
        match_nodes({"role": ["boss"]}, [manager])
    with pytest.raises(InvalidArgument, match=r"^Invalid membership filter: 'maybe'$"):
        match_nodes({"membership": ["maybe"]}, [manager])


def test_node_views_are_selected_and_returned_as_views() -> None:
    views = [
        NodeView(node=make_node(hostname="m1", role="manager"), manager=ManagerStatus(addr="x")),
        NodeView(node=make_node(hostname="w1")),
    ]
    assert match_nodes({"role": ["worker"]}, views) == [views[1]]


# --------------------------------------------------------------------------- services


def test_service_filters_name_prefix_label_and_mode() -> None:
    web = make_service("shop_web", labels={"com.docker.stack.namespace": "shop"})
    api = make_service("shop_api", mode=ServiceMode.GLOBAL)
    job = make_service("migrate", mode=ServiceMode.REPLICATED_JOB)
    services = [web, api, job]
    assert match_services({"name": ["shop_"]}, services) == [web, api]
    assert match_services({"label": ["com.docker.stack.namespace=shop"]}, services) == [web]
    assert match_services({"label": ["com.docker.stack.namespace"]}, services) == [web]
    assert match_services({"mode": ["global"]}, services) == [api]
    assert match_services({"mode": ["replicated-job", "replicated"]}, services) == [web, job]
    assert match_services({"mode": ["sometimes"]}, services) == []  # Docker does not check
    assert match_services({"runtime": ["container"]}, services) == services
    assert match_services({"id": [api.id[:5]]}, services) == [api]


def test_service_views_are_selected() -> None:
    views = [ServiceView(service=make_service(n), running=0, desired=1) for n in ("a", "b")]
    assert match_services({"name": ["b"]}, views) == [views[1]]


# --------------------------------------------------------------------------- tasks


def _cluster() -> tuple[list[Service], list[Node], list[Task]]:
    web = make_service("shop_web", labels={"com.docker.stack.namespace": "shop"}, spec_version=2)
    api = make_service("shop_api", mode=ServiceMode.GLOBAL)
    n1 = make_node(hostname="node-1")
    n2 = make_node(hostname="node-2")
    tasks = [
        make_task(web, slot=1, node_id=n1.id, state="running"),
        make_task(web, slot=2, node_id=n2.id, state="running"),
        msgspec.structs.replace(
            make_task(web, slot=1, node_id=n1.id, state="shutdown", desired="shutdown"),
            spec_version=1,
        ),
        make_task(api, slot=0, node_id=n2.id, state="running"),
    ]
    return [web, api], [n1, n2], tasks


def test_task_service_filter_takes_a_name_an_id_or_a_unique_id_prefix() -> None:
    services, nodes, tasks = _cluster()
    web, api = services
    for ref in ("shop_web", web.id, web.id[:6]):
        got = match_tasks({"service": [ref]}, tasks, services=services, nodes=nodes)
        assert got == tasks[:3]
    both = match_tasks({"service": ["shop_web", api.id]}, tasks, services=services, nodes=nodes)
    assert both == tasks


def test_task_service_or_node_that_names_nothing_is_not_found() -> None:
    services, nodes, tasks = _cluster()
    with pytest.raises(NotFound, match=r"^service nope not found$"):
        match_tasks({"service": ["nope"]}, tasks, services=services, nodes=nodes)
    with pytest.raises(NotFound, match=r"^node nope not found$"):
        match_tasks({"node": ["nope"]}, tasks, services=services, nodes=nodes)


def test_task_service_prefix_naming_two_is_ambiguous() -> None:
    a = make_service("a", id="abc" + "0" * 22)
    b = make_service("b", id="abd" + "0" * 22)
    with pytest.raises(InvalidArgument, match=r"^service ab is ambiguous \(2 matches found\)$"):
        match_tasks({"service": ["ab"]}, [], services=[a, b])


def test_task_node_filter_takes_a_hostname_or_an_id() -> None:
    services, nodes, tasks = _cluster()
    n1 = nodes[0]
    assert match_tasks({"node": ["node-2"]}, tasks, services=services, nodes=nodes) == [
        tasks[1],
        tasks[3],
    ]
    assert match_tasks({"node": [n1.id]}, tasks, services=services, nodes=nodes) == [
        tasks[0],
        tasks[2],
    ]


def test_task_name_is_service_slot_or_node_then_task_id() -> None:
    services, nodes, tasks = _cluster()
    assert match_tasks({"name": ["shop_web.1"]}, tasks, services=services) == [tasks[0], tasks[2]]
    assert match_tasks({"name": [f"shop_web.1.{tasks[0].id}"]}, tasks, services=services) == [
        tasks[0]
    ]
    assert match_tasks({"name": [f"shop_api.{nodes[1].id}"]}, tasks, services=services) == [
        tasks[3]
    ]


def test_task_desired_state_label_and_up_to_date() -> None:
    services, _, tasks = _cluster()

    def select(filters: dict[str, list[str]]) -> list[Task]:
        return match_tasks(filters, tasks, services=services)

    assert select({"desired-state": ["Running"]}) == [tasks[0], tasks[1], tasks[3]]
    assert select({"desired-state": ["shutdown", "accepted"]}) == [tasks[2]]
    assert select({"desired-state": [""]}) == tasks  # an empty value is dropped, as dockerd does
    with pytest.raises(InvalidArgument, match=r"^Invalid desired-state filter: 'asleep'$"):
        select({"desired-state": ["asleep"]})
    # `label` reads the service's labels
    assert select({"label": ["com.docker.stack.namespace=shop"]}) == tasks[:3]
    # `_up-to-date`: made from the service's current spec
    assert select({"_up-to-date": ["true"]}) == [tasks[0], tasks[1], tasks[3]]


def test_task_of_a_service_unknown_to_the_caller_has_no_labels() -> None:
    task = msgspec.structs.replace(make_task(make_service("gone")), service_labels={})
    assert match_tasks({"label": ["x"]}, [task]) == []
    assert match_tasks({"desired-state": [TaskState.RUNNING.value]}, [task]) == [task]


def test_task_label_reads_the_labels_the_task_was_made_with_even_once_its_service_is_gone() -> None:
    """`docker stack rm` waits for the stack's tasks by label after removing the services."""
    task = msgspec.structs.replace(
        make_task(make_service("gone")), service_labels={"com.docker.stack.namespace": "app"}
    )
    assert match_tasks({"label": ["com.docker.stack.namespace=app"]}, [task]) == [task]
    assert match_tasks({"label": ["com.docker.stack.namespace=other"]}, [task]) == []


# --------------------------------------------------------------------------- networks


def test_network_name_and_id_match_exactly_or_as_a_regex() -> None:
    front = make_network("app_front", id="f" * 25)
    back = make_network("app_back")
    other = make_network("myapp_x")
    nets = [front, back, other]
    assert match_networks({"name": ["^app_"]}, nets) == [front, back]
    assert match_networks({"name": ["app_"]}, nets) == nets  # found anywhere
    assert match_networks({"name": ["app_back"]}, nets) == [back]
    assert match_networks({"name": ["(["]}, nets) == []  # not a regex: exact only
    assert match_networks({"id": ["fff"]}, nets) == [front]


def test_network_driver_scope_type_and_labels() -> None:
    a = make_network("a", labels={"env": "prod", "tier": ""})
    b = make_network("b", labels={"env": "dev"})
    nets = [a, b]
    assert match_networks({"driver": ["overlay"]}, nets) == nets
    assert match_networks({"driver": ["bridge"]}, nets) == []
    assert match_networks({"scope": ["swarm"]}, nets) == nets
    assert match_networks({"scope": ["local"]}, nets) == []
    assert match_networks({"type": ["custom"]}, nets) == nets
    assert match_networks({"type": ["builtin"]}, nets) == []
    assert match_networks({"label": ["env=prod"]}, nets) == [a]
    assert match_networks({"label": ["env"]}, nets) == nets
    assert match_networks({"label": ["tier="]}, nets) == [a]  # moby: `k=` is an empty value
    with pytest.raises(InvalidArgument, match=r"^invalid filter: 'type'='odd'$"):
        match_networks({"type": ["odd"]}, nets)


def test_network_dangling_from_views_or_from_services() -> None:
    used = make_network("used")
    idle = make_network("idle")
    views = [NetworkView(network=used, services=["web"]), NetworkView(network=idle)]
    assert match_networks({"dangling": ["true"]}, views) == [views[1]]
    assert match_networks({"dangling": ["0"]}, views) == [views[0]]
    web = with_networks(make_service("web"), "used")
    assert match_networks({"dangling": ["1"]}, [used, idle], services=[web]) == [idle]
    by_id = with_networks(make_service("api"), idle.id)
    assert match_networks({"dangling": ["false"]}, [used, idle], services=[web, by_id]) == [
        used,
        idle,
    ]


def test_network_dangling_takes_one_boolean() -> None:
    with pytest.raises(
        InvalidArgument, match=r'^got more than one value for filter key "dangling"$'
    ):
        match_networks({"dangling": ["true", "false"]}, [])
    with pytest.raises(InvalidArgument, match=r"^invalid value for filter 'dangling'"):
        match_networks({"dangling": ["yes"]}, [])


# --------------------------------------------------------------------------- secrets, configs


def test_secret_name_is_a_prefix_and_names_exact() -> None:
    a = Secret(id="a" * 25, spec=SecretSpec(name="app_db", labels={"k": "v"}))
    b = Secret(id="b" * 25, spec=SecretSpec(name="app_db_old"))
    assert match_secrets({"name": ["app_db"]}, [a, b]) == [a, b]
    assert match_secrets({"names": ["app_db"]}, [a, b]) == [a]
    assert match_secrets({"label": ["k=v"]}, [a, b]) == [a]
    assert match_secrets({"id": ["bb"]}, [a, b]) == [b]
    views = [BlobView(object=a), BlobView(object=b, services=["web"])]
    assert match_secrets({"name": ["app_db_"]}, views) == [views[1]]


def test_config_filters() -> None:
    c = Config(id="c" * 25, spec=ConfigSpec(name="nginx_conf", labels={"stack": "x"}))
    assert match_configs({"name": ["nginx"], "label": ["stack=x"]}, [c]) == [c]
    assert match_configs({"label": ["stack=y"]}, [c]) == []
