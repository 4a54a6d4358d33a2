"""``/console``: the steward console, server-rendered (Jinja2), each page behind the scope it needs.

Sources and ingest jobs need ``ingest``; entity review ``entities:write``; quality and the playground
``context``; audit ``admin``. Each handler parses the form, calls one library function, renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api import reads
from api.console import views
from api.console.session import COOKIE, ConsoleSessions, Steward
from api.deps import ConfinementDep, JobsDep, ServicesDep, principal_for
from core.errors import AuthenticationError, NotFoundError, PermissionDeniedError, StitchError

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)
PAGES = (("sources", "Sources", "ingest"), ("jobs", "Ingest jobs", "ingest"), ("entities", "Entities", "entities:write"),
         ("quality", "Quality", "context"), ("audit", "Audit", "admin"))


def _sessions(request: Request) -> ConsoleSessions:
    return request.app.state.console_sessions


class NotLoggedIn(Exception):
    """No, an expired or a revoked session: the browser goes to the login page."""


def steward(request: Request) -> Steward:
    try:
        return _sessions(request).steward(request.cookies.get(COOKIE))
    except AuthenticationError as exc:
        raise NotLoggedIn from exc


StewardDep = Annotated[Steward, Depends(steward)]


def _page(request: Request, name: str, who: Steward | None, status: int = 200, **context) -> HTMLResponse:
    pages = [(p, label) for p, label, scope in PAGES if who is not None and who.may(scope)]
    return templates.TemplateResponse(request, f"{name}.html", {"who": who, "pages": pages, **context},
                                      status_code=status)


def _allowed(request: Request, who: Steward, scope: str, render) -> Response:  # noqa: ANN001
    """Render the page only for a key with ``scope``; otherwise a 403 page that shows nothing else."""
    if not who.may(scope):
        return _page(request, "forbidden", who, 403, scope=scope)
    try:
        return render()
    except StitchError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 403 if isinstance(exc, PermissionDeniedError) else 400
        return _page(request, "forbidden", who, status, message=str(exc))


def _checked(request: Request, who: Steward, csrf: str) -> None:
    _sessions(request).check_csrf(who, csrf)


@router.get("", response_class=HTMLResponse)
def home(request: Request) -> Response:
    try:
        who = steward(request)
    except NotLoggedIn:
        return RedirectResponse("/console/login", 303)
    first = next((p for p, _, scope in PAGES if who.may(scope)), "login")
    return RedirectResponse(f"/console/{first}", 303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _page(request, "login", None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, key: Annotated[str, Form(max_length=200)]) -> Response:
    try:
        session_id = _sessions(request).login(key)
    except StitchError as exc:  # the key itself is never echoed
        return _page(request, "login", None, 401 if isinstance(exc, AuthenticationError) else 403, error=str(exc))
    response = RedirectResponse("/console", 303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https", max_age=_sessions(request).ttl_seconds)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    _sessions(request).logout(request.cookies.get(COOKIE))
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE, path="/console")
    return response


def _own_jobs(who: Steward) -> str | None:
    """Jobs (and their per-file errors) are the submitting key's own business, or an admin's."""
    return None if "admin" in who.key.scopes else who.key.key_id


@router.get("/sources", response_class=HTMLResponse)
def sources(request: Request, who: StewardDep, services: ServicesDep, jobs: JobsDep) -> Response:
    return _allowed(request, who, "ingest", lambda: _page(
        request, "sources", who, rows=views.sources_page(services, jobs, key_id=_own_jobs(who))))


@router.get("/jobs", response_class=HTMLResponse)
def jobs_list(request: Request, who: StewardDep, jobs: JobsDep) -> Response:
    return _allowed(request, who, "ingest", lambda: _page(
        request, "jobs", who, jobs=views.jobs_page(jobs, key_id=_own_jobs(who))))


@router.post("/jobs", response_class=HTMLResponse)
def jobs_submit(
    request: Request, who: StewardDep, jobs: JobsDep, confinement: ConfinementDep,
    manifest: Annotated[str, Form(max_length=4096)],
    csrf: Annotated[str, Form()] = "", full: Annotated[bool, Form()] = False,
) -> Response:
    from api.jobs import manifests_from_paths

    def submit() -> Response:
        _checked(request, who, csrf)
        try:  # the same confinement as POST /v1/ingest/jobs: inside the ingest roots, no server paths echoed
            manifests = manifests_from_paths([manifest.strip()], confinement)
        except StitchError as exc:
            raise type(exc)(confinement.scrub(str(exc))) from exc
        job = jobs.submit(manifests, full=full, key_id=who.key.key_id)
        return RedirectResponse(f"/console/jobs#{job.job_id}", 303)

    return _allowed(request, who, "ingest", submit)


@router.get("/jobs.json")
def jobs_json(request: Request, who: StewardDep, jobs: JobsDep) -> Response:
    """Progress for the jobs page's polling script (same visibility as the page)."""
    from fastapi.responses import JSONResponse

    if not who.may("ingest"):
        return JSONResponse({"jobs": []}, status_code=403)
    rows = views.jobs_page(jobs, key_id=_own_jobs(who))
    return JSONResponse({"jobs": [{k: j[k] for k in ("job_id", "status", "progress", "finished")} for j in rows]})


@router.get("/entities", response_class=HTMLResponse)
def entities(request: Request, who: StewardDep, services: ServicesDep, q: str = "") -> Response:
    from entity_resolution.views import list_entities

    return _allowed(request, who, "entities:write", lambda: _page(
        request, "entities", who, q=q,
        entities=list_entities(services.entity_registry.store, query=q[:256], acl_tokens=who.acl_tokens, limit=100)))


