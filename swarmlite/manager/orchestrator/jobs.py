"""The jobs orchestrator: tasks that run to completion, for replicated and global jobs.

Owns, for services in REPLICATED_JOB and GLOBAL_JOB mode (task desired state COMPLETE):
a replicated job has slots 1..``job.total_completions`` (``replicas`` when that is 0),
each done once a task in it COMPLETEs, with at most ``job.max_concurrent`` slots running
at once, lowest slots first; a global job runs once on every eligible node (as for global
services: not DOWN, ACTIVE, satisfying the constraints; nodes that join later too). A
task that fails, or whose node goes DOWN, is replaced per the restart policy; a completed
slot or node is never run again. When ``job_iteration`` is bumped, tasks of earlier
iterations still running are shut down and the job runs again. Jobs have no rolling
update: a spec change takes effect with the next iteration (and for tasks started after
it). Does not own deleting tasks (``reaper``).
"""

from __future__ import annotations

import functools

from swarmlite.api import Service, Task, TaskState
from swarmlite.manager.orchestrator.common import (
    Plan,
    ServiceLoop,
    eligible_nodes,
    is_occupying,
    mark_ended,
    new_task,
    nodes_of,
    service_constraints,
    shut_down_live,
    tasks_of,
)
from swarmlite.manager.orchestrator.restart import Verdict, decide_restart, refill
from swarmlite.store import ReadTx


def total_completions(service: Service) -> int:
    job = service.spec.job
    return job.total_completions if job.total_completions > 0 else max(0, service.spec.replicas)


class JobsOrchestrator(ServiceLoop):
    name = "orchestrator.jobs"

    def handles(self, service: Service) -> bool:
        return service.spec.mode.is_job

    def plan_service(self, rt: ReadTx, service_id: str, now: float) -> Plan | None:
        service = rt.get(Service, service_id)
        if service is None or not self.handles(service):
            return None
        nodes = nodes_of(rt)
        plan = Plan(service, tasks_of(rt, service_id), now)
        iteration = service.job_iteration
        shut_down_live(
            plan, [t for t in plan.tasks.values() if t.job_iteration != iteration], nodes
        )
        mark_ended(plan, nodes, job=True)
        global_job = service.spec.mode.is_global

        def make(slot: int, node_id: str) -> Task:
            return new_task(
                service,
                now=now,
                slot=slot,
                node_id=node_id,
                desired=TaskState.COMPLETE,
                rng=self.rng,
            )

        def belongs(task: Task) -> bool:
            if task.job_iteration != iteration:
                return False
            return (not task.slot and bool(task.node_id)) if global_job else task.slot >= 1

        groups = plan.by_key(belongs)

        def done(tasks: list[Task]) -> bool:
            return any(t.status.state is TaskState.COMPLETE for t in tasks)

        if global_job:
            for node_id in eligible_nodes(nodes, service_constraints(service)):
                tasks = groups.get(node_id, [])
                if not done(tasks):
                    refill(
                        plan, service, tasks, nodes, functools.partial(make, 0, node_id), job=True
                    )
            return plan
        total = total_completions(service)
        max_concurrent = max(1, service.spec.job.max_concurrent)
        running = sum(
            1
            for slot, tasks in groups.items()
            if any(is_occupying(plan.tasks[t.id], nodes) for t in tasks)
        )
        for slot in range(1, total + 1):
            tasks = [plan.tasks[t.id] for t in groups.get(slot, [])]
            if done(tasks) or any(is_occupying(t, nodes) for t in tasks):
                continue
            decision = decide_restart(service, tasks, nodes, now, job=True)
            if decision.verdict is Verdict.NEVER:
                continue
            if running >= max_concurrent:
                break
            running += 1  # a slot waiting out its restart delay keeps its turn
            if decision.verdict is Verdict.WAIT:
                plan.wake_at(decision.at)
            else:
                plan.create(make(slot, ""))
        # Slots past the total (the job shrank) do not run.
        for key, tasks in groups.items():
            if isinstance(key, int) and key > total:
                shut_down_live(plan, tasks, nodes)
        return plan
