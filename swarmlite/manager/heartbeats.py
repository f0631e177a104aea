"""When each node was last heard from: the meeting point of the dispatcher and `node ls`.

Owns the wall time of the last message (a heartbeat, a status report, a hello) each
node's session brought to this leader. The dispatcher records them; the control API shows
them (`node ls --format '{{.LastHeartbeat}}'`, `node inspect --pretty`). Kept in memory on
the leader only: a heartbeat is never written to the store (it would cost a raft write per
node per period), so a new leader starts empty and fills it within one period.

Also owns the period itself (`heartbeat_period`): the configured one, made longer as the
cluster grows, so that the leader's cost of hearing from every node stays bounded; and the
raft election timeout's growth with it (`election_scale`).
"""

from __future__ import annotations

import math

from swarmlite.clock import Clock

# The most heartbeats a second the leader asks of the whole cluster. Each one is a TLS
# record to decrypt, a message to decode and a dict write on the leader's one core; at
# 1,000 nodes this makes the period 5 s (swarmkit's default), and a silent node DOWN
# within 3 periods, 15 s.
MAX_BEATS_PER_S = 200


def heartbeat_period(configured: float, nodes: int) -> float:
    """The period every node is told to beat at and judged by (DOWN after 3 missed).

    The configured period, unless `nodes` beating at it would send the leader more than
    MAX_BEATS_PER_S heartbeats a second; then the shortest whole number of seconds that
    does not. Whole seconds, so that the period changes only every MAX_BEATS_PER_S nodes
    (each change is a SessionInfo sent to every node), not with every join.
    """
    needed = nodes / MAX_BEATS_PER_S
    if needed <= configured:
        return configured
    return max(configured, float(math.ceil(needed)))


def election_scale(configured: float, nodes: int) -> float:
    """How many times the configured raft election timeout the managers wait: as many as
    the heartbeat period grew (`heartbeat_period`). A leader's work grows with the nodes it
    serves (their joins, sessions and pushes), and on a busy leader a short timeout turns
    a slow moment into an election, which costs every node its session: 1,000 nodes wait
    2.4-4.8 s instead of 0.4-0.8 s."""
    return heartbeat_period(configured, nodes) / configured if configured > 0 else 1.0


class Heartbeats:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self.received = 0  # messages counted as heartbeats since start (for metrics)

    def beat(self, node_id: str) -> None:
        self._last[node_id] = self._clock.wall()
        self.received += 1

    def last(self, node_id: str) -> float:
        """Wall time of the node's last message to this leader; 0.0 when none came yet."""
        return self._last.get(node_id, 0.0)

    def clear(self) -> None:
        self._last.clear()
