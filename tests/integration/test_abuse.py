"""The cluster port under abuse, and many writers to one object (issue 13, items 7 and 8).

One manager on 127.0.0.1, started with `swarmlite init` (so its log is the size-rotated
file of a detached daemon). Abusers connect from other loopback addresses (127.0.0.0/8 is
all local on Linux), so the manager's limits per peer address see several peers, and the
test's own calls (the unix socket, and a client with the node's certificate on the
cluster port from 127.0.0.1) are not among them.

What is checked is what issue 13 names as outcomes: `node ls` keeps answering while
2,000 slow and idle connections without a certificate come and go for 60 s, 1,000 failed
joins with 8 MB hostnames grow its log by under 1 MB, every malformed request is answered
with the error envelope, and 1,000 concurrent `--label-add` writers to one node are all
acknowledged. The issue's figures (`node ls` within 2 s, RSS back within 20 MB of idle)
are measured and printed (`pytest -m "" -s tests/integration/test_abuse.py`) and recorded
in BENCHMARKS.md, not asserted: timings and memory are benchmarks' to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import resource
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from swarmlite.api.control import JoinRequest, ListRequest, NodeRef, NodeUpdate
from swarmlite.api.routes import JOIN, NODE_INSPECT, NODE_LS, NODE_UPDATE
from swarmlite.ca import client_context, read_credentials
from swarmlite.errors import SwarmliteError
from swarmlite.rpc import ControlClient, ErrorEnvelope, RpcClient

if __name__ != "__main__":  # the abusers' process needs none of the harness
    from .conftest import Cluster, Node

pytestmark = [
    pytest.mark.timeout(300),
    # The abusers are this test's own clients: what they leave unclosed when the server
    # cuts them is no finding about the server.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ABUSERS = 2000
ABUSE_SECONDS = 60.0
SOURCES = [f"127.0.0.{i}" for i in range(10, 30)]  # 100 connections from each
DRIP_SECONDS = 10.0  # a slow abuser sends one byte this often
NODE_LS_WITHIN = 2.0  # the goal for `node ls` under abuse (measured, printed)
RSS_SETTLE_SECONDS = 40.0  # past the second malloc_trim the daemon runs after a wave
JOINS = 1000
HOSTNAME_BYTES = 8 * 1024 * 1024
LOG_GROWTH_LIMIT = 1024 * 1024
WRITERS = 1000


@pytest.fixture(scope="module")
def abused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One manager; every daemon killed afterwards."""
    _raise_nofile()
    made = Cluster(tmp_path_factory.mktemp("abuse").resolve())
    try:
        made.init("m1")
        made.heal()
        yield made
    finally:
        made.close()


def _raise_nofile() -> None:
    """2,000 connections need more descriptors than a soft limit of 1,024: raise the soft
    limit to the hard one (the daemon inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = ABUSERS + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def log_bytes(node: Node) -> int:
    """The daemon's log with its rotated files."""
    return sum(p.stat().st_size for p in node.data_dir.glob("swarmlite.log*"))


