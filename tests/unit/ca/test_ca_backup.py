"""The backup file (`ca.backup`): what `swarm backup` writes opens again with its passphrase
only, and every other file is refused with an error that says which case it is."""

from __future__ import annotations

import pytest

from swarmlite.api import (
    Cluster,
    ClusterSpec,
    Config,
    ConfigSpec,
    RootCAMaterial,
    Secret,
    SecretSpec,
    new_id,
)
from swarmlite.api.control import Backup
from swarmlite.ca import seal_backup, unseal_backup
from swarmlite.ca.backup import HEADER_SIZE, MAGIC, MIN_PASSPHRASE
from swarmlite.errors import InvalidArgument, PermissionDenied
from swarmlite.testing.factories import make_node, make_service, make_task

PASSPHRASE = b"correct horse battery staple"
CANARY = b"S3CRET-CANARY-42"


def _backup() -> Backup:
    service = make_service("web", replicas=2)
    return Backup(
        cluster_id=new_id(),
        index=42,
        taken_at=1700000000.0,
        version="0.test",
        objects=[
            Cluster(
                id=new_id(),
                spec=ClusterSpec(labels={"zone": "a"}),
                root_ca=RootCAMaterial(cert_pem=b"CERT", key_pem=b"CA-KEY-PEM"),
            ),
            make_node(hostname="m1"),
            service,
            make_task(service),
            Secret(id=new_id(), spec=SecretSpec(name="db_pass", data=CANARY)),
            Config(id=new_id(), spec=ConfigSpec(name="site", data=b"listen 8080;")),
        ],
    )


@pytest.fixture(scope="module")
def sealed() -> tuple[Backup, bytes]:
    backup = _backup()
    return backup, seal_backup(backup, PASSPHRASE)


def test_a_sealed_backup_opens_again_whole_with_its_passphrase(
    sealed: tuple[Backup, bytes],
) -> None:
    backup, data = sealed
    assert unseal_backup(data, PASSPHRASE) == backup


def test_nothing_of_the_backup_is_readable_in_the_file(sealed: tuple[Backup, bytes]) -> None:
    _, data = sealed
    assert data.startswith(MAGIC)
    for plain in (CANARY, b"CA-KEY-PEM", b"db_pass", b"listen 8080;"):
        assert plain not in data


def test_two_backups_of_the_same_state_differ(sealed: tuple[Backup, bytes]) -> None:
    backup, data = sealed
    assert seal_backup(backup, PASSPHRASE) != data  # a fresh salt and nonce per file


def test_a_wrong_passphrase_is_refused_as_such(sealed: tuple[Backup, bytes]) -> None:
    _, data = sealed
    with pytest.raises(PermissionDenied, match=r"wrong passphrase for prod\.swlbak"):
        unseal_backup(data, b"correct horse battery stapler", source="prod.swlbak")


@pytest.mark.parametrize("where", ["first sealed byte", "last byte", "nonce"])
def test_a_changed_byte_is_a_damaged_file(sealed: tuple[Backup, bytes], where: str) -> None:
    _, data = sealed
    at = {"first sealed byte": HEADER_SIZE, "last byte": len(data) - 1, "nonce": HEADER_SIZE - 1}
    damaged = bytearray(data)
    damaged[at[where]] ^= 0x01
    with pytest.raises(InvalidArgument, match="is damaged: it does not authenticate"):
        unseal_backup(bytes(damaged), PASSPHRASE)


def test_a_truncated_file_is_a_damaged_file(sealed: tuple[Backup, bytes]) -> None:
    _, data = sealed
    with pytest.raises(InvalidArgument, match="is damaged"):
        unseal_backup(data[: len(data) // 2], PASSPHRASE)
    with pytest.raises(InvalidArgument, match="is damaged: it is cut short"):
        unseal_backup(data[: HEADER_SIZE - 3], PASSPHRASE)


def test_a_header_asking_scrypt_for_too_much_is_refused_before_deriving(
    sealed: tuple[Backup, bytes],
) -> None:
    _, data = sealed
    forged = bytearray(data)
    forged[len(MAGIC) + 1] = 40  # log2 N: 2**40 blocks would take terabytes
    with pytest.raises(InvalidArgument, match="its header is malformed"):
        unseal_backup(bytes(forged), PASSPHRASE)


def test_another_format_version_is_refused_naming_both(sealed: tuple[Backup, bytes]) -> None:
    _, data = sealed
    newer = bytearray(data)
    newer[len(MAGIC)] = 2
    with pytest.raises(InvalidArgument, match="format version 2; this swarmlite reads version 1"):
        unseal_backup(bytes(newer), PASSPHRASE)


@pytest.mark.parametrize("data", [b"", b"SWL", b"-----BEGIN CERTIFICATE-----\n" * 4])
def test_a_file_that_is_no_backup_is_said_to_be_none(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match=r"notes\.txt is not a swarmlite backup"):
        unseal_backup(data, PASSPHRASE, source="notes.txt")


def test_a_short_passphrase_is_refused_when_writing() -> None:
    with pytest.raises(InvalidArgument, match=f"at least {MIN_PASSPHRASE} characters"):
        seal_backup(_backup(), b"short")
