"""JSON error bodies for every failure the service answers, in one shape.

``{"error": {"status": 404, "code": "not_found", "message": "...", "request_id": "..."}}``;
422 adds ``"fields": [{"field": "body.text", "message": "..."}]`` so a caller can see which
field was wrong. Clients branch on ``code``; ``message`` is for people.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tutela.errors import InputError, StoreUnavailable

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
STORE_RETRY_AFTER_SECONDS = 5


def error_body(
    status: int, message: str, request_id: str | None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": status,
        "code": CODES.get(status, "error"),
        "message": message,
        "request_id": request_id,
    }
    body.update(extra)
    return {"error": body}


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def error_response(
    request: Request,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        error_body(status, message, request_id(request), **extra),
        status_code=status,
        headers=headers,
    )


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI answers 400 when the body cannot even be decoded (invalid UTF-8, bad
        # encoding); to a caller that is one more malformed body, so it gets the same 422.
        message = "the request body is not valid UTF-8 JSON"
        return error_response(request, 422, message, fields=[{"field": "body", "message": message}])
    message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
    return error_response(request, exc.status_code, message, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [
        {"field": _field_name(err.get("loc", ())), "message": str(err.get("msg", "invalid"))}
        for err in exc.errors()
    ]
    names = ", ".join(f["field"] for f in fields) or "request"
    return error_response(request, 422, f"invalid request: {names}", fields=fields)


async def _input_error(request: Request, exc: Exception) -> JSONResponse:
    field = getattr(exc, "field", None) or "body.text"
    return error_response(
        request, 422, str(exc), fields=[{"field": field, "message": str(exc)}]
    )


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Fail closed: the check was not recorded, so no verdict is given (never an allow).
    return error_response(
        request,
        503,
        "the database is unavailable; no decision was made or recorded, retry later",
        headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 500, "internal error; see the server log for this request id")


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the JSON shape above."""
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected)
