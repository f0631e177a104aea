"""Join tokens: the text form round trips, every malformed form says what is wrong."""

from __future__ import annotations

import hashlib
import string

import pytest

from swarmlite.ca import RootCA, cert_digest, format_token, new_secret, parse_token, secrets_match
from swarmlite.errors import InvalidArgument

BASE36 = set(string.digits + string.ascii_lowercase)


@pytest.fixture(scope="module")
def ca() -> RootCA:
    return RootCA.create("cluster-a")


def test_token_round_trip_gives_back_the_ca_digest_and_secret(ca: RootCA) -> None:
    secret = new_secret()
    token = format_token(ca.digest(), secret)

    parsed = parse_token(token)

    assert token.startswith("SWMTKN-1-")
    _, _, digest, tail = token.split("-")
    assert len(digest) == 50 and set(digest) <= BASE36
    assert tail == secret
    assert parsed.version == 1
    assert parsed.ca_digest_hex == ca.digest() == cert_digest(ca.cert_pem)
    assert parsed.secret == secret


@pytest.mark.parametrize(
    "digest",
    ["0" * 64, "f" * 64, "00ff" + "0" * 60, hashlib.sha256(b"x").hexdigest()],
)
def test_extreme_digests_round_trip(digest: str) -> None:
    token = format_token(digest, new_secret())

    assert len(token.split("-")[2]) == 50  # zero-padded, and 2**256 - 1 still fits
    assert parse_token(token).ca_digest_hex == digest


def test_upper_case_digest_hex_is_accepted_and_read_back_lower_case() -> None:
    digest = hashlib.sha256(b"ca").hexdigest()

    assert parse_token(format_token(digest.upper(), new_secret())).ca_digest_hex == digest


def test_surrounding_whitespace_is_ignored(ca: RootCA) -> None:
    token = format_token(ca.digest(), new_secret())

    assert parse_token(f"  {token}\n") == parse_token(token)


def test_secrets_are_25_random_base36_characters() -> None:
    drawn = {new_secret() for _ in range(200)}

    assert len(drawn) == 200
    assert all(len(secret) == 25 and set(secret) <= BASE36 for secret in drawn)


def test_a_rotated_secret_no_longer_matches(ca: RootCA) -> None:
    old = new_secret()
    presented = parse_token(format_token(ca.digest(), old)).secret
    rotated = new_secret()

    assert secrets_match(presented, old)
    assert not secrets_match(presented, rotated)
    assert not secrets_match(presented, old[:-1])


def valid_parts(ca_digest: str) -> tuple[str, str]:
    token = format_token(ca_digest, new_secret())
    _, _, digest, secret = token.split("-")
    return digest, secret


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, s: "", "join token must start with SWMTKN-1-"),
        (lambda d, s: f"{d}-{s}", "join token must start with SWMTKN-1-"),
        (lambda d, s: f"swmtkn-1-{d}-{s}", "join token must start with SWMTKN-1-"),
        (lambda d, s: f"SWMTKN-2-{d}-{s}", "join token version '2' is not supported"),
        (lambda d, s: f"SWMTKN-1-{d}", "got 1 part(s)"),
        (lambda d, s: f"SWMTKN-1-{d}-{s}-extra", "got 3 part(s)"),
        (lambda d, s: f"SWMTKN-1-{d[:-1]}-{s}", "malformed CA digest (expected 50 base36"),
        (lambda d, s: f"SWMTKN-1-{d}0-{s}", "malformed CA digest (expected 50 base36"),
        (lambda d, s: f"SWMTKN-1-{d.upper()}-{s}", "malformed CA digest"),
        (lambda d, s: f"SWMTKN-1-{'!' + d[1:]}-{s}", "malformed CA digest"),
        (lambda d, s: f"SWMTKN-1-{'z' * 50}-{s}", "malformed CA digest (too large)"),
        (lambda d, s: f"SWMTKN-1-{d}-{s[:-1]}", "malformed secret (expected 25 base36"),
        (lambda d, s: f"SWMTKN-1-{d}-{s}a", "malformed secret"),
        (lambda d, s: f"SWMTKN-1-{d}-{s[:-1]}_", "malformed secret"),
    ],
)
def test_malformed_tokens_say_what_is_wrong(ca: RootCA, make, message: str) -> None:
    digest, secret = valid_parts(ca.digest())
    text = make(digest, secret)

    with pytest.raises(InvalidArgument) as caught:
        parse_token(text)

    assert message in caught.value.message
    assert secret not in caught.value.message  # errors end up in logs
    assert caught.value.hint


def test_parsed_token_repr_hides_the_secret(ca: RootCA) -> None:
    secret = new_secret()

    assert secret not in repr(parse_token(format_token(ca.digest(), secret)))


@pytest.mark.parametrize(
    ("digest", "secret", "message"),
    [
        ("ab" * 31, "a" * 25, "64 hex characters"),
        ("g" * 64, "a" * 25, "64 hex characters"),
        ("ab" * 32, "a" * 24, "25 base36 characters"),
        ("ab" * 32, "A" * 25, "25 base36 characters"),
    ],
)
def test_format_token_refuses_bad_parts(digest: str, secret: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        format_token(digest, secret)
