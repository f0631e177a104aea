"""``/secrets`` and ``/configs``: the cluster's named blobs through the Docker Engine API.

Owns the reading of Docker's ``SecretSpec``/``ConfigSpec`` (``Name``, ``Labels``, ``Data``
as standard base64, ``Driver``, ``Templating``) and the update rule. Both kinds are served
by the same handlers over ``BlobRoutes``. A secret's data never appears in a reply; a
config's does (``Spec.Data``), as in dockerd.

Refused with 400, naming the field: a secret ``Driver`` and ``Templating`` (swarmlite stores
every blob itself and never templates it). Updates: dockerd allows only ``Labels`` to change
(``only updates to Labels are allowed`` otherwise); swarmlite's control API cannot change a
blob at all, so an update is accepted only when it changes nothing (the same name, labels
and, for configs, data: what ``docker stack deploy`` sends again on every redeploy) and
refused with 400 naming ``Labels`` when it would change them. A secret's data cannot be
compared (the control API never returns it), so a secret update is judged on its name and
labels alone.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from swarmlite.api import Config, Secret, dockerjson
from swarmlite.api.control import BlobCreate, BlobView, ListRequest, NameRef
from swarmlite.api.routes import CONFIG_ROUTES, SECRET_ROUTES, BlobRoutes
from swarmlite.dockerapi.http import (
    Body,
    Handler,
    add_route,
    control,
    empty_response,
    json_response,
    not_found_as,
    path_ref,
    query_filters,
    query_version,
    read_object,
)
from swarmlite.errors import Conflict, InvalidArgument

SPEC_FIELDS = ("Name", "Labels", "Data", "Driver", "Templating")


def _blob_json(view: BlobView) -> dict[str, Any]:
    blob = view.object
    if isinstance(blob, Secret):
        return dockerjson.secret_json(blob)
    return dockerjson.config_json(blob)


def _decode_data(body: Body) -> bytes | None:
    raw = body.get("Data")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidArgument(
            f"invalid JSON: json: cannot unmarshal {type(raw).__name__} into Go struct field "
            f"{body.where}.Data of type []uint8"
        )
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"invalid JSON: Data is not standard base64: {exc}") from exc


def _read_spec(body: Body, kind: str) -> tuple[str, dict[str, str], bytes | None]:
    body.refuse_unknown(SPEC_FIELDS)
    if body.get_obj("Driver", "swarm.Driver") is not None:
        raise InvalidArgument(
            f"Driver is not supported by swarmlite: every {kind} is stored by the cluster itself"
        )
    if body.get_obj("Templating", "swarm.Driver") is not None:
        raise InvalidArgument(f"Templating is not supported by swarmlite: {kind}s are used as is")
    return body.get_str("Name"), body.get_map("Labels"), _decode_data(body)


class BlobHandlers:
    """The handlers of one kind: ``BlobHandlers("secret", SECRET_ROUTES)``."""

    def __init__(self, kind: str, routes: BlobRoutes) -> None:
        self.kind = kind
        self.routes = routes
        self.go_type = f"swarm.{kind.capitalize()}Spec"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        base = f"/{self.kind}s"
        handlers: list[tuple[str, str, Handler]] = [
            ("GET", base, self.ls),
            ("POST", f"{base}/create", self.create),
            ("GET", f"{base}/{{id}}", self.inspect),
            ("DELETE", f"{base}/{{id}}", self.remove),
            ("POST", f"{base}/{{id}}/update", self.update),
        ]
        for method, path, handler in handlers:
            add_route(router, method, path, handler)

    async def ls(self, request: web.Request) -> web.Response:
        listed = await control(request).call(
            self.routes.ls, ListRequest(filters=query_filters(request))
        )
        return json_response([_blob_json(view) for view in listed.items])

    async def inspect(self, request: web.Request) -> web.Response:
        ref = path_ref(request)
        with not_found_as(self.kind, ref):
            view = await control(request).call(self.routes.inspect, NameRef(ref=ref))
        return json_response(_blob_json(view))

    async def create(self, request: web.Request) -> web.Response:
        body = await read_object(request, self.go_type)
        name, labels, data = _read_spec(body, self.kind)
        view = await control(request).call(
            self.routes.create, BlobCreate(name=name, data=data or b"", labels=labels)
        )
        return json_response({"ID": view.object.id}, status=201)

    async def remove(self, request: web.Request) -> web.Response:
        ref = path_ref(request)
        with not_found_as(self.kind, ref):
            await control(request).call(self.routes.rm, NameRef(ref=ref))
        return empty_response(204)

    async def update(self, request: web.Request) -> web.Response:
        ref = path_ref(request)
        version = query_version(request, self.kind)
        name, labels, data = _read_spec(await read_object(request, self.go_type), self.kind)
        with not_found_as(self.kind, ref):
            current = (await control(request).call(self.routes.inspect, NameRef(ref=ref))).object
        if version != current.version:
            raise Conflict("update out of sequence")
        data_changed = (
            isinstance(current, Config) and data is not None and data != current.spec.data
        )
        if name != current.spec.name or data_changed:
            raise InvalidArgument("only updates to Labels are allowed")
        if labels != current.spec.labels:
            raise InvalidArgument(
                f"Labels: swarmlite cannot change the labels of a {self.kind}; "
                f"remove it and create it again with the new labels"
            )
        return empty_response()


SECRETS = BlobHandlers("secret", SECRET_ROUTES)
CONFIGS = BlobHandlers("config", CONFIG_ROUTES)


def add_routes(router: web.UrlDispatcher) -> None:
    for handlers in (SECRETS, CONFIGS):
        handlers.add_routes(router)
