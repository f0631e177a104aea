"""The error envelope: every error class survives the wire, with or without a body."""

from __future__ import annotations

import datetime

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmlite import errors
from swarmlite.rpc import Identity, identity_from_der
from swarmlite.rpc.envelope import (
    close_code_for,
    close_reason,
    encode_error,
    error_from_close,
    error_from_response,
    error_headers,
    status_for,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidArgument("x"), 400),
        (errors.ComposeError("bad", path="compose.yml", line=3), 400),
        (errors.PermissionDenied("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.AlreadyExists("x"), 409),
        (errors.Conflict("x"), 409),
        (errors.FailedPrecondition("x"), 412),
        (errors.NotLeader("x", details={"leader": "10.0.0.1:2377"}), 503),
        (errors.ImageNotFound("x"), 502),
        (errors.InternalError("x"), 500),
    ],
)
def test_error_round_trips_through_its_envelope(error: errors.SwarmliteError, status: int) -> None:
    rebuilt = error_from_response(status_for(error), encode_error(error), {}, where="/x")

    assert status_for(error) == status
    expected = errors.InvalidArgument if isinstance(error, errors.ComposeError) else type(error)
    assert type(rebuilt) is expected
    assert (rebuilt.message, rebuilt.hint, rebuilt.details) == (
        error.message,
        error.hint,
        error.details,
    )


def test_not_leader_keeps_the_leader_address() -> None:
    error = errors.NotLeader("not the leader", details={"leader": "10.0.0.1:2377"})

    rebuilt = error_from_response(503, encode_error(error), {}, where="/x")

    assert isinstance(rebuilt, errors.NotLeader)
    assert rebuilt.leader == "10.0.0.1:2377"
    assert rebuilt.retryable


def test_details_msgpack_cannot_carry_travel_as_text() -> None:
    error = errors.Conflict("stale", details={"when": object(), "version": 3})

    rebuilt = error_from_response(409, encode_error(error), {}, where="/x")

    assert isinstance(rebuilt, errors.Conflict)
    assert rebuilt.details["version"] == 3
    assert rebuilt.details["when"].startswith("<object object")


def test_headers_carry_the_error_when_there_is_no_body() -> None:
    error = errors.PermissionDenied("node w1 has been removed: ünïcode\nand lines", hint="rejoin")

    rebuilt = error_from_response(403, b"", error_headers(error), where="/stream")

    assert all("\n" not in value for value in error_headers(error).values())
    assert isinstance(rebuilt, errors.PermissionDenied)
    assert (rebuilt.message, rebuilt.hint) == (error.message, "rejoin")


@pytest.mark.parametrize(
    ("status", "cls"),
    [(502, errors.Unavailable), (413, errors.InvalidArgument), (403, errors.PermissionDenied)],
)
def test_a_bare_http_error_maps_by_status(status: int, cls: type[errors.SwarmliteError]) -> None:
    rebuilt = error_from_response(status, b"<html>Bad Gateway</html>", {}, where="m1:2377/x")

    assert type(rebuilt) is cls
    assert rebuilt.message == f"m1:2377/x answered HTTP {status}: <html>Bad Gateway</html>"


def test_close_reason_fits_a_close_frame_and_round_trips() -> None:
    error = errors.NotFound("session " + "é" * 200 + " not found")

    reason = close_reason(error)
    rebuilt = error_from_close(close_code_for(error), reason.decode(), where="/s")

    assert len(reason) <= 123
    assert isinstance(rebuilt, errors.NotFound)
    assert rebuilt.message.startswith("session éé") and rebuilt.message.endswith("...")


def test_close_without_reason_maps_by_code() -> None:
    assert isinstance(error_from_close(1009, "", where="/s"), errors.InvalidArgument)
    assert isinstance(error_from_close(1008, "", where="/s"), errors.PermissionDenied)
    lost = error_from_close(1006, "", where="m1:2377/raft")
    assert isinstance(lost, errors.Unavailable)
    assert lost.message == "stream m1:2377/raft closed: connection lost"


def _cert_der(subject: list[x509.NameAttribute]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(x509.Name(subject))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_identity_reads_cn_ou_o() -> None:
    der = _cert_der(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "n1"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "manager"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "c1"),
        ]
    )

    assert identity_from_der(der) == Identity(node_id="n1", role="manager", cluster_id="c1")


def test_certificate_without_a_role_names_no_identity() -> None:
    der = _cert_der(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "n1"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "c1"),
        ]
    )

    with pytest.raises(errors.PermissionDenied, match=r"no role \(OU\)"):
        identity_from_der(der)
    with pytest.raises(errors.PermissionDenied, match="cannot be parsed"):
        identity_from_der(b"not a certificate")


def test_envelope_is_plain_msgpack() -> None:
    body = encode_error(errors.NotFound("gone", hint="look elsewhere", details={"id": "x"}))

    assert msgspec.msgpack.decode(body) == {
        "code": "not_found",
        "message": "gone",
        "hint": "look elsewhere",
        "details": {"id": "x"},
    }
