"""``POST /v1/prompts/check``: the prompt check over HTTP (scope ``check``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import to_json

from tutela.api import metrics
from tutela.api.auth import require
from tutela.api.errors import request_id
from tutela.api.inputs import storable_text
from tutela.api.jsonroute import JsonBodyRoute
from tutela.api.logs import get_logger
from tutela.api.schemas import AUTH_ERRORS, DecisionOut, ErrorOut
from tutela.guard import PromptCheck
from tutela.store.keys import ApiKey, Scope

# The hot endpoint: JsonBodyRoute validates a well-formed body in one pydantic call and
# leaves every other request to FastAPI's own handler (api/jsonroute.py).
router = APIRouter(prefix="/v1", tags=["prompts"], route_class=JsonBodyRoute)
log = get_logger("tutela.api.prompts")

NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"

_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_NON_FINITE = (b"NaN", b"Infinity")


class _DecisionResponse(JSONResponse):
    """``JSONResponse``'s bytes (compact UTF-8 JSON), written by pydantic-core's encoder
    (Rust), at a fifth of the standard library's cost for a decision; the same bytes but
    for the spelling of very small or large floats (``1e-7``, not ``1e-07``).

    That encoder writes a non-finite score as ``NaN``, which is not JSON; ``json`` with
    ``allow_nan=False`` refuses it (a 500, never a broken answer). So a body that holds
    either word anywhere, even inside a string, is encoded again by ``json``, which decides.
    """

    def render(self, content: Any) -> bytes:
        body = to_json(content)
        if any(word in body for word in _NON_FINITE):
            return _encode(content).encode("utf-8")
        return body


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
async def check_prompt(
    body: PromptCheckIn,
    request: Request,
    key: ApiKey = Depends(require(Scope.CHECK)),
) -> JSONResponse:
    """Check ``text`` for ``account``; the decision is stored before this answers."""
    # The check is CPU work and a durable write: the worker's checking thread runs it
    # together with the checks queued meanwhile, in one transaction (api/batcher.py);
    # the rest of the request stays on the event loop.
    state = request.app.state
    guard = state.guard
    decision = await state.prompts.check(PromptCheck(body.text, body.account, body.locale))
    metrics.observe_decision(decision)
    if guard.settings.log_prompts:  # off by default: logs outlive the store's retention
        log.info("prompt", request_id=request_id(request), decision_id=decision.id,
                 verdict=str(decision.verdict), text=body.text)
    return _DecisionResponse(decision.to_dict())
