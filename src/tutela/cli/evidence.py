"""``tutela evidence``: look at, export, hold and purge preserved evidence; rotate its keys.

Every command that reads an item asks who is acting and why; both go into the audit log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tutela.cli.audit import open_evidence
from tutela.cli.common import cli_errors, print_json
from tutela.errors import ConfigError

app = typer.Typer(help="The encrypted evidence vault.", no_args_is_help=True)

Actor = Annotated[str, typer.Option("--actor", help="Who is acting (recorded in the log).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the log).")]


@app.command("list")
def list_items(
    ctx: typer.Context,
    decision: Annotated[str | None, typer.Option("--decision", help="Of this decision.")] = None,
    live: Annotated[bool, typer.Option("--live", help="Hide purged items.")] = False,
) -> None:
    """List items (metadata only, JSON lines)."""
    ev = open_evidence(ctx)
    for item in ev.vault.items(decision_id=decision, include_purged=not live):
        print_json(item.to_dict())


@app.command("show")
def show(ctx: typer.Context, item_id: str, actor: Actor, reason: Reason) -> None:
    """An item's metadata and its chain of custody (this look is logged too)."""
    ev = open_evidence(ctx)
    with cli_errors():
        item = ev.vault.describe(item_id, actor=actor, reason=reason)
    print_json({**item.to_dict(), "custody": ev.vault.custody(item_id)})


@app.command("export")
def export(
    ctx: typer.Context,
    item_id: str,
    actor: Actor,
    reason: Reason,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into.")],
) -> None:
    """Decrypt an item into OUT, with its metadata, custody and an inclusion proof.

    Writes <id>.bin (the content, exactly as sealed; its SHA-256 is in the metadata) and
    <id>.json (metadata, custody chain, and a proof that the sealing entry is in the log).
    """
    ev = open_evidence(ctx)
    with cli_errors():
        content = ev.vault.open(item_id, actor=actor, reason=reason)
        item = ev.vault.get(item_id)
        store_entry = ev.log.find(item_id, "evidence.store")[0]
        proof = ev.log.inclusion_proof(store_entry.seq)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{item_id}.bin").write_bytes(content)
    doc = {**item.to_dict(), "custody": ev.vault.custody(item_id), "store_proof": proof}
    (out / f"{item_id}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out / (item_id + '.bin')} and {out / (item_id + '.json')}")


@app.command("hold")
def hold(
    ctx: typer.Context,
    item_id: str,
    actor: Actor,
    reason: Reason,
    release: Annotated[bool, typer.Option("--release", help="Lift the legal hold.")] = False,
) -> None:
    """Put an item under legal hold (kept past every period) or release it."""
    ev = open_evidence(ctx)
    with cli_errors():
        print_json(
            ev.vault.set_legal_hold(item_id, actor=actor, reason=reason, on=not release).to_dict()
        )


@app.command("purge")
def purge(ctx: typer.Context, actor: Actor) -> None:
    """Delete (crypto-shred) every item whose hold has expired; each purge is logged."""
    ev = open_evidence(ctx)
    with cli_errors():
        purged = ev.vault.purge(actor=actor)
    print_json({"purged": purged, "count": len(purged)})


@app.command("rotate-key")
def rotate_key(ctx: typer.Context, actor: Actor) -> None:
    """Make a new key-encryption key current (old keys stay to open older items)."""
    ev = open_evidence(ctx)
    with cli_errors():
        rotate = getattr(ev.vault.keys, "rotate", None)
        if rotate is None:
            raise ConfigError("this key store is external (KMS): rotate keys there")
        new = rotate()
        ev.log.record_admin(actor, "evidence.rotate_key", {"key_id": new})
    print_json({"current_key": new})


@app.command("rewrap")
def rewrap(ctx: typer.Context, actor: Actor) -> None:
    """Re-wrap every live item's data key under the current key (after a rotation)."""
    ev = open_evidence(ctx)
    with cli_errors():
        moved = ev.vault.rewrap(actor=actor)
    print_json({"rewrapped": moved, "current_key": ev.vault.keys.current_key_id()})
