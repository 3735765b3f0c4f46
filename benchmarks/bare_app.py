"""The baseline for ``http_bench.py``: a bare FastAPI endpoint with the same request shape.

It parses and validates the same JSON body as ``POST /v1/prompts/check`` and answers a
fixed decision-sized JSON object, with no auth, no check and no storage: what any FastAPI
service pays per request. Tutela's throughput is reported as a ratio to this.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

app = FastAPI()

_ANSWER = {
    "id": "dec_000000000000000000000000000000000",
    "kind": "prompt",
    "verdict": "allow",
    "categories": {},
    "reasons": [],
    "signals": [],
    "account": "acct",
    "account_action": "none",
    "report": False,
    "language": "en",
    "created_at": "2026-01-01T00:00:00+00:00",
}


class PromptIn(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)
    account: str = Field(min_length=1, max_length=256)
    locale: str | None = None


@app.post("/v1/prompts/check")
def check(body: PromptIn) -> JSONResponse:
    return JSONResponse({**_ANSWER, "account": body.account})


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/async/prompts/check")
async def check_async(body: PromptIn) -> JSONResponse:
    """The same on the event loop (no thread hop): the stricter baseline."""
    return JSONResponse({**_ANSWER, "account": body.account})
