"""The ASGI application: GraphQL, the playground's assets and the health check."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp

from .authentication import BearerTokens
from .config import Settings
from .db.writers import WriterPool
from .downloads import download_route
from .graphql.playground import ASSETS_URL_PATH, find_assets_dir, playground_routes
from .graphql.response_cache import CachedGraphQL, ResponseCache
from .graphql.schema import build_schema
from .graphql.view import GraphQLView
from .limits import BodySizeLimit
from .maintenance.cleanup import clean_up
from .maintenance.report import State
from .multipart import upload_limit
from .observability.access import ObservedRequests
from .observability.exposition import metrics_endpoint
from .observability.probes import livez, readyz
from .observability.serving import worker_started
from .rest import rest_routes
from .services import Services, running_services
from .storage.base import Storage, StorageError

log = logging.getLogger(__name__)


_HEALTH_CHECK_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    storage_probe = services.storage.probe(services.settings.health_min_free_bytes)
    checks = {
        "database": await _check("database", _database_reachable(services)),
        "storage": await _check("storage", storage_probe),
    }
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", **checks},
        status_code=200 if healthy else 503,
    )


async def _database_reachable(services: Services) -> None:
    # On the owner's small pool: a request pool saturated by load must not fail the probe.
    async with services.maintenance.connection() as conn:
        await conn.fetchval("SELECT 1")


async def _check(name: str, probe: Awaitable[None]) -> str:
    """Return "ok", or why not: a storage failure's reason ("full", "unwritable"), else
    "unreachable" (a probe that takes longer than the bound is as good as unreachable)."""
    try:
        await asyncio.wait_for(probe, _HEALTH_CHECK_SECONDS)
    except Exception as error:
        reason = error.reason if isinstance(error, StorageError) else None
        log.warning("health check: %s unavailable: %s", name, error or type(error).__name__)
        return reason or "unreachable"
    return "ok"


async def _maintain_forever(services: Services) -> None:
    """At start and every `cleanup_interval`: delete old file versions once every download
    link to them has expired, and remove what crashed writers left behind."""
    # The owner's pool, for try-locks: a crashed writer's objects go once its lock is free.
    writers = WriterPool(services.maintenance.pool, timeout_seconds=services.settings.lock_timeout)
    while True:
        try:
            swept = await services.training_files.sweep_retired_objects()
            if swept:
                log.info("swept %d retired objects", swept)
        except Exception:
            log.exception("sweeping retired objects failed; retrying later")
        await _clean_up_orphans(writers, services.storage)
        await asyncio.sleep(services.settings.cleanup_interval)


async def _clean_up_orphans(writers: WriterPool, storage: Storage) -> None:
    try:
        outcome = await clean_up(writers, storage)
    except Exception:
        log.exception("cleaning up after crashed writers failed; retrying later")
        return
    if outcome[State.REMOVED] or outcome[State.FAILED]:
        log.info(
            "clean-up: removed %d leftovers of crashed writers, %d could not be removed",
            outcome[State.REMOVED],
            outcome[State.FAILED],
        )
    if outcome[State.REPORTED]:
        log.warning(
            "%d objects in storage are not in this product's layout; left alone "
            "(training-files check lists them)",
            outcome[State.REPORTED],
        )


async def _to_graphql(request: Request) -> RedirectResponse:
    query = request.url.query
    return RedirectResponse(f"/graphql?{query}" if query else "/graphql")


def _cached(graphql: GraphQLView, settings: Settings) -> ASGIApp:
    if not settings.response_cache_bytes:
        return graphql
    return CachedGraphQL(graphql, ResponseCache(settings.response_cache_bytes))


def create_app(
    settings: Settings,
    services: Services | None = None,
    *,
    migrate: bool = True,
    freeze_heap: bool = False,
) -> Starlette:
    """The app; it opens (and later closes) its own services unless they are given.

    `migrate=False` when the caller applied the migrations already (`training-files serve`).
    `freeze_heap` when the app is its process's only one for good (`serve`): see
    `_freeze_startup_heap`.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        async with running_services(settings, migrate=migrate) as opened:
            app.state.services = opened
            if freeze_heap:
                _freeze_startup_heap()
            maintenance = asyncio.create_task(_maintain_forever(opened))
            try:
                yield
            finally:
                maintenance.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await maintenance

    assets_dir = find_assets_dir(settings.playground_assets_dir)
    if assets_dir is None:
        log.warning("playground assets not installed (npm ci): GraphiQL will load from the CDN")
    graphql = GraphQLView(
        build_schema(settings),
        assets_url=ASSETS_URL_PATH if assets_dir else None,
        # A websocket that never says who it is does not hold a connection for long.
        connection_init_wait_timeout=timedelta(seconds=10),
    )
    authentication = BearerTokens.from_settings(settings)
    routes: list[BaseRoute] = [
        Route("/graphql", _cached(graphql, settings), methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint(settings.metrics_dir)),
        Route("/", _to_graphql),
        download_route(),
        *rest_routes(),
        *(playground_routes(assets_dir) if assets_dir else []),
    ]
    middleware = [
        Middleware(ObservedRequests),
        Middleware(
            BodySizeLimit,
            max_bytes=settings.max_request_bytes,
            uploads=upload_limit(settings),
        ),
        Middleware(
            AuthenticationMiddleware,
            backend=authentication,
        ),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
                expose_headers=["X-Request-Id"],
                max_age=600,
            )
        )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.authentication = authentication  # also for websockets' connection_init
    if services is not None:
        app.state.services = services  # for transports that don't run the lifespan
    return app


def _freeze_startup_heap() -> None:
    """Leave what start-up made (modules, the schema, the pools: about 110,000 objects, all
    living as long as the process) out of every later garbage collection. A full collection
    walked them all and held the event loop 55-62 ms, every request waiting meanwhile; with
    them frozen it takes 2-4 ms."""
    gc.collect()
    gc.freeze()


def worker_app() -> Starlette:
    """The app of one `serve --workers N` process: settings from the environment, migrations
    already applied by the process that started the workers."""
    settings = Settings.from_env()
    worker_started(settings)
    return create_app(settings, migrate=False, freeze_heap=True)
