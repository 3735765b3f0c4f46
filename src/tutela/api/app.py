"""The FastAPI application factory: ``create_app()``.

Each area adds its endpoints as a router module ``tutela/api/routes_<area>.py`` exposing
``router = APIRouter(...)`` and registers it with one line in :data:`ROUTER_MODULES`. Routes
reach the Guard as ``request.app.state.guard`` and protect themselves with
``Depends(require(Scope.X))`` from :mod:`tutela.api.auth`; errors they raise
(``HTTPException``, ``InputError``, ``StoreUnavailable``) get the JSON bodies of
:mod:`tutela.api.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool

from tutela import __version__
from tutela.api import errors, logs
from tutela.api.auth import Authenticator
from tutela.api.batcher import PromptBatcher
from tutela.api.jsonroute import ExpressLane
from tutela.api.middleware import ServiceMiddleware
from tutela.api.ratelimit import RateLimiter
from tutela.errors import StoreUnavailable
from tutela.guard import Guard

ROUTER_MODULES: tuple[str, ...] = (
    "tutela.api.routes_health",
    "tutela.api.routes_prompts",
    "tutela.api.routes_decisions",
    "tutela.api.routes_accounts",
    "tutela.api.routes_banks",
    "tutela.api.routes_images",
    "tutela.api.routes_provenance",
    "tutela.api.routes_evidence",
)
"""One line per area: the module's ``router`` is included in the app."""

_DEFAULT_LIFESPAN = type(APIRouter().lifespan_context)
_NO_TELEMETRY = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)
"""FastAPI's OpenTelemetry bridge (newer FastAPI) looks for configured providers on every
request: three environment reads, ~8% of the prompt check's service layer in-process.
Tutela's metrics are Prometheus (``/metrics``) and its logs structlog JSON lines."""
_WARM_UP_TEXT = "a watercolour of a lighthouse at dawn"
PURGE_EVERY_SECONDS = 3600


async def _purge_expired_prompts(guard: Guard) -> None:
    """Forget allowed prompts' text whose retention ran out. Any worker may run it (the
    update is idempotent); errors are logged, never raised, so the hourly loop lives on."""
    store = guard.store
    try:
        count = await run_in_threadpool(lambda: store.run(store.decisions.purge_expired_prompts))
        if count:
            logs.get_logger("tutela.api").info("purged_prompt_text", count=count)
    except Exception as exc:
        logs.get_logger("tutela.api").warning(
            "purge_skipped", error=f"{type(exc).__name__}: {exc}"
        )


async def _warm_image_models(app: FastAPI, guard: Guard) -> None:
    """Load the image detectors' models (seconds) without holding up the prompt path."""
    try:
        await run_in_threadpool(lambda: guard.images.warm_up())
        app.state.image_models = "ok"
        gc.freeze()  # the models' objects too (see the lifespan)
    except Exception as exc:  # readiness reports it; image checks fail closed meanwhile
        app.state.image_models = f"failed: {type(exc).__name__}: {exc}"
        logs.get_logger("tutela.api").error("image_models_failed", error=str(exc))


async def _purge_hourly(guard: Guard) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_SECONDS)
        await _purge_expired_prompts(guard)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put ``router``'s routes in the app's own route list.

    ``app.include_router`` keeps the router as a nested one, which FastAPI matches on every
    request with its own candidate list and scope bookkeeping: ~15 µs on each prompt check.
    An ``APIRouter``'s routes already carry its prefix, tags, responses and dependencies, so
    the app and its OpenAPI document are the same (``tests/test_api.py`` holds them equal);
    what a router could add at inclusion, its lifespan and start/stop handlers, is refused.
    """
    own_lifespan = type(router.lifespan_context) is not _DEFAULT_LIFESPAN
    if router.on_startup or router.on_shutdown or own_lifespan:
        raise ValueError("a router with its own lifespan must be added with include_router")
    app.router.routes.extend(router.routes)


def create_app(guard: Guard | None = None, *, warm_models: bool | None = None) -> FastAPI:
    """The service around ``guard`` (default: ``Guard.open()`` from ``TUTELA_*``/config).

    Without arguments it is the factory uvicorn's workers call
    (``uvicorn --factory tutela.api.app:create_app``), each worker opening its own Guard on
    the shared database. ``warm_models`` (default: on for that factory and ``tutela serve``,
    off for an app built around a given Guard, as in tests) loads the image models in the
    background at start; ``/readyz`` answers 503 until they are loaded.
    """
    if warm_models is None:
        warm_models = guard is None
    guard = guard or Guard.open()
    settings = guard.settings
    logs.configure(settings.log_level)
    log = logs.get_logger("tutela.api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Build the prompt reader's index and reach the database before taking traffic,
        # so /readyz means what it says and the first request is not the slow one.
        await run_in_threadpool(guard.read_prompt, _WARM_UP_TEXT)
        app.state.warmed = True
        if warm_models:  # a serving process (not an app built in a test, which would leak)
            # Everything built so far (lexicon indexes, policy, account indexes) lives as
            # long as the process; moving it out of the collector's generations stops every
            # full collection from walking it again while requests wait.
            gc.freeze()
        try:
            await run_in_threadpool(guard.store.ping)
        except StoreUnavailable as exc:
            log.warning("database_unavailable_at_start", error=str(exc))
        log.info("started", version=__version__, database=guard.store.dialect)
        warmer = asyncio.create_task(_warm_image_models(app, guard)) if warm_models else None
        purger = None
        if guard.policy.retention.allowed_prompt_days > 0:  # else no prompt text expires
            await _purge_expired_prompts(guard)
            purger = asyncio.create_task(_purge_hourly(guard))
        yield
        for task in (purger, warmer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        prompts.close()  # after the last request; its queued checks commit first
        guard.store.close()

    app = FastAPI(
        title="Tutela",
        version=__version__,
        summary="Child-safety guard for AI image generation",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        **_NO_TELEMETRY,
    )
    app.state.guard = guard
    app.state.prompts = prompts = PromptBatcher(
        guard, threads=settings.check_threads, linger=settings.effective_check_linger_ms / 1000,
        yields=settings.effective_check_yields,
    )
    app.state.warmed = False
    app.state.image_models = "loading" if warm_models else None
    app.state.authenticator = Authenticator(
        guard.store, RateLimiter(settings.rate_limit_per_minute, settings.workers)
    )
    errors.install(app)
    for name in ROUTER_MODULES:
        add_routes(app, importlib.import_module(name).router)
    # Starlette runs the last added outermost: ServiceMiddleware sees every request, the
    # express lane takes the prompt check past the rest of the stack (api/jsonroute.py)
    app.add_middleware(ExpressLane, service=app)
    app.add_middleware(ServiceMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
