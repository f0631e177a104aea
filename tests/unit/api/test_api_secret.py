"""A secret's content never shows in its repr (a log line, an error, a traceback), yet
travels whole on the wire."""

from __future__ import annotations

import msgspec
import rich.pretty

from swarmlite.api import Secret
from swarmlite.api.secret import SecretSpec


def test_a_secrets_repr_hides_its_content_but_the_wire_keeps_it() -> None:
    secret = Secret(id="s1", spec=SecretSpec(name="pw", data=b"S3CRET-CANARY", labels={"a": "b"}))
    for shown in (repr(secret), str([secret]), rich.pretty.pretty_repr(secret)):
        assert "S3CRET" not in shown
        assert "pw" in shown and "<13 bytes>" in shown
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(secret), type=Secret) == secret
