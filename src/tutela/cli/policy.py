"""``tutela policy show``: print the effective policy."""

from __future__ import annotations

import typer

from tutela.cli.common import cli_errors, load_settings

app = typer.Typer(help="Inspect the policy in force.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective policy as YAML (the bundled default unless policy_file is set)."""
    from tutela.policy import Policy

    settings = load_settings(ctx)
    with cli_errors():
        policy = Policy.load(settings.policy_file)
    source = settings.policy_file or "(bundled default: tutela/policies/default.yaml)"
    typer.echo(f"# policy: {source}")
    typer.echo(policy.to_yaml(), nl=False)
