"""What the cluster port allows a peer: connections, time, calls without a certificate.

Owns the numbers (``Limits``) and the three small bookkeepers the server consults:
``ConnectionTable`` (how many connections each peer address holds, and all together),
``RateLimiter`` (token buckets per peer address for the calls anyone may make: joining and
fetching the CA) and ``LogThrottle`` (at most one warning per peer and reason a minute, so
an abuser cannot fill the disk through our log). Does not own sockets or HTTP: the server
(``rpc.server``) asks, then refuses or serves.

Invariant: every table here holds an entry only while its peer is connected or its bucket
is not yet full again, and never more than ``max_entries`` entries, so memory goes back to
its idle level once the peers leave. Time comes from the injected Clock.
"""

from __future__ import annotations

import asyncio.sslproto
import contextlib
import ctypes
import gc
import resource
from collections import OrderedDict
from dataclasses import dataclass

from swarmlite.clock import Clock, SystemClock

# Each open connection costs this process a descriptor; keep this many free for the disk,
# raft's own connections, Docker's socket and the unix listeners.
_RESERVED_FDS = 256


@dataclass(frozen=True)
class Limits:
    """The cluster port's limits; the defaults are what the daemon uses.

    Timeouts are generous for a peer on a slow link and short for one that sends nothing:
    a TLS handshake is a few round trips; a request's headers follow at once; an idle
    keep-alive connection is closed after ``idle_timeout`` (longer than the 15 s after which
    aiohttp's client, ours, drops its own idle connections, so the client closes first).
    """

    handshake_timeout: float = 10.0  # from accept to a finished TLS handshake
    header_timeout: float = 10.0  # from the handshake to the first request's headers
    idle_timeout: float = 60.0  # from the end of an answer to the next request's headers
    max_connections: int = 4096  # in all (lowered to what RLIMIT_NOFILE allows)
    max_connections_per_address: int = 256  # an aiohttp client pools up to 100 per manager
    public_rate: float = 2.0  # calls per second per address on paths open to anyone
    public_burst: int = 20  # calls in a burst before the rate applies
    public_max_message_bytes: int = 64 * 1024  # a join request is a CSR, a token, a name
    max_entries: int = 65536  # peer addresses remembered by any one table

    def connection_cap(self) -> int:
        """``max_connections``, lowered so that the process's descriptors suffice."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(16, min(self.max_connections, soft - _RESERVED_FDS))


TLS_READ_BUFFER = 32 * 1024


def shrink_tls_buffers() -> None:
    """Give each TLS connection of this process a 32 KiB read buffer instead of 256 KiB.

    asyncio's SSL protocol allocates its read buffer zeroed when a connection starts (a
    class attribute sets its size), so 2,000 connections held 512 MiB whatever they sent;
    at 32 KiB (two TLS records) they hold about 60 KiB each. Reads of large bodies take more
    calls, which the cluster's messages (at most a few MiB, snapshots in chunks) do not feel.
    """
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def reclaim_memory() -> None:
    """Give back to the system what connections that are gone left behind.

    Their objects sit in reference cycles (requests, tasks, tracebacks) that only the
    cyclic collector frees, and an idle daemon allocates too little to run it; what is
    freed then stays in the C heap until it is trimmed (glibc only; jemalloc purges it by
    itself, swarmlite.malloc).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class ConnectionTable:
    """Open connections per peer address; ``admit`` says whether one more may stay."""

    def __init__(self, *, total: int, per_address: int) -> None:
        self.total_cap = total
        self.per_address_cap = per_address
        self.total = 0
        self.high_water = 0  # the most open at once since the last reclaim_due()
        self._by_address: dict[str, int] = {}

    def admit(self, address: str) -> str | None:
        """Count a new connection from ``address``; None if admitted, else why not."""
        if self.total >= self.total_cap:
            return f"{self.total_cap} connections are open, the most this port takes"
        held = self._by_address.get(address, 0)
        if held >= self.per_address_cap:
            return f"this address holds {held} connections, the most one address may"
        self._by_address[address] = held + 1
        self.total += 1
        self.high_water = max(self.high_water, self.total)
        return None

    def release(self, address: str) -> None:
        """Forget one admitted connection of ``address``."""
        held = self._by_address.get(address, 0)
        if held <= 0:
            return
        self.total -= 1
        if held == 1:
            del self._by_address[address]
        else:
            self._by_address[address] = held - 1

    def reclaim_due(self, *, wave: int = 64) -> bool:
        """Whether a wave of at least ``wave`` connections has mostly ended since the last
        time this said so (then ``reclaim_memory`` is worth its pause)."""
        if self.high_water < wave or self.total > self.high_water // 4:
            return False
        self.high_water = self.total
        return True

    def held(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def __len__(self) -> int:
        """How many addresses hold a connection."""
        return len(self._by_address)


class RateLimiter:
    """A token bucket per key: ``burst`` calls at once, then ``rate`` per second.

    A key whose bucket has filled up again is forgotten (a full bucket is the default), so
    the table only holds keys that called within the last ``burst / rate`` seconds; past
    ``max_entries`` keys the least recently used one is dropped, which only errs in the
    caller's favour.
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Clock | None = None, max_entries: int = 65536
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limiter needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock: Clock = clock or SystemClock()
        self._max_entries = max_entries
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def allow(self, key: str) -> bool:
        """Take a token for ``key``; False if its bucket is empty."""
        now = self._clock.monotonic()
        self._forget_full(now)
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_entries:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` has a token again (0 if it has one now)."""
        entry = self._buckets.get(key)
        if entry is None:
            return 0.0
        tokens, at = entry
        tokens = min(self.burst, tokens + (self._clock.monotonic() - at) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # Oldest first: once one bucket is not full yet, the later ones are not either.
        refill = self.burst / self.rate
        while self._buckets:
            key, (_, at) = next(iter(self._buckets.items()))
            if now - at < refill:
                break
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class LogThrottle:
    """At most one record per key and ``interval``; says how many it held back meanwhile."""

    def __init__(
        self, interval: float = 60.0, *, clock: Clock | None = None, max_entries: int = 4096
    ) -> None:
        self.interval = interval
        self._clock: Clock = clock or SystemClock()
        self._max_entries = max_entries
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key: (logged at, held)

    def admit(self, key: str) -> int | None:
        """None: do not log now. Otherwise log, and say that ``n`` records were held back."""
        now = self._clock.monotonic()
        entry = self._seen.get(key)
        if entry is not None:
            if now - entry[0] < self.interval:
                self._seen[key] = (entry[0], entry[1] + 1)  # keeps its place: oldest first
                return None
            del self._seen[key]
        while self._seen:  # oldest first; a key that never returns takes its count along
            oldest, (at, _) = next(iter(self._seen.items()))
            if now - at < self.interval:
                break
            del self._seen[oldest]
        self._seen[key] = (now, 0)
        while len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)
        return entry[1] if entry is not None else 0

    def __len__(self) -> int:
        return len(self._seen)
