"""What an rpc message looks like on the wire, apart from its payload.

Owns the error envelope ``{code, message, hint, details}`` (msgpack), the mapping from an
error class to an HTTP status and a WebSocket close code and back, and bounded reads of a
request or response body. Does not own routing, TLS or streams.

Invariant: an error that crosses the wire is rebuilt as the same class on the other side
(``swarmlite.errors.from_code``), with message, hint and details intact; nothing matches on
message text. A peer that sends no envelope (a proxy, a bare HTTP error) still yields an
error of the class its HTTP status suggests.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import msgspec

from swarmlite.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NetworkSetupFailure,
    NotFound,
    PermissionDenied,
    RuntimeFailure,
    SwarmliteError,
    Unavailable,
    UsageError,
    from_code,
)
from swarmlite.log import kv

log = logging.getLogger(__name__)

MSGPACK = "application/msgpack"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# Response headers that repeat the envelope, for refusals a client cannot read a body from
# (a refused WebSocket upgrade). Values are percent-encoded so any text survives HTTP.
ERROR_CODE_HEADER = "Swarmlite-Error-Code"
ERROR_MESSAGE_HEADER = "Swarmlite-Error-Message"
ERROR_HINT_HEADER = "Swarmlite-Error-Hint"

# WebSocket close reasons are limited to 123 bytes by RFC 6455.
_MAX_CLOSE_REASON = 123


class ErrorEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A SwarmliteError as it travels: its class by code, and what a user should read."""

    code: str
    message: str
    hint: str | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)


_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(ErrorEnvelope)

_STATUS_BY_CLASS: dict[type[SwarmliteError], int] = {
    UsageError: 400,
    InvalidArgument: 400,
    PermissionDenied: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    FailedPrecondition: 412,
    Unavailable: 503,
    RuntimeFailure: 502,
    NetworkSetupFailure: 500,
    InternalError: 500,
}

_CLASS_BY_STATUS: dict[int, type[SwarmliteError]] = {
    400: InvalidArgument,
    401: PermissionDenied,
    403: PermissionDenied,
    404: NotFound,
    405: InvalidArgument,
    409: Conflict,
    412: FailedPrecondition,
    413: InvalidArgument,
    415: InvalidArgument,
    429: Unavailable,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}

# WebSocket close codes (RFC 6455 section 7.4.1) and what they mean to us.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLEAN_CLOSE_CODES = frozenset({CLOSE_NORMAL, CLOSE_GOING_AWAY})

_CLOSE_BY_CLASS: dict[type[SwarmliteError], int] = {
    InvalidArgument: CLOSE_UNSUPPORTED_DATA,
    UsageError: CLOSE_UNSUPPORTED_DATA,
    PermissionDenied: CLOSE_POLICY_VIOLATION,
    Unavailable: CLOSE_TRY_AGAIN_LATER,
}

_CLASS_BY_CLOSE: dict[int, type[SwarmliteError]] = {
    CLOSE_UNSUPPORTED_DATA: InvalidArgument,
    1007: InvalidArgument,
    CLOSE_POLICY_VIOLATION: PermissionDenied,
    CLOSE_MESSAGE_TOO_BIG: InvalidArgument,
    CLOSE_INTERNAL_ERROR: InternalError,
}


def _lookup(exc: SwarmliteError, table: dict[type[SwarmliteError], int], default: int) -> int:
    for cls in type(exc).__mro__:
        found = table.get(cls)
        if found is not None:
            return found
    return default


def status_for(exc: SwarmliteError) -> int:
    """The HTTP status an error is answered with."""
    return _lookup(exc, _STATUS_BY_CLASS, 500)


def close_code_for(exc: SwarmliteError) -> int:
    """The WebSocket close code a stream ended by this error is closed with."""
    return _lookup(exc, _CLOSE_BY_CLASS, CLOSE_INTERNAL_ERROR)


def to_envelope(exc: SwarmliteError) -> ErrorEnvelope:
    return ErrorEnvelope(code=exc.code, message=exc.message, hint=exc.hint, details=exc.details)


def from_envelope(envelope: ErrorEnvelope) -> SwarmliteError:
    return from_code(envelope.code, envelope.message, envelope.hint, envelope.details)


