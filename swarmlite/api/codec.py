"""Encoding of api structs: msgpack for the wire and the disk, JSON for the CLI.

Owns the choice of encodings and the translation of msgspec's decode errors: a malformed
or mistyped input raises ``InvalidArgument`` saying what was being decoded and where it
went wrong (``$.spec.replicas``), never a msgspec exception.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from swarmlite.api.objects import KINDS, Object
from swarmlite.errors import InvalidArgument

T = TypeVar("T")

_msgpack_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder()
_msgpack_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}
_json_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
_KINDS_HINT = f"known object kinds: {', '.join(KINDS)}"


def encode(value: Any) -> bytes:
    """msgpack bytes of an api struct (or of builtins holding structs)."""
    return _msgpack_encoder.encode(value)


def decode(data: bytes, type_: type[T], *, what: str = "message") -> T:
    """Decode msgpack ``data`` as ``type_``; InvalidArgument names ``what`` on failure."""
    decoder = _msgpack_decoders.get(type_)
    if decoder is None:
        decoder = _msgpack_decoders[type_] = msgspec.msgpack.Decoder(type_)
    try:
        return decoder.decode(data)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise InvalidArgument(f"malformed {what}: {exc}") from exc


def encode_object(obj: Object) -> bytes:
    return _msgpack_encoder.encode(obj)


def decode_object(data: bytes) -> Object:
    """Decode msgpack of an object of any kind (its ``kind`` field picks the type)."""
    try:
        return _object_decoder.decode(data)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed object: {exc}", hint=_KINDS_HINT) from exc


_object_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(Object)


def encode_json(value: Any) -> bytes:
    """JSON bytes for the CLI (bytes fields come out base64-encoded)."""
    return _json_encoder.encode(value)


def decode_json(data: bytes | str, type_: type[T], *, what: str = "JSON document") -> T:
    decoder = _json_decoders.get(type_)
    if decoder is None:
        decoder = _json_decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(data)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed {what}: {exc}") from exc


def to_builtins(value: Any) -> Any:
    """dicts, lists and strings for rendering (enums become their names)."""
    return msgspec.to_builtins(value)
