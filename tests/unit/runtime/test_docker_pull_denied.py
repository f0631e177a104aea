"""A pull the registry refuses for credentials says so, names the registry, and carries no
credential: dockerd's own words for it (20.10 and later) are recognised."""

from __future__ import annotations

import pytest

from swarmlite.api.registryauth import RegistryAuth
from swarmlite.runtime.docker.driver import denied, pull_denied

REG = "198.18.0.250:5443"


@pytest.mark.parametrize(
    "reason",
    [
        f'Head "https://{REG}/v2/private/web/manifests/1": no basic auth credentials',
        f'Head "https://{REG}/v2/private/web/manifests/1": unauthorized: authentication required',
        "pull access denied for acme/private, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied",
        "Get https://ghcr.io/token: incorrect username or password",
    ],
)
def test_dockerds_words_for_a_refused_pull_are_recognised(reason: str) -> None:
    assert denied(reason)


@pytest.mark.parametrize(
    "reason",
    [
        f'Get "https://{REG}/v2/": dial tcp {REG}: connect: connection refused',
        "manifest for busybox:nope not found: manifest unknown: manifest unknown",
        'Get "https://reg/v2/": x509: certificate signed by unknown authority',
    ],
)
def test_other_pull_failures_are_not_taken_for_credentials(reason: str) -> None:
    assert not denied(reason)


def test_the_error_says_whether_credentials_were_missing_or_refused() -> None:
    image = f"{REG}/private/web:1"
    missing = pull_denied(REG, image, "no basic auth credentials", None)
    assert missing.message == (
        f"pull access denied for registry {REG}: no credentials (deploy with --with-registry-auth)"
    )
    login = RegistryAuth(server=REG, username="ci", password="s3cret")
    refused = pull_denied(REG, image, "unauthorized: authentication required", login)
    assert refused.message == f"pull access denied for registry {REG}: credentials refused"
    assert refused.details["registry"] == REG and refused.details["image"] == image
    for error in (missing, refused):
        assert "s3cret" not in f"{error.message} {error.hint} {error.details}"
