"""The Docker Engine API of real daemons, driven by the real Docker clients: the docker CLI
28.2.2 (/usr/local/bin/docker, API 1.50) and Debian's 20.10 (/usr/bin/docker, API 1.41),
docker-py, and plain HTTP on the unix socket for what no client sends on purpose.

The cluster is the harness's `small_cluster` (managers m1, m2 and worker w1, no container
runtime): system, nodes, networks, secrets and configs need no task to run. Each test
asserts what a user sees: exit codes, rows, messages (reference docker-engine-api.md §11.3,
A1-A9, A25-A28). Marked `integration` (tests/integration/conftest.py).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from swarmlite.api.control import Empty, ListRequest
from swarmlite.api.routes import SECRET_LS, SWARM_INSPECT

Cluster = Any  # conftest.Cluster, through the `small_cluster` fixture
Node = Any  # conftest.Node

CLIS = {"28.2.2": "/usr/local/bin/docker", "20.10": "/usr/bin/docker"}
TIMEOUT = 60.0


def docker_sock(node: Node) -> Path:
    return Path(node.data_dir) / "docker.sock"


def run_docker(
    binary: str,
    node: Node,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    config_dir: Path,
) -> subprocess.CompletedProcess[str]:
    """`docker args...` against `node`'s Docker API socket, with an empty client config."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    environ |= {"DOCKER_HOST": f"unix://{docker_sock(node)}", "DOCKER_CONFIG": str(config_dir)}
    environ |= env or {}
    return subprocess.run(
        [binary, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environ,
        check=False,
    )


class Docker:
    """One docker CLI binary pointed at one node."""

    def __init__(self, version: str, binary: str, config_dir: Path, node: Node) -> None:
        self.version, self.binary, self.config_dir, self.node = version, binary, config_dir, node

    def on(self, node: Node) -> Docker:
        return Docker(self.version, self.binary, self.config_dir, node)

    def run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_docker(self.binary, self.node, *args, config_dir=self.config_dir, **kwargs)

    def ok(self, *args: str, **kwargs: Any) -> str:
        done = self.run(*args, **kwargs)
        assert done.returncode == 0, (
            f"docker {' '.join(args)} ({self.version}) exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout

    def fails(self, *args: str, **kwargs: Any) -> str:
        """The command must exit 1; returns its stderr."""
        done = self.run(*args, **kwargs)
        assert done.returncode == 1, (
            f"docker {' '.join(args)} ({self.version}) exited {done.returncode}, expected 1\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stderr


@pytest.fixture(scope="module")
def small(small_cluster: Cluster) -> Cluster:
    small_cluster.heal()
    return small_cluster


@pytest.fixture(params=sorted(CLIS), scope="module")
def docker(
    request: pytest.FixtureRequest, small: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Docker:
    version: str = request.param
    binary = CLIS[version]
    if shutil.which(binary) is None:
        pytest.fail(
            f"{binary} (docker CLI {version}) is not installed; scripts/setup installs it",
            pytrace=False,
        )
    return Docker(version, binary, tmp_path_factory.mktemp("docker-config"), small.nodes["m1"])


def _tag(docker: Docker) -> str:
    """A suffix keeping the objects of the two CLIs' runs apart."""
    return docker.version.split(".")[0]


# --------------------------------------------------------------------------- A1-A4


def test_version(docker: Docker) -> None:
    out = docker.ok("version")
    server = out.split("Server:", 1)[1]
    assert "API version:      1.47 (minimum version 1.24)" in server
    client = out.split("Server:", 1)[0]
    if docker.version == "28.2.2":
        assert "API version:       1.47 (downgraded from 1.50)" in client
    else:
        assert "API version:       1.41" in client


def test_info_on_a_manager(docker: Docker, small: Cluster) -> None:
    done = docker.run("info")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    cluster_id = small.call(SWARM_INSPECT, Empty()).id
    for line in (
        "Swarm: active",
        "Is Manager: true",
        f"ClusterID: {cluster_id}",
        "Managers: 2",
        "Nodes: 3",
        "Node Address: 127.0.0.1",
        "Name: m1",
    ):
        assert line in done.stdout, f"{line!r} missing from:\n{done.stdout}"


def test_info_on_a_worker_and_its_refusals(docker: Docker, small: Cluster) -> None:
    worker = docker.on(small.nodes["w1"])
    done = worker.run("info")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    assert "Is Manager: false" in done.stdout
    assert "ClusterID" not in done.stdout
    assert "Manager Addresses:" in done.stdout
    compose = 'version: "3.8"\nservices:\n  web:\n    image: nginx\n'
    deploy = worker.fails("stack", "deploy", "-c", "-", "app", stdin=compose)
    assert "this node is not a swarm manager" in deploy
    refused = worker.fails("node", "ls")
    assert (
        'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
        "connect this node to swarm and try again." in refused
    )


def test_node_ls(docker: Docker, small: Cluster) -> None:
    rows = docker.ok("node", "ls").splitlines()
    assert rows[0].split()[:2] == ["ID", "HOSTNAME"]
    body = [row.split() for row in rows[1:]]
    # `*` after the ID of the node answering; then hostname, status, availability.
    names = [row[2] if row[1] == "*" else row[1] for row in body]
    assert names == ["m1", "m2", "w1"]
    assert [row[1] for row in body].count("*") == 1
    assert body[0][1] == "*"
    assert sum("Leader" in row for row in body) == 1
    assert all("Ready" in row and "Active" in row for row in body)
    ids = docker.ok("node", "ls", "-q").split()
    assert len(ids) == 3
    assert all(len(node_id) == 25 for node_id in ids)
    w1_id = next(row[0] for row, name in zip(body, names, strict=True) if name == "w1")
    assert docker.ok("node", "ls", "-q", "--filter", "role=worker").split() == [w1_id]


# --------------------------------------------------------------------------- A5, node errors


def test_node_update_and_inspect(docker: Docker) -> None:
    try:
        assert docker.ok("node", "update", "--availability", "drain", "w1").strip() == "w1"
        spec = "{{.Spec.Availability}}"
        assert docker.ok("node", "inspect", "w1", "--format", spec).strip() == "drain"
        docker.ok("node", "update", "--label-add", "zone=a", "w1")
        labels = docker.ok("node", "inspect", "w1", "--format", "{{json .Spec.Labels}}")
        assert json.loads(labels) == {"zone": "a"}
        docker.ok("node", "update", "--label-rm", "zone", "w1")
        labels = docker.ok("node", "inspect", "w1", "--format", "{{json .Spec.Labels}}")
        assert json.loads(labels) == {}
    finally:
        docker.run("node", "update", "--availability", "active", "w1")
    assert docker.ok("node", "inspect", "w1", "--format", "{{.Spec.Availability}}") == "active\n"


def test_node_errors(docker: Docker) -> None:
    inspect = docker.fails("node", "inspect", "nope")
    update = docker.fails("node", "update", "--availability", "drain", "nope")
    if docker.version == "28.2.2":
        assert "Error response from daemon: node nope not found" in inspect
        assert "Error response from daemon: node nope not found" in update
    else:  # 20.10 words the 404 itself
        assert "No such node: nope" in inspect
        assert "No such node: nope" in update
    removing = docker.fails("node", "rm", "m2")
    assert "Error response from daemon: node m2 is a manager" in removing
    assert "must be demoted" in removing


def test_a_filter_docker_rejects_is_refused(docker: Docker) -> None:
    for listing in (("node", "ls"), ("service", "ls"), ("secret", "ls"), ("network", "ls")):
        refused = docker.fails(*listing, "-f", "colour=red")
        assert "invalid filter 'colour'" in refused, (listing, refused)
    assert "Invalid role filter: 'boss'" in docker.fails("node", "ls", "-f", "role=boss")


# --------------------------------------------------------------------------- A6-A9


def test_networks(docker: Docker) -> None:
    name = f"t1-{_tag(docker)}"
    network_id = docker.ok("network", "create", "-d", "overlay", name).strip()
    try:
        assert len(network_id) == 25
        rows = [row.split() for row in docker.ok("network", "ls").splitlines()[1:]]
        assert [network_id[:12], name, "overlay", "swarm"] in rows
        assert docker.ok("network", "inspect", name, "--format", "{{.Scope}}") == "swarm\n"
        again = docker.fails("network", "create", "-d", "overlay", name)
        assert f"Error response from daemon: network {name} already exists" in again
        assert "{" not in again  # a clean message, not the JSON body
        ipv6 = docker.fails("network", "create", "-d", "overlay", "--ipv6", "t9")
        assert "EnableIPv6 is not supported by swarmlite" in ipv6
        bridge = docker.fails("network", "create", "t9")
        assert "Driver 'bridge' is not supported by swarmlite" in bridge
        names = [row.split()[1] for row in docker.ok("network", "ls").splitlines()[1:]]
        assert "t9" not in names  # (by name: an id may hold "t9" too)
    finally:
        assert docker.ok("network", "rm", name).strip() == name
    assert name not in docker.ok("network", "ls")


def test_secrets(docker: Docker) -> None:
    name = f"s1-{_tag(docker)}"
    secret_id = docker.ok("secret", "create", name, "-", stdin="pw").strip()
    try:
        assert len(secret_id) == 25
        rows = [row.split() for row in docker.ok("secret", "ls").splitlines()[1:]]
        assert [secret_id, name] == next(row[:2] for row in rows if row[0] == secret_id)
        assert docker.ok("secret", "inspect", name, "--format", "{{.Spec.Name}}") == f"{name}\n"
        [inspected] = json.loads(docker.ok("secret", "inspect", name))
        assert "Data" not in inspected["Spec"]
        again = docker.fails("secret", "create", name, "-", stdin="other")
        assert f"Error response from daemon: secret {name} already exists" in again
    finally:
        assert docker.ok("secret", "rm", name).strip() == name
    missing = docker.fails("secret", "inspect", name)
    assert "Error" in missing
    assert name in missing


def test_configs(docker: Docker, tmp_path: Path) -> None:
    name = f"c1-{_tag(docker)}"
    content = tmp_path / "app.conf"
    content.write_text("listen 80;\n")
    config_id = docker.ok("config", "create", name, str(content)).strip()
    try:
        assert len(config_id) == 25
        rows = [row.split() for row in docker.ok("config", "ls").splitlines()[1:]]
        assert [config_id, name] in [row[:2] for row in rows]
        data = docker.ok("config", "inspect", name, "--format", '{{printf "%s" .Spec.Data}}')
        assert data == "listen 80;\n\n"
    finally:
        assert docker.ok("config", "rm", name).strip() == name
    assert name not in docker.ok("config", "ls")


def test_events(docker: Docker, small: Cluster) -> None:
    """`docker events` shows the cluster's changes, with swarm scope and who asked, from
    --since to --until; a filter narrows them, a bad one is refused; a worker (no runtime
    here) has none to show."""
    name = f"ev-{_tag(docker)}"
    since = int(time.time()) - 1
    secret_id = docker.ok("secret", "create", name, "-", stdin="pw").strip()
    docker.ok("secret", "rm", name)
    until = str(int(time.time()) + 1)
    window = ("--since", str(since), "--until", until)

    out = docker.ok("events", *window, "--filter", "type=secret", "--format", "{{json .}}")
    mine = [json.loads(line) for line in out.splitlines() if secret_id in line]
    assert [(m["Type"], m["Action"], m["scope"]) for m in mine] == [
        ("secret", "create", "swarm"),
        ("secret", "remove", "swarm"),
    ]
    assert mine[0]["Actor"]["Attributes"]["name"] == name
    assert mine[0]["Actor"]["Attributes"]["by"].startswith("docker-api@")
    assert all(json.loads(line)["Type"] == "secret" for line in out.splitlines())

    plain = docker.ok("events", *window, "--filter", f"secret={name}")
    assert f"secret create {secret_id} (by=docker-api@" in plain
    assert f"name={name})" in plain
    assert docker.ok("events", *window, "--filter", "type=node", "--filter", f"secret={name}") == ""

    bad = docker.fails("events", "--until", until, "--filter", "colour=red")
    assert "invalid filter 'colour'" in bad
    assert docker.on(small.nodes["w1"]).ok("events", *window) == ""


def test_swarm_update_autolock_and_unlock_key(docker: Docker) -> None:
    """`docker swarm update` changes what swarmlite keeps, refuses the rest by name, and
    turns autolock on and off; `docker swarm unlock-key` shows and rotates the key."""
    assert "Swarm updated." in docker.ok("swarm", "update", "--task-history-limit", "7")
    limit = "{{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}"
    assert docker.ok("info", "--format", limit).strip() == "7"
    refused = docker.fails("swarm", "update", "--max-snapshots", "3")
    assert "Spec.Raft.KeepOldSnapshots cannot be changed by swarmlite" in refused
    try:
        locked = docker.ok("swarm", "update", "--autolock=true")
        key = docker.ok("swarm", "unlock-key", "-q").strip()
        assert key.startswith("SWLKEY-1-") and key in locked
        autolock = "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}"
        assert docker.ok("info", "--format", autolock).strip() == "true"
        rotated = docker.ok("swarm", "unlock-key", "--rotate", "-q").strip()
        assert rotated.startswith("SWLKEY-1-") and rotated != key
    finally:
        docker.ok("swarm", "update", "--autolock=false", "--task-history-limit", "5")
    assert "no unlock key is set" in docker.fails("swarm", "unlock-key")


# --------------------------------------------------------------------------- A26


def test_api_version_override(docker: Docker) -> None:
    old = docker.ok("node", "ls", env={"DOCKER_API_VERSION": "1.24"})
    assert len(old.splitlines()) == 4
    too_new = docker.fails("node", "ls", env={"DOCKER_API_VERSION": "1.48"})
    assert (
        "Error response from daemon: client version 1.48 is too new. Maximum supported API "
        "version is 1.47" in too_new
    )


# --------------------------------------------------------------------------- raw HTTP (A28)


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=TIMEOUT)
        self.path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(self.path)
        self.sock = sock


def http_call(
    node: Node,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], bytes]:
    conn = UnixConnection(docker_sock(node))
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_not_found_has_dockers_error_shape(small: Cluster) -> None:
    status, headers, body = http_call(small.nodes["m1"], "GET", "/v1.47/services/nope")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert headers["Api-Version"] == "1.47"
    assert json.loads(body) == {"message": "service nope not found"}


def test_socket_mode(small: Cluster) -> None:
    assert docker_sock(small.nodes["m1"]).stat().st_mode & 0o777 == 0o660


def _secret_names(small: Cluster) -> list[str]:
    return sorted(v.object.spec.name for v in small.call(SECRET_LS, ListRequest()).items)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1.47/secrets/create", b'{"Name": "bad1", "Data": ', 400, "invalid JSON: "),
        (
            "/v1.47/secrets/create",
            b'{"Name": 7, "Data": "eA=="}',
            400,
            "invalid JSON: json: cannot unmarshal number into Go struct field SecretSpec.Name "
            "of type string",
        ),
        (
            "/v1.47/secrets/create",
            b'{"Name": "bad2", "Data": "eA==", "Colour": "red"}',
            400,
            'invalid JSON: json: unknown field "Colour"',
        ),
        (
            "/v1.48/secrets/create",
            b'{"Name": "bad3", "Data": "eA=="}',
            400,
            "client version 1.48 is too new. Maximum supported API version is 1.47",
        ),
        (
            "/v1.23/secrets/create",
            b'{"Name": "bad3", "Data": "eA=="}',
            400,
            "client version 1.23 is too old. Minimum supported API version is 1.24, please "
            "upgrade your client to a newer version",
        ),
        (
            "/v1.47/networks/create",
            b'{"Name": "bad4", "Driver": "overlay", "EnableIPv6": true}',
            400,
            "EnableIPv6 is not supported by swarmlite",
        ),
        (
            "/v1.47/nodes/m1/update?version=abc",
            b'{"Role": "manager", "Availability": "drain"}',
            400,
            "invalid node version 'abc'",
        ),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    small: Cluster, path: str, body: bytes, status: int, message: str
) -> None:
    before = _secret_names(small)
    got, headers, answer = http_call(small.nodes["m1"], "POST", path, body)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer)["message"].startswith(message)
    assert _secret_names(small) == before
    assert "bad4" not in _network_names(small)


