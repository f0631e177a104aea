"""Renewing a node's certificate: when (`renewal_delay`), and the renewing itself (`CertRenewer`).

A certificate is renewed at a random point between 50 % and 80 % of its life: the random
point spreads the renewals of nodes that joined together, so the managers do not sign them
all at once, and leaves at least a fifth of the lifetime for retries.

`CertRenewer` owns a node's live credentials and the TLS contexts made from them: it sleeps
on its Clock until the renewal point, sends a CSR for the node's existing key
(``ca.csr.csr_for_key``) to ``api.routes.CA_RENEW`` on a manager, writes what comes back
to the certs dir and makes new contexts from it. The contexts it hands out
(``ca.tls.live_context``) follow those without a restart. It also follows the cluster's
CA as the session tells it (``follow_ca``): during a root rotation (``ca.rotation``) it
trusts both roots and renews at once; when the rotation ends it trusts the new root only.
It does not own which managers exist (they are passed in) nor what a new role means for
the node (the daemon restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from swarmlite.api.control import RenewRequest
from swarmlite.api.routes import CA_RENEW
from swarmlite.ca.certs import (
    NodeCredentials,
    cert_info,
    read_credentials,
    write_credentials,
)
from swarmlite.ca.csr import csr_for_key
from swarmlite.ca.root import utcnow
from swarmlite.ca.rotation import issued_by, join_pems, leaf_of, split_pems
from swarmlite.ca.tls import client_context, live_context, server_context
from swarmlite.clock import Clock
from swarmlite.errors import SwarmliteError, Unavailable
from swarmlite.log import kv
from swarmlite.rpc import RpcClient

log = logging.getLogger(__name__)

RENEW_FROM = 0.5
RENEW_UNTIL = 0.8
RETRY_SECONDS = 30.0  # after a failed renewal
ROTATION_RETRY_SECONDS = 2.0  # after a failed renewal that a CA rotation waits for


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

    ``client_ssl()`` gives the context to call other nodes with; ``server_ssl`` serves the
    cluster port. Both are live: each new connection uses the certificate and the CAs held
    now. The cluster port also serves nodes that have no certificate yet (a node joining),
    so the server context asks for a client certificate without requiring one.
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
        self._client = client_context(self.creds)
        self._server = server_context(self.creds, require_client_cert=False)
        self._client_ssl = live_context(lambda: self._client)
        self.server_ssl = live_context(lambda: self._server)
        self._stopped = asyncio.Event()
        self._due = asyncio.Event()  # renew now: the cluster signs from another root
        self._signing_root = b""  # the root the cluster signs with, as last told (PEM)
        self._via: str | None = None  # the leader, as last told

    def client_ssl(self) -> ssl.SSLContext:
        return self._client_ssl

    def follow_ca(
        self, *, root_pem: bytes, trust_pem: bytes, chain_pem: bytes, via: str | None
    ) -> None:
        """Follow the cluster's CA as a manager tells it: trust ``trust_pem`` (both roots
        during a rotation); when this node's certificate is not from ``root_pem`` (the root
        that signs now), renew at once; when it is, present it with ``chain_pem`` (the
        cross-signed root during a rotation, nothing after)."""
        if not root_pem or not trust_pem:
            return  # a manager that does not say
        self._signing_root, self._via = root_pem, via
        creds = self.creds
        if join_pems([trust_pem]) != join_pems([creds.ca_cert_pem]):
            creds = msgspec.structs.replace(creds, ca_cert_pem=trust_pem)
        leaf = leaf_of(creds.cert_pem)
        if issued_by(leaf, root_pem):
            chain = join_pems([leaf, chain_pem])
            if chain != join_pems([creds.cert_pem]):
                creds = msgspec.structs.replace(creds, cert_pem=chain)
        else:
            self._due.set()
        if creds != self.creds:
            self._install(creds)
            log.info(
                "cluster CA followed %s",
                kv(roots=len(split_pems(creds.ca_cert_pem)), chain=len(split_pems(creds.cert_pem))),
            )

    def _stale(self) -> bool:
        """The cluster signs from a root this node's certificate does not come from."""
        root = self._signing_root
        return bool(root) and not issued_by(self.creds.cert_pem, root)

    def _install(self, creds: NodeCredentials) -> None:
        """Use ``creds`` from now on: contexts first (they refuse a bad pair before anything
        is written), then the files, then new connections."""
        client = client_context(creds)
        server = server_context(creds, require_client_cert=False)
        write_credentials(self._dir, creds)
        self.creds, self._client, self._server = creds, client, server

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
            await self._until_due(max(delay, 1.0))
            woken = self._due.is_set()
            self._due.clear()
            if woken and not self._stale() and delay > 1.0:
                continue  # told to renew, but a renewal since has done it
            try:
                await self.renew(self._via if woken else None)
            except SwarmliteError as exc:
                log.warning("certificate renewal failed; retrying %s", kv(error=exc.message))
                if self._stale():  # a CA rotation waits for this node
                    await self._clock.sleep(ROTATION_RETRY_SECONDS * self._rng.uniform(1, 2))
                    self._due.set()
                else:
                    await self._clock.sleep(RETRY_SECONDS)

    async def _until_due(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if a renewal is due before."""
        if self._due.is_set():
            return
        sleeping = asyncio.ensure_future(self._clock.sleep(delay))
        due = asyncio.ensure_future(self._due.wait())
        try:
            await asyncio.wait({sleeping, due}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (sleeping, due):
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting

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
            self._install(
                NodeCredentials(
                    cert_pem=reply.cert_pem,
                    key_pem=self.creds.key_pem,
                    ca_cert_pem=self.creds.ca_cert_pem,
                )
            )
            log.info("certificate renewed %s", kv(role=reply.role.value))
            return
        raise last or Unavailable("no manager to renew the certificate with")
