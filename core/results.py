"""Where a succeeded job's output files are: their names, and the key of each.

Runners write outputs per attempt (`core.storage.job_output_key`) and record `{"attempt": n, "files": [...]}`
in `jobs.result` when the job succeeds. Harmonize jobs that succeeded before that column existed kept their
files at fixed names directly under the job's prefix.
"""

from __future__ import annotations

from core.models import Job, JobKind, JobState
from core.storage import job_object_key, job_output_key
from core.vocabulary import CHECKPOINT_FILE, RESULT_FILE


def job_file_names(job: Job) -> list[str]:
    """Every file a client may download: the outputs (`files`), then a comparison image, when there is one."""
    if job.result is not None:
        comparison = job.result.get("comparison")
        return list(job.result.get("files", [])) + ([comparison] if comparison else [])
    if job.kind == JobKind.HARMONIZE and job.state == JobState.SUCCEEDED:
        return [RESULT_FILE, CHECKPOINT_FILE] if job.params.get("fine_tune") else [RESULT_FILE]
    return []


def job_file_key(job: Job, name: str) -> str:
    attempt = (job.result or {}).get("attempt")
    if attempt is None:
        return job_object_key(job.model_id, job.id, name)
    return job_output_key(job.model_id, job.id, int(attempt), name)