def _network_names(small: Cluster) -> list[str]:
    status, _, body = http_call(small.nodes["m1"], "GET", "/networks")
    assert status == 200
    return [network["Name"] for network in json.loads(body)]


def test_a_100mb_body_is_refused(small: Cluster) -> None:
    before = _secret_names(small)
    big = b'{"Name": "huge", "Data": "' + b"A" * (100 * 1000 * 1000) + b'"}'
    status, headers, answer = http_call(small.nodes["m1"], "POST", "/secrets/create", big)
    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert "request body is too large" in json.loads(answer)["message"]
    assert _secret_names(small) == before


def test_stale_node_version_is_update_out_of_sequence(small: Cluster) -> None:
    status, _, body = http_call(small.nodes["m1"], "GET", "/nodes/w1")
    node = json.loads(body)
    stale = node["Version"]["Index"] - 1
    spec = json.dumps({**node["Spec"], "Availability": "pause"}).encode()
    status, _, answer = http_call(
        small.nodes["m1"], "POST", f"/nodes/w1/update?version={stale}", spec
    )
    assert (status, json.loads(answer)["message"]) == (500, "update out of sequence")
    _, _, body = http_call(small.nodes["m1"], "GET", "/nodes/w1")
    assert json.loads(body)["Spec"]["Availability"] == node["Spec"]["Availability"]


