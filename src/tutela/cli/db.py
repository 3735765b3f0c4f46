"""``tutela db upgrade`` and ``tutela db purge-prompts``: the database's schema and retention."""

from __future__ import annotations

import typer

from tutela.cli.common import cli_errors, load_settings, print_json
from tutela.errors import ConfigError

app = typer.Typer(help="Manage the database (migrations, retention).", no_args_is_help=True)


def open_store(  # type: ignore[no-untyped-def]
    ctx: typer.Context, *, upgrade: bool = False, require_current: bool = True
):
    """The Store for the global options; migrated when ``upgrade``, else required current.

    Commands other than ``db upgrade`` and ``serve`` never change a PostgreSQL schema on
    their own; the embedded SQLite default migrates itself on first use.
    """
    from tutela.store import migrate
    from tutela.store.database import Store

    settings = load_settings(ctx)
    with cli_errors():
        store = Store.open(settings.effective_database_url)
        if upgrade:
            store.upgrade()
        elif (
            require_current
            and store.dialect != "sqlite"
            and not store.run(lambda: migrate.is_current(store.engine))
        ):
            raise ConfigError("the database schema is not current: run 'tutela db upgrade'")
    return store


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (all areas' heads) to the configured database.

    Safe to run from several processes at once and when nothing is pending.
    """
    store = open_store(ctx, require_current=False)
    with cli_errors():
        heads = store.upgrade()
    url = store.engine.url.render_as_string(hide_password=True)
    typer.echo(f"database {url} is at: {', '.join(heads)}")
    store.close()


@app.command("purge-prompts")
def purge_prompts(ctx: typer.Context) -> None:
    """Forget the text of allowed prompts whose retention (policy) has run out."""
    store = open_store(ctx)
    with cli_errors():
        count = store.run(store.decisions.purge_expired_prompts)
    print_json({"purged": count})
    store.close()
