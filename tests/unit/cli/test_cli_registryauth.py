"""`--with-registry-auth` reads the user's Docker credentials as the docker CLI does: the
config file's `auths`, `credsStore` and `credHelpers` (a real helper program on PATH,
spoken to with the real protocol), Docker Hub's key, DOCKER_CONFIG."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from swarmlite.api.registryauth import RegistryAuth, from_header
from swarmlite.cli.registryauth import (
    HUB_KEY,
    DockerCredentials,
    config_path,
    credentials_for,
    registry_key,
)
from swarmlite.errors import FailedPrecondition, InvalidArgument

REG = "198.18.0.250:5443"


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: object) -> Path:
    directory = tmp_path / "docker"
    directory.mkdir(exist_ok=True)
    path = directory / "config.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return path


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> Path:
    """``docker-credential-<name>`` on PATH; it records what it read on stdin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / f"docker-credential-{name}"
    asked = tmp_path / f"{name}.asked"
    program.write_text(f'#!/bin/sh\n[ "$1" = get ] || exit 3\ncat > {asked}\n{script}\n')
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
    return asked


def test_the_registry_of_an_image_is_its_domain_and_docker_hub_has_its_own_key() -> None:
    assert registry_key(f"{REG}/private/web:1") == REG
    assert registry_key("ghcr.io/acme/web") == "ghcr.io"
    assert registry_key("localhost:5000/web") == "localhost:5000"
    for hub in ("nginx", "acme/web:2", "docker.io/library/nginx", "index.docker.io/a/b"):
        assert registry_key(hub) == HUB_KEY


def test_auths_entries_base64_auth_or_user_and_password_or_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(
        tmp_path,
        monkeypatch,
        {
            "auths": {
                REG: {"auth": _basic("ci", "pa:ss")},  # a password may hold ":"
                "ghcr.io": {"username": "bot", "password": "tok"},
                "quay.io": {"identitytoken": "refresh"},
                HUB_KEY: {"auth": _basic("me", "hub"), "email": "me@example.com"},
            }
        },
    )
    docker = DockerCredentials()
    assert docker.for_image(f"{REG}/private/web:1") == RegistryAuth(
        server=REG, username="ci", password="pa:ss"
    )
    assert docker.for_image("ghcr.io/acme/web") == RegistryAuth(
        server="ghcr.io", username="bot", password="tok"
    )
    assert docker.for_image("quay.io/a/b") == RegistryAuth(
        server="quay.io", identity_token="refresh"
    )
    assert docker.for_image("nginx:1.27") == RegistryAuth(
        server=HUB_KEY, username="me", password="hub"
    )
    assert docker.for_image("registry.example/other") is None


def test_a_key_written_as_a_url_matches_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker's ConvertToHostname: older configs keep https://host/v1/ keys."""
    _config(tmp_path, monkeypatch, {"auths": {f"https://{REG}/v1/": {"auth": _basic("a", "b")}}})
    found = DockerCredentials().for_image(f"{REG}/web")
    assert found is not None and (found.username, found.password) == ("a", "b")


def test_no_config_file_means_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
    assert DockerCredentials().for_image(f"{REG}/web") is None
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path() == tmp_path / ".docker" / "config.json"


def test_a_malformed_config_is_refused_naming_the_file_never_its_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, monkeypatch, '{"auths": {"r": {"auth": "s3cret-value"}} oops')
    with pytest.raises(InvalidArgument) as raised:
        DockerCredentials()
    assert str(path) in raised.value.message and "line 1" in raised.value.message
    assert "s3cret" not in raised.value.message
    _config(tmp_path, monkeypatch, {"auths": {REG: {"auth": "bm9jb2xvbg=="}}})  # "nocolon"
    with pytest.raises(InvalidArgument) as raised:
        DockerCredentials().for_image(f"{REG}/web")
    assert f"auths.{REG}" in raised.value.message and "user:password" in raised.value.message
    assert "nocolon" not in raised.value.message


def test_creds_store_is_asked_with_the_server_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = json.dumps({"ServerURL": REG, "Username": "ci", "Secret": "from-helper"})
    asked = _helper(tmp_path, monkeypatch, "test", f"echo '{answer}'")
    _config(tmp_path, monkeypatch, {"credsStore": "test", "auths": {REG: {}}})
    found = DockerCredentials().for_image(f"{REG}/web:1")
    assert found == RegistryAuth(server=REG, username="ci", password="from-helper")
    assert asked.read_text().strip() == REG
    DockerCredentials().for_image("nginx")
    assert asked.read_text().strip() == HUB_KEY


def test_cred_helpers_win_over_the_store_and_token_users_are_identity_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = json.dumps({"ServerURL": REG, "Username": "<token>", "Secret": "refresh"})
    _helper(tmp_path, monkeypatch, "ecr", f"echo '{token}'")
    _helper(tmp_path, monkeypatch, "store", "exit 7")  # never asked
    _config(tmp_path, monkeypatch, {"credsStore": "store", "credHelpers": {REG: "ecr"}})
    assert DockerCredentials().for_image(f"{REG}/web") == RegistryAuth(
        server=REG, identity_token="refresh"
    )


def test_a_helper_without_credentials_means_none_and_a_failing_one_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _helper(
        tmp_path, monkeypatch, "none", "echo 'credentials not found in native keychain'; exit 1"
    )
    _helper(tmp_path, monkeypatch, "broken", "echo 'keychain locked' >&2; exit 2")
    _helper(tmp_path, monkeypatch, "garbage", "echo 'not json'")
    _config(
        tmp_path,
        monkeypatch,
        {"credHelpers": {REG: "none", "ghcr.io": "broken", "quay.io": "garbage"}},
    )
    docker = DockerCredentials()
    assert docker.for_image(f"{REG}/web") is None
    with pytest.raises(FailedPrecondition) as raised:
        docker.for_image("ghcr.io/a/b")
    message = raised.value.message
    assert "docker-credential-broken" in message and "ghcr.io" in message
    assert "keychain locked" in message
    with pytest.raises(FailedPrecondition, match="docker-credential-garbage"):
        docker.for_image("quay.io/a/b")


def test_a_missing_helper_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _config(tmp_path, monkeypatch, {"credsStore": "desktop"})
    with pytest.raises(FailedPrecondition) as raised:
        DockerCredentials().for_image("nginx")
    assert "docker-credential-desktop" in raised.value.message
    assert "not installed" in raised.value.message


def test_credentials_for_a_stack_by_service_and_the_registries_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, monkeypatch, {"auths": {REG: {"auth": _basic("ci", "pw")}}})
    found, missing = credentials_for(
        {"s_web": f"{REG}/web:1", "s_api": f"{REG}/api:1", "s_db": "postgres:16"}
    )
    login = RegistryAuth(server=REG, username="ci", password="pw")
    assert found == {"s_web": login, "s_api": login}
    assert missing == [HUB_KEY]


def test_credentials_never_show_in_a_repr_and_travel_as_dockers_header() -> None:
    login = RegistryAuth(server=REG, username="ci", password="s3cret", identity_token="t0k")
    for text in (repr(login), str(login), f"{[login]}"):
        assert "s3cret" not in text and "t0k" not in text
        assert '"ci"' in text and REG in text
    body = json.loads(base64.urlsafe_b64decode(login.header()))
    assert body == {
        "serveraddress": REG,
        "username": "ci",
        "password": "s3cret",
        "identitytoken": "t0k",
    }
    assert from_header(login.header()) == login
