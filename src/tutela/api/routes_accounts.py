"""Accounts over HTTP: read an account (scope ``review``), record an age-assurance result
and act on an account (scope ``admin``: both change what the account may do)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tutela.accounts.verification import LEVELS, verification_from
from tutela.api.auth import require
from tutela.api.routes_prompts import NO_CONTROL
from tutela.api.schemas import AUTH_ERRORS, ErrorOut
from tutela.decision import AccountAction
from tutela.store.keys import ApiKey, Scope

router = APIRouter(prefix="/v1", tags=["accounts"])
_REVIEW = Depends(require(Scope.REVIEW))
_ADMIN = Depends(require(Scope.ADMIN))
AccountId = Annotated[str, Path(min_length=1, max_length=256, pattern=NO_CONTROL)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "Malformed account id or body"},
    **AUTH_ERRORS,
}


class VerificationIn(BaseModel):
    """The result of the platform's age-assurance provider."""

    model_config = ConfigDict(extra="forbid")

    level: Literal[LEVELS] = Field(  # type: ignore[valid-type]
        description="The tier established: self_declared, estimated, verified_adult or minor"
    )
    method: str = Field(min_length=1, max_length=100, pattern=NO_CONTROL,
                        description="How, e.g. id_document, facial_estimation, eid")  # fmt: skip
    verified_at: datetime | None = Field(
        None, description="When the provider verified (ISO 8601 with zone; default now)"
    )
    age_years: int | None = Field(None, ge=0, le=130, description="Age, if the provider gave one")
    provider: str | None = Field(None, min_length=1, max_length=200, pattern=NO_CONTROL)
    jurisdiction: str | None = Field(None, pattern=r"^[A-Za-z]{2}$",
                                     description="ISO 3166-1 alpha-2, e.g. ES")  # fmt: skip
    reference: str | None = Field(None, min_length=1, max_length=200, pattern=NO_CONTROL)


class ActionIn(BaseModel):
    """An administrator's action on the account."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["lift", "suspend"]
    reason: str = Field(min_length=1, max_length=500, pattern=NO_CONTROL)
    report: bool = Field(False, description="Flag the account for the reporting queue")


@router.get("/accounts/{account}", summary="An account's state", response_model=None,
            responses=_ERRORS)  # fmt: skip
def get_account(request: Request, account: AccountId, key: ApiKey = _REVIEW) -> JSONResponse:
    """Age tier, decayed risk and band, strikes, the action in force, verifications, history.
    An account never seen is answered too (``known: false``), so callers need no 404 path."""
    guard = request.app.state.guard
    return JSONResponse(guard.accounts.describe(account, datetime.now(UTC)))


@router.post("/accounts/{account}/verification", summary="Record an age-assurance result",
             response_model=None, responses=_ERRORS)  # fmt: skip
def post_verification(
    request: Request, account: AccountId, body: VerificationIn, key: ApiKey = _ADMIN
) -> JSONResponse:
    """A strong enough result (``verified_adult`` by default) lifts a ``step_up``."""
    guard = request.app.state.guard
    now = datetime.now(UTC)
    v = verification_from(
        level=body.level, method=body.method, verified_at=body.verified_at or now,
        age_years=body.age_years, provider=body.provider, jurisdiction=body.jurisdiction,
        reference=body.reference, now=now,
    )  # fmt: skip
    guard.accounts.record_verification(account, v, now, actor=key.actor)
    return JSONResponse(guard.accounts.describe(account, now))


@router.post("/accounts/{account}/actions", summary="Lift or suspend an account",
             response_model=None, responses=_ERRORS)  # fmt: skip
def post_action(
    request: Request, account: AccountId, body: ActionIn, key: ApiKey = _ADMIN
) -> JSONResponse:
    """``lift`` ends whatever is in force; ``suspend`` blocks every check until lifted. The
    reason and the key that acted are kept in the account's action history."""
    guard = request.app.state.guard
    now = datetime.now(UTC)
    action = AccountAction.NONE if body.action == "lift" else AccountAction.SUSPEND
    guard.accounts.set_action(account, action, body.reason, key.actor, now, report=body.report)
    return JSONResponse(guard.accounts.describe(account, now))
