"""``tutela banks list|create|add|import|export|disable|enable|match``: PDQ hash banks.

Hash lists arrive from partners as files (ThreatExchange CSV, JSON lines, plain hashes) and
reviewers add single hashes or images; these commands are the operator's way in and out.
Exit codes: 0 done, 2 bad input (nothing was changed), 1 other failures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tutela.cli.audit import audited_store, cli_actor
from tutela.cli.common import cli_errors, err_console, print_json
from tutela.cli.db import open_store
from tutela.errors import InputError
from tutela.hashes.models import DEFAULT_THRESHOLD, BankKind

app = typer.Typer(
    help="Manage PDQ hash banks (block lists, false positives, registry).", no_args_is_help=True
)

_MAX_LIST_BYTES = 2_000_000_000  # a 10M-line list is ~1 GB; anything beyond is a mistake


def _repo(ctx: typer.Context, *, audited: bool = False):  # type: ignore[no-untyped-def]
    """The bank repository; ``audited`` connects the audit log, for commands that change banks
    (each change is logged with the acting ``cli:<user>``)."""
    from tutela.hashes.repository import BankRepository

    return BankRepository(audited_store(ctx) if audited else open_store(ctx))


def _metadata(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--meta is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise InputError("--meta must be a JSON object")
    return value


def _signal_of(item: str) -> tuple[str, str]:
    """``item`` is a 64-hex PDQ hash or an image file; returns (hash, where it came from)."""
    from tutela.hashes.signal import normalise_pdq

    path = Path(item)
    if len(item) == 64 and not path.exists():
        return normalise_pdq(item), "hash"
    if not path.is_file():
        raise InputError(f"{item!r} is neither a 64-hex PDQ hash nor an image file")
    from tutela.image.decode import decode_image
    from tutela.image.pdq import hash_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {item}: {exc.strerror}") from None
    try:
        result = hash_image(decode_image(data).image)
    except InputError as exc:
        raise InputError(f"{item}: {exc}") from None
    if not result.matchable:
        raise InputError(
            f"{item}: PDQ quality {result.quality} is under 50; "
            "such hashes are not matched, so it is not added"
        )
    return result.hash, str(path)


@app.command("list")
def list_banks(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per bank.")] = False,
) -> None:
    """List banks: kind, threshold, on/off and enabled entries."""
    repo = _repo(ctx)
    with cli_errors():
        banks = repo.list_banks()
    repo.store.close()
    if as_json:
        for b in banks:
            print_json(b.to_dict())
        return
    table = Table("name", "kind", "threshold", "state", "entries", "description")
    for b in banks:
        table.add_row(
            b.name,
            str(b.kind),
            str(b.threshold),
            "on" if b.enabled else "off",
            f"{b.entries:,}",
            b.description,
        )
    Console().print(table)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Bank name (letters, digits, _ . -).")],
    kind: Annotated[BankKind, typer.Option("--kind", "-k", help="What a match means.")] = (
        BankKind.BLOCK
    ),
    threshold: Annotated[
        int, typer.Option("--threshold", "-t", min=0, max=63, help="PDQ match distance.")
    ] = DEFAULT_THRESHOLD,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a bank. Example: tutela banks create partner-list --kind block"""
    repo = _repo(ctx, audited=True)
    with cli_errors():
        bank = repo.create_bank(
            name, kind, threshold=threshold, description=description, enabled=not disabled,
            actor=cli_actor(),
        )  # fmt: skip
    repo.store.close()
    if as_json:
        print_json(bank.to_dict())
    else:
        err_console.print(f"created bank {bank.name} ({bank.kind}, threshold {bank.threshold})")


