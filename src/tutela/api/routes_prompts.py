"""``POST /v1/prompts/check``: the prompt check over HTTP (scope ``check``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutela.api import metrics
from tutela.api.auth import require
from tutela.api.errors import request_id
from tutela.api.inputs import storable_text
from tutela.api.logs import get_logger
from tutela.api.schemas import AUTH_ERRORS, DecisionOut, ErrorOut
from tutela.store.keys import ApiKey, Scope

router = APIRouter(prefix="/v1", tags=["prompts"])
log = get_logger("tutela.api.prompts")

NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"


class PromptCheckIn(BaseModel):
    """A generation prompt and the account that sent it."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=100_000,
        description="The prompt. Over the configured max_prompt_chars (default 4000): 422.",
    )
    account: str = Field(
        min_length=1,
        max_length=256,
        pattern=NO_CONTROL,
        description="The platform's id for the account (no control characters)",
    )
    locale: str | None = Field(
        None,
        min_length=2,
        max_length=35,
        pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
        description="BCP 47 language tag of the user interface, e.g. 'es-ES'",
    )

    @field_validator("text")
    @classmethod
    def _storable(cls, value: str) -> str:
        return storable_text(value, "text")


@router.post(
    "/prompts/check",
    summary="Check a generation prompt",
    response_model=None,
    responses={
        200: {"model": DecisionOut, "description": "The decision (already stored)"},
        413: {"model": ErrorOut, "description": "Request body over max_body_bytes"},
        422: {"model": ErrorOut, "description": "Invalid JSON, field, or text over the limit"},
        **AUTH_ERRORS,
    },
)
def check_prompt(
    body: PromptCheckIn,
    request: Request,
    key: ApiKey = Depends(require(Scope.CHECK)),
) -> JSONResponse:
    """Check ``text`` for ``account``; the decision is stored before this answers.

    Runs in FastAPI's thread pool: the check is CPU work and the insert is blocking I/O.
    """
    guard = request.app.state.guard
    decision = guard.check_prompt(body.text, account=body.account, locale=body.locale)
    metrics.observe_decision(decision)
    if guard.settings.log_prompts:  # off by default: logs outlive the store's retention
        log.info("prompt", request_id=request_id(request), decision_id=decision.id,
                 verdict=str(decision.verdict), text=body.text)
    return JSONResponse(decision.to_dict())
