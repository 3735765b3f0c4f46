"""``POST /v1/trace``: where a found image came from (scope ``check``; the account needs
``review`` or ``admin``, and each such lookup is logged).

Why the account is held back from the ``check`` scope: trace answers are wanted widely
(moderators, trust-and-safety tooling, partners asking "is this yours?"), but the account
behind a generation is personal data that only a reviewer acting on a case may see.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tutela.api.auth import require
from tutela.api.inputs import read_image
from tutela.api.schemas import AUTH_ERRORS, ErrorOut
from tutela.store.keys import ApiKey, Scope

router = APIRouter(prefix="/v1", tags=["provenance"])


class ManifestOut(BaseModel):
    present: bool
    valid: bool
    trusted: bool
    state: str | None
    generation_ref: str | None
    generator: str | None
    digital_source_type: str | None
    errors: list[str]


class TraceOut(BaseModel):
    ours: bool
    verdict: str = Field(description='"ours" or "not ours"')
    channel: str | None = Field(description="c2pa | watermark | registry (null if not ours)")
    confidence: float
    manifest: ManifestOut | None
    details: dict[str, Any]
    generation_id: str | None = None
    created_at: str | None = None
    prompt_sha256: str | None = None
    decision_id: str | None = None
    external_ref: str | None = None
    account: str | None = Field(None, description="Only for review/admin keys (logged)")


@router.post(
    "/trace",
    summary="Trace a found image back to its generation",
    response_model=None,
    responses={
        200: {"model": TraceOut, "description": "The trace (\"not ours\" for unknown images)"},
        413: {"model": ErrorOut, "description": "Request body over max_body_bytes"},
        422: {"model": ErrorOut, "description": "Not a decodable JPEG/PNG/WebP"},
        **AUTH_ERRORS,
    },
)
def trace(
    request: Request,
    image: Annotated[UploadFile, File(description="The found image: JPEG, PNG or WebP")],
    key: ApiKey = Depends(require(Scope.CHECK)),
) -> JSONResponse:
    """Manifest first, then the watermark, then the registry of perceptual hashes."""
    guard = request.app.state.guard
    result = guard.trace(read_image(image, request))
    if key.scope.allows(Scope.REVIEW):
        body = guard.provenance.reveal(result, actor=key.actor, scope=str(key.scope))
    else:
        body = result.to_dict()
    return JSONResponse(body)
