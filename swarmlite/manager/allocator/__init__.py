"""The allocator: the leader-only loop that gives networks, nodes, services and tasks addresses.

``Allocator`` is a ``ReconcileLoop`` (run it beside the orchestrator and the scheduler);
``plan`` holds the rules and ``ipam`` the address arithmetic. Nothing here is imported by
another loop: the scheduler waits for a task's ``networks`` in the store, the dispatcher
reads the results through ``swarmlite.manager.netstate``; manager.py hands
``network_refusal`` to the control API, which asks it before storing a network a user made.
"""

from swarmlite.manager.allocator.allocator import Allocator
from swarmlite.manager.allocator.ipam import (
    DEFAULT_POOL,
    DEFAULT_SUBNET_SIZE,
    MESH_LABEL,
    MESH_POOL,
    POOL_LABEL,
    PORT_FIRST,
    PORT_LAST,
    SIZE_LABEL,
    VNI_FIRST,
    Pools,
)
from swarmlite.manager.allocator.plan import (
    INGRESS_NAME,
    Step,
    find_ingress,
    network_refusal,
    plan_step,
)

__all__ = [
    "DEFAULT_POOL",
    "DEFAULT_SUBNET_SIZE",
    "INGRESS_NAME",
    "MESH_LABEL",
    "MESH_POOL",
    "POOL_LABEL",
    "PORT_FIRST",
    "PORT_LAST",
    "SIZE_LABEL",
    "VNI_FIRST",
    "Allocator",
    "Pools",
    "Step",
    "find_ingress",
    "network_refusal",
    "plan_step",
]
