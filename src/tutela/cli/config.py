"""``tutela config show``: print the effective configuration, secrets masked."""

from __future__ import annotations

import typer
import yaml

from tutela.cli.common import load_settings

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (file < environment < flags) with secrets masked."""
    settings = load_settings(ctx)
    typer.echo(yaml.safe_dump(settings.masked(), sort_keys=False), nl=False)
