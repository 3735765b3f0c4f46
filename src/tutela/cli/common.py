"""What every command group shares: the global options, opening the Guard, printing, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from tutela.errors import ConfigError, InputError, TutelaError

T = TypeVar("T")
err_console = Console(stderr=True)


@dataclass(slots=True)
class CliState:
    """Global options given before the command (``tutela --data-dir X prompt check ...``)."""

    config: Path | None = None
    data_dir: Path | None = None

    def overrides(self) -> dict[str, Any]:
        return {"data_dir": self.data_dir} if self.data_dir else {}


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def open_guard(ctx: typer.Context):  # type: ignore[no-untyped-def]
    """Open the Guard with the global options (lazily imported: keeps ``--help`` fast)."""
    from tutela.guard import Guard

    st = state(ctx)
    with cli_errors():
        return Guard.open(config=st.config, **st.overrides())


def load_settings(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from tutela.config import Settings

    st = state(ctx)
    with cli_errors():
        return Settings.load(st.config, **st.overrides())


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn Tutela's deliberate errors into a one-line message and exit code 2 (1 for others)."""
    try:
        yield
    except (InputError, ConfigError) as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
    except TutelaError as exc:
        print_error(str(exc))
        raise typer.Exit(1) from None


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, on one line however narrow the terminal (a path in it
    must survive copying) and taken literally: a message quoting a path or a user's input
    may hold brackets, which Rich would otherwise read as markup."""
    err_console.print("[red]error:[/red]", Text(message), highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """One JSON document per line on stdout (machine-readable, pipe-friendly)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def guarded(fn: Callable[[], T]) -> T:
    with cli_errors():
        return fn()