@router.get("/entities/{entity_id}", response_class=HTMLResponse)
def entity(request: Request, entity_id: str, who: StewardDep, services: ServicesDep) -> Response:
    from entity_resolution.views import entity_view

    def render() -> Response:
        view = entity_view(services.entity_registry.store, entity_id, acl_tokens=who.acl_tokens)
        by_alias: dict[str, list] = {}
        for m in view.mentions:
            by_alias.setdefault(m.surface, []).append(m)
        return _page(request, "entity", who, entity=view, by_alias=by_alias)

    return _allowed(request, who, "entities:write", render)


@router.post("/entities/review", response_class=HTMLResponse)
def entity_review(
    request: Request, who: StewardDep, services: ServicesDep, action: Annotated[str, Form()],
    entity_id: Annotated[str, Form(max_length=64)], other_id: Annotated[str, Form(max_length=64)] = "",
    aliases: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI form list
    note: Annotated[str, Form(max_length=1000)] = "", csrf: Annotated[str, Form()] = "",
) -> Response:
    """Merge / split / never-link with the steward operations; both entities must be visible to the key."""
    from entity_resolution import steward as ops
    from entity_resolution.views import entity_view

    def review() -> Response:
        _checked(request, who, csrf)
        store = services.entity_registry.store
        for visible in filter(None, (entity_id, other_id)):
            entity_view(store, visible, acl_tokens=who.acl_tokens, detail=False)  # 404 unless visible
        if action == "merge":
            target = ops.merge_entities(store, entity_id, other_id, note=note, chunks=services.store)
        elif action == "split":
            target = ops.split_entity(store, entity_id, aliases, note=note, chunks=services.store)
        elif action == "never-link":
            ops.never_link(store, entity_id, other_id, note=note, chunks=services.store)
            target = entity_id
        else:
            raise PermissionDeniedError(f"unknown action {action[:20]!r}")
        return RedirectResponse(f"/console/entities/{target}", 303)

    return _allowed(request, who, "entities:write", review)


@router.get("/quality", response_class=HTMLResponse)
def quality(request: Request, who: StewardDep, services: ServicesDep) -> Response:
    return _allowed(request, who, "context", lambda: _page(
        request, "quality", who, report=views.quality_page(services.settings.console_reports_dir), pack=None))


@router.post("/quality", response_class=HTMLResponse)
async def playground(
    request: Request, who: StewardDep, services: ServicesDep, query: Annotated[str, Form(min_length=1, max_length=4000)],
    principal_id: Annotated[str, Form(min_length=1, max_length=256)], roles: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Ask as a chosen principal (roles the key may assert), see the pack and why each passage was visible."""
    def ask() -> Response:
        _checked(request, who, csrf)
        principal = principal_for(request, who.key, principal_id, [r for r in roles.replace(",", " ").split() if r])
        pack = views.explained_pack(services, principal, query, key_id=who.key.key_id, max_tokens=1500)
        return _page(request, "quality", who, report=views.quality_page(services.settings.console_reports_dir),
                     pack=pack, asked={"query": query, "principal_id": principal_id, "roles": roles})

    return await run_in_threadpool(_allowed, request, who, "context", ask)


@router.post("/quality/feedback", response_class=HTMLResponse)
async def playground_feedback(
    request: Request, who: StewardDep, services: ServicesDep, request_id: Annotated[str, Form(max_length=128)],
    principal_id: Annotated[str, Form(min_length=1, max_length=256)], roles: Annotated[str, Form(max_length=1000)] = "",
    doc_id: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006 - one per passage, aligned with label
    label: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The playground pack's passages marked relevant / not relevant / wrong entity: POST /v1/feedback's path."""
    def send() -> Response:
        _checked(request, who, csrf)
        principal = principal_for(request, who.key, principal_id, [r for r in roles.replace(",", " ").split() if r])
        stored = reads.feedback_answer(services, principal, request_id, views.feedback_labels(doc_id, label),
                                       key_id=who.key.key_id)
        return _page(request, "quality", who, report=views.quality_page(services.settings.console_reports_dir),
                     pack=None, feedback=stored)

    return await run_in_threadpool(_allowed, request, who, "context", send)


@router.get("/quality/plots/{name}")
def plot(request: Request, name: str, who: StewardDep, services: ServicesDep) -> Response:
    folder = services.settings.console_reports_dir
    if not who.may("context") or name not in {p.name for p in folder.glob("*.png")}:
        return Response(status_code=404)
    return FileResponse(folder / name, media_type="image/png")


@router.get("/audit", response_class=HTMLResponse)
def audit(request: Request, who: StewardDep, services: ServicesDep, key_id: str = "", principal_id: str = "") -> Response:
    return _allowed(request, who, "admin", lambda: _page(
        request, "audit", who, key_id=key_id, principal_id=principal_id,
        rows=views.audit_page(services.settings.audit_log_path, key_id=key_id[:64], principal_id=principal_id[:256])))


def install_console(app) -> None:  # noqa: ANN001
    """Mount the console routes and static files; a request without a session goes to the login page."""
    from fastapi.staticfiles import StaticFiles

    settings = app.state.services.settings
    app.state.console_sessions = ConsoleSessions(app.state.key_store, settings.console_sessions_path,
                                                 ttl_seconds=settings.console_session_seconds)
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(NotLoggedIn)
    async def _to_login(_request: Request, _exc: NotLoggedIn) -> Response:
        return RedirectResponse("/console/login", 303)
