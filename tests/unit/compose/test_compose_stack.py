"""Loading: YAML features, several files merged, extends, include, profiles, env_file."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from swarmlite.compose import load_stack, to_stack_deploy
from swarmlite.errors import ComposeError


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text))
    return path


def test_anchors_merge_keys_and_extension_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        x-common: &common
          image: app:1
          environment:
            MODE: prod
        services:
          web:
            <<: *common
            command: serve
          worker:
            <<: *common
            image: app:2
        """,
    )
    stack = load_stack([path], env={})
    assert stack.services["web"].config["image"] == "app:1"
    assert stack.services["web"].config["environment"] == {"MODE": "prod"}
    assert stack.services["worker"].config["image"] == "app:2"  # explicit keys win
    assert stack.extensions["x-common"]["image"] == "app:1"


def test_yaml_1_2_scalars_ports_stay_strings_and_modes_are_octal(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          web:
            image: nginx
            ports: [22:22, 80]
            environment: {ON: yes}
            secrets: [{source: s, mode: 0440}]
        secrets:
          s: {external: true}
        """,
    )
    web = load_stack([path], env={}).services["web"].config
    assert [(p["published"], p["target"]) for p in web["ports"]] == [(22, 22), (0, 80)]
    assert web["environment"] == {"ON": "yes"}
    assert web["secrets"][0]["mode"] == 0o440


def test_several_files_merge_in_order(tmp_path: Path) -> None:
    base = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          web:
            image: web:1
            command: ["serve", "--port", "80"]
            environment: {A: "1", B: "1"}
            labels: [one=1]
            ports: ["8080:80", "9090:90"]
            volumes: ["data:/data", "./conf:/etc/conf:ro"]
            secrets: [s1]
            deploy:
              replicas: 2
              resources: {limits: {memory: 256M}}
            dns: [1.1.1.1]
        volumes:
          data: {}
        secrets:
          s1: {external: true}
          s2: {external: true}
        """,
    )
    override = write(
        tmp_path,
        "override.yml",
        """\
        services:
          web:
            image: web:2
            command: serve --debug
            environment: [B=2, C=3]
            labels: {two: "2"}
            ports: ["8080:80/udp", "9090:90"]
            volumes: ["other:/data"]
            secrets: [{source: s2, target: s1}]
            deploy:
              resources: {limits: {cpus: "0.5"}}
            dns: [8.8.8.8]
        volumes:
          other: {}
        """,
    )
    web = load_stack([base, override], env={}).services["web"].config
    assert web["image"] == "web:2"
    assert web["command"] == ["serve", "--debug"]  # replaced, split like a shell
    assert web["environment"] == {"A": "1", "B": "2", "C": "3"}
    assert web["labels"] == {"one": "1", "two": "2"}
    assert [(p["published"], p["target"], p["protocol"]) for p in web["ports"]] == [
        (8080, 80, "tcp"),
        (9090, 90, "tcp"),
        (8080, 80, "udp"),
    ]
    assert [(v["source"], v["target"]) for v in web["volumes"]] == [
        ("other", "/data"),
        (str(tmp_path / "conf"), "/etc/conf"),
    ]
    assert web["secrets"] == [{"source": "s2", "target": "s1"}]  # merged by target
    assert web["deploy"] == {
        "replicas": 2,
        "resources": {"limits": {"memory": 256 * 2**20, "cpus": 0.5}},
    }
    assert web["dns"] == ["8.8.8.8"]


def test_override_paths_resolve_against_the_project_directory(tmp_path: Path) -> None:
    base = write(tmp_path, "compose.yml", "services:\n  web:\n    image: a\n")
    override = write(
        tmp_path, "sub/override.yml", "services:\n  web:\n    volumes: ['./logs:/logs']\n"
    )
    web = load_stack([base, override], env={}).services["web"].config
    assert web["volumes"][0]["source"] == str(tmp_path / "logs")


def test_extends_in_the_same_file_and_from_another(tmp_path: Path) -> None:
    write(
        tmp_path,
        "lib/base.yml",
        """\
        services:
          base:
            image: base:1
            env_file: base.env
            volumes: ["./data:/data"]
        """,
    )
    write(tmp_path, "lib/base.env", "FROM_FILE=yes\n")
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          common:
            extends: {file: lib/base.yml, service: base}
            environment: {LEVEL: common}
          web:
            extends: common
            command: serve
            environment: {LEVEL: web}
        """,
    )
    stack = load_stack([path], env={})
    web = stack.services["web"].config
    assert web["image"] == "base:1"
    assert web["environment"] == {"FROM_FILE": "yes", "LEVEL": "web"}
    # Paths of the extended service stay relative to its own file.
    assert web["volumes"][0]["source"] == str(tmp_path / "lib" / "data")
    assert "extends" not in web


def test_reset_removes_what_extends_brought(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          base: {image: a, command: sleep infinity, ports: ["80:80"]}
          web:
            extends: base
            command: !reset null
            ports: !override ["81:81"]
        """,
    )
    web = load_stack([path], env={}).services["web"].config
    assert "command" not in web
    assert [p["published"] for p in web["ports"]] == [81]


