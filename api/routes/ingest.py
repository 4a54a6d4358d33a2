"""``POST /v1/ingest/jobs`` (scope ``ingest``) → 202 ``{job_id}``; ``GET /v1/ingest/jobs/{job_id}``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.audit import note
from api.deps import ConfinementDep, IngestKey, JobsDep
from api.jobs import job_view, manifest_from_object, manifests_from_paths
from api.schemas import ErrorOut, IngestJobAccepted, IngestJobIn, IngestJobOut
from core.errors import StitchError

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])


@router.post(
    "/jobs", status_code=202, response_model=IngestJobAccepted,
    responses={s: {"model": ErrorOut} for s in (400, 401, 403, 413, 422)},
)
async def post_ingest_job(
    http: Request, body: IngestJobIn, key: IngestKey, jobs: JobsDep, confinement: ConfinementDep
) -> dict:
    """Validate the manifests now (400 naming the file and key; 403 outside the ingest roots), then queue the sync."""
    paths = [str(body.manifest.get("path"))[:1024]] if body.manifest is not None else [p[:1024] for p in body.manifests]
    note(http, paths=paths)  # recorded for refused submissions too (the audit file stays on the server)
    try:
        if body.manifest is not None:
            manifests = [manifest_from_object(body.manifest, confinement)]
        else:
            manifests = await run_in_threadpool(manifests_from_paths, body.manifests, confinement)
    except StitchError as exc:  # messages are built from root-relative labels; scrub is defence in depth
        raise type(exc)(confinement.scrub(str(exc))) from exc
    job = jobs.submit(manifests, full=body.full, key_id=key.key_id, take_over=body.take_over,
                      allow_mass_delete=body.allow_mass_delete)
    note(http, job_id=job.job_id, sources=job.sources, **({"take_over": True} if body.take_over else {}))
    return {"job_id": job.job_id, "status": job.status}


@router.get("/jobs/{job_id}", response_model=IngestJobOut, responses={s: {"model": ErrorOut} for s in (401, 403, 404)})
def get_ingest_job(http: Request, job_id: str, key: IngestKey, jobs: JobsDep, confinement: ConfinementDep) -> dict:
    """Status, progress and (when finished) the job report of CONTRACT §3 — for the key that submitted it (or admin)."""
    note(http, job_id=job_id[:64])
    job = jobs.get(job_id, viewer=key.key_id, admin="admin" in key.scopes)
    return job_view(job, confinement)
