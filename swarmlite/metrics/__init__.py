"""metrics: Prometheus metrics of a node, on `--metrics-addr` (off unless given).

`NodeMetrics` holds one daemon's private registry and what each part of the node adds to
it (`metrics.cluster` on a manager: Raft, the store, the leader's loops, sessions,
heartbeats, nodes and tasks; `metrics.containers` on every node: each running task's
CPU, memory and network); `MetricsServer` serves it as ``GET /metrics``. Only
`daemon.py` (and `bootstrap.py`, for the address check) imports this layer; the layers it
reads keep their own counters and hooks and know nothing of Prometheus.
"""

from swarmlite.metrics.cluster import RaftReading
from swarmlite.metrics.containers import DEFAULT_INTERVAL, TaskStatsSampler
from swarmlite.metrics.node import NodeMetrics
from swarmlite.metrics.server import PATH, MetricsServer, check_addr, parse_addr

__all__ = [
    "DEFAULT_INTERVAL",
    "PATH",
    "MetricsServer",
    "NodeMetrics",
    "RaftReading",
    "TaskStatsSampler",
    "check_addr",
    "parse_addr",
]
