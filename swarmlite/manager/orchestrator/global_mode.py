"""The global orchestrator: one task of a global service on every eligible node.

Owns, for services in GLOBAL mode: a node is eligible for a new task when it exists, is
not DOWN, is ACTIVE and satisfies the placement constraints; such a node without a task
gets one (its ``node_id`` set here, the scheduler still checks and assigns it). Follows node
joins, label changes (a node that stops satisfying the constraints has its task shut
down), drains and removals (its task is shut down), failures (refilled per the restart
policy, on the same node) and rolling updates (``update``, node by node). A PAUSE node
keeps its task but gets no new one. Does not own deleting tasks (``reaper``).

A service dirty only because some of its tasks changed plans only their nodes
(``plan_keys``), unless an update runs or would start; a node change plans every global
service whole.
"""

from __future__ import annotations

import functools

from swarmlite.api import Service, ServiceMode, Task
from swarmlite.manager.constraints import node_matches
from swarmlite.manager.orchestrator.common import (
    Key,
    Plan,
    ServiceLoop,
    eligible_nodes,
    keep_one_live,
    mark_ended,
    new_task,
    nodes_of,
    service_constraints,
    shut_down_live,
    tasks_of,
)
from swarmlite.manager.orchestrator.restart import refill
from swarmlite.manager.orchestrator.update import advance_update, update_in_progress
from swarmlite.store import ReadTx


class GlobalOrchestrator(ServiceLoop):
    name = "orchestrator.global"

    def handles(self, service: Service) -> bool:
        return service.spec.mode is ServiceMode.GLOBAL

    def plan_service(self, rt: ReadTx, service_id: str, now: float) -> Plan | None:
        service = rt.get(Service, service_id)
        if service is None or not self.handles(service):
            return None
        return self._plan(rt, service, now, None)

    def plan_keys(
        self, rt: ReadTx, service_id: str, keys: frozenset[Key], now: float
    ) -> Plan | None:
        """Only the nodes in ``keys``: when no update runs and every key is a node (a task
        with a slot, or without a node, means a mode change). A plan that would start an
        update plans whole. A node change plans every service whole (the loop is not
        ``node_scoped``: a node that joins needs a task it has no event for)."""
        service = rt.get(Service, service_id)
        if service is None or not self.handles(service):
            return None
        if update_in_progress(service) or not all(isinstance(k, str) and k for k in keys):
            return self._plan(rt, service, now, None)
        plan = self._plan(rt, service, now, keys)
        if plan.service_changed:
            return self._plan(rt, service, now, None)
        return plan

    def _plan(self, rt: ReadTx, service: Service, now: float, keys: frozenset[Key] | None) -> Plan:
        nodes = nodes_of(rt)
        plan = Plan(service, tasks_of(rt, service.id, keys), now)
        constraints = service_constraints(service)
        # Tasks with a slot, or without a node, do not belong to a global service.
        shut_down_live(plan, [t for t in plan.tasks.values() if t.slot or not t.node_id], nodes)
        mark_ended(plan, nodes)
        # A node that no longer satisfies the constraints does not keep its task.
        unfit = [
            t
            for t in plan.tasks.values()
            if t.node_id in nodes
            and (constraints is None or not node_matches(nodes[t.node_id], constraints))
        ]
        shut_down_live(plan, unfit, nodes)

        def make(key: Key) -> Task:
            assert isinstance(key, str)
            return new_task(service, now=now, node_id=key, rng=self.rng)

        groups = plan.by_key(lambda t: not t.slot and bool(t.node_id))
        candidates = nodes
        if keys is not None:  # the nodes of ``keys`` only
            candidates = {k: nodes[k] for k in keys if isinstance(k, str) and k in nodes}
        eligible = eligible_nodes(candidates, constraints)
        for node_id in eligible:
            tasks = groups.get(node_id, [])
            keep_one_live(plan, tasks, nodes, same=lambda t: t.spec == service.spec.task)
            refill(plan, service, tasks, nodes, functools.partial(make, node_id))
        advance_update(plan, list(eligible), nodes, make)
        return plan
