"""``GET /healthz`` (process up), ``GET /readyz`` (model loaded, store reachable), ``GET /metrics``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from api.deps import JobsDep, MetricsDep, ServicesDep, require_scope
from api.keys import ApiKey
from api.schemas import ErrorOut, HealthOut, ReadyOut

router = APIRouter(tags=["health"])
MetricsKey = Annotated[ApiKey, Depends(require_scope("metrics"))]


@router.get("/healthz", response_model=HealthOut)
def healthz() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Readiness: the embedding model is loaded and the store responds."""
    store_ok = await run_in_threadpool(lambda: "store" in services.__dict__ and services.store.ready())
    checks = {"model": "encoder" in services.__dict__, "store": bool(store_ok)}
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"example": "stitch_http_requests_total{...} 3.0"}}},
        **{s: {"model": ErrorOut} for s in (401, 403)},
    },
)
def metrics(metrics: MetricsDep, jobs: JobsDep, key: MetricsKey) -> Response:
    """Prometheus text (key with the ``metrics`` or ``admin`` scope): requests and latency by route and
    status, stage timings, ingest counters — aggregates only, never per document or principal."""
    metrics.jobs_pending.set(jobs.pending())
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
