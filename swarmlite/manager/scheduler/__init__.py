"""The scheduler: a leader-only loop that chooses a node for every pending task.

``Scheduler`` is the loop (``scheduler``); ``Planner`` the pure placement over a
``ClusterView`` (``place``, ``view``); the rules are ``filters``. See each module.
"""

from swarmlite.manager.scheduler.filters import (
    AvailabilityFilter,
    ConstraintsFilter,
    Filter,
    HostPortFilter,
    MaxReplicasFilter,
    PlatformFilter,
    ReadyFilter,
    ResourcesFilter,
    default_filters,
)
from swarmlite.manager.scheduler.place import Decision, Planner, spread_label
from swarmlite.manager.scheduler.scheduler import ASSIGNED_MESSAGE, MAX_TX_TASKS, Scheduler
from swarmlite.manager.scheduler.view import (
    FAILURE_THRESHOLD,
    FAILURE_WINDOW,
    ClusterView,
    NodeInfo,
    is_live,
    is_schedulable,
    occupies_node,
)

__all__ = [
    "ASSIGNED_MESSAGE",
    "FAILURE_THRESHOLD",
    "FAILURE_WINDOW",
    "MAX_TX_TASKS",
    "AvailabilityFilter",
    "ClusterView",
    "ConstraintsFilter",
    "Decision",
    "Filter",
    "HostPortFilter",
    "MaxReplicasFilter",
    "NodeInfo",
    "Planner",
    "PlatformFilter",
    "ReadyFilter",
    "ResourcesFilter",
    "Scheduler",
    "default_filters",
    "is_live",
    "is_schedulable",
    "occupies_node",
    "spread_label",
]
