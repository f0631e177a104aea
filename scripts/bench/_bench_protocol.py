"""The control protocol between `raft.py` (the parent) and one benchmark node process.

Owns the wire format (JSON lines), the command names and their replies, the launch
contract of a node script, and `serve()`, the loop a node script runs. Does not own any
Raft implementation, nor timing or statistics: a node measures raw values and the parent
turns them into percentiles and rates. Plain stdlib, so any node script can import it.

Invariant: a node's stdout carries protocol replies and nothing else. `serve()` moves
fd 1 aside before the node starts and points fd 1 at stderr, so a stray print or a
library writing to stdout cannot corrupt the stream.

Launch contract (what `raft.py` runs for each of the 3 nodes of a cluster)::

    python scripts/bench/_<system>_node.py --id N --dir DATA_DIR --peers PEERS [--certs CERT_DIR]

- `--id N`: 1, 2 or 3.
- `--dir DATA_DIR`: an empty directory, fresh for every cluster, where the node keeps
  its Raft log; also the place for any log file the node wants to write.
- `--peers PEERS`: all three nodes, this one included, as `1=127.0.0.1:P1,2=...,3=...`;
  node N listens on its own entry, on loopback.
- `--certs CERT_DIR`: only for systems that need TLS material (swarmlite): what
  `swarmlite.ca.write_credentials()` wrote for this node, to be read back with
  `swarmlite.ca.read_credentials(CERT_DIR)`: node id `node-N`, role `manager`, SANs
  `node-N` and 127.0.0.1; one root CA and cluster id per benchmark run.
- The node's stderr goes to a log file the parent keeps; the parent reads stdout.
- The node stops when stdin reaches end of file, or when the parent kills it (SIGKILL:
  the parent never waits for a graceful stop).

Wire format: the parent writes one JSON object per line on the node's stdin,
`{"id": <int>, "cmd": <name>, ...arguments}`; the node answers every request with exactly
one JSON object on one stdout line, `{"id": <same id>, ...result}`, or
`{"id": <same id>, "error": "<what went wrong>"}`. One request at a time: the parent
sends the next request only after the reply (or gives up on the node).

Commands (a "write" is one small replicated update, e.g. set key i to a 16-byte value;
"committed" means applied to the state machine on the node that issued it):

- `{"cmd": "status"}` -> `{"leader": bool, "leader_id": str | null, "ready": bool}`.
  `leader` is this node's own view; `leader_id` is the leader it knows of, in any
  stable form (equal on all nodes that agree); `ready` means started, connected and
  caught up. Must answer quickly at any time.
- `{"cmd": "seq", "n": 1000}` -> `{"latencies_ms": [float, ...]}` (n values): n writes
  one after the other, each waiting until committed. Sent to the leader only; a node
  that is not the leader answers with an error.
- `{"cmd": "throughput", "seconds": 10, "inflight": 1000}` -> `{"writes": int,
  "seconds": float}`: keep `inflight` writes outstanding for `seconds`, issuing a new
  one as each commits; `writes` counts those committed within the window, `seconds` is
  the window actually measured. Leader only. The node waits for the writes still in
  flight (bounded) before replying, so the next command starts on a quiet cluster.
- `{"cmd": "write_until_ok", "timeout": 20}` -> `{"ok_at": float | null}`: sent to the
  survivors after the leader was killed. As soon as this node is the leader it issues a
  write, then another if that one fails, until one commits; `ok_at` is `time.time()`
  at that commit. A write merely forwarded to another node does not count. `null` if
  nothing committed here within `timeout` seconds (e.g. the other survivor won).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TextIO

Message = dict[str, Any]
Handler = Callable[[Message], Message]

STATUS = "status"
SEQ = "seq"
THROUGHPUT = "throughput"
WRITE_UNTIL_OK = "write_until_ok"
COMMANDS = (STATUS, SEQ, THROUGHPUT, WRITE_UNTIL_OK)

VALUE_BYTES = 16


def encode(message: Message) -> str:
    """One protocol line, newline included."""
    return json.dumps(message, separators=(",", ":")) + "\n"


def decode(line: str) -> Message:
    """Parse one protocol line; ValueError if it is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"protocol line is not a JSON object: {line.strip()!r}")
    return message


def value_for(i: int) -> str:
    """The 16-byte value written for key i (ASCII, so one byte per character)."""
    return f"{i:0{VALUE_BYTES}d}"[-VALUE_BYTES:]


def parse_peers(text: str) -> dict[int, tuple[str, int]]:
    """`1=127.0.0.1:P1,2=...,3=...` -> {1: ("127.0.0.1", P1), ...}."""
    peers: dict[int, tuple[str, int]] = {}
    for item in text.split(","):
        index, _, address = item.partition("=")
        host, _, port = address.rpartition(":")
        peers[int(index)] = (host, int(port))
    return peers


def format_peers(ports: tuple[int, ...]) -> str:
    """The `--peers` argument for nodes 1..len(ports), all on loopback."""
    return ",".join(f"{i}=127.0.0.1:{port}" for i, port in enumerate(ports, start=1))


def _take_stdout() -> TextIO:
    """Keep the real stdout for replies and send everything else written to fd 1 to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "w", buffering=1, encoding="utf-8")


def serve(handlers: Mapping[str, Handler]) -> None:
    """Answer requests from stdin until it closes. A handler's exception becomes an error reply."""
    out = _take_stdout()
    for line in sys.stdin:
        if not line.strip():
            continue
        request_id: Any = None
        try:
            request = decode(line)
            request_id = request.get("id")
            name = request.get("cmd")
            handler = handlers.get(name) if isinstance(name, str) else None
            if handler is None:
                raise ValueError(f"unknown command {name!r}")
            reply = handler(request)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(encode({"id": request_id, **reply}))
