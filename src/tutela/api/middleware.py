"""The one ASGI middleware every request passes: request id, body limit, metrics, access log.

Written as plain ASGI rather than Starlette's ``BaseHTTPMiddleware`` because that wrapper
costs a task and a stream per request, which shows on a prompt check that itself takes well
under a millisecond.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tutela.api import metrics
from tutela.api.errors import error_body
from tutela.api.logs import get_logger

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ServiceMiddleware:
    """Tags each request with an id, enforces the body limit, and measures and logs it.

    The request id comes from a well-formed ``X-Request-ID`` header (so a platform can follow
    one request through its own logs) or is generated; it is echoed in the response header
    and in every error body.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # A concrete logger, bound once: the lazy module-level proxy re-binds on every call.
        self.log = get_logger("tutela.api.access").bind()
        # Request ids: a random per-process prefix and a counter. Unique and cheap; they
        # need not be secret (they are echoed to the caller).
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)
        # Prometheus children per label set: labels() costs a lock and validation each call.
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _request_id(scope) or f"{self._prefix}{next(self._counter):016x}"
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        limit = self.max_body_bytes

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode()),
                ]
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                await _send_413(send_with_id, rid, limit)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        # FastAPI re-raises HTTPException from body reading as is, so the
                        # error handlers answer 413 (chunked bodies have no Content-Length).
                        raise HTTPException(413, f"request body over {limit} bytes")
                return message

            await self.app(scope, limited_receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - start
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            key = (method, template, str(status))  # bounded: no label from raw input
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    metrics.REQUESTS.labels(*key),
                    metrics.LATENCY.labels(key[0], key[1]),
                )
            series[0].inc()
            series[1].observe(elapsed)
            self.log.info(
                "request",
                request_id=rid,
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                key_id=scope["state"].get("key_id"),
            )


def _request_id(scope: Scope) -> str | None:
    """The caller's well-formed ``X-Request-ID``, or None."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
            break
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, rid: str, limit: int) -> None:
    body = json.dumps(error_body(413, f"request body over {limit} bytes", rid)).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