def encode_error(exc: SwarmliteError) -> bytes:
    """The msgpack envelope of ``exc``; details that msgpack cannot carry travel as text."""
    envelope = to_envelope(exc)
    try:
        return _encoder.encode(envelope)
    except (TypeError, msgspec.EncodeError):
        safe = {str(key): _encodable(value) for key, value in envelope.details.items()}
        return _encoder.encode(
            ErrorEnvelope(
                code=envelope.code, message=envelope.message, hint=envelope.hint, details=safe
            )
        )


def _encodable(value: Any) -> Any:
    try:
        _encoder.encode(value)
    except (TypeError, msgspec.EncodeError):
        return repr(value)
    return value


def error_headers(exc: SwarmliteError) -> dict[str, str]:
    headers = {ERROR_CODE_HEADER: exc.code, ERROR_MESSAGE_HEADER: quote(exc.message, safe=" ")}
    if exc.hint:
        headers[ERROR_HINT_HEADER] = quote(exc.hint, safe=" ")
    return headers


def error_from_response(status: int, body: bytes, headers: Any, *, where: str) -> SwarmliteError:
    """Rebuild the error a server answered with; ``where`` names the call for messages.

    Reads the msgpack envelope in ``body`` first, then the error headers, and falls back to
    the class that ``status`` suggests.
    """
    if body:
        try:
            return from_envelope(_envelope_decoder.decode(body))
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
    code = headers.get(ERROR_CODE_HEADER) if headers is not None else None
    message = headers.get(ERROR_MESSAGE_HEADER) if headers is not None else None
    if code and message:
        hint = headers.get(ERROR_HINT_HEADER)
        return from_code(code, unquote(message), unquote(hint) if hint else None)
    cls = _CLASS_BY_STATUS.get(status, Unavailable if status >= 500 else InternalError)
    text = body[:200].decode("utf-8", errors="replace").strip()
    suffix = f": {text}" if text else ""
    return cls(f"{where} answered HTTP {status}{suffix}", details={"status": status})


def close_reason(exc: SwarmliteError) -> bytes:
    """``code: message`` cut to what a WebSocket close frame may carry."""
    raw = f"{exc.code}: {exc.message}".encode()
    if len(raw) <= _MAX_CLOSE_REASON:
        return raw
    return raw[: _MAX_CLOSE_REASON - 3].decode("utf-8", errors="ignore").encode() + b"..."


def error_from_close(code: int | None, reason: str, *, where: str) -> SwarmliteError:
    """The error a stream that closed with ``code`` and ``reason`` ended with."""
    name, sep, message = reason.partition(": ")
    if sep and name and " " not in name:
        return from_code(name, message, details={"close_code": code})
    cls = _CLASS_BY_CLOSE.get(code or 0, Unavailable)
    if code == CLOSE_MESSAGE_TOO_BIG:
        text = "a frame was larger than the peer's size limit"
    elif reason:
        text = reason
    else:
        text = "connection lost" if code in (None, 1006) else f"close code {code}"
    return cls(f"stream {where} closed: {text}", details={"close_code": code})


def internal_error(exc: BaseException, *, context: str) -> InternalError:
    """Log a bug with its traceback under a new incident id, and say which id to look for."""
    incident = uuid.uuid4().hex[:12]
    log.error("unexpected error %s", kv(incident=incident, context=context), exc_info=exc)
    return InternalError(
        f"internal error (incident {incident})",
        hint="this is a bug: the server's log has the traceback under this incident id",
        details={"incident": incident},
    )


async def read_body(
    content: aiohttp.StreamReader,
    declared: int | None,
    limit: int,
    *,
    idle_timeout: float | None = None,
) -> bytes:
    """The whole body, refused with InvalidArgument as soon as it passes ``limit`` bytes;
    TimeoutError if ``idle_timeout`` seconds pass without a byte of it."""
    if declared is not None and declared > limit:
        raise _too_large(f"{declared} bytes", limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        async with asyncio.timeout(idle_timeout):
            chunk = await content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit} bytes", limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: str, limit: int) -> InvalidArgument:
    return InvalidArgument(
        f"message of {size} is over the {limit}-byte limit (max_message_bytes)",
        hint="send smaller messages, or raise max_message_bytes on both ends",
        details={"limit": limit},
    )
