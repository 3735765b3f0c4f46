"""A route class for hot JSON endpoints: the body validated by pydantic's JSON parser.

FastAPI's request handler does, on every request: read the body, parse the content type
with ``email.message``, ``json.loads`` it, walk the dependency graph (cache keys, scopes,
exit stacks), validate the resulting dict through the body field's ``TypeAdapter``, then
call the endpoint. On the prompt check that was the largest piece of the service layer's
own cost. :class:`JsonBodyRoute` keeps FastAPI's handler, and with it the OpenAPI document
(built from the same declared signature), and puts a shorter path in front of it for the
common case: an ``application/json`` body the model accepts as it is. That body is read,
validated in one ``model_validate_json`` call (pydantic's Rust parser, no intermediate dict),
the route's dependencies are awaited in their declared order, and the endpoint is called.

Anything else goes to FastAPI's own handler, with the body already read: another content
type, malformed JSON, a field the model refuses, an error while reading the body,
``app.dependency_overrides`` in use, or FastAPI's telemetry recording the request. So every
error answer is FastAPI's own, in FastAPI's order (a key is checked before field errors are
reported), and only requests that succeed take the short path.

:class:`ExpressLane`, an ASGI middleware, sends a request for such a route to its short path
before Starlette's exception middleware, FastAPI's exit stacks and the router see it; what
the short path leaves to FastAPI goes down that whole stack with the body replayed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

try:  # FastAPI's own telemetry (newer versions) records what its handler parses: let it
    from fastapi.telemetry import get_telemetry_data
except ImportError:  # pragma: no cover - older FastAPI

    def get_telemetry_data() -> None:
        return None


try:  # newer FastAPI builds an included route's handler for an "effective" copy of it
    from fastapi.routing import _effective_route_context_var as _included
except ImportError:  # pragma: no cover - older FastAPI includes a real copy of the route
    _included = None

_JSON = "application/json"

ShortPath = Callable[[Request], Awaitable[Response | None]]
"""A route's short path: its answer, or None where FastAPI's own handler must answer."""


class JsonBodyRoute(APIRoute):
    """An ``APIRoute`` whose handler takes the short path for an ``async`` endpoint of the
    shape ``endpoint(body: SomeModel, request: Request, x = Depends(dep), ...)`` returning
    its own ``Response``, where each dependency is an ``async`` callable of the request
    alone (such as :func:`tutela.api.auth.require`). A route of any other shape, or one
    included with dependencies of its own, is served by FastAPI's handler alone (so the
    short path never has to guess what FastAPI would have passed);
    ``tests/test_jsonroute.py`` checks that the prompt check does take it.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        self.short_path: ShortPath | None = None
        context = _included.get() if _included is not None else None
        route = context if context is not None and context.original_route is self else self
        dependant = route.dependant
        endpoint = dependant.call
        (body_field,) = dependant.body_params or (None,)
        model = body_field.field_info.annotation if body_field is not None else None
        if not (
            inspect.iscoroutinefunction(endpoint)
            and route.response_field is None  # the endpoint returns its Response itself
            and isinstance(model, type)
            and issubclass(model, BaseModel)
            and not route._embed_body_fields
            and _takes_only_request(dependant, body=1)
            and all(_takes_only_request(d) for d in dependant.dependencies)
        ):
            return standard
        assert body_field is not None and endpoint is not None
        body_name = body_field.name
        request_name = dependant.request_param_name
        dependencies: list[tuple[str, Callable[[Request], Awaitable[Any]]]] = [
            (d.name, d.call) for d in dependant.dependencies  # type: ignore[misc]
        ]
        validate = model.model_validate_json
        overrides = route.dependency_overrides_provider

        async def short_path(request: Request) -> Response | None:
            if (
                request.headers.get("content-type") != _JSON
                or getattr(overrides, "dependency_overrides", None)
                or get_telemetry_data() is not None
            ):
                return None
            try:
                raw = await request.body()  # kept on the request for FastAPI's handler
            except HTTPException:  # the body limit's 413, as FastAPI lets it through
                raise
            except Exception:
                return None  # FastAPI's handler answers it as it does
            try:
                body = validate(raw)
            except ValidationError:
                return None  # FastAPI's own 422, in FastAPI's order
            values: dict[str, Any] = {body_name: body}
            if request_name is not None:
                values[request_name] = request
            for name, call in dependencies:  # in declared order, as FastAPI resolves them
                values[name] = await call(request)
            return await endpoint(**values)  # type: ignore[no-any-return]

        self.short_path = short_path

        async def handler(request: Request) -> Response:
            response = await short_path(request)
            return response if response is not None else await standard(request)

        return handler