# --------------------------------------------------------------------------- docker-py (A27)


def test_docker_py(small: Cluster) -> None:
    import docker as docker_py

    client = docker_py.DockerClient(base_url=f"unix://{docker_sock(small.nodes['m1'])}")
    try:
        assert client.api.api_version == "1.47"
        assert client.swarm.attrs["ID"] == small.call(SWARM_INSPECT, Empty()).id
        assert set(client.swarm.attrs["JoinTokens"]) == {"Worker", "Manager"}
        hostnames = sorted(n.attrs["Description"]["Hostname"] for n in client.nodes.list())
        assert hostnames == ["m1", "m2", "w1"]
        workers = client.nodes.list(filters={"role": "worker"})
        assert [n.attrs["Description"]["Hostname"] for n in workers] == ["w1"]
        secret = client.secrets.create(name="pysecret", data=b"hush", labels={"team": "a"})
        try:
            assert [s.name for s in client.secrets.list(filters={"label": "team=a"})] == [
                "pysecret"
            ]
            assert client.secrets.get("pysecret").id == secret.id
        finally:
            secret.remove()
        assert "pysecret" not in [s.name for s in client.secrets.list()]
        with pytest.raises(docker_py.errors.NotFound, match="secret pysecret not found"):
            client.secrets.get("pysecret")
    finally:
        client.close()


