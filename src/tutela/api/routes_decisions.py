"""Reading stored decisions (scope ``review``: they may hold the text of blocked prompts)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from tutela.api.auth import require
from tutela.api.routes_prompts import NO_CONTROL
from tutela.api.schemas import AUTH_ERRORS, AccountDecisionsOut, ErrorOut, StoredDecisionOut
from tutela.store.decisions import utc
from tutela.store.keys import ApiKey, Scope

router = APIRouter(prefix="/v1", tags=["decisions"])
_REVIEW = Depends(require(Scope.REVIEW))


@router.get(
    "/decisions/{decision_id}",
    summary="One stored decision",
    response_model=None,
    responses={
        200: {"model": StoredDecisionOut},
        404: {"model": ErrorOut, "description": "No decision with that id"},
        422: {"model": ErrorOut, "description": "Malformed id"},
        **AUTH_ERRORS,
    },
)
def get_decision(
    request: Request,
    decision_id: Annotated[str, Path(min_length=1, max_length=64, pattern=NO_CONTROL)],
    key: ApiKey = _REVIEW,
) -> JSONResponse:
    store = request.app.state.guard.store
    stored = store.run(lambda: store.decisions.get(decision_id))
    if stored is None:
        raise HTTPException(404, f"no decision with id {decision_id!r}")
    return JSONResponse(stored.to_dict())


@router.get(
    "/accounts/{account}/decisions",
    summary="An account's decisions, newest first",
    response_model=None,
    responses={
        200: {"model": AccountDecisionsOut},
        422: {"model": ErrorOut, "description": "Malformed account or query"},
        **AUTH_ERRORS,
    },
)
def account_decisions(
    request: Request,
    account: Annotated[str, Path(min_length=1, max_length=256, pattern=NO_CONTROL)],
    since: Annotated[
        datetime | None, Query(description="Only decisions at or after this time (ISO 8601)")
    ] = None,
    before: Annotated[
        datetime | None,
        Query(description="Only decisions before this time: pass the last created_at to page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    key: ApiKey = _REVIEW,
) -> JSONResponse:
    store = request.app.state.guard.store
    try:
        since_utc = utc(since) if since is not None else None
        before_utc = utc(before) if before is not None else None
    except (OverflowError, ValueError):
        raise HTTPException(422, "since/before: not a representable UTC time") from None
    rows = store.run(
        lambda: store.decisions.for_account(
            account, since=since_utc, before=before_utc, limit=limit
        )
    )
    return JSONResponse({"account": account, "decisions": [r.to_dict() for r in rows]})
