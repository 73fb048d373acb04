"""The FastAPI application: API routers, web pages, error handlers and static files."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from app.accounts import routes as account_routes
from app.config import PROJECT_ROOT, get_settings
from app.errors import DomainError
from app.leaderboard import api as leaderboard_api
from app.leaderboard import pages as leaderboard_pages
from app.logs import configure_logging, get_logger
from app.modelrun import api as modelrun_api
from app.modelrun import pages as modelrun_pages
from app.submissions import api as submission_api
from app.submissions import pages as submission_pages
from app.uploads.limits import BodySizeLimit
from app.web.templating import render

log = get_logger(__name__)


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging()
    app = FastAPI(
        title="RealUnify leaderboard",
        version="1",
        description=(
            "Submit RealUnify predictions, follow their scoring and read the leaderboard. "
            "Authenticate with `Authorization: Bearer TOKEN`."
        ),
        # The docs page is served below with Swagger UI from static/, so it works offline.
        docs_url=None,
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="realunify_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_archive_bytes + settings.max_upload_bytes + 1024 * 1024,
        path_prefixes=["/api/v1/submissions", "/submit"],
        idle_timeout_seconds=settings.upload_idle_timeout_seconds,
    )
    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static")
    for router in (
        submission_api.router,
        modelrun_api.router,
        modelrun_pages.router,
        leaderboard_api.router,
        account_routes.api_router,
        account_routes.router,
        submission_pages.router,
        leaderboard_pages.router,
    ):
        app.include_router(router)
    _add_docs_routes(app)
    _add_error_handlers(app)
    return app


def _add_docs_routes(app: FastAPI) -> None:
    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="RealUnify leaderboard API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=308)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> Response:
        if error.status_code >= 500 or error.status_code == 401:
            log.info("request.rejected", path=request.url.path, status=error.status_code)
        if _wants_json(request):
            body: dict[str, Any] = {"detail": error.message, **error.extra}
            return JSONResponse(status_code=error.status_code, content=body)
        return render(
            request,
            "error.html",
            {"message": error.message, "status": error.status_code},
            status_code=error.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, error: RequestValidationError) -> Response:
        problems = []
        for entry in error.errors():
            location = [str(part) for part in entry.get("loc", ()) if part not in ("body", "query")]
            problems.append({"field": ".".join(location) or None, "message": entry.get("msg")})
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        if _wants_json(request):
            return JSONResponse(status_code=422, content={"detail": summary, "errors": problems})
        return render(request, "error.html", {"message": summary, "status": 422}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse(status_code=error.status_code, content={"detail": error.detail})
        message = "page not found" if error.status_code == 404 else str(error.detail)
        return render(
            request,
            "error.html",
            {"message": message, "status": error.status_code},
            error.status_code,
        )


app = create_app()
