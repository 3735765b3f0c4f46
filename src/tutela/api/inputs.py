"""Checks on what clients send that the request schemas cannot express on their own.

Shared by every router so the same bad input gets the same 422 (or 413-style refusal) with
the same words, whichever endpoint it reached.
"""

from __future__ import annotations

from fastapi import Request, UploadFile

from tutela.errors import InputError


def storable_text(value: str, what: str) -> str:
    """Refuse text that cannot be kept as evidence.

    A NUL or a lone surrogate cannot be stored as text in PostgreSQL; refusing it up front
    (an :class:`InputError`, which is a ``ValueError``, so pydantic validators may raise it
    too) beats failing after the check has run.
    """
    if "\x00" in value:
        raise InputError(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid Unicode (unpaired surrogate)") from exc
    return value


def read_image(upload: UploadFile, request: Request) -> bytes:
    """The uploaded image's bytes, refused past ``image_max_bytes`` without reading it all."""
    limit = request.app.state.guard.settings.image_max_bytes
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"image is over the limit of {limit:,} bytes")
    return data