def test_an_extends_cycle_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          a: {image: x, extends: b}
          b: {image: x, extends: a}
        """,
    )
    with pytest.raises(ComposeError, match="extends forms a cycle"):
        load_stack([path], env={})


def test_include_brings_services_with_their_own_relative_paths(tmp_path: Path) -> None:
    write(
        tmp_path,
        "db/compose.yml",
        """\
        services:
          db:
            image: postgres
            secrets: [pw]
            volumes: ["./init:/docker-entrypoint-initdb.d"]
        secrets:
          pw: {file: ./pw.txt}
        """,
    )
    write(tmp_path, "db/pw.txt", "hunter2")
    path = write(
        tmp_path,
        "compose.yml",
        """\
        include: [db/compose.yml]
        services:
          web: {image: web, depends_on: [db]}
        """,
    )
    stack = load_stack([path], env={})
    assert set(stack.services) == {"db", "web"}
    assert stack.secrets["pw"] == {"file": str(tmp_path / "db" / "pw.txt")}
    assert stack.services["db"].config["volumes"][0]["source"] == str(tmp_path / "db" / "init")
    deployed = to_stack_deploy(stack, "t")
    assert deployed.secrets[0].spec.data == b"hunter2"


def test_include_defining_a_service_twice_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "other.yml", "services:\n  web: {image: a}\n")
    path = write(tmp_path, "compose.yml", "include: [other.yml]\nservices:\n  web: {image: b}\n")
    with pytest.raises(ComposeError, match="defined both here and in an included file"):
        load_stack([path], env={})


def test_profiles_pick_the_active_services(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          web: {image: web}
          seed: {image: seed, profiles: [setup]}
          debug: {image: debug, profiles: [debug, setup]}
        """,
    )
    assert set(load_stack([path], env={}).services) == {"web"}
    assert set(load_stack([path], env={}, profiles=["setup"]).services) == {
        "web",
        "seed",
        "debug",
    }
    assert set(load_stack([path], env={}, profiles=["debug"]).services) == {"web", "debug"}
    assert "profiles" not in load_stack([path], env={}, profiles=["*"]).services["seed"].config


def test_depending_on_a_service_whose_profile_is_off(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          web:
            image: web
            depends_on:
              seed: {condition: service_completed_successfully}
              tools: {condition: service_started, required: false}
          seed: {image: seed, profiles: [setup]}
          tools: {image: tools, profiles: [tools]}
        """,
    )
    with pytest.raises(ComposeError) as error:
        load_stack([path], env={})
    assert "'seed', which is not enabled" in str(error.value)
    assert error.value.hint is not None and "setup" in error.value.hint
    stack = load_stack([path], env={}, profiles=["setup"])
    assert stack.dependencies()["web"] == {"seed": "service_completed_successfully"}
    assert any(w.key == "services.web.depends_on.tools" for w in stack.warnings)


def test_env_file_forms_and_precedence(tmp_path: Path) -> None:
    write(tmp_path, "a.env", "A=from-a\nSHARED=a\n")
    write(tmp_path, "b.env", "SHARED=b\nFROM_SHELL\n")
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          one: {image: x, env_file: a.env}
          two:
            image: x
            env_file:
              - a.env
              - path: b.env
              - path: missing.env
                required: false
            environment: {SHARED: explicit}
        """,
    )
    stack = load_stack([path], env={"FROM_SHELL": "shell"})
    assert stack.services["one"].config["environment"] == {"A": "from-a", "SHARED": "a"}
    assert stack.services["two"].config["environment"] == {
        "A": "from-a",
        "SHARED": "explicit",
        "FROM_SHELL": "shell",
    }
    assert any("missing.env" in w.message for w in stack.warnings)


def test_a_missing_required_env_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "compose.yml", "services:\n  web:\n    image: x\n    env_file: nope.env\n"
    )
    with pytest.raises(ComposeError) as error:
        load_stack([path], env={})
    assert (error.value.line, error.value.column) == (4, 15)
    assert "nope.env not found" in str(error.value)


def test_ignored_keys_are_named_in_warnings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        version: "3.8"
        services:
          web:
            image: nginx
            container_name: web
            restart: always
            links: [db]
            expose: ["80"]
            build: .
          db: {image: postgres}
        """,
    )
    stack = load_stack([path], env={})
    by_key = {w.key: w for w in stack.warnings}
    assert set(by_key) >= {
        "version",
        "services.web.container_name",
        "services.web.restart",
        "services.web.links",
        "services.web.expose",
        "services.web.build",
    }
    assert "deploy.restart_policy" in by_key["services.web.restart"].message
    assert (by_key["services.web.restart"].line, by_key["services.web.restart"].column) == (6, 5)
    assert "build" not in stack.services["web"].config


def test_to_yaml_is_stable_and_loads_back_equal(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "compose.yml",
        """\
        services:
          web:
            image: nginx
            command: echo "$$HOME" '0o17'
            environment: {PRICE: "$$5", N: "1e3"}
            stop_grace_period: 90s
            healthcheck: {test: curl -f localhost, interval: 1m30s}
            ports: ["8000-8001:80-81"]
            deploy: {mode: global, placement: {constraints: ["node.role == manager"]}}
        x-note: {by: me}
        """,
    )
    stack = load_stack([path], env={})
    text = stack.to_yaml()
    again_path = write(tmp_path, "again.yml", text)
    again = load_stack([again_path], env={})
    assert again == stack
    assert again.to_yaml() == text
    web = again.services["web"].config
    assert web["command"] == ["echo", "$HOME", "0o17"]
    assert web["environment"] == {"PRICE": "$5", "N": "1e3"}
    assert web["stop_grace_period"] == "1m30s"
    assert web["deploy"]["placement"]["constraints"] == ["node.role==manager"]
