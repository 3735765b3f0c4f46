"""The image checks over HTTP (scope ``check``), as multipart uploads.

- ``POST /v1/outputs/check`` — a generated image, with the prompt that produced it;
- ``POST /v1/edits/check`` — an edit instruction and the photo it would change;
- ``POST /v1/uploads/check`` — an image a user uploads or shares.

Why multipart: images are binary and can be megabytes; base64 in JSON would cost a third
more bytes and a copy. Every decision is stored before the answer; an image that cannot be
decoded is a 422 naming the reason and changes nothing.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tutela.api import metrics
from tutela.api.auth import require
from tutela.api.inputs import read_image, storable_text
from tutela.api.schemas import AUTH_ERRORS, DecisionOut, ErrorOut
from tutela.store.keys import ApiKey, Scope

router = APIRouter(prefix="/v1", tags=["images"])

NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"

Account = Annotated[
    str,
    Form(
        min_length=1,
        max_length=256,
        pattern=NO_CONTROL,
        description="The platform's id for the account (no control characters)",
    ),
]
ImageFile = Annotated[UploadFile, File(description="The image: JPEG, PNG or WebP")]


class ImageInfo(BaseModel):
    width: int
    height: int
    format: str | None
    notes: list[str] = Field(description="What was done to the picture, e.g. animation frames")


class OutputDecisionOut(DecisionOut):
    image: ImageInfo
    marked_image: str | None = Field(
        description="Base64 of the image to publish (watermarked, C2PA manifest) when the "
        "output is allowed and provenance marking is configured; null otherwise. A blocked "
        "output has none and must not be published."
    )
    generation: str | None
    generation_id: str | None = Field(
        None, description="Tutela's generation id for the marked image (what /v1/trace of it "
        "returns); null when not marked"
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "Request body over max_body_bytes"},
    422: {"model": ErrorOut, "description": "Not a decodable JPEG/PNG/WebP, or a bad field"},
    **AUTH_ERRORS,
}


def _answer(decision: Any, **extra: Any) -> JSONResponse:
    metrics.observe_decision(decision)
    return JSONResponse({**decision.to_dict(), **extra})


@router.post(
    "/outputs/check",
    summary="Check a generated image before it is shown",
    response_model=None,
    responses={200: {"model": OutputDecisionOut, "description": "The decision (stored)"},
               **_ERRORS},
)
def check_output(
    request: Request,
    image: ImageFile,
    account: Account,
    prompt: Annotated[
        str | None, Form(max_length=100_000, description="The prompt that produced the image")
    ] = None,
    generation: Annotated[
        str | None,
        Form(max_length=256, pattern=NO_CONTROL, description="The platform's generation id"),
    ] = None,
    key: ApiKey = Depends(require(Scope.CHECK)),
) -> JSONResponse:
    """Hash-match and classify a generated image; a prompt about a child makes it strict."""
    guard = request.app.state.guard
    result = guard.check_output(
        read_image(image, request), account,
        prompt=storable_text(prompt, "prompt") if prompt else None,
        generation=generation,
    )
    marked = base64.b64encode(result.image_bytes).decode() if result.image_bytes else None
    return _answer(
        result.decision,
        image=result.inspection.summary(),
        marked_image=marked,
        generation=generation,
        generation_id=result.provenance_id,
    )


@router.post(
    "/edits/check",
    summary="Check an edit instruction with the photo it would change",
    response_model=None,
    responses={200: {"model": DecisionOut, "description": "The decision (stored)"},
               **_ERRORS},
)
def check_edit(
    request: Request,
    image: ImageFile,
    account: Account,
    prompt: Annotated[str, Form(min_length=1, max_length=100_000,
                                description="The edit instruction")],
    key: ApiKey = Depends(require(Scope.CHECK)),
) -> JSONResponse:
    """Sexualising edits of real people are blocked; of possible minors, always."""
    guard = request.app.state.guard
    text = storable_text(prompt, "prompt")
    decision = guard.check_edit(text, read_image(image, request), account)
    return _answer(decision)


@router.post(
    "/uploads/check",
    summary="Check an image a user uploads or shares",
    response_model=None,
    responses={200: {"model": DecisionOut, "description": "The decision (stored)"},
               **_ERRORS},
)
def check_upload(
    request: Request,
    image: ImageFile,
    account: Account,
    key: ApiKey = Depends(require(Scope.CHECK)),
) -> JSONResponse:
    """Match against the hash banks and classify."""
    return _answer(request.app.state.guard.check_upload(read_image(image, request), account))
