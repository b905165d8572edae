"""The ASGI application: GraphQL, the playground's assets and the health check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from .config import Settings
from .db.database import Database
from .downloads import download_route
from .graphql.playground import ASSETS_URL_PATH, find_assets_dir, playground_routes
from .graphql.schema import build_schema
from .graphql.view import GraphQLView
from .limits import BodySizeLimit
from .rest import rest_routes
from .runtime import open_database, open_storage
from .services import Services

log = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        async with services.db.session() as conn:
            await conn.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:
        log.warning("health check: database unreachable: %s", error)
        checks["database"] = "unreachable"
    try:
        await services.storage.check()
        checks["storage"] = "ok"
    except Exception as error:
        log.warning("health check: storage unreachable: %s", error)
        checks["storage"] = "unreachable"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", **checks},
        status_code=200 if healthy else 503,
    )


async def _sweep_forever(services: Services, interval_seconds: float = 600) -> None:
    """Delete old file versions once every download link to them has expired."""
    while True:
        try:
            swept = await services.training_files.sweep_retired_objects()
            if swept:
                log.info("swept %d retired objects", swept)
        except Exception:
            log.exception("sweeping retired objects failed; retrying later")
        await asyncio.sleep(interval_seconds)


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    """The app; it opens (and later closes) its own services unless they are given."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        pool = await open_database(settings)
        storage = await open_storage(settings)
        app.state.services = Services(settings, Database(pool), storage)
        sweeper = asyncio.create_task(_sweep_forever(app.state.services))
        try:
            yield
        finally:
            sweeper.cancel()
            await storage.close()
            await pool.close()

    assets_dir = find_assets_dir()
    if assets_dir is None:
        log.warning("playground assets not installed (npm ci): GraphiQL will load from the CDN")
    graphql = GraphQLView(
        build_schema(settings), assets_url=ASSETS_URL_PATH if assets_dir else None
    )
    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        download_route(),
        *rest_routes(),
        *(playground_routes(assets_dir) if assets_dir else []),
    ]
    middleware = [Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    if services is not None:
        app.state.services = services  # for transports that don't run the lifespan
    return app
