"""FastAPI application factory; each API router is mounted with one line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from carebridge.access import endpoints as access_endpoints
from carebridge.access import sharing_endpoints
from carebridge.access.auth import require
from carebridge.access.guard import install_guard, record_refusal
from carebridge.access.scopes import Interaction as ScopeInteraction
from carebridge.adherence import endpoints as adherence_endpoints
from carebridge.config import Settings, load_settings
from carebridge.devices import endpoints as device_endpoints
from carebridge.devices.service import intake_config
from carebridge.fhir import bulk_endpoints, bulk_export
from carebridge.fhir import endpoints as fhir_endpoints
from carebridge.fhir.http import error_response
from carebridge.fhir.schema import upgrade
from carebridge.fhir.search.parameters import registry
from carebridge.ingest import endpoints as ingest_endpoints
from carebridge.ingest import uploads
from carebridge.kit.db import create_db_engine, refresh_statistics
from carebridge.kit.errors import AppError
from carebridge.kit.jobs import JobRunner
from carebridge.web import pages as web_pages

log = logging.getLogger("carebridge")


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or load_settings()
    engine = create_db_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    refresh_statistics(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _resume_jobs(app)
        yield
        app.state.jobs.shutdown()

    app = FastAPI(
        title="carebridge", version="0.1.0", docs_url="/docs", redoc_url=None, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.jobs = JobRunner()
    # Operator device templates are read (and checked) at startup, not on the first reading.
    app.state.device_intake = intake_config(settings.device_templates_dir)
    _install_error_handlers(app)
    protected = [Depends(install_guard)]
    app.include_router(access_endpoints.router)
    app.include_router(fhir_endpoints.open_router)
    app.include_router(adherence_endpoints.open_router)
    app.include_router(adherence_endpoints.router, dependencies=protected)
    app.include_router(bulk_endpoints.router, dependencies=protected)
    app.include_router(fhir_endpoints.router, dependencies=protected)
    app.include_router(device_endpoints.router, dependencies=protected)
    app.include_router(sharing_endpoints.router, dependencies=protected)
    app.include_router(device_endpoints.readings_router)  # devices use their own credential
    feeds_admin = [*protected, Depends(require(ScopeInteraction.CREATE, "*"))]
    app.include_router(ingest_endpoints.router, dependencies=feeds_admin)
    app.include_router(web_pages.router)  # pages check the session cookie themselves
    app.mount("/web/static", web_pages.static, name="web-static")  # no data: open

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _resume_jobs(app: FastAPI) -> None:
    """Export and upload jobs queued or running when the server last stopped start again."""
    with app.state.engine.connect() as conn:
        pending = bulk_export.pending_jobs(conn)
    for job_id in pending:
        bulk_endpoints.schedule_export(app.state, job_id, app.state.settings.base_url + "/fhir")
    for job_id in uploads.pending(app.state.engine):
        ingest_endpoints.schedule_upload(app.state, job_id)


def _audited_failure(request: Request, exc: AppError) -> bool:
    """Refused (401/403) FHIR requests always; any other failure of an authenticated one (a
    read of a resource outside the caller's view is a 404, and is audited as a failed read)."""
    if not request.url.path.startswith(("/fhir", "/patient")):
        return False
    if exc.status in (401, 403):
        return True
    parts = request.url.path.removeprefix("/fhir/").split("/")
    known = registry().resource_types
    instance = len(parts) == 2 and parts[0] in known and not parts[1].startswith("$")
    failed_read = exc.status in (404, 410) and request.method in ("GET", "HEAD") and instance
    return failed_read and getattr(request.state, "guard", None) is not None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if _audited_failure(request, exc):
            await run_in_threadpool(record_refusal, request, exc.status, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(AppError(400, "invalid", f"invalid request: {exc.errors()[:3]}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return error_response(AppError(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Response:
        # Log the type only: messages can carry resource content (PHI).
        log.error("unhandled error: %s", type(exc).__name__, exc_info=False)
        return error_response(
            AppError(500, "exception", "internal server error; the request was rolled back")
        )
