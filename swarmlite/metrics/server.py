"""The metrics listener: ``GET /metrics`` in Prometheus' text format, on `--metrics-addr`.

Owns the address's checks (`parse_addr`, `check_addr`: ADDR:PORT with an explicit port,
free to listen on, as ``dockerd --metrics-addr`` takes it; the rules are ``rpc.listen``'s)
and the aiohttp server that
answers with the library's own exposition of one registry (`generate_latest`). It runs on
the daemon's event loop: collectors read the daemon's objects between two of its steps,
never from another thread. No TLS and no authentication, as dockerd's: bind it to an
address only Prometheus reaches. Does not own what is measured (`metrics.node`).

Errors: a malformed address is InvalidArgument; one that cannot be listened on (in use,
not an address of this host) is FailedPrecondition, both saying which flag to change.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from swarmlite.errors import FailedPrecondition
from swarmlite.log import kv
from swarmlite.rpc.listen import check_listen_addr, parse_listen_addr

log = logging.getLogger(__name__)

PATH = "/metrics"
_FLAG = "--metrics-addr"
_EXAMPLE = "127.0.0.1:9323"


def parse_addr(addr: str) -> tuple[str, int]:
    """``--metrics-addr``: ADDR:PORT (``rpc.listen``)."""
    return parse_listen_addr(addr, _FLAG, _EXAMPLE)


def check_addr(addr: str) -> tuple[str, int]:
    """``parse_addr``, then make sure the port can be listened on now."""
    return check_listen_addr(addr, _FLAG, "metrics", _EXAMPLE)


class MetricsServer:
    """Serves one registry on ``http://ADDR:PORT/metrics`` until `stop`."""

    def __init__(self, registry: CollectorRegistry, addr: str) -> None:
        self.registry = registry
        self.addr = addr
        self.port: int | None = None  # the port listened on, once started
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        host, port = parse_addr(self.addr)
        app = web.Application()
        app.router.add_get(PATH, self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await self.stop()
            raise FailedPrecondition(
                f"cannot listen on {self.addr} for metrics: {exc.strerror or exc}",
                hint="choose another --metrics-addr",
            ) from exc
        bound = [a for a in runner.addresses if isinstance(a, tuple)]
        self.port = int(bound[0][1]) if bound else port
        log.info("metrics listening %s", kv(addr=f"{host}:{self.port}", path=PATH))

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
