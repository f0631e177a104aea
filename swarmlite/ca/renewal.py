"""Renewing a node's certificate: when (`renewal_delay`), and the renewing itself (`CertRenewer`).

A certificate is renewed at a random point between 50 % and 80 % of its life: the random
point spreads the renewals of nodes that joined together, so the managers do not sign them
all at once, and leaves at least a fifth of the lifetime for retries.

`CertRenewer` owns a node's live credentials and the TLS contexts made from them: it sleeps
on its Clock until the renewal point, sends a CSR for the node's existing key
(``ca.csr.csr_for_key``) to ``api.routes.CA_RENEW`` on a manager, writes what comes back
to the certs dir and puts it into both contexts. It does not own which managers exist
(they are passed in) nor what a new role means for the node (the daemon restarts).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

from swarmlite.api.control import RenewRequest
from swarmlite.api.routes import CA_RENEW
from swarmlite.ca.certs import (
    CERT_FILE,
    KEY_FILE,
    NodeCredentials,
    cert_info,
    read_credentials,
    write_credentials,
)
from swarmlite.ca.csr import csr_for_key
from swarmlite.ca.root import utcnow
from swarmlite.ca.tls import client_context, server_context
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError, Unavailable
from swarmlite.log import kv
from swarmlite.rpc import RpcClient

log = logging.getLogger(__name__)

RENEW_FROM = 0.5
RENEW_UNTIL = 0.8
RETRY_SECONDS = 30.0  # after a failed renewal


def renewal_delay(cert_pem: bytes, *, now: datetime.datetime, rng: random.Random) -> float:
    """Seconds from ``now`` until this certificate should be renewed; 0 if already due.

    The lifetime runs from the certificate's notBefore to its notAfter. A ``now`` without
    a time zone is taken as UTC.
    """
    info = cert_info(cert_pem)
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    lifetime = info.not_after - info.not_before
    moment = info.not_before + lifetime * rng.uniform(RENEW_FROM, RENEW_UNTIL)
    return max(0.0, (moment - now).total_seconds())


class CertRenewer:
    """This node's certificate, and the TLS contexts made from it, kept renewed.

    ``client_ssl()`` gives the context to call other nodes with now (a new one after each
    renewal); ``server_ssl`` serves the cluster port and takes a new certificate in place.
    The cluster port also serves nodes that have no certificate yet (a node joining), so
    the server context asks for a client certificate without requiring one.
    """

    def __init__(
        self,
        certs_dir: Path,
        managers: Callable[[], Sequence[str]],
        clock: Clock,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._dir = certs_dir
        self._managers = managers  # the addresses of the managers this node knows, now
        self._clock = clock
        self._rng = rng or random.Random()
        self.creds = read_credentials(certs_dir)
        self._client_ssl = client_context(self.creds)
        self.server_ssl = server_context(self.creds, require_client_cert=False)
        self._stopped = asyncio.Event()

    def client_ssl(self) -> ssl.SSLContext:
        return self._client_ssl

    async def run(self) -> None:
        """Renew at each certificate's renewal point until `stop`; a failed renewal is
        tried again after RETRY_SECONDS."""
        async with asyncio.TaskGroup() as tasks:
            renewing = tasks.create_task(self._loop())
            await self._stopped.wait()
            renewing.cancel()

    def stop(self) -> None:
        """Make `run` return; a renewal under way is abandoned (the old certificate stays)."""
        self._stopped.set()

    async def _loop(self) -> None:
        while True:
            delay = renewal_delay(self.creds.cert_pem, now=utcnow(self._clock), rng=self._rng)
            await self._clock.sleep(max(delay, 1.0))
            try:
                await self.renew(None)
            except SwarmliteError as exc:
                log.warning("certificate renewal failed; retrying %s", kv(error=exc.message))
                await self._clock.sleep(RETRY_SECONDS)

    async def renew(self, via: str | None) -> None:
        """Have a manager (`via` first, then the known ones) sign this node's key again,
        with the role the cluster gives it now; the error of the last one tried if none did."""
        csr_pem = csr_for_key(self.creds.key_pem)
        addresses = [a for a in [via, *self._managers()] if a]
        last: SwarmliteError | None = None
        for address in addresses:
            client = RpcClient(f"https://{address}", self._client_ssl, timeout=10.0)
            try:
                reply = await client.request(CA_RENEW, RenewRequest(csr_pem=csr_pem))
            except SwarmliteError as exc:
                last = exc
                continue
            finally:
                await client.close()
            self.creds = NodeCredentials(
                cert_pem=reply.cert_pem,
                key_pem=self.creds.key_pem,
                ca_cert_pem=self.creds.ca_cert_pem,
            )
            write_credentials(self._dir, self.creds)
            self._client_ssl = client_context(self.creds)
            self.server_ssl.load_cert_chain(self._dir / CERT_FILE, self._dir / KEY_FILE)
            log.info("certificate renewed %s", kv(role=reply.role.value))
            return
        raise last or Unavailable("no manager to renew the certificate with")
