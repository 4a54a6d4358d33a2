"""``POST /v1/ingest/jobs`` (scope ``ingest``) → 202 ``{job_id}``; ``GET /v1/ingest/jobs/{job_id}``."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.audit import note
from api.deps import IngestKey, JobsDep
from api.jobs import manifest_from_object, manifests_from_paths
from api.schemas import ErrorOut, IngestJobAccepted, IngestJobIn, IngestJobOut

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


@router.post(
    "/jobs", status_code=202, response_model=IngestJobAccepted,
    responses={s: {"model": ErrorOut} for s in (400, 401, 403, 413, 422)},
)
async def post_ingest_job(http: Request, body: IngestJobIn, key: IngestKey, jobs: JobsDep) -> dict:
    """Validate the manifests now (400 naming the file and key), then queue the sync; poll the job for its report."""
    paths = [str(body.manifest.get("path"))[:1024]] if body.manifest is not None else [p[:1024] for p in body.manifests]
    note(http, paths=paths)  # recorded for refused submissions too (the audit file stays on the server)
    if body.manifest is not None:
        manifests = [manifest_from_object(body.manifest)]
    else:
        manifests = await run_in_threadpool(manifests_from_paths, body.manifests)
    job = jobs.submit(manifests, full=body.full, key_id=key.key_id)
    note(http, job_id=job.job_id, sources=job.sources)
    return {"job_id": job.job_id, "status": job.status}


@router.get("/jobs/{job_id}", response_model=IngestJobOut, responses={s: {"model": ErrorOut} for s in (401, 403, 404)})
def get_ingest_job(http: Request, job_id: str, key: IngestKey, jobs: JobsDep) -> dict:
    """Status, progress and (when finished) the job report of CONTRACT §3."""
    note(http, job_id=job_id[:64])
    data = asdict(jobs.get(job_id))
    data.pop("key_id", None)
    return data
