"""The ``tutela`` command: joins the command groups and the global options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tutela.cli import accounts as accounts_cmd
from tutela.cli import audit, banks, config, db, image, keys, policy, prompt, reports, serve
from tutela.cli import eval as eval_cmd
from tutela.cli import evidence as evidence_cmd
from tutela.cli import trace as trace_cmd
from tutela.cli.common import state

app = typer.Typer(
    name="tutela",
    help="Tutela: a child-safety guard for AI image generation. "
    "Run 'tutela COMMAND --help' for each command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(prompt.app, name="prompt")
app.add_typer(policy.app, name="policy")
app.add_typer(config.app, name="config")
app.command("serve")(serve.serve)
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(banks.app, name="banks")
app.add_typer(image.app, name="image")
app.add_typer(eval_cmd.app, name="eval")
app.add_typer(audit.app, name="audit")
app.add_typer(evidence_cmd.app, name="evidence")
app.add_typer(reports.app, name="reports")
app.command("trace")(trace_cmd.trace)
app.add_typer(accounts_cmd.app, name="accounts")


@app.callback()
def main(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML configuration file (or $TUTELA_CONFIG)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the embedded store lives (default ./tutela-data)."),
    ] = None,
) -> None:
    """Global options apply to every command."""
    st = state(ctx)
    st.config = config_file
    st.data_dir = data_dir
