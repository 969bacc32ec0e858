"""`Prefer: wait=N` (RFC 7240, as Replicate uses it): hold the response until the job ends or N seconds pass.

The worker's commit wakes the waiting request (`api.job_watch`); reading the job again on a timer is only the
fallback.
"""

from __future__ import annotations

import re
import time

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.job_watch import JobWatch
from core.db import Database
from core.models import FINAL_STATES, Job

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def requested_wait(prefer: str | None, cap_s: float) -> float:
    """Seconds to wait from a Prefer header; 0 when absent. Capped so a request cannot hang forever."""
    match = _WAIT.search(prefer or "")
    return min(float(match.group(1)), cap_s) if match else 0.0


def _job_state(db: Database, job_id: str) -> str | None:
    with db.read() as session:
        return session.scalar(select(Job.state).where(Job.id == job_id))


async def wait_until_final(db: Database, watch: JobWatch, job_id: str, timeout_s: float) -> bool:
    """True when the job reached a final state within `timeout_s`. Sleeps until the job's change is
    notified (or the fallback interval passes); holds neither a thread nor a connection meanwhile."""
    deadline = time.monotonic() + timeout_s
    await watch.start()
    with watch.watching(job_id) as doorbell:
        while True:
            state = await run_in_threadpool(_job_state, db, job_id)
            if state is None or state in FINAL_STATES:
                return state is not None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await doorbell.wait(min(watch.poll_interval_s, remaining))
