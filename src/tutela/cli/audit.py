"""``tutela audit``: verify the tamper-evident log, print proofs, record reviewer actions."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated

import typer

from tutela.cli.common import cli_errors, err_console, load_settings, print_json
from tutela.errors import InputError

app = typer.Typer(help="The tamper-evident audit log (Merkle tree, signed checkpoints).",
                  no_args_is_help=True)  # fmt: skip


def open_evidence(ctx: typer.Context):  # type: ignore[no-untyped-def]
    """The log and vault on the configured store (lazily imported: keeps --help fast)."""
    from tutela.evidence.service import Evidence

    with cli_errors():
        return Evidence.open(load_settings(ctx))


def audited_store(ctx: typer.Context):  # type: ignore[no-untyped-def]
    """The Store with the audit log connected, for commands that change keys or banks: each
    change is written to the log in its own transaction (store/admin.py)."""
    from tutela.cli.db import open_store

    store = open_store(ctx)
    from tutela.evidence.service import Evidence

    with cli_errors():
        Evidence.open(load_settings(ctx), store)
    return store


def cli_actor() -> str:
    """Who acts from the command line, as the log records it: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli:unknown"


@app.command("verify")
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    known: Annotated[
        list[str] | None,
        typer.Option("--known", help="SIZE:ROOTHEX of a root published earlier (repeatable)."),
    ] = None,
) -> None:
    """Check every entry, hash, checkpoint signature and root.

    Exit code 0 when the log is intact; 1 naming the first bad entry otherwise. --known
    also checks the log still produces roots you kept from earlier checkpoints.
    """
    ev = open_evidence(ctx)
    roots: dict[int, bytes] = {}
    with cli_errors():
        for k in known or []:
            size, _, root = k.partition(":")
            try:
                roots[int(size)] = bytes.fromhex(root)
            except ValueError:
                raise InputError(f"--known must be SIZE:ROOTHEX, not {k!r}") from None
    result = ev.log.verify(roots)
    if as_json:
        print_json(result.to_dict())
    elif result.ok:
        typer.echo(f"OK: {result.entries} entries, {result.checkpoints} signed checkpoints")
    if not result.ok:
        first = "" if result.first_bad is None else f"first bad entry: {result.first_bad}; "
        err_console.print(f"[red]FAILED:[/red] {first}{result.problems[0]}", highlight=False)
        for p in result.problems[1:20]:
            err_console.print(f"  {p}", highlight=False, markup=False)
        raise typer.Exit(1)


@app.command("proof")
def proof(
    ctx: typer.Context,
    entry: Annotated[str, typer.Argument(help="Entry index, or a decision / evidence id.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """Print an inclusion proof (JSON) that tools/verify_proof.py checks offline.

    Example:\n
      tutela audit proof dec_0190abc... > proof.json\n
      python3 tools/verify_proof.py proof.json --public-key "$(tutela audit public-key)"
    """
    ev = open_evidence(ctx)
    with cli_errors():
        if entry.isascii() and entry.isdigit():
            seq = int(entry)
        else:
            found = ev.log.find(entry)
            if not found:
                raise InputError(f"no log entry about {entry!r}")
            seq = found[0].seq
        doc = ev.log.inclusion_proof(seq)
    text = json.dumps(doc, indent=1)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        typer.echo(text)


@app.command("consistency")
def consistency(
    ctx: typer.Context,
    old_size: Annotated[int, typer.Argument(help="Size of the older tree.")],
    new_size: Annotated[
        int | None, typer.Argument(help="Size of the newer (default: all).")
    ] = None,
) -> None:
    """Print a consistency proof: the older tree is a prefix of the newer one."""
    ev = open_evidence(ctx)
    with cli_errors():
        print_json(ev.log.consistency_proof(old_size, new_size))


@app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Sign a checkpoint over the whole log now (they are also made every N entries)."""
    ev = open_evidence(ctx)
    with cli_errors():
        print_json(ev.log.checkpoint().to_dict())


@app.command("public-key")
def public_key(ctx: typer.Context) -> None:
    """Print the checkpoint signing key's public half (base64): give it to auditors."""
    ev = open_evidence(ctx)
    assert ev.log.signer is not None
    typer.echo(base64.b64encode(ev.log.signer.public_key_raw).decode())


@app.command("log")
def show_log(
    ctx: typer.Context,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only these kinds.")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="About this id.")] = None,
) -> None:
    """Print log entries as JSON lines (oldest first)."""
    ev = open_evidence(ctx)
    entries = ev.log.find(subject) if subject else ev.log.entries(kinds=kind)
    for e in entries:
        if not kind or e.kind in kind:
            print_json(e.to_dict())


@app.command("review")
def review(
    ctx: typer.Context,
    decision_id: Annotated[str, typer.Argument(help="The decision reviewed.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who reviewed it.")],
    outcome: Annotated[str, typer.Option("--outcome", help="confirm or overturn.")],
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the log).")] = None,
) -> None:
    """Record a reviewer's confirmation or overturn of a decision in the log."""
    ev = open_evidence(ctx)
    with cli_errors():
        if not ev.log.find(decision_id, "decision"):
            raise InputError(f"decision {decision_id} is not in the audit log")
        print_json(ev.log.record_review(decision_id, reviewer, outcome, note=note).to_dict())