def _update(
    node: Node, kind: str, blob_id: str, spec: dict[str, Any], version: int
) -> tuple[int, str]:
    payload = json.dumps(spec).encode()
    status, _, answer = http_call(
        node, "POST", f"/{kind}/{blob_id}/update?version={version}", payload
    )
    return status, json.loads(answer)["message"] if answer.strip() else ""


@pytest.mark.parametrize("kind", ["secrets", "configs"])
def test_secret_and_config_updates(small: Cluster, kind: str) -> None:
    """dockerd lets only Labels change; swarmlite cannot change a blob at all, so an update
    that changes nothing passes (as `stack deploy` sends on a redeploy), others are named."""
    m1 = small.nodes["m1"]
    spec = {"Name": f"upd-{kind}", "Labels": {"a": "1"}, "Data": "eA=="}
    status, _, body = http_call(m1, "POST", f"/{kind}/create", json.dumps(spec).encode())
    assert status == 201
    blob_id = json.loads(body)["ID"]
    try:
        _, _, body = http_call(m1, "GET", f"/{kind}/{blob_id}")
        version = json.loads(body)["Version"]["Index"]
        assert _update(m1, kind, blob_id, spec, version) == (200, "")
        renamed = spec | {"Name": "renamed"}
        assert _update(m1, kind, blob_id, renamed, version) == (
            400,
            "only updates to Labels are allowed",
        )
        status, message = _update(m1, kind, blob_id, spec | {"Labels": {"a": "2"}}, version)
        assert status == 400
        assert message.startswith("Labels: swarmlite cannot change the labels")
        assert _update(m1, kind, blob_id, spec, version - 1) == (500, "update out of sequence")
        if kind == "configs":
            other = spec | {"Data": "eQ=="}
            assert _update(m1, kind, blob_id, other, version) == (
                400,
                "only updates to Labels are allowed",
            )
    finally:
        assert http_call(m1, "DELETE", f"/{kind}/{blob_id}")[0] == 204
