"""The web application: REST API and dashboard in one FastAPI app.

:func:`create_app` builds the app for a project. On startup it enters
:func:`listener.store.engine.connect` once (starting or reusing the embedded engine
when the project names no cluster) and keeps that one client for its life; on
shutdown it stops any crawl it started and leaves the engine.

The dashboard is static HTML, CSS and JavaScript shipped in the package
(``listener/web/static``): no build step, no CDN, so it works offline. Every
response carries a strict Content-Security-Policy (scripts only from the
server itself, no inline script), a second line of defence behind the
dashboard rendering internet content as text.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from elasticsearch import ApiError, Elasticsearch, TransportError
from fastapi import FastAPI, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from listener import __version__
from listener.config import ProjectConfig
from listener.errors import ConfigError
from listener.store.engine import connect
from listener.store.indexer import mentions_alias
from listener.web.api import WebState, open_router, router
from listener.web.auth import TokenGuard, check_token, host_allowed
from listener.web.batch import SearchBatcher
from listener.web.coalesce import CoalesceReads, Flights
from listener.web.crawls import CrawlManager
from listener.web.export import router as export_router
from listener.web.search import SOURCE_EXCLUDES, SearchInputError

log = logging.getLogger(__name__)

UNPROCESSABLE = 422  # named differently across Starlette versions
STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

DESCRIPTION = """
Search and analyse the mentions a listener project has crawled.

* **Auth**: when the server has a token (`LISTENER_API_TOKEN`), every `/api/` route except
  `/api/healthz` needs `Authorization: Bearer <token>`. A server bound to anything but
  loopback always has one.
* **Times**: `since`/`until` take ISO dates (`2024-05-01`), ISO datetimes or relative times
  (`7d`, `12h`); `until` is exclusive; dates without an offset are read in `tz`.
* **Pagination**: `GET /api/mentions` returns `next_cursor`; pass it back as `cursor` with the
  same parameters for the next page (`search_after`, no depth limit).
* **Errors**: bad input is answered with 422 and `{"detail": ..., "param": ...}`.
"""


def _problem(code: int, detail: str, param: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "param": param}, status_code=code)


def create_app(
    project: ProjectConfig,
    *,
    token: str | None = None,
    client: Elasticsearch | None = None,
    loopback_only: bool | None = None,
    batch_searches: bool | None = None,
) -> FastAPI:
    """The FastAPI app for ``project``.

    ``token``: the bearer token every API request must carry (None: no auth;
    only for a server bound to loopback, see :func:`listener.web.auth.check_bind`).
    ``client``: use this Elasticsearch client instead of connecting at startup
    (the caller owns it). ``loopback_only`` (default: when there is no token)
    rejects requests whose ``Host`` header is not a loopback name, which stops
    DNS-rebinding attacks on a token-less local server. ``batch_searches`` (default: on
    the embedded engine, which runs one search at a time) lets different mention searches
    in flight together share one engine request (:mod:`listener.web.batch`).
    """
    check_token(token)
    restrict_hosts = token is None if loopback_only is None else loopback_only
    if batch_searches is None:
        batch_searches = not project.elasticsearch.url
    crawls = CrawlManager(project.path, project.home)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.ExitStack() as stack:
            es = client if client is not None else stack.enter_context(connect(project))
            batcher = (
                SearchBatcher(
                    es,
                    mentions_alias(project.elasticsearch.index_prefix),
                    source_excludes=SOURCE_EXCLUDES,
                )
                if batch_searches
                else None
            )
            app.state.listener = WebState(
                project=project, client=es, crawls=crawls, auth=token is not None, batcher=batcher
            )
            try:
                yield
            finally:
                crawls.shutdown()

    app = FastAPI(
        title="listener API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # The interactive docs pages load their scripts from a CDN: the description stays
        # available at /openapi.json, the server needs no outside network.
        docs_url=None,
        redoc_url=None,
    )
    app.state.token_guard = TokenGuard(token)
    app.include_router(open_router)
    app.include_router(router)
    app.include_router(export_router)
    # Inside the host guard below (middleware added later runs first): identical reads in
    # flight together share one engine query (the embedded engine runs one at a time).
    app.state.reads = Flights()
    app.add_middleware(CoalesceReads, flights=app.state.reads)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if restrict_hosts and not host_allowed(request.headers.get("host")):
            response: Response = _problem(
                status.HTTP_400_BAD_REQUEST,
                "this server only answers requests addressed to localhost; set an API token "
                "to serve other host names",
            )
        else:
            response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(SearchInputError)
    async def bad_input(request: Request, error: SearchInputError) -> JSONResponse:
        return _problem(UNPROCESSABLE, str(error), error.param)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, error: ConfigError) -> JSONResponse:
        return _problem(UNPROCESSABLE, str(error))

    @app.exception_handler(ValueError)
    async def value_error(request: Request, error: ValueError) -> JSONResponse:
        # The analytics functions reject bad arguments with ValueError naming the value.
        return _problem(UNPROCESSABLE, str(error))

    @app.exception_handler(ApiError)
    async def engine_error(request: Request, error: ApiError) -> JSONResponse:
        log.warning("Elasticsearch refused a request: %s", error)
        return _problem(
            status.HTTP_502_BAD_GATEWAY, f"the search engine refused the request: {error.message}"
        )

    @app.exception_handler(TransportError)
    async def engine_down(request: Request, error: TransportError) -> JSONResponse:
        log.warning("Elasticsearch unreachable: %s", error)
        return _problem(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the search engine is not reachable; retry later"
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    return app