@functools.cache
def anonymous_tls() -> ssl.SSLContext:
    """A client context with no certificate that trusts any server; made once, as loading
    the system's CA store takes milliseconds that 2,000 clients would spend again and again."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def timed_node_ls(cluster: Cluster, client: ControlClient) -> float:
    started = time.monotonic()
    rows = client.call(NODE_LS, ListRequest()).nodes
    took = time.monotonic() - started
    assert rows, "node ls answered no nodes"
    return took


# --------------------------------------------------------------------------- connections


async def _abuser(
    kind: str, source: str, port: int, stop: asyncio.Event, seen: Counter[str], delay: float
) -> None:
    """Hold a connection without a certificate, reconnecting whenever the server ends it:
    ``tcp`` never starts TLS, ``slow`` drips a request's header a byte at a time, ``idle``
    completes the handshake and sends nothing."""
    header = b"POST /join/v1/ca HTTP/1.1\r\nHost: m1\r\nContent-Type: application/msgpack\r\n"
    await asyncio.sleep(delay)  # a ramp: this process is a client of 2,000 TLS connections
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    "127.0.0.1",
                    port,
                    local_addr=(source, 0),
                    ssl=None if kind == "tcp" else anonymous_tls(),
                ),
                timeout=30,
            )
        except (OSError, TimeoutError) as exc:
            seen[f"refused ({type(exc).__name__})"] += 1
            await asyncio.sleep(1.0)
            continue
        seen["connected"] += 1
        seen["open"] += 1
        seen["most open"] = max(seen["most open"], seen["open"])
        sent = 0
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    if not await asyncio.wait_for(reader.read(4096), DRIP_SECONDS):
                        seen["closed by server"] += 1
                        break
                    continue  # an answer (an error envelope): read on until the close
                if kind == "slow":
                    writer.write(header[sent % len(header) : sent % len(header) + 1])
                    sent += 1
                    await writer.drain()
        except (OSError, ssl.SSLError):
            seen["closed by server"] += 1
        finally:
            seen["open"] -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)


async def _abuse(port: int, abusers: int, seconds: float) -> dict[str, int]:
    """``abusers`` connections to ``port`` for ``seconds``; what they saw."""
    stop = asyncio.Event()
    seen: Counter[str] = Counter()
    kinds = ("tcp", "slow", "idle")
    tasks = [
        asyncio.create_task(
            _abuser(kinds[i % 3], SOURCES[i % len(SOURCES)], port, stop, seen, i * 0.005)
        )
        for i in range(abusers)
    ]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=DRIP_SECONDS + 15)
    for task in tasks:
        task.cancel()
    for ended in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(ended, Exception):
            seen[f"abuser failed ({type(ended).__name__})"] += 1
    return dict(seen)


def _start_abusers(port: int) -> subprocess.Popen[str]:
    """The abusers run in a process of their own, as an attacker would, so that their
    2,000 TLS clients do not share this test's event loop or its warnings filters."""
    return subprocess.Popen(
        [sys.executable, __file__, str(port), str(ABUSERS), str(ABUSE_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_slow_and_idle_connections_leave_the_manager_serving(abused: Cluster) -> None:
    m1 = abused.nodes["m1"]
    pid = abused.pid(m1)
    certified = ControlClient(
        m1.https,
        ssl_context=lambda: client_context(read_credentials(m1.certs)),
        timeout=NODE_LS_WITHIN * 5,
    )
    for _ in range(20):  # warm both paths before taking the idle level
        timed_node_ls(abused, abused.control(m1))
        timed_node_ls(abused, certified)
    time.sleep(2)
    idle = rss_mb(pid)

    abusers = _start_abusers(m1.port)
    worst = {"unix": 0.0, "cluster port": 0.0}
    peak = idle
    try:
        while abusers.poll() is None:
            time.sleep(5)
            for name, client in (("unix", abused.control(m1)), ("cluster port", certified)):
                worst[name] = max(worst[name], timed_node_ls(abused, client))
            peak = max(peak, rss_mb(pid))
        out, _ = abusers.communicate(timeout=60)
    finally:
        if abusers.poll() is None:
            abusers.kill()
            abusers.wait()
    seen = json.loads(out.strip().splitlines()[-1])
    result = {"idle_rss": idle, "peak_rss": peak, "worst": worst, "seen": seen}
    print(f"abuse: {result}")

    # Every call above was answered (a failed one raises); how fast, and the memory, are
    # figures for BENCHMARKS.md (this test prints them), not assertions.
    # Every abuser tried, many got in at once, and the server showed them out. How many
    # hold a connection at the same moment depends on how fast this machine completes
    # TLS handshakes for both sides (the abusers' process reports it as "most open").
    tried = sum(n for key, n in seen.items() if key == "connected" or key.startswith("refused"))
    assert tried >= ABUSERS, result
    assert seen.get("most open", 0) >= 100, result
    assert seen.get("closed by server", 0) > 0, result

    time.sleep(RSS_SETTLE_SECONDS)
    after = rss_mb(pid)
    print(f"abuse: RSS {RSS_SETTLE_SECONDS:g} s after: {after:.1f} MB (idle {idle:.1f} MB)")
    timed_node_ls(abused, certified)  # and it still serves


# --------------------------------------------------------------------------- joins


async def _joins(port: int) -> Counter[str]:
    outcome: Counter[str] = Counter()
    request = JoinRequest(
        token="SWMTKN-1-" + "0" * 64 + "-" + "x" * 25,
        csr_pem=b"-----BEGIN CERTIFICATE REQUEST-----",
        hostname="h" * HOSTNAME_BYTES,
        addr="127.0.0.1:1",
    )
    gate = asyncio.Semaphore(40)
    context = anonymous_tls()

    async def one() -> None:
        async with gate:
            client = RpcClient(f"https://127.0.0.1:{port}", context, timeout=30)
            try:
                await client.request(JOIN, request)
                outcome["joined"] += 1
            except SwarmliteError as exc:
                outcome[exc.code] += 1
            finally:
                await client.close()

    await asyncio.gather(*(one() for _ in range(JOINS)))
    return outcome


def test_failed_joins_with_huge_hostnames_barely_grow_the_log(abused: Cluster) -> None:
    m1 = abused.nodes["m1"]
    before = log_bytes(m1)

    outcome = asyncio.run(_joins(m1.port))

    assert outcome["joined"] == 0, outcome
    assert sum(outcome.values()) == JOINS
    grown = log_bytes(m1) - before
    assert grown < LOG_GROWTH_LIMIT, (grown, outcome)
    abused.node_ls(m1)


# --------------------------------------------------------------------------- malformed


async def _raw(port: int, payload: bytes) -> tuple[int, bytes, bytes]:
    """Send ``payload`` over TLS without a certificate; the status, headers and body."""
    # From an address of its own: 127.0.0.1 may have used up its calls without a
    # certificate in the joins test (then the answer is 429, and a large body is cut).
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=anonymous_tls(), local_addr=("127.0.0.40", 0)
    )
    try:
        writer.write(payload)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head, body


def _post(path: str, body: bytes, content_type: str = "application/msgpack") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: m1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def test_malformed_requests_are_answered_with_the_error_envelope(abused: Cluster) -> None:
    m1 = abused.nodes["m1"]
    nested = b"\x91" * 60_000 + b"\x90"  # deep nesting within the public size limit
    cases = {
        "nested msgpack": _post("/join/v1/join", nested),
        "10 M levels of nesting": _post("/join/v1/join", b"\x91" * 10_000_000 + b"\x90"),
        "wrong content type": _post("/join/v1/join", b"{}", "application/json"),
        "not msgpack": _post("/join/v1/join", b"\xc1\xc1\xc1"),
        "GET": b"GET /join/v1/ca HTTP/1.1\r\nHost: m1\r\nConnection: close\r\n\r\n",
        "unknown path": _post("/nowhere", b"\x80"),
        "no certificate": _post("/control/v1/node/ls", b"\x80"),
        "bad request line": b"BREW /pot HTTP/9\r\n\r\n",
        "header too long": b"POST /join/v1/ca HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
    }
    decoder = msgspec.msgpack.Decoder(ErrorEnvelope)
    for name, payload in cases.items():
        try:
            status, head, body = asyncio.run(_raw(m1.port, payload))
        except OSError as exc:
            raise AssertionError(f"{name}: no answer, {exc!r}") from exc
        assert 400 <= status < 600, (name, status, head)
        assert b"application/msgpack" in head.lower(), (name, head, body[:200])
        envelope = decoder.decode(body)
        assert envelope.code and envelope.message, (name, envelope)
        assert envelope.code != "internal", (name, envelope)
    abused.node_ls(m1)


# --------------------------------------------------------------------------- writers


async def _label_writers(socket: Path, node_id: str) -> Counter[str]:
    outcome: Counter[str] = Counter()
    client = RpcClient("http://localhost", None, unix_socket=str(socket), timeout=120)

    async def one(i: int) -> None:
        try:
            await client.request(NODE_UPDATE, NodeUpdate(ref=node_id, label_add={f"w{i}": "1"}))
            outcome["ok"] += 1
        except SwarmliteError as exc:
            outcome[exc.code] += 1

    try:
        await asyncio.gather(*(one(i) for i in range(WRITERS)))
    finally:
        await client.close()
    return outcome


def test_concurrent_label_add_writers_all_land(abused: Cluster) -> None:
    m1 = abused.nodes["m1"]
    (row,) = [r for r in abused.node_ls(m1) if r.hostname == "m1"]

    outcome = asyncio.run(_label_writers(m1.socket, row.id))

    assert outcome == Counter(ok=WRITERS)
    labels = abused.call(NODE_INSPECT, NodeRef(ref=row.id), m1).node.spec.labels
    assert {f"w{i}" for i in range(WRITERS)} <= set(labels)


if __name__ == "__main__":  # the abusers' process (_start_abusers)
    _raise_nofile()
    port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(_abuse(port, count, seconds))))
