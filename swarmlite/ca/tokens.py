"""Join tokens: ``SWMTKN-1-<CA digest>-<secret>``, the credential a new node joins with.

Owns the token's text form. The digest is the SHA-256 of the root CA certificate (DER),
written in base36 as 50 characters (zero-padded), so a joiner can pin the CA before it
trusts anything a manager says; the secret is 25 random base36 characters (about 129
bits) drawn from ``secrets``. Does not own where the secrets are kept, which role a
secret grants, nor rotation (the manager stores the current secret per role).

Invariants: ``parse_token(format_token(d, s))`` gives back ``d`` and ``s`` exactly; an
error message never repeats the secret (tokens end up in shell history and bug reports,
error messages in logs); secrets are compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import string

import msgspec

from swarmlite.errors import InvalidArgument

PREFIX = "SWMTKN"
VERSION = 1
DIGEST_CHARS = 50  # 36**50 > 2**256, and 36**49 is not
SECRET_CHARS = 25  # 36**25 > 2**129
_ALPHABET = string.digits + string.ascii_lowercase
_HEX_DIGITS = frozenset(string.hexdigits.lower())
_HINT = "ask a manager for the current token with `swarmlite join-token worker` (or manager)"


class ParsedToken(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    ca_digest_hex: str
    secret: str

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"ParsedToken(version={self.version}, ca_digest_hex={self.ca_digest_hex!r})"


def new_secret() -> str:
    """A fresh random secret for a join token."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_CHARS))


def format_token(ca_digest_hex: str, secret: str) -> str:
    """The token text for the CA with SHA-256 ``ca_digest_hex`` and ``secret``."""
    digest = ca_digest_hex.lower()
    if len(digest) != 64 or not set(digest) <= _HEX_DIGITS:
        raise InvalidArgument("a CA digest is 64 hex characters (SHA-256)")
    if not _is_base36(secret, SECRET_CHARS):
        raise InvalidArgument(f"a join token secret is {SECRET_CHARS} base36 characters")
    return f"{PREFIX}-{VERSION}-{_to_base36(int(digest, 16), DIGEST_CHARS)}-{secret}"


def parse_token(text: str) -> ParsedToken:
    """Read a token; InvalidArgument says what is wrong with it (never echoing it)."""
    token = text.strip()
    prefix = f"{PREFIX}-{VERSION}-"
    if not token.startswith(prefix):
        parts = token.split("-")
        if len(parts) > 2 and parts[0] == PREFIX and parts[1] != str(VERSION):
            raise InvalidArgument(
                f"join token version {parts[1]!r} is not supported (this swarmlite reads "
                f"version {VERSION})",
                hint="join with a swarmlite of the same version as the managers",
            )
        raise InvalidArgument(f"join token must start with {prefix}", hint=_HINT)
    parts = token[len(prefix) :].split("-")
    if len(parts) != 2:
        raise InvalidArgument(
            f"join token must be {prefix}<CA digest>-<secret>, got {len(parts)} part(s) "
            f"after {prefix}",
            hint=_HINT,
        )
    digest, secret = parts
    if not _is_base36(digest, DIGEST_CHARS):
        raise InvalidArgument(
            f"join token has a malformed CA digest (expected {DIGEST_CHARS} base36 "
            f"characters, got {len(digest)})",
            hint=_HINT,
        )
    value = int(digest, 36)
    if value >= 1 << 256:
        raise InvalidArgument("join token has a malformed CA digest (too large)", hint=_HINT)
    if not _is_base36(secret, SECRET_CHARS):
        raise InvalidArgument(
            f"join token has a malformed secret (expected {SECRET_CHARS} base36 characters, "
            f"got {len(secret)})",
            hint=_HINT,
        )
    return ParsedToken(version=VERSION, ca_digest_hex=f"{value:064x}", secret=secret)


def secrets_match(a: str, b: str) -> bool:
    """Whether two secrets are equal, in time that does not depend on where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


def _is_base36(text: str, length: int) -> bool:
    return len(text) == length and all(char in _ALPHABET for char in text)


def _to_base36(value: int, width: int) -> str:
    chars: list[str] = []
    while value:
        value, remainder = divmod(value, 36)
        chars.append(_ALPHABET[remainder])
    return "".join(reversed(chars)).rjust(width, "0")
