"""The HTTP plumbing every Docker Engine API handler shares: reaching the control API,
reading requests the way dockerd reads them, and answering the way dockerd answers.

Owns the API version range and its refusals, Docker's headers, the error body
(``{"message": ...}`` with ``Content-Type: application/json`` exactly: Go clients read the
message only then), the status of each swarmlite error class, the request body limit, and
the reading of JSON bodies and query parameters. Does not own any endpoint.

Adding handlers (one module per noun, e.g. ``dockerapi/services.py``)::

    from aiohttp import web
    from swarmlite.api import dockerjson
    from swarmlite.api.control import NameRef
    from swarmlite.api.routes import SERVICE_INSPECT
    from swarmlite.dockerapi.http import add_route, control, json_response, not_found_as, path_ref

    async def inspect(request: web.Request) -> web.Response:
        ref = path_ref(request)
        with not_found_as("service", ref):
            view = await control(request).call(SERVICE_INSPECT, NameRef(ref=ref))
        return json_response(dockerjson.service_json(view.service))

    def add_routes(router: web.UrlDispatcher) -> None:
        add_route(router, "GET", "/services/{id}", inspect)

then name the module in ``server.ROUTE_MODULES``. ``add_route`` serves the path both
unversioned and as ``/v1.47/...``. A handler raises swarmlite's errors (those of the control
API come back as their own class) or ``DockerError(status, message)``; the middleware of
``server.py`` turns either into Docker's error response, so handlers never build one.
Request bodies: ``read_object(request, "swarm.SecretSpec")`` gives a ``Body`` whose keys
match case-insensitively, with ``null`` meaning absent, as Go's decoder reads them, and
whose typed getters (``get_str``, ``get_bool``, ``get_int``, ``get_map``, ``get_strs``,
``get_list``, ``get_obj``) name the field in Go's words when a value has the wrong type;
``refuse_unknown`` refuses keys Docker does not know for that type.
Query parameters: ``query_bool`` (dockerd's rules: ``""``, ``0``, ``no``, ``false``,
``none`` are false, any other value true, so docker-py's ``True``/``False`` work),
``query_filters`` (both JSON forms), ``query_version`` (``?version=N`` of updates).
``with not_found_as("service", ref):`` around a control call gives dockerd's 404 words;
``api_version(request)`` is the version the client asked for (unversioned: the newest);
``empty_response(204)`` answers a delete; ``control(request).items(route, req)`` streams.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import msgspec
from aiohttp import web

from swarmlite.api.actor import acting_as
from swarmlite.api.filters import Filters, filters_from_json
from swarmlite.api.routes import NOT_A_MANAGER, Rep, Req, Route
from swarmlite.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SwarmliteError,
    Unavailable,
    UsageError,
)
from swarmlite.rpc import DEFAULT_MAX_MESSAGE_BYTES, RpcClient

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
MAX_BODY_BYTES = DEFAULT_MAX_MESSAGE_BYTES  # more could not reach the control API anyway
JSON_TYPE = "application/json"  # exactly: Go clients parse an error body only with it

# The paths a handler is served on: as given, and behind a version prefix.
VERSIONED = r"/v{api_version:[0-9]+\.[0-9]+}"
_VERSION_PREFIX = re.compile(r"^/v([0-9]+)\.([0-9]+)(/.*)?$")

NOT_A_MANAGER_MESSAGE = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DockerError(Exception):
    """An answer with a status of Docker's own that no swarmlite error class maps to."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- the control API


