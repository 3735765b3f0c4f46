"""Liveness, readiness and metrics: the endpoints an orchestrator and Prometheus poll.

None needs a key: they reveal no decision, and a load balancer must reach them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from tutela.api import metrics
from tutela.errors import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Prompt reader and image models loaded, database reachable",
    responses={503: {"description": "Not ready: the body says which part"}},
)
def readyz(request: Request) -> JSONResponse:
    guard = request.app.state.guard
    checks = {"prompt_reader": "ok" if request.app.state.warmed else "loading"}
    if request.app.state.image_models is not None:  # warmed at start (tutela serve)
        checks["image_models"] = request.app.state.image_models
    try:
        guard.store.ping()
        checks["database"] = "ok"
    except StoreUnavailable as exc:
        checks["database"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
