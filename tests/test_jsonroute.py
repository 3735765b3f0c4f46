"""JsonBodyRoute: the prompt check's short path answers exactly as FastAPI's own handler.

Each case is sent to the real app and to the same app whose prompt route is a plain
``APIRoute`` (FastAPI's handler for every request), around one Guard; status, error body
and headers must be the same, and a decision the same but for its id and time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tutela import Guard
from tutela.api.app import create_app
from tutela.api.jsonroute import JsonBodyRoute

PATH = "/v1/prompts/check"
ALLOWED = "a watercolour of a lighthouse at dawn"
JSON = "application/json"


def _plain(app: FastAPI) -> FastAPI:
    """``app`` with its prompt route replaced by an ``APIRoute`` of the same declaration."""
    routes = app.router.routes
    i, route = next((i, r) for i, r in enumerate(routes) if getattr(r, "path", None) == PATH)
    assert isinstance(route, JsonBodyRoute)
    routes[i] = APIRoute(
        route.path, route.endpoint, methods=route.methods, tags=route.tags,
        summary=route.summary, responses=route.responses, response_model=None,
        name=route.name,
    )
    return app


class Pair:
    """The app as served and the same app answering through FastAPI's own handler."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.fast = TestClient(create_app(guard), raise_server_exceptions=False)
        self.plain = TestClient(_plain(create_app(guard)), raise_server_exceptions=False)
        self.key = guard.store.api_keys.create("check", "check key")[1]

    def both(self, body: bytes, headers: dict[str, str]) -> tuple[Any, Any]:
        return (self.fast.post(PATH, content=body, headers=headers),
                self.plain.post(PATH, content=body, headers=headers))


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pair]:
    settings = getattr(request, "param", {})
    guard = Guard.open(data_dir=tmp_path / "data", **settings)
    guard.store.upgrade()
    p = Pair(guard)
    with p.fast, p.plain:
        yield p


def _comparable(response: Any) -> tuple[int, Any, dict[str, str]]:
    """Status, body and the headers that carry meaning, without what differs per request."""
    body = response.json()
    if "error" in body:
        assert body["error"].pop("request_id") == response.headers["x-request-id"]
    else:  # a decision: a new one per request
        for volatile in ("id", "created_at"):
            body.pop(volatile)
    headers = {k: response.headers[k] for k in
               ("content-type", "www-authenticate", "retry-after") if k in response.headers}
    return response.status_code, body, headers


def _payload(**fields: Any) -> bytes:
    return json.dumps({"text": ALLOWED, "account": "acct-1", **fields}).encode()


CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("valid", _payload(), {"content-type": JSON}),
    ("valid, locale", _payload(locale="es-ES"), {"content-type": JSON}),
    ("duplicate key: the last wins", b'{"text": "a cat", "account": "a", "account": "b"}',
     {"content-type": JSON}),
    ("charset parameter", _payload(), {"content-type": "application/json; charset=utf-8"}),
    ("+json subtype", _payload(), {"content-type": "application/vnd.api+json"}),
    ("UTF-8 byte order mark", b"\xef\xbb\xbf" + _payload(), {"content-type": JSON}),
    ("no content type", _payload(), {}),
    ("text/plain", _payload(), {"content-type": "text/plain"}),
    ("empty body", b"", {"content-type": JSON}),
    ("truncated JSON", b'{"text": "a", ', {"content-type": JSON}),
    ("invalid UTF-8", b'{"text": "\xc3\x28", "account": "a"}', {"content-type": JSON}),
    ("lone surrogate", b'{"text": "a \\ud800 b", "account": "a"}', {"content-type": JSON}),
    ("NUL", _payload(text="a\x00b"), {"content-type": JSON}),
    ("trailing data", _payload() + b" x", {"content-type": JSON}),
    ("NaN", b'{"text": NaN, "account": "a"}', {"content-type": JSON}),
    ("array", b"[]", {"content-type": JSON}),
    ("null", b"null", {"content-type": JSON}),
    ("missing field", b'{"text": "a cat"}', {"content-type": JSON}),
    ("wrong type", _payload(text=5), {"content-type": JSON}),
    ("extra field", _payload(extra=1), {"content-type": JSON}),
    ("bad locale", _payload(locale="not a locale"), {"content-type": JSON}),
    ("control character in account", _payload(account="a\nb"), {"content-type": JSON}),
    ("over max_prompt_chars", _payload(text="x" * 4001), {"content-type": JSON}),
    ("blank prompt", _payload(text="   "), {"content-type": JSON}),
]


