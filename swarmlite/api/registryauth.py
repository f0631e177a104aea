"""Registry credentials: what `--with-registry-auth` hands the cluster for a service's pulls.

Owns the shape of one set of credentials (``RegistryAuth``, Docker's ``AuthConfig``), its
``X-Registry-Auth`` header form (base64url of the JSON, as the Engine API takes it on image
pulls and service creates) and the reading of such a header. The credentials are a
secret: their repr, and every error about them, names the registry and which fields are
set, never a value. Reading them from a user's Docker config is ``cli.registryauth``'s;
keeping them (with the service, off every view) the control API's; using them the
runtime's. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import msgspec

from swarmlite.errors import InvalidArgument

HEADER = "X-Registry-Auth"
MAX_FIELD = 16 * 1024  # bytes: a token of a cloud registry fits with room to spare
_FIELDS = {  # Docker's JSON key -> our field
    "serveraddress": "server",
    "username": "username",
    "password": "password",
    "identitytoken": "identity_token",
    "registrytoken": "registry_token",
}


class RegistryAuth(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """Credentials for one registry, as ``docker login`` stores them."""

    server: str = ""  # "198.18.0.10:5000", "https://index.docker.io/v1/"; "" unknown
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (a credential helper's "<token>" user)
    registry_token: str = ""  # a bearer token for the registry itself

    @property
    def empty(self) -> bool:
        """No credential at all (what `--with-registry-auth` sends without a login)."""
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def described(self) -> str:
        """Which credentials these are, without any secret: ``user "ci" at ghcr.io``."""
        what = (
            f"user {json.dumps(self.username)}"
            if self.username
            else ("a token" if self.identity_token or self.registry_token else "nothing")
        )
        return f"{what} at {self.server}" if self.server else what

    # Never a password or token, should credentials end up in a log line or a traceback.
    def __repr__(self) -> str:
        return f"RegistryAuth(<{self.described()}>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("credentials", self.described())]

    def header(self) -> str:
        """The ``X-Registry-Auth`` value dockerd reads: base64url of Docker's JSON."""
        body = {
            docker: getattr(self, ours) for docker, ours in _FIELDS.items() if getattr(self, ours)
        }
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def check_auth(auth: RegistryAuth, where: str) -> None:
    """InvalidArgument (naming ``where``, never a value) for credentials that cannot work."""
    if auth.empty:
        raise InvalidArgument(
            f"{where}: the registry credentials hold no user name, password or token",
            hint="log in to the registry first (`docker login`), or leave out --with-registry-auth",
        )
    for ours in _FIELDS.values():
        value: str = getattr(auth, ours)
        if len(value.encode()) > MAX_FIELD:
            raise InvalidArgument(
                f"{where}: the registry credentials' {ours} is longer than {MAX_FIELD} bytes"
            )
        if any(ord(c) < 0x20 for c in value):
            raise InvalidArgument(
                f"{where}: the registry credentials' {ours} holds a control character"
            )


def from_header(raw: str) -> RegistryAuth | None:
    """The credentials of an ``X-Registry-Auth`` header; None for an absent or empty one
    (``e30=``, ``{}``: what the docker CLI sends without a login). InvalidArgument for one
    that is not base64url-encoded JSON of an object; the error never repeats the value."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        # No cause kept: a JSON error carries the whole document, credentials and all.
        raise InvalidArgument(f"{HEADER} is not base64url-encoded JSON") from None
    if not isinstance(decoded, dict):
        raise InvalidArgument(f"{HEADER} must encode a JSON object")
    fields: dict[str, str] = {}
    for key, value in decoded.items():
        ours = _FIELDS.get(str(key).lower())
        if ours is None or value in (None, ""):
            continue  # email, auth's duplicate of user:password, ...: not needed to pull
        if not isinstance(value, str):
            raise InvalidArgument(f"{HEADER}: {key} must be a string")
        fields[ours] = value
    auth_field = next((v for k, v in decoded.items() if str(k).lower() == "auth"), "")
    if auth_field and not fields.get("username"):
        user, password = split_basic(str(auth_field), HEADER)
        fields.setdefault("username", user)
        fields.setdefault("password", password)
    auth = RegistryAuth(**fields)
    return None if auth.empty else auth


def split_basic(encoded: str, where: str) -> tuple[str, str]:
    """(user, password) of an ``auth`` field: standard base64 of ``user:password``."""
    try:
        text = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(f"{where}: the auth field is not base64 of user:password") from None
    user, colon, password = text.partition(":")
    if not colon:
        raise InvalidArgument(f"{where}: the auth field is not base64 of user:password")
    return user, password
