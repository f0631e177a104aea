"""Node certificates: issuing them from the root CA, and keeping them on disk.

Owns the subject layout every node certificate has (CN = node id, OU = role, O = cluster
id; ``rpc.identity_from_der`` reads the same fields back), its SANs and extensions, and the
credential files of a node: ``node.crt``, ``node.key`` (mode 0600) and ``ca.crt``. Does not
own join tokens (``ca.tokens``), signing a node's own key (``ca.csr``, through the same
builder), when to renew (``ca.renewal``), nor revocation (the ``authorize`` hook of rpc).

Invariant: credential files are replaced atomically (temporary file, fsync, rename), so a
crash leaves the old or the new file, never half of one; the private key is never readable
by anyone but the owner, not even for a moment. Disk errors (OSError) are translated here.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmlite.ca.root import CLOCK_SKEW, RootCA, utcnow
from swarmlite.clock import Clock
from swarmlite.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from swarmlite.rpc import identity_from_der

ROLES = ("manager", "worker")
CERT_FILE = "node.crt"
KEY_FILE = "node.key"
CA_FILE = "ca.crt"


class NodeCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """What a node presents and trusts: its certificate and key, and the cluster's CA."""

    cert_pem: bytes
    key_pem: bytes
    ca_cert_pem: bytes


def issue_node_cert(
    ca: RootCA,
    node_id: str,
    role: str,
    cluster_id: str,
    *,
    expiry_days: int = 90,
    expiry: datetime.timedelta | None = None,
    addresses: Sequence[str] = (),
    clock: Clock | None = None,
) -> NodeCredentials:
    """A new key and a certificate for it, signed by ``ca``, naming the node and its role.

    The SANs are the DNS name ``node_id``, 127.0.0.1, and each of ``addresses`` (an IP
    address, or else a DNS name). ``expiry``, when given, overrides ``expiry_days``.
    """
    lifetime = expiry if expiry is not None else datetime.timedelta(days=expiry_days)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_node_cert(
        ca,
        key.public_key(),
        node_id,
        role,
        cluster_id,
        lifetime=lifetime,
        addresses=addresses,
        clock=clock,
    )
    return NodeCredentials(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        ca_cert_pem=ca.cert_pem,
    )


def check_node_fields(
    node_id: str, role: str, cluster_id: str, lifetime: datetime.timedelta
) -> None:
    """InvalidArgument unless these can go into a node certificate."""
    if role not in ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not node_id:
        raise InvalidArgument("a node certificate needs a node id")
    if not cluster_id:
        raise InvalidArgument("a node certificate needs a cluster id")
    if lifetime <= datetime.timedelta(0):
        raise InvalidArgument(f"a certificate's lifetime must be positive, got {lifetime}")


def build_node_cert(
    ca: RootCA,
    public: ec.EllipticCurvePublicKey,
    node_id: str,
    role: str,
    cluster_id: str,
    *,
    lifetime: datetime.timedelta,
    addresses: Sequence[str],
    clock: Clock | None,
) -> x509.Certificate:
    """The one place a node certificate is made: ``issue_node_cert`` and ``ca.csr`` share it.

    The certificate starts before now by CLOCK_SKEW, or by a tenth of its lifetime when
    that is shorter, so that short test certificates still renew in the middle of it.
    """
    check_node_fields(node_id, role, cluster_id, lifetime)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
        ]
    )
    now = utcnow(clock)
    ca_public = ca.key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - min(CLOCK_SKEW, lifetime / 10))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(_alt_names(node_id, addresses)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )


class CertInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a node certificate says: whom it names, and when it is valid."""

    node_id: str
    role: str
    cluster_id: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    serial: str  # hex: serials are up to 159 bits, more than msgpack's integers hold


def cert_info(cert_pem: bytes) -> CertInfo:
    """Read a node certificate; InvalidArgument if it is not one."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise InvalidArgument(f"not a PEM certificate: {exc}") from exc
    try:
        identity = identity_from_der(cert.public_bytes(serialization.Encoding.DER))
    except PermissionDenied as exc:
        raise InvalidArgument(f"not a node certificate: {exc.message}") from exc
    return CertInfo(
        node_id=identity.node_id,
        role=identity.role,
        cluster_id=identity.cluster_id,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=f"{cert.serial_number:x}",
    )


def _alt_names(node_id: str, addresses: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName(node_id),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    for address in addresses:
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(address))
        except ValueError:
            if not address:
                raise InvalidArgument("an empty address cannot go into a certificate") from None
            name = x509.DNSName(address)
        if name not in names:
            names.append(name)
    return names


def write_credentials(directory: str | os.PathLike[str], creds: NodeCredentials) -> None:
    """Write the three credential files into ``directory`` (made 0700 if missing)."""
    path = Path(directory)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomic(path / CA_FILE, creds.ca_cert_pem, 0o644)
        _write_atomic(path / CERT_FILE, creds.cert_pem, 0o644)
        _write_atomic(path / KEY_FILE, creds.key_pem, 0o600)
        _fsync_dir(path)
    except OSError as exc:
        raise FailedPrecondition(
            f"cannot write node credentials to {path}: {exc.strerror or exc}",
            hint="check that the data directory is on a writable disk owned by this user",
        ) from exc


def read_credentials(directory: str | os.PathLike[str]) -> NodeCredentials:
    """The credentials ``write_credentials`` left in ``directory``."""
    path = Path(directory)
    try:
        creds = NodeCredentials(
            cert_pem=(path / CERT_FILE).read_bytes(),
            key_pem=(path / KEY_FILE).read_bytes(),
            ca_cert_pem=(path / CA_FILE).read_bytes(),
        )
    except FileNotFoundError as exc:
        raise NotFound(
            f"no node credentials in {path} ({exc.filename} is missing)",
            hint="this node has not joined a cluster: run `swarmlite init` or `swarmlite join`",
        ) from exc
    except OSError as exc:
        raise FailedPrecondition(
            f"cannot read node credentials from {path}: {exc.strerror or exc}"
        ) from exc
    for name, pem in ((CERT_FILE, creds.cert_pem), (CA_FILE, creds.ca_cert_pem)):
        try:
            x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise InvalidArgument(f"{path / name} is not a PEM certificate: {exc}") from exc
    try:
        serialization.load_pem_private_key(creds.key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"{path / KEY_FILE} is not a PEM private key: {exc}") from exc
    return creds


def _write_atomic(target: Path, data: bytes, mode: int) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    # The mode is given at creation, so the key is never readable by others.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)  # the umask may have taken bits away
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