@pytest.mark.parametrize(("case", "body", "headers"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("auth", ["key", "no key", "wrong key"])
def test_answers_as_fastapis_handler(
    pair: Pair, case: str, body: bytes, headers: dict[str, str], auth: str
) -> None:
    """Also the order: a key is refused before field errors, JSON errors before the key."""
    if auth != "no key":
        secret = pair.key if auth == "key" else "tut_wrong"
        headers = {**headers, "Authorization": f"Bearer {secret}"}
    fast, plain = pair.both(body, headers)
    assert _comparable(fast) == _comparable(plain), case


@pytest.mark.parametrize("pair", [{"rate_limit_per_minute": 1}], indirect=True)
def test_rate_limit_answers_alike(pair: Pair) -> None:
    headers = {"content-type": JSON, "Authorization": f"Bearer {pair.key}"}
    first = pair.both(_payload(), headers)
    second = pair.both(_payload(), headers)
    assert [r.status_code for r in (*first, *second)] == [200, 200, 429, 429]
    assert _comparable(second[0]) == _comparable(second[1])


def test_a_valid_request_skips_fastapis_dependency_solving(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_: Any) -> None:
        raise AssertionError("FastAPI's handler ran")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", refuse)
    r = pair.fast.post(PATH, content=_payload(),
                       headers={"content-type": JSON, "Authorization": f"Bearer {pair.key}"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("body", "headers", "status", "full_stack"),
    [
        (_payload(), {"content-type": JSON}, 200, False),
        (_payload(), {"content-type": "text/plain"}, 422, True),  # FastAPI's to refuse
        (b'{"text": "a cat"}', {"content-type": JSON}, 422, True),  # the model refuses it
    ],
)
def test_express_lane_skips_the_stack_only_for_what_it_answers(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, body: bytes, headers: dict[str, str],
    status: int, full_stack: bool,
) -> None:
    """The lane answers a valid check without FastAPI's exit stacks or the router; what it
    leaves to FastAPI goes down the whole stack (and the pair test above shows FastAPI's
    answer is unchanged)."""
    entered: list[str] = []
    real = AsyncExitStackMiddleware.__call__

    async def counting(self: Any, scope: Any, receive: Any, send: Any) -> None:
        entered.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(AsyncExitStackMiddleware, "__call__", counting)
    r = pair.fast.post(PATH, content=body,
                       headers={**headers, "Authorization": f"Bearer {pair.key}"})
    assert r.status_code == status, r.text
    assert entered == ([PATH] if full_stack else [])
    pair.fast.get("/healthz")  # any other route: the whole stack
    assert entered[-1] == "/healthz"


def _post_in_chunks(app: Any, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, Any]:
    """POST a body to ``app`` as one ASGI message per chunk (the test client joins them)."""

    async def run() -> tuple[int, Any]:
        messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                    for i, c in enumerate(chunks)]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": PATH, "raw_path": PATH.encode(),
            "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1),
            "server": ("testserver", 80), "state": {},
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, json.loads(body)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("chunks", "status"),
    [
        ([b'{"text": "a cat', b' on a mat", ', b'"account": "acct-1"}'], 200),
        ([b'{"text": "a cat', b' on a mat", ', b'"acount": "acct-1"}'], 422),
        ([b'{"text": "a cat', b' on a mat", ', b'"account": 5}'], 422),
    ],
)
def test_a_body_in_chunks_reaches_fastapi_whole(
    pair: Pair, chunks: list[bytes], status: int
) -> None:
    """A body the lane read and left to FastAPI is replayed as it came, chunk by chunk."""
    headers = {"content-type": JSON, "authorization": f"Bearer {pair.key}"}
    fast = _post_in_chunks(pair.fast.app, chunks, headers)
    plain = _post_in_chunks(pair.plain.app, chunks, headers)
    assert fast[0] == plain[0] == status, fast
    for body in (fast[1], plain[1]):
        for volatile in ("id", "created_at"):
            body.pop(volatile, None)
        body.get("error", {}).pop("request_id", None)
    assert fast[1] == plain[1]
    if status == 422:  # FastAPI read the whole body: its field error names the field
        assert "account" in fast[1]["error"]["message"]


def test_openapi_document_is_the_declared_one(pair: Pair) -> None:
    assert pair.fast.app.openapi() == pair.plain.app.openapi()  # type: ignore[attr-defined]


class _Body(BaseModel):
    text: str


async def _caller(request: Request) -> str:
    return "caller"


async def _echo(body: _Body, request: Request, who: str = Depends(_caller)) -> JSONResponse:
    return JSONResponse({"who": who, "text": body.text, "path": request.url.path})


def _echo_app(**include: Any) -> tuple[FastAPI, TestClient]:
    app = FastAPI()
    router = APIRouter(route_class=JsonBodyRoute)
    router.add_api_route("/echo", _echo, methods=["POST"])
    app.include_router(router, **include)
    return app, TestClient(app)


ECHO = {"content": b'{"text": "hi"}', "headers": {"content-type": JSON}}


def test_dependency_overrides_are_honoured() -> None:
    """Overrides are FastAPI's to apply: with any in place, every request takes its path."""
    app, client = _echo_app()
    assert client.post("/echo", **ECHO).json() == {"who": "caller", "text": "hi", "path": "/echo"}
    app.dependency_overrides[_caller] = lambda: "override"
    assert client.post("/echo", **ECHO).json()["who"] == "override"


def test_dependencies_added_by_include_router_are_kept() -> None:
    def refuse() -> None:
        raise HTTPException(403, "refused by the including router")

    _, client = _echo_app(prefix="/in", dependencies=[Depends(refuse)])
    assert client.post("/in/echo", **ECHO).status_code == 403


async def _with_query(body: _Body, limit: int = 5) -> JSONResponse:
    return JSONResponse({"limit": limit})


def _sync_dependency(request: Request) -> int:
    return 1


async def _with_sync_dependency(body: _Body, n: int = Depends(_sync_dependency)) -> JSONResponse:
    return JSONResponse({"n": n})


@pytest.mark.parametrize(
    ("endpoint", "answer"), [(_with_query, {"limit": 7}), (_with_sync_dependency, {"n": 1})]
)
def test_shapes_it_cannot_serve_go_to_fastapis_handler(endpoint: Any, answer: Any) -> None:
    app = FastAPI()
    app.router.routes.append(JsonBodyRoute("/x", endpoint, methods=["POST"]))
    assert TestClient(app).post("/x?limit=7", **ECHO).json() == answer
