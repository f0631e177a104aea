"""`--with-registry-auth`: the user's Docker credentials for an image's registry, read as
the docker CLI reads them.

Owns the lookup, in the docker CLI's order: the config file is ``$DOCKER_CONFIG/config.json``
(else ``~/.docker/config.json``; none at all means no credentials); the registry of an
image is its domain (``api.reference``), Docker Hub's key being
``https://index.docker.io/v1/``; a ``credHelpers`` entry for that key wins, else
``credsStore``, else the file's own ``auths`` entry (the key as written, else the first
key whose host part is the registry). An ``auths`` entry holds ``auth`` (base64 of
``user:password``) or ``username``/``password``, and maybe ``identitytoken``. A helper is
run as ``docker-credential-<name> get`` with the key on its stdin and answers
``{"ServerURL", "Username", "Secret"}`` (the user ``<token>`` meaning an identity token);
"credentials not found" from it means none.

Does not own what the credentials look like (``api.registryauth``) nor where they go
(the control API). Errors: an unreadable or malformed config file, a helper that is
missing, fails or answers nonsense is InvalidArgument / FailedPrecondition naming the file
or the helper and the registry, never a credential.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from swarmlite.api.reference import DEFAULT_DOMAIN, parse_image
from swarmlite.api.registryauth import RegistryAuth, split_basic
from swarmlite.errors import FailedPrecondition, InvalidArgument

HUB_KEY = "https://index.docker.io/v1/"
CONFIG_ENV = "DOCKER_CONFIG"
CONFIG_FILE = "config.json"
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT = 30.0  # seconds: a helper may ask a keychain or a cloud
TOKEN_USER = "<token>"
_NOT_FOUND = "credentials not found"


def config_path() -> Path:
    """Where the docker CLI keeps its config: ``$DOCKER_CONFIG/config.json`` or
    ``~/.docker/config.json``."""
    directory = os.environ.get(CONFIG_ENV) or str(Path.home() / ".docker")
    return Path(directory) / CONFIG_FILE


def registry_key(image: str) -> str:
    """The key of an image's registry in a Docker config: its host[:port], or Docker
    Hub's ``https://index.docker.io/v1/``; InvalidArgument for an invalid reference."""
    domain = parse_image(image).domain
    return HUB_KEY if domain == DEFAULT_DOMAIN else domain


def hostname(key: str) -> str:
    """A config key's host part: ``https://reg:5000/v1/`` -> ``reg:5000`` (Docker's
    ConvertToHostname)."""
    for scheme in ("http://", "https://"):
        key = key.removeprefix(scheme)
    return key.partition("/")[0]


class DockerCredentials:
    """One read of the user's Docker config; credentials looked up per registry, once."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_path()
        self._config = _load(self.path)
        self._found: dict[str, RegistryAuth | None] = {}

    def for_image(self, image: str) -> RegistryAuth | None:
        """The credentials for ``image``'s registry; None when the user has none."""
        key = registry_key(image)
        if key not in self._found:
            self._found[key] = self.for_registry(key)
        return self._found[key]

    def for_registry(self, key: str) -> RegistryAuth | None:
        helpers = self._config.get("credHelpers") or {}
        helper = helpers.get(key) if isinstance(helpers, dict) else None
        helper = helper or self._config.get("credsStore")
        if helper:
            if not isinstance(helper, str):
                raise InvalidArgument(f"{self.path}: the credential helper of {key} is not a name")
            auth = run_helper(helper, key)
        else:
            auth = self._from_file(key)
        return None if auth is None or auth.empty else auth

    def _from_file(self, key: str) -> RegistryAuth | None:
        auths = self._config.get("auths") or {}
        if not isinstance(auths, dict):
            raise InvalidArgument(f"{self.path}: auths must be an object")
        entry_key = key if key in auths else next((k for k in auths if hostname(k) == key), None)
        if entry_key is None:
            return None
        entry = auths[entry_key]
        if not isinstance(entry, dict):
            raise InvalidArgument(f"{self.path}: auths.{entry_key} must be an object")
        where = f"{self.path}: auths.{entry_key}"
        fields = {name: _text(entry, name, where) for name in _ENTRY_FIELDS}
        username, password = fields["username"], fields["password"]
        if fields["auth"]:
            username, password = split_basic(fields["auth"], where)
        return RegistryAuth(
            server=key,
            username=username,
            password=password,
            identity_token=fields["identitytoken"],
            registry_token=fields["registrytoken"],
        )


_ENTRY_FIELDS = ("auth", "username", "password", "identitytoken", "registrytoken")


def _text(entry: dict[str, Any], name: str, where: str) -> str:
    value = entry.get(name) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{name} must be a string")
    return value


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}  # no config: no credentials, as for the docker CLI
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read the Docker config {path}: {exc}") from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        # The error's position only: the document holds credentials.
        raise InvalidArgument(
            f"{path}: not valid JSON (line {getattr(exc, 'lineno', '?')}, "
            f"column {getattr(exc, 'colno', '?')})",
            hint="fix the file, or point DOCKER_CONFIG at a directory with a good one",
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: a Docker config must be a JSON object")
    return data


def run_helper(name: str, key: str) -> RegistryAuth | None:
    """``docker-credential-<name> get`` for ``key``; None when it has no credentials."""
    program = HELPER_PREFIX + name
    try:
        done = subprocess.run(
            [program, "get"],
            input=key,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise FailedPrecondition(
            f"the credential helper {program} (for {key}) is not installed",
            hint=f"install it, or remove it from {config_path()}",
        ) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FailedPrecondition(
            f"the credential helper {program} failed for {key}: {exc}"
        ) from exc
    if done.returncode != 0:
        said = (done.stdout.strip() or done.stderr.strip())[:200]
        if _NOT_FOUND in said.lower():
            return None
        raise FailedPrecondition(
            f"the credential helper {program} failed for {key} "
            f"(exit {done.returncode}): {said or 'no message'}"
        )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not all(
        isinstance(answer.get(field, ""), str) for field in ("Username", "Secret")
    ):
        raise FailedPrecondition(
            f"the credential helper {program} answered {key} with something other than "
            '{"ServerURL", "Username", "Secret"}'
        )
    username, secret = answer.get("Username", ""), answer.get("Secret", "")
    if username == TOKEN_USER:
        return RegistryAuth(server=key, identity_token=secret)
    return RegistryAuth(server=key, username=username, password=secret)


def credentials_for(images: dict[str, str]) -> tuple[dict[str, RegistryAuth], list[str]]:
    """By name, the credentials for each named image's registry, and the registries the
    user has none for (a deploy still goes ahead: a public image needs none)."""
    docker = DockerCredentials()
    found: dict[str, RegistryAuth] = {}
    missing: list[str] = []
    for name, image in images.items():
        auth = docker.for_image(image)
        if auth is not None:
            found[name] = auth
        elif (registry := registry_key(image)) not in missing:
            missing.append(registry)
    return found, missing
