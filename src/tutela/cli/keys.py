"""``tutela keys create|list|revoke``: API keys for the HTTP service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tutela.cli.audit import audited_store, cli_actor
from tutela.cli.common import cli_errors, err_console, print_error, print_json
from tutela.cli.db import open_store
from tutela.store.keys import Scope

app = typer.Typer(help="Manage API keys for the HTTP service.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    scope: Annotated[
        Scope,
        typer.Option(
            "--scope",
            "-s",
            help="check: run checks; review: also read decisions; admin: everything.",
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="A label for the key.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON.")] = False,
) -> None:
    """Create a key and print it once (only its hash is stored: it cannot be shown again).

    Example: tutela keys create --scope check --name image-service
    """
    store = audited_store(ctx)
    with cli_errors():
        record, secret = store.run(lambda: store.api_keys.create(scope, name, actor=cli_actor()))
    if as_json:
        print_json({**record.to_dict(), "key": secret})
    else:
        typer.echo(secret)
        err_console.print(
            f"created {record.id} (scope {record.scope}); the key above is shown only once"
        )
    store.close()


@app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
) -> None:
    """List keys (id, name, scope, first characters, state); never the secrets."""
    store = open_store(ctx)
    with cli_errors():
        keys = store.run(store.api_keys.list)
    store.close()
    if as_json:
        for k in keys:
            print_json(k.to_dict())
        return
    table = Table("id", "name", "scope", "starts with", "created", "state")
    for k in keys:
        table.add_row(
            k.id,
            k.name,
            str(k.scope),
            k.hint + "…",
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}",
        )
    Console().print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (from 'tutela keys list').")],
) -> None:
    """Revoke a key. Running servers stop accepting it within a few seconds."""
    store = audited_store(ctx)
    with cli_errors():
        done = store.run(lambda: store.api_keys.revoke(key_id, actor=cli_actor()))
    store.close()
    if not done:
        print_error(f"no active key with id {key_id!r}")
        raise typer.Exit(2)
    typer.echo(f"revoked {key_id}")


@app.command("c2pa-dev")
def c2pa_dev(
    ctx: typer.Context,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write (default: DATA_DIR/c2pa, which "
                     "marking and tracing pick up when no c2pa_cert is configured)."),
    ] = None,
) -> None:
    """Make a development C2PA chain (root → intermediate → leaf, ES256) for local use.

    Never use it in production: configure c2pa_cert/c2pa_key (or a signing callback) there.
    """
    from tutela.cli.common import load_settings
    from tutela.provenance.devcerts import make_dev_chain
    from tutela.provenance.factory import dev_chain_dir

    target = out_dir or dev_chain_dir(load_settings(ctx))
    with cli_errors():
        try:
            chain = make_dev_chain(target)
        except OSError as exc:
            from tutela.errors import ConfigError

            raise ConfigError(f"cannot write the chain into {target}: {exc}") from exc
    print_json({"chain": str(chain.chain_pem), "key": str(chain.key_pem),
                "trust_anchor": str(chain.root_pem)})
