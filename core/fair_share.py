"""Fair share within a lane: one owner's backlog cannot starve another owner.

The rule: a job's priority is how many unfinished (queued or running) jobs its owner already has in the same
lane when it is queued, capped at `MAX_PRIORITY`; lower is served first, and jobs of equal priority in the
order they were queued. Owner A's tenth training waits behind owner B's first, whenever B queued it.

It is carried by what Celery and Redis already do: the task message is sent with that priority, and kombu's
Redis transport keeps one list per priority step (`priority_steps` = 0..MAX_PRIORITY, `core.queue`) and pops
the lowest non-empty one first. The embedded worker, which claims from the database instead of a broker,
orders its claims by the same (priority, created_at, id), and `queue_position` counts by it too. Why message
priorities rather than re-ordering at claim time: each message stays the job it names (claims, fencing,
redelivery, the stranded-message check all keep their meaning), and nothing is read on the worker's hot path.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from core.models import Job, JobState

# Redis keeps one list per step: 10 steps cover an owner's typical backlog (the per-owner cap of unfinished
# jobs is 20 by default); beyond the cap an owner's jobs are simply FIFO among themselves.
MAX_PRIORITY = 9
UNFINISHED = (JobState.QUEUED.value, JobState.RUNNING.value)


def priority_for(session: Session, owner_id: str, lane: str) -> int:
    """The priority a new job of `owner_id` in `lane` gets: the owner's unfinished jobs there, capped."""
    unfinished = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.owner_id == owner_id, Job.lane == lane, Job.state.in_(UNFINISHED))
    )
    return min(int(unfinished or 0), MAX_PRIORITY)


def served_before(job: Job) -> ColumnElement[bool]:
    """Jobs of the lane that start before `job` (same lane, queued, earlier in (priority, created_at, id))."""
    earlier = or_(
        Job.priority < job.priority,
        and_(Job.priority == job.priority, Job.created_at < job.created_at),
        and_(Job.priority == job.priority, Job.created_at == job.created_at, Job.id < job.id),
    )
    return and_(Job.lane == job.lane, Job.state == JobState.QUEUED.value, earlier)


def queue_position(session: Session, job: Job) -> int | None:
    """How many queued jobs of its lane start before this one (0: next); None unless it is queued."""
    if job.state != JobState.QUEUED:
        return None
    ahead = session.scalar(select(func.count()).select_from(Job).where(served_before(job)))
    return int(ahead or 0)


def claim_order() -> tuple[ColumnElement[object], ...]:
    """ORDER BY for a worker that claims from the database (the embedded runner): the same order."""
    return (Job.priority.asc(), Job.created_at.asc(), Job.id.asc())  # type: ignore[return-value]