class Control:
    """The node's own control API, over its unix socket: what every handler calls.

    Going through the control API (not the store) gives the Docker front end the role
    checks, leader forwarding and worker refusals of every other client.
    """

    def __init__(self, socket_path: str, *, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self._client = RpcClient("http://localhost", None, unix_socket=socket_path, timeout=timeout)

    async def call(self, route: Route[Req, Rep], request: Req) -> Rep:
        with acting_as(ACTOR):  # the store records the Docker API's writes as its own
            return await self._client.request(route, request)

    def items(self, route: Route[Req, Rep], request: Req) -> AsyncIterator[Rep]:
        """A streaming route's items (service logs)."""
        return self._client.items(route, request)

    async def close(self) -> None:
        await self._client.close()


ACTOR = "docker-api"  # who asked, in the event log (the router adds "@<node>")
CONTROL_KEY = web.AppKey("swarmlite.dockerapi.control", Control)


def control(request: web.Request) -> Control:
    return request.app[CONTROL_KEY]


# --------------------------------------------------------------------------- routes, versions


def add_route(router: web.UrlDispatcher, method: str, path: str, handler: Handler) -> None:
    """Serve ``handler`` at ``path`` and at ``/vX.Y`` + ``path`` (GET answers HEAD too)."""
    for full in (path, VERSIONED + path):
        if method == "GET":
            router.add_get(full, handler)
        else:
            router.add_route(method, full, handler)


def parse_version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def version_refusal(path: str) -> str | None:
    """dockerd's words when ``path`` names an API version outside ours, else None."""
    found = _VERSION_PREFIX.match(path)
    if found is None:
        return None
    asked = f"{int(found[1])}.{int(found[2])}"
    wanted = (int(found[1]), int(found[2]))
    if wanted < parse_version(MIN_API_VERSION):
        return (
            f"client version {asked} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if wanted > parse_version(API_VERSION):
        return f"client version {asked} is too new. Maximum supported API version is {API_VERSION}"
    return None


def api_version(request: web.Request) -> tuple[int, int]:
    """The version the client asked for; unversioned paths get the newest, as in dockerd."""
    asked = request.match_info.get("api_version")
    return parse_version(asked or API_VERSION)


# --------------------------------------------------------------------------- answers


def json_response(obj: Any, status: int = 200) -> web.Response:
    """``obj`` as JSON with Docker's content type (no charset), newline-terminated as Go's
    encoder writes it."""
    body = msgspec.json.encode(obj) + b"\n"
    return web.Response(body=body, status=status, content_type=JSON_TYPE)


def empty_response(status: int = 200) -> web.Response:
    return web.Response(status=status)


def error_response(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)


def status_of(error: SwarmliteError) -> int:
    """The HTTP status dockerd gives the same kind of error (moby ``httpstatus``)."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, AlreadyExists):
        return 409
    if isinstance(error, Conflict):
        # swarmkit's "update out of sequence" is a plain error: gRPC Unknown, HTTP 500.
        return 500
    if isinstance(error, InvalidArgument | UsageError | FailedPrecondition):
        return 400
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, Unavailable):
        return 503
    return 500


def docker_error(error: SwarmliteError) -> tuple[int, str]:
    """Status and message of a swarmlite error as dockerd would give them."""
    if error.details.get("refusal") == NOT_A_MANAGER:
        return 503, NOT_A_MANAGER_MESSAGE
    message = error.message
    if isinstance(error, Conflict) and not message.startswith("update out of sequence"):
        message = f"update out of sequence: {message}"
    if error.hint and isinstance(error, InvalidArgument) and message == "invalid filter":
        message = f"{message}: {error.hint}"
    return status_of(error), message


@contextlib.contextmanager
def not_found_as(kind: str, ref: str) -> Iterator[None]:
    """A NotFound raised inside, in dockerd's words: ``node nope not found`` (the control
    API quotes the reference and adds a hint meant for swarmlite's CLI)."""
    try:
        yield
    except NotFound as exc:
        raise NotFound(f"{kind} {ref} not found", details=exc.details) from exc


# --------------------------------------------------------------------------- request bodies


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, as dockerd's ``ReadJSON`` takes it: JSON content type,
    at most ``MAX_BODY_BYTES``, one JSON value. Anything else is a 400 (413 when too
    large) naming the problem, before anything is done."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large(request.content_length)
    content_type = request.headers.get("Content-Type", "")
    if request.body_exists and content_type.split(";")[0].strip().lower() != JSON_TYPE:
        raise InvalidArgument(
            f"unsupported Content-Type header ({content_type}): must be '{JSON_TYPE}'"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(size)
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise InvalidArgument("invalid JSON: got EOF while reading request body")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from exc


def _too_large(size: int) -> DockerError:
    return DockerError(
        413,
        f"request body is too large: {size} bytes or more, over the limit of "
        f"{MAX_BODY_BYTES} bytes",
    )


async def read_object(request: web.Request, go_type: str) -> Body:
    """The JSON body, which must be an object, read as Go's ``go_type`` (for messages)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidArgument(
            f"invalid JSON: json: cannot unmarshal {_json_kind(data)} into Go value of type "
            f"{go_type}"
        )
    return Body(data, go_type.rpartition(".")[2])


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


class Body:
    """One JSON object of a request, read as Go's decoder reads a struct: keys match
    case-insensitively (docker-py sends ``"replicated"``), ``null`` is absent, and a value
    of the wrong type is an InvalidArgument naming the field (``where.Field``)."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.where = where
        self._data: dict[str, tuple[str, Any]] = {}
        for key, value in data.items():
            self._data[key.lower()] = (key, value)

    def keys(self) -> list[str]:
        """The keys present with a non-null value, as the client spelled them."""
        return [key for key, value in self._data.values() if value is not None]

    def refuse_unknown(self, known: Iterable[str]) -> None:
        """A 400 naming the first key that is not one of ``known`` (Go names)."""
        allowed = {name.lower() for name in known}
        for lowered, (key, _) in self._data.items():
            if lowered not in allowed:
                raise InvalidArgument(f'invalid JSON: json: unknown field "{key}"')

    def get(self, name: str) -> Any:
        """The raw value of ``name``; None when absent or null."""
        found = self._data.get(name.lower())
        return None if found is None else found[1]

    def _wrong(self, name: str, value: Any, go_type: str) -> InvalidArgument:
        return InvalidArgument(
            f"invalid JSON: json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{self.where}.{name} of type {go_type}"
        )

    def get_str(self, name: str, default: str = "") -> str:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(name, value, "string")
        return value

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(name, value, "bool")
        return value

    def get_int(self, name: str, default: int = 0) -> int:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, value, "int64")
        return value

    def get_map(self, name: str) -> dict[str, str]:
        """A ``map[string]string`` (Labels, Options): an object of strings, or null."""
        value = self.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._wrong(name, value, "map[string]string")
        for item in value.values():
            if not isinstance(item, str):
                raise self._wrong(name, item, "string")
        return dict(value)

    def get_strs(self, name: str) -> list[str]:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(name, value, "[]string")
        for item in value:
            if not isinstance(item, str):
                raise self._wrong(name, item, "string")
        return list(value)

    def get_list(self, name: str) -> list[Any]:
        value = self.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(name, value, "[]")
        return list(value)

    def get_obj(self, name: str, go_type: str | None = None) -> Body | None:
        """A nested object as a Body (None when absent); ``go_type`` names it in errors."""
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong(name, value, go_type or name)
        return Body(value, go_type or f"{self.where}.{name}")


# --------------------------------------------------------------------------- query parameters


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """dockerd's ``BoolValue``: false for ``""``, ``0``, ``no``, ``false``, ``none``
    (any case, trimmed), true for anything else; ``default`` when the parameter is absent."""
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "no", "false", "none")


def query_filters(request: web.Request) -> Filters:
    """The ``filters`` parameter in either JSON form (CLI maps, docker-py/Portainer lists)."""
    return filters_from_json(request.query.get("filters", ""))


def query_version(request: web.Request, what: str) -> int:
    """``?version=N`` of an update, as dockerd reads it (``what``: "node", "secret"...)."""
    raw = request.query.get("version", "")
    try:
        version = int(raw)
        if version < 0 or not raw.isdigit():
            raise ValueError(raw)
    except ValueError as exc:
        raise InvalidArgument(
            f"invalid {what} version '{raw}': strconv.ParseUint: parsing \"{raw}\": invalid syntax"
        ) from exc
    return version


def path_ref(request: web.Request, name: str = "id") -> str:
    """A path parameter naming an object (id, name or unique id prefix)."""
    return request.match_info[name]
