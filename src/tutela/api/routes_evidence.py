"""The audit log, the evidence vault and the reports over HTTP (scope ``admin``).

The same operations as ``tutela audit|evidence|reports``. The acting person is the API key
(``apikey:<id> (<name>)``), so every evidence access over HTTP lands in the chain of custody
with the key that made it and the ``reason`` it gave; a missing reason is a 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tutela.api.auth import require
from tutela.api.routes_prompts import NO_CONTROL
from tutela.api.schemas import AUTH_ERRORS, ErrorOut
from tutela.errors import ConfigError, InputError, TutelaError
from tutela.evidence.service import Evidence
from tutela.store.keys import ApiKey, Scope

_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: {"model": ErrorOut, "description": "No such entry, item or decision"},
    409: {"model": ErrorOut, "description": "Not configured (reporting off, no reporter)"},
    410: {"model": ErrorOut, "description": "The evidence item was purged"},
    422: {"model": ErrorOut, "description": "Malformed request, or a reason is missing"},
    502: {"model": ErrorOut, "description": "The reporting service refused the report"},
}
router = APIRouter(prefix="/v1", tags=["evidence"], responses=_ERRORS)
_ADMIN = Depends(require(Scope.ADMIN))
Reason = Annotated[
    str,
    Query(
        min_length=1,
        max_length=500,
        pattern=r"\S",
        description="Why (recorded in the chain of custody)",
    ),
]
ItemId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^ev_[0-9a-f]+$")]
DecisionId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_CONTROL)]


def _evidence(request: Request) -> Evidence:
    return request.app.state.guard.audit.evidence


def _actor(key: ApiKey) -> str:
    return key.actor  # one spelling for every admin endpoint (store/keys.py)


@contextmanager
def _errors() -> Iterator[None]:
    """Tutela's deliberate errors as HTTP answers: what the caller can act on, not a 500."""
    from tutela.evidence.http import ReportRejected, ReportServiceUnavailable
    from tutela.evidence.vault import EvidenceGone

    try:
        yield
    except InputError as exc:
        status = 404 if str(exc).startswith(("no evidence item", "no log entry")) else 422
        raise HTTPException(status, str(exc)) from None
    except EvidenceGone as exc:
        raise HTTPException(410, str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(409, str(exc)) from None
    except ReportRejected as exc:
        raise HTTPException(502, str(exc)) from None
    except ReportServiceUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    except TutelaError as exc:
        raise HTTPException(500, str(exc)) from None


# ---- audit log --------------------------------------------------------------------------------


@router.get("/audit/verify", summary="Verify the whole audit log")
def audit_verify(request: Request, key: ApiKey = _ADMIN) -> JSONResponse:
    """``ok: false`` names the first bad entry; the HTTP status stays 200 (the check ran)."""
    return JSONResponse(_evidence(request).log.verify().to_dict())


@router.get("/audit/proof/{entry}", summary="Inclusion proof of one entry")
def audit_proof(
    request: Request,
    entry: Annotated[str, Path(min_length=1, max_length=128, pattern=NO_CONTROL)],
    key: ApiKey = _ADMIN,
) -> JSONResponse:
    """By entry index, or by the id of a decision or evidence item (its first entry)."""
    log = _evidence(request).log
    with _errors():
        if entry.isascii() and entry.isdigit():
            seq = int(entry)
        else:
            found = log.find(entry)
            if not found:
                raise InputError(f"no log entry about {entry!r}")
            seq = found[0].seq
        return JSONResponse(log.inclusion_proof(seq))


@router.get("/audit/consistency", summary="Consistency proof between two tree sizes")
def audit_consistency(
    request: Request,
    old: Annotated[int, Query(ge=1)],
    new: Annotated[int | None, Query(ge=1)] = None,
    key: ApiKey = _ADMIN,
) -> JSONResponse:
    with _errors():
        return JSONResponse(_evidence(request).log.consistency_proof(old, new))


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision_id: str = Field(min_length=1, max_length=64, pattern=NO_CONTROL)
    reviewer: str = Field(min_length=1, max_length=256, pattern=r"\S")
    outcome: Literal["confirm", "overturn"]
    note: str | None = Field(None, max_length=2000)


@router.post("/audit/reviews", status_code=201, summary="Record a reviewer's outcome")
def audit_review(request: Request, body: ReviewIn, key: ApiKey = _ADMIN) -> JSONResponse:
    log = _evidence(request).log
    with _errors():
        if not log.find(body.decision_id, "decision"):
            raise InputError(f"no log entry about decision {body.decision_id!r}")
        entry = log.record_review(body.decision_id, body.reviewer, body.outcome, note=body.note)
    return JSONResponse(entry.to_dict(), status_code=201)


# ---- evidence vault ---------------------------------------------------------------------------


@router.get("/evidence", summary="Evidence items (metadata only)")
def evidence_list(
    request: Request,
    decision_id: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL)] = None,
    key: ApiKey = _ADMIN,
) -> JSONResponse:
    items = _evidence(request).vault.items(decision_id=decision_id)
    return JSONResponse({"items": [i.to_dict() for i in items]})


