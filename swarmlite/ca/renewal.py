"""When a node renews its certificate: at a random point between 50 % and 80 % of its life.

Owns the timing only; the agent's renewal loop asks for the delay, sleeps on its Clock,
then sends a CSR for its existing key (``ca.csr.csr_for_key``) to ``api.control.CA_RENEW``.
The random point spreads the renewals of nodes that joined together, so the managers do
not sign them all at once, and leaves at least a fifth of the lifetime for retries.
"""

from __future__ import annotations

import datetime
import random

from swarmlite.ca.certs import cert_info

RENEW_FROM = 0.5
RENEW_UNTIL = 0.8


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
