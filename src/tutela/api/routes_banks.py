"""``/v1/banks...``: PDQ hash banks over HTTP (scope ``admin``: banks decide what is blocked).

The same operations as ``tutela banks``: list, create, change (on/off, threshold), add
entries, switch single entries off or on, import a list file, export. Every change lands in
the database in one transaction; every worker's matcher picks it up within seconds
(:meth:`tutela.hashes.matcher.BankMatcher.refresh`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from tutela.api.auth import require
from tutela.api.schemas import AUTH_ERRORS, ErrorOut
from tutela.errors import InputError
from tutela.hashes.exchange import ListFormat, read_entries, write_entries
from tutela.hashes.models import DEFAULT_THRESHOLD, Bank, BankKind, Entry
from tutela.hashes.repository import BankRepository, NewEntry
from tutela.store.keys import ApiKey, Scope

router = APIRouter(prefix="/v1", tags=["banks"])
_ADMIN = Depends(require(Scope.ADMIN))

BANK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
PDQ_HEX = r"^\s*[0-9a-fA-F]{64}\s*$"
MAX_ENTRIES_PER_REQUEST = 10_000
MAX_IMPORT_BYTES = 100_000_000  # larger lists: use the CLI next to the database
_Kind = Literal["block", "false_positive", "registry"]
_BankName = Annotated[str, Path(pattern=BANK_NAME, description="The bank's name")]


class BankOut(BaseModel):
    id: int
    name: str
    kind: _Kind
    threshold: int
    enabled: bool
    description: str
    created_at: datetime
    entries: int | None = Field(description="Enabled entries")


class BankListOut(BaseModel):
    banks: list[BankOut]


class BankIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=BANK_NAME)
    kind: _Kind = "block"
    threshold: int = Field(DEFAULT_THRESHOLD, ge=0, le=63, description="PDQ match distance")
    description: str = Field("", max_length=2000)
    enabled: bool = True


class BankPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    threshold: int | None = Field(None, ge=0, le=63)
    description: str | None = Field(None, max_length=2000)


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signal_str: str = Field(pattern=PDQ_HEX, description="PDQ hash: 64 hex characters")
    signal_type: Literal["pdq"] = "pdq"
    ref: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class EntriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[EntryIn] = Field(min_length=1, max_length=MAX_ENTRIES_PER_REQUEST)
    skip_duplicates: bool = True


class AddedOut(BaseModel):
    bank: str
    added: int
    skipped_duplicates: int
    ids: list[int]


class EntryOut(BaseModel):
    id: int
    bank_id: int
    signal_type: Literal["pdq"]
    signal_str: str
    ref: str | None
    metadata: dict[str, Any]
    enabled: bool
    created_at: datetime


class EntryListOut(BaseModel):
    bank: str
    entries: list[EntryOut]
    next_after_id: int | None = Field(description="Pass as after_id for the next page")


class EntryPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class ImportOut(BaseModel):
    bank: str
    read: int
    added: int
    skipped_duplicates: int


_NOT_FOUND = {404: {"model": ErrorOut, "description": "No such bank (or entry)"}}
_INVALID = {422: {"model": ErrorOut, "description": "Invalid request"}}


def _repo(request: Request) -> BankRepository:
    return BankRepository(request.app.state.guard.store)


def _bank(repo: BankRepository, name: str) -> Bank:
    for bank in repo.list_banks(counts=False):
        if bank.name == name:
            return repo.get_bank(name)
    raise HTTPException(404, f"no bank named {name!r}")


@router.get(
    "/banks",
    summary="List hash banks",
    response_model=None,
    responses={200: {"model": BankListOut}, **AUTH_ERRORS},
)
def list_banks(request: Request, key: ApiKey = _ADMIN) -> JSONResponse:
    repo = _repo(request)
    banks = repo.store.run(repo.list_banks)
    return JSONResponse({"banks": [b.to_dict() for b in banks]})


@router.post(
    "/banks",
    summary="Create a hash bank",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": BankOut},
        409: {"model": ErrorOut, "description": "A bank of that name exists"},
        **_INVALID,
        **AUTH_ERRORS,
    },
)
def create_bank(body: BankIn, request: Request, key: ApiKey = _ADMIN) -> JSONResponse:
    repo = _repo(request)
    if any(b.name == body.name for b in repo.list_banks(counts=False)):
        raise HTTPException(409, f"a bank named {body.name!r} already exists")
    bank = repo.create_bank(
        body.name,
        BankKind(body.kind),
        threshold=body.threshold,
        description=body.description,
        enabled=body.enabled,
        actor=key.actor,
    )
    return JSONResponse(bank.to_dict(), status_code=201)


@router.get(
    "/banks/{name}",
    summary="One hash bank",
    response_model=None,
    responses={200: {"model": BankOut}, **_NOT_FOUND, **_INVALID, **AUTH_ERRORS},
)
def get_bank(name: _BankName, request: Request, key: ApiKey = _ADMIN) -> JSONResponse:
    return JSONResponse(_bank(_repo(request), name).to_dict())


@router.patch(
    "/banks/{name}",
    summary="Switch a bank on/off, change its threshold",
    response_model=None,
    responses={200: {"model": BankOut}, **_NOT_FOUND, **_INVALID, **AUTH_ERRORS},
)
def patch_bank(
    name: _BankName, body: BankPatchIn, request: Request, key: ApiKey = _ADMIN
) -> JSONResponse:
    repo = _repo(request)
    _bank(repo, name)
    bank = repo.update_bank(
        name,
        enabled=body.enabled,
        threshold=body.threshold,
        description=body.description,
        actor=key.actor,
    )
    return JSONResponse(bank.to_dict())


@router.post(
    "/banks/{name}/entries",
    summary="Add hashes to a bank (all or nothing)",
    response_model=None,
    responses={200: {"model": AddedOut}, **_NOT_FOUND, **_INVALID, **AUTH_ERRORS},
)
def add_entries(
    name: _BankName, body: EntriesIn, request: Request, key: ApiKey = _ADMIN
) -> JSONResponse:
    repo = _repo(request)
    _bank(repo, name)
    result = repo.add_entries(
        name,
        [NewEntry(e.signal_str, e.ref, e.metadata, e.enabled) for e in body.entries],
        skip_duplicates=body.skip_duplicates,
        actor=key.actor,
    )
    return JSONResponse({"bank": name, **result.to_dict(), "ids": result.added})


@router.get(
    "/banks/{name}/entries",
    summary="A page of a bank's entries, in id order",
    response_model=None,
    responses={200: {"model": EntryListOut}, **_NOT_FOUND, **_INVALID, **AUTH_ERRORS},
)
def list_entries(
    name: _BankName,
    request: Request,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    key: ApiKey = _ADMIN,
) -> JSONResponse:
    repo = _repo(request)
    _bank(repo, name)
    page = repo.entries_page(name, after_id=after_id, limit=limit)
    return JSONResponse(
        {
            "bank": name,
            "entries": [e.to_dict() for e in page],
            "next_after_id": page[-1].id if len(page) == limit else None,
        }
    )


@router.patch(
    "/banks/{name}/entries/{entry_id}",
    summary="Switch one entry off or on",
    response_model=None,
    responses={200: {"model": EntryOut}, **_NOT_FOUND, **_INVALID, **AUTH_ERRORS},
)
def patch_entry(
    name: _BankName,
    entry_id: Annotated[int, Path(ge=1, le=2**62)],
    body: EntryPatchIn,
    request: Request,
    key: ApiKey = _ADMIN,
) -> JSONResponse:
    repo = _repo(request)
    bank = _bank(repo, name)
    try:
        entry = repo.get_entry(entry_id)
    except InputError:
        entry = None
    if entry is None or entry.bank_id != bank.id:
        raise HTTPException(404, f"no entry {entry_id} in bank {name!r}")
    return JSONResponse(repo.set_entry_enabled(entry_id, body.enabled, actor=key.actor).to_dict())


@router.post(
    "/banks/{name}/import",
    summary="Import a hash list file (ThreatExchange CSV, JSON lines, txt)",
    response_model=None,
    responses={
        200: {"model": ImportOut},
        413: {"model": ErrorOut, "description": "File over the import limit"},
        **_NOT_FOUND,
        **_INVALID,
        **AUTH_ERRORS,
    },
)
def import_list(
    name: _BankName,
    request: Request,
    file: Annotated[UploadFile, File(description="The list (UTF-8)")],
    format: Annotated[Literal["csv", "jsonl", "txt"], Form()] = "csv",
    skip_duplicates: Annotated[bool, Form()] = True,
    key: ApiKey = _ADMIN,
) -> JSONResponse:
    repo = _repo(request)
    _bank(repo, name)
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise HTTPException(
            413,
            f"list over {MAX_IMPORT_BYTES:,} bytes: use 'tutela banks import' next to the database",
        )
    entries = read_entries(data, ListFormat(format))
    result = repo.add_entries(name, entries, skip_duplicates=skip_duplicates, actor=key.actor)
    return JSONResponse({"bank": name, "read": len(entries), **result.to_dict()})


@router.get(
    "/banks/{name}/export",
    summary="Export a bank with ThreatExchange signal strings",
    response_model=None,
    responses={
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}}, "description": "The list"},
        **_NOT_FOUND,
        **_INVALID,
        **AUTH_ERRORS,
    },
)
def export_list(
    name: _BankName,
    request: Request,
    format: Annotated[Literal["csv", "jsonl"], Query()] = "jsonl",
    enabled_only: Annotated[bool, Query()] = False,
    key: ApiKey = _ADMIN,
) -> StreamingResponse:
    repo = _repo(request)
    _bank(repo, name)
    list_format = ListFormat(format)

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        batch: list[Entry] = []
        first = True
        for entry in repo.entries(name, include_disabled=not enabled_only):
            batch.append(entry)
            if len(batch) == 5_000:
                write_entries(batch, list_format, buffer, header=first)
                batch, first = [], False
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        write_entries(batch, list_format, buffer, header=first)
        yield buffer.getvalue()

    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        chunks(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'},
    )