@app.command("add")
def add(
    ctx: typer.Context,
    bank: Annotated[str, typer.Argument(help="The bank.")],
    items: Annotated[list[str], typer.Argument(help="PDQ hashes (64 hex) or image files.")],
    ref: Annotated[str | None, typer.Option("--ref", help="External reference.")] = None,
    meta: Annotated[str | None, typer.Option("--meta", help="Metadata as a JSON object.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add hashes, or the PDQ hash of image files, to a bank (all or nothing).

    Example: tutela banks add partner-list 2d6b1af3...b724 reviewed/photo.jpg --ref case-17
    """
    from tutela.hashes.repository import NewEntry

    repo = _repo(ctx, audited=True)
    with cli_errors():
        metadata = _metadata(meta)
        entries = []
        for item in items:
            signal, source = _signal_of(item)
            extra = {"source_file": Path(source).name} if source != "hash" else {}
            entries.append(NewEntry(signal, ref, {**metadata, **extra}))
        result = repo.add_entries(bank, entries, actor=cli_actor())
    repo.store.close()
    if as_json:
        print_json({**result.to_dict(), "ids": result.added})
    else:
        err_console.print(
            f"added {len(result.added)} to {bank}; {result.skipped_duplicates} already there"
        )


@app.command("import")
def import_list(
    ctx: typer.Context,
    bank: Annotated[str, typer.Argument(help="The bank (must exist).")],
    file: Annotated[Path, typer.Argument(help="The list; '-' reads standard input.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="jsonl, csv or txt (default: by extension)."),
    ] = None,
    keep_duplicates: Annotated[
        bool, typer.Option("--keep-duplicates", help="Add hashes the bank already holds again.")
    ] = False,
) -> None:
    """Import a hash list: ThreatExchange CSV, JSON lines or one hash a line (all or nothing).

    Example: tutela banks import partner-list collab.csv
    """
    from tutela.hashes.exchange import ListFormat, read_entries

    repo = _repo(ctx, audited=True)
    with cli_errors():
        list_format = ListFormat(fmt) if fmt else ListFormat.from_filename(str(file))
        data = _read_input(file)
        entries = read_entries(data, list_format)
        result = repo.add_entries(
            bank, entries, skip_duplicates=not keep_duplicates, actor=cli_actor()
        )
    repo.store.close()
    print_json({"bank": bank, "read": len(entries), **result.to_dict()})


def _read_input(file: Path) -> bytes:
    if str(file) == "-":
        data = sys.stdin.buffer.read(_MAX_LIST_BYTES + 1)
    else:
        try:
            if file.stat().st_size > _MAX_LIST_BYTES:
                raise InputError(f"{file} is larger than {_MAX_LIST_BYTES:,} bytes")
            data = file.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror}") from None
    if len(data) > _MAX_LIST_BYTES:
        raise InputError(f"input is larger than {_MAX_LIST_BYTES:,} bytes")
    return data


@app.command("export")
def export_list(
    ctx: typer.Context,
    bank: Annotated[str, typer.Argument(help="The bank.")],
    file: Annotated[Path, typer.Argument(help="Output file; '-' writes standard output.")] = Path(
        "-"
    ),
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="jsonl, csv or txt (default: by extension, jsonl on standard output).",
        ),
    ] = None,
    enabled_only: Annotated[bool, typer.Option("--enabled-only")] = False,
) -> None:
    """Export a bank with ThreatExchange PDQ signal strings.

    Example: tutela banks export partner-list partner.csv
    """
    from tutela.hashes.exchange import ListFormat, write_entries

    repo = _repo(ctx)
    with cli_errors():
        to_stdout = str(file) == "-"
        if fmt:
            list_format = ListFormat(fmt)
        else:
            list_format = ListFormat.JSONL if to_stdout else ListFormat.from_filename(str(file))
        repo.get_bank(bank)  # a clear error before creating any file
        entries = repo.entries(bank, include_disabled=not enabled_only)
        if to_stdout:
            count = write_entries(entries, list_format, sys.stdout)
        else:
            tmp = file.with_name(file.name + ".partial")
            try:
                with open(tmp, "w", encoding="utf-8", newline="") as out:
                    count = write_entries(entries, list_format, out)
                tmp.replace(file)
            except OSError as exc:
                raise InputError(f"cannot write {file}: {exc.strerror}") from None
    repo.store.close()
    err_console.print(f"exported {count} entries of {bank}")


@app.command("disable")
def disable(
    ctx: typer.Context,
    bank: Annotated[str | None, typer.Argument(help="Switch this whole bank off.")] = None,
    entry: Annotated[
        list[int] | None,
        typer.Option("--entry", "-e", help="Switch one entry off instead (repeatable)."),
    ] = None,
) -> None:
    """Switch a bank, or single entries, off. Nothing is deleted; 'enable' undoes it."""
    _switch(ctx, bank, entry, False)


@app.command("enable")
def enable(
    ctx: typer.Context,
    bank: Annotated[str | None, typer.Argument(help="Switch this whole bank on.")] = None,
    entry: Annotated[
        list[int] | None,
        typer.Option("--entry", "-e", help="Switch one entry on instead (repeatable)."),
    ] = None,
) -> None:
    """Switch a bank, or single entries, back on."""
    _switch(ctx, bank, entry, True)


def _switch(ctx: typer.Context, bank: str | None, entries: list[int] | None, on: bool) -> None:
    repo = _repo(ctx, audited=True)
    word = "on" if on else "off"
    with cli_errors():
        if bool(bank) == bool(entries):
            raise InputError("give either a bank name or --entry ID (not both)")
        if bank:
            repo.update_bank(bank, enabled=on, actor=cli_actor())
            err_console.print(f"bank {bank} switched {word}")
        else:
            for entry_id in entries or []:
                repo.set_entry_enabled(entry_id, on, actor=cli_actor())
            err_console.print(f"{len(entries or [])} entries switched {word}")
    repo.store.close()


@app.command("match")
def match(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, WebP).")],
) -> None:
    """Match image files against every enabled bank; one JSON line per file.

    Exit code 0 even on matches (this reports; 'tutela image check' decides).
    """
    from tutela.hashes.matcher import BankMatcher
    from tutela.image.decode import decode_image
    from tutela.image.pdq import hash_image

    repo = _repo(ctx)
    matcher = BankMatcher(repo)
    failed = False
    for path in files:
        try:
            pdq = hash_image(decode_image(path.read_bytes()).image)
            with cli_errors():
                result = matcher.match(pdq)
            print_json({"file": str(path), "hash": pdq.hash, **result.to_dict()})
        except (InputError, OSError) as exc:
            failed = True
            message = exc.strerror if isinstance(exc, OSError) else str(exc)
            print_json({"file": str(path), "error": message})
    repo.store.close()
    if failed:
        raise typer.Exit(2)
