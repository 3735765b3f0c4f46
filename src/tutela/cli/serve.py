"""``tutela serve``: the HTTP service (FastAPI on uvicorn), on embedded defaults.

It migrates the database, creates the first admin key on a fresh database (printed once),
then serves. With ``--workers N`` uvicorn starts N processes, each building the app from the
same configuration (passed down as ``TUTELA_*`` environment variables) on the shared
database; use PostgreSQL for that (``TUTELA_DATABASE_URL``).
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tutela.cli.common import cli_errors, err_console, load_settings, state
from tutela.cli.db import open_store

if TYPE_CHECKING:
    from tutela.config import Settings

FIRST_KEY_NAME = "initial admin key"


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, max=64, help="Worker processes.")
    ] = None,
) -> None:
    """Serve the API (docs at /docs, OpenAPI at /openapi.json).

    On the first start it prints an admin API key once; create others with
    'tutela keys create'.

    Examples:\n
      tutela serve\n
      TUTELA_DATABASE_URL=postgresql+psycopg://tutela@/tutela tutela serve --workers 4
    """
    import uvicorn

    from tutela.api import logs
    from tutela.api.app import create_app
    from tutela.guard import Guard

    st = state(ctx)
    overrides = {
        k: v
        for k, v in {"host": host, "port": port, "workers": workers, **st.overrides()}.items()
        if v is not None
    }
    store = open_store(ctx, upgrade=True)
    with cli_errors():
        if store.run(store.api_keys.count) == 0:
            from tutela.cli.audit import cli_actor
            from tutela.evidence.service import Evidence

            Evidence.open(load_settings(ctx), store)  # the key's creation is logged
            _, secret = store.run(
                lambda: store.api_keys.create("admin", FIRST_KEY_NAME, actor=cli_actor())
            )
            typer.echo(f"First start: created an admin API key (shown only this once):\n{secret}")
        store.close()
        guard = Guard.open(config=st.config, **overrides)
    settings = guard.settings
    if settings.workers > 1 and settings.effective_database_url.startswith("sqlite"):
        err_console.print(
            "[yellow]warning:[/yellow] several workers on SQLite serialise their writes; "
            "use PostgreSQL (TUTELA_DATABASE_URL) for multi-worker deployments"
        )
    err_console.print(f"Tutela listening on http://{settings.host}:{settings.port} (docs: /docs)")
    logs.configure(settings.log_level)  # uvicorn's supervisor logs (a worker restarted) as JSON
    common = uvicorn_options(settings)
    if settings.workers == 1:
        uvicorn.run(create_app(guard, warm_models=True), **common)  # type: ignore[arg-type]
        return
    guard.store.close()
    _export_settings(st.config, overrides)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tutela-metrics-")
    uvicorn.run(
        "tutela.api.app:create_app",
        factory=True,
        workers=settings.workers,
        **common,  # type: ignore[arg-type]
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options every ``tutela serve`` worker runs with.

    One place, so ``benchmarks/http_bench.py`` serves its instrumented app exactly as
    production does. uvicorn's own access log is off (the service middleware writes the
    structured one) and so is its ``server`` header.
    """
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }


def _export_settings(config: object, overrides: dict[str, object]) -> None:
    """Hand the command line's settings to the worker processes through the environment."""
    if config is not None:
        os.environ["TUTELA_CONFIG"] = str(os.path.abspath(str(config)))
    for name, value in overrides.items():
        if name == "data_dir":
            value = os.path.abspath(str(value))
        os.environ[f"TUTELA_{name.upper()}"] = str(value)