class ExpressLane:
    """ASGI middleware: a request for a :class:`JsonBodyRoute` goes straight to the route's
    short path, past Starlette's exception middleware, FastAPI's exit stacks and the router.

    Why: those layers cost a prompt check ~50-90 µs of the event loop's time per request
    (a third of what the service layer costs on that thread) and do nothing for a request
    the short path answers. What the lane keeps: the route is found by an exact
    ``(method, path)`` match (only routes without path parameters, and only without a
    ``root_path``); the app's own exception handlers answer what the short path raises
    (Starlette's ``ExceptionMiddleware``, built with the handlers FastAPI would give it),
    and anything the short path leaves to FastAPI (another content type, a body the model
    refuses, an override in place) goes down the full stack with the body it already read
    replayed, so FastAPI answers as if the lane were not there (``tests/test_jsonroute.py``
    compares the two). Add it with ``app.add_middleware(ExpressLane, service=app)`` after
    every route is in place: routes are looked up once, when the stack is built.
    """

    def __init__(self, app: ASGIApp, service: FastAPI) -> None:
        self.app = app
        handlers = {k: v for k, v in service.exception_handlers.items()
                    if k not in (500, Exception)}  # those are ServerErrorMiddleware's
        self._lanes: dict[tuple[str, str], tuple[APIRoute, ASGIApp]] = {}
        for route in service.router.routes:
            if (not isinstance(route, JsonBodyRoute) or route.short_path is None
                    or route.param_convertors):
                continue
            lane = ExceptionMiddleware(self._lane(route.short_path), handlers=handlers)
            for method in route.methods:
                self._lanes[method, route.path] = (route, lane)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (self._lanes.get((scope["method"], scope["path"]))
                 if scope["type"] == "http" and not scope.get("root_path") else None)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, lane = found
        scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
        await lane(scope, receive, send)

    def _lane(self, short_path: ShortPath) -> ASGIApp:
        full = self.app

        async def lane(scope: Scope, receive: Receive, send: Send) -> None:
            received: list[Message] = []

            async def recording() -> Message:
                message = await receive()
                received.append(message)
                return message

            response = await short_path(Request(scope, recording))
            if response is not None:
                await response(scope, receive, send)
                return
            replay = iter(received)

            async def replaying() -> Message:
                return next(replay, None) or await receive()

            await full(scope, replaying, send)  # FastAPI answers, from the body as sent

        return lane


def _takes_only_request(dependant: Any, body: int = 0) -> bool:
    """True when ``dependant`` (an endpoint with ``body`` body parameters, or one of its
    dependencies) takes nothing FastAPI would have to fetch but the request and the body.
    A dependency must also be a named ``async`` callable (no yield) without dependencies
    of its own, so awaiting it with the request is exactly what FastAPI would do."""
    if len(dependant.body_params) != body or any(
        (dependant.path_params, dependant.query_params, dependant.header_params,
         dependant.cookie_params, dependant.websocket_param_name,
         dependant.http_connection_param_name, dependant.response_param_name,
         dependant.background_tasks_param_name, dependant.security_scopes_param_name)
    ):
        return False
    if body:  # the endpoint itself
        return True
    call = dependant.call
    coroutine = inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        type(call).__call__  # a callable instance, such as require()'s
    )
    return bool(coroutine and dependant.name and dependant.request_param_name
                and not dependant.dependencies)
