"""The JSON shapes the service answers with, as pydantic models for the OpenAPI document.

Responses are built from :meth:`tutela.decision.Decision.to_dict` directly (validating our own
output on every request would cost more than the check); these models document that shape,
and the schemathesis test holds the two together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    status: int
    code: str = Field(description="Stable machine-readable code, e.g. 'invalid_request'")
    message: str
    request_id: str | None
    fields: list[dict[str, str]] | None = Field(
        None, description="On 422: each invalid field and what is wrong with it"
    )


class ErrorOut(BaseModel):
    error: ErrorDetail


class SignalOut(BaseModel):
    detector: str
    kind: str
    score: float
    evidence: dict[str, Any]


class DecisionOut(BaseModel):
    id: str
    kind: Literal["prompt", "edit", "output", "upload"]
    verdict: Literal["allow", "review", "block"]
    categories: dict[str, float]
    reasons: list[str]
    signals: list[SignalOut]
    account: str | None
    account_action: Literal["none", "warn", "cooldown", "step_up", "suspend"]
    report: bool
    language: str | None
    created_at: datetime


class StoredDecisionOut(DecisionOut):
    prompt_sha256: str | None = Field(description="SHA-256 of the prompt as received")
    prompt_text: str | None = Field(
        description="The prompt, kept only for non-allow verdicts or under a retention policy"
    )


class AccountDecisionsOut(BaseModel):
    account: str
    decisions: list[StoredDecisionOut]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No valid API key"),
    403: _error("The key lacks the scope this endpoint needs"),
    429: _error("The key's rate limit is exhausted; see Retry-After"),
    503: _error("The database is unavailable; nothing was decided or recorded"),
}
