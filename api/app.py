"""``create_app()``: the FastAPI application factory (nothing is built at import time)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console.routes import install_console
from api.errors import error_response, status_for
from api.jobs import Confinement, JobRunner
from api.keys import KeyStore
from api.mcp import mount_mcp
from api.metrics import Metrics
from api.offload import Offload
from api.openapi import install_openapi
from api.middleware import EdgeMiddleware
from api.routes import context, documents, entities, feedback, health, ingest, packs
from api.services import Services
from core.config import Settings, get_settings
from core.errors import StitchError
from core.user_tokens import UserTokenVerifier
from core.version import VERSION
from governance.audit import AuditTrail, now_iso, query_hasher, trail_for

_DESCRIPTION = """Grounded, token-budgeted, ACL-filtered context packs from enterprise systems.

Every `/v1` request carries `Authorization: Bearer <api key>`. A key asserts only the roles and principal
ids it was granted; an end user's verified OIDC/JWT token may be sent in `X-Stitch-User-Token` (the header
name is configurable), and then the principal is the token's subject and mapped roles. Errors are
`{"error": {"code", "message", "request_id"}}`; `request_id` equals the `X-Request-ID` header."""


def _request_id(request: Request) -> str:
    return request.state.request_id


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StitchError)
    async def _stitch_error(request: Request, exc: StitchError) -> JSONResponse:
        return error_response(status_for(exc), str(exc), _request_id(request), code=exc.code,
                              retry_after=getattr(exc, "retry_after", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the rejected input back: it may be large, binary or sensitive.
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
        return error_response(422, problems[:2000], _request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), _request_id(request))


def _job_runner(settings: Settings, services: Services) -> JobRunner:
    from ingest.pipeline import ingest_manifests

    def run(manifests, job, progress) -> dict:  # noqa: ANN001
        Confinement.from_settings(settings).recheck(manifests)
        return ingest_manifests(manifests, services.ingest_context(), full=job.full, progress=progress,
                                take_over=job.take_over, allow_mass_delete=job.allow_mass_delete).to_dict()

    return JobRunner(settings.data_dir / "jobs", run)


def _on_job_finish(metrics: Metrics, audit: AuditTrail):  # noqa: ANN202
    counts = ("added", "updated", "unchanged", "deleted", "failed", "invisible", "chunks")

    def finished(job) -> None:  # noqa: ANN001 - api.jobs.JobState
        metrics.observe_job(job.status, job.report)
        audit.record({"time": now_iso(), "event": "ingest_job", "job_id": job.job_id, "key_id": job.key_id,
                      "status": job.status, "sources": job.sources, "full": job.full,
                      **{k: job.report[k] for k in counts if k in (job.report or {})}})

    return finished


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    jobs: JobRunner | None = None,
    on_ready: Callable[[], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the API for ``settings`` (or the process settings); model and store load at startup."""
    settings = settings or get_settings()
    services = services or Services(settings)
    metrics = Metrics()
    audit = trail_for(settings)
    jobs = jobs or _job_runner(settings, services)
    jobs.add_finish_listener(_on_job_finish(metrics, audit))

    mcp_running = None

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        services.warm_up()
        jobs.start()
        async with mcp_running():
            if on_ready:
                on_ready()
            try:
                yield
            finally:
                if on_stop:
                    on_stop()
                jobs.stop()
                audit.flush()
                if "pack_store" in services.__dict__:  # commit what the pack writer still holds
                    services.pack_store.flush()

    app = FastAPI(title="Stitch", version=VERSION, description=_DESCRIPTION, lifespan=lifespan)
    app.state.services, app.state.metrics, app.state.jobs = services, metrics, jobs
    app.state.confinement = Confinement.from_settings(settings)
    app.state.offload = Offload.from_settings(settings)
    app.state.key_store = KeyStore(settings.keys_path)
    app.state.audit, app.state.query_hasher = audit, query_hasher(settings)
    app.state.user_token_header = settings.user_token_header
    app.state.user_tokens = UserTokenVerifier.from_settings(settings)
    mcp_running = mount_mcp(app, services, app.state.key_store)
    install_error_handlers(app)
    for module in (health, context, packs, feedback, documents, ingest, entities):
        app.include_router(module.router)
    install_console(app)
    install_openapi(app, settings.user_token_header)
    app.add_middleware(
        EdgeMiddleware, max_body=settings.max_request_bytes, metrics=metrics, audit=audit
    )
    return app
