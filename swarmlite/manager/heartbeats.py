"""When each node was last heard from: the meeting point of the dispatcher and `node ls`.

Owns the wall time of the last message (a heartbeat, a status report, a hello) each
node's session brought to this leader. The dispatcher records them; the control API shows
them (`node ls --format '{{.LastHeartbeat}}'`, `node inspect --pretty`). Kept in memory on
the leader only: a heartbeat is never written to the store (it would cost a raft write per
node per period), so a new leader starts empty and fills it within one period.
"""

from __future__ import annotations

from swarmlite.clock import Clock


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