@router.get("/evidence/{item_id}", summary="One item's metadata and chain of custody")
def evidence_show(
    request: Request, item_id: ItemId, reason: Reason, key: ApiKey = _ADMIN
) -> JSONResponse:
    vault = _evidence(request).vault
    with _errors():
        item = vault.describe(item_id, actor=_actor(key), reason=reason)
    return JSONResponse({**item.to_dict(), "custody": vault.custody(item_id)})


@router.get(
    "/evidence/{item_id}/content",
    summary="Decrypt one item (logged)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}, "text/plain": {}}}},
)
def evidence_content(
    request: Request, item_id: ItemId, reason: Reason, key: ApiKey = _ADMIN
) -> Response:
    vault = _evidence(request).vault
    with _errors():
        content = vault.open(item_id, actor=_actor(key), reason=reason)
        item = vault.get(item_id)
    media = "application/octet-stream" if item.content_kind == "image" else item.media_type
    return Response(
        content,
        media_type=media,
        headers={
            "X-Content-SHA256": item.sha256,
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{item.id}.bin"',
        },
    )


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")
    on: bool = True


@router.post("/evidence/{item_id}/hold", summary="Set or lift a legal hold")
def evidence_hold(
    request: Request, item_id: ItemId, body: HoldIn, key: ApiKey = _ADMIN
) -> JSONResponse:
    with _errors():
        item = _evidence(request).vault.set_legal_hold(
            item_id, actor=_actor(key), reason=body.reason, on=body.on
        )
    return JSONResponse(item.to_dict())


@router.post("/evidence/purge", summary="Purge every expired item (logged)")
def evidence_purge(request: Request, key: ApiKey = _ADMIN) -> JSONResponse:
    with _errors():
        purged = _evidence(request).vault.purge(actor=_actor(key))
    return JSONResponse({"purged": purged, "count": len(purged)})


# ---- reports ----------------------------------------------------------------------------------


@router.get(
    "/reports/ncmec/{decision_id}",
    summary="The CyberTipline <report> XML (not sent)",
    response_class=Response,
    responses={200: {"content": {"text/xml": {}}}},
)
def ncmec_build(request: Request, decision_id: DecisionId, key: ApiKey = _ADMIN) -> Response:
    from tutela.evidence.ncmec import plan_report

    ev = _evidence(request)
    with _errors():
        plan = plan_report(ev.log, ev.vault, decision_id, ev.settings)
    return Response(plan.report_xml, media_type="text/xml; charset=utf-8")


class NcmecSubmitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classification: Literal["A1", "A2", "B1", "B2"] | None = None


@router.post(
    "/reports/ncmec/{decision_id}",
    summary="Report to NCMEC (off unless configured)",
)
def ncmec_submit(
    request: Request, decision_id: DecisionId, body: NcmecSubmitIn, key: ApiKey = _ADMIN
) -> JSONResponse:
    ev = _evidence(request)
    with _errors():
        result = ev.report_to_ncmec(
            decision_id, actor=_actor(key), classification=body.classification
        )
    return JSONResponse(result)


@router.get("/reports/dsa", summary="DSA statements of reasons for a period")
def dsa_export(
    request: Request, since: datetime, until: datetime | None = None, key: ApiKey = _ADMIN
) -> JSONResponse:
    from tutela.evidence import dsa

    ev = _evidence(request)
    if since.tzinfo is None or (until is not None and until.tzinfo is None):
        raise HTTPException(422, "since and until need a time zone")
    with _errors():
        scope = ev.settings.dsa_territorial_scope or None
        statements = list(dsa.export(ev.log, since, until, scope))
    return JSONResponse({"statements": statements, "count": len(statements)})


@router.get(
    "/reports/transparency",
    summary="Transparency report (JSON or HTML)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
def transparency_report(
    request: Request,
    period: Annotated[str, Query(max_length=32, description="2026-Q4, 2026-11, 2026, a..b")],
    format: Annotated[Literal["json", "html"], Query()] = "json",
    key: ApiKey = _ADMIN,
) -> Response:
    from tutela.evidence import transparency

    ev = _evidence(request)
    with _errors():
        report: dict[str, Any] = transparency.build(ev.log, period)
    if format == "html":
        return HTMLResponse(transparency.render_html(report, ev.settings.report_platform_name))
    return JSONResponse(report)
